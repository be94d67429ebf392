"""Hugging Face Trainer ``trainer_state.json``: its ``log_history`` train and eval rows."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..errors import ScalelawError
from .jsonfile import is_number, read_json


def read_trainer_state(p: Path) -> pd.DataFrame:
    """``log_history`` as one row per step: ``step``; ``loss`` is ``eval_loss`` when evaluated
    (training loss then kept as ``loss_train``), else the training loss; ``learning_rate`` -> ``lr``;
    other eval metrics keep their ``eval_*`` names. The run id is the file's folder name
    (the checkpoint folder's parent when it is ``checkpoint-*``; ``attrs["run_paths"]``, see
    :mod:`scalelaw.io.runids`). ``attrs["loss_column"]`` says
    which loss was taken; a folder of runs of both kinds is not given one mixed ``loss`` column
    (see :func:`scalelaw.io.read_folder`)."""
    p = Path(p)
    state = read_json(p)
    hist = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(hist, list):
        raise ScalelawError(f"{p}: no 'log_history' list; is this a Hugging Face trainer_state.json?")
    rows = []
    for i, r in enumerate(hist):
        if not isinstance(r, dict) or "step" not in r:
            raise ScalelawError(f"{p}: log_history entry {i} has no 'step'; the file is malformed")
        if not is_number(r["step"]) or not math.isfinite(r["step"]):
            raise ScalelawError(f"{p}: log_history entry {i} has step {r['step']!r}, not a finite number; fix the file")
        row = {}
        for k, v in r.items():
            if v is None or is_number(v):
                row[k] = v
            elif _is_metric(k):
                raise ScalelawError(f"{p}: log_history entry {i} (step {r['step']}) has {k!r} = {v!r}, "
                                    "not a number; fix or remove that entry")
        rows.append(row)
    if not rows:
        raise ScalelawError(f"{p}: log_history is empty; the run logged nothing yet")
    df = pd.DataFrame(rows)
    _check_one_value_per_step(df, p)
    df = df.groupby("step", as_index=False, sort=True).last()  # merge train and eval rows of a step
    ren = {"learning_rate": "lr"}
    if "eval_loss" in df.columns:
        ren.update({"eval_loss": "loss", "loss": "loss_train"})
        df.attrs["loss_column"] = "eval_loss"
    elif "loss" in df.columns:
        df.attrs["loss_column"] = "loss (training)"
    for k in ("train_loss",):  # the end-of-training average; not a per-step value
        if k in df.columns:
            ren[k] = "loss_train_avg"
    df = df.rename(columns=ren)
    folder = run_folder(p)
    run = folder.name or p.stem
    df.insert(0, "run", run)
    df.attrs["run_paths"] = {run: str(folder if folder.name else p)}
    if isinstance(state.get("train_batch_size"), int):
        df["hp_train_batch_size"] = state["train_batch_size"]
    df.attrs["source"] = str(p)
    return df


def run_folder(f: Path) -> Path:
    """The Trainer output folder a file in it belongs to: the file's folder, or the parent of a
    ``checkpoint-*`` folder."""
    return f.parent.parent if f.parent.name.startswith("checkpoint-") else f.parent


def _is_metric(key: str) -> bool:
    """Keys that become the table's loss or lr columns (text there must not be dropped silently)."""
    return key == "learning_rate" or "loss" in key


def _check_one_value_per_step(df: pd.DataFrame, p: Path) -> None:
    """Train and eval entries of one step are merged; two different losses (or lrs) at one step,
    e.g. from a restarted run appended to the history, cannot be, so they are refused."""
    cols = [c for c in df.columns if _is_metric(c)]
    if not cols:
        return
    counts = df.groupby("step", sort=True)[cols].nunique()
    bad = counts[(counts > 1).any(axis=1)]
    if len(bad):
        step = bad.index[0]
        col = next(c for c in cols if bad.loc[step, c] > 1)
        vals = df.loc[df["step"] == step, col].dropna().unique().tolist()
        raise ScalelawError(f"{p}: log_history holds {len(vals)} different values of {col!r} at step {step:g} "
                            f"({', '.join(map(repr, vals))}); keep one entry per step, e.g. remove the "
                            "entries of a restarted run")
