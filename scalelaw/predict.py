"""Prediction workflows on top of a Fit: backtests (fit small, predict large)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .compare import split
from .law import get_law
from .varpro import fit_with


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
    return {
        "law": law.name, "train": train, "n_train": int(len(tr)), "n_test": int(len(te)),
        "params": f.params, "converged": bool(f.diagnostics.get("converged")),
        "identified": f.identified, "problems": f.problems,
        "mean_rel_error": float(np.mean(np.abs(rel))), "max_rel_error": float(np.max(np.abs(rel))),
        "coverage": float(np.mean(inside)), "rows": rows.to_dict(orient="records"),
    }
