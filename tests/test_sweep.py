"""Sweep analysis: validation, plateau / best / bowl selection, LOCO, figures, Step Law data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalelaw.analysis import sweep as S
from scalelaw.errors import ScalelawError
from .helpers import no_public_data

TRUE_LR = {"c": 2.0, "alpha": -0.7, "beta": 0.3}
TRUE_BS = {"c": 0.5, "gamma": 0.55}
LR_GRID = 2.0 ** np.arange(-12, -5.5, 0.5)          # 13 values, factor sqrt(2)
BS_GRID = 2.0 ** np.arange(16, 23.5, 0.5)           # 15 values


def lr_star(N, D):
    return TRUE_LR["c"] * N ** TRUE_LR["alpha"] * D ** TRUE_LR["beta"]


def bs_star(D):
    return TRUE_BS["c"] * D ** TRUE_BS["gamma"]


def synthetic_sweep(cells=((2e8, 4e9), (2e8, 2e10), (4e8, 8e9), (4e8, 4e10), (8e8, 1.6e10), (8e8, 8e10)),
                    noise=0.0, seed=0):
    """Loss exactly quadratic in (ln lr, ln batch) around the true optima (plus optional noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for N, D in cells:
        x0, y0 = np.log(lr_star(N, D)), np.log(bs_star(D))
        for lr in LR_GRID:
            for b in BS_GRID:
                u, v = np.log(lr) - x0, np.log(b) - y0
                loss = 2.5 * (1 + 0.004 * u * u + 0.002 * v * v + 0.001 * u * v) + noise * rng.standard_normal()
                rows.append({"N": N, "D": D, "lr": lr, "batch_tokens": b, "smooth_loss": loss, "loss": loss})
    df = pd.DataFrame(rows)
    df.attrs["source"] = "synthetic sweep"
    return df


@pytest.fixture(scope="module")
def dense(mirror):
    """Step Law's dense grid, a registered dataset resolved by scalelaw.datasets (the mirror fixture
    points SCALELAW_MIRROR at the public data; missing files there are a failure)."""
    return S.load_sweep("steplaw-dense")


# ---- validation ----------------------------------------------------------------------------
def test_validate_errors_name_column_and_fix():
    df = synthetic_sweep()
    bad = df.copy()
    bad.loc[3, "lr"] = 0.0
    with pytest.raises(ScalelawError, match=r"column 'lr'.*non-positive.*--where"):
        S.validate_sweep(bad)
    raw = df.rename(columns={"batch_tokens": "bs"})
    with pytest.raises(ScalelawError, match=r"'bs'.*unknown units.*batch_tokens"):
        S.validate_sweep(raw)
    seqs = df.rename(columns={"batch_tokens": "batch_sequences"})
    with pytest.raises(ScalelawError, match="seq_len"):
        S.validate_sweep(seqs)
    seqs["seq_len"] = 1.0
    t, *_ = S.validate_sweep(seqs)
    assert np.allclose(t["batch_tokens"], df["batch_tokens"])
    few = df[~((df.N == 2e8) & (df.D == 4e9)) | df.lr.isin(LR_GRID[:2])]
    with pytest.raises(ScalelawError, match=r"only 2 distinct lr.*at least 3.*--where"):
        S.validate_sweep(few)
    with pytest.raises(ScalelawError, match="loss column 'nope'"):
        S.validate_sweep(df, loss_col="nope")
    with pytest.raises(ScalelawError, match="N_active"):
        S.validate_sweep(df, n="active")
    with pytest.raises(ScalelawError, match="select must be one of"):
        S.prepare_sweep(df, select="median")
    with pytest.raises(ScalelawError, match="tol must be"):
        S.prepare_sweep(df, tol=5)
    for msg in (str(e) for e in []):
        assert "\n" not in msg


def test_error_messages_are_one_line():
    df = synthetic_sweep().rename(columns={"batch_tokens": "bs"})
    with pytest.raises(ScalelawError) as ei:
        S.cells(df)
    assert "\n" not in str(ei.value)


# ---- selection -------------------------------------------------------------------------------
def test_plateau_best_bowl_shapes():
    df = synthetic_sweep()
    p = S.prepare_sweep(df, select="plateau", tol=0.0025)
    b = S.prepare_sweep(df, select="best")
    w = S.prepare_sweep(df, select="bowl")
    assert len(b) == len(w) == 6
    assert len(p) > len(b)
    assert (p["gap"] <= 0.0025 + 1e-12).all()
    assert {"N", "D", "lr", "batch_tokens", "loss", "N_total"} <= set(p.columns)
    # every cell's best run is in the plateau
    assert set(map(tuple, b[["N", "D", "lr", "batch_tokens"]].to_numpy())) <= set(
        map(tuple, p[["N", "D", "lr", "batch_tokens"]].to_numpy()))


def test_bowl_recovers_the_exact_optimum():
    df = synthetic_sweep()
    w = S.prepare_sweep(df, select="bowl")
    assert (w["bowl_method"] == "bowl").all()
    np.testing.assert_allclose(w["lr"], lr_star(w["N"], w["D"]), rtol=1e-6)
    np.testing.assert_allclose(w["batch_tokens"], bs_star(w["D"]), rtol=1e-6)


def test_bowl_falls_back_when_not_convex():
    lr = np.repeat(LR_GRID[:4], 4)
    bs = np.tile(BS_GRID[:4], 4)
    loss = 3.0 - 0.01 * np.log(lr) ** 2  # concave in ln lr
    r = S.fit_bowl(lr, bs, loss, bowl_tol=1.0)
    assert r["method"] == "best-run"
    assert r["loss"] == loss.min()


def test_table_without_loss_is_used_as_optima():
    df = pd.DataFrame({"N": [1e8, 2e8, 4e8, 8e8], "D": [1e9, 3e9, 1e10, 3e10], "lr": [1e-3, 8e-4, 6e-4, 5e-4]})
    out = S.prepare_sweep(df)
    pd.testing.assert_frame_equal(out, df)


def test_cells_table():
    c = S.cells(synthetic_sweep())
    assert len(c) == 6
    assert (c["n_lr"] == len(LR_GRID)).all() and (c["n_batch"] == len(BS_GRID)).all()
    assert (c["n_plateau"] >= 1).all()
    np.testing.assert_allclose(c["bowl_lr"], lr_star(c["N"], c["D"]), rtol=1e-6)
    assert not c["lr_censored"].any() and not c["batch_censored"].any()
    df = synthetic_sweep()
    cut = df[~((df["N"] == 8e8) & (df["D"] == 8e10) & (df["lr"] < lr_star(8e8, 8e10) * 1.5))]
    c = S.cells(cut)   # that cell swept lr only above its optimum: its best lr is at the sweep's edge
    assert c["lr_censored"].tolist() == [False] * 5 + [True] and not c["batch_censored"].any()


def test_moe_cells_keep_models_apart():
    df = synthetic_sweep(cells=((2e9, 4e9), (2e9, 8e9), (2e9, 2e10)))
    df2 = df.copy()
    df["N_active"] = 2e8
    df2["N_active"] = 6e8
    both = pd.concat([df, df2], ignore_index=True)
    assert len(S.cells(both)) == 6
    p = S.prepare_sweep(both, select="best", n="active")
    assert set(p["N"]) == {2e8, 6e8} and set(p["N_total"]) == {2e9}


# ---- evaluating a setting -----------------------------------------------------------------
def test_nearest_and_interpolated_loss():
    df = synthetic_sweep()
    g = df[(df.N == 2e8) & (df.D == 4e9)]
    lr, b = LR_GRID[4], BS_GRID[5]
    exact = g[(g.lr == lr) & (g.batch_tokens == b)]["smooth_loss"].iloc[0]
    assert S.nearest_loss(g, lr * 1.05, b / 1.05, "smooth_loss")[0] == exact
    li, inside = S.interpolated_loss(g, lr, b, "smooth_loss")
    assert inside and li == pytest.approx(exact, rel=1e-12)
    # between two grid points: between their losses
    l2 = g[(g.lr == LR_GRID[5]) & (g.batch_tokens == b)]["smooth_loss"].iloc[0]
    mid, _ = S.interpolated_loss(g, np.sqrt(lr * LR_GRID[5]), b, "smooth_loss")
    assert mid == pytest.approx(0.5 * (exact + l2), rel=1e-9)
    # outside the hull: nearest run, flagged
    out, inside = S.interpolated_loss(g, 10.0, b, "smooth_loss")
    assert not inside and out == S.nearest_loss(g, 10.0, b, "smooth_loss")[0]


def test_loco_on_exact_synthetic_sweep_is_near_zero():
    df = synthetic_sweep()
    r = S.loco(df, select="bowl")
    s = r["summary"]
    assert s["cells"] == 6
    # the law is exact, so every held-out prediction is the true optimum (interpolation error only)
    assert s["mean_gap_interp"] < 2e-4
    R = pd.DataFrame(r["rows"])
    np.testing.assert_allclose(R["lr_pred"], lr_star(R["N"], R["D"]), rtol=1e-6)
    np.testing.assert_allclose(R["batch_pred"], bs_star(R["D"]), rtol=1e-6)
    assert "steplaw-2025_gap_nearest" in R.columns


def test_loco_needs_three_cells():
    df = synthetic_sweep(cells=((2e8, 4e9), (4e8, 8e9)))
    with pytest.raises(ScalelawError, match="at least 3 cells"):
        S.loco(df)


# ---- figures -----------------------------------------------------------------------------
def test_figures_are_plotly_figures():
    import plotly.graph_objects as go

    df = synthetic_sweep()
    lf, bf = S.fit_pair(S.prepare_sweep(df, select="bowl"))
    fig = S.landscape_figure(df, {"N": 4e8, "D": 8e9}, lf, bf)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert "observed best" in names and any(n.startswith("predicted optimum") for n in names)
    assert fig.layout.xaxis.type == "log"
    fig2 = S.laws_figure(df, lf, bf)
    assert isinstance(fig2, go.Figure) and len(fig2.data) == 3 * 2 * 3
    with pytest.raises(ScalelawError, match="matches 0 cells"):
        S.landscape_figure(df, {"N": 1.0, "D": 8e9})


# ---- Step Law's released grid --------------------------------------------------------------
def test_steplaw_resolves_through_the_registry(mirror):
    """The dataset name, the registered file and the io reader give the same table."""
    from scalelaw import datasets

    df = S.load_sweep("steplaw-dense")
    assert df.attrs["source"] == "steplaw-dense" and df.attrs["sha256"]
    path = datasets.fetch("steplaw-dense")[0]
    assert Path(path).is_relative_to(mirror)
    raw = S.read_steplaw_csv(path)
    assert len(raw) == len(df) == 1911
    for c in ("N", "D", "lr", "batch_tokens", "loss", "smooth_loss"):
        assert np.allclose(raw[c], df[c], rtol=1e-12), c


@pytest.mark.parametrize("with_mirror", [True, False], ids=["empty-mirror", "no-mirror-offline"])
def test_steplaw_missing_data_is_one_clear_error(monkeypatch, tmp_path, with_mirror):
    no_public_data(monkeypatch, tmp_path, with_mirror)
    with pytest.raises(ScalelawError, match="SCALELAW_MIRROR") as e:
        S.load_sweep("steplaw-dense")
    msg = str(e.value)
    assert "dense_lr_bs_loss.csv" in msg and "\n" not in msg   # names the file, one line
    with pytest.raises(ScalelawError, match="neither an existing file or folder nor a registered dataset"):
        S.load_sweep("steplaw-nope")


def test_published_steplaw_fit_without_its_bootstrap_warns(monkeypatch, tmp_path):
    no_public_data(monkeypatch, tmp_path, with_mirror=True)
    with pytest.warns(UserWarning, match="released bootstrap is unavailable.*steplaw-bootstrap.*SCALELAW_MIRROR"):
        f = S.load_hparam_fit("steplaw-2025", law="lr_opt")
    assert f.boot is None and f.law.name == "lr_opt"
    assert "unavailable" in f.diagnostics["message"]


def test_steplaw_dense_cells_and_plateau(dense):
    assert len(dense) == 1911
    c = S.cells(dense)
    assert len(c) == 17
    p = S.prepare_sweep(dense, select="plateau")
    assert len(p) == 129
    assert (dense["batch_tokens"] % 2048 == 0).all()


def test_steplaw_refit_matches_reference_files(dense):
    root = Path(__file__).resolve().parents[1] / "fits"
    lf, bf, means = S.steplaw_refit(dense, boot=0)
    for f, name in ((lf, "steplaw-lr.json"), (bf, "steplaw-bs.json")):
        p = root / name
        assert p.exists(), f"reference fit {p} is missing (fits/build.py rebuilds it)"
        rec = json.loads(p.read_text())
        assert rec["settings"]["prepare_options"] == {"select": "plateau", "tol": 0.0025}
        for k, v in rec["params"].items():
            assert f.params[k] == pytest.approx(v, rel=1e-6)
    # a plain refit of this subset does not reproduce the paper's constants (about 3,700 runs)
    assert lf.params["beta"] == pytest.approx(0.197, abs=0.005)
    assert bf.params["gamma"] == pytest.approx(0.6125, abs=0.005)


def test_steplaw_loco_against_published(dense):
    r = S.loco(dense, select="plateau", bs_law="bs_opt_nd")
    s = r["summary"]
    # the published formula scores about 0.096% (nearest run) on this grid
    assert s["steplaw-2025_mean_gap_nearest"] == pytest.approx(0.000957, abs=2e-5)
    assert s["mean_gap_nearest"] < s["steplaw-2025_mean_gap_nearest"]
    assert s["mean_gap_interp"] < s["steplaw-2025_mean_gap_interp"]


def test_steplaw_moe_total_or_active(mirror):
    moe = S.load_sweep("steplaw-moe")
    assert "N_active" in moe.columns
    assert len(S.cells(moe)) == 16
    a = S.prepare_sweep(moe, select="best", n="active")
    t = S.prepare_sweep(moe, select="best", n="total")
    assert (a["N"] == a["N_active"]).all() and (t["N"] == t["N_total"]).all()
    assert not np.allclose(a["N"], t["N"])


def test_cell_bootstrap():
    import warnings

    from scalelaw.fit import fit

    df = synthetic_sweep(noise=0.002, seed=3, cells=tuple((N, D) for N in (2e8, 4e8, 8e8) for D in (4e9, 1.6e10, 6.4e10)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit("lr_opt", df, prepare_options={"select": "plateau"}, boot=100)
    g = S.bootstrap_cells(f, df, k=200, seed=1)
    assert g.settings["bootstrap"] == "cells" and 100 <= len(g.boot) <= 200
    assert dict(g.params) == dict(f.params)
    for k in ("alpha", "beta"):
        lo, hi = g.ci[k]
        assert lo <= f.params[k] <= hi
    with pytest.raises(ScalelawError, match="at least 3 cells"):
        S.bootstrap_cells(f, df[(df.D == 4e9) & (df.N < 8e8)], k=10)
    with pytest.raises(ScalelawError, match="identifiable"):
        S.bootstrap_cells(f, df[df.D == 4e9], k=10)  # one D: beta not identifiable


# ---- sweeps as people run them: lr only, censored optima (issue 12.5) ----------------------
def lr_only_sweep(cells=((2e8, 4e9), (2e8, 2e10), (4e8, 8e9), (4e8, 4e10), (8e8, 1.6e10), (8e8, 8e10)),
                  batch=2 ** 19, noise=0.0, seed=0, grid=LR_GRID, with_batch=True):
    """One batch size per cell (the usual sweep): loss a parabola in ln lr around the true lr*."""
    rng = np.random.default_rng(seed)
    rows = []
    for N, D in cells:
        x0 = np.log(lr_star(N, D))
        for lr in grid:
            u = np.log(lr) - x0
            loss = 2.5 * (1 + 0.004 * u * u) + noise * rng.standard_normal()
            rows.append({"N": N, "D": D, "lr": lr, **({"batch_tokens": batch} if with_batch else {}), "loss": loss})
    df = pd.DataFrame(rows)
    df.attrs["source"] = "lr sweep"
    return df


@pytest.mark.parametrize("with_batch", [True, False])
def test_lr_opt_fits_a_sweep_that_varies_only_lr(with_batch):
    """A cell needs 3 lr values; its batch need not vary (nor be given) for lr_opt, while the batch
    laws still refuse such a cell."""
    from scalelaw.fit import fit

    df = lr_only_sweep(with_batch=with_batch)
    f = fit("lr_opt", df, prepare_options={"select": "bowl"})   # a parabola in ln lr per cell: exact
    assert f.n_obs == 6
    assert f.params["alpha"] == pytest.approx(TRUE_LR["alpha"], abs=1e-6)
    assert f.params["beta"] == pytest.approx(TRUE_LR["beta"], abs=1e-6)
    assert fit("lr_opt", df, prepare_options={"select": "best"}).n_obs == 6
    assert fit("lr_opt", df).n_obs >= 6                                      # plateau: the default
    if with_batch:
        with pytest.raises(ScalelawError, match="only 1 distinct batch_tokens"):
            fit("bs_opt", df)
    few = df[df["lr"].isin(LR_GRID[5:7])]
    with pytest.raises(ScalelawError, match="only 2 distinct lr value"):
        fit("lr_opt", few)


def test_cell_with_best_lr_at_the_edge_is_censored():
    """A cell whose best run is at the smallest or largest lr it swept only bounds its optimum:
    warned and left out (censored=drop, default), kept with censored=keep, refused when every
    cell is censored."""
    from scalelaw.fit import fit

    df = lr_only_sweep()
    lo = lr_star(8e8, 8e10)
    cut = df[~((df["N"] == 8e8) & (df["D"] == 8e10) & (df["lr"] < lo * 1.5))]  # that cell swept only above lr*
    with pytest.warns(UserWarning, match=r"1 of 6 cells .* edge of the lr sweep.*N=8e\+08, D=8e\+10.*left out"):
        f = fit("lr_opt", cut, prepare_options={"select": "bowl"})
    assert f.n_obs == 5 and "1 censored cell left out" in f.data["rows"]["prepare"]
    assert f.params["alpha"] == pytest.approx(TRUE_LR["alpha"], abs=1e-6)
    with pytest.warns(UserWarning, match="kept \\(censored=keep\\)"):
        k = fit("lr_opt", cut, prepare_options={"select": "bowl", "censored": "keep"})
    assert k.n_obs == 6 and abs(k.params["alpha"] - TRUE_LR["alpha"]) > 1e-3   # biased by the bound
    edge = lr_only_sweep(grid=2.0 ** np.arange(-4, -1.5, 0.5))  # every cell swept above its lr*
    with pytest.raises(ScalelawError, match="every cell .* edge of its lr sweep.*censored=keep"):
        fit("lr_opt", edge)
    with pytest.raises(ScalelawError, match="censored must be one of drop, keep"):
        fit("lr_opt", df, prepare_options={"censored": "maybe"})


def test_step_law_grid_has_no_censored_cell(dense):
    """The dense Step Law grid brackets every cell's best lr and batch: nothing is left out."""
    t, loss, _, keys = S.validate_sweep(dense)
    assert S.censored_cells(t, loss, keys, "lr") == [] and S.censored_cells(t, loss, keys, "batch_tokens") == []
