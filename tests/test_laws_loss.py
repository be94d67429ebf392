"""Published constants of the loss laws reproduce the published check points (4 significant digits)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalelaw.analysis.trajectory import b_crit, check_reference_values
from scalelaw.fit import fit
from scalelaw.law import get_law
from scalelaw.result import load_fit

ROOT = Path(__file__).resolve().parents[1]


def sig4(x):
    return float(f"{x:.4g}")


def test_kaplan_n_check_point():
    law = get_law("kaplan_n")
    assert sig4(law.evaluate({"N_nonembed": 1e9}, law.published["kaplan-2020-n"])[()]) == 2.376  # 2.3756
    assert float(law.evaluate({"N_nonembed": 1e9}, law.published["kaplan-2020-n"])) == pytest.approx(2.3756, abs=5e-5)


def test_kaplan_nd_check_point():
    law = get_law("kaplan_nd")
    v = float(law.evaluate({"N_nonembed": 1e9, "D": 1e10}, law.published["kaplan-2020-nd"]))
    assert v == pytest.approx(2.4197, abs=5e-5)


def test_kaplan_nd_reduces_to_kaplan_n_with_infinite_data():
    p = get_law("kaplan_nd").published["kaplan-2020-nd"]
    v = float(get_law("kaplan_nd").evaluate({"N_nonembed": 1e9, "D": 1e30}, p))
    w = float(get_law("kaplan_n").evaluate({"N_nonembed": 1e9}, {"Nc": p["Nc"], "alpha_N": p["alpha_N"]}))
    assert v == pytest.approx(w, rel=1e-9)


def test_critical_batch_check_point():
    assert sig4(b_crit(3.0, 2.1e8, 0.21)) == 1.123e6
    assert b_crit(3.0) == pytest.approx(1.1226e6, rel=1e-4)


@pytest.mark.parametrize("N, D, U, want", [(6.34e9, 242e9, 25e9, 2.22564), (8.67e9, 178e9, 25e9, 2.22696)])
def test_data_constrained_check_points(N, D, U, want):
    law = get_law("data_constrained")
    v = float(law.evaluate({"N": N, "D": D, "U": U}, law.published["muennighoff-2023"]))
    assert v == pytest.approx(want, abs=5e-6)


def test_data_constrained_reduces_to_chinchilla_without_repetition():
    """With U = D (one epoch) and N below the compute-optimal size for U, it is Chinchilla."""
    dc = get_law("data_constrained")
    p = dc.published["muennighoff-2023"]
    N, D = np.array([1e8, 3e8]), np.array([5e10, 1e11])
    a = dc.evaluate({"N": N, "D": D, "U": D}, p)
    b = get_law("chinchilla").evaluate({"N": N, "D": D}, {k: p[k] for k in ("E", "A", "B", "alpha", "beta")})
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_data_constrained_repetition_worth_less():
    dc = get_law("data_constrained")
    p = dc.published["muennighoff-2023"]
    fresh = float(dc.evaluate({"N": 1e9, "D": 4e11, "U": 4e11}, p))
    repeated = float(dc.evaluate({"N": 1e9, "D": 4e11, "U": 1e10}, p))
    assert repeated > fresh


def test_data_constrained_optimum_matches_readme_grid_search():
    dc = get_law("data_constrained")
    out = dc.optimum(dc.published["muennighoff-2023"], compute=6 * 8.67e9 * 178e9, U=25e9)
    assert float(out["D_opt"]) == pytest.approx(227e9, rel=3e-3)    # "227B tokens"
    assert float(out["epochs"]) == pytest.approx(9.1, abs=0.05)      # "9.1 epochs"
    assert float(out["N_opt"]) == pytest.approx(6.8e9, rel=8e-3)    # "6.8B parameters"


def test_data_constrained_optimum_vectorised_over_samples():
    dc = get_law("data_constrained")
    p = dc.published["muennighoff-2023"]
    P = {k: np.full(3, v) for k, v in p.items()}
    P["R_D"] = np.array([5.0, 15.388, 40.0])
    out = dc.optimum(P, compute=1e22, U=25e9)
    assert out["N_opt"].shape == (3,)
    single = dc.optimum({**p, "R_D": 5.0}, compute=1e22, U=25e9)
    assert float(out["N_opt"][0]) == pytest.approx(float(single["N_opt"]), rel=1e-8)
    # more valuable repetitions -> more data, fewer parameters
    assert out["D_opt"][2] > out["D_opt"][0]


def test_published_ready_fits_load_by_name():
    for name, law in [("kaplan-2020-n", "kaplan_n"), ("kaplan-2020-d", "kaplan_d"),
                      ("kaplan-2020-nd", "kaplan_nd"), ("kaplan-2020-curve", "kaplan_curve"),
                      ("muennighoff-2023", "data_constrained")]:
        f = load_fit(name)
        assert f.law.name == law


def test_bnsl_limits():
    law = get_law("bnsl")
    p = dict(law.example)
    x = np.array([1e10, 1e30])
    y = law.evaluate({"C": x}, p)
    # far below the break: a + b x^-c0; far above: slope c0 + c1
    assert float(y[0]) == pytest.approx(p["a"] + p["b"] * 1e10 ** -p["c0"], rel=1e-6)
    hi = p["b"] * 1e30 ** -p["c0"] * (1e30 / p["d1"]) ** -p["c1"]
    assert float(y[1]) == pytest.approx(p["a"] + hi, rel=1e-6)
    # one break with c1 = 0 is a plain power law
    assert float(law.evaluate({"C": 1e21}, {**p, "c1": 0.0})) == pytest.approx(p["a"] + p["b"] * 1e21 ** -p["c0"])


def test_bnsl_fits_noisy_data_on_another_column():
    """The C column can be any x (mapped with --map); the fit lands close on noisy data."""
    law = get_law("bnsl")
    rng = np.random.default_rng(0)
    x = np.geomspace(1e17, 1e23, 40)
    y = law.evaluate({"C": x}, law.example) * np.exp(rng.normal(0, 0.003, x.size))
    f = fit(law, pd.DataFrame({"C": x, "loss": y}), n_jobs=1)
    assert f.diagnostics["converged"]
    pred = law.evaluate({"C": x}, f.params)
    assert np.max(np.abs(np.log(pred / law.evaluate({"C": x}, law.example)))) < 0.01


def test_reference_values_file_holds_and_detects_drift(tmp_path):
    path = ROOT / "fits" / "reference-values.json"
    assert check_reference_values(path) == []
    d = json.loads(path.read_text())
    d["checks"][0]["expect"] = 2.40
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    msgs = check_reference_values(bad)
    assert len(msgs) == 1 and "Kaplan L(N)" in msgs[0] and "expected 2.4" in msgs[0]


def test_reference_values_via_scalelaw_check():
    from scalelaw.check import check_file
    assert check_file(ROOT / "fits" / "reference-values.json") == []


def test_data_constrained_fit_with_exponents_fixed_as_muennighoff():
    """Muennighoff et al. tie alpha = beta; holding both at their value recovers the rest."""
    law = get_law("data_constrained")
    p = law.published["muennighoff-2023"]
    rng = np.random.default_rng(0)
    n = 80
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), n))
    U = np.minimum(D, np.exp(rng.uniform(np.log(1e8), np.log(1e11), n)))
    y = law.evaluate({"N": N, "D": D, "U": U}, p)
    f = fit(law, pd.DataFrame({"N": N, "D": D, "U": U, "loss": y}), n_jobs=1,
            fixed={"alpha": p["alpha"], "beta": p["beta"]})
    assert f.free == ("E", "A", "B", "R_D", "R_N")
    for k in f.free:
        assert f.params[k] == pytest.approx(p[k], rel=1e-3), k
