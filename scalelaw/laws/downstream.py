"""Downstream laws: task error (or score) as a function of validation loss or of scale.

- ``downstream_exp`` (Gadre et al. 2024): Err(L) = eps - k exp(-gamma L), average top-1 error.
- ``downstream_sigmoid``: S(L) = c / (1 + exp(-gamma (L - l0))) + d (a loss -> score/error curve
  with a floor d and a ceiling c + d; gamma > 0 for errors, gamma < 0 for accuracies).
- ``downstream_direct``: error straight from (N, D), the over-training law composed inside the
  exponential law with the unidentifiable constants folded together:
  Err = eps - K exp(-(A M^eta + B M^-eta) C^-eta), K = k exp(-gamma E), A = gamma a, B = gamma b.
- ``passuntil`` (Hu et al. 2024): PU(N) = exp(-c N^-alpha), pass rate measured until success.

Error and pass-rate targets must lie in [0, 1] (a fraction, not a percentage).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from ..law import Law, Param, register
from .overtrain import _terms, check_inputs

ERROR_TARGET = "err_avg"
UNIT = (0.0, 1.0)   # errors and pass rates are fractions: predictions are clipped to it (Law.target_range)


def _check_unit_interval(df: pd.DataFrame, col: str, where: str, what: str = "error") -> None:
    if col not in df.columns:
        return
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = np.isfinite(v) & ~((v >= 0) & (v <= 1))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        hint = " (it looks like a percentage: divide by 100)" if 1 < v[k] <= 100 else ""
        raise ScalelawError(f"column {col!r} of {where} has {what} {float(v[k]):g} at row {k}; {what}s must lie in [0, 1]"
                            f"{hint}: fix the column (error = 1 - accuracy)")


def _check_loss(df: pd.DataFrame, where: str) -> None:
    if "loss" not in df.columns:
        return
    v = pd.to_numeric(df["loss"], errors="coerce").to_numpy(dtype=float)
    bad = np.isfinite(v) & ~(v > 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ScalelawError(f"column 'loss' of {where} has value {float(v[k]):g} at row {k}; a validation loss must be positive "
                            "(nats/token): fix that row")


# The 17 tasks Gadre et al. average for their error law ("17-task split"; SUBSET in
# scaling/constants.py of mlfoundations/scaling): plain mean of 1 - accuracy over these.
TASKS_17 = (
    "bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
    "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
    "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa",
    "squad", "piqa",
)
AVERAGES = {"gadre17": TASKS_17}


def error_column(df: pd.DataFrame, spec: str, where: str = "the table") -> pd.Series:
    """The error column named by ``spec``: a column, 'gadre17' (Gadre's 17-task average of the
    err_<task> columns) or 'mean' (average of every err_<task> column)."""
    spec = str(spec)
    if spec in df.columns:
        return pd.to_numeric(df[spec], errors="coerce")
    key = spec[4:] if spec.startswith("err_") else spec
    key = "gadre17" if key in ("avg17", "gadre17", "17") else key
    if key in AVERAGES or key == "mean":
        cols = ([f"err_{t}" for t in AVERAGES[key]] if key in AVERAGES else
                [c for c in df.columns if str(c).startswith("err_") and not str(c).startswith("err_avg")])
        missing = [c for c in cols if c not in df.columns]
        if missing or not cols:
            raise ScalelawError(f"error average {spec!r} needs per-task columns {', '.join(missing[:4]) or 'err_<task>'} "
                                f"which {where} lacks; give an existing error column instead")
        return df[cols].apply(pd.to_numeric, errors="coerce").mean(axis=1)
    errs = [str(c) for c in df.columns if str(c).startswith("err_")]
    raise ScalelawError(f"error column {spec!r} is not in {where}; choose one of "
                        f"{', '.join(errs[:8]) or '(no err_ columns)'}{' ...' if len(errs) > 8 else ''}, "
                        "'gadre17' (Gadre's 17-task average) or 'mean'")


def _prepare_error(target: str):
    def prepare(df: pd.DataFrame, error=None) -> pd.DataFrame:
        """Checks ranges; option ``error=<column|gadre17|mean>`` picks the column fitted as the target
        (the law's only option, read from this signature; scalelaw.law.Law.check_options refuses others)."""
        where = df.attrs.get("source", "the table")
        if error is not None:
            attrs = dict(df.attrs)
            col = error_column(df, error, where)
            df = df.copy()
            df[target] = col.to_numpy()
            df.attrs.update(attrs)
        _check_loss(df, where)
        _check_unit_interval(df, target, where, "pass rate" if target == "pass_rate" else "error")
        if "N" in df.columns and "D" in df.columns:
            check_inputs(df, where)
        return df
    return prepare


# ---- Err = eps - k exp(-gamma L) ---------------------------------------------------------------
def _exp(loss, eps, k, gamma):
    return eps - k * np.exp(-gamma * loss)


def _exp_jac(loss, eps, k, gamma):
    t = np.exp(-gamma * loss)
    return (1.0, -t, loss * (k * t))


def _exp_inverse(y, params):
    """Validation loss at which the error law reaches error y (NaN when y >= eps)."""
    with np.errstate(all="ignore"):
        return -np.log((params["eps"] - np.asarray(y, dtype=float)) / params["k"]) / params["gamma"]


DOWNSTREAM_EXP = register(Law(
    name="downstream_exp",
    func=_exp,
    jac=_exp_jac,
    inputs=("loss",),
    params=(
        Param("eps", 0.0, 2.0, (0.6, 0.8, 1.0), doc="error ceiling approached as the loss grows (random-chance error)"),
        Param("k", 0.0, 1e4, (-1.0, 0.0, 1.0, 2.0, 4.0), log=True, doc="scale"),
        Param("gamma", 0.0, 20.0, (0.2, 0.5, 1.0, 2.0), doc="rate of error decay with loss"),
    ),
    target=ERROR_TARGET,
    formula="Err = eps - k exp(-gamma L)",
    citation="Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks "
             "(arXiv:2403.08540), eq. 5",
    description="Average top-1 error vs validation loss; input column 'loss', target an error in [0, 1].",
    family="downstream",
    target_range=UNIT,
    inverse=_exp_inverse,
    inverse_of="loss",
    domain={"loss": (2.0, 5.0)},
    example={"eps": 0.857, "k": 2.2065, "gamma": 0.7146},
    published={
        # Gadre et al. 2024: RedPajama, C4 validation loss -> 17-task average top-1 error
        "gadre-2024-rpj-err17": {"eps": 0.8570, "k": 2.2065, "gamma": 0.7146},
    },
    default_objective="lsq",  # Gadre et al.; cutoff backtests (docs/overtrain.md) agree
    prepare=_prepare_error(ERROR_TARGET),
))


# ---- S = c / (1 + exp(-gamma (L - l0))) + d ------------------------------------------------
def _sigmoid(loss, c, gamma, l0, d):
    return c / (1.0 + np.exp(-gamma * (loss - l0))) + d


def _sigmoid_jac(loss, c, gamma, l0, d):
    s = 1.0 / (1.0 + np.exp(-gamma * (loss - l0)))
    ds = s * (1.0 - s)
    return (s, c * ds * (loss - l0), -c * ds * gamma, 1.0)


def _sigmoid_inverse(y, params):
    """Loss at which the curve reaches y (NaN outside (d, c + d))."""
    with np.errstate(all="ignore"):
        return params["l0"] - np.log(params["c"] / (np.asarray(y, dtype=float) - params["d"]) - 1.0) / params["gamma"]


def _sigmoid_starts(X, y):
    """Starts spread over the observed losses: both slope signs, midpoints at loss quantiles."""
    L = np.asarray(next(iter(X.values())), dtype=float)
    q = np.quantile(L, [0.1, 0.3, 0.5, 0.7, 0.9])
    y = np.asarray(y, dtype=float)
    lo = float(np.clip(np.min(y), -1.0, 1.0))
    rows = [[c, g, l0, d] for c in (0.3, 0.6, 0.9) for g in (-20.0, -8.0, -3.0, -1.0, -0.3, 0.3, 1.0, 3.0, 8.0, 20.0)
            for l0 in q for d in (0.0, lo)]
    return np.array(rows)


DOWNSTREAM_SIGMOID = register(Law(
    name="downstream_sigmoid",
    func=_sigmoid,
    jac=_sigmoid_jac,
    inputs=("loss",),
    params=(
        Param("c", 0.0, 2.0, (0.3, 0.6, 0.9), doc="height: the curve runs from d to c + d"),
        Param("gamma", -1e3, 1e3, (-4.0, -1.0, 1.0, 4.0), doc="slope (> 0: error rises with loss; < 0: accuracy falls)"),
        Param("l0", -1e3, 1e3, (2.5, 3.5, 5.0), doc="loss at the midpoint"),
        Param("d", -1.0, 1.0, (0.0, 0.2), doc="floor"),
    ),
    target=ERROR_TARGET,
    formula="S = c / (1 + exp(-gamma (L - l0))) + d",
    citation="Loss -> score sigmoid: Ruan et al. 2024, Observational Scaling Laws (arXiv:2405.10938); "
             "Xiao et al. 2024, Densing Law of LLMs (arXiv:2412.04315)",
    description="Error (or score) vs validation loss with a floor and a ceiling; target in [0, 1].",
    family="downstream",
    target_range=UNIT,
    inverse=_sigmoid_inverse,
    inverse_of="loss",
    domain={"loss": (2.0, 5.0)},
    example={"c": 0.5, "gamma": 2.0, "l0": 3.2, "d": 0.3},
    starts=_sigmoid_starts,
    default_objective="lsq",
    prepare=_prepare_error(ERROR_TARGET),
))


# ---- Err(N, D) = eps - K exp(-(A M^eta + B M^-eta) C^-eta) -----------------------------------
def _direct(N, D, eps, K, A, B, eta):
    up, down, _, _ = _terms(N, D, eta)
    return eps - K * np.exp(-(A * up + B * down))


def _direct_jac(N, D, eps, K, A, B, eta):
    up, down, lnM, lnC = _terms(N, D, eta)
    t = K * np.exp(-(A * up + B * down))
    dx_deta = (lnM - lnC) * (A * up) - (lnM + lnC) * (B * down)
    return (1.0, -t / K, t * up, t * down, t * dx_deta)


DOWNSTREAM_DIRECT = register(Law(
    name="downstream_direct",
    func=_direct,
    jac=_direct_jac,
    inputs=("N", "D"),
    params=(
        Param("eps", 0.0, 2.0, (0.6, 0.8, 1.0), doc="error ceiling"),
        Param("K", 0.0, 1e4, (-2.0, -1.0, 0.0), log=True, doc="k exp(-gamma E) of the chained laws"),
        Param("A", 0.0, 1e12, (2.0, 4.0, 6.0), log=True, doc="gamma a"),
        Param("B", 0.0, 1e12, (2.0, 4.0, 6.0), log=True, doc="gamma b"),
        Param("eta", 0.0, 1.5, (0.1, 0.15, 0.25), doc="compute exponent"),
    ),
    target=ERROR_TARGET,
    formula="Err = eps - K exp(-(A M^eta + B M^-eta) C^-eta),  C = 6ND, M = D/N",
    citation="Gadre et al. 2024 (arXiv:2403.08540): overtrain composed inside the exponential error law, "
             "identifiable constants only",
    description="Average top-1 error straight from N and D, skipping the validation loss.",
    family="downstream",
    target_range=UNIT,
    domain={"N": (1e7, 1e10), "D": (2e9, 5e11)},
    # the chained Gadre constants: K = 2.2065 exp(-0.7146 * 1.8367), A = 0.7146 * 212.24, ...
    example={"eps": 0.857, "K": 0.593, "A": 151.7, "B": 262.0, "eta": 0.1364},
    default_objective="huber-log",  # cutoff backtests (docs/overtrain.md): 9.3% vs 10.3% mean rel. error
    prepare=_prepare_error(ERROR_TARGET),
))


# ---- PassUntil: PU = exp(-c N^-alpha) ----------------------------------------------------------
def _passuntil(N, c, alpha):
    return np.exp(-c * np.exp(-alpha * np.log(N)))


def _passuntil_jac(N, c, alpha):
    t = np.exp(-alpha * np.log(N))
    pu = np.exp(-c * t)
    return (-t * pu, np.log(N) * (c * t) * pu)


def _passuntil_inverse(y, params):
    """Model size at which the pass rate reaches y."""
    with np.errstate(all="ignore"):
        return np.exp(np.log(-np.log(np.asarray(y, dtype=float)) / params["c"]) / -params["alpha"])


PASSUNTIL = register(Law(
    name="passuntil",
    func=_passuntil,
    jac=_passuntil_jac,
    inputs=("N",),
    params=(
        Param("c", 0.0, 1e12, (0.0, 3.0, 6.0, 10.0), log=True, doc="scale"),
        Param("alpha", 0.0, 3.0, (0.1, 0.3, 0.6, 1.0), doc="exponent: ln(-ln PU) is linear in ln N with slope -alpha"),
    ),
    target="pass_rate",
    formula="PU = exp(-c N^-alpha)",
    citation="Hu et al. 2024, Predicting Emergent Abilities with Infinite Resolution Evaluation (arXiv:2310.03262)",
    description="PassUntil pass rate of a task vs model size; target column 'pass_rate' in (0, 1].",
    family="downstream",
    target_range=UNIT,
    inverse=_passuntil_inverse,
    inverse_of="N",
    domain={"N": (1e7, 1e11)},
    example={"c": 50.0, "alpha": 0.2},
    default_objective="huber-log",
    prepare=_prepare_error("pass_rate"),
))

