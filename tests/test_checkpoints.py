"""Downstream scores across checkpoints (scalelaw.analysis.checkpoints, `scalelaw trajectory`)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.analysis import checkpoints as ck
from scalelaw.cli.app import main
from scalelaw.errors import ScalelawError
from scalelaw.law import get_law

TRUTH = {"eps": 0.75, "K": 0.6, "A": 5000.0, "B": 30000.0, "eta": 0.22}   # near the fit to Pythia's ARC-Easy
SIZES = (7e7, 1.6e8, 4e8, 1.4e9, 2.8e9)
STEPS = (1000, 3000, 8000, 13000, 23000, 33000, 53000, 73000, 93000, 113000, 143000)
TPS = 2_097_152


def synthetic(seed=0, se=0.01):
    """Checkpoints of five sizes whose error follows downstream_direct (plus binomial-like noise)."""
    law = get_law("downstream_direct")
    rng = np.random.default_rng(seed)
    rows = []
    for N in SIZES:
        for s in (0,) + STEPS:
            D = s * TPS
            err = float(TRUTH["eps"]) if s == 0 else float(law.evaluate({"N": [N], "D": [D]}, TRUTH)[0])
            rows.append({"run": f"m{N:.0e}", "step": s, "N": N, "D": D,
                         "score_arc_easy": 1 - err + rng.normal(0, se), "stderr_arc_easy": se})
    df = pd.DataFrame(rows)
    df.attrs["source"] = "synthetic"
    return df


def test_fit_tasks_recovers_the_final_scores():
    df = synthetic()
    res = ck.fit_tasks(df, ["arc_easy"])
    assert res.law == "downstream_direct" and res.x == "tokens" and not res.errors
    f = res.fits["arc_easy"]
    law = get_law("downstream_direct")
    X = {"N": np.array([2.8e9]), "D": np.array([143000.0 * TPS])}
    assert float(law.evaluate(X, f.params)[0]) == pytest.approx(float(law.evaluate(X, TRUTH)[0]), abs=0.02)


def _series(task, scores, se=0.01, N=1e9):
    steps = np.arange(1, len(scores) + 1) * 1000
    return pd.DataFrame({"run": "r", "step": steps, "N": N, "D": steps * 1e6,
                         f"score_{task}": scores, f"stderr_{task}": se})


def test_flag_rules():
    flat = _series("piqa", [0.5, 0.51, 0.49, 0.5, 0.505])          # chance 0.5
    sat = _series("sciq", [0.5, 0.8, 0.95, 0.97, 0.98])            # closes > 90% of 0.25 -> 1
    drop = _series("arc_easy", [0.3, 0.4, 0.5, 0.38, 0.52])        # falls 0.12 = 8.5 combined stderrs
    f = pd.concat([ck.flag_tasks(d) for d in (flat, sat, drop)], ignore_index=True).set_index("task")
    assert f.loc["piqa", "at_chance"] and not f.loc["piqa", "saturated"]
    assert f.loc["sciq", "saturated"] and not f.loc["sciq", "at_chance"] and not f.loc["sciq", "non_monotonic"]
    assert f.loc["arc_easy", "non_monotonic"] and f.loc["arc_easy", "max_drop"] == pytest.approx(0.12)
    assert not f.loc["arc_easy", "at_chance"]
    # a task without a declared chance level takes the step-0 score, else it is refused by name
    with pytest.raises(ScalelawError, match="task 'mytask' has no declared chance level"):
        ck.flag_tasks(_series("mytask", [0.3, 0.4]))
    assert ck.flag_tasks(_series("mytask", [0.3, 0.4]), chance={"mytask": 0.3})["at_chance"].tolist() == [False]


@pytest.mark.parametrize("shape", ["rising", "flat"])
def test_non_monotonic_rule_rarely_flags_a_noisy_monotone_curve(shape):
    """False alarms (docs/trajectory.md): 27 checkpoints, noise = stderr; a flat curve is the hard
    case (the best of many noisy checkpoints sits high): the 3-stderr threshold flagged 23% of them."""
    rng = np.random.default_rng(1)
    truth = 0.25 + 0.5 * (1 - np.exp(-np.linspace(0, 4, 27))) if shape == "rising" else np.full(27, 0.5)
    flagged = 0
    for _ in range(300):
        s = truth + rng.normal(0, 0.01, 27)
        flagged += bool(ck.flag_tasks(_series("arc_easy", s))["non_monotonic"].iloc[0])
    assert flagged / 300 < 0.05


def test_emergence_is_the_first_checkpoint_above_chance_for_good():
    s = [0.25, 0.26, 0.35, 0.25, 0.3, 0.4, 0.5]   # a blip at step 3000, above for good from step 5000
    em = ck.emergence(_series("arc_easy", s))
    assert em.loc["arc_easy", "r"] == pytest.approx(6 * 1e9 * 5000 * 1e6)
    assert np.isnan(ck.emergence(_series("arc_easy", [0.25, 0.26, 0.25])).loc["arc_easy", "r"])


def test_predict_final_from_a_quarter_of_training():
    df = synthetic(seed=2)
    res = ck.predict_final(df, "m3e+09", 0.25, ["arc_easy"]).iloc[0]
    assert res["observed_step"] == 33000 and res["final_step"] == 143000
    assert res["lower"] <= res["actual"] <= res["upper"]
    # the fit's own interval, widened by the measured factor (docs/trajectory.md)
    assert res["lower_fit"] > res["lower"] and res["upper_fit"] < res["upper"]
    assert res["upper"] - res["predicted"] == pytest.approx(ck.INTERVAL_SCALE * (res["upper_fit"] - res["predicted"]))
    assert abs(res["predicted"] - res["actual"]) < 0.03
    assert abs(res["predicted"] - res["actual"]) < abs(res["last_observed"] - res["actual"])
    with pytest.raises(ScalelawError, match="is the smallest in the table"):
        ck.predict_final(df, "m7e+07", 0.25, ["arc_easy"])


def test_cli_flags_emergence_plot(tmp_path):
    df = synthetic()
    df.to_csv(tmp_path / "ckpt.csv", index=False)
    r = CliRunner().invoke(main, ["trajectory", "flags", str(tmp_path / "ckpt.csv"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) == {"rules", "settings", "tasks", "runs"} and out["tasks"][0]["verdict"] == "informative"
    r = CliRunner().invoke(main, ["trajectory", "emergence", str(tmp_path / "ckpt.csv"), "--json"])
    assert r.exit_code == 0 and set(json.loads(r.output)["arc_easy"]) == {f"m{N:.0e}" for N in SIZES}
    html = tmp_path / "fig.html"
    r = CliRunner().invoke(main, ["trajectory", "plot", str(tmp_path / "ckpt.csv"), "--task", "arc_easy", "-o", str(html)])
    assert r.exit_code == 0 and "plotly" in html.read_text()[:100000]
    r = CliRunner().invoke(main, ["trajectory", "plot", str(tmp_path / "ckpt.csv"), "--task", "arc_easy", "-o", str(html)])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "--force" in r.output
    r = CliRunner().invoke(main, ["trajectory", "flags", str(tmp_path / "ckpt.csv"), "--task", "arc_eazy"])
    assert r.exit_code == 2 and "did you mean arc_easy" in r.output


@pytest.mark.public_data
def test_pythia_flags(mirror):
    from scalelaw.io import load_table

    fl = ck.summarize_flags(ck.flag_tasks(load_table("pythia"), ["wsc", "piqa", "hendrycksTest_*"])).set_index("task")
    assert fl.loc["piqa", "verdict"] == "informative"
    assert fl.loc["wsc", "at_chance"] == 7            # WSC stays at chance for every Pythia size
    assert 0 < fl.loc["hendrycksTest_avg", "at_chance"] < 7   # MMLU leaves chance only for the larger models
