"""scalelaw.calibration against closed forms: on least squares in log space (the bs_opt law,
ln y = ln c + gamma ln D, fitted with lsq-log) the right 95% intervals are the textbook Student t
intervals of a straight-line regression, so a calibration must reproduce them, not widen them."""
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scalelaw.calibration import bootstrap_inflation, calibrate, fit_auto_delta
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit

D = np.geomspace(1e9, 1e11, 6)
D0 = 1e12  # a prediction 10x past the largest run


def line_data(seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"D": D, "batch_tokens": 0.3 * D ** 0.2 * np.exp(rng.normal(0, 0.05, D.size))})


def textbook(df, level=0.95):
    """OLS of ln y on ln D: slope, its t half-width, and the new-observation half-width at D0."""
    x, y = np.log(df["D"].to_numpy()), np.log(df["batch_tokens"].to_numpy())
    n = x.size
    slope, icpt = np.polyfit(x, y, 1)
    r = y - (icpt + slope * x)
    s = math.sqrt(r @ r / (n - 2))
    sxx = float(((x - x.mean()) ** 2).sum())
    t = stats.t.ppf(0.5 + level / 2, n - 2)
    x0 = math.log(D0)
    return slope, t * s / math.sqrt(sxx), t * s * math.sqrt(1 + 1 / n + (x0 - x.mean()) ** 2 / sxx), s


@pytest.fixture(scope="module")
def lsq_fit():
    return fit("bs_opt", line_data(), objective="lsq-log")


def test_uncalibrated_delta_method_is_already_the_t_interval(lsq_fit):
    slope, half, _, s = textbook(line_data())
    lo, hi = lsq_fit.ci["gamma"]
    assert lsq_fit.params["gamma"] == pytest.approx(slope, rel=1e-6)
    assert lsq_fit.diagnostics["residual_sd"] == pytest.approx(s, rel=1e-6)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.03)


def test_sandwich_t_on_least_squares_keeps_the_t_interval(lsq_fit):
    # Fit already draws with t_{n-p} quantiles; calibrating used to multiply by t/z once more
    # (here 1.42x too wide: a 99% interval labelled 95%)
    slope, half, new_half, s = textbook(line_data())
    g = calibrate(lsq_fit, "sandwich-t")
    assert g.settings["calibration"] == "sandwich-t" and g.settings["calibration_factor"] == 1.0
    lo, hi = g.ci["gamma"]
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.03)
    assert g.diagnostics["residual_sd"] == pytest.approx(s, rel=1e-6)
    row = g.predict({"D": [D0]}).iloc[0]
    assert math.log(row.pred_upper / row["mean"]) == pytest.approx(new_half, rel=0.03)
    assert math.log(row["mean"] / row.pred_lower) == pytest.approx(new_half, rel=0.03)


def test_inflate_scales_the_bootstrap_only():
    f = fit("bs_opt", line_data(), objective="lsq-log", boot=200, seed=3)
    g = calibrate(f, "inflate")
    c = math.sqrt(6 / 4) * stats.t.ppf(0.975, 4) / stats.norm.ppf(0.975)
    assert g.settings["calibration_factor"] == pytest.approx(c)
    (lo, hi), (glo, ghi) = f.ci["gamma"], g.ci["gamma"]
    est = f.params["gamma"]
    assert (glo - est, ghi - est) == pytest.approx((c * (lo - est), c * (hi - est)), rel=1e-6)
    # the new-run band already uses t quantiles of the residual scatter: not scaled again
    assert g.diagnostics["residual_sd"] == f.diagnostics["residual_sd"]


def test_level_is_the_level_of_the_returned_intervals():
    f = fit("bs_opt", line_data(), objective="lsq-log", boot=200, seed=3)
    g = calibrate(f, "inflate", level=0.8)
    # the inflation is computed for 80%, so the intervals must be reported at 80% (not the fit's 95%)
    assert g.level == 0.8 and f.level == 0.95
    assert g.settings["calibration_factor"] == pytest.approx(bootstrap_inflation(f, 0.8))
    assert g.settings["calibration_factor"] == pytest.approx(
        math.sqrt(6 / 4) * stats.t.ppf(0.9, 4) / stats.norm.ppf(0.9))
    for bad in (0, 1, 1.5, -0.2, float("nan")):
        with pytest.raises(ScalelawError, match="level must be"):
            calibrate(f, "inflate", level=bad)


def test_calibration_needs_more_runs_than_parameters_and_is_done_once(lsq_fit):
    # n_obs = 0 (e.g. a hand-made Fit) used to give c = 0: every interval collapsed to the estimate
    for n in (0, 2):
        with pytest.raises(ScalelawError, match=r"more runs than free parameters \(n_obs=%d, 2 free\)" % n):
            calibrate(dataclasses.replace(lsq_fit, n_obs=n), "sandwich-t")
    g = calibrate(lsq_fit, "sandwich-t")
    with pytest.raises(ScalelawError, match="already calibrated"):
        calibrate(g, "sandwich-t")


def kaplan_data(seed=1):
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e6, 1e9, 8)
    return pd.DataFrame({"N_nonembed": N, "loss": (8.8e13 / N) ** 0.076 * np.exp(rng.normal(0, 0.01, N.size))})


def test_fit_auto_delta_takes_starts_as_dicts_and_refuses_other_objectives():
    data = kaplan_data()
    a = fit_auto_delta("kaplan_n", data, starts=[[1e13, 0.1]])
    b = fit_auto_delta("kaplan_n", data, starts=[{"Nc": 1e13, "alpha_N": 0.1}])  # was a TypeError traceback
    assert dict(b.params) == pytest.approx(dict(a.params), rel=1e-6)
    assert b.objective["name"] == "huber-log" and "delta_rule" in b.settings
    with pytest.raises(ScalelawError, match="huber-log"):  # used to be ignored silently
        fit_auto_delta("kaplan_n", data, objective="lsq-log")
