"""Interval methods of predict / optimum / plan (issue 20): each method on a small simulated
ladder, the engine's per-row data, the --interval flag, and the warning lines."""
import dataclasses
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from scalelaw.calibration import (DEFAULT_INTERVAL, INTERVALS, bootstrap_inflation, interval_fit, problem_of,
                                  t_over_z, with_interval)
from scalelaw.cli import main
from scalelaw.errors import ScalelawError
from scalelaw.fit import Problem, fit, solve_batch
from scalelaw.law import get_law
from scalelaw.result import Fit, load_fit
from scalelaw.uncertainty import residual_bootstrap, residual_targets

from .helpers import ladder

TARGET = {"N": [1e10], "D": [2e11]}     # ~100x the largest run's compute


@pytest.fixture(scope="module")
def small():
    return fit("chinchilla", ladder(noise=0.01, seed=4), objective="lsq-log")


def test_engine_refits_per_row_data_in_one_batch(small):
    # two data sets in one batch give what each gives alone (the residual bootstrap relies on it)
    prob = problem_of(small)
    T, _ = residual_targets(prob, np.asarray(small.theta), 2, seed=1)
    th0 = np.repeat(np.asarray(small.theta)[None, :], 2, axis=0)
    both, fb, _, _ = solve_batch(prob, th0, max_iter=300, ftol=1e-13, target=T)
    for j in range(2):
        alone = Problem(prob.law, prob.X, np.exp(T[j]), prob.weights, prob.free, prob.fixed, prob.objective)
        th, f, _, _ = solve_batch(alone, th0[:1], max_iter=300, ftol=1e-13)
        assert both[j] == pytest.approx(th[0], rel=1e-8, abs=1e-10)
        assert fb[j] == pytest.approx(f[0], rel=1e-10)
    assert not np.allclose(both[0], both[1])


def test_fit_records_its_rows_and_they_round_trip(small, tmp_path):
    runs = small.data["runs"]
    df = ladder(noise=0.01, seed=4)
    assert runs["inputs"]["N"] == df["N"].tolist() and runs["target"] == df["loss"].tolist()
    assert runs["weights"] is None
    small.save(tmp_path / "f.json")
    back = load_fit(tmp_path / "f.json")
    assert back.data["runs"] == runs
    # a refit from the saved rows is a refit of the same problem
    assert problem_of(back).y == pytest.approx(problem_of(small).y)


def test_residual_bootstrap_draws_rescaled_residuals(small):
    prob = problem_of(small)
    theta = np.asarray(small.theta)
    T, pool = residual_targets(prob, theta, 50, seed=0)
    r = small.residuals
    n, p = r.size, len(small.free)
    assert pool == pytest.approx((r - r.mean()) * math.sqrt(n / (n - p)))
    # each data set is the fitted curve minus residuals drawn from that pool
    fitted = np.log(get_law("chinchilla").evaluate(dict(zip(("N", "D"), prob.X)), small.params))
    drawn = fitted[None, :] - T
    assert np.all(np.isin(np.round(drawn, 12), np.round(pool, 12)))
    samples, _ = residual_bootstrap(prob, theta, 300, seed=0)
    # on least squares with normal noise its spread matches the textbook (delta-method) spread
    j = small.law.param_names.index("alpha")
    sd_delta = math.sqrt(small.cov[small.free.index("alpha"), small.free.index("alpha")])
    assert np.nanstd(samples[:, j]) == pytest.approx(sd_delta, rel=0.3)


@pytest.mark.parametrize("method", list(INTERVALS))
def test_each_method_gives_an_interval_around_the_estimate(small, method):
    g = with_interval(small, method, k=200, seed=1)
    assert g.settings["interval"] == method and method in g.interval_method
    assert dict(g.params) == dict(small.params)
    row = g.predict(TARGET).iloc[0]
    assert row.lower < row["mean"] < row.upper
    assert row.pred_lower < row.lower and row.upper < row.pred_upper
    o = g.optimum(compute=1e22)
    assert o["N_opt_lower"] < o["N_opt"] < o["N_opt_upper"]


def test_methods_are_what_they_say(small):
    lo_hi = lambda g: g.ci["alpha"]
    est = small.params["alpha"]
    # delta: the fit's own delta-method intervals
    assert lo_hi(with_interval(small, "delta")) == lo_hi(small)
    # bootstrap: the resamples fit(boot=K, seed=S) draws, refitted from the saved rows
    b = with_interval(small, "bootstrap", k=100, seed=3)
    ref = fit("chinchilla", ladder(noise=0.01, seed=4), objective="lsq-log", boot=100, seed=3)
    assert b.boot == pytest.approx(ref.boot, rel=1e-6)
    # bootstrap-t: the same draws' deviations scaled by sqrt(n/(n-p)) t/z
    c = bootstrap_inflation(small)
    assert c == pytest.approx(math.sqrt(24 / 19) * stats.t.ppf(0.975, 19) / stats.norm.ppf(0.975))
    bt = with_interval(small, "bootstrap-t", k=100, seed=3)
    assert np.subtract(lo_hi(bt), est) == pytest.approx(c * np.subtract(lo_hi(b), est), rel=1e-9)
    # a fit's own bootstrap samples are used, not redrawn
    assert with_interval(ref, "bootstrap").boot is ref.boot
    # residual-t: residual-bootstrap deviations scaled by t/z
    prob = problem_of(small)
    raw, _ = residual_bootstrap(prob, np.asarray(small.theta), 100, seed=3, n_jobs=1)
    rt = with_interval(small, "residual-t", k=100, seed=3)
    j = small.law.param_names.index("alpha")
    assert rt.boot[:, j] - est == pytest.approx(t_over_z(small) * (raw[:, j] - est), rel=1e-9)


def test_default_interval_and_its_exceptions(small):
    for verb in ("predict", "optimum", "plan"):
        g, notes = interval_fit(small, verb=verb)
        assert g.settings["interval"] == DEFAULT_INTERVAL[verb] and notes == []
    # published constants have no data: left as they are, without a note
    pub = load_fit("epoch-2024")
    assert interval_fit(pub) == (pub, [])
    with pytest.raises(ScalelawError, match="refits the data, but published: epoch-2024 has no data"):
        with_interval(pub, "residual-t")
    # a fit file from before fits kept their rows: its own intervals, and one line saying so
    old = dataclasses.replace(small, data={k: v for k, v in small.data.items() if k != "runs"})
    g, notes = interval_fit(old, role="loss")
    assert g is old and len(notes) == 1
    assert notes[0].startswith("loss fit (chinchilla) does not record the rows it was fitted on")
    with pytest.raises(ScalelawError, match="does not record the rows"):
        with_interval(old, "bootstrap")
    with pytest.raises(ScalelawError, match="--interval must be one of"):
        with_interval(small, "profile")


# ---- the command line ----------------------------------------------------------------------
def run(*args, ok=True):
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, res.output + res.stderr
    return res


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory, small):
    p = tmp_path_factory.mktemp("iv") / "fit.json"
    small.save(p)
    return p


@pytest.mark.parametrize("method", [None, "delta", "residual-t"])
def test_predict_and_optimum_take_interval(fit_file, small, method):
    flag = ["--interval", method] if method else []
    want = with_interval(small, method or DEFAULT_INTERVAL["predict"])
    rows = json.loads(run("predict", fit_file, "--at", "N=1e10", "--at", "D=2e11", "--json", *flag).stdout)
    exp = want.predict(TARGET).iloc[0]
    for k in ("lower", "upper", "pred_lower", "pred_upper"):
        assert rows[0][k] == pytest.approx(exp[k], rel=1e-9)
    want = with_interval(small, method or DEFAULT_INTERVAL["optimum"])
    o = json.loads(run("optimum", fit_file, "--compute", "1e22", "--json", *flag).stdout)
    assert o["N_opt_lower"] == pytest.approx(want.optimum(compute=1e22)["N_opt_lower"], rel=1e-9)


def test_interval_methods_differ_on_the_command_line(fit_file):
    ends = {m: json.loads(run("predict", fit_file, "--at", "N=1e10", "--at", "D=2e11", "--json",
                              "--interval", m).stdout)[0]["lower"] for m in INTERVALS}
    assert len(set(ends.values())) == len(INTERVALS)


def test_plan_takes_interval_for_the_loss_fit(fit_file):
    res = json.loads(run("plan", "--compute", "1e22", "--loss", fit_file, "--interval", "delta", "--json").stdout)
    assert res["fits"]["loss"]["intervals"].startswith("delta")
    res = json.loads(run("plan", "--compute", "1e22", "--loss", fit_file, "--json").stdout)
    assert res["fits"]["loss"]["intervals"].startswith(DEFAULT_INTERVAL["plan"] + " (")


def test_interval_errors_and_warnings_are_one_line(fit_file, small, tmp_path):
    res = run("predict", "epoch-2024", "--at", "N=1e10", "--at", "D=2e11", "--interval", "bootstrap", ok=False)
    assert res.exit_code == 2 and res.stderr.strip().splitlines() == [
        l for l in res.stderr.strip().splitlines() if l.startswith("error: this interval method refits the data")]
    res = run("predict", "--chain", "a.json,b.json", "--at", "N=1e10", "--interval", "delta", ok=False)
    assert res.exit_code == 2 and "--interval applies to a FIT, not to --chain" in res.stderr
    d = json.loads(fit_file.read_text())
    del d["data"]["runs"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(d))
    res = run("optimum", old, "--compute", "1e22")
    lines = [l for l in res.stderr.splitlines() if "does not record the rows" in l]
    assert len(lines) == 1 and lines[0].startswith("warning: fit (chinchilla) does not record")


def test_a_ladder_at_one_ratio_gets_a_warning_line_instead_of_split_bands(tmp_path):
    # every run at 20 tokens per parameter: the N and D terms cannot be told apart, so the
    # compute-optimal split is not determined (every method covered 11-25% on such ladders)
    from .helpers import TRUTH

    N = np.geomspace(2e7, 1e9, 12)
    y = get_law("chinchilla").evaluate({"N": N, "D": 20 * N}, TRUTH) * np.exp(
        np.random.default_rng(0).normal(0, 0.01, N.size))
    import pandas as pd
    f = fit("chinchilla", pd.DataFrame({"N": N, "D": 20 * N, "loss": y}), objective="lsq-log")
    p = tmp_path / "tpp.json"
    f.save(p)
    res = run("optimum", p, "--compute", "1e22", "--json", "--interval", "bootstrap")
    o = json.loads(res.stdout)
    assert o["N_opt_lower"] is None and o["D_opt_upper"] is None and o["loss_lower"] is not None
    lines = [l for l in res.stderr.splitlines() if "cannot separate the N and D terms" in l]
    assert len(lines) == 1 and lines[0].startswith("warning: fit (chinchilla): every run has 20 tokens per parameter")
    res = run("plan", "--compute", "1e22", "--loss", p, "--json", "--interval", "delta")
    plan = json.loads(res.stdout)
    assert plan["N_lower"] is None and plan["tokens_per_param_upper"] is None and plan["loss_lower"] is not None
    assert sum("cannot separate the N and D terms" in w for w in plan["warnings"]) == 1
    # a fixed split (--tokens-per-param) does not depend on it: bands kept, no warning
    plan = json.loads(run("plan", "--compute", "1e22", "--loss", p, "--json", "--tokens-per-param", "20",
                          "--interval", "delta").stdout)
    assert not any("cannot separate" in w for w in plan["warnings"])
    # runs spread over ratios (the helpers' ladder: 10-80 tokens per parameter) get no such line
    g = fit("chinchilla", ladder(noise=0.01, seed=4), objective="lsq-log")
    g.save(tmp_path / "spread.json")
    res = run("optimum", tmp_path / "spread.json", "--compute", "1e22", "--json", "--interval", "delta")
    assert "cannot separate" not in res.stderr and json.loads(res.stdout)["N_opt_lower"] is not None
