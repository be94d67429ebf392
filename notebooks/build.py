"""Generate the worked-analysis notebooks from this script, so they stay reviewable as code.

    python notebooks/build.py --execute  # (re)write the notebooks below and run them: outputs kept
    python notebooks/build.py --check    # exit 1 if a committed notebook's cells differ from this script

Each notebook is short, reads public data through scalelaw's dataset registry (the mirror named
by SCALELAW_MIRROR, else a download), and is committed executed, so that a code host or an
nbconvert/HTML export shows its tables and figures: every plotly figure also carries a PNG
(scalelaw.plots.static_images, kaleido with the system's Chromium). tests/test_notebooks.py
re-executes them in CI and checks that the committed outputs are current (same cells, same
kinds of output per cell, figures with their images). Edit the cells here, not in Jupyter.
(density.ipynb is written by hand and not generated here; --execute runs it too.)
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
import scalelaw as sl
from scalelaw import plots
plots.static_images()      # every figure also carries a PNG: exports and code hosts show it
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
from scalelaw.analysis.plan import format_plan"""),
    ("md", """\
The dataset holds model size N (all parameters), training FLOPs C and the final loss; D = C/(6N).
As Epoch did, the five highest-loss runs are dropped (240 are fitted)."""),
    ("code", """\
runs = sl.load("chinchilla-epoch")          # a registered dataset: `scalelaw data list`
print(len(runs), "runs;", runs.attrs["note"])
runs[["N", "D", "C", "loss"]].describe()"""),
    ("md", "## Fit with a bootstrap over runs\nEpoch used 4,000 resamples; 200 keep this notebook quick."),
    ("code", """\
chin = sl.fit(runs, "chinchilla", boot=200, seed=0)
chin.summary()"""),
    ("md", """\
The summary lists A with alpha and B with beta among the parameters correlated above 0.9: within
the fitted range the data pin down A/N^alpha far better than either constant. The same as tables:"""),
    ("code", """\
pd.concat([chin.params, chin.stderr, chin.conf_int(0.95)], axis=1)"""),
    ("code", """\
print(pd.Series({"n": chin.n_obs, "dof": chin.dof, "loglike": chin.loglike, "AIC": chin.aic, "BIC": chin.bic,
                 "RMSE (nats)": chin.rmse}).to_string())
chin.corr.round(3)"""),
    ("md", "## Against Epoch's published fit (Besiroglu et al. 2024, Table 1 and bootstrap CIs)"),
    ("code", """\
epoch = {"E": (1.8169, 1.769, 1.871), "A": (482.01, 285.2, 743.6), "B": (2085.43, 1042.4, 5810.3),
         "alpha": (0.3478, 0.317, 0.373), "beta": (0.3658, 0.331, 0.415)}
ci = chin.conf_int()
pd.DataFrame({name: {"scalelaw": chin.params[name],
                     "scalelaw 95% CI": f"[{ci.loc[name, 'lower']:.4g}, {ci.loc[name, 'upper']:.4g}]",
                     "Epoch": v, "Epoch 95% CI": f"[{lo:.4g}, {hi:.4g}]",
                     "rel. diff": chin.params[name] / v - 1}
              for name, (v, lo, hi) in epoch.items()}).T"""),
    ("md", """\
## Data, fitted curves and residuals
Every run's compute differs, so runs are grouped in bins of compute (IsoFLOP-like profiles, the
grouping whose curves pass closest to their runs); each curve follows its bin's runs, and bands
are the bootstrap interval of the fitted curve."""),
    ("code", "chin.plot()"),
    ("code", "chin.plot(kind=\"residuals\")"),
    ("md", """\
## Loss against compute, and the compute-optimal frontier
Runs coloured by model size with each size's fitted curve (D = C/6N); the black line is the
law's compute-optimal loss at each budget with its interval band, dashed beyond the largest run
and carried to the planned budget."""),
    ("code", "plots.plot_compute(chin, runs, compute=5.76e23)"),
    ("code", """\
chin.optimum(compute=[1e21, 1e22, 1e23, 5.76e23])"""),
    ("code", "plots.plot_optimum(chin, compute=5.76e23, data=runs)"),
    ("md", """\
## The compute-optimal model for 5.76e23 FLOPs
Epoch's constants give N_opt = 7.225e10, D_opt = 1.329e12 and L = 1.9744. `plan` propagates the
bootstrap jointly and says how far beyond the fitted runs the answer lies."""),
    ("code", """\
p = sl.plan(5.76e23, loss=chin)
print(format_plan(p))
for w in p["warnings"]:
    print("warning:", w)"""),
    ("code", """\
pd.DataFrame({"scalelaw": [p["N"], p["D"], p["loss"]], "Epoch": [7.225e10, 1.329e12, 1.9744]},
             index=["N_opt", "D_opt", "loss"]).assign(rel_diff=lambda t: t.scalelaw / t.Epoch - 1)"""),
    ("code", "plots.plot_plan(p, chin)"),
    ("md", """\
The same from a shell: `scalelaw fit chinchilla chinchilla-epoch --boot 200 -o chin.json`, then
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
## The refit against the published constants
The released grid holds 1,911 of the roughly 3,700 runs the paper fitted (17 of its (N, D) cells),
and the plain refit does not reproduce every published constant; we do not force it. The table
says, for each exponent, whether Step Law's value lies inside our 95% bootstrap interval:
- the N exponent of lr* (ours about -0.77, published -0.713) is **inside** our interval: compatible;
- the D exponent of lr* (ours about 0.20, published 0.307) is **outside** it: on this subset the
  learning rate grows more slowly with data than the paper found on all its runs;
- the batch exponent (ours about 0.61, published 0.571) is **inside**: compatible.
The prefactors c are not comparable on their own: with the exponents they trade off against
(ln c and the exponents are strongly correlated, as the summaries list)."""),
    ("code", """\
released = {"lr_opt": {"c": 1.7973, "alpha": -0.71292, "beta": 0.30749}, "bs_opt": {"c": 0.58069, "gamma": 0.57094}}
fits = {"lr_opt": lr_fit, "bs_opt": bs_fit}
rows = []
for law, ps in released.items():
    ci = fits[law].conf_int()
    for k, v in ps.items():
        lo, hi = ci.loc[k, "lower"], ci.loc[k, "upper"]
        rows.append({"law": law, "param": k, "scalelaw": fits[law].params[k], "bootstrap mean": boot_means[law][k],
                     "95% interval": f"[{lo:.4g}, {hi:.4g}]", "Step Law (released)": v,
                     "published inside": bool(lo <= v <= hi)})
pd.DataFrame(rows)"""),
    ("md", """\
Both fits describe the grid; they part only away from it. Below, the ratio of our lr* and B* to
the published ones over the 17 cells, and at Step Law's check point N = 7e9, D = 1.4e12 (14x
beyond the grid). On the cells the median ratios are about 1.09 (lr*) and 0.97 (B*), (ranges
0.94 to 1.37 and 0.90 to 1.03), and scored on the cells both land close to each cell's best run
(docs/hparams.md, leave-one-cell-out). At the check point the smaller D exponent gives an lr*
about 0.6 times the published one, and B* about 1.15 times: there, prefer the published fit
(made on all ~3,700 runs) unless a grid reaches that far (docs/hparams.md)."""),
    ("code", """\
from scalelaw.result import published_fit
pub_lr, pub_bs = published_fit("steplaw-2025", law="lr_opt"), published_fit("steplaw-2025", law="bs_opt")
cells = grid[["N", "D"]].drop_duplicates()
at = pd.concat([cells, pd.DataFrame({"N": [7e9], "D": [1.4e12]})], ignore_index=True)
ratio = pd.DataFrame({"lr* ours / published": lr_fit.predict(at)["mean"] / pub_lr.predict(at)["mean"],
                      "B* ours / published": bs_fit.predict(at)["mean"] / pub_bs.predict(at)["mean"]})
print("over the grid's cells:")
print(ratio.iloc[:-1].describe().loc[["min", "50%", "max"]].round(3).to_string())
print("at N=7e9, D=1.4e12:", ratio.iloc[-1].round(3).to_dict())"""),
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
    """The notebook's text without outputs (what --execute starts from)."""
    return nbformat.writes(build(NOTEBOOKS[name], name)) + "\n"


def cells_of(nb) -> list:
    """(type, id, source) of every cell: what must match this script, outputs aside."""
    return [(c.cell_type, c.get("id"), c.source) for c in nb.cells]


def output_kinds(nb) -> list:
    """Per code cell, the kinds of its outputs: (output type, sorted MIME types). Comparing these
    between the committed and a fresh run says whether the committed outputs are current (same
    cells printing, displaying tables and figures with their images) without comparing numbers
    that the last digits of a platform's arithmetic may change."""
    out = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        kinds = []
        for o in c.outputs:
            k = (o.output_type, o.get("name", "")) if o.output_type == "stream" else \
                (o.output_type, tuple(sorted(o.get("data", {}))))
            if not (kinds and k == kinds[-1] and o.output_type == "stream"):   # a print may arrive in chunks
                kinds.append(k)
        out.append(kinds)
    return out


FIGURE_MIME = "application/vnd.plotly.v1+json"


def execute(nb, timeout: int = 900):
    """Run a notebook in place (kernel python3, in notebooks/, this checkout on PYTHONPATH)."""
    import os

    import nbclient

    env = dict(os.environ)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    os.environ["SCALELAW_QUIET"] = "1"
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(env)
    for c in nb.cells:
        c.metadata.pop("execution", None)     # timestamps: no diff when nothing else changed
    return nb


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check, run = "--check" in argv, "--execute" in argv
    known = list(NOTEBOOKS) + ["density.ipynb"]
    names = [a for a in argv if not a.startswith("-")] or (known if run else list(NOTEBOOKS))
    stale = []
    for name in names:
        if name not in known:
            print(f"unknown notebook {name!r}; known: {', '.join(known)}", file=sys.stderr)
            return 2
        path = HERE / name
        if name in NOTEBOOKS:
            fresh = build(NOTEBOOKS[name], name)
            if path.exists() and cells_of(nbformat.read(path, as_version=4)) == cells_of(fresh) and not run:
                continue
        else:
            fresh = nbformat.read(path, as_version=4)
        if check:
            stale.append(name)
            continue
        if run:
            print(f"executing {name} ...", file=sys.stderr)
            execute(fresh)
        path.write_text(nbformat.writes(fresh) + "\n")
        print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date with notebooks/build.py: {', '.join(stale)}; run python notebooks/build.py --execute",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
