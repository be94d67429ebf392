"""Backtest benchmark: every law x fitting procedure on every registry data set with a natural
extrapolation split, scored out of sample. Produces the table of docs/benchmark.md.

Data sets (the registry's tables of loss against size and data; the others are LR x batch
sweeps, mixture weights or downstream scores, which no loss law here predicts out of sample):
  chinchilla-epoch (240 runs), gadre-overtrain split by training set (rpj, c4_original,
  rw_original; 34-35 runs each).
Splits: "top-C": the runs above the 80th percentile of compute C (= 6ND) are held out;
  "top-N": the runs of the largest model size are held out.
Laws: chinchilla; chinchilla with tied exponents as a formula law (loss = E + A/N^alpha +
  B/D^alpha); overtrain on the Gadre data (Gadre et al. 2024).
Procedures: huber-log with delta 1e-3 (the literature's), 1e-2, 1e-1 and auto (1.345 x the
  robust residual scale of a pilot fit, scalelaw.calibration), lsq-log, lsq, and variable
  projection (scalelaw.varpro) on lsq-log and lsq.
Scores (held-out rows): mean and max |relative error|, coverage of the 95% prediction band.

Usage: nice python benchmarks/bench_laws.py [--out table.md] [--quick]
(--quick: chinchilla-epoch top-C only). Run with nice: ~170 fits, several minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SCALELAW_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))

from scalelaw.errors import FitError, ScalelawError  # noqa: E402
from scalelaw.io import load_table  # noqa: E402
from scalelaw.law import Law, get_law  # noqa: E402
from scalelaw.predict import backtest  # noqa: E402

PROCEDURES = {
    "huber-log d=1e-3": dict(objective="huber-log", delta=1e-3),
    "huber-log d=1e-2": dict(objective="huber-log", delta=1e-2),
    "huber-log d=1e-1": dict(objective="huber-log", delta=1e-1),
    "huber-log d=auto": dict(objective=None, delta="auto"),
    "lsq-log": dict(objective="lsq-log"),
    "lsq": dict(objective="lsq"),
    "varpro lsq-log": dict(objective="lsq-log", method="varpro"),
    "varpro lsq": dict(objective="lsq", method="varpro"),
}
TIED = Law.from_formula("loss = E + A/N^alpha + B/D^alpha", inputs=("N", "D"), name="chinchilla_tied")


def datasets(quick: bool):
    out = []
    ce = load_table("chinchilla-epoch")
    out.append(("chinchilla-epoch", ce, ["chinchilla", TIED]))
    if quick:
        return out
    g = load_table("gadre-overtrain")
    for name in ("rpj", "c4_original", "rw_original"):
        sub = g[g["dataset"] == name].copy()
        sub.attrs.update(g.attrs)
        sub.attrs["source"] = f"gadre-overtrain[{name}]"
        out.append((f"gadre-{name}", sub, ["chinchilla", TIED, "overtrain"]))
    return out


def splits(df: pd.DataFrame, quick: bool):
    c80 = float(np.quantile(df["C"], 0.8))
    out = [("top-C", f"C <= {c80!r}")]
    if not quick:
        out.append(("top-N", f"N < {float(df['N'].max())!r}"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", help="write the markdown table here")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rows = []
    t_all = time.perf_counter()
    for dname, df, laws in datasets(args.quick):
        for sname, train in splits(df, args.quick):
            for law in laws:
                law = get_law(law)
                for pname, kw in PROCEDURES.items():
                    kw = dict(kw)
                    method = kw.pop("method", "multistart")
                    if method == "varpro" and not law.linear:
                        continue
                    t0 = time.perf_counter()
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            r = backtest(law, df, train=train, method=method, n_jobs=1, **kw)
                        rows.append(dict(data=dname, split=sname, law=law.name, procedure=pname,
                                         n_train=r["n_train"], n_test=r["n_test"], mean=r["mean_rel_error"],
                                         max=r["max_rel_error"], coverage=r["coverage"], converged=r["converged"],
                                         seconds=time.perf_counter() - t0))
                    except (FitError, ScalelawError) as exc:
                        rows.append(dict(data=dname, split=sname, law=law.name, procedure=pname, error=str(exc)[:80],
                                         seconds=time.perf_counter() - t0))
                    last = rows[-1]
                    print(f"{dname:<18}{sname:<7}{law.name:<16}{pname:<18}"
                          + (f"mean {100 * last['mean']:6.2f}%  max {100 * last['max']:6.2f}%  cov {last['coverage']:.2f}"
                             if "mean" in last else f"ERROR {last['error']}")
                          + f"  ({last['seconds']:.1f}s)", flush=True)
    res = pd.DataFrame(rows)
    ok = res[res["mean"].notna()] if "mean" in res else res.iloc[0:0]
    # per (data, split, law): rank of each procedure by held-out mean |error| (1 = best)
    ok = ok.assign(rank=ok.groupby(["data", "split", "law"])["mean"].rank(method="min"))
    summary = ok.groupby("procedure").agg(cases=("mean", "size"), mean_err=("mean", "mean"),
                                          median_err=("mean", "median"), worst_max=("max", "max"),
                                          coverage=("coverage", "mean"), mean_rank=("rank", "mean"),
                                          wins=("rank", lambda s: int((s == 1).sum()))).sort_values("mean_rank")
    lines = ["| data | split | law | procedure | train | held out | mean abs rel. err. | max | coverage |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in res.iterrows():
        if "error" in r and isinstance(r.get("error"), str):
            lines.append(f"| {r.data} | {r.split} | {r.law} | {r.procedure} | - | - | error: {r.error} | | |")
        else:
            lines.append(f"| {r.data} | {r.split} | {r.law} | {r.procedure} | {r.n_train} | {r.n_test} | "
                         f"{100 * r['mean']:.2f}% | {100 * r['max']:.2f}% | {100 * r.coverage:.0f}% |")
    lines += ["", "| procedure | cases | mean of mean abs err. | median | worst max | mean coverage | mean rank | wins |",
              "|---|---|---|---|---|---|---|---|"]
    for p, r in summary.iterrows():
        lines.append(f"| {p} | {r.cases} | {100 * r.mean_err:.2f}% | {100 * r.median_err:.2f}% | "
                     f"{100 * r.worst_max:.2f}% | {100 * r.coverage:.0f}% | {r.mean_rank:.2f} | {r.wins} |")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    print(f"total {time.perf_counter() - t_all:.0f}s for {len(res)} fits")
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
