"""Loss laws in further axes: vocabulary size, expert count, parallel streams, fine-tuning data.

Each is a declaration with its citation; the functional forms were checked against the papers
(docs/laws.md lists the sources). New canonical inputs (scalelaw/schema.py): ``V`` (vocabulary
size, tokens), ``experts`` (experts per MoE layer; 1 = dense) and ``P`` (parallel streams).
"""
from __future__ import annotations

import math

import numpy as np

from ..law import Law, Param, register

_LN10 = math.log(10.0)


# =============================================================================================
# Vocabulary (Tao et al. 2024): L = E + A/N^alpha + B/V^beta + C/D^gamma
# =============================================================================================
def _vocab(N, V, D, E, A, B, C, alpha, beta, gamma):
    return (E + A * np.exp(-alpha * np.log(N)) + B * np.exp(-beta * np.log(V))
            + C * np.exp(-gamma * np.log(D)))


def _vocab_jac(N, V, D, E, A, B, C, alpha, beta, gamma):
    lnN, lnV, lnD = np.log(N), np.log(V), np.log(D)
    tn, tv, td = np.exp(-alpha * lnN), np.exp(-beta * lnV), np.exp(-gamma * lnD)
    return (1.0, tn, tv, td, -lnN * (A * tn), -lnV * (B * tv), -lnD * (C * td))


VOCAB = register(Law(
    name="vocab",
    linear=('E', 'A', 'B', 'C'),
    func=_vocab,
    jac=_vocab_jac,
    inputs=("N", "V", "D"),
    params=(
        Param("E", -1e3, 1e3, (-1.0, 1.5),
              doc="irreducible loss (negative for Tao's unigram-normalised loss L_u)"),
        Param("A", 0.0, 1e30, (0.0, 5.0, 10.0), log=True, doc="model-size term scale"),
        Param("B", 0.0, 1e30, (-2.0, 2.0), log=True, doc="vocabulary term scale"),
        Param("C", 0.0, 1e30, (0.0, 5.0, 10.0), log=True, doc="data term scale"),
        Param("alpha", 0.0, 5.0, (0.2, 0.5), doc="model-size exponent"),
        Param("beta", 0.0, 5.0, (0.2, 0.6), doc="vocabulary exponent"),
        Param("gamma", 0.0, 5.0, (0.2, 0.5), doc="data exponent"),
    ),
    formula="L = E + A/N^alpha + B/V^beta + C/D^gamma",
    citation="Tao et al. 2024, Scaling Laws with Vocabulary: Larger Models Deserve Larger Vocabularies "
             "(arXiv:2407.13623), section 3.3 (parametric fit of the loss)",
    description="Loss against model size N, vocabulary size V (column V, tokens) and training data D. "
                "Tao et al. fit L_u = -E + A1/N_nv^alpha1 + A2/N_v^alpha2 + B/D^beta with N_nv the "
                "non-vocabulary parameters, N_v = V x embedding width and D in characters; with a fixed "
                "width N_v is proportional to V, so this is their law with the width folded into B. Map "
                "N to non-vocabulary parameters to follow them. E is not sign-constrained: their "
                "unigram-normalised loss is negative (fit it with --objective lsq).",
    default_objective="huber-log",
    domain={"N": (3e7, 3e9), "V": (4e3, 5e5), "D": (1e9, 1e12)},
    example={"E": 1.6, "A": 300.0, "B": 4.0, "C": 900.0, "alpha": 0.33, "beta": 0.4, "gamma": 0.3},
))


# =============================================================================================
# Mixture of experts (Clark et al. 2022): log L = a log N + b log E^ + c log N log E^ + d
# =============================================================================================
def _moe_parts(experts, E_start, E_max):
    """1/E^ = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max and its pieces."""
    s = 1.0 / E_start - 1.0 / E_max
    K = 1.0 / s
    g = experts - 1.0 + K
    q = 1.0 / g + 1.0 / E_max                # 1 / E^
    return s, K, g, q


def _moe(N, experts, a, b, c, d, E_start, E_max):
    _, _, _, q = _moe_parts(experts, E_start, E_max)
    u = np.log10(N)
    v = -np.log10(q)                         # log10 E^
    return np.exp(_LN10 * (a * u + b * v + c * u * v + d))


def _moe_jac(N, experts, a, b, c, d, E_start, E_max):
    s, K, g, q = _moe_parts(experts, E_start, E_max)
    u = np.log10(N)
    v = -np.log10(q)
    L = np.exp(_LN10 * (a * u + b * v + c * u * v + d))
    dLdv = L * _LN10 * (b + c * u)
    dv_dq = -1.0 / (q * _LN10)
    dq_dK = -1.0 / (g * g)
    dK_dstart = 1.0 / (s * s * E_start * E_start)
    dK_dmax = -1.0 / (s * s * E_max * E_max)
    dq_dstart = dq_dK * dK_dstart
    dq_dmax = dq_dK * dK_dmax - 1.0 / (E_max * E_max)
    return (L * _LN10 * u, L * _LN10 * v, L * _LN10 * u * v, L * _LN10,
            dLdv * dv_dq * dq_dstart, dLdv * dv_dq * dq_dmax)


MOE = register(Law(
    name="moe",
    func=_moe,
    jac=_moe_jac,
    inputs=("N", "experts"),
    params=(
        Param("a", -2.0, 2.0, (-0.1, -0.05), doc="log-log slope in dense size N"),
        Param("b", -2.0, 2.0, (-0.1, 0.0), doc="log-log slope in the (saturating) expert count"),
        Param("c", -1.0, 1.0, (0.0, 0.01), doc="interaction of log N and log E^"),
        Param("d", -10.0, 10.0, (0.5, 1.0, 1.5), doc="intercept (log10 of the loss at N = 1, E^ = 1)"),
        Param("E_start", 1e-3, 1e3, (0.0, 1.0), log=True,
              doc="expert count where saturation starts (E^ = E_start for a dense model)"),
        Param("E_max", 1.0, 1e7, (5.0, 7.0), log=True, doc="expert count where returns vanish"),
    ),
    formula="log10 L = a log10 N + b log10 E^ + c log10 N log10 E^ + d,  "
            "1/E^ = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max",
    citation="Clark et al. 2022, Unified Scaling Laws for Routed Language Models (ICML 2022, "
             "arXiv:2202.01169), eqs. 1 and 8 (saturating expert count)",
    description="Loss of routed (mixture-of-experts) models against the dense model size N (parameters "
                "of the underlying dense model, i.e. active parameters) and the number of experts E "
                "(column experts; E = 1 is the dense model). Logs are base 10 as in the paper; E_start "
                "must stay below E_max.",
    domain={"N": (1e7, 1e10), "experts": (1.0, 512.0)},
    # magnitudes of the kind Clark et al. report for S-BASE, NOT verified against their table:
    # contract-test values only, hence no ``published`` label
    example={"a": -0.082, "b": -0.108, "c": 0.009, "d": 1.104, "E_start": 1.85, "E_max": 315.0},
))


# =============================================================================================
# Fine-tuning data (Lin et al. 2024): L(D) = B/(D_l + D^beta) + E
# =============================================================================================
def _finetune(D, B, D_l, beta, E):
    return B / (D_l + np.exp(beta * np.log(D))) + E


def _finetune_jac(D, B, D_l, beta, E):
    lnD = np.log(D)
    Db = np.exp(beta * lnD)
    den = D_l + Db
    return (1.0 / den, -B / (den * den), -B * Db * lnD / (den * den), 1.0)


def _finetune_inverse(y, params):
    """Fine-tuning data needed to reach loss y (NaN where y is at or below E, or needs D^beta < 0)."""
    with np.errstate(all="ignore"):
        x = params["B"] / (np.asarray(y, dtype=float) - params["E"]) - params["D_l"]
        return np.where(x > 0, np.exp(np.log(x) / params["beta"]), np.nan)


FINETUNE = register(Law(
    name="finetune",
    linear=('B', 'E'),
    func=_finetune,
    jac=_finetune_jac,
    inputs=("D",),
    params=(
        Param("B", 0.0, 1e30, (0.0, 3.0, 6.0, 9.0), log=True, doc="scale of the data term"),
        Param("D_l", 0.0, 1e30, (-2.0, 2.0, 6.0), log=True,
              doc="pre-learned data size, in units of D^beta (what pre-training already taught)"),
        Param("beta", 0.0, 3.0, (0.2, 0.5, 1.0), doc="data exponent"),
        Param("E", 0.0, 1e3, (-1.0, 0.0, 0.5), log=True, doc="loss with unlimited fine-tuning data"),
    ),
    formula="L = B/(D_l + D^beta) + E",
    citation="Lin et al. 2024, Selecting Large Language Model to Fine-tune via Rectified Scaling Law "
             "(ICML 2024, arXiv:2402.02314), eq. 2",
    description="Fine-tuning loss against the fine-tuning data size D (column D: tokens, or examples "
                "declared with --map D=<column>). D_l, the 'pre-learned data size', bends the small-D "
                "end into the pre-power phase a pure power law misses.",
    inverse=_finetune_inverse,
    inverse_of="D",
    domain={"D": (1e3, 1e8)},
    example={"B": 120.0, "D_l": 40.0, "beta": 0.45, "E": 1.1},
))


# =============================================================================================
# Parallel scaling (Chen et al. 2025): L = E + (A / (N (k ln P + 1)))^alpha
# =============================================================================================
def _parallel(N, P, E, A, k, alpha):
    m = k * np.log(P) + 1.0
    return E + np.exp(alpha * (np.log(A) - np.log(N) - np.log(m)))


def _parallel_jac(N, P, E, A, k, alpha):
    lnP = np.log(P)
    m = k * lnP + 1.0
    lr = np.log(A) - np.log(N) - np.log(m)
    T = np.exp(alpha * lr)
    return (1.0, alpha * T / A, -alpha * T * lnP / m, T * lr)


def _parallel_equivalent_n(params, N, P):
    """Size of the single-stream model that matches N with P streams: N (k ln P + 1)."""
    return np.asarray(N, dtype=float) * (params["k"] * np.log(np.asarray(P, dtype=float)) + 1.0)


PARALLEL = register(Law(
    name="parallel",
    linear=('E',),
    func=_parallel,
    jac=_parallel_jac,
    inputs=("N", "P"),
    params=(
        Param("E", 0.0, 1e3, (-1.0, 0.0, 0.5), log=True, doc="irreducible loss"),
        Param("A", 0.0, 1e300, (10.0, 15.0, 20.0), log=True, doc="scale (parameters)"),
        Param("k", 0.0, 10.0, (0.1, 0.4, 1.0), doc="gain per unit of ln P: P streams act as N (k ln P + 1)"),
        Param("alpha", 0.0, 3.0, (0.1, 0.2, 0.4), doc="model-size exponent"),
    ),
    formula="L = E + (A / (N (k ln P + 1)))^alpha",
    citation="Chen et al. 2025, Parallel Scaling Law for Language Models (ParScale, arXiv:2505.10475), eq. 5",
    description="Loss against parameters N and the number of parallel streams P (column P; 1 = an "
                "ordinary model): P streams are worth a model (k ln P + 1) times larger. Chen et al. "
                "fit it on Stack-V2-Python and the Pile with P from 1 to 8 and N from 0.5B to 4.4B.",
    derived={"size_gain_P8": lambda p: p["k"] * np.log(8.0) + 1.0},
    domain={"N": (5e8, 5e9), "P": (1.0, 8.0)},
    example={"E": 1.4, "A": 1.4e8, "k": 0.35, "alpha": 0.22},
))
