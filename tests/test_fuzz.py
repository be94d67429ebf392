"""Property-based fuzzing of fit files and CLI arguments (docs/security.md).

The contract, whatever the input: exit 0, 1 or 2; at most one `error:` line; no traceback; never
"internal error" (exit 3); never a signal (the runs are in-process, so a crash would end the test
run). Derandomized with a fixed number of examples so CI time is bounded (a few seconds).
"""
import copy
import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from scalelaw.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = str(REPO / "data" / "example_runs.csv")
GOOD = json.loads((REPO / "fits" / "chinchilla-epoch.json").read_text())
GOOD["boot"]["samples"] = GOOD["boot"]["samples"][:20]
LINEAR = json.loads((REPO / "fits" / "regmix-linear-pilecc.json").read_text())

FUZZ = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ATTACKS = ["N.to_csv('pwned.csv')", "@x", "__import__('os')", "9**9**9**9", "lambda: 0", "N < ", "`", "\u202e",
           "../../etc/passwd", "/dev/zero", "", " ", "-1", "0", "nan", "inf", "-inf", "1e999", "1e-400", "N=0",
           "N=-1", "N=nan", "Q=3", "x=y", "=", "E=1e300", "alpha=7", "tcp://", "nothing://x", "a" * 300]
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                      st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(ATTACKS),
                      st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                          max_leaves=12)


def _paths(d, prefix=()):
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d[:3]):
            out += _paths(v, prefix + (i,))
    return out


def _mutate(d, path, value, delete):
    d = copy.deepcopy(d)
    cur = d
    for k in path[:-1]:
        cur = cur[k]
    if delete and isinstance(cur, dict):
        cur.pop(path[-1], None)
    else:
        cur[path[-1]] = value
    return d


def _contract(r):
    out = r.output
    assert r.exit_code in (0, 1, 2), (r.exit_code, out[-800:], r.exception)
    if r.exception is not None:
        assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in out and "internal error" not in out, out[-800:]
    assert sum(line.startswith("error:") for line in out.splitlines()) <= 1, out[-800:]


def _mutated_file(base, data, tmp_path, name):
    paths = _paths(base)
    kind = data.draw(st.sampled_from(["replace", "delete", "truncate", "add"]))
    if kind == "truncate":
        text = json.dumps(base)
        text = text[: data.draw(st.integers(0, len(text)))]
    elif kind == "add":
        text = json.dumps(dict(base, **{data.draw(st.text(max_size=8)): data.draw(json_value)}))
    else:
        path = data.draw(st.sampled_from(paths))
        text = json.dumps(_mutate(base, path, data.draw(json_value), kind == "delete"))
    p = tmp_path / name
    p.write_text(text)
    return p


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_fuzz_law_fit_files(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("fuzz")
    p = _mutated_file(GOOD, data, tmp, "f.json")
    run = CliRunner()
    _contract(run.invoke(main, ["predict", str(p), "--at", "N=1e9", "--at", "D=2e10"]))
    _contract(run.invoke(main, ["plan", "--compute", "1e22", "--loss", str(p)]))


@FUZZ
@given(data=st.data())
def test_fuzz_mixture_fit_files(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("fuzzmix")
    p = _mutated_file(LINEAR, data, tmp, "m.json")
    _contract(CliRunner().invoke(main, ["mixture", "recommend", str(p), "--samples", "200", "--top-k", "4",
                                        "--boot", "0"]))


FIT = str(REPO / "fits" / "chinchilla-epoch.json")
VERBS = {
    "predict": [FIT, "--at", "--table", "--level", "--law", "--chain", "--json"],
    "optimum": [FIT, "--compute", "--level", "--json"],
    "plan": ["--compute", "--target-loss", "--loss", FIT, "--lr", "--bs", "--tokens-per-param", "--params", "--at",
             "--level", "--warn-factor", "--json"],
    "hparams": ["--lr", "--bs", "--N", "--D", "--seq-len", "steplaw-2025", "--json"],
    "isoflop": [EXAMPLE, "--degree", "--where", "--tol", "--boot", "--seed", "--at", "--json"],
    "inspect": [EXAMPLE, "--map", "--units", "--json"],
    "laws": ["chinchilla", "--json"],
    "check": [FIT + "x", "/dev/null"],
}


@FUZZ
@given(data=st.data())
def test_fuzz_cli_arguments(tmp_path_factory, data, monkeypatch):
    tmp = tmp_path_factory.mktemp("cli")
    monkeypatch.chdir(tmp)
    verb = data.draw(st.sampled_from(sorted(VERBS)))
    words = VERBS[verb]
    args = [verb] + data.draw(st.lists(st.one_of(st.sampled_from(words), st.sampled_from(ATTACKS),
                                                 st.text(max_size=12)), max_size=7))
    _contract(CliRunner().invoke(main, args))
    assert not (tmp / "pwned.csv").exists()
