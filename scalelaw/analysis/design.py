"""Run design: which small runs to train next so that the prediction at the target is tight.

Classical optimal experimental design applied to a fitted (or published) law. The quantity that
matters is one number g(theta): the log loss at a target model (``target={"N": .., "D": ..}``),
or the log compute-optimal size / log loss at a target budget (``target_compute=C``). Its
variance after training a set xi of new runs is, to first order (the Gauss-Newton/Laplace
approximation the engine's delta method uses too),

    Var g(xi)  ~=  grad g(theta)^T  H(theta, xi)^-1  grad g(theta),
    H(theta, xi) = Sigma0^-1 + sum_{x in xi} j(x; theta) j(x; theta)^T / sigma^2,

where j(x; theta) = d ln f(x; theta) / d theta is the sensitivity of a run's log loss to the
parameters (internal coordinates: ln of log-scaled parameters), sigma the scatter of one run
around the law (log units), and Sigma0 what is known before the new runs: the fit's own
parameter covariance (from its bootstrap draws, else its delta-method covariance: information
from the user's runs, which a refit on old and new runs keeps), or, with no data yet, a prior
from published constants widened by a documented factor (``PRIOR_WIDEN``). A published prior is
NOT information the later fit will have (it fits the new runs alone), so it enters H with the
small weight ``PRIOR_WEIGHT`` only to keep H invertible; its role is to say where the parameters
probably are.

Because the law is nonlinear, the criterion is averaged over M parameter draws from Sigma0
("pseudo-Bayesian" design): a design that is good only for the point estimate is not chosen.

Algorithm (documented in docs/design.md): candidates are distinct runs (a grid or a table),
each usable once. A cost-benefit greedy pass adds the run with the largest variance reduction per
FLOP that still fits the budget; a plain greedy pass adds the largest reduction; each is then
improved by exchange (swap a chosen run for an unchosen one while the criterion
falls and the budget holds); a few random feasible designs are improved the same way, and the
best end point wins. Each step is a rank-one (Sherman-Morrison) update of the M inverse
matrices, so thousands of candidates are scored at once.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ..errors import ScalelawError
from ..result import Fit, load_fit
from .plan import _positive

FLOPS_PER_TOKEN_PARAM = 6.0
PRIOR_WIDEN = 3.0            # published standard errors are multiplied by this for a prior
DEFAULT_NOISE = 0.01         # scatter of one run around the law (log units, i.e. ~1%) without a fit
DEFAULT_DRAWS = 64           # parameter draws the criterion is averaged over
RESTARTS = 6                 # random feasible starts improved by exchange, besides the two greedy ones
PRIOR_WEIGHT = 1e-3          # weight of a published prior's precision in the information (see design())
DEFAULT_GRID = 24            # points per axis of the default candidate grid
DEFAULT_RATIO = (1.0, 1000.0)  # tokens per parameter of the default grid (the span of Chinchilla's IsoFLOP runs)
# Published standard errors of constants whose papers report them (natural units). Epoch's
# replication, Table 1 (Besiroglu et al. 2024, arXiv:2404.10102): E 0.0257, A 124.52,
# B 1293.28, alpha 0.0154, beta 0.0206.
PUBLISHED_SE = {
    ("chinchilla", "epoch-2024"): {"E": 0.0257, "A": 124.52, "B": 1293.28, "alpha": 0.0154, "beta": 0.0206},
}
# A published fit without reported standard errors gets this prior sd (internal coordinates:
# ln units for log-scaled parameters, i.e. about a factor 1.65; 0.05 + 10% for the others),
# before widening.
DEFAULT_LOG_SD = 0.5
DEFAULT_LIN_SD = (0.05, 0.10)   # absolute + relative
_SUPPORTED_INPUTS = {"N", "D", "C"}


# --------------------------------------------------------------------------------------------
# the prior: mean and covariance of the free parameters in internal coordinates
# --------------------------------------------------------------------------------------------
def _prior(fit: Fit, widen: float | None):
    """(theta0 (P,), Sigma0 (P, P), source text, own_data) of the fit's free parameters in internal
    coordinates; own_data is True when Sigma0 comes from the user's runs (a fit), False for a prior
    from published constants."""
    law = fit.law
    free = [p for p in law.params if p.name in fit.free]
    theta0 = np.array([float(p.to_internal(fit.params[p.name])) for p in free])
    if fit.boot is not None and len(fit.boot) >= 20:
        idx = [law.param_names.index(p.name) for p in free]
        s = np.asarray(fit.boot, dtype=float)[:, idx]
        s = s[np.all(np.isfinite(s), axis=1)]
        with np.errstate(all="ignore"):
            internal = np.column_stack([np.asarray(p.to_internal(s[:, i]), dtype=float) for i, p in enumerate(free)])
        internal = internal[np.all(np.isfinite(internal), axis=1)]
        if len(internal) >= 20:
            cov = np.cov(internal, rowvar=False).reshape(len(free), len(free))
            source = f"the fit's bootstrap ({len(internal)} draws)"
            return theta0, _scale(cov, widen or 1.0), source + _widened(widen), True
    if fit.cov is not None and np.all(np.isfinite(fit.cov)) and fit.theta is not None:
        cov = np.asarray(fit.cov, dtype=float).reshape(len(free), len(free))
        return np.asarray(fit.theta, dtype=float), _scale(cov, widen or 1.0), \
            "the fit's delta-method covariance" + _widened(widen), True
    # published constants: reported standard errors, else the documented default, widened
    label = (fit.settings or {}).get("published")
    se = PUBLISHED_SE.get((law.name, label))
    sd = []
    for p in free:
        v = fit.params[p.name]
        if se and p.name in se:
            sd.append(se[p.name] / v if p.log else se[p.name])
        elif p.log:
            sd.append(DEFAULT_LOG_SD)
        else:
            sd.append(DEFAULT_LIN_SD[0] + DEFAULT_LIN_SD[1] * abs(v))
    w = PRIOR_WIDEN if widen is None else widen
    what = (f"published standard errors of {label}" if se else
            f"default prior sd (ln-scale {DEFAULT_LOG_SD:g}; others 0.05 + 10%) around {label or 'the constants'}")
    return theta0, np.diag((np.asarray(sd) * w) ** 2), f"{what}, widened x{w:g}", False


def _widened(widen) -> str:
    return "" if widen in (None, 1, 1.0) else f", widened x{widen:g}"


def _scale(cov: np.ndarray, widen: float) -> np.ndarray:
    return cov * float(widen) ** 2


def _draws(fit: Fit, theta0, cov, m: int, seed: int) -> np.ndarray:
    """M parameter draws (internal coords) from N(theta0, cov), kept inside the bounds."""
    free = [p for p in fit.law.params if p.name in fit.free]
    rng = np.random.default_rng(seed)
    P = len(theta0)
    # a tiny ridge keeps a singular covariance (a parameter the data fixed exactly) drawable
    ridge = 1e-12 * max(1.0, float(np.max(np.abs(np.diag(cov))))) * np.eye(P)
    z = rng.standard_normal((m, P))
    w, V = np.linalg.eigh(cov + ridge)
    L = V * np.sqrt(np.clip(w, 0.0, None))
    th = theta0 + z @ L.T
    th[0] = theta0   # the point estimate is always one of the draws
    for i, p in enumerate(free):
        lo, hi = p.internal_bounds()
        span = (hi - lo) if math.isfinite(hi - lo) else 1.0
        th[:, i] = np.clip(th[:, i], lo + 1e-6 * span if math.isfinite(lo) else lo,
                           hi - 1e-6 * span if math.isfinite(hi) else hi)
    return th


def _natural(fit: Fit, th: np.ndarray) -> dict:
    """Internal draws (M, P) -> {param: (M, 1) natural values} including fixed params."""
    out = {}
    free = list(fit.free)
    for p in fit.law.params:
        if p.name in free:
            with np.errstate(over="ignore"):
                out[p.name] = np.asarray(p.to_natural(th[:, free.index(p.name)]), dtype=float)[:, None]
        else:
            out[p.name] = float(fit.params[p.name])
    return out


def _steps(th: np.ndarray) -> np.ndarray:
    return 1e-5 * np.maximum(1.0, np.abs(th))


# --------------------------------------------------------------------------------------------
# the quantity at the target and the runs' sensitivities
# --------------------------------------------------------------------------------------------
def _inputs(law, N, D, fpt):
    X = {}
    for c in law.inputs:
        if c == "N":
            X[c] = N
        elif c == "D":
            X[c] = D
        elif c == "C":
            X[c] = fpt * N * D
    return X


def _log_pred(fit: Fit, th: np.ndarray, N, D, fpt) -> np.ndarray:
    """ln f at runs (N, D) for every draw: (M, n)."""
    P = _natural(fit, th)
    with np.errstate(all="ignore"):
        v = np.asarray(fit.law.evaluate(_inputs(fit.law, N, D, fpt), P), dtype=float)
        v = np.broadcast_to(v, (th.shape[0], np.size(N)))
        return np.log(v) if fit.log_residuals else v


def _sensitivities(fit: Fit, th, N, D, fpt) -> np.ndarray:
    """d ln f(run) / d theta by central differences: (M, n, P)."""
    M, P = th.shape
    h = _steps(th)
    J = np.empty((M, np.size(N), P))
    for i in range(P):
        e = np.zeros(P)
        e[i] = 1.0
        up = _log_pred(fit, th + h[:, i:i + 1] * e, N, D, fpt)
        dn = _log_pred(fit, th - h[:, i:i + 1] * e, N, D, fpt)
        J[:, :, i] = (up - dn) / (2 * h[:, i:i + 1])
    return J


def _quantity(fit: Fit, target, target_compute, quantity, fpt):
    """A function th (M, P) -> g (M,) and a description of it."""
    law = fit.law
    if target is not None:
        N, D = float(target["N"]), float(target["D"])

        def g(th):
            return _log_pred(fit, th, np.array([N]), np.array([D]), fpt)[:, 0]
        what = f"{'ln ' if fit.log_residuals else ''}{law.target} at N={N:.4g}, D={D:.4g}"
        return g, what
    if law.optimum is None or "compute" not in law.optimum_args:
        raise ScalelawError(f"--target-compute needs a law with a compute-optimal allocation; law {law.name!r} "
                            "has none: give --target N=...,D=... instead")
    key = {"loss": "loss", "N_opt": "N_opt", "D_opt": "D_opt"}[quantity]

    def g(th):
        opt = law.optimum({k: (v[:, 0] if isinstance(v, np.ndarray) else v) for k, v in _natural(fit, th).items()},
                          compute=target_compute)
        with np.errstate(all="ignore"):
            return np.log(np.asarray(opt[key], dtype=float))
    return g, f"ln {key} at compute {target_compute:.4g} FLOPs"


def _gradient(g, th: np.ndarray) -> np.ndarray:
    M, P = th.shape
    h = _steps(th)
    G = np.empty((M, P))
    for i in range(P):
        e = np.zeros(P)
        e[i] = 1.0
        G[:, i] = (g(th + h[:, i:i + 1] * e) - g(th - h[:, i:i + 1] * e)) / (2 * h[:, i])
    return G


# --------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------
def parse_range(text: str, option: str = "--grid") -> tuple:
    """'1e7:1e9' -> (1e7, 1e9), both positive, lo < hi."""
    try:
        lo, hi = (float(x) for x in str(text).split(":"))
    except ValueError:
        raise ScalelawError(f"{option} expects NAME=LO:HI with two positive numbers, e.g. N=1e7:1e9; got {text!r}") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ScalelawError(f"{option} range {text!r} must satisfy 0 < LO < HI (finite)")
    return lo, hi


def candidate_grid(budget: float, grid: Mapping | None = None, points: int = DEFAULT_GRID,
                   fpt: float = FLOPS_PER_TOKEN_PARAM):
    """Candidate runs (N, D) as two arrays.

    With ``grid={"N": (lo, hi), "D": (lo, hi)}``: a log grid of ``points`` x ``points``. Without
    it: runs of compute budget/1000 to budget/2 and DEFAULT_RATIO (1 to 1000) tokens per parameter
    (a log grid of ``points`` x ``points`` in (compute, tokens per parameter)), so any budget gets
    a sensible neighbourhood of runs people actually train."""
    if grid:
        unknown = sorted(set(grid) - {"N", "D"})
        if unknown or set(grid) != {"N", "D"}:
            raise ScalelawError("--grid needs exactly N=LO:HI and D=LO:HI" +
                                (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        n = np.geomspace(*grid["N"], points)
        d = np.geomspace(*grid["D"], points)
        NN, DD = np.meshgrid(n, d, indexing="ij")
        return NN.ravel(), DD.ravel()
    c = np.geomspace(budget / 1000.0, budget / 2.0, points)
    m = np.geomspace(*DEFAULT_RATIO, points)
    CC, MM = np.meshgrid(c, m, indexing="ij")
    N = np.sqrt(CC / (fpt * MM))
    return N.ravel(), (MM * N).ravel()


# --------------------------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------------------------
class _State:
    """M information matrices H (precision of the parameters) and their inverses.

    Adding or removing a run changes H by a rank-one term; the inverse is recomputed from H
    (P is small) rather than updated, which keeps the criterion exact to rounding however many
    runs were added and removed."""

    def __init__(self, H: np.ndarray, G: np.ndarray):
        self.H = H                # (M, P, P)
        self.G = G                # (M, P)
        Hs = 0.5 * (H + np.swapaxes(H, 1, 2))
        self.Hinv = np.linalg.inv(Hs)

    def value(self) -> float:
        return float(np.mean(np.einsum("mp,mpq,mq->m", self.G, self.Hinv, self.G)))

    def gains(self, J: np.ndarray, s2: float) -> np.ndarray:
        """Criterion reduction of adding each candidate: J (M, C, P) -> (C,)."""
        U = np.einsum("mpq,mcq->mcp", self.Hinv, J)
        den = s2 + np.einsum("mcp,mcp->mc", J, U)
        num = np.einsum("mp,mcp->mc", self.G, U) ** 2
        return np.mean(num / den, axis=0)

    def add(self, j: np.ndarray, s2: float, sign: float = 1.0) -> "_State":
        """Add (sign=1) or remove (sign=-1) one run with sensitivities j (M, P)."""
        return _State(self.H + sign * np.einsum("mp,mq->mpq", j, j) / s2, self.G)


def _greedy(state, J, cost, budget, k, s2, per_cost: bool):
    chosen, spent = [], 0.0
    avail = np.ones(len(cost), dtype=bool)
    while len(chosen) < k:
        ok = avail & (spent + cost <= budget * (1 + 1e-9))
        if not ok.any():
            break
        gain = state.gains(J, s2)
        score = gain / cost if per_cost else gain.copy()
        score[~ok] = -np.inf
        i = int(np.argmax(score))
        if not gain[i] > 0:
            break
        state = state.add(J[:, i, :], s2)
        chosen.append(i)
        spent += cost[i]
        avail[i] = False
    return chosen, state


def _exchange(state, J, cost, budget, chosen, s2, max_passes: int = 20):
    chosen = list(chosen)
    for _ in range(max_passes):
        improved = False
        for pos in range(len(chosen)):
            i = chosen[pos]
            without = state.add(J[:, i, :], s2, sign=-1.0)
            spent = float(np.sum(cost[chosen])) - cost[i]
            gain = without.gains(J, s2)
            ok = np.ones(len(cost), dtype=bool)
            ok[chosen] = False
            ok &= spent + cost <= budget * (1 + 1e-9)
            if not ok.any():
                continue
            gain[~ok] = -np.inf
            c = int(np.argmax(gain))
            new_value = without.value() - gain[c]
            if new_value < state.value() * (1 - 1e-9):
                state = without.add(J[:, c, :], s2)
                chosen[pos] = c
                improved = True
        if not improved:
            break
    return chosen, state


def _random_feasible(rng, cost, budget, k) -> list:
    """Up to k distinct candidates in random order whose total cost fits the budget."""
    chosen, spent = [], 0.0
    for i in rng.permutation(len(cost)):
        if spent + cost[i] <= budget * (1 + 1e-9):
            chosen.append(int(i))
            spent += cost[i]
            if len(chosen) == k:
                break
    return chosen


def design(fit, *, target: Mapping | None = None, target_compute: float | None = None,
           quantity: str = "loss", budget: float, candidates=None, grid: Mapping | None = None,
           k: int = 8, noise: float | None = None, widen: float | None = None, draws: int = DEFAULT_DRAWS,
           seed: int = 0, level: float | None = None,
           flops_per_token_param: float = FLOPS_PER_TOKEN_PARAM) -> dict:
    """Propose up to ``k`` new runs whose total compute fits ``budget`` and which minimise the
    predicted variance of the target quantity (see the module docstring).

    fit: a Fit, a fit JSON path, or a published name (e.g. "epoch-2024": design from nothing).
    target: {"N": .., "D": ..} (loss at that model) or target_compute=C with quantity
        "loss" (compute-optimal loss), "N_opt" or "D_opt".
    candidates: a DataFrame with columns N and D (each a possible run), or grid={"N": (lo, hi),
        "D": (lo, hi)}, or neither (the default grid around the budget, :func:`candidate_grid`).
    noise: scatter of one run around the law in log units (default: the fit's residual sd,
        else 0.01). widen: factor on the prior's standard deviations (default 1 for a fit's
        own uncertainty, PRIOR_WIDEN for published constants).
    Returns a dict: runs (N, D, C, cost), total cost, expected interval widths before and after.
    """
    fit = load_fit(fit)
    law = fit.law
    if not set(law.inputs) <= _SUPPORTED_INPUTS or not ({"N", "D"} & set(law.inputs)):
        raise ScalelawError(f"design proposes runs (N, D); law {law.name!r} takes {', '.join(law.inputs)}, "
                            "so its runs cannot be laid out in N and D")
    if (target is None) == (target_compute is None):
        raise ScalelawError("give exactly one of --target N=...,D=... and --target-compute C")
    if quantity not in ("loss", "N_opt", "D_opt"):
        raise ScalelawError(f"--quantity must be loss, N_opt or D_opt; got {quantity!r}")
    if target is not None:
        missing = [c for c in ("N", "D") if c not in target]
        if missing:
            raise ScalelawError(f"--target needs N and D (e.g. --target N=7e10,D=1.4e12); missing {', '.join(missing)}")
        for c in ("N", "D"):
            _positive(target[c], f"--target {c}")
        if quantity != "loss":
            raise ScalelawError("--quantity N_opt/D_opt goes with --target-compute, not --target")
    else:
        _positive(target_compute, "--target-compute")
    _positive(budget, "--budget")
    if not (isinstance(k, (int, np.integer)) and 1 <= k <= 1000):
        raise ScalelawError(f"--k must be a whole number from 1 to 1000; got {k!r}")
    if not (isinstance(draws, (int, np.integer)) and 2 <= draws <= 10000):
        raise ScalelawError(f"draws must be from 2 to 10000; got {draws!r}")
    fpt = _positive(flops_per_token_param, "flops_per_token_param")
    level = float(level or fit.level or 0.95)
    if not 0 < level < 1:
        raise ScalelawError(f"--level must lie in (0, 1); got {level!r}")

    # candidates
    if candidates is not None:
        for c in ("N", "D"):
            if c not in candidates.columns:
                raise ScalelawError(f"the candidates table needs columns N and D; it has {', '.join(map(str, candidates.columns))}")
        N = candidates["N"].to_numpy(dtype=float)
        D = candidates["D"].to_numpy(dtype=float)
        bad = ~(np.isfinite(N) & np.isfinite(D) & (N > 0) & (D > 0))
        if bad.any():
            raise ScalelawError(f"the candidates table has {int(bad.sum())} row(s) with N or D missing or not "
                                f"positive (first: row {int(np.flatnonzero(bad)[0])}); fix or drop them")
        grid_text = f"{len(N)} candidates from the table"
    else:
        N, D = candidate_grid(budget, grid, fpt=fpt)
        grid_text = (f"log grid {DEFAULT_GRID}x{DEFAULT_GRID} in N {grid['N'][0]:.3g}..{grid['N'][1]:.3g}, "
                     f"D {grid['D'][0]:.3g}..{grid['D'][1]:.3g}" if grid else
                     f"default grid: {DEFAULT_GRID}x{DEFAULT_GRID} runs of budget/1000..budget/2 FLOPs at "
                     f"{DEFAULT_RATIO[0]:g}..{DEFAULT_RATIO[1]:g} tokens per parameter")
    cost = fpt * N * D
    fits_budget = cost <= budget * (1 + 1e-9)
    if not fits_budget.any():
        raise ScalelawError(f"no candidate run fits --budget {budget:.4g} FLOPs (the cheapest costs {cost.min():.4g}); "
                            "raise the budget or give smaller candidates")
    N, D, cost = N[fits_budget], D[fits_budget], cost[fits_budget]

    theta0, cov, prior_text, own_data = _prior(fit, widen)
    th = _draws(fit, theta0, cov, int(draws), seed)
    g, what = _quantity(fit, target, target_compute, quantity, fpt)
    G = _gradient(g, th)
    J = _sensitivities(fit, th, N, D, fpt)
    usable = np.all(np.isfinite(G), axis=1) & np.all(np.isfinite(J), axis=(1, 2))
    if usable.sum() < 2:
        raise ScalelawError(f"the law {law.name!r} cannot be evaluated at these candidates for the parameter draws "
                            "(non-finite predictions); narrow the candidate grid")
    G, J = G[usable], J[usable]
    J = np.where(np.isfinite(J), J, 0.0)

    sd = noise
    if sd is None:
        r = (fit.diagnostics or {}).get("residual_sd")
        if isinstance(r, (int, float)) and math.isfinite(r) and r > 0:
            sd, noise_text = float(r), "the fit's residual sd"
        else:
            sd, noise_text = DEFAULT_NOISE, f"default {DEFAULT_NOISE:g}"
    else:
        sd = _positive(sd, "--noise")
        noise_text = "given"
    s2 = sd * sd

    P = cov.shape[0]
    # standardise the parameters by their prior sd: the information matrices of nearly collinear
    # directions (ln A and alpha over a narrow N range) are then far better conditioned
    S = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    cov, G, J = cov / np.outer(S, S), G * S, J * S
    # What is known before the new runs, as a precision. A fit's covariance is information from
    # the user's own runs, which a refit on old + new runs keeps. Published constants are not: a
    # fit on the new runs does not know them, so they only choose where to look (the draws) and
    # enter the information with weight PRIOR_WEIGHT, just enough to keep it invertible.
    # A tiny ridge keeps a parameter the data fixed exactly invertible.
    H0 = np.linalg.inv(cov + 1e-12 * max(1.0, float(np.max(np.diag(cov)))) * np.eye(P))
    if not own_data:
        H0 = H0 * PRIOR_WEIGHT
    before = float(np.mean(np.einsum("mp,pq,mq->m", G, cov, G)))
    start = _State(np.broadcast_to(H0, (G.shape[0], P, P)).copy(), G)
    best = None
    rng = np.random.default_rng(seed)
    for attempt in range(2 + RESTARTS):
        if attempt < 2:   # cost-benefit greedy, then plain greedy
            chosen, st = _greedy(start, J, cost, budget, k, s2, per_cost=attempt == 0)
        else:             # a random feasible design of the size the greedy passes found
            chosen = _random_feasible(rng, cost, budget, len(best[0]) if best else k)
            st = start
            for i in chosen:
                st = st.add(J[:, i, :], s2)
        if not chosen:
            continue
        chosen, st = _exchange(st, J, cost, budget, chosen, s2)
        if best is None or st.value() < best[1].value():
            best = (chosen, st)
    if best is None:
        raise ScalelawError("no candidate run reduces the uncertainty at the target; widen the candidate grid")
    chosen, st = best
    after = st.value()
    order = sorted(chosen, key=lambda i: cost[i])

    from scipy.special import ndtri
    z = float(ndtri(0.5 + level / 2))

    def width(v):
        s = math.sqrt(max(v, 0.0))
        return {"sd": s, "relative_width": math.exp(z * s) - math.exp(-z * s)}

    runs = [{"N": float(N[i]), "D": float(D[i]), "C": float(cost[i]),
             "tokens_per_param": float(D[i] / N[i]), "cost_share": float(cost[i] / budget)} for i in order]
    warnings = []
    from ..result import health_warning
    note = health_warning(fit)
    if note:   # the prior (and so the whole design) rests on this fit's uncertainty
        warnings.append(note)
    if len(chosen) < k:
        warnings.append(f"only {len(chosen)} of the {k} runs asked for fit the budget or reduce the uncertainty")
    if target is not None:
        tc = fpt * float(target["N"]) * float(target["D"])
    else:
        tc = float(target_compute)
    biggest = float(max(cost[i] for i in chosen))
    return {
        "law": law.name,
        "fit": fit.label or (fit.data or {}).get("source"),
        "quantity": what,
        "target": ({"N": float(target["N"]), "D": float(target["D"])} if target is not None
                   else {"compute": float(target_compute), "quantity": quantity}),
        "budget": float(budget),
        "k": int(k),
        "runs": runs,
        "total_cost": float(sum(cost[i] for i in chosen)),
        "level": level,
        "before": width(before),
        "after": width(after),
        "width_ratio": math.sqrt(after / before) if before > 0 else None,
        "extrapolation": tc / biggest,
        "method": {"prior": prior_text, "noise_sd": sd, "noise_from": noise_text, "draws": int(G.shape[0]),
                   "candidates": grid_text, "n_candidates": int(len(N)),
                   "algorithm": f"cost-benefit greedy, plain greedy and {RESTARTS} random feasible starts, each improved by "
                                  "exchange; criterion averaged over draws"},
        "warnings": warnings,
        "candidates": {"N": N.tolist(), "D": D.tolist(), "C": cost.tolist(),
                       "chosen": [bool(i in set(chosen)) for i in range(len(N))]},
    }


def format_design(res: dict) -> str:
    lines = [f"design for {res['quantity']} ({res['law']}, from {res['method']['prior']})",
             f"budget {res['budget']:.4g} FLOPs; {len(res['runs'])} runs proposed, total {res['total_cost']:.4g} FLOPs "
             f"({100 * res['total_cost'] / res['budget']:.0f}% of the budget)",
             f"{'N':>12} {'D':>12} {'D/N':>8} {'C (FLOPs)':>12} {'share':>6}"]
    for r in res["runs"]:
        lines.append(f"{r['N']:12.4g} {r['D']:12.4g} {r['tokens_per_param']:8.3g} {r['C']:12.4g} "
                     f"{100 * r['cost_share']:5.1f}%")
    lvl = int(round(100 * res["level"]))
    b, a = res["before"], res["after"]
    lines.append(f"expected {lvl}% interval width at the target (relative): before {100 * b['relative_width']:.3g}%, "
                 f"after {100 * a['relative_width']:.3g}%")
    lines.append("fit the new runs and predict with --interval residual-t (or delta): a bootstrap over runs is "
                 "wide on designed ladders (docs/design.md)")
    lines.append(f"noise sd {res['method']['noise_sd']:.3g} ({res['method']['noise_from']}); "
                 f"{res['method']['candidates']}; target {res['extrapolation']:.3g}x the largest proposed run in compute")
    return "\n".join(lines)
