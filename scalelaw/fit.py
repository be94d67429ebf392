"""fit(law, table) -> Fit: the multi-start, batched fitting engine.

(From the package, ``import scalelaw as sl; sl.fit(data, "chinchilla", ...)`` calls this module:
that is :func:`scalelaw.api.fit`, data first, taking a DataFrame, a path or a dataset name.)

Objective (the literature's): Huber loss on log residuals r = ln f(x; theta) - ln y, SUMMED over
points, delta 1e-3 by default (Hoffmann et al. 2022; Besiroglu et al. 2024). Averaging instead
of summing makes L-BFGS-B stop early, so we always sum. Plain least squares (on log or raw
values) and Huber on raw values are available.

Speed comes from doing less work per start, not from fewer starts:
  1. every start of the law's grid is advanced at once, as a batch of S parameter vectors, by a
     Levenberg-Marquardt / IRLS iteration (Huber = least squares reweighted by min(1, delta/|r|))
     with analytic Jacobians where the law gives them; converged starts leave the batch;
  2. the few best distinct end points are polished with scipy's L-BFGS-B on the exact
     objective and gradient, so the optimum is the one the per-start scipy loop finds.
Bootstrap refits reuse step 1 with resampling weights, warm-started from the optimum.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from . import expr
from .errors import FitError, ScalelawError
from .law import OBJECTIVES, Law, get_law
from .uncertainty import bootstrap

LOG_OBJECTIVES = ("huber-log", "lsq-log")


# --------------------------------------------------------------------------------------------
# The problem: data, objective and parameter transforms, all vectorised over starts
# --------------------------------------------------------------------------------------------
@dataclass
class Problem:
    law: Law
    X: tuple            # input arrays, each (n,)
    y: np.ndarray       # (n,)
    weights: np.ndarray  # (n,)
    free: tuple         # names of fitted params, in law order
    fixed: dict         # name -> natural value
    objective: str = "huber-log"
    delta: float = 1e-3

    def __post_init__(self):
        self.pidx = [self.law.param_names.index(n) for n in self.free]
        self.pdefs = [self.law.params[i] for i in self.pidx]
        b = np.array([p.internal_bounds() for p in self.pdefs], dtype=float).reshape(-1, 2)
        self.lo, self.hi = b[:, 0], b[:, 1]
        self.logmask = np.array([p.log for p in self.pdefs], dtype=bool)
        self.log_obj = self.objective in LOG_OBJECTIVES
        self.huber = self.objective in ("huber-log", "huber")
        self.ylog = np.log(self.y) if self.log_obj else None

    @property
    def P(self) -> int:
        return len(self.free)

    def natural(self, theta: np.ndarray) -> np.ndarray:
        return np.where(self.logmask, np.exp(np.minimum(theta, 700.0)), theta)

    def param_dict(self, theta: np.ndarray) -> dict:
        """theta (S, P) -> {name: (S, 1) natural values} including fixed params."""
        nat = self.natural(theta)
        out = {}
        for name in self.law.param_names:
            if name in self.fixed:
                out[name] = self.fixed[name]
            else:
                out[name] = nat[:, self.free.index(name)][:, None]
        return out

    def predict(self, theta: np.ndarray) -> np.ndarray:
        p = self.param_dict(theta)
        with np.errstate(all="ignore"):
            pred = self.law.func(*self.X, *(p[n] for n in self.law.param_names))
        return np.broadcast_to(pred, (theta.shape[0], self.y.shape[0]))

    def residuals(self, theta: np.ndarray, target: np.ndarray | None = None):
        """Residual rows (S, n) and predictions. ``target``: per-row data (S, n) in the objective's
        space (ln y for log objectives) instead of the problem's own, e.g. a residual bootstrap's."""
        pred = self.predict(theta)
        with np.errstate(all="ignore"):
            if target is not None:
                r = (np.log(pred) if self.log_obj else pred) - target
            else:
                r = np.log(pred) - self.ylog if self.log_obj else pred - self.y
        return r, pred

    def rho(self, r: np.ndarray) -> np.ndarray:
        if self.huber:
            a = np.abs(r)
            d = self.delta
            return np.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))
        return 0.5 * r * r

    def psi(self, r: np.ndarray) -> np.ndarray:
        """d rho / d r."""
        if self.huber:
            return np.clip(r, -self.delta, self.delta)
        return r

    def total(self, r: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        """The summed objective of residual rows r (S, n); +inf where it is not finite."""
        w = self.weights if w is None else w
        with np.errstate(all="ignore"):
            f = np.sum(w * self.rho(r), axis=-1)
        return np.where(np.isfinite(f), f, np.inf)

    def jacobian(self, theta: np.ndarray, r: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """d r / d theta, shape (S, P, n) (parameter-major, so each row is contiguous)."""
        S, n = r.shape
        J = np.empty((S, self.P, n))
        if self.law.jac is not None:
            p = self.param_dict(theta)
            with np.errstate(all="ignore"):
                dall = self.law.jac(*self.X, *(p[k] for k in self.law.param_names))
            nat = self.natural(theta)
            for j, i in enumerate(self.pidx):
                if self.logmask[j]:
                    np.multiply(dall[i], nat[:, j][:, None], out=J[:, j, :])
                else:
                    J[:, j, :] = dall[i]
        else:
            h = 1e-6 * np.maximum(1.0, np.abs(theta))
            for j in range(self.P):
                tp, tm = theta.copy(), theta.copy()
                tp[:, j] += h[:, j]
                tm[:, j] -= h[:, j]
                J[:, j, :] = (self.predict(tp) - self.predict(tm)) / (2 * h[:, j][:, None])
        if self.log_obj:
            with np.errstate(all="ignore"):
                J *= (1.0 / pred)[:, None, :]
        return J

    def value_and_grad(self, t: np.ndarray, w: np.ndarray | None = None):
        """Exact objective and gradient for one parameter vector (for scipy)."""
        theta = t[None, :]
        r, pred = self.residuals(theta)
        w = self.weights if w is None else w
        f = float(self.total(r, w)[0])
        if not np.isfinite(f):
            return np.inf, np.zeros_like(t)
        J = self.jacobian(theta, r, pred)[0]
        g = J @ (w * self.psi(r[0]))
        if not np.all(np.isfinite(g)):
            return np.inf, np.zeros_like(t)
        return f, g


# --------------------------------------------------------------------------------------------
# Batched Levenberg-Marquardt / IRLS
# --------------------------------------------------------------------------------------------
def solve_batch(prob: Problem, theta0: np.ndarray, w: np.ndarray | None = None, *,
                max_iter: int = 200, ftol: float = 1e-12, lam0: float = 1e-3, target: np.ndarray | None = None):
    """Minimise the objective from every row of theta0 at once.

    w: (n,) or (S, n) observation weights (bootstrap counts times user weights).
    target: (S, n) data per row in the objective's space (see Problem.residuals), else the problem's.
    A start leaves the batch when an accepted step lowers its objective by less than ``ftol``
    (relative), when its step vanishes, or when damping grows without an accepted step.
    Returns (theta (S,P), f (S,), iterations (S,), converged (S,)).
    """
    theta = np.clip(np.array(theta0, dtype=float), prob.lo, prob.hi)
    S, P = theta.shape
    n = prob.y.shape[0]
    W = prob.weights if w is None else w
    Wfull = np.broadcast_to(W, (S, n))
    r_all, pred_all = prob.residuals(theta, target)
    r_all, pred_all = np.array(r_all), np.array(pred_all)
    f = prob.total(r_all, Wfull)
    lam = np.full(S, lam0)
    iters = np.zeros(S, dtype=int)
    done = ~np.isfinite(f)
    conv = np.zeros(S, dtype=bool)
    eye = np.eye(P)
    # gradient and Gauss-Newton matrix depend only on theta: keep them for starts whose last
    # step was rejected (they have not moved) and recompute only where a step was accepted
    G = np.zeros((S, P))
    HH = np.zeros((S, P, P))
    stale = np.ones(S, dtype=bool)
    # non-finite trial points are expected (a start may wander where the law is undefined);
    # they are rejected by the objective test below, so their warnings are noise
    with np.errstate(all="ignore"):
        for _ in range(max_iter):
            idx = np.flatnonzero(~done)
            if idx.size == 0:
                break
            upd = idx[stale[idx]]
            if upd.size:
                wi = Wfull[upd]
                r, pred = r_all[upd], pred_all[upd]
                J = prob.jacobian(theta[upd], r, pred)   # (s, P, n)
                omega = wi * np.minimum(1.0, prob.delta / np.abs(r)) if prob.huber else wi
                G[upd] = np.matmul(J, (wi * prob.psi(r))[:, :, None])[:, :, 0]
                HH[upd] = np.matmul(J * omega[:, None, :], np.swapaxes(J, 1, 2))
                stale[upd] = False
            th = theta[idx]
            wi = Wfull[idx]
            g = G[idx].copy()
            H = HH[idx]
            dH = np.einsum("spp->sp", H)
            scale = np.maximum(dH, 1e-12 * (dH.max(axis=1, keepdims=True) + 1e-300))
            A = H + (lam[idx][:, None, None] * scale[:, :, None]) * eye
            bad = ~np.all(np.isfinite(A.reshape(len(idx), -1)), axis=1) | ~np.all(np.isfinite(g), axis=1)
            A[bad] = eye
            g[bad] = 0.0
            try:
                step = -np.linalg.solve(A, g[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                step = -np.stack([np.linalg.lstsq(A[k], g[k], rcond=None)[0] for k in range(len(idx))])
            new = np.clip(th + step, prob.lo, prob.hi)
            r_new, pred_new = prob.residuals(new, None if target is None else target[idx])
            f_new = prob.total(r_new, wi)
            fo = f[idx]
            acc = f_new < fo
            ia = idx[acc]
            theta[ia] = new[acc]
            f[ia] = f_new[acc]
            r_all[ia] = r_new[acc]
            pred_all[ia] = pred_new[acc]
            stale[ia] = True
            iters[idx] += 1
            lam[idx] = np.where(acc, np.maximum(lam[idx] / 3.0, 1e-12), lam[idx] * 4.0)
            small = acc & ((fo - f_new) <= ftol * np.maximum(np.abs(fo), 1e-300))
            moved = np.max(np.abs(new - th), axis=1)
            tiny = moved <= 1e-13 * (1 + np.max(np.abs(th), axis=1))
            finish = small | tiny | (lam[idx] > 1e12) | bad
            conv[idx[finish & ~bad]] = True
            done[idx[finish]] = True
    return theta, f, iters, conv


def polish(prob: Problem, theta: np.ndarray, w: np.ndarray | None = None, maxiter: int = 3000):
    """Finish one start with L-BFGS-B on the exact objective and gradient."""
    bounds = [(None if not math.isfinite(l) else l, None if not math.isfinite(h) else h)
              for l, h in zip(prob.lo, prob.hi)]
    res = optimize.minimize(prob.value_and_grad, theta, args=(w,), jac=True, method="L-BFGS-B",
                            bounds=bounds, options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12,
                                                    "maxcor": 30})
    return res


# --------------------------------------------------------------------------------------------
# Chunked execution (local processes or Dask) for large batches
# --------------------------------------------------------------------------------------------
def _solve_chunk(args):
    law_name, X, y, weights, free, fixed, objective, delta, theta0, w, kw = args
    prob = Problem(get_law(law_name), X, y, weights, free, fixed, objective, delta)
    with single_threaded_blas():
        return solve_batch(prob, theta0, w, **kw)


def single_threaded_blas():
    """Context limiting BLAS/OpenMP pools to one thread (our products are small)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - declared dependency
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _run_batched(prob: Problem, theta0: np.ndarray, w=None, *, n_jobs=None, scheduler=None,
                 min_chunk_work: float = 4e5, progress=None, **kw):
    """solve_batch, split over processes/Dask when the batch is large enough to pay for it."""
    from .law import is_registered
    from .parallel import map_chunks

    S = theta0.shape[0]
    work = S * prob.y.shape[0]
    jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
    registered = is_registered(prob.law)   # workers look laws up by name
    if (jobs <= 1 and scheduler is None) or (work < min_chunk_work and scheduler is None) or not registered:
        out = solve_batch(prob, theta0, w, **kw)
        if progress is not None:
            progress(S)
        return out
    nchunk = max(jobs, 1) * (4 if scheduler else 1)
    nchunk = min(nchunk, S)
    splits = np.array_split(np.arange(S), nchunk)
    wfull = None if w is None else np.broadcast_to(w, (S, prob.y.shape[0]))
    target = kw.pop("target", None)   # per-row data: split with the rows
    tasks = [(prob.law.name, prob.X, prob.y, prob.weights, prob.free, prob.fixed, prob.objective,
              prob.delta, theta0[s], None if wfull is None else np.ascontiguousarray(wfull[s]),
              kw if target is None else {**kw, "target": target[s]})
             for s in splits]
    results = map_chunks(_solve_chunk, tasks, n_jobs=jobs, scheduler=scheduler,
                         sizes=[len(s) for s in splits], progress=progress)
    th = np.concatenate([r[0] for r in results])
    f = np.concatenate([r[1] for r in results])
    it = np.concatenate([r[2] for r in results])
    cv = np.concatenate([r[3] for r in results])
    return th, f, it, cv


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------
def select_rows(data: pd.DataFrame, where: str | None, src: str) -> pd.DataFrame:
    """The rows matching a --where expression, with one-line errors for bad or empty filters."""
    if not where:
        return data
    df = expr.select(data, where, "--where", src)
    if len(df) == 0:
        raise ScalelawError(f"--where {where!r} matches no rows of {src} ({len(data)} rows); loosen the filter")
    return df


def prepare(law, data: pd.DataFrame, *, where: str | None = None, weights=None,
            source: str | None = None, prepare_options: Mapping | None = None, best_per_cell: bool = False):
    """Select rows and extract inputs/target with clear errors. Returns (law, frame, X, y, w)."""
    return _prepare(law, data, where=where, weights=weights, source=source, prepare_options=prepare_options,
                    best_per_cell=best_per_cell)[:5]


#: columns of the settings a sweep varies within one (N, D) cell
SWEPT_SETTINGS = ("lr", "batch_tokens")


def _several_runs_per_cell(law, df: pd.DataFrame, src: str, best_per_cell: bool) -> tuple[pd.DataFrame, str | None]:
    """A loss law fits every row, so a table with several runs per cell of the law's inputs (e.g.
    (N, D)) that differ in lr or batch (a hyperparameter sweep) pulls it towards the sub-optimal
    settings: warn, with the option that keeps each cell's lowest-loss run; with
    ``best_per_cell`` keep it (and return the note the fit records)."""
    if law.target != "loss" or "step" in law.inputs or not set(law.inputs) <= set(df.columns) or len(df) < 2:
        return df, None
    keys = [np.round(np.log(pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)), 6)
            if pd.api.types.is_numeric_dtype(df[c]) else df[c].to_numpy() for c in law.inputs]
    cell = pd.Series(list(zip(*keys)), index=df.index)
    sizes = cell.map(cell.value_counts())
    if not (sizes > 1).any():
        return df, None
    cells = "(" + ", ".join(law.inputs) + ")"
    if best_per_cell:
        loss = pd.to_numeric(df["loss"], errors="coerce")
        keep = loss.groupby(cell.to_numpy()).idxmin().dropna()
        out = df.loc[sorted(keep.tolist(), key=df.index.get_loc)]
        return out, f"the best (lowest-loss) run of each {cells} cell ({len(out)} cells, --best-per-cell)"
    swept = [c for c in SWEPT_SETTINGS if c in df.columns]
    differ = [c for c in swept if df[c].groupby(cell.to_numpy()).nunique(dropna=False).gt(1).any()]
    if not differ:
        return df, None
    multi = cell[sizes > 1]
    n_multi, n_cells = multi.nunique(), cell.nunique()
    warnings.warn(f"{src}: {n_multi} of {n_cells} {cells} cells hold several runs that differ in {' or '.join(differ)} "
                  f"(up to {int(sizes.max())} runs in one cell), and law {law.name!r} fits every run, so the runs at "
                  "sub-optimal settings bias it; keep the best run of each cell with --best-per-cell "
                  "(library: best_per_cell=True)", stacklevel=3)
    return df, None


def _refuse_per_step(df: pd.DataFrame, law, src: str) -> None:
    """A law fitted to one row per run must not get a per-step log (its rows at D = 0 and early
    steps make no sense to it, and each run would count many times): say so, and how to reduce."""
    if "step" not in df.columns or len(df) < 2:
        return
    if "run" in df.columns:
        per_step = df["run"].duplicated().any()
        runs = int(df["run"].nunique())
    else:  # no run ids: one run's log when the sizes never change while the steps do
        sizes = [c for c in ("N", "N_nonembed") if c in df.columns]
        per_step = bool(sizes) and df[sizes].nunique().max() == 1 and df["step"].nunique() > 1
        runs = 1
    if per_step:
        raise ScalelawError(
            f"{src} is a per-step log (column step; {len(df)} rows for {runs} run{'s' if runs != 1 else ''}), but law "
            f"{law.name!r} fits one row per run; reduce it first: scalelaw ingest {src} --reduce final -o per_run.parquet "
            "(or --reduce smooth), then fit per_run.parquet")


def _prepare(law, data: pd.DataFrame, *, where: str | None = None, weights=None,
             source: str | None = None, prepare_options: Mapping | None = None, best_per_cell: bool = False):
    """:func:`prepare`, plus what happened to the rows: {"table", "selected" (after --where),
    "fitted" (after the law's prepare step), "prepare" (the step's own account of what it kept,
    ``attrs["prepare_note"]`` of its output, when it changed the rows)}."""
    law = get_law(law)
    options = law.check_options(prepare_options)
    if not isinstance(data, pd.DataFrame):
        raise ScalelawError("data must be a run table (pandas DataFrame); load files with scalelaw.io.load_table")
    src = source or data.attrs.get("source", "the table")
    df = select_rows(data, where, src)
    if law.prepare is None and "step" not in law.inputs:
        _refuse_per_step(df, law, src)
    n_selected, note = len(df), None
    if best_per_cell and weights is not None and not isinstance(weights, str):
        raise ScalelawError("--best-per-cell chooses rows, so weights must be a column name (not one value per row)")
    if law.prepare is None:
        df, note = _several_runs_per_cell(law, df, src, best_per_cell)
    elif best_per_cell:
        raise ScalelawError(f"--best-per-cell keeps the best run of each cell for loss laws; law {law.name!r} "
                            "chooses its rows itself (see its --option select=...)")
    if law.prepare is not None:
        attrs = dict(data.attrs)
        df = law.prepare(df, **options)
        if len(df) != n_selected:
            note = df.attrs.get("prepare_note")
        df.attrs.update({k: v for k, v in attrs.items() if k not in df.attrs})
    rows = {"table": int(len(data)), "selected": int(n_selected), "fitted": int(len(df)), "prepare": note}
    need = list(law.inputs) + [law.target]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ScalelawError(
            f"law {law.name!r} needs column(s) {', '.join(missing)} but {src} has "
            f"{', '.join(map(str, df.columns[:15]))}; map yours with --map {missing[0]}=<column> when ingesting"
        )
    X = []
    for c in law.inputs:
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            raise ScalelawError(f"column {c!r} of {src} has {bad.sum()} missing or non-numeric value(s) "
                                f"(first at row {int(np.flatnonzero(bad)[0])}); drop those rows with --where or fix the file")
        X.append(v)
    y = pd.to_numeric(df[law.target], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(y)
    if bad.any():
        raise ScalelawError(f"target column {law.target!r} of {src} has {bad.sum()} missing or non-numeric value(s); "
                            "drop those rows with --where or fix the file")
    if weights is None:
        w = np.ones_like(y)
    elif isinstance(weights, str):
        if weights not in df.columns:
            raise ScalelawError(f"weights column {weights!r} is not in {src}")
        w = pd.to_numeric(df[weights], errors="coerce").to_numpy(dtype=float)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != y.shape:
            raise ScalelawError(f"weights must have one value per selected row ({len(y)}); got {w.shape}")
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ScalelawError("weights must be finite and non-negative")
    return law, df, tuple(X), y, w, rows


def _blas_single(fn):
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return fn(*args, **kwargs)
    return wrapper


MAX_BOOT = 100_000   # bootstrap resamples: more adds nothing a user can see and takes days


def check_fit_args(law, *, fixed=None, seed=0, boot=0, scheduler=None) -> None:
    """Refuse impossible fit arguments before any work: a fixed value outside its parameter's
    bounds (or not finite), a negative or non-integer seed, a negative or absurd bootstrap count,
    a malformed scheduler address."""
    law = get_law(law)
    for k, v in dict(fixed or {}).items():
        p = law.param(k)
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ScalelawError(f"--fix {k}= needs a number; got {v!r}") from None
        if not math.isfinite(x) or not (p.lower <= x <= p.upper):
            raise ScalelawError(f"--fix {k}={v!r} is outside the bounds of parameter {k} of law {law.name!r} "
                                f"[{p.lower:g}, {p.upper:g}]; give a value inside them")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ScalelawError(f"--seed must be a whole number from 0 to 2**63-1; got {seed!r}")
    if isinstance(boot, bool) or not isinstance(boot, (int, np.integer)) or not 0 <= boot <= MAX_BOOT:
        raise ScalelawError(f"--boot must be a whole number from 0 to {MAX_BOOT}; got {boot!r}")
    if scheduler:
        from .parallel import check_scheduler
        check_scheduler(scheduler)


@_blas_single
def fit(law, data: pd.DataFrame, *, objective: str | None = None, delta: float | str = 1e-3,
        where: str | None = None, weights=None, fixed: Mapping[str, float] | None = None,
        starts: np.ndarray | Sequence | None = None, boot: int = 0, seed: int = 0,
        boot_groups=None,
        level: float = 0.95, n_jobs: int | None = None, scheduler: str | None = None,
        polish_top: int = 8, progress: bool = False, source: str | None = None,
        max_iter: int = 60, ftol: float = 1e-6, prepare_options: Mapping | None = None,
        best_per_cell: bool = False):
    """Fit ``law`` to the rows of ``data``; returns a :class:`scalelaw.result.Fit`.

    objective: 'huber-log' (default for loss laws), 'lsq-log', 'lsq', 'huber'.
    delta: the Huber threshold on (log) residuals: 1e-3 as in Hoffmann et al. and Besiroglu et al.,
        or 'auto' = 1.345 x the robust residual scale of a pilot fit (docs/uncertainty.md: better
        calibrated intervals and lower extrapolation error on noisy ladders).
    fixed: parameters held at given natural values (e.g. {"E": 0}).
    starts: override the grid, natural units, shape (S, P_free) or list of dicts.
    boot: bootstrap resamples over rows (runs); intervals are then percentile intervals.
    boot_groups: resample whole groups instead of rows (a column name or one label per row),
        e.g. the (N, D) cells of a sweep, whose runs are not independent.
    scheduler: a Dask scheduler address; otherwise local processes for large jobs.
    prepare_options: keyword options for the law's ``prepare`` step (e.g. plateau tolerance).
    best_per_cell: a loss law on a table with several runs per cell of its inputs (an lr or
        batch sweep at each (N, D)) keeps each cell's lowest-loss run; without it such a table
        is fitted whole, with a warning when the runs of a cell differ in lr or batch.
    """
    from .result import Fit
    from .progress import Progress

    check_fit_args(law, fixed=fixed, seed=seed, boot=boot, scheduler=scheduler)
    if isinstance(delta, str):
        if delta != "auto":
            raise ScalelawError(f"--delta must be a positive number or 'auto'; got {delta!r}")
        if (objective or get_law(law).default_objective) != "huber-log":
            raise ScalelawError("--delta auto applies to the huber-log objective only")
        from .calibration import fit_auto_delta

        return fit_auto_delta(law, data, where=where, weights=weights, fixed=fixed, starts=starts, boot=boot,
                              seed=seed, boot_groups=boot_groups, level=level, n_jobs=n_jobs,
                              scheduler=scheduler, polish_top=polish_top, progress=progress, source=source,
                              max_iter=max_iter, ftol=ftol, prepare_options=prepare_options,
                              best_per_cell=best_per_cell)
    t0 = time.perf_counter()
    law, df, X, y, w, rows = _prepare(law, data, where=where, weights=weights, source=source,
                                      prepare_options=prepare_options, best_per_cell=best_per_cell)
    objective = objective or law.default_objective
    if objective not in OBJECTIVES:
        raise ScalelawError(f"--objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
    if not (delta > 0):
        raise ScalelawError(f"--delta must be positive; got {delta!r}")
    if not 0 < level < 1:
        raise ScalelawError(f"level must be between 0 and 1; got {level!r}")
    fixed = dict(fixed or {})
    for k in fixed:
        law.param(k)
    free = tuple(n for n in law.param_names if n not in fixed)
    if objective in LOG_OBJECTIVES and np.any(y <= 0):
        k = int(np.flatnonzero(y <= 0)[0])
        raise ScalelawError(f"target {law.target!r} has non-positive value {y[k]!r} (row {k}); "
                            f"objective {objective!r} works on logs: fix the data or use --objective lsq")
    n_eff = int(np.count_nonzero(w))
    if n_eff <= len(free):
        raise ScalelawError(f"law {law.name!r} has {len(free)} free parameters but only {n_eff} data point(s); "
                            f"give at least {len(free) + 1} runs (more for a trustworthy fit)")
    prob = Problem(law, X, y, w, free, fixed, objective, delta)

    # starting points
    if starts is None:
        if law.starts is not None:
            theta0 = np.asarray(law.starts(dict(zip(law.inputs, X)), y), dtype=float)
            theta0 = theta0[:, [law.param_names.index(n) for n in free]] if theta0.shape[1] != len(free) else theta0
        else:
            theta0 = law.grid_starts(free)
        grid_name = "law-grid"
    else:
        if len(starts) and isinstance(starts[0], Mapping):
            starts = [[s[n] for n in free] for s in starts]
        nat = np.atleast_2d(np.asarray(starts, dtype=float))
        if nat.shape[1] != len(free):
            raise ScalelawError(f"starts must give {len(free)} values per start ({', '.join(free)})")
        theta0 = np.column_stack([prob.pdefs[j].to_internal(nat[:, j]) for j in range(len(free))])
        grid_name = "user"
    S = theta0.shape[0]

    bar = Progress(total=S + (boot or 0), desc=f"fit {law.name}", enabled=progress)
    # Multi-start phase: every start advances to its basin (loose tolerance); the polish below
    # finishes the best distinct end points exactly.
    theta, f, iters, _ = _run_batched(prob, theta0, n_jobs=n_jobs, scheduler=scheduler,
                                         progress=bar.update, max_iter=max_iter, ftol=ftol)
    finite = np.isfinite(f)
    if not finite.any():
        bar.close()
        raise FitError(f"law {law.name!r}: no starting point gave a finite objective on these data; "
                       "check units of the inputs (e.g. N in parameters, not billions)")

    # polish the best distinct end points
    order = np.argsort(f)
    cands, seen = [], []
    for k in order[: max(polish_top * 20, polish_top)]:
        if not np.isfinite(f[k]):
            break
        t = theta[k]
        if any(np.allclose(t, s, rtol=1e-4, atol=1e-6) for s in seen):
            continue
        seen.append(t)
        cands.append(k)
        if len(cands) >= polish_top:
            break
    best_f, best_t, best_res = np.inf, None, None
    for k in cands:
        res = polish(prob, theta[k])
        fk, tk = (res.fun, res.x) if res.fun <= f[k] else (f[k], theta[k])
        if fk < best_f:
            best_f, best_t, best_res = fk, np.asarray(tk, dtype=float), res
    # starts that reached the best basin: objective within 1e-3 (relative) of the optimum at the
    # end of the multi-start phase; the start the optimum was polished from counts in any case
    n_best = max(int(np.sum(f <= best_f + 1e-3 * abs(best_f) + 1e-15)), 1)

    diagnostics, cov, resid = _diagnostics(prob, best_t, best_f, best_res, n_best, S, int(finite.sum()), iters)
    diagnostics.update(identifiability(prob, best_t, best_f, diagnostics["params_at_bounds"]))

    # uncertainty
    boot_samples = None
    if boot:
        groups = None
        if boot_groups is not None:
            if isinstance(boot_groups, str):
                if boot_groups not in df.columns:
                    raise ScalelawError(f"boot_groups column {boot_groups!r} is not in the table")
                groups = df[boot_groups].astype(str).to_numpy()
            else:
                groups = np.asarray(boot_groups)
                if groups.shape != y.shape:
                    raise ScalelawError(f"boot_groups must give one label per selected row ({len(y)})")
        boot_samples = bootstrap(prob, best_t, boot, seed=seed, n_jobs=n_jobs, scheduler=scheduler,
                                 progress=bar.update, groups=groups)
    bar.close()
    nat = prob.natural(best_t[None, :])[0]
    params = {}
    for name in law.param_names:
        params[name] = float(fixed[name]) if name in fixed else float(nat[free.index(name)])

    ranges = {c: [float(np.min(x)), float(np.max(x))] for c, x in zip(law.inputs, X)}
    ranges[law.target] = [float(np.min(y)), float(np.max(y))]
    settings = {"objective": objective, "delta": delta, "where": where, "fixed": fixed,
                "starts": grid_name, "n_starts": S, "boot": int(boot), "seed": int(seed),
                "boot_groups": boot_groups if isinstance(boot_groups, str) else (None if boot_groups is None else "array"),
                "level": level, "prepare_options": dict(prepare_options or {}), "best_per_cell": bool(best_per_cell), "weights": weights if isinstance(weights, str) else (None if weights is None else "array")}
    fitres = Fit(
        law=law, params=params, free=free, theta=best_t, cov=cov, boot=boot_samples, level=level,
        objective={"name": objective, "delta": delta if objective in ("huber-log", "huber") else None,
                   "value": float(best_f)},
        n_obs=int(len(y)), input_ranges=ranges, diagnostics=diagnostics,
        data={"source": source or df.attrs.get("source") or data.attrs.get("source"),
              "sha256": data.attrs.get("sha256"), "filter": where, "rows": rows,
              # the rows as fitted (after --where and the law's prepare step): what an interval
              # method that refits (scalelaw.calibration.with_interval) needs from a saved fit
              "runs": {"inputs": {c: x.tolist() for c, x in zip(law.inputs, X)}, "target": y.tolist(),
                       "weights": None if np.all(w == 1) else w.tolist()},
              **({"validation": v} if (v := df.attrs.get("validation") or data.attrs.get("validation")) else {})},
        settings=settings, residuals=pd.Series(resid, index=df.index, name="residual"),
        log_residuals=prob.log_obj, table=data,
    )
    # goodness of fit: RSS of the objective's residuals (log ones for log objectives: what
    # Fit.loglike/aic/bic use) and the RMSE in the target's units
    pred = np.asarray(prob.predict(best_t[None, :])[0], dtype=float)
    fitres.diagnostics["rss"] = float(np.sum(w * resid ** 2))
    fitres.diagnostics["rmse"] = float(np.sqrt(np.mean((pred - y) ** 2)))
    fitres.diagnostics["seconds"] = round(time.perf_counter() - t0, 4)
    fitres.diagnostics["problems"] = list(diagnostics["problems"])
    fitres.diagnostics["identified"] = fitres.identified   # with the intervals' own checks
    if not diagnostics["converged"]:
        import warnings
        warnings.warn(f"fit of {law.name!r} did NOT converge: {diagnostics['message']}", stacklevel=2)
    return fitres


def _diagnostics(prob: Problem, t, f, res, n_best, n_starts, n_finite, iters):
    """The health checklist, the Gauss-Newton covariance (internal coordinates) and the residuals."""
    r, pred = prob.residuals(t[None, :])
    J = prob.jacobian(t[None, :], r, pred)[0]
    w = prob.weights
    JtJ = (J * w[None, :]) @ J.T
    try:
        ev = np.linalg.eigvalsh(JtJ)
        cond = float(ev[-1] / ev[0]) if ev[0] > 0 else math.inf
    except np.linalg.LinAlgError:
        cond = math.inf
    n = float(np.sum(w))
    dof = max(n - prob.P, 1.0)
    s2 = float(np.sum(w * r[0] ** 2) / dof)
    try:
        cov = s2 * np.linalg.pinv(JtJ, rcond=1e-14)
    except np.linalg.LinAlgError:
        cov = None
    _, g = prob.value_and_grad(t)
    # projected gradient (zero where a bound is active and the gradient pushes outwards)
    at_lo = np.isclose(t, prob.lo, rtol=0, atol=1e-8) & (g > 0)
    at_hi = np.isclose(t, prob.hi, rtol=0, atol=1e-8) & (g < 0)
    pg = np.where(at_lo | at_hi, 0.0, g)
    gnorm = float(np.max(np.abs(pg))) if pg.size else 0.0
    at_bounds = []
    for j, p in enumerate(prob.pdefs):
        lo, hi = prob.lo[j], prob.hi[j]
        span = 1e-6 * max(1.0, abs(t[j]))
        if (math.isfinite(lo) and t[j] - lo <= span) or (math.isfinite(hi) and hi - t[j] <= span):
            at_bounds.append(p.name)
    gtol = 1e-5 * max(f, 1e-12) + 1e-10
    grad_ok = gnorm <= max(gtol, 1e-7)
    converged = bool(np.isfinite(f) and (grad_ok or (res is not None and res.success)))
    if converged:
        msg = "ok"
    elif not np.isfinite(f):
        msg = "no finite objective at the optimum"
    else:
        msg = (f"largest projected gradient component {gnorm:.3g} exceeds {max(gtol, 1e-7):.3g} and the "
               f"optimiser stopped with: {getattr(res, 'message', 'no message')}")
    checks = {
        "converged": converged,
        "params_at_bounds": at_bounds,
        "starts_at_best": n_best,
        "n_starts": n_starts,
        "starts_finite": n_finite,
        "condition_number": cond,
        "gradient_max": gnorm,
        "residual_sd": math.sqrt(s2),
        "mean_iterations": float(np.mean(iters)),
        "message": msg,
    }
    return checks, cov, r[0]


# --------------------------------------------------------------------------------------------
# Identifiability: can these data determine these parameters? (docs/fitting.md, "Identifiability")
# --------------------------------------------------------------------------------------------
# Thresholds chosen by simulation (benchmarks/bench_identifiability.py; measured false-alarm and
# miss rates in docs/fitting.md):
FLAT_RATIO = 1e-4        # smallest / largest singular value of the column-normalised Jacobian
CONSTANT_P = 0.05        # p-value of the F test of the law against a constant fit
FLAT_LOADING = 0.2       # a parameter "takes part" in a flat direction with a loading above this


def _distinct(x: np.ndarray) -> np.ndarray:
    """The distinct values of x, equal up to a relative 1e-9 (values read from text round)."""
    return np.unique(_significant(x))


def _significant(x: np.ndarray, digits: int = 9) -> np.ndarray:
    """x rounded to ``digits`` significant digits (so 1e8 and 1.00000000001e8 are one value)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        e = np.where(x != 0, np.floor(np.log10(np.abs(x))), 0.0)
    scale = 10.0 ** (e - (digits - 1))
    return np.round(x / scale) * scale


def _constant_objective(prob: Problem) -> float:
    """The objective of the best constant prediction (the law's target not depending on anything)."""
    w = prob.weights
    z = prob.ylog if prob.log_obj else prob.y
    lo, hi = float(np.min(z)), float(np.max(z))
    if hi - lo <= 0:
        return 0.0
    f = lambda c: float(np.sum(w * prob.rho(z - c)))  # noqa: E731
    res = optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12 * max(1.0, abs(hi))})
    return min(float(res.fun), f(float(np.median(z))))


def identifiability(prob: Problem, t: np.ndarray, f: float, at_bounds) -> dict:
    """What the data cannot determine, as one-line problem strings (empty when healthy).

    Checks, at the optimum: the target is not constant; there are more distinct input points than
    free parameters; no parameter sits at a bound; the Jacobian (columns normalised) leaves no
    flat direction (near-perfect correlation of estimates, e.g. every run at one N); the law fits
    better than a constant (F test). The intervals' own checks (a bound inside the interval, a
    failed bootstrap) are :attr:`scalelaw.result.Fit.problems`. Returns {"problems": [...], "flat_direction": [names], "flatness": ratio,
    "constant_p": p-value}."""
    from scipy import stats

    law, names = prob.law, list(prob.free)
    n_rows = int(np.count_nonzero(prob.weights))
    problems: list[str] = []
    y = prob.y[prob.weights > 0]
    if y.size and np.ptp(y) <= 1e-12 * max(abs(float(y[0])), 1e-300):
        problems.append(f"{law.target} is constant ({y[0]:.6g} on all {y.size} rows): there is no trend for the law to fit")
    # distinct input points and distinct values per input
    Xw = [np.asarray(x, dtype=float)[prob.weights > 0] for x in prob.X]
    few = []
    for c, x in zip(law.inputs, Xw):
        d = _distinct(x)
        if d.size <= 2:
            few.append(f"{c} takes {'only one value' if d.size == 1 else 'only two values'} "
                       f"({', '.join(f'{v:.4g}' for v in d)})")
    n_points = int(np.unique(_significant(np.column_stack(Xw)), axis=0).shape[0]) if Xw else 1
    if n_points <= prob.P:
        problems.append(f"only {n_points} distinct input point{'s' if n_points != 1 else ''} ({', '.join(law.inputs)}) "
                        f"among {n_rows} rows for {prob.P} free parameters: repeated runs do not pin down the law's shape; "
                        f"give runs at more than {prob.P} distinct settings")
    for name in at_bounds:
        p = prob.pdefs[names.index(name)]
        j = names.index(name)
        lo, hi = prob.lo[j], prob.hi[j]
        which = "lower" if abs(t[j] - lo) <= abs(t[j] - hi) else "upper"
        val = p.lower if which == "lower" else p.upper
        problems.append(f"{name} is at its {which} bound {val:g}: the data do not show the trend the law assumes "
                        f"({p.doc or name}); the optimum lies outside the allowed range")
    # flat directions of the Jacobian (internal coordinates, columns normalised)
    flat, ratio = [], math.nan
    r, pred = prob.residuals(t[None, :])
    J = prob.jacobian(t[None, :], r, pred)[0] * np.sqrt(prob.weights)[None, :]
    if np.all(np.isfinite(J)):
        norms = np.linalg.norm(J, axis=1)
        dead = [names[j] for j in range(prob.P) if not norms[j] > 0]
        if dead:
            flat = dead
            ratio = 0.0
        else:
            U, s, _ = np.linalg.svd(J / norms[:, None], full_matrices=False)
            ratio = float(s[-1] / s[0]) if s[0] > 0 else 0.0
            if ratio < FLAT_RATIO:   # every flat direction: the parameters that load on any of them
                v = np.max(np.abs(U[:, s < FLAT_RATIO * s[0]]), axis=1)
                flat = [names[j] for j in np.flatnonzero(v >= FLAT_LOADING)]
        if flat:
            why = f" ({'; '.join(few)})" if few else ""
            if dead:
                problems.append(f"{', '.join(dead)} change{'s' if len(dead) == 1 else ''} nothing in the fitted curve on "
                                f"these data{why}: not identified")
            else:
                problems.append(f"{', '.join(flat)} cannot be told apart on these data{why}: their estimates are "
                                f"near-perfectly correlated (flatness {ratio:.1e} < {FLAT_RATIO:g}), so the fit has a "
                                "flat direction; spread the runs over more sizes and token counts")
    # better than a constant? F test of the fitted objective against the best constant's
    pval = math.nan
    f0 = _constant_objective(prob)
    df1, df2 = prob.P - 1, n_rows - prob.P
    if df1 >= 1 and df2 >= 1 and f0 > 0 and np.isfinite(f):
        F = ((f0 - f) / df1) / (f / df2) if f > 0 else math.inf
        pval = float(stats.f.sf(F, df1, df2)) if F > 0 else 1.0
        if pval > CONSTANT_P:
            problems.append(f"the law fits no better than a constant {law.target} (F test p = {pval:.2g} > {CONSTANT_P:g}): "
                            f"the values look like noise around one level, or follow a trend the law cannot take "
                            f"(e.g. {law.target} rising with an input)")
    return {"problems": problems, "flat_direction": flat, "flatness": ratio, "constant_p": pval}


# `import scalelaw as sl; sl.fit(data, law)` calls scalelaw.api.fit (data first; see docs/python.md)
from ._callable import make_callable  # noqa: E402

make_callable(__name__)
