"""Megatron-LM and nanoGPT text logs -> per-step tables.

Megatron: `` iteration  100/ 5000 | consumed samples: 51200 | learning rate: 1.5E-04 | ...
| lm loss: 7.1E+00 |`` and ``validation loss at iteration 1000 | lm loss value: 3.26E+00 |``;
tokens ``D`` = consumed samples x ``seq_length`` (from the argument dump, or ``seq_len=``).

nanoGPT: ``iter 100: loss 4.1234, time 123.45ms, mfu 12.34%`` and ``step 100: train loss 4.12,
val loss 4.23``; ``D`` = iterations x tokens per iteration (its ``tokens per iteration will be:``
line, ``batch_size`` x ``block_size`` x ``gradient_accumulation_steps`` from the config dump, or
``tokens_per_iter=``).

``loss`` is the validation loss where logged, else the training loss (``loss_train``). A line
that starts like a log record but does not parse raises naming the file and line number.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from ..errors import ScalelawError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
_MEG_ITER = re.compile(r"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|(.*)$")
_MEG_VAL = re.compile(r"validation loss at iteration\s+(\d+)\s*(?:on [^|]*)?\|(.*)$")
_MEG_SEQ = re.compile(r"^\s*seq_length\s*\.+\s*(\d+)\s*$")
_NANO_ITER = re.compile(rf"^iter (\d+): loss ({_NUM}), time ({_NUM})ms(?:, mfu ({_NUM})%)?\s*$")
_NANO_EVAL = re.compile(rf"^step (\d+): train loss ({_NUM}), val loss ({_NUM})\s*$")
_NANO_TPI = re.compile(r"tokens per iteration will be:\s*([\d,]+)")
_NANO_CFG = re.compile(r"^\s*(batch_size|block_size|gradient_accumulation_steps)\s*=\s*(\d+)")


def _lines(p: Path):
    try:
        with open(p, "r", encoding="utf-8", errors="replace") as fh:
            yield from enumerate(fh, 1)
    except OSError as exc:
        raise ScalelawError(f"cannot read {p}: {exc.strerror}") from None


def sniff_text(p: Path) -> str:
    """'megatron' or 'nanogpt' from the first lines of a text log."""
    for i, line in _lines(p):
        if _MEG_ITER.search(line) or "validation loss at iteration" in line:
            return "megatron"
        if line.startswith(("iter ", "step ")) and ":" in line and "loss" in line:
            return "nanogpt"
        if i > 5000:
            break
    raise ScalelawError(f"{p}: not a recognised text log (Megatron-LM or nanoGPT lines); "
                        "convert it to CSV with columns run, step, loss")


def _fields(body: str, p: Path, i: int) -> dict:
    out = {}
    for part in body.split("|"):
        part = part.strip()
        if not part or ":" not in part:
            continue
        k, v = part.rsplit(":", 1)
        k, v = k.strip(), v.strip()
        if not re.fullmatch(_NUM, v, flags=re.I):
            raise ScalelawError(f"{p} line {i}: field {k!r} holds {v!r}, not a number; fix or delete that line")
        out[re.sub(r"[^0-9a-z]+", "_", k.lower()).strip("_")] = float(v)
    return out


def read_megatron(p: Path, seq_len: int | None = None) -> pd.DataFrame:
    """A Megatron-LM training log as one row per logged iteration."""
    p = Path(p)
    rows: dict[int, dict] = {}
    seq = seq_len
    for i, line in _lines(p):
        if seq_len is None:
            m = _MEG_SEQ.match(line)
            if m:
                seq = int(m.group(1))
                continue
        if "validation loss at iteration" in line:
            m = _MEG_VAL.search(line)
            if not m:
                raise ScalelawError(f"{p} line {i}: malformed validation line; expected "
                                    "'validation loss at iteration N | lm loss value: X |'")
            f = _fields(m.group(2), p, i)
            val = f.get("lm_loss_value", f.get("loss_value"))
            if val is None:
                raise ScalelawError(f"{p} line {i}: validation line without 'lm loss value'")
            rows.setdefault(int(m.group(1)), {})["val_loss"] = val
            continue
        if re.search(r"\biteration\s+\d", line) and "|" in line:
            m = _MEG_ITER.search(line)
            if not m:
                raise ScalelawError(f"{p} line {i}: malformed iteration line; expected "
                                    "' iteration N/ TOTAL | key: value | ...'")
            f = _fields(m.group(3), p, i)
            r = rows.setdefault(int(m.group(1)), {})
            r["hp_train_iters"] = float(m.group(2))
            for k, v in f.items():
                if k == "lm_loss":
                    r["train_loss"] = v
                elif k == "learning_rate":
                    r["lr"] = v
                elif k == "consumed_samples":
                    r["consumed_samples"] = v
                elif k == "consumed_tokens":
                    r["D"] = v
                else:
                    r[k] = v
    if not rows:
        raise ScalelawError(f"{p}: no Megatron iteration lines found; is this a Megatron-LM training log?")
    df = pd.DataFrame.from_dict(rows, orient="index").rename_axis("step").reset_index().sort_values("step")
    if "D" not in df.columns and "consumed_samples" in df.columns:
        if seq:
            df["D"] = df["consumed_samples"] * float(seq)
            df["seq_len"] = float(seq)
        else:
            warnings.warn(f"{p}: no seq_length in the log; tokens (D) not computed; pass seq_len=", stacklevel=3)
    if "global_batch_size" in df.columns and seq:
        df["batch_tokens"] = df["global_batch_size"] * float(seq)
    df.insert(0, "run", p.stem)
    df.attrs["source"] = str(p)
    df.attrs["run_paths"] = {p.stem: str(p)}  # see scalelaw.io.runids
    df.attrs["units"] = {c: 1.0 for c in ("D", "batch_tokens") if c in df.columns}  # derived counts
    return df.reset_index(drop=True)


def read_nanogpt(p: Path, tokens_per_iter: int | None = None) -> pd.DataFrame:
    """A nanoGPT training log (stdout of train.py) as one row per logged iteration."""
    p = Path(p)
    rows: dict[int, dict] = {}
    tpi = tokens_per_iter
    cfg: dict[str, int] = {}
    for i, line in _lines(p):
        s = line.rstrip("\n")
        if tpi is None:
            m = _NANO_TPI.search(s)
            if m:
                tpi = int(m.group(1).replace(",", ""))
                continue
        m = _NANO_CFG.match(s)
        if m:
            cfg[m.group(1)] = int(m.group(2))
            continue
        if re.match(r"^(iter|step) \d+:", s):
            mi, me = _NANO_ITER.match(s), _NANO_EVAL.match(s)
            if mi:
                r = rows.setdefault(int(mi.group(1)), {})
                r["train_loss"] = float(mi.group(2))
                r["hp_iter_time_ms"] = float(mi.group(3))
                if mi.group(4) is not None:
                    r["hp_mfu_pct"] = float(mi.group(4))
            elif me:
                r = rows.setdefault(int(me.group(1)), {})
                r["loss_train_eval"] = float(me.group(2))
                r["val_loss"] = float(me.group(3))
            else:
                raise ScalelawError(f"{p} line {i}: malformed nanoGPT line {s[:60]!r}; expected "
                                    "'iter N: loss X, time Yms, mfu Z%' or 'step N: train loss X, val loss Y'")
    if not rows:
        raise ScalelawError(f"{p}: no nanoGPT 'iter N: loss X' lines found; is this a nanoGPT log?")
    if tpi is None and {"batch_size", "block_size"} <= set(cfg):
        tpi = cfg["batch_size"] * cfg["block_size"] * cfg.get("gradient_accumulation_steps", 1)
    df = pd.DataFrame.from_dict(rows, orient="index").rename_axis("step").reset_index().sort_values("step")
    if tpi:
        df["D"] = df["step"] * float(tpi)
        df["batch_tokens"] = float(tpi)
    else:
        warnings.warn(f"{p}: tokens per iteration unknown; D not computed; pass tokens_per_iter=", stacklevel=3)
    if "block_size" in cfg:
        df["seq_len"] = float(cfg["block_size"])
    df.insert(0, "run", p.stem)
    df.attrs["source"] = str(p)
    df.attrs["run_paths"] = {p.stem: str(p)}  # see scalelaw.io.runids
    df.attrs["units"] = {c: 1.0 for c in ("D", "batch_tokens") if c in df.columns}  # derived counts
    return df.reset_index(drop=True)
