"""`scalelaw isoflop`: compute-optimal size and data from IsoFLOP runs (Chinchilla approach 2)."""
from __future__ import annotations

import click

from .app import main
from .common import emit_json, load_data, table_options, warn


@main.command("isoflop")
@click.argument("data")
@click.option("--degree", type=click.Choice(["2", "3"]), default="2", show_default=True,
              help="Polynomial in ln N fitted per budget: 2 = parabola (Hoffmann et al.), 3 = cubic "
                   "(less biased when the sizes sit off-centre; see docs/isoflop.md).")
@click.option("--where", help='Keep rows matching a pandas expression, e.g. "C >= 1e19".')
@click.option("--tol", type=float, default=0.1, show_default=True,
              help="Runs within this relative distance in C of a budget's first run form one budget.")
@click.option("--boot", type=click.IntRange(0), default=0, show_default=True,
              help="Bootstrap resamples over runs within budgets (intervals for N_opt = k C^a).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95, show_default=True)
@table_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON document).")
def isoflop_cmd(data, degree, where, tol, boot, seed, level, maps, units, as_json):
    """IsoFLOP analysis of DATA: per compute budget, the loss minimum over model size, then
    N_opt = k C^a (and D_opt) through the minima. Needs columns N, loss and C (or D: C = 6ND)."""
    from ..analysis.isoflop import isoflop

    table = load_data(data, maps, units)
    res = isoflop(table, degree=int(degree), where=where, tol=tol, boot=boot, seed=seed, level=level,
                  source=data)
    for w in res.warnings:
        warn(w)
    if as_json:
        emit_json(res.to_dict())
    else:
        click.echo(res.summary())
