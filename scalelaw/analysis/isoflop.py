"""IsoFLOP analysis (Hoffmann et al. 2022, approach 2).

Runs are grouped by compute budget (the C column, or 6 N D when C is absent; budgets are
clusters of ln C whose members lie within ``tol`` (relative) of the cluster's first run). In each
budget the final loss is fitted by a polynomial in ln N (a parabola, as Hoffmann et al., or a
cubic), whose minimum gives that budget's compute-optimal size N*. A power law through the minima
gives N_opt = k C^a, and D_opt = C / (c N_opt) with c = C / (N D) of the runs (6 by convention),
so D_opt = C^(1-a) / (c k).

Intervals come from a bootstrap over runs within budgets (every budget keeps its number of
runs); without it, from the least-squares standard error of the power-law fit through the
minima (t distribution; needs 3 or more budgets).

A parabola is symmetric in ln N but the loss is not (it rises faster towards small models), so
when the sampled sizes sit off-centre the parabola's minimum is pulled towards the middle of the
sample. The cubic corrects most of this; docs/isoflop.md gives measured numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import expr
from ..errors import ScalelawError
from ..uncertainty import percentile_interval, resample_weights

DEFAULT_TOL = 0.1           # runs within 10% of a budget's compute belong to it


@dataclass
class Budget:
    C: float
    n_runs: int
    n_sizes: int
    N_range: tuple
    coef: np.ndarray            # polynomial in (ln N - centre), highest power first
    centre: float
    N_opt: float
    D_opt: float
    loss_opt: float
    bracketed: bool
    flops_per_param_token: float

    def to_dict(self) -> dict:
        return {"C": self.C, "n_runs": self.n_runs, "n_sizes": self.n_sizes,
                "N_min": self.N_range[0], "N_max": self.N_range[1], "N_opt": self.N_opt,
                "D_opt": self.D_opt, "loss_opt": self.loss_opt, "bracketed": self.bracketed,
                "flops_per_param_token": self.flops_per_param_token,
                "poly_ln_N_centre": self.centre, "poly_coef": list(map(float, self.coef))}


@dataclass
class IsoflopResult:
    degree: int
    budgets: list
    a: float                    # N_opt = k C^a
    k: float
    b: float                    # D_opt = C^b / (c k), b = 1 - a
    a_ci: tuple | None
    k_ci: tuple | None
    level: float
    interval_method: str
    warnings: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    boot: np.ndarray | None = None          # (K, 2) samples of (a, ln k)
    cov: np.ndarray | None = None           # covariance of (a, ln k) from the fit through the minima

    @property
    def flops_per_param_token(self) -> float:
        return float(np.median([b.flops_per_param_token for b in self.budgets]))

    def n_opt(self, C):
        return self.k * np.asarray(C, dtype=float) ** self.a

    def d_opt(self, C):
        C = np.asarray(C, dtype=float)
        return C / (self.flops_per_param_token * self.n_opt(C))

    def _samples(self, k: int = 4000, seed: int = 0):
        if self.boot is not None:
            s = self.boot[np.all(np.isfinite(self.boot), axis=1)]
            return s if len(s) >= 2 else None
        if self.cov is not None and np.all(np.isfinite(self.cov)):
            rng = np.random.default_rng(seed)
            return rng.multivariate_normal([self.a, math.log(self.k)], self.cov, size=k)
        return None

    def predict(self, C) -> list:
        """N_opt and D_opt at budgets C, with intervals (bootstrap or least-squares draws) and
        how far C lies beyond the analysed budgets (factor, 1 = inside)."""
        C = np.atleast_1d(np.asarray(C, dtype=float))
        if np.any(~(C > 0)):
            raise ScalelawError(f"compute budgets must be positive; got {C.tolist()!r}")
        lo_b, hi_b = min(b.C for b in self.budgets), max(b.C for b in self.budgets)
        s = self._samples()
        c = self.flops_per_param_token
        out = []
        for Ci in C:
            row = {"C": float(Ci), "N_opt": float(self.n_opt(Ci)), "D_opt": float(self.d_opt(Ci)),
                   "extrapolation": float(max(Ci / hi_b, lo_b / Ci, 1.0))}
            if s is not None:
                n = np.exp(s[:, 1] + s[:, 0] * math.log(Ci))
                row["N_opt_lower"], row["N_opt_upper"] = _interval(n, self.level)
                row["D_opt_lower"], row["D_opt_upper"] = _interval(Ci / (c * n), self.level)
            out.append(row)
        return out

    def to_dict(self) -> dict:
        return {
            "method": "isoflop (Hoffmann et al. 2022, approach 2)",
            "degree": self.degree,
            "fit": {"a": self.a, "k": self.k, "b": self.b,
                    "a_ci": None if self.a_ci is None else list(self.a_ci),
                    "k_ci": None if self.k_ci is None else list(self.k_ci),
                    "b_ci": None if self.a_ci is None else [1 - self.a_ci[1], 1 - self.a_ci[0]],
                    "level": self.level, "interval_method": self.interval_method,
                    "flops_per_param_token": self.flops_per_param_token,
                    "formula": "N_opt = k C^a;  D_opt = C / (c N_opt) = C^b / (c k)"},
            "budgets": [b.to_dict() for b in self.budgets],
            "warnings": list(self.warnings),
            "settings": dict(self.settings),
        }

    def summary(self) -> str:
        lvl = int(round(self.level * 100))
        ci = (f"  [{self.a_ci[0]:.4f}, {self.a_ci[1]:.4f}] ({lvl}%, {self.interval_method})"
              if self.a_ci else "  (no interval)")
        lines = [f"IsoFLOP analysis ({'parabola' if self.degree == 2 else 'cubic'} in ln N per budget)",
                 f"{'C':>12}{'runs':>6}{'N_opt':>12}{'D_opt':>12}{'loss_opt':>10}  note"]
        for b in self.budgets:
            lines.append(f"{b.C:>12.4g}{b.n_runs:>6d}{b.N_opt:>12.4g}{b.D_opt:>12.4g}{b.loss_opt:>10.4f}  "
                         + ("" if b.bracketed else "minimum NOT bracketed by the runs"))
        lines += ["", f"N_opt = {self.k:.4g} * C^{self.a:.4f}" + ci,
                  f"D_opt exponent b = 1 - a = {self.b:.4f}"]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
def group_budgets(C: np.ndarray, tol: float = DEFAULT_TOL) -> np.ndarray:
    """Budget label (0, 1, ...) per run: runs sorted by C join the current budget while within
    ``tol`` (relative) of its first run's compute."""
    if not tol > 0:
        raise ScalelawError(f"--tol must be positive (relative width of a compute budget); got {tol!r}")
    order = np.argsort(C, kind="stable")
    lab = np.empty(len(C), dtype=int)
    g, start = -1, None
    width = math.log1p(tol)
    for i in order:
        lc = math.log(C[i])
        if start is None or lc - start > width:
            g += 1
            start = lc
        lab[i] = g
    return lab


def _design(x, degree):
    return np.vander(x, degree + 1)          # highest power first (np.polyval order)


def _poly_min(coef, lo, hi):
    """ln N of the polynomial's minimum (and whether it is a proper interior local minimum).

    Parabola: the vertex (None when concave). Cubic: the local minimum (root of the derivative
    with positive second derivative); None when the cubic has none.
    """
    if len(coef) == 3:
        a, b, _ = coef
        if not a > 0:
            return None
        return -b / (2 * a)
    a, b, c, _ = coef
    if abs(a) < 1e-14 * max(abs(b), 1e-300):
        return -c / (2 * b) if b > 0 else None
    disc = b * b - 3 * a * c
    if disc <= 0:
        return None
    r = math.sqrt(disc)
    for x in ((-b + r) / (3 * a), (-b - r) / (3 * a)):
        if 6 * a * x + 2 * b > 0:
            return x
    return None


def _prepare(df: pd.DataFrame, where, source):
    if not isinstance(df, pd.DataFrame):
        raise ScalelawError("isoflop needs a run table (pandas DataFrame); load files with scalelaw.io.load_table")
    src = source or df.attrs.get("source", "the table")
    if where:
        df = expr.select(df, where, "--where", src)
        if len(df) == 0:
            raise ScalelawError(f"--where {where!r} matches no rows of {src}; loosen the filter")
    for c in ("N", "loss"):
        if c not in df.columns:
            raise ScalelawError(f"isoflop needs column {c!r} but {src} has {', '.join(map(str, df.columns[:15]))}; "
                                f"map yours with --map {c}=<column>")
    if "C" not in df.columns and "D" not in df.columns:
        raise ScalelawError(f"isoflop needs the compute C (or tokens D, giving C = 6 N D) but {src} has neither; "
                            "map yours with --map C=<column>")
    N = pd.to_numeric(df["N"], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(df["loss"], errors="coerce").to_numpy(dtype=float)
    D = pd.to_numeric(df["D"], errors="coerce").to_numpy(dtype=float) if "D" in df.columns else None
    C = pd.to_numeric(df["C"], errors="coerce").to_numpy(dtype=float) if "C" in df.columns else 6.0 * N * D
    for name, v in (("N", N), ("loss", y), ("C", C)):
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ScalelawError(f"column {name!r} of {src} has {bad.sum()} missing or non-positive value(s) "
                                f"(first at row {k}: {v[k]!r}); drop them with --where or fix the file")
    ratio = C / (N * D) if D is not None and np.all(np.isfinite(D) & (D > 0)) else np.full(len(N), 6.0)
    return N, y, C, ratio, src


def _fmt_budget(C):
    return f"C={C:.3g}"


def isoflop(df: pd.DataFrame, *, degree: int = 2, where: str | None = None, tol: float = DEFAULT_TOL,
            boot: int = 0, seed: int = 0, level: float = 0.95, source: str | None = None) -> IsoflopResult:
    """IsoFLOP analysis of a run table (columns N, loss and C, or D for C = 6 N D)."""
    if degree not in (2, 3):
        raise ScalelawError(f"--degree must be 2 (parabola) or 3 (cubic); got {degree!r}")
    if not 0 < level < 1:
        raise ScalelawError(f"level must be between 0 and 1; got {level!r}")
    if boot < 0:
        raise ScalelawError(f"--boot must be 0 or more; got {boot!r}")
    N, y, C, ratio, src = _prepare(df, where, source)
    lab = group_budgets(C, tol)
    nb = lab.max() + 1
    need = degree + 1
    warnings: list[str] = []
    groups = []
    for g in range(nb):
        idx = np.flatnonzero(lab == g)
        Cb = float(np.exp(np.mean(np.log(C[idx]))))
        sizes = np.unique(N[idx])
        if len(sizes) < max(3, need):
            raise ScalelawError(
                f"compute budget {_fmt_budget(Cb)} of {src} has {len(sizes)} distinct model size(s) "
                f"({', '.join(f'{s:.3g}' for s in sizes)}); a {'parabola' if degree == 2 else 'cubic'} needs at "
                f"least {max(3, need)}: add runs, drop the budget with --where, or widen --tol")
        groups.append((Cb, idx))
    if len(groups) < 2:
        only = ", ".join(_fmt_budget(c) for c, _ in groups)
        raise ScalelawError(f"isoflop needs at least 2 compute budgets but {src} has {len(groups)} ({only}); "
                            "add runs at another budget (or narrow --tol if budgets were merged)")

    budgets = []
    for Cb, idx in groups:
        x = np.log(N[idx])
        centre = float(np.mean(x))
        coef = np.linalg.lstsq(_design(x - centre, degree), y[idx], rcond=None)[0]
        xs = _poly_min(coef, x.min() - centre, x.max() - centre)
        if xs is None:
            raise ScalelawError(
                f"compute budget {_fmt_budget(Cb)}: the fitted {'parabola' if degree == 2 else 'cubic'} in ln N "
                "has no minimum (loss does not turn up at either end); add runs on both sides of the best size "
                "or drop the budget with --where")
        lnN = xs + centre
        bracketed = bool(x.min() <= lnN <= x.max())
        if not bracketed:
            side = "below the smallest" if lnN < x.min() else "above the largest"
            warnings.append(f"compute budget {_fmt_budget(Cb)}: the loss minimum (N = {math.exp(lnN):.3g}) lies "
                            f"{side} run size; it is extrapolated, add runs beyond it")
        c = float(np.median(ratio[idx]))
        Nopt = math.exp(lnN)
        budgets.append(Budget(C=Cb, n_runs=len(idx), n_sizes=len(np.unique(N[idx])),
                              N_range=(float(N[idx].min()), float(N[idx].max())), coef=coef, centre=centre,
                              N_opt=Nopt, D_opt=Cb / (c * Nopt), loss_opt=float(np.polyval(coef, xs)),
                              bracketed=bracketed, flops_per_param_token=c))

    lnC = np.log([b.C for b in budgets])
    lnN = np.log([b.N_opt for b in budgets])
    A = np.column_stack([lnC, np.ones_like(lnC)])
    (a, lnk), *_ = np.linalg.lstsq(A, lnN, rcond=None)

    a_ci = k_ci = None
    samples = cov = None
    if boot:
        samples = _bootstrap(N, y, groups, degree, lnC, boot, seed)
        ok = np.all(np.isfinite(samples), axis=1)
        if ok.sum() < 0.9 * boot:
            warnings.append(f"{boot - ok.sum()} of {boot} bootstrap resamples had a budget without a minimum; "
                            "intervals use the rest")
        if ok.sum() >= 2:
            s = samples[ok]
            a_ci = _interval(s[:, 0], level)
            k_ci = tuple(math.exp(v) for v in _interval(s[:, 1], level))
        method = f"bootstrap over runs within budgets ({boot} resamples, percentile)"
    elif len(budgets) >= 3:
        from scipy.stats import t as tdist
        resid = lnN - A @ np.array([a, lnk])
        dof = len(budgets) - 2
        s2 = float(resid @ resid) / dof
        cov = s2 * np.linalg.inv(A.T @ A)
        z = tdist.ppf(0.5 + level / 2, dof)
        a_ci = (float(a - z * math.sqrt(cov[0, 0])), float(a + z * math.sqrt(cov[0, 0])))
        k_ci = (float(math.exp(lnk - z * math.sqrt(cov[1, 1]))), float(math.exp(lnk + z * math.sqrt(cov[1, 1]))))
        method = "least-squares standard error of the fit through the minima (t); use --boot for run-level intervals"
    else:
        method = "none (2 budgets and no bootstrap)"
    settings = {"degree": degree, "where": where, "tol": tol, "boot": int(boot), "seed": int(seed),
                "level": level, "source": src, "n_runs": int(len(N))}
    return IsoflopResult(degree=degree, budgets=budgets, a=float(a), k=float(math.exp(lnk)), b=float(1 - a),
                         a_ci=a_ci, k_ci=k_ci, level=level, interval_method=method, warnings=warnings,
                         settings=settings, boot=samples, cov=cov)


def _interval(samples, level):
    lo, hi = percentile_interval(samples, level)
    return float(lo), float(hi)


def _bootstrap(N, y, groups, degree, lnC, K, seed):
    """(K, 2) samples of (a, ln k): runs resampled with replacement within each budget; every
    budget's polynomial refitted at once for all resamples by weighted least squares."""
    rng = np.random.default_rng(seed)
    lnNopt = np.full((K, len(groups)), np.nan)
    for j, (_, idx) in enumerate(groups):
        x = np.log(N[idx])
        centre = float(np.mean(x))
        X = _design(x - centre, degree)                       # (n, p)
        W = resample_weights(len(idx), K, rng)               # one generator across budgets
        XtWX = np.einsum("kn,np,nq->kpq", W, X, X)
        XtWy = np.einsum("kn,np,n->kp", W, X, y[idx])
        distinct = np.array([len(np.unique(x[W[k] > 0])) for k in range(K)])
        good = distinct >= degree + 1
        coef = np.full((K, degree + 1), np.nan)
        if good.any():
            coef[good] = np.linalg.solve(XtWX[good], XtWy[good][:, :, None])[:, :, 0]
        for k in np.flatnonzero(good):
            xs = _poly_min(coef[k], x.min() - centre, x.max() - centre)
            if xs is not None:
                lnNopt[k, j] = xs + centre
    A = np.column_stack([lnC, np.ones_like(lnC)])
    pinv = np.linalg.pinv(A)                                   # (2, budgets)
    out = lnNopt @ pinv.T                                      # NaN rows stay NaN
    return out
