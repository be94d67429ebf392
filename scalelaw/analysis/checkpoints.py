"""Downstream ability across training checkpoints (``scalelaw trajectory``).

Input: a per-checkpoint table (one row per (run, step)) with ``N``, ``D`` and ``score_<task>``
(+ ``stderr_<task>``), e.g. lm-evaluation-harness results read by :mod:`scalelaw.io.lmeval` or
the ``pythia`` / ``pythia-deduped`` datasets. Per task, across model sizes:

- :func:`fit_tasks`: a downstream law fitted on every checkpoint of every size: error
  ``1 - score`` against (N, D) with ``downstream_direct`` (tokens and compute, C = 6ND), or
  against the validation loss with ``downstream_sigmoid`` when the table has a ``loss`` column;
- :func:`flag_tasks`: at chance / saturated / non-monotonic, by the rules in :data:`RULES`;
- :func:`emergence`: the compute (and tokens, step) at which a task leaves chance, per size;
- :func:`predict_final`: a run's final score from its first fraction of training plus smaller
  runs seen in full, with an interval; :func:`backtest` measures it (docs/trajectory.md);
- :func:`figure`: score against tokens per size, with the fitted curves.

Chance levels (:data:`CHANCE`, by task name; ``chance={task: value}`` overrides): 1 / number of
answer options for multiple-choice tasks scored by accuracy, 0 for open-vocabulary ones
(LAMBADA's last word). A task with no declared chance level uses the mean score of the step-0
checkpoints (an untrained model) when the table has them, else it is refused by name.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ScalelawError

#: chance accuracy of harness tasks (keys: column-safe task names, lower case; a prefix ending in
#: '_' covers a task family). Multiple choice: 1/options (ARC, MMLU = hendrycksTest, SciQ,
#: LogiQA, HellaSwag, OpenBookQA: 4; PIQA, WinoGrande, WSC, BoolQ, COPA, RTE: 2); LAMBADA scores
#: the exact last word over the whole vocabulary: 0.
CHANCE = {"arc_easy": 0.25, "arc_challenge": 0.25, "hendryckstest_": 0.25,
          "mmlu": 0.25, "mmlu_": 0.25, "sciq": 0.25, "logiqa": 0.25, "hellaswag": 0.25, "openbookqa": 0.25,
          "piqa": 0.5, "winogrande": 0.5, "wsc": 0.5, "wsc273": 0.5, "boolq": 0.5, "copa": 0.5, "rte": 0.5,
          "lambada_openai": 0.0, "lambada_standard": 0.0, "lambada": 0.0, "lambada_": 0.0}

#: task families for summaries (first matching prefix)
FAMILIES = (("mmlu", ("hendryckstest_", "mmlu")), ("arc", ("arc_",)), ("lambada", ("lambada",)),
            ("commonsense", ("piqa", "winogrande", "wsc", "hellaswag", "copa", "boolq")),
            ("science/logic QA", ("sciq", "logiqa", "openbookqa")))

#: the flag rules (also in docs/trajectory.md); z = 2, z_drop = 4, gap = 0.9 by default
RULES = {
    "at_chance": "final score (last checkpoint) - chance <= z * its stderr (0.02 when no stderr)",
    "saturated": "final score closes at least `gap` of the distance from chance to 1: "
                 "(final - chance) >= gap * (1 - chance)",
    "non_monotonic": "some checkpoint falls below the best earlier one by more than z_drop * "
                     "sqrt(stderr_best^2 + stderr_now^2) (step > 0 checkpoints)",
    "leaves_chance": "first checkpoint from which every later one is above chance by more than z * stderr "
                     "(0.02 when no stderr); its C = 6 N D",
}
DEFAULT_SE = 0.02   # margin used when a score has no stderr
#: predict_final widens the law fit's own prediction interval by this factor. Measured on Pythia
#: (benchmarks/trajectory_backtest.py, docs/trajectory.md): the fit's 95% interval held 71-78% of the
#: actual final scores; 95% coverage needed a factor 1.89 on the standard suite and 1.91 on the
#: deduplicated one (the fit's residual scatter pools every size, but a run's final score also
#: departs from the law as a whole). Calibrated for 95% intervals; 1.0 gives the fit's own interval.
INTERVAL_SCALE = 1.9
M_MIN = 0.1         # downstream_direct refuses tokens per parameter below this (scalelaw.laws.overtrain)


def family_of(task: str) -> str:
    t = task.lower()
    for name, prefixes in FAMILIES:
        if t.startswith(prefixes):
            return name
    return "other"


def tasks_of(df: pd.DataFrame, tasks: Sequence[str] | None = None) -> list[str]:
    """The task names (without ``score_``) in ``df``, or ``tasks`` checked against them."""
    have = [c[6:] for c in df.columns if str(c).startswith("score_")]
    if not have:
        raise ScalelawError(f"{df.attrs.get('source', 'the table')} has no score_<task> columns; give per-checkpoint "
                            "benchmark results (e.g. lm-evaluation-harness output, or the 'pythia' dataset)")
    if not tasks:
        return have
    out = []
    for t in tasks:
        t = t[6:] if t.startswith("score_") else t
        if t in have:
            out.append(t)
        elif t.endswith("*"):
            out.append(t)
        else:
            import difflib
            close = difflib.get_close_matches(t, have, n=3)
            raise ScalelawError(f"task {t!r} is not in the table; "
                                f"{'did you mean ' + ', '.join(close) + '?' if close else 'tasks: ' + ', '.join(have[:8])}")
    return out


def with_averages(df: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Adds ``score_<prefix>avg`` for each task spec ending in '*' (mean over the matching tasks;
    stderr = sqrt(sum stderr^2) / n): e.g. 'hendrycksTest_*' -> score_hendrycksTest_avg."""
    out = df
    for t in tasks:
        if not t.endswith("*"):
            continue
        pre = t[:-1]
        cols = [c for c in df.columns if str(c).startswith("score_" + pre)]
        if not cols:
            raise ScalelawError(f"task pattern {t!r} matches no score_ column")
        name = pre.rstrip("_") + "_avg"
        out = out.copy() if out is df else out
        out["score_" + name] = df[cols].mean(axis=1)
        se = [("stderr_" + c[6:]) for c in cols]
        if all(s in df.columns for s in se):
            out["stderr_" + name] = np.sqrt((df[se] ** 2).sum(axis=1)) / len(cols)
    if out is not df:
        out.attrs = dict(df.attrs)
    return out


def expand_tasks(df: pd.DataFrame, tasks: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """(table with the averages of '*' patterns added, task names)."""
    tasks = tasks_of(df, tasks)
    df = with_averages(df, tasks)
    return df, [t[:-1].rstrip("_") + "_avg" if t.endswith("*") else t for t in tasks]


def chance_of(task: str, df: pd.DataFrame | None = None, chance: Mapping | None = None) -> tuple[float, str]:
    """(chance level, where it came from: 'given', 'declared' or 'step 0')."""
    given = {str(k).lower().removeprefix("score_"): v for k, v in dict(chance or {}).items()}
    t = task.lower()
    if t in given:
        v, src = float(given[t]), "given"
    elif t in CHANCE:
        v, src = CHANCE[t], "declared"
    elif any(t.startswith(k) for k in CHANCE if k.endswith("_")):
        v, src = next(CHANCE[k] for k in CHANCE if k.endswith("_") and t.startswith(k)), "declared"
    elif df is not None and "step" in df.columns and (df["step"] == 0).any() and f"score_{task}" in df.columns:
        v, src = float(df.loc[df["step"] == 0, f"score_{task}"].mean()), "step 0"
    else:
        raise ScalelawError(f"task {task!r} has no declared chance level and the table has no step-0 checkpoint; "
                            f"give one with --chance {task}=<score of random guessing>")
    if not 0 <= v < 1:
        raise ScalelawError(f"chance level of {task!r} must lie in [0, 1); got {v!r}")
    return v, src


def _need(df: pd.DataFrame, cols) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        how = "; ".join(h for c, h in (("N", "give model sizes with --params RUN=N"),
                                        ("D", "give D with --tokens-per-step")) if c in missing)
        raise ScalelawError(f"{df.attrs.get('source', 'the table')} lacks column(s) {', '.join(missing)}; a "
                            f"per-checkpoint table needs run, step, N, D and score_<task>{': ' + how if how else ''}")


def _runs(df: pd.DataFrame) -> list[str]:
    """Run ids ordered by model size."""
    _need(df, ("run", "N"))
    sizes = df.groupby("run")["N"].first()
    if sizes.isna().any():
        bad = list(sizes[sizes.isna()].index)
        raise ScalelawError(f"{df.attrs.get('source', 'the table')}: parameter count N unknown for run(s) "
                            f"{', '.join(map(str, bad[:5]))}; give it (--params {bad[0]}=<N>, or a column N)")
    return list(sizes.sort_values(kind="stable").index)


def _series(df: pd.DataFrame, run: str, task: str, positive_only: bool = True):
    d = df[df["run"] == run].sort_values("step")
    if positive_only:
        d = d[d["step"] > 0]
    s = pd.to_numeric(d[f"score_{task}"], errors="coerce").to_numpy(float)
    se_col = f"stderr_{task}"
    se = (pd.to_numeric(d[se_col], errors="coerce").to_numpy(float) if se_col in d.columns
          else np.full(len(d), np.nan))
    se = np.where(np.isfinite(se) & (se > 0), se, DEFAULT_SE)
    ok = np.isfinite(s)
    return d[ok], s[ok], se[ok]


def _leaves_chance(s: np.ndarray, se: np.ndarray, chance: float, z: float) -> int | None:
    """Index of the first checkpoint from which every later one is above chance by > z stderr."""
    above = s - chance > z * se
    if not above.any() or not above[-1]:
        return None
    k = len(above)
    while k > 0 and above[k - 1]:
        k -= 1
    return k


def _max_drop(s: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """(largest drop below the running best, that drop in units of its combined stderr)."""
    best_i, drop, zmax = 0, 0.0, 0.0
    for j in range(1, len(s)):
        if s[j - 1] > s[best_i]:
            best_i = j - 1
        d = s[best_i] - s[j]
        if d > 0:
            zj = d / math.sqrt(se[best_i] ** 2 + se[j] ** 2)
            if zj > zmax:
                zmax, drop = zj, d
    return drop, zmax


def flag_tasks(df: pd.DataFrame, tasks: Sequence[str] | None = None, chance: Mapping | None = None, *,
               z: float = 2.0, z_drop: float = 4.0, gap: float = 0.9) -> pd.DataFrame:
    """One row per (task, run): final score, chance, the three flags (rules in :data:`RULES`),
    the largest drop and the compute at which the task leaves chance."""
    df, tasks = expand_tasks(df, tasks)
    _need(df, ("run", "step", "N", "D"))
    rows = []
    for task in tasks:
        ch, src = chance_of(task, df, chance)
        for run in _runs(df):
            d, s, se = _series(df, run, task)
            if len(s) == 0:
                continue
            final, fse = float(s[-1]), float(se[-1])
            drop, zdrop = _max_drop(s, se)
            k = _leaves_chance(s, se, ch, z)
            N = float(d["N"].iloc[0])
            D = float(d["D"].iloc[k]) if k is not None else math.nan
            rows.append({"task": task, "family": family_of(task), "run": run, "N": N, "final_step": float(d["step"].iloc[-1]),
                         "final": final, "final_stderr": fse, "chance": ch, "chance_from": src,
                         "at_chance": bool(final - ch <= z * fse),
                         "saturated": bool(final - ch >= gap * (1 - ch)),
                         "non_monotonic": bool(zdrop > z_drop), "max_drop": drop, "max_drop_z": zdrop,
                         "leaves_chance_step": float(d["step"].iloc[k]) if k is not None else math.nan,
                         "leaves_chance_D": D, "leaves_chance_C": 6.0 * N * D if k is not None else math.nan})
    return pd.DataFrame(rows)


def summarize_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """Per task: how many sizes are at chance / saturated / non-monotonic, and a verdict."""
    out = []
    for task, g in flags.groupby("task", sort=False):
        n = len(g)
        a, s, m = int(g["at_chance"].sum()), int(g["saturated"].sum()), int(g["non_monotonic"].sum())
        verdict = ("at chance at every size" if a == n else "saturated at every size" if s == n else
                   "informative" if a == 0 and s == 0 else "informative at some sizes")
        out.append({"task": task, "family": g["family"].iloc[0], "chance": float(g["chance"].iloc[0]),
                    "sizes": n, "at_chance": a, "saturated": s, "non_monotonic": m, "verdict": verdict})
    return pd.DataFrame(out)


def emergence(df: pd.DataFrame, tasks: Sequence[str] | None = None, chance: Mapping | None = None,
              z: float = 2.0) -> pd.DataFrame:
    """Compute (FLOPs, 6ND) at which each task leaves chance, per size: a task x run table (NaN:
    never left chance during training)."""
    f = flag_tasks(df, tasks, chance, z=z)
    return f.pivot_table(index="task", columns="run", values="leaves_chance_C", aggfunc="first",
                         dropna=False, sort=False)[[r for r in _runs(df) if r in set(f["run"])]]


# ---- fitting laws across checkpoints ------------------------------------------------------------------
def _fit_rows(df: pd.DataFrame, task: str, x: str) -> pd.DataFrame:
    d = df[df["step"] > 0].copy() if "step" in df.columns else df.copy()
    d = d[np.isfinite(pd.to_numeric(d[f"score_{task}"], errors="coerce"))]
    if x == "tokens":
        d = d[(d["D"] > 0) & (d["D"] >= M_MIN * d["N"])]
    else:
        d = d[np.isfinite(pd.to_numeric(d["loss"], errors="coerce"))]
    d["err_task"] = 1.0 - d[f"score_{task}"].astype(float)
    d.attrs = dict(df.attrs)
    d.attrs["source"] = f"{df.attrs.get('source', 'the table')} ({task})"
    return d


def law_for(df: pd.DataFrame, x: str | None) -> tuple[str, str]:
    """(x, law name): 'tokens' -> downstream_direct on (N, D); 'loss' -> downstream_sigmoid."""
    if x is None:
        x = "loss" if "loss" in df.columns and pd.to_numeric(df["loss"], errors="coerce").notna().any() else "tokens"
    if x not in ("tokens", "loss"):
        raise ScalelawError(f"--x {x!r}: choose tokens (error against N and D, compute C = 6ND) or loss")
    if x == "loss" and "loss" not in df.columns:
        raise ScalelawError(f"{df.attrs.get('source', 'the table')} has no loss column; use --x tokens")
    return x, ("downstream_direct" if x == "tokens" else "downstream_sigmoid")


def fit_task(df: pd.DataFrame, task: str, x: str | None = None, *, starts=None, boot: int = 0, seed: int = 0,
             level: float = 0.95):
    """The downstream law fitted to ``1 - score_<task>`` on every usable checkpoint of ``df``."""
    from ..fit import fit
    from ..law import get_law

    x, name = law_for(df, x)
    rows = _fit_rows(df, task, x)
    law = get_law(name)
    if len(rows) <= len(law.params):
        raise ScalelawError(f"task {task!r}: only {len(rows)} usable checkpoints (step > 0, D >= {M_MIN:g} N) for "
                            f"the {len(law.params)}-parameter law {name}; give more checkpoints or sizes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(law, rows, prepare_options={"error": "err_task"}, starts=starts, boot=boot, seed=seed,
                   level=level, n_jobs=1)


@dataclass
class TaskFits:
    x: str
    law: str
    fits: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        out = []
        for t, f in self.fits.items():
            d = f.diagnostics
            out.append({"task": t, "family": family_of(t), "law": self.law, "x": self.x,
                        "params": {k: float(v) for k, v in f.params.items()},
                        "rows": int((f.data or {}).get("rows", {}).get("fitted", 0) or 0),
                        "residual_sd": d.get("residual_sd"), "converged": bool(d.get("converged", True))})
        for t, e in self.errors.items():
            out.append({"task": t, "family": family_of(t), "law": self.law, "x": self.x, "error": e})
        return out


def fit_tasks(df: pd.DataFrame, tasks: Sequence[str] | None = None, x: str | None = None) -> TaskFits:
    """Per task, the downstream law fitted across every checkpoint of every size (see module doc).
    A task whose fit fails is reported in ``errors`` (the others still fit)."""
    df, tasks = expand_tasks(df, tasks)
    x, name = law_for(df, x)
    out = TaskFits(x=x, law=name)
    for t in tasks:
        try:
            out.fits[t] = fit_task(df, t, x)
        except ScalelawError as exc:
            out.errors[t] = str(exc)
    return out


# ---- the end from the start ------------------------------------------------------------------------
def _z(level: float) -> float:
    from scipy.stats import norm
    return float(norm.ppf(0.5 + level / 2))


def tokens_power_law(D: np.ndarray, s: np.ndarray, se: np.ndarray, D_final: float, level: float = 0.95):
    """Baseline: score(D) = a - b D^-c fitted on one run's own checkpoints with D >= 0.1 N (weighted by stderr),
    evaluated at D_final; interval from the fit's covariance plus the residual scatter."""
    from scipy.optimize import curve_fit

    def f(lx, a, lb, c):
        return a - np.exp(lb - c * lx)

    lx = np.log(D)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, cov = curve_fit(f, lx, s, p0=(min(1.0, s.max() + 0.05), math.log(max(s.max() - s.min(), 1e-3)) + 0.3 * lx.mean(), 0.3),
                               sigma=se, bounds=([0.0, -50.0, 1e-4], [1.0, 50.0, 3.0]), maxfev=5000)
    except (RuntimeError, ValueError):
        return float(s[-1]), math.nan, math.nan
    mean = float(np.clip(f(math.log(D_final), *p), 0, 1))
    eps = 1e-6
    g = np.array([(f(math.log(D_final), *(p + eps * np.eye(3)[i])) - f(math.log(D_final), *p)) / eps for i in range(3)])
    var = float(g @ cov @ g) if np.all(np.isfinite(cov)) else math.nan
    resid = s - f(lx, *p)
    sd = float(np.sqrt(np.sum(resid ** 2) / max(len(s) - 3, 1)))
    half = _z(level) * math.sqrt(max(var, 0) + sd ** 2) if math.isfinite(var) else math.nan
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def predict_final(df: pd.DataFrame, run: str, fraction: float, tasks: Sequence[str] | None = None, *,
                  final_step: float | None = None, level: float = 0.95, x: str = "tokens",
                  starts: Mapping | None = None, interval_scale: float = INTERVAL_SCALE) -> pd.DataFrame:
    """Final score per task of ``run`` seen up to ``fraction`` of its training (steps <= fraction x
    final_step; final_step defaults to the run's last checkpoint), with smaller runs seen in full.

    Method: ``downstream_direct`` (error vs N and D) fitted on the smaller runs' checkpoints and
    the run's observed ones, evaluated at (N, D_final); the interval (``lower``, ``upper``) is the
    fit's prediction interval (parameter uncertainty plus residual scatter; ``lower_fit``,
    ``upper_fit``) widened about the prediction by ``interval_scale`` (see
    :data:`INTERVAL_SCALE`). Baselines in the same rows: the last
    observed score (interval: +- z stderr), and a power law in tokens fitted on the run alone.
    """
    if not 0 < fraction <= 1:
        raise ScalelawError(f"fraction {fraction!r} must lie in (0, 1]")
    df, tasks = expand_tasks(df, tasks)
    _need(df, ("run", "step", "N", "D"))
    if run not in set(df["run"]):
        raise ScalelawError(f"run {run!r} is not in the table; runs: {', '.join(_runs(df))}")
    mine = df[df["run"] == run]
    N = float(mine["N"].iloc[0])
    last = float(mine["step"].max())
    final_step = float(final_step or last)
    tps = float((mine["D"] / mine["step"]).replace([np.inf, -np.inf], np.nan).dropna().median())
    D_final = final_step * tps
    cut = fraction * final_step
    smaller = df[df["N"] < N]
    if smaller["run"].nunique() < 1:
        raise ScalelawError(f"run {run!r} is the smallest in the table; predicting its end needs smaller runs seen in full")
    seen = mine[mine["step"] <= cut]
    if (seen["step"] > 0).sum() < 2:
        raise ScalelawError(f"run {run!r} has fewer than 2 checkpoints (step > 0) up to step {cut:g}; "
                            "observe more of it")
    train = pd.concat([smaller, seen], ignore_index=True)
    train.attrs = dict(df.attrs)
    z = _z(level)
    rows = []
    for t in tasks:
        d, s, se = _series(seen, run, t)
        row = {"task": t, "family": family_of(t), "run": run, "N": N, "fraction": fraction,
               "observed_step": float(d["step"].iloc[-1]) if len(d) else math.nan, "final_step": final_step,
               "last_observed": float(s[-1]) if len(s) else math.nan,
               "last_lower": float(s[-1] - z * se[-1]) if len(s) else math.nan,
               "last_upper": float(s[-1] + z * se[-1]) if len(s) else math.nan}
        try:
            ft = fit_task(train, t, x, starts=[starts[t]] if starts and t in starts else None, level=level)
            with warnings.catch_warnings():  # an interval clipped at the [0, 1] bound is expected here
                warnings.simplefilter("ignore")
                p = ft.predict(pd.DataFrame({"N": [N], "D": [D_final]}), level=level).iloc[0]
            row.update({"predicted": 1.0 - float(p["mean"]), "lower_fit": 1.0 - float(p["pred_upper"]),
                        "upper_fit": 1.0 - float(p["pred_lower"]), "params": dict(ft.params)})
            widen(row, interval_scale)
        except ScalelawError as exc:
            row.update({"predicted": math.nan, "lower_fit": math.nan, "upper_fit": math.nan, "lower": math.nan,
                        "upper": math.nan, "error": str(exc)})
        pl = (d["D"] >= M_MIN * N).to_numpy()  # the checkpoints the law may use too (D >= 0.1 N)
        if pl.sum() >= 4:
            m, lo, hi = tokens_power_law(d["D"].to_numpy(float)[pl], s[pl], se[pl], D_final, level)
        else:
            m = lo = hi = math.nan
        row.update({"powerlaw": m, "powerlaw_lower": lo, "powerlaw_upper": hi})
        if "score_" + t in mine.columns:
            fin = mine[mine["step"] == final_step]
            row["actual"] = float(fin["score_" + t].iloc[0]) if len(fin) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def widen(row, scale: float):
    """``lower``/``upper`` = the fit's interval (lower_fit, upper_fit) widened about ``predicted`` by
    ``scale``, within [0, 1]; works on a dict or DataFrame."""
    if not scale > 0:
        raise ScalelawError(f"interval scale must be positive; got {scale!r}")
    p = row["predicted"]
    row["lower"] = np.clip(p - scale * (p - row["lower_fit"]), 0.0, 1.0)
    row["upper"] = np.clip(p + scale * (row["upper_fit"] - p), 0.0, 1.0)
    if isinstance(row, dict):
        row["lower"], row["upper"] = float(row["lower"]), float(row["upper"])
    return row


def backtest(df: pd.DataFrame, tasks: Sequence[str] | None = None, fractions=(0.1, 0.25, 0.5), *,
             targets: Sequence[str] | None = None, min_smaller: int = 2, level: float = 0.95,
             progress=None) -> pd.DataFrame:
    """:func:`predict_final` for every target run (default: every run with at least ``min_smaller``
    smaller runs) and fraction, against the actual final scores."""
    df, tasks = expand_tasks(df, tasks)
    runs = _runs(df)
    targets = list(targets) if targets else runs[min_smaller:]
    out = []
    for run in targets:
        for f in fractions:
            out.append(predict_final(df, run, f, tasks, level=level))
            if progress:
                progress(run, f)
    return pd.concat(out, ignore_index=True)


def score_backtest(bt: pd.DataFrame) -> pd.DataFrame:
    """MAE (accuracy points) and interval coverage per (family, fraction) for the method (``law``: its
    widened interval; ``fit``: the fit's own) and the two baselines."""
    rows = []
    for (fam, f), g in bt.groupby(["family", "fraction"], sort=True):
        a = g["actual"].to_numpy(float)
        r = {"family": fam, "fraction": f, "n": int(np.isfinite(a).sum())}
        for name, m, lo, hi in (("law", "predicted", "lower", "upper"), ("fit", "predicted", "lower_fit", "upper_fit"),
                                ("last", "last_observed", "last_lower", "last_upper"),
                                ("powerlaw", "powerlaw", "powerlaw_lower", "powerlaw_upper")):
            p, l, h = (g[c].to_numpy(float) for c in (m, lo, hi))
            ok = np.isfinite(p) & np.isfinite(a)
            r[f"{name}_mae"] = float(100 * np.mean(np.abs(p[ok] - a[ok]))) if ok.any() else math.nan
            okc = ok & np.isfinite(l) & np.isfinite(h)
            r[f"{name}_coverage"] = float(np.mean((a[okc] >= l[okc]) & (a[okc] <= h[okc]))) if okc.any() else math.nan
            r[f"{name}_width"] = float(100 * np.median(h[okc] - l[okc])) if okc.any() else math.nan
        rows.append(r)
    return pd.DataFrame(rows)


# ---- figure ---------------------------------------------------------------------------------------
def figure(df: pd.DataFrame, task: str, fit=None, title: str | None = None):
    """Score against tokens per size (points with stderr bars) and, with ``fit`` (a
    downstream_direct fit of that task), the fitted curve per size."""
    from ..plots import _PALETTE, _go, _rgba

    df, (task,) = expand_tasks(df, [task])
    go = _go()
    fig = go.Figure()
    for i, run in enumerate(_runs(df)):
        d, s, se = _series(df, run, task)
        color = _PALETTE[i % len(_PALETTE)]
        fig.add_trace(go.Scatter(x=d["D"], y=s, mode="markers", name=run, legendgroup=run,
                                 marker={"color": color, "size": 6},
                                 error_y={"type": "data", "array": se, "visible": True, "color": _rgba(color, 0.5)}))
        if fit is not None and len(d):
            N = float(d["N"].iloc[0])
            Dg = np.geomspace(max(M_MIN * N, float(d["D"].min())), float(d["D"].max()), 80)
            y = 1.0 - np.asarray(fit.law.evaluate({"N": np.full_like(Dg, N), "D": Dg}, fit.params), dtype=float)
            fig.add_trace(go.Scatter(x=Dg, y=y, mode="lines", name=f"{run} fit", legendgroup=run,
                                     showlegend=False, line={"color": color}))
    fig.update_layout(title=title or f"{task}: score across training", xaxis_title="tokens D",
                      yaxis_title=f"score ({df.attrs.get('metric', 'acc')})", template="plotly_white")
    fig.update_xaxes(type="log")
    return fig
