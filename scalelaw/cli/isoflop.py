"""`scalelaw isoflop`: compute-optimal size and data from IsoFLOP runs (Chinchilla approach 2)."""
from __future__ import annotations

import click

from .app import main
from ..errors import ScalelawError
from ..result import EXTRAPOLATION_WARN
from .common import NONNEG, bootstrap_options, emit_json, json_option, load_data, parse_pairs, table_options, warn, where_option


@main.command("isoflop")
@click.argument("data")
@click.option("--method", type=click.Choice(["local", "parabola", "cubic"]), default=None,
              help="Per-budget minimum: local (default) = a parabola in ln N through the runs near the budget's "
                   "minimum, re-centred until it settles, robust to outliers; parabola = one parabola through "
                   "all of a budget's runs (Hoffmann et al.); cubic = one cubic (docs/isoflop.md).")
@click.option("--degree", type=click.Choice(["2", "3"]), default=None,
              help="Older spelling: 2 = --method parabola, 3 = --method cubic.")
@click.option("--window", type=float, default=4.0, show_default=True,
              help="--method local: runs within this factor of the minimum's N (each side) are fitted, widened "
                   "to hold 5 sizes.")
@where_option("C >= 1e19")
@click.option("--tol", type=NONNEG, default=0.1, show_default=True,
              help="Runs within this relative distance in C of a budget's first run form one budget.")
@bootstrap_options(0, "Bootstrap resamples over runs within budgets (intervals for N_opt = k C^a).")
@click.option("--at", "at", multiple=True, metavar="C=VALUE[,VALUE...]",
              help="Predict N_opt and D_opt (with intervals) at these compute budgets, e.g. --at C=5.76e23.")
@table_options
@json_option("Machine-readable output (one JSON document).")
def isoflop_cmd(data, method, degree, window, where, tol, boot, seed, level, at, maps, units, as_json):
    """IsoFLOP analysis of DATA: per compute budget, the loss minimum over model size, then
    N_opt = k C^a (and D_opt) through the minima. Needs columns N, loss and C (or D: C = 6ND; or C
    and D: N = C/(6D)); budget, compute and flops columns are read as C."""
    from ..analysis.isoflop import isoflop

    given = parse_pairs(at, "--at", numeric=True)
    if set(given) - {"C"}:
        raise ScalelawError(f"--at takes compute budgets only (--at C=1e23); got {', '.join(sorted(given))}")
    budgets = given.get("C", [])
    budgets = budgets if isinstance(budgets, list) else [budgets]
    table = load_data(data, maps, units)
    res = isoflop(table, method=method, degree=None if degree is None else int(degree), window=window, where=where,
                  tol=tol, boot=boot, seed=seed, level=level, source=data)
    preds = res.predict(budgets) if budgets else []
    for p in preds:
        if p["extrapolation"] > EXTRAPOLATION_WARN:
            res.warnings.append(f"C={p['C']:.3g} lies {p['extrapolation']:.3g}x beyond the analysed budgets; "
                                "the prediction is an extrapolation")
    for w in res.warnings:
        warn(w)
    if as_json:
        d = res.to_dict()
        d["predictions"] = preds
        emit_json(d)
        return
    click.echo(res.summary())
    for p in preds:
        iv = lambda k: (f" [{p[k + '_lower']:.4g}, {p[k + '_upper']:.4g}]" if k + "_lower" in p else "")
        click.echo(f"at C = {p['C']:.4g}: N_opt = {p['N_opt']:.4g}{iv('N_opt')}, "
                   f"D_opt = {p['D_opt']:.4g}{iv('D_opt')}")
