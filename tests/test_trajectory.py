"""Loss trajectories at any batch size and the steps/tokens to reach a loss."""
import numpy as np
import pytest

from scalelaw.analysis import trajectory as tj
from scalelaw.errors import ScalelawError
from scalelaw.law import get_law
from scalelaw.result import published_fit

CURVE = get_law("kaplan_curve").published["kaplan-2020-curve"]


def test_b_crit_defaults_are_kaplans():
    assert tj.b_crit(3.0) == pytest.approx(1.1226e6, rel=1e-4)
    np.testing.assert_allclose(tj.b_crit(np.array([2.0, 3.0])), 2.1e8 / np.array([2.0, 3.0]) ** (1 / 0.21))


def test_b_crit_accepts_a_critical_batch_fit():
    f = published_fit("kaplan-2020-bcrit")
    assert tj.b_crit(3.0, f, None) == pytest.approx(tj.b_crit(3.0))


def test_loss_curve_solves_the_implicit_equation():
    N, B = 1e8, 5e5
    S = np.geomspace(1e3, 1e6, 25)
    L = tj.loss_curve(N, S, B, CURVE)
    smin = tj.s_min(S, B, L)
    rhs = get_law("kaplan_curve").evaluate({"N_nonembed": N, "S_min": smin}, CURVE)
    np.testing.assert_allclose(L, rhs, rtol=1e-12)
    assert np.all(np.diff(L) < 0)                        # more steps, lower loss
    floor = (CURVE["Nc"] / N) ** CURVE["alpha_N"]
    assert np.all(L > floor)


def test_steps_to_loss_inverts_loss_curve_at_any_batch():
    S = np.array([2e3, 3e4, 5e5])
    for B in (1e5, 1e6, 1e8):
        L = tj.loss_curve(3e8, S, B, CURVE)
        np.testing.assert_allclose(tj.steps_to_loss(L, 3e8, B, CURVE), S, rtol=1e-9)
        np.testing.assert_allclose(tj.tokens_to_loss(L, 3e8, B, CURVE), S * B, rtol=1e-9)


def test_batch_size_trades_steps_for_tokens():
    """Huge batches approach S_min steps; tiny batches approach E_min tokens (Kaplan eq. 5.4)."""
    L, N = 3.2, 1e9
    smin = tj.min_steps_to_loss(L, N, CURVE)
    emin = tj.tokens_to_loss(L, N, None, CURVE)
    assert emin == pytest.approx(float(smin) * tj.b_crit(L))
    assert tj.steps_to_loss(L, N, 1e12, CURVE) == pytest.approx(float(smin), rel=1e-5)
    assert tj.tokens_to_loss(L, N, 1e2, CURVE) == pytest.approx(emin, rel=1e-3)
    # at B = B_crit, twice the minimal steps and twice the minimal tokens
    bc = tj.b_crit(L)
    assert tj.steps_to_loss(L, N, bc, CURVE) == pytest.approx(2 * float(smin))
    assert tj.tokens_to_loss(L, N, bc, CURVE) == pytest.approx(2 * emin)


def test_unreachable_loss_is_infinite():
    floor = (CURVE["Nc"] / 1e8) ** CURVE["alpha_N"]
    assert np.isinf(tj.steps_to_loss(floor * 0.99, 1e8, 1e6, CURVE))


def test_bad_parameters_are_user_errors():
    with pytest.raises(ScalelawError, match="Sc"):
        tj.loss_curve(1e8, 1e4, 1e6, {"Nc": 1.0, "alpha_N": 0.1, "alpha_S": 0.7})
    with pytest.raises(ScalelawError, match="batch_tokens"):
        tj.loss_curve(1e8, 1e4, 0.0, CURVE)


def test_fit_objects_work_as_parameters():
    f = published_fit("kaplan-2020-curve")
    a = tj.loss_curve(1e8, 1e4, 1e6, f, published_fit("kaplan-2020-bcrit"), None)
    b = tj.loss_curve(1e8, 1e4, 1e6, CURVE)
    assert a == pytest.approx(b, rel=1e-12)


def test_su_pipeline_recovers_curve_and_predicts_another_batch():
    """Su et al. 2024 workflow on synthetic runs from known constants: B_crit(L) from steps to
    reach loss levels at several batches, S_min per curve point, the kaplan_curve fit, then the
    whole curve at a batch size never trained."""
    import pandas as pd
    from scalelaw.fit import fit

    sizes, batches = [2e6, 8e6, 3e7, 1e8], [6.5e4, 2.6e5, 1e6, 4e6]
    # 1) steps to reach fixed loss levels at several batches (the critical-batch experiment)
    levels = [4.2, 4.6, 5.0, 5.5]
    rows = [{"loss": L, "batch_tokens": B, "steps": tj.steps_to_loss(L, 1e8, B, CURVE)}
            for L in levels for B in batches]
    crit = fit("critical_batch", pd.DataFrame(rows), n_jobs=1)
    assert crit.params["B_star"] == pytest.approx(2.1e8, rel=1e-6)
    assert crit.params["alpha_B"] == pytest.approx(0.21, rel=1e-6)
    # 2) learning curves of several sizes and batches -> S_min -> kaplan_curve
    pts = []
    for N in sizes:
        for B in batches[:2]:
            S = np.geomspace(2e3, 2e5, 8)
            for s_, L in zip(S, tj.loss_curve(N, S, B, CURVE)):
                pts.append({"N_nonembed": N, "batch_tokens": B, "steps": s_, "loss": L})
    curves = tj.add_s_min(pd.DataFrame(pts), crit, None)
    f = fit("kaplan_curve", curves, n_jobs=1)
    for k, v in CURVE.items():
        assert f.params[k] == pytest.approx(v, rel=1e-4), k
    # 3) predict the whole curve at an untrained batch size
    S = np.geomspace(1e3, 1e6, 9)
    np.testing.assert_allclose(tj.loss_curve(5e7, S, 3e6, f, crit, None),
                               tj.loss_curve(5e7, S, 3e6, CURVE), rtol=1e-5)


def test_add_s_min_needs_columns():
    import pandas as pd
    with pytest.raises(ScalelawError, match="steps"):
        tj.add_s_min(pd.DataFrame({"loss": [3.0], "batch_tokens": [1e6]}))


def test_b_crit_parameters_are_never_silently_mixed():
    f = published_fit("kaplan-2020-bcrit")
    assert tj.b_crit(3.0, f) == pytest.approx(tj.b_crit(3.0))
    with pytest.raises(ScalelawError, match="not both"):
        tj.b_crit(3.0, f, 0.3)
    with pytest.raises(ScalelawError, match="without alpha_B"):
        tj.b_crit(3.0, 1e8)
    assert tj.b_crit(3.0, 1e8, 0.3) == pytest.approx(1e8 / 3.0 ** (1 / 0.3))


def test_kaplan_trajectory_law_matches_loss_curve_and_fits_all_six():
    """The joint law: curve points at two batch sizes determine all six constants."""
    import pandas as pd
    from scalelaw.fit import fit
    law = get_law("kaplan_trajectory")
    truth = law.published["kaplan-2020-trajectory"]
    rows = []
    for N in (3e6, 2e7, 1e8):
        for B in (1e5, 2e6):
            S = np.geomspace(1e3, 1e5, 10)
            L = law.evaluate({"N_nonembed": N, "steps": S, "batch_tokens": B}, truth)
            np.testing.assert_allclose(L, tj.loss_curve(N, S, B, CURVE), rtol=1e-13)
            rows += [{"N_nonembed": N, "steps": s_, "batch_tokens": B, "loss": l_} for s_, l_ in zip(S, L)]
    f = fit(law, pd.DataFrame(rows), n_jobs=1)
    for k, v in truth.items():
        assert f.params[k] == pytest.approx(v, rel=1e-4), k
    # the fit carries B_star/alpha_B: trajectory helpers take it alone
    assert tj.steps_to_loss(3.3, 1e8, 5e5, f) == pytest.approx(tj.steps_to_loss(3.3, 1e8, 5e5, CURVE), rel=1e-4)
    assert tj.loss_curve(1e8, 1e4, 5e5, f) == pytest.approx(tj.loss_curve(1e8, 1e4, 5e5, CURVE), rel=1e-6)
