"""Loss trajectories at any batch size, and steps/tokens to reach a loss (Kaplan 2020; Su 2024).

Kaplan et al.'s learning-curve law is written in the minimal number of steps S_min, the steps a
run would need with a batch far above the critical batch:

    L(N, S_min) = (Nc / N)^alpha_N + (Sc / S_min)^alpha_S          (law ``kaplan_curve``)
    B_crit(L)   = B_star / L^(1/alpha_B)                            (law ``critical_batch``)
    S_min       = S / (1 + B_crit(L) / B),   E_min = E / (1 + B / B_crit(L))

with N non-embedding parameters, S optimisation steps, B the batch in tokens and E = B S the
tokens seen. Because B_crit depends on the loss, the loss after S steps at batch B is implicit:
L solves  L = (Nc/N)^alpha_N + (Sc (1 + B_crit(L)/B) / S)^alpha_S.  The right-hand side falls as
L rises (a lower critical batch wastes fewer steps), so the root is unique and lies in
[(Nc/N)^alpha_N, RHS((Nc/N)^alpha_N)]; we find it by bracketed bisection and Newton steps
in ln L, vectorised (scalelaw.laws.loss.solve_trajectory, shared with the kaplan_trajectory law).
The inverse direction (steps or tokens to reach a target loss) is explicit.

Parameters may be given as numbers, as mappings, or as fitted :class:`scalelaw.result.Fit`
objects (``kaplan_curve`` for the curve, ``critical_batch`` for B_star and alpha_B).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import ScalelawError

CURVE_KEYS = ("Nc", "Sc", "alpha_N", "alpha_S")
KAPLAN_B_STAR, KAPLAN_ALPHA_B = 2.1e8, 0.21       # Kaplan et al. 2020 eq. 5.6 (tokens)
BCRIT_KEYS = ("B_star", "alpha_B")


def _params(obj, keys, what) -> dict:
    if hasattr(obj, "params") and hasattr(getattr(obj, "params"), "keys"):   # a Fit (params: a Series)
        obj = dict(obj.params)
    if not isinstance(obj, Mapping):
        raise ScalelawError(f"{what} must be a Fit or a mapping with keys {', '.join(keys)}; got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ScalelawError(f"{what} lacks {', '.join(missing)}; give {', '.join(keys)} "
                            f"(a fit of the {'kaplan_curve' if keys == CURVE_KEYS else 'critical_batch'} law)")
    return {k: float(obj[k]) for k in keys}


def _bcrit_params(B_star, alpha_B) -> tuple[float, float]:
    """(B_star, alpha_B) from a critical_batch Fit/mapping, or numbers (Kaplan's by default)."""
    if hasattr(B_star, "params") or isinstance(B_star, Mapping):
        if alpha_B is not None:
            raise ScalelawError("give either a critical_batch fit as B_star or the numbers B_star and alpha_B, not both")
        p = _params(B_star, BCRIT_KEYS, "B_star")
        B_star, alpha_B = p["B_star"], p["alpha_B"]
    elif alpha_B is None:
        if float(B_star) != KAPLAN_B_STAR:
            raise ScalelawError(f"B_star {B_star!r} given without alpha_B; give both (Kaplan: 2.1e8 and 0.21) "
                                "or a critical_batch fit")
        alpha_B = KAPLAN_ALPHA_B
    B_star, alpha_B = float(B_star), float(alpha_B)
    if not (B_star > 0 and alpha_B > 0):
        raise ScalelawError(f"B_star and alpha_B must be positive; got {B_star!r}, {alpha_B!r}")
    return B_star, alpha_B


def _curve_and_bcrit(curve_params, B_star, alpha_B):
    """Curve constants and (B_star, alpha_B); a kaplan_trajectory fit carries all six, used when
    B_star/alpha_B are left at their defaults."""
    p = _params(curve_params, CURVE_KEYS, "curve_params")
    src = dict(curve_params.params) if hasattr(curve_params, "params") else curve_params
    if (alpha_B is None and isinstance(B_star, (int, float)) and float(B_star) == KAPLAN_B_STAR
            and isinstance(src, Mapping) and all(k in src for k in BCRIT_KEYS)):
        return p, float(src["B_star"]), float(src["alpha_B"])
    return (p, *_bcrit_params(B_star, alpha_B))


def _positive(name, v):
    a = np.asarray(v, dtype=float)
    if np.any(~(a > 0)):
        raise ScalelawError(f"{name} must be positive; got {v!r}")
    return a


# ---- the three defining relations ------------------------------------------------------------
def b_crit(L, B_star=KAPLAN_B_STAR, alpha_B=None):
    """Critical batch size in tokens at loss L: B_star / L^(1/alpha_B).

    ``B_star`` may be a Fit (or mapping) of the ``critical_batch`` law (then leave ``alpha_B``
    out). Kaplan's constants (B_star 2.1e8 tokens, alpha_B 0.21) are the defaults:
    b_crit(3) = 1.123e6. Every function below takes B_star/alpha_B the same way.
    """
    Bs, aB = _bcrit_params(B_star, alpha_B)
    L = _positive("loss L", L)
    return Bs * np.exp(-np.log(L) / aB)


def s_min(S, B, L, B_star=KAPLAN_B_STAR, alpha_B=None):
    """Minimal steps S_min = S / (1 + B_crit(L)/B) for S steps at batch B (tokens) reaching loss L."""
    return np.asarray(S, dtype=float) / (1.0 + b_crit(L, B_star, alpha_B) / _positive("batch_tokens", B))


def e_min(E, B, L, B_star=KAPLAN_B_STAR, alpha_B=None):
    """Minimal tokens E_min = E / (1 + B/B_crit(L)) for E tokens at batch B reaching loss L."""
    return np.asarray(E, dtype=float) / (1.0 + _positive("batch_tokens", B) / b_crit(L, B_star, alpha_B))


def add_s_min(df, B_star=KAPLAN_B_STAR, alpha_B=None, *, loss_col: str = "loss"):
    """A copy of a learning-curve table with ``S_min`` and ``E_min`` columns added.

    Rows are points of training curves: ``steps`` (optimiser steps so far), ``batch_tokens`` (B)
    and the loss reached; ``B_star``/``alpha_B`` as numbers or a ``critical_batch`` Fit (with
    ``alpha_B=None``). The result feeds the ``kaplan_curve`` law (with ``N_nonembed``).
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ScalelawError("add_s_min needs a run table (pandas DataFrame)")
    src = df.attrs.get("source", "the table")
    missing = [c for c in ("steps", "batch_tokens", loss_col) if c not in df.columns]
    if missing:
        raise ScalelawError(f"learning-curve table {src} lacks column(s) {', '.join(missing)}; rows need "
                            "steps (optimiser steps so far), batch_tokens and the loss reached")
    S = pd.to_numeric(df["steps"], errors="coerce").to_numpy(dtype=float)
    B = pd.to_numeric(df["batch_tokens"], errors="coerce").to_numpy(dtype=float)
    L = pd.to_numeric(df[loss_col], errors="coerce").to_numpy(dtype=float)
    for name, v in (("steps", S), ("batch_tokens", B), (loss_col, L)):
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ScalelawError(f"column {name!r} of {src} must be positive; row {k} has {v[k]!r}")
    out = df.copy()
    bc = b_crit(L, B_star, alpha_B)
    out["S_min"] = S / (1.0 + bc / B)
    out["E_min"] = S * B / (1.0 + B / bc)
    return out


# ---- forward: the loss curve -----------------------------------------------------------------
def loss_curve(N, steps, batch_tokens, curve_params, B_star=KAPLAN_B_STAR, alpha_B=None):
    """Loss after ``steps`` optimisation steps at batch ``batch_tokens`` for non-embedding size N.

    Solves L = (Nc/N)^alpha_N + (Sc (1 + B_crit(L)/B) / S)^alpha_S for L (unique root) with
    :func:`scalelaw.laws.loss.solve_trajectory` (bracketed bisection + Newton, vectorised); all
    of N, steps, batch_tokens broadcast. The ``kaplan_trajectory`` law is the same function with
    all six constants fitted jointly.
    curve_params: Fit or mapping with Nc, Sc, alpha_N, alpha_S (law ``kaplan_curve``), or a
    ``kaplan_trajectory`` fit, which also carries B_star and alpha_B.
    """
    p, Bs, aB = _curve_and_bcrit(curve_params, B_star, alpha_B)
    N = _positive("N (non-embedding parameters)", N)
    S = _positive("steps", steps)
    B = _positive("batch_tokens", batch_tokens)
    from ..laws.loss import solve_trajectory

    out = solve_trajectory(N, S, B, p["Nc"], p["Sc"], p["alpha_N"], p["alpha_S"], Bs, aB)
    return out if out.ndim else float(out)


# ---- inverse: steps and tokens to reach a loss -----------------------------------------------
def min_steps_to_loss(L, N, curve_params):
    """S_min to reach loss L at size N (inf when L is at or below the size floor (Nc/N)^alpha_N)."""
    p = _params(curve_params, CURVE_KEYS, "curve_params")
    L = _positive("target loss L", L)
    N = _positive("N (non-embedding parameters)", N)
    floor = np.exp(p["alpha_N"] * (np.log(p["Nc"]) - np.log(N)))
    gap = L - floor
    with np.errstate(all="ignore"):
        out = p["Sc"] * np.exp(-np.log(gap) / p["alpha_S"])
    return np.where(gap > 0, out, np.inf)


def steps_to_loss(L, N, batch_tokens, curve_params, B_star=KAPLAN_B_STAR, alpha_B=None):
    """Optimisation steps to reach loss L at batch ``batch_tokens`` (tokens): S_min (1 + B_crit(L)/B)."""
    B = _positive("batch_tokens", batch_tokens)
    _, Bs, aB = _curve_and_bcrit(curve_params, B_star, alpha_B)
    out = min_steps_to_loss(L, N, curve_params) * (1.0 + b_crit(L, Bs, aB) / B)
    return out if np.ndim(out) else float(out)


def tokens_to_loss(L, N, batch_tokens=None, curve_params=None, B_star=KAPLAN_B_STAR, alpha_B=None):
    """Training tokens to reach loss L: B * steps at batch B, or E_min = B_crit S_min when
    ``batch_tokens`` is None (the fewest tokens, reached with small batches)."""
    if curve_params is None:
        raise ScalelawError("tokens_to_loss needs curve_params (a kaplan_curve fit or its Nc, Sc, alpha_N, alpha_S)")
    if batch_tokens is None:
        _, Bs, aB = _curve_and_bcrit(curve_params, B_star, alpha_B)
        out = min_steps_to_loss(L, N, curve_params) * b_crit(L, Bs, aB)
    else:
        out = np.asarray(batch_tokens, dtype=float) * steps_to_loss(L, N, batch_tokens, curve_params, B_star, alpha_B)
    return out if np.ndim(out) else float(out)


# ---- reference check points ------------------------------------------------------------------
def _evaluate_check(c: Mapping) -> float:
    kind = c.get("kind", "law")
    if kind == "law":
        from ..law import get_law
        law = get_law(c["law"])
        if c.get("published"):
            if c["published"] not in law.published:
                raise ScalelawError(f"law {law.name!r} has no published constants {c['published']!r}")
            params = dict(law.published[c["published"]])
        else:
            params = {k: float(v) for k, v in c["params"].items()}
        X = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in c["at"].items()}
        return float(np.asarray(law.evaluate(X, params)).ravel()[0])
    if kind == "optimum":
        from ..law import get_law
        law = get_law(c["law"])
        out = law.optimum(dict(law.published[c["published"]]), **c["at"])
        return float(np.asarray(out[c["output"]]))
    if kind == "function":
        funcs = {"b_crit": b_crit, "loss_curve": loss_curve, "steps_to_loss": steps_to_loss,
                 "tokens_to_loss": tokens_to_loss, "min_steps_to_loss": min_steps_to_loss}
        if c["function"] not in funcs:
            raise ScalelawError(f"unknown check function {c['function']!r}; known: {', '.join(funcs)}")
        return float(np.asarray(funcs[c["function"]](**c["args"])))
    raise ScalelawError(f"unknown check kind {kind!r} (law, optimum, function)")


def check_reference_values(path) -> list[str]:
    """Evaluate every check point of a reference-values file; drift messages (empty when fine).

    File format: {"kind": "reference-values", "checks": [{"name", "kind": "law"|"optimum"|
    "function", ..., "expect": value, "rtol": tolerance}]}; see fits/reference-values.json.
    """
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ScalelawError(f"cannot read reference-values file {p}: {exc}") from None
    if not isinstance(d, dict) or d.get("kind") != "reference-values" or not isinstance(d.get("checks"), list):
        raise ScalelawError(f"{p} is not a reference-values file (needs kind 'reference-values' and a 'checks' list)")
    msgs = []
    for i, c in enumerate(d["checks"]):
        name = c.get("name", f"check {i}")
        try:
            got = _evaluate_check(c)
        except ScalelawError as exc:
            msgs.append(f"{p.name}: {name}: {exc}")
            continue
        except Exception as exc:  # a broken entry must be reported, not crash the whole check
            msgs.append(f"{p.name}: {name}: could not evaluate ({type(exc).__name__}: {exc})")
            continue
        want, rtol = float(c["expect"]), float(c.get("rtol", 5e-5))
        if not math.isfinite(got) or abs(got - want) > rtol * abs(want):
            msgs.append(f"{p.name}: {name} = {got:.6g}, expected {want:.6g} (rtol {rtol:g})")
    return msgs
