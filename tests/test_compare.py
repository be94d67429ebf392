"""scalelaw compare: held-out scores per law and the paired bootstrap between the best two."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.cli import main
from scalelaw.compare import compare, paired_bootstrap
from scalelaw.errors import ScalelawError
from scalelaw.law import Law, get_law

TRUTH = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.36}


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(5e7), np.log(1e10), 60))
    D = np.exp(rng.uniform(np.log(1e9), np.log(3e11), 60))
    y = get_law("chinchilla").evaluate({"N": N, "D": D}, TRUTH) * np.exp(0.003 * rng.standard_normal(60))
    df = pd.DataFrame({"run": [f"r{i}" for i in range(60)], "N": N, "D": D, "C": 6 * N * D, "loss": y})
    df.attrs["source"] = "synthetic"
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    return df, p


def test_the_true_law_wins_beyond_noise(runs):
    df, _ = runs
    wrong = Law.from_formula("loss = E + A/N^alpha", name="n_only")       # ignores the data term
    res = compare(["chinchilla", wrong], df, train="C < 3e19", n_jobs=1, objective="lsq-log")
    assert res["ranking"] == ["chinchilla", "n_only"] and res["best"] == "chinchilla"
    t = res["paired_bootstrap"]
    assert t["best"] == "chinchilla" and t["better_beyond_noise"] and t["lower"] > 0 and t["p_value"] < 0.05
    by = {e["law"]: e for e in res["laws"]}
    assert by["chinchilla"]["r2"] > 0.95 and by["chinchilla"]["mean_rel_error"] < 0.02
    assert by["n_only"]["mean_rel_error"] > 3 * by["chinchilla"]["mean_rel_error"]
    assert by["chinchilla"]["aic"] < by["n_only"]["aic"] and by["chinchilla"]["bic"] < by["n_only"]["bic"]
    assert 0 <= by["chinchilla"]["coverage"] <= 1
    # AIC from the Gaussian likelihood of the training log residuals, k = free params + 1
    tr = df[df["C"] < 3e19]
    r = np.log(get_law("chinchilla").evaluate({"N": tr["N"], "D": tr["D"]}, by["chinchilla"]["params"])) - np.log(tr["loss"])
    n = len(tr)
    ll = -0.5 * n * (math.log(2 * math.pi * float(np.sum(r ** 2)) / n) + 1)
    assert by["chinchilla"]["aic"] == pytest.approx(2 * 6 - 2 * ll, rel=1e-9)
    assert res["n_test"] == len(by["chinchilla"]["rel_errors"]) == int((df["C"] >= 3e19).sum())


def test_the_same_law_twice_is_within_noise(runs):
    df, _ = runs
    twin = Law.from_formula("loss = E + A/N^alpha + B/D^beta", name="twin")
    res = compare(["chinchilla", twin], df, train="C < 3e19", n_jobs=1, objective="lsq-log")
    assert not res["paired_bootstrap"]["better_beyond_noise"]
    assert abs(res["paired_bootstrap"]["mean_diff"]) < 1e-6


def test_paired_bootstrap_resamples_pairs():
    e = np.array([0.01, 0.02, 0.03, 0.015])
    same = paired_bootstrap(e, e)
    assert same["mean_diff"] == 0 and not same["better_beyond_noise"] and same["p_value"] == 1.0
    # a constant improvement on every run is beyond noise once above 1% of the next law's error...
    t = paired_bootstrap(e, e + 1e-3)
    assert t["better_beyond_noise"] and t["lower"] == pytest.approx(1e-3)
    # ...but not below it (optimiser-tolerance differences between two fits of one law)
    t = paired_bootstrap(e, e + 1e-7)
    assert t["lower"] > 0 and not t["better_beyond_noise"]


def test_refusals(runs):
    df, _ = runs
    with pytest.raises(ScalelawError, match="given twice"):
        compare(["chinchilla", "chinchilla"], df, train="C < 3e19")
    with pytest.raises(ScalelawError, match="different targets"):
        compare(["chinchilla", Law.from_formula("score = c + k*log(N)")], df, train="C < 3e19")
    with pytest.raises(ScalelawError, match="selects every row"):
        compare(["chinchilla"], df, train="C > 0")


def test_cli_table_json_output_and_plot(runs, tmp_path):
    _, p = runs
    out, fig = tmp_path / "cmp.json", tmp_path / "cmp.html"
    args = ["compare", "chinchilla", "loss = E + A/N^alpha", str(p), "--train", "C < 3e19", "--objective", "lsq-log"]
    r = CliRunner().invoke(main, args + ["-o", str(out), "--plot", str(fig)])
    assert r.exit_code == 0, r.output
    assert "beats formula beyond noise" in r.output and "mean_rel_err_%" in r.output
    d = json.loads(out.read_text())
    assert d["best"] == "chinchilla" and {e["law"] for e in d["laws"]} == {"chinchilla", "formula"}
    assert "plotly" in fig.read_text()[:5000].lower() and "held-out relative error" in fig.read_text()
    r = CliRunner().invoke(main, args + ["-o", str(out)])          # no overwrite without --force
    assert r.exit_code == 2 and "--force" in r.output
    r = CliRunner().invoke(main, args + ["--json"])
    assert r.exit_code == 0 and json.loads(r.output)["paired_bootstrap"]["best"] == "chinchilla"
    r = CliRunner().invoke(main, ["compare", str(p), "--train", "C < 3e19"])
    assert r.exit_code == 2 and "give one or more LAWs and then DATA" in r.output
