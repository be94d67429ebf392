"""Downstream laws (exp, sigmoid, direct, PassUntil) and the chained (N, D) -> loss -> error prediction."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.analysis import gadre
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.result import published_fit

NAMES = ("downstream_exp", "downstream_sigmoid", "downstream_direct", "passuntil")
ERR_FIT = Path(__file__).resolve().parents[1] / "fits" / "gadre-rpj-err.json"


def _sample_inputs(law, n=9, seed=0):
    rng = np.random.default_rng(seed)
    X = {}
    for c, (lo, hi) in law.domain.items():
        X[c] = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return X


@pytest.mark.parametrize("name", NAMES)
def test_jacobians(name):
    law = get_law(name)
    X = _sample_inputs(law)
    p = dict(law.example)
    J = law.jac(*(X[c] for c in law.inputs), *(p[n] for n in law.param_names))
    for i, n in enumerate(law.param_names):
        h = 1e-6 * max(1.0, abs(p[n]))
        up, dn = dict(p), dict(p)
        up[n] += h
        dn[n] -= h
        num = (law.evaluate(X, up) - law.evaluate(X, dn)) / (2 * h)
        assert np.allclose(np.broadcast_to(J[i], num.shape), num, rtol=1e-5, atol=1e-9), n


@pytest.mark.parametrize("name", NAMES)
def test_examples_in_unit_interval_and_recovered(name):
    law = get_law(name)
    X = _sample_inputs(law, n=24, seed=3)
    y = law.evaluate(X, law.example)
    assert np.all((y > 0) & (y < 1))
    df = pd.DataFrame({**X, law.target: y})
    f = fit(name, df)
    pred = law.evaluate(X, f.params)
    assert np.allclose(pred, y, rtol=1e-4)


@pytest.mark.parametrize("name", ("downstream_exp", "downstream_sigmoid", "passuntil"))
def test_inverse_round_trip(name):
    law = get_law(name)
    X = _sample_inputs(law, n=5)
    y = law.evaluate(X, law.example)
    back = law.inverse(y, law.example)
    assert np.allclose(back, X[law.inverse_of], rtol=1e-8)


def test_published_error_law():
    f = published_fit("gadre-2024-rpj-err17")
    # Gadre et al.: predicted losses 2.5198 / 2.4427 -> predicted errors 0.4925 / 0.4719
    assert f.predict({"loss": [2.5198, 2.4427]})["mean"].tolist() == pytest.approx([0.4925, 0.4719], abs=1e-4)
    assert get_law("downstream_exp").inverse(0.4925, f.params) == pytest.approx(2.5198, abs=1e-3)


def _err_table(err):
    loss = np.linspace(2.5, 4.0, len(err))
    return pd.DataFrame({"loss": loss, "err_avg": err, "err_piqa": np.linspace(0.2, 0.5, len(err))})


def test_error_laws_declare_the_unit_interval():
    for name in NAMES:
        assert get_law(name).target_range == (0.0, 1.0), name
        assert get_law(name).describe()["target_range"] == [0.0, 1.0]


def test_error_interval_is_clipped_to_the_unit_interval_with_a_warning():
    """Gadre's error law at loss 2.0 (fitted on 2.77-5.39): the raw interval starts at -0.30."""
    from scalelaw.result import load_fit

    f = load_fit(ERR_FIT)
    with pytest.warns(UserWarning, match=r"interval of err_avg reaches the bound 0 of \[0, 1\].*clipped.*"
                                         r"extrapolated.*loss 2.769 to 5.387"):
        row = f.predict({"loss": [2.0, 3.0]}).iloc[0]
    assert row["lower"] == 0.0 and row["pred_lower"] == 0.0
    assert 0 < row["mean"] < row["upper"] <= row["pred_upper"] <= 1
    with warnings.catch_warnings():     # inside the fitted range: nothing clipped, nothing said
        warnings.simplefilter("error")
        row = f.predict({"loss": [3.5]}).iloc[0]
    assert 0 < row["pred_lower"] < row["lower"] < row["mean"] < row["upper"] < row["pred_upper"] < 1


def test_clip_to_target_judges_unclipped_values_and_draws_at_both_ends():
    """The one clipping step of Fit.predict, chain_predict and plan: a value past 1 and a draw
    interval past 0 are flagged at their own end, both are clipped, and the warning names both."""
    from scalelaw.result import bound_warning, clip_to_target, load_fit

    f = load_fit(ERR_FIT)
    draws = np.array([[-0.2, 0.5, 0.4], [0.1, 0.6, 0.5], [0.3, 0.7, 0.6]])     # (samples, points)
    (v,), (d,), (lo, hi) = clip_to_target(f, 0.9, [np.array([0.5, 1.2, 0.5])], [draws])
    assert v.tolist() == [0.5, 1.0, 0.5] and d.min() == 0.0 and d[1:].tolist() == draws[1:].tolist()
    assert lo.tolist() == [True, False, False] and hi.tolist() == [False, True, False]
    msg = bound_warning(f, lo, hi, 0.9)
    assert "reaches the bound 0 and 1 of [0, 1] at 2 of 3 points" in msg
    _, _, again = clip_to_target(f, 0.9, [np.array([0.5, 0.5, 0.5])], beyond=(lo, hi))   # an earlier call's masks carry over
    assert again[0].tolist() == lo.tolist() and again[1].tolist() == hi.tolist()


def test_cli_predict_says_the_error_interval_hit_its_bound():
    from scalelaw.cli import main

    r = CliRunner().invoke(main, ["predict", str(ERR_FIT), "--at", "loss=2.0", "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)[0]
    assert row["lower"] == 0.0 and row["pred_lower"] == 0.0 and row["upper"] <= 1
    assert "warning: downstream_exp: the 95% interval of err_avg reaches the bound 0" in r.stderr


@pytest.mark.parametrize("bad, hint", [(48.0, "percentage"), (-0.1, "[0, 1]"), (1.2, "[0, 1]")])
def test_errors_outside_unit_interval(bad, hint):
    err = [0.5, 0.55, 0.6, 0.65, 0.7, 0.72]
    err[2] = bad
    with pytest.raises(ScalelawError, match="must lie in") as e:
        fit("downstream_exp", _err_table(err))
    assert hint in str(e.value) and "\n" not in str(e.value)


def test_error_column_option():
    df = _err_table([0.5, 0.55, 0.6, 0.65, 0.7, 0.72])
    f = fit("downstream_exp", df, prepare_options={"error": "err_piqa"})
    assert f.input_ranges["err_avg"] == pytest.approx([0.2, 0.5])
    with pytest.raises(ScalelawError, match="err_piqa"):
        fit("downstream_exp", df, prepare_options={"error": "err_nope"})
    with pytest.raises(ScalelawError, match="per-task"):
        fit("downstream_exp", df, prepare_options={"error": "gadre17"})
    # the same check as every law's (scalelaw.law.Law.check_options): names the law and its options
    with pytest.raises(ScalelawError, match=r"law 'downstream_exp' has no --option 'tol'.*takes: error"):
        fit("downstream_exp", df, prepare_options={"tol": 1})


def test_gadre17_average_from_tasks():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"err_{t}": rng.uniform(0.2, 0.9, 8) for t in gadre.TASKS_17})
    df["err_other"] = 0.0
    from scalelaw.laws.downstream import error_column

    assert np.allclose(error_column(df, "gadre17"), df[[f"err_{t}" for t in gadre.TASKS_17]].mean(axis=1))
    assert np.allclose(error_column(df, "err_avg17"), error_column(df, "gadre17"))
    assert len(gadre.TASKS_17) == 17


# ---- chained prediction ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_fits():
    """Loss and error fits on synthetic data drawn from Gadre's published constants."""
    rng = np.random.default_rng(0)
    lp = get_law("overtrain").published["gadre-2024-rpj"]
    ep = get_law("downstream_exp").published["gadre-2024-rpj-err17"]
    N = np.repeat([1e7, 8e7, 1.5e8, 4e8], 4)
    D = N * np.tile([5.0, 20.0, 80.0, 320.0], 4)
    loss = get_law("overtrain").evaluate({"N": N, "D": D}, lp) * np.exp(rng.normal(0, 0.004, len(N)))
    err = get_law("downstream_exp").evaluate({"loss": loss}, ep) + rng.normal(0, 0.004, len(N))
    df = pd.DataFrame({"N": N, "D": D, "loss": loss, "err_avg": err})
    lf = gadre.fit_loss(df, boot=60, validation="c4_val")
    ef = gadre.fit_error(df, error_column="err_avg", boot=40, validation="c4_val")
    return lf, ef, df


def test_chain_predict_columns_and_intervals(synthetic_fits):
    lf, ef, _ = synthetic_fits
    out = gadre.chain_predict(lf, ef, {"N": [1.4e9, 6.9e9], "M": [640, 20]})
    for c in ("N", "D", "loss_mean", "loss_lower", "loss_upper", "error_mean", "error_lower", "error_upper",
              "extrapolation"):
        assert c in out.columns
    assert out["D"].tolist() == pytest.approx([1.4e9 * 640, 6.9e9 * 20])
    assert np.all(out["loss_lower"] <= out["loss_mean"]) and np.all(out["loss_mean"] <= out["loss_upper"])
    assert np.all(out["error_lower"] <= out["error_mean"]) and np.all(out["error_mean"] <= out["error_upper"])
    # the point prediction is the error law applied to the predicted loss
    assert out["error_mean"].tolist() == pytest.approx(
        ef.law.evaluate({"loss": out["loss_mean"].to_numpy()}, ef.params).tolist())
    assert out["extrapolation"].max() > 1
    # where a new run would land: wider than the curve interval, for both stages
    assert np.all(out["loss_pred_lower"] < out["loss_lower"]) and np.all(out["loss_pred_upper"] > out["loss_upper"])
    assert np.all(out["error_pred_lower"] < out["error_lower"]) and np.all(out["error_pred_upper"] > out["error_upper"])


def test_chain_interval_carries_both_stages(synthetic_fits):
    """Error interval with both stages is wider than with the error fit alone at the mean loss."""
    lf, ef, _ = synthetic_fits
    out = gadre.chain_predict(lf, ef, {"N": [6.9e9], "D": [6.9e9 * 20]})
    alone = ef.predict({"loss": out["loss_mean"].to_numpy()})
    assert (out["error_upper"] - out["error_lower"]).iloc[0] > (alone["upper"] - alone["lower"]).iloc[0]


def test_chain_pairs_samples_of_unequal_length(synthetic_fits):
    lf, ef, _ = synthetic_fits
    sl, se = gadre._paired_samples(lf, ef)
    assert len(sl) == len(se) == max(len(lf.boot), len(ef.boot))


def test_chain_unit_mismatches(synthetic_fits):
    lf, ef, df = synthetic_fits
    with pytest.raises(ScalelawError, match="not a validation loss"):
        gadre.chain_predict(ef, ef, {"N": [1e9], "D": [2e10]})
    direct = gadre.fit_error(df, error_column="err_avg", law="downstream_direct")
    with pytest.raises(ScalelawError, match="not the loss"):
        gadre.chain_predict(lf, direct, {"N": [1e9], "D": [2e10]})
    other = gadre.fit_error(df, error_column="err_avg", validation="paloma_ptb")
    with pytest.raises(ScalelawError, match="paloma_ptb"):
        gadre.chain_predict(lf, other, {"N": [1e9], "D": [2e10]})
    bits = df.assign(loss=df["loss"] / np.log(2) * 3)   # some other unit
    ebits = gadre.fit_error(bits, error_column="err_avg", validation=None)
    ebits.data.pop("validation", None)
    with pytest.raises(ScalelawError, match="units do not match"):
        gadre.chain_predict(lf, ebits, {"N": [1e9], "D": [2e10]})
    with pytest.raises(ScalelawError, match="M = D/N"):
        gadre.chain_predict(lf, ef, {"N": [1.4], "D": [2e10]})


def test_chain_cli(synthetic_fits, tmp_path):
    from scalelaw.cli import main

    lf, ef, _ = synthetic_fits
    lp, ep = tmp_path / "loss.json", tmp_path / "err.json"
    lf.save(lp)
    ef.save(ep)
    rows = gadre.chain_predict_cli(str(lp), str(ep), {"N": [1e9], "D": [2e10]})
    assert rows[0]["error_mean"] == pytest.approx(gadre.chain_predict(lf, ef, {"N": [1e9], "D": [2e10]})["error_mean"][0])
    json.dumps(rows)
    r = CliRunner().invoke(main, ["predict", "--chain", f"{lp},{ep}", "--at", "N=1e9", "--at", "D=2e10", "--json"])
    assert r.exit_code == 0, r.output
    assert "error_upper" in json.loads(r.stdout)[0]
    r = CliRunner().invoke(main, ["predict", "--chain", f"{ep},{lp}", "--at", "N=1e9", "--at", "D=2e10"])
    assert r.exit_code == 2 and "error:" in r.output


def test_chain_warns_when_one_stage_has_no_uncertainty(synthetic_fits):
    """Published constants carry no draws: the interval then reflects one stage only, and says so."""
    from scalelaw.result import load_fit

    lf, ef, _ = synthetic_fits
    published = load_fit("gadre-2024-rpj-err17", law="downstream_exp")
    assert published.param_samples() is None
    with pytest.warns(UserWarning, match="error fit carries no parameter uncertainty.*only the loss fit"):
        out = gadre.chain_predict(lf, published, {"N": [6.9e9], "D": [6.9e9 * 20]})
    assert out["error_lower"].iloc[0] < out["error_upper"].iloc[0]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gadre.chain_predict(lf, ef, {"N": [6.9e9], "D": [6.9e9 * 20]})


def test_chain_error_interval_stays_in_0_1_and_says_so():
    """Far past the data the chained error interval would cross 0: it is clipped, with a warning.
    (The reference fits of Gadre's RedPajama runs, 1e11 parameters on 1e13 tokens.)"""
    from pathlib import Path

    fits = Path(__file__).resolve().parents[1] / "fits"
    lf, ef = str(fits / "gadre-rpj-loss.json"), str(fits / "gadre-rpj-err.json")
    with pytest.warns(UserWarning, match=r"error fit \(downstream_exp\).*reaches the bound 0 of \[0, 1\]"):
        out = gadre.chain_predict(lf, ef, {"N": [1e11], "D": [1e13]})
    for c in ("error_mean", "error_lower", "error_upper", "error_pred_lower", "error_pred_upper"):
        assert 0.0 <= out[c].iloc[0] <= 1.0, c
    assert out["error_lower"].iloc[0] == 0.0


def test_chain_with_published_error_fit_has_no_new_run_band_or_range(synthetic_fits):
    from scalelaw.result import load_fit

    lf, _, _ = synthetic_fits
    published = load_fit("gadre-2024-rpj-err17", law="downstream_exp")
    with pytest.warns(UserWarning):
        out = gadre.chain_predict(lf, published, {"N": [6.9e9], "D": [6.9e9 * 20]})
    # no residual scatter recorded: where a new run lands is unknown, not the curve interval
    assert np.isnan(out["error_pred_lower"].iloc[0]) and np.isnan(out["error_pred_upper"].iloc[0])
    assert np.isfinite(out["loss_pred_lower"].iloc[0])
    # no fitted range for the error fit: the chain reports the loss fit's factor (what can be judged)
    assert out["extrapolation"].iloc[0] == pytest.approx(lf.predict({"N": [6.9e9], "D": [6.9e9 * 20]})[
        "extrapolation"].iloc[0])
