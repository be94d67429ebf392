"""The fitting verbs as users call them: JSON contracts, files, and one-line errors."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scalelaw.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = str(REPO / "data" / "example_runs.csv")


def run(*args, ok=True):
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, res.output + res.stderr
    return res


def one_line_error(res, code=2):
    assert res.exit_code == code, res.output
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.output + res.stderr
    return err[0]


def test_version_and_help_on_every_verb():
    assert "scalelaw" in run("--version").output
    for verb, cmd in main.commands.items():
        assert run(verb, "--help").output.strip(), verb
        for sub in getattr(cmd, "commands", {}):
            assert run(verb, sub, "--help").output.strip(), (verb, sub)


def test_laws_lists_every_family_with_bounds_and_citation():
    out = json.loads(run("laws", "--json").stdout)
    names = {l["name"] for l in out}
    assert {"chinchilla", "kaplan_n", "kaplan_d", "kaplan_nd", "kaplan_curve", "compute",
            "data_constrained", "bnsl"} <= names
    chin = next(l for l in out if l["name"] == "chinchilla")
    assert [p["name"] for p in chin["params"]] == ["E", "A", "B", "alpha", "beta"]
    assert chin["citation"] and chin["formula"]
    assert "chinchilla" in run("laws").output


def test_fit_json_contract_and_file(tmp_path):
    out = tmp_path / "fit.json"
    res = run("fit", "chinchilla", EXAMPLE, "--boot", "100", "--seed", "1", "-o", out, "--json")
    d = json.loads(res.stdout)
    for key in ("law", "params", "ci", "objective", "n_obs", "diagnostics"):
        assert key in d
    assert d["law"] == "chinchilla" and d["n_obs"] == 40
    assert set(d["ci"]) == {"E", "A", "B", "alpha", "beta"}
    assert d["diagnostics"]["converged"] is True
    # the example's truth is Epoch's constants
    assert abs(d["params"]["alpha"] - 0.3478) < 0.05
    saved = json.loads(out.read_text())
    assert saved["boot"]["samples"] and saved["data"]["source"] == EXAMPLE
    # never overwrite without --force
    res = run("fit", "chinchilla", EXAMPLE, "-o", out, ok=False)
    assert "--force" in one_line_error(res)
    run("fit", "chinchilla", EXAMPLE, "-o", out, "--force")


def test_fit_text_summary_shows_health_checklist():
    out = run("fit", "chinchilla", EXAMPLE, "--where", "N < 5e8").output
    assert "health:" in out and "converged" in out and "starts reaching best" in out


def test_predict_and_optimum(tmp_path):
    f = tmp_path / "fit.json"
    run("fit", "chinchilla", EXAMPLE, "--boot", "100", "-o", f)
    res = run("predict", f, "--at", "N=7e10", "--at", "D=1.4e12,2e12", "--json")
    rows = json.loads(res.stdout)
    assert len(rows) == 2
    for r in rows:
        assert r["lower"] < r["mean"] < r["upper"]
        assert {"N", "D", "mean", "lower", "upper"} <= set(r)
    assert "beyond the range" in res.stderr  # 70B is far past a 1B ladder
    o = json.loads(run("optimum", f, "--compute", "5.76e23", "--json").stdout)
    for k in ("N_opt", "D_opt", "loss", "N_opt_lower", "N_opt_upper", "loss_lower", "loss_upper"):
        assert k in o
    assert o["N_opt_lower"] < o["N_opt"] < o["N_opt_upper"]


def test_published_fit_by_name_and_ambiguous_names():
    o = json.loads(run("optimum", "epoch-2024", "--compute", "5.76e23", "--json").stdout)
    assert o["N_opt"] == pytest.approx(7.225e10, rel=2e-3)
    res = run("predict", "steplaw-2025", "--at", "N=7e9", "--at", "D=1.4e12", ok=False)
    assert "--law" in one_line_error(res)
    rows = json.loads(run("predict", "steplaw-2025", "--law", "lr_opt", "--at", "N=7e9", "--at", "D=1.4e12",
                          "--json").stdout)
    assert rows[0]["mean"] == pytest.approx(9.17e-4, rel=0.01)


def test_published_fit_does_not_claim_to_be_in_range():
    """Constants without data: the extrapolation cannot be judged and a new run's scatter is unknown."""
    res = run("predict", "gadre-2024-rpj", "--at", "N=1.4e9", "--at", "D=9.2e11", "--json")
    row = json.loads(res.stdout)[0]
    assert row["extrapolation"] is None
    assert row["pred_lower"] is None and row["pred_upper"] is None and row["lower"] is None
    assert row["mean"] == pytest.approx(2.5248, rel=1e-4)
    assert ("warning: fit (overtrain) records no fitted range (published: gadre-2024-rpj); extrapolation cannot "
            "be judged") in res.stderr
    res = run("optimum", "epoch-2024", "--compute", "5.76e23", "--json")
    assert json.loads(res.stdout)["extrapolation"] is None
    assert "records no fitted range (published: epoch-2024)" in res.stderr


def test_predict_table_and_at_are_exclusive(tmp_path):
    t = tmp_path / "at.csv"
    t.write_text("N,D\n1e9,2e10\n")
    msg = one_line_error(run("predict", "epoch-2024", "--table", t, "--at", "N=1e9", ok=False))
    assert "--table" in msg and "--at" in msg
    rows = json.loads(run("predict", "epoch-2024", "--table", t, "--json").stdout)
    assert len(rows) == 1 and rows[0]["N"] == 1e9


def test_backtest_reports_errors_per_held_out_run():
    d = json.loads(run("backtest", "chinchilla", EXAMPLE, "--train", "N < 3e8", "--json").stdout)
    assert d["n_train"] + d["n_test"] == 40 and d["n_test"] > 0
    assert len(d["rows"]) == d["n_test"]
    assert d["mean_rel_error"] < 0.02 and d["max_rel_error"] >= d["mean_rel_error"]
    assert all("rel_error" in r and "run" in r for r in d["rows"])


def test_chinchilla_epoch_dataset_name_works_as_data(mirror):
    d = json.loads(run("fit", "chinchilla", "chinchilla-epoch", "--json").stdout)
    assert d["n_obs"] == 240
    assert d["objective"]["value"] == pytest.approx(0.00101827, abs=5e-9)


@pytest.mark.parametrize("args, needle", [
    (("fit", "chinchila", EXAMPLE), "did you mean 'chinchilla'"),
    (("fit", "chinchilla", EXAMPLE, "--where", "N > 1e15"), "matches no rows"),
    (("fit", "chinchilla", EXAMPLE, "--where", "N <"), "could not be evaluated"),
    (("fit", "chinchilla", EXAMPLE, "--where", "N < 3e7"), "data point"),
    (("fit", "chinchilla", "no/such/file.csv"), "no/such/file.csv"),
    (("predict", "no-such-fit.json", "--at", "N=1e9"), "does not exist"),
    (("predict", "epoch-2024", "--at", "N=abc"), "--at"),
    (("predict", "epoch-2024", "--at", "N=1e9"), "needs input"),
    (("optimum", "kaplan-2020-n", "--compute", "1e23"), "defines no optimum"),
    (("backtest", "chinchilla", EXAMPLE, "--train", "N > 1e15"), "selects no rows"),
    (("fit", "chinchilla", EXAMPLE, "--fix", "alpha"), "KEY=VALUE"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    assert needle in one_line_error(run(*args, ok=False))


def test_option_a_law_does_not_take_is_one_line_naming_its_options(mirror):
    # a typo in a sweep law's option: did-you-mean plus the options the law takes, never a TypeError
    msg = one_line_error(run("fit", "lr_opt", "steplaw-dense", "--option", "selct=best", ok=False))
    assert "'lr_opt'" in msg and "'selct'" in msg and "did you mean 'select'" in msg
    assert all(o in msg for o in ("select", "tol", "loss_col", "bowl_tol"))
    # a law without a preparation step takes no option at all: refused, not silently ignored
    msg = one_line_error(run("fit", "chinchilla", EXAMPLE, "--option", "select=best", ok=False))
    assert "'chinchilla'" in msg and "takes no --option" in msg and "select" in msg
    msg = one_line_error(run("backtest", "chinchilla", EXAMPLE, "--train", "N < 3e8", "--option", "tol=1", ok=False))
    assert "takes no --option" in msg


def test_fit_says_how_many_rows_the_prepare_step_kept(mirror):
    out = run("fit", "lr_opt", "steplaw-dense").output
    assert "rows: 129 of 1911" in out
    assert "the law's prepare step (lr_opt) kept 129 of 1911: the plateau runs" in out
    d = json.loads(run("fit", "lr_opt", "steplaw-dense", "--json").stdout)
    assert d["n_obs"] == 129
    assert d["data"]["rows"]["table"] == 1911 and d["data"]["rows"]["fitted"] == 129


def test_non_positive_loss_is_rejected(tmp_path):
    bad = tmp_path / "bad.csv"
    lines = Path(EXAMPLE).read_text().splitlines()
    cols = lines[1].split(",")
    cols[4] = "-1.0"
    lines[1] = ",".join(cols)
    bad.write_text("\n".join(lines) + "\n")
    msg = one_line_error(run("fit", "chinchilla", bad, ok=False))
    assert "loss" in msg


def test_check_passes_on_every_reference_fit(mirror):
    files = sorted(str(p) for p in (REPO / "fits").glob("*.json"))
    assert files
    res = run("check", *files, "--json")
    d = json.loads(res.stdout)
    assert d["ok"], d


def test_check_names_what_drifted(tmp_path, mirror):
    src = json.loads((REPO / "fits" / "chinchilla-epoch.json").read_text())
    src["params"]["alpha"] = 0.5
    p = tmp_path / "drift.json"
    p.write_text(json.dumps(src))
    res = run("check", p, ok=False)
    assert res.exit_code == 1
    assert "alpha" in res.output and "DRIFT" in res.output


def test_check_names_changed_data(tmp_path, mirror):
    src = json.loads((REPO / "fits" / "chinchilla-epoch.json").read_text())
    assert src["data"]["sha256"]
    src["data"]["sha256"] = "0" * 64
    p = tmp_path / "stale.json"
    p.write_text(json.dumps(src))
    res = run("check", p, ok=False)
    assert res.exit_code == 1 and "changed since the fit was recorded" in res.output


def test_library_warnings_are_one_line_without_file_and_line(tmp_path):
    """Any library UserWarning reaching the CLI prints as `warning: ...`, never with a source path; -q hides it."""
    import numpy as np
    import pandas as pd

    from scalelaw.analysis import gadre
    from scalelaw.result import load_fit

    rng = np.random.default_rng(0)
    N = np.repeat([1e7, 8e7, 1.5e8, 4e8], 3)
    D = N * np.tile([5.0, 20.0, 80.0], 4)
    lp = load_fit("gadre-2024-rpj", law="overtrain").params
    from scalelaw.law import get_law

    df = pd.DataFrame({"N": N, "D": D})
    df["loss"] = get_law("overtrain").evaluate({"N": N, "D": D}, lp) * np.exp(rng.normal(0, 0.004, len(N)))
    loss = gadre.fit_loss(df, boot=20, validation="c4_val")
    lpath = tmp_path / "loss.json"
    loss.save(lpath)
    args = ["predict", "--chain", f"{lpath},gadre-2024-rpj-err17", "--at", "N=1e9", "--at", "D=2e10"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "warning: the error fit carries no parameter uncertainty" in r.stderr
    assert "UserWarning" not in r.stderr and ".py:" not in r.stderr
    r = CliRunner().invoke(main, ["-q"] + args)
    assert r.exit_code == 0 and "warning" not in r.stderr


@pytest.mark.parametrize("args, words", [
    (["mixture", "fit", "x.csv", "--target", "y", "--model", "xgboost"], ["'--model'", "xgboost", "scalelaw mixture fit --help"]),
    (["fitt"], ["No such command 'fitt'", "Did you mean 'fit'"]),
    (["fit"], ["Missing argument 'LAW'", "scalelaw fit --help"]),
    (["predict", "x.json", "--level", "2"], ["--level", "scalelaw predict --help"]),
])
def test_usage_errors_are_one_line(args, words):
    r = CliRunner().invoke(main, args, prog_name="scalelaw")
    assert r.exit_code == 2
    out = r.stderr.strip()
    assert len(out.splitlines()) == 1 and out.startswith("error: ") and "Usage:" not in r.output
    for w in words:
        assert w in out


def test_output_piped_into_head_is_not_an_error():
    """`scalelaw laws | head -1`: the closed pipe ended in 'internal error: BrokenPipeError', exit 3."""
    import subprocess
    import sys

    r = subprocess.run(f"{sys.executable} -m scalelaw laws | head -1; exit ${{PIPESTATUS[0]}}", shell=True,
                       executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1 and r.stderr == ""


def test_laws_text_shows_options_and_target_range():
    r = CliRunner().invoke(main, ["laws", "lr_opt"])
    assert r.exit_code == 0 and "--option: select" in r.stdout
    r = CliRunner().invoke(main, ["laws", "downstream_exp"])
    assert r.exit_code == 0 and "lies in [0, 1]" in r.stdout
    r = CliRunner().invoke(main, ["laws", "chinchilla"])
    assert "--option" not in r.stdout and "lies in" not in r.stdout


def test_text_tables_show_missing_values_as_dash():
    """Nulls of the JSON (no interval, no band, no extrapolation for published constants) read '-', not NaN."""
    res = run("predict", "gadre-2024-rpj", "--at", "N=1.4e9", "--at", "D=9.2e11")
    lines = res.stdout.splitlines()
    assert "NaN" not in res.stdout and "None" not in res.stdout and "nan" not in res.stdout
    cells = dict(zip(lines[0].split(), lines[1].split()))
    assert cells["mean"] == "2.5248"
    assert all(cells[k] == "-" for k in ("lower", "upper", "pred_lower", "pred_upper", "extrapolation"))
    res = run("optimum", "epoch-2024", "--compute", "5.76e23")
    assert "NaN" not in res.stdout and "None" not in res.stdout and "N_opt=" in res.stdout


# the verbs defined in scalelaw/cli/fitting.py, hparams.py and plan.py
OWN_VERBS = [("laws",), ("fit",), ("predict",), ("optimum",), ("backtest",), ("check",), ("hparams",),
             ("sweep", "cells"), ("sweep", "loco"), ("sweep", "plot"), ("sweep", "cellboot"), ("plan",), ("report",)]


def test_every_option_of_these_verbs_says_what_it_does():
    import click

    for path in OWN_VERBS:
        cmd = main
        for p in path:
            cmd = cmd.commands[p]
        for opt in cmd.params:
            # --where comes from cli/common.py; a --title is free text
            if isinstance(opt, click.Option) and opt.name not in ("help", "where", "title"):
                assert opt.help, f"scalelaw {' '.join(path)} {opt.opts[0]} has no help text"
                # an option that is not free text names what it takes (FIT, LAW, COL...), not TEXT
                assert "TEXT" not in (opt.make_metavar(click.Context(cmd)) if opt.metavar is None and not opt.is_flag
                                      and opt.type is click.STRING else ""), f"{path} {opt.opts[0]}: metavar TEXT"


def test_help_says_how_repeated_options_and_missing_values_behave():
    assert "repeat" in run("optimum", "--help").output
    out = " ".join(run("predict", "--help").output.split())
    assert "'-'" in out and "null" in out
    out = " ".join(run("sweep", "cells", "--help").output.split())
    assert "within this relative gap of the cell's best" in out.split("--bowl-tol")[1]
    out = " ".join(run("plan", "--help").output.split())
    assert "published name" in out.split("--lr FIT")[1].split("--bs")[0]
    assert "exactly one of --compute and --target-loss" in out


def test_loss_law_on_a_sweep_warns_and_best_per_cell_keeps_the_best(tmp_path):
    """Issue 12.5: several runs per (N, D) that differ in lr are a sweep; a loss law fitted on all
    of them warns with the option, and --best-per-cell fits each cell's lowest-loss run."""
    import numpy as np
    import pandas as pd

    base = pd.read_csv(EXAMPLE)
    rows = []
    for _, r in base.iterrows():
        for k, lr in enumerate((1e-4, 3e-4, 1e-3)):
            rows.append({**r.to_dict(), "run": f"{r['run']}-lr{k}", "lr": lr, "loss": r["loss"] * (1 + 0.02 * (k != 1))})
    p = tmp_path / "sweep.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    r = CliRunner().invoke(main, ["fit", "chinchilla", str(p), "--json"])
    assert r.exit_code == 0, r.output
    assert "differ in lr" in r.stderr and "--best-per-cell" in r.stderr
    r2 = CliRunner().invoke(main, ["fit", "chinchilla", str(p), "--best-per-cell", "--json"])
    assert r2.exit_code == 0, r2.output
    assert "differ in lr" not in r2.stderr
    d = json.loads(r2.stdout)
    assert d["data"]["rows"]["fitted"] == len(base) and "best (lowest-loss) run" in d["data"]["rows"]["prepare"]
    ref = json.loads(run("fit", "chinchilla", EXAMPLE, "--json").stdout)
    for k in ("alpha", "beta"):
        assert d["params"][k] == pytest.approx(ref["params"][k], rel=1e-3)
    msg = one_line_error(run("fit", "lr_opt", str(p), "--best-per-cell", ok=False))
    assert "--best-per-cell" in msg
