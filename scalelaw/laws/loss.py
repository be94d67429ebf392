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
    lnN, lnD = np.log(N), np.log(D)
    tn = np.exp(-alpha * lnN)
    td = np.exp(-beta * lnD)
    return (1.0, tn, td, -lnN * (A * tn), -lnD * (B * td))


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
    linear=('E', 'A', 'B'),
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
    linear=('E', 'A'),
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


# =============================================================================================
# Kaplan et al. 2020: pure power laws in NON-EMBEDDING parameters (input column N_nonembed)
# =============================================================================================
KAPLAN_CITATION = ("Kaplan et al. 2020, Scaling Laws for Neural Language Models (arXiv:2001.08361), "
                   "eqs. 1.1-1.6 and Table 1")
_GRID_LNC = (20.0, 25.0, 30.0, 35.0)                    # ln Nc, ln Dc: Nc ~ 1e9 ... 1e15
_GRID_KEXP = (0.03, 0.08, 0.2, 0.5)                     # small Kaplan exponents
_NONEMBED_DOC = ("N_nonembed = non-embedding parameters (Kaplan counts exclude token and position "
                 "embeddings); map yours with --map N_nonembed=<column>")


def _pow_ratio(c, x, a):
    """(c / x)^a computed in logs (c, x > 0)."""
    return np.exp(a * (np.log(c) - np.log(x)))


def _pow_ratio_jac(c, x, a):
    """d/dc and d/da of (c / x)^a, the log ratio taken once."""
    ln = np.log(c) - np.log(x)
    L = np.exp(a * ln)
    return (a * L / c, L * ln)


def _pow_ratio_inverse(y, c, a):
    """x with (c / x)^a = y."""
    y = np.asarray(y, dtype=float)
    with np.errstate(all="ignore"):
        return c * np.exp(-np.log(y) / a)


def _kaplan_n(N_nonembed, Nc, alpha_N):
    return _pow_ratio(Nc, N_nonembed, alpha_N)


def _kaplan_n_jac(N_nonembed, Nc, alpha_N):
    return _pow_ratio_jac(Nc, N_nonembed, alpha_N)


def _kaplan_n_inverse(y, params):
    """Non-embedding N that reaches loss y."""
    return _pow_ratio_inverse(y, params["Nc"], params["alpha_N"])


KAPLAN_N = register(Law(
    name="kaplan_n",
    func=_kaplan_n,
    jac=_kaplan_n_jac,
    inputs=("N_nonembed",),
    params=(
        Param("Nc", 0.0, 1e30, _GRID_LNC, log=True, doc="critical size (non-embedding parameters)"),
        Param("alpha_N", 0.0, 3.0, _GRID_KEXP, doc="model-size exponent"),
    ),
    formula="L = (Nc / N)^alpha_N   (N non-embedding; trained to convergence)",
    citation=KAPLAN_CITATION,
    description="Loss of models trained to convergence (early-stopped) against non-embedding size. " + _NONEMBED_DOC,
    inverse=_kaplan_n_inverse,
    inverse_of="N_nonembed",
    domain={"N_nonembed": (1e6, 1e10)},
    example={"Nc": 8.8e13, "alpha_N": 0.076},
    published={"kaplan-2020-n": {"Nc": 8.8e13, "alpha_N": 0.076}},
))


def _kaplan_d(D, Dc, alpha_D):
    return _pow_ratio(Dc, D, alpha_D)


def _kaplan_d_jac(D, Dc, alpha_D):
    return _pow_ratio_jac(Dc, D, alpha_D)


def _kaplan_d_inverse(y, params):
    """Tokens that reach loss y (large model, early stopping)."""
    return _pow_ratio_inverse(y, params["Dc"], params["alpha_D"])


KAPLAN_D = register(Law(
    name="kaplan_d",
    func=_kaplan_d,
    jac=_kaplan_d_jac,
    inputs=("D",),
    params=(
        Param("Dc", 0.0, 1e30, _GRID_LNC, log=True, doc="critical dataset size (tokens)"),
        Param("alpha_D", 0.0, 3.0, _GRID_KEXP, doc="data exponent"),
    ),
    formula="L = (Dc / D)^alpha_D   (large models, early stopping)",
    citation=KAPLAN_CITATION,
    description="Loss of large models trained with early stopping against dataset size D (tokens).",
    inverse=_kaplan_d_inverse,
    inverse_of="D",
    domain={"D": (1e7, 1e11)},
    example={"Dc": 5.4e13, "alpha_D": 0.095},
    published={"kaplan-2020-d": {"Dc": 5.4e13, "alpha_D": 0.095}},
))


def _kaplan_nd(N_nonembed, D, Nc, Dc, alpha_N, alpha_D):
    s = _pow_ratio(Nc, N_nonembed, alpha_N / alpha_D) + Dc / D
    return np.exp(alpha_D * np.log(s))


def _kaplan_nd_jac(N_nonembed, D, Nc, Dc, alpha_N, alpha_D):
    ln = np.log(Nc) - np.log(N_nonembed)
    u = np.exp((alpha_N / alpha_D) * ln)
    s = u + Dc / D
    L = np.exp(alpha_D * np.log(s))
    g = L / s                                   # s^(alpha_D - 1)
    return (alpha_N * g * u / Nc,
            alpha_D * g / D,
            g * u * ln,
            L * np.log(s) - g * u * ln * alpha_N / alpha_D)


def _kaplan_nd_inverse(y, params, D):
    """Non-embedding N that reaches loss y with D tokens (NaN when D alone cannot)."""
    y = np.asarray(y, dtype=float)
    with np.errstate(all="ignore"):
        rest = np.exp(np.log(y) / params["alpha_D"]) - params["Dc"] / np.asarray(D, dtype=float)
        out = params["Nc"] * np.exp(-np.log(rest) * params["alpha_D"] / params["alpha_N"])
    return np.where(rest > 0, out, np.nan)


KAPLAN_ND = register(Law(
    name="kaplan_nd",
    func=_kaplan_nd,
    jac=_kaplan_nd_jac,
    inputs=("N_nonembed", "D"),
    params=(
        Param("Nc", 0.0, 1e30, _GRID_LNC, log=True, doc="critical size (non-embedding parameters)"),
        Param("Dc", 0.0, 1e30, _GRID_LNC, log=True, doc="critical dataset size (tokens)"),
        Param("alpha_N", 0.0, 3.0, (0.04, 0.1, 0.3), doc="model-size exponent"),
        Param("alpha_D", 0.0, 3.0, (0.04, 0.1, 0.3), doc="data exponent"),
    ),
    formula="L = [(Nc / N)^(alpha_N / alpha_D) + Dc / D]^alpha_D   (N non-embedding)",
    citation=KAPLAN_CITATION + " (eq. 1.5)",
    description="Joint size/data law with early stopping (overfitting regime). " + _NONEMBED_DOC,
    inverse=_kaplan_nd_inverse,
    inverse_of="N_nonembed",
    domain={"N_nonembed": (1e6, 1e10), "D": (1e8, 1e11)},
    example={"Nc": 6.4e13, "Dc": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
    published={"kaplan-2020-nd": {"Nc": 6.4e13, "Dc": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}},
))


def _kaplan_curve(N_nonembed, S_min, Nc, Sc, alpha_N, alpha_S):
    return _pow_ratio(Nc, N_nonembed, alpha_N) + _pow_ratio(Sc, S_min, alpha_S)


def _kaplan_curve_jac(N_nonembed, S_min, Nc, Sc, alpha_N, alpha_S):
    d_nc, d_an = _pow_ratio_jac(Nc, N_nonembed, alpha_N)
    d_sc, d_as = _pow_ratio_jac(Sc, S_min, alpha_S)
    return (d_nc, d_sc, d_an, d_as)


def _kaplan_curve_inverse(y, params, N_nonembed):
    """S_min (optimisation steps at B >> B_crit) needed to reach loss y at size N (NaN when never)."""
    y = np.asarray(y, dtype=float)
    floor = _pow_ratio(params["Nc"], np.asarray(N_nonembed, dtype=float), params["alpha_N"])
    with np.errstate(all="ignore"):
        out = params["Sc"] * np.exp(-np.log(y - floor) / params["alpha_S"])
    return np.where(y > floor, out, np.nan)


KAPLAN_CURVE = register(Law(
    name="kaplan_curve",
    func=_kaplan_curve,
    jac=_kaplan_curve_jac,
    inputs=("N_nonembed", "S_min"),
    params=(
        Param("Nc", 0.0, 1e30, _GRID_LNC, log=True, doc="critical size (non-embedding parameters)"),
        Param("Sc", 0.0, 1e30, (5.0, 8.0, 12.0), log=True, doc="critical number of steps"),
        Param("alpha_N", 0.0, 3.0, (0.04, 0.1, 0.3), doc="model-size exponent"),
        Param("alpha_S", 0.0, 5.0, (0.3, 0.8, 1.5), doc="steps exponent"),
    ),
    formula="L = (Nc / N)^alpha_N + (Sc / S_min)^alpha_S   (N non-embedding; S_min = S / (1 + B_crit(L)/B))",
    citation=KAPLAN_CITATION + " (eq. 1.6, 5.5); fitted on small models by Su et al. 2024, Unraveling the "
             "Mystery of Scaling Laws: Part I (arXiv:2403.06563)",
    description="Learning curve in the minimal number of steps S_min (column S_min: steps the run would "
                "need at a batch far above the critical batch; compute it from steps S, batch B and the "
                "loss with scalelaw.analysis.trajectory.s_min). " + _NONEMBED_DOC,
    inverse=_kaplan_curve_inverse,
    inverse_of="S_min",
    domain={"N_nonembed": (1e6, 1e10), "S_min": (1e3, 1e6)},
    example={"Nc": 6.5e13, "Sc": 2.1e3, "alpha_N": 0.077, "alpha_S": 0.76},
    published={"kaplan-2020-curve": {"Nc": 6.5e13, "Sc": 2.1e3, "alpha_N": 0.077, "alpha_S": 0.76}},
))


# =============================================================================================
# Data-constrained scaling (Muennighoff et al. 2023)
# =============================================================================================
def _dc_terms(N, D, U, A, B, alpha, beta, R_D, R_N):
    """Effective data D' and effective parameters N' (Muennighoff et al. eqs. 5-6).

    U_N, the unique parameters, is the compute-optimal size for U unique tokens under the
    Chinchilla allocation (datablations README): U_N = min(N, G (U G)^(beta/alpha)),
    G = (alpha A / (beta B))^(1/(alpha+beta)); R_N = N/U_N - 1 and R_D = D/U - 1 (>= 0).
    U above D means no repetition (U is capped at D).
    """
    U = np.minimum(U, D)
    lnG = (np.log(alpha * A) - np.log(beta * B)) / (alpha + beta)
    ln_un = lnG + (beta / alpha) * (np.log(U) + lnG)
    lnN = np.log(N)
    ln_un = np.minimum(lnN, ln_un)
    RD = np.maximum(D / U - 1.0, 0.0)
    RN = np.maximum(np.exp(lnN - ln_un) - 1.0, 0.0)
    Dp = U * (1.0 - R_D * np.expm1(-RD / R_D))
    ln_np = ln_un + np.log1p(-R_N * np.expm1(-RN / R_N))
    return Dp, ln_np


def _data_constrained(N, D, U, E, A, B, alpha, beta, R_D, R_N):
    Dp, ln_np = _dc_terms(N, D, U, A, B, alpha, beta, R_D, R_N)
    return E + A * np.exp(-alpha * ln_np) + B * np.exp(-beta * np.log(Dp))


def _golden_min(fun, lo, hi, iters=80):
    """Vectorised golden-section minimisation of fun(x) on [lo, hi] (arrays)."""
    g = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = np.array(lo, dtype=float), np.array(hi, dtype=float)
    c = b - g * (b - a)
    d = a + g * (b - a)
    fc, fd = fun(c), fun(d)
    for _ in range(iters):
        left = fc < fd
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c_new = b - g * (b - a)
        d_new = a + g * (b - a)
        c, d = np.where(left, c_new, d), np.where(left, c, d_new)
        fc_new, fd_new = fun(c), fun(d)
        fc, fd = np.where(left, fc_new, fd), np.where(left, fc, fd_new)
    return 0.5 * (a + b)


def _data_constrained_optimum(params, compute, U, flops_per_token_param: float = 6.0):
    """Compute-optimal N, D (and epochs D/U) for budget C = 6 N D with U unique tokens.

    The law has no closed form (datablations README uses a grid search); we scan ln N on a grid
    around the unconstrained optimum and refine with golden-section search, vectorised over
    parameter samples.
    """
    p = {k: np.asarray(params[k], dtype=float) for k in ("E", "A", "B", "alpha", "beta", "R_D", "R_N")}
    x = np.asarray(compute, dtype=float) / flops_per_token_param
    U = np.asarray(U, dtype=float)
    shape = np.broadcast(x, U, *p.values()).shape
    x, U = np.broadcast_to(x, shape).ravel(), np.broadcast_to(U, shape).ravel()
    q = {k: np.broadcast_to(v, shape).ravel() for k, v in p.items()}
    lx = np.log(x)

    def loss_at(lnN):  # lnN (m, k) with k grid points
        N = np.exp(lnN)
        D = x[:, None] / N
        with np.errstate(all="ignore"):
            out = _data_constrained(N, D, U[:, None], *(q[k][:, None] for k in
                                                         ("E", "A", "B", "alpha", "beta", "R_D", "R_N")))
        return np.where(np.isfinite(out), out, np.inf)

    grid = np.linspace(-0.5, 0.5, 121)[None, :]          # ln N as a fraction of ln(C/6) around 1/2
    lnN = 0.5 * lx[:, None] + grid * lx[:, None]
    vals = loss_at(lnN)
    k = np.argmin(vals, axis=1)
    step = lnN[:, 1] - lnN[:, 0]
    centre = lnN[np.arange(len(k)), k]
    best = _golden_min(lambda t: loss_at(t[:, None])[:, 0], centre - step, centre + step)
    N = np.exp(best)
    D = x / N
    loss = loss_at(best[:, None])[:, 0]
    r = lambda v: v.reshape(shape) if shape else v[0]
    return {"N_opt": r(N), "D_opt": r(D), "epochs": r(D / U), "loss": r(loss)}


_DC_PUBLISHED = {"E": float(np.exp(0.6254804)), "A": float(np.exp(6.255414)), "B": float(np.exp(7.3049974)),
                 "alpha": 0.3526596, "beta": 0.3526596, "R_D": 15.387756, "R_N": 5.309743}

DATA_CONSTRAINED = register(Law(
    name="data_constrained",
    func=_data_constrained,
    inputs=("N", "D", "U"),
    params=(
        Param("E", 0.0, 1e3, (-0.5, 0.5), log=True, doc="irreducible loss"),
        Param("A", 0.0, 1e30, (2.0, 6.0, 10.0), log=True, doc="model-size term scale"),
        Param("B", 0.0, 1e30, (2.0, 6.0, 10.0), log=True, doc="data term scale"),
        Param("alpha", 0.01, 3.0, (0.25, 0.5), doc="model-size exponent (Muennighoff tie alpha = beta)"),
        Param("beta", 0.01, 3.0, (0.25, 0.5), doc="data exponent"),
        Param("R_D", 0.01, 1e4, (1.5, 3.5), log=True,
              doc="R_D*: repetitions of the data after which repeated tokens are worth 1/e of new ones"),
        Param("R_N", 0.01, 1e4, (1.5, 3.5), log=True,
              doc="R_N*: the same for excess parameters beyond the compute-optimal size for U"),
    ),
    formula="L = E + A / N'^alpha + B / D'^beta;  D' = U + U R_D (1 - exp(-R/R_D)), R = D/U - 1;  "
            "N' = U_N + U_N R_N (1 - exp(-R_N'/R_N)), U_N = min(N, N_opt(U)), R_N' = N/U_N - 1",
    citation="Muennighoff et al. 2023, Scaling Data-Constrained Language Models (arXiv:2305.16264), eqs. 5-7; "
             "constants and U_N from github.com/huggingface/datablations (README, Parametric Fit)",
    description="Chinchilla law with diminishing returns of repeated data (U unique tokens, column U) "
                "and of parameters beyond the compute-optimal size for U. N counts all parameters. "
                "Muennighoff et al. tie alpha = beta; to reproduce, fix one (--fix) or fit both.",
    optimum=_data_constrained_optimum,
    optimum_args=("compute", "U"),
    domain={"N": (1e7, 1e10), "D": (1e9, 1e12), "U": (1e8, 1e11)},
    example=dict(_DC_PUBLISHED),
    published={"muennighoff-2023": dict(_DC_PUBLISHED)},
))


# =============================================================================================
# Broken neural scaling law (Caballero et al. 2023)
# =============================================================================================
def _bnsl_value(x, a, b, c0, breaks):
    lx = np.log(x)
    lt = np.log(b) - c0 * lx
    for c, d, f in breaks:
        lt = lt - (c * f) * np.logaddexp(0.0, (lx - np.log(d)) / f)
    return a + np.exp(lt)


def make_bnsl(n_breaks: int, name: str | None = None, input: str = "C") -> Law:
    """Build a broken power law with ``n_breaks`` breaks on input column ``input``.

    y = a + b x^-c0 prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i), evaluated in logs of x (softplus)
    so that large x and sharp breaks stay finite. Parameters: a, b, c0, then c_i, d_i, f_i.
    """
    import inspect as _inspect

    names = ["a", "b", "c0"] + [f"{k}{i}" for i in range(1, n_breaks + 1) for k in ("c", "d", "f")]

    def func(*args):
        x, a, b, c0 = args[0], args[1], args[2], args[3]
        rest = args[4:]
        return _bnsl_value(x, a, b, c0, [rest[3 * i: 3 * i + 3] for i in range(n_breaks)])

    P = _inspect.Parameter
    func.__signature__ = _inspect.Signature([P(n, P.POSITIONAL_OR_KEYWORD) for n in [input] + names])
    func.__name__ = f"_bnsl{n_breaks}"

    def jac(*args):
        x, b, c0 = args[0], args[2], args[3]
        rest = args[4:]
        lx = np.log(x)
        lt = np.log(b) - c0 * lx
        parts = []
        for i in range(n_breaks):
            c, d, f = rest[3 * i: 3 * i + 3]
            z = (lx - np.log(d)) / f
            sp = np.logaddexp(0.0, z)
            sig = np.exp(z - sp)                      # logistic(z), stable
            lt = lt - (c * f) * sp
            parts.append((c, d, f, z, sp, sig))
        T = np.exp(lt)
        out = [1.0, T / b, -lx * T]
        for c, d, f, z, sp, sig in parts:
            out += [-(f * sp) * T, (c * sig / d) * T, -(c * (sp - sig * z)) * T]
        return tuple(out)

    params = [Param("a", 0.0, 1e3, (0.0,), doc="limit as x -> infinity (irreducible value)"),
              Param("b", 0.0, 1e300, (0.0,), log=True, doc="scale of the first segment"),
              Param("c0", -2.0, 5.0, (0.0, 0.3), doc="exponent of the first segment")]
    for i in range(1, n_breaks + 1):
        params += [Param(f"c{i}", -5.0, 5.0, (0.1, 0.5), doc=f"change of exponent at break {i}"),
                   Param(f"d{i}", 0.0, 1e300, (40.0, 46.0), log=True, doc=f"location of break {i} (units of x)"),
                   Param(f"f{i}", 1e-3, 1e2, (np.log(0.3), np.log(1.0)), log=True,
                         doc=f"sharpness of break {i} (width in ln x; small = sharp)")]

    def starts(X, y):
        lx = np.log(np.asarray(X[input], dtype=float))
        y = np.asarray(y, dtype=float)
        ymin = float(np.min(y))
        lo, hi = float(np.min(lx)), float(np.max(lx))
        mid = 0.5 * (lo + hi)
        qs = [lo + (hi - lo) * q for q in (0.25, 0.5, 0.75)]
        combos = []
        import itertools as _it
        per_break = list(_it.product((0.1, 0.5), qs, (np.log(0.3), np.log(1.5))))
        for a, c0 in _it.product((0.0, 0.5 * ymin, 0.9 * ymin), (0.0, 0.3)):
            for brk in _it.product(per_break, repeat=n_breaks):
                lds = [bk[1] for bk in brk]
                if any(lds[j] >= lds[j + 1] for j in range(len(lds) - 1)):
                    continue
                # ln b so that the curve passes near the data at the middle of the range
                ymid = float(np.interp(mid, np.sort(lx), y[np.argsort(lx)]))
                lb = np.log(max(ymid - a, 1e-6 * max(ymid, 1e-12))) + c0 * mid
                for c, ld, lf in brk:
                    lb += c * np.exp(lf) * np.logaddexp(0.0, (mid - ld) / np.exp(lf))
                row = [a, lb, c0]
                for c, ld, lf in brk:
                    row += [c, ld, lf]
                combos.append(row)
        return np.array(combos, dtype=float)

    if n_breaks == 1:
        example = {"a": 1.6, "b": 20.0, "c0": 0.05, "c1": 0.25, "d1": 1e20, "f1": 0.5}
    else:
        example = {"a": 1.6, "b": 20.0, "c0": 0.05, "c1": 0.2, "d1": 1e19, "f1": 0.5,
                   "c2": 0.3, "d2": 1e21, "f2": 0.5}
    terms = " ".join(f"(1 + ({input}/d{i})^(1/f{i}))^(-c{i} f{i})" for i in range(1, n_breaks + 1))
    return Law(
        name=name or ("bnsl" if n_breaks == 1 else f"bnsl{n_breaks}"),
        func=func,
        jac=jac,
        inputs=(input,),
        params=tuple(params),
        formula=f"y = a + b {input}^-c0 " + terms,
        citation="Caballero et al. 2023, Broken Neural Scaling Laws (ICLR 2023, arXiv:2210.14891)",
        description=(f"Smoothly broken power law with {n_breaks} break(s) in column {input!r} (compute by "
                     "default; point it at another column with --map C=<column> when loading the table). "
                     "Evaluated in ln x for stability; starts are placed from the data (break locations "
                     "at quantiles of ln x)."),
        starts=starts,
        domain={input: (1e17, 1e23)},
        example=example,
    )


BNSL = register(make_bnsl(1))
BNSL2 = register(make_bnsl(2))


# =============================================================================================
# Kaplan learning curve at any batch size: L(N, S, B), implicit in L (Su et al. 2024)
# =============================================================================================
def solve_trajectory(N_nonembed, steps, batch_tokens, Nc, Sc, alpha_N, alpha_S, B_star, alpha_B,
                     bisect: int = 6, newton: int = 12):
    """Loss after ``steps`` steps at batch ``batch_tokens`` (tokens): the root L of

        L = (Nc/N)^alpha_N + (Sc (1 + B_crit(L)/B) / S)^alpha_S,   B_crit(L) = B_star L^(-1/alpha_B).

    The right-hand side falls as L rises, so g(u) = u - ln RHS(e^u) (u = ln L) is increasing
    with g' >= 1 and the root is unique, bracketed by [ln floor, ln RHS(floor)],
    floor = (Nc/N)^alpha_N. A few bisections, then Newton steps kept inside the shrinking bracket
    (vectorised; converges to machine precision). Everything broadcasts.
    """
    with np.errstate(all="ignore"):
        lnfloor = alpha_N * (np.log(Nc) - np.log(N_nonembed))
        floor = np.exp(lnfloor)
        lnS, lnB, lnSc, lnBs = np.log(steps), np.log(batch_tokens), np.log(Sc), np.log(B_star)

        def g_and_slope(u):
            ratio = np.exp(lnBs - u / alpha_B - lnB)            # B_crit(L) / B
            T2 = np.exp(alpha_S * (lnSc + np.log1p(ratio) - lnS))
            R = floor + T2
            return u - np.log(R), 1.0 + alpha_S * T2 * (ratio / (1.0 + ratio)) / (alpha_B * R)

        lo = lnfloor + 0.0 * (lnS + lnB + lnSc + lnBs + alpha_S + alpha_B)   # broadcast shape
        hi = lo - g_and_slope(lo)[0]                                       # ln RHS(floor)
        for _ in range(bisect):
            mid = 0.5 * (lo + hi)
            up = g_and_slope(mid)[0] > 0
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
        u = 0.5 * (lo + hi)
        for _ in range(newton):
            g, dg = g_and_slope(u)
            hi = np.where(g > 0, u, hi)
            lo = np.where(g > 0, lo, u)
            nu = u - g / dg
            u = np.where((nu >= lo) & (nu <= hi), nu, 0.5 * (lo + hi))
        return np.exp(u)


def _kaplan_trajectory(N_nonembed, steps, batch_tokens, Nc, Sc, alpha_N, alpha_S, B_star, alpha_B):
    return solve_trajectory(N_nonembed, steps, batch_tokens, Nc, Sc, alpha_N, alpha_S, B_star, alpha_B)


def _kaplan_trajectory_jac(N_nonembed, steps, batch_tokens, Nc, Sc, alpha_N, alpha_S, B_star, alpha_B):
    """Implicit-function derivatives: dL/dtheta = (dRHS/dtheta) / (1 - dRHS/dL) at the root."""
    L = solve_trajectory(N_nonembed, steps, batch_tokens, Nc, Sc, alpha_N, alpha_S, B_star, alpha_B)
    lnL = np.log(L)
    ln_nc = np.log(Nc) - np.log(N_nonembed)
    floor = np.exp(alpha_N * ln_nc)
    ratio = np.exp(np.log(B_star) - lnL / alpha_B - np.log(batch_tokens))
    lnq = np.log(Sc) + np.log1p(ratio) - np.log(steps)
    T2 = np.exp(alpha_S * lnq)
    r = ratio / (1.0 + ratio)
    dL = 1.0 + alpha_S * T2 * r / (alpha_B * L)              # 1 - dRHS/dL  (>= 1)
    return (alpha_N * floor / Nc / dL,
            alpha_S * T2 / Sc / dL,
            floor * ln_nc / dL,
            T2 * lnq / dL,
            alpha_S * T2 * r / B_star / dL,
            alpha_S * T2 * r * lnL / (alpha_B * alpha_B) / dL)


def _kaplan_trajectory_inverse(y, params, N_nonembed, batch_tokens):
    """Steps to reach loss y at batch ``batch_tokens`` (explicit: S = S_min(y) (1 + B_crit(y)/B))."""
    smin = _kaplan_curve_inverse(y, params, N_nonembed)        # NaN where y is at or below the floor
    with np.errstate(all="ignore"):
        bc = params["B_star"] * np.exp(-np.log(np.asarray(y, dtype=float)) / params["alpha_B"])
        return smin * (1.0 + bc / np.asarray(batch_tokens, dtype=float))


KAPLAN_TRAJECTORY = register(Law(
    name="kaplan_trajectory",
    func=_kaplan_trajectory,
    jac=_kaplan_trajectory_jac,
    inputs=("N_nonembed", "steps", "batch_tokens"),
    params=(
        Param("Nc", 0.0, 1e30, (25.0, 30.0, 35.0), log=True, doc="critical size (non-embedding parameters)"),
        Param("Sc", 0.0, 1e30, (5.0, 8.0, 12.0), log=True, doc="critical number of steps"),
        Param("alpha_N", 0.0, 3.0, (0.05, 0.15), doc="model-size exponent"),
        Param("alpha_S", 0.0, 5.0, (0.4, 1.0), doc="steps exponent"),
        Param("B_star", 0.0, 1e30, (15.0, 20.0), log=True, doc="critical-batch scale (tokens)"),
        Param("alpha_B", 1e-3, 50.0, (0.15, 0.4), doc="critical-batch exponent"),
    ),
    formula="L solves L = (Nc/N)^alpha_N + (Sc (1 + B_crit(L)/B) / S)^alpha_S, B_crit(L) = B_star / L^(1/alpha_B)",
    citation=KAPLAN_CITATION + " (eqs. 1.6, 5.4, 5.6); Su et al. 2024, Unraveling the Mystery of Scaling Laws: "
             "Part I (arXiv:2403.06563)",
    description="Whole learning curve at any batch size: loss after `steps` optimiser steps with "
                "`batch_tokens` tokens per batch, for N_nonembed non-embedding parameters; the six constants "
                "of kaplan_curve and critical_batch fitted jointly from curve points at two or more batch "
                "sizes. Solved by vectorised bisection; analytic derivatives by the implicit-function theorem. "
                + _NONEMBED_DOC,
    inverse=_kaplan_trajectory_inverse,
    inverse_of="steps",
    domain={"N_nonembed": (1e6, 1e9), "steps": (1e3, 1e5), "batch_tokens": (1e4, 1e7)},
    example={"Nc": 6.5e13, "Sc": 2.1e3, "alpha_N": 0.077, "alpha_S": 0.76, "B_star": 2.1e8, "alpha_B": 0.21},
    published={"kaplan-2020-trajectory": {"Nc": 6.5e13, "Sc": 2.1e3, "alpha_N": 0.077, "alpha_S": 0.76,
                                          "B_star": 2.1e8, "alpha_B": 0.21}},
))
