"""Over-training law (Gadre et al. 2024): loss as a function of compute C and token multiplier M.

L(C, M) = E + (a M^eta + b M^-eta) C^-eta, with C = 6 N D and M = D / N (tokens per parameter).
It is the Chinchilla law with equal exponents (alpha = beta = 2 eta) rewritten in (C, M): the
law fixes how far the loss rises as a run is over-trained (M above the compute-optimal ratio).
Inputs are N (all parameters, embeddings included, as Gadre et al. count them) and D (tokens).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from ..law import Law, Param, register

# M = D / N accepted by the over-training laws. Gadre's testbed spans M = 5 ... 640; anything far
# outside [M_MIN, M_MAX] is almost always a unit slip (N in millions/billions, D in billions).
M_MIN, M_MAX = 0.1, 1e5


def check_inputs(df: pd.DataFrame, where: str = "the table") -> None:
    """Raise ScalelawError when N, D (or a given M column) are not positive or M = D/N is off range."""
    for c in ("N", "D"):
        if c not in df.columns:
            continue
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        bad = ~(v > 0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ScalelawError(f"column {c!r} of {where} has value {float(v[k]):g} (row {k}); {c} must be a positive "
                                f"count ({'parameters' if c == 'N' else 'training tokens'}): drop or fix that row")
    if "N" in df.columns and "D" in df.columns:
        N = pd.to_numeric(df["N"], errors="coerce").to_numpy(dtype=float)
        D = pd.to_numeric(df["D"], errors="coerce").to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            M = D / N
        check_M(M, where)
        if "M" in df.columns:
            Mg = pd.to_numeric(df["M"], errors="coerce").to_numpy(dtype=float)
            with np.errstate(all="ignore"):
                off = np.isfinite(Mg) & (np.abs(Mg / M - 1.0) > 0.05)
            if off.any():
                k = int(np.flatnonzero(off)[0])
                raise ScalelawError(f"column 'M' of {where} says {Mg[k]:g} at row {k} but D/N = {M[k]:g}; "
                                    "M must equal D/N (tokens per parameter): fix the M column or the units of N and D")


def check_M(M, where: str = "the input") -> None:
    M = np.atleast_1d(np.asarray(M, dtype=float))
    bad = ~((M >= M_MIN) & (M <= M_MAX))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ScalelawError(f"token multiplier M = D/N = {M[k]:.4g} in {where} (row {k}) is outside [{M_MIN:g}, {M_MAX:g}]; "
                            "check units: N in parameters (not millions or billions), D in tokens")


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Checks the units of N and D; takes no option (Law.check_options refuses any)."""
    check_inputs(df, df.attrs.get("source", "the table"))
    return df


def _terms(N, D, eta):
    lnN, lnD = np.log(N), np.log(D)
    lnM = lnD - lnN
    lnC = math.log(6.0) + lnN + lnD
    up = np.exp(eta * (lnM - lnC))      # M^eta C^-eta
    down = np.exp(-eta * (lnM + lnC))   # M^-eta C^-eta
    return up, down, lnM, lnC


def _overtrain(N, D, E, a, b, eta):
    up, down, _, _ = _terms(N, D, eta)
    return E + a * up + b * down


def _overtrain_jac(N, D, E, a, b, eta):
    up, down, lnM, lnC = _terms(N, D, eta)
    return (1.0, up, down, (lnM - lnC) * (a * up) - (lnM + lnC) * (b * down))


def _optimum(params, compute):
    """Compute-optimal M, N, D and loss for a budget C (minimises a M^eta + b M^-eta)."""
    a, b, eta = params["a"], params["b"], params["eta"]
    C = np.asarray(compute, dtype=float)
    with np.errstate(all="ignore"):
        M = (b / a) ** (1.0 / (2.0 * eta))
        N = np.sqrt(C / (6.0 * M))
        D = M * N
        loss = params["E"] + (a * M ** eta + b * M ** -eta) * C ** -eta
    return {"N_opt": N, "D_opt": D, "M_opt": M * np.ones_like(C), "loss": loss}


def _inverse_D(y, params, N):
    """Tokens D a model of N parameters needs to reach loss y (NaN when y is out of reach)."""
    from scipy.optimize import brentq

    y, N = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(N, dtype=float))
    out = np.full(y.shape, np.nan)
    for i in np.ndindex(y.shape):
        f = lambda lnD: _overtrain(N[i], math.exp(lnD), params["E"], params["a"], params["b"], params["eta"]) - y[i]
        lo, hi = math.log(N[i] * M_MIN), math.log(N[i] * M_MAX)
        if f(lo) > 0 > f(hi):
            out[i] = math.exp(brentq(f, lo, hi, xtol=1e-10))
    return out


OVERTRAIN = register(Law(
    name="overtrain",
    func=_overtrain,
    jac=_overtrain_jac,
    inputs=("N", "D"),
    params=(
        Param("E", 0.0, 1e2, (0.0, 0.5, 1.0), log=True, doc="irreducible loss (nats/token)"),
        Param("a", 0.0, 1e12, (2.0, 4.0, 6.0, 8.0), log=True, doc="scale of the M^eta (under-parameterised) term"),
        Param("b", 0.0, 1e12, (2.0, 4.0, 6.0, 8.0), log=True, doc="scale of the M^-eta (data-limited) term"),
        Param("eta", 0.0, 1.5, (0.05, 0.1, 0.15, 0.25), doc="compute exponent (Chinchilla alpha = beta = 2 eta)"),
    ),
    formula="L = E + (a M^eta + b M^-eta) C^-eta,  C = 6ND, M = D/N",
    citation="Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks "
             "(arXiv:2403.08540); code and data: github.com/mlfoundations/scaling",
    description="Loss vs compute and token multiplier; N counts all parameters (embeddings included).",
    family="loss",
    derived={
        "M_opt": lambda p: (p["b"] / p["a"]) ** (1.0 / (2.0 * p["eta"])),
        "alpha": lambda p: 2.0 * p["eta"],
    },
    optimum=_optimum,
    optimum_args=("compute",),
    inverse=_inverse_D,
    inverse_of="D",
    domain={"N": (1e7, 1e10), "D": (2e9, 5e11)},
    example={"E": 1.84, "a": 212.0, "b": 367.0, "eta": 0.136},
    published={
        # Gadre et al. 2024, Table 6 / mlfoundations/scaling: RedPajama training, C4 validation loss
        "gadre-2024-rpj": {"E": 1.8367, "a": 212.24, "b": 366.69, "eta": 0.1364},
    },
    default_objective="huber-log",
    prepare=_prepare,
    check_inputs=check_inputs,
))
