"""TensorBoard event files: every scalar point, read without TensorFlow.

The TFRecord framing is parsed here (uint64 length, uint32 masked CRC, payload, uint32 masked
CRC) and each payload decoded with tensorboardX's ``Event`` protobuf. Both old-style scalars
(``simple_value``) and tensor-valued scalars (``tensor`` with float/double/half/int values or raw
``tensor_content``) are read. Tags become columns (``train/loss`` -> ``train/loss``; the schema's
aliases then pick ``loss``, ``lr``, ...); one row per (run, step), the last value winning.
"""
from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScalelawError

_DT = {1: np.float32, 2: np.float64, 19: np.float16, 3: np.int32, 9: np.int64}


def iter_records(p: Path):
    """Yield (offset, payload bytes) of each TFRecord; a truncated tail record stops with a warning."""
    with open(p, "rb") as fh:
        data = fh.read()
    off, n = 0, len(data)
    while off < n:
        if off + 12 > n:
            warnings.warn(f"{p}: truncated record at byte {off} ignored (file still being written?)", stacklevel=3)
            return
        (length,) = struct.unpack_from("<Q", data, off)
        end = off + 12 + length + 4
        if end > n:
            warnings.warn(f"{p}: truncated record at byte {off} ignored (file still being written?)", stacklevel=3)
            return
        yield off, data[off + 12: off + 12 + length]
        off = end


def _scalar(v) -> float | None:
    """The value of a scalar summary (simple_value or a one-element tensor); None otherwise."""
    which = v.WhichOneof("value")
    if which == "simple_value":
        return float(v.simple_value)
    if which == "tensor":
        t = v.tensor
        if t.float_val:
            return float(t.float_val[0])
        if t.double_val:
            return float(t.double_val[0])
        if t.half_val:  # stored as uint16 bit patterns
            return float(np.array([t.half_val[0]], dtype=np.uint16).view(np.float16)[0])
        if t.int_val:
            return float(t.int_val[0])
        if t.int64_val:
            return float(t.int64_val[0])
        if t.tensor_content and t.dtype in _DT:
            arr = np.frombuffer(t.tensor_content, dtype=_DT[t.dtype])
            if arr.size == 1:
                return float(arr[0])
    return None


def read_event_file(p: Path) -> list[tuple[int, str, float]]:
    """All scalar points (step, tag, value) of one event file."""
    from tensorboardX.proto import event_pb2
    from google.protobuf.message import DecodeError

    out = []
    for off, payload in iter_records(p):
        ev = event_pb2.Event()
        try:
            ev.ParseFromString(payload)
        except DecodeError:
            raise ScalelawError(f"{p}: corrupt TensorBoard record at byte {off}; the file is damaged, "
                                "re-copy it from the training machine") from None
        if not ev.HasField("summary"):
            continue
        for v in ev.summary.value:
            x = _scalar(v)
            if x is not None:
                out.append((int(ev.step), v.tag, x))
    return out


def read_events(path: Path) -> pd.DataFrame:
    """One event file, or every ``*tfevents*`` file under a folder: columns ``run``, ``step`` and
    one per scalar tag. The run id is the event file's folder (relative to ``path`` for folders),
    recorded in ``attrs["run_paths"]`` (see :mod:`scalelaw.io.runids`)."""
    p = Path(path)
    files = sorted(p.rglob("*tfevents*")) if p.is_dir() else [p]
    files = [f for f in files if f.is_file()]
    if not files:
        raise ScalelawError(f"{p}: no TensorBoard event files (*tfevents*) found")
    parts, paths = [], {}
    for f in files:
        pts = read_event_file(f)
        if not pts:
            continue
        run = (str(f.parent.relative_to(p)) if p.is_dir() else f.parent.name) or f.parent.name
        if run == ".":
            run = p.name
        long = pd.DataFrame(pts, columns=["step", "tag", "value"])
        wide = long.pivot_table(index="step", columns="tag", values="value", aggfunc="last").reset_index()
        wide.columns.name = None
        wide.insert(0, "run", run)
        parts.append(wide)
        paths[run] = str(f.parent)
    if not parts:
        raise ScalelawError(f"{p}: the event file(s) hold no scalar values; log scalars with add_scalar")
    df = pd.concat(parts, ignore_index=True, sort=False)
    df = df.groupby(["run", "step"], as_index=False, sort=True).last()
    df.attrs["source"] = str(p)
    df.attrs["run_paths"] = paths
    return df
