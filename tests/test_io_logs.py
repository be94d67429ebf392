"""W&B exports, TensorBoard event files, HF trainer_state.json, Megatron and nanoGPT logs."""
import json
import shutil
import warnings

import pandas as pd
import pytest

from scalelaw.errors import ScalelawError
from scalelaw.io import load_table


# ---- W&B ------------------------------------------------------------------------------------------
def test_wandb_history_with_config(tmp_path):
    run = tmp_path / "run-abc"
    run.mkdir()
    pd.DataFrame({"_step": [0, 100, 200], "_runtime": [1, 2, 3], "train/loss": [5.0, 3.0, 2.5],
                  "val/loss": [None, 3.2, 2.7], "train/learning_rate": [1e-4, 1e-3, 5e-4],
                  "tokens": [0, 1e8, 2e8]}).to_csv(run / "history.csv", index=False)
    (run / "config.json").write_text(json.dumps({"_wandb": {"value": {}}, "n_params": {"value": 1.2e8, "desc": None},
                                                 "seq_len": {"value": 1024}, "optimizer": {"value": "adamw"},
                                                 "warmup_steps": {"value": 100}}))
    df = load_table(tmp_path)
    assert df["run"].unique().tolist() == ["run-abc"]
    assert df["N"].unique().tolist() == [1.2e8] and df["seq_len"].iloc[0] == 1024
    assert df["loss"].iloc[1] == 3.2 and df["loss_train"].iloc[1] == 3.0  # validation loss preferred
    assert df["hp_optimizer"].iloc[0] == "adamw" and "hp_warmup_steps" in df.columns
    fin = load_table(run / "history.csv", reduce="final", required=("N", "D", "loss"))
    assert len(fin) == 1 and fin["loss"].iloc[0] == 2.7 and fin["D"].iloc[0] == 2e8 and fin["lr"].iloc[0] == 1e-3


def test_wandb_history_jsonl(tmp_path):
    p = tmp_path / "history.jsonl"
    p.write_text("\n".join(json.dumps({"_step": s, "loss": 3.0 - s * 0.1, "_timestamp": 1.0}) for s in range(5)))
    df = load_table(p, reduce="min")
    assert df["loss"].iloc[0] == pytest.approx(2.6)


def test_wandb_panel_export(tmp_path):
    p = tmp_path / "panel.csv"
    pd.DataFrame({"Step": [10, 20, 30], "run-a - train/loss": [3.0, 2.5, 2.2], "run-a - train/loss__MIN": [2.9, 2.4, 2.1],
                  "run-a - train/loss__MAX": [3.1, 2.6, 2.3], "run-b - train/loss": [3.5, None, 2.9]}).to_csv(p, index=False)
    df = load_table(p)
    assert sorted(df["run"].unique()) == ["run-a", "run-b"]
    assert not any("__M" in c for c in df.columns)
    fin = load_table(p, reduce="final")
    assert fin.set_index("run")["loss"].to_dict() == {"run-a": 2.2, "run-b": 2.9}


@pytest.mark.parametrize("name,text,match", [
    pytest.param("panel.csv", "Step,run-a - loss\n1,3.0\n2,abc\n", "line 3", id="wandb-panel-bad-value"),
    pytest.param("trainer_state.json", '{"log_history": [{"loss": 3.0}]}', "no 'step'", id="hf-entry-without-step"),
    pytest.param("trainer_state.json", '{"log_history": [', "line 1", id="hf-not-json"),
    # json.loads reads NaN: the entry was silently dropped by the per-step merge
    pytest.param("trainer_state.json", '{"log_history": [{"step": 10, "loss": 3.0}, {"step": NaN, "loss": 2.0}]}',
                 "entry 1 has step nan", id="hf-step-not-finite"),
    pytest.param("x.log", "hello\nworld\n", "not a recognised text log", id="unknown-text-log"),
])
def test_malformed_log_refused(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ScalelawError, match=match):
        load_table(p)


def test_wandb_history_step_must_be_there_and_a_number(tmp_path):
    p = tmp_path / "history.csv"
    p.write_text("_step,loss\n0,3.0\n,2.0\n2,1.5\n")  # the row without _step was dropped by --reduce
    with pytest.raises(ScalelawError, match=r"history.csv line 3: _step is empty"):
        load_table(p, reduce="final")
    p.write_text("iteration_no,loss\n0,3.0\n1,2.0\n")
    with pytest.raises(ScalelawError, match=r"history.csv: a W&B history export needs a '_step' column; columns are: "
                                            r"iteration_no, loss"):
        load_table(p, fmt="wandb-history")
    j = tmp_path / "h.jsonl"
    j.write_text('{"_step": 0, "loss": 3.0}\n{"loss": 2.0}\n')
    with pytest.raises(ScalelawError, match=r"h.jsonl record 2: _step is empty"):
        load_table(j)
    j.write_text('{"step": 0, "loss": 3.0}\n')
    with pytest.raises(ScalelawError, match="needs a '_step' column"):
        load_table(j, fmt="wandb-history")


def test_wandb_history_repeated_step(tmp_path):
    p = tmp_path / "history.csv"
    p.write_text("_step,loss\n0,3.0\n1,2.0\n1,2.5\n")  # --reduce final kept whichever came last
    with pytest.raises(ScalelawError, match=r"history.csv line 4: _step 1 appears more than once"):
        load_table(p, reduce="final")
    # several runs in one export may share steps
    p.write_text("run,_step,loss\na,0,3.0\na,1,2.0\nb,0,3.1\nb,1,2.2\n")
    assert load_table(p, reduce="final").set_index("run")["loss"].to_dict() == {"a": 2.0, "b": 2.2}
    p.write_text("run,_step,loss\na,0,3.0\nb,0,3.1\na,0,2.2\n")
    with pytest.raises(ScalelawError, match=r"line 4: _step 0 appears more than once for run 'a'"):
        load_table(p)


def test_wandb_history_rows_without_a_run_id_at_one_step(tmp_path):
    # rows without a run id sharing a _step were reported as "_step 1 appears more than once for
    # run nan"; the missing run id is what is wrong, and it is named as elsewhere (reduce_runs)
    p = tmp_path / "history.csv"
    msg = (r"history.csv: 2 rows have no run id \(the first is row 2 of the table\), so reducing per run "
           r"would drop them; fill in the run column or remove those rows")
    cases = {"run,_step,loss\na,0,3.0\n,1,2.0\n,1,2.5\n": ({}, {"reduce": "final"}),  # at one step
             "run,_step,loss\na,0,3.0\n,1,2.0\na,0,2.5\n,1,2.5\n": ({},),  # beside a repeated step of a run
             "run,_step,loss\na,0,3.0\n,1,2.0\n,2,2.5\n": ({"reduce": "final"},)}  # at two steps: as before
    for text, kws in cases.items():
        p.write_text(text)
        for kw in kws:
            with pytest.raises(ScalelawError, match=msg) as e:
                load_table(p, **kw)
            assert "nan" not in str(e.value)
    j = tmp_path / "h.jsonl"
    j.write_text('{"run": "a", "_step": 0, "loss": 3.0}\n{"_step": 1, "loss": 2.0}\n{"_step": 1, "loss": 2.5}\n')
    with pytest.raises(ScalelawError, match=r"h.jsonl: 2 rows have no run id \(the first is row 2 of the table\)"):
        load_table(j)


def test_wandb_history_sidecars_are_only_config_and_summary_files(tmp_path):
    p = tmp_path / "history.csv"
    p.write_text("_step,loss\n0,3.0\n1,2.0\n")
    (tmp_path / "_").write_text("scratch, not JSON")  # used to be read as the run's config
    assert load_table(p, reduce="final")["loss"].tolist() == [2.0]
    (tmp_path / "history_config.json").write_text('{"n_params": {"value": 1e8}}')
    assert load_table(p, reduce="final")["N"].tolist() == [1e8]


def test_folder_skips_wandb_sidecars_named_after_their_history(tmp_path):
    # <stem>_config.json / <stem>.config.json beside a history export were read as tables of their
    # own ("JSON is not a table"), so a folder holding such an export could not be loaded
    (tmp_path / "run-a.csv").write_text("_step,loss\n0,3.0\n1,2.0\n")
    (tmp_path / "run-a_config.json").write_text('{"n_params": {"value": 1e8}, "hyperparameters": {"value": 1}}')
    (tmp_path / "run-a_summary.json").write_text('{"tokens": 2e9}')
    (tmp_path / "run-b.jsonl").write_text('{"_step": 0, "loss": 3.5}\n{"_step": 1, "loss": 2.5}\n')
    (tmp_path / "run-b.config.json").write_text('{"n_params": {"value": 2e8}}')
    (tmp_path / "run-b.summary.json").write_text('{"tokens": 4e9}')
    df = load_table(tmp_path, reduce="final", required=("N", "D", "loss"))
    assert df.set_index("run")[["N", "D", "loss"]].to_dict("index") == {
        "run-a": {"N": 1e8, "D": 2e9, "loss": 2.0}, "run-b": {"N": 2e8, "D": 4e9, "loss": 2.5}}
    # a JSON table whose name merely ends in _config (no history beside it) is still read
    (tmp_path / "sweep_config.json").write_text(json.dumps([{"run": "c", "step": 1, "loss": 2.2}]))
    assert "c" in load_table(tmp_path)["run"].tolist()


def test_wandb_panel_step_problems(tmp_path):
    p = tmp_path / "panel.csv"
    p.write_text("Step,run-a - loss\n1,3.0\nx,2.0\n")
    with pytest.raises(ScalelawError, match=r"panel.csv line 3: Step is 'x', not a number"):
        load_table(p)
    # one step twice with two different losses: the last one used to win silently
    p.write_text("Step,run-a - loss,run-b - loss\n1,3.0,3.3\n2,2.0,\n2,2.5,2.4\n")
    with pytest.raises(ScalelawError, match=r"column 'run-a - loss' holds 2 different values at Step 2 \(2.0, 2.5\)"):
        load_table(p, reduce="final")
    p.write_text("Step,run-a - loss\n1,3.0\n1,3.0\n2,2.0\n")  # an exact repeat is harmless
    assert load_table(p)["loss"].tolist() == [3.0, 2.0]
    p.write_text("Step,run-a - loss\n")
    with pytest.raises(ScalelawError, match=r"panel.csv: the '<run> - <metric>' columns hold no values"):
        load_table(p)


def test_reduce_refuses_a_run_without_the_chosen_loss(tmp_path):
    # run a logs train/loss, run b val_loss: val_loss became the loss and run a silently vanished
    p = tmp_path / "panel.csv"
    p.write_text("Step,a - train/loss,b - val_loss\n1,3.0,3.5\n2,2.5,3.0\n")
    # ... naming the column as the file does (train/loss, which --map takes), not as the table (loss_train)
    with pytest.raises(ScalelawError, match=r"panel.csv: run 'a' has no value in the loss column \(val_loss\).*"
                                            r"it logs train/loss: .*--map loss=") as e:
        load_table(p, reduce="final")
    assert "\n" not in str(e.value)
    p.write_text("Step,a - train/loss,b - train/loss\n1,3.0,3.5\n2,2.5,3.0\n")  # one loss column: fine
    assert load_table(p, reduce="final")["run"].tolist() == ["a", "b"]


# ---- TensorBoard ------------------------------------------------------------------------------------
def write_events(folder, points, tensor_tag=None):
    from tensorboardX import SummaryWriter
    from tensorboardX.proto import summary_pb2, tensor_pb2, tensor_shape_pb2

    w = SummaryWriter(str(folder))
    for step, loss in points:
        w.add_scalar("train/loss", loss, step)
        if tensor_tag:
            t = tensor_pb2.TensorProto(dtype=2, double_val=[1e-3 / (step + 1)],
                                       tensor_shape=tensor_shape_pb2.TensorShapeProto())
            w._get_file_writer().add_summary(summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tensor_tag, tensor=t)]), step)
    w.close()


def test_tensorboard_every_point_and_tensor_scalars(tmp_path):
    pts = [(s, 4.0 - 0.001 * s) for s in range(0, 3000, 3)]  # 1000 points: no reservoir sampling
    write_events(tmp_path / "a", pts, tensor_tag="lr")
    write_events(tmp_path / "b", pts[:10])
    df = load_table(tmp_path)
    a = df[df["run"] == "a"]
    assert len(a) == 1000 and a["loss"].tolist() == pytest.approx([p[1] for p in pts], rel=1e-6)
    assert a["lr"].iloc[1] == pytest.approx(1e-3 / 4)
    assert (df["run"] == "b").sum() == 10
    fin = load_table(tmp_path, reduce="final")
    assert fin.set_index("run")["step"].to_dict() == {"a": 2997, "b": 27}


def test_tensorboard_single_file_and_truncated_tail(tmp_path):
    write_events(tmp_path / "r", [(1, 3.0), (2, 2.0)])
    f = next((tmp_path / "r").glob("*tfevents*"))
    df = load_table(f)
    assert df["loss"].tolist() == [3.0, 2.0] and df["run"].iloc[0] == "r"
    data = f.read_bytes()
    cut = tmp_path / "cut" / f.name
    cut.parent.mkdir()
    cut.write_bytes(data[:-7])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        df = load_table(cut)
    assert df["loss"].tolist() == [3.0] and any("truncated" in str(x.message) for x in w)


def test_tensorboard_corrupt_record(tmp_path):
    import struct

    p = tmp_path / "events.out.tfevents.1.host"
    payload = b"\xff\xff\xff\xff"
    p.write_bytes(struct.pack("<Q", len(payload)) + b"\0" * 4 + payload + b"\0" * 4)
    with pytest.raises(ScalelawError, match="corrupt"):
        load_table(p)


# ---- HF Trainer ---------------------------------------------------------------------------------------
def test_hf_trainer_state(tmp_path, fixtures):
    d = tmp_path / "my-run" / "checkpoint-40"
    d.mkdir(parents=True)
    shutil.copy(fixtures / "trainer_state.json", d / "trainer_state.json")
    df = load_table(d / "trainer_state.json")
    assert df["run"].iloc[0] == "my-run" and df["step"].tolist() == [10, 20, 30, 40]
    assert df["loss"].tolist()[1] == 3.6 and df["loss_train"].tolist() == [4.5, 3.9, 3.4, 3.2]
    fin = load_table(d / "trainer_state.json", reduce="final")
    assert fin["loss"].iloc[0] == 3.1 and fin["lr"].iloc[0] == 5e-5


def test_is_number_is_one_shared_check():
    import numpy as np

    from scalelaw.io import hf, openlm, wandb
    from scalelaw.io.jsonfile import is_number

    assert all(is_number(v) for v in (0, 3, 1.5, float("nan"), np.int64(2), np.float32(0.5)))
    assert not any(is_number(v) for v in (True, False, np.bool_(True), "1", None, [1], {"value": 1}))
    # the three JSON readers use it rather than each a copy of their own
    assert not hasattr(hf, "_is_number") and not hasattr(wandb, "_is_num")
    assert hf.is_number is wandb.is_number is openlm.is_number is is_number


def _trainer_state(tmp_path, rows):
    p = tmp_path / "trainer_state.json"
    p.write_text(json.dumps({"log_history": rows}))
    return p


def test_hf_trainer_state_text_loss_is_an_error_not_a_dropped_step(tmp_path):
    # the step-20 loss used to be dropped, so --reduce final silently gave step 10's loss
    p = _trainer_state(tmp_path, [{"step": 10, "loss": 3.0}, {"step": 20, "loss": "2.5"}])
    with pytest.raises(ScalelawError, match=r"entry 1 .*'loss'.*'2\.5'.*not a number") as e:
        load_table(p, reduce="final")
    assert "trainer_state.json" in str(e.value)
    p = _trainer_state(tmp_path, [{"step": 10, "eval_loss": 3.0, "learning_rate": True}])
    with pytest.raises(ScalelawError, match="'learning_rate'"):
        load_table(p)
    # other text fields (e.g. from a callback) are not step metrics and are left out
    p = _trainer_state(tmp_path, [{"step": 10, "loss": 3.0, "note": "warmup done"}])
    assert load_table(p).columns.tolist() == ["run", "step", "loss"]


def test_hf_trainer_state_conflicting_values_at_one_step(tmp_path):
    # two different losses at one step (e.g. a restarted run appended): the last one was kept silently
    p = _trainer_state(tmp_path, [{"step": 10, "loss": 3.0}, {"step": 20, "loss": 2.5}, {"step": 20, "loss": 2.7}])
    with pytest.raises(ScalelawError, match=r"'loss' at step 20.*2\.5.*2\.7"):
        load_table(p)
    # train and eval rows of one step merge, and a repeated identical entry is harmless
    p = _trainer_state(tmp_path, [{"step": 20, "loss": 2.5}, {"step": 20, "eval_loss": 2.6}, {"step": 20, "loss": 2.5}])
    df = load_table(p)
    assert df[["step", "loss", "loss_train"]].values.tolist() == [[20, 2.6, 2.5]]


def _hf_state(path, last_step, extra=()):
    path.mkdir(parents=True, exist_ok=True)
    hist = [{"step": s, "loss": 5.0 - s / 100, "learning_rate": 1e-4} for s in range(10, last_step + 1, 10)]
    (path / "trainer_state.json").write_text(json.dumps({"global_step": last_step, "log_history": hist + list(extra)}))


def test_hf_run_folder_reads_only_its_latest_trainer_state(tmp_path):
    # every checkpoint's trainer_state holds the history up to it; all of them were concatenated into
    # one run with steps 10, 20, 10, 20, 30, ..., so --reduce smooth counted the repeats twice
    _hf_state(tmp_path / "a" / "checkpoint-20", 20)
    _hf_state(tmp_path / "a" / "checkpoint-100", 100)  # the latest by number, not by name
    _hf_state(tmp_path / "a" / "checkpoint-40", 40)
    # the top-level trainer_state.json written at the end of training wins over its checkpoints ...
    _hf_state(tmp_path / "b" / "checkpoint-30", 30)
    _hf_state(tmp_path / "b", 40, extra=[{"step": 40, "train_loss": 4.7}])
    # ... unless it is older than one of them (a resumed run that has not finished)
    _hf_state(tmp_path / "c", 20)
    _hf_state(tmp_path / "c" / "checkpoint-50", 50)
    df = load_table(tmp_path)
    steps = df.groupby("run")["step"].apply(list).to_dict()
    assert steps == {"a": list(range(10, 101, 10)), "b": [10, 20, 30, 40], "c": [10, 20, 30, 40, 50]}
    assert df.loc[df["run"] == "b", "loss_train_avg"].dropna().tolist() == [4.7]
    sm = load_table(tmp_path, reduce="smooth", window=4).set_index("run")["loss"]
    assert sm["a"] == pytest.approx(5.0 - 0.85)  # mean of steps 70..100, each once


def _hf_output_folder(run):
    """What Trainer.save_model / save_state / save_metrics leave in an output folder, and a checkpoint."""
    _hf_state(run / "checkpoint-20", 20)
    _hf_state(run, 30)
    side = {"all_results.json": {"epoch": 3.0, "eval_loss": 4.6, "train_loss": 4.8, "train_runtime": 12.5},
            "train_results.json": {"epoch": 3.0, "train_loss": 4.8}, "eval_results.json": {"eval_loss": 4.6},
            "config.json": {"model_type": "gpt2", "n_layer": 2, "architectures": ["GPT2LMHeadModel"]},
            "generation_config.json": {"bos_token_id": 0, "eos_token_id": 0},
            "tokenizer.json": {"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": []},
            "tokenizer_config.json": {"model_max_length": 1024, "added_tokens_decoder": {}},
            "special_tokens_map.json": {"eos_token": "<|endoftext|>"}}
    for folder in (run, run / "checkpoint-20"):
        for name, obj in side.items():
            (folder / name).write_text(json.dumps(obj))
        (folder / "model.safetensors").write_bytes(b"\0" * 64)
        (folder / "training_args.bin").write_bytes(b"\0" * 16)


def test_hf_output_folder_given_directly(tmp_path):
    # the folder a Trainer wrote, given itself, failed with 'JSON is not a table' (all_results.json
    # and the other side files beside trainer_state.json were read as tables)
    run = tmp_path / "my-run"
    _hf_output_folder(run)
    parent = load_table(tmp_path)
    direct = load_table(run)
    assert direct["run"].unique().tolist() == ["my-run"] and direct["step"].tolist() == [10, 20, 30]
    pd.testing.assert_frame_equal(direct, parent, check_like=True)
    assert load_table(run, reduce="final")["loss"].tolist() == [5.0 - 0.3]
    # a folder with checkpoints only (training still running, no save_state yet) is one too
    (run / "trainer_state.json").unlink()
    assert load_table(run)["step"].tolist() == [10, 20]
    # elsewhere a top-level JSON file is still a table
    (tmp_path / "runs.json").write_text(json.dumps([{"run": "x", "step": 1, "loss": 3.0}]))
    assert set(load_table(tmp_path)["run"]) == {"my-run", "x"}


def _hf_tensorboard(logdir, steps, eval_steps=()):
    """What the Trainer's TensorBoardCallback writes to its logging_dir (by default
    <output_dir>/runs/<date>_<host>/): the arguments and model config as text, then each log()
    call's numbers as scalars at the global step, eval_<key> as eval/<key> and the rest as train/<key>."""
    from tensorboardX import SummaryWriter

    w = SummaryWriter(str(logdir))
    w.add_text("args", json.dumps({"output_dir": "my-run", "learning_rate": 1e-4, "logging_steps": 10}))
    w.add_text("model_config", json.dumps({"model_type": "gpt2", "n_layer": 2}))
    for s in steps:
        for k, v in {"loss": 5.0 - s / 100, "grad_norm": 1.5, "learning_rate": 1e-4, "epoch": s / 10}.items():
            w.add_scalar(f"train/{k}", v, s)
        if s in eval_steps:
            for k, v in {"loss": 5.1 - s / 100, "runtime": 0.5, "samples_per_second": 200.0,
                         "steps_per_second": 25.0, "epoch": s / 10}.items():
                w.add_scalar(f"eval/{k}", v, s)
    for k, v in {"train_runtime": 12.5, "train_samples_per_second": 80.0, "train_steps_per_second": 2.4,
                 "total_flos": 1.2e12, "train_loss": 4.8, "epoch": steps[-1] / 10}.items():
        w.add_scalar(f"train/{k}", v, steps[-1])
    w.close()


def test_hf_run_folder_tensorboard_logs_are_not_a_second_run(tmp_path):
    # the Trainer also logs to TensorBoard, under <output_dir>/runs/<date>_<host>/; those event files
    # were read as a second run 'my-run/runs/May04_...' (or 'runs/May04_...' given the run folder)
    # repeating the history of trainer_state.json
    run = tmp_path / "my-run"
    _hf_output_folder(run)
    parent, direct = load_table(tmp_path), load_table(run)
    _hf_tensorboard(run / "runs" / "May04_10-11-12_gpu-node-3", [10, 20], eval_steps=[20])
    _hf_tensorboard(run / "runs" / "May04_11-30-00_gpu-node-3", [20, 30], eval_steps=[30])  # resumed
    assert len(list(run.glob("runs/*/events.out.tfevents.*"))) == 2
    pd.testing.assert_frame_equal(load_table(tmp_path), parent, check_like=True)
    pd.testing.assert_frame_equal(load_table(run), direct, check_like=True)
    assert load_table(tmp_path, reduce="final")["run"].tolist() == ["my-run"]
    # a run still training has only its checkpoints' trainer_state.json: the same
    (run / "trainer_state.json").unlink()
    for folder in (tmp_path, run):
        df = load_table(folder)
        assert df["run"].unique().tolist() == ["my-run"] and df["step"].tolist() == [10, 20]
    # without any trainer_state.json the event files are the run's only log, and are read as any
    # event file (a run named after its folder: a folder is not known to be a Trainer's without it)
    shutil.rmtree(run / "checkpoint-20")
    shutil.rmtree(run / "runs" / "May04_11-30-00_gpu-node-3")
    fin = load_table(tmp_path, reduce="final")
    assert fin["run"].tolist() == ["May04_10-11-12_gpu-node-3"] and fin["step"].tolist() == [20]
    assert fin["loss"].tolist() == pytest.approx([5.1 - 0.2])  # eval/loss


def test_hf_runs_with_and_without_eval_loss_are_not_mixed(tmp_path):
    # the reader takes eval_loss as the loss of a run that evaluated and the training loss otherwise:
    # a folder of both put two different losses under one 'loss' column without a word
    for run, ev in (("a", True), ("b", False), ("c", False)):
        hist = [{"step": s, "loss": 5.0 - s / 100} for s in (10, 20)]
        hist += [{"step": s, "eval_loss": 6.0 - s / 100} for s in (10, 20)] if ev else []
        (tmp_path / run).mkdir()
        (tmp_path / run / "trainer_state.json").write_text(json.dumps({"log_history": hist}))
    msg = (r"Hugging Face run 'a' logged eval_loss and runs 'b', 'c' only a training loss, so one loss column "
           r"would mix evaluation and training losses; choose one for every run: --map loss=loss_eval or "
           r"--map loss=loss_train")
    for kw in ({}, {"reduce": "final"}):
        with pytest.raises(ScalelawError, match=msg):
            load_table(tmp_path, **kw)
    train = load_table(tmp_path, mapping={"loss": "loss_train"}, reduce="final")
    assert train["loss"].tolist() == [4.8, 4.8, 4.8]
    with pytest.raises(ScalelawError, match=r"runs 'b', 'c' have no value in the loss column \(loss_eval\)"):
        load_table(tmp_path, mapping={"loss": "loss_eval"}, reduce="final")
    # the raw table holds both under their own names, not one mixed 'loss'
    from scalelaw.io import read_raw

    raw = read_raw(tmp_path)
    assert "loss" not in raw.columns and {"loss_eval", "loss_train"} <= set(raw.columns)
    # runs of one kind keep the reader's choice
    shutil.rmtree(tmp_path / "a")
    assert load_table(tmp_path, reduce="final")["loss"].tolist() == [4.8, 4.8]


def test_several_inputs_whose_losses_differ_are_not_mixed(tmp_path, monkeypatch):
    # several inputs were each loaded on their own and concatenated: an evaluated HF run's loss
    # (eval_loss) and an unevaluated one's (training loss) ended up in one 'loss' column, which the
    # same runs in one folder refuse
    from scalelaw.io import load_tables, tabular

    for run, ev in (("a", True), ("b", False), ("c", False)):
        hist = [{"step": s, "loss": 5.0 - s / 100} for s in (10, 20)]
        hist += [{"step": s, "eval_loss": 6.0 - s / 100} for s in (10, 20)] if ev else []
        (tmp_path / run).mkdir()
        (tmp_path / run / "trainer_state.json").write_text(json.dumps({"log_history": hist}))
    a, b, c = (str(tmp_path / r / "trainer_state.json") for r in "abc")
    msg = (r"^the inputs' losses differ: eval_loss in \S*a/trainer_state.json; the training loss in "
           r"\S*b/trainer_state.json, \S*c/trainer_state.json; one loss column would mix them: choose one for "
           r"every input: --map loss=loss_eval or --map loss=loss_train$")
    for kw in ({}, {"reduce": "final"}):
        with pytest.raises(ScalelawError, match=msg):
            load_tables([a, b, c], **kw)
    # the fixes work as for the folder: each run's training loss, or the runs without eval_loss named
    train = load_tables([a, b, c], mapping={"loss": "loss_train"}, reduce="final")
    assert train["run"].tolist() == ["a", "b", "c"] and train["loss"].tolist() == [4.8, 4.8, 4.8]
    assert train.attrs["loss_column"] == "loss_train"
    with pytest.raises(ScalelawError, match=r"b/trainer_state.json: run 'b' has no value in the loss column "
                                            r"\(loss_eval\).*; it logs loss_train"):
        load_tables([a, b], mapping={"loss": "loss_eval"}, reduce="final")
    # a folder of evaluated runs beside an unevaluated run's file
    with pytest.raises(ScalelawError, match=r"eval_loss in \S*/a; the training loss in \S*b/trainer_state.json"):
        load_tables([tmp_path / "a", b], reduce="final")
    assert len(load_tables([tmp_path / "b", c], reduce="final")) == 2  # one kind: as before
    # tables: the loss came from val_loss in one, train_loss in the other
    x, y, z = tmp_path / "x.csv", tmp_path / "y.csv", tmp_path / "z.csv"
    x.write_text("run,step,val_loss,train_loss\nx,1,3.0,2.9\nx,2,2.8,2.7\n")
    y.write_text("run,step,train_loss\ny,1,3.1\ny,2,2.6\n")
    z.write_text("run,step,loss\nz,1,3.2\nz,2,2.5\n")
    for min_bytes in (None, 0):  # also when the streaming reducer reads them
        if min_bytes is not None:
            monkeypatch.setattr(tabular, "STREAM_MIN_BYTES", min_bytes)
        with pytest.raises(ScalelawError, match=r"^the inputs' losses differ: val_loss in \S*x.csv; train_loss in "
                                                r"\S*y.csv; .*: --map loss=train_loss$"):
            load_tables([x, y], reduce="final")
        fin = load_tables([x, y], mapping={"loss": "train_loss"}, reduce="final")
        assert fin["loss"].tolist() == [2.7, 2.6] and fin.attrs["columns_from"]["loss"] == "train_loss"
        assert fin.attrs["format"] == ("csv" if min_bytes is None else "csv-stream")
        # no loss column in common: --map cannot choose one
        with pytest.raises(ScalelawError, match=r"loss in \S*z.csv; train_loss in \S*y.csv; .*they have no loss "
                                                r"column in common: rename it in the files"):
            load_tables([z, y], reduce="final")
    # the same loss everywhere: one table, recording where its loss came from
    w = tmp_path / "w.csv"
    w.write_text("run,step,val_loss\nw,1,3.3\nw,2,2.4\n")
    both = load_tables([x, w], reduce="final")
    assert both["loss"].tolist() == [2.8, 2.4] and both.attrs["columns_from"]["loss"] == "val_loss"
    assert both.attrs["loss_column"] == "val_loss" and both.attrs["source"] == f"{x} + {w}"


# ---- Megatron / nanoGPT ---------------------------------------------------------------------------------
def test_megatron_log(fixtures):
    df = load_table(fixtures / "megatron_gpt_125m.log")
    assert df["step"].tolist() == [100, 200, 300, 400]
    assert df["D"].tolist() == [25600 * 2048, 51200 * 2048, 76800 * 2048, 102400 * 2048]
    assert df["batch_tokens"].iloc[0] == 256 * 2048 and df["loss_train"].iloc[0] == pytest.approx(5.812345)
    fin = load_table(fixtures / "megatron_gpt_125m.log", reduce="final")
    assert fin["loss"].iloc[0] == pytest.approx(3.612345) and fin["lr"].iloc[0] == pytest.approx(6e-4)


def test_megatron_malformed_line(tmp_path, fixtures):
    lines = (fixtures / "megatron_gpt_125m.log").read_text().splitlines()
    lines[12] = lines[12].replace("lm loss: 4.101234E+00", "lm loss: four")
    p = tmp_path / "m.log"
    p.write_text("\n".join(lines))
    with pytest.raises(ScalelawError) as e:
        load_table(p)
    assert "m.log line 13" in str(e.value) and "lm loss" in str(e.value)


def test_megatron_seq_len_option(tmp_path, fixtures):
    text = "\n".join(l for l in (fixtures / "megatron_gpt_125m.log").read_text().splitlines() if "seq_length" not in l)
    p = tmp_path / "m.log"
    p.write_text(text)
    with pytest.warns(UserWarning, match="seq_len"):
        assert "D" not in load_table(p).columns
    assert load_table(p, seq_len=1024)["D"].iloc[0] == 25600 * 1024


def test_nanogpt_log(fixtures):
    df = load_table(fixtures / "nanogpt_shakespeare.log")
    assert df["step"].tolist() == [0, 10, 20, 30, 40, 50]
    assert df["D"].tolist() == [s * 16384 for s in (0, 10, 20, 30, 40, 50)] and df["seq_len"].iloc[0] == 256
    fin = load_table(fixtures / "nanogpt_shakespeare.log", reduce="final")
    assert fin["loss"].iloc[0] == pytest.approx(2.5130)  # validation loss
    assert fin["loss_train"].iloc[0] == pytest.approx(2.5219)


def test_nanogpt_malformed_line(tmp_path, fixtures):
    text = (fixtures / "nanogpt_shakespeare.log").read_text().replace("iter 20: loss 2.7823", "iter 20: loss 2.78x3")
    p = tmp_path / "n.log"
    p.write_text(text)
    with pytest.raises(ScalelawError, match="n.log line 15"):
        load_table(p)


def test_hf_mixed_losses_chosen_once(tmp_path):
    for run, key in (("a", "eval_loss"), ("b", "loss")):
        (tmp_path / run).mkdir()
        (tmp_path / run / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": 10, key: 3.0}]}))
    df = load_table(tmp_path, mapping={"loss": "loss_eval"})
    assert "mixed_losses" not in df.attrs
    assert load_table(df)["loss"].tolist()[0] == 3.0  # the chosen table loads again without --map


# ---- run ids of a folder ------------------------------------------------------------------------------
def test_runs_of_same_named_folders_get_unique_ids(tmp_path):
    # TensorBoard, HF and W&B files named their run after their own folder only: exp1/train and
    # exp2/train were both run 'train', and --reduce final silently kept one of them
    tb, hf = tmp_path / "tb", tmp_path / "hf"
    write_events(tb / "exp1" / "train", [(1, 4.0), (2, 3.0), (3, 2.0)])
    write_events(tb / "exp2" / "train", [(1, 4.5), (2, 3.5)])
    write_events(tb / "exp2" / "solo", [(1, 4.2)])  # unique: keeps its folder's name
    fin = load_table(tb, reduce="final").set_index("run")
    assert fin["loss"].to_dict() == pytest.approx({"exp1/train": 2.0, "exp2/train": 3.5, "solo": 4.2})
    assert fin["step"].to_dict() == {"exp1/train": 3, "exp2/train": 2, "solo": 1}
    wb = tmp_path / "wb"
    for sweep, loss in (("sweep1", 3.1), ("sweep2", 3.3)):
        _trainer_state_at(hf / sweep / "my-run", loss)
        _trainer_state_at(hf / sweep / "other", loss + 0.5)
        (wb / sweep / "x" / "run-x").mkdir(parents=True)
        (wb / sweep / "x" / "run-x" / "history.csv").write_text(f"_step,loss\n0,5.0\n1,{loss + 1}\n")
    fin = load_table(hf, reduce="final").set_index("run")
    assert fin["loss"].to_dict() == pytest.approx({"sweep1/my-run": 3.1, "sweep2/my-run": 3.3,
                                                   "sweep1/other": 3.6, "sweep2/other": 3.8})
    fin = load_table(wb, reduce="final").set_index("run")
    assert fin["loss"].to_dict() == pytest.approx({"sweep1/x/run-x": 4.1, "sweep2/x/run-x": 4.3})
    # the shortest suffix that tells them apart, relative to the loaded folder
    assert set(load_table(hf / "sweep1")["run"]) == {"my-run", "other"}
    assert set(load_table(wb / "sweep2")["run"]) == {"run-x"}
    assert set(load_table(tb / "exp2")["run"]) == {"train", "solo"}
    # a run named after the loaded folder itself and one deeper down
    write_events(tb / "exp1" / "train" / "x" / "train", [(1, 9.0)])
    assert set(load_table(tb / "exp1" / "train")["run"]) == {"train", "x/train"}


def _trainer_state_at(folder, loss):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": 10, "loss": loss + 1},
                                                                           {"step": 20, "loss": loss}]}))


def test_run_ids_named_after_files_are_unique_too(tmp_path):
    # text logs and W&B exports named after their file (its stem) collided the same way
    for exp, loss in (("exp1", 4.0), ("exp2", 3.0)):
        (tmp_path / "text" / exp).mkdir(parents=True)
        (tmp_path / "text" / exp / "train.log").write_text(f"step 0: train loss {loss:.4f}, val loss {loss + 0.1:.4f}\n")
        (tmp_path / "wb" / exp).mkdir(parents=True)
        (tmp_path / "wb" / exp / "run-a.csv").write_text(f"_step,loss\n0,{loss + 0.5}\n")
    fin = load_table(tmp_path / "text", reduce="final").set_index("run")["loss"]
    assert fin.to_dict() == pytest.approx({"exp1/train": 4.1, "exp2/train": 3.1})
    fin = load_table(tmp_path / "wb", reduce="final").set_index("run")["loss"]
    assert fin.to_dict() == pytest.approx({"exp1/run-a": 4.5, "exp2/run-a": 3.5})
    # two top-level files of one stem: told apart by their whole name
    (tmp_path / "wb" / "exp1" / "run-a.jsonl").write_text('{"_step": 0, "loss": 2.0}\n')
    assert set(load_table(tmp_path / "wb" / "exp1")["run"]) == {"run-a.csv", "run-a.jsonl"}


def test_same_run_id_in_two_files_of_a_folder_is_refused(tmp_path):
    # run ids written in the files cannot be renamed: two files with run 'r1' were merged into one run
    (tmp_path / "a.csv").write_text("run,step,loss\nr1,1,3.0\nr1,2,2.5\nr2,1,3.3\n")
    (tmp_path / "b.csv").write_text("run,step,loss\nr1,1,4.0\nr1,3,3.5\n")
    with pytest.raises(ScalelawError, match=r"^\S+: run 'r1' is in both \S*a.csv and \S*b.csv; .*rename") as e:
        load_table(tmp_path, reduce="final")
    assert "\n" not in str(e.value)
    # ... unless the files log different things of it, step by step: W&B panel exports, one metric each
    (tmp_path / "b.csv").write_text("run,step,lr\nr1,1,1e-3\nr1,2,5e-4\n")
    fin = load_table(tmp_path, reduce="final").set_index("run")
    assert fin["loss"].to_dict() == {"r1": 2.5, "r2": 3.3} and fin.loc["r1", "lr"] == 1e-3
    panels = tmp_path / "panels"
    panels.mkdir()
    (panels / "loss.csv").write_text("Step,a - train/loss,b - train/loss\n10,3.0,3.5\n20,2.5,3.0\n")
    (panels / "lr.csv").write_text("Step,a - lr,b - lr\n10,1e-3,2e-3\n20,5e-4,1e-3\n")
    fin = load_table(panels, reduce="final").set_index("run")
    assert fin[["loss", "lr"]].to_dict("index") == {"a": {"loss": 2.5, "lr": 1e-3}, "b": {"loss": 3.0, "lr": 2e-3}}
    (panels / "loss2.csv").write_text("Step,a - train/loss\n10,3.1\n")  # the same metric again: two runs 'a'
    with pytest.raises(ScalelawError, match=r"run 'a' is in both \S*loss.csv and \S*loss2.csv; "):
        load_table(panels, reduce="final")
    (tmp_path / "b.csv").write_text("run,N,D,loss\nr1,1e8,2e9,3.0\n")  # a per-run table: no steps to join
    with pytest.raises(ScalelawError, match=r"run 'r1' is in both \S*a.csv and \S*b.csv; "):
        load_table(tmp_path)
    # a run named after its folder that meets such an id is the one renamed
    (tmp_path / "b.csv").unlink()
    shutil.rmtree(panels)
    write_events(tmp_path / "exp" / "r1", [(1, 4.0)])
    (tmp_path / "a.csv").write_text("run,step,train/loss\nr1,1,3.0\nr1,2,2.5\nr2,1,3.3\n")
    assert set(load_table(tmp_path, reduce="final")["run"]) == {"r1", "r2", "exp/r1"}


def test_event_files_of_one_folder_are_one_run(tmp_path):
    # TensorBoard's convention: a log folder is a run; a restarted writer adds an event file to it
    from tensorboardX import SummaryWriter

    for suffix, pts in ((".1", [(1, 4.0), (2, 3.0)]), (".2", [(3, 2.5)])):
        w = SummaryWriter(str(tmp_path / "exp1" / "train"), filename_suffix=suffix)
        for s, v in pts:
            w.add_scalar("train/loss", v, s)
        w.close()
    write_events(tmp_path / "exp2" / "train", [(1, 4.5)])
    assert len(list((tmp_path / "exp1" / "train").glob("*tfevents*"))) == 2
    fin = load_table(tmp_path, reduce="final").set_index("run")
    assert fin["step"].to_dict() == {"exp1/train": 3, "exp2/train": 1}


def test_folder_table_with_a_run_column_of_another_name(tmp_path):
    # a table naming its runs in a 'name' (or run_id, ...) column was given a run column of its file's
    # name, so its runs were all one run 't' and --reduce final kept one row of them
    (tmp_path / "t.csv").write_text("name,step,train/loss\na,1,3.0\na,2,2.5\nb,1,2.9\n")
    (tmp_path / "u.jsonl").write_text('{"run_id": "c", "step": 1, "train/loss": 2.0}\n')
    write_events(tmp_path / "exp" / "a", [(1, 4.0)])  # named after its folder: gives way to t.csv's 'a'
    fin = load_table(tmp_path, reduce="final").set_index("run")
    assert fin["loss"].to_dict() == {"a": 2.5, "b": 2.9, "c": 2.0, "exp/a": 4.0}
    # a numeric id column is not a run name (as elsewhere): the file's name is
    (tmp_path / "u.jsonl").write_text('{"id": 7, "step": 1, "train/loss": 2.0}\n')
    assert "u" in set(load_table(tmp_path, reduce="final")["run"])


def test_several_inputs_named_after_same_named_folders(tmp_path):
    # as in one folder, runs named after their folder or file get the path suffix that tells them apart
    from scalelaw.io import load_tables

    write_events(tmp_path / "exp1" / "train", [(1, 4.0), (2, 3.0)])
    write_events(tmp_path / "exp2" / "train", [(1, 4.5)])
    ev1, ev2 = (next((tmp_path / e / "train").glob("*tfevents*")) for e in ("exp1", "exp2"))
    for inputs in ([ev1, ev2], [tmp_path / "exp1", tmp_path / "exp2"]):
        fin = load_tables(inputs, reduce="final").set_index("run")
        assert fin["step"].to_dict() == {"exp1/train": 2, "exp2/train": 1}
    for sweep, loss in (("sweep1", 3.1), ("sweep2", 3.3)):
        _trainer_state_at(tmp_path / sweep / "my-run", loss)
    s1, s2 = (tmp_path / s / "my-run" / "trainer_state.json" for s in ("sweep1", "sweep2"))
    assert load_tables([s1, s2], reduce="final").set_index("run")["loss"].to_dict() == pytest.approx(
        {"sweep1/my-run": 3.1, "sweep2/my-run": 3.3})
    # per-step tables without a run column are named after their file when reduced
    for e, loss in (("exp1", 2.0), ("exp2", 2.5)):
        (tmp_path / e / "metrics.csv").write_text(f"step,loss\n1,3.0\n2,{loss}\n")
    fin = load_tables([tmp_path / "exp1" / "metrics.csv", tmp_path / "exp2" / "metrics.csv"], reduce="final")
    assert fin.set_index("run")["loss"].to_dict() == {"exp1/metrics": 2.0, "exp2/metrics": 2.5}
    # unique ids are kept; the same log given twice is refused, not two runs
    assert set(load_tables([ev1, s1], reduce="final")["run"]) == {"train", "my-run"}
    with pytest.raises(ScalelawError, match=r"^run 'train' is in both \S+ and \S+, so the table would hold two "
                                            r"runs under one id \(or one run twice\); .*leave out an input given twice"):
        load_tables([ev1, ev1], reduce="final")


def test_hf_output_folder_without_trainer_state(tmp_path):
    # a Trainer output folder without trainer_state.json (training stopped before its first save, or
    # save_strategy="no") failed with 'tokenizer.json: JSON is not a table'
    run = tmp_path / "my-run"
    _hf_output_folder(run)
    shutil.rmtree(run / "checkpoint-20")
    (run / "trainer_state.json").unlink()
    (run / "vocab.json").write_text('{"a": 0}')  # a GPT-2 tokenizer's other files
    (run / "merges.txt").write_text("#version: 0.2\na b\n")
    msg = (r"my-run: no training log found in this Hugging Face Trainer output folder \(training_args.bin\): "
           r"trainer_state.json is missing .*; point at .*TensorBoard.*instead")
    for kw in ({}, {"reduce": "final"}):
        with pytest.raises(ScalelawError, match=msg) as e:
            load_table(run, **kw)
        assert "\n" not in str(e.value) and "JSON is not a table" not in str(e.value)
    # its side files are known without training_args.bin too (save_model + save_metrics only)
    (run / "training_args.bin").unlink()
    with pytest.raises(ScalelawError, match=r"no training log found in this Hugging Face Trainer output folder"):
        load_table(run)
    # a log the Trainer's folder does hold is read, its side JSON files skipped
    (run / "training_args.bin").write_bytes(b"\0" * 16)
    (run / "metrics.jsonl").write_text('{"step": 10, "loss": 4.0}\n{"step": 20, "loss": 3.5}\n')
    df = load_table(run, reduce="final")
    assert df["run"].tolist() == ["metrics"] and df["loss"].tolist() == [3.5]
    # a folder of such runs: the same; beside a run that saved its state, that one is read
    (run / "metrics.jsonl").unlink()
    _hf_output_folder(tmp_path / "b")
    (tmp_path / "b" / "trainer_state.json").unlink()
    shutil.rmtree(tmp_path / "b" / "checkpoint-20")
    with pytest.raises(ScalelawError, match=r"no training log found in the Hugging Face Trainer output folders in it "
                                            r"\(b, my-run\): trainer_state.json is missing"):
        load_table(tmp_path)
    _hf_state(tmp_path / "other", 20)
    with pytest.warns(UserWarning, match=r"2 Hugging Face Trainer output folders \(b, my-run\) hold no training log"):
        assert load_table(tmp_path, reduce="final")["run"].tolist() == ["other"]


def test_sweep_warns_of_trainer_folders_without_trainer_state(tmp_path):
    # runs whose Trainer folder holds no trainer_state.json (crashed before the first save, or
    # save_strategy="no") were left out without a word as long as another run was readable
    for name in ("r1", "r2", "r3", "r4", "r5", "r6", "r7"):
        _hf_output_folder(tmp_path / name)
        if name != "r1":
            (tmp_path / name / "trainer_state.json").unlink()
            shutil.rmtree(tmp_path / name / "checkpoint-20")
    with pytest.warns(UserWarning) as rec:
        fin = load_table(tmp_path, reduce="final")
    assert fin["run"].tolist() == ["r1"]
    msgs = [str(w.message) for w in rec if "trainer_state.json" in str(w.message)]
    assert len(msgs) == 1 and "\n" not in msgs[0]
    assert "6 Hugging Face Trainer output folders" in msgs[0] and "r2, r3, r4, r5, r6 and 1 more" in msgs[0]
    assert "save_strategy='no'" in msgs[0] and "left out" in msgs[0]
    # a Trainer folder whose run has another log (its TensorBoard logging_dir) is read, not warned of
    for name in ("r3", "r4", "r5", "r6", "r7"):
        shutil.rmtree(tmp_path / name)
    _hf_tensorboard(tmp_path / "r2" / "runs" / "May04_10-11-12_gpu-node-3", [10, 20])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_table(tmp_path)["run"].nunique() == 2


def _hf_model_folder(folder):
    """What save_pretrained (model and tokenizer) or a Hub download leaves: no Trainer files, no logs."""
    folder.mkdir(parents=True)
    side = {"config.json": {"model_type": "gpt2", "n_layer": 2, "architectures": ["GPT2LMHeadModel"]},
            "generation_config.json": {"bos_token_id": 0, "eos_token_id": 0},
            "tokenizer.json": {"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": []},
            "tokenizer_config.json": {"model_max_length": 1024, "added_tokens_decoder": {}},
            "special_tokens_map.json": {"eos_token": "<|endoftext|>"}, "vocab.json": {"a": 0}}
    for name, obj in side.items():
        (folder / name).write_text(json.dumps(obj))
    (folder / "merges.txt").write_text("#version: 0.2\na b\n")
    (folder / "model.safetensors").write_bytes(b"\0" * 64)


def test_hf_model_folder_is_not_training_logs(tmp_path):
    # a model folder (weights, config, tokenizer) failed with 'tokenizer.json: JSON is not a table'
    model = tmp_path / "gpt2-small"
    _hf_model_folder(model)
    msg = (r"gpt2-small.* looks like a Hugging Face model folder \(config.json, .*tokenizer.json.*\), not "
           r"training logs: .*trainer_state.json.*TensorBoard logging_dir.*W&B history export")
    for src in (model, tmp_path):
        for kw in ({}, {"reduce": "final"}):
            with pytest.raises(ScalelawError, match=msg) as e:
                load_table(src, **kw)
            assert "\n" not in str(e.value) and "not a table" not in str(e.value)
    # beside a log, its files are skipped and the log read
    (model / "metrics.jsonl").write_text('{"step": 10, "loss": 4.0}\n{"step": 20, "loss": 3.5}\n')
    assert load_table(model, reduce="final")["loss"].tolist() == [3.5]


def test_folder_of_wandb_histories_and_other_logs_keeps_every_step(tmp_path):
    # a W&B history's step is its '_step'; beside a log with a 'step' column, the W&B rows kept theirs in
    # '_step' and had no step, and reducing said run 'wb' "has a loss only in rows without a step"
    (tmp_path / "wb").mkdir()
    pd.DataFrame({"_step": [0, 100, 200], "_runtime": [1, 2, 3], "train/loss": [5.0, 3.0, 2.5],
                  "tokens": [0, 1e8, 2e8]}).to_csv(tmp_path / "wb" / "history.csv", index=False)
    (tmp_path / "wb" / "config.json").write_text(json.dumps({"n_params": {"value": 1.2e8}}))
    (tmp_path / "other.csv").write_text("step,train/loss,tokens\n10,4.0,1e7\n20,3.5,2e7\n")
    df = load_table(tmp_path)
    steps = df.groupby("run")["step"].apply(list).to_dict()
    assert steps == {"wb": [0, 100, 200], "other": [10, 20]} and "_step" not in df.columns
    fin = load_table(tmp_path, reduce="final").set_index("run")
    assert fin["step"].to_dict() == {"other": 20, "wb": 200} and fin["loss"].to_dict() == {"other": 3.5, "wb": 2.5}
    # the same with the W&B history's rows in JSONL and the other log naming its step 'iteration'
    (tmp_path / "other.csv").write_text("iteration,train/loss,tokens\n10,4.0,1e7\n20,3.5,2e7\n")
    (tmp_path / "wb" / "history.csv").unlink()
    (tmp_path / "wb" / "history.jsonl").write_text("\n".join(
        json.dumps({"_step": s, "train/loss": 5.0 - s / 100, "tokens": s * 1e6}) for s in (0, 100, 200)))
    fin = load_table(tmp_path, reduce="final").set_index("run")
    assert fin["step"].to_dict() == {"other": 20, "wb": 200}


def test_several_inputs_logging_different_things_of_a_run_are_joined_before_reducing(tmp_path):
    # W&B panel exports saved one metric per file, given as files with --reduce, were each reduced on
    # their own: "lr.csv: cannot reduce per run without a 'loss' column", though their folder worked
    from scalelaw.io import load_tables

    panels = tmp_path / "panels"
    panels.mkdir()
    loss, lr = panels / "loss.csv", panels / "lr.csv"
    loss.write_text("Step,a - train/loss,b - train/loss\n10,3.0,3.5\n20,2.5,3.0\n")
    lr.write_text("Step,a - lr,b - lr\n10,1e-3,2e-3\n20,5e-4,1e-3\n")
    other = tmp_path / "other.csv"
    other.write_text("run,step,train/loss\nc,1,4.0\nc,2,3.9\n")
    want = {"a": {"loss": 2.5, "lr": 1e-3}, "b": {"loss": 3.0, "lr": 2e-3}}
    folder = load_table(panels, reduce="final").set_index("run")[["loss", "lr"]].to_dict("index")
    assert folder == want
    fin = load_tables([loss, lr, other], reduce="final")
    assert fin["run"].tolist() == ["a", "b", "c"]
    assert fin.set_index("run").loc[["a", "b"], ["loss", "lr"]].to_dict("index") == want
    assert fin.set_index("run").at["c", "loss"] == 3.9
    # the same metric in two inputs is still two runs under one id: refused, as in a folder
    loss2 = panels / "loss2.csv"
    loss2.write_text("Step,a - train/loss\n10,3.1\n")
    with pytest.raises(ScalelawError, match=r"^run 'a' is in both \S*loss.csv and \S*loss2.csv, so the table"):
        load_tables([loss, lr, loss2], reduce="final")
