"""The contract every registered law must honour (parametrized over scalelaw.law.all_laws()).

For each law, using its declared ``domain`` and ``example``:
  * finiteness: the law is finite (and positive when ``positive_target``) on the domain;
  * vectorisation: parameters of shape (S, 1) evaluate S parameter vectors at once and row k
    equals the scalar evaluation with parameter vector k;
  * recovery: a fit with the law's default objective on noiseless synthetic data drawn from
    ``example`` over ``domain`` returns ``example`` (or, for the laws listed in PREDICTION_ONLY,
    the same predictions, see there why), quickly;
  * optimum: where a law declares one for a compute budget, no nearby allocation on the same
    budget predicts a lower value;
  * inverse: ``inverse(f(x)) == x`` for the declared input.
Laws added by any family are covered automatically: declare ``domain`` and ``example``.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.law import all_laws

# names starting with "_" are throw-away laws registered by other tests, not declarations
LAWS = [law for law in all_laws() if not law.name.startswith("_")]
IDS = [law.name for law in LAWS]

N_POINTS = 60
PARAM_RTOL = 2e-3       # noiseless data: parameters come back to ~1e-4; 2e-3 leaves room for flat directions
PRED_RTOL = 1e-3        # for PREDICTION_ONLY laws: predictions on the domain and 3x beyond it
FIT_SECONDS = 30.0

# Laws whose declaration says some parameters are meant to be held fixed (they are not
# identifiable by construction): the recovery fit holds them at their example values.
# (A Law field such as ``default_fixed`` would let the law declare this itself.)
# e.g. {"some_law": ("gamma",)}; empty while every registered law is fully identifiable.
CONTRACT_FIXED: dict = {}

# Laws whose individual parameters are near-unidentifiable from a finite sample even without
# noise, so the contract compares predictions (on the domain and a little beyond) instead:
PREDICTION_ONLY = {
    # two breaks: each sharpness f_i trades off against its c_i and d_i (a smooth break of one
    # width and a slightly shifted break of another give nearly the same curve), so the
    # Gauss-Newton condition number at the truth is ~1e8; noiseless data happen to return the
    # parameters, but the contract only promises the curve
    "bnsl2": "f_i trades off against c_i/d_i (condition number ~1e8)",
}


def sample_inputs(law, n=N_POINTS, seed=0, widen=1.0):
    """Inputs drawn over the law's domain: log-uniform when lo > 0, else uniform."""
    rng = np.random.default_rng(seed)
    X = {}
    for c in law.inputs:
        lo, hi = law.domain[c]
        if lo > 0:
            llo, lhi = np.log(lo), np.log(hi)
            mid, half = 0.5 * (llo + lhi), 0.5 * (lhi - llo) * widen
            X[c] = np.exp(rng.uniform(mid - half, mid + half, n))
        else:
            mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * widen
            X[c] = rng.uniform(mid - half, mid + half, n)
    return X


def needs_contract(law):
    if not law.domain or not law.example:
        pytest.fail(f"law {law.name!r} declares no domain/example: the contract test cannot check it")
    missing = [c for c in law.inputs if c not in law.domain]
    if missing:
        pytest.fail(f"law {law.name!r}: domain lacks input(s) {missing}")
    assert set(law.example) == set(law.param_names), f"{law.name}: example must give every parameter"


@pytest.mark.parametrize("law", LAWS, ids=IDS)
def test_declaration_is_consistent(law):
    for p in law.params:
        assert p.lower < p.upper
        lo, hi = p.internal_bounds()
        for g in p.grid:
            assert lo <= g <= hi, f"{law.name}.{p.name}: grid value {g} outside bounds"
    if law.example:
        for k, v in law.example.items():
            p = law.param(k)
            assert p.lower <= v <= p.upper, f"{law.name}: example {k}={v} outside bounds"
    for label, vals in law.published.items():
        assert set(vals) == set(law.param_names), f"{law.name}: published {label!r} must give every parameter"


@pytest.mark.parametrize("law", LAWS, ids=IDS)
def test_options_are_declared_with_the_prepare_step(law):
    """--option KEY=VALUE goes to the law's prepare step: the law declares the keys it takes, so
    one check (Law.check_options) refuses the others for every law alike."""
    if law.prepare is None:
        assert law.options == (), f"{law.name}: options without a prepare step"
    assert law.describe()["options"] == list(law.options)
    if law.options:
        with pytest.raises(ScalelawError, match="has no --option 'no_such_option'"):
            law.check_options({"no_such_option": 1})
        law.check_options({law.options[0]: None})
    else:
        with pytest.raises(ScalelawError, match="takes no --option"):
            law.check_options({"select": "best"})
    law.check_options(None)
    law.check_options({})


@pytest.mark.parametrize("law", LAWS, ids=IDS)
def test_finite_on_domain(law):
    needs_contract(law)
    X = sample_inputs(law, n=500, seed=1)
    y = law.evaluate(X, law.example)
    assert np.all(np.isfinite(y)), f"{law.name}: non-finite values on its domain"
    if law.positive_target:
        assert np.all(y > 0), f"{law.name}: non-positive values on its domain"


@pytest.mark.parametrize("law", LAWS, ids=IDS)
def test_target_range_holds_on_the_domain(law):
    """A declared target range (an error rate: [0, 1]) holds where the law is meant to be used;
    predictions beyond it are clipped to it (Fit.predict, plan)."""
    assert law.describe()["target_range"] == (None if law.target_range is None else list(law.target_range))
    if law.target_range is None:
        return
    needs_contract(law)
    lo, hi = law.target_range
    y = law.evaluate(sample_inputs(law, n=500, seed=2), law.example)
    assert np.all((y >= lo) & (y <= hi)), f"{law.name}: values outside its target range on its domain"
    clipped, outside = law.clip_target(np.array([lo - 1.0, 0.5 * (lo + hi), hi + 1.0, np.nan]))
    assert clipped[:3].tolist() == [lo, 0.5 * (lo + hi), hi] and np.isnan(clipped[3])
    assert outside.tolist() == [True, False, True, False]


@pytest.mark.parametrize("law", LAWS, ids=IDS)
def test_vectorised_over_parameter_rows(law):
    needs_contract(law)
    X = sample_inputs(law, n=17, seed=2)
    rng = np.random.default_rng(3)
    S = 4
    rows = []
    for _ in range(S):
        rows.append({k: v * (1 + 0.01 * rng.standard_normal()) if law.param(k).log or v != 0 else v
                     for k, v in law.example.items()})
    P = {k: np.array([r[k] for r in rows])[:, None] for k in law.param_names}
    Y = np.asarray(law.evaluate(X, P))
    assert Y.shape == (S, 17), f"{law.name}: (S,1) params gave shape {Y.shape}"
    for k in range(S):
        yk = np.asarray(law.evaluate(X, rows[k])) * np.ones(17)
        np.testing.assert_allclose(Y[k], yk, rtol=1e-12, atol=0)


JACOBIAN_LAWS = [law for law in LAWS if law.jac is not None]


@pytest.mark.parametrize("law", JACOBIAN_LAWS, ids=[law.name for law in JACOBIAN_LAWS])
def test_jacobian_matches_finite_differences(law):
    """The engine trusts a declared jacobian: check every column against central differences
    (in ln p for log parameters, as the engine steps them) at the example on the domain."""
    needs_contract(law)
    X = sample_inputs(law, n=25, seed=5)
    J = law.jac(*(X[c] for c in law.inputs), *(law.example[k] for k in law.param_names))
    assert len(J) == len(law.params), f"{law.name}: jacobian must give one entry per parameter"
    for j, p in enumerate(law.params):
        v = float(law.example[p.name])
        if p.log:   # d f / d ln p = p d f / d p
            h = 1e-6
            up, down = v * np.exp(h), v * np.exp(-h)
            want_scale = v
        else:
            h = 1e-6 * max(abs(v), 1e-3)
            up, down = v + h, v - h
            want_scale = 1.0
        fu = np.asarray(law.evaluate(X, {**law.example, p.name: up}), dtype=float)
        fd = np.asarray(law.evaluate(X, {**law.example, p.name: down}), dtype=float)
        fdiff = (fu - fd) / (2 * h) * np.ones(25)
        got = np.asarray(J[j], dtype=float) * want_scale * np.ones(25)
        scale = np.max(np.abs(fdiff)) + 1e-12
        np.testing.assert_allclose(got, fdiff, rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=f"{law.name}: d/d{p.name} disagrees with finite differences")


@pytest.mark.parametrize("law", LAWS, ids=IDS)
def test_recovers_example_from_noiseless_data(law):
    needs_contract(law)
    X = sample_inputs(law, seed=4)
    y = np.asarray(law.evaluate(X, law.example)) * np.ones(N_POINTS)
    df = pd.DataFrame({**X, law.target: y})
    df.attrs["source"] = f"synthetic {law.name}"
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = {k: law.example[k] for k in CONTRACT_FIXED.get(law.name, ()) if k in law.example}
        f = fit(law, df, n_jobs=1, fixed=fixed or None)
    took = time.perf_counter() - t0
    assert took < FIT_SECONDS, f"{law.name}: fit took {took:.1f}s"
    if law.name in PREDICTION_ONLY:
        Xw = sample_inputs(law, n=200, seed=5, widen=1.5)
        a = law.evaluate(Xw, f.params)
        b = law.evaluate(Xw, law.example)
        np.testing.assert_allclose(a, b, rtol=PRED_RTOL, err_msg=f"{law.name}: predictions differ")
        return
    for k, v in law.example.items():
        got = f.params[k]
        tol = PARAM_RTOL * max(abs(v), 1e-12) + (1e-6 if v == 0 else 0)
        assert abs(got - v) <= tol, f"{law.name}: {k} = {got:.6g}, expected {v:.6g} (fit: {f.params})"


def _mid(law, c):
    lo, hi = law.domain[c]
    return float(np.sqrt(lo * hi)) if lo > 0 else 0.5 * (lo + hi)


OPTIMA = [law for law in LAWS if law.optimum is not None]


def test_every_allocation_law_declares_an_optimum():
    names = {law.name for law in OPTIMA}
    assert {"chinchilla", "overtrain", "data_constrained"} <= names


@pytest.mark.parametrize("law", OPTIMA, ids=[law.name for law in OPTIMA])
def test_optimum_is_an_argmin(law):
    needs_contract(law)
    if not {"N", "D"} <= set(law.inputs) or "compute" not in law.optimum_args:
        pytest.skip("contract only knows compute-budget optima over (N, D)")
    C = 6.0 * _mid(law, "N") * _mid(law, "D")
    given = {"compute": C}
    others = {}
    for a in law.optimum_args:
        if a == "compute":
            continue
        if a not in law.inputs:
            pytest.skip(f"optimum argument {a!r} is not an input; the contract cannot pick a value")
        given[a] = others[a] = _mid(law, a)
    for c in law.inputs:
        if c not in ("N", "D") and c not in others:
            pytest.skip(f"input {c!r} is not an optimum argument; the contract cannot pick a value")
    opt = law.optimum(law.example, **given)
    N0, D0 = float(opt["N_opt"]), float(opt["D_opt"])
    assert N0 * D0 * 6.0 == pytest.approx(C, rel=1e-6), f"{law.name}: optimum does not spend the budget"

    def value(N):
        X = {"N": np.atleast_1d(N), "D": C / (6.0 * np.atleast_1d(N)), **{k: np.atleast_1d(v) for k, v in others.items()}}
        return np.asarray(law.evaluate(X, law.example), dtype=float)

    best = float(value(N0)[0])
    if "loss" in opt:
        assert float(opt["loss"]) == pytest.approx(best, rel=1e-9)
    factors = np.array([0.5, 0.8, 0.95, 0.99, 1.01, 1.05, 1.25, 2.0])
    assert np.all(value(N0 * factors) >= best - 1e-12 * abs(best)), f"{law.name}: a nearby allocation is better"


@pytest.mark.parametrize("law", [l for l in LAWS if l.inverse is not None],
                         ids=[l.name for l in LAWS if l.inverse is not None])
def test_inverse_inverts(law):
    needs_contract(law)
    X = sample_inputs(law, n=40, seed=6)
    y = np.asarray(law.evaluate(X, law.example)) * np.ones(40)
    others = {c: X[c] for c in law.inputs if c != law.inverse_of}
    if law.inverse_of == law.target:
        pytest.skip("inverse of the target")
    x = np.asarray(law.inverse(y, law.example, **others), dtype=float)
    ok = np.isfinite(x)
    assert ok.mean() > 0.9, f"{law.name}: inverse undefined at most domain points"
    np.testing.assert_allclose(x[ok], X[law.inverse_of][ok], rtol=1e-6)


LINEAR_LAWS = [law for law in LAWS if law.linear]


def test_the_linear_laws_are_declared():
    assert {"chinchilla", "compute", "vocab", "finetune", "parallel", "density_loss"} <= {l.name for l in LINEAR_LAWS}


@pytest.mark.parametrize("law", LINEAR_LAWS, ids=[law.name for law in LINEAR_LAWS])
def test_declared_linear_parameters_are_affine(law):
    """Variable projection (scalelaw/varpro.py) trusts ``linear``: f must be g0 + sum_j c_j g_j
    with g free of the c_j, for any values of them (checked at random values on the domain)."""
    needs_contract(law)
    X = sample_inputs(law, n=30, seed=7)
    rng = np.random.default_rng(8)
    zero = {**law.example, **{n: 0.0 for n in law.linear}}
    g0 = np.asarray(law.evaluate(X, zero)) * np.ones(30)
    G = [np.asarray(law.evaluate(X, {**zero, n: 1.0})) - g0 for n in law.linear]
    for _ in range(3):
        c = {n: float(rng.uniform(0.1, 3.0)) * max(abs(law.example[n]), 1.0) for n in law.linear}
        got = np.asarray(law.evaluate(X, {**law.example, **c})) * np.ones(30)
        want = g0 + sum(c[n] * g for n, g in zip(law.linear, G))
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.max(np.abs(want)))
