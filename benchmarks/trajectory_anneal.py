"""Benchmark: the annealing law (lr_anneal, Tissue et al. 2024) fitted on one schedule's loss curve
and predicting others', on synthetic curves with known parameters (docs/trajectory.md).

Truth: L0 2.1, A 1.2, alpha 0.5, C 0.6, decay lambda 0.999; 20,000 steps, peak lr 3e-4, 200
warmup steps, final lr 0.1 x peak; schedules constant, cosine, wsd (last 20% decayed linearly).
The training curve is logged every 20 steps with Gaussian noise (sd 0.003, 0.01, 0.03); for each
(train schedule, noise) 30 seeds. Reported: relative error of each parameter (median over seeds),
and the prediction of every other schedule's noiseless curve at every 500th step: mean absolute
error, maximum error, and coverage of the 95% interval of the mean curve (lower/upper) and of
the prediction interval (where a new noisy point would land), over steps and seeds.
A constant schedule has S2 = 0 everywhere, so C cannot be fitted from it: it is trained on only
with C held at 0 and reported to show what the annealing term is worth.
Usage: python benchmarks/trajectory_anneal.py [--seeds 30]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scalelaw.fit import fit  # noqa: E402
from scalelaw.laws.anneal import LR_ANNEAL, areas, predict_schedule, schedule  # noqa: E402

TRUE = {"L0": 2.1, "A": 1.2, "alpha": 0.5, "C": 0.6}
STEPS, PEAK, WARM, EVERY = 20000, 3e-4, 200, 20
KINDS = ("constant", "cosine", "wsd")


def lr_of(kind):
    return schedule(kind, STEPS, PEAK, warmup=WARM, final=0.1, decay_frac=0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    a = ap.parse_args()
    at = np.arange(500, STEPS + 1, 500)
    truth = {}
    for k in KINDS:
        S1, S2 = areas(lr_of(k), 0.999, WARM)
        truth[k] = LR_ANNEAL.func(S1[at - 1], S2[at - 1], **TRUE)
    rows = []
    t0 = time.process_time()
    steps = np.arange(WARM + EVERY, STEPS + 1, EVERY)
    for train in KINDS:
        lr = lr_of(train)
        S1, S2 = areas(lr, 0.999, WARM)
        clean = LR_ANNEAL.func(S1[steps - 1], S2[steps - 1], **TRUE)
        for noise in (0.003, 0.01, 0.03):
            for seed in range(a.seeds):
                y = clean + np.random.default_rng(seed).normal(0, noise, len(steps))
                df = pd.DataFrame({"run": train, "step": steps, "lr": lr[steps - 1], "loss": y})
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f = fit(LR_ANNEAL, df, prepare_options={"warmup": WARM}, n_jobs=1,
                            fixed={"C": 0.0} if train == "constant" else None)
                rel = {k: abs(f.params[k] / v - 1) for k, v in TRUE.items()}
                for other in KINDS:
                    if other == train:
                        continue
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        p = predict_schedule(f, lr_of(other), at)
                    err = p["mean"].to_numpy() - truth[other]
                    rows.append({"train": train, "noise": noise, "seed": seed, "predict": other,
                                 **{f"rel_{k}": v for k, v in rel.items()},
                                 "mae": np.mean(np.abs(err)), "max": np.max(np.abs(err)),
                                 "cover_mean": np.mean((truth[other] >= p["lower"]) & (truth[other] <= p["upper"])),
                                 "cover_pred": np.mean((truth[other] >= p["pred_lower"]) & (truth[other] <= p["pred_upper"]))})
    r = pd.DataFrame(rows)
    print(f"lr_anneal: fit one schedule's curve ({STEPS} steps, every {EVERY}), predict another's; "
          f"{a.seeds} seeds per cell; {time.process_time() - t0:.0f} s CPU")
    print("\n| trained on | noise sd | predicts | median rel. error alpha / C | MAE | max error | "
          "95% coverage (mean curve) | 95% coverage (prediction) |")
    print("|---|---|---|---|---|---|---|---|")
    for (train, noise, other), g in r.groupby(["train", "noise", "predict"], sort=False):
        c = "held at 0" if train == "constant" else f"{g['rel_C'].median():.1%}"
        print(f"| {train} | {noise:g} | {other} | {g['rel_alpha'].median():.1%} / {c} | {g['mae'].mean():.4f} | "
              f"{g['max'].max():.4f} | {g['cover_mean'].mean():.0%} | {g['cover_pred'].mean():.0%} |")


if __name__ == "__main__":
    main()
