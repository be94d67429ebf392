"""CLI: data list/info/fetch, ingest, inspect; bad input gives exit code 2 and one line."""
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from scalelaw.cli import main


def run(*args):
    r = CliRunner().invoke(main, list(map(str, args)))
    return r


def assert_one_line_error(r):
    assert r.exit_code == 2, r.output
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output


def test_data_list_and_info(mirror):
    r = run("data", "list", "--json")
    assert r.exit_code == 0
    names = [d["name"] for d in json.loads(r.output)]
    assert "gadre-overtrain" in names and "release-dates" in names
    r = run("data", "info", "chinchilla-epoch", "--json")
    d = json.loads(r.output)
    assert d["commit"] == "92258837425e1b5f2851d624287f0120583a3d0e" and d["n_files"] == 1
    text = run("data", "info", "chinchilla-epoch").output
    assert "Besiroglu" in text
    # one file: the sha256 shown is the file's own (what sha256sum prints), not a combined hash
    assert "sha256:   " + d["files"]["data/svg_extracted_data.csv"] in text
    assert "combined over the files" in run("data", "info", "gadre-overtrain").output
    lines = run("data", "list").output.splitlines()
    assert len(lines) == len(names)
    desc_at = {ln.index(ln.split("  ")[-1].strip()) for ln in lines}  # descriptions start in one column
    assert len(desc_at) == 1 and all(len(ln) < 140 for ln in lines)
    assert not any(ln.rstrip().endswith(("the", "Pile")) for ln in lines)  # cut at a word, with ' ...'
    r = run("data", "fetch", "regmix-1b-test")
    assert r.exit_code == 0 and "2 file(s) verified" in r.output


def test_data_unknown_name():
    assert_one_line_error(run("data", "info", "nope"))
    assert_one_line_error(run("data", "fetch", "nope"))


def test_ingest_and_inspect(tmp_path, fixtures):
    out = tmp_path / "runs.parquet"
    r = run("ingest", fixtures / "megatron_gpt_125m.log", fixtures / "nanogpt_shakespeare.log", "-o", out,
            "--reduce", "final", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["rows"] == 2 and s["output"] == str(out)
    df = pd.read_parquet(out)
    assert sorted(df["run"]) == ["megatron_gpt_125m", "nanogpt_shakespeare"]
    assert_one_line_error(run("ingest", fixtures / "megatron_gpt_125m.log", "-o", out))  # exists, no --force
    assert run("ingest", fixtures / "megatron_gpt_125m.log", "-o", out, "--force").exit_code == 0
    r = run("inspect", out, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["rows"] == 4
    assert "D" in run("inspect", out).output


def test_ingest_map_units_csv(tmp_path):
    src = tmp_path / "mine.csv"
    src.write_text("model,size_b,toks,final\nm1,0.1,2,3.0\nm2,1.0,20,2.5\n")
    out = tmp_path / "o.csv"
    r = run("ingest", src, "-o", out, "--map", "N=size_b", "--map", "D=toks", "--map", "loss=final",
            "--units", "N=B", "--units", "D=B")
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert df["N"].tolist() == [1e8, 1e9] and df["C"].tolist() == pytest.approx([1.2e18, 1.2e20])
    assert_one_line_error(run("ingest", src, "-o", tmp_path / "p.csv", "--map", "N=size_b"))  # billions undeclared
    assert_one_line_error(run("ingest", src, "-o", tmp_path / "p.csv", "--map", "N=nope"))
    assert_one_line_error(run("ingest", src, "-o", tmp_path / "p.xlsx"))
    assert_one_line_error(run("ingest", src, "-o", tmp_path / "p.csv", "--units", "N=zillions"))


@pytest.mark.parametrize("content", ["", "N,D,loss\n1e8,1e9,-3\n", "N,D,loss\n1e8,1e9\n1,2,3,4\n",
                                     "run,N,D,loss\na,1e8,1e9,3\na,1e8,1e9,3\n"])
def test_bad_tables_one_line(tmp_path, content):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    assert_one_line_error(run("inspect", p))
    assert_one_line_error(run("ingest", p, "-o", tmp_path / "o.parquet"))


def test_inspect_missing_file():
    assert_one_line_error(run("inspect", "no/such/file.csv"))


def test_ingest_hf_folder_of_evaluated_and_unevaluated_runs(tmp_path):
    logs = tmp_path / "logs"
    for name, key in (("a", "eval_loss"), ("b", "loss")):
        (logs / name).mkdir(parents=True)
        (logs / name / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": 10, key: 3.0}]}))
    r = run("ingest", logs, "-o", tmp_path / "o.csv", "--reduce", "final")
    assert_one_line_error(r)
    assert "run 'a' logged eval_loss and run 'b' only a training loss" in r.output and "--map loss=" in r.output
    r = run("ingest", logs, "-o", tmp_path / "o.csv", "--reduce", "final", "--map", "loss=loss_eval")
    assert_one_line_error(r)
    assert "run 'b' has no value in the loss column (loss_eval)" in r.output


def test_ingest_several_inputs_whose_losses_differ(tmp_path):
    # each input was loaded on its own: an evaluated run's eval_loss and another's training loss
    # were written into one 'loss' column
    for name, hist in (("a", [{"step": 10, "loss": 3.5}, {"step": 10, "eval_loss": 3.0}]),
                       ("b", [{"step": 10, "loss": 3.2}])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trainer_state.json").write_text(json.dumps({"log_history": hist}))
    a, b = tmp_path / "a" / "trainer_state.json", tmp_path / "b" / "trainer_state.json"
    r = run("ingest", a, b, "-o", tmp_path / "o.csv", "--reduce", "final")
    assert_one_line_error(r)
    assert f"eval_loss in {a}; the training loss in {b}" in r.output and "--map loss=loss_train" in r.output
    assert not (tmp_path / "o.csv").exists()
    r = run("ingest", a, b, "-o", tmp_path / "o.csv", "--reduce", "final", "--map", "loss=loss_train")
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "o.csv").set_index("run")["loss"].to_dict() == {"a": 3.5, "b": 3.2}


def test_ingest_per_run_tables_sharing_a_run_id(tmp_path):
    # two per-run tables with a run id in common were concatenated; the written table then failed
    # to load again ('run appears more than once')
    a, b = tmp_path / "sweep1.csv", tmp_path / "sweep2.csv"
    a.write_text("run,N,D,loss\nr1,1e8,2e9,3.0\nr2,2e8,4e9,2.8\n")
    b.write_text("run,N,D,loss\nr2,4e8,8e9,2.6\nr3,8e8,1.6e10,2.4\n")
    out = tmp_path / "o.parquet"
    r = run("ingest", a, b, "-o", out)
    assert_one_line_error(r)
    assert f"run 'r2' is in both {a} and {b}" in r.output and "rename" in r.output
    assert not out.exists()
    # per-step logs with ids of their own: the same, with --reduce too
    for p, loss in ((a, 3.0), (b, 2.0)):
        p.write_text(f"run,step,loss\nr1,1,{loss + 1}\nr1,2,{loss}\n")
    assert_one_line_error(run("ingest", a, b, "-o", out, "--reduce", "final"))
    assert_one_line_error(run("ingest", a, b, "-o", out))
    # per-step logs of different things of one run (e.g. W&B panels, one metric each) are its rows, as in a folder
    b.write_text("run,step,lr\nr1,1,1e-3\nr1,2,5e-4\n")
    assert run("ingest", a, b, "-o", out).exit_code == 0 and set(pd.read_parquet(out)["run"]) == {"r1"}
    out.unlink()
    # distinct ids: one table that loads again
    b.write_text("run,N,D,loss\nr3,8e8,1.6e10,2.4\n")
    a.write_text("run,N,D,loss\nr1,1e8,2e9,3.0\n")
    assert run("ingest", a, b, "-o", out).exit_code == 0
    assert run("inspect", out).exit_code == 0


def test_ingest_several_per_step_logs_without_run_ids(tmp_path):
    """Each per-step log file is one run (named after its file), as in a folder: ingesting a list of
    them without --reduce keeps the runs apart, so a later --reduce gives one row per run, not one."""
    import numpy as np

    for i, n in enumerate([0.1, 0.2, 0.4, 0.8]):
        st = np.arange(0, 21) * 100
        pd.DataFrame({"step": st, "N": n, "D": st * 1e6 * n, "loss": 5 - np.log1p(st / 100) / 3 - i * 0.1}).to_csv(
            tmp_path / f"run{i}.csv", index=False)
    logs = [str(tmp_path / f"run{i}.csv") for i in range(4)]
    steps, red = tmp_path / "steps.parquet", tmp_path / "runs.parquet"
    r = CliRunner().invoke(main, ["ingest", *logs, "--units", "N=B", "-o", str(steps)])
    assert r.exit_code == 0, r.output
    assert "84 rows, 4 runs" in r.output
    assert sorted(pd.read_parquet(steps)["run"].unique()) == ["run0", "run1", "run2", "run3"]
    r = CliRunner().invoke(main, ["ingest", str(steps), "--reduce", "final", "-o", str(red)])
    assert r.exit_code == 0, r.output
    out = pd.read_parquet(red).sort_values("run")
    assert out["run"].tolist() == ["run0", "run1", "run2", "run3"]
    assert out["N"].tolist() == pytest.approx([1e8, 2e8, 4e8, 8e8])
    r = CliRunner().invoke(main, ["inspect", logs[0], "--units", "N=B"])
    assert r.exit_code == 0 and "21 rows, 1 run\n" in r.output


def _two_runs_one_file(path, run_col=None):
    """Two runs' per-step logs concatenated in one CSV (steps 0..500 twice), told apart by the
    text column ``model``; with ``run_col`` both runs carry one id there."""
    import numpy as np

    parts = []
    for model, n in (("small", 0.1), ("large", 0.4)):
        st = np.arange(0, 6) * 100
        parts.append(pd.DataFrame({"model": model, "step": st, "N": n, "D": st * 1e6,
                                   "loss": 4 - np.log1p(st / 100) / 3 - n}))
    df = pd.concat(parts, ignore_index=True)
    if run_col:
        df.insert(0, run_col, "exp")
    df.to_csv(path, index=False)
    return path


def test_ingest_refuses_several_runs_in_one_file_without_run_id(tmp_path):
    """Issue 12.6: per-step rows whose steps repeat are several runs: refused with the --map
    run=COLUMN that tells them apart, never reduced into one row (with or without --reduce)."""
    p = _two_runs_one_file(tmp_path / "mixed.csv")
    for extra in (["--reduce", "final"], []):
        r = run("ingest", p, "--units", "N=B", *extra, "-o", tmp_path / "out.parquet")
        assert_one_line_error(r)
        assert "steps repeat" in r.output and "--map run=model" in r.output
        assert not (tmp_path / "out.parquet").exists()
    r = run("ingest", p, "--units", "N=B", "--reduce", "final", "--map", "run=model", "-o", tmp_path / "ok.parquet")
    assert r.exit_code == 0, r.output
    out = pd.read_parquet(tmp_path / "ok.parquet").sort_values("run")
    assert out["run"].tolist() == ["large", "small"] and out["step"].tolist() == [500, 500]


def test_ingest_refuses_a_run_id_whose_steps_repeat(tmp_path, monkeypatch):
    """A run id under which a step is logged twice (several runs sharing the id) is refused the
    same way, by the in-memory reducer and by the streaming one."""
    from scalelaw.io import tabular

    p = _two_runs_one_file(tmp_path / "shared.csv", run_col="run")
    r = run("ingest", p, "--units", "N=B", "--reduce", "final", "-o", tmp_path / "out.parquet")
    assert_one_line_error(r)
    assert "run 'exp' logs a loss more than once at one step" in r.output and "--map run=model" in r.output
    # interleaved by step (each step twice in a row): the streaming reducer hands it over too
    pd.read_csv(p).sort_values("step", kind="stable").to_csv(p, index=False)
    assert tabular.try_stream_reduce(p, "final", units={"N": 1e9}, min_bytes=0) is None
    monkeypatch.setattr(tabular, "STREAM_MIN_BYTES", 0)
    r2 = run("ingest", p, "--units", "N=B", "--reduce", "final", "-o", tmp_path / "out.parquet")
    assert_one_line_error(r2)
    assert "run 'exp' logs a loss more than once at one step" in r2.output


def test_ingest_repeated_steps_without_a_telling_column(tmp_path):
    """No column tells the runs apart: the message says to add a run id column."""
    import numpy as np

    st = np.r_[np.arange(6), np.arange(6)] * 100.0
    pd.DataFrame({"step": st, "N": 1e8, "loss": 4 - st / 1000}).to_csv(tmp_path / "x.csv", index=False)
    r = run("ingest", tmp_path / "x.csv", "--reduce", "final", "-o", tmp_path / "o.parquet")
    assert_one_line_error(r)
    assert "add a column with a run id per row" in r.output


@pytest.mark.parametrize("name", ["current_steps", "global_step", "iteration", "iter", "trainer/global_step"])
def test_step_column_names_seen_in_the_wild(tmp_path, name):
    """Issue 12.6: these step columns are the step: --reduce final picks each run's last one."""
    pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, name: [0, 10, 20] * 2, "N": [1e8] * 3 + [2e8] * 3,
                  "D": [0, 1e7, 2e7] * 2, "loss": [5, 4, 3.5, 5, 3.9, 3.2]}).to_csv(tmp_path / "s.csv", index=False)
    r = run("ingest", tmp_path / "s.csv", "--reduce", "final", "-o", tmp_path / "o.parquet")
    assert r.exit_code == 0, r.output
    out = pd.read_parquet(tmp_path / "o.parquet").sort_values("run")
    assert out["step"].tolist() == [20, 20] and out["loss"].tolist() == [3.5, 3.2]
