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


def _rendered_dom(html: str, tmp_path) -> str:
    """The page's DOM after headless Chromium ran its scripts (skips without Chromium, except in CI)."""
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no chromium on PATH: install it (apt-get install -y chromium)")
        pytest.skip("chromium not found on PATH (apt-get install -y chromium); the browser check needs it")
    path = tmp_path / "report.html"
    path.write_text(html)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", path.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_report_renders_in_headless_chromium(page, tmp_path):
    html, info = page
    dom = _rendered_dom(html, tmp_path)
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
    # per fit: data with curves, residuals, loss vs compute, compute-optimal N and D
    assert info["figures"] == 8 and "no data table" not in html


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


# ---- the scaling figures (issue 14) ----------------------------------------------------------------
def _iso_table(jitter: float = 0.0, budgets=(1e18, 1e19, 1e20), seed: int = 0):
    rng = np.random.default_rng(seed)
    N = np.concatenate([np.geomspace(2e7, 1e9, 7)] * len(budgets))
    C = np.repeat(budgets, 7) * np.exp(jitter * rng.standard_normal(7 * len(budgets)))
    D = C / (6 * N)
    return pd.DataFrame({"N": N, "D": D, "C": C, "loss": get_law("chinchilla").evaluate({"N": N, "D": D}, TRUTH)})


@pytest.fixture(scope="module")
def iso_fit():
    df = _iso_table()
    return fit("chinchilla", df, n_jobs=1, boot=20, source="isoflop table"), df


def _legend_names(fig):
    return [t.name for t in fig.data if t.showlegend is not False and t.name]


def test_plot_compute_runs_curves_and_frontier_to_the_budget(chin, table):
    fig = plots.plot_compute(chin, table, compute=1e23)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    markers = [t for t in fig.data if t.mode == "markers" and t.x[0] is not None and not t.name.startswith("planned")]
    assert sum(len(t.x) for t in markers) == len(table)
    front = [t for t in fig.data if t.name in ("compute-optimal frontier", "frontier beyond the runs")]
    assert len(front) == 2 and max(front[1].x) >= 1e23 and max(front[0].x) <= 6 * (table.N * table.D).max() * 1.6
    opt = chin.optimum(compute=np.asarray(front[0].x))
    np.testing.assert_allclose(front[0].y, opt["loss"], rtol=1e-9)
    band = [t for t in fig.data if t.fill == "toself"]
    assert len(band) == 1 and "interval" in band[0].name
    planned = [t for t in fig.data if (t.name or "").startswith("planned")][0]
    assert planned.x[0] == 1e23 and planned.y[0] == pytest.approx(chin.optimum(compute=1e23)["loss"])
    # one curve per model size, each the law at that N along D = C / 6N
    curves = [t for t in fig.data if t.mode == "lines" and (t.name or "").startswith("fit N=")]
    assert len(curves) == table.N.nunique()
    for t in curves:
        n = float(t.name.split("=")[1])
        xs = np.asarray(t.x)
        np.testing.assert_allclose(t.y, get_law("chinchilla").evaluate({"N": n, "D": xs / (6 * n)}, chin.params),
                                   rtol=2e-3)   # the label's N is rounded to 3 digits
    names = _legend_names(fig)
    assert len(names) == len(set(names)), names


def test_plot_optimum_bands_and_fitted_ranges(chin, table):
    fig = plots.plot_optimum(chin, compute=1e23, data=table)
    for key in ("N_opt", "D_opt"):
        line = [t for t in fig.data if t.name == key][0]
        assert len(line.x) > 10 and max(line.x) >= 1e23
        assert any(t.fill == "toself" and t.name == f"95% interval of {key}" for t in fig.data)
    assert len(fig.layout.shapes) == 2     # the fitted N range and the fitted D range
    n_lo, n_hi = chin.input_ranges["N"]
    assert {fig.layout.shapes[0].y0, fig.layout.shapes[0].y1} == {n_lo, n_hi}
    assert all(fig.layout[a].type == "log" for a in ("xaxis", "yaxis", "xaxis2", "yaxis2"))
    with pytest.raises(ScalelawError, match="compute-optimal allocation"):
        plots.plot_optimum(published_fit("steplaw-2025", law="lr_opt"), compute=1e22)


def test_plot_isoflop_profiles_minima_and_power_law(iso_fit):
    from scalelaw.analysis.isoflop import isoflop

    _, df = iso_fit
    res = isoflop(df, boot=30)
    fig = plots.plot_isoflop(res, compute=1e22)
    runs = [t for t in fig.data if (t.name or "").startswith("C=")]
    assert len(runs) == 3 and sum(len(t.x) for t in runs) == len(df)
    minima = [t for t in fig.data if t.legendgroup and t.mode == "markers" and t.marker.symbol == "star"]
    assert sorted(t.x[0] for t in minima) == pytest.approx(sorted(b.N_opt for b in res.budgets))
    law_line = [t for t in fig.data if (t.name or "").startswith("N_opt = ")][0]
    np.testing.assert_allclose(law_line.y, res.k * np.asarray(law_line.x) ** res.a, rtol=1e-9)
    assert max(law_line.x) >= 1e22 and any(t.fill == "toself" for t in fig.data)


def test_backtest_parity_marks_the_split(chin, table):
    from scalelaw.analysis.report import run_backtest

    bt = run_backtest(chin, table)
    assert bt["n_train"] > 0 and bt["n_test"] > 0 and len(bt["train_rows"]) == bt["n_train"]
    fig = plots.plot_backtest_parity(bt)
    train = [t for t in fig.data if (t.name or "").startswith("fitted on")][0]
    held = [t for t in fig.data if (t.name or "").startswith("held out")]
    assert len(train.x) == bt["n_train"] and sum(len(t.x) for t in held) == bt["n_test"]
    assert bt["train"] in train.name


def test_default_backtest_split_keeps_both_sides_for_isoflop_tables(iso_fit):
    from scalelaw.analysis.report import run_backtest

    f, df = iso_fit
    bt = run_backtest(f, df)
    # the old quantile split selected every row of such a table (ties at the top budget)
    assert bt["n_test"] == 7 and bt["n_train"] == 14 and bt["train"] == "C <= 1e+19"


def test_poor_backtest_coverage_is_flagged_red(monkeypatch, chin, table):
    import scalelaw.analysis.report as rep

    assert rep.poor_coverage({"n_test": 10, "coverage": 0.5, "level": 0.95})
    assert not rep.poor_coverage({"n_test": 10, "coverage": 0.9, "level": 0.95})
    assert not rep.poor_coverage({"n_test": 2, "coverage": 0.5, "level": 0.95})   # too few to tell
    good, _ = build_report([("ladder", chin)], table)
    assert "class='bad'" not in good.split("<body>")[1]
    real = rep.run_backtest

    def poor(*a, **kw):
        bt = real(*a, **kw)
        return {**bt, "coverage": 0.0}

    monkeypatch.setattr(rep, "run_backtest", poor)
    html, info = build_report([("ladder", chin)], table)
    assert "<span class='bad'>0% inside the 95% prediction band: poor coverage" in html
    assert any("backtest coverage 0%" in w for w in info["warnings"])


def test_plan_figure_shades_only_the_fitted_range_with_a_visible_label(chin):
    res = plan(compute=1e22, loss_fit=chin)
    fig = plots.plot_plan(res, chin)
    lo, hi = chin.input_ranges["N"]
    xs = [x for t in fig.data if t.x is not None for x in t.x if x is not None]
    shape = fig.layout.shapes[0]
    assert shape.x0 == pytest.approx(max(lo, min(xs))) and shape.x1 == pytest.approx(min(hi, max(xs)))
    label = [a for a in fig.layout.annotations if a.text == "fitted N range"][0]
    assert label.x == pytest.approx(np.log10(shape.x0))          # log axis: annotations take log10
    # a plan whose line lies wholly beyond the fitted sizes: no shading stretching the axis
    far = plan(compute=1e27, loss_fit=chin)
    fig = plots.plot_plan(far, chin, span_decades=0.5)
    assert not fig.layout.shapes and not fig.layout.annotations


def test_hparam_law_axes_are_log(table):
    from scalelaw.result import Fit

    law = get_law("lr_opt")
    f = Fit(law=law, params=dict(law.published["steplaw-2025"]), free=law.param_names)
    N = np.repeat([2e8, 4e8, 8e8], 3)
    D = np.tile([4e9, 2e10, 1e11], 3)
    df = pd.DataFrame({"N": N, "D": D, "lr": law.evaluate({"N": N, "D": D}, f.params)})
    fig = plots.plot_fit(f, df)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_binned_groups_follow_the_budget_when_every_value_differs():
    # many jittered budgets (Epoch's Chinchilla data looks like this): bins of C, not of D, make
    # curves that pass through their runs
    df = _iso_table(jitter=0.05, budgets=np.geomspace(1e17, 1e21, 14), seed=3)
    df = df[df.D > 3e7]
    f = fit("chinchilla", df, n_jobs=1)
    x, g, labels = plots.choose_grouping(f, df)
    assert (x, g) == ("N", "C") and len(labels.categories) >= 5
    assert plots._misfit(f, df, x, labels) < plots._misfit(f, df, x, plots._binned("D", df.D.to_numpy(), 8))


def test_density_size_figure_clips_unbounded_intervals():
    from scalelaw.analysis.density import effective_size_figure

    scored = pd.DataFrame({"model": ["a", "b", "c"], "N": [1e9, 3e9, 7e9], "N_eff": [2e9, 3e9, 5e9],
                           "N_eff_lower": [1e9, 2e9, 1e-300], "N_eff_upper": [3e9, np.inf, 1e273],
                           "density": [2.0, 1.0, 0.7]})
    fig = effective_size_figure(scored)
    lo, hi = fig.layout.yaxis.range
    assert hi == pytest.approx(np.log10(7e10)) and lo == pytest.approx(np.log10(1e8))
    tr = [t for t in fig.data if t.name == "models"][0]
    assert np.all(np.asarray(tr.y) + np.asarray(tr.error_y.array) <= 7e10 * 1.0001)
    assert "unbounded" in tr.text[1] and "unbounded" in tr.text[2] and "unbounded" not in tr.text[0]


def test_plotly_cdn_or_inline_and_the_one_fit_page_stays_under_5_mb(tmp_path, chin, table):
    from plotly.offline import get_plotlyjs

    from scalelaw.cli import main

    fpath, tpath = tmp_path / "fit.json", tmp_path / "runs.csv"
    chin.save(fpath)
    table.to_csv(tpath, index=False)
    runner = CliRunner()
    sizes = {}
    for how in ("inline", "cdn"):
        out = tmp_path / f"{how}.html"
        res = runner.invoke(main, ["report", str(fpath), "-o", str(out), "--data", str(tpath), "--plan-compute", "1e22",
                                   "--plotly", how])
        assert res.exit_code == 0, res.output
        html = out.read_text()
        sizes[how] = out.stat().st_size
        inline = get_plotlyjs()[:2000] in html
        external = re.search(r"<script[^>]+src='https://[^']+plotly-[0-9.]+\.min\.js'", html)
        assert (inline, bool(external)) == ((True, False) if how == "inline" else (False, True))
    assert sizes["inline"] < 5_000_000, sizes        # the one-fit page with every figure and the plan
    assert sizes["cdn"] < sizes["inline"] - 3_000_000
    bad = runner.invoke(main, ["report", str(fpath), "-o", str(tmp_path / "x.html"), "--plotly", "web"])
    assert bad.exit_code == 2


def test_new_figure_kinds_draw_non_empty_traces_in_headless_chromium(tmp_path, iso_fit):
    f_iso, df_iso = iso_fit
    html, info = build_report([("iso", f_iso)], df_iso, plan_compute=1e21)
    dom = _rendered_dom(html, tmp_path)
    parts = re.split(r'<div class="figure" data-kind="([a-z]+)">', dom)[1:]
    drawn = dict(zip(parts[::2], parts[1::2]))
    assert {"fit", "compute", "allocation", "isoflop", "residual", "parity", "backtest", "plan"} <= set(drawn), set(drawn)
    for kind, dom in drawn.items():
        # plotly draws each scatter trace as a <g class="trace scatter">: its markers as
        # <path class="point" d="M...">, its lines as <path class="js-line" d="M...">
        assert dom.count('class="trace scatter') >= 1, kind
        lines = re.findall(r'class="js-line"[^>]*d="M[-0-9.]', dom)
        points = dom.count('class="point"')
        assert lines or points, f"{kind}: no line or marker drawn"
        if kind in ("fit", "compute", "isoflop", "residual"):
            assert points >= len(df_iso), f"{kind}: {points} markers drawn for {len(df_iso)} runs"
        if kind in ("fit", "compute", "allocation", "isoflop", "plan"):
            assert lines, f"{kind}: no curve drawn"
