"""Verbs of the fitting core: laws, fit, predict, optimum, backtest, check."""
from __future__ import annotations

import itertools
import math
import warnings

import click
import numpy as np
import pandas as pd

from ..errors import ScalelawError
from ..law import OBJECTIVES, all_laws, get_law
from .app import main
from ..result import EXTRAPOLATION_WARN, health_warning, no_range_warning
from .common import (POSITIVE, bootstrap_options, coerce, emit_json, fail, force_option, interval_option, json_option,
                     level_option, load_data, output_path, parse_pairs, table_options, warn, where_option)


@main.command("laws")
@click.argument("name", required=False)
@json_option("Machine-readable output.")
def laws_cmd(name, as_json):
    """List registered laws (or describe one): formula, inputs, parameters, citation."""
    laws = [get_law(name)] if name else all_laws()
    if as_json:
        emit_json([l.describe() for l in laws] if not name else laws[0].describe())
        return
    for law in laws:
        click.echo(f"{law.name}  [{law.family}]  {law.formula}")
        click.echo(f"    inputs: {', '.join(law.inputs)} -> {law.target}")
        for p in law.params:
            b = f"[{p.lower:g}, {p.upper:g}]" + (" log" if p.log else "")
            click.echo(f"    {p.name:<10}{b:<26}{p.doc}")
        if law.options:
            click.echo(f"    --option: {', '.join(law.options)}")
        if law.target_range is not None:
            click.echo(f"    {law.target} lies in [{law.target_range[0]:g}, {law.target_range[1]:g}] "
                       "(predictions are clipped there)")
        if law.published:
            click.echo(f"    published: {', '.join(law.published)}")
        if law.citation:
            click.echo(f"    cite: {law.citation}")
        if name:
            click.echo(f"    {law.description}")


def _fit_options(f):
    f = where_option("N < 1e9")(f)
    f = click.option("--objective", type=click.Choice(OBJECTIVES), default=None,
                     help="Loss to minimise (default: the law's, huber-log for loss laws).")(f)
    f = click.option("--delta", default="1e-3", show_default=True, metavar="DELTA|auto",
                     help="Huber delta, in the residuals' units (log residuals for huber-log, raw for huber; "
                          "unused by lsq objectives), or 'auto' (1.345 x robust residual scale; recommended for "
                          "prediction, see docs/uncertainty.md).")(f)
    f = click.option("--fix", "fixes", multiple=True, metavar="PARAM=VALUE", help="Hold a parameter fixed.")(f)
    f = click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
                     help="Option for the law's data preparation (e.g. select=plateau, tol=0.0025).")(f)
    f = click.option("--weights", metavar="COL", help="Column of observation weights.")(f)
    f = click.option("--method", type=click.Choice(("auto", "multistart", "varpro")), default="auto",
                     show_default=True,
                     help="multistart: the batched engine from the law's grid; varpro: variable projection for "
                          "laws linear in some parameters (E, A, B of chinchilla), solved exactly per value of "
                          "the others; auto: varpro for lsq / lsq-log on such laws (measured: the same optimum, "
                          "several times faster), else multistart (docs/fitting.md).")(f)
    f = law_options(f)
    f = click.option("--best-per-cell", is_flag=True, default=False,
                     help="Loss laws: keep only the lowest-loss run of each (N, D) cell (a table holding an lr "
                          "or batch sweep per cell).")(f)
    f = table_options(f)
    return f


def law_options(f):
    """--laws FILE and --bounds NAME=LO:HI: where user-defined laws come from."""
    f = click.option("--laws", "law_files", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
                     help="A TOML law file ([[law]] name, formula, inputs, params); its laws can be named as LAW "
                          "(docs/laws.md).")(f)
    f = click.option("--bounds", "bounds", multiple=True, metavar="NAME=LO:HI",
                     help="Bounds of a parameter of a formula LAW (\"loss = E + A/N^alpha\"), e.g. alpha=0:2.")(f)
    return f


def resolve_law(law, table, law_files=(), bounds=()):
    """The LAW argument: a formula (TARGET = EXPR, inputs = the table's columns), a law of a
    --laws file, or a registered name."""
    from ..formula import parse_bounds, resolve

    return resolve(law, columns=[str(c) for c in table.columns], law_files=law_files, bounds=parse_bounds(bounds))


def _fit_kwargs(where, objective, delta, fixes, options, weights, method="auto", best_per_cell=False) -> dict:
    """The options every fitting verb shares, parsed into fit() keyword arguments (plus ``method``
    for scalelaw.varpro.fit_with)."""
    fixed = parse_pairs(fixes, "--fix", numeric=True)
    opts = {k: coerce(v) for k, v in parse_pairs(options, "--option").items()}
    return {"where": where, "objective": objective, "delta": parse_delta(delta), "weights": weights,
            "fixed": fixed or None, "prepare_options": opts or None, "method": method, "best_per_cell": best_per_cell}


def _do_fit(law, data, where, objective, delta, fixes, options, weights, maps, units, boot=0, seed=0,
            level=0.95, jobs=None, scheduler=None, method="auto", law_files=(), bounds=(), best_per_cell=False):
    from ..progress import enabled_by_default
    from ..varpro import fit_with

    table = load_data(data, maps, units)
    law = resolve_law(law, table, law_files, bounds)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kw = _fit_kwargs(where, objective, delta, fixes, options, weights, method, best_per_cell)
        res = fit_with(kw.pop("method"), law, table, boot=boot, seed=seed, level=level, n_jobs=jobs,
                       scheduler=scheduler, progress=enabled_by_default(), source=data, **kw)
    relay_warnings(caught, skip=("did NOT converge",))
    return res


def parse_delta(delta):
    """--delta: a positive number, or 'auto'."""
    if isinstance(delta, (int, float)) or delta == "auto":
        return delta
    try:
        return float(delta)
    except (TypeError, ValueError):
        raise ScalelawError(f"--delta must be a positive number or 'auto'; got {delta!r}") from None


def relay_warnings(caught, skip=()) -> None:
    """Show library warnings (not numpy's RuntimeWarnings) once each on stderr."""
    seen = set()
    for w in caught:
        msg = str(w.message)
        if issubclass(w.category, RuntimeWarning) or msg in seen or any(s in msg for s in skip):
            continue
        seen.add(msg)
        warn(msg)


@main.command("fit")
@click.argument("law")
@click.argument("data")
@_fit_options
@bootstrap_options(0, "Bootstrap resamples over runs.")
@click.option("--jobs", type=click.IntRange(1, 1024), default=None, help="Local processes (default: all cores).")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786) to run multi-start and bootstrap on.")
@click.option("-o", "--output", callback=output_path, type=click.Path(dir_okay=False), help="Write the fit JSON here.")
@force_option()
@json_option("Print the fit as one JSON object.")
def fit_cmd(law, data, where, objective, delta, fixes, options, weights, method, law_files, bounds, best_per_cell,
            maps, units, boot, seed, level, jobs, scheduler, output, force, as_json):
    """Fit LAW to DATA (a run-table file or a dataset name).

    LAW is a registered law name, a law of a --laws file, or a formula "TARGET = EXPR" whose
    names that are columns of DATA are inputs and the others parameters, e.g.
    "loss = E + A/N^alpha + B/D^beta" (docs/laws.md, "Formula laws")."""
    from ..util import check_writable

    if output:
        check_writable(output, force)
    res = _do_fit(law, data, where, objective, delta, fixes, options, weights, maps, units, boot, seed,
                  level, jobs, scheduler, method, law_files, bounds, best_per_cell)
    if not res.diagnostics.get("converged"):
        fail(f"the fit of {res.law.name!r} did NOT converge ({res.diagnostics.get('message')}); "
             "no result is reported. Check units, add runs, or fix a parameter with --fix")
    if res.diagnostics.get("params_at_bounds"):
        warn(f"parameter(s) at a bound: {', '.join(res.diagnostics['params_at_bounds'])}; the optimum may lie outside the allowed range")
    note = health_warning(res)
    if note:
        warn(note)
    if output:
        res.save(output, force=force)
    if as_json:
        emit_json(res.to_dict(include_boot=False))
    else:
        click.echo(str(res.summary()))
        if output:
            click.echo(f"\nwrote {output}")


def frame_text(df: pd.DataFrame, digits: int = 5) -> str:
    """A table as text, a missing value (JSON null: no interval, no band, no extrapolation factor)
    shown as '-' rather than pandas' NaN or None."""
    show = df.copy()
    for c in show.columns:
        col = show[c]
        if col.dtype == object and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                                       for v in col):
            show[c] = pd.to_numeric(col, errors="coerce")
    return show.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.{digits}g}")


def _grid_from_at(at) -> pd.DataFrame:
    vals = parse_pairs(at, "--at", numeric=True)
    if not vals:
        raise ScalelawError("give the inputs to predict at with --at, e.g. --at N=7e10 --at D=1.4e12")
    keys = list(vals)
    lists = [v if isinstance(v, list) else [v] for v in vals.values()]
    return pd.DataFrame(list(itertools.product(*lists)), columns=keys)


def _check_at_names(at, X: pd.DataFrame, f, name: str) -> None:
    """--at names an input the law does not take: refused (it would be silently ignored)."""
    if not at:
        return
    extra = [c for c in X.columns if c not in f.law.inputs]
    if extra:
        raise ScalelawError(f"--at {extra[0]}=: law {f.law.name!r} ({name}) takes no input {extra[0]!r}; its inputs "
                            f"are {', '.join(f.law.inputs)}")


def _warn_extrapolation(df: pd.DataFrame, fit_name: str, fits=()):
    """Warn when a fit is unidentified or did not converge, when predicting far beyond the fitted
    range, or when a fit records none (published constants)."""
    for f in fits:
        for note in (health_warning(f), no_range_warning(f)):
            if note:
                warn(note)
    ex = pd.to_numeric(df["extrapolation"], errors="coerce").to_numpy(dtype=float) if "extrapolation" in df else []
    ex = ex[np.isfinite(ex)] if len(ex) else ex
    if len(ex) and ex.max() > EXTRAPOLATION_WARN:
        warn(f"predicting up to {ex.max():.0f}x beyond the range {fit_name} was fitted on; "
             "intervals assume the law holds that far")


def _with_interval(f, interval, verb):
    """The fit with the intervals of --interval (default: the verb's measured default), its notes warned."""
    from ..calibration import interval_fit

    f, notes = interval_fit(f, interval, verb=verb)
    for note in notes:
        warn(note)
    return f


@main.command("predict")
@click.argument("fit", required=False)
@click.option("--at", "at", multiple=True, metavar="INPUT=VALUE[,VALUE...]",
              help="Input value(s); several --at give the product grid.")
@click.option("--table", type=click.Path(exists=True, dir_okay=False), help="A CSV of inputs to predict at.")
@click.option("--chain", metavar="LOSSFIT,ERRFIT",
              help="Instead of FIT: predict the loss with LOSSFIT, then downstream error from it with ERRFIT, "
                   "both with intervals.")
@click.option("--law", "law_name", metavar="LAW", help="Which law, when a published fit name belongs to several.")
@level_option(None)
@interval_option("predict", "intervals and new-run bands")
@json_option("Print a JSON list of rows.")
def predict_cmd(fit, at, table, chain, law_name, level, interval, as_json):
    """Predict from a saved FIT (or a published fit name) with intervals.

    Rows hold the inputs plus mean, lower, upper (interval of the fitted curve), pred_lower and
    pred_upper (where a new run would land) and the extrapolation factor. What cannot be known
    (published constants: no interval, band or fitted range) reads '-' (null with --json).
    """
    from ..result import load_fit

    if table and at:
        raise ScalelawError(f"give the inputs either with --table ({table}) or with --at, not both; "
                            "add the --at values as columns of the table, or drop --table")
    if table:
        from ..util import require_readable
        require_readable(table, "--table")
    X = pd.read_csv(table) if table else _grid_from_at(at)
    fits = ()
    if chain:
        parts = [p for p in chain.split(",") if p]
        if len(parts) != 2:
            raise ScalelawError(f"--chain takes LOSSFIT,ERRFIT (two fits); got {chain!r}")
        if interval:
            raise ScalelawError("--interval applies to a FIT, not to --chain (each fit of a chain keeps its own "
                                "intervals); drop --interval or predict from one fit")
        from ..analysis.gadre import chain_predict

        fits = (load_fit(parts[0]), load_fit(parts[1]))
        _check_at_names(at, X, fits[0], parts[0])
        out = chain_predict(*fits, X, level=level or 0.95)
        name = parts[0]
    else:
        if not fit:
            raise ScalelawError("give a FIT file (or a published fit name), or --chain LOSSFIT,ERRFIT")
        f = _with_interval(load_fit(fit, law=law_name), interval, "predict")
        _check_at_names(at, X, f, fit)
        out = f.predict(X, level=level)
        name, fits = fit, (f,)
    _warn_extrapolation(out, name, fits)
    if as_json:
        emit_json(out.to_dict(orient="records"))
    else:
        click.echo(frame_text(out))


@main.command("optimum")
@click.argument("fit")
@click.option("--compute", "computes", multiple=True, type=POSITIVE, required=True, metavar="C",
              help="Training budget in FLOPs; repeat for several budgets (a line each; a JSON list with --json).")
@click.option("--law", "law_name", metavar="LAW", help="Which law, when a published fit name belongs to several.")
@level_option(None)
@interval_option("optimum")
@json_option()
def optimum_cmd(fit, computes, law_name, level, interval, as_json):
    """Compute-optimal N, D and loss (with intervals) for laws that define an allocation."""
    from ..result import load_fit

    f = _with_interval(load_fit(fit, law=law_name), interval, "optimum")
    rows = []
    for c in computes:
        if not (c > 0 and math.isfinite(c)):
            raise ScalelawError(f"--compute must be a positive number of FLOPs; got {c!r}")
        r = {"C": c}
        r.update(f.optimum(level=level, compute=c))
        at = {k: [r[f"{k}_opt"]] for k in ("N", "D") if f"{k}_opt" in r}
        if not all(math.isfinite(v[0]) for v in at.values()):
            warn(f"C={c:.3g}: the fit gives no finite optimum ("
                 + ", ".join(f"{k}_opt={v[0]:.3g}" for k, v in at.items())
                 + "): its exponents cannot set an allocation; see the fit's health")
            r["extrapolation"] = None
            rows.append(r)
            continue
        ex = f.extrapolation(at)
        # None (JSON null) without a recorded range: it cannot be judged (1.0 would claim "inside")
        r["extrapolation"] = float(max(v.max() for v in ex.values())) if ex and f.has_range else None
        rows.append(r)
    for note in (health_warning(f), no_range_warning(f)):
        if note:
            warn(note)
    from ..calibration import split_not_identified

    split = split_not_identified(f)
    if split:   # one warning line instead of N and D bands that look precise
        warn(split)
        for r in rows:
            for k in ("N_opt", "D_opt"):
                if f"{k}_lower" in r:
                    r[f"{k}_lower"] = r[f"{k}_upper"] = None
    for r in rows:
        if r["extrapolation"] is not None and r["extrapolation"] > EXTRAPOLATION_WARN:
            warn(f"C={r['C']:.3g}: the optimum lies {r['extrapolation']:.0f}x beyond the fitted range")
    if as_json:
        emit_json(rows[0] if len(rows) == 1 else rows)
    else:
        for r in rows:
            parts = [f"C={r['C']:.4g}"]
            for k in ("N_opt", "D_opt", "loss"):
                if k in r:
                    iv = f" [{r[k + '_lower']:.4g}, {r[k + '_upper']:.4g}]" if r.get(f"{k}_lower") is not None else ""
                    parts.append(f"{k}={r[k]:.4g}{iv}")
            click.echo("  ".join(parts))


@main.command("backtest")
@click.argument("law")
@click.argument("data")
@click.option("--train", required=True, metavar="EXPR", help='Rows to fit on (filter expression, e.g. "C < 1e21"); the rest are predicted.')
@_fit_options
@json_option()
def backtest_cmd(law, data, train, where, objective, delta, fixes, options, weights, method, law_files, bounds,
                 best_per_cell, maps, units, as_json):
    """Fit on the rows matching --train, predict the rest, report relative errors."""
    from ..predict import backtest

    table = load_data(data, maps, units)
    law = resolve_law(law, table, law_files, bounds)
    res = backtest(law, table, train=train, source=data,
                   **_fit_kwargs(where, objective, delta, fixes, options, weights, method, best_per_cell))
    if not res["converged"]:
        warn("the fit on the --train rows did NOT converge; treat these errors as unreliable")
    elif not res["identified"]:
        warn(f"the fit on the --train rows is NOT IDENTIFIED: {res['problems'][0]}"
             + (f" (+{len(res['problems']) - 1} more)" if len(res["problems"]) > 1 else ""))
    if as_json:
        emit_json(res)
    else:
        click.echo(f"backtest {res['law']} on {data}: trained on {res['n_train']} rows ({train}), "
                   f"predicted {res['n_test']}")
        click.echo(frame_text(pd.DataFrame(res["rows"])))
        click.echo(f"relative error: mean {res['mean_rel_error']:.4%}  max {res['max_rel_error']:.4%}  "
                   f"inside prediction band: {res['coverage']:.0%}")


@main.command("check")
@click.argument("fits", nargs=-1, type=click.Path(dir_okay=False))
@json_option()
def check_cmd(fits, as_json):
    """Re-fit reference fits (default: fits/*.json) and exit 1 naming anything that drifted."""
    from pathlib import Path

    from ..check import check_file, default_files

    files = [Path(f) for f in fits] if fits else default_files()
    report = {}
    for f in files:
        if not f.exists():
            raise ScalelawError(f"reference fit {f} does not exist")
        report[str(f)] = check_file(f)
    bad = {k: v for k, v in report.items() if v}
    if as_json:
        emit_json({"ok": not bad, "files": report})
    else:
        for k, v in report.items():
            click.echo(f"{'ok   ' if not v else 'DRIFT'} {k}")
            for m in v:
                click.echo(f"      {m}")
    if bad:
        raise SystemExit(1)
