"""The package-level Python API (scalelaw.api, docs/python.md) and the Fit result's statsmodels-like
surface: params/stderr Series, conf_int, predict by keywords, vectorised optimum, residuals on the
table's index, likelihood criteria, correlations, summary."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scalelaw as sl
from scalelaw.errors import ScalelawError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs():
    return sl.load(str(ROOT / "data" / "example_runs.csv"))


@pytest.fixture(scope="module")
def boot_fit(runs):
    return sl.fit(runs, "chinchilla", boot=60, seed=1)


def test_import_is_cheap_and_exposes_the_api():
    code = ("import sys, scalelaw as sl; heavy = [m for m in ('pandas', 'scipy', 'plotly', 'numpy') if m in sys.modules];"
            "print(heavy, sorted(n for n in ('load', 'fit', 'load_fit', 'laws', 'plan', 'isoflop', 'backtest') if n in dir(sl)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()
    assert out == "[] ['backtest', 'fit', 'isoflop', 'laws', 'load', 'load_fit', 'plan']", out


def test_fit_and_laws_are_the_api_and_stay_the_modules_of_those_names():
    import scalelaw.fit as engine
    import scalelaw.laws as registry
    from scalelaw.fit import fit as engine_fit

    # sl.fit is the engine module (code importing it keeps working), and calling it is the API
    assert sl.fit is engine and sl.laws is registry and callable(sl.fit) and callable(sl.laws)
    assert engine._run_batched is not None and engine_fit.__module__ == "scalelaw.fit"
    runs = sl.load(str(ROOT / "data" / "example_runs.csv"))
    assert dict(sl.fit(runs, "chinchilla").params) == dict(engine_fit("chinchilla", runs).params)
    table = sl.laws()
    assert {"chinchilla", "kaplan_nd", "lr_opt"} <= set(table.index)
    assert table.loc["chinchilla", "params"] == "E, A, B, alpha, beta"
    assert set(sl.laws("loss")["family"]) == {"loss"}
    with pytest.raises(ScalelawError, match="families"):
        sl.laws("no-such-family")


def _cli_error(args) -> str:
    from click.testing import CliRunner

    from scalelaw.cli import main

    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    return res.stderr.strip()


@pytest.mark.parametrize("case", ["billions", "perplexity"])
def test_dataframe_is_validated_as_the_cli_validates_a_file(runs, tmp_path, case):
    df = pd.DataFrame({"params": runs["N"], "tokens": runs["D"], "val": runs["loss"]})
    if case == "billions":
        df["params"] = df["params"] / 1e9
    else:
        df["val"] = np.exp(df["val"])
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    cli = _cli_error(["fit", "chinchilla", str(path), "--map", "N=params", "--map", "D=tokens", "--map", "loss=val"])
    with pytest.raises(ScalelawError) as exc:
        sl.fit(df, "chinchilla", columns={"N": "params", "D": "tokens", "loss": "val"})
    py = str(exc.value)
    # the same sentence, the source named differently (the file's path vs <DataFrame>)
    strip = lambda s: s.replace(str(path), "SRC").replace("<DataFrame>", "SRC").removeprefix("error: ")
    assert strip(cli) == strip(py), (cli, py)
    assert ("scaled unit" in py) if case == "billions" else ("perplexity" in py)


def test_dataframe_units_and_either_direction_of_columns(runs):
    df = pd.DataFrame({"params_B": runs["N"] / 1e9, "tokens": runs["D"], "val": runs["loss"]})
    a = sl.fit(df, "chinchilla", columns={"N": "params_B", "D": "tokens", "loss": "val"}, units={"N": "B"})
    b = sl.fit(df, "chinchilla", columns={"params_B": "N", "tokens": "D", "val": "loss"}, units={"N": "B"})
    c = sl.fit(runs, "chinchilla")
    assert dict(a.params) == pytest.approx(dict(c.params), rel=1e-6)
    assert dict(b.params) == pytest.approx(dict(c.params), rel=1e-6)
    with pytest.raises(ScalelawError, match=r"takes \(data, law\)"):
        sl.fit("chinchilla", runs)


def test_fit_by_path_and_dataset_name_records_the_source(runs):
    f = sl.fit(str(ROOT / "data" / "example_runs.csv"), "chinchilla", where="N < 1e9")
    assert f.data["source"].endswith("example_runs.csv") and f.n_obs == int((runs["N"] < 1e9).sum())


def test_per_step_dataframe_refused_with_the_reduce_hint():
    steps = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "step": [1, 2, 3] * 2, "N": [1e8] * 3 + [2e8] * 3,
                          "D": [1e9, 2e9, 3e9] * 2, "loss": [4.0, 3.5, 3.2, 3.9, 3.4, 3.1]})
    with pytest.raises(ScalelawError, match="per-step log.*--reduce final"):
        sl.fit(steps, "chinchilla")


def test_params_and_stderr_are_series_and_json_stays_plain(boot_fit, tmp_path):
    f = boot_fit
    assert isinstance(f.params, pd.Series) and list(f.params.index) == ["E", "A", "B", "alpha", "beta"]
    se = f.stderr      # NaN where the interval is skewed (an sd would mislead)
    assert isinstance(se, pd.Series) and se.notna().any() and (se.dropna() > 0).all()
    assert f.params["alpha"] == dict(f.params)["alpha"] and "E" in f.params
    d = json.loads(f.to_json())
    assert d["params"] == {k: float(v) for k, v in f.params.items()}
    assert {k for k, v in d["stderr"].items() if v is None} == set(se[se.isna()].index)
    assert {k: v for k, v in d["stderr"].items() if v is not None} == pytest.approx(se.dropna().to_dict())
    g = sl.load_fit(f.save(tmp_path / "f.json"))
    assert dict(g.params) == dict(f.params)
    assert g.aic == pytest.approx(f.aic) and g.rmse == pytest.approx(f.rmse)
    fixed = sl.fit(f.table, "chinchilla", fixed={"E": 1.69})
    assert math.isnan(fixed.stderr["E"]) and fixed.conf_int().loc["E"].isna().all()
    assert json.loads(fixed.to_json())["stderr"]["E"] is None


def test_conf_int_at_levels(boot_fit):
    ci95, ci50 = boot_fit.conf_int(), boot_fit.conf_int(0.5)
    assert list(ci95.columns) == ["lower", "upper"] and list(ci95.index) == list(boot_fit.params.index)
    assert (ci95["lower"] < ci50["lower"]).all() and (ci50["upper"] < ci95["upper"]).all()
    assert ci95.loc["alpha"].tolist() == pytest.approx(boot_fit.ci["alpha"])
    with pytest.raises(ScalelawError, match="level"):
        boot_fit.conf_int(1.5)


def test_predict_by_keywords_equals_predict_by_table(boot_fit):
    a = boot_fit.predict(N=[1e9, 7e10], D=1.4e12)
    b = boot_fit.predict(pd.DataFrame({"N": [1e9, 7e10], "D": [1.4e12, 1.4e12]}))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ScalelawError, match="not both"):
        boot_fit.predict({"N": [1e9]}, D=1e12)
    with pytest.raises(ScalelawError, match="one length"):
        boot_fit.predict(N=[1e9, 2e9], D=[1e10, 2e10, 3e10])


def test_optimum_vectorised_over_budgets(boot_fit):
    budgets = [1e20, 1e22, 5.76e23]
    table = boot_fit.optimum(compute=budgets)
    assert isinstance(table, pd.DataFrame) and table["C"].tolist() == budgets
    for i, C in enumerate(budgets):
        one = boot_fit.optimum(compute=C)
        for k, v in one.items():
            assert table.loc[i, k] == pytest.approx(v)
    assert table.loc[2, "extrapolation"] > table.loc[0, "extrapolation"] >= 1
    assert (table["N_opt_lower"] < table["N_opt"]).all() and (table["N_opt"] < table["N_opt_upper"]).all()
    with pytest.raises(ScalelawError, match="positive"):
        boot_fit.optimum(compute=[1e20, -1.0])


def test_residuals_are_a_series_on_the_tables_index(runs):
    shuffled = runs.sample(frac=1.0, random_state=0).set_index("run")
    f = sl.fit(shuffled, "chinchilla", where="N > 3e7")
    r = f.residuals
    kept = shuffled[shuffled["N"] > 3e7]
    assert isinstance(r, pd.Series) and r.index.equals(kept.index)
    pred = f.predict(kept[["N", "D"]])["mean"].to_numpy()
    assert np.allclose(r.to_numpy(), np.log(pred) - np.log(kept["loss"].to_numpy()))
    # likelihood criteria from those residuals (Gaussian, ML variance, k = 5 free parameters + the variance)
    n, rss = len(r), float((r ** 2).sum())
    ll = -n / 2 * (math.log(2 * math.pi * rss / n) + 1)
    assert f.loglike == pytest.approx(ll) and f.aic == pytest.approx(-2 * ll + 12)
    assert f.bic == pytest.approx(-2 * ll + 6 * math.log(n)) and f.dof == n - 5
    assert f.rmse == pytest.approx(float(np.sqrt(np.mean((pred - kept["loss"].to_numpy()) ** 2))))


def test_criteria_agree_with_scalelaw_compare(runs):
    from scalelaw.compare import _information

    f = sl.fit(runs, "chinchilla")
    info = _information(f.law, f, runs)
    assert f.aic == pytest.approx(info["aic"]) and f.bic == pytest.approx(info["bic"])


def test_corr_and_summary_list_high_correlations(boot_fit):
    c = boot_fit.corr
    assert list(c.index) == list(boot_fit.free) and np.allclose(np.diag(c), 1) and np.allclose(c, c.T)
    delta = sl.fit(boot_fit.table, "chinchilla")            # the Gauss-Newton covariance's correlation
    assert np.allclose(np.diag(delta.corr), 1) and np.allclose(delta.corr, delta.corr.T)
    high = boot_fit.high_correlations()
    assert high == sorted(high, key=lambda t: -abs(t[2])) and all(abs(r) > 0.9 for *_, r in high)
    text, html = str(boot_fit.summary()), boot_fit._repr_html_()
    for what in ("n (rows fitted)", "free parameters", "degrees of freedom", "AIC / BIC", "RMSE", "seed", "convergence"):
        assert what in text and what in html
    assert f"degrees of freedom    {boot_fit.dof}" in text
    assert "1 (bootstrap, 60 resamples)" in text
    for a, b, r in high:
        assert re.search(rf"C\({a}, {b}\) +{re.escape(format(r, '+.3f'))}", text) and f"C({a}, {b})" in html
    published = str(sl.load_fit("epoch-2024").summary())
    assert "statistics" not in published and "correlations" not in published


def test_backtest_default_split_by_compute_leaves_both_sides(runs):
    from scalelaw.predict import default_split

    _, train, shown = default_split(runs, "chinchilla")
    thr = float(shown.split("<= ")[1])
    held = (runs["C"] > thr * 1.001).mean()
    assert 0.1 < held < 0.4, shown
    bt = sl.backtest(runs, "chinchilla")
    assert bt["train"] == shown and bt["n_train"] + bt["n_test"] == len(runs) and bt["n_test"] > 0
    # an IsoFLOP table: many runs per budget; budgets stay whole and both sides non-empty
    iso = pd.DataFrame({"N": np.tile([1e8, 2e8, 4e8, 8e8], 3), "C": np.repeat([1e19, 1e20, 1e21], 4) * 1.0})
    iso["D"] = iso["C"] / (6 * iso["N"])
    iso["loss"] = 2 + 400 / iso["N"] ** 0.34 + 400 / iso["D"] ** 0.28
    _, _, shown = default_split(iso, "chinchilla")
    assert shown == "C <= 1e+20"
    same = iso.assign(C=1e20)
    with pytest.raises(ScalelawError, match="same C"):
        default_split(same, "chinchilla")


def _python_blocks() -> list:
    text = (ROOT / "docs" / "python.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_docs_python_example_runs(monkeypatch, capsys):
    blocks = _python_blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(ROOT)
    ns: dict = {}
    for code in blocks:
        exec(compile(code, "docs/python.md", "exec"), ns)
    out = capsys.readouterr().out
    assert "looks like a scaled unit" in out          # the refused table printed its error
    assert isinstance(ns["opt"], pd.DataFrame) and len(ns["opt"]) == 3
    assert type(ns["fig"]).__name__ == "Figure" and len(ns["fig"].data) > 0
    assert ns["bt"]["n_test"] > 0 and ns["p"]["N"] > 0
