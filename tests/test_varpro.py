"""Variable projection (scalelaw/varpro.py): the same optimum as the engine, exact linear solves."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.cli import main
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.varpro import _Projection, fit_varpro, search

TRUTH = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.36}


def _chinchilla_runs(n=60, sd=0.01, seed=0):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(5e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(3e11), n))
    y = get_law("chinchilla").evaluate({"N": N, "D": D}, TRUTH) * np.exp(sd * rng.standard_normal(n))
    df = pd.DataFrame({"N": N, "D": D, "loss": y})
    df.attrs["source"] = "synthetic chinchilla"
    return df


@pytest.mark.parametrize("objective", ["lsq", "lsq-log"])
def test_reaches_the_engines_optimum(objective):
    """From the law's grid over (alpha, beta) only, VarPro lands on the optimum the engine reaches
    from the truth (the global optimum of these mildly noisy data): same objective, same params."""
    df = _chinchilla_runs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fit("chinchilla", df, objective=objective, starts=[TRUTH], n_jobs=1)
        vp = fit_varpro("chinchilla", df, objective=objective, n_jobs=1)
    found = search("chinchilla", df, objective=objective)
    assert found["value"] == pytest.approx(ref.objective["value"], rel=1e-7)
    assert vp.objective["value"] <= ref.objective["value"] * (1 + 1e-9)
    for k, v in ref.params.items():
        assert vp.params[k] == pytest.approx(v, rel=1e-4), k
    assert vp.settings["method"] == "varpro" and vp.diagnostics["varpro"]["nonlinear"] == ["alpha", "beta"]
    assert vp.diagnostics["converged"]


def test_inner_solve_is_exact_least_squares():
    """For lsq the linear parameters at a given (alpha, beta) are the (non-negative) least-squares
    solution: here all positive, so equal to the unconstrained one, and the value matches."""
    df = _chinchilla_runs(sd=0.003)
    law = get_law("chinchilla")
    X = (df["N"].to_numpy(), df["D"].to_numpy())
    y = df["loss"].to_numpy()
    proj = _Projection(law, X, y, np.ones_like(y), "lsq", 1e-3, {})
    v, c = proj.solve(np.array([0.33, 0.38]))
    G = np.column_stack([np.ones_like(y), X[0] ** -0.33, X[1] ** -0.38])
    want = np.linalg.lstsq(G, y, rcond=None)[0]
    assert np.all(want > 0)
    np.testing.assert_allclose(c, want, rtol=1e-8)
    assert v == pytest.approx(0.5 * np.sum((G @ want - y) ** 2), rel=1e-10)


def test_non_negativity_of_linear_parameters():
    """Data with no floor: E is pinned at its bound 0 by NNLS, never negative."""
    rng = np.random.default_rng(2)
    N = np.exp(rng.uniform(np.log(5e7), np.log(1e10), 40))
    D = np.exp(rng.uniform(np.log(1e9), np.log(3e11), 40))
    y = 300 * N ** -0.3 + 900 * D ** -0.3 - 0.05
    df = pd.DataFrame({"N": N, "D": D, "loss": y})
    found = search("chinchilla", df, objective="lsq")
    assert found["params"]["E"] >= 0 and found["params"]["E"] < 1e-6


def test_fixed_parameters_and_laws_without_linear_parameters():
    df = _chinchilla_runs()
    found = search("chinchilla", df, objective="lsq", fixed={"beta": 0.36})
    assert found["nonlinear"] == ["alpha"] and found["params"]["beta"] == 0.36
    with pytest.raises(ScalelawError, match="declares no linear parameters"):
        search("kaplan_n", pd.DataFrame({"N_nonembed": [1e7, 1e8, 1e9], "loss": [4.0, 3.5, 3.0]}))


def test_cli_method_varpro(tmp_path):
    df = _chinchilla_runs()
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    r = CliRunner().invoke(main, ["fit", "chinchilla", str(p), "--method", "varpro", "--objective", "lsq",
                                  "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["settings"]["method"] == "varpro" and d["diagnostics"]["varpro"]["linear"] == ["E", "A", "B"]
    r = CliRunner().invoke(main, ["fit", "kaplan_n", str(p), "--method", "varpro"])
    assert r.exit_code == 2 and "declares no linear parameters" in r.output


def test_auto_uses_varpro_only_where_it_was_measured_as_good():
    from scalelaw.varpro import choose_method

    assert choose_method("chinchilla", "lsq") == "varpro"
    assert choose_method("chinchilla", "lsq-log") == "varpro"
    assert choose_method("chinchilla", None) == "multistart"             # default huber-log
    assert choose_method("chinchilla", "huber-log") == "multistart"
    assert choose_method("kaplan_n", "lsq") == "multistart"              # no linear parameters
    assert choose_method("chinchilla", "lsq", fixed={"E": 1, "A": 2, "B": 3}) == "multistart"


def test_cli_auto_method_and_varpro_health(tmp_path):
    df = _chinchilla_runs()
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    r = CliRunner().invoke(main, ["fit", "chinchilla", str(p), "--objective", "lsq-log", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["settings"]["method"] == "varpro"
    # the health checklist counts the search's grid over (alpha, beta) and its refined starts
    assert d["diagnostics"]["n_starts"] == 25 and 1 <= d["diagnostics"]["starts_at_best"] <= 3
    r = CliRunner().invoke(main, ["fit", "chinchilla", str(p), "--json"])
    assert r.exit_code == 0, r.output
    assert "method" not in json.loads(r.output)["settings"]                # huber-log: the engine
