"""Prediction workflows on top of a Fit: backtests (fit small, predict large)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .compare import split
from .errors import ScalelawError
from .fit import select_rows
from .law import get_law
from .varpro import fit_with


HOLDOUT = 0.25   # the default backtest holds out about the largest quarter of runs by compute
SPLIT_COLUMN = "backtest_scale_"


def split_scale(table: pd.DataFrame, law) -> tuple[str, np.ndarray]:
    """(label, values) ordering runs by size for the default backtest split: the compute C when
    every row has it, else 6ND, else the law's main input."""
    num = lambda c: pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float)
    if "C" in table.columns and np.all(np.isfinite(num("C"))):
        return "C", num("C")
    if {"N", "D"} <= set(table.columns):
        v = 6.0 * num("N") * num("D")
        if np.all(np.isfinite(v)):
            return "6ND", v
    c = get_law(law).inputs[0]
    return c, num(c)


def default_split(table: pd.DataFrame, law, where: str | None = None,
                  holdout: float = HOLDOUT) -> tuple[pd.DataFrame, str, str]:
    """The default backtest split by compute: runs are ordered by C (else 6ND, else the law's main
    input); runs whose compute agrees to within ~1% (one IsoFLOP budget) stay on one side; the
    cut between two compute levels leaves the held-out share of runs closest to ``holdout``,
    with at least one level on each side. Returns (table with the split column, the train
    expression, the expression as shown: "C <= 1.2e+21")."""
    src = table.attrs.get("source", "the table")
    label, values = split_scale(table, law)
    out = table.assign(**{SPLIT_COLUMN: values})
    out.attrs.update(table.attrs)
    v = select_rows(out, where, src)[SPLIT_COLUMN].to_numpy(dtype=float)
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        raise ScalelawError(f"too few rows of {src} with a positive {label} to split for a backtest; give --train")
    levels = np.round(np.log10(v[ok]), 2)
    uniq, counts = np.unique(levels, return_counts=True)
    if len(uniq) < 2:
        raise ScalelawError(f"every run of {src} has the same {label} ({v[ok][0]:.3g}): a backtest by compute needs "
                            "at least two sizes; give --train")
    held = 1.0 - np.cumsum(counts)[:-1] / counts.sum()     # share held out when cutting after level i
    cut = int(np.argmin(np.abs(held - holdout)))
    thr = float(np.max(v[ok][levels <= uniq[cut]]))
    return out, f"{SPLIT_COLUMN} <= {thr!r}", f"{label} <= {thr:.3g}"


def backtest(law, table: pd.DataFrame, *, train: str, where: str | None = None, level: float = 0.95,
             source: str | None = None, method: str = "multistart", **fit_kwargs) -> dict:
    """Fit on rows matching ``train`` (after ``where``), predict every other row.

    method: 'multistart' (the engine) or 'varpro' (scalelaw.varpro, laws with linear parameters).

    Returns a dict with per-row relative errors, their mean and max, and the share of held-out
    rows inside the prediction band.
    """
    law = get_law(law)
    src = source or table.attrs.get("source", "the table")
    tr, te = split(table, train, where, src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit_with(method, law, tr, source=src, level=level, **fit_kwargs)
    if law.prepare is not None:
        te = law.prepare(te, **dict(fit_kwargs.get("prepare_options") or {}))
    pred = f.predict(te[list(law.inputs)], level=level)
    actual = pd.to_numeric(te[law.target], errors="coerce").to_numpy(dtype=float)
    rel = (pred["mean"].to_numpy() - actual) / actual
    inside = (actual >= pred["pred_lower"].to_numpy()) & (actual <= pred["pred_upper"].to_numpy())
    rows = pred.copy()
    rows.insert(len(law.inputs), "actual", actual)
    rows["rel_error"] = rel
    if "run" in te.columns:
        rows.insert(0, "run", te["run"].astype(str).to_numpy())
    # the refit on its own rows (what a predicted-vs-observed figure shows beside the held-out)
    tr_rows = tr if law.prepare is None else law.prepare(tr, **dict(fit_kwargs.get("prepare_options") or {}))
    tr_pred = f.predict(tr_rows[list(law.inputs)], level=level)
    tr_pred.insert(len(law.inputs), "actual", pd.to_numeric(tr_rows[law.target], errors="coerce").to_numpy(dtype=float))
    if "run" in tr_rows.columns:
        tr_pred.insert(0, "run", tr_rows["run"].astype(str).to_numpy())
    return {
        "law": law.name, "train": train, "n_train": int(len(tr)), "n_test": int(len(te)),
        "params": f.params.to_dict(), "converged": bool(f.diagnostics.get("converged")),
        "identified": f.identified, "problems": f.problems,
        "mean_rel_error": float(np.mean(np.abs(rel))), "max_rel_error": float(np.max(np.abs(rel))),
        "coverage": float(np.mean(inside)), "rows": rows.to_dict(orient="records"),
        "train_rows": tr_pred.to_dict(orient="records"), "level": level,
    }
