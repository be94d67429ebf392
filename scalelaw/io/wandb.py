"""Weights & Biases exports: API history (``_step`` + metric keys, with ``config.json`` /
``summary.json`` beside it) and the UI panel CSV (``Step``, ``<run> - <metric>``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from .jsonfile import is_number, read_json
from ..schema import ALIASES, _key

#: canonical columns a run's config or summary may supply (constant over the run)
_RUN_CONSTANTS = ("N", "N_nonembed", "D", "C", "batch_tokens", "seq_len", "lr")
#: suffixes of the min/max band columns W&B adds to a sampled export
_BAND = ("__MIN", "__MAX")


def _read_json_obj(p: Path) -> dict:
    return read_json(p, fix="fix or remove the file", expect_object=" of run settings")


def _flat_config(cfg: dict) -> dict:
    """W&B config as {key: scalar}; unwraps {"value": v, "desc": ...} entries, skips ``_wandb``."""
    out = {}
    for k, v in cfg.items():
        if str(k).startswith("_"):
            continue
        if isinstance(v, dict) and "value" in v:
            v = v["value"]
        if isinstance(v, dict):
            for k2, v2 in _flat_config(v).items():
                out[f"{k}.{k2}"] = v2
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[str(k)] = v
    return out


#: the run-settings files a history export ``<stem>.*`` reads beside it: ``<stem><end>``
_SIDECAR_ENDS = {kind: (f"_{kind}.json", f".{kind}.json") for kind in ("config", "summary")}


def is_sidecar(f: Path, stems: set) -> bool:
    """``<stem>_config.json``, ``<stem>.summary.json``, ... beside another file ``<stem>.*``
    (``stems``: {(folder, stem)}): the settings :func:`read_history` reads, not a log."""
    low = f.name.lower()
    return any(low.endswith(end) and (f.parent, f.name[: -len(end)]) in stems
               for ends in _SIDECAR_ENDS.values() for end in ends)


def _sidecar(p: Path, kind: str) -> Path | None:
    names = [p.stem + end for end in _SIDECAR_ENDS[kind]] + [f"{kind}.json"]
    if kind == "summary":
        names.append("wandb-summary.json")
    return next((p.parent / n for n in names if (p.parent / n).is_file()), None)


def read_history(p: Path, rows: list | None = None) -> pd.DataFrame:
    """A W&B history export (CSV or JSONL with ``_step``): one row per logged step. Settings in a
    ``config.json`` beside it become ``hp_<key>`` columns (model size, tokens, batch, lr map to
    their canonical columns when the history lacks them); ``summary.json`` may supply sizes."""
    from .tabular import read_csv

    p = Path(p)
    if rows is not None:
        df = pd.json_normalize(rows, sep="/")
    elif p.suffix.lower() in (".jsonl", ".ndjson"):
        from .tabular import read_jsonl

        df = read_jsonl(p)  # comes back here with rows= when the records have a _step
        if "_step" not in df.columns:
            _check_steps(df, p, "record")
        return df
    else:
        df = read_csv(p)
    _check_steps(df, p, "record" if rows is not None else "line")
    df = df.drop(columns=[c for c in df.columns if str(c).endswith(_BAND)])
    have = {ALIASES.get(_key(c), c) for c in df.columns}
    consts: dict = {}
    cfg_p, sum_p = _sidecar(p, "config"), _sidecar(p, "summary")
    cfg = _flat_config(_read_json_obj(cfg_p)) if cfg_p else {}
    summ = _flat_config(_read_json_obj(sum_p)) if sum_p else {}
    for k, v in cfg.items():
        canon = ALIASES.get(_key(k.split(".")[-1]))
        if canon in _RUN_CONSTANTS and canon not in have and canon not in consts and is_number(v):
            consts[canon] = float(v)
        elif canon == "run" and "run" not in have and isinstance(v, str):
            consts["run"] = v
        else:
            consts[f"hp_{_key(k)}"] = v
    for k, v in summ.items():
        canon = ALIASES.get(_key(k.split(".")[-1]))
        if canon in ("N", "N_nonembed", "D", "C") and canon not in have and canon not in consts and is_number(v):
            consts[canon] = float(v)
    for k, v in consts.items():
        if k not in df.columns:
            df[k] = v
    if "run" not in df.columns and not any(ALIASES.get(_key(c)) == "run" for c in df.columns):
        by_folder = p.stem.lower() in ("history", "wandb_history", "run_history")
        df["run"] = run = p.parent.name if by_folder else p.stem
        df.attrs["run_paths"] = {run: str(p.parent if by_folder else p)}  # see scalelaw.io.runids
    df.attrs["source"] = str(p)
    return df


def _check_steps(df: pd.DataFrame, p: Path, unit: str) -> None:
    """A W&B history has one row per ``_step``: refuse a missing column, rows without a step
    (reduce would drop them) and a step logged twice for a run (reduce would pick one of them).
    A history refused for a repeated step that also has rows without a run id is refused for those
    first, as :func:`scalelaw.io.reduce_runs` would (rows without a run id at one step are not a
    run's repeated step: there is no run to name)."""
    if "_step" not in df.columns:
        raise ScalelawError(f"{p}: a W&B history export needs a '_step' column; columns are: "
                            f"{', '.join(map(str, df.columns[:25]))}; export it with run.history() (which keeps "
                            "_step), or read the file as a plain table (fmt='csv') with --map step=<col>")
    where = (lambda i: f"{p} line {i + 2}") if unit == "line" else (lambda i: f"{p} record {i + 1}")
    step = pd.to_numeric(df["_step"], errors="coerce")
    bad = ~np.isfinite(step.to_numpy(dtype=float))
    if bad.any():
        i = int(bad.nonzero()[0][0])
        raise ScalelawError(f"{where(i)}: _step is {_shown(df['_step'].iloc[i])}, not a step number; every W&B history "
                            "row has one: fix or delete that row")
    run = next((c for c in df.columns if ALIASES.get(_key(c)) == "run"
                and not pd.api.types.is_numeric_dtype(df[c])), None)
    keys = pd.DataFrame({"run": df[run] if run else "", "step": step})
    dup = keys.duplicated()
    if dup.any() and run:
        from . import refuse_rows_without_run_id

        refuse_rows_without_run_id(df[run], str(p))
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        of = f" for run {df[run].iloc[i]!r}" if run else ""
        raise ScalelawError(f"{where(i)}: _step {step.iloc[i]:g} appears more than once{of}; a W&B history has "
                            "one row per step: remove the repeated rows (e.g. of a resumed run exported twice)")


def _shown(v) -> str:
    """A cell for a message: 'empty', the text as written, or the number."""
    if isinstance(v, str):
        return repr(v)
    return "empty" if pd.isna(v) else f"{float(v):g}"


def read_panel(p: Path) -> pd.DataFrame:
    """A W&B UI panel export: ``Step`` plus ``<run> - <metric>`` columns (``__MIN``/``__MAX``
    dropped) -> long table ``run``, ``step``, one column per metric."""
    from .tabular import read_csv

    raw = read_csv(p)
    if "Step" not in raw.columns:
        raise ScalelawError(f"{p}: a W&B panel export needs a 'Step' column; columns are: {', '.join(raw.columns[:10])}")
    step = pd.to_numeric(raw["Step"], errors="coerce")
    bad = ~np.isfinite(step.to_numpy(dtype=float))
    if bad.any():
        i = int(bad.nonzero()[0][0])
        raise ScalelawError(f"{p} line {i + 2}: Step is {_shown(raw['Step'].iloc[i])}, not a number; fix the export")
    parts = []
    for col in raw.columns:
        if col == "Step" or col.endswith(_BAND) or " - " not in col:
            continue
        run, metric = col.rsplit(" - ", 1)
        vals = pd.to_numeric(raw[col], errors="coerce")
        bad = vals.isna() & raw[col].notna() & (raw[col].astype(str).str.strip() != "")
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ScalelawError(f"{p} line {i + 2}: column {col!r} holds {raw[col].iloc[i]!r}, not a number; fix it")
        parts.append(pd.DataFrame({"run": run.strip(), "step": step, "metric": metric.strip(), "value": vals,
                                   "column": col}))
    if not parts:
        raise ScalelawError(f"{p}: no '<run> - <metric>' columns found; export the panel as CSV from the W&B UI")
    long = pd.concat(parts, ignore_index=True).dropna(subset=["value"])
    if long.empty:
        raise ScalelawError(f"{p}: the '<run> - <metric>' columns hold no values; export the panel again")
    n = long.groupby(["column", "step"], sort=False)["value"].nunique()
    if (n > 1).any():
        col, s = n[n > 1].index[0]
        vals = long.loc[(long["column"] == col) & (long["step"] == s), "value"].unique()
        raise ScalelawError(f"{p}: column {col!r} holds {len(vals)} different values at Step {s:g} "
                            f"({', '.join(map(str, vals))}); keep one row per step")
    df = long.pivot_table(index=["run", "step"], columns="metric", values="value", aggfunc="last").reset_index()
    df.columns.name = None
    df.attrs["source"] = str(p)
    return df
