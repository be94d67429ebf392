"""lm-evaluation-harness results (scalelaw.io.lmeval): the Pythia layout, the current
results.json layout, and one-line errors for bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from scalelaw import datasets
from scalelaw.cli.app import main
from scalelaw.errors import ScalelawError
from scalelaw.io import detect_format, load_table
from scalelaw.io.lmeval import PYTHIA_PARAMS, read_lmeval

PYTHIA_EVALS = "github/EleutherAI/pythia/a19eecb807ec2c79a39ebf18108816e6ffffc1d5/evals/pythia-v1"


@pytest.mark.public_data
def test_pythia_registry_rows_sizes_tokens_and_scores(mirror):
    df = datasets.load("pythia-deduped")
    assert len(df) == 216 and df["run"].nunique() == 8
    assert set(df.groupby("run").size()) == {27}
    r = df[(df["run"] == "pythia-160m-deduped") & (df["step"] == 143000)].iloc[0]
    assert r["N"] == PYTHIA_PARAMS["160m"][0] == 162_322_944 and r["N_nonembed"] == 85_056_000
    assert r["D"] == 143000 * 2_097_152 == 299_892_736_000
    raw = json.loads((mirror / PYTHIA_EVALS / "pythia-160m-deduped/zero-shot/160m-deduped_step143000.json").read_text())
    assert r["score_lambada_openai"] == raw["results"]["lambada_openai"]["acc"]
    assert r["stderr_lambada_openai"] == raw["results"]["lambada_openai"]["acc_stderr"]
    assert r["score_hendrycksTest_anatomy"] == raw["results"]["hendrycksTest-anatomy"]["acc"]
    # tasks without an accuracy (CrowS-Pairs reports pct_stereotype) are left out
    assert not any(c.startswith("score_crows") for c in df.columns)
    assert df.attrs["tasks"]["hendrycksTest_anatomy"] == "hendrycksTest-anatomy"
    std = datasets.load("pythia")
    assert sorted(std["run"].unique()) == sorted(f"pythia-{s}" for s in PYTHIA_PARAMS if s != "1b")


def _current(path, acc, step=None, stderr=0.01, model="EleutherAI/pythia-160m"):
    rev = f",revision=step{step}" if step is not None else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "results": {"arc_easy": {"alias": "arc_easy", "acc,none": acc, "acc_stderr,none": stderr,
                                 "acc_norm,none": acc + 0.01 if isinstance(acc, float) else acc,
                                 "acc_norm_stderr,none": 0.01},
                    "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.02}},
        "configs": {"arc_easy": {}}, "versions": {"arc_easy": 1.0}, "n-shot": {"arc_easy": 0},
        "config": {"model": "hf", "model_args": f"pretrained={model}{rev}", "batch_size": 8}}))


def test_current_results_json_layout(tmp_path):
    run = tmp_path / "out" / "my-model"
    for i, step in enumerate((1000, 2000)):
        _current(run / f"results_2024-0{i + 1}-01T00-00-00.json", 0.3 + 0.1 * i, step, stderr="N/A" if i else 0.02)
    (run / "config.json").write_text(json.dumps({"train_batch_size": 512, "seq_length": 1024}))
    assert detect_format(tmp_path / "out") == "lmeval"
    assert detect_format(run / "results_2024-01-01T00-00-00.json") == "lmeval"
    with pytest.warns(UserWarning, match="parameter count unknown for run"):
        df = load_table(tmp_path / "out")
    assert df["run"].tolist() == ["my-model", "my-model"] and df["step"].tolist() == [1000, 2000]
    assert df["D"].tolist() == [1000 * 512 * 1024, 2000 * 512 * 1024]
    assert df["score_arc_easy"].tolist() == pytest.approx([0.3, 0.4])
    assert df["stderr_arc_easy"].iloc[0] == 0.02 and np.isnan(df["stderr_arc_easy"].iloc[1])
    assert "score_gsm8k" not in df.columns  # no accuracy reported
    norm = read_lmeval(tmp_path / "out", metric="acc_norm", params={"my-model": 1.6e8}, tokens_per_step=1e6)
    assert norm["score_arc_easy"].tolist() == pytest.approx([0.31, 0.41])
    assert norm["N"].tolist() == [1.6e8, 1.6e8] and norm["D"].tolist() == [1e9, 2e9]


@pytest.mark.parametrize("write, msg", [
    (lambda p: p.write_text('{"versions": {}, "results": {"arc_easy": {"acc": 0.3'), r"line 1: not valid JSON"),
    (lambda p: _current(p, 0.3), r"no checkpoint step"),
    (lambda p: _current(p, 30.0, 100), r"'acc,none'\] is 30; a acc must lie in \[0, 1\]"),
    (lambda p: _current(p, "high", 100), r"'acc,none'\] is 'high', not a number"),
])
def test_bad_file_is_one_line_naming_it(tmp_path, write, msg):
    f = tmp_path / "m" / "results.json"
    f.parent.mkdir()
    write(f)
    with pytest.raises(ScalelawError, match=msg) as err:
        read_lmeval(tmp_path, tokens_per_step=1e6, params={"m": 1e8})
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_duplicate_checkpoint_and_cli_error(tmp_path):
    _current(tmp_path / "m" / "a_step100.json", 0.3)
    _current(tmp_path / "m" / "b_step100.json", 0.4)
    with pytest.raises(ScalelawError, match=r"run 'm' step 100 is also in .*a_step100.json"):
        read_lmeval(tmp_path, tokens_per_step=1e6, params={"m": 1e8})
    r = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and r.output.startswith("error: ")


def test_cli_reads_harness_results_with_sizes_and_tokens_given(tmp_path):
    for run in ("small", "big"):
        for step, acc in ((1000, 0.3), (2000, 0.5)):
            _current(tmp_path / run / f"results_{step}.json", acc, step)
    r = CliRunner().invoke(main, ["-q", "trajectory", "emergence", str(tmp_path), "--json"])
    assert r.exit_code == 2 and "lacks column(s) N, D" in r.output
    assert "give model sizes with --params RUN=N; give D with --tokens-per-step" in r.output
    r = CliRunner().invoke(main, ["-q", "trajectory", "emergence", str(tmp_path), "--params", "small=1e8",
                                  "--tokens-per-step", "1e6", "--json"])
    assert r.exit_code == 2 and "parameter count N unknown for run(s) big; give it (--params big=<N>" in r.output
    r = CliRunner().invoke(main, ["-q", "trajectory", "emergence", str(tmp_path), "--params", "small=1e8",
                                  "--params", "big=4e8", "--tokens-per-step", "1e6", "--json"])
    assert r.exit_code == 0, r.output
    # arc_easy leaves chance (0.25) at step 1000: C = 6 N D with D = 1000 x 1e6
    assert json.loads(r.output)["arc_easy"] == {"small": 6 * 1e8 * 1e9, "big": 6 * 4e8 * 1e9}
