"""One training plan from a compute budget: N, D, lr*, B*, loss and downstream error, with intervals.

``plan(compute=C, loss_fit=...)`` splits the budget C = 6 N D into a model size N and a token
count D (compute-optimal, or constrained by a tokens-per-parameter ratio or a fixed N), predicts
the loss there, and, when the fits are given, the optimal learning rate and batch size at (N, D)
and the downstream error at the predicted loss. ``plan(target_loss=L, loss_fit=...)`` inverts
it: the compute needed to reach L.

Intervals propagate every fit's parameter uncertainty jointly: for each parameter sample
(``Fit.param_samples()``: the bootstrap, else delta-method draws) the split, the loss, lr*, B*
and the error are recomputed, and the percentile interval of each quantity is reported. Each
fit's inputs at the plan are compared with the range it was fitted on (``Fit.extrapolation``);
past ``warn_factor`` (10x by default) the plan carries a warning.

Laws are used generically through ``law.inputs``: a plan can feed N, D, C, M = D/N
(``tokens_per_param``) and, to the downstream law, the loss; anything else (e.g. unique tokens
U of a data-constrained law) comes from ``at={"U": 25e9}``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import ScalelawError
from ..result import EXTRAPOLATION_WARN, Fit, bound_warning, clip_to_target, health_warning, no_range_warning
from ..uncertainty import percentile_interval

FLOPS_PER_TOKEN_PARAM = 6.0
_GRID_DECADES = 6.0        # numeric split: search N within +-6 decades of sqrt(C/6)
_GRID_POINTS = 241
_GOLDEN_ITERS = 48
_C_BRACKET = (1e3, 1e40)   # inverse: compute searched in this range (FLOPs)
_BISECT_ITERS = 48

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _positive(value, option: str):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ScalelawError(f"{option} must be a positive number; got {value!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise ScalelawError(f"{option} must be a positive finite number; got {value!r}")
    return v


_ROLE_OF_OPTION = {"--loss": "loss", "--lr": "lr", "--bs": "batch_tokens", "--downstream": "error"}


def _role(law) -> str | None:
    """The plan role a law can fill: 'loss', 'lr', 'batch_tokens', 'error' (downstream) or None."""
    t = law.target
    if t in ("lr", "batch_tokens"):
        return t
    if law.family == "downstream" or t.startswith("err"):
        return "error"
    return "loss" if t == "loss" else None


def _check_role(f: Fit, option: str) -> None:
    """A fit given for --lr/--bs/--downstream/--loss must be of a law of that role (its target)."""
    role = _ROLE_OF_OPTION[option]
    # a critical-batch law (target B_crit) may feed --bs; otherwise the law's target is the role's
    if _role(f.law) != role and not (role == "batch_tokens" and f.law.target == "B_crit"):
        raise ScalelawError(f"{option} needs a fit of {_ROLE_WHAT[role]}, but the fit given is of law "
                            f"{f.law.name!r} (target {f.law.target!r}); give a fit of the right law")


def _as_fit(fit, option: str) -> Fit | None:
    return _load_as_fit(fit, option)


_ROLE_WHAT = {"loss": "the loss (target loss, e.g. law chinchilla)", "lr": "the optimal learning rate (target lr, "
              "e.g. law lr_opt)", "batch_tokens": "the optimal batch size (target batch_tokens, e.g. law bs_opt)",
              "error": "downstream error against loss (e.g. law downstream_exp)"}


def _load_as_fit(fit, option: str) -> Fit | None:
    if fit is None:
        return None
    if isinstance(fit, Fit):
        return fit
    if not isinstance(fit, (str, os.PathLike)):
        raise ScalelawError(f"{option} must be a Fit, a fit JSON path or a published fit name; got {type(fit).__name__}")
    from ..law import all_laws
    from ..result import load_fit

    name, role = str(fit), _ROLE_OF_OPTION[option]
    if Path(name).exists():
        return load_fit(name)
    # one published name may label several laws (steplaw-2025: lr_opt and bs_opt): the option's
    # role says which one
    owner = next((law.name for law in all_laws() if name in law.published
                  and not law.name.startswith("_") and _role(law) == role), None)
    if owner is not None and role in ("lr", "batch_tokens"):
        from .sweep import load_hparam_fit
        return load_hparam_fit(name, law=owner)     # with the authors' released bootstrap, when there is one
    return load_fit(name, law=owner)


def _features(N, D, C, loss=None, extra: Mapping | None = None) -> dict:
    """Every quantity a law may take as input at a plan point."""
    with np.errstate(all="ignore"):
        M = np.asarray(D, dtype=float) / np.asarray(N, dtype=float)
    # N_nonembed: laws in Kaplan's convention take N without embeddings; a plan has one N, so
    # such a law reads the plan's N as non-embedding parameters (the plan warns about it)
    out = {"N": N, "D": D, "C": C, "M": M, "tokens_per_param": M, "N_nonembed": N}
    if loss is not None:
        out["loss"] = loss
    for k, v in (extra or {}).items():
        out[k] = v
    return out


def _check_inputs(fit: Fit, role: str, available) -> None:
    missing = [c for c in fit.law.inputs if c not in available]
    if missing:
        raise ScalelawError(
            f"the {role} fit's law {fit.law.name!r} needs input(s) {', '.join(missing)} that a plan "
            f"does not compute (it knows {', '.join(sorted(available))}); give them with --at "
            f"{missing[0]}=VALUE")


def _evaluate(fit: Fit, feats: Mapping, P: Mapping) -> np.ndarray:
    X = {c: np.asarray(feats[c], dtype=float) for c in fit.law.inputs}
    return np.asarray(fit.law.evaluate(X, P), dtype=float)


def _param_arrays(fit: Fit, samples: np.ndarray | None, S: int, rng) -> dict:
    """{param: (S,) array}: the fit's samples matched to S draws, else its point values."""
    names = fit.law.param_names
    if samples is None or len(samples) == 0:
        return {n: np.full(S, float(fit.params[n])) for n in names}
    if len(samples) == S:
        idx = np.arange(S)
    else:
        idx = rng.integers(0, len(samples), size=S)
    return {n: samples[idx, i].astype(float) for i, n in enumerate(names)}


def _point_arrays(fit: Fit) -> dict:
    return {n: np.array([float(fit.params[n])]) for n in fit.law.param_names}


def _uses_split(law) -> bool:
    return any(c in ("N", "D", "M", "tokens_per_param", "N_nonembed") for c in law.inputs)


def _has_closed_optimum(law, extra=None) -> bool:
    """The law declares its own optimum for a budget (and any other argument it takes is given)."""
    args = tuple(law.optimum_args)
    return (law.optimum is not None and "compute" in args
            and all(a == "compute" or a in (extra or {}) for a in args))


# --------------------------------------------------------------------------------------------
# the split of a budget into N and D, vectorised over parameter samples
# --------------------------------------------------------------------------------------------
def _split(fit: Fit, P: dict, C: np.ndarray, mode: str, ratio=None, n_fixed=None, extra=None):
    """N, D, loss (each (S,)) for budgets C (S,) under ``mode``; also the count of draws whose
    compute-optimal N fell on the edge of the search range (no interior optimum)."""
    law = fit.law
    C = np.asarray(C, dtype=float)
    k = FLOPS_PER_TOKEN_PARAM
    edge = np.zeros(C.shape, dtype=bool)
    with np.errstate(all="ignore"):
        if mode == "params":
            N = np.full(C.shape, float(n_fixed))
            D = C / (k * N)
        elif mode == "tokens_per_param":
            N = np.sqrt(C / (k * float(ratio)))
            D = float(ratio) * N
        elif not _uses_split(law):
            N = np.full(C.shape, np.nan)
            D = np.full(C.shape, np.nan)
        else:
            closed = _closed_split(law, P, C, extra) if _has_closed_optimum(law, extra) else None
            if closed is not None:
                N, D = closed
            else:
                N, D, edge = _numeric_split(fit, P, C, extra)
        loss = _evaluate(fit, _features(N, D, C, extra=extra), P) * np.ones(C.shape)
    return N, D, loss, edge


def _closed_split(law, P: dict, C: np.ndarray, extra=None):
    """(N, D) from the law's declared optimum, or None when it does not return N_opt and D_opt."""
    kw = {a: (extra or {})[a] for a in law.optimum_args if a != "compute"}
    out = law.optimum(P, compute=C, **kw)
    if "N_opt" not in out or "D_opt" not in out:
        return None
    return (np.asarray(out["N_opt"], dtype=float) * np.ones(C.shape),
            np.asarray(out["D_opt"], dtype=float) * np.ones(C.shape))


def _numeric_split(fit: Fit, P: dict, C: np.ndarray, extra=None):
    """Minimise loss over ln N with D = C / (6N): a coarse grid, then golden section."""
    k = FLOPS_PER_TOKEN_PARAM
    S = C.shape[0]
    center = 0.5 * np.log(C / k)                                  # (S,)
    offs = np.linspace(-_GRID_DECADES, _GRID_DECADES, _GRID_POINTS) * math.log(10.0)
    step = offs[1] - offs[0]
    x = center[:, None] + offs[None, :]                          # (S, G)
    P2 = {n: np.asarray(v)[:, None] for n, v in P.items()}
    Cg = C[:, None]
    ex2 = {kk: np.asarray(v, dtype=float)[..., None] if np.ndim(v) else v for kk, v in (extra or {}).items()}

    def f(xx, PP, CC, ee):
        N = np.exp(xx)
        D = CC / (k * N)
        y = _evaluate(fit, _features(N, D, CC, extra=ee), PP)
        y = np.broadcast_to(y, np.broadcast_shapes(np.shape(y), np.shape(xx)))
        return np.where(np.isfinite(y), y, np.inf)

    with np.errstate(all="ignore"):
        yg = f(x, P2, Cg, ex2)
    i = np.argmin(yg, axis=1)
    edge = (i == 0) | (i == _GRID_POINTS - 1) | ~np.isfinite(yg[np.arange(S), i])
    a = x[np.arange(S), np.clip(i - 1, 0, _GRID_POINTS - 1)]
    b = x[np.arange(S), np.clip(i + 1, 0, _GRID_POINTS - 1)]
    b = np.where(b <= a, a + step, b)
    g = (math.sqrt(5) - 1) / 2
    with np.errstate(all="ignore"):
        for _ in range(_GOLDEN_ITERS):
            c1 = b - g * (b - a)
            c2 = a + g * (b - a)
            left = f(c1, P, C, extra) <= f(c2, P, C, extra)
            b = np.where(left, c2, b)
            a = np.where(left, a, c1)
    xs = 0.5 * (a + b)
    N = np.exp(xs)
    D = C / (k * N)
    N = np.where(edge, np.nan, N)
    D = np.where(edge, np.nan, D)
    return N, D, edge


def _clip_bounded(fit: Fit, key: str, values: dict, dvals: dict | None, level: float, warnings_: list) -> None:
    """Clip the value and the draws of ``key`` to the fit's target range (Law.target_range), with a
    warning when the value or its interval would have left it (the law is then far outside its data)."""
    draws = (dvals[key],) if dvals is not None else ()
    (values[key],), clipped, beyond = clip_to_target(fit, level, (values[key],), draws)
    if dvals is not None:
        dvals[key] = clipped[0]
    msg = bound_warning(fit, *beyond, level, role=key)
    if msg:
        warnings_.append(msg)


def _invert(fit: Fit, P: dict, target: float, mode, ratio, n_fixed, extra, progress=None):
    """Per draw, the compute whose (optimal or constrained) loss equals ``target``, by bisection
    on ln C. Returns C (S,) with NaN where the target is out of reach in the bracket."""
    S = len(next(iter(P.values())))
    lo = np.full(S, math.log(_C_BRACKET[0]))
    hi = np.full(S, math.log(_C_BRACKET[1]))
    loss_lo = _split(fit, P, np.exp(lo), mode, ratio, n_fixed, extra)[2]
    loss_hi = _split(fit, P, np.exp(hi), mode, ratio, n_fixed, extra)[2]
    ok = (loss_hi <= target) & (loss_lo >= target)
    for _ in range(_BISECT_ITERS):
        mid = 0.5 * (lo + hi)
        lm = _split(fit, P, np.exp(mid), mode, ratio, n_fixed, extra)[2]
        above = ~(lm <= target)         # NaN counts as "not reached yet"
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
        if progress is not None:
            progress(1)
    C = np.exp(0.5 * (lo + hi))
    return np.where(ok, C, np.nan), loss_lo, loss_hi


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def plan(compute=None, loss_fit=None, lr_fit=None, bs_fit=None, downstream_fit=None, *,
         tokens_per_param=None, params=None, target_loss=None, level: float = 0.95,
         warn_factor: float = EXTRAPOLATION_WARN, at: Mapping | None = None, seed: int = 0,
         interval: str | None = None, progress: bool | None = None) -> dict:
    """A training plan for a compute budget (or the budget for a target loss), with intervals.

    compute: training FLOPs C (C = 6 N D). Give this or ``target_loss``.
    loss_fit: a Fit (or fit path / published name) of a loss law; its inputs may be any of
        N, D, C, M (= D/N). The split is compute-optimal unless constrained by
        ``tokens_per_param`` (R: N = sqrt(C/(6R)), D = R N) or ``params`` (N; D = C/(6N)).
    lr_fit, bs_fit: fits of the optimal learning rate / batch size (e.g. ``lr_opt`` on N, D;
        ``bs_opt`` on D), evaluated at the plan's N and D.
    downstream_fit: a fit of downstream error against loss (e.g. ``downstream_exp``), evaluated
        at the predicted loss.
    target_loss: the inverse: the compute needed for this loss.
    level: interval level; warn_factor: extrapolation factor above which a warning is added.
    at: values of any further law inputs (e.g. {"U": 25e9}).
    interval: how the loss fit's intervals are formed (scalelaw.calibration.INTERVALS; default
        the measured default, :func:`scalelaw.calibration.interval_fit`); the other fits keep theirs.

    Returns a dict with ``C``, ``N``, ``D``, ``tokens_per_param``, ``loss`` and, where the fits
    were given, ``lr``, ``batch_tokens``, ``error``; each value also as ``<name>_lower`` /
    ``<name>_upper`` (None without parameter uncertainty, and for the values given: C with
    ``compute``, the loss with ``target_loss``, ``tokens_per_param``, ``params``), plus ``mode``, ``level``,
    ``extrapolation`` ({role: {input: factor}}), ``max_extrapolation`` (None when a fit records no
    fitted range: it cannot be judged), ``warnings``, ``fits``.
    """
    from ..progress import Progress

    loss_fit = _as_fit(loss_fit, "--loss")
    if loss_fit is None:
        raise ScalelawError("a plan needs a loss fit; give --loss FIT (a fit JSON from `scalelaw fit -o` "
                            "or a published fit name such as epoch-2024)")
    from ..calibration import interval_fit, split_not_identified

    loss_fit, interval_notes = interval_fit(loss_fit, interval, role="loss", verb="plan")
    fits = {"loss": loss_fit}
    for key, option, given in (("lr", "--lr", lr_fit), ("batch_tokens", "--bs", bs_fit),
                               ("error", "--downstream", downstream_fit)):
        f = _as_fit(given, option)
        if f is not None:
            fits[key] = f
    if (compute is None) == (target_loss is None):
        raise ScalelawError("give exactly one of --compute C (the budget in FLOPs) or --target-loss L "
                            "(the loss to reach); got " + ("both" if compute is not None else "neither"))
    if tokens_per_param is not None and params is not None:
        raise ScalelawError("give at most one of --tokens-per-param R and --params N; the other follows "
                            "from C = 6 N D")
    if not 0 < level < 1:
        raise ScalelawError(f"--level must be between 0 and 1; got {level!r}")
    mode = "compute-optimal"
    ratio = n_fixed = None
    if tokens_per_param is not None:
        ratio = _positive(tokens_per_param, "--tokens-per-param")
        mode = "tokens_per_param"
    if params is not None:
        n_fixed = _positive(params, "--params")
        mode = "params"
    extra = {k: _positive(v, f"--at {k}=") for k, v in dict(at or {}).items()}

    law = loss_fit.law
    avail = {"N", "D", "C", "M", "tokens_per_param", "N_nonembed", *extra}
    _check_inputs(loss_fit, "loss", avail)
    if "batch_tokens" in fits:     # a batch law may also read the loss (critical batch B_crit(L))
        _check_inputs(fits["batch_tokens"], "--bs", avail | {"loss"})
    if "lr" in fits:
        if "batch_tokens" in fits["lr"].law.inputs and "batch_tokens" not in fits:
            raise ScalelawError(f"the --lr fit's law {fits['lr'].law.name!r} takes the batch size; give a batch-size "
                                "fit with --bs so the plan can feed it")
        _check_inputs(fits["lr"], "--lr", avail | {"batch_tokens", "loss"})
    if "error" in fits:
        _check_inputs(fits["error"], "--downstream", avail | {"loss"})
    for key, option in (("loss", "--loss"), ("lr", "--lr"), ("batch_tokens", "--bs"), ("error", "--downstream")):
        if key in fits:
            _check_role(fits[key], option)
    if mode == "compute-optimal" and not _uses_split(law) and len(fits) > 1 and any(
            _uses_split(f.law) for k, f in fits.items() if k != "loss"):
        raise ScalelawError(f"loss law {law.name!r} depends on C only, so it cannot choose N and D for the "
                            "lr/batch fits; constrain the split with --tokens-per-param R or --params N")

    # ---- parameter draws, matched across fits ---------------------------------------------
    rng = np.random.default_rng(seed)
    samples = {k: f.param_samples(seed=seed) for k, f in fits.items()}
    counts = [len(s) for s in samples.values() if s is not None and len(s)]
    S = max(counts) if counts else 0
    draws = {k: _param_arrays(f, samples[k], S, rng) for k, f in fits.items()} if S else None
    point = {k: _point_arrays(f) for k, f in fits.items()}

    warnings_: list = list(interval_notes)
    n_steps = (_BISECT_ITERS * (2 if S else 1)) if target_loss is not None else 0
    bar = Progress(total=n_steps, desc="plan", enabled=progress if n_steps else False)

    # ---- the budget ---------------------------------------------------------------------
    if target_loss is not None:
        target = _positive(target_loss, "--target-loss")
        Cp, llo, lhi = _invert(loss_fit, point["loss"], target, mode, ratio, n_fixed, extra, bar.update)
        if not np.isfinite(Cp[0]):
            if not lhi[0] <= target:
                floor = f" (its irreducible loss E is {loss_fit.params['E']:.4g})" if "E" in loss_fit.params else ""
                raise ScalelawError(f"--target-loss {target:g} is not reached by loss law {law.name!r} even at "
                                    f"{_C_BRACKET[1]:.0e} FLOPs{floor}; choose a higher target")
            raise ScalelawError(f"--target-loss {target:g} is already reached below {_C_BRACKET[0]:.0e} FLOPs "
                                f"(loss there {llo[0]:.4g}); choose a lower target")
        C_point = np.asarray(Cp, dtype=float)
        C_draws = None
        if S:
            C_draws = _invert(loss_fit, draws["loss"], target, mode, ratio, n_fixed, extra, bar.update)[0]
            miss = float(np.mean(~np.isfinite(C_draws)))
            if miss > 0:
                warnings_.append(f"{miss:.1%} of the loss fit's parameter draws never reach loss {target:g}; "
                                 "the upper end of the compute interval is unbounded" if miss > (1 - level) / 2
                                 else f"{miss:.1%} of the loss fit's parameter draws never reach loss {target:g}")
    else:
        C_point = np.array([_positive(compute, "--compute")])
        C_draws = np.full(S, C_point[0]) if S else None
    bar.close()

    # ---- split and loss ------------------------------------------------------------------
    N, D, L, edge = _split(loss_fit, point["loss"], C_point, mode, ratio, n_fixed, extra)
    if edge[0]:
        raise ScalelawError(
            f"loss law {law.name!r} has no compute-optimal split at C={C_point[0]:.3g} (the loss keeps "
            f"falling towards the edge of a {2 * _GRID_DECADES:.0f}-decade search in N); constrain it with "
            "--tokens-per-param R or --params N")
    with np.errstate(all="ignore"):
        values = {"C": C_point, "N": N, "D": D, "tokens_per_param": D / N, "loss": L}
    dvals = None
    if S:
        Nd, Dd, Ld, edged = _split(loss_fit, draws["loss"], C_draws, mode, ratio, n_fixed, extra)
        with np.errstate(all="ignore"):
            dvals = {"C": C_draws, "N": Nd, "D": Dd, "tokens_per_param": Dd / Nd, "loss": Ld}
        if edged.mean() > 0.01:
            warnings_.append(f"{edged.mean():.1%} of the loss fit's parameter draws have no interior "
                             "compute-optimal split; they are left out of the intervals")

    # ---- lr, batch size, downstream error -------------------------------------------------
    feats_p = _features(values["N"], values["D"], values["C"], values["loss"], extra)
    feats_d = _features(dvals["N"], dvals["D"], dvals["C"], dvals["loss"], extra) if S else None
    for key in ("batch_tokens", "lr", "error"):
        if key not in fits:
            continue
        values[key] = _evaluate(fits[key], feats_p, point[key]) * np.ones(1)
        if S:
            dvals[key] = _evaluate(fits[key], feats_d, draws[key]) * np.ones(S)
        if fits[key].law.target_range is not None:   # a bounded target (an error rate): clip, and say so
            _clip_bounded(fits[key], key, values, dvals if S else None, level, warnings_)
        if key == "batch_tokens":      # an lr law may take the batch size (e.g. lr_power)
            feats_p["batch_tokens"] = values[key]
            if S:
                feats_d["batch_tokens"] = dvals[key]

    # ---- assemble -------------------------------------------------------------------------
    # which fits each quantity depends on; a quantity gets an interval only when one of them
    # carries parameter uncertainty (fits without it are treated as exact, with a warning)
    uncertain = {k for k, v in samples.items() if v is not None and len(v)}
    split_from = {"loss"} if (mode == "compute-optimal" or target_loss is not None) else set()
    feeds = {"C": {"loss"} if target_loss is not None else set(), "N": split_from, "D": split_from,
             "tokens_per_param": split_from, "loss": {"loss"}}
    for key in ("batch_tokens", "lr", "error"):
        if key in fits:
            ins = set(fits[key].law.inputs)
            feeds[key] = ({key} | (split_from if ins - {"loss", "batch_tokens"} else set())
                          | ({"loss"} if "loss" in ins else set())
                          | (feeds.get("batch_tokens", set()) if "batch_tokens" in ins else set()))
    if S:
        for k in fits:
            if k not in uncertain:
                warnings_.append(f"{k} fit ({fits[k].law.name}, {fits[k].label or 'no samples'}) carries no parameter "
                                 "uncertainty; the intervals treat it as exact")
    out: dict = {"mode": mode, "level": level}
    if target_loss is not None:
        out["target_loss"] = float(target_loss)
    if ratio is not None:
        out["tokens_per_param_given"] = ratio
    if n_fixed is not None:
        out["params_given"] = n_fixed
    order = ["C", "N", "D", "tokens_per_param", "loss", "lr", "batch_tokens", "error"]
    for key in order:
        if key not in values:
            continue
        v = float(values[key][0])
        out[key] = v if math.isfinite(v) else None
        lo = hi = None
        # what the user gave (the budget, the target loss, a ratio, a model size) is not an
        # estimate: no interval (null), with or without draws; what follows from it exactly (N and
        # D of a constrained split, for a budget) has a zero-width one
        given = key == {"compute-optimal": None, "tokens_per_param": "tokens_per_param",
                        "params": "N"}[mode] or key == ("loss" if target_loss is not None else "C")
        exact = target_loss is None and key in ("N", "D", "tokens_per_param") and mode != "compute-optimal"
        if key == "loss" and target_loss is not None:   # the inverse reaches the target by construction
            out[key] = float(target_loss)
        if given:
            pass
        elif exact and out[key] is not None:
            lo = hi = v
        elif S and feeds[key] & uncertain:
            arr = np.asarray(dvals[key], dtype=float)
            if np.isfinite(arr).any():
                a, b = percentile_interval(arr[np.isfinite(arr)], level)
                lo, hi = float(a), float(b)
                if key == "C" and target_loss is not None:
                    miss = float(np.mean(~np.isfinite(arr)))
                    if miss > (1 - level) / 2:
                        hi = math.inf
        out[f"{key}_lower"], out[f"{key}_upper"] = lo, hi

    # ---- extrapolation ---------------------------------------------------------------------
    # a fit without a recorded range (published constants) cannot be judged: max_extrapolation is
    # then None (JSON null), not 1.0, which would claim the plan lies inside every fit's data
    ex, worst = {}, 1.0
    for key, f in fits.items():
        note = health_warning(f, key)
        if note:
            warnings_.append(note)
        note = no_range_warning(f, key)
        if note:
            warnings_.append(note)
            worst = None
        X = {c: [float(np.asarray(feats_p[c], dtype=float).ravel()[0])] for c in f.law.inputs}
        if any(not math.isfinite(v[0]) for v in X.values()):
            continue
        facs = {c: float(np.asarray(v).ravel()[0]) for c, v in f.extrapolation(X).items()}
        ex[key] = facs
        for c, fac in facs.items():
            worst = None if worst is None else max(worst, fac)
            if fac > warn_factor:
                lo_r, hi_r = f.input_ranges[c]
                warnings_.append(f"{key} fit ({f.law.name}): {c} = {X[c][0]:.4g} is {fac:.0f}x beyond the "
                                 f"fitted range [{lo_r:.3g}, {hi_r:.3g}]; the interval assumes the law holds that far")
    kaplan = [f"{k} fit ({f.law.name})" for k, f in fits.items() if "N_nonembed" in f.law.inputs]
    if kaplan:
        warnings_.append(f"{', '.join(kaplan)} counts non-embedding parameters: the plan's N is read as N_nonembed "
                         "there; mind the convention when mixing laws")
    if not S:
        warnings_.append("no fit carries parameter uncertainty (bootstrap or covariance); values have no intervals")
    split = split_not_identified(loss_fit, role="loss") if mode == "compute-optimal" else None
    if split:   # one warning line instead of N and D bands that look precise
        warnings_.append(split)
        for key in ("N", "D", "tokens_per_param"):
            if key in out:
                out[f"{key}_lower"] = out[f"{key}_upper"] = None
    out["extrapolation"] = ex
    out["max_extrapolation"] = worst
    out["warn_factor"] = warn_factor
    out["warnings"] = warnings_
    out["samples"] = S
    out["fits"] = {k: {"law": f.law.name, "source": f.label or f.data.get("source"),
                       "intervals": f.interval_method, "inputs": list(f.law.inputs)}
                   for k, f in fits.items()}
    return out


# --------------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------------
_LABELS = {"C": "C (FLOPs)", "N": "N (parameters)", "D": "D (tokens)", "loss": "loss",
           "lr": "lr*", "batch_tokens": "B* (tokens)", "error": "downstream error"}


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.4g}"


def plan_rows(result: Mapping) -> list:
    """(label, value, lower, upper) rows of a plan, in display order."""
    rows = []
    for key in ("C", "N", "D", "tokens_per_param", "loss", "lr", "batch_tokens", "error"):
        if key not in result:
            continue
        label = _LABELS.get(key, "tokens per param" if key == "tokens_per_param" else key)
        rows.append((label, result[key], result.get(f"{key}_lower"), result.get(f"{key}_upper")))
    return rows


def format_plan(result: Mapping) -> str:
    """The plan as a few lines of text (what `scalelaw plan` prints)."""
    lvl = int(round(100 * result.get("level", 0.95)))
    mode = {"compute-optimal": "compute-optimal split",
            "tokens_per_param": f"{_fmt(result.get('tokens_per_param_given'))} tokens per parameter",
            "params": f"N fixed at {_fmt(result.get('params_given'))}"}[result["mode"]]
    head = (f"compute to reach loss {result['target_loss']:.4g}" if "target_loss" in result
            else f"plan for C = {result['C']:.4g} FLOPs")
    lines = [f"{head} ({mode}; {lvl}% intervals)", ""]
    lines.append(f"  {'':<18}{'value':>12}{f'{lvl}% lower':>14}{f'{lvl}% upper':>14}")
    for label, v, lo, hi in plan_rows(result):
        # no interval reads '-' (JSON null), as in the tables of `scalelaw predict`
        lines.append(f"  {label:<18}{_fmt(v):>12}{_fmt(lo):>14}{_fmt(hi):>14}")
    fits = result.get("fits") or {}
    if fits:
        lines.append("")
        lines.append("fits:")
        for key, f in fits.items():
            lines.append(f"  {key:<14}{f.get('law', '')} from {f.get('source')}; intervals: {f.get('intervals')}")
    ex = result.get("extrapolation") or {}
    if any(ex.values()):
        lines.append("")
        lines.append("extrapolation beyond each fit's data (1 = inside):")
        for key, facs in ex.items():
            if not facs:
                continue
            law = result.get("fits", {}).get(key, {}).get("law", "")
            lines.append(f"  {key + ' (' + law + ')':<28}" + "  ".join(f"{c} {v:.3g}x" for c, v in facs.items()))
    return "\n".join(lines)
