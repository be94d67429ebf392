"""Run design (scalelaw design): the criterion, the search, the prior, and the verb."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.analysis import design as dz
from scalelaw.cli import main
from scalelaw.errors import ScalelawError
from scalelaw.law import get_law
from scalelaw.result import load_fit

TARGET = {"N": 7e10, "D": 1.4e12}


def _criterion(fit, runs, target, noise, draws=64, seed=0, widen=None):
    """The design criterion recomputed from scratch (no rank-one updates, no standardising)."""
    theta0, cov, _, own = dz._prior(fit, widen)
    th = dz._draws(fit, theta0, cov, draws, seed)
    g, _ = dz._quantity(fit, target, None, "loss", 6.0)
    G = dz._gradient(g, th)
    N = np.array([r["N"] for r in runs])
    D = np.array([r["D"] for r in runs])
    J = dz._sensitivities(fit, th, N, D, 6.0)
    H = np.linalg.inv(cov)[None] * (1.0 if own else dz.PRIOR_WEIGHT) + np.einsum("mcp,mcq->mpq", J, J) / noise ** 2
    return float(np.mean(np.einsum("mp,mpq,mq->m", G, np.linalg.inv(H), G)))


def test_design_from_published_prior_fits_budget_and_shrinks_the_interval():
    res = dz.design("epoch-2024", target=TARGET, budget=1e20, k=10, noise=0.01)
    runs = res["runs"]
    assert 1 <= len(runs) <= 10
    assert res["total_cost"] <= 1e20 * (1 + 1e-9)
    assert math.isclose(res["total_cost"], sum(r["C"] for r in runs))
    assert len({(r["N"], r["D"]) for r in runs}) == len(runs)          # each candidate used once
    for r in runs:
        assert math.isclose(r["C"], 6 * r["N"] * r["D"], rel_tol=1e-12)
    assert res["after"]["relative_width"] < 0.2 * res["before"]["relative_width"]
    assert "epoch-2024" in res["method"]["prior"] and "x3" in res["method"]["prior"]
    assert sum(res["candidates"]["chosen"]) == len(runs)


def test_reported_variance_is_the_criterion_recomputed_from_scratch():
    fit = load_fit("epoch-2024")
    res = dz.design(fit, target=TARGET, budget=1e20, k=6, noise=0.01, draws=32, seed=3)
    v = _criterion(fit, res["runs"], TARGET, 0.01, draws=32, seed=3)
    assert res["after"]["sd"] == pytest.approx(math.sqrt(v), rel=1e-6)


def test_search_beats_random_designs_of_the_same_size_and_budget():
    fit = load_fit("epoch-2024")
    budget, k = 1e20, 6
    res = dz.design(fit, target=TARGET, budget=budget, k=k, noise=0.01, draws=32)
    chosen = res["after"]["sd"] ** 2
    N, D = dz.candidate_grid(budget)
    cost = 6 * N * D
    rng = np.random.default_rng(0)
    tried = 0
    while tried < 30:
        idx = rng.choice(len(N), size=k, replace=False)
        if cost[idx].sum() > budget:
            continue
        tried += 1
        runs = [{"N": N[i], "D": D[i]} for i in idx]
        assert chosen <= _criterion(fit, runs, TARGET, 0.01, draws=32)


def test_design_from_a_fit_uses_its_bootstrap_and_scatter(tmp_path):
    law = get_law("chinchilla")
    truth = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.36}
    rng = np.random.default_rng(1)
    N = np.repeat(np.geomspace(1e7, 3e8, 6), 3)
    D = N * np.tile([10.0, 40.0, 160.0], 6)
    y = law.evaluate({"N": N, "D": D}, truth) * np.exp(rng.normal(0, 0.01, len(N)))
    from scalelaw.fit import fit as do_fit

    f = do_fit("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": y}), boot=100, n_jobs=1)
    res = dz.design(f, target_compute=1e23, budget=5e19, k=5)
    assert "bootstrap" in res["method"]["prior"]
    assert res["method"]["noise_from"] == "the fit's residual sd"
    assert res["method"]["noise_sd"] == pytest.approx(f.diagnostics["residual_sd"])
    assert res["after"]["sd"] < res["before"]["sd"]
    assert res["quantity"].startswith("ln loss at compute")
    n_opt = dz.design(f, target_compute=1e23, quantity="N_opt", budget=5e19, k=5)
    assert n_opt["quantity"].startswith("ln N_opt")


def test_default_grid_spans_the_documented_ratios():
    N, D = dz.candidate_grid(1e20)
    ratio, c = D / N, 6 * N * D
    assert ratio.min() == pytest.approx(dz.DEFAULT_RATIO[0]) and ratio.max() == pytest.approx(dz.DEFAULT_RATIO[1])
    assert c.min() == pytest.approx(1e17) and c.max() == pytest.approx(5e19)


@pytest.mark.parametrize("kwargs, message", [
    (dict(budget=1e20), "exactly one of"),
    (dict(budget=1e20, target=TARGET, target_compute=1e23), "exactly one of"),
    (dict(budget=-1.0, target=TARGET), "--budget"),
    (dict(budget=1e20, target={"N": 7e10}), "needs N and D"),
    (dict(budget=1e20, target={"N": 0.0, "D": 1e12}), "--target N"),
    (dict(budget=1e20, target=TARGET, quantity="N_opt"), "goes with --target-compute"),
    (dict(budget=1e10, target=TARGET, grid={"N": (1e8, 1e9), "D": (1e9, 1e10)}), "no candidate run fits"),
    (dict(budget=1e20, target=TARGET, k=0), "--k"),
    (dict(budget=1e20, target=TARGET, grid={"N": (1e7, 1e9)}), "exactly N=LO:HI and D=LO:HI"),
    (dict(budget=1e20, target=TARGET, candidates=pd.DataFrame({"N": [1e8, -1.0], "D": [1e9, 1e9]})), "not positive"),
])
def test_bad_requests_are_one_clear_error(kwargs, message):
    with pytest.raises(ScalelawError, match=message):
        dz.design("epoch-2024", **kwargs)


def test_law_without_runs_in_n_and_d_is_refused():
    with pytest.raises(ScalelawError, match="cannot be laid out in N and D"):
        dz.design(load_fit("kaplan-2020-n"), target=TARGET, budget=1e20)


def test_candidates_table_limits_the_choice():
    cands = pd.DataFrame({"N": [1e7, 3e7, 1e8, 3e8, 1e9], "D": [2e8, 1e9, 2e9, 6e9, 2e10]})
    res = dz.design("epoch-2024", target=TARGET, budget=1e20, k=3, candidates=cands)
    got = {(r["N"], r["D"]) for r in res["runs"]}
    assert got <= set(zip(cands.N, cands.D)) and len(got) == 3


def test_cli_design_json_csv_plot_and_force(tmp_path):
    r = CliRunner()
    out, plot = tmp_path / "runs.csv", tmp_path / "design.html"
    args = ["design", "epoch-2024", "--target", "N=7e10,D=1.4e12", "--budget", "1e20", "--k", "4",
            "--grid", "N=1e7:1e9", "D=1e8:1e11", "-o", str(out), "--plot", str(plot), "--json"]
    res = r.invoke(main, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {"runs", "before", "after", "total_cost", "budget", "method", "target"} <= set(doc)
    assert "candidates" not in doc
    runs = pd.read_csv(out)
    assert list(runs.columns) == ["N", "D", "C", "tokens_per_param"] and len(runs) == len(doc["runs"])
    assert runs.N.between(1e7, 1e9).all() and runs.D.between(1e8, 1e11).all()
    html = plot.read_text()
    assert "proposed runs" in html and "target model" in html
    again = r.invoke(main, args)
    assert again.exit_code == 2 and "exists" in again.stderr and again.stderr.count("\n") == 1
    assert r.invoke(main, args + ["--force"]).exit_code == 0


def test_cli_design_text_and_errors():
    r = CliRunner()
    res = r.invoke(main, ["design", "epoch-2024", "--target-compute", "1e23", "--budget", "1e20", "--k", "3"])
    assert res.exit_code == 0, res.output
    assert "expected 95% interval width at the target" in res.stdout and "before" in res.stdout
    bad = r.invoke(main, ["design", "epoch-2024", "--target-compute", "1e23", "--budget", "1e20", "--grid", "N=5:1"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.output
    stray = r.invoke(main, ["design", "epoch-2024", "other.json", "--budget", "1e20", "--target-compute", "1e23"])
    assert stray.exit_code == 2 and "unexpected argument" in stray.stderr


def test_design_from_an_unidentified_fit_warns():
    law = get_law("chinchilla")
    truth = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.36}
    N = np.geomspace(1e7, 3e8, 12)
    D = 20 * N        # one tokens-per-parameter ratio: the N and D terms cannot be told apart
    y = law.evaluate({"N": N, "D": D}, truth) * np.exp(np.random.default_rng(2).normal(0, 0.01, len(N)))
    from scalelaw.fit import fit as do_fit

    f = do_fit("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": y}), n_jobs=1)
    assert f.diagnostics.get("identified") is False
    res = dz.design(f, target=TARGET, budget=1e20, k=4)
    assert any("identif" in w.lower() for w in res["warnings"])


def test_package_level_design_is_the_same_function():
    import scalelaw as sl

    a = sl.design("epoch-2024", target=TARGET, budget=1e20, k=3, draws=16)
    b = dz.design("epoch-2024", target=TARGET, budget=1e20, k=3, draws=16)
    assert a["runs"] == b["runs"] and a["after"] == b["after"]
