"""Variable projection: fit laws that are linear in some parameters by searching only the others.

A law declares ``linear`` (scalelaw/law.py): the parameters in which it is affine, e.g. E, A, B
of Chinchilla, f = E + A N^-alpha + B D^-beta. For each value of the nonlinear parameters
(alpha, beta) the linear ones are solved exactly by bounded least squares (non-negative least
squares when their bounds are [0, inf), as for E, A, B), so the search runs over the nonlinear
parameters only (2 dimensions for Chinchilla instead of 5; Golub and Pereyra 1973, as in
Open-Athena/scaling-law-analysis).

The inner solve is exact for ``lsq``. For the log objectives (``lsq-log``, ``huber-log``) the
residual ln f - ln y is not linear in the linear parameters; the inner solve then runs a few
Gauss-Newton steps, each a bounded linear least-squares problem in the linearised residual
(1/f)(G c) (Huber: reweighted by min(1, delta/|r|)), which converges to the exact inner optimum.
The outer search starts L-BFGS-B from each point of the law's grid over the nonlinear
parameters, and the best point is handed to the ordinary engine (:func:`scalelaw.fit.fit`) as
its only start: the engine's polish on the exact objective of all parameters finishes it and
builds the Fit (bootstrap, health, intervals) exactly as for any other fit. docs/fitting.md has
the measured comparison with the multi-start engine.
"""
from __future__ import annotations

import math
import time
import warnings

import numpy as np
from scipy import optimize

from .errors import ScalelawError
from .fit import LOG_OBJECTIVES, fit, prepare
from .law import OBJECTIVES, get_law

METHODS = ("auto", "multistart", "varpro")
#: objectives where VarPro was measured to reach the engine's optimum (benchmarks/bench_laws.py,
#: bench_varpro.py; docs/fitting.md): method "auto" uses it there
VARPRO_OBJECTIVES = ("lsq", "lsq-log")
_BIG = 1e20          # a bound at least this large counts as no bound for the inner solve


class _Projection:
    """The projected objective over the nonlinear parameters (internal coordinates)."""

    def __init__(self, law, X, y, w, objective, delta, fixed):
        self.law, self.X, self.y, self.w = law, X, y, w
        self.objective, self.delta = objective, delta
        self.fixed = dict(fixed)
        self.lin = tuple(n for n in law.linear if n not in self.fixed)
        self.nonlin = tuple(n for n in law.param_names if n not in self.fixed and n not in self.lin)
        self.pdefs = [law.param(n) for n in self.nonlin]
        lo = [p.lower for p in (law.param(n) for n in self.lin)]
        hi = [p.upper for p in (law.param(n) for n in self.lin)]
        self.lb = np.array([v if v > -_BIG else -np.inf for v in lo])
        self.ub = np.array([v if v < _BIG else np.inf for v in hi])
        self.nnls = bool(np.all(self.lb == 0) and np.all(np.isinf(self.ub)))
        self.log_obj = objective in LOG_OBJECTIVES
        self.huber = objective in ("huber", "huber-log")
        self.ylog = np.log(y) if self.log_obj else None
        self.sw = np.sqrt(w)

    def natural(self, t):
        return {n: (math.exp(v) if p.log else float(v)) for n, p, v in zip(self.nonlin, self.pdefs, t)}

    def basis(self, t):
        """(g0, G): f = g0 + G @ c for the linear parameters c, at nonlinear point t."""
        base = dict(self.fixed, **self.natural(t))
        k = len(self.lin)
        P = {n: v for n, v in base.items()}
        for j, n in enumerate(self.lin):                  # row 0: all linear at 0; row j+1: c_j = 1
            P[n] = np.array([1.0 if i == j + 1 else 0.0 for i in range(k + 1)])[:, None]
        with np.errstate(all="ignore"):
            F = self.law.func(*self.X, *(P[n] for n in self.law.param_names))
        F = np.broadcast_to(F, (k + 1, self.y.shape[0]))
        g0 = F[0]
        return g0, (F[1:] - g0).T

    def _lsq(self, A, b):
        if self.nnls:
            return optimize.nnls(A, b, maxiter=50 * A.shape[1])[0]
        if np.all(np.isinf(self.lb)) and np.all(np.isinf(self.ub)):
            return np.linalg.lstsq(A, b, rcond=None)[0]
        return optimize.lsq_linear(A, b, bounds=(self.lb, self.ub), method="bvls").x

    def rho(self, r):
        if self.huber:
            a = np.abs(r)
            return np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))
        return 0.5 * r * r

    def solve(self, t, iters: int = 30):
        """(objective, c) at nonlinear point t, c the optimal linear parameters."""
        g0, G = self.basis(t)
        if not (np.all(np.isfinite(g0)) and np.all(np.isfinite(G))):
            return math.inf, None
        try:
            # raw least squares: exact; also the start of the log / Huber refinements (weighted
            # by 1/y, the first-order match of log residuals)
            scale = self.sw / self.y if self.log_obj else self.sw
            c = self._lsq(G * scale[:, None], (self.y - g0) * scale)
            if self.log_obj or self.huber:
                best, bc = self._value(g0, G, c), c
                for _ in range(iters):
                    f = g0 + G @ c
                    if np.any(f <= 0) and self.log_obj:
                        break
                    r = (np.log(f) - self.ylog) if self.log_obj else (f - self.y)
                    om = np.minimum(1.0, self.delta / np.maximum(np.abs(r), 1e-300)) if self.huber else 1.0
                    s = self.sw * np.sqrt(om)
                    if self.log_obj:      # r(c') ~ r + (G (c' - c)) / f
                        A = G * (s / f)[:, None]
                        b = s * (-r + (G @ c) / f)
                    else:
                        A = G * s[:, None]
                        b = s * (self.y - g0)
                    c_new = self._lsq(A, b)
                    v = self._value(g0, G, c_new)
                    if not v < best:
                        break
                    done = best - v <= 1e-13 * max(best, 1e-300)
                    best, bc, c = v, c_new, c_new
                    if done:
                        break
                return best, bc
            return self._value(g0, G, c), c
        except (ValueError, np.linalg.LinAlgError):
            return math.inf, None

    def _value(self, g0, G, c):
        f = g0 + G @ c
        with np.errstate(all="ignore"):
            r = (np.log(f) - self.ylog) if self.log_obj else (f - self.y)
            v = float(np.sum(self.w * self.rho(r)))
        return v if math.isfinite(v) else math.inf

    def value(self, t):
        return self.solve(t)[0]

    def bounds(self):
        out = []
        for p in self.pdefs:
            lo, hi = p.internal_bounds()
            out.append((lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None))
        return out


def search(law, data, *, objective=None, delta=1e-3, where=None, weights=None, fixed=None,
           prepare_options=None, source=None, polish_top: int = 3):
    """The variable-projection search alone: returns a dict with ``params`` (natural, all
    parameters), ``value`` (the projected objective there), ``nonlinear``/``linear`` (names),
    ``outer_starts``, ``evaluations``, ``seconds`` and ``basis_condition`` (condition number of
    the weighted basis matrix at the optimum). ``polish_top``: how many of the best distinct grid
    points of the nonlinear parameters are refined with L-BFGS-B."""
    law = get_law(law)
    if not law.linear:
        raise ScalelawError(f"law {law.name!r} declares no linear parameters, so variable projection cannot "
                            "apply; fit it with --method multistart")
    objective = objective or law.default_objective
    if objective not in OBJECTIVES:
        raise ScalelawError(f"--objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
    t0 = time.perf_counter()
    law, df, X, y, w = prepare(law, data, where=where, weights=weights, source=source,
                               prepare_options=prepare_options)
    fixed = {k: float(v) for k, v in dict(fixed or {}).items()}
    for k in fixed:
        law.param(k)
    if objective in LOG_OBJECTIVES and np.any(y <= 0):
        raise ScalelawError(f"target {law.target!r} has non-positive values; objective {objective!r} works on "
                            "logs: use --objective lsq")
    proj = _Projection(law, X, y, w, objective, float(delta), fixed)
    if not proj.lin:
        raise ScalelawError(f"every linear parameter of law {law.name!r} is fixed; use --method multistart")
    starts = law.grid_starts(proj.nonlin) if proj.nonlin else np.zeros((1, 0))
    n_eval = 0
    best_v, best_t = math.inf, None

    def fun(t):
        nonlocal n_eval
        n_eval += 1
        return proj.value(t)

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the projected objective at every grid point, then L-BFGS-B from the best few distinct
        # ones: in 2-D the basins are few, so this finds what a run from every point finds
        vals = np.array([fun(t) for t in starts])
        order = [k for k in np.argsort(vals) if math.isfinite(vals[k])]
        chosen = []
        for k in order:
            if len(chosen) >= polish_top:
                break
            if not proj.nonlin or all(np.max(np.abs(starts[k] - starts[j])) > 1e-9 for j in chosen):
                chosen.append(k)
        ends = []
        for k in chosen:
            t = starts[k]
            if not proj.nonlin:
                v, x = vals[k], t
            else:
                res = optimize.minimize(fun, t, method="L-BFGS-B", bounds=proj.bounds(),
                                        options={"maxiter": 500, "ftol": 1e-14, "gtol": 1e-10, "eps": 1e-7})
                v, x = float(res.fun), np.asarray(res.x, dtype=float)
            ends.append(v)
            if v < best_v:
                best_v, best_t = v, x
    if best_t is None or not math.isfinite(best_v):
        raise ScalelawError(f"variable projection found no finite objective for law {law.name!r} on these data; "
                            "check the units of the inputs, or use --method multistart")
    v, c = proj.solve(best_t)
    params = dict(fixed)
    params.update(proj.natural(best_t))
    for n, p, val in zip(proj.lin, (law.param(n) for n in proj.lin), c):
        # a log parameter cannot start at 0: keep it a hair above its bound for the engine
        params[n] = max(float(val), 1e-12 * max(1.0, abs(float(np.max(np.abs(c)))))) if p.log else float(val)
    g0, G = proj.basis(best_t)
    sv = np.linalg.svd(G * proj.sw[:, None], compute_uv=False)
    return {"params": {n: params[n] for n in law.param_names}, "value": float(v), "nonlinear": list(proj.nonlin),
            "linear": list(proj.lin), "outer_starts": int(len(starts)), "refined": int(len(ends)),
            "refined_at_best": int(sum(1 for e in ends if e <= best_v + 1e-6 * abs(best_v) + 1e-15)),
            "evaluations": int(n_eval),
            "seconds": round(time.perf_counter() - t0, 4),
            "basis_condition": float(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf}


def fit_varpro(law, data, *, objective=None, delta=1e-3, where=None, weights=None, fixed=None,
               prepare_options=None, source=None, **fit_kwargs):
    """Fit by variable projection: :func:`search`, then the engine polishes its optimum as the
    single start (same Fit as :func:`scalelaw.fit.fit`, with ``settings["method"] = "varpro"``
    and ``diagnostics["varpro"]`` the search's account)."""
    law = get_law(law)
    if delta == "auto":
        raise ScalelawError("--delta auto is not available with --method varpro; give a number")
    found = search(law, data, objective=objective, delta=delta, where=where, weights=weights, fixed=fixed,
                   prepare_options=prepare_options, source=source)
    free = [n for n in law.param_names if n not in (fixed or {})]
    res = fit(law, data, objective=objective, delta=delta, where=where, weights=weights, fixed=fixed,
              prepare_options=prepare_options, source=source,
              starts=[[found["params"][n] for n in free]], **fit_kwargs)
    res.settings["method"] = "varpro"
    res.settings["starts"] = "varpro"
    res.diagnostics["varpro"] = {k: found[k] for k in ("nonlinear", "linear", "outer_starts", "refined",
                                                       "refined_at_best", "evaluations", "seconds",
                                                       "basis_condition")}
    # the health checklist counts the search's starts: grid points of the nonlinear parameters,
    # and how many of the refined ones reached the best
    res.diagnostics["n_starts"] = found["outer_starts"]
    res.diagnostics["starts_finite"] = found["outer_starts"]
    res.diagnostics["starts_at_best"] = found["refined_at_best"]
    res.diagnostics["seconds"] = round(res.diagnostics.get("seconds", 0.0) + found["seconds"], 4)
    return res


def choose_method(law, objective=None, fixed=None, delta=1e-3) -> str:
    """'varpro' where it is at least as good as the engine (a law with free linear parameters
    and an objective in VARPRO_OBJECTIVES), else 'multistart'."""
    law = get_law(law)
    free_linear = [n for n in law.linear if n not in (fixed or {})]
    obj = objective or law.default_objective
    return "varpro" if free_linear and obj in VARPRO_OBJECTIVES and delta != "auto" else "multistart"


def fit_with(method: str, law, data, **kwargs):
    """``fit`` (method 'multistart', the engine), :func:`fit_varpro` ('varpro'), or 'auto'
    (:func:`choose_method`)."""
    if method == "auto":
        method = choose_method(law, kwargs.get("objective"), kwargs.get("fixed"), kwargs.get("delta", 1e-3))
    if method in (None, "multistart"):
        return fit(law, data, **kwargs)
    if method == "varpro":
        return fit_varpro(law, data, **kwargs)
    raise ScalelawError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
