"""`scalelaw trajectory ...`: downstream ability across training checkpoints (fits per task,
flags, emergence, figures, the end predicted from the start) and the learning-rate annealing law."""
from __future__ import annotations

import math

import click

from ..util import atomic_write_text, check_writable, dumps
from .app import main
from .common import force_option, json_option, level_option, load_data, parse_pairs, table_options

TASK_HELP = ("Task (repeatable), as in score_<task>; a pattern ending in '*' averages the matching tasks "
             "(e.g. 'hendrycksTest_*' -> hendrycksTest_avg). Default: every task.")


def task_option(f):
    return click.option("--task", "tasks", multiple=True, metavar="TASK", help=TASK_HELP)(f)


def chance_option(f):
    return click.option("--chance", "chances", multiple=True, metavar="TASK=SCORE",
                        help="Chance level of a task (overrides the declared one; see docs/trajectory.md).")(f)


def data_options(f):
    """--map, --units, --params and --tokens-per-step (for lm-evaluation-harness results)."""
    f = click.option("--params", "params", multiple=True, metavar="RUN=N",
                     help="Parameter count of a run of lm-evaluation-harness results (Pythia's are known).")(f)
    f = click.option("--tokens-per-step", "tokens_per_step", type=click.FloatRange(0, min_open=True), default=None,
                     help="Tokens per optimiser step, for lm-evaluation-harness results without a config beside "
                          "them (D = step x this; Pythia's 2,097,152 is known).")(f)
    return table_options(f)


def _load(data, maps, units, tokens_per_step=None, params=()):
    kw = {"tokens_per_step": tokens_per_step} if tokens_per_step else {}
    if params:
        kw["params"] = parse_pairs(params, "--params", numeric=True, example="my-model=1.6e8", many=False)
    return load_data(data, maps, units, **kw)


def _g(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


@main.group()
def trajectory():
    """Training trajectories: downstream scores across checkpoints (per task, across sizes), a
    run's final score predicted from its start, and loss curves under learning-rate schedules."""


@trajectory.command("fit")
@click.argument("data")
@task_option
@click.option("--x", "x", type=click.Choice(["tokens", "loss"]), default=None,
              help="Fit error against (N, D) with downstream_direct (tokens, compute C = 6ND), or against the "
                   "validation loss with downstream_sigmoid [default: loss when the table has one, else tokens].")
@data_options
@json_option("Print one JSON list: per task the law, parameters, rows and residual sd.")
def fit_cmd(data, tasks, x, maps, units, tokens_per_step, params, as_json):
    """Fit a downstream law per task across every checkpoint of every size in DATA (a table, a
    folder of lm-evaluation-harness results, or a dataset such as 'pythia')."""
    from ..analysis.checkpoints import fit_tasks

    res = fit_tasks(_load(data, maps, units, tokens_per_step, params), tasks or None, x)
    rows = res.rows()
    if as_json:
        click.echo(dumps(rows))
        return
    click.echo(f"{res.law} (error = 1 - score against {'N, D' if res.x == 'tokens' else 'loss'}), per task:")
    for r in rows:
        if "error" in r:
            click.echo(f"  {r['task']:<40} not fitted: {r['error']}")
            continue
        ps = ", ".join(f"{k}={_g(v)}" for k, v in r["params"].items())
        click.echo(f"  {r['task']:<40} {ps}  (rows {r['rows']}, residual sd {_g(r['residual_sd'])})")


@trajectory.command("flags")
@click.argument("data")
@task_option
@chance_option
@click.option("--z", type=float, default=2.0, show_default=True, help="Stderrs above chance to count as above it.")
@click.option("--z-drop", type=float, default=4.0, show_default=True,
              help="Combined stderrs a drop below the best earlier checkpoint needs to count as non-monotonic.")
@click.option("--gap", type=float, default=0.9, show_default=True,
              help="Saturated: the final score closes this fraction of the distance from chance to 1.")
@click.option("--per-run", is_flag=True, help="One line per (task, run) instead of per task.")
@data_options
@json_option("Print {rules, tasks: [...], runs: [...]}.")
def flags_cmd(data, tasks, chances, z, z_drop, gap, per_run, maps, units, tokens_per_step, params, as_json):
    """Flag tasks at chance, saturated or non-monotonic over training (rules: docs/trajectory.md)."""
    from ..analysis.checkpoints import RULES, flag_tasks, summarize_flags

    chance = parse_pairs(chances, "--chance", numeric=True, example="piqa=0.5", many=False)
    fl = flag_tasks(_load(data, maps, units, tokens_per_step, params), tasks or None, chance, z=z, z_drop=z_drop, gap=gap)
    summ = summarize_flags(fl)
    if as_json:
        click.echo(dumps({"rules": RULES, "settings": {"z": z, "z_drop": z_drop, "gap": gap},
                          "tasks": summ.to_dict("records"), "runs": fl.to_dict("records")}))
        return
    if per_run:
        click.echo(f"{'task':<34}{'run':<22}{'final':>7}{'chance':>7}  flags")
        for _, r in fl.iterrows():
            fl_ = [k for k in ("at_chance", "saturated", "non_monotonic") if r[k]]
            click.echo(f"{r['task'][:33]:<34}{str(r['run'])[:21]:<22}{r['final']:>7.3f}{r['chance']:>7.2f}  "
                       f"{', '.join(fl_) or '-'}")
        return
    click.echo(f"{'task':<34}{'chance':>7}{'sizes':>6}{'at chance':>10}{'saturated':>10}{'non-mono':>9}  verdict")
    for _, r in summ.iterrows():
        click.echo(f"{r['task'][:33]:<34}{r['chance']:>7.2f}{r['sizes']:>6}{r['at_chance']:>10}{r['saturated']:>10}"
                   f"{r['non_monotonic']:>9}  {r['verdict']}")


@trajectory.command("emergence")
@click.argument("data")
@task_option
@chance_option
@click.option("--z", type=float, default=2.0, show_default=True, help="Stderrs above chance to count as above it.")
@data_options
@json_option("Print {task: {run: compute or null}}.")
def emergence_cmd(data, tasks, chances, z, maps, units, tokens_per_step, params, as_json):
    """Compute (FLOPs, 6ND) at which each task leaves chance for good, per model size."""
    from ..analysis.checkpoints import emergence

    chance = parse_pairs(chances, "--chance", numeric=True, example="piqa=0.5", many=False)
    em = emergence(_load(data, maps, units, tokens_per_step, params), tasks or None, chance, z=z)
    if as_json:
        click.echo(dumps({t: {r: (None if not math.isfinite(v) else float(v)) for r, v in row.items()}
                          for t, row in em.iterrows()}))
        return
    cols = list(em.columns)
    click.echo("compute (FLOPs) at which each task leaves chance ('-': never during training)")
    w = max([10] + [len(str(c)) + 1 for c in cols])
    click.echo(f"{'task':<30}" + "".join(f"{str(c):>{w}}" for c in cols))
    for t, row in em.iterrows():
        click.echo(f"{str(t)[:29]:<30}" + "".join(f"{_g(row[c]):>{w}}" for c in cols))


@trajectory.command("plot")
@click.argument("data")
@click.option("--task", required=True, metavar="TASK", help="The task to draw (a '*' pattern averages tasks).")
@click.option("--no-fit", is_flag=True, help="Only the checkpoints, without the fitted curves.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@force_option()
@data_options
def plot_cmd(data, task, no_fit, output, force, maps, units, tokens_per_step, params):
    """Score against tokens per model size, with the downstream law fitted across checkpoints."""
    from ..analysis.checkpoints import expand_tasks, figure, fit_task

    check_writable(output, force)
    df, (name,) = expand_tasks(_load(data, maps, units, tokens_per_step, params), [task])
    fig = figure(df, name, None if no_fit else fit_task(df, name, "tokens"))
    atomic_write_text(output, fig.to_html(include_plotlyjs=True, full_html=True), force=force)
    click.echo(f"wrote {output}")


def _predict_rows(df):
    keep = ("task", "family", "run", "fraction", "observed_step", "final_step", "predicted", "lower", "upper",
            "lower_fit", "upper_fit", "last_observed", "powerlaw", "actual", "error")
    return [{k: r[k] for k in keep if k in r and not (isinstance(r[k], float) and k == "error")}
            for r in df.to_dict("records")]


@trajectory.command("predict")
@click.argument("data")
@click.option("--run", required=True, help="The run whose final score to predict.")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), required=True,
              help="Use its checkpoints up to this fraction of --final-step.")
@click.option("--final-step", type=float, default=None,
              help="The run's planned last step [default: its last checkpoint in DATA].")
@task_option
@level_option()
@data_options
@json_option("Print one JSON list, one object per task.")
def predict_cmd(data, run, fraction, final_step, tasks, level, maps, units, tokens_per_step, params, as_json):
    """Predict RUN's final score per task from its first FRACTION of training plus smaller runs."""
    from ..analysis.checkpoints import predict_final

    res = predict_final(_load(data, maps, units, tokens_per_step, params), run, fraction, tasks or None, final_step=final_step, level=level)
    rows = _predict_rows(res)
    if as_json:
        click.echo(dumps(rows))
        return
    lvl = int(round(level * 100))
    click.echo(f"{run}: final score at step {_g(res['final_step'].iloc[0])} from checkpoints up to step "
               f"{_g(res['observed_step'].iloc[0])} ({fraction:g} of training) and smaller runs")
    click.echo(f"{'task':<32}{'predicted':>10}  {lvl}% interval     {'last seen':>9}{'tokens-PL':>10}{'actual':>8}")
    for r in rows:
        iv = f"[{_g(r['lower'])}, {_g(r['upper'])}]"
        click.echo(f"{r['task'][:31]:<32}{_g(r['predicted']):>10}  {iv:<17}{_g(r['last_observed']):>9}"
                   f"{_g(r['powerlaw']):>10}{_g(r.get('actual')):>8}")


@trajectory.command("backtest")
@click.argument("data")
@task_option
@click.option("--fraction", "fractions", type=click.FloatRange(0, 1, min_open=True), multiple=True,
              help="Fractions of training observed (repeatable) [default: 0.1, 0.25, 0.5].")
@click.option("--target", "targets", multiple=True, help="Runs to predict (repeatable) [default: every run with "
              "at least two smaller ones].")
@level_option()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write every prediction here (CSV).")
@force_option()
@data_options
@json_option("Print {summary: [...], predictions: [...]}.")
def backtest_cmd(data, tasks, fractions, targets, level, output, force, maps, units, tokens_per_step, params, as_json):
    """Predict each target run's final scores from its start; MAE and coverage per task family
    against the last observed value and a per-run power law in tokens."""
    from ..analysis.checkpoints import backtest, score_backtest

    if output:
        check_writable(output, force)
    bt = backtest(_load(data, maps, units, tokens_per_step, params), tasks or None, fractions or (0.1, 0.25, 0.5), targets=targets or None,
                  level=level)
    summ = score_backtest(bt)
    if output:
        atomic_write_text(output, bt.drop(columns=[c for c in ("params",) if c in bt.columns]).to_csv(index=False),
                          force=force)
    if as_json:
        click.echo(dumps({"summary": summ.to_dict("records"), "predictions": _predict_rows(bt)}))
        return
    click.echo(format_backtest(summ, level))
    if output:
        click.echo(f"wrote {output}")


def format_backtest(summ, level: float = 0.95) -> str:
    """The backtest summary as a Markdown table (MAE in accuracy points, coverage of the intervals)."""
    lvl = int(round(level * 100))
    lines = [f"| family | f | n | law MAE | law {lvl}% coverage (fit's own interval) | law width | last-value MAE | "
             "last-value coverage | tokens power law MAE | power law coverage | power law width |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in summ.iterrows():
        c = lambda v: "-" if not math.isfinite(v) else f"{v:.0%}"
        lines.append(f"| {r['family']} | {r['fraction']:g} | {r['n']} | {r['law_mae']:.2f} | {c(r['law_coverage'])} "
                     f"({c(r['fit_coverage'])}) | {r['law_width']:.1f} | "
                     f"{r['last_mae']:.2f} | {c(r['last_coverage'])} | {r['powerlaw_mae']:.2f} | "
                     f"{c(r['powerlaw_coverage'])} | {r['powerlaw_width']:.1f} |")
    return "\n".join(lines)


@trajectory.command("anneal")
@click.argument("fit_path", metavar="FIT")
@click.option("--schedule", "kind", type=click.Choice(["constant", "cosine", "wsd", "linear"]), required=True,
              help="The schedule to predict (warmup-stable-decay: wsd).")
@click.option("--steps", type=click.IntRange(1), required=True, help="Total steps of the schedule.")
@click.option("--peak", type=float, required=True, help="Peak learning rate.")
@click.option("--warmup-steps", type=click.IntRange(0), default=0, show_default=True, help="Linear warmup steps.")
@click.option("--final", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Final learning rate as a fraction of the peak (cosine, linear, wsd).")
@click.option("--decay-frac", type=click.FloatRange(0, 1, min_open=True), default=0.2, show_default=True,
              help="wsd: fraction of the steps spent decaying.")
@click.option("--every", type=click.IntRange(1), default=None, help="Print every K-th step [default: 20 points].")
@level_option(None)
@json_option("Print one JSON list of {step, lr, S1, S2, mean, lower, upper, pred_lower, pred_upper}.")
def anneal_cmd(fit_path, kind, steps, peak, warmup_steps, final, decay_frac, every, level, as_json):
    """Loss curve under another learning-rate schedule, from a fit of the lr_anneal law
    (scalelaw fit lr_anneal curve.csv -o FIT; Tissue et al. 2024)."""
    from ..laws.anneal import predict_schedule, schedule
    from ..result import load_fit

    fit = load_fit(fit_path)
    lr = schedule(kind, steps, peak, warmup=warmup_steps, final=final, decay_frac=decay_frac)
    w = int(((fit.settings or {}).get("prepare_options") or {}).get("warmup", 0))
    every = every or max(1, steps // 20)
    at = [s for s in range(every, steps + 1, every) if s > w]
    if not at or at[-1] != steps:
        at.append(steps)
    pred = predict_schedule(fit, lr, at, level=level)
    cols = ["step", "lr", "S1", "S2", "mean", "lower", "upper", "pred_lower", "pred_upper"]
    if as_json:
        click.echo(dumps(pred[cols].to_dict("records")))
        return
    click.echo(f"lr_anneal: {kind} schedule, {steps} steps, peak {peak:g}")
    click.echo(f"{'step':>9}{'lr':>11}{'S1':>10}{'S2':>10}{'loss':>9}  prediction interval")
    for _, r in pred.iterrows():
        click.echo(f"{int(r['step']):>9}{r['lr']:>11.3g}{r['S1']:>10.4g}{r['S2']:>10.4g}{r['mean']:>9.4f}  "
                   f"[{_g(r['pred_lower'])}, {_g(r['pred_upper'])}]")
