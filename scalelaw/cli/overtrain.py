"""Verbs of the over-training / downstream family: scalelaw gadre reproduce | backtest | plot."""
from __future__ import annotations

import math
from pathlib import Path

import click

from ..errors import ScalelawError
from ..law import OBJECTIVES
from .app import main
from .common import POSITIVE, output_path, bootstrap_options, emit_json, force_option, json_option, warn

DATASETS = ("rpj", "c4_original", "rw_original")


def _table(data):
    from ..analysis.gadre import load_runs

    if data is None:
        return load_runs(None)
    p = Path(data)
    if p.is_dir():
        return load_runs(p)
    from .common import load_data

    return load_runs(load_data(data))


@main.group("gadre")
def gadre_group():
    """Over-training and downstream error on the testbed of Gadre and others (2024): reproduce, backtest, plot."""


@gadre_group.command("reproduce")
@click.option("--data", help="exp_data folder of mlfoundations/scaling, a run table, or a dataset name "
                             "(default: the registered gadre-overtrain dataset).")
@click.option("--dataset", type=click.Choice(DATASETS), default="rpj", show_default=True, help="Training set.")
@click.option("--loss-objective", type=click.Choice(OBJECTIVES), default="lsq", show_default=True,
              help="Objective of the loss fit (Gadre et al. use least squares).")
@click.option("--err-objective", type=click.Choice(OBJECTIVES), default="lsq", show_default=True)
@click.option("--error", "error_column", default="err_avg17", show_default=True,
              help="Error column: err_avg17 (Gadre's 17 tasks), err_avg46, or any err_<task>.")
@bootstrap_options(200, "Bootstrap resamples over runs.", level=False)
@click.option("--write-fits", "write_dir", type=click.Path(file_okay=False),
              help="Write gadre-<dataset>-loss.json and -err.json into this folder.")
@force_option("Overwrite existing fit files.")
@json_option()
def reproduce_cmd(data, dataset, loss_objective, err_objective, error_column, boot, seed, write_dir, force, as_json):
    """Gadre's protocol: fit on 5 (loss) / 6 (error) small runs, predict 1.4B M=640 and 6.9B M=20."""
    from ..analysis.gadre import reference_fit_paths, reproduce

    if write_dir:   # refuse existing targets before the fits run, not after
        reference_fit_paths(dataset, write_dir, force)
    res = reproduce(_table(data), dataset=dataset, loss_objective=loss_objective, err_objective=err_objective,
                    boot=boot, seed=seed, error_column=error_column)
    written = []
    if write_dir:
        from ..analysis.gadre import write_reference_fits

        written = write_reference_fits(res, write_dir, force=force)
    if as_json:
        emit_json({"dataset": dataset, "rows": res["rows"], "params": res["params"],
                   "published_params": res["published_params"], "written": written})
        return
    click.echo(f"Gadre et al. protocol on {dataset} (loss: C4 validation; error: {error_column})")
    click.echo("fitted loss law:  " + ", ".join(f"{k}={v:.5g}" for k, v in res["params"]["loss"].items()))
    click.echo("fitted error law: " + ", ".join(f"{k}={v:.5g}" for k, v in res["params"]["error"].items()))
    if res["published_params"]:
        click.echo("published:        " + ", ".join(f"{k}={v:g}" for k, v in res["published_params"]["loss"].items())
                   + "; " + ", ".join(f"{k}={v:g}" for k, v in res["published_params"]["error"].items()))
    click.echo("")
    click.echo(f"{'target':<13}{'quantity':<9}{'actual':>9}{'predicted':>11}{'95% interval':>20}{'rel.err':>9}{'published':>11}")
    for r in res["rows"]:
        pub = f"{r['published_rel_err']:.2%}" if "published_rel_err" in r else ""
        iv = f"[{r['lower']:.4f}, {r['upper']:.4f}]" if math.isfinite(r["lower"]) else ""
        click.echo(f"{r['target']:<13}{r['quantity']:<9}{r['actual']:>9.4f}{r['predicted']:>11.4f}{iv:>20}"
                   f"{r['rel_err']:>9.2%}{pub:>11}")
    for w in written:
        click.echo(f"wrote {w}")


@gadre_group.command("backtest")
@click.option("--data", help="exp_data folder, run table or dataset name (default: gadre-overtrain).")
@click.option("--dataset", "datasets", multiple=True, type=click.Choice(DATASETS),
              help="Training set(s) (default: all three).")
@click.option("--cutoff", "cutoffs", multiple=True, type=POSITIVE,
              help="Compute cutoff(s) C = 6ND: fit below, predict at or above (default 3e19, 1e20, 3e20).")
@click.option("--objective", "objectives", multiple=True, type=click.Choice(OBJECTIVES),
              help="Objective(s) to compare (default huber-log and lsq).")
@click.option("--error", "error_column", default="err_avg17", show_default=True)
@click.option("--no-direct", is_flag=True, help="Skip the direct (N, D) -> error law.")
@json_option()
def backtest_cmd(data, datasets, cutoffs, objectives, error_column, no_direct, as_json):
    """Fit every run below a compute cutoff, predict the rest: loss, chained and direct error."""
    from ..analysis.gadre import CUTOFFS, OBJECTIVES as OBJ, backtest_grid, summarize_grid

    for c in cutoffs:
        if not (c > 0 and math.isfinite(c)):
            raise ScalelawError(f"--cutoff must be a positive number of FLOPs (e.g. 1e20); got {c!r}")
    grid = backtest_grid(_table(data), datasets=datasets or DATASETS, cutoffs=cutoffs or CUTOFFS,
                         objectives=objectives or OBJ, error_column=error_column, direct=not no_direct)
    summ = summarize_grid(grid)
    if as_json:
        emit_json({"splits": grid.to_dict(orient="records"), "summary": summ.to_dict(orient="records")})
        return
    click.echo(grid.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo("")
    click.echo("mean over splits:")
    click.echo(summ.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@gadre_group.command("plot")
@click.argument("kind", type=click.Choice(["loss", "error"]))
@click.option("--data", help="exp_data folder, run table or dataset name (default: gadre-overtrain).")
@click.option("--dataset", type=click.Choice(DATASETS), default="rpj", show_default=True)
@click.option("--cutoff", type=POSITIVE, default=None,
              help="Fit below this compute and mark the rest as held out (default: Gadre's protocol).")
@click.option("-o", "--output", callback=output_path, required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@force_option()
def plot_cmd(kind, data, dataset, cutoff, output, force):
    """Loss vs compute per M (KIND=loss) or error vs loss (KIND=error), with held-out runs."""
    from ..analysis import gadre as g
    from ..util import atomic_write_text

    df = _table(data)
    if cutoff is None:
        loss_rows, err_rows, _ = g.protocol_rows(df, dataset)
        train = loss_rows if kind == "loss" else err_rows
        held = df[(df["dataset"] == dataset) & ~df.index.isin(train.index)]
        f = (g.fit_loss(train, objective="lsq") if kind == "loss" else g.fit_error(train, objective="lsq"))
    else:
        train, held = g.split_cutoff(df, dataset, cutoff)
        f = g.fit_loss(train) if kind == "loss" else g.fit_error(train)
    fig = g.figure_loss(f, train, held) if kind == "loss" else g.figure_error(f, train, held)
    atomic_write_text(output, fig.to_html(include_plotlyjs=True, full_html=True), force=force)
    if len(held) == 0:
        warn("no held-out runs to show")
    click.echo(f"wrote {output}")
