"""User-defined laws: formulas, symbolic derivatives, law files, entry points, fit-file round trip."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import scalelaw as sl
from scalelaw import expr
from scalelaw.cli import main
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.formula import diff, from_formula, read_law_file
from scalelaw.law import Law, get_law, load_entry_points
from scalelaw.result import Fit

TRUTH = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.36}


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(5e7), np.log(1e10), 50))
    D = np.exp(rng.uniform(np.log(1e9), np.log(3e11), 50))
    y = get_law("chinchilla").evaluate({"N": N, "D": D}, TRUTH) * np.exp(0.005 * rng.standard_normal(50))
    df = pd.DataFrame({"run": [f"r{i}" for i in range(50)], "N": N, "D": D, "loss": y})
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    df.attrs["source"] = str(p)
    return df, p


@pytest.mark.parametrize("text", [
    "E + A/N^alpha + B/D^beta", "A*exp(-alpha*log(N)) + sqrt(E*D)", "max(N, A)^alpha - min(E, D/N)",
    "abs(N - A)^0.5 + log(E + N^beta)", "-(A/N)^alpha", "N^(alpha*D) / (E - A)"])
def test_symbolic_derivatives_match_finite_differences(text):
    node = expr.parse(text, mode="formula")
    env = {"N": np.array([2.0, 3.5, 7.0]), "D": np.array([1.3, 2.0, 0.4]), "E": 1.7, "A": 0.6,
           "B": 3.0, "alpha": 0.35, "beta": 0.45}
    for p in ("E", "A", "B", "alpha", "beta"):
        h = 1e-6 * max(1.0, abs(env[p]))
        up = expr.evaluate(node, {**env, p: env[p] + h})
        dn = expr.evaluate(node, {**env, p: env[p] - h})
        got = np.asarray(expr.evaluate(diff(node, p), env), dtype=float) * np.ones(3)
        np.testing.assert_allclose(got, (up - dn) / (2 * h), rtol=1e-5, atol=1e-8, err_msg=f"d/d{p} of {text}")


def test_from_formula_matches_the_builtin_law_and_declares_defaults():
    law = Law.from_formula("loss = E + A/N^alpha + B/D^beta", inputs=("N", "D"))
    assert sl.Law is Law
    assert law.inputs == ("N", "D") and set(law.param_names) == set(TRUTH)
    assert law.linear == ("A", "B", "E")          # found symbolically, so --method varpro applies
    X = {"N": np.array([1e8, 1e9]), "D": np.array([1e10, 1e11])}
    np.testing.assert_allclose(law.evaluate(X, TRUTH), get_law("chinchilla").evaluate(X, TRUTH), rtol=1e-13)
    P = {p.name: p for p in law.params}
    assert P["alpha"].lower == 0 and P["alpha"].upper == 5 and not P["alpha"].log        # exponent
    assert P["A"].log and P["A"].lower == 0                                             # scale
    assert P["E"].log and P["E"].upper == 1e3                                           # loss offset
    # default inputs: the canonical columns it names
    assert Law.from_formula("loss = E + A/N^alpha").inputs == ("N",)
    # a target other than loss: offsets unbounded, lsq by default, negative targets allowed
    t = Law.from_formula("score = c + k*log(N)")
    assert not t.positive_target and t.default_objective == "lsq"
    assert t.param("c").lower == -np.inf and not t.param("k").log


def test_formula_fit_equals_builtin_fit(runs):
    df, _ = runs
    law = Law.from_formula("loss = E + A/N^alpha + B/D^beta", inputs=("N", "D"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fit(law, df, objective="lsq-log", n_jobs=1)
        b = fit("chinchilla", df, objective="lsq-log", n_jobs=1, starts=[a.params])
    assert a.objective["value"] == pytest.approx(b.objective["value"], rel=1e-8)
    for k in TRUTH:
        assert a.params[k] == pytest.approx(b.params[k], rel=1e-4)


def test_negative_target_of_any_column():
    rng = np.random.default_rng(1)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 30))
    df = pd.DataFrame({"N": N, "gain": -6.0 + 0.3 * np.log(N) + 0.01 * rng.standard_normal(30)})
    assert (df["gain"] < 0).any()
    law = from_formula("gain = c + k*log(N)", columns=df.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit(law, df, n_jobs=1)
    assert f.params["k"] == pytest.approx(0.3, abs=0.01) and f.params["c"] == pytest.approx(-6.0, abs=0.2)


def test_cli_formula_fit_bounds_json_round_trip_predict_backtest(runs, tmp_path):
    df, p = runs
    out = tmp_path / "fit.json"
    r = CliRunner().invoke(main, ["fit", "loss = E + A/N^alpha + B/D^beta", str(p), "--bounds", "alpha=0.1:0.6",
                                  "--boot", "10", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert d["law_spec"]["formula"] == "loss = E + A / N ^ alpha + B / D ^ beta"
    assert d["law_spec"]["params"]["alpha"]["lower"] == 0.1 and d["law_spec"]["params"]["alpha"]["upper"] == 0.6
    f = Fit.from_json(out.read_text())           # re-parsed from the stored formula
    assert f.law.name == "formula" and f.params["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.05)
    assert f.boot is not None and f.boot.shape == (10, 5)
    r = CliRunner().invoke(main, ["predict", str(out), "--at", "N=7e10", "--at", "D=1.4e12", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["mean"] == pytest.approx(f.law.evaluate({"N": 7e10, "D": 1.4e12}, f.params))
    r = CliRunner().invoke(main, ["backtest", "loss = E + A/N^alpha + B/D^beta", str(p), "--train", "N < 3e9",
                                  "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["mean_rel_error"] < 0.05
    # a stored formula is data: a tampered one is refused by the grammar, not run
    d["law_spec"]["formula"] = "loss = E + A.__class__"
    with pytest.raises(ScalelawError, match="attribute access"):
        Fit.from_dict(d)


@pytest.mark.parametrize("formula, needle", [
    ("loss = E + A/N^alpha + B/Dx^beta", "did you mean 'D'"),
    ("loss = E + A/N^alpha; import os", "not allowed"),
    ("loss = E + __import__(N)", "not allowed"),
    ("loss = E + A/N^(alpha", "expected ')'"),
    ("loss = E + A/N^alpha + B/Q^beta", "'Q' is not a column"),
    ("loss = E + A/M^alpha", "names no input"),
    ("loss = N < 3", "not allowed in a formula"),
])
def test_bad_formulas_are_one_line_exit_2(runs, formula, needle):
    _, p = runs
    r = CliRunner().invoke(main, ["fit", formula, str(p)])
    assert r.exit_code == 2, r.output
    lines = [l for l in r.output.strip().splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], r.output


def test_law_file(runs, tmp_path):
    df, p = runs
    lf = tmp_path / "laws.toml"
    lf.write_text('''
[[law]]
name = "chin_tied"
formula = "loss = E + A/N^alpha + B/D^alpha"
inputs = ["N", "D"]
citation = "tied exponents"
[law.params.alpha]
bounds = [0.05, 1.0]
grid = [0.2, 0.4]
[law.params.E]
bounds = [0.5, 3.0]
log = false
''')
    laws = read_law_file(lf)
    law = laws["chin_tied"]
    assert law.param("alpha").grid == (0.2, 0.4) and law.param("alpha").lower == 0.05
    assert not law.param("E").log and law.param("E").lower == 0.5
    r = CliRunner().invoke(main, ["fit", "chin_tied", str(p), "--laws", str(lf), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["law"] == "chin_tied"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[law]]\nname = "x"\nformula = "loss = E + A/N^a"\nfoo = 1\n')
    r = CliRunner().invoke(main, ["fit", "x", str(p), "--laws", str(bad)])
    assert r.exit_code == 2 and "unknown key(s) foo" in r.output
    bad.write_text('[[law]\nname = ')
    r = CliRunner().invoke(main, ["fit", "x", str(p), "--laws", str(bad)])
    assert r.exit_code == 2 and "not valid TOML" in r.output


def test_entry_point_group_registers_laws(monkeypatch):
    from importlib import metadata

    import scalelaw.law as lawmod

    shipped = Law.from_formula("loss = E + A/N^alpha", name="_plugin_law")

    class EP:
        def __init__(self, name, obj):
            self.name, self.value, self._obj = name, f"pkg:{name}", obj

        def load(self):
            if isinstance(self._obj, Exception):
                raise self._obj
            return self._obj

    eps = [EP("good", lambda: [shipped]), EP("broken", ImportError("no module named pkg"))]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps if group == "scalelaw.laws" else [])
    monkeypatch.delitem(lawmod._REGISTRY, "_plugin_law", raising=False)
    with pytest.warns(UserWarning, match="entry point 'broken'"):
        added = load_entry_points()
    assert added == ["_plugin_law"] and get_law("_plugin_law") is shipped
    monkeypatch.delitem(lawmod._REGISTRY, "_plugin_law")


def test_backtest_figure_of_a_formula_law(runs):
    """The report's backtest figure takes the fit's own law (a formula law is not registered)."""
    from scalelaw.plots import plot_backtest
    from scalelaw.predict import backtest

    df, _ = runs
    law = Law.from_formula("loss = E + A/N^alpha + B/D^beta", inputs=("N", "D"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(law, df, train="N < 3e9", n_jobs=1, objective="lsq-log")
    with pytest.raises(ScalelawError):
        get_law(res["law"])
    fig = plot_backtest(res, law=law)
    assert len(fig.data) >= 1
