"""scalelaw.plots, scalelaw.analysis.report and `scalelaw report`: figures, a self-contained page
that renders offline in headless Chromium, overwrite protection."""
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw import plots
from scalelaw.analysis.plan import plan
from scalelaw.analysis.report import build_report, write_report
from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.result import published_fit

from .helpers import TRUTH, ladder


@pytest.fixture(scope="module")
def table():
    return ladder()


@pytest.fixture(scope="module")
def chin(table):
    return fit("chinchilla", table, boot=20, n_jobs=1, source="synthetic ladder")


@pytest.fixture(scope="module")
def page(chin, table):
    return build_report([("ladder", chin), "epoch-2024"], table, plan_compute=1e22)


# ---- figures ----------------------------------------------------------------------------------
def test_plot_fit_groups_ladder_by_ratio(chin, table):
    x, g, labels = plots.choose_grouping(chin, table)
    assert (x, g) == ("N", "tokens_per_param")
    assert len(labels.categories) == 4
    fig = plots.plot_fit(chin, table)
    markers = [t for t in fig.data if t.mode == "markers"]
    lines = [t for t in fig.data if t.mode == "lines"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(markers) == len(lines) == len(bands) == 4
    assert sum(len(t.x) for t in markers) == len(table)
    assert fig.layout.xaxis.type == "log"
    # the curve of each group passes through its noiseless values
    law = get_law("chinchilla")
    for t in lines:
        xs = np.asarray(t.x)
        ratio = float(t.name.split("=")[1])
        truth = law.evaluate({"N": xs, "D": ratio * xs}, chin.params)
        np.testing.assert_allclose(np.asarray(t.y), truth, rtol=1e-6)


def test_isoflop_groups_follow_the_budget():
    # IsoFLOP profiles: C fixed per group, N varies, D = C/(6N)
    N = np.concatenate([np.geomspace(2e7, 1e9, 7)] * 3)
    C = np.repeat([1e18, 1e19, 1e20], 7)
    D = C / (6 * N)
    df = pd.DataFrame({"N": N, "D": D, "C": C,
                       "loss": get_law("chinchilla").evaluate({"N": N, "D": D}, TRUTH)})
    f = fit("chinchilla", df, n_jobs=1)
    x, g, _ = plots.choose_grouping(f, df)
    assert (x, g) == ("N", "C")
    fig = plots.plot_fit(f, df)
    for t in (t for t in fig.data if t.mode == "lines"):
        c = float(t.name.split("=")[1])
        xs = np.asarray(t.x)
        np.testing.assert_allclose(t.y, get_law("chinchilla").evaluate({"N": xs, "D": c / (6 * xs)}, f.params),
                                   rtol=1e-4)


def test_residuals_and_backtest_figures(chin, table):
    r = plots.residuals(chin, table)
    law = get_law("chinchilla")
    expect = np.log(law.evaluate({"N": table.N, "D": table.D}, chin.params)) - np.log(table.loss)
    np.testing.assert_allclose(r["residual"], expect)
    fig = plots.plot_residuals(chin, table)
    assert sum(len(t.y) for t in fig.data) == len(table)
    from scalelaw.analysis.report import run_backtest

    bt = run_backtest(chin, table)
    assert bt["n_train"] + bt["n_test"] == len(table) and bt["mean_rel_error"] < 0.02
    fig = plots.plot_backtest(bt)
    assert sum(len(t.y) for t in fig.data) == bt["n_test"]


def test_plot_plan_marks_the_plan(chin):
    res = plan(compute=1e22, loss_fit=chin)
    fig = plots.plot_plan(res, chin)
    pt = [t for t in fig.data if t.name == "plan"][0]
    assert pt.x[0] == pytest.approx(res["N"]) and pt.y[0] == pytest.approx(res["loss"])


def test_missing_columns_are_a_user_error(chin):
    with pytest.raises(ScalelawError, match="needs column"):
        plots.plot_fit(chin, pd.DataFrame({"N": [1e8, 2e8], "loss": [3.0, 2.9]}))


# ---- the page -----------------------------------------------------------------------------------
def test_page_is_self_contained(page):
    html, info = page
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("Plotly.newPlot") == info["figures"] >= 6
    assert not re.search(r"<script[^>]+src=", html), "no external scripts"
    assert not re.search(r"<link[^>]+href=['\"]?https?:", html), "no external stylesheets"
    from plotly.offline import get_plotlyjs
    assert get_plotlyjs()[:2000] in html                   # the bundle itself, inline, once
    assert html.count(get_plotlyjs()[:2000]) == 1


def test_page_sections(page):
    html, info = page
    for text in ("ladder: chinchilla", "epoch-2024: chinchilla", "Residuals", "Backtest", "Plan for C = 1e+22",
                 "converged", "Derived quantities", "Extrapolation beyond"):
        assert text in html, text
    assert info["plan"]["N"] > 0 and info["plan"]["C"] == 1e22
    assert "published constants" not in html or "no data" not in html
    assert "published constants: no data to draw" not in html     # --data serves the published fit too


def test_published_fit_without_data_leaves_a_note():
    html, info = build_report(["epoch-2024"], None, backtest=False)
    assert "published constants: no data to draw" in html
    assert info["figures"] == 0


def test_write_refuses_overwrite(tmp_path, chin, table):
    out = tmp_path / "r.html"
    out.write_text("keep me")
    with pytest.raises(ScalelawError, match="--force"):
        write_report(out, [chin], table, backtest=False)
    assert out.read_text() == "keep me"
    info = write_report(out, [chin], table, backtest=False, force=True)
    assert info["bytes"] == out.stat().st_size > 1_000_000


def test_cli_report(tmp_path, chin, table):
    from scalelaw.cli import main

    fpath, tpath, out = tmp_path / "fit.json", tmp_path / "runs.csv", tmp_path / "report.html"
    chin.save(fpath)
    table.to_csv(tpath, index=False)
    runner = CliRunner()
    args = ["report", str(fpath), "epoch-2024", "-o", str(out), "--data", str(tpath), "--plan-compute", "1e21",
            "--no-backtest"]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.stdout and out.exists()
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "--force" in again.output
    assert runner.invoke(main, args + ["--force"]).exit_code == 0


# ---- renders in a real browser -----------------------------------------------------------------
def _chromium():
    for name in (os.environ.get("SCALELAW_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def test_report_renders_in_headless_chromium(page, tmp_path):
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no chromium on PATH: install it (apt-get install -y chromium)")
        pytest.skip("chromium not found on PATH (apt-get install -y chromium); the browser check needs it")
    html, info = page
    path = tmp_path / "report.html"
    path.write_text(html)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", path.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    # plotly draws each figure into .main-svg elements (two per figure: plot and overlay layers)
    assert dom.count('class="main-svg"') >= info["figures"], dom[:500]
    assert dom.count('class="plot-container plotly"') == info["figures"]


def test_plan_section_uses_fits_by_role(chin, table):
    from scalelaw.result import Fit

    lr, bs = get_law("lr_opt"), get_law("bs_opt")
    lr_fit = Fit(law=lr, params=dict(lr.published["steplaw-2025"]), free=lr.param_names, label="published: steplaw-2025")
    bs_fit = Fit(law=bs, params=dict(bs.published["steplaw-2025"]), free=bs.param_names, label="published: steplaw-2025")
    html, info = build_report([("lr", lr_fit), ("ladder", chin), ("bs", bs_fit)], table, plan_compute=1e21,
                              backtest=False)
    p = info["plan"]
    assert p["fits"]["loss"]["law"] == "chinchilla" and p["fits"]["lr"]["law"] == "lr_opt"
    assert p["batch_tokens"] == pytest.approx(0.58 * p["D"] ** 0.571)
    assert "lr*" in html and "B* (tokens)" in html


def test_roles_follow_the_plan_classification(chin):
    """A law that reads the loss but predicts something else (critical batch B_crit(L)) is no
    downstream-error fit: the report gives plan only fits of the roles plan itself accepts."""
    from scalelaw.analysis.report import _roles
    from scalelaw.result import Fit

    crit = get_law("critical_batch")
    bc = Fit(law=crit, params={n: 1.0 for n in crit.param_names}, free=crit.param_names)
    err = published_fit("gadre-2024-rpj-err17")
    roles = _roles([("ladder", chin), ("bcrit", bc), ("err", err)])
    assert {k: v[0] for k, v in roles.items()} == {"loss": "ladder", "error": "err"}


def test_fits_on_one_table_read_it_once(tmp_path, monkeypatch, chin, table):
    import scalelaw.io as sio

    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    calls = []
    real = sio.load_table

    def counting(src, *a, **kw):
        calls.append(src)
        return real(src, *a, **kw)

    monkeypatch.setattr(sio, "load_table", counting)
    f = fit("chinchilla", real(str(path)), n_jobs=1)
    g = fit("chinchilla", real(str(path)), n_jobs=1, where="N > 3e7")
    html, info = build_report([("all", f), ("large", g)], None, backtest=False)
    assert calls == [str(path)]
    assert info["figures"] == 4 and "no data table" not in html


def test_parity_figure_prepares_the_rows_once():
    """Laws with more than three inputs are drawn predicted-vs-observed; the law's prepare step
    (here: drop the first row, not idempotent) must run once, as for the fit."""
    from scalelaw.law import _REGISTRY, Law, Param, register
    from scalelaw.result import Fit

    law = Law("_test_four_inputs", lambda a, b, c, d, k: k * (a + b + c + d), inputs=("a", "b", "c", "d"),
              params=(Param("k", 0, 10),), prepare=lambda df: df.iloc[1:].copy())
    register(law, replace=True)
    try:
        df = pd.DataFrame({c: np.arange(1.0, 7.0) for c in "abcd"})
        df["loss"] = 2.0 * df[list("abcd")].sum(axis=1)
        f = Fit(law=law, params={"k": 2.0}, free=("k",))
        fig = plots.plot_fit(f, df)
        runs = [t for t in fig.data if t.name == "runs"][0]
        assert len(runs.x) == len(df) - 1
    finally:
        _REGISTRY.pop(law.name, None)
