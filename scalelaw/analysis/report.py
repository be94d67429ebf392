"""One self-contained HTML page to share: each fit's summary, data with fitted curves and
intervals, residuals, a backtest, and optionally the plan for a compute budget.

plotly's JavaScript is embedded inline once (no CDN), so the page opens offline and can be
mailed as a single file. Figures come from :mod:`scalelaw.plots`; a figure that cannot be drawn
(e.g. no data table for a published fit) leaves a note in its place rather than failing the page.
"""
from __future__ import annotations

import datetime as _dt
import html
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from ..result import Fit, health_warning

_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
h3{font-size:1.05em;margin-top:1.4em;color:#444}
.meta{color:#666;font-size:.9em} code{background:#f2f2f2;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:.92em}
th,td{border:1px solid #ddd;padding:3px 10px;text-align:right} th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.scalelaw-summary table{display:inline-table;vertical-align:top;margin-right:24px}
.note{color:#8a5a00;background:#fff7e6;border-left:3px solid #f0a500;padding:6px 10px;margin:8px 0}
.warn{color:#a00;background:#fff0f0;border-left:3px solid #d00;padding:6px 10px;margin:8px 0}
.figure{margin:6px 0 18px}
.bad{color:#c00;font-weight:bold}
nav ul{columns:2;font-size:.92em}
"""


def _esc(x) -> str:
    return html.escape(str(x))


def _num(v, digits: int = 4) -> str:
    if v is None:
        return ""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _esc(v)
    if math.isinf(f):
        return "inf"
    if not math.isfinite(f):
        return ""
    return f"{f:.{digits}g}"


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    h = "".join(f"<th>{_esc(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _load(item, i: int):
    """(name, Fit) from a Fit, a (name, Fit) pair, a fit path or a published name."""
    from ..result import load_fit

    if isinstance(item, tuple) and len(item) == 2:
        name, f = item
        return str(name), (f if isinstance(f, Fit) else load_fit(f))
    if isinstance(item, Fit):
        return item.label or f"fit {i + 1}: {item.law.name}", item
    if isinstance(item, (str, Path)):
        return Path(str(item)).name if Path(str(item)).exists() else str(item), load_fit(item)
    raise ScalelawError(f"report fits must be Fit objects, fit JSON paths or published fit names; got {type(item).__name__}")


def _source_table(fit: Fit, cache: dict | None = None):
    """The run table named by the fit's recorded source, when it can be read; else None.

    ``cache`` (source -> table) lets the fits of one report share a table read only once."""
    from ..io import load_table

    src = (fit.data or {}).get("source")
    if not src or fit.label:
        return None
    if getattr(fit, "from_file", False):   # a path written in a fit file is never read on its own
        from ..datasets import names
        if src not in set(names()):
            return None
    cache = {} if cache is None else cache
    if src not in cache:
        try:
            cache[src] = load_table(src)
        except Exception:  # a moved file or an offline dataset: the section says so instead
            cache[src] = None
    return cache[src]


def run_backtest(fit: Fit, data: pd.DataFrame, train: str | None = None) -> dict:
    """Refit ``fit``'s law with its settings on the smaller runs (or rows matching ``train``) and
    predict the rest (scalelaw.predict.backtest); the default split is
    :func:`scalelaw.predict.default_split` (by compute, both sides non-empty)."""
    import warnings

    from ..predict import backtest, default_split

    s = fit.settings or {}
    where = (fit.data or {}).get("filter") or s.get("where")
    table = data
    if train is None:
        table, train, shown = default_split(data, fit.law, where=where)
    else:
        shown = train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(fit.law, table, train=train, where=where,
                       level=fit.level, objective=s.get("objective"), delta=s.get("delta", 1e-3),
                       fixed=s.get("fixed") or None, prepare_options=s.get("prepare_options") or None,
                       source=data.attrs.get("source"))
    res["train"] = shown
    res["level"] = fit.level
    return res


def _roles(fits: Sequence) -> dict:
    """Map plan roles (loss, lr, batch_tokens, error) to the first fit of a law suited to each."""
    from .plan import _role

    roles = {}
    for name, f in fits:
        role = _role(f.law)
        if role is not None:
            roles.setdefault(role, (name, f))
    return roles


class _Page:
    def __init__(self):
        self.parts: list = []
        self.toc: list = []
        self.n_fig = 0
        self.warnings: list = []
        self.template = None     # the figures' shared plotly template, written once

    def add(self, s: str):
        self.parts.append(s)

    def figure(self, fig, kind: str = "figure"):
        """Embed a figure. Its template (plotly_white: ~7 KB of JSON) is written once for the
        page (``template_script``) rather than once per figure, which keeps a one-fit page with
        every figure under 5 MB beside plotly.js's 4.8 MB."""
        from plotly.io.json import to_json_plotly

        self.n_fig += 1
        for tr in fig.data:
            if getattr(tr, "fill", None) == "toself" and tr.hoverinfo == "skip":   # bands: no values shown
                for k in ("x", "y"):
                    v = getattr(tr, k)
                    if isinstance(v, np.ndarray) and v.dtype == np.float64 and np.all(np.abs(v[np.isfinite(v)]) < 1e38):
                        setattr(tr, k, v.astype(np.float32))    # half the bytes; 7 digits are plenty to draw
        d = fig.to_plotly_json()
        layout = dict(d.get("layout") or {})
        template = layout.pop("template", None)
        if template is not None and self.template is None:
            self.template = template
        tmpl = "SCALELAW_TEMPLATE" if template is not None and template == self.template else \
            (to_json_plotly(template) if template is not None else "undefined")
        div = f"scalelaw-fig-{self.n_fig}"
        height = layout.get("height") or 450
        self.add(f"<div class='figure' data-kind='{_esc(kind)}'><div id='{div}' class='plotly-graph-div' "
                 f"style='height:{int(height)}px; width:100%;'></div><script type='text/javascript'>"
                 f"Plotly.newPlot('{div}', {to_json_plotly(d.get('data') or [])}, "
                 f"Object.assign({to_json_plotly(layout)}, {{template: {tmpl}}}), "
                 "{\"displaylogo\": false, \"responsive\": true});</script></div>")

    def template_script(self) -> str:
        from plotly.io.json import to_json_plotly

        if self.template is None:
            return ""
        return f"<script type='text/javascript'>window.SCALELAW_TEMPLATE = {to_json_plotly(self.template)};</script>\n"

    def note(self, msg: str, where: str = ""):
        self.add(f"<div class='note'>{_esc(msg)}</div>")
        self.warnings.append(f"{where}: {msg}" if where else msg)

    def attempt(self, what: str, where: str, fn, kind: str | None = None):
        try:
            fig = fn()
        except ScalelawError as exc:
            self.note(f"{what} not drawn: {exc}", where)
            return None
        except Exception as exc:  # keep the page: say what failed
            self.note(f"{what} not drawn ({type(exc).__name__}: {exc})", where)
            return None
        self.figure(fig, kind or what.split()[0].lower())
        return fig


def poor_coverage(result: dict) -> bool:
    """True when a backtest's held-out coverage is implausibly low for its level: at most that
    many of n held-out runs inside a band that should hold ``level`` of them has a binomial
    probability below 5%."""
    from scipy import stats

    n = int(result.get("n_test") or 0)
    if n == 0:
        return False
    k = int(round(result["coverage"] * n))
    return bool(stats.binom.cdf(k, n, result.get("level", 0.95)) < 0.05)


def _isoflop_of(fit: Fit, rows: pd.DataFrame):
    """The IsoFLOP analysis of the fitted rows when they have that shape (at least two compute
    budgets, each with three model sizes or more), else None."""
    from .isoflop import isoflop

    if not {"N", "D"} <= set(fit.law.inputs) or "loss" != fit.law.target:
        return None
    try:
        return isoflop(rows, degree=2)
    except ScalelawError:
        return None


def _fit_section(page: _Page, k: int, name: str, fit: Fit, data, backtest: bool, train, tables: dict,
                 plan_compute: float | None = None):
    from .. import plots

    anchor = f"fit-{k}"
    page.toc.append((anchor, f"{name} ({fit.law.name})"))
    law = fit.law
    page.add(f"<h2 id='{anchor}'>{_esc(name)}: {_esc(law.name)}</h2>")
    page.add(f"<p><code>{_esc(law.formula)}</code> &mdash; {_esc(law.citation)}</p>")
    health = health_warning(fit)
    if health:
        page.note(health, name)
    page.add(fit.summary()._repr_html_())
    if law.derived:
        der = fit.derived()
        page.add("<h3>Derived quantities</h3>" + _table(
            ["quantity", "value", "lower", "upper"],
            [(_esc(n), _num(r["value"]), _num(r.get("lower")), _num(r.get("upper"))) for n, r in der.items()]))
    if fit.input_ranges:
        page.add("<h3>Fitted range</h3>" + _table(
            ["column", "min", "max"], [(_esc(c), _num(a), _num(b)) for c, (a, b) in fit.input_ranges.items()]))
    table = data if data is not None else _source_table(fit, tables)
    if table is None:
        msg = ("published constants: no data to draw" if fit.label else
               f"no data table: the fit's source {fit.data.get('source')!r} could not be read; pass --data TABLE")
        page.note(msg, name)
        return
    page.add("<h3>Data and fitted curve</h3>")
    drawn = page.attempt("fit figure", name, lambda: plots.plot_fit(fit, table, title=f"{name}: {law.formula}"))
    if drawn is None:
        return
    if set(law.inputs) == {"N", "D"} and law.optimum is not None:
        page.add("<h3>Loss against compute, with the compute-optimal frontier</h3>")
        page.attempt("compute figure", name, lambda: plots.plot_compute(
            fit, table, compute=plan_compute, title=f"{name}: loss vs compute"))
        page.add("<h3>Compute-optimal N and D</h3>")
        page.attempt("allocation figure", name, lambda: plots.plot_optimum(
            fit, compute=plan_compute, data=table, title=f"{name}: compute-optimal allocation"))
        iso = _isoflop_of(fit, plots.fit_rows(fit, table))
        if iso is not None:
            page.add("<h3>IsoFLOP profiles (Chinchilla's approach 2 on the same runs)</h3>")
            page.attempt("IsoFLOP figure", name, lambda: plots.plot_isoflop(iso, compute=plan_compute))
    page.add("<h3>Residuals</h3>")
    page.attempt("residual figure", name, lambda: plots.plot_residuals(fit, table, title=f"{name}: residuals"))
    if backtest and not fit.label:
        page.add("<h3>Backtest: fit small, predict large</h3>")
        try:
            bt = run_backtest(fit, plots.fit_rows(fit, table) if law.prepare is None else table, train)
        except Exception as exc:
            page.note(f"backtest not run: {exc}", name)
            return
        if not bt["converged"] or not bt["identified"]:
            page.note(f"backtest: the refit on {bt['n_train']} runs ({bt['train']}) "
                      + ("did NOT converge" if not bt["converged"] else f"is NOT IDENTIFIED: {bt['problems'][0]}")
                      + "; its errors are not reliable", name)
        lvl = int(round(100 * bt["level"]))
        cover = f"{100 * bt['coverage']:.0f}% inside the {lvl}% prediction band"
        if poor_coverage(bt):
            cover = f"<span class='bad'>{cover}: poor coverage, the bands are too narrow for these runs</span>"
            page.warnings.append(f"{name}: backtest coverage {100 * bt['coverage']:.0f}% of {bt['n_test']} held-out "
                                 f"runs inside the {lvl}% band")
        page.add(f"<p>Refit on {bt['n_train']} runs ({_esc(bt['train'])}), predicted the other {bt['n_test']}: "
                 f"mean |relative error| <b>{100 * bt['mean_rel_error']:.2f}%</b>, max "
                 f"{100 * bt['max_rel_error']:.2f}%, {cover}.</p>")
        page.attempt("parity figure", name, lambda: plots.plot_backtest_parity(bt, law=fit.law))
        page.attempt("backtest figure", name, lambda: plots.plot_backtest(bt, law=fit.law))


def _plan_section(page: _Page, roles: dict, compute: float, level: float):
    from .. import plots
    from .plan import plan, plan_rows

    page.toc.append(("plan", f"plan for C = {compute:.3g} FLOPs"))
    page.add(f"<h2 id='plan'>Plan for C = {compute:.4g} FLOPs</h2>")
    if "loss" not in roles:
        page.note("no loss fit among the fits: a plan needs one (e.g. a chinchilla fit)", "plan")
        return None
    kw = {"loss_fit": roles["loss"][1]}
    for role, arg in (("lr", "lr_fit"), ("batch_tokens", "bs_fit"), ("error", "downstream_fit")):
        if role in roles:
            kw[arg] = roles[role][1]
    try:
        res = plan(compute=compute, level=level, **kw)
    except ScalelawError as exc:
        page.note(f"plan not computed: {exc}", "plan")
        return None
    used = ", ".join(f"{role}: {_esc(n)}" for role, (n, _) in roles.items())
    lvl = int(round(100 * level))
    page.add(f"<p>Fits used &mdash; {used}. Split: {_esc(res['mode'])}; {lvl}% intervals propagate every "
             "fit's parameter draws jointly.</p>")
    page.add(_table(["quantity", "value", f"{lvl}% lower", f"{lvl}% upper"],
                    [(_esc(l), _num(v), _num(lo), _num(hi)) for l, v, lo, hi in plan_rows(res)]))
    ex = res.get("extrapolation") or {}
    rows = [(_esc(role), _esc(c), f"{fac:.3g}x") for role, facs in ex.items() for c, fac in facs.items()]
    if rows:
        page.add("<h3>Extrapolation beyond each fit's data</h3>" + _table(["fit", "input", "factor"], rows))
    for w in res["warnings"]:
        page.add(f"<div class='warn'>{_esc(w)}</div>")
    page.warnings.extend(f"plan: {w}" for w in res["warnings"])
    if {"N", "D"} <= set(roles["loss"][1].law.inputs) and res.get("N"):
        page.attempt("plan figure", "plan", lambda: plots.plot_plan(res, roles["loss"][1]))
    return res


PLOTLY_JS = ("inline", "cdn")


def _plotly_script(how: str) -> str:
    """The page's plotly.js: embedded (opens offline) or loaded from plotly's CDN, in the version
    this plotly.py bundles (what its figure JSON is written for)."""
    import plotly

    if how == "cdn":
        from plotly.io._utils import plotly_cdn_url

        return f"<script type='text/javascript' src='{_esc(plotly_cdn_url())}' charset='utf-8'></script>\n"
    from plotly.offline import get_plotlyjs

    return (f"<script type='text/javascript'>/* plotly.js {plotly.__version__} (bundled by plotly.py) */\n"
            f"{get_plotlyjs()}</script>")


def build_report(fits: Sequence, data: pd.DataFrame | None = None, *, plan_compute: float | None = None,
                 train: str | None = None, backtest: bool = True, title: str = "scalelaw report",
                 level: float | None = None, progress: bool | None = None,
                 plotly_js: str = "inline") -> tuple[str, dict]:
    """The report page as an HTML string, and a dict describing it.

    fits: Fit objects, (name, Fit) pairs, fit JSON paths or published fit names.
    data: the run table for the figures (default: each fit's recorded source when readable).
    plan_compute: add the plan for this budget, using the fits by role (loss / lr / batch / error).
    train: backtest split (filter expression, scalelaw.expr, of the rows to fit on); default the
        split by compute of scalelaw.predict.default_split. backtest=False skips the backtests
        (each refits the law).
    plotly_js: "inline" (the default: plotly's JavaScript in the page, which opens offline) or
        "cdn" (a script tag loading it from plotly's CDN: a page ~4.5 MB smaller that needs the
        network to draw its figures).
    """
    from .. import __version__
    from ..progress import Progress

    if plotly_js not in PLOTLY_JS:
        raise ScalelawError(f"--plotly must be one of {', '.join(PLOTLY_JS)}; got {plotly_js!r}")
    if not fits:
        raise ScalelawError("give at least one fit to report on")
    loaded = [_load(item, i) for i, item in enumerate(fits)]
    page = _Page()
    bar = Progress(total=len(loaded) + (1 if plan_compute else 0), desc="report", enabled=progress)
    tables: dict = {}     # fits made on the same table read it once
    for k, (name, f) in enumerate(loaded):
        _fit_section(page, k, name, f, data, backtest, train, tables, plan_compute)
        bar.update()
    plan_res = None
    if plan_compute is not None:
        lvl = level or loaded[0][1].level
        plan_res = _plan_section(page, _roles(loaded), float(plan_compute), lvl)
        bar.update()
    bar.close()
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(f"<li><a href='#{a}'>{_esc(t)}</a></li>" for a, t in page.toc)
    head = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta name='generator' content='scalelaw {_esc(__version__)}'>"
            f"<title>{_esc(title)}</title><style>{_CSS}</style>"
            "<script type='text/javascript'>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
            + _plotly_script(plotly_js) + page.template_script() + "</head>\n")
    offline = ("Self-contained: works offline." if plotly_js == "inline" else
               "Figures load plotly.js from its CDN: they need the network.")
    body = (f"<body><main><h1>{_esc(title)}</h1>"
            f"<p class='meta'>scalelaw {_esc(__version__)} &middot; generated {now} &middot; "
            f"{len(loaded)} fit(s){' &middot; plan' if plan_res else ''}. {offline}</p>"
            f"<nav><ul>{toc}</ul></nav>" + "\n".join(page.parts) + "</main></body></html>\n")
    info = {"fits": [{"name": n, "law": f.law.name} for n, f in loaded], "figures": page.n_fig,
            "plan": plan_res, "warnings": page.warnings}
    return head + body, info


def write_report(path, fits: Sequence, data: pd.DataFrame | None = None, *, force: bool = False, **kwargs) -> dict:
    """Build the report and write it atomically to ``path`` (never overwriting without ``force``)."""
    from ..util import atomic_write_text, check_writable

    check_writable(path, force)
    text, info = build_report(fits, data, **kwargs)
    atomic_write_text(path, text, force=force)
    info["output"] = str(path)
    info["bytes"] = len(text.encode("utf-8"))
    return info
