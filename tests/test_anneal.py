"""The annealing law of Tissue et al. 2024 (scalelaw.laws.anneal): areas, schedules, fitting one
schedule's curve and predicting another's."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.cli.app import main
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.laws.anneal import LR_ANNEAL, areas, predict_schedule, schedule

TRUE = {"L0": 2.1, "A": 1.2, "alpha": 0.5, "C": 0.6}
STEPS, PEAK, WARM = 20000, 3e-4, 200


def test_areas_by_hand():
    S1, S2 = areas([1.0, 1.0, 0.5, 0.5], decay=0.5)
    # m = [0, 0, 0.5, 0.25]: the decrease at step 3 keeps acting, halved each step
    assert S1.tolist() == [1.0, 2.0, 2.5, 3.0] and S2.tolist() == [0.0, 0.0, 0.5, 0.75]
    S1, S2 = areas(schedule("constant", 100, 1e-3, warmup=10), warmup=10)
    assert np.all(S2 == 0) and S1[9] == 0 and S1[-1] == pytest.approx(90 * 1e-3)
    with pytest.raises(ScalelawError, match="decay"):
        areas([1.0, 0.5], decay=1.0)


def test_schedules():
    cos = schedule("cosine", 1000, 1.0, warmup=100, final=0.1)
    assert cos[49] == pytest.approx(0.5) and cos[99] == pytest.approx(1.0) and cos[-1] == pytest.approx(0.1)
    wsd = schedule("wsd", 1000, 1.0, warmup=100, final=0.0, decay_frac=0.2)
    assert np.all(wsd[100:800] == 1.0) and wsd[-1] == pytest.approx(0.0) and np.all(np.diff(wsd[800:]) < 0)
    with pytest.raises(ScalelawError, match="unknown schedule 'step'"):
        schedule("step", 100, 1.0)


def _curve(kind, seed, noise=0.005, every=10):
    lr = schedule(kind, STEPS, PEAK, warmup=WARM, final=0.1)
    S1, S2 = areas(lr, 0.999, WARM)
    steps = np.arange(WARM + every, STEPS + 1, every)
    rng = np.random.default_rng(seed)
    loss = LR_ANNEAL.func(S1[steps - 1], S2[steps - 1], **TRUE) + rng.normal(0, noise, len(steps))
    return pd.DataFrame({"run": kind, "step": steps, "lr": lr[steps - 1], "loss": loss}), lr


def test_fit_on_cosine_predicts_constant_and_wsd():
    train, _ = _curve("cosine", 0)
    f = fit(LR_ANNEAL, train, prepare_options={"warmup": WARM}, n_jobs=1)
    for k, v in TRUE.items():
        assert f.params[k] == pytest.approx(v, rel=0.05), k
    for kind in ("constant", "wsd"):
        lr = schedule(kind, STEPS, PEAK, warmup=WARM, final=0.1)
        at = np.arange(1000, STEPS + 1, 1000)
        pred = predict_schedule(f, lr, at)
        S1, S2 = areas(lr, 0.999, WARM)
        truth = LR_ANNEAL.func(S1[at - 1], S2[at - 1], **TRUE)
        assert np.max(np.abs(pred["mean"] - truth)) < 0.01, kind
        assert np.all((truth >= pred["pred_lower"]) & (truth <= pred["pred_upper"]))
    # the annealing term matters: a law without it (C = 0) misses WSD's final drop by far more
    no_anneal = fit(LR_ANNEAL, train, prepare_options={"warmup": WARM}, fixed={"C": 0.0}, n_jobs=1)
    lr = schedule("wsd", STEPS, PEAK, warmup=WARM, final=0.1)
    S1, S2 = areas(lr, 0.999, WARM)
    truth = LR_ANNEAL.func(S1[-1:], S2[-1:], **TRUE)
    assert abs(predict_schedule(no_anneal, lr, [STEPS])["mean"].iloc[0] - truth[0]) > 0.05


def test_prepare_refuses_what_it_cannot_use():
    bad = pd.DataFrame({"run": "a", "step": [1, 2, 2], "lr": [1e-3] * 3, "loss": [3.0, 2.9, 2.8]})
    with pytest.raises(ScalelawError, match="logs step 2 twice"):
        fit(LR_ANNEAL, bad)
    with pytest.raises(ScalelawError, match="lacks lr"):
        fit(LR_ANNEAL, bad.drop(columns="lr"))


def test_cli_fit_then_predict_another_schedule(tmp_path):
    train, _ = _curve("cosine", 1, every=50)
    train.to_csv(tmp_path / "cos.csv", index=False)
    r = CliRunner().invoke(main, ["fit", "lr_anneal", str(tmp_path / "cos.csv"), "--option", f"warmup={WARM}",
                                  "-o", str(tmp_path / "fit.json")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["trajectory", "anneal", str(tmp_path / "fit.json"), "--schedule", "wsd",
                                  "--steps", STEPS, "--peak", PEAK, "--warmup-steps", WARM, "--final", 0.1, "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert rows[-1]["step"] == STEPS and len(rows) == 20
    lr = schedule("wsd", STEPS, PEAK, warmup=WARM, final=0.1)
    S1, S2 = areas(lr, 0.999, WARM)
    assert rows[-1]["mean"] == pytest.approx(float(LR_ANNEAL.func(S1[-1], S2[-1], **TRUE)), abs=0.01)
