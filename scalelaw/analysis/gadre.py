"""Over-training and downstream error (Gadre et al. 2024): protocol, chained prediction, backtests.

Gadre et al. fit L(C, M) = E + (a M^eta + b M^-eta) C^-eta (law ``overtrain``) on five small
runs, Err(L) = eps - k exp(-gamma L) (law ``downstream_exp``) on those plus a 1.4B run, and
predict larger runs by chaining (N, D) -> L -> Err. This module

- reads their 104-run testbed (the registered dataset ``gadre-overtrain`` through
  ``scalelaw.datasets``, or an ``exp_data`` folder the user names) and adds the 17-task average
  error ``err_avg17``;
- ``chain_predict``: the two-stage prediction with the uncertainty of both stages carried through
  (joint bootstrap: loss-fit sample i is paired with error-fit sample i and the loss draws are
  pushed through the error law);
- ``reproduce``: their protocol on RedPajama (C4 validation loss, 17-task error), the published
  numbers next to ours;
- ``cutoff_backtest``: fit every run below a compute cutoff, predict everything above it, for
  each training set, objective and for chained vs direct error prediction;
- figures (plotly, never shown).

Every count N includes embedding parameters, as Gadre et al. count them (``params``, not
``params_no_embed``); M = D / N.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import expr
from ..errors import ScalelawError
from ..law import get_law
from ..result import bound_warning, clip_to_target
from ..uncertainty import percentile_interval

# ---- the testbed -----------------------------------------------------------------------------
# The 17 tasks Gadre et al. average for their error law (SUBSET in scaling/constants.py of
# mlfoundations/scaling; plain mean of 1 - accuracy): declared with the downstream laws.
from ..laws.downstream import TASKS_17  # noqa: E402

# Validation set of their loss law: C4 validation shards (loss_c4_val in their parser).
VALIDATION = "c4_val"
DATASET = "gadre-overtrain"   # the registered dataset name of the testbed (scalelaw.datasets)
ERR17 = "err_avg17"

# Model sizes (all parameters) of the testbed
N_SMALL = (10569312, 78914048, 153677376, 411616256)
N_1B, N_7B = 1439795200, 6889410560

PUBLISHED = {
    # Gadre et al. 2024, section 4 / Table 2 (RedPajama): actual and predicted values
    "loss_1b_m640": {"actual": 2.5021, "predicted": 2.5198, "rel_err": 0.0071},
    "loss_7b_m20": {"actual": 2.4250, "predicted": 2.4427, "rel_err": 0.0073},
    "err_1b_m640": {"actual": 0.4752, "predicted": 0.4925, "rel_err": 0.0364},
    "err_7b_m20": {"actual": 0.4716, "predicted": 0.4719, "rel_err": 0.0005},
    "params_loss": {"E": 1.8367, "a": 212.24, "b": 366.69, "eta": 0.1364},
    "params_err": {"eps": 0.8570, "k": 2.2065, "gamma": 0.7146},
}


def _read(source) -> pd.DataFrame:
    """The run table of ``source``: None -> the registered dataset; a folder -> an exp_data folder
    (or a checkout of mlfoundations/scaling holding one); anything else -> scalelaw.io.load_table
    (a run-table file or a registered dataset name)."""
    from ..io import load_table

    if source is None:
        return load_table(DATASET)
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        from ..io.openlm import find_exp_data

        try:
            folder = find_exp_data(Path(source))
        except ScalelawError:
            raise ScalelawError(f"{source} is not an exp_data folder of mlfoundations/scaling (no models/ subfolder, "
                                f"nor exp_data/models/); pass that folder, or leave the data out to use the registered "
                                f"dataset {DATASET} (set SCALELAW_MIRROR or run `scalelaw data fetch {DATASET}`)") from None
        return load_table(folder)
    return load_table(source)


def _task_mean(df: pd.DataFrame, cols: Sequence[str]) -> pd.Series:
    """Plain mean of per-task errors; NaN for a run lacking any of them (never an average over
    fewer tasks than asked for)."""
    return df[list(cols)].apply(pd.to_numeric, errors="coerce").mean(axis=1, skipna=False)


def load_runs(source=None) -> pd.DataFrame:
    """Gadre's testbed as a run table plus ``C`` = 6ND, ``err_avg17`` and ``err_avg46``.

    source: None (the registered dataset ``gadre-overtrain``, resolved by scalelaw.datasets: the
    SCALELAW_MIRROR mirror or the download cache), an exp_data folder (or a checkout holding
    one), a run-table file, a dataset name, or a DataFrame already loaded. Anything that cannot
    be read is one ScalelawError naming it; there is no second reader.
    """
    need = ["N", "D", "loss", "dataset"] + [f"err_{t}" for t in TASKS_17]
    df = source.copy() if isinstance(source, pd.DataFrame) else _read(source)
    src = df.attrs.get("source") or "the Gadre run table"
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ScalelawError(f"{src} lacks column(s) {', '.join(missing[:5])} of the Gadre testbed; load the "
                            f"registered dataset ({DATASET}) or point at the exp_data folder of mlfoundations/scaling")
    attrs = dict(df.attrs)
    df = df.copy()
    if "M" not in df.columns:
        df["M"] = df["D"] / df["N"]
    df["C"] = 6.0 * df["N"] * df["D"]
    df[ERR17] = _task_mean(df, [f"err_{t}" for t in TASKS_17])
    # every per-task error (46 tasks in the testbed); the averages themselves start with err_avg
    df["err_avg46"] = _task_mean(df, [c for c in df.columns if str(c).startswith("err_")
                                      and not str(c).startswith("err_avg")])
    df.attrs.update(attrs)
    df.attrs["source"] = src
    df.attrs["validation"] = VALIDATION
    return df


def with_error_column(df: pd.DataFrame, error_column: str) -> pd.DataFrame:
    """``df`` with ``error_column`` as a column: an existing column, or an average the error laws
    accept ('gadre17', 'mean'; see scalelaw.laws.downstream.error_column), added under that name so
    the actual values compared with predictions are the ones the error law was fitted on."""
    if error_column in df.columns:
        return df
    from ..laws.downstream import error_column as pick

    out = df.copy()
    out[error_column] = pick(df, error_column, str(df.attrs.get("source") or "the Gadre run table"))
    return out


def _is_err17(df: pd.DataFrame, error_column: str) -> bool:
    """Whether ``error_column`` holds Gadre's 17-task average (the published error numbers)."""
    a, b = df[error_column].to_numpy(dtype=float), df[ERR17].to_numpy(dtype=float)
    return error_column == ERR17 or bool(np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True))


# ---- fit helpers -------------------------------------------------------------------------------
def _tag(fit, validation: str | None, error_column: str | None = None):
    """Record which validation loss / error average a fit used (checked by chain_predict)."""
    if validation:
        fit.data["validation"] = validation
    if error_column:
        fit.data["error_column"] = error_column
    return fit


def fit_loss(df: pd.DataFrame, *, law="overtrain", objective=None, boot=0, seed=0, level=0.95,
             validation: str | None = None, source: str | None = None, where: str | None = None, **kw):
    """Fit the loss law (default ``overtrain``) to rows of ``df`` (columns N, D, loss)."""
    from ..fit import fit

    f = fit(law, df, objective=objective, boot=boot, seed=seed, level=level, n_jobs=1, source=source,
            where=where, **kw)
    return _tag(f, validation or df.attrs.get("validation"))


def fit_error(df: pd.DataFrame, *, error_column: str = ERR17, law="downstream_exp", objective=None, boot=0,
              seed=0, level=0.95, validation: str | None = None, source: str | None = None,
              where: str | None = None, **kw):
    """Fit an error law on ``error_column`` (a column, 'gadre17' or 'mean'; the law's --option error)."""
    from ..fit import fit

    law = get_law(law)
    f = fit(law, df, objective=objective, boot=boot, seed=seed, level=level, n_jobs=1, source=source,
            where=where, prepare_options={"error": error_column}, **kw)
    return _tag(f, (validation or df.attrs.get("validation")) if "loss" in law.inputs else None, error_column)


# ---- chained prediction --------------------------------------------------------------------------
def _as_fit(f):
    from ..result import Fit, load_fit

    return f if isinstance(f, Fit) else load_fit(f)


def _inputs_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        df = X.copy()
    else:
        try:
            df = pd.DataFrame({k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in dict(X).items()})
        except (TypeError, ValueError) as exc:
            raise ScalelawError(f"inputs to predict at must be numbers per column (e.g. N=1.4e9, D=9e11): {exc}") from None
    if "D" not in df.columns and "M" in df.columns and "N" in df.columns:
        df["D"] = pd.to_numeric(df["M"], errors="coerce") * pd.to_numeric(df["N"], errors="coerce")
    return df


def check_chain(loss_fit, err_fit) -> None:
    """Raise ScalelawError unless the error fit's input is the loss the loss fit predicts."""
    lt, el = loss_fit.law.target, err_fit.law
    if lt != "loss":
        raise ScalelawError(f"--chain: the first fit (law {loss_fit.law.name!r}) predicts {lt!r}, not a validation loss; "
                            "give LOSSFIT,ERRFIT with a loss law first (e.g. overtrain, chinchilla)")
    if "loss" not in el.inputs:
        raise ScalelawError(f"--chain: the second fit (law {el.name!r}) takes {', '.join(el.inputs)}, not the loss; "
                            "give an error-vs-loss fit (downstream_exp, downstream_sigmoid), or predict "
                            f"{el.name!r} directly without --chain")
    if len(el.inputs) != 1:
        raise ScalelawError(f"--chain: law {el.name!r} needs inputs {', '.join(el.inputs)}; only the loss can be chained")
    vl, ve = loss_fit.data.get("validation"), err_fit.data.get("validation")
    if vl and ve and vl != ve:
        raise ScalelawError(f"--chain: the loss fit predicts validation loss {vl!r} but the error fit was fitted on "
                            f"loss {ve!r}; refit one of them on the same validation set")
    lr, er = loss_fit.input_ranges.get("loss"), err_fit.input_ranges.get("loss")
    if lr and er and lr[0] > 0 and er[0] > 0:
        # disjoint ranges more than 1.5x apart: different units (bits vs nats, perplexity, ...)
        if lr[0] > 1.5 * er[1] or er[0] > 1.5 * lr[1]:
            raise ScalelawError(f"--chain: the loss fit saw losses {lr[0]:.4g}..{lr[1]:.4g} but the error fit saw "
                                f"{er[0]:.4g}..{er[1]:.4g}; the units do not match (nats vs bits or perplexity?): "
                                "refit both on the same validation loss column")
    tr = err_fit.input_ranges.get(el.target)
    if tr and (tr[0] < 0 or tr[1] > 1):
        raise ScalelawError(f"--chain: the error fit's target {el.target!r} spans {tr[0]:.4g}..{tr[1]:.4g}; errors "
                            "must lie in [0, 1]: refit on 1 - accuracy, not percentages")


def _paired_samples(loss_fit, err_fit, seed: int = 0):
    """Bootstrap (or delta-method) samples of both fits, paired one to one."""
    sl, se = loss_fit.param_samples(seed=seed), err_fit.param_samples(seed=seed + 1)
    if sl is None and se is None:
        return None, None
    if sl is None or se is None:
        import warnings

        which, other = ("loss", "error") if sl is None else ("error", "loss")
        warnings.warn(f"the {which} fit carries no parameter uncertainty (published constants, or fitted without "
                      f"--boot); the intervals reflect only the {other} fit's. Refit it with --boot for both.",
                      stacklevel=3)
    rng = np.random.default_rng(seed)
    if sl is None:
        sl = np.tile([loss_fit.params[n] for n in loss_fit.law.param_names], (len(se), 1))
    if se is None:
        se = np.tile([err_fit.params[n] for n in err_fit.law.param_names], (len(sl), 1))
    k = max(len(sl), len(se))
    # pair sample i with sample i; the shorter set is resampled (with replacement) to length k
    if len(sl) < k:
        sl = np.vstack([sl, sl[rng.integers(0, len(sl), k - len(sl))]])
    if len(se) < k:
        se = np.vstack([se, se[rng.integers(0, len(se), k - len(se))]])
    return sl, se


def _scatter(draws: np.ndarray, fit, rng) -> np.ndarray:
    """Draws plus the fit's residual scatter; NaN when the fit records none (published constants):
    where a new run would land is then unknown, not the curve itself (as in Fit.predict)."""
    sd = fit.diagnostics.get("residual_sd")
    sd = float(sd) if isinstance(sd, (int, float)) and math.isfinite(sd) else math.nan
    z = rng.standard_normal(draws.shape) * sd
    return draws * np.exp(z) if fit.log_residuals else draws + z


def chain_predict(loss_fit, err_fit, X, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Predict (N, D) -> loss -> error with intervals from both stages.

    loss_fit, err_fit: Fit objects, fit files or published fit names. X: DataFrame or mapping
    of input columns (N and D, or N and M = D/N). Returns the inputs plus ``loss_mean``,
    ``loss_lower``, ``loss_upper``, ``error_mean``, ``error_lower``, ``error_upper`` (the
    error interval combines both fits' uncertainty: loss-fit sample i and error-fit sample i are
    paired, the loss draws go through the error law), ``loss_pred_lower/upper`` and
    ``error_pred_lower/upper`` (where a new run would land: each stage's residual scatter added,
    the loss scatter passed through the error law), and ``extrapolation`` (largest factor by
    which an input, or the predicted loss, lies beyond what the fits saw).
    """
    if not 0 < level < 1:
        raise ScalelawError(f"level must be between 0 and 1; got {level!r}")
    lf, ef = _as_fit(loss_fit), _as_fit(err_fit)
    check_chain(lf, ef)
    df = _inputs_frame(X)
    if len(df) == 0:
        raise ScalelawError("give at least one point to predict at, e.g. --at N=1.4e9 --at D=9.2e11")
    if "N" in df.columns and "D" in df.columns and "N" in lf.law.inputs and "D" in lf.law.inputs:
        from ..laws.overtrain import check_inputs
        check_inputs(df, "the inputs")
    lp = lf.predict(df, level=level)
    out = df[[c for c in df.columns if c in lf.law.inputs or c == "M"]].copy().reset_index(drop=True)
    out["loss_mean"] = lp["mean"].to_numpy()
    Xd = {c: df[c].to_numpy(dtype=float) for c in lf.law.inputs}
    loss_mean = out["loss_mean"].to_numpy()
    err_mean = np.asarray(ef.law.evaluate({"loss": loss_mean}, ef.params), dtype=float) * np.ones(len(df))
    sl, se = _paired_samples(lf, ef, seed)
    nan = np.full(len(df), np.nan)
    llo = lhi = elo = ehi = plo = phi = qlo = qhi = nan
    if sl is not None:
        Pl = {n: sl[:, i][:, None] for i, n in enumerate(lf.law.param_names)}
        Pe = {n: se[:, i][:, None] for i, n in enumerate(ef.law.param_names)}
        Ld = np.broadcast_to(np.asarray(lf.law.evaluate(Xd, Pl), dtype=float), (len(sl), len(df)))
        Ed = np.broadcast_to(np.asarray(ef.law.evaluate({"loss": Ld}, Pe), dtype=float), Ld.shape)
        llo, lhi = percentile_interval(Ld, level)
        # where a new run would land: add each stage's residual scatter (log or raw, as fitted),
        # the loss scatter passing through the error law
        rng = np.random.default_rng(seed + 2)
        Ln = _scatter(Ld, lf, rng)
        En = _scatter(np.asarray(ef.law.evaluate({"loss": Ln}, Pe), dtype=float) * np.ones_like(Ln), ef, rng)
        plo, phi = percentile_interval(Ln, level)
    if ef.law.target_range is not None:
        # an error rate stays in its range (Law.target_range): the unclipped mean, interval and band
        # say whether the chain left it; the reported ones come from draws clipped to it
        (err_mean,), clipped, beyond = clip_to_target(ef, level, (err_mean,), (Ed, En) if sl is not None else ())
        if sl is not None:
            Ed, En = clipped
        msg = bound_warning(ef, *beyond, level, role="error",
                            inputs=df[[c for c in lf.law.inputs if c in df.columns]].reset_index(drop=True))
        if msg:
            import warnings

            warnings.warn(msg, stacklevel=2)
    if sl is not None:
        elo, ehi = percentile_interval(Ed, level)
        qlo, qhi = percentile_interval(En, level)
    out["loss_lower"], out["loss_upper"] = llo, lhi
    out["error_mean"] = err_mean
    out["error_lower"], out["error_upper"] = elo, ehi
    out["loss_pred_lower"], out["loss_pred_upper"] = plo, phi
    out["error_pred_lower"], out["error_pred_upper"] = qlo, qhi
    ex = np.asarray(lp["extrapolation"], dtype=float)
    ee = ef.extrapolation(pd.DataFrame({"loss": loss_mean})).get("loss")
    # the largest factor that can be judged: an error fit without a recorded range (published constants)
    # adds nothing known, and hiding the loss fit's factor behind a null would hide a real extrapolation
    # (the no-range warning says the rest)
    out["extrapolation"] = np.maximum(ex, ee) if ee is not None else ex
    out.attrs["loss_fit"] = lf.law.name
    out.attrs["error_fit"] = ef.law.name
    return out


def chain_predict_cli(loss_fit: str, err_fit: str, at: Mapping | pd.DataFrame, level: float = 0.95) -> list:
    """CLI-ready: fit paths (or published names) and inputs -> list of JSON-able row dicts."""
    from ..util import to_jsonable

    df = chain_predict(loss_fit, err_fit, at, level=level)
    return to_jsonable(df.to_dict(orient="records"))


# ---- Gadre's protocol -----------------------------------------------------------------------------
def _pick(df: pd.DataFrame, N, M) -> pd.DataFrame:
    sel = df[np.isclose(df["N"], N, rtol=1e-6) & np.isclose(df["M"], M, rtol=1e-3)]
    if len(sel) != 1:
        raise ScalelawError(f"the Gadre table has {len(sel)} run(s) with N={N:g}, M={M:g} (dataset "
                            f"{', '.join(sorted(df['dataset'].astype(str).unique()))}); expected one: is it the full 104-run testbed?")
    return sel


# Gadre's fitting sets as --where filters (so `scalelaw check` can refit the reference fits):
# loss law: the 4 small models at M = 20 plus 10.57M at M = 320; error law: those plus 1.4B at M = 20.
_M20 = "(M > 19.9 and M < 20.1)"
_SMALL_M320 = "(N < 2e7 and M > 319 and M < 321)"
WHERE_LOSS = "dataset == '{ds}' and N < 5e8 and (" + _M20 + " or " + _SMALL_M320 + ")"
WHERE_ERR = "dataset == '{ds}' and N < 2e9 and (" + _M20 + " or " + _SMALL_M320 + ")"


def protocol_rows(df: pd.DataFrame, dataset: str = "rpj"):
    """(loss-fit rows, error-fit rows, targets) of Gadre's protocol for one training set."""
    d = df[df["dataset"] == dataset]
    if len(d) == 0:
        raise ScalelawError(f"no runs with dataset == {dataset!r}; choose one of "
                            f"{', '.join(sorted(df['dataset'].astype(str).unique()))}")
    loss_rows = pd.concat([_pick(d, n, 20) for n in N_SMALL] + [_pick(d, N_SMALL[0], 320)])
    err_rows = pd.concat([loss_rows, _pick(d, N_1B, 20)])
    # Gadre's targets: every run of 1.4B and up that no fit saw (rpj: 1.4B at M=640, 6.9B at M=20)
    targets = d[(d["N"] >= 0.9 * N_1B) & ~d.index.isin(err_rows.index)].sort_values(["N", "M"])
    for x in (loss_rows, err_rows, targets):
        x.attrs.update(df.attrs)
    # the --where filters recorded in the fits must select exactly these runs
    for rows, w in ((loss_rows, WHERE_LOSS), (err_rows, WHERE_ERR)):
        sel = expr.select(df, w.format(ds=dataset), "the protocol filter")
        if sorted(sel.index) != sorted(rows.index):
            raise ScalelawError(f"the protocol filter {w.format(ds=dataset)!r} selects {len(sel)} runs, not the "
                                f"{len(rows)} of Gadre's protocol; check the N and M columns of the table")
    return loss_rows, err_rows, targets


def reproduce(df: pd.DataFrame | None = None, *, dataset: str = "rpj", loss_objective: str = "lsq",
              err_objective: str = "lsq", boot: int = 200, seed: int = 0, level: float = 0.95,
              error_column: str = ERR17) -> dict:
    """Gadre et al.'s protocol: fit on the small runs, predict 1.4B/M=640 and 6.9B/M=20.

    Returns {"fits": {"loss": Fit, "error": Fit}, "rows": [...], "params": {...}} where each row
    holds the target, actual and predicted values, relative error, interval and the published
    numbers (RedPajama only).
    """
    df = with_error_column(load_runs(df), error_column)
    loss_rows, err_rows, targets = protocol_rows(df, dataset)
    src = df.attrs["source"]   # what the fits were made on (`scalelaw check` refits from it)
    lf = fit_loss(df, objective=loss_objective, boot=boot, seed=seed, level=level, source=src,
                  where=WHERE_LOSS.format(ds=dataset))
    lf.data["note"] = "Gadre et al. protocol: 4 models at M=20 + 10.57M at M=320"
    ef = fit_error(df, error_column=error_column, objective=err_objective, boot=boot, seed=seed,
                   level=level, source=src, where=WHERE_ERR.format(ds=dataset))
    ef.data["note"] = "Gadre et al. protocol: the loss-fit runs + 1.4B at M=20"
    pred = chain_predict(lf, ef, targets[["N", "D"]], level=level, seed=seed)
    rows = []
    err17 = _is_err17(df, error_column)
    for (_, t), (_, p) in zip(targets.reset_index(drop=True).iterrows(), pred.iterrows()):
        size = "1.4B" if np.isclose(t["N"], N_1B) else ("6.9B" if np.isclose(t["N"], N_7B) else f"{t['N'] / 1e9:.2g}B")
        tag = f"{ {'1.4B': '1b', '6.9B': '7b'}.get(size, size)}_m{t['M']:.0f}"
        label = f"{size}, M={t['M']:.0f}"
        for kind, actual, mean, lo, hi in (("loss", t["loss"], p["loss_mean"], p["loss_lower"], p["loss_upper"]),
                                           ("error", t[error_column], p["error_mean"], p["error_lower"], p["error_upper"])):
            r = {"target": label, "quantity": kind, "N": float(t["N"]), "M": float(t["M"]),
                 "actual": float(actual), "predicted": float(mean), "lower": float(lo), "upper": float(hi),
                 "rel_err": abs(float(mean) - float(actual)) / float(actual)}
            pub = PUBLISHED.get(f"{'loss' if kind == 'loss' else 'err'}_{tag}") if dataset == "rpj" else None
            if pub and (kind == "loss" or err17):   # the loss does not depend on the error column
                r.update(published_actual=pub["actual"], published_predicted=pub["predicted"],
                         published_rel_err=pub["rel_err"])
            rows.append(r)
    return {"dataset": dataset, "fits": {"loss": lf, "error": ef}, "rows": rows,
            "params": {"loss": dict(lf.params), "error": dict(ef.params)},
            "published_params": {"loss": PUBLISHED["params_loss"], "error": PUBLISHED["params_err"]}
            if dataset == "rpj" else None}


def write_reference_fits(res: dict, folder, force: bool = False) -> list:
    """Save the protocol's fits as gadre-<dataset>-loss.json / -err.json (Fit.save), with a
    ``reference`` block for `scalelaw check`: published constants within 0.5% (RedPajama only)."""
    from ..util import atomic_write_text, check_targets, dumps

    paths = reference_fit_paths(res["dataset"], folder, force)
    texts = []
    for (kind, pub_key), path in zip((("loss", "params_loss"), ("error", "params_err")), paths):
        d = res["fits"][kind].to_dict()
        if res["dataset"] == "rpj":
            d["reference"] = {"published": {k: {"value": v, "rtol": 5e-3} for k, v in PUBLISHED[pub_key].items()},
                              "citation": "Gadre et al. 2024 (arXiv:2403.08540), RedPajama, C4 validation loss, "
                                          "17-task average top-1 error"}
        texts.append(dumps(d) + "\n")
    check_targets(paths, force)   # again: every target is checked before any is written
    for path, text in zip(paths, texts):
        atomic_write_text(path, text, force=force)
    return [str(p) for p in paths]


def reference_fit_paths(dataset: str, folder, force: bool = False) -> list:
    """The two files write_reference_fits writes, each checked (exists without force, folder, ...)."""
    from ..util import check_targets

    folder = Path(folder)
    if not folder.is_dir():
        raise ScalelawError(f"folder {folder} does not exist; create it first")
    return check_targets([folder / f"gadre-{dataset}-{f}.json" for f in ("loss", "err")], force)


# ---- cutoff backtests --------------------------------------------------------------------------
CUTOFFS = (3e19, 1e20, 3e20)
OBJECTIVES = ("huber-log", "lsq")


def split_cutoff(df: pd.DataFrame, dataset: str, cutoff: float):
    """(runs with C < cutoff, runs with C >= cutoff) of one training set, with clear errors."""
    d = df[df["dataset"] == dataset]
    if len(d) == 0:
        raise ScalelawError(f"no runs with dataset == {dataset!r}; choose one of "
                            f"{', '.join(sorted(df['dataset'].astype(str).unique()))}")
    if not (isinstance(cutoff, (int, float)) and cutoff > 0 and math.isfinite(cutoff)):
        raise ScalelawError(f"--cutoff must be a positive number of FLOPs (e.g. 1e20); got {cutoff!r}")
    tr, te = d[d["C"] < cutoff].copy(), d[d["C"] >= cutoff].copy()
    if len(tr) < 7 or len(te) == 0:
        raise ScalelawError(f"cutoff C={cutoff:.3g} leaves {len(tr)} training and {len(te)} held-out runs of {dataset!r}; "
                            f"choose a cutoff between {d['C'].min():.3g} and {d['C'].max():.3g} with at least 7 runs below")
    tr.attrs.update(df.attrs)
    te.attrs.update(df.attrs)
    return tr, te


def cutoff_backtest(df: pd.DataFrame | None = None, *, dataset: str = "rpj", cutoff: float = 1e20,
                    objectives: Sequence[str] = OBJECTIVES, error_column: str = ERR17,
                    direct: bool = True) -> dict:
    """Fit on runs with C = 6ND < cutoff, predict every run at or above it.

    For every objective o (loss law) and o' (error law): the loss (overtrain), the chained error
    (overtrain[o] -> downstream_exp[o']) and the direct error (downstream_direct[o']). Returns
    {"table": [row per quantity and objective(s)], "predictions": DataFrame per held-out run,
    "fits": {(law, objective): Fit}}; relative errors are |predicted - actual| / actual.
    """
    from ..law import OBJECTIVES as ALL

    for o in objectives:
        if o not in ALL:
            raise ScalelawError(f"--objective must be one of {', '.join(ALL)}; got {o!r}")
    df = with_error_column(load_runs(df), error_column)
    tr, te = split_cutoff(df, dataset, cutoff)
    src = f"{df.attrs['source']} ({dataset}, C < {cutoff:.3g})"
    base = {"dataset": dataset, "cutoff": float(cutoff), "n_train": int(len(tr)), "n_test": int(len(te))}
    pred = te[[c for c in ("run", "N", "M", "C", "loss", error_column) if c in te.columns]].reset_index(drop=True)
    fits, table = {}, []
    Xte = te[["N", "D"]]

    def rel(p, a):
        r = np.abs(np.asarray(p) - np.asarray(a)) / np.asarray(a)
        return float(np.mean(r)), float(np.max(r))

    for o in objectives:
        fits[("overtrain", o)] = fit_loss(tr, objective=o, source=src)
        fits[("downstream_exp", o)] = fit_error(tr, error_column=error_column, objective=o, source=src)
        if direct:
            fits[("downstream_direct", o)] = fit_error(tr, error_column=error_column, law="downstream_direct",
                                                       objective=o, source=src)
    for o in objectives:
        lp = fits[("overtrain", o)].predict(Xte)["mean"].to_numpy()
        pred[f"loss[{o}]"] = lp
        m, x = rel(lp, te["loss"])
        table.append({**base, "quantity": "loss", "loss_objective": o, "err_objective": None,
                      "rel_mean": m, "rel_max": x})
    for o in objectives:
        for oe in objectives:
            ch = chain_predict(fits[("overtrain", o)], fits[("downstream_exp", oe)], Xte)
            pred[f"error_chained[{o},{oe}]"] = ch["error_mean"].to_numpy()
            m, x = rel(ch["error_mean"], te[error_column])
            table.append({**base, "quantity": "error (chained)", "loss_objective": o, "err_objective": oe,
                          "rel_mean": m, "rel_max": x})
    if direct:
        for oe in objectives:
            dp = fits[("downstream_direct", oe)].predict(Xte)["mean"].to_numpy()
            pred[f"error_direct[{oe}]"] = dp
            m, x = rel(dp, te[error_column])
            table.append({**base, "quantity": "error (direct)", "loss_objective": None, "err_objective": oe,
                          "rel_mean": m, "rel_max": x})
    return {"table": table, "predictions": pred, "fits": fits}


def backtest_grid(df: pd.DataFrame | None = None, *, datasets: Sequence[str] = ("rpj", "c4_original", "rw_original"),
                  cutoffs: Sequence[float] = CUTOFFS, objectives: Sequence[str] = OBJECTIVES,
                  error_column: str = ERR17, direct: bool = True) -> pd.DataFrame:
    """cutoff_backtest for every training set and cutoff; one row per quantity and objective(s)."""
    df = load_runs(df)
    rows = []
    from ..progress import Progress
    with Progress(total=len(datasets) * len(cutoffs), desc="gadre backtest") as bar:
        for ds in datasets:
            for cut in cutoffs:
                rows += cutoff_backtest(df, dataset=ds, cutoff=cut, objectives=objectives,
                                        error_column=error_column, direct=direct)["table"]
                bar.update()
    return pd.DataFrame(rows)


def summarize_grid(grid: pd.DataFrame) -> pd.DataFrame:
    """Mean of the per-split mean/max relative errors, per quantity and objective choice."""
    g = grid.fillna({"loss_objective": "-", "err_objective": "-"})
    return (g.groupby(["quantity", "loss_objective", "err_objective"], sort=False)[["rel_mean", "rel_max"]]
            .mean().reset_index())


# ---- figures --------------------------------------------------------------------------------------
def figure_loss(fit, df: pd.DataFrame, held_out: pd.DataFrame | None = None, title: str | None = None):
    """Loss vs compute C for each token multiplier M: fitted curves, training and held-out runs."""
    import plotly.graph_objects as go

    fig = go.Figure()
    allr = pd.concat([df] + ([held_out] if held_out is not None and len(held_out) else []))
    Ms = sorted(np.unique(np.round(allr["D"] / allr["N"], 6)))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    C_all = 6 * allr["N"] * allr["D"]
    Cg = np.logspace(np.log10(C_all.min()) - 0.2, np.log10(C_all.max()) + 0.3, 120)
    for i, M in enumerate(Ms):
        col = palette[i % len(palette)]
        N = np.sqrt(Cg / (6 * M))
        y = fit.law.evaluate({"N": N, "D": M * N}, fit.params)
        fig.add_trace(go.Scatter(x=Cg, y=y, mode="lines", line=dict(color=col), name=f"M={M:g} fit",
                                 legendgroup=f"M{M:g}"))
        for part, sym, lab in ((df, "circle", "fitted"), (held_out, "star", "held out")):
            if part is None or not len(part):
                continue
            p = part[np.isclose(part["D"] / part["N"], M, rtol=1e-4)]
            if len(p):
                fig.add_trace(go.Scatter(x=6 * p["N"] * p["D"], y=p["loss"], mode="markers",
                                         marker=dict(color=col, symbol=sym, size=10 if sym == "star" else 7,
                                                     line=dict(width=1, color="black")),
                                         name=f"M={M:g} {lab}", legendgroup=f"M{M:g}"))
    fig.update_layout(title=title or f"{fit.law.name}: loss vs compute", xaxis_title="C = 6ND (FLOPs)",
                      yaxis_title="validation loss (nats/token)", template="plotly_white")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def figure_error(err_fit, df: pd.DataFrame, held_out: pd.DataFrame | None = None, error_column: str = ERR17,
                 title: str | None = None):
    """Error vs loss: the fitted error law, training and held-out runs."""
    import plotly.graph_objects as go

    allr = pd.concat([df] + ([held_out] if held_out is not None and len(held_out) else []))
    lo, hi = allr["loss"].min(), allr["loss"].max()
    Lg = np.linspace(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), 200)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=Lg, y=err_fit.law.evaluate({"loss": Lg}, err_fit.params), mode="lines",
                             name=f"{err_fit.law.name} fit", line=dict(color="#1f77b4")))
    for part, sym, lab, col in ((df, "circle", "fitted", "#1f77b4"), (held_out, "star", "held out", "#d62728")):
        if part is None or not len(part):
            continue
        fig.add_trace(go.Scatter(x=part["loss"], y=part[error_column], mode="markers", name=lab,
                                 marker=dict(symbol=sym, color=col, size=10 if sym == "star" else 7,
                                             line=dict(width=1, color="black")),
                                 text=part["run"] if "run" in part else None))
    fig.update_layout(title=title or f"{err_fit.law.name}: error vs loss", xaxis_title="validation loss (nats/token)",
                      yaxis_title=f"average top-1 error ({error_column})", template="plotly_white")
    return fig
