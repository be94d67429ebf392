"""Generate data/example_runs.csv: a small synthetic training ladder with a known truth.

The truth is Chinchilla's law with Epoch's constants (Besiroglu et al. 2024, Table 1):
E 1.8169, A 482.01, B 2085.43, alpha 0.3478, beta 0.3658. Eight model sizes from 20M to 1B
total parameters, each trained for 5 token budgets (10 to 160 tokens per parameter), with
multiplicative log-normal noise (sd 0.8%, about what real final losses scatter by) and a
learning rate and batch size in the ranges small runs use. Deterministic (seed 2024).

Run:  python data/make_example.py            (rewrites the CSV in place)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TRUTH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def make(seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(2e7, 1e9, 8)
    rows = []
    for n in sizes:
        for tpp in (10, 20, 40, 80, 160):
            d = tpp * n
            t = TRUTH
            loss = t["E"] + t["A"] / n ** t["alpha"] + t["B"] / d ** t["beta"]
            loss *= np.exp(rng.normal(0, 0.008))
            rows.append({
                "run": f"ex-{n / 1e6:.0f}M-{tpp}tpp",
                "N": float(f"{n:.4g}"),
                "D": float(f"{d:.4g}"),
                "C": float(f"{6 * n * d:.4g}"),
                "loss": round(float(loss), 5),
                "lr": float(f"{3e-3 * (n / 2e7) ** -0.3:.3g}"),
                "batch_tokens": int(2 ** np.round(np.log2(2e5 * (d / 2e8) ** 0.3))),
            })
    return pd.DataFrame(rows)


if __name__ == "__main__":
    out = Path(__file__).with_name("example_runs.csv")
    make().to_csv(out, index=False)
    print(f"wrote {out}")
