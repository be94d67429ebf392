"""Over-training law, Gadre et al.'s protocol on their testbed, cutoff backtests, figures, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.analysis import gadre
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.result import load_fit, published_fit
from .helpers import no_public_data

ROOT = Path(__file__).resolve().parents[1]
LAW = get_law("overtrain")


@pytest.fixture(scope="module")
def exp_dir(mirror):
    """The testbed's exp_data folder in the mirror (a registered dataset: missing is a failure)."""
    from scalelaw import datasets

    d = Path(mirror) / datasets.get(gadre.DATASET).local_rel("exp_data")
    assert (d / "models").is_dir(), f"{gadre.DATASET} is missing from the mirror {mirror}"
    return d


@pytest.fixture(scope="module")
def runs(exp_dir):
    return gadre.load_runs(exp_dir)   # an explicit exp_data folder


# ---- the law --------------------------------------------------------------------------------
def test_jacobian_matches_finite_differences():
    rng = np.random.default_rng(1)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 7))
    D = N * np.exp(rng.uniform(np.log(1), np.log(1000), 7))
    p = dict(LAW.example)
    J = LAW.jac(N, D, *(p[n] for n in LAW.param_names))
    for i, n in enumerate(LAW.param_names):
        h = 1e-6 * max(1.0, abs(p[n]))
        up, dn = dict(p), dict(p)
        up[n] += h
        dn[n] -= h
        num = (LAW.evaluate({"N": N, "D": D}, up) - LAW.evaluate({"N": N, "D": D}, dn)) / (2 * h)
        assert np.allclose(np.broadcast_to(J[i], num.shape), num, rtol=1e-5, atol=1e-9)


def test_published_constants_give_published_predictions():
    f = published_fit("gadre-2024-rpj")
    out = f.predict({"N": [1439795200, 6889410560], "D": [1439795200 * 640, 6889410560 * 20]})
    # published predictions 2.5198 and 2.4427 (constants are rounded to 4-5 digits)
    assert out["mean"].tolist() == pytest.approx([2.5198, 2.4427], rel=1e-3)


def test_equals_chinchilla_with_equal_exponents():
    p = LAW.example
    N, D = np.array([1e8, 3e9]), np.array([2e9, 1e11])
    eta = p["eta"]
    A, B = p["a"] * 6 ** -eta, p["b"] * 6 ** -eta
    chin = p["E"] + A * N ** (-2 * eta) + B * D ** (-2 * eta)
    assert np.allclose(LAW.evaluate({"N": N, "D": D}, p), chin)


def test_recovers_example_from_noiseless_data():
    N = np.repeat([1e7, 5e7, 2e8, 1e9], 3)
    D = N * np.tile([10.0, 40.0, 160.0], 4)
    df = pd.DataFrame({"N": N, "D": D, "loss": LAW.evaluate({"N": N, "D": D}, LAW.example)})
    f = fit("overtrain", df)
    for k, v in LAW.example.items():
        assert f.params[k] == pytest.approx(v, rel=2e-3)


def test_optimum_and_inverse():
    p = dict(LAW.example)
    opt = LAW.optimum(p, compute=1e21)
    Mopt = opt["M_opt"]
    assert Mopt == pytest.approx((p["b"] / p["a"]) ** (1 / (2 * p["eta"])))
    # the loss at M_opt is below the loss at other M for the same compute
    for M in (Mopt / 3, Mopt * 3):
        N = np.sqrt(1e21 / (6 * M))
        assert LAW.evaluate({"N": N, "D": M * N}, p) > opt["loss"]
    L = LAW.evaluate({"N": 1e9, "D": 3e10}, p)
    assert LAW.inverse(L, p, N=1e9) == pytest.approx(3e10, rel=1e-6)


@pytest.mark.parametrize("N, D, word", [
    (1.4, 2e10, "M = D/N"),           # N in billions
    (1e9, 2e4, "M = D/N"),            # D in millions
    (-1e9, 2e10, "positive"),
])
def test_bad_units_are_clear_errors(N, D, word):
    df = pd.DataFrame({"N": [N, 1e8, 1e8, 1e8, 1e8, 1e8], "D": [D, 2e9, 4e9, 8e9, 1.6e10, 3e10],
                       "loss": [3.0, 3.5, 3.4, 3.3, 3.2, 3.1]})
    with pytest.raises(ScalelawError, match=word) as e:
        fit("overtrain", df)
    assert "\n" not in str(e.value)


def test_M_column_must_match_D_over_N():
    df = pd.DataFrame({"N": [1e8] * 6, "D": [2e9, 4e9, 8e9, 1.6e10, 3e10, 6e10], "M": [20, 40, 80, 160, 300, 1],
                       "loss": [3.5, 3.4, 3.3, 3.2, 3.1, 3.0]})
    with pytest.raises(ScalelawError, match="M must equal D/N"):
        fit("overtrain", df)


# ---- Gadre's protocol on their testbed -------------------------------------------------------------
def test_testbed_columns(runs):
    assert len(runs) == 104
    assert set(runs["dataset"]) == {"rpj", "c4_original", "rw_original"}
    one = runs[runs["run"] == "rpj-open_lm_1b-32.0"].iloc[0]
    assert one["loss"] == pytest.approx(2.5021, abs=1e-4)        # C4 validation loss
    assert one[gadre.ERR17] == pytest.approx(0.4752, abs=1e-4)   # 17-task average error
    assert one["M"] == pytest.approx(640) and one["N"] == 1439795200  # N counts embeddings


# ---- where the testbed comes from ------------------------------------------------------------------
def test_registered_dataset_matches_the_folder(exp_dir, runs):
    reg = gadre.load_runs()                      # the registered dataset (SCALELAW_MIRROR via the fixture)
    assert reg.attrs["source"] == gadre.DATASET and reg.attrs["sha256"]
    assert runs.attrs["source"] == str(exp_dir)
    a, b = reg.set_index("run"), runs.set_index("run").loc[reg.set_index("run").index]
    for c in ["N", "N_nonembed", "D", "M", "C", "loss", gadre.ERR17, "err_avg46"] + [f"err_{t}" for t in gadre.TASKS_17]:
        assert np.allclose(a[c], b[c], rtol=1e-12), c
    assert (a["dataset"] == b["dataset"]).all()


def test_checkout_folder_holding_exp_data(exp_dir, tmp_path):
    (tmp_path / "scaling").mkdir()
    (tmp_path / "scaling" / "exp_data").symlink_to(exp_dir, target_is_directory=True)
    assert len(gadre.load_runs(tmp_path / "scaling")) == 104


@pytest.mark.parametrize("with_mirror", [True, False], ids=["empty-mirror", "no-mirror-offline"])
def test_missing_testbed_is_one_clear_error(monkeypatch, tmp_path, with_mirror):
    no_public_data(monkeypatch, tmp_path, with_mirror)
    with pytest.raises(ScalelawError, match="SCALELAW_MIRROR") as e:
        gadre.load_runs()
    msg = str(e.value)
    assert "mlfoundations/scaling" in msg and "exp_data/" in msg and "\n" not in msg
    # the CLI: one line, exit code 2
    r = _cli(["gadre", "reproduce", "--boot", "0"])
    assert r.exit_code == 2 and "SCALELAW_MIRROR" in r.output, r.output


def test_explicit_paths_that_are_not_the_testbed(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScalelawError, match=r"empty is not an exp_data folder.*SCALELAW_MIRROR"):
        gadre.load_runs(tmp_path / "empty")
    with pytest.raises(ScalelawError, match="neither an existing file or folder nor a registered dataset"):
        gadre.load_runs(tmp_path / "nope")
    other = tmp_path / "runs.csv"
    pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, 4e9], "loss": [3.2, 3.0]}).to_csv(other, index=False)
    with pytest.raises(ScalelawError, match=r"runs.csv lacks column\(s\) dataset, err_"):
        gadre.load_runs(other)


def test_reproduces_gadre(runs):
    res = gadre.reproduce(runs, boot=0)
    lp, ep = res["params"]["loss"], res["params"]["error"]
    assert lp["eta"] == pytest.approx(0.1364, abs=2e-4)
    assert lp["E"] == pytest.approx(1.8367, abs=1e-3)
    assert lp["a"] == pytest.approx(212.24, rel=2e-3) and lp["b"] == pytest.approx(366.69, rel=2e-3)
    assert ep["k"] == pytest.approx(2.2065, rel=2e-3) and ep["gamma"] == pytest.approx(0.7146, rel=2e-3)
    assert ep["eps"] == pytest.approx(0.8570, abs=1e-3)
    assert len(res["rows"]) == 4
    for r in res["rows"]:
        assert r["actual"] == pytest.approx(r["published_actual"], abs=1e-4)
        # no worse than published (published relative errors are rounded to 2 decimals of a %)
        assert r["rel_err"] <= r["published_rel_err"] + 5e-5
        assert r["predicted"] == pytest.approx(r["published_predicted"], abs=2e-4)


def test_error_averages_never_cover_fewer_tasks(runs):
    t = runs.copy()
    t.loc[t.index[0], "err_arc_easy"] = np.nan      # one of Gadre's 17 tasks missing for one run
    out = gadre.load_runs(t)
    assert out[gadre.ERR17].isna().tolist() == [True] + [False] * (len(t) - 1)
    assert out["err_avg46"].isna().sum() == 1
    assert np.allclose(out[gadre.ERR17].iloc[1:], runs[gadre.ERR17].iloc[1:], rtol=1e-12)
    # the average is over the 17 tasks, recomputed from them (a stale err_avg17 column is replaced)
    t = runs.copy()
    t[gadre.ERR17] = 0.0
    assert np.allclose(gadre.load_runs(t)[gadre.ERR17], runs[gadre.ERR17], rtol=1e-12)
    tasks = [c for c in runs.columns if c.startswith("err_") and not c.startswith("err_avg")]
    assert len(tasks) == 46
    assert np.allclose(runs["err_avg46"], runs[tasks].mean(axis=1), rtol=1e-12)


def test_error_column_alias_and_published_rows(runs):
    base = gadre.reproduce(runs, boot=0)
    alias = gadre.reproduce(runs, boot=0, error_column="gadre17")   # the error laws' name for err_avg17
    assert [r["predicted"] for r in alias["rows"]] == pytest.approx([r["predicted"] for r in base["rows"]], rel=1e-9)
    assert all("published_rel_err" in r for r in alias["rows"])
    other = gadre.reproduce(runs, boot=0, error_column="err_avg46")
    # the loss does not depend on the error column: its published numbers stay; the error's do not apply
    assert [("published_rel_err" in r) for r in other["rows"]] == [True, False, True, False]
    bt = gadre.cutoff_backtest(runs, dataset="rpj", cutoff=3e20, objectives=("lsq",), direct=False,
                               error_column="gadre17")
    assert "gadre17" in bt["predictions"].columns
    with pytest.raises(ScalelawError, match="error column 'err_nope'"):
        gadre.reproduce(runs, boot=0, error_column="err_nope")


def test_fits_record_the_data_they_were_made_on(runs, exp_dir):
    res = gadre.reproduce(runs, boot=0)
    assert res["fits"]["loss"].data["source"] == str(exp_dir)
    assert res["fits"]["loss"].data.get("sha256") is None    # a folder: no registry hash to claim
    bare = runs.copy()
    bare.attrs.clear()
    res = gadre.reproduce(bare, boot=0)
    # not mislabelled as the registered dataset (`scalelaw check` would refit from that)
    assert res["fits"]["error"].data["source"] != gadre.DATASET


def test_fit_helpers_pass_warnings_on(monkeypatch, runs):
    """A fit that did not converge warns (scalelaw.fit); the helpers must not silence it."""
    import warnings

    import scalelaw.fit as F

    real = F.fit

    def warning_fit(*a, **k):
        warnings.warn("fit of 'x' did NOT converge: test")
        return real(*a, **k)

    monkeypatch.setattr(F, "fit", warning_fit)
    loss_rows, err_rows, _ = gadre.protocol_rows(runs, "rpj")
    with pytest.warns(UserWarning, match="did NOT converge"):
        gadre.fit_loss(loss_rows, objective="lsq")
    with pytest.warns(UserWarning, match="did NOT converge"):
        gadre.fit_error(err_rows, objective="lsq")


def test_reference_fits_match_protocol(runs):
    res = gadre.reproduce(runs, boot=0)
    for kind, name in (("loss", "gadre-rpj-loss.json"), ("error", "gadre-rpj-err.json")):
        ref = load_fit(ROOT / "fits" / name)
        assert ref.data["validation"] == "c4_val"
        for k, v in res["params"][kind].items():
            assert ref.params[k] == pytest.approx(v, rel=1e-4)
        assert ref.boot is not None and len(ref.boot) >= 100


def test_protocol_needs_the_right_rows(runs):
    with pytest.raises(ScalelawError, match="dataset"):
        gadre.protocol_rows(runs, "pile")
    small = runs[runs["N"] < 1e9]
    with pytest.raises(ScalelawError, match="expected one"):
        gadre.protocol_rows(small, "rpj")


def test_cutoff_backtest(runs):
    r = gadre.cutoff_backtest(runs, dataset="rpj", cutoff=3e20, objectives=("lsq",), direct=False)
    t = pd.DataFrame(r["table"])
    assert set(t["quantity"]) == {"loss", "error (chained)"}
    assert (t["n_test"] == 4).all() and (t["n_train"] == 31).all()
    loss = t[t["quantity"] == "loss"].iloc[0]
    assert loss["rel_mean"] < 0.03
    assert t[t["quantity"] == "error (chained)"].iloc[0]["rel_mean"] < 0.05
    with pytest.raises(ScalelawError, match="cutoff"):
        gadre.cutoff_backtest(runs, dataset="rpj", cutoff=1e16)


def test_figures(runs):
    import plotly.graph_objects as go

    loss_rows, err_rows, targets = gadre.protocol_rows(runs, "rpj")
    lf = gadre.fit_loss(loss_rows, objective="lsq")
    ef = gadre.fit_error(err_rows, objective="lsq")
    f1 = gadre.figure_loss(lf, loss_rows, targets)
    f2 = gadre.figure_error(ef, err_rows, targets)
    assert isinstance(f1, go.Figure) and isinstance(f2, go.Figure)
    names = [t.name for t in f1.data]
    assert any("held out" in n for n in names) and any("M=20 fit" == n for n in names)
    assert len(f2.data) == 3


# ---- CLI ----------------------------------------------------------------------------------------
def _cli(args):
    from scalelaw.cli import main

    return CliRunner().invoke(main, args)


def test_cli_reproduce_json(exp_dir):
    r = _cli(["gadre", "reproduce", "--boot", "0", "--json", "--data", str(exp_dir)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert [x["quantity"] for x in d["rows"]] == ["loss", "error", "loss", "error"]
    assert d["params"]["loss"]["eta"] == pytest.approx(0.1364, abs=2e-4)


def test_cli_errors_exit_2(exp_dir, tmp_path):
    data = str(exp_dir)
    r = _cli(["gadre", "backtest", "--data", data, "--dataset", "rpj", "--cutoff", "1e15"])
    assert r.exit_code == 2 and "cutoff" in r.output
    r = _cli(["gadre", "reproduce", "--data", data, "--boot", "0", "--write-fits", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_protocol_on_other_training_sets(runs):
    res = gadre.reproduce(runs, dataset="rw_original", boot=0)
    assert [r["target"] for r in res["rows"]] == ["1.4B, M=320"] * 2 + ["6.9B, M=20"] * 2
    assert all("published_rel_err" not in r for r in res["rows"])
    assert res["published_params"] is None


def test_cli_backtest_json(exp_dir):
    r = _cli(["gadre", "backtest", "--data", str(exp_dir), "--dataset", "rpj", "--cutoff", "3e20",
              "--objective", "lsq", "--no-direct", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert {s["quantity"] for s in d["summary"]} == {"loss", "error (chained)"}
    assert len(d["splits"]) == 2


def test_cli_plot_is_self_contained(exp_dir, tmp_path):
    """The figure page works offline: plotly is inlined, not fetched from a CDN."""
    out = tmp_path / "fig.html"
    r = _cli(["gadre", "plot", "loss", "--data", str(exp_dir), "-o", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert 'src="https://cdn.plot.ly' not in html and "<script src=" not in html
    assert len(html) > 1_000_000  # the plotly.js bundle itself
    r = _cli(["gadre", "plot", "loss", "--data", str(exp_dir), "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
