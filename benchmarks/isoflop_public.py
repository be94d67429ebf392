"""IsoFLOP exponents of the public IsoFLOP sets (the isoflops-* datasets, Open-Athena's
collection): N_opt ~ C^a and D_opt ~ C^b (b = 1 - a) from the global parabola (Hoffmann et al.'s
approach 2) and from the local default, on every run and on the runs the collection does not flag
as outliers; with bootstrap intervals for the default. Also prints, per budget of the default,
how far its fitted minimum lies below the best run (the data behind FAR_BELOW).

    SCALELAW_MIRROR=../shared/data nice python benchmarks/isoflop_public.py [--boot 200]
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from scalelaw.analysis.isoflop import isoflop
from scalelaw.datasets import OPEN_ATHENA_SETS
from scalelaw.io import load_table


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boot", type=int, default=200)
    args = ap.parse_args()
    rows, gaps = [], []
    for name in OPEN_ATHENA_SETS:
        df = load_table(name)
        for subset, where in (("all runs", None), ("outliers dropped", "not outlier")):
            cells = [name, subset]
            for method in ("parabola", "local"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        r = isoflop(df, method=method, where=where, boot=args.boot if method == "local" else 0, seed=0)
                    except Exception as exc:  # noqa: BLE001  a set the method cannot analyse: say why
                        cells += [f"error: {str(exc)[:60]}", ""]
                        continue
                ci = f" [{r.a_ci[0]:.3f}, {r.a_ci[1]:.3f}]" if (method == "local" and r.a_ci) else ""
                used = len(r.used)
                cells += [f"{r.a:.3f}{ci}", f"{r.b:.3f}", f"{used}/{len(r.budgets)}"]
                if method == "local" and where is None:
                    for b in r.budgets:
                        lo = min(df.loc[np.isclose(np.log(df["C"]), np.log(b.C), atol=0.1), "loss"])
                        gaps.append((name, b.C, 1 - b.loss_opt / lo))
            rows.append(cells)
    print("| set | runs | parabola a | parabola b | budgets | local a [95% boot] | local b | budgets used |")
    print("|---|---|---|---|---|---|---|---|")
    for c in rows:
        print("| " + " | ".join(c) + " |")
    g = np.array([x[2] for x in gaps])
    print(f"\nlocal fit: fitted minimum below the best run (relative), {len(g)} budgets: median {np.median(g):.4f}, "
          f"95th pct {np.percentile(g, 95):.4f}, max {g.max():.4f}")
    for name, C, v in sorted(gaps, key=lambda t: -t[2])[:6]:
        print(f"  {name} C={C:.3g}: {v:.4f}")


if __name__ == "__main__":
    main()
