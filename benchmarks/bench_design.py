"""Does a designed ladder beat the usual ones at equal compute? (docs/design.md)

Simulated studies. A truth is drawn per study from Epoch's published Chinchilla fit and its
standard errors (Besiroglu et al. 2024, Table 1), so every study has a different law. Each study
trains three ladders of the same total compute (``--budget``):

  fixed-ratio   16 runs at 20 tokens per parameter, N spaced evenly in log over 1.5 decades;
  isoflop-5     5 IsoFLOP budgets a factor 3 apart, 7 runs each at 1/4 .. 4x the prior's
                compute-optimal N (Chinchilla's approach 2 layout);
  designed      ``scalelaw design`` from nothing: the published prior widened x3 (the default),
                k = 16 runs, chosen once (the design never sees the truth).

Losses get 1% lognormal noise (``--noise``; ``--t3`` for Student t with 3 dof scaled to the
same sd); each ladder is fitted with the default objective, and the 95% intervals of the loss at the
target model (the prior's compute-optimal model at ``--target-compute``) from every interval
method `predict --interval` offers (``--boot`` resamples each) are scored: median relative width, and whether they
cover the truth. Run:  python benchmarks/bench_design.py --studies 200  (about 10 min on 2 cores).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scalelaw.analysis.design import PUBLISHED_SE, design  # noqa: E402
from scalelaw.law import get_law  # noqa: E402
from scalelaw.result import load_fit  # noqa: E402

LAW = get_law("chinchilla")
# every interval method predict offers (scalelaw.calibration.INTERVALS); its default is marked
METHODS = ("delta", "bootstrap", "bootstrap-t", "residual-t")
PRIOR = load_fit("epoch-2024")


def truths(n: int, seed: int) -> list[dict]:
    """Truths drawn from the published estimate and its standard errors (ln scale for E, A, B)."""
    rng = np.random.default_rng(seed)
    se = PUBLISHED_SE[("chinchilla", "epoch-2024")]
    out = []
    for _ in range(n):
        t = {}
        for p in LAW.params:
            v, s = PRIOR.params[p.name], se[p.name]
            t[p.name] = float(v * np.exp(rng.normal(0, s / v))) if p.log else float(v + rng.normal(0, s))
        out.append(t)
    return out


def ladders(budget: float, design_runs) -> dict:
    fpt = 6.0
    # fixed ratio: 16 runs, N over 1.5 decades at D = 20 N, total compute = budget
    rel = np.geomspace(1.0, 10 ** 1.5, 16)
    scale = np.sqrt(budget / (fpt * 20.0 * np.sum(rel ** 2)))
    N1 = rel * scale
    fixed = pd.DataFrame({"N": N1, "D": 20.0 * N1})
    # 5 IsoFLOP budgets a factor 3 apart, 7 runs each from 1/4 to 4x the prior's optimum
    cj = np.array([1, 3, 9, 27, 81], dtype=float)
    cj = cj * budget / (7 * cj.sum())
    rows = []
    for c in cj:
        n_opt = float(PRIOR.optimum(compute=c)["N_opt"])
        for f in np.geomspace(0.25, 4.0, 7):
            n = n_opt * f
            rows.append((n, c / (fpt * n)))
    iso = pd.DataFrame(rows, columns=["N", "D"])
    des = pd.DataFrame({"N": [r["N"] for r in design_runs], "D": [r["D"] for r in design_runs]})
    return {"fixed-ratio": fixed, "isoflop-5": iso, "designed": des}


def one(args):
    study, truth, layouts, target, noise, t3, boot = args
    warnings.simplefilter("ignore")
    from scalelaw.calibration import with_interval
    from scalelaw.errors import ScalelawError
    from scalelaw.fit import fit

    rng = np.random.default_rng(1000 + study)
    true_target = float(LAW.evaluate({"N": np.array([target["N"]]), "D": np.array([target["D"]])}, truth)[0])
    out = []
    for name, runs in layouts.items():
        y = LAW.evaluate({"N": runs["N"].to_numpy(), "D": runs["D"].to_numpy()}, truth)
        e = rng.standard_t(3, len(runs)) / np.sqrt(3.0) if t3 else rng.standard_normal(len(runs))
        df = runs.assign(loss=y * np.exp(noise * e))
        rec = {"study": study, "ladder": name, "runs": len(runs), "compute": float((6 * df.N * df.D).sum())}
        try:
            # the fit's own bootstrap serves "bootstrap" and "bootstrap-t"; residual-t refits its own
            f = fit("chinchilla", df, boot=boot, seed=study, n_jobs=1)
            at = {"N": [target["N"]], "D": [target["D"]]}
            for method in METHODS:
                g = with_interval(f, method, k=boot)
                p = g.predict(at).iloc[0]
                lo, hi, m = float(p["lower"]), float(p["upper"]), float(p["mean"])
                ok = bool(np.isfinite(lo) and np.isfinite(hi))
                rec[f"{method}_width"] = (hi - lo) / true_target if ok else float("inf")
                rec[f"{method}_covered"] = bool(ok and lo <= true_target <= hi)
            rec.update(ok=True, error=(m - true_target) / true_target)
        except (ScalelawError, Exception) as exc:  # a failed fit counts as a miss, and is listed
            rec.update(ok=False, error=float("nan"), failure=str(exc)[:120],
                       **{f"{m}_{k}": v for m in METHODS for k, v in (("width", float("inf")), ("covered", False))})
        out.append(rec)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=200)
    ap.add_argument("--budget", type=float, default=1e20)
    ap.add_argument("--target-compute", type=float, default=1e23)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--t3", action="store_true")
    ap.add_argument("--boot", type=int, default=200, help="resamples of each refitting interval method")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="seed of the design's parameter draws")
    ap.add_argument("--truth-seed", type=int, default=1, help="seed of the truths and noise (split a run in parts)")
    ap.add_argument("--first", type=int, default=0, help="number of the first study (noise seeds follow it)")
    ap.add_argument("--out", default=None, help="write the per-study records as JSON lines here")
    ap.add_argument("--summarize", metavar="JSONL", help="only print the table of records written by --out")
    a = ap.parse_args(argv)
    if a.summarize:
        df = pd.read_json(a.summarize, lines=True)
        names = list(dict.fromkeys(df.ladder))
        opt = PRIOR.optimum(compute=a.target_compute)
        return summarize(df, {n: None for n in names}, {"N": float(opt["N_opt"]), "D": float(opt["D_opt"])},
                         a, float("nan"))

    opt = PRIOR.optimum(compute=a.target_compute)
    target = {"N": float(opt["N_opt"]), "D": float(opt["D_opt"])}
    t0 = time.perf_counter()
    d = design(PRIOR, target=target, budget=a.budget, k=a.k, noise=a.noise, seed=a.seed)
    print(f"design: {len(d['runs'])} runs in {time.perf_counter() - t0:.2f} s; predicted 95% width "
          f"{100 * d['before']['relative_width']:.1f}% -> {100 * d['after']['relative_width']:.2f}%")
    layouts = ladders(a.budget, d["runs"])
    for k, v in layouts.items():
        print(f"  {k:12s} {len(v):3d} runs, compute {(6 * v.N * v.D).sum():.3g}, N {v.N.min():.3g}..{v.N.max():.3g}")
    jobs = [(a.first + i, t, layouts, target, a.noise, a.t3, a.boot)
            for i, t in enumerate(truths(a.studies, a.truth_seed))]
    recs = []
    t0 = time.perf_counter()
    sink = open(a.out, "w") if a.out else None   # records as they finish: a stopped run keeps them
    with ProcessPoolExecutor(a.jobs) as ex:
        for r in ex.map(one, jobs, chunksize=1):
            recs.extend(r)
            if sink:
                for rec in r:
                    sink.write(json.dumps(rec) + "\n")
                sink.flush()
    if sink:
        sink.close()
    el = time.perf_counter() - t0
    summarize(pd.DataFrame(recs), layouts, target, a, el)


def summarize(df, layouts, target, a, el):
    noise = f"{'t3' if a.t3 else 'lognormal'} {100 * a.noise:g}%"
    studies = df.study.nunique()
    print(f"\n{studies} studies, budget {a.budget:.3g} FLOPs, target {target['N']:.3g} params x {target['D']:.3g} "
          f"tokens, noise {noise}, {a.boot} resamples per interval, {el:.0f} s")
    print("| ladder | runs | interval | median 95% width | coverage | median abs error | failed fits |")
    print("|---|---|---|---|---|---|---|")
    from scalelaw.calibration import DEFAULT_INTERVAL

    med = {}
    for name in layouts:
        s = df[df.ladder == name]
        for m in METHODS:
            med[name, m] = float(np.median(s[f"{m}_width"]))
            label = m + (" (default)" if m == DEFAULT_INTERVAL["predict"] else "")
            print(f"| {name} | {int(s.runs.iloc[0])} | {label} | {100 * med[name, m]:.2f}% | "
                  f"{100 * s[f'{m}_covered'].mean():.1f}% | {100 * np.nanmedian(np.abs(s.error)):.2f}% | "
                  f"{int((~s.ok).sum())} |")
    for m in METHODS:
        for base in ("fixed-ratio", "isoflop-5"):
            r = med["designed", m] / med[base, m]
            print(f"{m}: designed width / {base} width (medians): {r:.3f} ({100 * (1 - r):.0f}% narrower)")


if __name__ == "__main__":
    main()
