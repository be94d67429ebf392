"""Loss curves under learning-rate schedules: the annealing law of Tissue et al. 2024.

    L(s) = L0 + A S1^-alpha - C S2                                     (law ``lr_anneal``)

Tissue, Wang, Wang (2024), "Scaling Law with Learning Rate Annealing", arXiv:2408.11029:
S1 is the forward area, the sum of the learning rates of the steps so far,
S1(s) = sum_{i=1..s} eta_i; S2 is the annealing area, the sum of a momentum of the learning-rate
decreases, m_i = lambda m_{i-1} + (eta_{i-1} - eta_i), S2(s) = sum_{i=1..s} m_i, with the decay
factor lambda (0.999 in the paper; 0.99 to 0.999 work). A constant schedule has S2 = 0; annealing
raises S2 (the loss drops) at the price of a smaller S1.

The law's inputs are S1 and S2; its prepare step computes them from a per-step table with ``run``,
``step`` and ``lr`` (the schedule): the learning rate at every step from 1 to the last, linearly
interpolated between logged steps (exact when every step is logged). Options: ``decay``
(lambda, default 0.999) and ``warmup`` (the first ``warmup`` steps count in neither area,
default 0; our choice for schedules whose warmup would otherwise enter S2 as a negative
annealing). Rows at step 0 (nothing trained) are left out. To predict another schedule: compute
its areas with :func:`areas` (or a schedule from :func:`schedule`) and evaluate the fitted law.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from ..law import Law, Param, register

CITATION = "Tissue, Wang, Wang 2024, Scaling Law with Learning Rate Annealing (arXiv:2408.11029), eq. 1"
DECAY = 0.999
SCHEDULES = ("constant", "cosine", "wsd", "linear")


def schedule(kind: str, steps: int, peak: float, *, warmup: int = 0, final: float = 0.0,
             decay_frac: float = 0.2) -> np.ndarray:
    """Learning rate at steps 1..steps: linear warmup over ``warmup`` steps, then 'constant',
    'cosine' (to ``final`` x peak at the last step), 'linear' (likewise) or 'wsd'
    (warmup-stable-decay: constant, then a linear decay to ``final`` x peak over the last
    ``decay_frac`` of the steps)."""
    steps, warmup = int(steps), int(warmup)
    if kind not in SCHEDULES:
        raise ScalelawError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
    if steps < 1 or not (0 <= warmup < steps) or not peak > 0 or not 0 <= final <= 1 or not 0 < decay_frac <= 1:
        raise ScalelawError(f"schedule {kind}: need steps >= 1, 0 <= warmup < steps, peak > 0, 0 <= final <= 1 and "
                            f"0 < decay_frac <= 1; got steps={steps}, warmup={warmup}, peak={peak}, final={final}, "
                            f"decay_frac={decay_frac}")
    s = np.arange(1, steps + 1, dtype=float)
    lo = final * peak
    if kind == "constant":
        lr = np.full(steps, float(peak))
    else:
        start = warmup if kind != "wsd" else max(warmup, int(round(steps * (1 - decay_frac))))
        t = np.clip((s - start) / max(steps - start, 1), 0.0, 1.0)
        if kind == "cosine":
            lr = lo + (peak - lo) * 0.5 * (1 + np.cos(np.pi * t))
        else:
            lr = peak - (peak - lo) * t
    if warmup:
        lr = np.where(s <= warmup, peak * s / warmup, lr)
    return lr


def areas(lr, decay: float = DECAY, warmup: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) after each step of the learning rates ``lr`` (step 1 first): S1 the running sum of
    lr, S2 the running sum of m_i = decay m_{i-1} + (lr_{i-1} - lr_i). The first ``warmup`` steps
    count in neither (their areas stay 0)."""
    from scipy.signal import lfilter

    lr = np.asarray(lr, dtype=float)
    if lr.ndim != 1 or not np.all(np.isfinite(lr)) or np.any(lr < 0):
        raise ScalelawError("learning rates must be a sequence of finite non-negative numbers, one per step")
    if not 0 <= decay < 1:
        raise ScalelawError(f"decay (lambda) must lie in [0, 1); got {decay!r} (Tissue et al. use 0.999)")
    w = int(warmup)
    x = lr.copy()
    x[:w] = 0.0
    S1 = np.cumsum(x)
    prev = np.concatenate([[lr[w] if w < len(lr) else 0.0], lr[:-1]])
    delta = prev - lr
    delta[:w + 1] = 0.0
    m = lfilter([1.0], [1.0, -decay], delta)
    return S1, np.cumsum(m)


def _per_run_areas(d: pd.DataFrame, decay: float, warmup: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    steps = pd.to_numeric(d["step"], errors="coerce").to_numpy(float)
    lr = pd.to_numeric(d["lr"], errors="coerce").to_numpy(float)
    ok = np.isfinite(steps) & np.isfinite(lr)
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        raise ScalelawError(f"{where}: step or lr missing at row {k + 1} of run {d['run'].iloc[0]!r}; the annealing "
                            "law needs the learning rate of every logged step")
    order = np.argsort(steps, kind="stable")
    st, lr_s = steps[order], lr[order]
    if np.any(np.diff(st) == 0):
        raise ScalelawError(f"{where}: run {d['run'].iloc[0]!r} logs step {st[np.flatnonzero(np.diff(st) == 0)[0]]:g} "
                            "twice; one row per step")
    last = int(st[-1])
    if last > 50_000_000:
        raise ScalelawError(f"{where}: run {d['run'].iloc[0]!r} reaches step {last}; more than 5e7 steps is not a "
                            "step count (check the step column)")
    grid = np.arange(1, last + 1, dtype=float)
    lr_all = np.interp(grid, st, lr_s)
    S1, S2 = areas(lr_all, decay, warmup)
    idx = np.clip(steps.astype(int) - 1, 0, last - 1)
    return S1[idx], S2[idx]


def _prepare(df: pd.DataFrame, decay: float = DECAY, warmup: int = 0) -> pd.DataFrame:
    """S1 and S2 from (run, step, lr) when the table does not give them; step-0 rows dropped."""
    where = df.attrs.get("source", "the table")
    if {"S1", "S2"} <= set(df.columns):
        return df
    missing = [c for c in ("step", "lr") if c not in df.columns]
    if missing:
        raise ScalelawError(f"{where} lacks {', '.join(missing)}; the annealing law needs a per-step table with "
                            "step, lr (the schedule) and loss, or columns S1 and S2")
    decay, warmup = float(decay), int(warmup)
    d = df[pd.to_numeric(df["step"], errors="coerce") > warmup].copy()
    S1 = np.empty(len(d))
    S2 = np.empty(len(d))
    full = df.assign(run=df["run"] if "run" in df.columns else "run")
    pos = {ix: i for i, ix in enumerate(d.index)}
    for run, g in full.groupby("run", sort=False):
        a1, a2 = _per_run_areas(g, decay, warmup, where)
        for ix, v1, v2 in zip(g.index, a1, a2):
            if ix in pos:
                S1[pos[ix]], S2[pos[ix]] = v1, v2
    d["S1"], d["S2"] = S1, S2
    d.attrs = dict(df.attrs)
    if len(d) != len(df):
        d.attrs["prepare_note"] = f"{len(df) - len(d)} row(s) at step <= {warmup} (warmup) left out"
    return d


def _anneal(S1, S2, L0, A, alpha, C):
    return L0 + A * np.exp(-alpha * np.log(S1)) - C * S2


def _anneal_jac(S1, S2, L0, A, alpha, C):
    t = np.exp(-alpha * np.log(S1))
    return (1.0, t, -A * t * np.log(S1), -np.asarray(S2, dtype=float))


LR_ANNEAL = register(Law(
    name="lr_anneal",
    func=_anneal,
    jac=_anneal_jac,
    inputs=("S1", "S2"),
    params=(
        Param("L0", 0.0, 20.0, (1.5, 2.5, 3.5), doc="loss approached as the forward area grows"),
        Param("A", 0.0, 1e4, (-1.0, 0.0, 1.0, 2.0), log=True, doc="scale of the forward-area power law"),
        Param("alpha", 0.0, 5.0, (0.2, 0.5, 1.0), doc="exponent of the forward area"),
        Param("C", 0.0, 1e4, (0.01, 0.3, 1.0, 3.0), doc="loss drop per unit of annealing area"),
    ),
    formula="L = L0 + A S1^-alpha - C S2;  S1 = sum_i lr_i,  S2 = sum_i m_i,  m_i = lambda m_{i-1} + (lr_{i-1} - lr_i)",
    citation=CITATION,
    description="Validation loss along training under any learning-rate schedule: fit on one schedule's curve, "
                "predict another's. Inputs S1 (forward area) and S2 (annealing area), computed from a per-step "
                "table's run, step and lr by the prepare step (options decay = lambda, default 0.999, and warmup).",
    domain={"S1": (0.5, 50.0), "S2": (0.0, 5.0)},
    example={"L0": 2.0, "A": 0.8, "alpha": 0.45, "C": 0.15},
    prepare=_prepare,
    options=("decay", "warmup"),
))


def predict_schedule(fit, lr, at=None, *, decay: float | None = None, warmup: int | None = None,
                     level: float | None = None) -> pd.DataFrame:
    """The loss curve a fitted ``lr_anneal`` law predicts for another schedule ``lr`` (one learning
    rate per step, step 1 first), at steps ``at`` (default: every step). ``decay`` and ``warmup``
    default to the ones the fit was made with. Columns: step, lr, S1, S2 and Fit.predict's."""
    opts = dict((getattr(fit, "settings", None) or {}).get("prepare_options") or {})
    decay = float(opts.get("decay", DECAY) if decay is None else decay)
    warmup = int(opts.get("warmup", 0) if warmup is None else warmup)
    if getattr(getattr(fit, "law", None), "name", None) != "lr_anneal":
        raise ScalelawError("predict_schedule needs a fit of the lr_anneal law")
    lr = np.asarray(lr, dtype=float)
    S1, S2 = areas(lr, decay, warmup)
    steps = np.arange(1, len(lr) + 1) if at is None else np.asarray(at, dtype=int)
    if np.any(steps <= warmup) or np.any(steps > len(lr)):
        raise ScalelawError(f"steps to predict must lie in ({warmup}, {len(lr)}] (after the warmup, within the schedule)")
    pred = fit.predict(pd.DataFrame({"S1": S1[steps - 1], "S2": S2[steps - 1]}), level=level)
    pred.insert(0, "lr", lr[steps - 1])
    pred.insert(0, "step", steps)
    return pred
