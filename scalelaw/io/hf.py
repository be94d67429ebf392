"""Hugging Face Trainer ``trainer_state.json``: its ``log_history`` train and eval rows."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import ScalelawError
from .jsonfile import read_json


def read_trainer_state(p: Path) -> pd.DataFrame:
    """``log_history`` as one row per step: ``step``; ``loss`` is ``eval_loss`` when evaluated
    (training loss then kept as ``loss_train``), else the training loss; ``learning_rate`` -> ``lr``;
    other eval metrics keep their ``eval_*`` names. The run id is the file's folder name
    (the checkpoint folder's parent when it is ``checkpoint-*``)."""
    p = Path(p)
    state = read_json(p)
    hist = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(hist, list):
        raise ScalelawError(f"{p}: no 'log_history' list; is this a Hugging Face trainer_state.json?")
    rows = []
    for i, r in enumerate(hist):
        if not isinstance(r, dict) or "step" not in r:
            raise ScalelawError(f"{p}: log_history entry {i} has no 'step'; the file is malformed")
        if isinstance(r["step"], bool) or not isinstance(r["step"], (int, float)):
            raise ScalelawError(f"{p}: log_history entry {i} has step {r['step']!r}, not a number; fix the file")
        rows.append({k: v for k, v in r.items() if isinstance(v, (int, float)) or v is None})
    if not rows:
        raise ScalelawError(f"{p}: log_history is empty; the run logged nothing yet")
    df = pd.DataFrame(rows)
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
    run = p.parent.parent.name if p.parent.name.startswith("checkpoint-") else p.parent.name
    df.insert(0, "run", run or p.stem)
    if isinstance(state.get("train_batch_size"), int):
        df["hp_train_batch_size"] = state["train_batch_size"]
    df.attrs["source"] = str(p)
    return df
