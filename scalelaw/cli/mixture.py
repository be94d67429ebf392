"""`scalelaw mixture fit|evaluate|recommend`: data-mixture regression (RegMix) and mixture recommendation."""
from __future__ import annotations

import click

from ..errors import ScalelawError
from ..util import atomic_write_text, check_writable, dumps
from .app import main
from .common import (LEVEL, MAX_SAMPLES, POSITIVE, output_path, boot_option, emit_json, force_option, json_option, level_option, parse_pairs,
                     seed_option)


def _pairs(items, option: str) -> dict:
    """Repeated DOMAIN=NUMBER options (a leading mix_ is dropped) as {domain: float}."""
    return parse_pairs(items, option, example="pile_cc=0.3", strip="mix_")


def _strength(value: str):
    try:
        parts = [float(x) for x in value.split(",")]
    except ValueError:
        raise ScalelawError(f"--strength takes S or MIN,MAX (e.g. 0.1,5); got {value!r}") from None
    if len(parts) not in (1, 2):
        raise ScalelawError(f"--strength takes S or MIN,MAX; got {value!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


@main.group()
def mixture():
    """Data-mixture regression (RegMix): predict a loss from domain weights (mix_<domain> columns)
    and recommend a mixture."""


@mixture.command("fit")
@click.argument("table")
@click.option("--target", required=True, metavar="COL", help="Target column, e.g. loss_pile_cc.")
@click.option("--model", type=click.Choice(["linear", "gbdt", "mixlaw"]), default="linear", show_default=True,
              help="linear: OLS; gbdt: LightGBM trees (RegMix's choice); mixlaw: L = c + k exp(sum t_j r_j).")
@click.option("--test", "tests", multiple=True, metavar="TABLE",
              help="Evaluate on this table of unseen mixtures too and record the figures (repeatable).")
@click.option("--prior", "prior", multiple=True, metavar="DOMAIN=SHARE",
              help="Token share of each domain (the Dirichlet prior of `recommend`). Default: RegMix's Pile token "
                   "shares for Pile domains, else the mean training mixture.")
@click.option("--rounds", type=click.IntRange(1, 100_000), default=None, help="gbdt boosting rounds [1000].")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=None,
              help="gbdt learning rate [0.01].")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None, help="gbdt seed [42].")
@click.option("--valid", default=None, metavar="TABLE",
              help="gbdt: choose the number of rounds by early stopping on this table (held-out runs of the "
                   "training runs' model size); RegMix's notebook stops on its 1M test set.")
@click.option("--early-stopping", type=click.IntRange(1), default=None, metavar="N",
              help="gbdt with --valid: stop after N rounds without improvement of the validation L1 or L2 "
                   "error [3, RegMix's].")
@click.option("-o", "--output", callback=output_path, type=click.Path(dir_okay=False), help="Write the fit (JSON) here.")
@force_option()
@json_option("Print the fit as JSON.")
def fit_cmd(table, target, model, tests, prior, rounds, learning_rate, seed, valid, early_stopping, output, force,
            as_json):
    """Fit a regressor predicting TARGET from the mix_ weights of TABLE (file, MIX.csv,LOSS.csv or dataset)."""
    from ..analysis.mixture import fit_mixture

    if output:
        check_writable(output, force)
    # warnings (e.g. a validation table on another loss scale) reach the user through the app's handler
    fit = fit_mixture(table, target, model=model, prior=_pairs(prior, "--prior") or None, tests=tests,
                      rounds=rounds, learning_rate=learning_rate, seed=seed, valid=valid,
                      early_stopping=early_stopping)
    if output:
        fit.save(output, force=force)
    if as_json:
        d = fit.to_dict()
        if output:
            d["output"] = str(output)
        emit_json(d)
    else:
        click.echo(fit.summary())
        if output:
            click.echo(f"\nwrote {output}")


@mixture.command("evaluate")
@click.argument("fit", type=click.Path(dir_okay=False))
@click.argument("table")
@click.option("--level", type=LEVEL, default=0.95, show_default=True,
              help="Level of the bootstrap interval of Spearman's rho (resampling the table's runs).")
@json_option("Print {spearman, pearson, mse, n, spearman_interval, level, ...} as JSON.")
def evaluate_cmd(fit, table, level, as_json):
    """Rank and error figures of FIT on TABLE (unseen mixtures with the fit's target column)."""
    from ..analysis.mixture import evaluate, load_fit

    f = load_fit(fit)
    m = evaluate(f, table, level=level)
    out = {"fit": str(fit), "table": table, "target": f.target, "model": f.model.name, **m}
    iv = m.get("spearman_interval")
    ivs = f" ({100 * level:g}% bootstrap {100 * iv[0]:.2f} to {100 * iv[1]:.2f}%)" if iv else ""
    text = (f"{f.model.name} on {table} ({m['n']} runs, {f.target}): spearman {100 * m['spearman']:.2f}%{ivs}  "
            f"pearson {100 * m['pearson']:.2f}%  mse {m['mse']:.4g}")
    if out.get("early_stopping_set"):
        text += "\nnote: the fit chose its boosting rounds on this table, so this figure is not an independent test"
    if as_json:
        emit_json(out)
    else:
        click.echo(text)


@mixture.command("recommend")
@click.argument("fit", type=click.Path(dir_okay=False))
@click.option("--samples", type=click.IntRange(1, MAX_SAMPLES), default=100_000, show_default=True,
              help="Candidate mixtures drawn from the Dirichlet prior.")
@click.option("--top-k", type=click.IntRange(1), default=128, show_default=True,
              help="The recommendation is the mean of the K best predicted.")
@seed_option("Seed of the candidate draws and of the bootstrap resamples.")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="Prior p -> p^T (renormalised); RegMix's proxy-run generator uses 0.5.")
@click.option("--strength", default="1", show_default=True, metavar="S|MIN,MAX",
              help="Dirichlet concentration S * prior; MIN,MAX picks S per draw among 15 log-spaced values "
                   "(RegMix's generator: 0.1,5).")
@click.option("--min-weight", "min_weight", multiple=True, metavar="DOMAIN=W", help="Lower bound on a weight.")
@click.option("--max-weight", "max_weight", multiple=True, metavar="DOMAIN=W", help="Upper bound on a weight.")
@click.option("--max-epochs", type=click.FloatRange(0, min_open=True), default=None,
              help="At most this many passes over each domain's available tokens (RegMix's MAXIMUM_USAGE).")
@click.option("--available-tokens", "available", multiple=True, metavar="DOMAIN=N",
              help="Tokens available in a domain (default: token share x --corpus-tokens).")
@click.option("--corpus-tokens", type=POSITIVE, default=None, help="Total tokens of the corpus.")
@click.option("--train-tokens", type=POSITIVE, default=None,
              help="Tokens of the training run (default: the corpus size, i.e. weight <= epochs x share).")
@boot_option(20, "Bootstrap refits for the interval (0: none).")
@level_option()
@click.option("--table", default=None, help="Training table for the bootstrap (default: the fit's recorded source when it names a "
                   "public dataset; a path recorded in a fit file is never read on its own).")
@click.option("-o", "--output", callback=output_path, type=click.Path(dir_okay=False), help="Write the recommendation (JSON) here.")
@force_option()
@json_option("Print the recommendation as JSON.")
def recommend_cmd(fit, samples, top_k, seed, temperature, strength, min_weight, max_weight, max_epochs, available,
                  corpus_tokens, train_tokens, boot, level, table, output, force, as_json):
    """Recommend a mixture: mean of the TOP-K best-predicted of SAMPLES draws from Dirichlet(prior)."""
    from ..analysis.mixture import load_fit, recommend

    if output:
        check_writable(output, force)
    f = load_fit(fit)
    rec = recommend(f, samples=samples, top_k=top_k, seed=seed, temperature=temperature,
                    strength=_strength(strength), min_weight=_pairs(min_weight, "--min-weight"),
                    max_weight=_pairs(max_weight, "--max-weight"), max_epochs=max_epochs,
                    available_tokens=_pairs(available, "--available-tokens"), corpus_tokens=corpus_tokens,
                    train_tokens=train_tokens, boot=boot, level=level, table=table)
    if output:
        atomic_write_text(output, dumps(rec) + "\n", force=force)
    lines = [f"recommended mixture for {rec['target']} ({rec['model']}; mean of the {top_k} best of "
             f"{rec['accepted']} accepted / {rec['sampled']} sampled):"]
    iv = rec.get("mixture_interval") or {}
    for d in rec["domains"]:
        extra = f"  [{iv[d][0]:.4f}, {iv[d][1]:.4f}]" if d in iv else ""
        lines.append(f"  {d:<22} {rec['mixture'][d]:.4f}   prior {rec['prior'][d]:.4f}{extra}")
    pl = f"predicted {rec['target']}: {rec['predicted']:.4f}"
    if rec.get("interval"):
        pl += f"  ({100 * level:g}% bootstrap interval {rec['interval'][0]:.4f} to {rec['interval'][1]:.4f})"
    lines.append(pl)
    if rec.get("boot_failed"):
        lines.append(f"note: {rec['boot_failed']} of {boot} bootstrap refits failed and are left out of the intervals")
    if output:
        lines.append(f"wrote {output}")
    if as_json:
        emit_json(rec)
    else:
        click.echo("\n".join(lines))
