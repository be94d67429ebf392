"""Learning-rate / batch-size sweeps: per-cell optima, plateaus, bowls, leave-one-cell-out.

A *sweep* is a run table with one row per training run: ``N`` (parameters), ``D`` (tokens),
``lr`` (peak learning rate), ``batch_tokens`` (batch size in TOKENS) and a final loss
(``smooth_loss`` when present, else ``loss``). Runs sharing a model and token budget form a
*cell*; the cell key is (N, D), plus ``N_active`` when the table has it (MoE: two models with
the same total size but different experts are different cells).

Per cell three estimates of the optimum are available (``select=``):

* ``"best"``    the single run with the lowest loss;
* ``"plateau"`` every run whose loss is within ``tol`` (relative, 0.25% by default) of the
  cell's best: Step Law's protocol (Li et al. 2025), which fits each near-optimal run;
* ``"bowl"``    a smooth optimum: a quadratic in (ln lr, ln batch) fitted to the cell's runs
  within ``bowl_tol`` of the best, minimised (clipped to the swept box); falls back to the best
  run when the fitted bowl is not convex.

The laws ``lr_opt``, ``bs_opt``, ``bs_opt_nd`` and ``lr_power`` (scalelaw/laws/hparams.py) use
:func:`prepare_sweep` as their ``prepare`` hook, so ``scalelaw fit lr_opt SWEEP`` fits OLS in
log space on the selected rows. :func:`loco` validates a pair of laws by leaving each cell out,
and the figure helpers return plotly figures (never shown).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ScalelawError

DEFAULT_TOL = 0.0025          # Step Law: within 0.25% of the cell's best smoothed loss
DEFAULT_BOWL_TOL = 0.01       # runs used to fit the bowl: within 1% of the cell's best
SELECTS = ("plateau", "best", "bowl", "none")
MIN_DISTINCT = 3
VARY_BOTH = ("lr", "batch_tokens")   # settings a cell must sweep (validate_sweep's default)
CENSORED = ("drop", "keep")          # what prepare_sweep does with a cell whose optimum is censored
STEPLAW_SEQ_LEN = 2048

_BATCH_UNKNOWN = ("bs", "batch", "batch_size", "bsz", "global_batch_size")


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------
def read_steplaw_csv(path) -> pd.DataFrame:
    """Read one of Step Law's released CSVs into canonical columns (the io reader)."""
    from ..io.tabular import read_steplaw

    return read_steplaw(Path(path))


def load_sweep(source) -> pd.DataFrame:
    """A sweep table from a DataFrame, a file, or a registered dataset name ('steplaw-dense',
    'steplaw-moe'), through ``scalelaw.io.load_table``: dataset names resolve only through
    ``scalelaw.datasets`` (SCALELAW_MIRROR or the download cache)."""
    from ..io import load_table

    if isinstance(source, pd.DataFrame):
        return source
    return load_table(source)


# ---------------------------------------------------------------------------------------------
# Validation and cells
# ---------------------------------------------------------------------------------------------
def _src(df: pd.DataFrame) -> str:
    return str(df.attrs.get("source") or "the sweep table")


def resolve_loss_col(df: pd.DataFrame, loss_col: str | None = None) -> str | None:
    if loss_col:
        if loss_col not in df.columns:
            raise ScalelawError(f"loss column {loss_col!r} is not in {_src(df)} (columns: "
                                f"{', '.join(map(str, df.columns[:15]))}); choose one with loss_col=<column>")
        return loss_col
    for c in ("smooth_loss", "loss"):
        if c in df.columns:
            return c
    return None


def resolve_n_col(df: pd.DataFrame, n: str | None = None) -> str:
    n = n or "N"
    n = {"total": "N", "active": "N_active", "nonembed": "N_nonembed"}.get(n, n)
    if n not in df.columns:
        hint = " (MoE tables need an N_active column, e.g. Step Law's Na)" if n == "N_active" else ""
        raise ScalelawError(f"parameter-count column {n!r} is not in {_src(df)}{hint}; "
                            "use n=total (N), n=active (N_active) or a column name")
    return n


def _batch_tokens(df: pd.DataFrame) -> pd.Series:
    if "batch_tokens" in df.columns:
        return pd.to_numeric(df["batch_tokens"], errors="coerce")
    if "batch_sequences" in df.columns:
        if "seq_len" not in df.columns:
            raise ScalelawError(f"column 'batch_sequences' of {_src(df)} counts sequences but there is no seq_len "
                                "column; add seq_len (tokens per sequence) or give batch_tokens")
        return pd.to_numeric(df["batch_sequences"], errors="coerce") * pd.to_numeric(df["seq_len"], errors="coerce")
    for c in _BATCH_UNKNOWN:
        if c in df.columns:
            raise ScalelawError(f"column {c!r} of {_src(df)} is a batch size in unknown units; rename it to "
                                "batch_tokens (tokens per step) or to batch_sequences with a seq_len column "
                                "(e.g. --map batch_tokens=<column> when it already counts tokens)")
    raise ScalelawError(f"{_src(df)} has no batch_tokens column (batch size in tokens per step); add it or map "
                        "yours with --map batch_tokens=<column>")


def validate_sweep(df: pd.DataFrame, loss_col: str | None = None, n: str | None = None,
                   min_distinct: int = MIN_DISTINCT, vary: Sequence[str] = VARY_BOTH
                   ) -> tuple[pd.DataFrame, str, str, list]:
    """Check a sweep and return (table with numeric batch_tokens, loss column, N column, cell keys).

    Raises ScalelawError for: missing columns, non-positive or non-numeric lr / batch / N / D,
    batch sizes in unknown units, and cells with fewer than ``min_distinct`` distinct values of
    each setting in ``vary`` (lr and batch_tokens; the lr laws pass ``("lr",)``: most sweeps vary
    only the learning rate at a fixed batch, and a table without any batch column is then read
    without one).
    """
    if not isinstance(df, pd.DataFrame):
        raise ScalelawError("a sweep must be a run table (pandas DataFrame); load files with scalelaw.io.load_table")
    src = _src(df)
    loss = resolve_loss_col(df, loss_col)
    if loss is None:
        raise ScalelawError(f"{src} has no loss column (smooth_loss or loss); give one with loss_col=<column>")
    ncol = resolve_n_col(df, n)
    out = df.copy()
    has_batch = "batch_tokens" in vary or any(c in df.columns for c in ("batch_tokens", "batch_sequences")
                                              + _BATCH_UNKNOWN)
    if has_batch:
        out["batch_tokens"] = _batch_tokens(df)
    for c in ("N", ncol, "D", "lr", *(("batch_tokens",) if has_batch else ()), loss):
        if c not in out.columns:
            raise ScalelawError(f"sweep {src} needs column {c!r}; add it or map yours with --map {c}=<column>")
        v = pd.to_numeric(out[c], errors="coerce")
        bad = ~np.isfinite(v.to_numpy(dtype=float))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ScalelawError(f"column {c!r} of {src} has {int(bad.sum())} missing or non-numeric value(s) "
                                f"(first at row {k}: {out[c].iloc[k]!r}); drop those rows with --where or fix the file")
        if c != loss and (v <= 0).any():
            k = int(np.flatnonzero((v <= 0).to_numpy())[0])
            raise ScalelawError(f"column {c!r} of {src} has non-positive value {v.iloc[k]!r} (row {k}); "
                                f"{c} must be > 0: drop that run with --where \"{c} > 0\" or fix the file")
        out[c] = v.astype(float)
    keys = cell_keys(out)
    for key, g in out.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for c in vary:
            k = _n_distinct(g[c].to_numpy())
            if k < min_distinct:
                where = " and ".join(f"{kc} == {kv:.6g}" for kc, kv in zip(keys, key))
                raise ScalelawError(
                    f"cell ({_cell_label(keys, key)}) of {src} has only {k} distinct {c} value(s); an optimum "
                    f"needs at least {min_distinct}: add runs or drop the cell with --where \"not ({where})\"")
    return out, loss, ncol, keys


def _n_distinct(x: np.ndarray) -> int:
    """Distinct values up to rounding (Step Law's lr column mixes 0.000345 and 0.0003453)."""
    lx = np.sort(np.log(np.asarray(x, dtype=float)))
    return int(1 + np.sum(np.diff(lx) > 0.01)) if lx.size else 0


def cell_keys(df: pd.DataFrame) -> list:
    return ["N", "N_active", "D"] if "N_active" in df.columns else ["N", "D"]


def _cell_label(keys, key) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in zip(keys, key))


def _mark_plateau(df: pd.DataFrame, loss: str, keys: list, tol: float) -> pd.DataFrame:
    out = df.copy()
    best = out.groupby(keys, sort=False)[loss].transform("min")
    out["cell_best_loss"] = best
    out["gap"] = out[loss] / best - 1.0
    out["plateau"] = out[loss] <= best * (1.0 + tol)
    return out


def _check_tol(tol, name="tol"):
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise ScalelawError(f"{name} must be a number (relative, e.g. 0.0025 for 0.25%); got {tol!r}") from None
    if not (0 <= tol < 1):
        raise ScalelawError(f"{name} must be a relative tolerance in [0, 1), e.g. 0.0025 for 0.25%; got {tol!r}")
    return tol


# ---------------------------------------------------------------------------------------------
# The bowl: quadratic in (ln lr, ln batch) around the minimum
# ---------------------------------------------------------------------------------------------
def fit_bowl(lr, batch, loss, bowl_tol: float = DEFAULT_BOWL_TOL, min_points: int = 10) -> dict:
    """Smooth optimum of one cell: loss ~ quadratic in (ln lr, ln batch) near the minimum.

    Uses the runs within ``bowl_tol`` of the best loss (at least ``min_points`` of the lowest),
    solves for the stationary point and clips it to the swept box. When the quadratic is not
    convex, falls back to the best run (``method`` says which).
    """
    x = np.log(np.asarray(lr, dtype=float))
    L = np.asarray(loss, dtype=float)
    batch = np.full(len(x), np.nan) if batch is None else np.asarray(batch, dtype=float)
    if not (np.isfinite(batch).all() and _n_distinct(batch) >= 3):  # an lr-only sweep: a parabola in ln lr
        return _fit_lr_parabola(x, batch, L, bowl_tol)
    y = np.log(batch)
    ib = int(np.argmin(L))
    out = {"lr": float(np.exp(x[ib])), "batch_tokens": float(np.exp(y[ib])), "loss": float(L[ib]),
           "method": "best-run"}
    keep = _near_best(L, bowl_tol, min_points)
    if keep.sum() < 6 or _n_distinct(np.exp(x[keep])) < 3 or _n_distinct(np.exp(y[keep])) < 3:
        return out
    xs, ys, Ls = x[keep], y[keep], L[keep]
    # centre for conditioning
    x0, y0 = xs.mean(), ys.mean()
    u, v = xs - x0, ys - y0
    A = np.column_stack([np.ones_like(u), u, v, u * u, v * v, u * v])
    # weight runs nearer the best more (loss gaps grow fast away from the optimum)
    coef, *_ = np.linalg.lstsq(A, Ls, rcond=None)
    a, b, c, d, e, f = coef
    H = np.array([[2 * d, f], [f, 2 * e]])
    if not (d > 0 and e > 0 and np.linalg.det(H) > 0):
        return out
    us, vs = np.linalg.solve(H, [-b, -c])
    xo = float(np.clip(us + x0, x.min(), x.max()))
    yo = float(np.clip(vs + y0, y.min(), y.max()))
    uo, vo = xo - x0, yo - y0
    Lo = float(a + b * uo + c * vo + d * uo * uo + e * vo * vo + f * uo * vo)
    clipped = (abs(xo - x0 - us) > 1e-12) or (abs(yo - y0 - vs) > 1e-12)
    return {"lr": math.exp(xo), "batch_tokens": math.exp(yo), "loss": Lo,
            "method": "bowl-clipped" if clipped else "bowl"}


def _near_best(L: np.ndarray, bowl_tol: float, min_points: int) -> np.ndarray:
    """The runs within ``bowl_tol`` of the best loss, or the ``min_points`` lowest when fewer."""
    keep = L <= L.min() * (1 + bowl_tol)
    if keep.sum() < min_points:
        keep = np.zeros_like(keep)
        keep[np.argsort(L)[:min_points]] = True
    return keep


def _fit_lr_parabola(x, batch, L, bowl_tol: float) -> dict:
    """The bowl of a cell that sweeps only the learning rate: a parabola in ln lr through the runs
    within ``bowl_tol`` of the best (at least the 5 lowest), minimised and clipped to the swept
    lr range; the best run when it is not convex. The batch is the best run's."""
    ib = int(np.argmin(L))
    out = {"lr": float(np.exp(x[ib])), "batch_tokens": float(batch[ib]), "loss": float(L[ib]), "method": "best-run"}
    keep = _near_best(L, bowl_tol, 5)
    if _n_distinct(np.exp(x[keep])) < 3:
        return out
    x0 = x[keep].mean()
    c2, c1, c0 = np.polyfit(x[keep] - x0, L[keep], 2)
    if not c2 > 0:
        return out
    us = -c1 / (2 * c2)
    xo = float(np.clip(us + x0, x.min(), x.max()))
    return {"lr": math.exp(xo), "batch_tokens": float(batch[ib]), "loss": float(np.polyval([c2, c1, c0], xo - x0)),
            "method": "bowl-clipped" if abs(xo - x0 - us) > 1e-12 else "bowl"}


def censored_cells(t: pd.DataFrame, loss: str, keys: list, setting: str = "lr") -> list:
    """Cell keys whose best run sits at the edge of the cell's sweep of ``setting``: its lr (or
    batch) is the smallest or the largest the cell swept (up to the 1% rounding of
    :func:`_n_distinct`). The optimum then lies at or beyond the edge: the run only bounds it
    (a censored optimum)."""
    out = []
    for key, g in t.groupby(keys, sort=True):
        v = np.log(g[setting].to_numpy(dtype=float))
        best = v[int(np.argmin(g[loss].to_numpy(dtype=float)))]
        if best - v.min() <= 0.01 or v.max() - best <= 0.01:
            out.append(key if isinstance(key, tuple) else (key,))
    return out


# ---------------------------------------------------------------------------------------------
# Cells and the prepare hook
# ---------------------------------------------------------------------------------------------
def cells(df: pd.DataFrame, tol: float = DEFAULT_TOL, loss_col: str | None = None, n: str | None = None,
          bowl_tol: float = DEFAULT_BOWL_TOL) -> pd.DataFrame:
    """One row per cell: run counts, the best run, the plateau's extent, the bowl optimum, and
    whether the best lr / batch sits at the edge of the cell's sweep (``lr_censored``,
    ``batch_censored``: :func:`censored_cells`)."""
    tol = _check_tol(tol)
    bowl_tol = _check_tol(bowl_tol, "bowl_tol")
    t, loss, ncol, keys = validate_sweep(df, loss_col, n)
    t = _mark_plateau(t, loss, keys, tol)
    cens = {v: set(censored_cells(t, loss, keys, v)) for v in VARY_BOTH}
    rows = []
    for key, g in t.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ib = g[loss].idxmin()
        p = g[g["plateau"]]
        bw = fit_bowl(g["lr"], g["batch_tokens"], g[loss], bowl_tol)
        r = dict(zip(keys, key))
        r.update({
            "n_runs": len(g), "n_lr": _n_distinct(g["lr"].to_numpy()), "n_batch": _n_distinct(g["batch_tokens"].to_numpy()),
            "best_loss": float(g.loc[ib, loss]), "best_lr": float(g.loc[ib, "lr"]),
            "best_batch_tokens": float(g.loc[ib, "batch_tokens"]),
            "n_plateau": len(p),
            "plateau_lr_min": float(p["lr"].min()), "plateau_lr_max": float(p["lr"].max()),
            "plateau_batch_min": float(p["batch_tokens"].min()), "plateau_batch_max": float(p["batch_tokens"].max()),
            "plateau_lr_geomean": float(np.exp(np.log(p["lr"]).mean())),
            "plateau_batch_geomean": float(np.exp(np.log(p["batch_tokens"]).mean())),
            "bowl_lr": bw["lr"], "bowl_batch_tokens": bw["batch_tokens"], "bowl_loss": bw["loss"],
            "bowl_method": bw["method"],
            "lr_censored": key in cens["lr"], "batch_censored": key in cens["batch_tokens"],
        })
        rows.append(r)
    out = pd.DataFrame(rows)
    out.attrs.update({"source": _src(df), "loss_col": loss, "tol": tol})
    return out


def prepare_sweep(df: pd.DataFrame, select: str = "plateau", tol: float = DEFAULT_TOL,
                  loss_col: str | None = None, n: str | None = None,
                  bowl_tol: float = DEFAULT_BOWL_TOL, censored: str = "drop") -> pd.DataFrame:
    """A sweep -> the rows a law of the optimal lr and batch is fitted on: every cell sweeps lr
    and batch; cells whose best lr or best batch sits at the edge of the sweep are censored
    (see :func:`prepare_sweep_for`, which the laws' ``prepare`` hooks call for their setting)."""
    return prepare_sweep_for(df, VARY_BOTH, select=select, tol=tol, loss_col=loss_col, n=n, bowl_tol=bowl_tol,
                             censored=censored)


def prepare_sweep_for(df: pd.DataFrame, vary: Sequence[str], select: str = "plateau", tol: float = DEFAULT_TOL,
                      loss_col: str | None = None, n: str | None = None,
                      bowl_tol: float = DEFAULT_BOWL_TOL, censored: str = "drop") -> pd.DataFrame:
    """A sweep -> the rows an optimum law is fitted on (the laws' ``prepare`` hook).

    vary: the settings whose optimum the law describes, which every cell must sweep (3 or more
    distinct values): ``("lr",)`` for the lr laws (the batch may be fixed), ``("lr",
    "batch_tokens")`` for the batch laws. censored: a cell whose best run sits at the edge of its
    sweep of a setting in ``vary`` (:func:`censored_cells`) only bounds the optimum; "drop"
    (default) leaves its rows out of the fit, "keep" keeps them; both warn, naming the cells.
    Every cell censored is an error (extend the sweeps, or ``censored=keep``).

    select: "plateau" (every run within ``tol`` of its cell's best; Step Law), "best" (one row
    per cell), "bowl" (one row per cell at the quadratic-bowl optimum) or "none" (the rows are
    already optimal settings: used as given). A table without any loss column is taken as
    "none". ``n`` picks the parameter count the laws see as ``N``: "total" (N, default),
    "active" (N_active, MoE) or a column name. Columns out: N, D, lr, batch_tokens, the cell
    keys (N_total, N_active when present), loss, cell_best_loss, gap.
    """
    if select not in SELECTS:
        raise ScalelawError(f"select must be one of {', '.join(SELECTS)}; got {select!r} "
                            "(e.g. --option select=plateau)")
    tol = _check_tol(tol)
    bowl_tol = _check_tol(bowl_tol, "bowl_tol")
    if censored not in CENSORED:
        raise ScalelawError(f"censored must be one of {', '.join(CENSORED)}; got {censored!r} "
                            "(e.g. --option censored=keep)")
    if select == "none" or (loss_col is None and resolve_loss_col(df) is None):
        out = df.copy()
        if "batch_tokens" not in out.columns and any(c in out.columns for c in ("batch_sequences",) + _BATCH_UNKNOWN):
            out["batch_tokens"] = _batch_tokens(out)
        if n:
            out["N"] = out[resolve_n_col(df, n)]
        out.attrs.pop("prepare_note", None)   # the rows are used as given
        return out
    t, loss, ncol, keys = validate_sweep(df, loss_col, n, vary=vary)
    n_cells = int(t.groupby(keys, sort=True).ngroups)
    cens = sorted({k for v in vary for k in censored_cells(t, loss, keys, v)})
    dropped = ""
    if cens:
        names = "; ".join(f"({_cell_label(keys, k)})" for k in cens[:4]) + (f"; and {len(cens) - 4} more" if len(cens) > 4 else "")
        what = " or ".join("lr" if v == "lr" else "batch" for v in vary)
        if censored == "drop" and len(cens) == n_cells:
            raise ScalelawError(f"every cell of {_src(df)} has its best run at the edge of its {what} sweep ({names}), so "
                                "no cell brackets its optimum; extend the sweeps beyond the best values, or fit the "
                                "bounds anyway with --option censored=keep")
        warnings.warn(f"{len(cens)} of {n_cells} cells of {_src(df)} have their best run at the edge of the {what} "
                      f"sweep, so their optimum is censored (it lies at or beyond the edge): {names}; "
                      + ("left out of the fit (extend those sweeps, or keep them with --option censored=keep)"
                         if censored == "drop" else "kept (censored=keep): the fit is biased towards the swept range"),
                      stacklevel=2)
        if censored == "drop":
            t = t[~t.set_index(keys).index.isin(cens)]
            dropped = f"; {len(cens)} censored cell{'s' if len(cens) > 1 else ''} left out"
    t = _mark_plateau(t, loss, keys, tol)
    if select == "plateau":
        out = t[t["plateau"]].copy()
    elif select == "best":
        out = t.loc[t.groupby(keys, sort=True)[loss].idxmin()].copy()
    else:  # bowl
        rows = []
        for key, g in t.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            bw = fit_bowl(g["lr"], g["batch_tokens"] if "batch_tokens" in g else None, g[loss], bowl_tol)
            r = g.iloc[[0]].copy()
            r["lr"], r[loss] = bw["lr"], bw["loss"]
            if "batch_tokens" in g:
                r["batch_tokens"] = bw["batch_tokens"]
            r["gap"] = bw["loss"] / g[loss].min() - 1
            r["bowl_method"] = bw["method"]
            rows.append(r)
        out = pd.concat(rows, ignore_index=True)
    out["N_total"] = out["N"]
    if ncol != "N":
        out["N"] = out[ncol]
    if loss != "loss":
        out["loss"] = out[loss]
    out = out.reset_index(drop=True)
    out.attrs.update({k: v for k, v in df.attrs.items()})
    cell = "(" + ", ".join(keys) + ") cell"
    n_cells = int(t.groupby(keys, sort=True).ngroups)
    note = {"plateau": f"the plateau runs, {loss} within {100 * tol:g}% of the best of their {cell} ({n_cells} cells",
            "best": f"the best run of each {cell} ({n_cells} cells",
            "bowl": f"the quadratic-bowl optimum of each {cell} ({n_cells} cells"}[select] + dropped + ")"
    out.attrs.update({"select": select, "tol": tol, "loss_col": loss, "n": ncol, "prepare_note": note,
                      "censored_cells": [list(map(float, k)) for k in cens]})
    return out


# ---------------------------------------------------------------------------------------------
# Evaluating a predicted setting inside a cell
# ---------------------------------------------------------------------------------------------
def nearest_loss(g: pd.DataFrame, lr: float, batch: float, loss: str) -> tuple[float, float, float]:
    """Loss of the run nearest to (lr, batch) in (ln lr, ln batch); returns (loss, lr, batch)."""
    d2 = (np.log(g["lr"].to_numpy()) - math.log(lr)) ** 2 + (np.log(g["batch_tokens"].to_numpy()) - math.log(batch)) ** 2
    k = int(np.argmin(d2))
    return float(g[loss].iloc[k]), float(g["lr"].iloc[k]), float(g["batch_tokens"].iloc[k])


def interpolated_loss(g: pd.DataFrame, lr: float, batch: float, loss: str) -> tuple[float, bool]:
    """Loss at (lr, batch) by linear interpolation over the cell's runs in (ln lr, ln batch).

    Outside the swept hull the nearest run's loss is returned and the flag is False.
    """
    from scipy.interpolate import griddata

    pts = np.column_stack([np.log(g["lr"].to_numpy()), np.log(g["batch_tokens"].to_numpy())])
    vals = g[loss].to_numpy(dtype=float)
    # average duplicates (same setting run twice)
    key = np.round(pts, 4)
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    uniq = pts[first]
    v = np.bincount(inv, weights=vals) / np.bincount(inv)
    p = np.array([[math.log(lr), math.log(batch)]])
    try:
        val = float(griddata(uniq, v, p, method="linear")[0])
    except Exception:  # degenerate hull (e.g. collinear points)
        val = float("nan")
    if np.isfinite(val):
        return val, True
    return nearest_loss(g, lr, batch, loss)[0], False


def evaluate_setting(g: pd.DataFrame, lr: float, batch: float, loss: str) -> dict:
    """Relative loss gap of a predicted (lr, batch) in one cell: nearest run and interpolated."""
    best = float(g[loss].min())
    ln, nlr, nbs = nearest_loss(g, lr, batch, loss)
    li, inside = interpolated_loss(g, lr, batch, loss)
    return {"gap_nearest": ln / best - 1.0, "gap_interp": li / best - 1.0, "inside": inside,
            "nearest_lr": nlr, "nearest_batch_tokens": nbs, "best_loss": best}


# ---------------------------------------------------------------------------------------------
# Fitting helpers and leave-one-cell-out
# ---------------------------------------------------------------------------------------------
def fit_pair(prepared: pd.DataFrame, lr_law: str = "lr_opt", bs_law: str = "bs_opt", boot: int = 0,
             seed: int = 0, source: str | None = None):
    """Fit the lr and batch laws on already-prepared rows (OLS in log space); returns (lr_fit, bs_fit)."""
    from ..fit import fit

    opts = {"select": "none"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fit(lr_law, prepared, objective="lsq-log", boot=boot, seed=seed, prepare_options=opts, source=source,
                n_jobs=1)
        b = fit(bs_law, prepared, objective="lsq-log", boot=boot, seed=seed, prepare_options=opts, source=source,
                n_jobs=1)
    return a, b


def predict_setting(lr_fit, bs_fit, N: float, D: float) -> tuple[float, float]:
    """Point predictions (lr*, B* tokens) of two fits at (N, D); an lr law taking batch_tokens
    (lr_power) is evaluated at the predicted B*."""
    X = {"N": np.array([float(N)]), "D": np.array([float(D)])}
    bs = float(np.asarray(bs_fit.law.evaluate(X, bs_fit.params)).ravel()[0])
    X["batch_tokens"] = np.array([bs])
    lr = float(np.asarray(lr_fit.law.evaluate(X, lr_fit.params)).ravel()[0])
    return lr, bs


def loco(df: pd.DataFrame, select: str = "plateau", tol: float = DEFAULT_TOL, loss_col: str | None = None,
         n: str | None = None, bs_law: str = "bs_opt", bowl_tol: float = DEFAULT_BOWL_TOL,
         compare: Mapping | None = None, lr_law: str = "lr_opt") -> dict:
    """Leave-one-cell-out validation of the lr*/B* laws on a sweep.

    For each cell: fit ``lr_law`` (lr_opt or lr_power) and ``bs_law`` (OLS in log space) on the other cells' selected
    rows, predict (lr*, B*) for the held-out cell, and report the loss that setting reaches
    there relative to the cell's best run: at the nearest swept run (in ln lr, ln batch) and
    interpolated linearly over the runs. ``compare`` maps a label to (lr params, bs params) of
    a fixed formula scored on the same cells (default: Step Law's published constants).
    Returns {"rows": [...], "summary": {...}}.
    """
    from ..law import get_law
    from ..result import Fit

    t, loss, ncol, keys = validate_sweep(df, loss_col, n)
    prepared = prepare_sweep(df, select=select, tol=tol, loss_col=loss_col, n=n, bowl_tol=bowl_tol)
    pkeys = ["N_total" if k == "N" else k for k in keys]
    if compare is None:   # Step Law's published constants, as the laws declare them
        compare = {"steplaw-2025": (get_law("lr_opt").published["steplaw-2025"],
                                    get_law("bs_opt").published["steplaw-2025"])}
    fixed = {}
    for label, (lp, bp) in compare.items():
        fixed[label] = (Fit(law=get_law("lr_opt"), params=dict(lp), free=()),
                        Fit(law=get_law("bs_opt"), params=dict(bp), free=()))
    groups = list(t.groupby(keys, sort=True))
    if len(groups) < 3:
        raise ScalelawError(f"leave-one-cell-out needs at least 3 cells; {_src(df)} has {len(groups)}")
    rows = []
    from ..progress import Progress
    bar = Progress(total=len(groups), desc="leave-one-cell-out")
    for key, g in groups:
        bar.update()
        key = key if isinstance(key, tuple) else (key,)
        mask = np.ones(len(prepared), dtype=bool)
        for pk, kv in zip(pkeys, key):
            mask &= np.isclose(prepared[pk].to_numpy(dtype=float), kv, rtol=1e-12, atol=0)
        train = prepared[~mask]
        lf, bf = fit_pair(train, lr_law, bs_law)
        Nn = float(g[ncol].iloc[0])
        D = float(g["D"].iloc[0])
        lr, bs = predict_setting(lf, bf, Nn, D)
        ev = evaluate_setting(g, lr, bs, loss)
        ib = g[loss].idxmin()
        r = dict(zip(keys, key))
        r.update({"n_runs": len(g), "best_lr": float(g.loc[ib, "lr"]), "best_batch_tokens": float(g.loc[ib, "batch_tokens"]),
                  "best_loss": ev["best_loss"], "lr_pred": lr, "batch_pred": bs,
                  "gap_nearest": ev["gap_nearest"], "gap_interp": ev["gap_interp"], "inside": ev["inside"]})
        for label, (flr, fbs) in fixed.items():
            plr, pbs = predict_setting(flr, fbs, Nn, D)
            e2 = evaluate_setting(g, plr, pbs, loss)
            r[f"{label}_lr"] = plr
            r[f"{label}_batch"] = pbs
            r[f"{label}_gap_nearest"] = e2["gap_nearest"]
            r[f"{label}_gap_interp"] = e2["gap_interp"]
        rows.append(r)
    R = pd.DataFrame(rows)
    bar.close()
    summary = {"select": select, "tol": tol, "loss_col": loss, "n": ncol, "lr_law": lr_law, "bs_law": bs_law,
               "cells": len(R),
               "runs": int(len(t)), "mean_gap_nearest": float(R["gap_nearest"].mean()),
               "mean_gap_interp": float(R["gap_interp"].mean()),
               "max_gap_nearest": float(R["gap_nearest"].max()), "max_gap_interp": float(R["gap_interp"].max())}
    for label in fixed:
        summary[f"{label}_mean_gap_nearest"] = float(R[f"{label}_gap_nearest"].mean())
        summary[f"{label}_mean_gap_interp"] = float(R[f"{label}_gap_interp"].mean())
    return {"rows": R.to_dict(orient="records"), "summary": summary}


# ---------------------------------------------------------------------------------------------
# The Step Law protocol, end to end
# ---------------------------------------------------------------------------------------------
def steplaw_refit(df: pd.DataFrame, boot: int = 1000, seed: int = 0, tol: float = DEFAULT_TOL,
                  loss_col: str | None = None, n: str | None = None, source: str | None = None,
                  bs_law: str = "bs_opt"):
    """Step Law's protocol: plateau rows (within ``tol``), OLS of ln lr on (ln N, ln D) and of
    ln batch_tokens on ln D, ``boot`` bootstrap resamples over plateau runs.

    Returns (lr_fit, bs_fit, boot_means) where boot_means holds the bootstrap-mean coefficients
    Step Law reports ({"lr_opt": {...}, "bs_opt": {...}}; c as exp(mean ln c)). ``bs_law``
    "bs_opt_nd" fits ln batch on (ln N, ln D) instead.
    """
    from ..fit import fit

    opts = {"select": "plateau", "tol": tol}
    if loss_col:
        opts["loss_col"] = loss_col
    if n:
        opts["n"] = n
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for law in ("lr_opt", bs_law):
            fits.append(fit(law, df, objective="lsq-log", boot=boot, seed=seed, prepare_options=opts,
                            source=source or df.attrs.get("source")))
    means = {}
    for f in fits:
        s = f.param_samples()
        m = {}
        for i, name in enumerate(f.law.param_names):
            col = s[:, i] if s is not None else np.array([f.params[name]])
            with np.errstate(divide="ignore"):
                m[name] = float(np.exp(np.nanmean(np.log(col)))) if f.law.param(name).log else float(np.nanmean(col))
        means[f.law.name] = m
    return fits[0], fits[1], means


# ---------------------------------------------------------------------------------------------
# Figures (plotly; never shown)
# ---------------------------------------------------------------------------------------------
def landscape_figure(df: pd.DataFrame, cell: Mapping | Sequence | None = None, lr_fit=None, bs_fit=None,
                     loss_col: str | None = None, n: str | None = None, tol: float = DEFAULT_TOL,
                     bowl_tol: float = DEFAULT_BOWL_TOL, cap: float = 0.03):
    """Loss landscape of one cell over (lr, batch): runs coloured by their gap to the cell's best,
    the plateau ringed, the best run, the bowl optimum and the fits' predicted optimum marked.

    cell: {"N": ..., "D": ...} (or a tuple in cell-key order); default: the first cell.
    """
    import plotly.graph_objects as go

    t, loss, ncol, keys = validate_sweep(df, loss_col, n)
    t = _mark_plateau(t, loss, keys, tol)
    g = _select_cell(t, keys, cell)
    ib = g[loss].idxmin()
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=g["lr"], y=g["batch_tokens"], mode="markers", name="runs",
        marker=dict(size=11, color=np.minimum(g["gap"], cap) * 100, colorscale="Viridis_r",
                    colorbar=dict(title=f"gap to best (%), capped {cap:.0%}"), line=dict(width=0)),
        text=[f"loss {v:.4f} (+{100 * gp:.3f}%)" for v, gp in zip(g[loss], g["gap"])],
        hovertemplate="lr %{x:.3g}<br>batch %{y:.3g} tokens<br>%{text}<extra></extra>"))
    p = g[g["plateau"]]
    fig.add_trace(go.Scatter(x=p["lr"], y=p["batch_tokens"], mode="markers", name=f"plateau (within {tol:.2%})",
                             marker=dict(size=17, color="rgba(0,0,0,0)", line=dict(width=2, color="black"))))
    fig.add_trace(go.Scatter(x=[g.loc[ib, "lr"]], y=[g.loc[ib, "batch_tokens"]], mode="markers", name="observed best",
                             marker=dict(symbol="star", size=18, color="gold", line=dict(width=1, color="black"))))
    bw = fit_bowl(g["lr"], g["batch_tokens"], g[loss], bowl_tol)
    fig.add_trace(go.Scatter(x=[bw["lr"]], y=[bw["batch_tokens"]], mode="markers", name=f"bowl optimum ({bw['method']})",
                             marker=dict(symbol="diamond", size=13, color="royalblue", line=dict(width=1, color="white"))))
    if lr_fit is not None and bs_fit is not None:
        lr, bs = predict_setting(lr_fit, bs_fit, float(g[ncol].iloc[0]), float(g["D"].iloc[0]))
        ev = evaluate_setting(g, lr, bs, loss)
        fig.add_trace(go.Scatter(x=[lr], y=[bs], mode="markers",
                                 name=f"predicted optimum (+{100 * ev['gap_interp']:.3f}% interp.)",
                                 marker=dict(symbol="x", size=16, color="red", line=dict(width=1, color="red"))))
    label = _cell_label(keys, tuple(float(g[k].iloc[0]) for k in keys))
    fig.update_layout(title=f"loss landscape, cell {label} ({len(g)} runs, {loss})",
                      xaxis=dict(title="peak learning rate", type="log"),
                      yaxis=dict(title="batch size (tokens)", type="log"), template="plotly_white",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def _select_cell(t: pd.DataFrame, keys: list, cell) -> pd.DataFrame:
    groups = dict(tuple(t.groupby(keys, sort=True)))
    if cell is None:
        return next(iter(groups.values()))
    if isinstance(cell, Mapping):
        m = np.ones(len(t), dtype=bool)
        for k, v in cell.items():
            if k not in t.columns:
                raise ScalelawError(f"cell key {k!r} is not a column of the sweep; use {', '.join(keys)}")
            m &= np.isclose(t[k].to_numpy(dtype=float), float(v), rtol=1e-6)
        g = t[m]
    else:
        vals = [float(v) for v in cell]
        m = np.ones(len(t), dtype=bool)
        for k, v in zip(keys, vals):
            m &= np.isclose(t[k].to_numpy(dtype=float), v, rtol=1e-6)
        g = t[m]
    if len(g) == 0 or g.groupby(keys).ngroups != 1:
        known = "; ".join(_cell_label(keys, k if isinstance(k, tuple) else (k,)) for k in groups)
        raise ScalelawError(f"cell {cell!r} matches {g.groupby(keys).ngroups if len(g) else 0} cells of the sweep; "
                            f"give every key ({', '.join(keys)}); cells: {known}")
    return g


def laws_figure(df: pd.DataFrame, lr_fit, bs_fit, select: str = "plateau", tol: float = DEFAULT_TOL,
                loss_col: str | None = None, n: str | None = None):
    """The fitted lr* and B* laws against the cells' optima: two panels over D, one colour per N.

    Points: the selected rows (plateau runs small, best runs large); lines: the fits.
    """
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    t, loss, ncol, keys = validate_sweep(df, loss_col, n)
    prep = prepare_sweep(df, select=select, tol=tol, loss_col=loss_col, n=n)
    best = prepare_sweep(df, select="best", tol=tol, loss_col=loss_col, n=n)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("optimal learning rate", "optimal batch size (tokens)"))
    Ns = sorted(prep["N"].unique())
    Dgrid = np.exp(np.linspace(np.log(t["D"].min()) - 0.2, np.log(t["D"].max()) + 0.2, 60))
    for i, Nv in enumerate(Ns):
        col = qualitative.Plotly[i % len(qualitative.Plotly)]
        pp = prep[np.isclose(prep["N"], Nv)]
        bb = best[np.isclose(best["N"], Nv)]
        name = f"N={Nv:.3g}"
        for j, (ycol, f) in enumerate((("lr", lr_fit), ("batch_tokens", bs_fit)), start=1):
            fig.add_trace(go.Scatter(x=pp["D"], y=pp[ycol], mode="markers", name=f"{name} {select}",
                                     legendgroup=name, showlegend=j == 1,
                                     marker=dict(size=6, color=col, opacity=0.5)), row=1, col=j)
            fig.add_trace(go.Scatter(x=bb["D"], y=bb[ycol], mode="markers", name=f"{name} best run",
                                     legendgroup=name, showlegend=False,
                                     marker=dict(size=11, color=col, symbol="star")), row=1, col=j)
            X = {"N": np.full(Dgrid.shape, Nv), "D": Dgrid}
            if "batch_tokens" in f.law.inputs:
                X["batch_tokens"] = np.asarray(bs_fit.law.evaluate(X, bs_fit.params)) * np.ones_like(Dgrid)
            yv = np.asarray(f.law.evaluate(X, f.params)) * np.ones_like(Dgrid)
            fig.add_trace(go.Scatter(x=Dgrid, y=yv, mode="lines", name=f"{name} fit", legendgroup=name,
                                     showlegend=False, line=dict(color=col)), row=1, col=j)
    fig.update_xaxes(type="log", title_text="training tokens D")
    fig.update_yaxes(type="log")
    fig.update_layout(title=f"lr* and B* laws vs the cells' optima ({loss}, {select})", template="plotly_white")
    return fig


# ---------------------------------------------------------------------------------------------
# Critical batch size (Kaplan 2020 / McCandlish 2018): S and E to reach a loss across batches
# ---------------------------------------------------------------------------------------------
def critical_batch_table(df: pd.DataFrame, loss_col: str = "loss", min_batches: int = 3) -> pd.DataFrame:
    """Per loss level: S_min, E_min and B_crit = E_min / S_min from steps-to-reach across batches.

    Input rows: ``loss`` (the target loss level L), ``batch_tokens`` (B) and either ``steps``
    (S, optimizer steps to first reach L) or ``tokens`` (E, tokens to reach L; S = E / B). A
    table loaded from a file has them under their canonical names, ``step`` and ``D``.
    Per level, S(B) = S_min (1 + B_crit / B) is linear in 1/B: OLS gives S_min (intercept) and
    S_min B_crit (slope). Rows already holding ``B_crit`` pass through.
    """
    src = _src(df)
    if "B_crit" in df.columns:
        return df
    whole = isinstance(min_batches, (int, np.integer, float)) and not isinstance(min_batches, bool) \
        and float(min_batches).is_integer()
    if not whole or min_batches < 2:
        raise ScalelawError(f"min_batches must be a whole number of batch sizes, at least 2; got {min_batches!r} "
                            "(e.g. --option min_batches=3)")
    if loss_col not in df.columns:
        raise ScalelawError(f"critical-batch data {src} needs a {loss_col!r} column (the loss level reached)")
    b = _batch_tokens(df).to_numpy(dtype=float)
    steps = next((c for c in ("steps", "step") if c in df.columns), None)
    tokens = next((c for c in ("tokens", "D") if c in df.columns), None)
    if steps is not None:
        S = pd.to_numeric(df[steps], errors="coerce").to_numpy(dtype=float)
    elif tokens is not None:
        S = pd.to_numeric(df[tokens], errors="coerce").to_numpy(dtype=float) / b
    else:
        raise ScalelawError(f"critical-batch data {src} needs 'steps' (optimizer steps to reach the loss) or "
                            "'tokens' (tokens to reach it) per (loss, batch_tokens) row")
    L = pd.to_numeric(df[loss_col], errors="coerce").to_numpy(dtype=float)
    min_batches = int(min_batches)
    for name, v in (("batch_tokens", b), (steps or tokens, S), (loss_col, L)):
        if np.any(~np.isfinite(v)) or np.any(v <= 0):
            k = int(np.flatnonzero(~(np.isfinite(v) & (v > 0)))[0])
            raise ScalelawError(f"column {name!r} of {src} must be positive and finite; row {k} has {v[k]!r}")
    rows = []
    for lv in np.unique(L):
        m = L == lv
        if _n_distinct(b[m]) < min_batches:
            raise ScalelawError(f"loss level {lv:.6g} of {src} has runs at only {_n_distinct(b[m])} batch size(s); "
                                f"B_crit needs at least {min_batches}: add runs or drop that level")
        A = np.column_stack([np.ones(m.sum()), 1.0 / b[m]])
        (s_min, slope), *_ = np.linalg.lstsq(A, S[m], rcond=None)
        if not (s_min > 0 and slope > 0):
            raise ScalelawError(f"loss level {lv:.6g} of {src}: steps do not fall with batch size as "
                                f"S = S_min (1 + B_crit/B) needs (S_min {s_min:.3g}, slope {slope:.3g}); check the data")
        bc = slope / s_min
        rows.append({"loss": float(lv), "B_crit": float(bc), "S_min": float(s_min), "E_min": float(s_min * bc),
                     "n_batches": int(m.sum())})
    out = pd.DataFrame(rows)
    out.attrs.update(df.attrs)
    out.attrs["prepare_note"] = (f"one B_crit per loss level ({len(out)} levels), from the steps to reach it "
                                 "across batch sizes")
    return out


# ---------------------------------------------------------------------------------------------
# Resolving fits for `scalelaw hparams` (published labels are shared by lr_opt and bs_opt)
# ---------------------------------------------------------------------------------------------
STEPLAW_BOOT_DATASET = "steplaw-bootstrap"
_BOOT_COLUMNS = ("lr_intercept", "lr_coefN", "lr_coefD", "bs_intercept", "bs_coefD")


def _steplaw_released_boot(law_name: str) -> np.ndarray:
    """Step Law's 1,000 released bootstrap fits (the registered dataset ``steplaw-bootstrap``)
    as samples of (c, alpha, beta) for lr_opt or (c, gamma) for bs_opt."""
    from .. import datasets

    b = datasets.load(STEPLAW_BOOT_DATASET)
    missing = [c for c in _BOOT_COLUMNS if c not in b.columns]
    if missing:
        raise ScalelawError(f"dataset {STEPLAW_BOOT_DATASET} lacks column(s) {', '.join(missing)}; the file changed "
                            f"upstream: re-fetch it (`scalelaw data fetch {STEPLAW_BOOT_DATASET}`)")
    if law_name == "lr_opt":
        return np.column_stack([np.exp(b["lr_intercept"]), b["lr_coefN"], b["lr_coefD"]]).astype(float)
    if law_name == "bs_opt":
        return np.column_stack([np.exp(b["bs_intercept"]), b["bs_coefD"]]).astype(float)
    raise ScalelawError(f"Step Law released bootstrap fits of lr_opt and bs_opt only, not {law_name!r}")


def load_hparam_fit(path_or_name, law: str | None = None):
    """A saved fit file, or a published ready fit of ``law`` (e.g. 'steplaw-2025' is both an
    lr_opt and a bs_opt fit: ``law`` picks which). Step Law's published fits carry the authors'
    released bootstrap (1,000 refits, the dataset ``steplaw-bootstrap``) as samples. When that
    dataset cannot be resolved (no SCALELAW_MIRROR and no download), the published constants are
    returned without samples (no intervals), with a warning saying why and how to fix it."""
    from ..result import load_fit

    name = str(path_or_name)
    if Path(name).exists():
        return load_fit(name)   # a fit file is returned as saved, whatever law= says
    f = load_fit(name, law=law)
    if f.settings.get("published") == "steplaw-2025":
        try:
            f.boot = _steplaw_released_boot(f.law.name)
        except ScalelawError as exc:
            note = (f"the authors' released bootstrap is unavailable, so {name} ({f.law.name}) has no intervals: "
                    f"{exc}")
            f.diagnostics["message"] += f"; {note}"
            warnings.warn(note, stacklevel=2)
        else:
            f.diagnostics["message"] += " with the authors' released bootstrap"
    return f


def hparams_predict(lr_fit, bs_fit, N: float, D: float, seq_len: float = STEPLAW_SEQ_LEN,
                    level: float = 0.95) -> dict:
    """lr* and B* (tokens and sequences of ``seq_len``) at (N, D) with intervals of the fitted curves.

    An lr law that takes the batch size (lr_power) is evaluated at the predicted B*.
    """
    for name, v in (("N", N), ("D", D), ("seq_len", seq_len)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ScalelawError(f"--{name.replace('_', '-')} must be a positive number; got {v!r}")
    if lr_fit.law.target != "lr":
        raise ScalelawError(f"--lr needs a learning-rate fit (law lr_opt or lr_power); got law {lr_fit.law.name!r}")
    if bs_fit.law.target != "batch_tokens":
        raise ScalelawError(f"--bs needs a batch-size fit (law bs_opt or bs_opt_nd); got law {bs_fit.law.name!r}")
    X = pd.DataFrame({"N": [float(N)], "D": [float(D)]})
    pb = bs_fit.predict(X, level=level).iloc[0]
    X["batch_tokens"] = float(pb["mean"])
    pl = lr_fit.predict(X, level=level).iloc[0]

    def num(v):
        v = float(v)
        return v if math.isfinite(v) else None

    out = {"N": float(N), "D": float(D), "seq_len": float(seq_len),
           "lr": num(pl["mean"]), "lr_lower": num(pl["lower"]), "lr_upper": num(pl["upper"]),
           "batch_tokens": num(pb["mean"]), "batch_tokens_lower": num(pb["lower"]),
           "batch_tokens_upper": num(pb["upper"])}
    for k in ("", "_lower", "_upper"):
        v = out[f"batch_tokens{k}"]
        out[f"batch_sequences{k}"] = None if v is None else v / float(seq_len)
    # each fit's extrapolation factor; None (JSON null) for a fit that records no fitted range
    # (published constants), and then for the pair too: 1.0 would claim "inside"
    lx, bx = num(pl["extrapolation"]), num(pb["extrapolation"])
    out.update({"level": level, "lr_fit": lr_fit.label or lr_fit.data.get("source"), "lr_law": lr_fit.law.name,
                "bs_fit": bs_fit.label or bs_fit.data.get("source"), "bs_law": bs_fit.law.name,
                "lr_interval": lr_fit.interval_method, "bs_interval": bs_fit.interval_method,
                "extrapolation": None if lx is None or bx is None else max(lx, bx),
                "lr_extrapolation": lx, "bs_extrapolation": bx})
    return out


# ---------------------------------------------------------------------------------------------
# Cell bootstrap: resample whole cells instead of rows
# ---------------------------------------------------------------------------------------------
def bootstrap_cells(fit_result, df: pd.DataFrame, k: int = 1000, seed: int = 0):
    """Re-derive a fit's intervals by resampling whole (N, D) cells with replacement.

    The engine's ``boot=`` resamples rows (the plateau runs), as Step Law did; runs of one cell
    share a model and a token budget, so that is optimistic. Here every resample draws as many
    cells as there are, with replacement, and refits (batched engine, warm-started at the fit)
    with each row weighted by its cell's count; same law, objective and prepare options as
    ``fit_result``. Resamples whose cells leave the law unidentified (too few distinct inputs)
    are dropped. Returns a copy of the Fit with ``boot`` replaced and
    ``settings["bootstrap"] = "cells"``.
    """
    import copy

    from ..fit import fit, prepare as fit_prepare
    from ..uncertainty import resample_weights

    if k < 2:
        raise ScalelawError(f"a cell bootstrap needs at least 2 resamples; got {k}")
    if fit_result.theta is None:
        raise ScalelawError("a cell bootstrap needs a fitted Fit (published constants have no data to resample)")
    law = fit_result.law
    s = fit_result.settings
    opts = dict(s.get("prepare_options") or {})
    _, prepared, X, y, w0 = fit_prepare(law, df, where=s.get("where"), prepare_options=opts)
    keys = [c for c in ("N_total", "N_active", "D") if c in prepared.columns]
    if "D" not in keys:
        raise ScalelawError("a cell bootstrap needs a sweep (rows with N and D); use boot= for other data")
    codes = prepared.groupby(keys, sort=True).ngroup().to_numpy()
    n_cells = int(codes.max()) + 1
    if n_cells < 3:
        raise ScalelawError(f"a cell bootstrap needs at least 3 cells; the fit's rows come from {n_cells}")
    free = tuple(fit_result.free)
    fixed = {n: fit_result.params[n] for n in law.param_names if n not in free}
    # the engine's cluster bootstrap, warm-started at the fit (one start, so no new search)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = fit(law, df, objective=fit_result.objective.get("name") or law.default_objective,
                    delta=fit_result.objective.get("delta") or 1e-3, where=s.get("where"), fixed=fixed,
                    starts=[{n: fit_result.params[n] for n in free}], polish_top=1, boot=k, seed=seed,
                    boot_groups=codes, n_jobs=1, prepare_options=opts)
    # identifiable resamples: the log design [1, ln x_1, ...] of the rows a resample keeps has
    # full rank (the engine draws these weights from the same seed and groups)
    W = resample_weights(len(y), k, seed, w0, groups=codes)
    A = np.column_stack([np.ones_like(y)] + [np.log(np.maximum(x, 1e-300)) for x in X])
    need = min(A.shape[1], len(free))
    ok = np.array([np.linalg.matrix_rank(A[W[i] > 0]) >= need for i in range(k)])
    ok &= np.all(np.isfinite(refit.boot), axis=1)
    samples = refit.boot[ok]
    if len(samples) < max(2, k // 2):
        raise ScalelawError(f"only {len(samples)} of {k} cell resamples gave an identifiable fit; too few cells")
    out = copy.copy(fit_result)
    out.boot = samples
    out.settings = {**s, "bootstrap": "cells", "boot": int(len(samples))}
    return out
