"""Hyperparameter laws (lr_opt, bs_opt, bs_opt_nd, lr_power, critical_batch) and the hparams /
sweep CLI verbs."""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.analysis import sweep as S
from scalelaw.cli import main
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.result import load_fit

from .test_sweep import TRUE_BS, TRUE_LR, lr_star, synthetic_sweep

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r


# ---- published constants ----------------------------------------------------------------------
def test_published_steplaw_values():
    lr = get_law("lr_opt").evaluate({"N": 7e9, "D": 1.4e12}, get_law("lr_opt").published["steplaw-2025"])
    bs = get_law("bs_opt").evaluate({"D": 1.4e12}, get_law("bs_opt").published["steplaw-2025"])
    assert float(lr) == pytest.approx(9.17e-4, rel=1e-3)
    assert float(bs) == pytest.approx(5.0e6, rel=1e-3)
    # the released bootstrap means
    lr = get_law("lr_opt").evaluate({"N": 7e9, "D": 1.4e12}, {"c": 1.7973, "alpha": -0.71292, "beta": 0.30749})
    bs = get_law("bs_opt").evaluate({"D": 1.4e12}, {"c": 0.58069, "gamma": 0.57094})
    assert float(lr) == pytest.approx(9.347e-4, rel=1e-3)
    assert float(bs) == pytest.approx(4.997e6, rel=1e-3)


def test_load_hparam_fit_picks_the_law(mirror):
    assert S.load_hparam_fit("steplaw-2025", law="lr_opt").law.name == "lr_opt"
    assert S.load_hparam_fit("steplaw-2025", law="bs_opt").law.name == "bs_opt"
    # with the mirror, Step Law's published fits carry the authors' 1,000 released refits
    for law, k in (("lr_opt", 3), ("bs_opt", 2)):
        f = S.load_hparam_fit("steplaw-2025", law=law)
        assert f.boot is not None and f.boot.shape == (1000, k)
        assert "released bootstrap" in f.diagnostics["message"]
    # a published name of another law is refused, naming the law's own published fits
    with pytest.raises(ScalelawError, match="steplaw-2025"):
        S.load_hparam_fit("hoffmann-2022", law="bs_opt")
    # a fit file is returned as saved whatever law= says (fits/steplaw-bs-nd.json is a reference fit)
    p = ROOT / "fits" / "steplaw-bs-nd.json"
    assert p.exists()
    assert S.load_hparam_fit(str(p), law="bs_opt").law.name == "bs_opt_nd"


# ---- fitting through the engine -----------------------------------------------------------
def test_lr_and_bs_laws_recover_truth_from_bowl_optima():
    df = synthetic_sweep()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit("lr_opt", df, prepare_options={"select": "bowl"})
        g = fit("bs_opt", df, prepare_options={"select": "bowl"})
        h = fit("bs_opt_nd", df, prepare_options={"select": "bowl"})
    assert f.settings["objective"] == "lsq-log"
    for k, v in TRUE_LR.items():
        assert f.params[k] == pytest.approx(v, rel=1e-5, abs=1e-6)
    for k, v in TRUE_BS.items():
        assert g.params[k] == pytest.approx(v, rel=1e-5)
    assert h.params["alpha"] == pytest.approx(0.0, abs=1e-6)
    assert f.n_obs == 6 and f.diagnostics["converged"]


def test_plateau_fit_is_ols_in_log_space_with_bootstrap():
    df = synthetic_sweep(noise=0.002, seed=1)
    p = S.prepare_sweep(df, select="plateau", tol=0.0025)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit("lr_opt", df, prepare_options={"select": "plateau", "tol": 0.0025}, boot=200, seed=0)
    A = np.column_stack([np.ones(len(p)), np.log(p["N"]), np.log(p["D"])])
    coef, *_ = np.linalg.lstsq(A, np.log(p["lr"]), rcond=None)
    assert f.n_obs == len(p)
    assert np.log(f.params["c"]) == pytest.approx(coef[0], abs=1e-6)
    assert f.params["alpha"] == pytest.approx(coef[1], abs=1e-7)
    assert f.params["beta"] == pytest.approx(coef[2], abs=1e-7)
    lo, hi = f.ci["alpha"]
    assert lo < f.params["alpha"] < hi
    assert f.interval_method.startswith("bootstrap (200")


def test_lr_power_recovers_truth():
    rng = np.random.default_rng(0)
    b = np.exp(rng.uniform(np.log(1e5), np.log(1e7), 40))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 40))
    df = pd.DataFrame({"batch_tokens": b, "D": D, "lr": b * 3e-9 * D ** -0.25})
    f = fit("lr_power", df)
    assert f.params["a"] == pytest.approx(3e-9, rel=1e-6)
    assert f.params["b"] == pytest.approx(-0.25, rel=1e-6)


def test_critical_batch_from_steps_to_reach_a_loss():
    """Synthetic Kaplan data: S = S_min (1 + B_crit(L)/B) with known B_star, alpha_B."""
    B_star, alpha_B = 2.1e8, 0.21
    rows = []
    for L in (2.6, 2.8, 3.0, 3.3, 3.6, 4.0):
        bc = B_star / L ** (1 / alpha_B)
        s_min = 2e3 * (L - 2.2) ** -2
        for B in (3e4, 1e5, 3e5, 1e6, 3e6, 1e7):
            rows.append({"loss": L, "batch_tokens": B, "steps": s_min * (1 + bc / B)})
    df = pd.DataFrame(rows)
    t = S.critical_batch_table(df)
    assert len(t) == 6
    np.testing.assert_allclose(t["B_crit"], B_star / t["loss"] ** (1 / alpha_B), rtol=1e-8)
    np.testing.assert_allclose(t["E_min"], t["S_min"] * t["B_crit"], rtol=1e-12)
    f = fit("critical_batch", df)
    assert f.params["B_star"] == pytest.approx(B_star, rel=1e-6)
    assert f.params["alpha_B"] == pytest.approx(alpha_B, rel=1e-6)
    # tokens instead of steps
    df2 = df.assign(tokens=df["steps"] * df["batch_tokens"]).drop(columns="steps")
    f2 = fit("critical_batch", df2)
    assert f2.params["alpha_B"] == pytest.approx(alpha_B, rel=1e-6)
    # Kaplan's constants: B_crit(3) = 1.123e6
    law = get_law("critical_batch")
    assert float(law.evaluate({"loss": 3.0}, law.published["kaplan-2020-bcrit"])) == pytest.approx(1.123e6, rel=1e-3)


def test_cli_fit_critical_batch_from_a_file(tmp_path):
    """Loading a file canonicalises steps -> step and tokens -> D: the law must read those too."""
    B_star, alpha_B = 2.1e8, 0.21
    rows = []
    for L in (2.6, 2.8, 3.0, 3.3):
        bc, s_min = B_star / L ** (1 / alpha_B), 2e3 * (L - 2.2) ** -2
        rows += [{"loss": L, "batch_tokens": B, "steps": s_min * (1 + bc / B)} for B in (3e4, 1e5, 3e5, 1e6)]
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "steps.csv", index=False)
    df.assign(tokens=df["steps"] * df["batch_tokens"]).drop(columns="steps").to_csv(tmp_path / "tokens.csv", index=False)
    for name in ("steps.csv", "tokens.csv"):
        r = run("fit", "critical_batch", str(tmp_path / name), "--json")
        assert r.exit_code == 0, r.output + r.stderr
        assert json.loads(r.stdout)["params"]["alpha_B"] == pytest.approx(alpha_B, rel=1e-6), name
    r = run("fit", "critical_batch", str(tmp_path / "steps.csv"), "--option", "min_batches=many")
    assert r.exit_code == 2 and "min_batches" in r.stderr and "Traceback" not in r.output


def test_critical_batch_errors():
    df = pd.DataFrame({"loss": [3.0, 3.0], "batch_tokens": [1e5, 1e6], "steps": [1e4, 5e3]})
    with pytest.raises(ScalelawError, match="only 2 batch size"):
        S.critical_batch_table(df)
    with pytest.raises(ScalelawError, match="'steps'.*'tokens'"):
        S.critical_batch_table(df.drop(columns="steps"))
    up = pd.DataFrame({"loss": [3.0] * 3, "batch_tokens": [1e5, 1e6, 1e7], "steps": [1e3, 2e3, 3e3]})
    with pytest.raises(ScalelawError, match="do not fall with batch"):
        S.critical_batch_table(up)


# ---- CLI ----------------------------------------------------------------------------------
def test_cli_hparams_published_json():
    r = run("hparams", "--N", "7e9", "--D", "1.4e12", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for k in ("lr", "batch_tokens", "batch_sequences"):
        assert k in d and f"{k}_lower" in d and f"{k}_upper" in d
    assert d["lr"] == pytest.approx(9.17e-4, rel=1e-3)
    assert d["batch_tokens"] == pytest.approx(5.0e6, rel=1e-3)
    assert d["batch_sequences"] == pytest.approx(d["batch_tokens"] / 2048)
    assert d["lr_law"] == "lr_opt" and d["bs_law"] == "bs_opt"
    if d["lr_lower"] is not None:  # released bootstrap available from the mirror
        assert d["lr_lower"] < d["lr"] < d["lr_upper"]


def test_cli_hparams_published_fits_have_no_range_to_judge():
    """steplaw-2025 records no fitted range: 14x beyond its grid must not read as 'inside' (1.0)."""
    r = run("hparams", "--N", "1e11", "--D", "1e13", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["extrapolation"] is None
    assert "lr fit (lr_opt) records no fitted range (published: steplaw-2025); extrapolation cannot be judged" in r.stderr
    assert "bs fit (bs_opt) records no fitted range (published: steplaw-2025)" in r.stderr


def test_cli_hparams_with_saved_fits(tmp_path):
    df = synthetic_sweep(noise=0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit("lr_opt", df, prepare_options={"select": "bowl"}, boot=100)
        g = fit("bs_opt", df, prepare_options={"select": "bowl"}, boot=100)
    f.save(tmp_path / "lr.json")
    g.save(tmp_path / "bs.json")
    r = run("hparams", "--lr", str(tmp_path / "lr.json"), "--bs", str(tmp_path / "bs.json"), "--N", "4e8",
            "--D", "2e10", "--seq-len", "4096", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["lr"] == pytest.approx(lr_star(4e8, 2e10), rel=0.05)
    assert d["lr_lower"] < d["lr"] < d["lr_upper"]
    assert d["batch_sequences"] == pytest.approx(d["batch_tokens"] / 4096)
    assert isinstance(d["extrapolation"], float) and d["extrapolation"] >= 1.0   # fits with data: judged
    r = run("hparams", "--lr", str(tmp_path / "lr.json"), "--bs", str(tmp_path / "bs.json"), "--N", "4e8", "--D", "2e10")
    assert r.exit_code == 0 and "lr*" in r.output and "sequences of 2048" in r.output
    # swapped fits: clear error, exit 2
    r = CliRunner().invoke(main, ["hparams", "--lr", str(tmp_path / "bs.json"), "--bs", str(tmp_path / "lr.json"),
                                  "--N", "4e8", "--D", "2e10"])
    assert r.exit_code == 2 and "learning-rate fit" in r.output
    r = CliRunner().invoke(main, ["hparams", "--N", "-1", "--D", "2e10"])
    assert r.exit_code == 2 and "--N must be a positive" in r.output


def _write(df, path):
    df.to_csv(path, index=False)
    return str(path)


def test_cli_sweep_bad_input_exit_2(tmp_path):
    df = synthetic_sweep()
    bad = df.copy()
    bad.loc[5, "lr"] = -1e-3
    # the run-table loader (scalelaw.io) or the sweep validation may catch these first
    for frame, pat in ((bad, r"column '?lr'?.*(positive|non-positive)"), (df.rename(columns={"batch_tokens": "bs"}), r"'?bs'?"),
                       (df[df.lr.isin(S_LR[:2]) | (df.N != 2e8)], "distinct lr")):
        p = _write(frame, tmp_path / "s.csv")
        r = CliRunner().invoke(main, ["sweep", "cells", p])
        assert r.exit_code == 2, r.output
        assert re.search(pat, r.output), r.output
        assert r.output.count("\n") == 1


S_LR = sorted(synthetic_sweep()["lr"].unique())


def test_cli_sweep_cells_loco_plot(tmp_path):
    p = _write(synthetic_sweep(), tmp_path / "s.csv")
    r = run("sweep", "cells", p, "--json")
    assert r.exit_code == 0
    assert len(json.loads(r.stdout)["cells"]) == 6
    r = run("sweep", "loco", p, "--select", "bowl", "--json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["summary"]["cells"] == 6 and d["summary"]["mean_gap_interp"] < 2e-4
    p3 = _write(synthetic_sweep(cells=((2e8, 4e9), (4e8, 8e9), (8e8, 1.6e10))), tmp_path / "s3.csv")
    r = run("sweep", "loco", p3)
    assert r.exit_code == 0 and "mean gap" in r.output
    out = tmp_path / "fig.html"
    r = run("sweep", "plot", p, "--cell", "N=4e8", "--cell", "D=8e9", "-o", str(out))
    assert r.exit_code == 0 and out.exists() and "plotly" in out.read_text()[:5_000_000].lower()
    r = CliRunner().invoke(main, ["sweep", "plot", p, "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    r = run("sweep", "plot", p, "--kind", "laws", "--lr", "steplaw-2025", "--bs", "steplaw-2025", "-o", str(out), "--force")
    assert r.exit_code == 0


def test_reference_fits_load_and_predict():
    for name in ("steplaw-lr.json", "steplaw-bs.json"):
        p = ROOT / "fits" / name
        assert p.exists(), f"reference fit {p} is missing (fits/build.py rebuilds it)"
        f = load_fit(str(p))
        assert f.boot is not None and len(f.boot) == 1000
        assert f.settings["prepare_options"]["select"] == "plateau"
        assert f.data["source"] == "steplaw-dense"
    d = S.hparams_predict(load_fit(str(ROOT / "fits/steplaw-lr.json")), load_fit(str(ROOT / "fits/steplaw-bs.json")),
                          7e9, 1.4e12)
    assert d["lr_lower"] < d["lr"] < d["lr_upper"]


def test_unknown_prepare_option_is_a_clear_error():
    df = synthetic_sweep(noise=0.001)
    for law in ("lr_opt", "bs_opt", "bs_opt_nd", "lr_power"):
        with pytest.raises(ScalelawError, match=r"has no --option 'selct'.*did you mean 'select'") as e:
            fit(law, df, prepare_options={"selct": "best"})
        assert "\n" not in str(e.value)
    with pytest.raises(ScalelawError, match=r"law 'critical_batch' has no --option 'select'.*takes: loss_col, min_batches"):
        fit("critical_batch", df, prepare_options={"select": "best"})


def test_declared_options_are_the_prepare_functions_keywords():
    import inspect

    from scalelaw.laws import hparams as H

    def keywords(fn):
        return tuple(list(inspect.signature(fn).parameters)[1:])

    assert H.SWEEP_OPTIONS == keywords(S.prepare_sweep)
    assert H.CRITICAL_OPTIONS == keywords(S.critical_batch_table)
    for name in ("lr_opt", "bs_opt", "bs_opt_nd", "lr_power"):
        assert get_law(name).options == H.SWEEP_OPTIONS


def test_warns_when_n_barely_varies():
    df = synthetic_sweep(cells=((2.150e9, 4e9), (2.151e9, 8e9), (2.152e9, 2e10), (2.153e9, 4e10)))
    with pytest.warns(UserWarning, match="not identifiable"):
        fit("lr_opt", df, prepare_options={"select": "bowl"})


def test_loco_with_lr_power():
    r = S.loco(synthetic_sweep(), select="bowl", lr_law="lr_power")
    assert r["summary"]["lr_law"] == "lr_power" and r["summary"]["cells"] == 6


def test_text_marks_a_missing_value_as_dash_like_the_other_verbs():
    """No value reads '-' (as in predict and plan), and a missing interval is left out."""
    from scalelaw.cli.hparams import _fmt_iv

    assert _fmt_iv(None, None, None) == "-"
    assert _fmt_iv(2.0, None, None) == "2"
    assert _fmt_iv(2.0, 1.0, 3.0) == "2  [1, 3]"
