"""Capacity-density laws (Densing Law, Xiao et al. 2024, arXiv:2412.04315).

Two declarations:

* ``density_loss``: the reference family's loss law L(N, D) = A N^-alpha + B D^-beta + E
  (the paper's form has no E: fit with ``fixed={"E": 0}``, the default of
  :mod:`scalelaw.analysis.density`).
* ``density_score``: the one-step variant used when only benchmark scores are available. The
  loss is a latent quantity and the score is the composition of the loss law with the
  loss -> score sigmoid ``S = c / (1 + exp(-gamma (L - l0))) + d``. The latent loss has no
  scale or origin of its own, so ``gamma`` is -1 (the loss is measured in logit units) and
  ``E`` 0 (absorbed by ``l0``); the floor ``d`` is the benchmark's random baseline (an input
  column, ``baseline``) and the ceiling ``c + d`` is 1. Free: A, alpha, B, beta, l0.

``loss_from_score`` and ``effective_size`` invert the chain: score -> loss -> N at a reference
token budget D_ref. They take the two-step parameter set; ``one_step_chain`` maps a
density_score fit onto it.
"""
from __future__ import annotations

import numpy as np

from ..law import Law, Param, register
from .loss import _chinchilla, _chinchilla_jac

CITATION = ("Xiao et al. 2024, Densing Law of LLMs (arXiv:2412.04315); journal version: "
            "Nature Machine Intelligence 2025")

_GRID_LNA = (0.0, 2.5, 5.0, 7.5, 10.0, 15.0)
_GRID_EXP = (0.05, 0.1, 0.2, 0.4, 0.8)


def _loss(N, D, A, alpha, B, beta, E):
    return _chinchilla(N, D, E, A, B, alpha, beta)     # the Chinchilla law, parameters reordered


def _loss_jac(N, D, A, alpha, B, beta, E):
    dE, dA, dB, dalpha, dbeta = _chinchilla_jac(N, D, E, A, B, alpha, beta)
    return (dA, dalpha, dB, dbeta, dE)


DENSITY_LOSS = register(Law(
    name="density_loss",
    linear=('A', 'B', 'E'),
    func=_loss,
    jac=_loss_jac,
    inputs=("N", "D"),
    params=(
        Param("A", 0.0, 1e30, tuple(range(0, 30, 5)), log=True, doc="model-size term scale"),
        Param("alpha", 0.0, 5.0, (0.0, 0.5, 1.0, 1.5, 2.0), doc="model-size exponent"),
        Param("B", 0.0, 1e30, tuple(range(0, 30, 5)), log=True, doc="data term scale"),
        Param("beta", 0.0, 5.0, (0.0, 0.5, 1.0, 1.5, 2.0), doc="data exponent"),
        Param("E", 0.0, 1e3, (-1.0, 0.0, 1.0), log=True,
              doc="irreducible loss (the paper has none: fix E=0)"),
    ),
    formula="L = A N^-alpha + B D^-beta [+ E]",
    citation=CITATION,
    description="Loss of the reference family (step 1 of the density estimate); the paper fits "
                "it on the conditional loss of reference models on each benchmark.",
    family="density",
    domain={"N": (1e7, 1e10), "D": (1e9, 1e12)},
    example={"A": 300.0, "alpha": 0.3, "B": 400.0, "beta": 0.28, "E": 1.5},
))


def _score(N, D, baseline, A, alpha, B, beta, l0):
    L = _chinchilla(N, D, 0.0, A, B, alpha, beta)
    return baseline + (1.0 - baseline) / (1.0 + np.exp(L - l0))


def _score_jac(N, D, baseline, A, alpha, B, beta, l0):
    _, tn, td, dalpha, dbeta = _chinchilla_jac(N, D, 0.0, A, B, alpha, beta)
    L = A * tn + B * td
    s = 1.0 / (1.0 + np.exp(L - l0))
    dL = -(1.0 - baseline) * s * (1.0 - s)      # d S / d L
    return (dL * tn, dL * dalpha, dL * td, dL * dbeta, -dL)


DENSITY_SCORE = register(Law(
    name="density_score",
    func=_score,
    jac=_score_jac,
    inputs=("N", "D", "baseline"),
    params=(
        Param("A", 0.0, 1e30, _GRID_LNA, log=True, doc="model-size term scale (latent loss)"),
        Param("alpha", 0.0, 3.0, _GRID_EXP, doc="model-size exponent"),
        Param("B", 0.0, 1e30, _GRID_LNA, log=True, doc="data term scale (latent loss)"),
        Param("beta", 0.0, 3.0, _GRID_EXP, doc="data exponent"),
        Param("l0", -50.0, 50.0, (-2.0, 0.0, 2.0, 4.0, 8.0), doc="sigmoid midpoint (latent loss)"),
    ),
    target="score",
    formula="S = b + (1 - b) / (1 + exp(A N^-alpha + B D^-beta - l0)), b = random baseline",
    citation=CITATION,
    description="One-step density estimate from scores alone: the loss law composed with the "
                "loss -> score sigmoid, the loss being latent. It is the two-step chain with "
                "gamma = -1 (sets the latent loss scale), E = 0 (absorbed by l0), floor d = b (the "
                "benchmark's random baseline, an input column) and ceiling c + d = 1.",
    family="density",
    default_objective="lsq",
    positive_target=False,
    domain={"N": (1e8, 1e11), "D": (1e10, 1e13), "baseline": (0.1, 0.5)},
    example={"A": 40.0, "alpha": 0.2, "B": 30.0, "beta": 0.15, "l0": 2.0},
))


def one_step_chain(params, baseline: float) -> dict:
    """The two-step parameter set (A, alpha, B, beta, E, c, gamma, l0, d) equivalent to a
    density_score fit on a benchmark with random baseline ``baseline``."""
    return {**{k: params[k] for k in ("A", "alpha", "B", "beta", "l0")},
            "E": 0.0, "gamma": -1.0, "c": 1.0 - baseline, "d": baseline}



def loss_from_score(score, params, eps: float = 0.0):
    """Invert the sigmoid: the (latent) loss at which the reference reaches ``score``.

    NaN where the score is outside the sigmoid's open range (d, d + c).
    """
    s = np.asarray(score, dtype=float)
    c, g, l0, d = (np.asarray(params[k], dtype=float) for k in ("c", "gamma", "l0", "d"))
    u = (s - d) / c
    with np.errstate(all="ignore"):
        L = l0 - np.log(1.0 / u - 1.0) / g
    return np.where((u > eps) & (u < 1.0 - eps), L, np.nan)


def effective_size(score, params, D_ref):
    """Effective parameter count: N at which the reference law, trained on ``D_ref`` tokens,
    reaches ``score``. +inf where the score lies above what any N reaches at D_ref, NaN where
    the score cannot be inverted (at or beyond the sigmoid's floor or ceiling)."""
    L = loss_from_score(score, params)
    A, alpha, B, beta, E = (np.asarray(params[k], dtype=float) for k in ("A", "alpha", "B", "beta", "E"))
    with np.errstate(all="ignore"):
        gap = L - E - B * np.exp(-beta * np.log(D_ref))
        N = np.exp(np.log(A / gap) / alpha)
    N = np.where(np.isfinite(L) & (gap <= 0), np.inf, N)
    return np.where(np.isfinite(L), N, np.nan)
