"""Capacity density (scalelaw.laws.density, scalelaw.analysis.density, `scalelaw density`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.analysis import density as dn
from scalelaw.cli import main
from scalelaw.errors import ScalelawError
from scalelaw.laws.density import _score, effective_size, loss_from_score

OBS = ("github/ryoungj/ObsScaling/4d6e1e43fd2635d04654aa77d1df9d5266ea0382/"
       "eval_results/base_llm_benchmark_eval.csv")
DATES = "extra/release_dates.csv"


@pytest.fixture
def data_root(mirror) -> Path:
    """The public-data mirror (the shared `mirror` fixture of tests/conftest.py)."""
    if not (mirror / OBS).exists():
        pytest.skip("public data mirror not found")
    return mirror


# ---- synthetic reference families ------------------------------------------------------------
TRUE = {"A": 60.0, "alpha": 0.22, "B": 0.0, "beta": 0.3, "E": 0.0, "c": 0.75, "gamma": -1.0, "l0": 2.5,
        "d": 0.25}


def _synthetic(n_ref=8, noise=0.0, seed=0, loss=False):
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e8, 3e10, n_ref)
    D = np.full(n_ref, 1e12)
    s = _score(N, D, 0.25, *(TRUE[k] for k in ("A", "alpha", "B", "beta", "l0")))
    s = s + noise * rng.standard_normal(n_ref)
    ref = pd.DataFrame({"model": [f"ref-{i}" for i in range(n_ref)], "family": "Ref", "N": N, "D": D,
                        "score_bench": s})
    # targets: known effective sizes, actual size 4x smaller (density 4) or 2x larger (0.5)
    Ne = np.array([5e8, 3e9, 1e10])
    st = _score(Ne, np.full(3, 1e12), 0.25, *(TRUE[k] for k in ("A", "alpha", "B", "beta", "l0")))
    tgt = pd.DataFrame({"model": ["t-dense", "t-half", "t-4x"], "family": "T", "N": [Ne[0] / 4, Ne[1] * 2, Ne[2] / 4],
                        "D": 2e12, "score_bench": st})
    df = pd.concat([ref, tgt], ignore_index=True)
    if loss:
        L = TRUE["A"] * df["N"] ** -TRUE["alpha"]
        df["loss"] = np.where(df["family"] == "Ref", L, np.nan)
    return df


BASE = {"bench": 0.25}


def test_inverse_round_trip():
    N = np.geomspace(1e8, 1e11, 7)
    s = _score(N, 1e12, 0.25, *(TRUE[k] for k in ("A", "alpha", "B", "beta", "l0")))
    assert np.allclose(effective_size(s, TRUE, 1e12), N, rtol=1e-9)
    assert np.isnan(loss_from_score(0.2, TRUE))           # below the floor
    assert np.isnan(loss_from_score(1.0, TRUE))           # at the ceiling
    # a score above what infinite N reaches at D_ref -> +inf
    smax = TRUE["d"] + TRUE["c"] / (1 + np.exp(-TRUE["l0"]))
    assert np.isinf(effective_size(smax + 0.01, TRUE, 1e12))


def test_one_step_recovers_known_densities():
    df = _synthetic()
    res = dn.score_models(df, 'family == "Ref"', ["bench"], baselines=BASE, boot=50)
    t = res.table.set_index("model")
    assert res.method == "one-step" and (t["method"] == "one-step").all()
    ref = t[t["is_reference"]]
    assert np.allclose(ref["density"], 1.0, rtol=1e-3)
    assert t.loc["t-dense", "density"] == pytest.approx(4.0, rel=1e-3)
    assert t.loc["t-half", "density"] == pytest.approx(0.5, rel=1e-3)
    assert (t["density_lower"] <= t["density"] * (1 + 1e-6)).all()


def test_two_step_with_losses_and_density_one_for_reference():
    df = _synthetic(loss=True)
    # two-step: the loss law needs D variation for B, beta; a single budget -> fix nothing but
    # the fit is still exact on N; use a second budget to make it identifiable
    df2 = df[df["family"] == "Ref"].copy()
    df2["model"] = df2["model"] + "-b"
    df2["D"] = 4e12
    full = pd.concat([df, df2], ignore_index=True)
    full["loss"] = np.where(full["family"] == "Ref", 60.0 * full["N"] ** -0.22 + 50.0 * full["D"] ** -0.2, np.nan)
    c, l0, g, d = 0.75, 1.2, -6.0, 0.25
    Lref = full["loss"]
    full.loc[full["family"] == "Ref", "score_bench"] = d + c / (1 + np.exp(-g * (Lref - l0)))
    # targets from the same chain at D_ref = geometric median of reference D (2e12)
    Dref = float(np.exp(np.median(np.log(full.loc[full["family"] == "Ref", "D"]))))
    Lt = 60.0 * np.array([5e8, 3e9, 1e10]) ** -0.22 + 50.0 * Dref ** -0.2
    full.loc[full["family"] == "T", "score_bench"] = d + c / (1 + np.exp(-g * (Lt - l0)))
    res = dn.score_models(full, 'family == "Ref"', ["bench"], baselines=BASE, boot=30)
    t = res.table.set_index("model")
    assert res.method == "two-step"
    assert t.loc["t-dense", "density"] == pytest.approx(4.0, rel=2e-2)
    assert t.loc["t-half", "density"] == pytest.approx(0.5, rel=2e-2)
    # reference models evaluated at their own budget differ from D_ref only via the data term
    at_ref = t[(t["is_reference"]) & (t["D"] == Dref)]
    assert np.allclose(at_ref["density"], 1.0, rtol=2e-2)


def test_flags_baseline_ceiling_and_missing():
    df = _synthetic()
    extra = pd.DataFrame({"model": ["low", "top", "nan"], "family": "X", "N": 1e9, "D": 1e12,
                          "score_bench": [0.26, 0.995, np.nan]})
    res = dn.score_models(pd.concat([df, extra]), 'family == "Ref"', ["bench"], baselines=BASE, boot=0)
    t = res.table.set_index("model")
    assert "near baseline" in t.loc["low", "flag"]
    assert "near ceiling" in t.loc["top", "flag"]
    assert "missing score" in t.loc["nan", "flag"]
    assert t.loc["t-dense", "flag"] == ""


def test_bad_inputs_are_one_line_errors():
    df = _synthetic()
    bad = df.copy()
    bad.loc[0, "score_bench"] = 1.7
    with pytest.raises(ScalelawError, match=r"1\.7.*ref-0.*outside \[0, 1\]"):
        dn.score_models(bad, 'family == "Ref"', ["bench"], baselines=BASE, boot=0)
    # a declared scale accepts percentages
    pct = df.copy()
    pct["score_bench"] *= 100
    r = dn.score_models(pct, 'family == "Ref"', ["bench"], baselines=BASE, boot=0, scale=100)
    assert np.isfinite(r.table["density"]).all()
    few = df[df["model"].isin(["ref-0", "ref-1", "t-half"])]
    with pytest.raises(ScalelawError, match="2 distinct model size.*3 free parameters"):
        dn.score_models(few, 'family == "Ref"', ["bench"], baselines=BASE, boot=0)
    with pytest.raises(ScalelawError, match="selects no model"):
        dn.score_models(df, 'family == "Nope"', ["bench"], baselines=BASE, boot=0)
    with pytest.raises(ScalelawError, match="unknown benchmark"):
        dn.score_models(df, 'family == "Ref"', ["MMLU"], boot=0)
    for e in (ScalelawError("x"),):
        assert "\n" not in str(e)


def test_trend_frontier_and_all():
    # densities doubling every 4 months on the frontier, with noise below it
    t = np.arange(0, 24, 2.0)
    dates = pd.Timestamp("2023-01-01") + pd.to_timedelta(t * 30.4375, unit="D")
    front = np.exp(np.log(2) / 4 * t)
    rng = np.random.default_rng(1)
    models = [f"m{i}" for i in range(len(t))] + [f"w{i}" for i in range(len(t))]
    dens = np.concatenate([front, front * rng.uniform(0.05, 0.5, len(t))])
    scored = pd.DataFrame({"model": models, "density": dens, "flag": ""})
    dd = pd.DataFrame({"model": models, "release_date": list(dates) * 2})
    tr = dn.fit_trend(scored, dd, boot=200)
    assert tr.fit == "frontier" and tr.n_points == len(t)
    assert tr.doubling_months == pytest.approx(4.0, rel=1e-3)
    assert tr.doubling_months_lower <= 4.01 and tr.doubling_months_upper >= 3.99
    all_ = dn.fit_trend(scored, dd, fit="all", boot=100)
    assert all_.n_points == 2 * len(t)
    # a model without a date: clear error, or skipped on request
    dd2 = dd.iloc[1:].copy()
    with pytest.raises(ScalelawError, match="^model 'm0' has no release date.*--skip-undated"):
        dn.fit_trend(scored, dd2, boot=0)
    with pytest.raises(ScalelawError, match=r"^models '\w+' and 2 others have no release date"):
        dn.fit_trend(scored, dd.iloc[3:].copy(), boot=0)
    assert dn.fit_trend(scored, dd2, skip_undated=True, boot=0).n_models == len(models) - 1


def test_frontier_mask_running_max():
    t = np.array([0, 1, 1, 2, 3, 4.0])
    y = np.array([1, 0.5, 2, 1.5, 3, 2.9])
    assert dn.frontier_mask(t, y).tolist() == [True, False, True, False, True, False]


def test_figures_are_plotly():
    import plotly.graph_objects as go

    res = dn.score_models(_synthetic(), 'family == "Ref"', ["bench"], baselines=BASE, boot=20)
    fig = dn.effective_size_figure(res.table)
    assert isinstance(fig, go.Figure) and fig.layout.xaxis.type == "log"
    scored = pd.DataFrame({"model": ["a", "b", "c"], "density": [1, 2, 4.0], "flag": ""})
    dd = pd.DataFrame({"model": ["a", "b", "c"], "release_date": ["2023-01-01", "2023-05-01", "2023-09-01"]})
    fig2 = dn.density_figure(dn.fit_trend(scored, dd, boot=0))
    assert isinstance(fig2, go.Figure) and fig2.layout.yaxis.type == "log"


# ---- the public table --------------------------------------------------------------------------
QWEN = '`Model Family` == "Qwen1.5" and `Pretraining Data Size (T)` == `Pretraining Data Size (T)`'


def test_public_reference_family_density_near_one(data_root):
    res = dn.score_models(str(data_root / OBS), QWEN, boot=100)
    t = res.table
    assert len(t) == 148 and res.method == "one-step"
    ref = t[t["is_reference"]]
    assert len(ref) == 7
    assert np.all((ref["density"] > 0.6) & (ref["density"] < 1.6)), ref[["model", "density"]]
    assert abs(np.log(np.exp(np.mean(np.log(ref["density"]))))) < 0.1   # geometric mean ~ 1
    # canonical column names work in the expression too
    res2 = dn.score_models(str(data_root / OBS), 'family == "Qwen1.5" and D == D', boot=0)
    assert np.allclose(res2.table["density"], t["density"], equal_nan=True)


def _run(args):
    r = CliRunner().invoke(main, args)
    return r.exit_code, r.output


def test_cli_score_and_trend(tmp_path, data_root):
    out = tmp_path / "scored.csv"
    code, text = _run(["density", "score", str(data_root / OBS), "--reference", QWEN, "--boot", "30",
                       "-o", str(out), "--json"])
    assert code == 0, text
    rows = json.loads(text)
    assert len(rows) == 148
    for k in ("model", "N", "N_eff", "N_eff_lower", "N_eff_upper", "density", "density_lower", "density_upper",
              "method", "flag"):
        assert k in rows[0]
    assert {r["method"] for r in rows} == {"one-step"}
    assert out.exists()
    # refuses to overwrite without --force
    code, text = _run(["density", "score", str(data_root / OBS), "--reference", QWEN, "--boot", "0", "-o", str(out)])
    assert code == 2 and "--force" in text
    code, text = _run(["density", "trend", str(out), "--dates", str(data_root / DATES), "--json"])
    assert code == 2 and "no release date" in text and len(text.strip().splitlines()) == 1
    code, text = _run(["density", "trend", str(out), "--dates", str(data_root / DATES), "--skip-undated",
                       "--boot", "200", "--json"])
    assert code == 0, text
    d = json.loads(text)
    assert d["doubling_months"] > 0 and d["density_method"] == "one-step"
    assert d["doubling_months_lower"] <= d["doubling_months"]
    assert "doubling_months_upper" in d


def test_cli_bad_scores_exit_2(tmp_path, data_root):
    df = pd.read_csv(data_root / OBS)
    df.loc[3, "MMLU"] = 43.8
    p = tmp_path / "bad.csv"
    df.to_csv(p, index=False)
    code, text = _run(["density", "score", str(p), "--reference", QWEN, "--boot", "0"])
    assert code == 2
    assert "43.8" in text and "huggyllama/llama-7b" in text and "--scale" in text
    assert len(text.strip().splitlines()) == 1


def test_cli_small_reference_and_per_benchmark(data_root):
    code, text = _run(["density", "score", str(data_root / OBS), "--reference", '`Model Family` == "Yi"', "--boot", "0"])
    assert code == 2 and "distinct model size" in text and len(text.strip().splitlines()) == 1
    code, text = _run(["density", "score", str(data_root / OBS), "--reference", QWEN, "--per-benchmark",
                       "--benchmarks", "MMLU,HellaSwag", "--boot", "0", "--json"])
    assert code == 0, text
    rows = json.loads(text)
    ref = [r["density"] for r in rows if r["is_reference"] and r["density"] is not None]
    assert len(ref) == 7 and 0.8 < float(np.exp(np.mean(np.log(ref)))) < 1.25


def test_dataset_name_gives_same_densities(data_root, monkeypatch):
    monkeypatch.setenv("SCALELAW_MIRROR", str(data_root))
    by_name = dn.score_models("obsscaling-base", QWEN, boot=0).table
    by_file = dn.score_models(str(data_root / OBS), QWEN, boot=0).table
    assert list(by_name["model"]) == list(by_file["model"])
    assert np.allclose(by_name["density"], by_file["density"], equal_nan=True)
    assert len(dn.load_dates("release-dates")) == 148


def test_two_step_single_budget_reference():
    df = _synthetic(loss=True)           # every reference model at D = 1e12: no data term
    c, l0, g, d = 0.75, 1.2, -6.0, 0.25
    L = 60.0 * df["N"] ** -0.22
    ref = df["family"] == "Ref"
    df.loc[ref, "loss"] = L[ref]
    df.loc[ref, "score_bench"] = d + c / (1 + np.exp(-g * (L[ref] - l0)))
    Lt = 60.0 * np.array([5e8, 3e9, 1e10]) ** -0.22
    df.loc[~ref, "score_bench"] = d + c / (1 + np.exp(-g * (Lt - l0)))
    res = dn.score_models(df, 'family == "Ref"', ["bench"], baselines=BASE, boot=20)
    t = res.table.set_index("model")
    assert res.method == "two-step" and not next(iter(res.fits.values())).data_term
    assert np.allclose(t.loc[t["is_reference"], "density"], 1.0, rtol=1e-2)
    assert t.loc["t-dense", "density"] == pytest.approx(4.0, rel=1e-2)


@pytest.mark.parametrize("value, words", [("TruthfulQA", ["--baseline expects KEY=VALUE", "TruthfulQA=0.2"]),
                                          ("TruthfulQA=low", ["--baseline TruthfulQA= needs a number", "'low'"]),
                                          ("TruthfulQA=0.2,0.3", ["needs a number", "'0.2,0.3'"])])
def test_cli_bad_baseline_is_one_line(value, words, data_root):
    code, text = _run(["density", "score", str(data_root / OBS), "--reference", QWEN, "--boot", "0",
                       "--baseline", value])
    assert code == 2 and len(text.strip().splitlines()) == 1 and "Traceback" not in text
    for w in words:
        assert w in text
