"""Loss laws: loss as a function of model size, data and compute.

Each law is a declaration; constants marked published were read from the authors' papers,
code or data (sources in the citation strings and in docs/reference.md).
"""
from __future__ import annotations

import numpy as np

from ..law import Law, Param, register

_GRID_AB = tuple(range(0, 30, 5))                       # ln A, ln B in {0, 5, ..., 25}
_GRID_E = (-1.0, -0.5, 0.0, 0.5, 1.0)                   # ln E
_GRID_EXP = (0.0, 0.5, 1.0, 1.5, 2.0)                   # alpha, beta


# ---- Chinchilla (Hoffmann et al. 2022, approach 3) --------------------------------------------
def _chinchilla(N, D, E, A, B, alpha, beta):
    return E + A * np.exp(-alpha * np.log(N)) + B * np.exp(-beta * np.log(D))


def _chinchilla_jac(N, D, E, A, B, alpha, beta):
    tn = np.exp(-alpha * np.log(N))
    td = np.exp(-beta * np.log(D))
    return (1.0, tn, td, -np.log(N) * (A * tn), -np.log(D) * (B * td))


def _alloc(params):
    a, b = params["alpha"], params["beta"]
    G = (a * params["A"] / (b * params["B"])) ** (1.0 / (a + b))
    return G, b / (a + b), a / (a + b)


def _chinchilla_optimum(params, compute, flops_per_token_param: float = 6.0):
    """Compute-optimal N, D and loss for a budget C = 6 N D (Hoffmann et al. eq. 4)."""
    G, ea, eb = _alloc(params)
    x = np.asarray(compute, dtype=float) / flops_per_token_param
    N = G * x ** ea
    D = x / N
    loss = _chinchilla(N, D, params["E"], params["A"], params["B"], params["alpha"], params["beta"])
    return {"N_opt": N, "D_opt": D, "loss": loss}


CHINCHILLA = register(Law(
    name="chinchilla",
    func=_chinchilla,
    jac=_chinchilla_jac,
    inputs=("N", "D"),
    params=(
        Param("E", 0.0, 1e3, _GRID_E, log=True, doc="irreducible loss (nats/token)"),
        Param("A", 0.0, 1e30, _GRID_AB, log=True, doc="model-size term scale"),
        Param("B", 0.0, 1e30, _GRID_AB, log=True, doc="data term scale"),
        Param("alpha", 0.0, 5.0, _GRID_EXP, doc="model-size exponent"),
        Param("beta", 0.0, 5.0, _GRID_EXP, doc="data exponent"),
    ),
    formula="L = E + A/N^alpha + B/D^beta",
    citation="Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (arXiv:2203.15556); "
             "replication: Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt (arXiv:2404.10102)",
    description="Parametric loss in total parameters N and training tokens D; grid of 4,500 starts as Hoffmann et al.",
    derived={
        "a": lambda p: p["beta"] / (p["alpha"] + p["beta"]),
        "b": lambda p: p["alpha"] / (p["alpha"] + p["beta"]),
        "G": lambda p: (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / (p["alpha"] + p["beta"])),
    },
    optimum=_chinchilla_optimum,
    optimum_args=("compute",),
    domain={"N": (1e7, 1e10), "D": (1e8, 1e11)},
    example={"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.36},
    published={
        # Hoffmann et al. 2022, eq. 10 / appendix D.2
        "hoffmann-2022": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
        # Besiroglu et al. 2024, Table 1 (240 points of the reconstructed Figure 4 data)
        "epoch-2024": {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
    },
))


# ---- Compute frontier: L(C) = E + A C^-gamma --------------------------------------------------
def _compute(C, E, A, gamma):
    return E + A * np.exp(-gamma * np.log(C))


def _compute_jac(C, E, A, gamma):
    t = np.exp(-gamma * np.log(C))
    return (1.0, t, -np.log(C) * (A * t))


def _compute_inverse(y, params):
    """Compute needed to reach loss y."""
    with np.errstate(all="ignore"):
        return np.exp(np.log((np.asarray(y) - params["E"]) / params["A"]) / -params["gamma"])


COMPUTE = register(Law(
    name="compute",
    func=_compute,
    jac=_compute_jac,
    inputs=("C",),
    params=(
        Param("E", 0.0, 1e3, _GRID_E, log=True, doc="irreducible loss"),
        Param("A", 0.0, 1e300, tuple(range(0, 45, 5)), log=True, doc="scale"),
        Param("gamma", 0.0, 3.0, (0.02, 0.05, 0.1, 0.2, 0.4, 0.8), doc="compute exponent"),
    ),
    formula="L = E + A * C^-gamma",
    citation="Compute-frontier power law with offset, e.g. Henighan et al. 2020; Zhai et al. 2024 (HSTU)",
    description="Loss of the compute-efficient frontier against training FLOPs C.",
    inverse=_compute_inverse,
    inverse_of="C",
    domain={"C": (1e17, 1e22)},
    example={"E": 1.7, "A": 300.0, "gamma": 0.12},
))
