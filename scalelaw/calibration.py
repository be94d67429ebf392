"""Small-sample calibration of a Fit's intervals (measured in benchmarks/bench_coverage.py).

Scaling-law fits have few points per parameter (a ladder of 20-40 runs for 5 parameters), where
the textbook intervals are too narrow:

* the bootstrap over runs estimates the sampling spread with a downward bias of about
  sqrt((n - p) / n) (each resample refits p parameters to n rows, as the original fit did, but
  the rows' scatter around the fitted curve is already reduced by the fit), and a percentile
  interval uses normal-like quantiles where a t with n - p degrees of freedom is due;
* the delta method's Gauss-Newton covariance s^2 (J^T J)^-1 is the least-squares covariance.
  For a Huber objective whose delta is small against the noise (the literature's 1e-3 against
  a typical 0.01 scatter) the estimator behaves like least absolute deviations, whose variance
  is larger: the M-estimator sandwich E[psi^2] / E[psi']^2 (J^T J)^-1.

``calibrate(fit, method, level)`` returns a copy of the Fit whose intervals include these
corrections, at ``level`` (default: the fit's); every other field (the estimate, diagnostics,
data) is unchanged and the method is recorded in ``settings["calibration"]``. A Fit already
applies part of the small-sample honesty itself (:class:`scalelaw.result.Fit`): its
delta-method draws and its new-run band use t_{n-p} quantiles, so a calibration adds only
what is missing and never a second t / z. Methods:

``"inflate"`` (bootstrap fits): bootstrap deviations from the estimate, in the engine's internal
    coordinates (ln A, ln B, ln E, alpha, beta for Chinchilla), are scaled by
    c = sqrt(n / (n - p)) * t_{n-p} / z, so percentile intervals keep their asymmetry but get
    the small-sample width (the percentile bootstrap has no t of its own).
``"sandwich-t"`` (delta-method fits): the covariance becomes the Huber sandwich (for Huber
    objectives; E[psi'] is estimated with a normal kernel so it is not 0 when every residual
    exceeds delta; a least-squares covariance is left as it is); the t part is the Fit's own
    t_{n-p} draws.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np
from scipy import stats

from .errors import ScalelawError

METHODS = ("inflate", "sandwich-t")


def _dof(fit) -> int:
    n, p = int(fit.n_obs), len(fit.free)
    if n <= p:
        raise ScalelawError(f"calibration needs more runs than free parameters (n_obs={n}, {p} free): it scales "
                            "intervals by the n - p residual degrees of freedom; fit more runs or fix parameters")
    return n - p


def _level(fit, level) -> float:
    level = fit.level if level is None else level
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ScalelawError(f"the interval level must be a number between 0 and 1 (e.g. 0.95); got {level!r}")
    return float(level)


def t_over_z(fit, level: float | None = None) -> float:
    """Ratio of the t (n - p degrees of freedom) and normal quantiles at ``level`` (default: the fit's)."""
    q = 0.5 + _level(fit, level) / 2
    return float(stats.t.ppf(q, _dof(fit)) / stats.norm.ppf(q))


def bootstrap_inflation(fit, level: float | None = None) -> float:
    """c = sqrt(n / (n - p)) * t_{n-p} / z (about 1.15 for 30 runs and 5 parameters)."""
    n = int(fit.n_obs)
    return math.sqrt(n / _dof(fit)) * t_over_z(fit, level)


def huber_variance_factor(residuals: np.ndarray, delta: float, n_params: int) -> float:
    """Sandwich / least-squares variance ratio for a Huber fit with these (log) residuals.

    (sum psi(r)^2 / (n - p)) / m^2 divided by (sum r^2 / (n - p)), where m estimates
    E[psi'(r)] = P(|r| <= delta) with a normal kernel (Silverman bandwidth) so it stays positive
    when few or no residuals fall inside delta.
    """
    r = np.asarray(residuals, dtype=float)
    r = r[np.isfinite(r)]
    n = r.size
    if n <= n_params:
        return 1.0
    # a Huber fit with delta far below the scatter interpolates ~p points (residual ~0), as least
    # absolute deviations does; those would inflate the density estimate at 0, so leave them out
    # of it
    rk = r[np.abs(r) > 1e-6 * delta]
    if rk.size <= n_params:
        rk = r
    psi = np.clip(r, -delta, delta)
    s_r2 = float(np.sum(r ** 2))
    if s_r2 <= 0:
        return 1.0
    sd = float(np.std(rk, ddof=1))
    iqr = float(np.subtract(*np.quantile(rk, [0.75, 0.25]))) / 1.349
    h = 0.9 * max(min(sd, iqr) if iqr > 0 else sd, 1e-300) * rk.size ** -0.2
    m = float(np.mean(stats.norm.cdf((delta - rk) / h) - stats.norm.cdf((-delta - rk) / h)))
    if m <= 0:
        return 1.0
    return float(np.sum(psi ** 2) / m ** 2 / s_r2)


def scale_deviations(fit, samples: np.ndarray, c: float) -> np.ndarray:
    """Parameter samples whose deviations from the estimate are scaled by ``c`` in the engine's
    internal coordinates (ln of a log parameter), kept within the parameters' bounds."""
    out = np.array(samples, dtype=float, copy=True)
    for i, p in enumerate(fit.law.params):
        if p.name not in fit.free:
            continue
        est = fit.params[p.name]
        with np.errstate(all="ignore"):
            if p.log:
                if est > 0:   # an estimate at 0 (ln = -inf) has no deviations to scale
                    out[:, i] = np.exp(math.log(est) + c * (np.log(out[:, i]) - math.log(est)))
            else:
                out[:, i] = est + c * (out[:, i] - est)
        out[:, i] = np.clip(out[:, i], p.lower, p.upper)
    return out


def calibrate(fit, method: str = "inflate", level: float | None = None):
    """A copy of ``fit`` with small-sample calibrated intervals (see the module docstring)."""
    if method not in METHODS:
        raise ScalelawError(f"calibration method must be one of {', '.join(METHODS)}; got {method!r}")
    if fit.settings.get("calibration"):
        raise ScalelawError(f"this fit is already calibrated ({fit.settings['calibration']!r}); calibrate the "
                            "uncalibrated fit instead of widening its intervals twice")
    law = fit.law
    level = _level(fit, level)
    _dof(fit)
    settings = dict(fit.settings)
    settings["calibration"] = method
    if method == "inflate":
        if fit.boot is None or not len(fit.boot):
            raise ScalelawError("calibration 'inflate' needs bootstrap samples: fit with boot=1000 (--boot 1000)")
        c = bootstrap_inflation(fit, level)
        settings["calibration_factor"] = c
        return dataclasses.replace(fit, boot=scale_deviations(fit, fit.boot, c), level=level, settings=settings)
    # sandwich-t: Fit.param_samples already widens the delta-method draws to t_{n-p} quantiles
    if fit.cov is None:
        raise ScalelawError("calibration 'sandwich-t' needs the fit's covariance (a fit made by scalelaw.fit.fit)")
    factor = 1.0
    obj = fit.objective or {}
    if obj.get("name") in ("huber-log", "huber") and obj.get("delta") and fit.residuals is not None:
        factor = huber_variance_factor(fit.residuals, float(obj["delta"]), len(fit.free))
    settings["calibration_factor"] = factor
    return dataclasses.replace(fit, boot=None, cov=np.asarray(fit.cov) * factor, level=level, settings=settings)


# --------------------------------------------------------------------------------------------
# Huber's delta from the data (prototype of a scale-aware default; see docs/uncertainty.md)
# --------------------------------------------------------------------------------------------
HUBER_K = 1.345  # Huber's constant: 95% efficiency under normal errors, robust beyond


def auto_delta(residuals: np.ndarray, n_params: int, k: float = HUBER_K) -> float:
    """delta = k * robust scale of the residuals (1.4826 MAD, widened by sqrt(n / (n - p)))."""
    r = np.asarray(residuals, dtype=float)
    r = r[np.isfinite(r)]
    n = r.size
    s = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    if n > n_params:
        s *= math.sqrt(n / (n - n_params))
    return max(k * s, 1e-6)


def fit_auto_delta(law, data, *, pilot_delta: float = 1e-2, k: float = HUBER_K, starts=None, **kw):
    """Huber-log fit whose delta is k times the residual scale of a pilot fit (delta pilot_delta).

    Two passes: the pilot fit on the given starts, then the final fit started from the pilot's
    optimum plus the given starts. Returns the final Fit; settings["delta_rule"] records the rule.
    """
    from .fit import fit

    kw = dict(kw)
    if kw.pop("objective", None) not in (None, "huber-log"):
        raise ScalelawError("an automatic delta is for the huber-log objective only; leave objective out")
    if "delta" in kw:
        raise ScalelawError("fit_auto_delta chooses delta itself; leave delta out, or fit with a number as delta")
    boot = kw.pop("boot", 0)
    pilot = fit(law, data, objective="huber-log", delta=pilot_delta, starts=starts, **kw)
    d = auto_delta(pilot.residuals, len(pilot.free), k)
    first = dict(zip(pilot.free, (pilot.params[n] for n in pilot.free)))
    if starts is None:
        st = [first]
    elif len(starts) and isinstance(starts[0], Mapping):  # the starts forms scalelaw.fit.fit takes
        st = [first, *starts]
    else:
        st = np.vstack([[list(first.values())], np.atleast_2d(np.asarray(starts, dtype=float))])
    out = fit(law, data, objective="huber-log", delta=d, starts=st, boot=boot, **kw)
    out.settings["delta_rule"] = f"{k} x robust residual scale of a delta={pilot_delta} pilot fit"
    return out


# --------------------------------------------------------------------------------------------
# Interval methods of predict / optimum / plan (measured in benchmarks/bench_target_coverage.py)
# --------------------------------------------------------------------------------------------
INTERVALS = {
    "delta": "delta method (Gauss-Newton covariance, Student t draws)",
    "bootstrap": "percentile bootstrap over runs",
    "bootstrap-t": "bootstrap over runs, deviations scaled by sqrt(n/(n-p)) t/z",
    "residual-t": "residual bootstrap (rescaled residuals on the fitted curve), deviations scaled by t/z",
}
INTERVAL_K = 1000   # resamples a refitting method draws when the fit holds none of its own


def problem_of(fit):
    """The engine's Problem for the rows a Fit was fitted on (``fit.data["runs"]``), or a
    ScalelawError naming what is missing (published constants; a fit saved before rows were kept)."""
    from .fit import Problem

    runs = (fit.data or {}).get("runs")
    if not runs or fit.theta is None:
        why = (f"{fit.label} has no data" if fit.label else
               "the fit file does not record the rows it was fitted on (refit it with this scalelaw)")
        raise ScalelawError(f"this interval method refits the data, but {why}; use --interval delta"
                            + (" or a fit with bootstrap samples" if not fit.label else ""))
    X = tuple(np.asarray(runs["inputs"][c], dtype=float) for c in fit.law.inputs)
    y = np.asarray(runs["target"], dtype=float)
    w = np.ones_like(y) if runs.get("weights") is None else np.asarray(runs["weights"], dtype=float)
    obj = fit.objective or {}
    fixed = {n: fit.params[n] for n in fit.law.param_names if n not in fit.free}
    return Problem(fit.law, X, y, w, tuple(fit.free), fixed, obj.get("name") or fit.law.default_objective,
                   float(obj.get("delta") or fit.settings.get("delta") or 1e-3))


def with_interval(fit, method: str, *, k: int | None = None, seed: int | None = None):
    """A copy of ``fit`` whose intervals (parameters, derived, predict, optimum, plan) come from
    ``method`` (one of INTERVALS); the estimate is unchanged and settings["interval"] records it.

    Refitting methods reuse the fit's own bootstrap samples when it has them ("bootstrap",
    "bootstrap-t"); otherwise they refit ``k`` resamples (default INTERVAL_K) of the rows the
    fit recorded, with ``seed`` (default: the fit's)."""
    from .uncertainty import bootstrap, residual_bootstrap

    if method not in INTERVALS:
        raise ScalelawError(f"--interval must be one of {', '.join(INTERVALS)}; got {method!r}")
    if fit.settings.get("calibration"):
        raise ScalelawError(f"this fit's intervals are already calibrated ({fit.settings['calibration']!r}); "
                            "choose an interval method on the uncalibrated fit")
    settings = {**fit.settings, "interval": method}
    if method == "delta":
        if fit.cov is None:
            raise ScalelawError(f"--interval delta needs the fit's covariance, which "
                                f"{fit.label or 'this fit'} does not have")
        return dataclasses.replace(fit, boot=None, settings=settings)
    k = int(k or INTERVAL_K)
    seed = int(fit.settings.get("seed") or 0) if seed is None else int(seed)
    own = fit.boot if method in ("bootstrap", "bootstrap-t") and fit.boot is not None and len(fit.boot) else None
    prob = problem_of(fit) if own is None else None
    _dof(fit)
    if method in ("bootstrap", "bootstrap-t"):
        samples = own if own is not None else bootstrap(prob, np.asarray(fit.theta, dtype=float), k, seed=seed,
                                                        n_jobs=1)
        if method == "bootstrap-t":
            samples = scale_deviations(fit, samples, bootstrap_inflation(fit))
        return dataclasses.replace(fit, boot=samples, settings=settings)
    samples, _ = residual_bootstrap(prob, np.asarray(fit.theta, dtype=float), k, seed=seed, n_jobs=1)
    samples = scale_deviations(fit, samples, t_over_z(fit))
    return dataclasses.replace(fit, boot=samples, settings=settings)


# the interval each verb gives by default: per quantity it reports (the loss at a target for
# predict; the compute-optimal N and D for optimum and plan), the method whose 95% intervals kept
# nominal coverage at 10-1000x extrapolated targets at the least width (docs/uncertainty.md,
# "Intervals at the target")
DEFAULT_INTERVAL = {"predict": "bootstrap-t", "optimum": "bootstrap", "plan": "bootstrap"}


def interval_fit(fit, method: str | None = None, role: str | None = None, verb: str = "predict"):
    """(fit with the intervals of ``method``, warning lines) for predict / optimum / plan (``verb``).

    ``method`` None means DEFAULT_INTERVAL[verb], except where a fit's own intervals are deliberate or
    nothing can be refitted: published constants (no data), a calibrated fit, a fit bootstrapped
    by groups (runs that are not independent), and a fit file that does not record its rows
    (written before fits kept them), which keeps its own intervals with a warning saying so. A
    method named explicitly is applied or refused with an error."""
    who = f"{role} fit ({fit.law.name})" if role else f"fit ({fit.law.name})"
    if method is not None:
        return with_interval(fit, method), []
    default = DEFAULT_INTERVAL[verb]
    if fit.label or fit.settings.get("calibration") or fit.settings.get("boot_groups") or fit.cov is None:
        return fit, []
    own = default in ("bootstrap", "bootstrap-t") and fit.boot is not None and len(fit.boot)
    if not own and (not (fit.data or {}).get("runs") or fit.theta is None):
        return fit, [f"{who} does not record the rows it was fitted on, so its intervals are its own "
                     f"({fit.interval_method}), not the measured default {default!r}; refit it with "
                     "this scalelaw for those (docs/uncertainty.md)"]
    if fit.n_obs <= len(fit.free):
        return fit, []
    return with_interval(fit, default), []


# runs whose tokens per parameter (D/N) span less than this factor cannot separate the N and D
# terms of a law in N and D: the compute-optimal split is then not determined by the data
# (measured: the N_opt intervals of every method covered 11-25% on 20-tokens-per-parameter ladders,
# docs/uncertainty.md)
SEPARATION_SPREAD = 2.0


def split_not_identified(fit, role: str | None = None) -> str | None:
    """The warning line for a fit whose runs cannot separate its N and D terms (all at about one
    tokens-per-parameter ratio), else None. Needs a law in N and D and the fit's recorded rows."""
    runs = (fit.data or {}).get("runs") or {}
    inputs = runs.get("inputs") or {}
    if "N" not in inputs or "D" not in inputs:
        return None
    N, D = np.asarray(inputs["N"], dtype=float), np.asarray(inputs["D"], dtype=float)
    if runs.get("weights") is not None:
        keep = np.asarray(runs["weights"], dtype=float) > 0
        N, D = N[keep], D[keep]
    with np.errstate(all="ignore"):
        r = D / N
    r = r[np.isfinite(r) & (r > 0)]
    if r.size < 2 or r.max() / r.min() >= SEPARATION_SPREAD:
        return None
    who = f"{role} fit ({fit.law.name})" if role else f"fit ({fit.law.name})"
    span = f"{r.min():.3g}" if r.max() / r.min() < 1.01 else f"{r.min():.3g}-{r.max():.3g}"
    return (f"{who}: every run has {span} tokens per parameter, so the data cannot separate the N and D terms and "
            "do not determine the compute-optimal split: its N and D intervals are left out (every interval method "
            "covered 11-25% on such ladders, docs/uncertainty.md); add runs at other token counts, e.g. 1/4 and 4x "
            "that ratio")
