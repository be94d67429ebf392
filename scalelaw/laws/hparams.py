"""Hyperparameter laws: optimal learning rate and batch size, critical batch size.

Fitted as Step Law does (Li et al. 2025): a sweep is reduced per (N, D) cell to its
near-optimal runs (the ``prepare`` hook, scalelaw.analysis.sweep.prepare_sweep; options
``select`` = plateau | best | bowl | none, ``tol`` = 0.0025, ``loss_col``, ``n`` = total |
active), then ordinary least squares in log space (default objective "lsq-log"); bootstrap with
``boot=`` resamples the selected rows (Step Law resamples its plateau points).

Batch sizes are always in TOKENS (``batch_tokens``); N counts non-embedding parameters in Step
Law's data.
"""
from __future__ import annotations

import numpy as np

from ..law import Law, Param, register

_INF = float("inf")
# the keyword options of scalelaw.analysis.sweep.prepare_sweep (--option KEY=VALUE); the prepare
# hooks below forward **options, so the laws declare them (tests/test_hparams.py checks they match)
SWEEP_OPTIONS = ("select", "tol", "loss_col", "n", "bowl_tol", "censored")
CRITICAL_OPTIONS = ("loss_col", "min_batches")   # of scalelaw.analysis.sweep.critical_batch_table


def _prep_sweep(df, _vary=("lr", "batch_tokens"), **options):
    """The sweep's selected rows for a law of the optimum of ``_vary``: the lr laws need cells that
    sweep lr (the batch may be fixed, as in most sweeps), the batch laws cells that sweep both."""
    from ..analysis.sweep import prepare_sweep_for
    from ..result import aggregated_note

    out = prepare_sweep_for(df, _vary, **options)
    # select=bowl makes one new row per cell (the fitted bowl's optimum), not a subset of the runs
    if out.attrs.get("select") == "bowl" and out.attrs.get("prepare_note"):
        out.attrs["prepare_note"] = aggregated_note("cell optima", out.attrs["prepare_note"])
    return out


def _prep_sweep_n(df, _vary=("lr", "batch_tokens"), **options):
    """As _prep_sweep, warning when N barely varies (its exponent is then not identifiable)."""
    out = _prep_sweep(df, _vary, **options)
    if "N" in out.columns and len(out):
        n = np.asarray(out["N"], dtype=float)
        if np.all(n > 0) and 1.0 < n.max() / n.min() < 1.05:
            import warnings

            warnings.warn(f"N spans only {100 * (n.max() / n.min() - 1):.2g}% ({n.min():.5g} to {n.max():.5g}); its "
                          "exponent is not identifiable: for MoE use n=active, or hold it with --fix", stacklevel=2)
    return out


def _prep_lr_sweep(df, **options):
    """The lr laws' rows: cells need 3 or more lr values; the batch may be fixed."""
    return _prep_sweep(df, ("lr",), **options)


def _prep_lr_sweep_n(df, **options):
    return _prep_sweep_n(df, ("lr",), **options)


def _prep_critical(df, **options):
    """One row per loss level (its B_crit from the runs at several batch sizes): aggregates of
    the runs, which the fit summary must not call a subset of them."""
    from ..analysis.sweep import critical_batch_table
    from ..result import aggregated_note

    out = critical_batch_table(df, **options)
    out.attrs["prepare_note"] = aggregated_note(
        "loss levels", out.attrs.get("prepare_note") or "one B_crit per loss level")
    return out


def _ols_starts(design, transform=None, extra=()):
    """Start generator: the closed-form OLS solution of a log-linear law (plus a few extras).

    design(X) -> (n, k) matrix whose columns multiply the internal parameters; transform(y, X)
    -> the log target (default ln y). The engine then converges in one step.
    """
    def starts(X, y):
        A = design(X)
        z = np.log(y) if transform is None else transform(y, X)
        try:
            coef, *_ = np.linalg.lstsq(A, z, rcond=None)
        except np.linalg.LinAlgError:
            coef = np.zeros(A.shape[1])
        rows = [coef] + [np.asarray(e, dtype=float) for e in extra]
        return np.array(rows, dtype=float)
    return starts


# ---- c N^a D^b: shared by lr_opt and bs_opt_nd (same law, different parameter names) ------------
def _power_nd(N, D, c, a, b):
    return c * np.exp(a * np.log(N) + b * np.log(D))


def _power_nd_jac(N, D, c, a, b):
    lnN, lnD = np.log(N), np.log(D)
    t = np.exp(a * lnN + b * lnD)
    f = c * t
    return (t, lnN * f, lnD * f)


def _nd_design(X):
    return np.column_stack([np.ones_like(X["N"]), np.log(X["N"]), np.log(X["D"])])


# ---- lr* = c N^alpha D^beta (Step Law) ---------------------------------------------------------
def _lr_opt(N, D, c, alpha, beta):
    return _power_nd(N, D, c, alpha, beta)


def _lr_opt_jac(N, D, c, alpha, beta):
    return _power_nd_jac(N, D, c, alpha, beta)


LR_OPT = register(Law(
    name="lr_opt",
    func=_lr_opt,
    jac=_lr_opt_jac,
    inputs=("N", "D"),
    params=(
        Param("c", 0.0, _INF, (-5.0, 0.0, 5.0), log=True, doc="scale (lr at N = D = 1)"),
        Param("alpha", -5.0, 5.0, (-1.0, -0.5, 0.0), doc="exponent of N (Step Law -0.713)"),
        Param("beta", -5.0, 5.0, (0.0, 0.3, 0.6), doc="exponent of D (Step Law 0.307)"),
    ),
    target="lr",
    family="hparams",
    formula="lr* = c * N^alpha * D^beta",
    citation="Li et al. 2025, Predictable Scale: Part I - Optimal Hyperparameter Scaling Law in Large Language "
             "Model Pretraining (Step Law, arXiv:2503.04715)",
    description="Optimal peak learning rate vs non-embedding parameters N and tokens D; fitted by OLS of ln lr "
                "on the near-optimal runs of each (N, D) cell of an lr/batch sweep.",
    domain={"N": (1e8, 1e10), "D": (1e9, 1e12)},
    example={"c": 1.79, "alpha": -0.713, "beta": 0.307},
    published={"steplaw-2025": {"c": 1.79, "alpha": -0.713, "beta": 0.307}},
    default_objective="lsq-log",
    starts=_ols_starts(_nd_design),
    prepare=_prep_lr_sweep_n,
    options=SWEEP_OPTIONS,
))


# ---- B* = c D^gamma tokens (Step Law) ----------------------------------------------------------
def _bs_opt(D, c, gamma):
    return c * np.exp(gamma * np.log(D))


def _bs_opt_jac(D, c, gamma):
    t = np.exp(gamma * np.log(D))
    return (t, np.log(D) * (c * t))


BS_OPT = register(Law(
    name="bs_opt",
    func=_bs_opt,
    jac=_bs_opt_jac,
    inputs=("D",),
    params=(
        Param("c", 0.0, _INF, (-5.0, 0.0, 5.0), log=True, doc="scale (tokens)"),
        Param("gamma", -5.0, 5.0, (0.0, 0.5, 1.0), doc="exponent of D (Step Law 0.571)"),
    ),
    target="batch_tokens",
    family="hparams",
    formula="B* = c * D^gamma  (tokens)",
    citation="Li et al. 2025, Predictable Scale: Part I (Step Law, arXiv:2503.04715)",
    description="Optimal batch size in tokens vs training tokens D; OLS of ln batch_tokens on ln D over the "
                "near-optimal runs of each cell.",
    domain={"D": (1e9, 1e12)},
    example={"c": 0.58, "gamma": 0.571},
    published={"steplaw-2025": {"c": 0.58, "gamma": 0.571}},
    default_objective="lsq-log",
    starts=_ols_starts(lambda X: np.column_stack([np.ones_like(X["D"]), np.log(X["D"])])),
    prepare=_prep_sweep,
    options=SWEEP_OPTIONS,
))


# ---- B* = c N^alpha D^gamma tokens -------------------------------------------------------------
def _bs_opt_nd(N, D, c, alpha, gamma):
    return _power_nd(N, D, c, alpha, gamma)


def _bs_opt_nd_jac(N, D, c, alpha, gamma):
    return _power_nd_jac(N, D, c, alpha, gamma)


BS_OPT_ND = register(Law(
    name="bs_opt_nd",
    func=_bs_opt_nd,
    jac=_bs_opt_nd_jac,
    inputs=("N", "D"),
    params=(
        Param("c", 0.0, _INF, (-5.0, 0.0, 5.0), log=True, doc="scale (tokens)"),
        Param("alpha", -5.0, 5.0, (-0.5, 0.0, 0.5), doc="exponent of N"),
        Param("gamma", -5.0, 5.0, (0.0, 0.5, 1.0), doc="exponent of D"),
    ),
    target="batch_tokens",
    family="hparams",
    formula="B* = c * N^alpha * D^gamma  (tokens)",
    citation="(N, D) variant of Step Law's batch law (Li et al. 2025, arXiv:2503.04715)",
    description="Optimal batch size in tokens vs N and D; alpha = 0 recovers bs_opt.",
    domain={"N": (1e8, 1e10), "D": (1e9, 1e12)},
    example={"c": 0.5, "alpha": 0.05, "gamma": 0.55},
    default_objective="lsq-log",
    starts=_ols_starts(_nd_design),
    prepare=_prep_sweep_n,
    options=SWEEP_OPTIONS,
))


# ---- lr* = batch * a * T^b (Power Scheduler) ---------------------------------------------------
def _lr_power(batch_tokens, D, a, b):
    return batch_tokens * a * np.exp(b * np.log(D))


def _lr_power_jac(batch_tokens, D, a, b):
    t = batch_tokens * np.exp(b * np.log(D))
    return (t, np.log(D) * (a * t))


LR_POWER = register(Law(
    name="lr_power",
    func=_lr_power,
    jac=_lr_power_jac,
    inputs=("batch_tokens", "D"),
    params=(
        Param("a", 0.0, _INF, (-15.0, -10.0, -5.0), log=True, doc="scale (per batch token)"),
        Param("b", -5.0, 5.0, (-1.0, -0.5, 0.0), doc="exponent of the token count T = D"),
    ),
    target="lr",
    family="hparams",
    formula="lr* = batch_tokens * a * T^b  (T = D tokens)",
    citation="Shen et al. 2024, Power Scheduler: A Batch Size and Token Number Agnostic Learning Rate Scheduler "
             "(arXiv:2408.13359); constants fitted, not hard-coded (batch here in tokens)",
    description="Optimal learning rate proportional to the batch size, decaying as a power of the token count.",
    domain={"batch_tokens": (1e5, 1e7), "D": (1e9, 1e12)},
    example={"a": 4e-9, "b": -0.3},
    default_objective="lsq-log",
    starts=_ols_starts(lambda X: np.column_stack([np.ones_like(X["D"]), np.log(X["D"])]),
                       transform=lambda y, X: np.log(y) - np.log(X["batch_tokens"])),
    prepare=_prep_lr_sweep,
    options=SWEEP_OPTIONS,
))


# ---- B_crit(L) = B_star / L^(1/alpha_B) (Kaplan 2020; Su 2024) --------------------------------
def _critical_batch(loss, B_star, alpha_B):
    return B_star * np.exp(-np.log(loss) / alpha_B)


def _critical_batch_jac(loss, B_star, alpha_B):
    t = np.exp(-np.log(loss) / alpha_B)
    return (t, (B_star * t) * np.log(loss) / (alpha_B * alpha_B))


def _critical_starts(X, y):
    A = np.column_stack([np.ones_like(X["loss"]), np.log(X["loss"])])
    (ln_b, slope), *_ = np.linalg.lstsq(A, np.log(y), rcond=None)
    rows = [[np.log(2.1e8), 0.21], [10.0, 0.5], [20.0, 0.1]]
    if slope < 0:
        rows.insert(0, [ln_b, min(max(-1.0 / slope, 1e-3), 50.0)])
    return np.array(rows, dtype=float)


CRITICAL_BATCH = register(Law(
    name="critical_batch",
    func=_critical_batch,
    jac=_critical_batch_jac,
    inputs=("loss",),
    params=(
        Param("B_star", 0.0, _INF, (5.0, 15.0, 25.0), log=True, doc="scale (tokens); Kaplan 2.1e8"),
        Param("alpha_B", 1e-3, 50.0, (0.1, 0.2, 0.5, 1.0), doc="exponent; Kaplan 0.21"),
    ),
    target="B_crit",
    family="hparams",
    formula="B_crit(L) = B_star / L^(1/alpha_B)  (tokens)",
    citation="Kaplan et al. 2020, Scaling Laws for Neural Language Models (arXiv:2001.08361), after McCandlish "
             "et al. 2018 (arXiv:1812.06162); fitted as in Su et al. 2024 (arXiv:2403.06563)",
    description="Critical batch size vs loss. Input rows: loss level L, batch_tokens and steps (or tokens) to "
                "reach L; per level S = S_min (1 + B_crit/B) gives B_crit = E_min/S_min (prepare), then OLS "
                "of ln B_crit on ln L.",
    domain={"loss": (2.0, 5.0)},
    example={"B_star": 2.1e8, "alpha_B": 0.21},
    published={"kaplan-2020-bcrit": {"B_star": 2.1e8, "alpha_B": 0.21}},
    default_objective="lsq-log",
    starts=_critical_starts,
    prepare=_prep_critical,
    options=CRITICAL_OPTIONS,
))
