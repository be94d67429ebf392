"""Generate the worked-analysis notebooks from this script, so they stay reviewable as code.

    python notebooks/build.py            # (re)write the notebooks below, without outputs
    python notebooks/build.py --check    # exit 1 if a committed notebook differs from this script

Each notebook is short, reads the public data mirror (SCALELAW_MIRROR, else ../shared/data from
the project root) through scalelaw's loaders, and is executed in CI by tests/test_notebooks.py.
Edit the cells here, not in Jupyter; commit the notebooks without outputs. (density.ipynb is
written separately and is not generated here.)
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import warnings
warnings.filterwarnings("ignore")
import numpy as np
import pandas as pd
pd.set_option("display.precision", 4)
pd.set_option("display.width", 120)"""


# --------------------------------------------------------------------------------------------
# chinchilla.ipynb
# --------------------------------------------------------------------------------------------
CHINCHILLA = [
    ("md", """\
# Chinchilla on Epoch's data: fit, bootstrap, compute-optimal plan

Besiroglu et al. (2024) reconstructed the 245 runs behind Chinchilla's Figure 4 and refitted
L = E + A/N^alpha + B/D^beta with Hoffmann et al.'s objective (Huber, delta 1e-3, on log
residuals, summed over runs). We repeat that fit with `scalelaw`, bootstrap it, and read off the
compute-optimal model for Chinchilla's own budget, 5.76e23 FLOPs, comparing every number with
Epoch's."""),
    ("code", SETUP + """
from scalelaw import datasets, plots
from scalelaw.fit import fit
from scalelaw.analysis.plan import plan, format_plan"""),
    ("md", """\
The dataset holds model size N (all parameters), training FLOPs C and the final loss; D = C/(6N).
As Epoch did, the five highest-loss runs are dropped (240 are fitted)."""),
    ("code", """\
runs = datasets.load("chinchilla-epoch")
print(len(runs), "runs;", runs.attrs["note"])
runs[["N", "D", "C", "loss"]].describe()"""),
    ("md", "## Fit with a bootstrap over runs\nEpoch used 4,000 resamples; 400 keep this notebook quick."),
    ("code", """\
chin = fit("chinchilla", runs, boot=400, seed=0)
chin.summary()"""),
    ("md", "## Against Epoch's published fit (Besiroglu et al. 2024, Table 1 and bootstrap CIs)"),
    ("code", """\
epoch = {"E": (1.8169, 1.769, 1.871), "A": (482.01, 285.2, 743.6), "B": (2085.43, 1042.4, 5810.3),
         "alpha": (0.3478, 0.317, 0.373), "beta": (0.3658, 0.331, 0.415)}
ci = chin.ci
pd.DataFrame({name: {"scalelaw": chin.params[name], "scalelaw 95% CI": f"[{ci[name][0]:.4g}, {ci[name][1]:.4g}]",
                     "Epoch": v, "Epoch 95% CI": f"[{lo:.4g}, {hi:.4g}]",
                     "rel. diff": chin.params[name] / v - 1}
              for name, (v, lo, hi) in epoch.items()}).T"""),
    ("md", """\
## Data, fitted curves and residuals
Curves follow each group of runs (here: bins of compute, i.e. IsoFLOP-like profiles); bands are
the bootstrap interval of the fitted curve."""),
    ("code", "plots.plot_fit(chin, runs)"),
    ("code", "plots.plot_residuals(chin, runs)"),
    ("md", """\
## The compute-optimal model for 5.76e23 FLOPs
Epoch's constants give N_opt = 7.225e10, D_opt = 1.329e12 and L = 1.9744. `plan` propagates the
bootstrap jointly and says how far beyond the fitted runs the answer lies."""),
    ("code", """\
p = plan(compute=5.76e23, loss_fit=chin)
print(format_plan(p))
for w in p["warnings"]:
    print("warning:", w)"""),
    ("code", """\
pd.DataFrame({"scalelaw": [p["N"], p["D"], p["loss"]], "Epoch": [7.225e10, 1.329e12, 1.9744]},
             index=["N_opt", "D_opt", "loss"]).assign(rel_diff=lambda t: t.scalelaw / t.Epoch - 1)"""),
    ("code", "plots.plot_plan(p, chin)"),
    ("md", """\
The same from a shell: `scalelaw fit chinchilla chinchilla-epoch --boot 400 -o chin.json`, then
`scalelaw plan --compute 5.76e23 --loss chin.json` and `scalelaw report chin.json -o report.html
--data chinchilla-epoch --plan-compute 5.76e23`."""),
]


# --------------------------------------------------------------------------------------------
# hparams.ipynb
# --------------------------------------------------------------------------------------------
HPARAMS = [
    ("md", """\
# Optimal learning rate and batch size: the Step Law grid

Li et al. (2025) trained 1,911 dense models over a grid of learning rates and batch sizes in 17
(N, D) cells and fitted lr* = c N^alpha D^beta and B* = c D^gamma (batch in tokens) to the runs
within 0.25% of each cell's best smoothed loss. Published: lr* = 1.79 N^-0.713 D^0.307,
B* = 0.58 D^0.571. N counts non-embedding parameters."""),
    ("code", SETUP + """
from scalelaw.analysis import sweep
from scalelaw.analysis.plan import plan, format_plan"""),
    ("code", """\
grid = sweep.load_sweep("steplaw-dense")
print(len(grid), "runs in", grid.groupby(["N", "D"]).ngroups, "(N, D) cells")
grid[["N", "D", "lr", "batch_tokens", "smooth_loss"]].describe()"""),
    ("md", "## Step Law's protocol: plateau runs, log-linear fits, bootstrap"),
    ("code", """\
lr_fit, bs_fit, boot_means = sweep.steplaw_refit(grid, boot=200, seed=0)
lr_fit.summary()"""),
    ("code", "bs_fit.summary()"),
    ("md", """\
The released grid holds 1,911 of the roughly 3,700 runs the paper fitted, and the plain refit does
not reproduce the published constants (the D exponent of lr* is 0.20 here vs 0.307; see
docs/hparams.md). The table puts both side by side."""),
    ("code", """\
released = {"lr_opt": {"c": 1.7973, "alpha": -0.71292, "beta": 0.30749}, "bs_opt": {"c": 0.58069, "gamma": 0.57094}}
pd.DataFrame([{"law": law, "param": k, "scalelaw (bootstrap mean)": boot_means[law][k], "Step Law (released)": v}
              for law, ps in released.items() for k, v in ps.items()])"""),
    ("code", "sweep.laws_figure(grid, lr_fit, bs_fit)"),
    ("md", "## Settings for a new run\nStep Law's check point: N = 7e9, D = 1.4e12 gives lr 9.347e-4 and B 4.997e6 tokens."),
    ("code", "pd.Series(sweep.hparams_predict(lr_fit, bs_fit, N=7e9, D=1.4e12))"),
    ("md", """\
## In a plan
`plan` evaluates the lr and batch laws at the compute-optimal (N, D) of a loss fit. Mind the
units: Step Law's N excludes embeddings while Chinchilla's includes them."""),
    ("code", """\
p = plan(compute=1e22, loss_fit="epoch-2024", lr_fit=lr_fit, bs_fit=bs_fit)
print(format_plan(p))"""),
]


# --------------------------------------------------------------------------------------------
# overtrain.ipynb
# --------------------------------------------------------------------------------------------
OVERTRAIN = [
    ("md", """\
# Over-training and downstream error: Gadre et al.'s testbed

Gadre et al. (2024) fit L(C, M) = E + (a M^eta + b M^-eta) C^-eta (M = D/N tokens per
parameter) on five small runs and Err(L) = eps - k exp(-gamma L) on those plus a 1.4B run, then
predict a 1.4B model trained 32x past Chinchilla-optimal (M = 640) and a 6.9B model by chaining
(N, D) -> loss -> error."""),
    ("code", SETUP + """
from scalelaw.analysis import gadre
from scalelaw.analysis.plan import plan, format_plan"""),
    ("code", """\
runs = gadre.load_runs()
print(len(runs), "runs;", runs["dataset"].nunique(), "training sets")
runs[runs.dataset == "rpj"][["N", "D", "M", "loss", "err_avg17"]].describe()"""),
    ("md", "## Their protocol on RedPajama, with bootstrapped intervals"),
    ("code", """\
res = gadre.reproduce(runs, dataset="rpj", boot=200, seed=0)
pd.DataFrame(res["rows"])[["target", "quantity", "actual", "predicted", "lower", "upper", "rel_err",
                           "published_predicted", "published_rel_err"]]"""),
    ("code", """\
loss_fit, err_fit = res["fits"]["loss"], res["fits"]["error"]
loss_fit.summary()"""),
    ("code", "err_fit.summary()"),
    ("code", "gadre.figure_loss(loss_fit, runs[runs.dataset == 'rpj'])"),
    ("md", """\
## Plans: compute-optimal and over-trained
The same fits answer "what loss and error for 1e22 FLOPs?", compute-optimally and at M = 640.
Five small runs stretched 30x and more: the warnings say so."""),
    ("code", """\
for ratio in (None, 640):
    p = plan(compute=1e22, loss_fit=loss_fit, downstream_fit=err_fit, tokens_per_param=ratio)
    print(format_plan(p), end="\\n\\n")"""),
    ("code", """\
need = plan(target_loss=2.3, loss_fit=loss_fit, downstream_fit=err_fit)
print(format_plan(need))"""),
]


# --------------------------------------------------------------------------------------------
# mixture.ipynb
# --------------------------------------------------------------------------------------------
MIXTURE = [
    ("md", """\
# Data mixtures: RegMix

Liu et al. (2024) train 512 tiny (1M-parameter) models on random mixtures of 17 Pile domains,
regress the validation loss (here Pile-CC) on the mixture weights, and rank unseen mixtures, also
for 60M and 1B models. Reproduced Spearman rho on unseen mixtures, linear / GBDT:
1M 90.21% / 98.92%, 60M 89.33% / 98.49%, 1B 87.66% / 96.51%."""),
    ("code", SETUP + """
from scalelaw.analysis import mixture"""),
    ("code", """\
train = mixture.load_mixture_table("regmix-1m-train")
domains = mixture.domains_of(train)
print(len(train), "runs,", len(domains), "domains")
train[[f"mix_{d}" for d in domains[:6]] + ["loss_pile_cc"]].head(3)"""),
    ("md", "## Fit on the 1M runs; rank unseen mixtures at 1M, 60M and 1B"),
    ("code", """\
# RegMix's notebook picks the trees' number of rounds by early stopping on the 1M test set
fits = {model: mixture.fit_mixture("regmix-1m-train", "loss_pile_cc", model=model, tests=mixture.TEST_SETS,
                                   valid="regmix-1m-test" if model == "gbdt" else None)
        for model in ("linear", "gbdt")}
pd.DataFrame([{"model": model, "test set": name, "spearman": f.metrics[name]["spearman"],
               "95% bootstrap": "{:.4f} to {:.4f}".format(*f.metrics[name]["spearman_interval"]),
               "RegMix (reproduced)": mixture.PUBLISHED_SPEARMAN[model][name],
               "rounds chosen on it": bool(f.metrics[name].get("early_stopping_set"))}
              for model, f in fits.items() for name in mixture.TEST_SETS])"""),
    ("md", """\
The 1B set has 64 runs: its bootstrap interval is several points wide, so the gap between
stopping early (613 rounds) and training all 1000 rounds (1B 96.17%) is sampling noise, not a
different model. The 1M figure of the trees is not an independent test: the rounds were chosen
on those runs."""),
    ("code", """mixture.plot_predicted_vs_actual(fits["gbdt"], list(mixture.TEST_SETS))"""),
    ("md", """\
## The recommended mixture
RegMix's rule: draw mixtures from Dirichlet(token shares), predict, average the best 128. The
interval comes from refitting on bootstrap resamples of the 512 runs."""),
    ("code", """\
rec = mixture.recommend(fits["linear"], samples=20000, top_k=128, seed=0, boot=20)
print(f"predicted {rec['target']}: {rec['predicted']:.4g}  95% interval {rec['interval'][0]:.4g} - {rec['interval'][1]:.4g}")
pd.Series(rec["mixture"]).sort_values(ascending=False).head(8)"""),
    ("code", "mixture.plot_recommendation(rec)"),
]


NOTEBOOKS = {
    "chinchilla.ipynb": CHINCHILLA,
    "hparams.ipynb": HPARAMS,
    "overtrain.ipynb": OVERTRAIN,
    "mixture.ipynb": MIXTURE,
}


def build(cells, name: str) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    stem = name.rsplit(".", 1)[0]
    for i, (kind, src) in enumerate(cells):
        cell = new_markdown_cell(src) if kind == "md" else new_code_cell(src)
        cell["id"] = f"{stem}-{i:02d}"          # stable ids: rebuilding changes nothing
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(NOTEBOOKS[name], name)) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    names = [a for a in argv if not a.startswith("-")] or list(NOTEBOOKS)
    stale = []
    for name in names:
        if name not in NOTEBOOKS:
            print(f"unknown notebook {name!r}; known: {', '.join(NOTEBOOKS)}", file=sys.stderr)
            return 2
        path = HERE / name
        text = render(name)
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date with notebooks/build.py: {', '.join(stale)}; run python notebooks/build.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
