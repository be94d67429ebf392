"""Benchmark: 1,000,000 candidate mixtures sampled, predicted and ranked (RegMix's simulation step).

Targets (issue #7), on 2 cores: under 10 s with the linear model, under 60 s with LightGBM trees
(RegMix's settings; the reference fit keeps the 613 rounds its early stopping chose, out of 1000).
The fits are the reference fits in fits/ (Pile-CC loss, the 512 1M-parameter RegMix runs). For each model the script prints wall time, process CPU time, and
the split between sampling (Dirichlet over the 17 Pile domains' token shares) and prediction; the
load average is printed too, since wall time on a shared machine says little without it.

Usage: python benchmarks/bench_mixture.py [--samples N] [--top-k K] [--threads T] [--models linear,gbdt]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scalelaw.analysis import mixture as mx  # noqa: E402

TARGET_S = {"linear": 10.0, "gbdt": 60.0, "mixlaw": 10.0}


def run(model: str, samples: int, top_k: int, threads: int, seed: int = 0) -> dict:
    fit = mx.load_fit(ROOT / "fits" / f"regmix-{model}-pilecc.json")
    alpha = np.array([fit.prior[d] for d in fit.domains])
    spent = {"predict_wall": 0.0, "predict_cpu": 0.0}

    def predict(W):
        w0, c0 = time.perf_counter(), time.process_time()
        if isinstance(fit.model, mx.GBDTMixture):
            out = fit.model.predict(W, num_threads=threads)
        else:
            out = fit.model.predict(W)
        spent["predict_wall"] += time.perf_counter() - w0
        spent["predict_cpu"] += time.process_time() - c0
        return out

    w0, c0 = time.perf_counter(), time.process_time()
    cand = mx.search(predict, alpha, samples, top_k, seed=seed)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rec = cand.top.mean(axis=0)
    return {"model": model, "samples": cand.sampled, "wall": wall, "cpu": cpu,
            "predict_wall": spent["predict_wall"], "predict_cpu": spent["predict_cpu"],
            "sample_wall": wall - spent["predict_wall"], "predicted": float(fit.predict(rec[None, :])[0]),
            "top": dict(sorted(zip(fit.domains, rec), key=lambda kv: -kv[1])[:3])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--top-k", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="LightGBM prediction threads (2 cores: 2)")
    ap.add_argument("--models", default="linear,gbdt", help=f"comma-separated, from {', '.join(TARGET_S)}")
    a = ap.parse_args()
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in TARGET_S]
    if unknown or not models:
        ap.error(f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(TARGET_S)}")
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > a.threads:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: a.threads])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    la = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"{a.samples:,} candidates, top-k {a.top_k}; {cores} cores; load average {la[0]:.1f} {la[1]:.1f} {la[2]:.1f}")
    print(f"{'model':<8} {'wall s':>8} {'cpu s':>8} {'sample s':>9} {'predict s':>10} {'target s':>9}  ok  "
          "predicted  top weights")
    bad = 0
    for m in models:
        r = run(m, a.samples, a.top_k, a.threads)
        ok = r["wall"] < TARGET_S[r["model"]]
        bad += not ok
        tops = ", ".join(f"{k} {v:.3f}" for k, v in r["top"].items())
        print(f"{r['model']:<8} {r['wall']:8.2f} {r['cpu']:8.2f} {r['sample_wall']:9.2f} {r['predict_wall']:10.2f} "
              f"{TARGET_S[r['model']]:9.0f}  {'yes' if ok else 'NO ':<3} {r['predicted']:9.4f}  {tops}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
