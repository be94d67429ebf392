"""Loaders: every run-log format -> the canonical run table (:mod:`scalelaw.schema`).

``load_table(source)`` takes a file, a folder, a DataFrame or a registered dataset name
(:mod:`scalelaw.datasets`) and dispatches by extension and content sniffing:

- CSV / TSV / Parquet / JSON / JSONL tables (columns by alias, see ``scalelaw.schema.ALIASES``);
- W&B API history exports (``_step`` + metric keys; ``config.json`` / ``summary.json`` beside them)
  and W&B UI panel exports (``Step``, ``<run> - <metric>``);
- TensorBoard event files (``*tfevents*``), HF Trainer ``trainer_state.json``;
- open_lm / mlfoundations run-JSON folders (``models/`` + ``evals/``);
- Megatron-LM and nanoGPT text logs;
- RegMix mixture/loss CSVs (via :func:`scalelaw.io.regmix.load_pair`), ObsScaling and Step Law CSVs.

Per-step logs reduce to one row per run with ``reduce="final" | "smooth" | "min"``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from ..schema import normalize, validate, warn_heuristics

__all__ = ["load_table", "load_tables", "read_raw", "reduce_runs", "detect_format", "FORMATS", "REDUCERS"]

REDUCERS = ("final", "smooth", "min")
FORMATS = ("csv", "tsv", "parquet", "jsonl", "json", "wandb-history", "wandb-panel", "tensorboard",
           "hf-trainer", "openlm", "megatron", "nanogpt", "obsscaling", "steplaw", "regmix", "lmeval")


# ---- reduce ---------------------------------------------------------------------------------------
def reduce_runs(df: pd.DataFrame, how: str = "final", *, warmup: float = 0, ema: float = 0.9,
                window: int | None = None, source: str | None = None) -> pd.DataFrame:
    """One row per run from a per-step table (columns ``run``, ``step``, ``loss``).

    how: ``"final"`` the last step with a loss; ``"min"`` the step with the lowest loss;
    ``"smooth"`` the last step, its loss replaced by a smoothed value: the mean of the last
    ``window`` losses when ``window`` is given, else a debiased EMA with history weight ``ema``
    (TensorBoard's smoothing; 0 = no smoothing). Rows with ``step < warmup`` are dropped first.
    Other columns come from the chosen row, gaps filled forward within the run, except ``lr``:
    the run's peak learning rate. The raw loss of
    that row is kept as ``loss_raw`` when smoothing.
    """
    source = source or df.attrs.get("source") or "<table>"
    if how not in REDUCERS:
        raise ScalelawError(f"--reduce must be one of {', '.join(REDUCERS)}; got {how!r}")
    if not 0 <= ema < 1:
        raise ScalelawError(f"the EMA weight must be in [0, 1); got {ema!r}")
    if window is not None and (int(window) != window or window < 1):
        raise ScalelawError(f"the smoothing window must be a positive whole number of steps; got {window!r}")
    for col in ("step", "loss"):
        if col not in df.columns:
            raise ScalelawError(f"{source}: cannot reduce per run without a {col!r} column; "
                                f"columns are: {', '.join(map(str, df.columns[:25]))}; name it with --map {col}=<col>")
    attrs = dict(df.attrs)
    d = df  # not changed in place: every step below makes a new table
    refuse_repeated_steps(d, source)
    if "run" not in d.columns:
        d = _run_named_after_file(d, source)
        attrs["run_paths"] = d.attrs.get("run_paths", attrs.get("run_paths"))
    refuse_rows_without_run_id(d["run"], source)
    full = d
    peak = d.groupby("run")["lr"].max() if "lr" in d.columns else None
    stepped = d[d["step"].notna()]
    d = stepped[stepped["step"] >= float(warmup)] if warmup else stepped
    d = d.sort_values(["run", "step"], kind="stable").reset_index(drop=True)
    others = [c for c in d.columns if c not in ("run", "loss")]
    if others:
        d[others] = d.groupby("run", sort=False)[others].ffill()
    d = d[d["loss"].notna()]
    runs, others = _what_runs_logged(full, set(d["run"]))
    refuse_dropped_runs(runs, others, source=source, warmup=warmup, loss_from=attrs.get("loss_column"))
    g = d.groupby("run", sort=True)
    if how == "min":
        out = d.loc[g["loss"].idxmin()]
    else:
        out = g.tail(1).set_index("run", drop=False).sort_index()
        if how == "smooth":
            raw = out["loss"].to_numpy()
            if window:
                sm = g["loss"].apply(lambda s: s.tail(int(window)).mean())
            else:
                sm = _ema_final(d, ema)
            out["loss_raw"] = raw
            out["loss"] = sm.reindex(out.index).to_numpy()
    out = out.reset_index(drop=True)
    if peak is not None:  # a run's lr is its peak (over all logged steps), not the decayed last value
        out["lr"] = peak.reindex(out["run"]).to_numpy()
    out.attrs.update(attrs)
    out.attrs["reduce"] = _reduce_settings(how, warmup, ema, window)
    return out


def _reduce_settings(how: str, warmup: float, ema: float, window: int | None) -> dict:
    """What a reduced table records of its reduction (``attrs["reduce"]``), here and in the
    streaming reducer: the smoothing window, else the EMA weight when smoothing."""
    return {"how": how, "warmup": warmup, **({"window": window} if window else {"ema": ema} if how == "smooth" else {})}


def refuse_repeated_steps(df: pd.DataFrame, source: str) -> None:
    """Refuse a per-step table in which one run (or, without a run column, the table) logs a loss
    twice at one step: several runs in one file, or one run id shared by several runs. Reducing
    would merge them into one row. The message names a column that tells the runs apart
    (``--map run=COLUMN``) when one does (:func:`_run_column_candidate`)."""
    if "step" not in df.columns or "loss" not in df.columns:
        return
    d = df[df["step"].notna() & df["loss"].notna()]
    by = ["run", "step"] if "run" in d.columns else ["step"]
    dup = d.duplicated(subset=by, keep=False).to_numpy()
    if not dup.any():
        return
    rows = np.flatnonzero(dup)
    first = d.iloc[rows[0]]
    at = f"step {first['step']:g} appears {int((d[by] == first[by]).all(axis=1).sum())} times"
    named = df.attrs.get("columns_from") or {}
    cand = _run_column_candidate(d, by[:-1])
    if cand is not None:
        fix = f"name the column that tells the runs apart: --map run={named.get(cand, cand)}"
    else:
        fix = ("add a column with a run id per row and name it with --map run=<column>, or split the file "
               "into one file per run")
    if "run" in d.columns:
        what = (f"run {first['run']!r} logs a loss more than once at one step ({at} with a loss, rows of "
                "several runs under one id, or a run's log given twice)")
    else:
        what = (f"the table has no run column and its steps repeat ({at} with a loss): it holds several "
                "runs")
    raise ScalelawError(f"{source}: {what}, so reducing would merge them into one row; {fix}; "
                        "a resumed run that logged steps again: keep one copy of those rows")


def _run_column_candidate(d: pd.DataFrame, within: list) -> str | None:
    """A column (besides ``within`` + the step, the loss and the other losses) that, with
    ``within``, makes every (run, step) of ``d`` unique while taking far fewer values than there
    are rows (a run setting, not a per-step quantity such as tokens): text columns first, then
    the one with the fewest values."""
    best = None
    for c in d.columns:
        if c in ("step", "loss", "run", *within) or _is_other_loss(c) or c in ("D", "C"):
            continue
        col = d[c]
        k = col.nunique(dropna=True)
        if k < 2 or col.isna().any() or 2 * k > len(d):
            continue
        if d.duplicated(subset=[*within, c, "step"]).any():
            continue
        rank = (not (pd.api.types.is_string_dtype(col) or pd.api.types.is_object_dtype(col)), k)
        if best is None or rank < best[0]:
            best = (rank, c)
    return None if best is None else str(best[1])


def refuse_rows_without_run_id(run: pd.Series, source: str) -> None:
    """Refuse rows without a run id (see :func:`refuse_dropped_runs`); ``run`` is the run column."""
    no_id = np.flatnonzero(run.isna().to_numpy())
    if len(no_id):
        refuse_dropped_runs(None, None, source=source, no_id=(len(no_id), int(no_id[0])))


def _runs(names) -> str:
    """'run 'a'' / 'runs 'a', 'b' and 3 more' for a message."""
    shown = ", ".join(repr(str(r)) for r in names[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"run {shown}" if len(names) == 1 else f"runs {shown}{more}"


def _has(names) -> str:
    return "has" if len(names) == 1 else "have"


def _it(names) -> str:
    return "it" if len(names) == 1 else "them"


def _is_other_loss(col) -> bool:
    """A loss column other than the table's ``loss`` (``loss_train``, ``loss_val``, ...; not the
    raw loss a smoothed reduction keeps beside it), which ``--map loss=`` could choose."""
    return str(col).startswith("loss_") and col != "loss_raw"


def _what_runs_logged(d: pd.DataFrame, kept: set) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-run summaries :func:`refuse_dropped_runs` takes, from a per-step table (before the
    warm-up cut; every row with a run id) and the runs the reduced table keeps. Other loss columns
    are named as in the user's input (``attrs["columns_from"]``, see :func:`scalelaw.schema.normalize`),
    which is what ``--map`` takes."""
    named = d.attrs.get("columns_from") or {}
    other = [c for c in d.columns if _is_other_loss(c)]
    logged = d[["loss"] + other].notna().groupby(d["run"], sort=True).any()
    runs = pd.DataFrame({"loss": logged["loss"],
                         "last": d["step"].where(d["loss"].notna()).groupby(d["run"], sort=True).max()})
    runs["kept"] = runs.index.isin(list(kept))
    others = logged[other]
    others.columns = [named.get(c, c) for c in other]
    return runs, others


def refuse_dropped_runs(runs: pd.DataFrame | None, others: pd.DataFrame | None, *, source: str, warmup: float = 0,
                        loss_from: str | None = None, no_id: tuple[int, int] | None = None) -> None:
    """Reducing groups by run and keeps the rows with a step and a loss at or after the warm-up
    cut: a row without a run id, a run without a loss (e.g. a panel where one run logs
    ``train/loss`` and another ``val_loss``, the latter chosen as the loss), a run whose losses
    all lack a step or all come before the cut would silently be left out. Refuse each, in that
    order, naming the runs and the fix. Shared by :func:`reduce_runs` and the streaming reducer
    (:func:`scalelaw.io.tabular.try_stream_reduce`), so both give the same messages.

    runs: one row per run id (index, sorted) with ``loss`` (a value in the loss column in any
    row), ``last`` (the last step of a row with a loss; NaN when no such row has a step) and
    ``kept`` (a loss at or after the cut, with a step). others: the same runs, one true/false
    column per other loss column, named as the user's input names it (a value in it; None or no
    columns when there are none). no_id: (rows without a run id,
    the first of them counted from 0). loss_from: where the loss column came from
    (``attrs["loss_column"]``)."""
    if no_id and no_id[0]:
        n, first = no_id
        where = f"row {first + 1} of the table" if n == 1 else f"the first is row {first + 1} of the table"
        raise ScalelawError(f"{source}: {n} row{'s' if n > 1 else ''} {'has' if n == 1 else 'have'} no run id ({where}), "
                            f"so reducing per run would drop {'it' if n == 1 else 'them'}; fill in the run column "
                            "or remove those rows")
    if runs is None:
        return
    lost = [r for r, ok in runs["loss"].items() if not ok]
    if lost:
        of = f" ({loss_from})" if loss_from and loss_from != "loss" else ""
        logs = [] if others is None else [c for c, has in others.loc[lost].any().items() if has]
        if logs:
            fix = (f"{'it logs' if len(lost) == 1 else 'they log'} {', '.join(map(str, logs))}: use one loss column "
                   "for every run (--map loss=<column>)")
        else:
            fix = f"name {'its' if len(lost) == 1 else 'their'} loss column with --map loss=<column>"
        raise ScalelawError(f"{source}: {_runs(lost)} {_has(lost)} no value in the loss column{of}, so the reduced "
                            f"table would leave {_it(lost)} out; {fix}, or leave {_it(lost)} out of the input")
    gone = [r for r, ok in runs["kept"].items() if not ok]
    unstepped = [r for r in gone if np.isnan(runs.at[r, "last"])]
    if unstepped:
        raise ScalelawError(f"{source}: {_runs(unstepped)} {_has(unstepped)} a loss only in rows without a step, "
                            f"so the reduced table would leave {_it(unstepped)} out; fill in the step column "
                            "(or name it with --map step=<col>)")
    if len(gone) == len(runs):
        raise ScalelawError(f"{source}: no step with a loss is left after the warm-up cut ({warmup}); lower --warmup")
    if gone:
        raise ScalelawError(f"{source}: {_runs(gone)} {_has(gone)} no loss at or after the warm-up cut (step {warmup:g}); "
                            f"{'its last loss is at' if len(gone) == 1 else 'their last losses are at or before'} step "
                            f"{runs.loc[gone, 'last'].max():g}, "
                            f"so the reduced table would leave {_it(gone)} out: lower --warmup, or leave "
                            f"{_it(gone)} out of the input")


def _ema_final(d: pd.DataFrame, w: float) -> pd.Series:
    """Debiased EMA's last value per run (d sorted by run, step): sum (1-w) w^(n-1-k) x_k / (1-w^n)."""
    if w == 0:
        return d.groupby("run", sort=True)["loss"].last()
    n = d.groupby("run", sort=False)["loss"].transform("size").to_numpy()
    k = d.groupby("run", sort=False).cumcount().to_numpy()
    wt = (1 - w) * np.power(w, (n - 1 - k).astype(float))
    num = pd.Series(wt * d["loss"].to_numpy(), index=d.index).groupby(d["run"]).sum()
    sizes = d.groupby("run")["loss"].size().astype(float)
    return num / (1 - np.power(w, sizes))


# ---- dispatch -------------------------------------------------------------------------------------
def detect_format(path: Path) -> str:
    """Format name of a file or folder by extension and a look at its content."""
    from . import tabular

    p = Path(path)
    if p.is_dir():
        if (p / "models").is_dir() and any((p / "models").glob("*.json")):
            return "openlm"
        if (p / "exp_data" / "models").is_dir():
            return "openlm"
        from .lmeval import is_results_folder

        return "lmeval" if is_results_folder(p) else "folder"
    name = p.name.lower()
    if "tfevents" in name:
        return "tensorboard"
    if name == "trainer_state.json":
        return "hf-trainer"
    suf = p.suffix.lower()
    if suf in (".parquet", ".pq"):
        return "parquet"
    if suf in (".log", ".txt", ".out", ".err"):
        from .textlogs import sniff_text

        return sniff_text(p)
    if suf == ".jsonl" or suf == ".ndjson":
        return "jsonl"
    if suf == ".json":
        try:
            with open(p, "rb") as fh:
                head = fh.read(1 << 16)
        except OSError as exc:
            raise ScalelawError(f"cannot read {p}: {exc.strerror}") from None
        if b"log_history" in head:
            return "hf-trainer"
        if head.lstrip().startswith(b"{") and b'"hyperparameters"' in head:
            return "openlm"
        from .lmeval import sniff

        return "lmeval" if sniff(head) else "json"
    if suf in (".csv", ".tsv", ".gz") or suf == "":
        return tabular.sniff_csv(p)
    raise ScalelawError(f"{p}: unknown file type {suf!r}; give CSV, Parquet, JSONL, a TensorBoard event file, "
                        "trainer_state.json, a Megatron/nanoGPT .log, or pass fmt=")


def read_raw(path, fmt: str | None = None, **opts) -> pd.DataFrame:
    """Read one file or folder into a (not yet validated) table with source-specific columns mapped."""
    from . import hf, lmeval, openlm, regmix, tabular, tensorboard, textlogs, wandb

    p = Path(path)
    if not p.exists():
        raise ScalelawError(f"{p} does not exist; give a file, a folder or a dataset name "
                            "(see `scalelaw data list`)")
    fmt = fmt or detect_format(p)
    readers = {
        "csv": tabular.read_csv, "tsv": tabular.read_csv, "parquet": tabular.read_parquet,
        "jsonl": tabular.read_jsonl, "json": tabular.read_json,
        "wandb-history": wandb.read_history, "wandb-panel": wandb.read_panel,
        "tensorboard": tensorboard.read_events, "hf-trainer": hf.read_trainer_state,
        "openlm": openlm.read_exp_data, "megatron": textlogs.read_megatron, "nanogpt": textlogs.read_nanogpt,
        "obsscaling": tabular.read_obsscaling, "steplaw": tabular.read_steplaw,
        "regmix": regmix.read_single, "folder": read_folder, "lmeval": lmeval.read_lmeval,
    }
    if fmt not in readers:
        raise ScalelawError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    df = readers[fmt](p, **{k: v for k, v in opts.items() if k in _accepts(readers[fmt])})
    df.attrs.setdefault("source", str(p))
    df.attrs["format"] = fmt
    return df


def _accepts(fn) -> set:
    import inspect

    return set(inspect.signature(fn).parameters)


def _older_trainer_states(files: list) -> set:
    """The ``trainer_state.json`` files of a folder that are not their run's latest.

    A Hugging Face run folder holds one ``checkpoint-<step>/trainer_state.json`` per saved
    checkpoint, each with the whole log history up to that step, and, once ``save_state()`` ran
    at the end of training, a ``trainer_state.json`` of its own. Only one of them is read per run
    folder: the one reaching the highest step (a checkpoint's step is its number, the top-level
    file's its ``global_step``, else its last logged step), the top-level file on a tie. So a
    top-level file left from before a run was resumed does not hide the resumed run's checkpoints.
    A top-level file is parsed for its step only when its run folder has checkpoints to weigh it
    against (the reader parses the one chosen again)."""
    from .hf import run_folder

    def rank(f):
        if f.parent.name.startswith("checkpoint-"):
            num = f.parent.name[len("checkpoint-"):]
            return int(num) if num.isdigit() else -1, 0
        return _last_step(f), 1

    runs: dict = {}
    for f in files:
        if f.name.lower() == "trainer_state.json":
            runs.setdefault(run_folder(f), []).append(f)
    older = set()
    for cands in runs.values():
        if len(cands) > 1:
            latest = max(cands, key=rank)
            older.update(f for f in cands if f != latest)
    return older


def _hf_run_folders(files: list) -> set:
    """Folders holding a ``trainer_state.json`` or a ``checkpoint-*/trainer_state.json``."""
    from .hf import run_folder

    return {run_folder(f) for f in files if f.name.lower() == "trainer_state.json"}


#: files only a Hugging Face Trainer writes into its output folder: its arguments
#: (``training_args.bin``, saved with every model and checkpoint) and ``save_metrics``' summaries
_TRAINER_SIGNS = ("training_args.bin", "all_results.json", "train_results.json", "eval_results.json")


def _trainer_folders(files: list) -> dict:
    """{folder: the file that shows it}: folders a Hugging Face Trainer wrote, by the files only it
    writes (:data:`_TRAINER_SIGNS`), with or without a ``trainer_state.json``; a ``checkpoint-*``
    folder counts as its parent."""
    from .hf import run_folder

    out: dict = {}
    signs = [f for f in files if f.name.lower() in _TRAINER_SIGNS]
    for f in sorted(signs, key=lambda f: _TRAINER_SIGNS.index(f.name.lower())):  # training_args.bin first
        out.setdefault(run_folder(f), f.name)
    return out


#: what ``save_pretrained`` (model, tokenizer) writes, as a Hugging Face Hub model repository holds it:
#: its settings files (JSON, none of them a log) and, with them, weights and tokenizer files
_MODEL_JSON = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.json", "added_tokens.json", "preprocessor_config.json",
               "model.safetensors.index.json", "pytorch_model.bin.index.json", "adapter_config.json")
_MODEL_SIGNS = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
                "generation_config.json", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")


def _model_folders(files: list) -> dict:
    """{folder: its model files, sorted}: folders holding a Hugging Face model (``config.json`` or
    ``adapter_config.json`` beside weights or tokenizer files), which are not training logs."""
    by: dict = {}
    for f in files:
        low = f.name.lower()
        if low in _MODEL_JSON or low in _MODEL_SIGNS or low.endswith(".safetensors") or \
                (low.startswith("pytorch_model") and low.endswith(".bin")):
            by.setdefault(f.parent, []).append(f.name)
    def order(n):  # the telling ones first: config, weights, tokenizer
        low = n.lower()
        return (0 if low.endswith("config.json") and "_" not in low else 1 if low.endswith((".safetensors", ".bin"))
                else 2 if low.startswith("tokenizer") else 3, n)

    return {d: sorted(names, key=order) for d, names in by.items()
            if {"config.json", "adapter_config.json"} & {n.lower() for n in names}
            and any(n.lower() not in ("config.json", "adapter_config.json") for n in names)}


def _no_log_in_model_folders(p: Path, model: dict) -> ScalelawError:
    """Nothing to read where only Hugging Face model folders (weights, config, tokenizer) are."""
    def files(d):
        return ", ".join(model[d][:4]) + (", ..." if len(model[d]) > 4 else "")

    fix = ("not training logs: it holds the model's weights, config and tokenizer, which say nothing of how "
           "training went; point at the run's trainer_state.json (in the Trainer's output_dir or its checkpoint-* "
           "folders), its TensorBoard logging_dir (report_to='tensorboard'), or a W&B history export instead")
    if p in model:
        return ScalelawError(f"{p}: this looks like a Hugging Face model folder ({files(p)}), {fix}")
    rel = sorted(model, key=str)
    first = rel[0]
    more = f" (and {len(rel) - 1} more like it)" if len(rel) > 1 else ""
    return ScalelawError(f"{p}: found no readable log files; {first.relative_to(p)}{more} looks like a Hugging Face "
                         f"model folder ({files(first)}), {fix}")


def _no_trainer_log(p: Path, trainer: dict) -> ScalelawError:
    """Nothing to read in a folder where a Hugging Face Trainer left only its side files."""
    if p in trainer:
        where = f"this Hugging Face Trainer output folder ({trainer[p]})"
    else:
        rel = sorted(str(d.relative_to(p)) for d in trainer)
        where = f"the Hugging Face Trainer output folder{'s' if len(rel) > 1 else ''} in it ({_names(rel)})"
    return ScalelawError(f"{p}: no training log found in {where}: trainer_state.json is missing (the Trainer writes "
                         "it at each checkpoint save and in trainer.save_state(): training stopped before its first "
                         "save, or save_strategy='no'), and its other files (config, tokenizer, *_results.json) are "
                         "not a log; point at the run's TensorBoard logging_dir (report_to='tensorboard') or a W&B "
                         "history export instead")


def _warn_unlogged_trainer_folders(p: Path, trainer: dict, hf_runs: set, read: list) -> None:
    """Warn of the Hugging Face Trainer output folders under ``p`` that gave no log (no
    trainer_state.json, and no other log file below them read), while other runs were: their runs
    are left out of the table."""
    unread = sorted(d for d in trainer if d not in hf_runs and not any(d == f.parent or d in f.parents for f in read))
    if not unread:
        return
    import warnings

    rel = [str(d.relative_to(p)) if d != p else str(p) for d in unread]
    many = len(rel) > 1
    warnings.warn(f"{p}: {len(rel)} Hugging Face Trainer output folder{'s' if many else ''} ({_names(rel)}) "
                  f"{'hold' if many else 'holds'} no training log and {'are' if many else 'is'} left out: "
                  "trainer_state.json is missing (training stopped before its first save, or save_strategy='no'); "
                  "to include such a run, point at its TensorBoard logging_dir or a W&B history export",
                  stacklevel=3)


def _is_hf_side_file(f: Path, hf_runs) -> bool:
    """A JSON file other than trainer_state.json in a Hugging Face run folder or its checkpoints
    (metrics summaries, model and tokenizer settings): not a log of its own."""
    if f.suffix.lower() != ".json" or f.name.lower() == "trainer_state.json":
        return False
    from .hf import run_folder

    return f.parent in hf_runs or run_folder(f) in hf_runs


def _in_hf_run(f: Path, hf_runs: set) -> bool:
    """A file anywhere below a Hugging Face run folder (e.g. ``runs/<date>_<host>/`` in it)."""
    return any(d in hf_runs for d in f.parents)


def _last_step(f: Path) -> float:
    """A top-level trainer_state.json's step: ``global_step``, else the last logged step; a file
    without either counts as the latest, so that reading it reports what is wrong with it."""
    from .jsonfile import is_number, read_json

    state = read_json(f)
    if not isinstance(state, dict):
        return float("inf")
    def step(v):
        return v if is_number(v) and np.isfinite(v) else None

    if step(state.get("global_step")) is not None:
        return state["global_step"]
    hist = state.get("log_history")
    steps = [step(r.get("step")) for r in hist if isinstance(r, dict)] if isinstance(hist, list) else []
    return max((s for s in steps if s is not None), default=float("inf"))


def read_folder(path: Path) -> pd.DataFrame:
    """Every log file under a folder, concatenated; run ids from each file's folder or name.

    Run ids are unique per file: a run named after its folder or file (TensorBoard, HF, W&B
    history, Megatron/nanoGPT logs; tables without a run column) whose id another file's run has
    too gets the shortest path suffix below ``path`` that tells them apart (``exp1/train`` and
    ``exp2/train`` instead of two ``train``); unique ids are kept. The event files of one
    TensorBoard log folder are one run, as TensorBoard reads them. An id written in the tables of
    two files is refused (see :func:`_unique_run_ids`), so ``--reduce`` never merges two files' runs,
    unless the files log different things of it step by step (W&B panel exports, one metric each).

    Skipped: hidden files, files of no known log type, run settings (``config.json``,
    ``summary.json``, ``wandb-summary.json``, ``config.yaml`` and the W&B sidecars
    ``<stem>_config.json`` / ``<stem>.config.json`` / ``<stem>_summary.json`` /
    ``<stem>.summary.json`` beside a file ``<stem>.*``), plain JSON below the top level and
    RegMix CSVs. A Hugging Face run folder gives one ``trainer_state.json``, its latest (see
    :func:`_older_trainer_states`), not one per checkpoint (each repeats the steps before it).

    A Hugging Face run folder is one holding a ``trainer_state.json`` or a
    ``checkpoint-*/trainer_state.json``; in it and its ``checkpoint-*`` folders, every other JSON
    file is the Trainer's side output (``all_results.json``, ``train_results.json``,
    ``eval_results.json``, the model's ``config.json`` and ``generation_config.json``,
    ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``, ...), not a log,
    and is skipped. So the run folder itself gives the same run as its parent folder. A folder
    the Trainer wrote without a ``trainer_state.json`` (training stopped before its first save, or
    ``save_strategy="no"``), known by ``training_args.bin`` or ``save_metrics``' ``*_results.json``,
    has its JSON files skipped the same way; when nothing else in it is a log, the error says
    trainer_state.json is missing and what to give instead.

    The Trainer also logs to TensorBoard, by default under ``runs/<date>_<host>/`` in the run
    folder (one such folder per launch, so a resumed run has several). Those event files repeat the
    history ``trainer_state.json`` holds, and read beside it they were a second run
    (``<date>_<host>``): TensorBoard event files anywhere in an HF run folder are skipped, so a
    training run is one run, its ``trainer_state.json`` (the latest, as above). Without any
    ``trainer_state.json`` (e.g. ``save_strategy="no"``), the event files are the run's only log
    (and without ``training_args.bin`` the folder is not known to be a Trainer's: PyTorch's
    ``SummaryWriter`` writes the same ``runs/<date>_<host>`` layout for unrelated runs), and they
    are read as everywhere else, a run named after each event file's folder.

    The HF reader takes a run's ``eval_loss`` as its loss when it evaluated, its training loss
    otherwise; in a folder of runs of both kinds, every HF run's loss is kept as ``loss_eval`` or
    ``loss_train`` instead (no ``loss`` column mixing the two), and :func:`load_table` asks for
    ``--map loss=loss_eval`` or ``--map loss=loss_train``, naming the runs of each kind."""
    from .wandb import is_sidecar

    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    stems = {(f.parent, f.stem) for f in files}
    older = _older_trainer_states(files)
    hf_runs = _hf_run_folders(files)
    trainer = _trainer_folders(files)
    model = _model_folders(files)
    trainer_runs = hf_runs | set(trainer)
    parts, read = [], []
    for f in files:
        name = f.name.lower()
        if name in ("config.json", "summary.json", "wandb-summary.json", "config.yaml") or is_sidecar(f, stems):
            continue
        if f in older or _is_hf_side_file(f, trainer_runs):
            continue
        if f.parent in model and name in _MODEL_JSON:  # a model's settings and tokenizer, not a log
            continue
        if "tfevents" in name and _in_hf_run(f, hf_runs):  # the Trainer's TensorBoard copy of trainer_state
            continue
        try:
            fmt = detect_format(f)
        except ScalelawError:
            continue
        if fmt in ("json",) and f.parent != p:
            continue
        if fmt == "regmix":
            continue
        df = read_raw(f, fmt)
        if _run_column(df) is None:  # one run's log, named after its folder (its stem at the top)
            rel = f.parent.relative_to(p)
            df = _one_run(df, str(rel) if str(rel) != "." else f.stem, f)
        parts.append(df)
        read.append((f, fmt))
    if not parts and trainer:
        raise _no_trainer_log(p, trainer)
    if not parts and model:
        raise _no_log_in_model_folders(p, model)
    _warn_unlogged_trainer_folders(p, trainer, hf_runs, [f for f, _ in read])
    if not parts:
        raise ScalelawError(f"{p}: found no readable log files (CSV, Parquet, JSONL, tfevents, "
                            "trainer_state.json, .log) in this folder")
    if len({_run_column(part) for part in parts}) > 1:  # one run column, not one per name (run, name, ...)
        parts = [part.rename(columns={_run_column(part): "run"}) for part in parts]
    parts = _unique_run_ids(parts, read, p)
    parts = _aligned_columns(parts)
    mixed = _unmix_hf_losses(parts)
    loss_from = _common_loss_column(parts)
    df = pd.concat(parts, ignore_index=True, sort=False)
    df.attrs["source"] = str(p)
    df.attrs["run_paths"] = _run_paths(parts)
    if mixed:
        df.attrs["mixed_losses"] = {kind: sorted({str(r) for i in idx for r in parts[i]["run"].unique()})
                                    for kind, idx in mixed.items()}
    elif loss_from is not None:  # every loss came from one reader's choice (e.g. eval_loss)
        df.attrs["loss_column"] = loss_from
    return df


#: canonical columns a folder's files may name differently (loss and run have their own rules)
_ALIGNED = ("step", "N", "N_nonembed", "D", "C", "lr", "batch_tokens", "seq_len")


def _column_for(df: pd.DataFrame, canon: str) -> str | None:
    """The column of ``df`` that :func:`scalelaw.schema.normalize` would make ``canon``, read alone:
    ``canon`` itself, else the first column named like it (a W&B history's ``_step``, ``iteration``,
    ``params``, ``tokens``, ...)."""
    from ..schema import CANONICAL, FAMILIES, _canonical_for

    if canon in df.columns:
        return canon
    return next((c for c in df.columns if isinstance(c, str) and c not in CANONICAL and not c.startswith(FAMILIES)
                 and _canonical_for(c) == canon), None)


def _aligned_columns(parts: list) -> list:
    """A folder's tables with each canonical column under one name where the files name it
    differently. They are concatenated before :func:`scalelaw.schema.normalize` renames aliases, and it
    takes one column per canonical name: a W&B history's ``_step`` beside another file's ``step``
    stayed ``_step``, so that file's rows had no step (and reducing left its runs out). So each
    table's own column for it (as normalize would take it, read alone) is renamed to the canonical
    name first."""
    for canon in _ALIGNED:
        cols = [_column_for(part, canon) for part in parts]
        if len({c for c in cols if c is not None}) < 2:
            continue
        parts = [part.rename(columns={c: canon}) if c not in (None, canon) else part for part, c in zip(parts, cols)]
    return parts


def _run_column(df: pd.DataFrame) -> str | None:
    """The column :func:`scalelaw.schema.normalize` will take the run ids from: ``run``, else the
    first text column of another name for it (``name``, ``run_id``, ...); None without one."""
    from ..schema import _canonical_for

    if "run" in df.columns:
        return "run"
    return next((c for c in df.columns if _canonical_for(str(c)) == "run"
                 and not pd.api.types.is_numeric_dtype(df[c])), None)


def _unique_run_ids(parts: list, read: list, p: Path) -> list:
    """The tables of a folder's files (``read``: (file, format) of each) with unique run ids:
    runs named after their folder or file (``attrs["run_paths"]``) that would share an id with a
    run of another file get the shortest path suffix below ``p`` that tells them apart (see
    :mod:`scalelaw.io.runids`); the event files of one TensorBoard log folder stay one run (a run
    resumed or restarted writes a new one beside the old). An id written in two files is one run
    only where the files log different things of it, step by step (e.g. W&B panel exports, one
    metric each; see :func:`_logged`); otherwise it, or an id no path tells apart, is refused:
    --reduce would merge two files' runs into one."""
    def clash(run, a, b):
        return ScalelawError(f"{p}: run {run!r} is in both {a} and {b}; one id for two files' runs would merge "
                             "them into one run: rename the run in one of them (its run column, or the file or folder "
                             "it is named after), or load them separately")

    return _unique_ids_across(parts, [str(f) for f, _ in read], [_logged(df) for df in parts], clash, base=p,
                              folder_runs={i for i, (_, fmt) in enumerate(read) if fmt == "tensorboard"})


def _logged(df: pd.DataFrame) -> frozenset | None:
    """What a per-step table logs: its columns by canonical name, but for run and step; None
    without a step column (a per-run table, whose rows cannot be joined step by step)."""
    from ..schema import _canonical_for

    cols = {_canonical_for(str(c)) or str(c) for c in df.columns}
    return frozenset(cols - {"run", "step"}) if "step" in cols else None


def _unique_ids_across(parts: list, labels: list, logged: list, clash, *, base: Path | None = None,
                       folder_runs=frozenset()) -> list:
    """``parts`` with run ids unique across them (see :mod:`scalelaw.io.runids`): runs named after
    a path (``attrs["run_paths"]``) that share an id with another part's run are lengthened into
    the path suffix (below ``base``) that tells them apart; those of the parts in ``folder_runs``
    are one run per folder (TensorBoard). An id written in several parts is one run when every one
    of them logs it step by step and no two log the same thing (``logged``: see :func:`_logged`);
    else ``clash(id, label, other label)`` is raised, as for a path-named id nothing tells apart."""
    from .runids import Origin, path_names, renamed, unique_ids

    entries = []  # (part, run id, path it is named after or None)
    for i, df in enumerate(parts):
        col = _run_column(df)
        if col is not None:
            paths = df.attrs.get("run_paths") or {}
            entries += [(i, run, paths.get(run)) for run in df[col].dropna().unique()]
    written: dict = {}
    for i, run, path in entries:
        if path is None:
            written.setdefault(str(run), []).append(i)
    joined = {run for run, idx in written.items() if len(idx) > 1 and _apart([logged[i] for i in idx])}
    for run, idx in written.items():  # an id written in parts that cannot be joined: name two that log alike
        if len(idx) > 1 and run not in joined:
            a, b = next((a, b) for k, a in enumerate(idx) for b in idx[k + 1:]
                        if logged[a] is None or logged[b] is None or logged[a] & logged[b])
            raise clash(run, labels[a], labels[b])
    origins = []
    for i, run, path in entries:
        if path is not None:
            key = ("folder", path) if i in folder_runs else ("part", i)
            origins.append(Origin(key, path_names(path, base, start=run), labels[i]))
        else:
            key = ("joined", str(run)) if str(run) in joined else ("part", i)
            origins.append(Origin(key, (str(run),), labels[i]))
    new: dict = {}
    for (i, run, _), rid in zip(entries, unique_ids(origins, clash)):
        new.setdefault(i, {})[run] = rid
    return [renamed(df, new.get(i, {})) for i, df in enumerate(parts)]


def _apart(logged: list) -> bool:
    """Whether tables that log these (see :func:`_logged`) log disjoint things, each step by step."""
    seen: set = set()
    for cols in logged:
        if cols is None or cols & seen:
            return False
        seen |= cols
    return True


#: the loss a Hugging Face trainer_state.json gave (:func:`scalelaw.io.hf.read_trainer_state`), by
#: ``attrs["loss_column"]``: the column it is kept as when a folder holds runs of both kinds
_HF_LOSSES = {"eval_loss": "loss_eval", "loss (training)": "loss_train"}


def _unmix_hf_losses(parts: list) -> dict | None:
    """The HF reader takes a run's eval_loss as its loss when it evaluated, its training loss
    otherwise. When a folder (or the inputs of :func:`load_tables`) holds runs of both kinds, one
    ``loss`` column would mix the two: each such table's loss is then kept as ``loss_eval`` or
    ``loss_train`` instead (in place in ``parts``), and {kind: [indices into parts]} returned;
    None when not mixed. A table is of a kind when its whole loss column is (``attrs["loss_column"]``:
    a trainer_state.json, or a folder of runs of one kind, see :func:`read_folder`)."""
    kinds: dict = {}
    for i, df in enumerate(parts):
        if df.attrs.get("loss_column") in _HF_LOSSES and "loss" in df.columns:
            kinds.setdefault(df.attrs["loss_column"], []).append(i)
    if len(kinds) < 2:
        return None
    for kind, idx in kinds.items():
        for i in idx:
            parts[i] = parts[i].rename(columns={"loss": _HF_LOSSES[kind]})
            parts[i].attrs.pop("loss_column", None)
    return kinds


def _refuse_mixed_losses(df: pd.DataFrame, mapping, source: str) -> None:
    """A folder of HF runs, some evaluated and some not (see :func:`_unmix_hf_losses`), needs the
    user to choose the loss: refuse it without ``--map loss=...``, naming the runs of each kind."""
    mixed = df.attrs.get("mixed_losses")
    if not mixed or "loss" in (mapping or {}):
        return
    ev, tr = mixed["eval_loss"], mixed["loss (training)"]
    raise ScalelawError(f"{source}: Hugging Face {_runs(ev)} logged eval_loss and {_runs(tr)} only a training loss, "
                        "so one loss column would mix evaluation and training losses; choose one for every run: "
                        "--map loss=loss_eval or --map loss=loss_train")


def load_table(source, *, mapping: Mapping[str, str] | None = None, units=None, reduce: str | None = None,
               fmt: str | None = None, warmup: float = 0, ema: float = 0.9, window: int | None = None,
               required=(), **opts) -> pd.DataFrame:
    """A validated run table from a path (file or folder), a DataFrame or a dataset name.

    mapping: {canonical: column}; units: {column: factor or unit name} or ["N=B", ...];
    reduce: None (keep every row), "final", "smooth" or "min" (one row per run, see
    :func:`reduce_runs`; ``warmup``, ``ema``, ``window`` tune it); fmt: force a format (see
    ``FORMATS``); required: columns that must be present without NaN. Extra keyword options go
    to the format's reader (e.g. ``seq_len=`` for Megatron logs). Several inputs: :func:`load_tables`.
    """
    df, name, done = _read_source(source, mapping=mapping, units=units, reduce=reduce, fmt=fmt, warmup=warmup,
                                  ema=ema, window=window, opts=opts)
    if done:
        return validate(df, required=required, source=name, per_run=True)
    df = _normalized(df, name, mapping=mapping, units=units)
    return _finished(df, name, reduce=reduce, warmup=warmup, ema=ema, window=window, required=required)


def _run_named_after_file(df: pd.DataFrame, source) -> pd.DataFrame:
    """A per-step table without a run column is one run's log: name the run after its file (its
    stem)."""
    return _one_run(df, Path(str(source)).stem or "run", source if Path(str(source)).is_file() else None)


def _one_run(df: pd.DataFrame, run: str, path=None) -> pd.DataFrame:
    """``df``, a log without a run column, as the one run ``run``; the log's ``path`` is recorded in
    ``attrs["run_paths"]`` so that clashing ids get a longer path (see scalelaw.io.runids)."""
    out = df.assign(run=run)
    out.attrs = dict(df.attrs)
    if path is not None:
        out.attrs["run_paths"] = {run: str(path)}
    return out


def _read_source(source, *, mapping, units, reduce, fmt, warmup, ema, window, opts) -> tuple[pd.DataFrame, str, bool]:
    """(table, name, done) for :func:`load_table`: the table as read (not yet normalized), or, done,
    the reduced table the streaming reducer gave (normalized; validate is left)."""
    if isinstance(source, pd.DataFrame):
        return source, str(source.attrs.get("source") or "<DataFrame>"), False
    s = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    if not Path(s).exists():
        from .. import datasets

        if s in datasets.names():
            return datasets.load(s), s, False
        import difflib

        close = difflib.get_close_matches(s, datasets.names(), n=3, cutoff=0.6)
        hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close else
                "check the path, or see `scalelaw data list` for dataset names")
        raise ScalelawError(f"{s} is neither an existing file or folder nor a registered dataset; {hint}")
    from ..util import require_readable
    require_readable(s, "input")
    if reduce and fmt in (None, "csv", "wandb-history"):
        from .tabular import try_stream_reduce

        fast = try_stream_reduce(Path(s), reduce, mapping=mapping, units=units, warmup=warmup, ema=ema, window=window)
        if fast is not None:
            return fast, s, True
    return read_raw(s, fmt, **opts), s, False


def _normalized(df: pd.DataFrame, name: str, *, mapping, units) -> pd.DataFrame:
    _refuse_mixed_losses(df, mapping, name)
    df = normalize(df, mapping=mapping, units=units, source=name)
    df.attrs.pop("mixed_losses", None)  # the loss is chosen now
    refuse_repeated_steps(df, name)  # several runs in one log: refused with or without --reduce
    return df


def _finished(df: pd.DataFrame, name: str, *, reduce, warmup, ema, window, required) -> pd.DataFrame:
    if reduce:
        df = reduce_runs(df, reduce, warmup=warmup, ema=ema, window=window, source=name)
    validate(df, required=required, source=name, per_run=True if reduce else None)
    if reduce or "step" not in df.columns:
        warn_heuristics(df)
    return df


def load_tables(sources, *, mapping: Mapping[str, str] | None = None, units=None, reduce: str | None = None,
                fmt: str | None = None, warmup: float = 0, ema: float = 0.9, window: int | None = None,
                required=(), **opts) -> pd.DataFrame:
    """One validated run table from several inputs (as :func:`load_table` takes them, with the same
    options for each), each read and reduced on its own, then concatenated. Per-step inputs that
    log different things of one run id written in them (e.g. W&B panel exports, one metric per
    file) are joined before reducing, as in a folder (see :func:`_joined_inputs`).

    The inputs' losses must be of one kind, as in one folder (see :func:`read_folder`): when
    their ``loss`` columns came from different columns (``attrs["loss_column"]``: e.g.
    ``val_loss`` in one, ``train_loss`` in another; an evaluated HF run's eval_loss, an
    unevaluated one's training loss), the table would mix them, and without ``--map loss=...``
    (``mapping={"loss": ...}``) that is refused, naming the inputs of each kind and the columns
    ``--map`` could choose. Columns named alike (val_loss, valid_loss, val/loss) are one kind.
    Hugging Face inputs of both kinds keep their loss as ``loss_eval`` or ``loss_train``, as in a
    folder, so ``--map loss=loss_eval`` or ``--map loss=loss_train`` chooses for every one.
    ``attrs`` are the first input's, with ``source`` naming all (``a + b``), and ``columns_from``
    and ``loss_column`` kept where the inputs agree.

    Run ids are unique across the inputs, as in one folder (see :func:`_unique_input_run_ids`):
    runs named after their folder or file get the path suffix that tells them apart
    (``exp1/train``, ``exp2/train``); an id written in two inputs is refused."""
    sources = list(sources)
    kw = dict(mapping=mapping, units=units, reduce=reduce, fmt=fmt, warmup=warmup, ema=ema, window=window)
    if not sources:
        raise ScalelawError("no input given; give one or more files, folders or dataset names")
    if len(sources) == 1:
        return load_table(sources[0], required=required, **kw, **opts)
    read = [_read_source(s, **kw, opts=opts) for s in sources]
    tables, names, done = (list(t) for t in zip(*read))
    choose = "loss" in (mapping or {})
    if choose:  # HF inputs of both kinds: loss_eval / loss_train, as in one folder
        raw = [i for i in range(len(tables)) if not done[i]]
        sub = [tables[i] for i in raw]
        mixed = _unmix_hf_losses(sub)
        for j, i in enumerate(raw):
            tables[i] = sub[j]
            if mixed and any(j in idx for idx in mixed.values()) and mapping["loss"] in _HF_LOSSES.values() \
                    and mapping["loss"] not in tables[i].columns:
                tables[i] = tables[i].assign(**{mapping["loss"]: np.nan})  # its runs are named as lacking it
    parts = [t if done[i] else _normalized(t, names[i], mapping=mapping, units=units) for i, t in enumerate(tables)]
    # several per-step logs without run ids: each input is one run's log (as in a folder), not rows to pool
    parts = [_run_named_after_file(t, names[i]) if "step" in t.columns and "run" not in t.columns else t
             for i, t in enumerate(parts)]
    if not choose:
        _refuse_mixed_inputs(parts, names)
    if reduce:  # runs logged across inputs (e.g. one metric per file) are reduced as one, as in a folder
        parts = _unique_input_run_ids(parts, names, per_run=False, done=done)
        parts, names, done = _joined_inputs(parts, names, done)
    parts = [validate(t, required=required, source=names[i], per_run=True) if done[i] else
             _finished(t, names[i], reduce=reduce, warmup=warmup, ema=ema, window=window, required=required)
             for i, t in enumerate(parts)]
    parts = _unique_input_run_ids(parts, names, per_run=bool(reduce))
    df = _joined(parts, names)
    validate(df, required=required, source=df.attrs["source"], per_run=bool(reduce))
    return df


def _joined_inputs(parts: list, names: list, done: list) -> tuple[list, list, list]:
    """(parts, names, done) with the per-step inputs that share a run id written in them (ids
    already checked by :func:`_unique_input_run_ids`: such inputs log different things of the run,
    e.g. W&B panel exports saved one metric per file) concatenated into one input, named
    ``a + b``, at the place of the first of them; so ``--reduce`` reduces the run's rows together,
    as in a folder, instead of each input on its own (an input holding only the lr has no loss)."""
    group = list(range(len(parts)))

    def top(i):
        while group[i] != i:
            i = group[i]
        return i

    seen: dict = {}
    for i, df in enumerate(parts):
        if done[i] or "run" not in df.columns:
            continue
        paths = df.attrs.get("run_paths") or {}
        for run in df["run"].dropna().unique():
            if run in paths:  # named after its file or folder: never one run with another input's
                continue
            j = seen.setdefault(str(run), i)
            if top(j) != top(i):
                group[top(i)] = top(j)
    members: dict = {}
    for i in range(len(parts)):
        members.setdefault(top(i), []).append(i)
    if all(len(m) == 1 for m in members.values()):
        return parts, names, done
    out_parts, out_names, out_done = [], [], []
    for idx in sorted(members.values()):
        if len(idx) == 1:
            i = idx[0]
            out_parts.append(parts[i]), out_names.append(names[i]), out_done.append(done[i])
            continue
        df = _joined([parts[i] for i in idx], [names[i] for i in idx])
        out_parts.append(df), out_names.append(df.attrs["source"]), out_done.append(False)
    return out_parts, out_names, out_done


def _unique_input_run_ids(parts: list, names: list, per_run: bool, done=None) -> list:
    """The inputs' tables with run ids unique across them. Runs scalelaw named after their folder
    or file (``attrs["run_paths"]``: TensorBoard, HF, W&B history, text logs, a table without a run
    column) that share an id with another input's run get the shortest path suffix that tells them
    apart, as in one folder (see :func:`_unique_ids_across`). Ids written in the inputs are the
    user's: they are not renamed, and one in two inputs is refused (but for per-step inputs
    that log different things of it, as in a folder). Such an id names the run in the
    user's other data, and two inputs holding it may well be one run given twice (overlapping
    exports, a file passed twice) rather than two runs; renaming would hide that, and a fit would
    count the run twice. A path given twice is refused the same way. per_run: the inputs are
    per-run tables (reduced), whose rows for one run cannot be joined; done: which inputs are
    (the streaming reducer's), when the others are per-step."""
    def clash(run, a, b):
        return ScalelawError(f"run {run!r} is in both {a} and {b}, so the table would hold two runs under one id (or "
                             "one run twice); rename the run in one of them, or leave out an input given twice (the "
                             "log files of one run: give their folder)")

    logged = [None if per_run or (done and done[i]) else _logged(t) for i, t in enumerate(parts)]
    return _unique_ids_across(parts, names, logged, clash)


def _loss_kind(origin: str) -> str:
    """The kind of loss a ``loss`` column taken from column ``origin`` holds: its loss_ family name
    (val_loss, valid_loss and val/loss are all loss_val; plain loss is loss_other)."""
    from ..schema import _loss_family_name

    return _HF_LOSSES.get(origin) or _loss_family_name(str(origin))


def _refuse_mixed_inputs(parts: list, names: list) -> None:
    """Inputs (normalized, loss not mapped) whose ``loss`` came from columns of different kinds:
    refuse, naming the inputs of each kind and the columns every input has that ``--map loss=``
    could take (an HF input: loss_eval or loss_train, see :func:`load_tables`)."""
    kinds: dict = {}
    choices = None
    for df, name in zip(parts, names):
        origin = df.attrs.get("loss_column") if "loss" in df.columns else None
        if origin is None:
            continue
        kinds.setdefault(_loss_kind(origin), {}).setdefault(origin, []).append(name)
        if origin in _HF_LOSSES:
            can = set(_HF_LOSSES.values())
        else:
            named = df.attrs.get("columns_from") or {}
            can = {named.get(c, c) for c in df.columns if _is_other_loss(c)}
            can |= {origin} - {"loss"}
        choices = can if choices is None else choices & can
    if len(kinds) < 2:
        return
    shown = "; ".join(f"{'the training loss' if origin == 'loss (training)' else origin} in {_names(srcs)}"
                      for by in kinds.values() for origin, srcs in by.items())
    if choices:
        fix = "choose one for every input: " + " or ".join(f"--map loss={c}" for c in sorted(choices))
    else:
        fix = ("choose one for every input with --map loss=<column>; they have no loss column in common: rename "
               "it in the files, or ingest them into separate tables")
    raise ScalelawError(f"the inputs' losses differ: {shown}; one loss column would mix them: {fix}")


def _names(names: list) -> str:
    shown = ", ".join(map(str, names[:5]))
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _run_paths(parts: list) -> dict:
    """The tables' ``attrs["run_paths"]`` merged (run ids are unique across them by now)."""
    return {r: path for t in parts for r, path in (t.attrs.get("run_paths") or {}).items()}


def _joined(parts: list, names: list) -> pd.DataFrame:
    """Inputs' tables concatenated into one, named ``a + b``, with their attrs joined (see
    :func:`_joined_attrs`) and every run's path."""
    df = pd.concat(parts, ignore_index=True, sort=False)
    df.attrs = _joined_attrs(parts)
    df.attrs["source"] = " + ".join(names)
    df.attrs["run_paths"] = _run_paths(parts)
    return df


def _joined_attrs(parts: list) -> dict:
    """The first table's attrs, with ``columns_from`` and ``loss_column`` only where every table
    that has the column agrees on where it came from."""
    attrs = dict(parts[0].attrs)
    named: dict = {}
    clash = set()
    for t in parts:
        for col, orig in (t.attrs.get("columns_from") or {}).items():
            if named.setdefault(col, orig) != orig:
                clash.add(col)
    for t in parts:  # a table with the column under its own name
        clash |= {c for c in named if c in t.columns and c not in (t.attrs.get("columns_from") or {})}
    attrs["columns_from"] = {c: o for c, o in named.items() if c not in clash}
    loss_from = _common_loss_column(parts)
    if loss_from is not None:
        attrs["loss_column"] = loss_from
    else:
        attrs.pop("loss_column", None)
    return attrs


def _common_loss_column(parts: list) -> str | None:
    """The ``attrs["loss_column"]`` every table with a ``loss`` column has (where its loss came from),
    when they all agree; None when they differ or one does not say."""
    origins = {t.attrs.get("loss_column") for t in parts if "loss" in t.columns}
    return origins.pop() if len(origins) == 1 and None not in origins else None
