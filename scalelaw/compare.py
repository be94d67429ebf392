"""Which law extrapolates better on these runs? Fit each on the --train rows, score the rest.

:func:`compare` fits every law on the same training rows (a filter expression, e.g. the smaller
runs) and scores it on the held-out rows: R^2 and mean/max relative error of the predictions,
coverage of the prediction band, AIC/BIC on the training rows, and a paired bootstrap over the
held-out runs saying whether the best law (lowest mean |relative error|) beats the next beyond
noise. docs/compare.md describes the output.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from . import expr
from .errors import FitError, ScalelawError
from .fit import select_rows
from .law import get_law
from .varpro import fit_with

N_BOOT = 2000


def split(table: pd.DataFrame, train: str, where: str | None, src: str):
    """(train rows, held-out rows) of ``table`` after ``where``; one-line errors when either is empty."""
    df = select_rows(table, where, src)
    mask = expr.mask(df, train, "--train", src)
    tr, te = df[mask], df[~mask]
    if len(tr) == 0:
        raise ScalelawError(f"--train {train!r} selects no rows of {src}; loosen it")
    if len(te) == 0:
        raise ScalelawError(f"--train {train!r} selects every row of {src}; nothing is left to predict")
    tr.attrs.update(table.attrs)
    te.attrs.update(table.attrs)
    return tr, te


def _information(law, f, tr) -> dict:
    """AIC / BIC from the Gaussian likelihood of the training residuals (log residuals when the
    target is positive, the space of the log objectives; raw otherwise), k = free parameters + 1."""
    X = {c: pd.to_numeric(tr[c], errors="coerce").to_numpy(dtype=float) for c in law.inputs}
    y = pd.to_numeric(tr[law.target], errors="coerce").to_numpy(dtype=float)
    pred = np.asarray(law.evaluate(X, f.params), dtype=float) * np.ones(len(y))
    log = bool(np.all(y > 0) and np.all(pred > 0))
    r = (np.log(pred) - np.log(y)) if log else (pred - y)
    n, k = len(y), len(f.free) + 1
    rss = float(np.sum(r * r))
    if not (rss > 0 and math.isfinite(rss)):
        return {"aic": None, "bic": None, "space": "log" if log else "raw"}
    ll = -0.5 * n * (math.log(2 * math.pi * rss / n) + 1.0)
    return {"aic": 2 * k - 2 * ll, "bic": k * math.log(n) - 2 * ll, "space": "log" if log else "raw"}


MIN_EFFECT = 0.01


def paired_bootstrap(err_best: np.ndarray, err_next: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0,
                     level: float = 0.95, min_effect: float = MIN_EFFECT) -> dict:
    """Bootstrap over held-out runs of mean(|err_next|) - mean(|err_best|), resampling the runs
    (pairs kept together). ``better_beyond_noise`` when the one-sided lower bound at ``level``
    exceeds ``min_effect`` x mean(|err_next|) (1%: two fits of the same law that differ only by
    optimiser tolerance differ consistently but negligibly, and must not be called better);
    ``p_value`` = share of resamples where the difference is <= 0."""
    a, b = np.abs(np.asarray(err_best, dtype=float)), np.abs(np.asarray(err_next, dtype=float))
    d = b - a
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    means = d[idx].mean(axis=1)
    lo = float(np.quantile(means, 1.0 - level))
    hi = float(np.quantile(means, level))
    margin = min_effect * float(b.mean())
    return {"mean_diff": float(d.mean()), "lower": lo, "upper": hi, "p_value": float(np.mean(means <= 0)),
            "min_effect": margin, "better_beyond_noise": bool(lo > margin and len(d) >= 2),
            "n_resamples": int(n_boot), "level": level, "n_runs": int(len(d))}


def compare(laws, table: pd.DataFrame, *, train: str, where: str | None = None, level: float = 0.95,
            source: str | None = None, method: str = "multistart", n_boot: int = N_BOOT, seed: int = 0,
            **fit_kwargs) -> dict:
    """Fit each of ``laws`` (Laws or names) on the rows matching ``train``; score the held-out rows.

    Returns one JSON-able dict: per law its parameters, convergence, held-out ``r2``,
    ``mean_rel_error``, ``max_rel_error``, ``coverage`` (share inside the prediction band at
    ``level``), train ``aic``/``bic``, and ``rel_errors`` per held-out row; ``ranking`` (by mean
    |relative error|), ``best``, and ``paired_bootstrap`` (best against the next).
    """
    laws = [get_law(l) for l in laws]
    if len(laws) < 1:
        raise ScalelawError("give at least one law to compare")
    names = [l.name for l in laws]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ScalelawError(f"law {dup[0]!r} is given twice; give each law once (name a formula law in a --laws file "
                            "to compare two formulas)")
    targets = {l.target for l in laws}
    if len(targets) > 1:
        raise ScalelawError(f"the laws predict different targets ({', '.join(sorted(targets))}); compare laws of one target")
    for l in laws:
        if l.prepare is not None:
            raise ScalelawError(f"law {l.name!r} transforms its rows before fitting (a prepare step), so its held-out "
                                "rows differ from the others'; compare it with `scalelaw backtest` instead")
    src = source or table.attrs.get("source", "the table")
    tr, te = split(table, train, where, src)
    target = laws[0].target
    if target not in te.columns:
        raise ScalelawError(f"the held-out rows of {src} have no column {target!r}")
    actual = pd.to_numeric(te[target], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(actual)):
        raise ScalelawError(f"target column {target!r} of {src} has missing values among the held-out rows; drop "
                            "them with --where")
    out_laws = []
    for law in laws:
        entry = {"law": law.name, "formula": law.formula}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = fit_with(method, law, tr, source=src, level=level, **fit_kwargs)
        except FitError as exc:
            entry.update({"error": str(exc), "converged": False})
            out_laws.append(entry)
            continue
        pred = f.predict(te[list(law.inputs)], level=level)
        mean = pred["mean"].to_numpy(dtype=float)
        rel = (mean - actual) / actual
        ss_res = float(np.sum((mean - actual) ** 2))
        ss_tot = float(np.sum((actual - actual.mean()) ** 2))
        lo, hi = pred["pred_lower"].to_numpy(dtype=float), pred["pred_upper"].to_numpy(dtype=float)
        has_band = np.all(np.isfinite(lo) & np.isfinite(hi))
        entry.update({
            "params": f.params, "n_params": len(f.free), "converged": bool(f.diagnostics.get("converged")),
            "r2": (1.0 - ss_res / ss_tot) if ss_tot > 0 else None,
            "mean_rel_error": float(np.mean(np.abs(rel))), "max_rel_error": float(np.max(np.abs(rel))),
            "coverage": float(np.mean((actual >= lo) & (actual <= hi))) if has_band else None,
            **_information(law, f, tr), "rel_errors": rel.tolist(),
        })
        out_laws.append(entry)
    scored = sorted((e for e in out_laws if "mean_rel_error" in e), key=lambda e: e["mean_rel_error"])
    ranking = [e["law"] for e in scored]
    test = None
    if len(scored) >= 2:
        test = {"best": scored[0]["law"], "next": scored[1]["law"],
                **paired_bootstrap(np.array(scored[0]["rel_errors"]), np.array(scored[1]["rel_errors"]),
                                   n_boot=n_boot, seed=seed)}
    runs = te["run"].astype(str).tolist() if "run" in te.columns else [str(i) for i in te.index]
    held = {c: pd.to_numeric(te[c], errors="coerce").tolist() for c in ("N", "D", "C")
            if c in te.columns and pd.api.types.is_numeric_dtype(te[c])}
    return {"data": src, "train": train, "where": where, "target": target, "n_train": int(len(tr)),
            "n_test": int(len(te)), "level": level, "method": method, "laws": out_laws, "ranking": ranking,
            "best": ranking[0] if ranking else None, "paired_bootstrap": test,
            "held_out": {"run": runs, "actual": actual.tolist(), **held}}


def plot_compare(result: dict, title: str | None = None):
    """Held-out relative error of each law against compute (C, else 6ND, else the row order)."""
    from .plots import _PALETTE, _go, _positive_spread

    go = _go()
    held = result["held_out"]
    if "C" in held:
        x, xlabel = np.asarray(held["C"], dtype=float), "C (FLOPs)"
    elif "N" in held and "D" in held:
        x, xlabel = 6.0 * np.asarray(held["N"], dtype=float) * np.asarray(held["D"], dtype=float), "C = 6ND (FLOPs)"
    else:
        x, xlabel = np.arange(len(held["run"]), dtype=float), "held-out row"
    fig = go.Figure()
    for i, e in enumerate(e for e in result["laws"] if "rel_errors" in e):
        fig.add_trace(go.Scatter(x=x, y=100 * np.asarray(e["rel_errors"]), mode="markers",
                                 name=f"{e['law']} (mean |err| {100 * e['mean_rel_error']:.2f}%)",
                                 marker=dict(color=_PALETTE[i % len(_PALETTE)], size=8), text=held["run"]))
    fig.add_hline(y=0, line=dict(color="black", width=1))
    t = result.get("paired_bootstrap")
    verdict = ""
    if t:
        verdict = (f"; {t['best']} beats {t['next']} beyond noise" if t["better_beyond_noise"]
                   else f"; {t['best']} vs {t['next']}: within noise")
    head = (f"compare on {result['data']}: fit on {result['n_train']} rows ({result['train']}), "
            f"held-out {result['n_test']}{verdict}")
    fig.update_layout(title=dict(text=title or head, font=dict(size=13)), template="plotly_white",
                      xaxis_title=xlabel, yaxis_title="held-out relative error (%)", height=420,
                      margin=dict(l=60, r=20, t=60, b=50))
    if _positive_spread(x, 3.0):
        fig.update_xaxes(type="log", exponentformat="power")
    return fig
