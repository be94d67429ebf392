"""open_lm run JSON folders, as released with Gadre et al. 2024 (mlfoundations/scaling ``exp_data``).

Layout: ``models/<run>.json`` (``hyperparameters`` + ``results``: one validation loss per set),
``evals/evaluation_<run>_heavy.json`` (``eval_metrics.icl``: per-task accuracy) and
``eval_metadata.csv`` (each task's random baseline, in percent).

Columns: ``run``, ``N`` (``params``, embeddings included, as Gadre et al. count), ``N_nonembed``
(``params_no_embed``), ``D`` (``tokens``), ``M`` = D/N, ``lr``, ``batch_tokens`` (``global_bs``
x 2048-token sequences), ``seq_len``, ``dataset`` (rpj, c4_original, rw_original), ``model``
(open_lm config), ``hp_*`` (warmup, wd, cd, z_loss, chinchilla_multiplier, ...), one
``loss_<set>`` per validation set (``loss_c4_val``, ``loss_openlm``, ``loss_paloma_c4_en``,
``loss_paloma_ptb``, ``loss_val_de_en_100``, ...), ``loss`` = ``loss_c4_val`` (the C4 validation loss, the
target of their loss law), and ``err_<task>`` = 1 - accuracy per downstream task. Random
baselines (fractions) are in ``df.attrs["random_baseline"]`` and from :func:`random_baselines`.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ..errors import ScalelawError
from .jsonfile import is_number, read_json
from .tabular import read_csv

SEQ_LEN = 2048
TARGET = "c4_val"


def find_exp_data(p: Path) -> Path:
    p = Path(p)
    if p.is_file():
        raise ScalelawError(f"{p} is one open_lm run file; give its exp_data folder (the folder holding models/ "
                            "and evals/)")
    for c in (p, p / "exp_data"):
        if (c / "models").is_dir():
            return c
    raise ScalelawError(f"{p}: not an open_lm exp_data folder (needs a models/ subfolder of run JSON files)")


def val_name(path: str) -> str:
    """Validation-set name from its shard path: the folder name (file stem for ``de-en``)."""
    parts = str(path).split("/")
    name = parts[-1].split(".")[0] if "de-en" in str(path) or len(parts) < 2 else parts[-2]
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def _load(p: Path) -> dict:
    return read_json(p, fix="re-download the file", expect_object="")


def random_baselines(path) -> dict[str, float]:
    """{task: random-guess accuracy as a fraction} from ``eval_metadata.csv`` (file or exp_data folder;
    a folder without the file gives {}). Tasks whose baseline cell is empty are left out."""
    p = Path(path)
    if p.is_dir():
        p = find_exp_data(p) / "eval_metadata.csv"
        if not p.is_file():
            return {}
    elif not p.exists():
        raise ScalelawError(f"{p} does not exist; give an open_lm exp_data folder or its eval_metadata.csv")
    meta = read_csv(p)
    if not {"Eval Task", "Random baseline"} <= set(meta.columns):
        raise ScalelawError(f"{p}: eval metadata needs columns 'Eval Task' and 'Random baseline'")
    out = {}
    for task, raw in zip(meta["Eval Task"], meta["Random baseline"]):
        if pd.isna(raw) or not str(raw).strip():
            continue
        b = pd.to_numeric(raw, errors="coerce")
        if not 0 <= b <= 100:  # also NaN: text that is not a number
            shown = repr(raw) if isinstance(raw, str) else f"{float(raw):g}"
            raise ScalelawError(f"{p}: the random baseline of {task} is {shown}, not a percentage between 0 and 100; "
                                "fix that row or re-download the file")
        out[str(task)] = float(b) / 100.0
    return out


def read_run(f: Path) -> dict:
    """One ``models/<run>.json`` as a row (without downstream errors)."""
    m = _load(f)
    hp = m.get("hyperparameters")
    if not isinstance(hp, dict):
        raise ScalelawError(f"{f}: no 'hyperparameters' object; is this an open_lm run JSON?")
    for k in ("params", "tokens"):
        if k not in hp:
            raise ScalelawError(f"{f}: hyperparameters lack {k!r}; the run JSON is incomplete")
        if hp[k] is None:
            raise ScalelawError(f"{f}: hyperparameters.{k} is null; the run JSON is incomplete, re-download it")
    num = {k: _number(hp.get(k), f, f"hyperparameters.{k}") for k in ("params", "params_no_embed", "tokens", "lr", "global_bs")}
    row = {"run": str(m.get("name") or f.stem), "N": num["params"], "N_nonembed": num["params_no_embed"],
           "D": num["tokens"], "lr": num["lr"], "batch_tokens": num["global_bs"] * SEQ_LEN,
           "seq_len": float(SEQ_LEN), "dataset": str(m.get("dataset_name", "")),
           "model": str(hp.get("model", "")).split("/")[-1].rsplit(".", 1)[0]}
    row["M"] = row["D"] / row["N"] if row["N"] and row["N"] == row["N"] else float("nan")
    for k, v in hp.items():
        if k in ("params", "params_no_embed", "tokens", "lr", "global_bs", "model", "fsdp_flags"):
            continue
        if is_number(v):
            row[f"hp_{k}"] = float(v)
        elif isinstance(v, (bool, str)):
            row[f"hp_{k}"] = v
    for r in m.get("results") or []:
        if not isinstance(r, dict) or "loss" not in r or not isinstance(r.get("val_data"), list) or not r["val_data"]:
            continue
        name = val_name(r["val_data"][0])
        loss = _number(r["loss"], f, f"the loss on {name}")
        old = row.setdefault(f"loss_{name}", loss)
        if old != loss and not (math.isnan(old) and math.isnan(loss)):
            raise ScalelawError(f"{f}: results hold two losses on {name} ({old!r} and {loss!r}); keep one result "
                                "per validation set")
    if f"loss_{TARGET}" in row:
        row["loss"] = row[f"loss_{TARGET}"]
    return row


def _number(v, f: Path, what: str) -> float:
    if v is None:
        return float("nan")
    if not is_number(v):
        raise ScalelawError(f"{f}: {what} is {v!r}, not a number; fix the run JSON")
    return float(v)


def read_exp_data(path) -> pd.DataFrame:
    """Every run of an exp_data folder, one row each, with ``err_<task>`` joined from ``evals/``."""
    d = find_exp_data(Path(path))
    files = sorted((d / "models").glob("*.json"))
    if not files:
        raise ScalelawError(f"{d / 'models'}: no run JSON files")
    rows = []
    for f in files:
        row = read_run(f)
        ev = d / "evals" / f"evaluation_{f.stem}_heavy.json"
        if ev.is_file():
            metrics = _load(ev).get("eval_metrics") or {}
            if not isinstance(metrics, dict):
                raise ScalelawError(f"{ev}: eval_metrics is not an object (of metric groups such as 'icl'); "
                                    "re-download the file")
            icl = metrics.get("icl") or {}
            if not isinstance(icl, dict):
                raise ScalelawError(f"{ev}: eval_metrics.icl is not an object of task accuracies")
            for task, acc in icl.items():
                a = _number(acc, ev, f"the accuracy of {task}")
                if not (math.isnan(a) or 0 <= a <= 1):
                    raise ScalelawError(f"{ev}: the accuracy of {task} is {a:g}, not a fraction between 0 and 1; "
                                        "re-download the file")
                row[f"err_{task}"] = 1.0 - a
        rows.append(row)
    df = pd.DataFrame(rows)
    lead = ["run", "N", "N_nonembed", "D", "M", "lr", "batch_tokens", "seq_len", "loss", "dataset", "model"]
    df = df[[c for c in lead if c in df.columns] + [c for c in df.columns if c not in lead]]
    df.attrs.update({"source": str(d), "loss_column": f"loss_{TARGET}", "validation": TARGET,
                     "random_baseline": random_baselines(d),
                     "N_convention": "all parameters (params); N_nonembed = params_no_embed"})
    return df
