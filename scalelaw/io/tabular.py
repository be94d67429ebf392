"""Plain tables (CSV/TSV, Parquet, JSON, JSONL), the ObsScaling and Step Law CSVs, and a streaming
reducer that turns a large per-step CSV into one row per run without holding it in memory."""
from __future__ import annotations

import contextlib
import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from .jsonfile import read_json as read_json_document
from ..schema import normalize

STEPLAW_SEQ_LEN = 2048


# ---- sniffing --------------------------------------------------------------------------------------
def csv_header(p: Path) -> list[str]:
    """The header row of a CSV/TSV file."""
    try:
        with open(p, "r", encoding="utf-8", errors="replace", newline="") as fh:
            first = fh.readline()
    except OSError as exc:
        raise ScalelawError(f"cannot read {p}: {exc.strerror}") from None
    if not first.strip():
        raise ScalelawError(f"{p}: the file is empty (no header row); check the export")
    sep = "\t" if p.suffix.lower() == ".tsv" or ("\t" in first and "," not in first) else ","
    return next(csv.reader([first], delimiter=sep))


def sniff_csv(p: Path) -> str:
    """Which CSV flavour: wandb-history, wandb-panel, regmix, obsscaling, steplaw or plain csv."""
    if p.suffix.lower() == ".gz":
        return "csv"
    cols = csv_header(p)
    s = set(cols)
    if "index" in s and (any(c.startswith("train_the_pile_") for c in cols)
                         or any(c.startswith("metric/the_pile_") for c in cols)):
        return "regmix"
    if "Model Size (B)" in s:
        return "obsscaling"
    if "smooth loss" in s and "bs" in s:
        return "steplaw"
    if "_step" in s:
        return "wandb-history"
    if "Step" in s and any(" - " in c for c in cols):
        return "wandb-panel"
    return "tsv" if p.suffix.lower() == ".tsv" else "csv"


# ---- readers -------------------------------------------------------------------------------------
def _line_of(msg: str) -> str:
    m = re.search(r"line (\d+)", msg)
    return f" line {m.group(1)}" if m else ""


def read_csv(p: Path, sep: str | None = None) -> pd.DataFrame:
    """A CSV or TSV file as a table (no column mapping yet)."""
    p = Path(p)
    if sep is None:
        sep = "\t" if p.suffix.lower() == ".tsv" else ","
    try:
        df = pd.read_csv(p, sep=sep)
    except pd.errors.EmptyDataError:
        raise ScalelawError(f"{p}: the file is empty; check the export") from None
    except pd.errors.ParserError as exc:
        raise ScalelawError(f"{p}{_line_of(str(exc))}: malformed CSV ({str(exc).strip().splitlines()[-1]}); "
                            "fix that line or re-export the file") from None
    except UnicodeDecodeError as exc:
        raise ScalelawError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV") from None
    except OSError as exc:
        raise ScalelawError(f"cannot read {p}: {exc}") from None
    df.attrs["source"] = str(p)
    return df


def read_parquet(p: Path) -> pd.DataFrame:
    """A Parquet file as a table (attrs written by scalelaw are restored)."""
    try:
        df = pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise ScalelawError(f"{p}: cannot read as Parquet ({type(exc).__name__}: {str(exc)[:200]}); "
                            "check the file is a complete Parquet file") from None
    df.attrs.setdefault("source", str(p))
    return df


def read_jsonl(p: Path) -> pd.DataFrame:
    """One JSON object per line; a malformed line raises naming its number."""
    from .wandb import read_history

    rows = []
    try:
        fh = open(p, "r", encoding="utf-8")
    except OSError as exc:
        raise ScalelawError(f"cannot read {p}: {exc.strerror}") from None
    with fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ScalelawError(f"{p} line {i}: not valid JSON ({exc}); fix or delete that line") from None
            if not isinstance(obj, dict):
                raise ScalelawError(f"{p} line {i}: expected a JSON object per line, got {type(obj).__name__}")
            rows.append(obj)
    if rows and "_step" in rows[0]:
        return read_history(p, rows=rows)
    df = pd.json_normalize(rows, sep="/") if rows else pd.DataFrame()
    df.attrs["source"] = str(p)
    return df


def read_json(p: Path) -> pd.DataFrame:
    """A JSON table: a list of records, or an object of columns."""
    obj = read_json_document(p)
    try:
        if isinstance(obj, list):
            if not all(isinstance(r, dict) for r in obj):
                raise ValueError("a list of objects is needed")
            df = pd.json_normalize(obj, sep="/") if obj else pd.DataFrame()
        elif isinstance(obj, dict) and obj and all(isinstance(v, list) for v in obj.values()):
            df = pd.DataFrame(obj)
        else:
            raise ValueError("neither a list of records nor an object of equal-length columns")
    except ValueError as exc:
        raise ScalelawError(f"{p}: JSON is not a table ({exc}); give a list of run objects") from None
    df.attrs["source"] = str(p)
    return df


def _bench_name(col: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", col.lower()).strip("_")


def read_obsscaling(p: Path) -> pd.DataFrame:
    """ObsScaling's model table: ``model``, ``family``, N = Model Size (B)*1e9,
    D = Pretraining Data Size (T)*1e12, C = FLOPs (1E21)*1e21, ``score_<benchmark>`` columns."""
    raw = read_csv(p)
    out = pd.DataFrame({"run": raw["Model"].astype(str), "model": raw["Model"].astype(str)})
    if "Model Family" in raw:
        out["family"] = raw["Model Family"].astype(str)
    size_cols = {"Model Size (B)": ("N", 1e9), "Pretraining Data Size (T)": ("D", 1e12), "FLOPs (1E21)": ("C", 1e21)}
    units = {}
    for col, (canon, f) in size_cols.items():
        if col in raw:
            out[canon] = pd.to_numeric(raw[col], errors="coerce") * f
            units[canon] = f
    for col in raw.columns:
        if col in size_cols or col in ("Model", "Model Family"):
            continue
        vals = pd.to_numeric(raw[col], errors="coerce")
        out[f"score_{_bench_name(col)}"] = vals
    out.attrs.update({"source": str(p), "units": units, "C_convention": "given"})
    return out


def read_steplaw(p: Path) -> pd.DataFrame:
    """Step Law's sweep CSVs: N (non-embedding) -> ``N`` and ``N_nonembed``; ``bs`` sequences of
    2048 -> ``batch_tokens``; ``loss``, ``smooth_loss``; ``Na`` -> ``N_active``; other columns
    as ``hp_<name>``."""
    raw = read_csv(p)
    need = {"N", "D", "lr", "bs", "loss", "smooth loss"}
    if not need <= set(raw.columns):
        raise ScalelawError(f"{p}: not a Step Law sweep CSV; needs columns {', '.join(sorted(need))}")
    seq = pd.to_numeric(raw["seq_len"], errors="coerce") if "seq_len" in raw else float(STEPLAW_SEQ_LEN)
    out = pd.DataFrame({
        "N": raw["N"], "N_nonembed": raw["N"], "D": raw["D"], "lr": raw["lr"],
        "batch_tokens": pd.to_numeric(raw["bs"], errors="coerce") * STEPLAW_SEQ_LEN, "seq_len": seq,
        "loss": raw["loss"], "smooth_loss": raw["smooth loss"],
    })
    if "Na" in raw:
        out["N_active"] = raw["Na"]
    if "exp_name" in raw:
        out.insert(0, "run", raw["exp_name"].astype(str))
    for col in raw.columns:
        if col not in ("N", "D", "lr", "loss", "smooth loss", "Na", "exp_name", "seq_len"):
            out[f"hp_{_bench_name(col)}"] = raw[col]
    out.attrs.update({"source": str(p), "N_convention": "non-embedding (Step Law's N)",
                      "batch_convention": f"bs sequences x {STEPLAW_SEQ_LEN} tokens"})
    return out


# ---- streaming per-run reduction -------------------------------------------------------------------
#: CSV files from this size on are reduced per run while streaming (see :func:`try_stream_reduce`)
STREAM_MIN_BYTES = 32 << 20
#: bytes pyarrow parses per batch when streaming
STREAM_BLOCK_SIZE = 4 << 20


def try_stream_reduce(p: Path, how: str, *, mapping=None, units=None, warmup: float = 0, ema: float = 0.9,
                      window: int | None = None, min_bytes: int | None = None,
                      block_size: int | None = None) -> pd.DataFrame | None:
    """Reduce a large long-format CSV (``run``, ``step``, ``loss``, ...) to one row per run in
    batches with pyarrow; None when the file is smaller than ``min_bytes`` (default
    ``STREAM_MIN_BYTES``), not such a CSV, or when the in-memory path must read it: a run's steps
    are out of order or a run logs a loss twice at one step (refused there, see
    :func:`scalelaw.io.refuse_repeated_steps`), or a W&B history has run settings beside it or a
    row without a ``_step`` (:func:`scalelaw.io.wandb.read_history` adds the one and refuses the other).
    Same results as ``reduce_runs``, and the same errors for runs the reduced table would leave
    out (:func:`scalelaw.io.refuse_dropped_runs`), except that gaps in other columns are not
    filled forward. Memory stays near ``40 x block_size`` (pyarrow's parse buffers), whatever
    the file size."""
    from . import REDUCERS
    from .wandb import _sidecar

    p = Path(p)
    min_bytes = STREAM_MIN_BYTES if min_bytes is None else min_bytes
    block_size = STREAM_BLOCK_SIZE if block_size is None else block_size
    if how not in REDUCERS or not p.is_file() or p.suffix.lower() not in (".csv", ".tsv"):
        return None
    if p.stat().st_size < min_bytes:
        return None
    fmt = sniff_csv(p)
    if fmt not in ("csv", "tsv", "wandb-history"):
        return None
    wandb = fmt == "wandb-history"
    if wandb and (_sidecar(p, "config") or _sidecar(p, "summary")):
        return None
    header = csv_header(p)
    if len(set(header)) != len(header):
        return None
    probe = normalize(pd.DataFrame({c: pd.Series([], dtype="float64") for c in header}), mapping=mapping,
                      source=str(p))
    names = dict(zip(header, probe.columns[: len(header)]))
    inv = {v: k for k, v in names.items()}
    if not {"step", "loss"} <= set(inv) or "run" not in inv:
        return None
    try:
        with contextlib.ExitStack() as stack:
            return _stream_reduce(p, how, inv["run"], inv["step"], inv["loss"], header, warmup, ema, window,
                                  block_size, mapping, units, names, stack, wandb, probe.attrs.get("loss_column"))
    except _Unsorted:
        return None


class _Unsorted(Exception):
    """The in-memory path must read the file (see :func:`try_stream_reduce`)."""


def _stream_reduce(p, how, run_col, step_col, loss_col, header, warmup, ema, window, block_size, mapping, units,
                   names_of, stack, wandb, loss_from):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from . import _is_other_loss, _reduce_settings, refuse_dropped_runs
    from .wandb import _BAND

    sep = "\t" if p.suffix.lower() == ".tsv" else ","
    # pyarrow's threaded streaming reader was slower than one thread on 2 vCPUs (measured: 2.6 vs
    # 3.2 s per 10M rows); use threads only where there are cores to spare
    import os

    ropts = pacsv.ReadOptions(block_size=block_size, use_threads=(os.cpu_count() or 1) > 2)
    popts = pacsv.ParseOptions(delimiter=sep)
    # empty cells and pandas' other missing-value words are missing in the run column too (pyarrow
    # reads them as text there by default: a run named '' instead of rows without a run id)
    nulls = list(pacsv.ConvertOptions().null_values) + ["<NA>", "None"]

    def open_(include, types):
        # a Python file object keeps pyarrow from reading the whole file ahead into memory
        # (measured on 10M rows: 56 MB peak pool instead of 630 MB, and no slower)
        fh = stack.enter_context(open(p, "rb"))
        return pacsv.open_csv(fh, read_options=ropts, parse_options=popts,
                              convert_options=pacsv.ConvertOptions(include_columns=include, column_types=types,
                                                                   null_values=nulls, strings_can_be_null=True))

    # probe types on the first rows: numeric columns are kept, text columns other than run dropped
    try:
        first = pd.read_csv(p, sep=sep, nrows=2000)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ScalelawError(f"{p}: cannot parse as CSV ({str(exc).strip().splitlines()[-1][:200]}); fix the file") from None
    band = _BAND if wandb else ()  # the min/max columns read_history drops
    num_cols = [c for c in header if c != run_col and c in first.columns and not (band and c.endswith(band))
                and (pd.api.types.is_numeric_dtype(first[c]) and not pd.api.types.is_bool_dtype(first[c]))]
    if step_col not in num_cols or loss_col not in num_cols:
        return None
    types = {c: pa.float64() for c in num_cols}
    types[run_col] = pa.dictionary(pa.int32(), pa.string())
    reader = open_([run_col] + num_cols, types)
    i_step, i_loss = num_cols.index(step_col), num_cols.index(loss_col)
    lr_col = next((c for c in num_cols if names_of.get(c) == "lr"), None)
    i_lr = num_cols.index(lr_col) if lr_col else None
    # the other loss columns (named as in the file, as --map takes them): which of them a run left out logs
    i_other = [j for j, c in enumerate(num_cols) if _is_other_loss(names_of.get(c))]
    lr_max: list[float] = []
    best_loss: list[float] = []
    ids: dict[str, int] = {}
    last_step: list[float] = []
    final: list = []
    best: list = []
    ema_s: list[float] = []
    cnt: list[int] = []
    tail: list = []
    # what a run with no row kept logged (for refuse_dropped_runs); such a run's rows are all in
    # batches where some row is dropped, so only those batches need to be looked at
    any_loss = np.zeros(0, bool)
    loss_step = np.zeros(0)
    other_any = np.zeros((len(i_other), 0), bool)
    no_id, first_no_id = 0, 0
    w = float(ema)
    rows_seen = 0
    from ..progress import Progress
    bar = Progress(total=None, desc=f"ingest {Path(p).name}", unit="rows")
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            bar.close()
            break
        except pa.ArrowInvalid as exc:
            raise ScalelawError(f"{p}: a value near row {rows_seen + 1} is not a number ({str(exc)[:160]}); "
                                "fix the file") from None
        n = batch.num_rows
        rows_seen += n
        bar.update(n)
        if n == 0:
            continue
        rc = batch.column(0)
        C = [batch.column(j + 1).to_numpy(zero_copy_only=False) for j in range(len(num_cols))]
        if rc.null_count:  # rows without a run id: counted for the error, left out meanwhile
            valid = rc.is_valid().to_numpy(zero_copy_only=False)
            if not no_id:
                first_no_id = rows_seen - n + int(np.argmin(valid))
            no_id += rc.null_count
            if not valid.any():
                continue
            idx = rc.indices.fill_null(0).to_numpy(zero_copy_only=False)[valid]
            C = [c[valid] for c in C]
        else:
            idx = rc.indices.to_numpy(zero_copy_only=False)
        gmap = np.fromiter((ids.setdefault(v, len(ids)) for v in rc.dictionary.to_pylist()), dtype=np.int64)
        gid = gmap[idx]
        step, loss = C[i_step], C[i_loss]
        while len(final) < len(ids):
            last_step.append(-np.inf); final.append(None); best.append(None); ema_s.append(0.0); cnt.append(0)
            lr_max.append(np.nan); tail.append(np.empty(0)); best_loss.append(np.inf)
        if len(any_loss) < len(ids):
            grow = len(ids) - len(any_loss)
            any_loss = np.r_[any_loss, np.zeros(grow, bool)]
            loss_step = np.r_[loss_step, np.full(grow, np.nan)]
            other_any = np.hstack([other_any, np.zeros((len(i_other), grow), bool)])
        st0 = np.r_[0, np.flatnonzero(gid[1:] != gid[:-1]) + 1] if i_lr is not None else None
        if i_lr is not None:  # peak lr over every logged step (before the loss / warm-up filter)
            for g, m in zip(gid[st0].tolist(), np.fmax.reduceat(C[i_lr], st0).tolist()):
                lr_max[g] = np.fmax(lr_max[g], m)
        has_step = ~np.isnan(step)
        if wandb and not has_step.all():
            raise _Unsorted  # read_history names the row without a _step
        has_loss = ~np.isnan(loss)
        keep = has_loss & has_step
        if warmup:
            keep &= step >= warmup
        if not keep.all():
            if st0 is None:
                st0 = np.r_[0, np.flatnonzero(gid[1:] != gid[:-1]) + 1]
            gs = gid[st0]
            np.logical_or.at(any_loss, gs, np.logical_or.reduceat(has_loss, st0))
            np.fmax.at(loss_step, gs, np.fmax.reduceat(np.where(has_loss, step, np.nan), st0))
            for k, j in enumerate(i_other):
                np.logical_or.at(other_any[k], gs, np.logical_or.reduceat(~np.isnan(C[j]), st0))
            gid, C = gid[keep], [c[keep] for c in C]
            step, loss = C[i_step], C[i_loss]
        if len(gid) == 0:
            continue
        brk = np.flatnonzero(gid[1:] != gid[:-1]) + 1
        same = np.ones(len(gid) - 1, bool)
        same[brk - 1] = False
        back = np.diff(step)[same]
        if (back <= 0).any():  # out of order, or a step logged twice (refused by the in-memory path)
            raise _Unsorted
        starts = np.r_[0, brk]
        ends = np.r_[brk, len(gid)]
        picks: list[tuple[list, int, int]] = []  # (state list, run id, row in this batch)
        for a, b in zip(starts.tolist(), ends.tolist()):
            g = int(gid[a])
            if step[a] <= last_step[g]:
                raise _Unsorted
            last_step[g] = step[b - 1]
            picks.append((final, g, b - 1))
            if how == "min":
                j = a + int(np.argmin(loss[a:b]))
                if loss[j] < best_loss[g]:
                    best_loss[g] = loss[j]
                    picks.append((best, g, j))
            elif how == "smooth":
                x = loss[a:b]
                if window:
                    tail[g] = np.concatenate([tail[g], x[-int(window):]])[-int(window):]
                elif w == 0:
                    ema_s[g] = float(x[-1])
                else:
                    m = b - a
                    ema_s[g] = ema_s[g] * w ** m + (1 - w) * float(np.dot(np.power(w, np.arange(m - 1, -1, -1.0)), x))
                cnt[g] += b - a
        if picks:  # gather the chosen rows of every column at once
            idx = np.fromiter((r for _, _, r in picks), dtype=np.int64, count=len(picks))
            vals = np.column_stack([c[idx] for c in C])
            for (state, g, _), v in zip(picks, vals):
                state[g] = v
    names = list(ids)
    kept = np.array([f is not None for f in final[: len(names)]], bool)
    logged = pd.DataFrame({"loss": kept | any_loss[: len(names)], "last": loss_step[: len(names)], "kept": kept},
                          index=names)
    others = pd.DataFrame(other_any[:, : len(names)].T, index=names, columns=[num_cols[j] for j in i_other])
    order = logged.index.argsort(kind="stable")
    refuse_dropped_runs(logged.iloc[order], others.iloc[order], source=str(p), warmup=warmup, loss_from=loss_from,
                        no_id=(no_id, first_no_id))
    rows = np.flatnonzero(kept).tolist()
    pick = best if how == "min" else final
    M = np.vstack([pick[i] for i in rows])
    out = pd.DataFrame(M, columns=num_cols)
    out.insert(0, run_col, [names[i] for i in rows])
    if lr_col:
        out[lr_col] = [lr_max[i] for i in rows]
    if how == "smooth":
        out["loss_raw"] = out[loss_col].to_numpy()
        if window:
            sm = [float(np.mean(tail[i])) for i in rows]
        elif w == 0:
            sm = [ema_s[i] for i in rows]
        else:
            sm = [ema_s[i] / (1 - w ** cnt[i]) for i in rows]
        out[loss_col] = sm
    out = out.sort_values(run_col, kind="stable").reset_index(drop=True)
    out.attrs["source"] = str(p)
    out = normalize(out, mapping=mapping, units=units, source=str(p))
    out.attrs["reduce"] = _reduce_settings(how, warmup, ema, window)
    out.attrs["format"] = "csv-stream"
    return out
