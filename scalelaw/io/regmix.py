"""RegMix paired CSVs: a mixture file (``index`` + ``train_the_pile_<domain>`` weights) and a loss
file (``index`` + ``metric/the_pile_<domain>_val_loss``), joined on ``index``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from .tabular import read_csv

MIX_PREFIX = "train_the_pile_"
LOSS_PREFIX, LOSS_SUFFIX = "metric/the_pile_", "_val_loss"


def load_pair(mixture_csv, loss_csv) -> pd.DataFrame:
    """One row per run: ``run`` (= index as text), ``index``, ``mix_<domain>`` weights and
    ``loss_<domain>`` validation losses (e.g. ``mix_pile_cc``, ``loss_pile_cc``). Raises when the
    two files' indexes differ or repeat."""
    mp, lp = Path(mixture_csv), Path(loss_csv)
    mix, loss = read_csv(mp), read_csv(lp)
    for p, df, pre in ((mp, mix, MIX_PREFIX), (lp, loss, LOSS_PREFIX)):
        if "index" not in df.columns:
            raise ScalelawError(f"{p}: no 'index' column; RegMix files pair rows by index")
        if not any(str(c).startswith(pre) for c in df.columns):
            raise ScalelawError(f"{p}: no '{pre}*' columns; is the mixture/loss order right? "
                                "call load_pair(mixture_csv, loss_csv)")
        idx = pd.to_numeric(df["index"], errors="coerce")
        bad = ~np.isfinite(idx.to_numpy(dtype="float64", na_value=np.nan))
        bad |= ~bad & (idx.fillna(0) % 1 != 0).to_numpy()
        if bad.any():
            i = int(bad.nonzero()[0][0])
            raise ScalelawError(f"{p} line {i + 2}: index {df['index'].iloc[i]!r} is not a whole number; fix it")
        if idx.duplicated().any():
            i = int(idx.duplicated().to_numpy().nonzero()[0][0])
            raise ScalelawError(f"{p} line {i + 2}: index {int(idx.iloc[i])} appears twice; indexes must be unique")
        df["index"] = idx.astype("int64")
    a, b = set(mix["index"]), set(loss["index"])
    if a != b:
        only_m, only_l = sorted(a - b)[:5], sorted(b - a)[:5]
        raise ScalelawError(f"{mp.name} and {lp.name} do not pair: index(es) {only_m} only in the mixture file, "
                            f"{only_l} only in the loss file; give the matching pair")
    m = pd.DataFrame({"index": mix["index"]})
    for c in mix.columns:
        if str(c).startswith(MIX_PREFIX):
            m[f"mix_{c[len(MIX_PREFIX):]}"] = _num(mix[c], mp, c)
    lo = pd.DataFrame({"index": loss["index"]})
    for c in loss.columns:
        if str(c).startswith(LOSS_PREFIX):
            dom = c[len(LOSS_PREFIX):]
            dom = dom[: -len(LOSS_SUFFIX)] if dom.endswith(LOSS_SUFFIX) else dom
            lo[f"loss_{dom}"] = _num(loss[c], lp, c)
    df = m.merge(lo, on="index", how="inner").sort_values("index", kind="stable").reset_index(drop=True)
    df.insert(0, "run", df["index"].astype(str))
    df.attrs.update({"source": f"{mp} + {lp}", "mixture_file": str(mp), "loss_file": str(lp)})
    return df


def _num(s: pd.Series, p: Path, col: str) -> pd.Series:
    v = pd.to_numeric(s, errors="coerce")
    bad = v.isna() & s.notna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise ScalelawError(f"{p} line {i + 2}: column {col!r} holds {s.iloc[i]!r}, not a number; fix it")
    return v.astype("float64")


def partner(p: Path) -> tuple[Path, Path]:
    """(mixture, loss) paths for either file of a pair named like RegMix's (``*_mixture_*`` /
    ``*_pile_loss_*``)."""
    p = Path(p)
    name = p.name
    if "_mixture_" in name:
        return p, p.with_name(name.replace("_mixture_", "_pile_loss_"))
    if "_pile_loss_" in name:
        return p.with_name(name.replace("_pile_loss_", "_mixture_")), p
    raise ScalelawError(f"{p}: one file of a RegMix pair; load both with scalelaw.io.regmix.load_pair(mixture, loss)")


def read_single(p: Path) -> pd.DataFrame:
    """Either file of a RegMix pair: finds its partner beside it (``*_mixture_*`` <-> ``*_pile_loss_*``)."""
    mix, loss = partner(p)
    if not mix.is_file() or not loss.is_file():
        raise ScalelawError(f"{p}: its RegMix partner file {loss if p == mix else mix} is missing; "
                            "load both with scalelaw.io.regmix.load_pair(mixture, loss)")
    return load_pair(mix, loss)
