"""Plotly figures from fits: data with fitted curves and interval bands, residuals, backtests, plans.

Every function returns a ``plotly.graph_objects.Figure`` and never calls ``.show()``. They are
generic over laws: the x axis is the law's main (first) input unless ``x=`` says otherwise; rows
are grouped by the secondary input with the fewest distinct values (a ladder's model sizes or
token budgets, an IsoFLOP profile's budget, a tokens-per-parameter ratio), or by quantile bins
of it when every value is distinct; each group gets its own curve, along which the other inputs
follow the group's rows (log-linear in x), so IsoFLOP and fixed-ratio groups come out exact.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from . import expr
from .errors import ScalelawError

_MAX_GROUPS = 12
_BINS = 5
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#393b79", "#637939")


def _go():
    import plotly.graph_objects as go
    return go


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _fmt(v) -> str:
    return f"{v:.3g}"


def fit_rows(fit, data: pd.DataFrame) -> pd.DataFrame:
    """The rows ``fit`` was fitted on: the fit's --where filter and the law's prepare step applied,
    inputs and target numeric. Raises ScalelawError naming missing columns."""
    law = fit.law
    if not isinstance(data, pd.DataFrame):
        raise ScalelawError("data must be a run table (pandas DataFrame); load files with scalelaw.io.load_table")
    df = data
    where = (fit.data or {}).get("filter") or (fit.settings or {}).get("where")
    if where:
        try:
            df = expr.select(df, where, "the fit's filter")
        except ScalelawError:
            pass  # the fit's filter may name columns this table lacks: show every row
    if law.prepare is None and (fit.settings or {}).get("best_per_cell"):
        from .fit import _several_runs_per_cell

        df = _several_runs_per_cell(law, df, data.attrs.get("source", "the data table"), True)[0]
    if law.prepare is not None:
        attrs = dict(df.attrs)
        try:
            df = law.prepare(df, **law.check_options((fit.settings or {}).get("prepare_options")))
        except ScalelawError:
            raise
        except Exception as exc:  # a prepare step failing on a foreign table
            raise ScalelawError(f"law {law.name!r} could not prepare the data table: {exc}; "
                                "pass the table the fit was made on (--data)") from None
        df.attrs.update({k: v for k, v in attrs.items() if k not in df.attrs})
    need = list(law.inputs) + [law.target]
    missing = [c for c in need if c not in df.columns]
    if missing:
        src = data.attrs.get("source", "the data table")
        raise ScalelawError(f"law {law.name!r} needs column(s) {', '.join(missing)} but {src} has "
                            f"{', '.join(map(str, df.columns[:12]))}; pass the table the fit was made on (--data)")
    out = _finite_rows(df, need)
    if len(out) == 0:
        raise ScalelawError(f"no rows of the data table have finite {', '.join(need)}")
    return out


def _finite_rows(df: pd.DataFrame, cols) -> pd.DataFrame:
    """A copy of ``df`` with ``cols`` numeric, keeping the rows where all of them are finite."""
    out = df.copy()
    for c in cols:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    return out[np.all(np.isfinite(out[list(cols)].to_numpy(dtype=float)), axis=1)]


def _log_axis(v: np.ndarray, law=None) -> bool:
    """Log scale for positive values spanning a decade, or any positive spread of a power law's
    inputs and target (the hyperparameter laws: lr, batch size against N and D)."""
    return _positive_spread(v, 10.0) or (law is not None and law.family == "hparams" and _positive_spread(v, 1.5))


def _positive_spread(v: np.ndarray, ratio: float = 20.0) -> bool:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size and np.all(v > 0) and v.max() / v.min() >= ratio)


def _candidates(fit, df: pd.DataFrame, x: str) -> dict:
    law = fit.law
    cands = {}
    for c in law.inputs:
        if c != x:
            cands[c] = df[c].to_numpy(dtype=float)
    if "C" in df.columns and "C" != x and "C" not in cands:
        cands["C"] = pd.to_numeric(df["C"], errors="coerce").to_numpy(dtype=float)
    if "N" in law.inputs and "D" in law.inputs and x in ("N", "D"):
        with np.errstate(all="ignore"):
            cands["tokens_per_param"] = df["D"].to_numpy(dtype=float) / df["N"].to_numpy(dtype=float)
    return {k: v for k, v in cands.items() if np.all(np.isfinite(v))}


def _keys(v: np.ndarray) -> np.ndarray:
    """Values rounded to ~1% (log space when positive) so near-equal settings group together."""
    if np.all(v > 0):
        return np.round(np.log10(v), 2)
    return np.round(v, 6)


def choose_grouping(fit, df: pd.DataFrame, x: str | None = None, group: str | None = None):
    """(x, group column or None, group labels per row (array) or None)."""
    law = fit.law
    x = x or law.inputs[0]
    if x not in df.columns:
        raise ScalelawError(f"x axis {x!r} is not a column of the data; choose one of {', '.join(law.inputs)}")
    if len(law.inputs) == 1 and group is None:
        return x, None, None
    cands = _candidates(fit, df, x)
    if group is not None:
        if group not in cands and group in df.columns:
            cands[group] = pd.to_numeric(df[group], errors="coerce").to_numpy(dtype=float)
        if group not in cands:
            raise ScalelawError(f"group {group!r} is not a column of the data ({', '.join(map(str, df.columns[:12]))})")
        order = [group]
    else:
        order = sorted(cands, key=lambda c: len(np.unique(_keys(cands[c]))))
    for c in order:
        k = _keys(cands[c])
        n = len(np.unique(k))
        if 2 <= n <= _MAX_GROUPS or (group is not None and n <= _MAX_GROUPS):
            med = pd.Series(cands[c]).groupby(k).median()
            labels = np.array([_label(c, med[kk]) for kk in k])
            return x, c, _ordered(labels, cands[c])
    if not order:
        return x, None, None
    # every value distinct: quantile bins. Of the candidates (and bin counts), keep the grouping
    # whose curves pass closest to their own runs: bins of a column the curve cannot follow
    # (e.g. decade-wide D bins of an IsoFLOP-shaped table) draw curves far from the points
    best = None
    for c in ([group] if group is not None else order):
        v = cands[c]
        if len(np.unique(v)) < 2:
            continue
        for bins in _BIN_CHOICES:
            labels = _binned(c, v, bins)
            miss = _misfit(fit, df, x, labels)
            if best is None or miss < best[0] - 1e-12:
                best = (miss, c, labels)
    if best is None:
        return x, None, None
    return x, best[1], best[2]


_BIN_CHOICES = (_BINS, 8)


def _binned(c: str, v: np.ndarray, bins: int) -> pd.Categorical:
    """Labels of ``bins`` quantile bins of ``v`` (in logs when positive), ordered by value."""
    t = np.log(v) if np.all(v > 0) else v
    q = np.quantile(t, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(q, t, side="right") - 1, 0, bins - 1)
    conv = (lambda z: math.exp(z)) if np.all(v > 0) else (lambda z: z)
    labels = np.array([f"{c} {_fmt(conv(q[i]))}-{_fmt(conv(q[i + 1]))}" for i in idx])
    return _ordered(labels, v)


def _misfit(fit, df: pd.DataFrame, x: str, labels) -> float:
    """The worst group's mean |ln y - ln curve| (|y - curve| when not positive): how far the runs
    of a group lie from the curve drawn for them (one group whose curve misses its runs is
    what makes a figure look like a failed fit)."""
    law = fit.law
    if x not in law.inputs:
        return math.inf
    y = df[law.target].to_numpy(dtype=float)
    worst = 0.0
    for g in labels.categories:
        m = np.asarray(labels == g)
        if not m.any():
            continue
        rows = df[m]
        Xc = _curve_inputs(fit, rows, x, rows[x].to_numpy(dtype=float))
        pred = np.asarray(law.evaluate({c: Xc[c].to_numpy() for c in law.inputs}, fit.params), dtype=float) * np.ones(m.sum())
        with np.errstate(all="ignore"):
            e = np.abs(np.log(pred) - np.log(y[m])) if np.all(y > 0) else np.abs(pred - y[m])
        if not np.isfinite(e).any():
            return math.inf
        worst = max(worst, float(np.nanmean(e)))
    return worst


def _label(col: str, value: float) -> str:
    name = {"tokens_per_param": "D/N"}.get(col, col)
    return f"{name}={_fmt(value)}"


def _ordered(labels: np.ndarray, values: np.ndarray) -> pd.Categorical:
    order = pd.Series(values).groupby(labels).median().sort_values().index.tolist()
    return pd.Categorical(labels, categories=order, ordered=True)


def _curve_inputs(fit, rows: pd.DataFrame, x: str, xs: np.ndarray) -> pd.DataFrame:
    """Inputs along a curve over ``xs`` following the group's rows (each other input log-linear in x)."""
    law = fit.law
    out = {x: xs} if x in law.inputs else {}
    xv = rows[x].to_numpy(dtype=float)
    logx = np.all(xv > 0) and np.all(xs > 0)
    tx = np.log(xv) if logx else xv
    txs = np.log(xs) if logx else xs
    for c in law.inputs:
        if c == x:
            continue
        v = rows[c].to_numpy(dtype=float)
        logv = np.all(v > 0)
        tv = np.log(v) if logv else v
        if len(np.unique(tx)) >= 2 and np.ptp(tv) > 0:
            slope, icpt = np.polyfit(tx, tv, 1)
            pv = icpt + slope * txs
        else:
            pv = np.full(xs.shape, np.mean(tv))
        out[c] = np.exp(pv) if logv else pv
    return pd.DataFrame(out)


def _xgrid(v: np.ndarray, n: int, log: bool, pad: float = 0.08) -> np.ndarray:
    lo, hi = float(np.min(v)), float(np.max(v))
    if log:
        a, b = math.log(lo), math.log(hi)
        span = max(b - a, 1e-9)
        return np.exp(np.linspace(a - pad * span, b + pad * span, n))
    span = max(hi - lo, 1e-12 * max(abs(hi), 1.0))
    return np.linspace(lo - pad * span, hi + pad * span, n)


def _axis_title(col: str) -> str:
    return {"N": "N (parameters)", "D": "D (tokens)", "C": "C (FLOPs)", "loss": "loss (nats/token)",
            "lr": "learning rate", "batch_tokens": "batch size (tokens)"}.get(col, col)


def _excluded_rows(fit, data: pd.DataFrame, used: pd.DataFrame) -> pd.DataFrame | None:
    """Rows of ``data`` left out by the fit's --where filter or prepare step (when rows keep their index)."""
    law = fit.law
    if not set(law.inputs + (law.target,)) <= set(data.columns):
        return None
    if not data.index.is_unique or not used.index.isin(data.index).all():
        return None   # a prepare step that rebuilt the rows (e.g. sweep -> plateau cells)
    return _finite_rows(data.loc[~data.index.isin(used.index)], list(law.inputs) + [law.target])


def plot_fit(fit, data: pd.DataFrame, x: str | None = None, group: str | None = None,
             level: float | None = None, n_curve: int = 80, title: str | None = None, band: bool = True,
             show_excluded: bool = True):
    """Data with the fitted curve and its interval band against the law's main input.

    One colour per group of the secondary input (see the module docstring). Laws with more than
    three inputs are drawn as predicted against observed. ``band`` draws the interval of the
    fitted curve (bootstrap or delta method, at ``level``).
    """
    go = _go()
    law = fit.law
    if len(law.inputs) > 3 and x is None:
        return plot_parity(fit, data, title=title)     # it selects the fitted rows itself
    df = fit_rows(fit, data)
    x, gcol, labels = choose_grouping(fit, df, x, group)
    xv = df[x].to_numpy(dtype=float)
    y = df[law.target].to_numpy(dtype=float)
    logx = _log_axis(xv, law)
    logy = _log_axis(y, law)
    fig = go.Figure()
    groups = [(None, np.ones(len(df), dtype=bool))] if labels is None else [
        (g, np.asarray(labels == g)) for g in labels.categories if np.any(labels == g)]
    lvl = int(round(100 * (level or fit.level)))
    excluded = _excluded_rows(fit, data, df) if show_excluded else None
    if excluded is not None and len(excluded):
        fig.add_trace(go.Scatter(x=excluded[x], y=excluded[law.target], mode="markers", name="not in the fit",
                                 marker=dict(color="rgba(120,120,120,0.55)", size=6, symbol="circle-open"),
                                 text=excluded["run"].astype(str).tolist() if "run" in excluded.columns else None))
    banded = False
    for i, (g, m) in enumerate(groups):
        color = _PALETTE[i % len(_PALETTE)]
        rows = df[m]
        name = g if g is not None else "data"
        hover = None
        if "run" in rows.columns:
            hover = rows["run"].astype(str).tolist()
        fig.add_trace(go.Scatter(x=rows[x], y=rows[law.target], mode="markers", name=name, legendgroup=str(i),
                                 marker=dict(color=color, size=7, line=dict(width=0.5, color="white")),
                                 text=hover))
        if x not in law.inputs:
            continue
        xs = _xgrid(rows[x].to_numpy(dtype=float) if len(rows) > 1 else xv, n_curve, logx)
        Xc = _curve_inputs(fit, rows, x, xs)
        pred = fit.predict(Xc, level=level)
        if band and np.all(np.isfinite(pred["lower"])):
            fig.add_trace(go.Scatter(
                x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([pred["upper"], pred["lower"][::-1]]),
                fill="toself", fillcolor=_rgba(color, 0.18), line=dict(width=0), hoverinfo="skip",
                # one legend entry for every group's band (it shows or hides them all)
                name=f"{lvl}% interval of the curve", legendgroup="bands", showlegend=not banded,
                legendrank=1001))   # listed after the groups
            banded = True
        fig.add_trace(go.Scatter(x=xs, y=pred["mean"], mode="lines", line=dict(color=color, width=2),
                                 name=f"fit {name}" if g is not None else "fit", legendgroup=str(i),
                                 showlegend=g is None))
    fig.update_layout(title=title or f"{law.name}: {law.formula}", template="plotly_white",
                      xaxis_title=_axis_title(x), yaxis_title=_axis_title(law.target),
                      legend_title_text=_label(gcol, float("nan")).split("=")[0] if gcol else None,
                      margin=dict(l=60, r=20, t=50, b=50), height=430)
    if logx:
        fig.update_xaxes(type="log", exponentformat="power")
    if logy:
        fig.update_yaxes(type="log")
    return fig


def plot_parity(fit, data: pd.DataFrame, title: str | None = None):
    """Predicted against observed target, with the curve interval as error bars."""
    go = _go()
    law = fit.law
    df = fit_rows(fit, data)
    pred = fit.predict(df[list(law.inputs)])
    y = df[law.target].to_numpy(dtype=float)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=y, y=pred["mean"], mode="markers", name="runs",
                             error_y=dict(type="data", symmetric=False,
                                          array=(pred["upper"] - pred["mean"]).to_numpy(),
                                          arrayminus=(pred["mean"] - pred["lower"]).to_numpy())))
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="grey", dash="dash"),
                             name="y = x"))
    fig.update_layout(title=title or f"{law.name}: predicted vs observed", template="plotly_white",
                      xaxis_title=f"observed {_axis_title(law.target)}", yaxis_title=f"predicted {_axis_title(law.target)}",
                      height=430)
    if _log_axis(y, law):
        fig.update_xaxes(type="log")
        fig.update_yaxes(type="log")
    return fig


def residuals(fit, data: pd.DataFrame) -> pd.DataFrame:
    """The fitted rows with ``pred`` and ``residual`` (ln pred - ln y for log objectives, else pred - y)."""
    law = fit.law
    df = fit_rows(fit, data)
    X = {c: df[c].to_numpy(dtype=float) for c in law.inputs}
    pred = np.asarray(law.evaluate(X, fit.params), dtype=float) * np.ones(len(df))
    y = df[law.target].to_numpy(dtype=float)
    with np.errstate(all="ignore"):
        r = np.log(pred) - np.log(y) if fit.log_residuals else pred - y
    out = df.copy()
    out["pred"] = pred
    out["residual"] = r
    return out


def plot_residuals(fit, data: pd.DataFrame, x: str | None = None, group: str | None = None,
                   title: str | None = None):
    """Residuals of the fit against the law's main input, coloured as in :func:`plot_fit`, with the
    zero line and +-2 residual standard deviations."""
    go = _go()
    law = fit.law
    df = residuals(fit, data)
    x, gcol, labels = choose_grouping(fit, df, x, group)
    logx = _log_axis(df[x].to_numpy(dtype=float), law)
    fig = go.Figure()
    groups = [(None, np.ones(len(df), dtype=bool))] if labels is None else [
        (g, np.asarray(labels == g)) for g in labels.categories if np.any(labels == g)]
    for i, (g, m) in enumerate(groups):
        rows = df[m]
        fig.add_trace(go.Scatter(x=rows[x], y=rows["residual"], mode="markers", name=g or "runs",
                                 marker=dict(color=_PALETTE[i % len(_PALETTE)], size=7),
                                 text=rows["run"].astype(str).tolist() if "run" in rows.columns else None))
    fig.add_hline(y=0, line=dict(color="black", width=1))
    sd = (fit.diagnostics or {}).get("residual_sd")
    if sd:
        for s in (-2, 2):
            fig.add_hline(y=s * sd, line=dict(color="grey", width=1, dash="dot"))
    kind = "ln(pred) - ln(observed)" if fit.log_residuals else "pred - observed"
    fig.update_layout(title=title or f"{law.name}: residuals", template="plotly_white",
                      xaxis_title=_axis_title(x), yaxis_title=kind, height=360,
                      margin=dict(l=60, r=20, t=50, b=50))
    if logx:
        fig.update_xaxes(type="log", exponentformat="power")
    return fig


def plot_backtest(result: Mapping, x: str | None = None, title: str | None = None, law=None):
    """Relative error of each held-out run (from :func:`scalelaw.predict.backtest`), with the
    prediction band as error bars, against compute (C, or 6ND) when known, else the law's main input.
    ``law``: the Law when it is not registered (a formula law); default: looked up by name."""
    go = _go()
    from .law import get_law

    law = law if law is not None else get_law(result["law"])
    rows = pd.DataFrame(result["rows"])
    if len(rows) == 0:
        raise ScalelawError("the backtest has no held-out rows to draw")
    xlabel = None
    if x is None and "C" not in rows.columns and {"N", "D"} <= set(rows.columns):
        rows["C"] = 6.0 * rows["N"].astype(float) * rows["D"].astype(float)   # backtests split by compute
        x, xlabel = "C", "C = 6ND (FLOPs)"
    x = x or ("C" if "C" in rows.columns else law.inputs[0])
    actual = rows["actual"].to_numpy(dtype=float)
    rel = 100 * rows["rel_error"].to_numpy(dtype=float)
    up = 100 * (rows["pred_upper"].to_numpy(dtype=float) - actual) / actual - rel
    dn = rel - 100 * (rows["pred_lower"].to_numpy(dtype=float) - actual) / actual
    inside = (actual >= rows["pred_lower"]) & (actual <= rows["pred_upper"])
    fig = go.Figure()
    for flag, name, color in ((True, "inside prediction band", "#2ca02c"), (False, "outside", "#d62728")):
        m = np.asarray(inside == flag)
        if not m.any():
            continue
        fig.add_trace(go.Scatter(
            x=rows.loc[m, x], y=rel[m], mode="markers", name=name, marker=dict(color=color, size=8),
            error_y=dict(type="data", symmetric=False, array=up[m], arrayminus=dn[m], thickness=1),
            text=rows.loc[m, "run"].astype(str).tolist() if "run" in rows.columns else None))
    fig.add_hline(y=0, line=dict(color="black", width=1))
    head = (f"backtest {law.name}: fit on {result['n_train']} runs ({result['train']}), predict {result['n_test']}; "
            f"mean |error| {100 * result['mean_rel_error']:.2f}%, max {100 * result['max_rel_error']:.2f}%")
    fig.update_layout(title=dict(text=title or head, font=dict(size=13)), template="plotly_white",
                      xaxis_title=xlabel or _axis_title(x), yaxis_title="relative error (%)", height=380,
                      margin=dict(l=60, r=20, t=60, b=50))
    if _positive_spread(rows[x].to_numpy(dtype=float), 3.0):
        fig.update_xaxes(type="log", exponentformat="power")
    return fig


def _fitted_range(fig, rng, x_lo: float, x_hi: float, col: str, row=None, col_idx=None, label: bool = True):
    """Shade the part of a fit's range of ``col`` that lies on a log x axis spanning
    [x_lo, x_hi] (nothing when they do not overlap: a shape outside the data would stretch the
    axis to itself), with its label inside the shading and a legend entry. Shapes take data
    values on a log axis, annotations log10 of them."""
    if not rng or rng[0] is None or rng[1] is None:
        return False
    a, b = max(float(rng[0]), x_lo), min(float(rng[1]), x_hi)
    if not a < b:
        return False
    kw = {} if row is None else {"row": row, "col": col_idx}
    fig.add_vrect(x0=a, x1=b, fillcolor="grey", opacity=0.12, line_width=0, layer="below", **kw)
    if label:
        xref = "x" if row is None or (row, col_idx) == (1, 1) else f"x{(row - 1) * 2 + col_idx}"
        fig.add_annotation(x=math.log10(a), y=1, xref=xref, yref=f"{xref.replace('x', 'y')} domain",
                           text=f"fitted {col} range", showarrow=False, xanchor="left", yanchor="top",
                           font=dict(size=11, color="#555"))
        go = _go()
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"fitted {col} range",
                                 marker=dict(symbol="square", size=12, color="rgba(128,128,128,0.3)"),
                                 hoverinfo="skip"), **kw)
    return True


def plot_plan(result: Mapping, loss_fit, span_decades: float = 1.5, n: int = 121, title: str | None = None):
    """The loss along the plan's IsoFLOP line (D = C/(6N)) with its interval band, the planned N
    marked with its interval (from :func:`scalelaw.analysis.plan.plan`)."""
    go = _go()
    law = loss_fit.law
    C, N = result.get("C"), result.get("N")
    if C is None or N is None or not {"N", "D"} <= set(law.inputs):
        raise ScalelawError(f"a plan figure needs a loss law on N and D; {law.name!r} has inputs {', '.join(law.inputs)}")
    Ns = np.geomspace(N / 10 ** span_decades, N * 10 ** span_decades, n)
    X = pd.DataFrame({"N": Ns, "D": C / (6.0 * Ns)})
    for c in law.inputs:
        if c not in X:
            if c == "C":
                X[c] = C
            elif c in ("M", "tokens_per_param"):
                X[c] = X["D"] / X["N"]
    pred = loss_fit.predict(X)
    lvl = int(round(100 * result.get("level", 0.95)))
    fig = go.Figure()
    if np.all(np.isfinite(pred["lower"])):
        fig.add_trace(go.Scatter(x=np.concatenate([Ns, Ns[::-1]]),
                                 y=np.concatenate([pred["upper"], pred["lower"][::-1]]), fill="toself",
                                 fillcolor=_rgba(_PALETTE[0], 0.18), line=dict(width=0), hoverinfo="skip",
                                 name=f"{lvl}% interval"))
    fig.add_trace(go.Scatter(x=Ns, y=pred["mean"], mode="lines", line=dict(color=_PALETTE[0], width=2),
                             name=f"loss at C={C:.3g}"))
    err = None
    if result.get("N_lower") is not None and result.get("N_upper") is not None:
        err = dict(type="data", symmetric=False, array=[result["N_upper"] - N], arrayminus=[N - result["N_lower"]])
    fig.add_trace(go.Scatter(x=[N], y=[result["loss"]], mode="markers", name="plan",
                             marker=dict(color=_PALETTE[3], size=11, symbol="diamond"), error_x=err))
    _fitted_range(fig, (loss_fit.input_ranges or {}).get("N"), Ns[0], Ns[-1], "N")
    fig.update_layout(title=title or f"plan: loss along the IsoFLOP line C = {C:.3g} FLOPs",
                      template="plotly_white", xaxis_title=_axis_title("N"), yaxis_title=_axis_title("loss"),
                      height=400, margin=dict(l=60, r=20, t=50, b=50))
    fig.update_xaxes(type="log", exponentformat="power")
    return fig


def design_figure(result: Mapping, title: str | None = None):
    """A run design (:func:`scalelaw.analysis.design.design`) in the (N, D) plane: the candidate
    runs, the runs chosen (sized by their compute), lines of equal compute through the budget
    share, and the target model (or the compute-optimal line of the target budget)."""
    go = _go()
    cand = result.get("candidates") or {}
    N, D = np.asarray(cand.get("N", []), dtype=float), np.asarray(cand.get("D", []), dtype=float)
    chosen = np.asarray(cand.get("chosen", [False] * len(N)), dtype=bool)
    fig = go.Figure()
    if len(N):
        fig.add_trace(go.Scatter(x=N[~chosen], y=D[~chosen], mode="markers", name="candidate runs",
                                 marker=dict(color="#bbbbbb", size=5), hovertemplate="N %{x:.3g}<br>D %{y:.3g}"))
    runs = result.get("runs") or []
    if runs:
        rn = np.array([r["N"] for r in runs])
        rd = np.array([r["D"] for r in runs])
        share = np.array([r["cost_share"] for r in runs])
        size = 8 + 22 * np.sqrt(share / max(share.max(), 1e-300))
        fig.add_trace(go.Scatter(x=rn, y=rd, mode="markers", name="proposed runs",
                                 marker=dict(color=_PALETTE[3], size=size, line=dict(width=1, color="white")),
                                 customdata=100 * share,
                                 hovertemplate="N %{x:.3g}<br>D %{y:.3g}<br>%{customdata:.1f}% of the budget"))
    tgt = result.get("target") or {}
    if "N" in tgt and "D" in tgt:
        fig.add_trace(go.Scatter(x=[tgt["N"]], y=[tgt["D"]], mode="markers", name="target model",
                                 marker=dict(color=_PALETTE[0], size=14, symbol="star")))
    lo = min([v for v in (N.min() if len(N) else None, tgt.get("N")) if v is not None] or [1.0])
    hi = max([v for v in (N.max() if len(N) else None, tgt.get("N")) if v is not None] or [10.0])
    xs = np.geomspace(lo, hi, 50)
    for m in (20.0,):
        fig.add_trace(go.Scatter(x=xs, y=m * xs, mode="lines", name=f"{m:g} tokens per parameter",
                                 line=dict(color="#888888", dash="dot", width=1), hoverinfo="skip"))
    lvl = int(round(100 * result.get("level", 0.95)))
    b, a = (result.get("before") or {}), (result.get("after") or {})
    sub = (f"expected {lvl}% width at the target: {100 * b['relative_width']:.3g}% -> {100 * a['relative_width']:.3g}%"
           if "relative_width" in b and "relative_width" in a else "")
    fig.update_layout(title=title or f"run design for {result.get('quantity', 'the target')}<br><sub>{sub}</sub>",
                      template="plotly_white", xaxis_title=_axis_title("N"), yaxis_title=_axis_title("D"),
                      height=460, margin=dict(l=60, r=20, t=70, b=50))
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def _compute_of(df: pd.DataFrame) -> np.ndarray:
    """Training compute per row: C when every row has it, else 6ND."""
    if "C" in df.columns:
        c = pd.to_numeric(df["C"], errors="coerce").to_numpy(dtype=float)
        if np.all(np.isfinite(c) & (c > 0)):
            return c
    return 6.0 * df["N"].to_numpy(dtype=float) * df["D"].to_numpy(dtype=float)


def _needs_allocation(fit, what: str) -> None:
    law = fit.law
    if set(law.inputs) != {"N", "D"} or law.optimum is None:
        raise ScalelawError(f"{what} needs a loss law of N and D with a compute-optimal allocation (e.g. chinchilla); "
                            f"{law.name!r} has inputs {', '.join(law.inputs)}"
                            + ("" if law.optimum is not None else " and no optimum"))


def _size_groups(N: np.ndarray, bins: int = 8):
    """(labels per row, representative N per label): one group per model size (to ~1%) when
    there are at most 12, else ``bins`` quantile bins of ln N represented by their median."""
    k = np.round(np.log10(N), 2)
    if len(np.unique(k)) <= _MAX_GROUPS:
        med = pd.Series(N).groupby(k).median()
        labels = np.array([_label("N", med[v]) for v in k])
        rep = {_label("N", m): float(m) for m in med}
    else:
        labels = np.asarray(_binned("N", N, bins)).astype(str)
        rep = {g: float(np.median(N[labels == g])) for g in np.unique(labels)}
    return _ordered(labels, N), rep


def _frontier(fit, Cgrid: np.ndarray, level) -> pd.DataFrame:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit.optimum(compute=np.asarray(Cgrid, dtype=float), level=level)


def plot_compute(fit, data: pd.DataFrame, compute: float | None = None, level: float | None = None,
                 title: str | None = None, n: int = 60):
    """Loss against training compute on log-log axes: the runs coloured by model size, the
    fitted loss curve of each model size (D = C / 6N), and the compute-optimal frontier (the
    law's optimum at each budget) with its interval band, extended to ``compute`` (the planned
    budget, marked with its interval) beyond the runs (dashed)."""
    go = _go()
    law = fit.law
    _needs_allocation(fit, "a loss-vs-compute figure")
    df = fit_rows(fit, data)
    C = _compute_of(df)
    y = df[law.target].to_numpy(dtype=float)
    labels, rep = _size_groups(df["N"].to_numpy(dtype=float))
    lvl = int(round(100 * (level or fit.level)))
    fig = go.Figure()
    for i, g in enumerate(labels.categories):
        m = np.asarray(labels == g)
        if not m.any():
            continue
        color = _PALETTE[i % len(_PALETTE)]
        fig.add_trace(go.Scatter(x=C[m], y=y[m], mode="markers", name=str(g), legendgroup=str(g),
                                 marker=dict(color=color, size=7, line=dict(width=0.5, color="white")),
                                 text=df.loc[m, "run"].astype(str).tolist() if "run" in df.columns else None))
        Nr = rep[str(g)]
        Cs = np.geomspace(C[m].min() / 1.6, C[m].max() * 1.6, 40)
        curve = np.asarray(law.evaluate({"N": np.full(Cs.shape, Nr), "D": Cs / (6.0 * Nr)}, fit.params), dtype=float)
        fig.add_trace(go.Scatter(x=Cs, y=curve * np.ones_like(Cs), mode="lines", legendgroup=str(g), showlegend=False,
                                 line=dict(color=color, width=1.2), name=f"fit N={_fmt(Nr)}", hoverinfo="skip"))
    c_hi = max(float(C.max()), float(compute or 0))
    Cg = np.geomspace(float(C.min()) / 1.5, c_hi * 1.5, n)
    opt = _frontier(fit, Cg, level)
    if "loss_lower" in opt and np.all(np.isfinite(opt["loss_lower"])):
        fig.add_trace(go.Scatter(x=np.concatenate([Cg, Cg[::-1]]),
                                 y=np.concatenate([opt["loss_upper"], opt["loss_lower"][::-1]]), fill="toself",
                                 fillcolor="rgba(0,0,0,0.12)", line=dict(width=0), hoverinfo="skip",
                                 name=f"{lvl}% interval of the frontier"))
    inside = Cg <= C.max() * 1.0001
    k = int(inside.sum())
    fig.add_trace(go.Scatter(x=Cg[:k + 1], y=opt["loss"][:k + 1], mode="lines", line=dict(color="black", width=2.5),
                             name="compute-optimal frontier"))
    if k + 1 < len(Cg):
        fig.add_trace(go.Scatter(x=Cg[k:], y=opt["loss"][k:], mode="lines",
                                 line=dict(color="black", width=2.5, dash="dash"), name="frontier beyond the runs"))
    if compute:
        p = fit.optimum(compute=float(compute), level=level)
        err = None
        if "loss_lower" in p:
            err = dict(type="data", symmetric=False, array=[p["loss_upper"] - p["loss"]],
                       arrayminus=[p["loss"] - p["loss_lower"]])
        fig.add_trace(go.Scatter(x=[float(compute)], y=[p["loss"]], mode="markers", error_y=err,
                                 name=f"planned C={_fmt(float(compute))}",
                                 marker=dict(color=_PALETTE[3], size=12, symbol="diamond")))
    fig.update_layout(title=title or f"{law.name}: loss vs compute with the compute-optimal frontier",
                      template="plotly_white", xaxis_title="C (FLOPs)", yaxis_title=_axis_title(law.target),
                      legend_title_text="model size", margin=dict(l=60, r=20, t=50, b=50), height=520)
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log")
    return fig


def plot_optimum(fit, compute: float | None = None, level: float | None = None, data: pd.DataFrame | None = None,
                 title: str | None = None, n: int = 60):
    """Compute-optimal N_opt and D_opt against compute (two log-log panels) with interval bands,
    from the runs' compute (``data``; else the box of the fitted N and D ranges) to ``compute``
    (the planned budget, marked with its intervals); the fitted range of N (of D) shaded."""
    from plotly.subplots import make_subplots

    go = _go()
    law = fit.law
    _needs_allocation(fit, "an N_opt / D_opt figure")
    rng = fit.input_ranges or {}
    if data is not None:
        C = _compute_of(fit_rows(fit, data))
        c_lo, c_hi = float(C.min()), float(C.max())
    elif "N" in rng and "D" in rng:
        c_lo, c_hi = 6.0 * rng["N"][0] * rng["D"][0], 6.0 * rng["N"][1] * rng["D"][1]
    elif compute:
        c_lo, c_hi = float(compute) / 1e4, float(compute)
    else:
        raise ScalelawError("give the data or a compute budget: this fit records no fitted range")
    top = max(c_hi, float(compute or 0))
    Cg = np.geomspace(c_lo / 1.5, top * 1.5, n)
    opt = _frontier(fit, Cg, level)
    lvl = int(round(100 * (level or fit.level)))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("N_opt: parameters", "D_opt: tokens"))
    for j, (key, col) in enumerate((("N_opt", "N"), ("D_opt", "D")), start=1):
        color = _PALETTE[j - 1]
        if f"{key}_lower" in opt and np.all(np.isfinite(opt[f"{key}_lower"])):
            fig.add_trace(go.Scatter(x=np.concatenate([Cg, Cg[::-1]]),
                                     y=np.concatenate([opt[f"{key}_upper"], opt[f"{key}_lower"][::-1]]),
                                     fill="toself", fillcolor=_rgba(color, 0.2), line=dict(width=0), hoverinfo="skip",
                                     name=f"{lvl}% interval of {key}"), row=1, col=j)
        fig.add_trace(go.Scatter(x=Cg, y=opt[key], mode="lines", line=dict(color=color, width=2.5), name=key),
                      row=1, col=j)
        r = rng.get(col)
        if r:
            fig.add_hrect(y0=r[0], y1=r[1], fillcolor="grey", opacity=0.10, line_width=0, layer="below", row=1, col=j)
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"fitted {col} range",
                                     marker=dict(symbol="square", size=12, color="rgba(128,128,128,0.3)"),
                                     hoverinfo="skip"), row=1, col=j)
        if compute:
            p = fit.optimum(compute=float(compute), level=level)
            err = None
            if f"{key}_lower" in p:
                err = dict(type="data", symmetric=False, array=[p[f"{key}_upper"] - p[key]],
                           arrayminus=[p[key] - p[f"{key}_lower"]])
            fig.add_trace(go.Scatter(x=[float(compute)], y=[p[key]], mode="markers", error_y=err,
                                     marker=dict(color=_PALETTE[3], size=11, symbol="diamond"),
                                     name=f"planned {key} = {_fmt(p[key])}"), row=1, col=j)
        fig.update_xaxes(type="log", exponentformat="power", title_text="C (FLOPs)", row=1, col=j)
        fig.update_yaxes(type="log", exponentformat="power", title_text=_axis_title(col), row=1, col=j)
    fig.update_layout(title=title or f"{law.name}: compute-optimal allocation", template="plotly_white",
                      margin=dict(l=60, r=20, t=70, b=50), height=420)
    return fig


def plot_isoflop(result, compute: float | None = None, title: str | None = None, n: int = 60):
    """An IsoFLOP analysis (scalelaw.analysis.isoflop): left, the loss of each budget's runs
    against N with the fitted polynomial in ln N and its minimum; right, the minima's N_opt
    against C with the fitted N_opt = k C^a and its interval band, extended to ``compute``."""
    from plotly.subplots import make_subplots

    go = _go()
    runs = getattr(result, "runs", None)
    if runs is None or not len(runs):
        raise ScalelawError("this IsoFLOP result carries no runs to draw; rerun scalelaw.analysis.isoflop.isoflop")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.1,
                        subplot_titles=("loss per budget, fitted minima", "N_opt against compute"))
    for i, b in enumerate(result.budgets):
        color = _PALETTE[i % len(_PALETTE)]
        m = np.isclose(runs["budget"].to_numpy(dtype=float), b.C, rtol=1e-9)
        name = f"C={_fmt(b.C)}"
        fig.add_trace(go.Scatter(x=runs.loc[m, "N"], y=runs.loc[m, "loss"], mode="markers", name=name,
                                 legendgroup=name, marker=dict(color=color, size=7)), row=1, col=1)
        xs = np.linspace(math.log(b.N_range[0]) - 0.15, math.log(b.N_range[1]) + 0.15, n)
        fig.add_trace(go.Scatter(x=np.exp(xs), y=np.polyval(b.coef, xs - b.centre), mode="lines", legendgroup=name,
                                 showlegend=False, line=dict(color=color, width=1.5), hoverinfo="skip"), row=1, col=1)
        fig.add_trace(go.Scatter(x=[b.N_opt], y=[b.loss_opt], mode="markers", legendgroup=name, showlegend=i == 0,
                                 name="fitted minimum", marker=dict(color="black" if b.bracketed else "red", size=11,
                                                                   symbol="star", line=dict(width=1, color="white"))),
                      row=1, col=1)
    Cb = np.array([b.C for b in result.budgets])
    top = max(Cb.max(), float(compute or 0))
    Cg = np.geomspace(Cb.min() / 1.5, top * 1.5, n)
    pred = pd.DataFrame(result.predict(Cg))
    lvl = int(round(100 * result.level))
    if "N_opt_lower" in pred:
        fig.add_trace(go.Scatter(x=np.concatenate([Cg, Cg[::-1]]),
                                 y=np.concatenate([pred["N_opt_upper"], pred["N_opt_lower"][::-1]]), fill="toself",
                                 fillcolor="rgba(0,0,0,0.12)", line=dict(width=0), hoverinfo="skip",
                                 name=f"{lvl}% interval of N_opt"), row=1, col=2)
    fig.add_trace(go.Scatter(x=Cg, y=pred["N_opt"], mode="lines", line=dict(color="black", width=2),
                             name=f"N_opt = {result.k:.3g} C^{result.a:.3f}"), row=1, col=2)
    fig.add_trace(go.Scatter(x=Cb, y=[b.N_opt for b in result.budgets], mode="markers", name="budget minima",
                             marker=dict(color=[_PALETTE[i % len(_PALETTE)] for i in range(len(Cb))], size=10,
                                         symbol="star")), row=1, col=2)
    if compute:
        p = result.predict([float(compute)])[0]
        err = None
        if "N_opt_lower" in p:
            err = dict(type="data", symmetric=False, array=[p["N_opt_upper"] - p["N_opt"]],
                       arrayminus=[p["N_opt"] - p["N_opt_lower"]])
        fig.add_trace(go.Scatter(x=[float(compute)], y=[p["N_opt"]], mode="markers", error_y=err,
                                 marker=dict(color=_PALETTE[3], size=11, symbol="diamond"),
                                 name=f"planned N_opt = {_fmt(p['N_opt'])}"), row=1, col=2)
    fig.update_xaxes(type="log", exponentformat="power", title_text=_axis_title("N"), row=1, col=1)
    fig.update_yaxes(title_text=_axis_title("loss"), row=1, col=1)
    fig.update_xaxes(type="log", exponentformat="power", title_text="C (FLOPs)", row=1, col=2)
    fig.update_yaxes(type="log", exponentformat="power", title_text="N_opt (parameters)", row=1, col=2)
    fig.update_layout(title=title or f"IsoFLOP analysis ({'parabola' if result.degree == 2 else 'cubic'} in ln N)",
                      template="plotly_white", margin=dict(l=60, r=20, t=70, b=50), height=440)
    return fig


def plot_backtest_parity(result: Mapping, title: str | None = None, law=None):
    """Predicted against observed target for a backtest (scalelaw.predict.backtest): the runs
    the refit was fitted on and the held-out ones (with their prediction band; red when the
    band misses), the split in the title and the line y = x. ``law`` as for :func:`plot_backtest`."""
    go = _go()
    from .law import get_law

    law = law if law is not None else get_law(result["law"])
    test = pd.DataFrame(result["rows"])
    train = pd.DataFrame(result.get("train_rows") or [])
    if len(test) == 0:
        raise ScalelawError("the backtest has no held-out rows to draw")
    fig = go.Figure()
    if len(train):
        fig.add_trace(go.Scatter(x=train["actual"], y=train["mean"], mode="markers",
                                 name=f"fitted on ({result['train']}): {len(train)}",
                                 marker=dict(color="#7f7f7f", size=7, symbol="circle-open"),
                                 text=train["run"].astype(str).tolist() if "run" in train.columns else None))
    actual = test["actual"].to_numpy(dtype=float)
    inside = (actual >= test["pred_lower"].to_numpy(dtype=float)) & (actual <= test["pred_upper"].to_numpy(dtype=float))
    for flag, name, color in ((True, "held out, inside the band", "#2ca02c"), (False, "held out, outside the band", "#d62728")):
        m = inside == flag
        if not m.any():
            continue
        part = test[m]
        fig.add_trace(go.Scatter(x=part["actual"], y=part["mean"], mode="markers", name=f"{name}: {int(m.sum())}",
                                 marker=dict(color=color, size=9, symbol="diamond"),
                                 error_y=dict(type="data", symmetric=False, thickness=1,
                                              array=(part["pred_upper"] - part["mean"]).to_numpy(dtype=float),
                                              arrayminus=(part["mean"] - part["pred_lower"]).to_numpy(dtype=float)),
                                 text=part["run"].astype(str).tolist() if "run" in part.columns else None))
    allv = np.concatenate([actual, train["actual"].to_numpy(dtype=float)]) if len(train) else actual
    lo, hi = float(np.nanmin(allv)), float(np.nanmax(allv))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="grey", dash="dash"), name="y = x"))
    lvl = int(round(100 * result.get("level", 0.95)))
    head = (f"backtest {law.name}: predicted vs observed; {100 * result['coverage']:.0f}% of held-out runs "
            f"inside the {lvl}% prediction band")
    fig.update_layout(title=dict(text=title or head, font=dict(size=13)), template="plotly_white",
                      xaxis_title=f"observed {_axis_title(law.target)}", yaxis_title=f"predicted {_axis_title(law.target)}",
                      height=420, margin=dict(l=60, r=20, t=60, b=50))
    if _log_axis(allv, law):
        fig.update_xaxes(type="log")
        fig.update_yaxes(type="log")
    return fig


def static_images(on: bool = True, fmt: str = "png", width: int = 900, height: int | None = None) -> None:
    """In a notebook: every plotly figure shown also carries a static image (``fmt`` png or svg,
    rendered by kaleido with the system's Chromium), beside the interactive figure, so exports
    (nbconvert HTML, PDF) and code hosts that do not run JavaScript still show it. ``on=False``
    restores plotly's default renderer."""
    import plotly.io as pio

    if not on:
        pio.renderers.default = "plotly_mimetype+notebook"
        return
    if fmt not in ("png", "svg"):
        raise ScalelawError(f"static image format must be png or svg; got {fmt!r}")
    try:
        import kaleido
    except ImportError:
        raise ScalelawError("static images need kaleido: pip install kaleido (and a Chromium or Chrome browser)") from None
    renderer = pio.renderers[fmt]
    renderer.width, renderer.height = width, height
    start = getattr(kaleido, "start_sync_server", None)
    if start is not None:      # one browser for every figure, not one per figure (~3 s each)
        import atexit
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                start(silence_warnings=True)
                atexit.register(kaleido.stop_sync_server, silence_warnings=True)
            except Exception:   # already running
                pass
    pio.renderers.default = f"plotly_mimetype+{fmt}"


__all__ = ["plot_fit", "plot_parity", "plot_residuals", "plot_backtest", "plot_backtest_parity", "plot_plan",
           "plot_compute", "plot_optimum", "plot_isoflop", "design_figure", "static_images", "residuals", "fit_rows",
           "choose_grouping"]
