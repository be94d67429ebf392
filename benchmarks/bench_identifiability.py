"""Benchmark: how often the identifiability checks (scalelaw.fit.identifiability and
Fit.problems) flag sound ladders (false alarms) and miss degenerate ones, and the statistics the
thresholds were chosen from (docs/fitting.md, "Identifiability").

Every study fits the default `chinchilla` fit (Hoffmann's 4,500-start grid, summed Huber-log,
delta 1e-3) with a --boot resample bootstrap, one study per seed; truth varies per seed: Epoch's
constants (Besiroglu et al. 2024), Hoffmann et al.'s, or alpha, beta drawn from U(0.25, 0.5) with
Epoch's E, A, B. Noise is multiplicative (ln y = ln L + e), e ~ N(0, s) with s drawn from
{0.005, 0.01, 0.02}, or 0.01 x Student-t(3) (the "t3" designs).

Sound designs (each must be identified):
  grid        6 sizes log-spaced 2e7..1e9 x 4 tokens-per-parameter ratios 10..80 (24 runs)
  grid-t3     the same with t(3) noise
  isoflop     4 budgets 1e18..1e21 x 5 sizes spread 1/8x..8x around the budget's optimum (20 runs)
  random16    16 runs, N log-uniform 1e7..1e9, tokens per parameter log-uniform 5..100
  small12     4 sizes x 3 ratios 10, 30, 90 (12 runs)
Degenerate designs (each must be flagged):
  one-N       20 runs at N = 1e8, D log-spaced 1e9..3e10
  one-D       20 runs at D = 1e10, N log-spaced 1e7..1e9
  two-N       2 sizes x 8 token counts
  copies      40 copies of one run (N 1e8, D 2e9), independent noise
  points4     4 distinct (N, D) points x 5 repeats
  noise       the grid's inputs, loss 3.0 x noise (no trend)
  rising      the grid's inputs, loss rising with N and D (1 + (N/1e7)^0.1 + (D/1e9)^0.1)
  u-shape     the grid's inputs, loss a parabola in ln N and ln D
Reported separately (a design that cannot separate alpha from beta well):
  tpp20       8 sizes 2e7..1e9 all at 20 tokens per parameter

Usage: nice python benchmarks/bench_identifiability.py [--reps 20] [--boot 100] [--jobs 2]
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalelaw.fit import fit  # noqa: E402
from scalelaw.law import get_law  # noqa: E402

LAW = get_law("chinchilla")
EPOCH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
SOUND = ("grid", "grid-t3", "isoflop", "random16", "small12")
DEGENERATE = ("one-N", "one-D", "two-N", "copies", "points4", "noise", "rising", "u-shape")
WEAK = ("tpp20",)


def truth(rng) -> dict:
    k = rng.integers(3)
    if k == 0:
        return dict(EPOCH)
    if k == 1:
        return dict(HOFFMANN)
    return {**EPOCH, "alpha": float(rng.uniform(0.25, 0.5)), "beta": float(rng.uniform(0.25, 0.5))}


def design(name: str, rng, th: dict):
    grid_N, grid_R = np.meshgrid(np.geomspace(2e7, 1e9, 6), [10, 20, 40, 80])
    gN, gD = grid_N.ravel(), (grid_R * grid_N).ravel()
    if name in ("grid", "grid-t3", "noise", "rising", "u-shape"):
        N, D = gN, gD
    elif name == "isoflop":
        G, ea, _ = (lambda p: ((p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"])),
                               p["beta"] / (p["alpha"] + p["beta"]), None))(th)
        N, D = [], []
        for C in (1e18, 1e19, 1e20, 1e21):
            n_opt = G * (C / 6) ** ea
            for f in np.geomspace(1 / 8, 8, 5):
                N.append(n_opt * f)
                D.append(C / 6 / (n_opt * f))
        N, D = np.array(N), np.array(D)
    elif name == "random16":
        N = np.exp(rng.uniform(np.log(1e7), np.log(1e9), 16))
        D = N * np.exp(rng.uniform(np.log(5), np.log(100), 16))
    elif name == "small12":
        n, r = np.meshgrid(np.geomspace(3e7, 1e9, 4), [10, 30, 90])
        N, D = n.ravel(), (r * n).ravel()
    elif name == "one-N":
        N, D = np.full(20, 1e8), np.geomspace(1e9, 3e10, 20)
    elif name == "one-D":
        N, D = np.geomspace(1e7, 1e9, 20), np.full(20, 1e10)
    elif name == "two-N":
        n, d = np.meshgrid([1e8, 4e8], np.geomspace(1e9, 3e10, 8))
        N, D = n.ravel(), d.ravel()
    elif name == "copies":
        N, D = np.full(40, 1e8), np.full(40, 2e9)
    elif name == "points4":
        N = np.repeat([3e7, 1e8, 3e8, 1e9], 5)
        D = 20 * N * np.repeat([1, 2, 1, 2], 5)
    elif name == "tpp20":
        N = np.geomspace(2e7, 1e9, 8)
        D = 20 * N
    else:
        raise ValueError(name)
    if name == "noise":
        L = np.full(N.shape, 3.0)
    elif name == "rising":
        L = 1 + (N / 1e7) ** 0.1 + (D / 1e9) ** 0.1
    elif name == "u-shape":
        L = 2 + 0.1 * np.log(N / 1e8) ** 2 + 0.05 * np.log(D / 3e9) ** 2
    else:
        L = LAW.evaluate({"N": N, "D": D}, th)
    if name == "grid-t3":
        e = 0.01 * rng.standard_t(3, N.size)
    else:
        e = rng.normal(0, float(rng.choice([0.005, 0.01, 0.02])), N.size)
    return pd.DataFrame({"N": N, "D": D, "loss": L * np.exp(e)})


def kind(problem: str) -> str:
    """A short name for the check that produced a problem string (with the parameter, for an
    interval running into a bound)."""
    if "runs into its" in problem:
        return "interval-bound:" + problem.split("interval of ")[1].split()[0]
    for key, words in (("constant", "is constant"), ("points", "distinct input point"),
                       ("at-bound", "is at its"), ("flat", "cannot be told apart"), ("dead", "change"),
                       ("no-trend", "no better than a constant"), ("interval-bound", "runs into its"),
                       ("boot-failed", "bootstrap resamples"), ("boot-degenerate", "degenerate"),
                       ("excludes", "excludes its estimate"), ("cov", "covariance")):
        if words in problem:
            return key
    return "other"


def one(args):
    name, seed, boot = args
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    th = truth(rng)
    df = design(name, rng, th)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit("chinchilla", df, boot=boot, seed=seed, n_jobs=1)
    d = f.diagnostics
    return {"design": name, "seed": seed, "identified": f.identified, "converged": bool(d["converged"]),
            "kinds": sorted({kind(p) for p in f.problems}), "flatness": d["flatness"], "constant_p": d["constant_p"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--boot", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    t0 = time.time()
    tasks = [(n, s, a.boot) for n in SOUND + DEGENERATE + WEAK for s in range(a.reps)]
    with ProcessPoolExecutor(a.jobs) as ex:
        rows = list(ex.map(one, tasks))
    res = pd.DataFrame(rows)
    print(f"{len(res)} fits in {time.time() - t0:.0f} s ({a.reps} per design, boot {a.boot})\n")
    print(f"{'design':<10}{'kind':<11}{'flagged':>9}  {'flatness min/median/max':<30}{'F p max':>9}  checks that fired")
    for name in SOUND + DEGENERATE + WEAK:
        r = res[res.design == name]
        k = "sound" if name in SOUND else ("degenerate" if name in DEGENERATE else "weak")
        fl = r.flatness.to_numpy(dtype=float)
        c = Counter(x for ks in r.kinds for x in ks)
        print(f"{name:<10}{k:<11}{(~r.identified).sum():>4}/{len(r):<4}  "
              f"{np.nanmin(fl):<9.2g} {np.nanmedian(fl):<9.2g} {np.nanmax(fl):<9.2g}  "
              f"{np.nanmax(r.constant_p.to_numpy(dtype=float)):>9.2g}  "
              + ", ".join(f"{x} {n}" for x, n in c.most_common()))
    sound = res[res.design.isin(SOUND)]
    deg = res[res.design.isin(DEGENERATE)]
    print(f"\nfalse alarms (sound designs flagged): {(~sound.identified).sum()} of {len(sound)} "
          f"({(~sound.identified).mean():.1%})")
    print(f"misses (degenerate designs identified): {deg.identified.sum()} of {len(deg)} ({deg.identified.mean():.1%})")
    print(f"sound flatness: min {sound.flatness.min():.3g}, 1st percentile {sound.flatness.quantile(0.01):.3g}")
    print(f"sound F-test p: max {sound.constant_p.max():.3g};  pure-noise F-test p: "
          f"median {res[res.design == 'noise'].constant_p.median():.3g}, "
          f"share below 0.05: {(res[res.design == 'noise'].constant_p < 0.05).mean():.0%}")


if __name__ == "__main__":
    main()
