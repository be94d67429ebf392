"""Property-based: malformed tables (NaN, inf, negatives, empty, missing columns, text in numeric
columns) fed to every loader must raise ScalelawError (one line) or give a valid run table."""
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from scalelaw.errors import ScalelawError
from scalelaw.io import load_table
from scalelaw.io.regmix import load_pair
from scalelaw.schema import validate

num = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-10**6, 10**12))
cell = st.one_of(num, st.sampled_from(["", "abc", "1e9", "nan", "-1", "x,y", '"q"']), st.none())
COLS = ["run", "N", "D", "C", "loss", "lr", "params", "tokens", "val_loss", "train_loss", "step", "err_a", "hp_x",
        "Model Size", "learning_rate", "free"]
SETTINGS = settings(max_examples=int(__import__("os").environ.get("SCALELAW_PROP_EXAMPLES", 40)), deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def tables(draw):
    cols = draw(st.lists(st.sampled_from(COLS), max_size=6, unique=True))
    n = draw(st.integers(0, 5))
    return pd.DataFrame({c: [draw(cell) for _ in range(n)] for c in cols}, dtype=object)


def check(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            df = load_table(path, **kw)
        except ScalelawError as e:
            assert "\n" not in str(e) and str(e)
            return None
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    validate(df, required=(), per_run=True if kw.get("reduce") else None)
    return df


_BASE = Path(tempfile.mkdtemp(prefix="scalelaw-prop-"))


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(_BASE, ignore_errors=True)


def _tmp():
    return Path(tempfile.mkdtemp(dir=_BASE))


def _homog(df):
    out = df.copy()
    for c in out.columns:
        vals = [v for v in out[c] if v is not None]
        if not all(isinstance(v, (int, float)) for v in vals):
            out[c] = [None if v is None else str(v) for v in out[c]]
        else:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    return out


@SETTINGS
@given(df=tables(), fmt=st.sampled_from(["csv", "tsv", "parquet", "jsonl", "json"]),
       reduce=st.sampled_from([None, "final", "min", "smooth"]))
def test_plain_tables(df, fmt, reduce):
    p = _tmp() / f"t.{fmt}"
    if fmt in ("csv", "tsv"):
        df.to_csv(p, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "parquet":
        _homog(df).to_parquet(p)
    else:
        recs = [{k: v for k, v in r.items()} for r in df.to_dict("records")]
        text = "\n".join(json.dumps(r) for r in recs) if fmt == "jsonl" else json.dumps(recs)
        p.write_text(text)
    check(p, reduce=reduce)


@SETTINGS
@given(df=tables(), steps=st.lists(cell, min_size=0, max_size=5), reduce=st.sampled_from([None, "final", "smooth"]))
def test_wandb_history(df, steps, reduce):
    df = df.iloc[: len(steps)].copy()
    df["_step"] = steps[: len(df)]
    p = _tmp() / "history.csv"
    df.to_csv(p, index=False)
    (p.parent / "config.json").write_text(json.dumps({"n_params": {"value": 1e8}, "lr": {"value": "x"}}))
    check(p, reduce=reduce)


@SETTINGS
@given(vals=st.lists(st.tuples(cell, cell, cell), max_size=5), minmax=st.booleans())
def test_wandb_panel(vals, minmax):
    df = pd.DataFrame({"Step": [v[0] for v in vals], "a - train/loss": [v[1] for v in vals],
                       "b - val_loss": [v[2] for v in vals]}, dtype=object)
    if minmax:
        df["a - train/loss__MIN"] = df["a - train/loss"]
    p = _tmp() / "panel.csv"
    df.to_csv(p, index=False)
    check(p, reduce="final")


@SETTINGS
@given(points=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["loss", "train/lr", "tokens", "x"]),
                                 st.floats(allow_nan=True, allow_infinity=True, width=32)), max_size=8),
       reduce=st.sampled_from([None, "final", "min"]))
def test_tensorboard(points, reduce):
    from tensorboardX import SummaryWriter

    d = _tmp()
    w = SummaryWriter(str(d / "run"))
    for step, tag, v in points:
        w.add_scalar(tag, v, step)
    w.close()
    check(d, reduce=reduce)


@SETTINGS
@given(rows=st.lists(st.dictionaries(st.sampled_from(["step", "loss", "eval_loss", "learning_rate", "epoch"]),
                                     st.one_of(num, st.text(max_size=3), st.none()), max_size=5), max_size=5))
def test_hf_trainer_state(rows):
    p = _tmp() / "trainer_state.json"
    p.write_text(json.dumps({"log_history": rows}))
    check(p, reduce="final")


@SETTINGS
@given(lines=st.lists(st.tuples(st.integers(0, 10**5), cell, cell, cell), max_size=6),
       kind=st.sampled_from(["megatron", "nanogpt"]))
def test_text_logs(lines, kind):
    out = []
    for it, a, b, c in lines:
        if kind == "megatron":
            out.append(f" iteration {it}/ 1000 | consumed samples: {a} | learning rate: {b} | lm loss: {c} |")
        else:
            out.append(f"iter {it}: loss {a}, time {b}ms, mfu {c}%")
    p = _tmp() / f"{kind}.log"
    p.write_text(("  seq_length ..... 2048\n" if kind == "megatron" else "tokens per iteration will be: 1,024\n")
                 + "\n".join(out) + "\n")
    check(p, reduce="final")


@SETTINGS
@given(hp=st.dictionaries(st.sampled_from(["params", "params_no_embed", "tokens", "lr", "global_bs", "model", "warmup"]),
                          st.one_of(num, st.text(max_size=3), st.none()), max_size=7),
       loss=cell, acc=cell)
def test_openlm(hp, loss, acc):
    root = _tmp() / "exp_data"
    (root / "models").mkdir(parents=True)
    (root / "evals").mkdir()
    m = {"name": "r", "dataset_name": "rpj", "hyperparameters": hp,
         "results": [{"loss": loss, "val_data": ["x/c4_val/shard.tar"]}]}
    (root / "models" / "r.json").write_text(json.dumps(m))
    (root / "evals" / "evaluation_r_heavy.json").write_text(json.dumps({"eval_metrics": {"icl": {"t": acc}}}))
    check(root)


@SETTINGS
@given(mi=st.lists(cell, max_size=4), li=st.lists(cell, max_size=4), w=cell, l=cell)
def test_regmix(mi, li, w, l):
    d = _tmp()
    mp, lp = d / "train_mixture_1m.csv", d / "train_pile_loss_1m.csv"
    pd.DataFrame({"index": mi, "train_the_pile_arxiv": [w] * len(mi)}, dtype=object).to_csv(mp, index=False)
    pd.DataFrame({"index": li, "metric/the_pile_arxiv_val_loss": [l] * len(li)}, dtype=object).to_csv(lp, index=False)
    try:
        load_pair(mp, lp)
    except ScalelawError as e:
        assert "\n" not in str(e)
    check(mp)


@SETTINGS
@given(rows=st.lists(st.tuples(cell, cell, cell, cell), max_size=4), kind=st.sampled_from(["obs", "steplaw"]))
def test_obsscaling_and_steplaw(rows, kind):
    if kind == "obs":
        cols = ["Model", "Model Size (B)", "Pretraining Data Size (T)", "MMLU"]
    else:
        cols = ["N", "D", "lr", "bs", "loss", "smooth loss", "exp_name"]
    df = pd.DataFrame([list(r) + ["z"] * (len(cols) - 4) for r in rows], columns=cols, dtype=object) if rows \
        else pd.DataFrame(columns=cols)
    p = _tmp() / "t.csv"
    df.to_csv(p, index=False)
    check(p)
