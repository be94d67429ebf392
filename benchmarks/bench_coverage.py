"""Benchmark: coverage of 95% intervals, and the objectives' extrapolation error, on synthetic
Chinchilla ladders with a known truth.

Truth: Epoch's constants (Besiroglu et al. 2024): E 1.8169, A 482.01, B 2085.43, alpha 0.3478,
beta 0.3658. Design ("ladder"): 6 model sizes log-spaced over 1e7..1e9 parameters, each trained
at 5, 10, 20, 40 and 80 tokens per parameter (30 runs, largest run 4.8e20 FLOPs).
Noise, multiplicative on the loss (ln y = ln L + e):
  gauss     e ~ N(0, 0.01)                               (well-behaved, like real ladders)
  outliers  e ~ N(0, 0.01), plus on 10% of the runs an extra +|N(0, 0.05)|
            (one-sided: diverged / badly tuned runs land high)
  t3        e ~ 0.01 * Student-t(3)                      (heavy tails, symmetric)
Targets: the loss at 20x the compute of the largest run (9.6e21 FLOPs), at the true
compute-optimal (N, D) for that budget (extrapolation factor ~ 9x in N, 2.4x in D); and N_opt at
Chinchilla's budget C = 5.76e23.

For each dataset i (seed i) every objective is fitted with scalelaw.fit.fit(..., starts=SUB)
where SUB is the truth-independent subgrid of Hoffmann's grid: ln A, ln B in {0, 5, ..., 25},
ln E in {-0.5, 0.5}, alpha, beta in {0.5, 1} (288 of the 4,500 starts; the benchmark checks
on the first datasets that it reaches the full grid's optimum). The bootstrap fits use
boot=K, seed=i; delta-method intervals are read from the same fit without its bootstrap samples.
Datasets are spread over --jobs processes (one fit per process at a time, n_jobs=1 inside).

Prints coverage of the 95% intervals (with Monte-Carlo standard errors), interval widths, and
the objectives' extrapolation errors. Usage:
  python benchmarks/bench_coverage.py            # 200 datasets per noise model, K = 300
  python benchmarks/bench_coverage.py --quick    # 60 datasets, K = 150
  python benchmarks/bench_coverage.py --boot 0 --noise gauss-0.003,gauss-0.03 --datasets 100
                                                 # objectives only, at other noise scales
  python benchmarks/bench_coverage.py --design isoflop --noise gauss,outliers
                                                 # IsoFLOP-like design: 5 budgets x 7 sizes
"""
from __future__ import annotations

import os

# one BLAS thread per process: L-BFGS-B's tiny dense algebra is 40x slower when OpenBLAS threads
# compete for 2 shared cores (measured: 6.6 s vs 0.16 s per fit on a loaded machine)
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalelaw.calibration import calibrate, fit_auto_delta  # noqa: E402
from scalelaw.fit import fit  # noqa: E402
from scalelaw.law import get_law  # noqa: E402

LAW = get_law("chinchilla")
TRUTH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
PARAMS = ("E", "A", "B", "alpha", "beta")
SIZES = np.geomspace(1e7, 1e9, 6)
RATIOS = (5, 10, 20, 40, 80)
SD = 0.01
C_BIG = 5.76e23
NOISES = ("gauss", "outliers", "t3", "gauss-0.003", "gauss-0.03")
DEFAULT_NOISES = NOISES[:3]


ISO_BUDGETS = np.geomspace(1e18, 1e20, 5)


def design(name: str = "ladder"):
    """(N, D) of the runs. 'ladder': SIZES x RATIOS tokens/param (30 runs). 'isoflop': 5 budgets
    1e18..1e20 FLOPs, 7 model sizes per budget spread 1/4..4x around the true optimum (35 runs)."""
    if name == "ladder":
        N, R = np.meshgrid(SIZES, RATIOS)
        N = N.ravel()
        return N, R.ravel() * N
    if name == "isoflop":
        Ns, Ds = [], []
        for C in ISO_BUDGETS:
            n = float(LAW.optimum(TRUTH, compute=C)["N_opt"]) * np.geomspace(1 / 4, 4, 7)
            Ns.append(n)
            Ds.append(C / (6 * n))
        return np.concatenate(Ns), np.concatenate(Ds)
    raise ValueError(name)


def set_design(name: str = "ladder"):
    """Set the module-level design and targets (workers fork after this, so they inherit it)."""
    global DESIGN, N_RUNS, D_RUNS, C_TARGET, N_T, D_T, L_T
    DESIGN = name
    N_RUNS, D_RUNS = design(name)
    C_TARGET = 20 * float(np.max(6 * N_RUNS * D_RUNS))
    opt = LAW.optimum(TRUTH, compute=C_TARGET)
    N_T, D_T = float(opt["N_opt"]), float(opt["D_opt"])
    L_T = float(LAW.evaluate({"N": [N_T], "D": [D_T]}, TRUTH)[0])


set_design("ladder")
NOPT_BIG = float(LAW.optimum(TRUTH, compute=C_BIG)["N_opt"])
A_TRUE = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])


def subgrid() -> np.ndarray:
    g = LAW.grid_starts()
    keep = np.isin(g[:, 0], [-0.5, 0.5]) & np.isin(g[:, 3], [0.5, 1.0]) & np.isin(g[:, 4], [0.5, 1.0])
    g = g[keep]
    return np.column_stack([np.exp(g[:, 0]), np.exp(g[:, 1]), np.exp(g[:, 2]), g[:, 3], g[:, 4]])


SUB = subgrid()


def noise(kind: str, rng, n: int) -> np.ndarray:
    if kind == "gauss":
        return rng.normal(0, SD, n)
    if kind == "outliers":
        e = rng.normal(0, SD, n)
        hit = rng.random(n) < 0.10
        return e + hit * np.abs(rng.normal(0, 0.05, n))
    if kind == "t3":
        return SD * rng.standard_t(3, n)
    if kind.startswith("gauss-"):
        return rng.normal(0, float(kind.split("-")[1]), n)
    raise ValueError(kind)


def dataset(kind: str, i: int):
    rng = np.random.default_rng([NOISES.index(kind), i])
    y = LAW.evaluate({"N": N_RUNS, "D": D_RUNS}, TRUTH) * np.exp(noise(kind, rng, N_RUNS.size))
    df = pd.DataFrame({"N": N_RUNS, "D": D_RUNS, "loss": y})
    df.attrs["source"] = f"synthetic {kind} #{i}"
    fresh = L_T * float(np.exp(noise(kind, rng, 1)[0]))   # a new run at the target
    return df, fresh


def covers(lo, hi, v) -> bool:
    return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= v <= hi)


def interval_record(f, fresh: float) -> dict:
    """Coverage flags and log-widths of every quantity for one Fit (its own interval method)."""
    out = {}
    ci = f.ci
    for p in PARAMS:
        lo, hi = ci[p]
        out[f"cov_{p}"] = covers(lo, hi, TRUTH[p])
        out[f"w_{p}"] = hi - lo
    d = f.derived()["a"]
    out["cov_a"] = covers(d["lower"], d["upper"], A_TRUE)
    out["w_a"] = d["upper"] - d["lower"]
    pr = f.predict({"N": [N_T], "D": [D_T]}).iloc[0]
    out["cov_L"] = covers(pr.lower, pr.upper, L_T)
    out["w_L"] = float(np.log(pr.upper / pr.lower))
    out["cov_Lnew"] = covers(pr.pred_lower, pr.pred_upper, fresh)
    out["w_Lnew"] = float(np.log(pr.pred_upper / pr.pred_lower))
    o = f.optimum(compute=C_BIG)
    out["cov_Nopt"] = covers(o["N_opt_lower"], o["N_opt_upper"], NOPT_BIG)
    out["w_Nopt"] = float(np.log(o["N_opt_upper"] / o["N_opt_lower"]))
    return out


def point_record(f) -> dict:
    pr = LAW.evaluate({"N": [N_T], "D": [D_T]}, f.params)[0]
    nopt = float(LAW.optimum(f.params, compute=C_BIG)["N_opt"])
    return {"L": float(pr), "Nopt": nopt, "converged": bool(f.diagnostics["converged"]),
            **{p: f.params[p] for p in PARAMS}}


# objectives compared: name -> fit keywords; the first two also get a bootstrap
OBJECTIVES = {
    "huber-log 1e-3": {"objective": "huber-log", "delta": 1e-3},
    "lsq-log": {"objective": "lsq-log"},
    "huber-log 1e-2": {"objective": "huber-log", "delta": 1e-2},
    "huber-log auto": {"objective": "huber-log", "delta": "auto"},
    "lsq (raw)": {"objective": "lsq"},
}
BOOTED = ("huber-log 1e-3", "lsq-log", "huber-log 1e-2")


def run_one(task):
    kind, i, K, check_starts, objectives, booted, design_name = task
    if design_name != DESIGN:
        set_design(design_name)
    df, fresh = dataset(kind, i)
    rec = {"noise": kind, "i": i, "fresh": fresh}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in objectives:
            kw = OBJECTIVES[name]
            boot = K if name in booted else 0
            if kw.get("delta") == "auto":
                f = fit_auto_delta("chinchilla", df, starts=SUB, boot=boot, seed=i, n_jobs=1)
            else:
                f = fit("chinchilla", df, starts=SUB, boot=boot, seed=i, n_jobs=1, **kw)
            rec[name] = point_record(f)
            rec[name]["delta"] = f.objective.get("delta")
            if boot:
                rec[name]["boot"] = interval_record(f, fresh)
                rec[name]["boot_cal"] = interval_record(calibrate(f, method="inflate"), fresh)
                nb = dataclasses.replace(f, boot=None)
                rec[name]["delta_m"] = interval_record(nb, fresh)
                rec[name]["delta_cal"] = interval_record(calibrate(nb, method="sandwich-t"), fresh)
            if check_starts and name == "huber-log 1e-3":
                full = fit("chinchilla", df, n_jobs=1, **kw)
                rec["starts_check"] = float(f.objective["value"] - full.objective["value"])
    rec["seconds"] = time.perf_counter() - t0
    return rec


# --------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------
ITEMS = ("E", "A", "B", "alpha", "beta", "a", "L", "Lnew", "Nopt")
LABEL = {"L": "L@20x (curve)", "Lnew": "L@20x (new run)", "Nopt": "N_opt@5.76e23"}


def fmt_cov(flags) -> str:
    p = float(np.mean(flags))
    se = float(np.sqrt(p * (1 - p) / len(flags)))
    mark = "" if 0.90 <= p <= 0.98 else "*"
    return f"{100 * p:5.1f}±{100 * se:3.1f}{mark}"


def coverage_table(recs, kind, booted, methods=(("boot", "bootstrap"), ("delta_m", "delta"))):
    rs = [r for r in recs if r["noise"] == kind]
    cols = [(obj, m, f"{obj.replace('huber-log ', 'H')} {lab}") for obj in booted for m, lab in methods]
    lines = [f"\ncoverage of 95% intervals, noise={kind}, {len(rs)} datasets (% ± MC s.e.; * outside 90-98)"]
    w = max([17] + [len(c[2]) + 2 for c in cols])  # labels such as 'lsq-log sandwich-t' ran into each other
    lines.append(f"{'quantity':<18}" + "".join(f"{c[2]:>{w}}" for c in cols))
    for it in ITEMS:
        row = f"{LABEL.get(it, it):<18}"
        for obj, m, _ in cols:
            row += f"{fmt_cov([r[obj][m]['cov_' + it] for r in rs]):>{w}}"
        lines.append(row)
    return "\n".join(lines)


def width_ratio(rs, it, obj, ref="lsq-log"):
    """Median ratio of the bootstrap interval widths of ``it``: objective ``obj`` over ``ref``."""
    a = np.array([r[obj]["boot"]["w_" + it] for r in rs])
    b = np.array([r[ref]["boot"]["w_" + it] for r in rs])
    return float(np.median(a / b))


def objective_table(recs, kind, objectives=tuple(OBJECTIVES)):
    rs = [r for r in recs if r["noise"] == kind]
    lines = [f"\nextrapolation error, noise={kind}, {len(rs)} datasets "
             f"(L at 20x compute: truth {L_T:.4f}; N_opt at 5.76e23: truth {NOPT_BIG:.3e})"]
    lines.append(f"{'objective':<16}{'L rel.err RMS %':>16}{'median |err| %':>15}{'90th pct %':>12}{'bias %':>9}"
                 f"{'N_opt RMS log10':>17}{'90th pct':>10}{'alpha RMSE':>12}{'not conv.':>10}")
    for name in objectives:
        e = np.array([r[name]["L"] / L_T - 1 for r in rs]) * 100
        n = np.array([np.log10(r[name]["Nopt"] / NOPT_BIG) for r in rs])
        al = np.array([r[name]["alpha"] - TRUTH["alpha"] for r in rs])
        nc = sum(not r[name]["converged"] for r in rs)
        lines.append(f"{name:<16}{np.sqrt(np.mean(e ** 2)):>16.3f}{np.median(np.abs(e)):>15.3f}"
                     f"{np.quantile(np.abs(e), 0.9):>12.3f}{np.mean(e):>+9.3f}{np.sqrt(np.mean(n ** 2)):>17.3f}"
                     f"{np.quantile(np.abs(n), 0.9):>10.3f}{np.sqrt(np.mean(al ** 2)):>12.4f}{nc:>10}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 datasets per noise model, K = 150")
    ap.add_argument("--datasets", type=int, default=None)
    ap.add_argument("--boot", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--design", choices=("ladder", "isoflop"), default="ladder")
    ap.add_argument("--noise", default=",".join(DEFAULT_NOISES),
                    help=f"comma-separated, from {', '.join(NOISES)}")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES), help="comma-separated objectives to fit")
    ap.add_argument("--booted", default=None,
                    help="comma-separated objectives (among --objectives) that also get a bootstrap and coverage "
                         f"tables [those of {', '.join(BOOTED)} that are fitted]")
    ap.add_argument("--json", default=None, help="write the per-dataset records here")
    args = ap.parse_args()
    n = args.datasets or (60 if args.quick else 200)
    K = args.boot if args.boot is not None else (150 if args.quick else 300)
    kinds = [k for k in args.noise.split(",") if k]
    objectives = [o for o in args.objectives.split(",") if o]
    booted = ([o for o in args.booted.split(",") if o] if args.booted is not None
              else [o for o in BOOTED if o in objectives])
    for opt, names, known in (("--noise", kinds, NOISES), ("--objectives", objectives, OBJECTIVES),
                              ("--booted", booted, objectives)):
        unknown = [x for x in names if x not in known]
        if unknown:
            ap.error(f"{opt}: {', '.join(unknown)} not among {', '.join(known)}"
                     + (" (--booted names must be in --objectives)" if opt == "--booted" else ""))
    set_design(args.design)
    desc = (f"N {SIZES[0]:.0e}..{SIZES[-1]:.0e} x {RATIOS} tokens/param" if args.design == "ladder" else
            f"IsoFLOP: budgets {ISO_BUDGETS[0]:.0e}..{ISO_BUDGETS[-1]:.0e}, 7 sizes 1/4..4x N_opt each")
    print(f"design {args.design}: {len(N_RUNS)} runs ({desc}); "
          f"target C {C_TARGET:.2e} = 20x largest run -> N {N_T:.3e}, D {D_T:.3e}, L {L_T:.4f}")
    print(f"{n} datasets x {kinds}; bootstrap K={K}; starts: {len(SUB)}-point subgrid; {args.jobs} processes")
    tasks = [(k, i, K, i < 3 and "huber-log 1e-3" in objectives, objectives, booted, args.design)
             for k in kinds for i in range(n)]
    recs, t0 = [], time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        for j, r in enumerate(ex.map(run_one, tasks, chunksize=2), 1):
            recs.append(r)
            if j % 25 == 0 or j == len(tasks):
                print(f"  {j}/{len(tasks)} datasets, {time.perf_counter() - t0:.0f} s", flush=True)
    el = time.perf_counter() - t0
    print(f"total {el:.0f} s ({np.mean([r['seconds'] for r in recs]):.2f} s per dataset per process)")
    sc = [r["starts_check"] for r in recs if "starts_check" in r]
    if sc:
        print(f"subgrid vs full 4,500-start grid, objective difference on {len(sc)} datasets: max {max(sc):.2e}")

    for kind in kinds:
        rs = [r for r in recs if r["noise"] == kind]
        if K:
            print(coverage_table(recs, kind, booted))
            print(coverage_table(recs, kind, booted, methods=(("boot_cal", "boot-infl"), ("delta_cal", "sandwich-t"))))
            if "lsq-log" in booted:
                for obj in booted:
                    if obj != "lsq-log":
                        print(f"  median bootstrap width ratio {obj} / lsq-log: "
                              + ", ".join(f"{it} {width_ratio(rs, it, obj):.2f}" for it in ("alpha", "beta", "L", "Nopt")))
        print(objective_table(recs, kind, objectives))
        if "huber-log auto" in objectives:
            ds = [r["huber-log auto"]["delta"] for r in rs]
            print(f"  auto delta: median {np.median(ds):.2e} (10-90%: {np.quantile(ds, 0.1):.2e}..{np.quantile(ds, 0.9):.2e})")
    if args.json:
        Path(args.json).write_text(json.dumps(recs))


if __name__ == "__main__":
    main()
