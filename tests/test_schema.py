"""The canonical run table: aliases, mapping, units, C convention, validation messages."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from scalelaw.errors import ScalelawError
from scalelaw.schema import PF_DAY, normalize, parse_units, summarize, validate


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def test_aliases_case_insensitive():
    df = pd.DataFrame({"Model Size": [1e8, 2e8], "Tokens_Seen": [2e9, 4e9], "Training FLOP": [1.2e18, 4.8e18],
                       "NON_EMBEDDING_PARAMS": [9e7, 1.9e8], "learning_rate": [1e-3, 1e-3], "Name": ["a", "b"],
                       "val_loss": [3.0, 2.8], "train_loss": [2.9, 2.7], "err_arc": [0.5, 0.4], "mix_web": [1, 1],
                       "score_mmlu": [0.3, 0.4], "hp_wd": [0.1, 0.1], "notes": ["x", "y"]})
    out = normalize(df, source="t.csv")
    assert {"N", "D", "C", "N_nonembed", "lr", "run", "loss", "loss_train"} <= set(out.columns)
    assert {"err_arc", "mix_web", "score_mmlu", "hp_wd", "notes"} <= set(out.columns)
    assert out["loss"].tolist() == [3.0, 2.8] and out.attrs["loss_column"] == "val_loss"
    assert out.attrs["C_convention"] == "given"
    validate(out)


def test_params_alias_and_6nd():
    out = normalize(pd.DataFrame({"params": [1e8], "tokens": [2e9], "eval_loss": [3.0]}))
    assert out["C"].iloc[0] == pytest.approx(6 * 1e8 * 2e9)
    assert out.attrs["C_convention"] == "6ND"
    assert "loss" in out.columns


def test_mapping_overrides_alias():
    df = pd.DataFrame({"params": [1.0], "my_n": [5e8], "D": [1e10], "loss": [2.0]})
    out = normalize(df, mapping={"N": "my_n"})
    assert out["N"].iloc[0] == 5e8 and "params" in out.columns


def test_mapping_unknown_column():
    with pytest.raises(ScalelawError) as e:
        normalize(pd.DataFrame({"a": [1]}), mapping={"N": "nope"}, source="f.csv")
    assert "f.csv" in one_line(e) and "nope" in str(e.value)


@pytest.mark.parametrize("units,col,factor", [({"N": "B"}, "N", 1e9), ("D=T", "D", 1e12), (["C=PF-days"], "C", PF_DAY),
                                              ({"N": 1e6}, "N", 1e6), ("N=1e6", "N", 1e6)])
def test_units(units, col, factor):
    df = pd.DataFrame({"N": [1.5], "D": [0.3], "C": [2.0], "loss": [2.0]})
    out = normalize(df, units=units)
    assert out[col].iloc[0] == pytest.approx(df[col].iloc[0] * factor)
    assert out.attrs["units"][col] == factor


def test_bad_unit_name():
    with pytest.raises(ScalelawError) as e:
        parse_units("N=zillions")
    assert "zillions" in one_line(e)


def _good():
    return normalize(pd.DataFrame({"run": ["a", "b"], "N": [1e8, 2e8], "D": [1e9, 2e9], "loss": [3.0, 2.9],
                                   "lr": [1e-3, 1e-3]}), source="runs.csv")


def test_validate_ok():
    assert validate(_good()) is not None


@pytest.mark.parametrize("col,val,needle", [("N", np.nan, "NaN"), ("loss", 0.0, "positive"), ("D", -5.0, "positive"),
                                            ("lr", -1e-3, "positive"), ("N", np.inf, "finite")])
def test_validate_bad_values(col, val, needle):
    df = _good()
    df.loc[1, col] = val
    with pytest.raises(ScalelawError) as e:
        validate(df, source="runs.csv")
    msg = one_line(e)
    assert "runs.csv" in msg and col in msg and needle in msg and "'b'" in msg


def test_validate_missing_lists_columns_and_suggests_map():
    df = _good().drop(columns=["D", "C"])
    with pytest.raises(ScalelawError) as e:
        validate(df, source="runs.csv")
    msg = one_line(e)
    assert "D" in msg and "--map" in msg and "loss" in msg


def test_validate_duplicate_runs():
    df = _good()
    df.loc[1, "run"] = "a"
    with pytest.raises(ScalelawError) as e:
        validate(df)
    assert "'a'" in one_line(e) and "more than once" in str(e.value)


def test_validate_duplicate_runs_of_a_reduced_table():
    # a table already reduced (e.g. two inputs, each reduced on its own, that share an id) was told to
    # "reduce per-step logs with --reduce final", which it had been
    from scalelaw.io import reduce_runs

    steps = normalize(pd.DataFrame({"run": "a", "step": [1, 2], "N": 1e8, "D": [1e9, 2e9], "loss": [3.0, 2.9]}))
    one = reduce_runs(steps, "final", source="a.csv")
    both = pd.concat([one, one], ignore_index=True)
    both.attrs = dict(one.attrs)
    with pytest.raises(ScalelawError) as e:
        validate(both, source="a.csv + b.csv", per_run=True)
    msg = one_line(e)
    assert "run 'a' appears more than once (row 2)" in msg and "reduce per-step logs" not in msg
    assert "already reduced" in msg and "rename the run in one of them" in msg
    # not reduced: a per-step table given as per-run is still told to reduce
    with pytest.raises(ScalelawError, match=r"reduce per-step logs with --reduce final"):
        validate(steps, per_run=True)


def test_duplicates_allowed_in_per_step_tables():
    df = _good()
    df["run"] = "a"
    df["step"] = [1, 2]
    validate(df)


def test_validate_wrong_unit():
    df = normalize(pd.DataFrame({"N": [0.1, 7.0], "D": [1e9, 2e9], "loss": [3.0, 2.9]}))
    with pytest.raises(ScalelawError) as e:
        validate(df, source="x.csv")
    assert "--units N=B" in one_line(e)
    validate(normalize(pd.DataFrame({"N": [0.1, 7.0], "D": [1e9, 2e9], "loss": [3.0, 2.9]}), units="N=B"))


def test_validate_empty():
    with pytest.raises(ScalelawError) as e:
        validate(pd.DataFrame({"N": [], "D": [], "loss": []}), source="e.csv")
    assert "empty" in one_line(e)


def test_strings_in_numeric_column():
    with pytest.raises(ScalelawError) as e:
        normalize(pd.DataFrame({"N": ["1e8", "lots"], "loss": [1, 2]}), source="s.csv")
    msg = one_line(e)
    assert "'lots'" in msg and "row 2" in msg


def test_summarize():
    s = summarize(_good())
    assert s["rows"] == 2 and s["ranges"]["N"] == [1e8, 2e8]


cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12),
                  st.text(max_size=5), st.none())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cols=st.lists(st.sampled_from(["N", "D", "C", "loss", "lr", "run", "params", "tokens", "val_loss", "x"]),
                     max_size=6, unique=True), n=st.integers(0, 4), data=st.data())
def test_normalize_validate_never_crash(cols, n, data):
    df = pd.DataFrame({c: [data.draw(cells) for _ in range(n)] for c in cols})
    try:
        out = validate(normalize(df, source="h.csv"))
    except ScalelawError as e:
        assert "\n" not in str(e)
        return
    for c in ("N", "D", "loss"):
        assert c in out.columns and (out[c] > 0).all()


def test_heuristic_warning_never_rescales():
    from scalelaw.schema import warn_heuristics

    df = normalize(pd.DataFrame({"N": [1e9, 2e9], "D": [1e5, 2e5], "loss": [3.0, 2.9]}), source="w.csv")
    with pytest.warns(UserWarning, match="tokens per parameter"):
        notes = warn_heuristics(df)
    assert notes and df["D"].tolist() == [1e5, 2e5]


@pytest.mark.parametrize("table, units, words", [
    # --units N=B on a column already in parameters: 4e17 parameters
    ({"N": [1e8, 4e8], "D": [2e9, 8e9], "loss": [3.5, 3.0]}, "N=B", ["column N", "4e+17", "--units N=1e+09", "drop it"]),
    ({"N": [1e8, 4e8], "D": [2e18, 8e18], "loss": [3.5, 3.0]}, None, ["column D", "8e+18", "declare it with --units"]),
    # perplexity (or a summed loss) given as the loss
    ({"N": [1e8, 4e8], "D": [2e9, 8e9], "loss": [33.1, 24.6]}, None, ["column loss", "33.1", "perplexity", "bits"]),
])
def test_values_beyond_any_training_run_are_unit_errors(table, units, words):
    df = normalize(pd.DataFrame(table), units=units)
    with pytest.raises(ScalelawError) as ei:
        validate(df, source="runs.csv")
    msg = str(ei.value)
    assert msg.startswith("runs.csv:") and "\n" not in msg
    for w in words:
        assert w in msg


def test_loss_in_bits_declared_passes():
    bits = normalize(pd.DataFrame({"N": [1e8, 4e8], "D": [2e9, 8e9], "loss": [21.0, 18.0]}), units="loss=0.6931")
    validate(bits)
    assert bits["loss"].max() == pytest.approx(21 * 0.6931)


def test_scaled_unit_hint_is_cli_and_python():
    with pytest.raises(ScalelawError) as ei:
        validate(normalize(pd.DataFrame({"N": [0.1, 0.4], "D": [2e9, 8e9], "loss": [3.5, 3.0]})), source="t")
    msg = str(ei.value)
    assert "--units N=B" in msg and "units={'N': 'B'}" in msg and "1e9}" not in msg
    with pytest.raises(ScalelawError) as ei:
        validate(normalize(pd.DataFrame({"N": [1e8], "D": [2e9], "C": [5.0], "loss": [3.0]})), source="t")
    assert "C=PF-days" in str(ei.value) and "units={'C': 'PF-days'}" in str(ei.value)
