"""CSV / TSV / Parquet / JSON / JSONL tables, per-run reduction and the streaming reducer."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ScalelawError
from scalelaw.io import detect_format, load_table, reduce_runs
from scalelaw.io import tabular
from scalelaw.io.tabular import try_stream_reduce

RUNS = pd.DataFrame({"name": ["r1", "r2"], "n_params": [1e8, 4e8], "tokens": [2e9, 8e9], "loss": [3.1, 2.7],
                     "learning_rate": [1e-3, 5e-4], "err_arc": [0.6, 0.5]})


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet", "jsonl", "json"])
def test_formats_roundtrip(tmp_path, ext):
    p = tmp_path / f"runs.{ext}"
    if ext == "csv":
        RUNS.to_csv(p, index=False)
    elif ext == "tsv":
        RUNS.to_csv(p, index=False, sep="\t")
    elif ext == "parquet":
        RUNS.to_parquet(p)
    elif ext == "jsonl":
        RUNS.to_json(p, orient="records", lines=True)
    else:
        RUNS.to_json(p, orient="records")
    df = load_table(p, required=("N", "D", "loss"))
    assert df["run"].tolist() == ["r1", "r2"]
    assert df["N"].tolist() == [1e8, 4e8] and df["lr"].tolist() == [1e-3, 5e-4]
    assert df["C"].tolist() == pytest.approx([6 * 1e8 * 2e9, 6 * 4e8 * 8e9])
    assert df.attrs["C_convention"] == "6ND" and "err_arc" in df.columns


def test_units_and_map(tmp_path):
    p = tmp_path / "b.csv"
    pd.DataFrame({"size_b": [0.1, 1.0], "D": [2, 20], "loss": [3.0, 2.5]}).to_csv(p, index=False)
    df = load_table(p, mapping={"N": "size_b"}, units={"N": "B", "D": "B"}, required=("N", "D", "loss"))
    assert df["N"].tolist() == [1e8, 1e9] and df["D"].tolist() == [2e9, 2e10]
    assert df.attrs["units"] == {"N": 1e9, "D": 1e9}


def test_undeclared_billions_refused(tmp_path):
    p = tmp_path / "b.csv"
    pd.DataFrame({"params": [0.1, 1.0], "tokens": [2e9, 2e10], "loss": [3.0, 2.5]}).to_csv(p, index=False)
    with pytest.raises(ScalelawError, match="--units N=B"):
        load_table(p)


@pytest.mark.parametrize("name,text,expect", [
    ("bad.csv", "N,D,loss\n1e8,1e9,3\n1e8,1e9,3,4,5\n", ("bad.csv", "line 3")),
    ("bad.jsonl", '{"N": 1e8, "D": 1e9, "loss": 3}\n{"N": oops}\n', ("line 2",)),
])
def test_malformed_table_names_line(tmp_path, name, text, expect):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ScalelawError) as e:
        load_table(p)
    assert all(s in str(e.value) for s in expect), str(e.value)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ScalelawError, match="empty"):
        load_table(tmp_path / "e.csv")
    with pytest.raises(ScalelawError, match="neither an existing file.*scalelaw data list"):
        load_table(tmp_path / "nope.csv")
    with pytest.raises(ScalelawError, match="did you mean 'chinchilla-epoch'"):
        load_table("chinchila-epoch")


def steps_table(n_runs=3, n_steps=50, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_runs):
        for s in range(n_steps):
            rows.append({"run": f"run{r}", "_step": s, "loss": 5.0 / (1 + s) ** 0.3 + 0.01 * rng.random() + r * 0.1,
                         "lr": 1e-3 * min(1, (s + 1) / 10) * (1 - s / n_steps), "tokens": (s + 1) * 1e6,
                         "params": 1e8 * (r + 1)})
    return pd.DataFrame(rows)


def test_reduce_final_min_smooth():
    df = load_table(steps_table())
    assert len(df) == 150 and "step" in df.columns
    fin = reduce_runs(df, "final")
    assert len(fin) == 3 and (fin["step"] == 49).all()
    assert fin["lr"].tolist() == pytest.approx(df.groupby("run")["lr"].max().tolist())  # peak lr
    mn = reduce_runs(df, "min")
    assert (mn["loss"].to_numpy() <= fin["loss"].to_numpy()).all()
    sm = reduce_runs(df, "smooth", window=5)
    exp = df.groupby("run")["loss"].apply(lambda s: s.tail(5).mean())
    assert sm["loss"].tolist() == pytest.approx(exp.tolist())
    e = reduce_runs(df, "smooth", ema=0.5)
    x = df[df.run == "run0"]["loss"].to_numpy()
    s, n = 0.0, 0
    for v in x:
        s, n = 0.5 * s + 0.5 * v, n + 1
    assert e["loss"].iloc[0] == pytest.approx(s / (1 - 0.5 ** n))
    assert "loss_raw" in e.columns


def test_warmup_cut():
    df = load_table(steps_table())
    mn = reduce_runs(df, "min", warmup=45)
    assert (mn["step"] >= 45).all()
    with pytest.raises(ScalelawError, match="warm-up"):
        reduce_runs(df, "final", warmup=1000)


def test_reduce_never_drops_a_run_silently():
    df = load_table(steps_table())
    # run1 logged no loss at all: it used to be left out of the reduced table
    nol = df.assign(loss=df["loss"].where(df["run"] != "run1"))
    with pytest.raises(ScalelawError, match=r"run 'run1' has no value in the loss column, .*leave it out of the input"):
        reduce_runs(nol, "final")
    many = df.assign(run=df["run"] + df["step"].astype(int).astype(str).str[-1], loss=float("nan"))
    many.loc[many["run"] == "run00", "loss"] = 3.0
    with pytest.raises(ScalelawError, match=r"runs 'run01', 'run02', 'run03', 'run04', 'run05' and 24 more have no"):
        reduce_runs(many, "final")
    # run2 stopped before the warm-up cut
    short = df[(df["run"] != "run2") | (df["step"] < 20)]
    with pytest.raises(ScalelawError, match=r"run 'run2' has no loss at or after the warm-up cut \(step 30\); "
                                            r"its last loss is at step 19.*lower --warmup"):
        reduce_runs(short, "final", warmup=30)
    # a row without a run id was dropped by the per-run grouping
    gap = df.assign(run=df["run"].where(df.index != 7))
    with pytest.raises(ScalelawError, match=r"1 row has no run id \(row 8 of the table\)"):
        reduce_runs(gap, "min")
    nostep = df.assign(step=df["step"].where(df["run"] != "run0"))
    with pytest.raises(ScalelawError, match=r"run 'run0' has a loss only in rows without a step"):
        reduce_runs(nostep, "smooth")


def test_reduce_bad_options():
    df = load_table(steps_table())
    with pytest.raises(ScalelawError, match="--reduce"):
        reduce_runs(df, "median")
    with pytest.raises(ScalelawError, match="step"):
        reduce_runs(df.drop(columns=["step"]), "final")


def test_load_table_reduce_gives_valid_per_run(tmp_path):
    p = tmp_path / "h.csv"
    steps_table().to_csv(p, index=False)
    df = load_table(p, reduce="final", required=("N", "D", "loss"))
    assert len(df) == 3 and df["run"].is_unique


@pytest.mark.parametrize("how,kw", [("final", {}), ("min", {}), ("smooth", {"ema": 0.9}), ("smooth", {"window": 7}),
                                    ("final", {"warmup": 20}), ("smooth", {"ema": 0.0})])
def test_stream_reduce_matches_pandas(tmp_path, how, kw):
    p = tmp_path / "hist.csv"
    steps_table(n_runs=5, n_steps=300).to_csv(p, index=False)
    fast = try_stream_reduce(p, how, min_bytes=0, block_size=4096, **kw)
    assert fast is not None and fast.attrs["format"] == "csv-stream"
    slow = reduce_runs(load_table(p), how, **kw)
    for col in ("run", "step", "loss", "lr", "D", "N", "C"):
        if col == "run":
            assert fast[col].tolist() == slow[col].tolist()
        else:
            assert fast[col].to_numpy() == pytest.approx(slow[col].to_numpy(), rel=1e-9), col


def test_stream_reduce_unsorted_falls_back(tmp_path):
    p = tmp_path / "hist.csv"
    steps_table().sample(frac=1, random_state=0).to_csv(p, index=False)
    assert try_stream_reduce(p, "final", min_bytes=0, block_size=4096) is None
    df = load_table(p, reduce="final")
    assert (df["step"] == 49).all()


def test_stream_reduce_bad_number(tmp_path):
    p = tmp_path / "hist.csv"
    t = steps_table(n_runs=2, n_steps=2000)
    t["loss"] = t["loss"].astype(object)
    t.loc[3500, "loss"] = "oops"
    t.to_csv(p, index=False)
    with pytest.raises(ScalelawError, match="not a number"):
        try_stream_reduce(p, "final", min_bytes=0, block_size=4096)


def test_detect_format(tmp_path, fixtures):
    p = tmp_path / "x.csv"
    p.write_text("_step,loss\n1,2\n")
    assert detect_format(p) == "wandb-history"
    p.write_text("Step,a - loss,a - loss__MIN\n1,2,2\n")
    assert detect_format(p) == "wandb-panel"
    assert detect_format(fixtures / "megatron_gpt_125m.log") == "megatron"
    assert detect_format(fixtures / "nanogpt_shakespeare.log") == "nanogpt"
    assert detect_format(fixtures / "trainer_state.json") == "hf-trainer"
    q = tmp_path / "t.json"
    q.write_text(json.dumps([{"N": 1}]))
    assert detect_format(q) == "json"


# ---- the streaming reducer refuses what reduce_runs refuses ------------------------------------------
def _error(fn):
    with pytest.raises(ScalelawError) as e:
        fn()
    return str(e.value)


def _stream_and_memory_errors(monkeypatch, p, how="final", **kw):
    """The message of load_table(p, reduce=how) on the in-memory path and on the streaming path
    (its size threshold lowered, small batches), after checking the streaming reducer raised it
    itself rather than handing the file back to the in-memory path."""
    from scalelaw.io import tabular

    slow = _error(lambda: load_table(p, reduce=how, **kw))
    stream_kw = {k: v for k, v in kw.items() if k in ("warmup", "ema", "window")}
    _error(lambda: try_stream_reduce(p, how, min_bytes=0, block_size=4096, **stream_kw))
    monkeypatch.setattr(tabular, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(tabular, "STREAM_BLOCK_SIZE", 4096)
    fast = _error(lambda: load_table(p, reduce=how, **kw))
    monkeypatch.undo()
    return slow, fast


def test_stream_reduce_never_drops_a_run_silently(tmp_path, monkeypatch):
    # a large CSV went through the streaming reducer, which left these runs out without a word
    t = steps_table(n_runs=8, n_steps=300)
    p = tmp_path / "hist.csv"
    cases = {
        # run1 logs train_loss where the others log val_loss (the chosen loss)
        "no loss": (t.rename(columns={"loss": "val_loss"}).assign(
            train_loss=lambda x: x["val_loss"].where(x["run"] == "run1"),
            val_loss=lambda x: x["val_loss"].where(x["run"] != "run1")), "final", {},
            r"run 'run1' has no value in the loss column \(val_loss\).*it logs train_loss:"),
        "several without a loss": (t.assign(loss=t["loss"].where(t["run"] == "run0")), "smooth", {},
                                   r"runs 'run1', 'run2', 'run3', 'run4', 'run5' and 2 more have no value"),
        "stopped before the warm-up cut": (t[(t["run"] != "run2") | (t["_step"] < 100)], "min", {"warmup": 150},
                                           r"run 'run2' has no loss at or after the warm-up cut \(step 150\); "
                                           r"its last loss is at step 99"),
        "everything before the cut": (t, "final", {"warmup": 1000}, r"no step with a loss is left"),
        "loss only without a step": (t.rename(columns={"_step": "step"}).assign(
            step=lambda x: x["step"].where(x["run"] != "run3")), "final", {},
            r"run 'run3' has a loss only in rows without a step"),
        "rows without a run id": (t.assign(run=t["run"].where(~t.index.isin([700, 1901]))), "final", {},
                                  r"2 rows have no run id \(the first is row 701 of the table\)"),
    }
    for name, (table, how, kw, msg) in cases.items():
        table.to_csv(p, index=False)
        slow, fast = _stream_and_memory_errors(monkeypatch, p, how, **kw)
        assert re.search(msg, slow), (name, slow)
        assert fast == slow, name
    # and a good file still goes through the streaming reducer, with the in-memory path's result
    t.to_csv(p, index=False)
    monkeypatch.setattr(tabular, "STREAM_MIN_BYTES", 0)
    fast = load_table(p, reduce="final", warmup=150)
    assert fast.attrs["format"] == "csv-stream" and len(fast) == 8


def test_stream_reduce_run_id_text_like_pandas(tmp_path):
    # pyarrow reads an empty cell of a text column as "", which made a run named '' of those rows
    p = tmp_path / "hist.csv"
    t = steps_table(n_runs=2, n_steps=300)
    t.loc[5, "run"] = None
    t.to_csv(p, index=False)
    with pytest.raises(ScalelawError, match=r"1 row has no run id \(row 6 of the table\)"):
        try_stream_reduce(p, "final", min_bytes=0, block_size=4096)


def test_stream_reduce_leaves_wandb_checks_to_read_history(tmp_path):
    # a W&B history with a repeated or missing _step, or with run settings beside it, is read by
    # read_history, which refuses the former and adds the latter; the streaming reducer did neither
    p = tmp_path / "hist.csv"
    t = steps_table(n_runs=2, n_steps=300)
    pd.concat([t.iloc[:451], t.iloc[450:]]).to_csv(p, index=False)  # run1's step 150 twice
    assert try_stream_reduce(p, "final", min_bytes=0, block_size=4096) is None
    assert "_step 150 appears more than once" in _error(lambda: load_table(p, reduce="final"))
    t.assign(_step=t["_step"].where(t.index != 400)).to_csv(p, index=False)
    assert try_stream_reduce(p, "final", min_bytes=0, block_size=4096) is None
    assert "line 402: _step is empty" in _error(lambda: load_table(p, reduce="final"))
    t.to_csv(p, index=False)
    (tmp_path / "config.json").write_text(json.dumps({"seq_len": 2048}))
    assert try_stream_reduce(p, "final", min_bytes=0, block_size=4096) is None
    assert (load_table(p, reduce="final")["seq_len"] == 2048).all()


def test_map_loss_onto_another_column_when_the_table_has_a_loss(fixtures):
    # --map loss=<col> beside a column already named loss gave two 'loss' columns and a TypeError
    # (exit 3, 'a scalelaw bug'): e.g. an evaluated HF run, whose loss is eval_loss, for the training loss
    fin = load_table(fixtures / "trainer_state.json", mapping={"loss": "loss_train"}, reduce="final")
    assert fin["loss"].tolist() == [3.2] and fin["loss_eval"].tolist() == [3.1]
    assert fin.attrs["loss_column"] == "loss_train"
    df = pd.DataFrame({"run": ["a", "b"], "loss": [3.0, 2.0], "val": [3.5, 2.5], "N": [1e8, 2e8], "size": [1, 2]})
    out = load_table(df, mapping={"loss": "val"})
    assert out["loss"].tolist() == [3.5, 2.5] and out["loss_other"].tolist() == [3.0, 2.0]
    # other columns have no family to move the table's own to: one line naming both
    with pytest.raises(ScalelawError, match=r"--map N=size.*already has a column 'N'"):
        load_table(df, mapping={"N": "size"})


def test_normalize_records_the_columns_it_renames():
    df = pd.DataFrame({"Run Name": ["a"], "_step": [1], "train/loss": [3.0], "val_loss": [3.2], "size": [1e8]})
    out = load_table(df, mapping={"N": "size"})
    assert out.attrs["columns_from"] == {"run": "Run Name", "step": "_step", "loss_train": "train/loss",
                                         "loss": "val_loss", "N": "size"}
    # a second pass keeps the names of the first, also for a column it moves again
    again = load_table(out, mapping={"loss": "loss_train"})
    assert again.attrs["columns_from"]["loss"] == "train/loss" and again.attrs["columns_from"]["loss_val"] == "val_loss"
