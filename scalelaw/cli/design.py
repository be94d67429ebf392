"""Verb `design`: which runs to train next so that the prediction at the target is tight."""
from __future__ import annotations

import click

from ..errors import ScalelawError
from .app import main
from .common import emit_json, force_option, json_option, level_option, load_data, parse_pairs, warn


def _target(values) -> dict | None:
    """--target N=7e10,D=1.4e12 (or repeated --target N=7e10 --target D=1.4e12) -> {N:, D:}."""
    items = [part for v in values for part in v.split(",") if part.strip()]
    if not items:
        return None
    out = parse_pairs(items, "--target", numeric=True, example="N=7e10,D=1.4e12", many=False)
    unknown = sorted(set(out) - {"N", "D"})
    if unknown:
        raise ScalelawError(f"--target takes N and D (e.g. --target N=7e10,D=1.4e12); unknown: {', '.join(unknown)}")
    return out


def _grid(values) -> dict | None:
    from ..analysis.design import parse_range

    items = [part for v in values for part in v.split(",") if part.strip()]
    if not items:
        return None
    pairs = parse_pairs(items, "--grid", example="N=1e7:1e9")
    return {k: parse_range(v, f"--grid {k}") for k, v in pairs.items()}


@main.command("design")
@click.argument("fit")
@click.argument("more_grid", nargs=-1, metavar="")
@click.option("--target", "target", multiple=True, metavar="N=..,D=..",
              help="The model whose loss should be predicted tightly, e.g. N=7e10,D=1.4e12.")
@click.option("--target-compute", type=float, default=None, metavar="C",
              help="Instead of --target: a budget in FLOPs; the quantity is then --quantity at its optimum.")
@click.option("--quantity", type=click.Choice(["loss", "N_opt", "D_opt"]), default="loss", show_default=True,
              help="With --target-compute: the compute-optimal loss, model size or token count.")
@click.option("--budget", type=float, required=True, metavar="FLOPS",
              help="Total training compute of the proposed runs (C = 6ND each).")
@click.option("--candidates", metavar="TABLE",
              help="Table (file or dataset name) of possible runs with columns N and D.")
@click.option("--grid", "grid", multiple=True, metavar="N=LO:HI D=LO:HI",
              help="Candidate grid: a log grid over these N and D ranges (default: runs of budget/1000 to "
                   "budget/2 FLOPs at 1 to 1000 tokens per parameter).")
@click.option("--k", "k", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="Propose at most this many runs.")
@click.option("--noise", type=float, default=None, metavar="SD",
              help="Scatter of one run around the law, in log units (default: the fit's residual sd, else 0.01).")
@click.option("--widen", type=float, default=None, metavar="F",
              help="Multiply the prior's standard deviations by F (default 1 for a fit, 3 for published constants).")
@click.option("--draws", type=click.IntRange(2, 10000), default=64, show_default=True,
              help="Parameter draws the criterion is averaged over.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the parameter draws.")
@click.option("--law", "law_name", metavar="LAW", help="Which law, when a published fit name belongs to several.")
@level_option(None)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the proposed runs as a CSV (N, D, C, tokens_per_param).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write a figure (candidates, chosen runs, target) as a self-contained HTML page.")
@force_option("Overwrite --output / --plot if they exist.")
@json_option("Print the design as one JSON object.")
def design_cmd(fit, more_grid, target, target_compute, quantity, budget, candidates, grid, k, noise, widen, draws,
               seed, law_name, level, output, plot_path, force, as_json):
    """Propose up to K new runs (N, D) within --budget FLOPs that minimise the predicted variance of
    the loss at --target (or of --quantity at --target-compute).

    FIT is a fit file (its parameter uncertainty and residual scatter are used) or a published name
    such as epoch-2024 (a design from nothing: its constants and standard errors, widened). Prints
    the runs, their cost and the expected interval width at the target before and after them;
    see docs/design.md for the method and its validation.
    """
    from ..analysis.design import design, format_design
    from ..result import load_fit
    from ..util import atomic_write_text, check_writable

    grid = tuple(grid) + tuple(more_grid)
    if more_grid and not all("=" in g and ":" in g for g in more_grid):
        raise ScalelawError(f"unexpected argument(s) {' '.join(more_grid)!s}; design takes one FIT "
                            "(grid ranges go after --grid, e.g. --grid N=1e7:1e9 D=1e9:1e11)")
    for path in (output, plot_path):
        if path is not None:
            check_writable(path, force)
    table = load_data(candidates) if candidates else None
    if table is not None and grid:
        raise ScalelawError("give --candidates or --grid, not both")
    res = design(load_fit(fit, law=law_name), target=_target(target), target_compute=target_compute,
                 quantity=quantity, budget=budget, candidates=table, grid=_grid(grid), k=k, noise=noise,
                 widen=widen, draws=draws, seed=seed, level=level)
    for w in res["warnings"]:
        warn(w)
    cands = res.pop("candidates")
    if output:
        import pandas as pd
        runs = pd.DataFrame(res["runs"])[["N", "D", "C", "tokens_per_param"]]
        atomic_write_text(output, runs.to_csv(index=False), force=force)
    if plot_path:
        from ..plots import design_figure
        fig = design_figure(dict(res, candidates=cands))
        atomic_write_text(plot_path, fig.to_html(include_plotlyjs=True, full_html=True), force=force)
    if as_json:
        emit_json(res)
    else:
        click.echo(format_design(res))
