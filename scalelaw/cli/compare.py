"""scalelaw compare: which of several laws extrapolates best on the held-out runs."""
from __future__ import annotations

import click
import pandas as pd

from ..errors import ScalelawError
from .app import main
from .common import emit_json, force_option, json_option, level_option, load_data, warn
from .fitting import _fit_kwargs, _fit_options, frame_text, resolve_law


@main.command("compare")
@click.argument("laws_and_data", nargs=-1, required=True, metavar="LAW [LAW...] DATA")
@click.option("--train", required=True, metavar="EXPR",
              help='Rows to fit on (filter expression, e.g. "C < 1e21"); the rest are held out and scored.')
@_fit_options
@level_option(0.95)
@click.option("--boot-runs", "n_boot", type=click.IntRange(100), default=2000, show_default=True,
              help="Resamples of the paired bootstrap over held-out runs (best law against the next).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the paired bootstrap.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the JSON document here.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write an HTML figure of each law's held-out relative errors here.")
@force_option("Overwrite --output / --plot if they exist.")
@json_option("Print the comparison as one JSON document.")
def compare_cmd(laws_and_data, train, where, objective, delta, fixes, options, weights, method, law_files, bounds,
                best_per_cell, maps, units, level, n_boot, seed, output, plot_path, force, as_json):
    """Fit each LAW on the --train rows of DATA and score it on the rest.

    LAW: a registered name, a law of a --laws file, or a formula "TARGET = EXPR". Reports held-out
    R^2, mean and max relative error, prediction-band coverage, AIC/BIC on the training rows, and
    a paired bootstrap over held-out runs: does the best law beat the next beyond noise?
    """
    from ..compare import compare, plot_compare
    from ..util import atomic_write_text, check_writable, dumps

    if len(laws_and_data) < 2:
        raise ScalelawError("give one or more LAWs and then DATA, e.g. scalelaw compare chinchilla "
                            "\"loss = E + A/N^alpha + B/D^alpha\" runs.csv --train \"C < 1e21\"")
    *law_args, data = laws_and_data
    for path in (output, plot_path):
        if path:
            check_writable(path, force)
    table = load_data(data, maps, units)
    laws = [resolve_law(a, table, law_files, bounds) for a in law_args]
    if sum(1 for l in laws if l.name == "formula") > 1:
        # two formulas on the command line: name them by their text so the table tells them apart
        from ..formula import from_formula, parse_bounds

        laws = [from_formula(a, columns=[str(c) for c in table.columns], name=f"formula{i + 1}",
                             bounds=parse_bounds(bounds)) if l.name == "formula" else l
                for i, (a, l) in enumerate(zip(law_args, laws))]
    kw = _fit_kwargs(where, objective, delta, fixes, options, weights, method, best_per_cell)
    res = compare(laws, table, train=train, source=data, level=level, n_boot=n_boot, seed=seed,
                  method=kw.pop("method"), **kw)
    for e in res["laws"]:
        if "error" in e:
            warn(f"law {e['law']!r} could not be fitted on the --train rows: {e['error']}")
        elif not e["converged"]:
            warn(f"the fit of {e['law']!r} on the --train rows did NOT converge; treat its scores as unreliable")
    if output:
        atomic_write_text(output, dumps(res) + "\n", force=force)
    if plot_path:
        atomic_write_text(plot_path, plot_compare(res).to_html(include_plotlyjs=True, full_html=True), force=force)
    if as_json:
        emit_json(res)
        return
    click.echo(f"compare on {data}: fit on {res['n_train']} rows ({train}), scored on {res['n_test']} held-out rows")
    rows = []
    for e in res["laws"]:
        if "error" in e:
            rows.append({"law": e["law"], "note": "fit failed"})
            continue
        rows.append({"law": e["law"], "params": e["n_params"], "R2": e["r2"], "mean_rel_err_%": 100 * e["mean_rel_error"],
                     "max_rel_err_%": 100 * e["max_rel_error"],
                     "coverage_%": None if e["coverage"] is None else 100 * e["coverage"],
                     "AIC": e["aic"], "BIC": e["bic"], "note": "" if e["converged"] else "NOT converged"})
    click.echo(frame_text(pd.DataFrame(rows), digits=4))
    t = res["paired_bootstrap"]
    if t:
        verdict = "beats" if t["better_beyond_noise"] else "is NOT distinguishable from"
        click.echo(f"\nbest: {t['best']} {verdict} {t['next']} beyond noise (paired bootstrap over {t['n_runs']} held-out "
                   f"runs: mean |error| lower by {100 * t['mean_diff']:.3f} points, one-sided {int(100 * t['level'])}% "
                   f"bound {100 * t['lower']:.3f}, p = {t['p_value']:.3f})")
    for path, what in ((output, "JSON"), (plot_path, "figure")):
        if path:
            click.echo(f"wrote {what} {path}")
