"""Fit: what a fit learned, how sure it is, and how healthy it was.

A Fit predicts with two bands (``lower``/``upper``: where the fitted curve lies;
``pred_lower``/``pred_upper``: where a new run would land, adding the residual scatter), gives
the law's derived quantities and optimum with intervals, prints a summary (text and HTML), and
round-trips through JSON. Laws are stored by name and version, never pickled.
"""
from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .errors import ScalelawError
from .law import Law, get_law
from .uncertainty import percentile_interval, simulate_params
from .util import atomic_write_text, dumps

SCHEMA = 1
EXTRAPOLATION_WARN = 10.0  # warn when an input is this many times beyond the fitted range
BOOT_MIN_SUCCESS = 0.9     # a bootstrap with fewer finite resamples than this share gives no intervals
SKEW_RATIO = 2.0           # stderr is not shown when one side of the interval is this many times the other


def _versions() -> dict:
    import numpy
    import pandas
    import scipy

    from . import __version__
    return {"scalelaw": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "pandas": pandas.__version__, "python": platform.python_version()}


@dataclass
class Fit:
    law: Law
    params: dict
    free: tuple
    theta: np.ndarray | None = None          # internal coordinates of the free params
    cov: np.ndarray | None = None            # internal covariance (delta method)
    boot: np.ndarray | None = None           # (K, n_params) natural bootstrap samples
    level: float = 0.95
    objective: dict = field(default_factory=dict)
    n_obs: int = 0
    input_ranges: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    residuals: np.ndarray | None = None
    log_residuals: bool = True
    versions: dict = field(default_factory=_versions)
    label: str | None = None                 # e.g. "published: hoffmann-2022"
    # delta-method draws by (k, seed); init=False so dataclasses.replace(fit, cov=...) starts afresh
    _draws: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # the run table a fit was made on in this session (not saved): what .plot() draws by default
    table: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        # params: a pandas Series in the law's order (dict-like: fit.params["E"], .items(), "E" in ...)
        self.params = pd.Series({n: float(self.params[n]) for n in self.law.param_names}, dtype=float,
                                name="value")
        if self.residuals is not None and not isinstance(self.residuals, pd.Series):
            self.residuals = pd.Series(np.asarray(self.residuals, dtype=float), name="residual")

    # ---- parameter uncertainty ------------------------------------------------------------
    def param_samples(self, k: int = 4000, seed: int = 0) -> np.ndarray | None:
        """Samples of all parameters (natural units), from the bootstrap or the delta method.

        None (no intervals anywhere) when they would mislead: a bootstrap where fewer than 90% of
        the resamples gave a finite fit or whose distribution is degenerate, a delta method along
        a flat direction of the fit (a singular covariance gives intervals of width 0 there)."""
        if self.boot is not None and len(self.boot):
            return self._boot_check()[0]
        if (self.cov is None or self.theta is None or not np.all(np.isfinite(self.cov))
                or self.diagnostics.get("flat_direction")):
            return None
        if (k, seed) in self._draws:   # stderr, ci, derived and predict all ask for the same draws
            return self._draws[(k, seed)]
        # delta method with small-sample honesty: widen the normal draws to Student t quantiles
        from scipy import stats
        scale = (self._quantile(self.level) / stats.norm.ppf(0.5 + self.level / 2)) ** 2 if self._dof() else 1.0
        th = simulate_params(np.asarray(self.theta), np.asarray(self.cov) * scale, k=k, seed=seed)
        out = np.empty((k, len(self.law.param_names)))
        for i, p in enumerate(self.law.params):
            if p.name in self.free:
                with np.errstate(over="ignore"):   # draws stay inside the parameter's bounds
                    out[:, i] = p.to_natural(np.clip(th[:, self.free.index(p.name)], *p.internal_bounds()))
            else:
                out[:, i] = self.params[p.name]
        self._draws[(k, seed)] = out
        return out

    def _boot_check(self):
        """(usable bootstrap samples or None, problems): a bootstrap in which fewer than
        ``BOOT_MIN_SUCCESS`` of the resamples gave a finite fit, or where a free parameter takes
        fewer than 3 distinct values (a degenerate distribution), gives no samples."""
        s = np.asarray(self.boot, dtype=float)
        ok = np.all(np.isfinite(s), axis=1)
        K, k = len(s), int(ok.sum())
        if k < BOOT_MIN_SUCCESS * K:
            return None, [f"only {k} of {K} bootstrap resamples ({k / K:.0%}) gave a finite fit (fewer than "
                          f"{BOOT_MIN_SUCCESS:.0%}): no intervals are reported; the data cannot support a bootstrap"]
        good = s[ok]
        stuck = [n for i, n in enumerate(self.law.param_names)
                 if n in self.free and np.unique(good[:, i]).size < 3]
        if stuck:
            return None, [f"the bootstrap distribution of {', '.join(stuck)} is degenerate (fewer than 3 distinct values "
                          f"among {k} resamples): no intervals are reported"]
        return good, []

    def _interval_problems(self) -> list:
        """Problems of the reported intervals themselves: a failed or degenerate bootstrap, a
        non-finite covariance, an interval that runs into a parameter bound (more than its tail
        share of the samples, plus two Monte-Carlo standard errors, sit at the bound), a bootstrap interval that excluded its estimate."""
        boot = self.boot is not None and len(self.boot)
        problems = self._boot_check()[1] if boot else []
        if not boot and self.cov is not None and not np.all(np.isfinite(self.cov)):
            problems.append("the delta-method covariance is not finite (some parameter has unbounded variance): "
                            "no intervals are reported")
        s = self.param_samples()
        if s is None:
            return problems
        tail = (1 - self.level) / 2
        # more than the tail share at the bound, by over two Monte-Carlo standard errors of that
        # share (a few stray resamples of 100 must not decide it)
        at_most = tail + 2 * math.sqrt(tail * (1 - tail) / len(s))
        lvl = round(100 * self.level)
        lo, hi = percentile_interval(s, self.level)
        for i, p in enumerate(self.law.params):
            if p.name not in self.free or p.name in (self.diagnostics.get("params_at_bounds") or []):
                continue
            v = self.params[p.name]
            for b, side in ((p.lower, "lower"), (p.upper, "upper")):
                if math.isfinite(b) and np.mean(np.abs(s[:, i] - b) <= 1e-9 * max(1.0, abs(b))) > at_most:
                    problems.append(f"the {lvl}% interval of {p.name} runs into its {side} bound {b:g}: the data "
                                    f"cannot rule out {p.name} = {b:g}")
            if boot and not lo[i] <= v <= hi[i]:
                problems.append(f"the bootstrap interval of {p.name} [{lo[i]:.4g}, {hi[i]:.4g}] excludes its estimate "
                                f"{v:.4g} (the resamples do not centre on the fit); it is widened to reach the estimate")
        return problems

    @property
    def problems(self) -> list:
        """Why the data cannot determine this fit (one line each; empty when healthy): the checks
        made at the optimum (``diagnostics["problems"]``) and those of the intervals."""
        out = list(self.diagnostics.get("problems") or [])
        for m in self._interval_problems():
            if m not in out:
                out.append(m)
        return out

    @property
    def identified(self) -> bool:
        """True when no problem was found (docs/fitting.md, "Identifiability")."""
        return not self.problems

    @property
    def interval_method(self) -> str:
        chosen = self.settings.get("interval")   # scalelaw.calibration.with_interval
        if chosen:
            from .calibration import INTERVALS
            n = f", {len(self.boot)} resamples" if self.boot is not None and len(self.boot) else ""
            return f"{chosen} ({INTERVALS.get(chosen, chosen)}{n})"
        if self.boot is not None and len(self.boot):
            return f"bootstrap ({len(self.boot)} resamples, percentile)"
        if self.cov is not None:
            return "delta method (Gauss-Newton covariance)"
        return "none"

    @property
    def stderr(self) -> pd.Series:
        """The standard deviation of the samples the intervals come from (bootstrap estimates or
        delta-method draws), a Series; NaN for fixed parameters, without intervals, and where the
        interval is skewed (one side more than SKEW_RATIO times the other), as an sd then
        misleads: read the interval."""
        names = list(self.law.param_names)
        out = pd.Series(np.nan, index=names, dtype=float, name="stderr")
        s = self.param_samples()
        if s is None:
            return out
        sd = np.nanstd(s, axis=0, ddof=1)
        ci = self.ci
        for n, v in zip(names, sd):
            if n not in self.free or n not in ci:
                continue
            below, above = self.params[n] - ci[n][0], ci[n][1] - self.params[n]
            if min(below, above) * SKEW_RATIO >= max(below, above):
                out[n] = float(v)
        return out

    def conf_int(self, level: float | None = None) -> pd.DataFrame:
        """Interval of each parameter at ``level`` (default the fit's): columns lower, upper; NaN for
        fixed parameters and without intervals. Bootstrap percentiles, else the delta method's
        Student-t widened draws (see docs/uncertainty.md)."""
        level = level or self.level
        if not 0 < level < 1:
            raise ScalelawError(f"level must be between 0 and 1; got {level!r}")
        s = self.param_samples()
        names = list(self.law.param_names)
        out = pd.DataFrame(np.nan, index=names, columns=["lower", "upper"])
        if s is not None:
            lo, hi = percentile_interval(s, level)
            for i, n in enumerate(names):
                if n in self.free:
                    out.loc[n] = [float(lo[i]), float(hi[i])]
        out.index.name = "param"
        return out

    @property
    def corr(self) -> pd.DataFrame:
        """Correlation matrix of the free parameters: from the bootstrap samples when there are
        some, else from the Gauss-Newton covariance (a correlation is unchanged by the log scale
        the engine fits some parameters on, to first order)."""
        free = list(self.free)
        if self.boot is not None and len(self.boot):
            s = self.param_samples()          # None when the bootstrap gives no interval
            idx = [self.law.param_names.index(n) for n in free]
            with np.errstate(all="ignore"):
                c = np.corrcoef(s[:, idx], rowvar=False) if s is not None and len(s) > 1 else \
                    np.full((len(free),) * 2, np.nan)
        elif self.cov is not None and np.all(np.isfinite(self.cov)):
            cov = np.asarray(self.cov, dtype=float)
            sd = np.sqrt(np.clip(np.diag(cov), 0, None))
            with np.errstate(all="ignore"):
                c = cov / np.outer(sd, sd)
        else:
            c = np.full((len(free), len(free)), np.nan)
        return pd.DataFrame(np.atleast_2d(c), index=free, columns=free)

    def high_correlations(self, threshold: float = 0.9) -> list:
        """[(p, q, r)] for the pairs of free parameters with |correlation| above ``threshold``,
        largest first (as lmfit's fit report lists them)."""
        c = self.corr
        out = [(a, b, float(c.loc[a, b])) for i, a in enumerate(c.index) for b in c.index[i + 1:]
               if np.isfinite(c.loc[a, b]) and abs(c.loc[a, b]) > threshold]
        return sorted(out, key=lambda t: -abs(t[2]))

    # ---- goodness of fit ----------------------------------------------------------------------
    @property
    def dof(self) -> int:
        """Residual degrees of freedom: rows fitted minus free parameters."""
        return max(int(self.n_obs) - len(self.free), 0)

    @property
    def loglike(self) -> float:
        """Gaussian log-likelihood of the fit's residuals (log residuals for log objectives) with
        the variance at its maximum-likelihood value RSS/n: -n/2 (ln(2 pi RSS/n) + 1). NaN for
        fits that record no residuals (published constants)."""
        rss, n = (self.diagnostics or {}).get("rss"), self.n_obs
        if not isinstance(rss, (int, float)) or not n or not rss > 0:
            return math.nan
        return -0.5 * n * (math.log(2 * math.pi * rss / n) + 1)

    @property
    def aic(self) -> float:
        """Akaike's criterion -2 loglike + 2k, k = free parameters + 1 (the residual variance, as R
        and ``scalelaw compare`` count it; statsmodels and lmfit leave it out, so their AIC is 2
        lower). Only comparable between fits to the same rows and target transform."""
        return -2 * self.loglike + 2 * (len(self.free) + 1)

    @property
    def bic(self) -> float:
        """Schwarz's criterion -2 loglike + k ln(n), k as for :attr:`aic`."""
        return -2 * self.loglike + (len(self.free) + 1) * math.log(self.n_obs) if self.n_obs else math.nan

    @property
    def rmse(self) -> float:
        """Root mean square of (prediction - observed) over the fitted rows, in the target's units."""
        v = (self.diagnostics or {}).get("rmse")
        return float(v) if isinstance(v, (int, float)) else math.nan

    @property
    def ci(self) -> dict:
        """Percentile intervals of the free parameters, widened where needed to reach the
        estimate (so every interval contains it; the bootstrap case is reported in problems)."""
        s = self.param_samples()
        if s is None:
            return {}
        lo, hi = percentile_interval(s, self.level)
        return {n: [min(float(a), self.params[n]), max(float(b), self.params[n])]
                for n, a, b in zip(self.law.param_names, lo, hi) if n in self.free}

    def derived(self) -> dict:
        """Derived quantities with intervals: {name: {value, lower, upper}}."""
        out = {}
        s = self.param_samples()
        for name, fn in self.law.derived.items():
            with np.errstate(all="ignore"):   # exponents at 0 give 0/0: NaN (null), not an error
                v = float(fn(_floats(self.params)))
            row = {"value": v, "lower": None, "upper": None}
            if s is not None and math.isfinite(v):
                with np.errstate(all="ignore"):
                    vals = np.asarray(fn({n: s[:, i] for i, n in enumerate(self.law.param_names)}), dtype=float)
                lo, hi = contain(v, *percentile_interval(vals, self.level))
                row.update(lower=float(lo), upper=float(hi), sd=float(np.nanstd(vals, ddof=1)))
            out[name] = row
        return out

    # ---- prediction ---------------------------------------------------------------------------
    def _frame(self, X) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            df = X.copy()
        else:
            df = pd.DataFrame({k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in dict(X).items()})
        missing = [c for c in self.law.inputs if c not in df.columns]
        if missing:
            raise ScalelawError(f"law {self.law.name!r} needs input(s) {', '.join(missing)} to predict; "
                                f"give them, e.g. --at {missing[0]}=1e9")
        for c in self.law.inputs:
            v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
            if np.any(~np.isfinite(v)):
                raise ScalelawError(f"input {c!r} must be a finite number; got {df[c].tolist()!r}")
            # inputs are sizes, counts, budgets or losses (> 0) unless the law declares a domain
            # reaching 0 or below (e.g. lr_anneal's annealing area S2, 0 for a constant schedule)
            lo = (self.law.domain or {}).get(c, (None, None))[0]
            out = (v < lo) if lo is not None and lo <= 0 else (v <= 0)
            if np.any(out):
                bad = float(v[out][0])
                what = f">= {lo:g}" if lo is not None and lo <= 0 else "positive"
                raise ScalelawError(f"input {c!r} must be {what} (law {self.law.name!r}); got {bad:g}")
            df[c] = v
        if self.law.check_inputs is not None:
            self.law.check_inputs(df, "the prediction inputs")
        return df

    def _dof(self) -> int:
        return max(int(self.n_obs) - len(self.free), 1) if self.n_obs else 0

    def _quantile(self, level: float) -> float:
        from scipy import stats
        q = 0.5 + level / 2
        return float(stats.t.ppf(q, self._dof()) if self._dof() else stats.norm.ppf(q))

    def extrapolation(self, X) -> dict:
        """How far each input lies beyond the fitted range: factor (1 = inside).

        Inputs without a recorded range (published constants have none) are left out: how far
        beyond the data they lie cannot be judged (see :func:`no_range_warning`)."""
        return self._extrapolation(self._frame(X))

    @property
    def has_range(self) -> bool:
        """True when the fit records the range of every input it was fitted on."""
        return all(c in (self.input_ranges or {}) for c in self.law.inputs)

    def _extrapolation(self, df: pd.DataFrame) -> dict:
        out = {}
        for c in self.law.inputs:
            if c not in self.input_ranges:
                continue
            lo, hi = self.input_ranges[c]
            v = df[c].to_numpy(dtype=float)
            with np.errstate(all="ignore"):
                if lo > 0 and np.all(v > 0):
                    f = np.maximum(np.maximum(v / hi, lo / v), 1.0)
                else:
                    span = max(hi - lo, 1e-300)
                    f = 1.0 + np.maximum(np.maximum(v - hi, lo - v), 0.0) / span
            out[c] = f
        return out

    def predict(self, X=None, level: float | None = None, **inputs) -> pd.DataFrame:
        """Predict at the rows of ``X`` (DataFrame or mapping input -> values), or at inputs given
        as keywords: ``fit.predict(N=7e10, D=1.4e12)`` (arrays of one length, or scalars).

        Returns the inputs plus ``mean``, ``lower``/``upper`` (interval of the fitted curve),
        ``pred_lower``/``pred_upper`` (where a new run would land) and ``extrapolation`` (the
        largest factor by which an input lies outside the fitted range).
        """
        level = level or self.level
        if X is None:
            if not inputs:
                raise ScalelawError(f"give the inputs to predict at, e.g. fit.predict({self.law.inputs[0]}=...) "
                                    "or fit.predict(table)")
            X = _keyword_frame(inputs)
        elif inputs:
            raise ScalelawError("give the inputs either as a table or as keywords, not both")
        df = self._frame(X)
        Xd = {c: df[c].to_numpy(dtype=float) for c in self.law.inputs}
        mean = np.asarray(self.law.evaluate(Xd, self.params), dtype=float) * np.ones(len(df))
        out = df[list(self.law.inputs)].copy()
        out["mean"] = mean
        s = self.param_samples()
        bounded = self.law.target_range is not None
        beyond = None   # a bounded target (an error rate): where the unclipped interval left its range
        if s is not None:
            P = {n: s[:, i][:, None] for i, n in enumerate(self.law.param_names)}
            draws = np.asarray(self.law.evaluate(Xd, P), dtype=float)
            draws = np.broadcast_to(draws, (s.shape[0], len(df)))
            if bounded:
                _, (draws,), beyond = clip_to_target(self, level, draws=(draws,))
            lo, hi = contain(mean, *percentile_interval(draws, level))
        else:
            lo = hi = np.full(len(df), np.nan)
        out["lower"], out["upper"] = lo, hi
        # where a new run would land: add the residual scatter (in log space when the fit was on
        # logs), with Student t quantiles for the fit's residual degrees of freedom; unknown (NaN)
        # without a residual scatter (published constants): not the curve, let alone the mean
        z = self._quantile(level)
        sd = self.diagnostics.get("residual_sd")
        sd = float(sd) if isinstance(sd, (int, float)) and math.isfinite(sd) else math.nan
        lo_c = np.where(np.isfinite(lo), lo, mean)
        hi_c = np.where(np.isfinite(hi), hi, mean)
        if self.log_residuals:
            with np.errstate(all="ignore"):
                half_lo = np.log(mean) - np.log(lo_c)
                half_hi = np.log(hi_c) - np.log(mean)
                out["pred_lower"] = mean * np.exp(-np.sqrt(half_lo ** 2 + (z * sd) ** 2))
                out["pred_upper"] = mean * np.exp(np.sqrt(half_hi ** 2 + (z * sd) ** 2))
        else:
            out["pred_lower"] = mean - np.sqrt((mean - lo_c) ** 2 + (z * sd) ** 2)
            out["pred_upper"] = mean + np.sqrt((hi_c - mean) ** 2 + (z * sd) ** 2)
        if bounded:
            cols = ("mean", "pred_lower", "pred_upper")
            clipped, _, beyond = clip_to_target(self, level, [out[c].to_numpy(dtype=float) for c in cols],
                                                beyond=beyond)
            for c, v in zip(cols, clipped):
                out[c] = v
            msg = bound_warning(self, *beyond, level, inputs=df[list(self.law.inputs)])
            if msg:
                import warnings
                warnings.warn(msg, stacklevel=2)
        ex = self._extrapolation(df)
        # NaN (JSON null) when an input has no recorded range: 1.0 would claim "inside"
        out["extrapolation"] = np.max(np.vstack(list(ex.values())), axis=0) if ex and self.has_range else np.nan
        return out

    def optimum(self, level: float | None = None, **given):
        """The law's optimum (e.g. compute-optimal N, D, loss for compute=C) with intervals.

        One budget gives a dict; a list or array of budgets (``compute=[1e21, 1e22]``) a DataFrame
        with a row per budget: C, each quantity with its ``_lower``/``_upper`` interval, and the
        ``extrapolation`` factor beyond the fitted range (NaN when the fit records none)."""
        vec = {k: v for k, v in given.items() if np.ndim(v) > 0}
        if vec:
            return self._optimum_table(level, given, vec)
        return self._optimum_one(level, **given)

    def _optimum_table(self, level, given: dict, vec: dict) -> pd.DataFrame:
        sizes = {len(np.ravel(v)) for v in vec.values()}
        if len(sizes) != 1:
            raise ScalelawError(f"optimum: give lists of one length; got {', '.join(f'{k} ({len(np.ravel(v))})' for k, v in vec.items())}")
        rows = []
        for i in range(sizes.pop()):
            point = {k: (float(np.ravel(v)[i]) if k in vec else v) for k, v in given.items()}
            for k, v in point.items():
                if isinstance(v, float) and not (v > 0 and math.isfinite(v)):
                    raise ScalelawError(f"optimum: {k} must be a positive finite number; got {v!r}")
            r = {("C" if k == "compute" else k): v for k, v in point.items()}
            r.update(self._optimum_one(level, **point))
            ex = self.extrapolation({k: [r[f"{k}_opt"]] for k in self.law.inputs if f"{k}_opt" in r})
            r["extrapolation"] = float(max(v.max() for v in ex.values())) if ex and self.has_range else math.nan
            rows.append(r)
        return pd.DataFrame(rows)

    def _optimum_one(self, level: float | None = None, **given) -> dict:
        if self.law.optimum is None:
            from .law import all_laws
            have = ", ".join(l.name for l in all_laws() if l.optimum is not None and not l.name.startswith("_"))
            raise ScalelawError(f"law {self.law.name!r} defines no optimum; laws with one: {have}")
        level = level or self.level
        with np.errstate(all="ignore"):   # exponents at 0 give 0/0: NaN (null), not an error
            point = self.law.optimum(_floats(self.params), **given)
        out = {k: float(np.asarray(v)) for k, v in point.items()}
        s = self.param_samples()
        if s is not None:
            P = {n: s[:, i] for i, n in enumerate(self.law.param_names)}
            with np.errstate(all="ignore"):
                draws = self.law.optimum(P, **given)
            for k, v in draws.items():
                lo, hi = contain(out[k], *percentile_interval(np.asarray(v, dtype=float), level))
                out[f"{k}_lower"], out[f"{k}_upper"] = float(lo), float(hi)
        return out

    # ---- reporting --------------------------------------------------------------------------
    def summary(self) -> "Summary":
        return Summary(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def plot(self, data: pd.DataFrame | None = None, kind: str = "fit", **kwargs):
        """A plotly Figure: ``kind`` "fit" (data, fitted curves and bands; scalelaw.plots.plot_fit),
        "residuals", "parity" (predicted vs observed), "compute" (loss vs compute with the
        compute-optimal frontier) or "optimum" (N_opt and D_opt vs compute; no data needed).
        ``data`` defaults to the table this fit was made on in this session, else its recorded
        source (a file or dataset name)."""
        from . import plots

        kinds = {"fit": plots.plot_fit, "residuals": plots.plot_residuals, "parity": plots.plot_parity,
                 "compute": plots.plot_compute, "optimum": plots.plot_optimum}
        if kind not in kinds:
            raise ScalelawError(f"plot kind must be one of {', '.join(kinds)}; got {kind!r}")
        if kind == "optimum":
            return plots.plot_optimum(self, **kwargs)
        if data is None:
            data = self.table if self.table is not None else self._source_table()
        return kinds[kind](self, data, **kwargs)

    def _source_table(self) -> pd.DataFrame:
        src = (self.data or {}).get("source")
        if self.label or not src:
            raise ScalelawError(f"{self.label or 'this fit'} has no data table to draw; pass one: fit.plot(table)")
        from .io import load_table
        return load_table(src)

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"<Fit {self.law.name} v{self.law.version}: {ps}; n_obs={self.n_obs}>"

    # ---- serialisation ------------------------------------------------------------------------
    def to_dict(self, include_boot: bool = True) -> dict:
        d = {
            "schema": SCHEMA,
            "law": self.law.name,
            "law_version": self.law.version,
            "formula": self.law.formula,
            **({"law_spec": dict(self.law.spec)} if self.law.spec else {}),
            "params": self.params.to_dict(),
            "free": list(self.free),
            "stderr": self.stderr.to_dict(),
            "ci": self.ci,
            "level": self.level,
            "interval_method": self.interval_method,
            "derived": self.derived(),
            "objective": self.objective,
            "n_obs": self.n_obs,
            "input_ranges": self.input_ranges,
            "diagnostics": {**self.diagnostics, "identified": self.identified, "problems": self.problems},
            # the recorded rows (data.runs) go with the samples: a file keeps both, a printout neither
            "data": self.data if include_boot else {k: v for k, v in self.data.items() if k != "runs"},
            "settings": self.settings,
            "versions": self.versions,
            "theta": None if self.theta is None else list(map(float, self.theta)),
            "cov": None if self.cov is None else np.asarray(self.cov).tolist(),
            "log_residuals": self.log_residuals,
        }
        if self.label:
            d["label"] = self.label
        if include_boot and self.boot is not None:
            d["boot"] = {"params": list(self.law.param_names), "samples": np.asarray(self.boot).tolist()}
        return d

    def to_json(self, indent: int | None = 2, include_boot: bool = True) -> str:
        return dumps(self.to_dict(include_boot=include_boot), indent=indent)

    def save(self, path, force: bool = False) -> Path:
        return atomic_write_text(path, self.to_json() + "\n", force=force)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Fit":
        if d.get("schema") != SCHEMA:
            raise ScalelawError(f"fit file has schema {d.get('schema')!r}; this scalelaw reads schema {SCHEMA}")
        if d.get("law_spec"):
            from .formula import law_from_spec

            law = law_from_spec(d["law_spec"])
        else:
            law = get_law(d["law"])
        if int(d.get("law_version", law.version)) != law.version:
            raise ScalelawError(f"fit was made with law {law.name!r} version {d.get('law_version')}, "
                                f"this scalelaw has version {law.version}; refit it")
        boot = None
        if d.get("boot"):
            names = d["boot"]["params"]
            arr = np.array(d["boot"]["samples"], dtype=float)
            boot = arr[:, [names.index(n) for n in law.param_names]]
        params = {n: float(d["params"][n]) for n in law.param_names}
        return cls(
            law=law, params=params, free=tuple(d.get("free") or law.param_names),
            theta=None if d.get("theta") is None else np.array(d["theta"], dtype=float),
            cov=None if d.get("cov") is None else np.array(d["cov"], dtype=float),
            boot=boot, level=float(d.get("level", 0.95)), objective=dict(d.get("objective") or {}),
            n_obs=int(d.get("n_obs") or 0), input_ranges=dict(d.get("input_ranges") or {}),
            diagnostics=dict(d.get("diagnostics") or {}), data=dict(d.get("data") or {}),
            settings=dict(d.get("settings") or {}), log_residuals=bool(d.get("log_residuals", True)),
            versions=dict(d.get("versions") or {}), label=d.get("label"),
        )

    @classmethod
    def from_json(cls, text: str, src: str = "fit JSON") -> "Fit":
        """A Fit from JSON text, validated against the fit-file schema (scalelaw.fitschema)."""
        from .fitschema import _refuse_constant, validate_law_fit

        try:
            d = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ScalelawError(f"{src} is nested too deeply; it is not a fit") from None
        except ValueError as exc:
            raise ScalelawError(f"cannot read {src}: {exc}") from None
        if not isinstance(d, dict) or "law" not in d or "params" not in d:
            raise ScalelawError(f"{src} is not a scalelaw fit (no 'law'/'params' keys)")
        validate_law_fit(d, src)
        return cls.from_dict(d)


def _keyword_frame(inputs: Mapping) -> pd.DataFrame:
    """Keyword inputs (scalars or arrays of one length) as a DataFrame."""
    cols = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in inputs.items()}
    n = max(len(v) for v in cols.values())
    bad = [k for k, v in cols.items() if len(v) not in (1, n)]
    if bad:
        raise ScalelawError(f"predict: inputs {', '.join(bad)} have another length than the longest ({n}); "
                            "give scalars or arrays of one length")
    return pd.DataFrame({k: np.broadcast_to(v, (n,)) for k, v in cols.items()})


def load_fit(path, law: str | None = None) -> Fit:
    """Read a fit JSON file, or a published ready fit by name (e.g. 'hoffmann-2022').

    ``law`` picks the law when a published name belongs to several (e.g. 'steplaw-2025' is both
    an lr_opt and a bs_opt fit), and must match the law of a fit file when given.
    """
    if isinstance(path, Fit):
        return path
    p = Path(str(path))
    if not p.exists():
        ready = published_fit(str(path), law=law)
        if ready is not None:
            return ready
        raise ScalelawError(f"fit file {path} does not exist; give a JSON file written by `scalelaw fit -o`, "
                            f"or a published fit name ({', '.join(published_names())})")
    from .fitschema import read_json, validate_law_fit

    d = read_json(p)
    if d.get("kind") == "mixture":
        raise ScalelawError(f"{p} is a mixture fit; use it with `scalelaw mixture evaluate|recommend`")
    if "law" not in d or "params" not in d:
        raise ScalelawError(f"{p} is not a scalelaw fit file (no 'law'/'params' keys)")
    validate_law_fit(d, str(p))
    if law is not None and d["law"] != get_law(law).name:
        raise ScalelawError(f"{p} is a fit of law {d['law']!r}, not {law!r}")
    f = Fit.from_dict(d)
    f.from_file = True   # its recorded data source is read only when it names a public dataset
    return f


def _floats(params: Mapping) -> dict:
    """Parameters as numpy floats, so a law's formula divides by zero into inf/NaN instead of
    raising (exponents at their bound 0 make alpha + beta = 0)."""
    return {k: np.float64(v) for k, v in params.items()}


def contain(v, lo, hi):
    """An interval (lo, hi) widened where needed to contain its estimate v (element-wise; NaN ends
    stay NaN): a percentile interval of skewed draws can exclude the point it is about."""
    with np.errstate(invalid="ignore"):
        return np.fmin(lo, np.where(np.isnan(lo), np.nan, v)), np.fmax(hi, np.where(np.isnan(hi), np.nan, v))


def health_warning(fit: Fit, role: str | None = None) -> str | None:
    """One line for a fit that did not converge or is not identified (None when healthy): what
    predict, optimum, plan, backtest, hparams and report print for every fit they use."""
    if fit.label:   # published constants: nothing was fitted here
        return None
    who = f"{role} fit ({fit.law.name})" if role else f"fit ({fit.law.name})"
    if not fit.diagnostics.get("converged", True):
        return f"{who} did NOT converge ({fit.diagnostics.get('message')}); its numbers are not reliable"
    problems = fit.problems
    if problems:
        more = f" (+{len(problems) - 1} more: see its summary)" if len(problems) > 1 else ""
        return f"{who} is NOT IDENTIFIED: {problems[0]}{more}"
    return None


def clip_to_target(fit: Fit, level: float, values=(), draws=(), beyond=None):
    """Clip predictions of a bounded target (``Law.target_range``, e.g. an error rate in [0, 1]).

    values: per-point arrays (a mean, interval or band ends); draws: (samples, points) arrays (or
    (samples,) for one point) whose ``level`` interval is judged before clipping. Returns (values
    clipped, draws clipped, (beyond_lo, beyond_hi)): per point, whether an unclipped value or
    interval end passed the lower / upper end, OR-ed with ``beyond`` (an earlier call's) -- what
    :func:`bound_warning` takes. Fit.predict, gadre.chain_predict and plan use this one sequence."""
    lo, hi = fit.law.target_range
    blo, bhi = beyond if beyond is not None else (False, False)
    judged = [np.asarray(v, dtype=float) for v in values]
    for d in draws:
        d = np.asarray(d, dtype=float)
        if np.isfinite(d).any():   # all NaN: no interval to judge
            judged += percentile_interval(d, level)
    with np.errstate(invalid="ignore"):
        for v in judged:
            blo, bhi = blo | (v < lo), bhi | (v > hi)
    clip = lambda v: fit.law.clip_target(v)[0]
    return [clip(v) for v in values], [clip(d) for d in draws], (np.asarray(blo), np.asarray(bhi))


def bound_warning(fit: Fit, beyond_lo, beyond_hi, level: float, role: str | None = None,
                  inputs: pd.DataFrame | None = None) -> str | None:
    """The warning for predictions of a bounded target (``Law.target_range``) that were clipped.

    beyond_lo / beyond_hi: per point, whether the unclipped value or interval passed the lower /
    upper end. None when nothing did. An error rate's interval reaching 0 (or 1) means the law is
    used far beyond the data it was fitted on, so the warning says where that was."""
    beyond_lo, beyond_hi = np.atleast_1d(beyond_lo), np.atleast_1d(beyond_hi)
    hit = beyond_lo | beyond_hi
    if not hit.any():
        return None
    law = fit.law
    lo, hi = law.target_range
    ends = " and ".join(f"{b:g}" for b, m in ((lo, beyond_lo), (hi, beyond_hi)) if m.any())
    where = f" at {int(hit.sum())} of {hit.size} points" if hit.size > 1 else ""
    if inputs is not None and len(inputs) > 1:
        k = int(np.flatnonzero(hit)[0])
        where += " (first: " + ", ".join(f"{c}={inputs[c].iloc[k]:.4g}" for c in inputs.columns) + ")"
    ranges = fit.input_ranges or {}
    fitted = ", ".join(f"{c} {ranges[c][0]:.4g} to {ranges[c][1]:.4g}" for c in law.inputs if c in ranges)
    who = f"{role} fit ({law.name})" if role else law.name
    return (f"{who}: the {int(round(100 * level))}% interval of {law.target} reaches the bound {ends} of "
            f"[{lo:g}, {hi:g}]{where} and is clipped there ({law.target} cannot leave that range): the law is "
            f"extrapolated far beyond where it was fitted" + (f" ({fitted})" if fitted else ""))


_AGGREGATED = "aggregated into "


def aggregated_note(unit: str, note: str) -> str:
    """The ``attrs["prepare_note"]`` of a law's prepare step whose rows are aggregates of the
    input (one per ``unit``, e.g. "loss levels"), not a subset of it: the fit summary then says
    "aggregated 9 rows into 3 loss levels" instead of "kept 3 of 9". ``note`` says how."""
    return f"{_AGGREGATED}{unit}: {note}"


def split_prepare_note(note) -> tuple:
    """(unit, text) of a recorded prepare note: unit is None unless the step aggregated rows
    (:func:`aggregated_note`); text is the step's own account."""
    if isinstance(note, str) and note.startswith(_AGGREGATED) and ": " in note:
        unit, text = note[len(_AGGREGATED):].split(": ", 1)
        return unit, text
    return None, note


def no_range_warning(fit: Fit, role: str | None = None) -> str | None:
    """The warning for a fit that records no fitted range (published constants), else None.

    The same words wherever a prediction is judged for extrapolation (predict, optimum,
    hparams, plan); ``role`` names the fit's part, e.g. 'loss' or 'lr'."""
    if fit.has_range:
        return None
    who = f"{role} fit" if role else "fit"
    return (f"{who} ({fit.law.name}) records no fitted range ({fit.label or 'no data'}); "
            "extrapolation cannot be judged")


def _public_laws():
    from .law import all_laws
    return [law for law in all_laws() if not law.name.startswith("_")]


def published_names() -> list:
    return sorted({label for law in _public_laws() for label in law.published})


def published_fit(name: str, law: str | None = None) -> Fit | None:
    """A Fit holding published constants (no intervals unless the law gives them).

    Returns None when no law publishes ``name``; raises when several do and ``law`` is None.
    """
    owners = [l for l in _public_laws() if name in l.published]
    if law is not None:
        want = get_law(law).name
        owners = [l for l in owners if l.name == want]
        if not owners:
            labels = ", ".join(get_law(law).published) or "none"
            raise ScalelawError(f"law {want!r} has no published fit {name!r}; its published fits: {labels}")
    if len(owners) > 1:
        raise ScalelawError(f"published fit {name!r} exists for laws {', '.join(l.name for l in owners)}; "
                            "say which with --law NAME")
    if not owners:
        return None
    owner = owners[0]
    params = dict(owner.published[name])
    full = {n: float(params[n]) for n in owner.param_names}
    return Fit(law=owner, params=full, free=owner.param_names, label=f"published: {name}",
               data={"source": name}, diagnostics={"converged": True, "message": "published constants"},
               settings={"published": name})


class Summary:
    """Text and HTML summary of a Fit, with a fixed health checklist that never hides."""

    def __init__(self, fit: Fit):
        self.fit = fit

    def __repr__(self) -> str:
        return str(self)

    def _rows(self):
        f = self.fit
        se, ci = f.stderr, f.ci
        rows = []
        for p in f.law.params:
            v = f.params[p.name]
            lo, hi = ci.get(p.name, [None, None])
            sd = se.get(p.name)
            sd = None if sd is None or not math.isfinite(sd) else sd
            if sd is None and lo is not None and p.name in f.free:
                sd = "skewed"   # an sd would mislead (stderr_note); the interval is the answer
            rows.append((p.name, v, sd, lo, hi,
                         "fixed" if p.name not in f.free else ("AT BOUND" if p.name in f.diagnostics.get("params_at_bounds", []) else "")))
        return rows

    def _row_counts(self) -> dict:
        rows = (self.fit.data or {}).get("rows")
        return rows if isinstance(rows, Mapping) and rows.get("table") is not None else {}

    def rows_text(self) -> str:
        """'129' or, when the filter or the law's prepare step left rows out, '129 of 1911'; for
        rows the prepare step aggregated, what they are: '3 loss levels from 9 rows'."""
        rows, n = self._row_counts(), self.fit.n_obs
        unit, _ = split_prepare_note(rows.get("prepare"))
        if unit:
            selected = rows.get("selected")
            of = f"{selected} of {rows['table']}" if selected is not None and selected != rows["table"] else f"{rows['table']}"
            return f"{n} {unit} from {of} rows"
        return f"{n} of {rows['table']}" if rows and rows["table"] != n else f"{n}"

    def rows_why(self) -> str:
        """Why the fit used fewer (or other) rows than the table had: --where, the law's prepare step."""
        rows = self._row_counts()
        if not rows:
            return ""
        parts = []
        if rows.get("selected") is not None and rows["selected"] != rows["table"]:
            parts.append(f"--where kept {rows['selected']} of {rows['table']}")
            base = rows["selected"]
        else:
            base = rows["table"]
        fitted = rows.get("fitted", self.fit.n_obs)
        unit, note = split_prepare_note(rows.get("prepare"))
        if fitted != base:
            if unit:   # new rows (one per group), not a subset: "kept 3 of 9" would be untrue
                what = f"aggregated {base} rows into {fitted} {unit}"
            else:
                what = f"{'kept' if fitted < base else 'made'} {fitted} of {base}"
            parts.append(f"the law's prepare step ({self.fit.law.name}) {what}" + (f": {note}" if note else ""))
        return "; ".join(parts)

    def checklist(self) -> list:
        d = self.fit.diagnostics
        if self.fit.label:
            return [("source", self.fit.label)]
        def num(key, fmt, missing):
            v = d.get(key)
            return format(v, fmt) if isinstance(v, (int, float)) else missing

        items = [
            ("converged", "yes" if d.get("converged") else "NO - do not use this fit"),
            ("parameters at bounds", ", ".join(d.get("params_at_bounds") or []) or "none"),
            ("starts reaching best", f"{d.get('starts_at_best')} of {d.get('n_starts')}"),
            # non-finite values are stored as JSON null: an infinite condition number is singular
            ("condition number", num("condition_number", ".3g", "inf (singular: some parameters not identified)")),
            ("residual sd", num("residual_sd", ".4g", "n/a") + (" (log)" if self.fit.log_residuals else "")),
            ("intervals", self.fit.interval_method),
        ]
        if d.get("flat_direction") and not (self.fit.boot is not None and len(self.fit.boot)):
            items[-1] = ("intervals", "none (the delta method has no width along the flat direction)")
        return items

    def health_title(self) -> str:
        """'health:' or 'health: NOT IDENTIFIED' (the problems follow, one line each)."""
        return "health:" if self.fit.label or self.fit.identified else "health: NOT IDENTIFIED"

    def stderr_note(self) -> str:
        """What the stderr column is."""
        f = self.fit
        if f.param_samples() is None:
            return ""
        src = (f"the {len(f.boot)} bootstrap estimates" if f.boot is not None and len(f.boot)
               else "delta-method draws")
        return (f"stderr: standard deviation of {src}; 'skewed' where one side of the interval is over "
                f"{SKEW_RATIO:g}x the other (an sd would mislead): read the interval")

    def __str__(self) -> str:
        f = self.fit
        lvl = int(round(f.level * 100))
        fmt = lambda x: x if isinstance(x, str) else "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.5g}"
        w = max([10] + [len(p.name) + 2 for p in f.law.params] + [len(k) + 2 for k in f.law.derived])
        lines = [f"scalelaw fit: {f.law.name} (v{f.law.version})   {f.law.formula}"]
        if f.label:
            lines.append(f"{f.label} (constants as published; no data, no fit)")
        else:
            lines.append(f"data: {f.data.get('source')}  rows: {self.rows_text()}"
                         + (f"  filter: {f.data.get('filter')}" if f.data.get("filter") else ""))
            why = self.rows_why()
            if why:
                import textwrap
                lines += textwrap.wrap(why, width=96, initial_indent="  ", subsequent_indent="  ")
            obj = f.objective
            lines.append(f"objective: {obj.get('name')}" + (f" (delta {obj.get('delta')})" if obj.get("delta") else "")
                         + (f" = {obj.get('value'):.8g}" if obj.get("value") is not None else ""))
        lines += ["", f"{'param':<{w}}{'value':>14}{'stderr':>12}{f'{lvl}% lower':>14}{f'{lvl}% upper':>14}  note"]
        for name, v, se, lo, hi, note in self._rows():
            lines.append(f"{name:<{w}}{fmt(v):>14}{fmt(se):>12}{fmt(lo):>14}{fmt(hi):>14}  {note}")
        der = f.derived() if f.law.derived else {}
        if der:
            lines.append("")
            for k, r in der.items():
                iv = f"  [{r['lower']:.4g}, {r['upper']:.4g}]" if r.get("lower") is not None else ""
                lines.append(f"{k:<{w}}{r['value']:>14.5g}{iv}")
        import textwrap
        lines += textwrap.wrap(self.stderr_note(), width=96)
        lines.append("")
        lines.append(self.health_title())
        for m in ([] if f.label else f.problems):
            lines += textwrap.wrap(m, width=96, initial_indent="  - ", subsequent_indent="    ")
        for k, v in self.checklist():
            lines.append(f"  {k:<22}{v}")
        stats = self.statistics()
        if stats:
            lines += ["", "statistics:"] + [f"  {k:<22}{v}" for k, v in stats]
        corr = self.correlations()
        if corr:
            lines += ["", "correlations above 0.9:"] + [f"  C({a}, {b}){'':<{max(1, 16 - len(a) - len(b))}}{r:+.3f}"
                                                       for a, b, r in corr]
        return "\n".join(lines)

    def statistics(self) -> list:
        """(label, text) rows: rows, free parameters, degrees of freedom, log-likelihood, AIC, BIC,
        RMSE, seed, convergence details. Empty for published constants (no data, no fit)."""
        f = self.fit
        if f.label:
            return []
        d = f.diagnostics or {}
        g = lambda v, fmt=".6g": format(v, fmt) if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"
        s = f.settings or {}
        seed = f"{s.get('seed')}" + (f" (bootstrap, {s.get('boot')} resamples)" if s.get("boot") else
                                     " (no bootstrap: delta-method draws, seed 0)")
        conv = (f"{d.get('message', 'n/a')}; largest gradient {g(d.get('gradient_max'), '.3g')}, "
                f"{g(d.get('mean_iterations'), '.3g')} iterations per start"
                + (f", {d['seconds']:.3g} s" if isinstance(d.get("seconds"), (int, float)) else ""))
        return [("n (rows fitted)", f"{f.n_obs}"), ("free parameters", f"{len(f.free)}"),
                ("degrees of freedom", f"{f.dof}"),
                ("log-likelihood", g(f.loglike) + (" (Gaussian, log residuals)" if f.log_residuals else " (Gaussian)")),
                ("AIC / BIC", f"{g(f.aic)} / {g(f.bic)}"), ("RMSE", g(f.rmse, ".4g") + f" ({f.law.target} units)"),
                ("seed", seed), ("convergence", conv)]

    def correlations(self, threshold: float = 0.9) -> list:
        return [] if self.fit.label else self.fit.high_correlations(threshold)

    def _repr_html_(self) -> str:
        import html
        f = self.fit
        lvl = int(round(f.level * 100))
        esc = html.escape
        fmt = lambda x: x if isinstance(x, str) else "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.5g}"
        prow = list(self._rows())
        notes = any(note for *_, note in prow)  # a note column only when a parameter has one
        rows = "".join(
            f"<tr><td>{esc(n)}</td><td>{fmt(v)}</td><td>{fmt(se)}</td><td>{fmt(lo)}</td><td>{fmt(hi)}</td>"
            + (f"<td style='color:#b00'>{esc(note)}</td>" if notes else "") + "</tr>"
            for n, v, se, lo, hi, note in prow)
        checks = "".join(f"<tr><td colspan=2 style='color:#b00'>{esc(m)}</td></tr>"
                         for m in ([] if f.label else f.problems))
        checks += "".join(f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>" for k, v in self.checklist())
        head = (f"<tr><th>param</th><th>value</th><th>stderr</th><th>{lvl}% lower</th><th>{lvl}% upper</th>"
                + ("<th>note</th>" if notes else "") + "</tr>")
        stats = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in self.statistics())
        if stats:
            checks += "</table><table><tr><th colspan=2>statistics</th></tr>" + stats
        corr = self.correlations()
        if corr:
            checks += ("</table><table><tr><th colspan=2>correlations above 0.9</th></tr>"
                       + "".join(f"<tr><td>C({esc(a)}, {esc(b)})</td><td>{r:+.3f}</td></tr>" for a, b, r in corr))
        return (f"<div class='scalelaw-summary'><p><b>{esc(f.law.name)}</b> <code>{esc(f.law.formula)}</code><br>"
                f"data: {esc(str(f.data.get('source')))}, rows: {esc(self.rows_text())}"
                + (f" ({esc(why)})" if (why := self.rows_why()) else "")
                + f"; objective: {esc(str(f.objective.get('name')))}</p>"
                f"<table>{head}{rows}</table>"
                + (f"<p>{esc(note)}</p>" if (note := self.stderr_note()) else "")
                + f"<table><tr><th colspan=2>{esc(self.health_title())}</th></tr>{checks}</table></div>")
