"""The vocabulary, mixture-of-experts, fine-tuning and parallel-scaling laws: their published
structure, published values where the authors give them, and recovery of known parameters."""
import warnings

import numpy as np
import pandas as pd
import pytest

from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.schema import normalize, validate


def _noisy_table(law, X, params, sd, seed=0):
    rng = np.random.default_rng(seed)
    y = np.asarray(law.evaluate(X, params)) * np.exp(sd * rng.standard_normal(len(next(iter(X.values())))))
    df = pd.DataFrame({**X, law.target: y})
    df.attrs["source"] = f"synthetic {law.name}"
    return df


def test_new_inputs_are_canonical_columns_with_aliases():
    df = normalize(pd.DataFrame({"params": [1e8, 2e8], "tokens": [1e9, 2e9], "vocab_size": [32000, 65536],
                                 "num_experts": [1, 8], "parallel_size": [1, 4], "loss": [3.0, 2.9]}))
    assert {"V", "experts", "P"} <= set(df.columns)
    validate(df)
    bad = normalize(pd.DataFrame({"N": [1e8], "D": [1e9], "loss": [3.0], "P": [0]}))
    with pytest.raises(ScalelawError, match="column P holds 0"):
        validate(bad)


def test_vocab_is_chinchilla_plus_a_vocabulary_term():
    v = get_law("vocab")
    c = get_law("chinchilla")
    p = v.example
    X = {"N": np.array([1e8, 1e9]), "D": np.array([1e10, 1e11]), "V": np.array([32000.0, 32000.0])}
    got = v.evaluate(X, p)
    want = c.evaluate(X, {"E": p["E"] + p["B"] * 32000.0 ** -p["beta"], "A": p["A"], "B": p["C"],
                          "alpha": p["alpha"], "beta": p["gamma"]})
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # a larger vocabulary lowers the loss, with diminishing returns
    L = v.evaluate({"N": 1e9, "D": 1e11, "V": np.array([8e3, 32e3, 128e3])}, p)
    assert L[0] > L[1] > L[2] and (L[0] - L[1]) > (L[1] - L[2])


def test_vocab_accepts_a_negative_unigram_normalised_target():
    """Tao et al.'s L_u is negative: E is not sign-constrained, and lsq fits it."""
    law = get_law("vocab")
    truth = dict(law.example, E=-5.5)
    rng = np.random.default_rng(1)
    X = {"N": np.exp(rng.uniform(np.log(3e7), np.log(3e9), 80)), "V": np.exp(rng.uniform(np.log(4e3), np.log(5e5), 80)),
         "D": np.exp(rng.uniform(np.log(1e9), np.log(1e12), 80))}
    df = pd.DataFrame({**X, "loss": law.evaluate(X, truth)})
    assert (df["loss"] < 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit(law, df, objective="lsq", n_jobs=1)
    assert f.params["E"] == pytest.approx(-5.5, rel=1e-3)


def test_moe_saturating_expert_count():
    law = get_law("moe")
    p = law.example
    from scalelaw.laws.architecture import _moe_parts
    _, _, _, q = _moe_parts(np.array([1.0, 1e9]), p["E_start"], p["E_max"])
    # the dense model (E = 1) sits at E^ = E_start; infinitely many experts saturate at E_max
    np.testing.assert_allclose(1.0 / q, [p["E_start"], p["E_max"]], rtol=1e-6)
    # log-bilinear: at a fixed expert count, log10 L is linear in log10 N with slope a + c log10 E^
    N = np.array([1e7, 1e8, 1e9])
    for E in (1.0, 64.0):
        lg = np.log10(law.evaluate({"N": N, "experts": np.full(3, E)}, p))
        ehat = 1.0 / _moe_parts(E, p["E_start"], p["E_max"])[3]
        np.testing.assert_allclose(np.diff(lg) / np.diff(np.log10(N)), p["a"] + p["c"] * np.log10(ehat), rtol=1e-9)
    # more experts help, less as they approach E_max
    L = law.evaluate({"N": np.full(4, 1e8), "experts": np.array([1.0, 8.0, 64.0, 512.0])}, p)
    assert np.all(np.diff(L) < 0)
    assert (L[0] - L[1]) / 3 > (L[2] - L[3]) / 3


def test_moe_recovers_known_parameters_from_noisy_runs():
    law = get_law("moe")
    rows = [(N, E) for N in (1.5e7, 2.5e7, 1.3e8, 3.7e8, 1.3e9) for E in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)]
    X = {"N": np.array([r[0] for r in rows]), "experts": np.array([r[1] for r in rows], dtype=float)}
    df = _noisy_table(law, X, law.example, 0.002)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit(law, df, n_jobs=1)
    for k in ("a", "b", "d"):
        assert f.params[k] == pytest.approx(law.example[k], abs=0.01), k
    assert f.params["c"] == pytest.approx(law.example["c"], abs=0.003)


def test_finetune_rectified_law_has_a_pre_power_phase_and_recovers_parameters():
    law = get_law("finetune")
    p = law.example
    D = np.exp(np.linspace(np.log(1e3), np.log(1e8), 30))
    y = law.evaluate({"D": D}, p)
    # small D: flatter than the power law it approaches at large D (D_l dominates D^beta)
    slope = np.diff(np.log(y - p["E"])) / np.diff(np.log(D))
    assert slope[0] > -0.5 * p["beta"] and slope[-1] == pytest.approx(-p["beta"], rel=0.05)
    df = _noisy_table(law, {"D": D}, p, 0.001, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit(law, df, n_jobs=1)
    assert f.params["beta"] == pytest.approx(p["beta"], rel=0.05)
    assert f.params["E"] == pytest.approx(p["E"], rel=0.02)
    # inverse: data needed for a loss
    np.testing.assert_allclose(law.inverse(y[5:10], p), D[5:10], rtol=1e-8)


def test_parallel_streams_act_as_a_larger_model_published_equivalents():
    """ParScale's visualisation (huggingface.co/spaces/ParScale/Parallel_Scaling_Law, Stack-V2-Python
    fit): a 2.8B model with P=4 matches a 4.33B model with P=1, 3.4B with P=2 and 2.38B with P=8.
    The law makes each equivalence N (k ln P + 1) = const; the three published sizes pin k = 0.394
    and agree with each other to the rounding of the figures."""
    law = get_law("parallel")
    from scalelaw.laws.architecture import _parallel_equivalent_n
    k = (4.33 / 2.8 - 1.0) / np.log(4.0)
    p = dict(law.example, k=k)
    target = _parallel_equivalent_n(p, 2.8e9, 4.0)
    assert target == pytest.approx(4.33e9, rel=1e-9)
    for P, published in ((2.0, 3.4e9), (8.0, 2.38e9)):
        N = target / (k * np.log(P) + 1.0)
        assert N == pytest.approx(published, rel=0.005)
        np.testing.assert_allclose(law.evaluate({"N": N, "P": P}, p), law.evaluate({"N": 4.33e9, "P": 1.0}, p),
                                   rtol=1e-12)
    assert law.derived["size_gain_P8"](p) == pytest.approx(4.33 / 2.38, rel=0.005)
