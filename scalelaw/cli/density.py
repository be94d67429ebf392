"""`scalelaw density score|trend`: capacity density of released models and the densing trend."""
from __future__ import annotations

import click

from ..util import atomic_write_text, check_writable, dumps
from .app import main
from .common import NONNEG, POSITIVE, output_path, bootstrap_options, force_option, json_option, parse_pairs


@main.group()
def density():
    """Capacity density (Densing Law): effective parameter size against a reference family,
    and how the maximum density grows over release dates."""


@density.command("score")
@click.argument("models")
@click.option("--reference", required=True, metavar="EXPR",
              help='Filter expression selecting the reference rows, e.g. \'`Model Family` in ["Pythia", "OPT"]\' '
                   "(original or canonical column names).")
@click.option("--benchmarks", metavar="A,B,...",
              help="Benchmarks to use (default: MMLU,HellaSwag,Winograd,GSM8K).")
@click.option("--per-benchmark", is_flag=True,
              help="One ruler per benchmark (N_eff = geometric mean over usable benchmarks) instead of one on "
                   "the average score.")
@click.option("--method", type=click.Choice(["auto", "one-step", "two-step"]), default="auto", show_default=True,
              help="two-step needs a 'loss' column on the reference rows; auto picks it when present.")
@click.option("--tokens", type=POSITIVE, default=None,
              help="Reference token budget D_ref (default: geometric median of the reference rows' D).")
@click.option("--baseline", "baselines", multiple=True, metavar="BENCH=SCORE",
              help="Random baseline of a benchmark (overrides the declared one).")
@click.option("--scale", type=POSITIVE, default=1.0, show_default=True, help="Scores lie in [0, SCALE].")
@click.option("--margin", type=NONNEG, default=0.05, show_default=True,
              help="Flag scores within this fraction of the baseline-to-ceiling range from either end.")
@bootstrap_options(200, "Bootstrap resamples over reference models.")
@click.option("-o", "--output", "output", callback=output_path, type=click.Path(dir_okay=False),
              help="Write the scored table here (CSV; .json for JSON rows).")
@force_option()
@json_option("Print a JSON list of rows.")
def score_cmd(models, reference, benchmarks, per_benchmark, method, tokens, baselines, scale, margin, boot, seed,
              level, output, force, as_json):
    """Effective size N_eff and density N_eff/N of every model in MODELS (file or dataset name)."""
    from ..analysis.density import score_models

    if output:
        check_writable(output, force)
    res = score_models(models, reference, benchmarks, combine="per-benchmark" if per_benchmark else "average",
                       method=method, tokens=tokens, baselines=parse_pairs(baselines, "--baseline", numeric=True, example="TruthfulQA=0.2", many=False), scale=scale,
                       boot=boot, seed=seed, level=level, margin=margin)
    for label, rf in res.fits.items():
        d = rf.diagnostics
        if not d.get("converged"):
            click.echo(f"warning: the reference fit for {label} did not converge; densities are unreliable", err=True)
        if d.get("params_at_bounds"):
            click.echo(f"warning: reference fit for {label}: parameter(s) at bounds: "
                       f"{', '.join(d['params_at_bounds'])}", err=True)
    if output:
        text = dumps(res.rows()) + "\n" if str(output).lower().endswith(".json") else res.to_csv()
        atomic_write_text(output, text, force=force)
    if as_json:
        click.echo(dumps(res.rows()))
        return
    t = res.table
    click.echo(f"capacity density ({res.method}; reference: {res.reference}; benchmarks: {', '.join(res.benchmarks)}; "
               f"D_ref: {res.D_ref:.3g} tokens)" if res.D_ref else
               f"capacity density ({res.method}; reference: {res.reference}; benchmarks: {', '.join(res.benchmarks)})")
    lvl = int(round(level * 100))
    click.echo(f"{'model':<46}{'N':>10}{'N_eff':>10}{'density':>9}  {lvl}% interval      flag")
    for _, r in t.iterrows():
        f = lambda x: "" if x != x else ("inf" if x == float("inf") else f"{x:.3g}")
        iv = f"[{f(r['density_lower'])}, {f(r['density_upper'])}]"
        click.echo(f"{str(r['model'])[:45]:<46}{f(r['N']):>10}{f(r['N_eff']):>10}{f(r['density']):>9}  "
                   f"{iv:<18}{r['flag']}")
    if output:
        click.echo(f"wrote {output}")


@density.command("trend")
@click.argument("scored")
@click.option("--dates", required=True, metavar="FILE",
              help="Release dates: CSV with columns model, release_date (or the dataset 'release-dates').")
@click.option("--fit", "fit_on", type=click.Choice(["frontier", "all"]), default="frontier", show_default=True,
              help="frontier: the running maximum (models setting a density record, the paper's rho_max); "
                   "all: every model.")
@click.option("--since", metavar="DATE", help="Only models released on or after DATE (YYYY-MM-DD).")
@click.option("--include-flagged", is_flag=True, help="Keep models whose score was flagged.")
@click.option("--skip-undated", is_flag=True, help="Leave out models without a release date instead of failing.")
@bootstrap_options(1000, "Bootstrap resamples over models.")
@json_option("Print one JSON object.")
def trend_cmd(scored, dates, fit_on, since, include_flagged, skip_undated, boot, seed, level, as_json):
    """ln(max density) = A t + B over release dates; doubling time ln 2 / A."""
    from ..analysis.density import fit_trend

    tr = fit_trend(scored, dates, fit=fit_on, include_flagged=include_flagged, skip_undated=skip_undated,
                   since=since, boot=boot, seed=seed, level=level)
    if as_json:
        click.echo(dumps(tr.to_dict()))
        return
    for n in tr.notes:
        click.echo(f"note: {n}", err=True)
    f = lambda x: "unbounded" if x is None else f"{x:.2f}"
    lvl = int(round(level * 100))
    click.echo(f"densing trend ({tr.fit}, {tr.n_points} of {tr.n_models} models"
               + (f"; densities: {tr.method}" if tr.method else "") + "): "
               f"ln(density) = {tr.slope_per_month:.4f} t {'+' if tr.intercept >= 0 else '-'} {abs(tr.intercept):.3f}  (t in months since 2023-01-01)")
    click.echo(f"doubling time: {f(tr.doubling_months)} months, {lvl}% interval [{f(tr.doubling_months_lower)}, "
               f"{f(tr.doubling_months_upper)}] ({tr.interval_method})")
    for _, r in tr.points.iterrows():
        click.echo(f"  {r['release_date'].date()}  {r['model']:<45} {r['density']:.3g}")
