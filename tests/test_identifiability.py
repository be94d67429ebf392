"""Fit health that cannot be fooled (issue 12 points 1-3, 7; issue 20 point 4): identifiability
diagnostics, intervals that contain their estimate and stay inside the bounds, degenerate data
answered without a crash, and `check` refusing reference fits with non-finite parameters."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.cli import main
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.result import Fit, health_warning

from .helpers import TRUTH, ladder

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = str(REPO / "data" / "example_runs.csv")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _grid(loss_fn=None, N=None, D=None, seed=0, noise=0.005):
    """5 sizes x 4 token counts (20 runs), loss from loss_fn(N, D) (default: the Chinchilla truth)."""
    rng = np.random.default_rng(seed)
    if N is None:
        N = np.repeat([1e7, 3e7, 1e8, 3e8, 1e9], 4)
        D = np.tile([1e9, 3e9, 1e10, 3e10], 5)
    loss = (get_law("chinchilla").evaluate({"N": N, "D": D}, TRUTH) if loss_fn is None else loss_fn(N, D))
    loss = loss * np.exp(rng.normal(0, noise, len(N)))
    df = pd.DataFrame({"N": N, "D": D, "loss": loss})
    df.attrs["source"] = "synthetic"
    return df


DEGENERATE = {
    # name: (table, a phrase one of the problems must hold)
    "constant loss": (lambda: _grid(lambda N, D: np.full(N.shape, 3.0), noise=0), "is constant"),
    "pure noise": (lambda: _grid(lambda N, D: np.full(N.shape, 3.0), noise=0.01), "no better than a constant"),
    "loss rising with N and D": (lambda: _grid(lambda N, D: 1 + (N / 1e7) ** 0.1 + (D / 1e9) ** 0.1), "bound"),
    "U-shaped loss": (lambda: _grid(lambda N, D: 2 + 0.1 * (np.log(N / 1e8)) ** 2 + 0.05 * np.log(D / 3e9) ** 2),
                      "bound"),
    "every run at one N": (lambda: _grid(N=np.full(20, 1e8), D=np.geomspace(1e9, 3e10, 20)), "N takes only one value"),
    "40 copies of one run": (lambda: _grid(N=np.full(40, 1e8), D=np.full(40, 2e9)), "1 distinct input point"),
}


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_data_is_marked_not_identified(name):
    table, phrase = DEGENERATE[name]
    f = fit("chinchilla", table(), n_jobs=1)
    assert f.identified is False and f.diagnostics["identified"] is False
    assert any(phrase in p for p in f.problems), f.problems
    assert all("\n" not in p for p in f.problems)
    s = str(f.summary())   # derived quantities of exponents at 0 (0/0) used to raise ZeroDivisionError
    assert "health: NOT IDENTIFIED" in s and phrase in s.replace("\n    ", " ")
    d = json.loads(f.to_json(include_boot=False))
    assert d["diagnostics"]["identified"] is False and d["diagnostics"]["problems"] == f.problems


def test_sound_fit_is_identified_with_no_problems():
    f = fit("chinchilla", ladder(), n_jobs=1)
    assert f.identified and f.problems == [] and f.diagnostics["flat_direction"] == []
    assert "health:\n" in str(f.summary()) and "NOT IDENTIFIED" not in str(f.summary())
    assert health_warning(f) is None


def test_cli_example_identified_and_degenerate_exit_0_not_3(tmp_path):
    r = run("fit", "chinchilla", EXAMPLE, "--json")
    assert r.exit_code == 0
    diag = json.loads(r.stdout)["diagnostics"]
    assert diag["identified"] is True and diag["problems"] == []
    # exponents at their bound 0: the derived a, b, G were 0/0 (ZeroDivisionError, exit 3)
    p = tmp_path / "flat.csv"
    DEGENERATE["constant loss"][0]().to_csv(p, index=False)
    r = run("fit", "chinchilla", p, "-o", tmp_path / "flat.json")
    assert r.exit_code == 0, r.output + r.stderr
    assert "health: NOT IDENTIFIED" in r.stdout and "warning: fit (chinchilla) is NOT IDENTIFIED" in r.stderr
    r = run("fit", "chinchilla", p, "--json")
    d = json.loads(r.stdout)
    assert d["diagnostics"]["identified"] is False and d["derived"]["a"]["value"] is None
    # every verb that uses the fit warns in one line, and none crashes
    for args in (("predict", tmp_path / "flat.json", "--at", "N=1e9", "--at", "D=2e10"),
                 ("optimum", tmp_path / "flat.json", "--compute", "1e21"),
                 ("plan", "--compute", "1e21", "--loss", tmp_path / "flat.json")):
        r = run(*args)
        assert r.exit_code == 0, (args, r.output, r.stderr)
        lines = [l for l in r.stderr.splitlines() if "NOT IDENTIFIED" in l]
        assert len(lines) == 1 and lines[0].startswith("warning:"), r.stderr


def test_backtest_warns_when_its_fit_is_unidentified(tmp_path):
    p = tmp_path / "rising.csv"
    DEGENERATE["loss rising with N and D"][0]().to_csv(p, index=False)
    r = run("backtest", "chinchilla", p, "--train", "N < 5e8")
    assert r.exit_code == 0 and "warning: the fit on the --train rows is NOT IDENTIFIED" in r.stderr


# ---- intervals that mean what they say -------------------------------------------------------
def _boot_fit(samples, params=None, level=0.95):
    law = get_law("chinchilla")
    params = dict(params or TRUTH)
    return Fit(law=law, params=params, free=law.param_names, boot=np.asarray(samples, dtype=float), level=level,
               n_obs=40, diagnostics={"converged": True, "problems": []})


def _draws(k=1000, seed=0, scale=0.02):
    rng = np.random.default_rng(seed)
    base = np.array([TRUTH[n] for n in get_law("chinchilla").param_names])
    return base * np.exp(rng.normal(0, scale, (k, base.size)))


def test_bootstrap_with_too_many_failed_resamples_gives_no_interval():
    s = _draws()
    s[:150] = np.nan                     # 85% succeeded (< 90%)
    f = _boot_fit(s)
    assert f.ci == {} and f.stderr.isna().all()     # stderr is a Series: NaN where there is none
    assert not f.identified and any("850 of 1000 bootstrap resamples" in p for p in f.problems)
    assert np.isnan(f.predict({"N": [1e9], "D": [2e10]})["lower"]).all()
    s[:50] = _draws(50, seed=1)          # 95% succeeded: intervals again
    assert set(_boot_fit(s).ci) == set(TRUTH)


def test_degenerate_bootstrap_gives_no_interval():
    s = _draws()
    s[:, 3] = TRUTH["alpha"]             # every resample at one alpha: a collapsed distribution
    f = _boot_fit(s)
    assert f.ci == {} and any("degenerate" in p and "alpha" in p for p in f.problems)


def test_interval_excluding_its_estimate_is_widened_and_reported():
    s = _draws()
    s[:, 4] *= 1.2                       # every resample's beta far above the estimate
    f = _boot_fit(s)
    lo, hi = f.ci["beta"]
    assert lo == TRUTH["beta"] < hi
    assert any("excludes its estimate" in p and "beta" in p for p in f.problems)
    for name, (lo, hi) in f.ci.items():
        assert lo <= f.params[name] <= hi
    pred = f.predict({"N": [1e9, 1e11], "D": [2e10, 2e12]})
    assert (pred["lower"] <= pred["mean"]).all() and (pred["mean"] <= pred["upper"]).all()
    opt = f.optimum(compute=1e23)
    for k in ("N_opt", "D_opt", "loss"):
        assert opt[f"{k}_lower"] <= opt[k] <= opt[f"{k}_upper"]
    for r in f.derived().values():
        assert r["lower"] <= r["value"] <= r["upper"]


def test_bootstrap_interval_reaching_a_bound_is_a_problem():
    s = _draws()
    s[:100, 3] = 0.0                     # 10% of the resamples at alpha = 0 (> the 2.5% tail)
    f = _boot_fit(s)
    assert f.ci["alpha"][0] == 0.0
    assert any("interval of alpha runs into its lower bound 0" in p for p in f.problems)


def test_delta_method_intervals_stay_inside_the_bounds():
    f = fit("chinchilla", ladder(), n_jobs=1)
    assert f.identified
    cov = np.array(f.cov, dtype=float)
    j = f.free.index("alpha")
    cov[j, j] = (f.params["alpha"] / 1.5) ** 2        # an interval of alpha wider than its distance to 0
    import dataclasses
    g = dataclasses.replace(f, cov=cov)
    lo, hi = g.ci["alpha"]
    assert 0.0 <= lo <= g.params["alpha"] <= hi <= 5.0
    assert not g.identified and any("interval of alpha runs into its lower bound 0" in p for p in g.problems)


def test_stderr_says_what_it_is_and_is_dropped_where_skewed():
    s = _draws()
    s[:, 1] = TRUTH["A"] * np.exp(np.random.default_rng(3).exponential(1.0, len(s)) - 0.1)   # A: long right tail
    f = _boot_fit(s)
    se = f.stderr
    assert np.isnan(se["A"]) and not np.isnan(se["alpha"])   # stderr is a Series: NaN where dropped
    text = str(f.summary())
    assert "stderr: standard deviation of the 1000 bootstrap estimates" in text
    row = [l for l in text.splitlines() if l.split() and l.split()[0] == "A"][0]
    assert "skewed" in row


def test_flat_direction_gives_no_delta_interval():
    f = fit("chinchilla", DEGENERATE["every run at one N"][0](), n_jobs=1)
    assert set(f.diagnostics["flat_direction"]) >= {"A", "alpha"}
    assert f.ci == {} and f.param_samples() is None   # a singular covariance would give width 0
    assert "none (the delta method has no width along the flat direction)" in str(f.summary())


# ---- check: reference fits with non-finite parameters ----------------------------------------
@pytest.fixture(scope="module")
def small_reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    table = ladder()
    table.to_csv(d / "ladder.csv", index=False)
    f = fit("chinchilla", pd.read_csv(d / "ladder.csv"), n_jobs=1, source=str(d / "ladder.csv"))
    return json.loads(f.to_json())


@pytest.mark.parametrize("value,word", [(float("nan"), "NaN"), (float("inf"), "not finite"), (None, "null"),
                                        ("missing", "missing"), ("0.3", "not a number")])
def test_check_fails_on_a_non_finite_or_missing_parameter(tmp_path, small_reference, value, word):
    d = json.loads(json.dumps(small_reference))
    if value == "missing":
        del d["params"]["beta"]
    else:
        d["params"]["beta"] = value
    p = tmp_path / "ref.json"
    p.write_text(json.dumps(d))   # json writes NaN / Infinity literals, as a careless writer would
    r = run("check", p)
    assert r.exit_code == 1, r.output
    assert "DRIFT" in r.output and "parameter beta is" in r.output
    assert word in r.output or (word == "NaN" and "nan" in r.output)


def test_check_passes_the_sound_small_reference(tmp_path, small_reference):
    p = tmp_path / "ref.json"
    p.write_text(json.dumps(small_reference))
    r = run("check", p)
    assert r.exit_code == 0, r.output
