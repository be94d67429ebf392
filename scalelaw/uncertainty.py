"""Uncertainty: bootstrap over runs, delta-method intervals, and interval helpers.

Bootstrap resamples rows (runs) with replacement, expressed as integer weights, and refits all
resamples at once with the batched engine warm-started from the full-data optimum; large jobs
are split over local processes or a Dask cluster. Without a bootstrap, intervals come from the
Gauss-Newton covariance of the (log) residuals (delta method), propagated by simulation.
"""
from __future__ import annotations

import numpy as np


def resample_weights(n: int, k: int, seed: int = 0, base: np.ndarray | None = None,
                     groups: np.ndarray | None = None) -> np.ndarray:
    """k bootstrap resamples of n rows as count weights, shape (k, n).

    With ``groups`` (one label per row) whole groups are drawn with replacement and every row
    of a drawn group gets its group's count (a cluster bootstrap).
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        idx = rng.integers(0, n, size=(k, n))
        counts = np.zeros((k, n))
        np.add.at(counts, (np.repeat(np.arange(k), n), idx.ravel()), 1.0)
    else:
        labels, inv = np.unique(np.asarray(groups), return_inverse=True)
        g = len(labels)
        idx = rng.integers(0, g, size=(k, g))
        gcounts = np.zeros((k, g))
        np.add.at(gcounts, (np.repeat(np.arange(k), g), idx.ravel()), 1.0)
        counts = gcounts[:, inv]
    if base is not None:
        counts = counts * base[None, :]
    return counts


def bootstrap(prob, theta: np.ndarray, k: int, *, seed: int = 0, n_jobs=None, scheduler=None,
              progress=None, max_iter: int = 300, groups: np.ndarray | None = None) -> np.ndarray:
    """Refit ``k`` resamples; returns natural parameter samples (k, n_params_all) in law order."""
    from .fit import _run_batched

    n = prob.y.shape[0]
    W = resample_weights(n, k, seed, prob.weights, groups=groups)
    theta0 = np.repeat(theta[None, :], k, axis=0)
    th, f, _, _ = _run_batched(prob, theta0, W, n_jobs=n_jobs, scheduler=scheduler,
                               progress=progress, max_iter=max_iter, ftol=1e-13)
    return _natural_samples(prob, th, f)


def _natural_samples(prob, th: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Refitted internal vectors -> natural samples of every parameter (law order); NaN rows
    where the refit failed (non-finite objective)."""
    nat = prob.natural(th)
    out = np.empty((th.shape[0], len(prob.law.param_names)))
    for i, name in enumerate(prob.law.param_names):
        out[:, i] = prob.fixed[name] if name in prob.fixed else nat[:, prob.free.index(name)]
    out[~np.isfinite(f)] = np.nan
    return out


def percentile_interval(samples: np.ndarray, level: float = 0.95, axis: int = 0):
    a = (1 - level) / 2
    with np.errstate(all="ignore"):
        lo = np.nanquantile(samples, a, axis=axis)
        hi = np.nanquantile(samples, 1 - a, axis=axis)
    return lo, hi


def simulate_params(theta: np.ndarray, cov: np.ndarray, k: int = 4000, seed: int = 0) -> np.ndarray:
    """Draws of the internal parameter vector from N(theta, cov) (delta-method propagation)."""
    rng = np.random.default_rng(seed)
    cov = 0.5 * (cov + cov.T)
    w, v = np.linalg.eigh(cov)
    w = np.clip(w, 0, None)
    z = rng.standard_normal((k, len(theta)))
    return theta[None, :] + (z * np.sqrt(w)) @ v.T


def residual_targets(prob, theta: np.ndarray, k: int, seed: int = 0):
    """The ``k`` data sets of :func:`residual_bootstrap` in the objective's space (k, n), and the
    rescaled residual pool they were drawn from."""
    r, pred = prob.residuals(theta[None, :])
    r, pred = r[0], pred[0]
    used = prob.weights > 0
    n, p = int(used.sum()), prob.P
    e = r[used] - np.average(r[used], weights=prob.weights[used])
    e = e * np.sqrt(n / max(n - p, 1))
    rng = np.random.default_rng(seed)
    draws = rng.choice(e, size=(k, r.size))
    with np.errstate(all="ignore"):
        fitted = np.log(pred) if prob.log_obj else pred
    return fitted[None, :] - draws, e          # r = fitted - data, so data = fitted - r


def residual_bootstrap(prob, theta: np.ndarray, k: int, *, seed: int = 0, n_jobs=None, scheduler=None,
                       progress=None, max_iter: int = 300):
    """Refit ``k`` data sets made by adding resampled residuals to the fitted curve.

    The residuals of the fit (log residuals for log objectives), centred and rescaled by
    sqrt(n / (n - p)) (a fit's residuals scatter less than its errors: it used p degrees of
    freedom on them), are drawn with replacement, one per run, and added to the fitted values;
    every data set is refitted from the optimum in one batch. Rows with weight 0 stay out.
    Returns (natural parameter samples (k, n_params_all) in law order, the rescaled residual pool).
    """
    from .fit import _run_batched

    target, e = residual_targets(prob, theta, k, seed)
    theta0 = np.repeat(theta[None, :], k, axis=0)
    th, f, _, _ = _run_batched(prob, theta0, None, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
                               max_iter=max_iter, ftol=1e-13, target=target)
    return _natural_samples(prob, th, f), e
