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
sample. The default method ("local") therefore fits each budget near its minimum only: a
parabola in ln N through the runs within a window centred on the current estimate of the
minimum, re-centred until it settles (see :func:`local_minimum`). Budgets whose minimum sits at
the edge of the sampled sizes, or whose fitted minimum lies far below every observed run, are
flagged and left out of the power law. docs/isoflop.md gives measured numbers.
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
METHODS = ("local", "parabola", "cubic")
#: local method: half-width of the window in ln N (a factor WINDOW each side of the minimum),
#: widened to hold at least LOCAL_MIN_SIZES distinct sizes; chosen on synthetic grids
#: (benchmarks/isoflop_accuracy.py, docs/isoflop.md)
WINDOW = 4.0
LOCAL_MIN_SIZES = 5
#: a fitted minimum more than this far (relative) below the budget's best run is not supported
#: by the runs (docs/isoflop.md: how it was chosen)
FAR_BELOW = 0.01
#: the local fit's Huber weights treat residuals up to 1.345 x max(robust sd, this share of the
#: loss) as ordinary noise
OUTLIER_FLOOR = 0.002


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
    flags: list = field(default_factory=list)     # why the budget is left out of the power law
    window: tuple | None = None                   # local method: (N_lo, N_hi, runs) of the window

    @property
    def used(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict:
        return {"C": self.C, "n_runs": self.n_runs, "n_sizes": self.n_sizes,
                "N_min": self.N_range[0], "N_max": self.N_range[1], "N_opt": self.N_opt,
                "D_opt": self.D_opt, "loss_opt": self.loss_opt, "bracketed": self.bracketed,
                "flags": list(self.flags), "used": self.used,
                "window": None if self.window is None else {"N_lo": self.window[0], "N_hi": self.window[1],
                                                             "runs": self.window[2]},
                "flops_per_param_token": self.flops_per_param_token,
                "poly_ln_N_centre": self.centre,
                "poly_coef": list(map(float, self.coef)) if np.isfinite(self.coef).all() else None}


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
    method: str = "parabola"

    @property
    def used(self) -> list:
        """The budgets the power law goes through: the unflagged ones, or when fewer than 2 are,
        every budget with a fitted minimum."""
        ok = [b for b in self.budgets if b.used]
        return ok if len(ok) >= 2 else [b for b in self.budgets if np.isfinite(b.coef).all()]
    runs: pd.DataFrame | None = field(default=None, repr=False)   # N, loss, C and budget of each run (plots)

    @property
    def flops_per_param_token(self) -> float:
        return float(np.median([b.flops_per_param_token for b in self.used]))

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
        lo_b, hi_b = min(b.C for b in self.used), max(b.C for b in self.used)
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
            "fit_method": self.method,
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
        how = {"local": f"parabola in ln N near each budget's minimum (window x{WINDOW:g} each side)",
               "parabola": "parabola in ln N per budget", "cubic": "cubic in ln N per budget"}[self.method]
        lines = [f"IsoFLOP analysis ({how})",
                 f"{'C':>12}{'runs':>6}{'N_opt':>12}{'D_opt':>12}{'loss_opt':>10}  note"]
        for b in self.budgets:
            note = "; ".join(b.flags) if b.flags else ("" if b.bracketed else "minimum NOT bracketed by the runs")
            lines.append(f"{b.C:>12.4g}{b.n_runs:>6d}{b.N_opt:>12.4g}{b.D_opt:>12.4g}{b.loss_opt:>10.4f}  " + note)
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


def local_minimum(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, window: float = WINDOW,
                  min_sizes: int = LOCAL_MIN_SIZES, iters: int = 8):
    """The minimum of one budget's loss over x = ln N, fitted near the minimum only (see
    :func:`local_minima`). Returns (ln N*, coef, centre, mask of the window's runs), or None when
    no convex parabola is found (or fewer than 3 sizes)."""
    w = np.ones((1, len(x))) if w is None else np.asarray(w, dtype=float).reshape(1, -1)
    lnN, coef, centre, mask = local_minima(x, y, w, window=window, min_sizes=min_sizes, iters=iters)
    if not np.isfinite(lnN[0]):
        return None
    return float(lnN[0]), coef[0], centre, mask[0]


def local_minima(x: np.ndarray, y: np.ndarray, W: np.ndarray, window: float = WINDOW,
                 min_sizes: int = LOCAL_MIN_SIZES, iters: int = 8, rounds: int = 3):
    """The local method for K weightings of one budget's runs at once (row k of ``W`` counts each
    run: 1s for the data, a bootstrap's resampling counts otherwise).

    Start at the best run; fit a parabola in ln N through the runs within ln(window) of the
    current centre (widened to hold at least ``min_sizes`` distinct sizes), by Huber-weighted
    least squares (IRLS, ``rounds`` reweightings; threshold 1.345 robust sd, the sd from the
    residuals' MAD and at least OUTLIER_FLOOR of the loss, so a diverged run in the window does
    not move the minimum); move the centre to the vertex (clipped to the sampled sizes) and refit
    until it settles. A window whose parabola is not convex is doubled (up to the whole range).
    Returns (ln N* (K,), coef (K, 3) in x - centre, centre, window masks (K, n)); ln N* is NaN
    where no convex parabola was found or fewer than 3 sizes were drawn."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    W = np.asarray(W, dtype=float)
    K, n = W.shape
    have = W > 0
    centre = float(np.mean(x))
    X = _design(x - centre, 2)                                   # (n, 3)
    ux, inv = np.unique(x, return_inverse=True)
    present = np.zeros((K, len(ux)), bool)                       # sizes each weighting draws
    np.logical_or.at(present.T, inv, have.T)
    n_sizes = present.sum(axis=1)
    ok = n_sizes >= 3
    span = ux.max() - ux.min()
    lo = np.where(present, ux, np.inf).min(axis=1)
    hi = np.where(present, ux, -np.inf).max(axis=1)
    xc = x[np.argmin(np.where(have, y, np.inf), axis=1)]         # the best run drawn
    k_need = np.clip(np.minimum(max(min_sizes, 3), n_sizes), 1, None) - 1
    h0 = math.log(window)
    floor = OUTLIER_FLOOR * float(np.median(y))
    lnN = np.full(K, np.nan)
    coef = np.full((K, 3), np.nan)
    mask = np.zeros((K, n), bool)
    prev = np.full(K, np.nan)
    active = ok.copy()
    for _ in range(iters):
        if not active.any():
            break
        d = np.where(present, np.abs(ux[None, :] - xc[:, None]), np.inf)
        h = np.maximum(h0, np.take_along_axis(np.sort(d, axis=1), k_need[:, None], axis=1)[:, 0]) + 1e-9
        c = np.full((K, 3), np.nan)
        todo = active.copy()
        while todo.any():
            m = have & (np.abs(x[None, :] - xc[:, None]) <= h[:, None])
            cw = W * m
            r_w = np.ones((K, n))
            for r in range(rounds + 1):
                ww = cw * r_w
                A = np.einsum("kn,np,nq->kpq", ww[todo], X, X)
                b = np.einsum("kn,np,n->kp", ww[todo], X, y)
                sol = np.full((int(todo.sum()), 3), np.nan)
                good = np.abs(np.linalg.det(A)) > 1e-300
                if good.any():
                    sol[good] = np.linalg.solve(A[good], b[good][:, :, None])[:, :, 0]
                c[todo] = sol
                if r == rounds:
                    break
                t = todo & np.isfinite(c).all(axis=1)
                if not t.any():
                    break
                res = y[None, :] - c[t] @ X.T                      # (k, n) of the rows being fitted
                rm = np.where(m[t], res, np.nan)                   # every row has >= 3 runs in its window
                med = _row_median(rm)
                mad = _row_median(np.abs(rm - med[:, None]))
                scale = np.maximum(1.4826 * mad, floor)
                r_w[t] = np.minimum(1.0, 1.345 * scale[:, None] / np.maximum(np.abs(res), 1e-300))
            convex = c[:, 0] > 0
            widen = todo & ~convex & (h < span)
            mask[todo] = m[todo]
            todo = widen
            h = np.where(widen, h * 2, h)
        fail = active & ~(c[:, 0] > 0)
        active &= ~fail
        lnN[fail] = np.nan
        xs = centre - c[:, 1] / (2 * c[:, 0])
        lnN[active] = xs[active]
        coef[active] = c[active]
        settled = active & np.isfinite(prev) & (np.abs(xs - prev) < 1e-6)
        prev = np.where(active, xs, prev)
        xc = np.where(active, np.clip(xs, lo, hi), xc)
        active &= ~settled
    lnN[~ok] = np.nan
    return lnN, coef, centre, mask


def _row_median(a: np.ndarray) -> np.ndarray:
    """Median of each row over its non-NaN entries (every row has at least one); np.nanmedian
    goes through masked arrays and was most of the bootstrap's time."""
    n = np.sum(~np.isnan(a), axis=1)
    s = np.sort(np.where(np.isnan(a), np.inf, a), axis=1)
    r = np.arange(len(a))
    return 0.5 * (s[r, (n - 1) // 2] + s[r, n // 2])


def _flags(x, y, lnN, loss_opt, Cb) -> list:
    """Why a budget's minimum does not support the power law: at the edge of the sampled sizes
    (the best run is the smallest or the largest, or the minimum lies beyond them), or far below
    every observed run (more than FAR_BELOW relative below the best)."""
    out = []
    best = int(np.argmin(y))
    if lnN < x.min() or lnN > x.max():
        side = "below the smallest" if lnN < x.min() else "above the largest"
        out.append(f"minimum (N = {math.exp(lnN):.3g}) {side} run size")
    elif x[best] in (x.min(), x.max()):
        out.append(f"best run at the {'smallest' if x[best] == x.min() else 'largest'} size (N = {math.exp(x[best]):.3g}): "
                   "minimum at the edge")
    if loss_opt < y.min() * (1 - FAR_BELOW):
        out.append(f"fitted minimum loss {loss_opt:.4g} is {100 * (1 - loss_opt / y.min()):.2g}% below every run "
                   f"(best {y.min():.4g})")
    return out


def _column(df: pd.DataFrame, canon: str):
    """The column holding ``canon`` (N, D, C, loss): the canonical name, else the first column whose
    name is one of its aliases (scalelaw.schema.ALIASES: budget, compute, flops, ... for C)."""
    from ..schema import ALIASES, _key

    if canon in df.columns:
        return canon
    return next((c for c in df.columns if ALIASES.get(_key(c)) == canon), None)


def _prepare(df: pd.DataFrame, where, source):
    if not isinstance(df, pd.DataFrame):
        raise ScalelawError("isoflop needs a run table (pandas DataFrame); load files with scalelaw.io.load_table")
    src = source or df.attrs.get("source", "the table")
    if where:
        df = expr.select(df, where, "--where", src)
        if len(df) == 0:
            raise ScalelawError(f"--where {where!r} matches no rows of {src}; loosen the filter")
    col = {c: _column(df, c) for c in ("N", "D", "C", "loss")}
    have = ", ".join(map(str, df.columns[:15]))
    if col["loss"] is None:
        raise ScalelawError(f"isoflop needs column 'loss' but {src} has {have}; map yours with --map loss=<column>")
    if col["N"] is None and not (col["C"] and col["D"]):
        raise ScalelawError(f"isoflop needs the model size N (or the compute C and tokens D, giving N = C / (6 D)) but "
                            f"{src} has {have}; map yours with --map N=<column>")
    if col["C"] is None and col["D"] is None:
        raise ScalelawError(f"isoflop needs the compute C (or tokens D, giving C = 6 N D) but {src} has neither; "
                            "map yours with --map C=<column> (budget, compute and flops are read as C)")
    num = {c: (pd.to_numeric(df[k], errors="coerce").to_numpy(dtype=float) if k else None) for c, k in col.items()}
    y, D = num["loss"], num["D"]
    N = num["N"] if num["N"] is not None else num["C"] / (6.0 * D)
    C = num["C"] if num["C"] is not None else 6.0 * N * D
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


def isoflop(df: pd.DataFrame, *, method: str | None = None, degree: int | None = None, where: str | None = None,
            tol: float = DEFAULT_TOL, boot: int = 0, seed: int = 0, level: float = 0.95, source: str | None = None,
            window: float = WINDOW) -> IsoflopResult:
    """IsoFLOP analysis of a run table (columns N, loss and C, or D for C = 6 N D, or C and D for
    N = C / (6 D); budget / compute / flops name C).

    method: "local" (default: a parabola near each budget's minimum, :func:`local_minimum`),
    "parabola" (Hoffmann et al.: one parabola through all of a budget's runs) or "cubic". The
    older ``degree=2`` / ``degree=3`` select "parabola" / "cubic". window: the local method's
    half-width, a factor in N each side of the minimum."""
    if degree is not None and degree not in (2, 3):
        raise ScalelawError(f"--degree must be 2 (parabola) or 3 (cubic); got {degree!r}")
    if method is None:
        method = "local" if degree is None else ("parabola" if degree == 2 else "cubic")
    if method not in METHODS:
        raise ScalelawError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    if degree is not None and degree != (3 if method == "cubic" else 2):
        raise ScalelawError(f"--degree {degree} contradicts --method {method}; give one of them")
    degree = 3 if method == "cubic" else 2
    if not (isinstance(window, (int, float)) and window > 1):
        raise ScalelawError(f"--window must be a factor above 1 (e.g. 3: sizes within x3 of the minimum); got {window!r}")
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
        if len(sizes) < max(3, need) and method != "local":  # the local method flags such a budget
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
    name = {"local": "local parabola", "parabola": "parabola", "cubic": "cubic"}[method]
    for Cb, idx in groups:
        x = np.log(N[idx])
        win = None
        if method == "local":
            got = local_minimum(x, y[idx], window=window)
            if got is None:  # flagged and left out; N_opt, loss_opt: the best run's, for the record
                nsz = len(np.unique(x))
                why = (f"only {nsz} distinct size(s), a parabola needs 3" if nsz < 3 else
                       "no convex parabola near the best run (the loss does not turn up on both sides)")
                warnings.append(f"compute budget {_fmt_budget(Cb)}: {why}; left out of the power law "
                                "(add runs on both sides of the best size)")
                best = int(np.argmin(y[idx]))
                c = float(np.median(ratio[idx]))
                budgets.append(Budget(C=Cb, n_runs=len(idx), n_sizes=nsz,
                                      N_range=(float(N[idx].min()), float(N[idx].max())), coef=np.full(3, np.nan),
                                      centre=float(np.mean(x)), N_opt=float(N[idx][best]),
                                      D_opt=Cb / (c * float(N[idx][best])), loss_opt=float(y[idx][best]),
                                      bracketed=False, flops_per_param_token=c, flags=[why], window=None))
                continue
            lnN, coef, centre, m = got
            xs = lnN - centre
            win = (float(np.exp(x[m].min())), float(np.exp(x[m].max())), int(m.sum()))
        else:
            centre = float(np.mean(x))
            coef = np.linalg.lstsq(_design(x - centre, degree), y[idx], rcond=None)[0]
            xs = _poly_min(coef, x.min() - centre, x.max() - centre)
            if xs is None:
                raise ScalelawError(
                    f"compute budget {_fmt_budget(Cb)}: the fitted {name} in ln N has no minimum (loss does not "
                    "turn up at either end); add runs on both sides of the best size or drop the budget with --where")
            lnN = xs + centre
        bracketed = bool(x.min() <= lnN <= x.max())
        loss_opt = float(np.polyval(coef, xs))
        flags = _flags(x, y[idx], lnN, loss_opt, Cb) if method == "local" else []
        if method == "local":
            if flags:
                warnings.append(f"compute budget {_fmt_budget(Cb)}: {'; '.join(flags)}; left out of the power law "
                                "(add runs beyond the best size)")
        elif not bracketed:
            side = "below the smallest" if lnN < x.min() else "above the largest"
            warnings.append(f"compute budget {_fmt_budget(Cb)}: the loss minimum (N = {math.exp(lnN):.3g}) lies "
                            f"{side} run size; it is extrapolated, add runs beyond it")
        c = float(np.median(ratio[idx]))
        Nopt = math.exp(lnN)
        budgets.append(Budget(C=Cb, n_runs=len(idx), n_sizes=len(np.unique(N[idx])),
                              N_range=(float(N[idx].min()), float(N[idx].max())), coef=coef, centre=centre,
                              N_opt=Nopt, D_opt=Cb / (c * Nopt), loss_opt=loss_opt,
                              bracketed=bracketed, flops_per_param_token=c, flags=flags, window=win))
    use = [j for j, b in enumerate(budgets) if b.used]
    if len(use) < 2:
        found = [j for j, b in enumerate(budgets) if np.isfinite(b.coef).all()]
        if len(found) < 2:
            raise ScalelawError(f"{src}: only {len(found)} compute budget(s) have a loss minimum over N that a parabola "
                                "can locate; add runs on both sides of each budget's best size")
        if method == "local":
            warnings.append(f"only {len(use)} budget(s) bracket their minimum; the power law goes through the "
                            f"{len(found)} with a fitted minimum anyway: treat it as a rough guide and add runs")
        use = found
    lnC = np.log([budgets[j].C for j in use])
    lnN = np.log([budgets[j].N_opt for j in use])
    A = np.column_stack([lnC, np.ones_like(lnC)])
    (a, lnk), *_ = np.linalg.lstsq(A, lnN, rcond=None)

    a_ci = k_ci = None
    samples = cov = None
    if boot:
        samples = _bootstrap(N, y, [groups[j] for j in use], degree, lnC, boot, seed,
                             window=window if method == "local" else None)
        ok = np.all(np.isfinite(samples), axis=1)
        if ok.sum() < 0.9 * boot:
            warnings.append(f"{boot - ok.sum()} of {boot} bootstrap resamples had a budget without a minimum; "
                            "intervals use the rest")
        if ok.sum() >= 2:
            s = samples[ok]
            a_ci = _interval(s[:, 0], level)
            k_ci = tuple(math.exp(v) for v in _interval(s[:, 1], level))
        method_ci = f"bootstrap over runs within budgets ({boot} resamples, percentile)"
    elif len(use) >= 3:
        from scipy.stats import t as tdist
        resid = lnN - A @ np.array([a, lnk])
        dof = len(use) - 2
        s2 = float(resid @ resid) / dof
        cov = s2 * np.linalg.inv(A.T @ A)
        z = tdist.ppf(0.5 + level / 2, dof)
        a_ci = (float(a - z * math.sqrt(cov[0, 0])), float(a + z * math.sqrt(cov[0, 0])))
        k_ci = (float(math.exp(lnk - z * math.sqrt(cov[1, 1]))), float(math.exp(lnk + z * math.sqrt(cov[1, 1]))))
        method_ci = "least-squares standard error of the fit through the minima (t); use --boot for run-level intervals"
    else:
        method_ci = "none (2 budgets and no bootstrap)"
    settings = {"method": method, "degree": degree, "window": window if method == "local" else None, "where": where,
                "tol": tol, "boot": int(boot), "seed": int(seed), "level": level, "source": src, "n_runs": int(len(N))}
    return IsoflopResult(degree=degree, budgets=budgets, a=float(a), k=float(math.exp(lnk)), b=float(1 - a),
                         a_ci=a_ci, k_ci=k_ci, level=level, interval_method=method_ci, warnings=warnings,
                         settings=settings, boot=samples, cov=cov, method=method,
                         runs=pd.DataFrame({"N": N, "loss": y, "C": C, "budget": np.asarray(
                             [budgets[int(g)].C for g in lab])}))


def _interval(samples, level):
    lo, hi = percentile_interval(samples, level)
    return float(lo), float(hi)


def _bootstrap(N, y, groups, degree, lnC, K, seed, window=None):
    """(K, 2) samples of (a, ln k): runs resampled with replacement within each budget; every
    budget's polynomial refitted at once for all resamples by weighted least squares (with
    ``window``, the local method: its whole procedure, window choice included, per resample)."""
    rng = np.random.default_rng(seed)
    lnNopt = np.full((K, len(groups)), np.nan)
    for j, (_, idx) in enumerate(groups):
        x = np.log(N[idx])
        W = resample_weights(len(idx), K, rng)               # one generator across budgets
        if window is not None:  # a resample's minimum stays within the budget's sampled sizes, as the
            # point estimate's must (a budget whose minimum lies beyond them is flagged and left out)
            lnNopt[:, j] = np.clip(local_minima(x, y[idx], W, window=window)[0], x.min(), x.max())
            continue
        centre = float(np.mean(x))
        X = _design(x - centre, degree)                       # (n, p)
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
