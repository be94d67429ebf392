"""Capacity density: effective parameter size of released models and the densing trend.

Method (Xiao et al. 2024, "Densing Law of LLMs", arXiv:2412.04315):

1. A *reference family* (chosen by the user) fixes a ruler. With losses available
   (**two-step**), fit L(N, D) = A N^-alpha + B D^-beta [+ E] and the loss -> score sigmoid
   S = c / (1 + exp(-gamma (L - l0))) + d on the reference rows. With scores only
   (**one-step**, the case of the public ObsScaling table), fit S(N, D) through the same
   composition, the loss being latent (gamma = -1 and E = 0 fix its scale and origin).
2. For every model: score -> loss (inverse sigmoid) -> effective size N_eff, the N at which the
   reference law trained on the reference token budget D_ref reaches that loss.
   Density = N_eff / N.
3. Intervals: bootstrap over reference models (both fits of the two-step variant see the same
   resamples), propagated to N_eff and density.
4. Scores within ``margin`` of the random baseline or of the ceiling cannot be inverted
   reliably and are flagged, as are scores above anything the reference reaches at D_ref.
5. Trend: ln(density) = A t + B over release dates, on the running maximum (the models that
   set a new density record when released, the paper's rho_max) or on all models; doubling
   time ln 2 / A with a bootstrap interval over models.

Every output names the variant it used (``method``: "one-step" or "two-step").
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import expr
from ..errors import ScalelawError
from ..law import get_law
from ..laws.density import effective_size, one_step_chain

# ---------------------------------------------------------------------------------------------
# Benchmarks: random baselines (chance accuracy of the task format)
# ---------------------------------------------------------------------------------------------
#: Chance accuracy by benchmark (keys normalised: lower case, letters and digits only).
#: Multiple choice: 1 / number of options (MMLU, ARC-Challenge, HellaSwag: 4; Winogrande and
#: XWinograd: 2). Generative, exact match / pass@1: 0 (GSM8K, HumanEval). TruthfulQA is scored
#: as mc2 (probability mass on the true answers), whose chance level depends on each question's
#: answer counts; no baseline is declared: give one with ``baselines={"TruthfulQA": x}``.
#: ObsScaling itself declares none of these: its sigmoid fits the floor within [0, 0.2] with
#: the height tied to 1 - floor (utils/data.py, ``sigmoid-parametric``,
#: ``sigmoid_param_fix_height=True``, ryoungj/ObsScaling@43dad32).
BASELINES = {"mmlu": 0.25, "arcc": 0.25, "arcchallenge": 0.25, "hellaswag": 0.25,
             "winograd": 0.5, "winogrande": 0.5, "xwinograd": 0.5, "gsm8k": 0.0,
             "humaneval": 0.0, "mbpp": 0.0, "math": 0.0, "truthfulqa": None}

#: The benchmarks every one of the 148 ObsScaling models has (ARC-C, XWinograd and HumanEval
#: have gaps; TruthfulQA has no declared chance level and scales inversely for small models).
DEFAULT_BENCHMARKS = ("MMLU", "HellaSwag", "Winograd", "GSM8K")

# original ObsScaling column -> canonical run-table column (value multiplier)
_ORIGINAL = {"Model": ("model", None), "Model Family": ("family", None),
             "Model Size (B)": ("N", 1e9), "Pretraining Data Size (T)": ("D", 1e12),
             "FLOPs (1E21)": ("C", 1e21)}
_KNOWN_BENCH = ("MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd",
                "HumanEval")
_EXTRAPOLATION = 10.0   # flag N_eff beyond this factor outside the reference sizes
_DATA_TERM_SPAN = 4.0   # one-step: fit the data term only when the reference D spans this factor


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# ---------------------------------------------------------------------------------------------
# Input tables
# ---------------------------------------------------------------------------------------------
def _read_file(path: Path, what: str) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".json":
            return pd.read_json(path)
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:
        raise ScalelawError(f"cannot read {what} {path}: {exc}; give a CSV, JSON or Parquet table") from None


def _load_named(name: str) -> pd.DataFrame | None:
    """A registered dataset (scalelaw.datasets: the mirror or the download cache), else None."""
    from .. import datasets

    return datasets.load(name) if name in datasets.names() else None


def load_models(source) -> pd.DataFrame:
    """MODELS: a DataFrame, a file path (CSV/JSON/Parquet) or a dataset name."""
    if isinstance(source, pd.DataFrame):
        return source
    p = Path(str(source))
    if p.exists():
        df = _read_file(p, "model table")
        df.attrs["source"] = str(p)
        return df
    df = _load_named(str(source))
    if df is None:
        raise ScalelawError(f"models table {source!r} is neither a file nor a known dataset; give a CSV path "
                            "or a dataset name such as 'obsscaling-base'")
    return df


def load_dates(source) -> pd.DataFrame:
    """Release dates: a DataFrame, a file or the 'release-dates' dataset; columns model and
    release_date (or date)."""
    if isinstance(source, pd.DataFrame):
        df = source
    else:
        p = Path(str(source))
        if p.exists():
            df = _read_file(p, "dates file")
        else:
            df = _load_named(str(source))
            if df is None:
                raise ScalelawError(f"dates file {source!r} does not exist; give a CSV with columns model, "
                                    "release_date (e.g. the 'release-dates' dataset)")
    cols = {c.lower(): c for c in df.columns}
    mcol = cols.get("model")
    dcol = cols.get("release_date") or cols.get("date")
    if mcol is None or dcol is None:
        raise ScalelawError(f"dates file needs columns 'model' and 'release_date' (or 'date'); it has "
                            f"{', '.join(map(str, df.columns[:10]))}; rename them")
    out = pd.DataFrame({"model": df[mcol].astype(str), "release_date_raw": df[dcol]})
    raw = out["release_date_raw"]
    parsed = pd.to_datetime(raw, errors="coerce")
    bad = parsed.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        raise ScalelawError(f"release date {raw.iloc[k]!r} of model {out['model'].iloc[k]!r} is not a date; "
                            "write dates as YYYY-MM-DD")
    out["release_date"] = parsed
    return out[["model", "release_date"]]


def model_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The model table with both the original ObsScaling names and the canonical ones
    (model, family, N, D, C, score_<benchmark>), so reference expressions may use either."""
    out = df.copy()
    for orig, (canon, mult) in _ORIGINAL.items():
        if orig in out.columns and canon not in out.columns:
            v = out[orig]
            out[canon] = pd.to_numeric(v, errors="coerce") * mult if mult else v
        elif canon in out.columns and orig not in out.columns:
            v = out[canon]
            out[orig] = pd.to_numeric(v, errors="coerce") / mult if mult else v
    for b in _KNOWN_BENCH:
        if b in out.columns and f"score_{b}" not in out.columns:
            out[f"score_{b}"] = out[b]
    for c in list(out.columns):
        if isinstance(c, str) and c.startswith("score_") and c[6:] not in out.columns:
            out[c[6:]] = out[c]
            # the original ObsScaling spelling too (score_arc_c -> ARC-C), for --reference expressions
            orig = next((b for b in _KNOWN_BENCH if _key(b) == _key(c[6:])), None)
            if orig and orig not in out.columns:
                out[orig] = out[c]
    if "model" not in out.columns:
        raise ScalelawError("the models table needs a 'model' (or 'Model') column naming each model")
    if "N" not in out.columns:
        raise ScalelawError("the models table needs parameter counts: column 'N' (parameters) or "
                            "'Model Size (B)' (billions)")
    if "D" not in out.columns:
        out["D"] = np.nan
    if "family" not in out.columns:
        out["family"] = ""
    out["model"] = out["model"].astype(str)
    out["N"] = pd.to_numeric(out["N"], errors="coerce")
    out["D"] = pd.to_numeric(out["D"], errors="coerce")
    return out


def available_benchmarks(frame: pd.DataFrame) -> list:
    return [c[6:] for c in frame.columns if isinstance(c, str) and c.startswith("score_")]


def resolve_benchmarks(frame: pd.DataFrame, benchmarks) -> list:
    """Benchmark names (case- and punctuation-insensitive) -> names as in the table."""
    avail = available_benchmarks(frame)
    if not avail:
        raise ScalelawError("the models table has no benchmark scores (columns score_<benchmark> or "
                            f"{', '.join(_KNOWN_BENCH)}); add them")
    if benchmarks is None or (isinstance(benchmarks, str) and not benchmarks.strip()):
        want = [b for b in DEFAULT_BENCHMARKS if _key(b) in {_key(a) for a in avail}] or avail
    else:
        want = [b.strip() for b in benchmarks.split(",")] if isinstance(benchmarks, str) else list(benchmarks)
    by_key = {_key(a): a for a in avail}
    out = []
    for b in want:
        k = _key(b)
        if k not in by_key:
            raise ScalelawError(f"unknown benchmark {b!r} in --benchmarks; the table has {', '.join(avail)}")
        if by_key[k] not in out:
            out.append(by_key[k])
    if not out:
        raise ScalelawError("--benchmarks selects no benchmark; give e.g. --benchmarks MMLU,HellaSwag")
    return out


def baseline_of(bench: str, baselines: Mapping | None = None) -> float:
    given = {_key(k): v for k, v in dict(baselines or {}).items()}
    k = _key(bench)
    if k in given:
        v = float(given[k])
    else:
        v = BASELINES.get(k, "unknown")
        if v is None or v == "unknown":
            why = ("has no declared random baseline (mc2's chance level depends on answer counts)"
                   if v is None else "has no declared random baseline")
            raise ScalelawError(f"benchmark {bench!r} {why}; give one with --baseline {bench}=<chance score>")
    if not 0 <= v < 1:
        raise ScalelawError(f"random baseline of {bench!r} must be in [0, 1) (as a fraction of the scale); "
                            f"got {v!r}; fix --baseline {bench}=...")
    return v


def _check_scores(frame: pd.DataFrame, benches: Sequence[str], scale: float) -> None:
    if not (scale > 0):
        raise ScalelawError(f"--scale must be positive (scores lie in [0, scale]); got {scale!r}")
    for b in benches:
        v = pd.to_numeric(frame[f"score_{b}"], errors="coerce")
        raw = frame[f"score_{b}"]
        nonnum = v.isna() & raw.notna()
        if nonnum.any():
            k = int(np.flatnonzero(nonnum.to_numpy())[0])
            raise ScalelawError(f"score {raw.iloc[k]!r} of model {frame['model'].iloc[k]!r} on {b} is not a "
                                "number; fix the table or leave the cell empty")
        bad = (v < 0) | (v > scale)
        if bad.any():
            k = int(np.flatnonzero(bad.to_numpy())[0])
            hint = (" (percentages? pass --scale 100)" if scale == 1 and v.max() <= 100 else "")
            raise ScalelawError(f"score {float(v.iloc[k])!r} of model {frame['model'].iloc[k]!r} on {b} is "
                                f"outside [0, {scale:g}]{hint}; fix the score or declare the scale with --scale")


def select_reference(frame: pd.DataFrame, reference) -> np.ndarray:
    """Boolean mask of the reference rows: a filter expression (scalelaw.expr), a list of family names,
    or a boolean mask."""
    if isinstance(reference, str):
        mask = expr.mask(frame, reference, "--reference", "the models table")
    elif isinstance(reference, (list, tuple, set)):
        mask = frame["family"].isin(list(reference)).to_numpy()
    else:
        mask = np.asarray(reference, dtype=bool)
        if mask.shape != (len(frame),):
            raise ScalelawError("reference mask must have one boolean per model")
    if not mask.any():
        raise ScalelawError(f"--reference {reference!r} selects no model; check the family names "
                            f"(e.g. {', '.join(map(str, pd.unique(frame['family'])[:5]))})")
    return np.asarray(mask, dtype=bool)


# ---------------------------------------------------------------------------------------------
# Reference fits
# ---------------------------------------------------------------------------------------------
@dataclass
class ReferenceFit:
    """One benchmark target's ruler: composed parameters and bootstrap samples."""

    label: str
    method: str
    params: dict
    samples: np.ndarray | None     # (K, 9) in density_score parameter order, NaN rows = failed refits
    D_ref: float | None
    baseline: float
    n_reference: int
    sizes: tuple                    # (min N, max N) of the reference rows
    data_term: bool
    diagnostics: dict = field(default_factory=dict)
    fits: dict = field(default_factory=dict)

    PARAMS = ("A", "alpha", "B", "beta", "E", "c", "gamma", "l0", "d")

    def sample_dicts(self):
        if self.samples is None:
            return None
        return {k: self.samples[:, i][:, None] for i, k in enumerate(self.PARAMS)}

    def summary(self) -> dict:
        return {"benchmark": self.label, "method": self.method,
                "params": {k: self.params[k] for k in self.PARAMS}, "D_ref": self.D_ref,
                "baseline": self.baseline, "n_reference": self.n_reference, "data_term": self.data_term,
                "diagnostics": self.diagnostics}


def _fit_quiet(law, df, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from ..fit import fit
        f = fit(law, df, **kw)
    return f, [str(w.message) for w in caught]


def fit_reference(ref: pd.DataFrame, score: np.ndarray, *, baseline: float, label: str,
                  method: str = "auto", tokens: float | None = None, data_term: bool | None = None,
                  loss_floor: bool = False, boot: int = 200, seed: int = 0) -> ReferenceFit:
    """Fit the ruler on the reference rows ``ref`` (canonical columns) and scores ``score``."""
    score = np.asarray(score, dtype=float)
    ok = np.isfinite(score) & np.isfinite(ref["N"].to_numpy(dtype=float))
    has_loss = "loss" in ref.columns and np.isfinite(pd.to_numeric(ref["loss"], errors="coerce")).any()
    if method == "auto":
        method = "two-step" if has_loss else "one-step"
    if method not in ("one-step", "two-step"):
        raise ScalelawError(f"--method must be auto, one-step or two-step; got {method!r}")
    if method == "two-step":
        if not has_loss:
            raise ScalelawError("the two-step estimate needs a 'loss' column on the reference rows; "
                                "use --method one-step when only scores are available")
        ok &= np.isfinite(pd.to_numeric(ref["loss"], errors="coerce").to_numpy(dtype=float))
    r = ref.loc[ok].copy()
    r["score"] = score[ok]
    if len(r) == 0:
        raise ScalelawError(f"no reference model has a {label} score; choose other benchmarks or reference families")
    D = r["D"].to_numpy(dtype=float)
    Dk = D[np.isfinite(D)]
    span = float(Dk.max() / Dk.min()) if len(Dk) and Dk.min() > 0 else 1.0
    need_data = bool(data_term) if data_term is not None else span >= _DATA_TERM_SPAN
    if need_data and not np.all(np.isfinite(D) & (D > 0)):
        miss = r.loc[~(np.isfinite(D) & (D > 0)), "model"].tolist()
        raise ScalelawError(f"reference model(s) {', '.join(miss[:3])} have no training tokens D ('Pretraining "
                            "Data Size (T)'), which the data term needs; leave them out of --reference "
                            "(e.g. add 'and D == D') or fit without the data term")
    if tokens is not None:
        if not tokens > 0:
            raise ScalelawError(f"--tokens (the reference token budget) must be positive; got {tokens!r}")
        D_ref = float(tokens)
    else:
        D_ref = float(f"{np.exp(np.median(np.log(Dk))):.6g}") if len(Dk) else None
    cd = {"c": 1.0 - baseline, "d": baseline}
    sizes = (float(r["N"].min()), float(r["N"].max()))
    n_sizes = int(r["N"].nunique())
    diag = {}
    fits = {}
    if method == "one-step":
        fixed = {} if need_data else {"B": 0.0, "beta": 0.3}
        law = get_law("density_score")
        n_free = len(law.params) - len(fixed)
        if n_sizes < n_free:
            raise ScalelawError(
                f"the reference family has {n_sizes} distinct model size(s) with a {label} score but the "
                f"one-step law has {n_free} free parameters ({', '.join(p for p in law.param_names if p not in fixed)}); "
                "add families to --reference so that it spans more sizes")
        data = pd.DataFrame({"N": r["N"].to_numpy(float),
                             "D": np.where(np.isfinite(D), D, D_ref or 1.0), "baseline": baseline,
                             "score": r["score"].to_numpy(float)})
        f, msgs = _fit_quiet(law, data, fixed=fixed, boot=boot, seed=seed, objective="lsq", n_jobs=1,
                            polish_top=3)
        params = one_step_chain(f.params, baseline)
        samples = None
        if f.boot is not None:
            b = np.asarray(f.boot, dtype=float)
            cols = {k: b[:, law.param_names.index(k)] for k in law.param_names}
            ch = one_step_chain(cols, baseline)
            samples = np.column_stack([np.broadcast_to(np.asarray(ch[k], dtype=float), (len(b),))
                                       for k in ReferenceFit.PARAMS])
            samples[~np.all(np.isfinite(b), axis=1)] = np.nan
        fits["score"] = f
        diag = {"converged": bool(f.diagnostics.get("converged")),
                "params_at_bounds": list(f.diagnostics.get("params_at_bounds") or []),
                "residual_sd": f.diagnostics.get("residual_sd"), "warnings": msgs}
    else:
        lfixed = {} if loss_floor else {"E": 0.0}
        if not need_data:   # one token budget: B D^-beta is a constant (E, if free, absorbs it)
            lfixed.update(B=0.0, beta=0.3)
        loss_law = get_law("density_loss")
        n_free = len(loss_law.params) - len(lfixed)
        n_size_params = n_free - (2 if need_data else 0)
        if n_sizes < n_size_params or len(r) <= n_free:
            raise ScalelawError(
                f"the reference family has {n_sizes} distinct model size(s) and {len(r)} run(s) with a {label} "
                f"score and loss, but the loss law has {n_free} free parameters; add families or runs to --reference")
        ldata = pd.DataFrame({"N": r["N"].to_numpy(float), "D": np.where(np.isfinite(D), D, D_ref or 1.0),
                              "loss": pd.to_numeric(r["loss"]).to_numpy(float)})
        lf, m1 = _fit_quiet(loss_law, ldata, fixed=lfixed, boot=boot, seed=seed, n_jobs=1)
        slaw = get_law("downstream_sigmoid")
        sdata = pd.DataFrame({slaw.inputs[0]: ldata["loss"], slaw.target: r["score"].to_numpy(float)})
        sfixed = {k: v for k, v in cd.items() if k in slaw.param_names}
        sf, m2 = _fit_quiet(slaw, sdata, fixed=sfixed, boot=boot, seed=seed, objective="lsq", n_jobs=1)
        params = {**{k: lf.params[k] for k in ("A", "alpha", "B", "beta", "E")},
                  **{k: sf.params[k] for k in ("c", "gamma", "l0", "d")}}
        samples = None
        if lf.boot is not None and sf.boot is not None:
            li = [loss_law.param_names.index(k) for k in ("A", "alpha", "B", "beta", "E")]
            si = [slaw.param_names.index(k) for k in ("c", "gamma", "l0", "d")]
            samples = np.hstack([np.asarray(lf.boot)[:, li], np.asarray(sf.boot)[:, si]])
        fits = {"loss": lf, "sigmoid": sf}
        diag = {"converged": bool(lf.diagnostics.get("converged")) and bool(sf.diagnostics.get("converged")),
                "params_at_bounds": list(lf.diagnostics.get("params_at_bounds") or [])
                + list(sf.diagnostics.get("params_at_bounds") or []),
                "residual_sd": {"loss": lf.diagnostics.get("residual_sd"), "score": sf.diagnostics.get("residual_sd")},
                "warnings": m1 + m2}
    return ReferenceFit(label=label, method=method, params=params, samples=samples, D_ref=D_ref,
                        baseline=baseline, n_reference=len(r), sizes=sizes, data_term=bool(need_data),
                        diagnostics=diag, fits=fits)


def _neff(rf: ReferenceFit, score: np.ndarray):
    """Point estimate (n,) and bootstrap draws (K, n) of N_eff."""
    D = rf.D_ref or 1.0      # without a data term D is irrelevant
    point = effective_size(score, rf.params, D)
    sd = rf.sample_dicts()
    draws = None
    if sd is not None:
        draws = effective_size(score[None, :], sd, D)
        bad = ~np.all(np.isfinite(rf.samples), axis=1)
        draws[bad] = np.nan
    return point, draws


def _flags(u: np.ndarray, neff: np.ndarray, sizes, margin: float) -> list:
    out = []
    for ui, ni in zip(u, neff):
        f = []
        if not np.isfinite(ui):
            f.append("missing score")
        elif ui <= margin:
            f.append("near baseline")
        elif ui >= 1 - margin:
            f.append("near ceiling")
        if np.isfinite(ui) and np.isinf(ni):
            f.append("above reference")
        elif np.isfinite(ni) and (ni > sizes[1] * _EXTRAPOLATION or ni < sizes[0] / _EXTRAPOLATION):
            f.append("extrapolated")
        out.append("; ".join(f))
    return out


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
@dataclass
class DensityResult:
    table: pd.DataFrame
    method: str
    reference: str
    benchmarks: list
    combine: str
    D_ref: float | None
    level: float
    fits: dict

    def rows(self) -> list:
        """JSON-ready rows (NaN/inf -> null)."""
        cols = ["model", "family", "N", "D", "score", "baseline", "is_reference", "N_eff", "N_eff_lower",
                "N_eff_upper", "density", "density_lower", "density_upper", "flag", "method", "benchmarks",
                "reference", "D_ref"]
        t = self.table[[c for c in cols if c in self.table.columns]]
        out = []
        for rec in t.to_dict(orient="records"):
            out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()})
        return out

    def summary(self) -> dict:
        return {"method": self.method, "reference": self.reference, "benchmarks": self.benchmarks,
                "combine": self.combine, "D_ref": self.D_ref, "level": self.level,
                "fits": {k: v.summary() for k, v in self.fits.items()}}

    def to_csv(self) -> str:
        return self.table.to_csv(index=False)


def score_models(models, reference, benchmarks=None, *, combine: str = "average", method: str = "auto",
                 tokens: float | None = None, baselines: Mapping | None = None, scale: float = 1.0,
                 data_term: bool | None = None, loss_floor: bool = False, boot: int = 200, seed: int = 0,
                 level: float = 0.95, margin: float = 0.05) -> DensityResult:
    """Effective size N_eff and density N_eff / N of every model against a reference family.

    models: DataFrame, file or dataset name (original ObsScaling or canonical columns).
    reference: filter expression (scalelaw.expr; either column naming), a list of families or a mask.
    benchmarks: names or comma-separated string (default: MMLU, HellaSwag, Winograd, GSM8K).
    combine: "average" (one ruler on the mean score over benchmarks, mean baseline) or
        "per-benchmark" (one ruler per benchmark; N_eff = geometric mean over the benchmarks
        whose score is not flagged).
    method: "auto" (two-step when a 'loss' column exists on the reference rows), "one-step",
        "two-step".
    tokens: reference token budget D_ref (default: geometric median of the reference rows' D).
    baselines: {benchmark: chance score} overriding :data:`BASELINES`.
    scale: scores lie in [0, scale] (e.g. 100 for percentages).
    """
    if combine not in ("average", "per-benchmark"):
        raise ScalelawError(f"combine must be 'average' or 'per-benchmark'; got {combine!r}")
    if not 0 < level < 1:
        raise ScalelawError(f"level must be in (0, 1); got {level!r}")
    if not 0 <= margin < 0.5:
        raise ScalelawError(f"margin must be in [0, 0.5); got {margin!r}")
    raw = load_models(models)
    frame = model_frame(raw).reset_index(drop=True)
    benches = resolve_benchmarks(frame, benchmarks)
    _check_scores(frame, benches, scale)
    bmap = {b: baseline_of(b, baselines) for b in benches}
    N = frame["N"].to_numpy(dtype=float)
    badN = ~(np.isfinite(N) & (N > 0))
    if badN.any():
        k = int(np.flatnonzero(badN)[0])
        raise ScalelawError(f"model {frame['model'].iloc[k]!r} has no positive parameter count N "
                            f"({frame['N'].iloc[k]!r}); fix 'Model Size (B)' or drop the row")
    mask = select_reference(frame, reference)
    ref = frame.loc[mask]
    S = {b: pd.to_numeric(frame[f"score_{b}"], errors="coerce").to_numpy(dtype=float) / scale for b in benches}
    if combine == "average":
        targets = {"+".join(benches): (np.mean(np.vstack([S[b] for b in benches]), axis=0),
                                       float(np.mean([bmap[b] for b in benches])))}
    else:
        targets = {b: (S[b], bmap[b]) for b in benches}
    fits, points, draws, flags, us = {}, {}, {}, {}, {}
    for label, (s, base) in targets.items():
        rf = fit_reference(ref, s[mask], baseline=base, label=label, method=method, tokens=tokens,
                           data_term=data_term, loss_floor=loss_floor, boot=boot, seed=seed)
        fits[label] = rf
        p, dr = _neff(rf, s)
        u = (s - base) / (1 - base)
        points[label], draws[label], us[label] = p, dr, u
        flags[label] = _flags(u, p, rf.sizes, margin)
    methods = sorted({f.method for f in fits.values()})
    out = frame[["model", "family", "N", "D"]].copy()
    a = (1 - level) / 2
    if combine == "average":
        label = next(iter(targets))
        s, base = targets[label]
        out["score"] = s
        out["baseline"] = base
        neff, dr = points[label], draws[label]
        flag = flags[label]
    else:
        logs = np.vstack([np.log(points[b]) for b in benches])            # (B, n)
        good = np.vstack([[f == "" for f in flags[b]] for b in benches])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            neff = np.exp(np.nanmean(np.where(good, logs, np.nan), axis=0))
            dr = None
            if all(draws[b] is not None for b in benches):
                ld = np.stack([np.log(draws[b]) for b in benches])          # (B, K, n)
                dr = np.exp(np.nanmean(np.where(good[:, None, :], ld, np.nan), axis=0))
        flag = []
        for i in range(len(frame)):
            fl = [f"{b}: {flags[b][i]}" for b in benches if flags[b][i]]
            if not np.isfinite(neff[i]):
                fl.insert(0, "no benchmark usable")
            flag.append("; ".join(fl))
        out["score"] = np.nan
        out["baseline"] = np.nan
        for b in benches:
            out[f"N_eff_{b}"] = points[b]
    out["is_reference"] = mask
    out["N_eff"] = neff
    if dr is not None:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            big = np.where(np.isposinf(dr), 1e300, dr)      # +inf draws: quantiles stay ordered
            lo = np.nanquantile(big, a, axis=0)
            hi = np.nanquantile(big, 1 - a, axis=0)
            lo, hi = (np.where(v >= 1e299, np.inf, v) for v in (lo, hi))
    else:
        lo = hi = np.full(len(frame), np.nan)
    out["N_eff_lower"], out["N_eff_upper"] = lo, hi
    out["density"] = neff / N
    out["density_lower"], out["density_upper"] = lo / N, hi / N
    out["flag"] = flag
    out["method"] = "/".join(methods)
    out["benchmarks"] = ",".join(benches)
    out["reference"] = reference if isinstance(reference, str) else repr(list(reference)) \
        if isinstance(reference, (list, tuple, set)) else "mask"
    D_refs = {f.D_ref for f in fits.values()}
    D_ref = next(iter(D_refs)) if len(D_refs) == 1 else None
    out["D_ref"] = D_ref if D_ref is not None else np.nan
    return DensityResult(table=out, method="/".join(methods), reference=str(out["reference"].iloc[0]),
                         benchmarks=benches, combine=combine, D_ref=D_ref, level=level, fits=fits)


def read_scored(source) -> pd.DataFrame:
    """A SCORED table written by `scalelaw density score -o` (CSV or JSON) or a DataFrame."""
    if isinstance(source, DensityResult):
        return source.table
    if isinstance(source, pd.DataFrame):
        df = source
    else:
        p = Path(str(source))
        if not p.exists():
            raise ScalelawError(f"scored table {source} does not exist; write it with "
                                "`scalelaw density score MODELS --reference EXPR -o FILE`")
        df = _read_file(p, "scored table")
    need = [c for c in ("model", "density") if c not in df.columns]
    if need:
        raise ScalelawError(f"scored table lacks column(s) {', '.join(need)}; it must come from "
                            "`scalelaw density score -o`")
    return df


# ---------------------------------------------------------------------------------------------
# Trend
# ---------------------------------------------------------------------------------------------
_MONTH = 365.25 / 12
_T0 = pd.Timestamp("2023-01-01")


def frontier_mask(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Models that set a new maximum when released (strictly above every earlier date's max);
    on a date with several models only the best can qualify."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.zeros(len(t), dtype=bool)
    if len(t) == 0:
        return keep
    order = np.lexsort((-y, t))                  # by date, best first within a date
    ts, ys = t[order], y[order]
    first = np.r_[True, ts[1:] != ts[:-1]]       # the best model of each date
    cand, yc = order[first], ys[first]
    prev = np.r_[-np.inf, np.maximum.accumulate(yc)[:-1]]
    keep[cand[yc > prev]] = True
    return keep


def _ols(t, y):
    X = np.column_stack([t, np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return coef


@dataclass
class TrendResult:
    slope_per_month: float
    intercept: float
    doubling_months: float | None
    doubling_months_lower: float | None
    doubling_months_upper: float | None
    fit: str
    n_models: int
    n_points: int
    level: float
    interval_method: str
    slope_ci_ols: tuple
    points: pd.DataFrame
    data: pd.DataFrame
    notes: list
    since: str | None = None
    method: str | None = None          # the density estimate the scored table came from

    def to_dict(self) -> dict:
        return {"doubling_months": self.doubling_months, "doubling_months_lower": self.doubling_months_lower,
                "doubling_months_upper": self.doubling_months_upper, "slope_per_month": self.slope_per_month,
                "intercept": self.intercept, "t0": str(_T0.date()), "fit": self.fit,
                "density_method": self.method, "n_models": self.n_models,
                "n_points": self.n_points, "since": self.since, "level": self.level, "interval_method": self.interval_method,
                "slope_ci_ols": list(self.slope_ci_ols),
                "points": [{"model": m, "release_date": str(d.date()), "density": float(v)}
                           for m, d, v in zip(self.points["model"], self.points["release_date"],
                                              self.points["density"])],
                "notes": self.notes}

    def predict(self, dates) -> np.ndarray:
        t = (pd.to_datetime(pd.Series(dates)) - _T0).dt.days.to_numpy(float) / _MONTH
        return np.exp(self.slope_per_month * t + self.intercept)


def _doubling(slope):
    return math.log(2) / slope if slope > 0 else None


def fit_trend(scored, dates, *, fit: str = "frontier", include_flagged: bool = False,
              skip_undated: bool = False, since=None, boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> TrendResult:
    """ln(density) = A t + B over release dates (t in months since 2023-01-01).

    fit: "frontier" (the running maximum: models setting a new density record, the paper's
    rho_max) or "all" (every model). Flagged rows (near baseline/ceiling, above reference,
    extrapolated, missing) are left out unless include_flagged. A model without a release date
    is an error unless skip_undated. since: keep models released on or after this date (the
    paper's window starts in 2023). Interval: bootstrap over models (the frontier is
    re-selected in each resample), percentile.
    """
    if fit not in ("frontier", "all"):
        raise ScalelawError(f"--fit must be 'frontier' (running maximum) or 'all'; got {fit!r}")
    df = read_scored(scored).copy()
    dmethod = None
    if "method" in df.columns:
        ms = sorted({str(m) for m in df["method"].dropna()})
        dmethod = "/".join(ms) if ms else None
    dd = load_dates(dates)
    df["model"] = df["model"].astype(str)
    df["density"] = pd.to_numeric(df["density"], errors="coerce")
    notes = []
    if "flag" in df.columns and not include_flagged:
        fl = df["flag"].fillna("").astype(str).str.strip() != ""
        if fl.any():
            notes.append(f"{int(fl.sum())} flagged model(s) left out (near baseline/ceiling, above reference, "
                         "extrapolated or missing scores); include them with --include-flagged")
        df = df.loc[~fl]
    ok = np.isfinite(df["density"]) & (df["density"] > 0)
    if (~ok).any():
        notes.append(f"{int((~ok).sum())} model(s) without a finite density left out")
    df = df.loc[ok]
    dup = dd["model"].duplicated(keep=False)
    if dup.any():
        raise ScalelawError(f"dates file lists model {dd.loc[dup, 'model'].iloc[0]!r} more than once; keep one row per model")
    df = df.merge(dd, on="model", how="left")
    nod = df["release_date"].isna()
    if nod.any():
        names = df.loc[nod, "model"].tolist()
        if not skip_undated:
            k = len(names) - 1
            who = (f"model {names[0]!r} has" if k == 0 else
                   f"models {names[0]!r} and {k} other{'s' if k > 1 else ''} have")
            raise ScalelawError(f"{who} no release date in the dates file; add them, or pass --skip-undated to "
                                "leave undated models out")
        notes.append(f"{len(names)} undated model(s) left out: {', '.join(names[:5])}" + (" ..." if len(names) > 5 else ""))
        df = df.loc[~nod]
    if since is not None:
        try:
            t_since = pd.Timestamp(since)
        except Exception:
            raise ScalelawError(f"--since must be a date (YYYY-MM-DD); got {since!r}") from None
        early = df["release_date"] < t_since
        if early.any():
            notes.append(f"{int(early.sum())} model(s) released before {t_since.date()} left out")
        df = df.loc[~early]
    if len(df) < 2:
        raise ScalelawError(f"the trend needs at least 2 dated models with a usable density; got {len(df)}")
    t = (df["release_date"] - _T0).dt.days.to_numpy(dtype=float) / _MONTH
    y = np.log(df["density"].to_numpy(dtype=float))
    sel = frontier_mask(t, y) if fit == "frontier" else np.ones(len(t), dtype=bool)
    if sel.sum() < 2 or np.ptp(t[sel]) == 0:
        raise ScalelawError(f"the {fit} selection leaves {int(sel.sum())} point(s) on distinct dates; the trend "
                            "needs at least 2 (try --fit all)")
    slope, icpt = _ols(t[sel], y[sel])
    # OLS t-interval of the slope (conditional on the selection)
    from scipy import stats
    n = int(sel.sum())
    if n > 2:
        res = y[sel] - (slope * t[sel] + icpt)
        s2 = float(res @ res) / (n - 2)
        se = math.sqrt(s2 / float(np.sum((t[sel] - t[sel].mean()) ** 2)))
        q = stats.t.ppf(0.5 + level / 2, n - 2)
        ols_ci = (slope - q * se, slope + q * se)
    else:
        ols_ci = (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    slopes = []
    from ..progress import Progress
    bar = Progress(total=int(boot), desc="trend bootstrap")
    for _ in range(int(boot)):
        bar.update()
        idx = rng.integers(0, len(t), len(t))
        tb, yb = t[idx], y[idx]
        sb = frontier_mask(tb, yb) if fit == "frontier" else np.ones(len(tb), dtype=bool)
        if sb.sum() < 2 or np.ptp(tb[sb]) == 0:
            continue
        slopes.append(_ols(tb[sb], yb[sb])[0])
    bar.close()
    slopes = np.asarray(slopes)
    a = (1 - level) / 2
    if len(slopes) >= 20:
        s_lo, s_hi = np.quantile(slopes, [a, 1 - a])
        method = f"bootstrap over models ({len(slopes)} resamples, percentile; frontier re-selected)" \
            if fit == "frontier" else f"bootstrap over models ({len(slopes)} resamples, percentile)"
    else:
        s_lo, s_hi = ols_ci
        method = "OLS t-interval on the slope"
    d_lo = _doubling(s_hi) if np.isfinite(s_hi) else None
    d_hi = _doubling(s_lo) if np.isfinite(s_lo) and s_lo > 0 else None
    if not slope > 0:
        notes.append("density does not grow with time on this selection: no doubling time")
    if s_lo is not None and np.isfinite(s_lo) and s_lo <= 0:
        notes.append("the interval of the slope includes zero: the doubling time's upper end is unbounded")
    points = df.loc[sel, ["model", "release_date", "density"]].sort_values("release_date").reset_index(drop=True)
    data = df[["model", "release_date", "density"]].copy()
    data["selected"] = sel
    return TrendResult(slope_per_month=float(slope), intercept=float(icpt), doubling_months=_doubling(slope),
                       doubling_months_lower=d_lo, doubling_months_upper=d_hi, fit=fit, n_models=len(df),
                       n_points=n, level=level, interval_method=method,
                       slope_ci_ols=(float(ols_ci[0]), float(ols_ci[1])), points=points, data=data, notes=notes,
                       since=None if since is None else str(pd.Timestamp(since).date()), method=dmethod)


# ---------------------------------------------------------------------------------------------
# Figures (plotly; never shown here)
# ---------------------------------------------------------------------------------------------
def density_figure(trend: TrendResult, title: str | None = None):
    """Density against release date on a log scale, the selected points and the fitted trend."""
    import plotly.graph_objects as go

    d = trend.data
    dens = pd.to_numeric(d["density"], errors="coerce")
    dropped = int((~np.isfinite(dens) | (dens <= 0)).sum())
    d = d.loc[np.isfinite(dens) & (dens > 0)]     # an unbounded density would stretch the log axis to 1e300
    fig = go.Figure()
    other = d.loc[~d["selected"]]
    fig.add_trace(go.Scatter(x=other["release_date"], y=other["density"], mode="markers", name="models",
                             marker=dict(color="lightgray", size=7), text=other["model"],
                             hovertemplate="%{text}<br>%{x|%Y-%m-%d}<br>density %{y:.3g}<extra></extra>"))
    sel = d.loc[d["selected"]]
    fig.add_trace(go.Scatter(x=sel["release_date"], y=sel["density"], mode="markers",
                             name="running maximum" if trend.fit == "frontier" else "fitted models",
                             marker=dict(color="crimson", size=9), text=sel["model"],
                             hovertemplate="%{text}<br>%{x|%Y-%m-%d}<br>density %{y:.3g}<extra></extra>"))
    xs = pd.date_range(d["release_date"].min(), d["release_date"].max(), periods=50)
    dm = trend.doubling_months
    label = f"trend: doubling {dm:.1f} months" if dm else "trend (no growth)"
    fig.add_trace(go.Scatter(x=xs, y=trend.predict(xs), mode="lines", name=label, line=dict(color="crimson")))
    fig.update_yaxes(type="log", title="capacity density (N_eff / N)")
    fig.update_xaxes(title="release date")
    if dropped:
        fig.add_annotation(text=f"{dropped} model(s) without a finite density not shown", xref="paper", yref="paper",
                           x=0, y=1.06, showarrow=False, font=dict(size=11, color="#8a5a00"))
    fig.update_layout(title=title or f"Capacity density over time ({trend.fit})", template="plotly_white")
    return fig


def effective_size_figure(scored, title: str | None = None):
    """Effective against actual parameter count (log-log) with intervals and the line N_eff = N."""
    import plotly.graph_objects as go

    df = read_scored(scored)
    df = df.loc[np.isfinite(pd.to_numeric(df["N_eff"], errors="coerce"))]
    # the axis spans the points (N_eff and N) with a decade of margin; interval ends beyond it
    # (an unbounded upper end of N_eff reads 1e273) are drawn to the edge and said in the hover
    vals = np.concatenate([df["N_eff"].to_numpy(dtype=float), df["N"].to_numpy(dtype=float)])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    y_lo, y_hi = (float(vals.min()) / 10, float(vals.max()) * 10) if vals.size else (1.0, 10.0)
    fig = go.Figure()
    for is_ref, name, color in ((False, "models", "steelblue"), (True, "reference family", "darkorange")):
        part = df.loc[df.get("is_reference", pd.Series(False, index=df.index)).astype(bool) == is_ref]
        if part.empty:
            continue
        up = lo = None
        hover = part["model"].astype(str)
        if "N_eff_upper" in part:
            hi_end = pd.to_numeric(part["N_eff_upper"], errors="coerce")
            beyond = ~(np.isfinite(hi_end) & (hi_end <= y_hi))
            up = (hi_end.where(~beyond, y_hi) - part["N_eff"]).clip(lower=0)
            hover = hover + np.where(beyond, " (interval unbounded above within this axis)", "")
        if "N_eff_lower" in part:
            lo_end = pd.to_numeric(part["N_eff_lower"], errors="coerce")
            below = ~(np.isfinite(lo_end) & (lo_end >= y_lo))
            lo = (part["N_eff"] - lo_end.where(~below, y_lo)).clip(lower=0)
        fig.add_trace(go.Scatter(
            x=part["N"], y=part["N_eff"], mode="markers", name=name, marker=dict(color=color, size=8),
            error_y=None if up is None else dict(type="data", symmetric=False, array=up, arrayminus=lo,
                                                 thickness=1, width=0),
            text=hover, hovertemplate="%{text}<br>N %{x:.3g}<br>N_eff %{y:.3g}<extra></extra>"))
    lo_, hi_ = float(df["N"].min()), float(df["N"].max())
    fig.add_trace(go.Scatter(x=[lo_, hi_], y=[lo_, hi_], mode="lines", name="N_eff = N (density 1)",
                             line=dict(color="gray", dash="dash")))
    fig.update_xaxes(type="log", title="actual parameters N")
    fig.update_yaxes(type="log", title="effective parameters N_eff", range=[math.log10(y_lo), math.log10(y_hi)])
    fig.update_layout(title=title or "Effective vs actual size", template="plotly_white")
    return fig
