"""Uncertainty helpers, the bootstrap over runs, and small-sample calibration (fast: < 30 s)."""
import math

import numpy as np
import pandas as pd
import pytest

import scalelaw.fit as fit_mod
import scalelaw.parallel as parallel_mod
from scalelaw.calibration import bootstrap_inflation, calibrate, huber_variance_factor
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.uncertainty import percentile_interval, resample_weights, simulate_params

TRUTH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
LAW = get_law("chinchilla")


def _subgrid():
    """Truth-independent 288 of Hoffmann's 4,500 starts (as benchmarks/bench_coverage.py)."""
    g = LAW.grid_starts()
    g = g[np.isin(g[:, 0], [-0.5, 0.5]) & np.isin(g[:, 3], [0.5, 1.0]) & np.isin(g[:, 4], [0.5, 1.0])]
    return np.column_stack([np.exp(g[:, 0]), np.exp(g[:, 1]), np.exp(g[:, 2]), g[:, 3], g[:, 4]])


SUB = _subgrid()


def ladder(noise=0.003, seed=0):
    rng = np.random.default_rng(seed)
    N, R = np.meshgrid(np.geomspace(1e7, 1e9, 6), [5, 10, 20, 40, 80])
    N = N.ravel()
    D = R.ravel() * N
    y = LAW.evaluate({"N": N, "D": D}, TRUTH) * np.exp(rng.normal(0, noise, N.size))
    return pd.DataFrame({"N": N, "D": D, "loss": y})


# ---- resample_weights -------------------------------------------------------------------------
def test_resample_weights_are_bootstrap_counts():
    W = resample_weights(30, 500, seed=4)
    assert W.shape == (500, 30)
    assert np.all(W == np.round(W)) and W.min() >= 0
    assert np.all(W.sum(axis=1) == 30)                       # each resample has n rows
    # each row appears Binomial(n, 1/n) times: mean 1, variance (1 - 1/n)
    assert W.mean() == pytest.approx(1.0)
    assert W.var() == pytest.approx(1 - 1 / 30, rel=0.1)
    # about 1 - (1 - 1/n)^n = 63.8% of the rows appear at least once in a resample
    assert (W > 0).mean() == pytest.approx(1 - (1 - 1 / 30) ** 30, abs=0.02)


def test_resample_weights_seed_and_base():
    a, b, c = resample_weights(12, 40, seed=1), resample_weights(12, 40, seed=1), resample_weights(12, 40, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    base = np.arange(1.0, 13.0)
    assert np.array_equal(resample_weights(12, 40, seed=1, base=base), a * base)


# ---- percentile_interval ------------------------------------------------------------------------
def test_percentile_interval_quantiles_nan_and_axis():
    s = np.arange(1001.0)
    assert np.allclose(percentile_interval(s, 0.95), (25.0, 975.0))
    assert np.allclose(percentile_interval(s, 0.90), (50.0, 950.0))
    s2 = np.concatenate([s, [np.nan] * 50])                   # failed resamples are ignored
    assert np.allclose(percentile_interval(s2, 0.95), (25.0, 975.0))
    m = np.column_stack([s, 2 * s])
    lo, hi = percentile_interval(m, 0.95, axis=0)
    assert np.allclose(lo, [25, 50]) and np.allclose(hi, [975, 1950])
    lo, hi = percentile_interval(m.T, 0.95, axis=1)
    assert np.allclose(lo, [25, 50])


# ---- simulate_params ----------------------------------------------------------------------------
def test_simulate_params_moments_and_reproducibility():
    theta = np.array([1.0, -2.0, 0.5])
    cov = np.array([[0.04, 0.01, 0.0], [0.01, 0.09, -0.02], [0.0, -0.02, 0.01]])
    d = simulate_params(theta, cov, k=40000, seed=3)
    assert d.shape == (40000, 3)
    assert np.allclose(d.mean(axis=0), theta, atol=0.01)
    assert np.allclose(np.cov(d.T), cov, atol=0.003)
    assert np.array_equal(d, simulate_params(theta, cov, k=40000, seed=3))
    assert not np.array_equal(d, simulate_params(theta, cov, k=40000, seed=4))


def test_simulate_params_tolerates_a_slightly_indefinite_covariance():
    cov = np.array([[1.0, 1.0], [1.0, 1.0 - 1e-12]])          # rounding made it indefinite
    d = simulate_params(np.zeros(2), cov, k=2000, seed=0)
    assert np.all(np.isfinite(d))
    assert np.allclose(d[:, 0], d[:, 1], atol=1e-4)           # the one real direction


# ---- bootstrap over runs ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def easy_fit():
    return fit("chinchilla", ladder(), starts=SUB, boot=300, seed=11, n_jobs=1)


def test_bootstrap_intervals_contain_truth_on_an_easy_problem(easy_fit):
    f = easy_fit
    assert f.interval_method.startswith("bootstrap (300")
    assert f.boot.shape == (300, 5) and np.all(np.isfinite(f.boot))
    for p, v in TRUTH.items():
        lo, hi = f.ci[p]
        assert lo < f.params[p] < hi, p
        assert lo < v < hi, p
    d = f.derived()["a"]
    assert d["lower"] < TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"]) < d["upper"]
    pr = f.predict({"N": [8.9e9], "D": [1.8e11]}).iloc[0]
    true_l = LAW.evaluate({"N": [8.9e9], "D": [1.8e11]}, TRUTH)[0]
    assert pr.lower < true_l < pr.upper
    assert pr.pred_lower < pr.lower and pr.upper < pr.pred_upper


def test_same_seed_same_intervals_other_seed_differs(easy_fit):
    g = fit("chinchilla", ladder(), starts=SUB, boot=300, seed=11, n_jobs=1)
    assert np.array_equal(g.boot, easy_fit.boot)
    assert g.ci == easy_fit.ci
    h = fit("chinchilla", ladder(), starts=SUB, boot=300, seed=12, n_jobs=1)
    assert h.ci != easy_fit.ci
    assert dict(h.params) == dict(easy_fit.params)                        # the estimate does not depend on it


def test_bootstrap_on_two_processes_matches_one(monkeypatch):
    """Force the process pool (normally used only for K x n >= 4e5) and compare."""
    df = ladder(noise=0.01, seed=5)
    serial = fit("chinchilla", df, starts=SUB, boot=40, seed=3, n_jobs=1)
    calls = []
    real = parallel_mod.map_chunks

    def spy(fn, tasks, **kw):
        calls.append((len(tasks), kw.get("n_jobs")))
        return real(fn, tasks, **kw)

    monkeypatch.setattr(parallel_mod, "map_chunks", spy)
    monkeypatch.setitem(fit_mod._run_batched.__kwdefaults__, "min_chunk_work", 0)
    par = fit("chinchilla", df, starts=SUB, boot=40, seed=3, n_jobs=2)
    assert (2, 2) in calls                                    # the bootstrap really ran on 2 processes
    assert dict(par.params) == pytest.approx(dict(serial.params), rel=1e-10)
    assert np.allclose(par.boot, serial.boot, rtol=1e-10, atol=0, equal_nan=True)
    assert par.ci.keys() == serial.ci.keys()
    for k in serial.ci:  # pytest >= 9.2 refuses nested mappings in approx
        assert par.ci[k] == pytest.approx(serial.ci[k], rel=1e-10), k


# ---- calibration --------------------------------------------------------------------------------
def test_inflate_scales_bootstrap_deviations_in_internal_coordinates(easy_fit):
    c = bootstrap_inflation(easy_fit)
    # sqrt(30/25) * t_25 / z
    assert c == pytest.approx(math.sqrt(30 / 25) * 2.0595386 / 1.9599640, rel=1e-6)
    g = calibrate(easy_fit, "inflate")
    assert dict(g.params) == dict(easy_fit.params) and g.settings["calibration"] == "inflate"
    for p in ("alpha", "beta"):
        (lo, hi), (glo, ghi) = easy_fit.ci[p], g.ci[p]
        est = easy_fit.params[p]
        assert glo - est == pytest.approx(c * (lo - est), rel=1e-6)
        assert ghi - est == pytest.approx(c * (hi - est), rel=1e-6)
    lo, hi = easy_fit.ci["A"]
    glo, ghi = g.ci["A"]
    # quantiles interpolate in natural units, so the log-scale identity holds to interpolation error
    assert math.log(ghi / easy_fit.params["A"]) == pytest.approx(c * math.log(hi / easy_fit.params["A"]), rel=1e-3)
    assert easy_fit.boot is not g.boot                        # the original is untouched
    assert easy_fit.ci["A"] == [lo, hi]


def test_huber_variance_factor_is_pi_over_2_for_normal_residuals_and_tiny_delta():
    # LAD-like Huber: asymptotic variance ratio to least squares is pi/2 (kernel estimate of
    # the density at 0 has ~2% noise at this n)
    r = np.random.default_rng(0).normal(0, 0.01, 100000)
    assert huber_variance_factor(r, 1e-5, 5) == pytest.approx(math.pi / 2, rel=0.08)
    # delta much larger than the scatter: Huber is least squares
    assert huber_variance_factor(r, 1.0, 5) == pytest.approx(1.0, rel=0.01)


def test_sandwich_t_widens_delta_intervals_and_bad_method_is_an_error():
    f = fit("chinchilla", ladder(noise=0.01, seed=2), starts=SUB, n_jobs=1)
    g = calibrate(f, "sandwich-t")
    assert g.settings["calibration_factor"] > 1.2              # Huber 1e-3 on 1% noise: ~ LAD
    w = lambda fit_, p: fit_.ci[p][1] - fit_.ci[p][0]
    assert w(g, "alpha") > 1.1 * w(f, "alpha")
    with pytest.raises(ScalelawError, match="bootstrap"):
        calibrate(f, "inflate")
    with pytest.raises(ScalelawError, match="must be one of"):
        calibrate(f, "studentized")


def test_auto_delta_is_huber_constant_times_robust_scale():
    from scalelaw.calibration import HUBER_K, auto_delta

    r = np.random.default_rng(1).normal(0, 0.01, 4000)
    assert auto_delta(r, 5) == pytest.approx(HUBER_K * 0.01, rel=0.05)
    r[:400] += 0.5                                            # 10% gross outliers barely move it
    assert auto_delta(r, 5) == pytest.approx(HUBER_K * 0.01, rel=0.2)
