"""Benchmark: a run's final downstream scores predicted from its start (docs/trajectory.md).

Data: Pythia's zero-shot lm-evaluation-harness results at 27 checkpoints (datasets 'pythia' and
'pythia-deduped'; Biderman et al. 2023). For every target run with at least two smaller runs
(standard: 410m .. 12b, deduped: 410m .. 12b, 11 targets) and every fraction f of training
(0.1, 0.25, 0.5): the target's checkpoints up to step f x 143000 plus every checkpoint of the
smaller runs -> the final (step 143000) score per task, with a 95% interval, by
scalelaw.analysis.checkpoints.predict_final (downstream_direct fitted on error = 1 - score vs N and
D). Baselines, side by side in the same run: the last observed score (interval: +- 1.96 stderr
of that checkpoint), and a power law in tokens a - b D^-c fitted on the target's own checkpoints
(D >= 0.1 N; interval from its covariance plus residual scatter).

Prints, per task family and f: n predictions, MAE in accuracy points (x100) and interval coverage
of the three (the law's interval widened by INTERVAL_SCALE, and in brackets the fit's own); then
per dataset the widening factor that 95% coverage would have needed. Usage:
  python benchmarks/trajectory_backtest.py             # both datasets, 9 tasks (MMLU as its average)
  python benchmarks/trajectory_backtest.py --quick     # the standard suite only, 4 tasks
  python benchmarks/trajectory_backtest.py -o bt.csv   # also every prediction (CSV)
  python benchmarks/trajectory_backtest.py --rescore bt.csv   # summarise a saved run again (no fitting)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scalelaw.analysis.checkpoints import INTERVAL_SCALE, backtest, score_backtest, widen  # noqa: E402
from scalelaw.cli.trajectory import format_backtest  # noqa: E402
from scalelaw.io import load_table  # noqa: E402

TASKS = ["arc_easy", "arc_challenge", "lambada_openai", "piqa", "winogrande", "wsc", "sciq", "logiqa", "hendrycksTest_*"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-o", "--output")
    ap.add_argument("--rescore", metavar="CSV", help="Summarise a CSV written by -o instead of fitting again.")
    a = ap.parse_args()
    names = ["pythia"] if a.quick else ["pythia", "pythia-deduped"]
    tasks = ["arc_easy", "lambada_openai", "piqa", "hendrycksTest_*"] if a.quick else TASKS
    t0, cpu0 = time.time(), time.process_time()
    if a.rescore:
        bt = pd.read_csv(a.rescore)
        if "lower_fit" not in bt.columns:  # written before the interval was widened: lower/upper are the fit's
            bt = bt.rename(columns={"lower": "lower_fit", "upper": "upper_fit"})
        widen(bt, INTERVAL_SCALE)
        if "dataset" not in bt.columns:
            bt["dataset"] = np.where(bt["run"].str.endswith("-deduped"), "pythia-deduped", "pythia")
        names, tasks = sorted(bt["dataset"].unique()), sorted(bt["task"].unique())
    else:
        parts = []
        for name in names:
            bt = backtest(load_table(name), tasks, (0.1, 0.25, 0.5),
                          progress=lambda run, f: print(f"  {run} f={f:g} ({time.time() - t0:.0f}s)", file=sys.stderr))
            parts.append(bt.assign(dataset=name))
        bt = pd.concat(parts, ignore_index=True)
    summ = score_backtest(bt)
    overall = score_backtest(bt.assign(family="all tasks"))
    print(f"Pythia backtest ({', '.join(names)}; {bt['run'].nunique()} targets; tasks: {', '.join(tasks)})")
    print(f"{len(bt)} predictions, {time.process_time() - cpu0:.0f} s CPU")
    print()
    print(format_backtest(pd.concat([summ, overall], ignore_index=True)))
    fails = bt["error"].notna().sum() if "error" in bt.columns else 0
    print(f"\nlaw fits that failed: {fails}; interval widening factor {INTERVAL_SCALE:g}")
    for name, g in bt.groupby("dataset"):
        half = np.where(g["actual"] >= g["predicted"], g["upper_fit"] - g["predicted"], g["predicted"] - g["lower_fit"])
        need = np.abs(g["actual"] - g["predicted"]) / half
        need = need[np.isfinite(need)]
        print(f"{name}: factor the fit's interval needed for 95% coverage {np.quantile(need, 0.95):.2f}; "
              f"coverage with {INTERVAL_SCALE:g}: {np.mean(need <= INTERVAL_SCALE):.0%} of {len(need)}")
    if a.output:
        bt.drop(columns=[c for c in ("params",) if c in bt.columns]).to_csv(a.output, index=False)


if __name__ == "__main__":
    main()
