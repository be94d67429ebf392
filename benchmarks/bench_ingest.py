"""Benchmark: ingest a large W&B-style history CSV and reduce it to one row per run.

Generates RUNS x STEPS rows (default 2,000 x 5,000 = 10M; columns run, _step, loss, lr, tokens,
params, grad_norm) into a temporary folder, then times, each in its own subprocess (so peak memory
is that job's alone):

- scalelaw: ``load_table(path, reduce="final")`` and ``reduce="smooth"`` (pyarrow streaming
  reader, column projection, per-batch reduction; the validated run table at the end);
- pandas: plain ``pandas.read_csv(path)`` (reading only, no reduction) and read_csv + groupby.

Prints rows/s, wall time, peak RSS (``ru_maxrss`` of the child) and its ratio to the file size,
and the speed ratios. Targets: >= 2M rows/s, peak memory < 3x the file size.
Usage: python benchmarks/bench_ingest.py [--runs 2000] [--steps 5000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import pandas as pd
import pyarrow  # noqa: F401  (imported before the clock in every job)
from scalelaw.io import load_table
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
job, path = {job!r}, {path!r}
if job == "scalelaw-final":
    df = load_table(path, reduce="final")
elif job == "scalelaw-smooth":
    df = load_table(path, reduce="smooth", ema=0.9)
elif job == "pandas-read_csv":
    df = pd.read_csv(path)
elif job == "pandas-read+groupby":
    df = pd.read_csv(path).groupby("run").tail(1)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": dt, "peak_kb": peak, "base_kb": base, "rows_out": len(df)}}))
"""


def generate(path: Path, runs: int, steps: int, seed: int = 0) -> int:
    """Write the history CSV in chunks of runs (pyarrow's CSV writer); return rows written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    step = np.arange(steps, dtype=np.int64)
    per = max(1, 2_000_000 // steps)
    writer = None
    for r0 in range(0, runs, per):
        rs = np.arange(r0, min(runs, r0 + per))
        n = len(rs) * steps
        params = np.repeat(1e7 * (1 + rs % 50), steps).astype(np.float64)
        s = np.tile(step, len(rs))
        loss = 2.0 + 8.0 / (1 + s) ** 0.35 + 0.02 * rng.standard_normal(n)
        lr = 3e-4 * np.minimum(1.0, (s + 1) / 500) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * s / steps)))
        tokens = (s + 1).astype(np.float64) * 524288
        run = np.repeat(np.array([f"run-{i:05d}" for i in rs]), steps)
        tbl = pa.table({"run": run, "_step": s, "loss": loss.round(5), "lr": lr, "tokens": tokens,
                        "params": params, "grad_norm": np.abs(rng.standard_normal(n)).round(4)})
        if writer is None:
            writer = pacsv.CSVWriter(str(path), tbl.schema)
        writer.write_table(tbl)
    writer.close()
    return runs * steps


def run_job(job: str, path: Path) -> dict:
    code = CHILD.format(root=str(ROOT), job=job, path=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{job} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--keep", default=None, help="Write the CSV here and keep it (default: a temp dir, deleted).")
    ap.add_argument("--skip-groupby", action="store_true", help="Skip the pandas read_csv+groupby job.")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="scalelaw-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "history.csv"
    try:
        t = time.perf_counter()
        if not path.exists():
            rows = generate(path, args.runs, args.steps)
        else:
            rows = args.runs * args.steps
        size = path.stat().st_size
        print(f"file: {path} {rows:,} rows, {size / 1e6:.0f} MB (generated in {time.perf_counter() - t:.1f} s)")
        jobs = ["scalelaw-final", "scalelaw-smooth", "pandas-read_csv"] + ([] if args.skip_groupby else ["pandas-read+groupby"])
        res = {}
        for job in jobs:
            r = run_job(job, path)
            res[job] = r
            print(f"{job:<22} {r['seconds']:7.2f} s  {rows / r['seconds'] / 1e6:6.2f} M rows/s  "
                  f"peak RSS {r['peak_kb'] / 1024:7.0f} MB ({r['peak_kb'] * 1024 / size:4.2f}x file; "
                  f"{(r['peak_kb'] - r['base_kb']) / 1024:6.0f} MB above imports)  rows out {r['rows_out']:,}")
        s, p = res["scalelaw-final"], res["pandas-read_csv"]
        print(f"speed scalelaw-final / pandas.read_csv: {p['seconds'] / s['seconds']:.2f}x; "
              f"peak memory ratio: {s['peak_kb'] / p['peak_kb']:.2f}x")
        ok_speed = rows / s["seconds"] >= 2e6
        ok_mem = s["peak_kb"] * 1024 < 3 * size
        print(f"targets: >= 2M rows/s {'OK' if ok_speed else 'MISSED'}; peak < 3x file size {'OK' if ok_mem else 'MISSED'}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
