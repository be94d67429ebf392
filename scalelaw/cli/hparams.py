"""Verbs for hyperparameter laws: `hparams` (lr*, B* at a size) and the `sweep` group
(cells, loco, plot) on learning-rate / batch-size sweeps."""
from __future__ import annotations


import click
import pandas as pd

from ..errors import ScalelawError
from .app import main
from ..result import EXTRAPOLATION_WARN, health_warning, no_range_warning
from .fitting import frame_text
from .common import (MAX_BOOT, NONNEG, POSITIVE, output_path, count, emit_json, force_option, json_option, level_option, parse_pairs, seed_option, table_options,
                     warn, where_option)


def _load(data, maps=(), units=()):
    from ..analysis.sweep import load_sweep

    if maps or units:
        from .common import load_data

        return load_data(data, maps, units)
    return load_sweep(data)


def _sweep_options(f):
    f = click.option("--n", "n", default="total", show_default=True, metavar="total|active|COL",
                     help="Parameter count used as N: total, active (MoE N_active) or a column name.")(f)
    f = click.option("--loss-col", default=None, metavar="COL", help="Loss column (default: smooth_loss, else loss).")(f)
    f = click.option("--tol", type=NONNEG, default=0.0025, show_default=True,
                     help="Plateau: runs within this relative gap of the cell's best.")(f)
    f = where_option("N < 1e9")(f)
    f = table_options(f)
    return f


def _filter(df, where):
    from ..fit import select_rows

    out = select_rows(df, where, str(df.attrs.get("source") or "the sweep"))
    out.attrs.update(df.attrs)
    return out


def _fmt_iv(v, lo, hi, fmt="{:.4g}"):
    s = fmt.format(v) if v is not None else "-"
    if lo is not None and hi is not None:
        s += f"  [{fmt.format(lo)}, {fmt.format(hi)}]"
    return s


@main.command("hparams")
@click.option("--lr", "lr_fit", default="steplaw-2025", show_default=True, metavar="FIT",
              help="Learning-rate fit: a fit JSON (law lr_opt / lr_power) or a published name.")
@click.option("--bs", "bs_fit", default="steplaw-2025", show_default=True, metavar="FIT",
              help="Batch-size fit: a fit JSON (law bs_opt / bs_opt_nd) or a published name.")
@click.option("--N", "N", type=float, required=True, help="Parameters (non-embedding for Step Law fits).")
@click.option("--D", "D", type=float, required=True, help="Training tokens.")
@click.option("--seq-len", type=POSITIVE, default=2048, show_default=True, help="Tokens per sequence.")
@level_option()
@json_option("Print one JSON object.")
def hparams_cmd(lr_fit, bs_fit, N, D, seq_len, level, as_json):
    """Optimal peak learning rate and batch size (tokens and sequences) at N, D, with intervals."""
    from ..analysis.sweep import hparams_predict, load_hparam_fit

    lf = load_hparam_fit(lr_fit, law="lr_opt")
    bf = load_hparam_fit(bs_fit, law="bs_opt")
    r = hparams_predict(lf, bf, N, D, seq_len=seq_len, level=level)
    for role, f in (("lr", lf), ("bs", bf)):
        for note in (health_warning(f, role), no_range_warning(f, role)):
            if note:
                warn(note)
    far = max((x for x in (r["lr_extrapolation"], r["bs_extrapolation"]) if x is not None), default=None)
    if far is not None and far > EXTRAPOLATION_WARN:
        warn(f"N={N:.3g}, D={D:.3g} lies {far:.0f}x beyond the range the fits saw; "
             "intervals assume the laws hold that far")
    if r["lr_lower"] is None or r["batch_tokens_lower"] is None:
        warn("a fit carries no uncertainty (published constants without a bootstrap); intervals are missing")
    if as_json:
        emit_json(r)
        return
    lvl = int(round(level * 100))
    click.echo(f"N={N:.4g}  D={D:.4g}   ({lvl}% intervals of the fitted laws)")
    click.echo(f"  lr*  = {_fmt_iv(r['lr'], r['lr_lower'], r['lr_upper'])}   ({r['lr_law']}: {r['lr_fit']})")
    click.echo(f"  B*   = {_fmt_iv(r['batch_tokens'], r['batch_tokens_lower'], r['batch_tokens_upper'])} tokens"
               f"   ({r['bs_law']}: {r['bs_fit']})")
    click.echo(f"       = {_fmt_iv(r['batch_sequences'], r['batch_sequences_lower'], r['batch_sequences_upper'], '{:.1f}')}"
               f" sequences of {seq_len:g}")


@main.group("sweep")
def sweep_group():
    """Learning-rate / batch-size sweeps: per-cell optima, leave-one-cell-out, figures."""


@sweep_group.command("cells")
@click.argument("data")
@_sweep_options
@click.option("--bowl-tol", type=NONNEG, default=0.01, show_default=True,
              help="Bowl fit: runs within this relative gap of the cell's best (at least 10 runs).")
@json_option()
def sweep_cells(data, maps, units, where, tol, loss_col, n, bowl_tol, as_json):
    """Per (N, D) cell: runs, best run, plateau extent and the bowl optimum."""
    from ..analysis.sweep import cells

    df = _filter(_load(data, maps, units), where)
    c = cells(df, tol=tol, loss_col=loss_col, n=n, bowl_tol=bowl_tol)
    if as_json:
        emit_json({"source": data, "tol": tol, "loss_col": c.attrs.get("loss_col"), "cells": c.to_dict(orient="records")})
        return
    cols = [k for k in ("N", "N_active", "D") if k in c.columns] + [
        "n_runs", "n_plateau", "best_loss", "best_lr", "best_batch_tokens", "bowl_lr", "bowl_batch_tokens", "bowl_method",
        "lr_censored", "batch_censored"]
    click.echo(frame_text(c[cols], digits=4))


@sweep_group.command("loco")
@click.argument("data")
@_sweep_options
@click.option("--select", type=click.Choice(["plateau", "best", "bowl"]), default="plateau", show_default=True,
              help="Rows the laws are fitted on.")
@click.option("--bs-law", type=click.Choice(["bs_opt", "bs_opt_nd"]), default="bs_opt", show_default=True,
              help="Batch-size law fitted on the other cells.")
@click.option("--lr-law", type=click.Choice(["lr_opt", "lr_power"]), default="lr_opt", show_default=True,
              help="Learning-rate law fitted on the other cells.")
@json_option()
def sweep_loco(data, maps, units, where, tol, loss_col, n, select, bs_law, lr_law, as_json):
    """Leave-one-cell-out: fit lr*/B* on the other cells, score the predicted setting in the held-out cell.

    Gaps are the loss at the predicted setting relative to the cell's best run (nearest swept run,
    and linear interpolation over the runs), next to Step Law's published formula.
    """
    from ..analysis.sweep import loco

    df = _filter(_load(data, maps, units), where)
    res = loco(df, select=select, tol=tol, loss_col=loss_col, n=n, bs_law=bs_law, lr_law=lr_law)
    if as_json:
        emit_json({"source": data, **res})
        return
    R = pd.DataFrame(res["rows"])
    cols = [k for k in ("N", "N_active", "D") if k in R.columns] + ["lr_pred", "batch_pred", "gap_nearest", "gap_interp",
                                                                     "steplaw-2025_gap_nearest", "steplaw-2025_gap_interp"]
    show = R[cols].copy()
    for c in cols:
        if "gap" in c:
            show[c] = show[c] * 100
    click.echo(frame_text(show.rename(columns=lambda c: c.replace("gap_", "gap%_")), digits=4))
    s = res["summary"]
    click.echo(f"\nmean gap ({select}, {lr_law}, {bs_law}, {s['cells']} cells): nearest {s['mean_gap_nearest']:.4%}, "
               f"interpolated {s['mean_gap_interp']:.4%}; published steplaw-2025: nearest "
               f"{s['steplaw-2025_mean_gap_nearest']:.4%}, interpolated {s['steplaw-2025_mean_gap_interp']:.4%}")


@sweep_group.command("plot")
@click.argument("data")
@_sweep_options
@click.option("--kind", type=click.Choice(["landscape", "laws"]), default="landscape", show_default=True,
              help="landscape: loss over (lr, batch) per cell; laws: the fitted laws against the cells' optima.")
@click.option("--cell", "cell", multiple=True, metavar="KEY=VALUE",
              help="The cell to draw (e.g. --cell N=2.147e8 --cell D=4e9); default: every cell.")
@click.option("--lr", "lr_fit", default=None, metavar="FIT",
              help="Learning-rate fit (file or published name) to draw; give --bs too "
                   "(default: both laws are fitted on DATA).")
@click.option("--bs", "bs_fit", default=None, metavar="FIT",
              help="Batch-size fit (file or published name) to draw; give --lr too.")
@click.option("--select", type=click.Choice(["plateau", "best", "bowl"]), default="plateau", show_default=True,
              help="Rows the laws are fitted on (without --lr/--bs); --kind laws draws them as points.")
@click.option("-o", "--output", callback=output_path, type=click.Path(dir_okay=False), required=True, help="HTML file to write.")
@force_option()
def sweep_plot(data, maps, units, where, tol, loss_col, n, kind, cell, lr_fit, bs_fit, select, output, force):
    """Write a plotly HTML figure: the loss landscape per cell, or the fitted laws vs the cells' optima."""
    from ..analysis.sweep import (fit_pair, landscape_figure, laws_figure, load_hparam_fit,
                                  prepare_sweep, validate_sweep)
    from ..util import atomic_write_text, check_writable

    check_writable(output, force)
    df = _filter(_load(data, maps, units), where)
    if (lr_fit is None) != (bs_fit is None):
        raise ScalelawError("give both --lr and --bs (or neither: the laws are then fitted on DATA)")
    if lr_fit:
        lf, bf = load_hparam_fit(lr_fit, law="lr_opt"), load_hparam_fit(bs_fit, law="bs_opt")
    else:
        lf, bf = fit_pair(prepare_sweep(df, select=select, tol=tol, loss_col=loss_col, n=n))
    if kind == "laws":
        figs = [laws_figure(df, lf, bf, select=select, tol=tol, loss_col=loss_col, n=n)]
    else:
        if cell:
            figs = [landscape_figure(df, parse_pairs(cell, "--cell", numeric=True), lf, bf, loss_col=loss_col,
                                     n=n, tol=tol)]
        else:
            t, _, _, keys = validate_sweep(df, loss_col, n)
            figs = [landscape_figure(df, k if isinstance(k, tuple) else (k,), lf, bf, loss_col=loss_col, n=n, tol=tol)
                    for k, _ in t.groupby(keys, sort=True)]
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    html = "<html><head><meta charset='utf-8'></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    atomic_write_text(output, html, force=force)
    click.echo(f"wrote {output} ({count(len(figs), 'figure')})")


@sweep_group.command("cellboot")
@click.argument("fit")
@click.argument("data")
@table_options
@click.option("-k", "k", type=click.IntRange(2, MAX_BOOT), default=1000, show_default=True, help="Resamples of cells.")
@seed_option()
@click.option("-o", "--output", callback=output_path, type=click.Path(dir_okay=False), help="Write the fit with cell-bootstrap samples here.")
@force_option()
@json_option()
def sweep_cellboot(fit, data, maps, units, k, seed, output, force, as_json):
    """Intervals of a sweep FIT by resampling whole (N, D) cells of DATA instead of runs."""
    from ..analysis.sweep import bootstrap_cells
    from ..result import load_fit
    from ..util import check_writable

    if output:
        check_writable(output, force)
    f = load_fit(fit)
    g = bootstrap_cells(f, _load(data, maps, units), k=k, seed=seed)
    if output:
        g.save(output, force=force)
    res = {"law": g.law.name, "params": g.params.to_dict(), "resamples": int(len(g.boot)), "level": g.level,
           "ci_cells": g.ci, "ci_before": f.ci, "interval_before": f.interval_method}
    if as_json:
        emit_json(res)
        return
    click.echo(f"{g.law.name}: {len(g.boot)} cell resamples ({int(round(g.level * 100))}% intervals)")
    for name, v in g.params.items():
        a, b = g.ci.get(name, [None, None]), f.ci.get(name, [None, None])
        fmt = lambda iv: "-" if iv[0] is None else f"[{iv[0]:.4g}, {iv[1]:.4g}]"
        click.echo(f"  {name:<8}{v:>12.5g}  cells {fmt(a):<24} before {fmt(b)}")
    if output:
        click.echo(f"wrote {output}")
