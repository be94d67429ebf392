"""The canonical run table: column names, aliases, declared units and validation.

A run table is a pandas DataFrame. Canonical columns (all optional except what a law needs):

=============  =====================================================================
``run``        run id (str)
``N``          total parameters (count)              ``N_nonembed``  non-embedding parameters
``D``          training tokens (count)               ``C``  training FLOPs (6*N*D when absent)
``step``       optimizer step (per-step tables)      ``loss``  the target loss
``lr``         (peak) learning rate                  ``batch_tokens``  tokens per batch
``seq_len``    sequence length (tokens)                ``V``  vocabulary size (tokens)
``experts``    experts per MoE layer (1 = dense)     ``P``  parallel streams (ParScale; 1 = one)
=============  =====================================================================

Open families are kept as they are: ``err_*`` (downstream error), ``score_*`` (benchmark
score), ``mix_*`` (data-mixture weights), ``loss_*`` (other losses), ``hp_*`` (other
hyperparameters); any other column passes through untouched.

Units are declared, never guessed: ``units={"N": 1e9}`` or ``"N=B"`` multiplies the column into
canonical units and is recorded in ``df.attrs["units"]``. ``validate`` refuses tables whose
magnitudes look like an undeclared unit.
"""
from __future__ import annotations

import math
import re
import warnings
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import ScalelawError

CANONICAL = ("run", "N", "N_nonembed", "D", "C", "step", "loss", "lr", "batch_tokens", "seq_len", "V", "experts", "P")
NUMERIC = ("N", "N_nonembed", "D", "C", "step", "loss", "lr", "batch_tokens", "seq_len", "V", "experts", "P")
POSITIVE = ("N", "N_nonembed", "D", "C", "loss", "lr", "batch_tokens", "seq_len", "V", "experts", "P")
FAMILIES = ("err_", "score_", "mix_", "loss_", "hp_")

# 1 PF-day = 1e15 FLOP/s * 86400 s
PF_DAY = 8.64e19

#: unit names accepted in ``units`` (case-insensitive); values multiply into canonical units
UNIT_NAMES = {
    "": 1.0, "1": 1.0, "k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "g": 1e9,
    "billion": 1e9, "t": 1e12, "trillion": 1e12, "p": 1e15, "e": 1e18,
    "pf-days": PF_DAY, "pf-day": PF_DAY, "pfdays": PF_DAY, "pf_days": PF_DAY, "pflop-days": PF_DAY,
    "flop": 1.0, "flops": 1.0, "gflop": 1e9, "tflop": 1e12, "pflop": 1e15, "eflop": 1e18, "zflop": 1e21,
}

#: the smallest maximum a column should reach in canonical units before we suspect a unit (a
#: declared unit, or a loader that derived the column as a count, skips the check)
_UNIT_FLOOR = {"N": (1e5, "N=B (billions) or N=M (millions)"),
               "N_nonembed": (1e5, "N_nonembed=B or N_nonembed=M"),
               "D": (1e5, "D=B (billions) or D=T (trillions)"),
               "C": (1e12, "C=PF-days or C=1e21"),
               "batch_tokens": (1.0, "batch_tokens=K")}
#: above these no training run has been: a value past them means a unit applied twice or a wrong
#: unit (largest public runs, 2025: ~2e12 parameters, ~4e13 tokens, ~5e26 FLOPs)
_UNIT_CEILING = {"N": 1e14, "N_nonembed": 1e14, "D": 1e17, "C": 1e30}
#: per-token cross-entropy above this is not a loss in nats (ln of a 256k vocabulary is 12.5; in
#: bits 18): a perplexity, a summed loss, or a percentage
LOSS_CEILING = 20.0


def _key(name: str) -> str:
    """Alias key: lower case, runs of non-alphanumerics -> '_', stripped."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


_ALIAS_LISTS = {
    "run": ["run", "run_id", "run_name", "name", "exp_name", "experiment", "experiment_name", "id"],
    "N": ["n", "params", "n_params", "num_params", "nparams", "model_size", "parameters", "num_parameters",
          "n_parameters", "total_params", "model_params", "param_count", "params_total"],
    "N_nonembed": ["n_nonembed", "non_embedding_params", "params_no_embed", "nonembedding_params",
                   "non_embed_params", "params_nonembed", "n_params_nonembed", "params_non_embedding",
                   "n_non_embedding", "non_embedding_parameters"],
    "D": ["d", "tokens", "tokens_seen", "n_tokens", "num_tokens", "train_tokens", "training_tokens",
          "data_size", "dataset_size", "consumed_tokens", "total_tokens", "tokens_trained"],
    "C": ["c", "flops", "flop", "training_flop", "training_flops", "compute", "total_flops", "train_flops",
          "budget", "compute_budget", "flops_budget", "flop_budget", "c_budget", "isoflop_budget"],
    "step": ["step", "_step", "steps", "global_step", "train_global_step", "iteration", "iter", "trainer_global_step",
             "current_steps", "current_step"],
    "lr": ["lr", "learning_rate", "peak_lr", "max_lr", "train_learning_rate", "train_lr", "optimizer_lr"],
    "batch_tokens": ["batch_tokens", "tokens_per_batch", "batch_size_tokens", "global_batch_tokens",
                     "tokens_per_step", "tokens_per_iter"],
    "seq_len": ["seq_len", "sequence_length", "seq_length", "max_seq_len", "block_size", "context_length",
                "n_ctx", "ctx_len", "max_position_embeddings_used"],
    "V": ["vocab_size", "vocabulary_size", "n_vocab", "vocab", "num_vocab", "vocab_len"],
    "experts": ["num_experts", "n_experts", "expert_count", "n_routed_experts", "num_local_experts",
                "moe_num_experts"],
    "P": ["parallel_streams", "num_parallel", "parallel_size", "n_parallel", "parscale_n", "num_streams"],
}
#: alias key -> canonical column
ALIASES: dict[str, str] = {_key(a): canon for canon, lst in _ALIAS_LISTS.items() for a in lst}

#: loss-like columns in order of preference for ``loss`` (validation first), and the name the
#: others keep as a ``loss_*`` column
_LOSS_PREFERENCE = [
    ("loss", None), ("val_loss", "loss_val"), ("validation_loss", "loss_val"), ("valid_loss", "loss_val"),
    ("eval_loss", "loss_eval"), ("test_loss", "loss_test"), ("train_loss", "loss_train"),
    ("training_loss", "loss_train"), ("lm_loss", "loss_lm"),
]
_LOSS_KEYS = {_key(k): v for k, v in _LOSS_PREFERENCE}


# ---- units ------------------------------------------------------------------------------------------
def parse_units(units) -> dict[str, float]:
    """``units`` as {column: factor}; accepts a mapping (values numbers or unit names), "N=B,D=T",
    or an iterable of "COL=UNIT" strings. Unit names: K, M, B, T, P, PF-days, or a number."""
    if units is None:
        return {}
    items: list[tuple[str, object]] = []
    if isinstance(units, Mapping):
        items = list(units.items())
    else:
        if isinstance(units, str):
            units = [u for u in units.split(",") if u.strip()]
        for u in units:
            if not isinstance(u, str) or "=" not in u:
                raise ScalelawError(f"units entry {u!r} must look like COL=UNIT, e.g. N=B, D=T or C=PF-days")
            k, v = u.split("=", 1)
            items.append((k.strip(), v.strip()))
    out: dict[str, float] = {}
    for col, val in items:
        col = str(col).strip()
        if isinstance(val, bool):
            raise ScalelawError(f"unit of {col} must be a number or a name (K, M, B, T, PF-days); got {val!r}")
        if isinstance(val, (int, float, np.integer, np.floating)):
            f = float(val)
        else:
            s = str(val).strip()
            f = UNIT_NAMES.get(s.lower())
            if f is None:
                try:
                    f = float(s)
                except ValueError:
                    raise ScalelawError(
                        f"unknown unit {s!r} for column {col}; use a number (e.g. 1e9) or one of "
                        "K, M, B, T, P, PF-days (e.g. --units N=B)") from None
        if not math.isfinite(f) or f <= 0:
            raise ScalelawError(f"unit factor of {col} must be a positive number; got {val!r}")
        out[col] = f
    return out


# ---- normalize ------------------------------------------------------------------------------------
def _canonical_for(col: str) -> str | None:
    if col in CANONICAL:
        return col
    return ALIASES.get(_key(col))


def _loss_family_name(col: str) -> str:
    k = _key(col)
    if k in _LOSS_KEYS and _LOSS_KEYS[k]:
        return _LOSS_KEYS[k]
    k = re.sub(r"_?loss_?", "_", k).strip("_")
    return f"loss_{k}" if k else "loss_other"


def normalize(df: pd.DataFrame, *, mapping: Mapping[str, str] | None = None, units=None,
              source: str = "<table>") -> pd.DataFrame:
    """Rename aliases to canonical columns, apply declared units, coerce numbers, add ``C``.

    mapping: {canonical: your_column}, overrides aliases. units: see :func:`parse_units`.
    Loss columns: ``loss`` is kept; otherwise the first of val_loss, validation_loss,
    eval_loss, test_loss, train_loss becomes ``loss`` (recorded in ``attrs["loss_column"]``)
    and the others become ``loss_val``, ``loss_eval``, ``loss_train``, ...; ``mapping={"loss": col}``
    beside a column already named ``loss`` moves that one into the family (named after
    ``attrs["loss_column"]``, e.g. ``loss_eval``, else ``loss_other``).
    When ``C`` is absent and N, D are present, ``C = 6*N*D`` (``attrs["C_convention"]="6ND"``).
    ``attrs["columns_from"]`` maps each renamed column to its name in the input ({"loss_train":
    "train/loss"}), so messages can name the column the user sees and ``--map`` takes.
    """
    if not isinstance(df, pd.DataFrame):
        raise ScalelawError(f"{source}: expected a table (pandas DataFrame); got {type(df).__name__}")
    attrs = dict(df.attrs)
    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    if len(set(df.columns)) != len(df.columns):
        dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
        raise ScalelawError(f"{source}: column name(s) {', '.join(dup)} appear more than once; rename them")
    mapping = dict(mapping or {})
    rename: dict[str, str] = {}
    taken: set[str] = set()
    loss_from = attrs.get("loss_column")
    # 1. the user's mapping wins
    for canon, col in mapping.items():
        if col not in df.columns:
            raise ScalelawError(
                f"{source}: --map {canon}={col} names a column that is not there; columns are: "
                f"{', '.join(map(str, df.columns[:30]))}")
        rename[col] = canon
        taken.add(canon)
    # a column already named as one the user maps elsewhere: the table's loss joins the loss_
    # family (e.g. an HF run's eval loss -> loss_eval); any other would be a second column of that name
    for canon, col in mapping.items():
        if col == canon or canon not in df.columns or canon in mapping.values():
            continue
        aside = _loss_family_name(loss_from or canon) if canon == "loss" else None
        if aside is None or aside in df.columns or aside in rename.values():
            raise ScalelawError(f"{source}: --map {canon}={col} would make a second {canon!r} column: the table "
                                f"already has a column {canon!r}; rename or drop one of the two, or leave out "
                                f"--map {canon}=...")
        rename[canon] = aside
        loss_from = col
    # 2. columns already canonical or in a family
    for col in df.columns:
        if col in rename:
            continue
        if col in CANONICAL and col not in taken:
            taken.add(col)
    # 3. aliases (first in column order wins; later duplicates stay as they are)
    for col in df.columns:
        if col in rename or col in CANONICAL or col.startswith(FAMILIES):
            continue
        canon = _canonical_for(col)
        if canon and canon != "run" and canon not in taken:
            rename[col] = canon
            taken.add(canon)
        elif canon == "run" and "run" not in taken and not pd.api.types.is_numeric_dtype(df[col]):
            rename[col] = "run"
            taken.add("run")
    # 4. losses: pick the target, move the rest into the loss_ family
    if "loss" in mapping:
        loss_from = mapping["loss"]
    if "loss" not in taken:
        for pref, _ in _LOSS_PREFERENCE[1:]:
            hit = [c for c in df.columns if c not in rename and _key(c) == _key(pref)]
            if hit:
                rename[hit[0]] = "loss"
                taken.add("loss")
                loss_from = hit[0]
                break
    elif "loss" in df.columns and "loss" not in rename.values():
        loss_from = loss_from or "loss"
    for col in df.columns:
        if col in rename or col in CANONICAL or col.startswith(FAMILIES):
            continue
        if _key(col) in _LOSS_KEYS:
            new = _loss_family_name(col)
            if new not in df.columns and new not in rename.values():
                rename[col] = new
    if rename:
        df = df.rename(columns=rename)
    # the user's names of renamed columns, for messages (--map takes those), through earlier passes
    before = attrs.get("columns_from") or {}
    named = {k: v for k, v in before.items() if k in df.columns and k not in rename.values()}
    named.update({new: before.get(old, old) for old, new in rename.items()})
    # 5. numbers
    for col in NUMERIC:
        if col in df.columns:
            df[col] = _to_number(df[col], col, source)
    if "run" in df.columns and not pd.api.types.is_string_dtype(df["run"]):
        df["run"] = df["run"].astype(object).where(df["run"].isna(), df["run"].astype(str)).astype("str")
    # 6. units
    declared = dict(attrs.get("units") or {})
    for col, f in parse_units(units).items():
        if col not in df.columns:
            canon = _canonical_for(col)
            if canon in df.columns:
                col = canon
            else:
                raise ScalelawError(f"{source}: --units names column {col!r}, which is not in the table; "
                                    f"columns are: {', '.join(map(str, df.columns[:30]))}")
        num = _to_number(df[col], col, source)
        df[col] = num * f
        declared[col] = declared.get(col, 1.0) * f
    # 7. compute
    convention = attrs.get("C_convention")
    if "C" not in df.columns and "N" in df.columns and "D" in df.columns:
        df["C"] = 6.0 * df["N"] * df["D"]
        convention = "6ND"
    elif "C" in df.columns and convention is None:
        convention = "given"
    df.attrs.update(attrs)
    df.attrs["source"] = attrs.get("source", source)
    df.attrs["units"] = declared
    df.attrs["columns_from"] = named
    if convention:
        df.attrs["C_convention"] = convention
    if loss_from:
        df.attrs["loss_column"] = loss_from
    return df


def _to_number(s: pd.Series, col: str, source: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        raise ScalelawError(f"{source}: column {col} holds true/false values; it must be numeric")
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64")
    out = pd.to_numeric(s, errors="coerce")
    bad = out.isna() & s.notna() & (s.astype(str).str.strip() != "")
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise ScalelawError(f"{source}: column {col} row {i + 1} holds {s.iloc[i]!r}, not a number; "
                            "fix the value or map another column with --map")
    return out.astype("float64")


# ---- validate ---------------------------------------------------------------------------------------
def _row_label(df: pd.DataFrame, i: int) -> str:
    if "run" in df.columns:
        return f"row {i + 1} (run {df['run'].iloc[i]!r})"
    return f"row {i + 1}"


def validate(df: pd.DataFrame, required: Iterable[str] = ("N", "D", "loss"), source: str | None = None,
             per_run: bool | None = None) -> pd.DataFrame:
    """Check a normalized run table; raise a one-line ScalelawError naming source, column and value.

    Checks: not empty; ``required`` columns present and without NaN; numeric canonical columns
    finite, and positive where a size, loss or rate; no unit mix-up (e.g. N below 1e5 unless
    units were declared); in a per-run table (no ``step`` column, or ``per_run=True``) each run id
    appears once. Per-step tables may hold D, C or lr equal to 0 (start of training, decayed
    schedule). Returns ``df`` unchanged.
    """
    source = source or (df.attrs.get("source") if isinstance(df, pd.DataFrame) else None) or "<table>"
    if not isinstance(df, pd.DataFrame):
        raise ScalelawError(f"{source}: expected a run table (pandas DataFrame); got {type(df).__name__}")
    if len(df) == 0 or len(df.columns) == 0:
        raise ScalelawError(f"{source}: the table is empty (no rows); check the file or the filter")
    missing = [c for c in required if c not in df.columns]
    if missing:
        have = ", ".join(map(str, list(df.columns)[:25])) + (" ..." if len(df.columns) > 25 else "")
        raise ScalelawError(
            f"{source}: missing column(s) {', '.join(missing)}; the table has: {have}; "
            f"name yours with --map, e.g. --map {missing[0]}=<your column>")
    declared = df.attrs.get("units") or {}
    if per_run is None:
        per_run = "step" not in df.columns
    for col in NUMERIC:
        if col not in df.columns:
            continue
        s = df[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            s = _to_number(s, col, source)
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        nan = np.isnan(v)
        if col in required and nan.any():
            i = int(nan.nonzero()[0][0])
            raise ScalelawError(f"{source}: column {col} is missing (NaN) at {_row_label(df, i)}; "
                                "fill it in or drop that row")
        inf = np.isinf(v)
        if inf.any():
            i = int(inf.nonzero()[0][0])
            raise ScalelawError(f"{source}: column {col} holds {v[i]} at {_row_label(df, i)}; values must be finite")
        if col in POSITIVE:
            # per-step logs start at D = 0 and may decay lr to 0; per-run values must be positive
            bad = ~nan & ((v < 0) if (not per_run and col in ("D", "C", "lr")) else (v <= 0))
            if bad.any():
                i = int(bad.nonzero()[0][0])
                raise ScalelawError(f"{source}: column {col} holds {v[i]:g} at {_row_label(df, i)}; "
                                    f"{col} must be positive; fix or drop that row")
        if col == "step":
            bad = ~nan & (v < 0)
            if bad.any():
                i = int(bad.nonzero()[0][0])
                raise ScalelawError(f"{source}: column step holds {v[i]:g} at {_row_label(df, i)}; steps must be >= 0")
        if col in _UNIT_FLOOR and col not in declared and (~nan).any():
            floor, hint = _UNIT_FLOOR[col]
            mx = float(np.nanmax(v))
            if mx < floor:
                first = hint.split(" ")[0]
                raise ScalelawError(
                    f"{source}: column {col} has maximum {mx:g}, which looks like a scaled unit "
                    f"(e.g. billions), not a count; declare it with --units {hint} "
                    f"(from Python: units={{'{col}': '{first.split('=')[1]}'}})")
        if col in _UNIT_CEILING and (~nan).any():
            mx = float(np.nanmax(v))
            if mx > _UNIT_CEILING[col]:
                how = (f"--units {col}={declared[col]:g} was applied to values already in "
                       f"{'parameters' if col.startswith('N') else 'tokens' if col == 'D' else 'FLOPs'}? drop it"
                       if col in declared else "check the column's unit and declare it with --units")
                raise ScalelawError(f"{source}: column {col} has maximum {mx:.3g}, beyond any training run "
                                    f"({_UNIT_CEILING[col]:g}); {how}")
        if col == "loss" and (~nan).any():
            mx = float(np.nanmax(v))
            if mx > LOSS_CEILING:
                raise ScalelawError(
                    f"{source}: column loss has maximum {mx:.4g}, too large for a per-token cross-entropy in "
                    f"nats (ln of a 256k vocabulary is 12.5); is it a perplexity (give its log), a summed or "
                    f"percentage loss, or in bits (declare --units loss=0.6931)?")
    if per_run and "run" in df.columns:
        dup = df["run"].duplicated() & df["run"].notna()
        if dup.any():
            i = int(dup.to_numpy().nonzero()[0][0])
            if df.attrs.get("reduce"):  # one row per run already: two sources (inputs, files) or rows share the id
                fix = ("the table is already reduced to one row per run, so two of its sources (inputs, files) or "
                       "rows hold this id: rename the run in one of them, or leave out a log given twice")
            else:
                fix = "give each run a unique id, or reduce per-step logs with --reduce final"
            raise ScalelawError(
                f"{source}: run {df['run'].iloc[i]!r} appears more than once (row {i + 1}) in a per-run table; {fix}")
    return df


def warn_heuristics(df: pd.DataFrame) -> list[str]:
    """Soft warnings (never rescale): e.g. tokens per parameter far outside usual ranges."""
    notes = []
    if {"N", "D"} <= set(df.columns) and len(df):
        tpp = (df["D"] / df["N"]).replace([np.inf, -np.inf], np.nan).dropna()
        if len(tpp) and (tpp.median() < 0.01 or tpp.median() > 1e6):
            notes.append(f"{df.attrs.get('source') or 'the table'}: median tokens per parameter is "
                         f"{tpp.median():.3g}; check the units of N and D (declare them with --units)")
    for n in notes:
        warnings.warn(n, stacklevel=2)
    return notes


def summarize(df: pd.DataFrame) -> dict:
    """What ``scalelaw inspect`` prints: rows, runs, ranges of N, D, C, loss, units, missing values."""
    out: dict = {"source": df.attrs.get("source"), "rows": int(len(df)),
                 "runs": (int(df["run"].nunique()) if "run" in df.columns else
                          min(1, len(df)) if "step" in df.columns else int(len(df))),  # a per-step log is one run
                 "columns": [str(c) for c in df.columns], "ranges": {},
                 "units": df.attrs.get("units") or {}, "C_convention": df.attrs.get("C_convention"),
                 "missing": {}}
    for col in ("N", "N_nonembed", "D", "C", "loss", "lr", "batch_tokens", "step"):
        if col in df.columns and pd.api.types.is_numeric_dtype(df[col]):
            s = df[col].dropna()
            if len(s):
                out["ranges"][col] = [float(s.min()), float(s.max())]
    na = df.isna().sum()
    out["missing"] = {str(k): int(v) for k, v in na.items() if v}
    return out
