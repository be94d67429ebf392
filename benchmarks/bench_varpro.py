"""Benchmark: variable projection (scalelaw.varpro) against the multi-start engine on Epoch's
240 Chinchilla points (dataset chinchilla-epoch), objectives lsq and lsq-log (and huber-log).

For each objective, side by side in this one process:
  engine  = scalelaw.fit.fit(chinchilla, objective=...): 4,500 grid starts over 5 parameters;
  varpro  = scalelaw.varpro.fit_varpro: E, A, B by NNLS for each (alpha, beta), the 25-point
            grid of (alpha, beta), L-BFGS-B from the best 3, then the engine polishes that one start.
Prints the objective each reaches, the largest relative difference of the parameters, seconds
and the speed ratio engine/varpro, and the conditioning: the condition number of the full 5-D
Gauss-Newton matrix (what the engine works with), of the 2-D Hessian of the projected
objective at the optimum (what VarPro searches), and of the weighted basis [1, N^-alpha, D^-beta].

Usage: nice python benchmarks/bench_varpro.py [--objectives lsq,lsq-log,huber-log] [--repeat 1]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SCALELAW_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))

from scalelaw.fit import fit, prepare  # noqa: E402
from scalelaw.io import load_table  # noqa: E402
from scalelaw.law import get_law  # noqa: E402
from scalelaw.varpro import _Projection, fit_varpro  # noqa: E402


def reduced_condition(df, objective, params, delta=1e-3):
    """Condition number of the 2-D Hessian of the projected objective at (alpha, beta)."""
    law, _, X, y, w = prepare("chinchilla", df)
    proj = _Projection(law, X, y, w, objective, delta, {})
    t = np.array([params["alpha"], params["beta"]])
    h = 1e-4
    H = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            H[i, j] = (proj.value(t + ei + ej) - proj.value(t + ei - ej) - proj.value(t - ei + ej)
                       + proj.value(t - ei - ej)) / (4 * h * h)
    ev = np.linalg.eigvalsh(0.5 * (H + H.T))
    return float(ev[-1] / ev[0]) if ev[0] > 0 else float("inf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objectives", default="lsq,lsq-log,huber-log")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    df = load_table("chinchilla-epoch")
    warnings.simplefilter("ignore")
    print("| objective | engine objective | varpro objective | max rel. param diff | engine s | varpro s | "
          "speed ratio | cond. 5-D GN (engine) | cond. 2-D projected | cond. basis |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for obj in args.objectives.split(","):
        te, tv = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            a = fit("chinchilla", df, objective=obj, n_jobs=1)
            te.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b = fit_varpro("chinchilla", df, objective=obj, n_jobs=1)
            tv.append(time.perf_counter() - t0)
        diff = max(abs(b.params[k] - a.params[k]) / abs(a.params[k]) for k in a.params)
        e, v = float(np.median(te)), float(np.median(tv))
        print(f"| {obj} | {a.objective['value']:.12g} | {b.objective['value']:.12g} | {diff:.1e} | {e:.1f} | "
              f"{v:.1f} | {e / v:.1f}x | {a.diagnostics['condition_number']:.2e} | "
              f"{reduced_condition(df, obj, b.params):.2e} | {b.diagnostics['varpro']['basis_condition']:.2e} |",
              flush=True)


if __name__ == "__main__":
    main()
