"""Verbs `plan` (one training plan from a compute budget) and `report` (a shareable HTML page)."""
from __future__ import annotations

import click

from .app import main
from .common import (POSITIVE, emit_json, force_option, interval_option, json_option, level_option, load_data,
                     output_path, parse_pairs, warn)


@main.command("plan")
@click.option("--compute", type=POSITIVE, default=None, metavar="C",
              help="Training budget in FLOPs (C = 6ND); give exactly one of --compute and --target-loss.")
@click.option("--target-loss", type=POSITIVE, default=None, metavar="L",
              help="Instead of --compute: the loss to reach; prints the compute needed.")
@click.option("--loss", "loss_fit", required=True, metavar="FIT",
              help="Loss fit (JSON from `scalelaw fit -o`, or a published name such as epoch-2024).")
@click.option("--lr", "lr_fit", metavar="FIT",
              help="Fit of the optimal learning rate (e.g. law lr_opt), or a published name such as steplaw-2025.")
@click.option("--bs", "bs_fit", metavar="FIT",
              help="Fit of the optimal batch size in tokens (e.g. law bs_opt), or a published name such as steplaw-2025.")
@click.option("--downstream", "downstream_fit", metavar="FIT",
              help="Fit of downstream error against loss (e.g. law downstream_exp), or a published name.")
@click.option("--tokens-per-param", type=POSITIVE, default=None, metavar="R",
              help="Constrain the split: D = R N (instead of compute-optimal).")
@click.option("--params", type=POSITIVE, default=None, metavar="N",
              help="Constrain the split: a model of N parameters, D = C / (6N).")
@click.option("--at", "at", multiple=True, metavar="INPUT=VALUE",
              help="Value of a further law input the plan does not compute (e.g. U=25e9).")
@level_option()
@interval_option("plan", "loss fit's intervals (the other fits keep their own)")
@click.option("--warn-factor", type=click.FloatRange(1), default=10.0, show_default=True,
              help="Warn when an input lies this many times beyond a fit's data.")
@json_option("Print the plan as one JSON object.")
def plan_cmd(compute, target_loss, loss_fit, lr_fit, bs_fit, downstream_fit, tokens_per_param, params, at,
             level, interval, warn_factor, as_json):
    """Model size N, tokens D, lr*, batch size, loss and downstream error for a budget
    (or the compute to reach --target-loss).

    Intervals propagate every fit's bootstrap (else delta-method) draws jointly; each input's
    extrapolation beyond the range its fit saw is reported, with a warning past --warn-factor.
    """
    from ..analysis.plan import format_plan, plan
    from ..progress import enabled_by_default

    extra = parse_pairs(at, "--at", numeric=True)
    res = plan(compute=compute, loss_fit=loss_fit, lr_fit=lr_fit, bs_fit=bs_fit, downstream_fit=downstream_fit,
               tokens_per_param=tokens_per_param, params=params, target_loss=target_loss, level=level,
               warn_factor=warn_factor, at=extra or None, interval=interval, progress=enabled_by_default())
    for w in res["warnings"]:
        warn(w)
    if as_json:
        emit_json(res)
    else:
        click.echo(format_plan(res))


@main.command("report")
@click.argument("fits", nargs=-1, required=True)
@click.option("-o", "--output", callback=output_path, required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--data", "data", metavar="TABLE",
              help="Run table (file or dataset name) to draw data, curves and residuals from "
                   "(default: each fit's recorded source, when readable).")
@click.option("--plan-compute", type=POSITIVE, default=None, metavar="C",
              help="Add the plan for this budget, from the loss fit (and lr/bs/downstream fits) given.")
@click.option("--train", default=None, metavar="EXPR",
              help='Backtest split: rows to fit on, e.g. "C < 1e21" (default: by compute, about the largest '
                   'quarter of runs held out, whole compute levels on each side; docs/python.md).')
@click.option("--plotly", "plotly_js", type=click.Choice(["inline", "cdn"]), default="inline", show_default=True,
              help="plotly.js embedded in the page (opens offline) or loaded from its CDN (4.5 MB smaller, "
                   "needs the network).")
@click.option("--no-backtest", is_flag=True, help="Skip the backtests (they refit each law).")
@click.option("--title", default="scalelaw report", show_default=True, help="Title of the page.")
@force_option()
@json_option("Print what was written as one JSON object.")
def report_cmd(fits, output, data, plan_compute, train, no_backtest, plotly_js, title, force, as_json):
    """One self-contained HTML page for FITS: summaries, data with curves, residuals, backtests, plan.

    The page embeds plotly's JavaScript, so it opens offline and can be mailed as one file
    (--plotly cdn loads it from the network instead).
    """
    from ..analysis.report import write_report
    from ..progress import enabled_by_default
    from ..util import check_writable

    check_writable(output, force)
    table = load_data(data) if data else None
    info = write_report(output, list(fits), data=table, plan_compute=plan_compute, train=train,
                        backtest=not no_backtest, title=title, force=force, progress=enabled_by_default(),
                        plotly_js=plotly_js)
    for w in info.get("warnings", []):
        warn(w)
    if as_json:
        emit_json(info)
    else:
        click.echo(f"wrote {output} ({info['bytes'] / 1e6:.1f} MB, {info['figures']} figures, "
                   f"{len(info['fits'])} fit(s){', plan' if info.get('plan') else ''})")
