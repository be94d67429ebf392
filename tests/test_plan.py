"""scalelaw.analysis.plan and `scalelaw plan`: split, constraints, inverse, joint intervals,
extrapolation warnings, errors, JSON."""
import dataclasses
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from scalelaw.analysis.plan import format_plan, plan
from scalelaw.errors import ScalelawError
from scalelaw.law import Law, Param, get_law, register
from scalelaw.result import Fit, published_fit

TRUTH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
C_REF = 5.76e23


# ---- test laws (own names, so the test does not depend on other families' modules) -----------
def _lr(N, D, a, b, c):
    return a * N ** b * D ** c


def _bs(D, k, e):
    return k * D ** e


def _err(loss, eps, k, gamma):
    return eps - k * np.exp(-gamma * loss)


LR = Law("_test_lr_opt", _lr, inputs=("N", "D"), target="lr",
         params=(Param("a", 0, 1e3), Param("b", -3, 3), Param("c", -3, 3)))
BS = Law("_test_bs_opt", _bs, inputs=("D",), target="batch_tokens", params=(Param("k", 0, 1e3), Param("e", 0, 2)))
ERR = Law("_test_err", _err, inputs=("loss",), target="err_avg", family="downstream",
          params=(Param("eps", 0, 1), Param("k", 0, 10), Param("gamma", 0, 5)))
NOOPT = dataclasses.replace(get_law("chinchilla"), name="_test_chinchilla_numeric", optimum=None, published={},
                            optimum_args=())
_TEMP = []


def _register(law):
    """Register a test law for this module only (the registry is global: other tests list it)."""
    register(law, replace=True)
    _TEMP.append(law.name)
    return law


@pytest.fixture(scope="module", autouse=True)
def _test_laws():
    for law in (LR, BS, ERR, NOOPT):
        _register(law)
    yield
    from scalelaw.law import _REGISTRY

    for name in _TEMP:
        _REGISTRY.pop(name, None)


def _fake_fit(law, params, rel_sd=0.02, k=400, seed=0, ranges=None):
    """A Fit with bootstrap-like samples around ``params`` (no fitting: fast and deterministic)."""
    law = get_law(law)
    rng = np.random.default_rng(seed)
    names = law.param_names
    boot = np.array([[params[n] * (1 + rel_sd * rng.standard_normal()) for n in names] for _ in range(k)])
    return Fit(law=law, params=dict(params), free=names, boot=boot, level=0.95,
               input_ranges=ranges or {}, diagnostics={"converged": True, "residual_sd": 0.01})


@pytest.fixture(scope="module")
def loss_fit():
    return _fake_fit("chinchilla", TRUTH, rel_sd=0.01, ranges={"N": [2e7, 1e9], "D": [4e8, 8e10], "loss": [2.3, 5]})


@pytest.fixture(scope="module")
def lr_fit():
    return _fake_fit(LR, {"a": 1.79, "b": -0.713, "c": 0.307}, rel_sd=0.01, seed=1,
                     ranges={"N": [6e7, 1e9], "D": [2e9, 1e11]})


@pytest.fixture(scope="module")
def bs_fit():
    return _fake_fit(BS, {"k": 0.58, "e": 0.571}, rel_sd=0.01, seed=2, ranges={"D": [2e9, 1e11]})


@pytest.fixture(scope="module")
def err_fit():
    return _fake_fit(ERR, {"eps": 0.857, "k": 2.2065, "gamma": 0.7146}, rel_sd=0.01, seed=3,
                     ranges={"loss": [2.4, 4.0]})


# ---- the split ----------------------------------------------------------------------------------
def test_published_epoch_optimum_matches_reference():
    r = plan(compute=C_REF, loss_fit=published_fit("epoch-2024"))
    assert r["N"] == pytest.approx(7.225e10, rel=1e-3)
    assert r["D"] == pytest.approx(1.329e12, rel=1e-3)
    assert r["loss"] == pytest.approx(1.9744, abs=5e-4)  # the circulating 1.9744 is rounded off (the law gives 1.97414)
    assert r["C"] == C_REF and r["mode"] == "compute-optimal"
    assert r["N_lower"] is None and r["loss_upper"] is None     # published constants: no intervals
    assert any("no fitted range" in w for w in r["warnings"])
    assert r["max_extrapolation"] is None                       # cannot be judged, not 1.0 ("inside")


def test_optimum_and_intervals_equal_fit_optimum(loss_fit):
    r = plan(compute=C_REF, loss_fit=loss_fit)
    o = loss_fit.optimum(compute=C_REF)
    for k, ko in (("N", "N_opt"), ("D", "D_opt"), ("loss", "loss")):
        assert r[k] == pytest.approx(o[ko], rel=1e-12)
        assert r[f"{k}_lower"] == pytest.approx(o[f"{ko}_lower"], rel=1e-12)
        assert r[f"{k}_upper"] == pytest.approx(o[f"{ko}_upper"], rel=1e-12)
    assert r["N"] * r["D"] * 6 == pytest.approx(C_REF, rel=1e-12)
    assert r["N_lower"] < r["N"] < r["N_upper"]
    assert r["samples"] == 400


@pytest.mark.parametrize("C", [1e19, 1e22, C_REF])
def test_numeric_split_agrees_with_closed_form(loss_fit, C):
    num = dataclasses.replace(loss_fit, law=NOOPT)
    a, b = plan(compute=C, loss_fit=loss_fit), plan(compute=C, loss_fit=num)
    for k in ("N", "D", "loss", "N_lower", "N_upper", "loss_lower", "loss_upper"):
        assert b[k] == pytest.approx(a[k], rel=2e-6), k


def test_constrained_splits(loss_fit):
    r = plan(compute=C_REF, loss_fit=loss_fit, tokens_per_param=20)
    assert r["N"] == pytest.approx(math.sqrt(C_REF / 120), rel=1e-12)
    assert r["D"] == pytest.approx(20 * r["N"], rel=1e-12)
    assert r["N_lower"] == pytest.approx(r["N"]) and r["mode"] == "tokens_per_param"
    law = get_law("chinchilla")
    assert r["loss"] == pytest.approx(float(law.evaluate({"N": r["N"], "D": r["D"]}, TRUTH)), rel=1e-12)
    p = plan(compute=C_REF, loss_fit=loss_fit, params=7e10)
    assert p["N"] == 7e10 and p["D"] == pytest.approx(C_REF / 4.2e11)
    # the compute-optimal split is never worse than a constrained one
    opt = plan(compute=C_REF, loss_fit=loss_fit)
    assert opt["loss"] <= min(r["loss"], p["loss"]) + 1e-12


def test_inverse_round_trips(loss_fit):
    inv = plan(target_loss=2.05, loss_fit=loss_fit)
    assert inv["target_loss"] == 2.05
    fwd = plan(compute=inv["C"], loss_fit=loss_fit)
    assert fwd["loss"] == pytest.approx(2.05, rel=1e-8)
    assert inv["C_lower"] < inv["C"] < inv["C_upper"]
    assert inv["N"] == pytest.approx(fwd["N"], rel=1e-8)
    # constrained inverse
    inv20 = plan(target_loss=2.05, loss_fit=loss_fit, tokens_per_param=200)
    assert plan(compute=inv20["C"], loss_fit=loss_fit, tokens_per_param=200)["loss"] == pytest.approx(2.05, rel=1e-8)
    assert inv20["C"] > inv["C"]


def test_given_values_are_not_estimates(loss_fit):
    """docs/plan.md: <name>_lower/_upper are null without uncertainty. What the user gave (the target
    loss, the budget, a ratio or a model size) is not estimated: null, with or without draws."""
    pub = plan(target_loss=2.0, loss_fit=published_fit("epoch-2024"))
    assert pub["loss"] == 2.0 and pub["loss_lower"] is None and pub["loss_upper"] is None
    assert all(pub[f"{k}_lower"] is None and pub[f"{k}_upper"] is None for k in ("C", "N", "D", "tokens_per_param"))
    inv = plan(target_loss=2.05, loss_fit=loss_fit)
    assert inv["loss"] == 2.05 and inv["loss_lower"] is None and inv["loss_upper"] is None
    assert inv["C_lower"] < inv["C"] < inv["C_upper"]
    fwd = plan(compute=C_REF, loss_fit=loss_fit)
    assert fwd["C"] == C_REF and fwd["C_lower"] is None and fwd["C_upper"] is None
    r = plan(compute=C_REF, loss_fit=loss_fit, tokens_per_param=20)
    assert r["tokens_per_param_lower"] is None and r["N_lower"] == pytest.approx(r["N"])   # N follows exactly
    p = plan(compute=C_REF, loss_fit=loss_fit, params=7e10)
    assert p["N_lower"] is None and p["D_lower"] == pytest.approx(p["D"]) == p["D_upper"]
    d = json.loads(_cli(["plan", "--target-loss", "2.0", "--loss", "epoch-2024", "--json"]).stdout)
    assert d["loss_lower"] is None and d["loss_upper"] is None and "loss_lower" in d


def test_inverse_numeric_law(loss_fit):
    num = dataclasses.replace(loss_fit, law=NOOPT)
    a = plan(target_loss=2.1, loss_fit=loss_fit)
    b = plan(target_loss=2.1, loss_fit=num)
    assert b["C"] == pytest.approx(a["C"], rel=1e-5)


def test_unreachable_target_names_the_floor(loss_fit):
    with pytest.raises(ScalelawError, match="irreducible loss E is 1.817"):
        plan(target_loss=1.5, loss_fit=loss_fit)


# ---- lr, batch, downstream: joint propagation -------------------------------------------------
def test_lr_bs_error_are_laws_at_the_plan(loss_fit, lr_fit, bs_fit, err_fit):
    r = plan(compute=1e21, loss_fit=loss_fit, lr_fit=lr_fit, bs_fit=bs_fit, downstream_fit=err_fit)
    assert r["lr"] == pytest.approx(_lr(r["N"], r["D"], 1.79, -0.713, 0.307), rel=1e-12)
    assert r["batch_tokens"] == pytest.approx(_bs(r["D"], 0.58, 0.571), rel=1e-12)
    assert r["error"] == pytest.approx(_err(r["loss"], 0.857, 2.2065, 0.7146), rel=1e-12)
    for k in ("lr", "batch_tokens", "error"):
        assert r[f"{k}_lower"] < r[k] < r[f"{k}_upper"], k
    # the error interval carries the loss uncertainty too (joint propagation)
    alone = plan(compute=1e21, loss_fit=published_fit("epoch-2024"), downstream_fit=err_fit)
    assert (r["error_upper"] - r["error_lower"]) > 0
    # ... so it is wider than with the same loss fit held exact (its draws removed)
    exact = plan(compute=1e21, loss_fit=dataclasses.replace(loss_fit, boot=None), downstream_fit=err_fit)
    assert exact["error"] == pytest.approx(r["error"], rel=1e-12) and exact["loss_lower"] is None
    assert (r["error_upper"] - r["error_lower"]) > 1.1 * (exact["error_upper"] - exact["error_lower"])
    assert set(r["extrapolation"]) == {"loss", "lr", "batch_tokens", "error"}
    assert alone["error"] == pytest.approx(_err(alone["loss"], 0.857, 2.2065, 0.7146))


def test_bounded_error_interval_is_clipped_with_a_warning():
    """Gadre's reference fits far beyond their runs: the error's raw interval falls below 0."""
    from pathlib import Path

    fits = Path(__file__).resolve().parents[1] / "fits"
    r = plan(compute=1e26, loss_fit=str(fits / "gadre-rpj-loss.json"), downstream_fit=str(fits / "gadre-rpj-err.json"))
    assert r["error_lower"] == 0.0 and 0 < r["error"] < r["error_upper"] <= 1
    assert any(w.startswith("error fit (downstream_exp): the 95% interval of err_avg reaches the bound 0 of [0, 1]")
               and "extrapolated" in w for w in r["warnings"])
    near = plan(compute=1e21, loss_fit=str(fits / "gadre-rpj-loss.json"), downstream_fit=str(fits / "gadre-rpj-err.json"))
    assert near["error_lower"] > 0 and not [w for w in near["warnings"] if "bound" in w]


def test_extrapolation_factors_and_warning(loss_fit, lr_fit):
    r = plan(compute=C_REF, loss_fit=loss_fit, lr_fit=lr_fit)
    assert r["extrapolation"]["loss"]["N"] == pytest.approx(r["N"] / 1e9)
    assert r["max_extrapolation"] >= r["extrapolation"]["loss"]["N"]
    assert any("loss fit (chinchilla): N" in w and "beyond the fitted range" in w for w in r["warnings"])
    small = plan(compute=6 * 3e8 * 6e9, loss_fit=loss_fit, tokens_per_param=20)
    assert small["extrapolation"]["loss"] == {"N": 1.0, "D": 1.0}
    assert not [w for w in small["warnings"] if "beyond" in w]
    quiet = plan(compute=C_REF, loss_fit=loss_fit, warn_factor=1e6)
    assert not [w for w in quiet["warnings"] if "beyond" in w]


def test_compute_only_law_needs_a_constraint_for_lr(lr_fit):
    comp = Fit(law=get_law("compute"), params={"E": 1.7, "A": 300.0, "gamma": 0.12}, free=("E", "A", "gamma"))
    r = plan(compute=1e21, loss_fit=comp)
    assert r["N"] is None and r["loss"] == pytest.approx(1.7 + 300 * 1e21 ** -0.12)
    with pytest.raises(ScalelawError, match="--tokens-per-param"):
        plan(compute=1e21, loss_fit=comp, lr_fit=lr_fit)
    r = plan(compute=1e21, loss_fit=comp, lr_fit=lr_fit, tokens_per_param=20)
    assert r["lr"] > 0


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one of --compute"),
    ({"compute": 1e21, "target_loss": 2.0}, "exactly one of --compute"),
    ({"compute": -1.0}, "--compute must be a positive"),
    ({"compute": 1e21, "tokens_per_param": 20, "params": 1e9}, "at most one of --tokens-per-param"),
    ({"compute": 1e21, "tokens_per_param": 0}, "--tokens-per-param must be a positive"),
    ({"compute": 1e21, "loss_fit": "no-such-fit.json"}, "does not exist"),
])
def test_user_errors(loss_fit, kwargs, match):
    kwargs = dict(kwargs)
    kwargs.setdefault("loss_fit", loss_fit)
    with pytest.raises(ScalelawError, match=match):
        plan(**kwargs)


def test_missing_input_names_at_option(loss_fit):
    law = _register(Law("_test_needs_u", lambda N, D, U, E: E + 0 * N * D * U, inputs=("N", "D", "U"),
                       params=(Param("E", 0, 10),)))
    f = Fit(law=law, params={"E": 2.0}, free=("E",))
    with pytest.raises(ScalelawError, match="--at U="):
        plan(compute=1e21, loss_fit=loss_fit, lr_fit=f)


def test_format_plan_text(loss_fit, lr_fit):
    text = format_plan(plan(compute=C_REF, loss_fit=loss_fit, lr_fit=lr_fit))
    assert "plan for C = 5.76e+23 FLOPs" in text and "lr*" in text and "95% lower" in text
    assert "extrapolation" in text


# ---- CLI ------------------------------------------------------------------------------------------
def _cli(args):
    from scalelaw.cli import main

    return CliRunner().invoke(main, args)


def test_cli_json_has_the_documented_keys(tmp_path, loss_fit, lr_fit, bs_fit, err_fit):
    paths = {}
    for name, f in (("loss", loss_fit), ("lr", lr_fit), ("bs", bs_fit), ("err", err_fit)):
        paths[name] = str(tmp_path / f"{name}.json")
        f.save(paths[name])
    res = _cli(["plan", "--compute", "1e22", "--loss", paths["loss"], "--lr", paths["lr"], "--bs", paths["bs"],
                "--downstream", paths["err"], "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    for k in ("C", "N", "D", "loss", "lr", "batch_tokens", "error"):
        assert k in d and f"{k}_lower" in d and f"{k}_upper" in d, k
    assert d["C"] == 1e22 and d["lr_lower"] < d["lr"] < d["lr_upper"]


def test_cli_text_inverse_and_errors():
    res = _cli(["plan", "--target-loss", "2.0", "--loss", "epoch-2024"])
    assert res.exit_code == 0, res.output
    assert "compute to reach loss 2" in res.stdout
    bad = _cli(["plan", "--compute", "1e21", "--target-loss", "2", "--loss", "epoch-2024"])
    assert bad.exit_code == 2 and "error: give exactly one of --compute" in bad.output
    bad = _cli(["plan", "--compute", "1e21", "--loss", "nope.json"])
    assert bad.exit_code == 2 and "nope.json does not exist" in bad.output


def test_published_names_resolve_by_role(lr_fit):
    """'steplaw-2025' labels both an lr and a batch law: --lr and --bs each get the right one."""
    r = plan(compute=1e22, loss_fit="epoch-2024", lr_fit="steplaw-2025", bs_fit="steplaw-2025")
    assert r["fits"]["lr"]["law"] == "lr_opt" and r["fits"]["batch_tokens"]["law"] == "bs_opt"
    assert r["lr"] == pytest.approx(1.79 * r["N"] ** -0.713 * r["D"] ** 0.307, rel=1e-9)
    assert r["loss_lower"] is None              # the published loss fit has no uncertainty
    mixed = plan(compute=1e22, loss_fit="epoch-2024", lr_fit=lr_fit)
    assert mixed["lr_lower"] < mixed["lr"] < mixed["lr_upper"] and mixed["N_lower"] is None
    assert any("treat it as exact" in w for w in mixed["warnings"])


def test_optimum_with_further_arguments_and_kaplan_convention():
    dc = get_law("data_constrained")
    f = Fit(law=dc, params={k: float(v) for k, v in dc.published["muennighoff-2023"].items()}, free=dc.param_names)
    with pytest.raises(ScalelawError, match="--at U="):
        plan(compute=1e22, loss_fit=f)
    r = plan(compute=1e22, loss_fit=f, at={"U": 1e11})
    o = f.optimum(compute=1e22, U=1e11)
    assert r["N"] == pytest.approx(o["N_opt"], rel=1e-9) and r["loss"] == pytest.approx(o["loss"], rel=1e-9)
    k = plan(compute=1e21, loss_fit="kaplan-2020-nd", tokens_per_param=20)
    assert any("N_nonembed" in w for w in k["warnings"])
    assert k["N_lower"] == k["N"]            # a constrained split is exact


def test_batch_law_on_the_loss(loss_fit):
    """A batch law may read the predicted loss (Kaplan's critical batch B_crit(L))."""
    crit = _register(Law("_test_bcrit", lambda loss, B_star, a: B_star / loss ** (1 / a), inputs=("loss",),
                        target="batch_tokens", params=(Param("B_star", 0, 1e12), Param("a", 0, 2))))
    bf = _fake_fit(crit, {"B_star": 2.1e8, "a": 0.21}, rel_sd=0.0, seed=5)
    r = plan(compute=1e21, loss_fit=loss_fit, bs_fit=bf)
    assert r["batch_tokens"] == pytest.approx(2.1e8 / r["loss"] ** (1 / 0.21), rel=1e-12)
    assert r["batch_tokens_lower"] < r["batch_tokens"] < r["batch_tokens_upper"]   # from the loss draws


def test_format_plan_marks_missing_intervals_like_the_other_verbs():
    """A value without an interval reads '-' in its interval columns, as in `scalelaw predict`."""
    text = format_plan(plan(compute=1e22, loss_fit="epoch-2024"))
    row = next(line for line in text.splitlines() if line.strip().startswith("loss"))
    assert row.split()[1:] == [row.split()[1], "-", "-"] and "NaN" not in text
