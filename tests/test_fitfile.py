"""Fit files are untrusted: every damaged or hostile value is refused with one line naming the key."""
import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scalelaw import fitschema
from scalelaw.cli import main
from scalelaw.errors import ScalelawError

REPO = Path(__file__).resolve().parents[1]
FITS = REPO / "fits"


@pytest.fixture(scope="module")
def good():
    d = json.loads((FITS / "chinchilla-epoch.json").read_text())
    d["boot"]["samples"] = d["boot"]["samples"][:50]     # small and fast, still a valid fit
    return d


def _set(d, path, value):
    d = copy.deepcopy(d)
    keys = path.split(".")
    cur = d
    for k in keys[:-1]:
        cur = cur[k]
    if value is _DEL:
        del cur[keys[-1]]
    else:
        cur[keys[-1]] = value
    return d


_DEL = object()
_DEEP = {"a": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}

MUTATIONS = [
    ("params.alpha", 7.0, "params.alpha"),             # outside the law's bounds
    ("params.E", -1.0, "params.E"),
    ("params.A", "482", "params.A"),
    ("params.B", None, "params.B"),
    ("params.beta", _DEL, "params"),
    ("params.x", 1.0, "params"),
    ("level", 1.5, "level"),
    ("level", 0, "level"),
    ("law", "nope", "law"),
    ("law", ["chinchilla"], "law"),
    ("law_version", 99, "version 99"),
    ("schema", 2, "schema 2"),
    ("free", ["E", "E"], "free"),
    ("free", ["zeta"], "free"),
    ("theta", [1.0, 2.0], "theta"),
    ("cov", [[1.0]], "cov"),
    ("boot.samples", [[1.0, 2.0]], "boot.samples[0]"),
    ("boot.params", ["E"], "boot.params"),
    ("settings.where", "N.to_csv('pwned.csv') > 0", "settings.where"),
    ("data.filter", "__import__('os').system('touch pwned')", "data.filter"),
    ("settings.where", "@x > 1", "settings.where"),
    ("settings.fixed", {"alpha": 9.0}, "settings.fixed.alpha"),
    ("settings.boot", 10**12, "settings.boot"),
    ("settings.seed", -1, "settings.seed"),
    ("settings.prepare_options", {"__class__": 1}, "settings.prepare_options"),
    ("input_ranges.N", [5.0, 1.0], "input_ranges.N"),
    ("stderr.E", -0.1, "stderr.E"),
    ("ci.E", [1.0], "ci.E"),
    ("diagnostics.residual_sd", "big", "diagnostics.residual_sd"),
    ("data.sha256", "../../etc/passwd", "data.sha256"),
    ("objective.name", "rm -rf", "objective.name"),
    ("reference.published", {"E": {"value": 1.8, "rtol": -1}}, "reference.published.E.rtol"),
    ("evil", {"__reduce__": "os.system"}, "unknown key 'evil'"),
    ("derived", _DEEP, "nested more than"),
    ("log_residuals", "yes", "log_residuals"),
]


DRIFT = {"params.A", "params.B", "params.beta"}


@pytest.mark.parametrize("path, value, needle", MUTATIONS, ids=[f"{m[0]}={str(m[1])[:20]}" for m in MUTATIONS])
def test_hostile_law_fit_refused_naming_the_key(good, path, value, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(_set(good, path, value)))
    for args in (["predict", str(p), "--at", "N=1e9", "--at", "D=2e10"], ["check", str(p)]):
        r = CliRunner().invoke(main, args)
        if args[0] == "check" and path in DRIFT:   # check reports a missing/null/non-numeric parameter as drift
            assert r.exit_code == 1 and "DRIFT" in r.output and "parameter" in r.output, r.output
            continue
        assert r.exit_code == 2, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.output
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.json"]


def test_the_valid_fit_loads(good, tmp_path):
    p = tmp_path / "ok.json"
    p.write_text(json.dumps(good))
    r = CliRunner().invoke(main, ["predict", str(p), "--at", "N=1e9", "--at", "D=2e10", "--json"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("text, needle", [
    ('{"schema": 1, "law": "chinchilla", "level": NaN}', "not a JSON number"),
    ('{"schema": 1, "law": "chinchilla", "level": Infinity}', "not a JSON number"),
    ('{"schema": 1, "law": "chinchilla", "params": {"E": 1e999}}', "not a finite number"),
    ("[" * 100000 + "]" * 100000, "nested"),
    ('{"schema": 1, "law": "chinch', "cannot read"),
    ("[1, 2]", "JSON object"),
    ("", "cannot read"),
])
def test_damaged_json(text, needle, tmp_path):
    p = tmp_path / "f.json"
    p.write_text(text)
    with pytest.raises(ScalelawError, match=needle):
        fitschema.read_json(p)


def test_not_utf8_special_files_and_size_limit(tmp_path, monkeypatch):
    p = tmp_path / "f.json"
    p.write_bytes(b'{"law": "\xff\xfe"}')
    with pytest.raises(ScalelawError, match="not UTF-8"):
        fitschema.read_json(p)
    for special in ("/dev/zero", str(tmp_path)):       # never read a device (it would not end) or a folder
        with pytest.raises(ScalelawError, match="not a regular file"):
            fitschema.read_json(special)
    monkeypatch.setattr(fitschema, "MAX_BYTES", 100)
    p.write_text(json.dumps({"law": "chinchilla", "pad": "x" * 200}))
    with pytest.raises(ScalelawError, match="more than any fit file"):
        fitschema.read_json(p)


def test_check_never_opens_a_device_folder_or_pipe_recorded_in_the_file(good, tmp_path, monkeypatch):
    import scalelaw.io as sio

    monkeypatch.setattr(sio, "load_table", lambda *a, **k: pytest.fail("opened a recorded non-file"))
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for src in ("/dev/zero", str(tmp_path), str(fifo), str(tmp_path / "gone.csv"), ""):
        p = tmp_path / "f.json"
        p.write_text(json.dumps(_set(good, "data.source", src)))
        r = CliRunner().invoke(main, ["check", str(p)])
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output


def test_report_does_not_read_a_recorded_path(good, tmp_path, monkeypatch):
    from scalelaw.analysis import report
    from scalelaw.result import load_fit

    p = tmp_path / "f.json"
    p.write_text(json.dumps(_set(good, "data.source", str(REPO / "data" / "example_runs.csv"))))
    f = load_fit(p)
    assert report._source_table(f) is None


# ---- mixture fits: the LightGBM model text -----------------------------------------------------------
@pytest.fixture(scope="module")
def gbdt():
    return json.loads((FITS / "regmix-gbdt-pilecc.json").read_text())


def _edit_model(d, fn, rehash=True):
    d = copy.deepcopy(d)
    d["model_text"] = fn(d["model_text"])
    if rehash:
        d["model_sha256"] = hashlib.sha256(d["model_text"].encode()).hexdigest()
    return d


def _first_tree_line(text, key):
    i = text.index("Tree=0\n")
    j = text.index(f"\n{key}=", i) + 1
    k = text.index("\n", j)
    return i, j, k


def _sub_first(text, key, new_values):
    _, j, k = _first_tree_line(text, key)
    return text[:j] + f"{key}={new_values}" + text[k:]


def _values(text, key):
    _, j, k = _first_tree_line(text, key)
    return text[j + len(key) + 1:k].split(" ")


EDITS = [
    ("truncated, hash kept", lambda t: t[: len(t) // 2], False, "does not match its recorded sha256"),
    ("truncated, rehashed", lambda t: t[: len(t) // 2], True, "not a valid LightGBM model"),
    ("truncated, no hash", lambda t: t[: len(t) // 3], None, "not a valid LightGBM model"),
    ("feature index out of range", lambda t: _sub_first(t, "split_feature", " ".join(
        ["999"] + _values(t, "split_feature")[1:])), True, "split feature index"),
    ("child index out of range", lambda t: _sub_first(t, "left_child", " ".join(
        ["100000"] + _values(t, "left_child")[1:])), True, "child index"),
    ("leaf index out of range", lambda t: _sub_first(t, "right_child", " ".join(
        ["-100000"] + _values(t, "right_child")[1:])), True, "leaf index"),
    ("cycle", lambda t: _sub_first(t, "left_child", " ".join(
        ["0"] + _values(t, "left_child")[1:])), True, "child index"),
    ("num_leaves lies", lambda t: _sub_first(t, "num_leaves", "500"), True, "values, not"),
    ("tree size lies", lambda t: t.replace("tree_sizes=1762 ", "tree_sizes=99999999 ", 1), True, "recorded size"),
    ("non-finite leaf", lambda t: _sub_first(t, "leaf_value", " ".join(
        ["inf"] + _values(t, "leaf_value")[1:])), True, "not finite"),
    ("categorical split", lambda t: _sub_first(t, "num_cat", "1"), True, "categorical"),
    ("another feature count", lambda t: t.replace("max_feature_idx=16", "max_feature_idx=40", 1), True,
     "features"),
    ("file parameter", lambda t: t.replace("objective=regression\n", "objective=regression\n"
                                           "forcedsplits_filename=/etc/passwd\n", 1), True, "unexpected header"),
]


@pytest.mark.parametrize("name, edit, rehash, needle", EDITS, ids=[e[0] for e in EDITS])
def test_edited_model_text_refused_before_lightgbm(gbdt, name, edit, rehash, needle, tmp_path):
    from scalelaw.analysis import mixture as mx

    d = _edit_model(gbdt, edit, rehash=bool(rehash))
    if rehash is None:
        d.pop("model_sha256", None)
    p = tmp_path / "m.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ScalelawError, match=needle) as ei:
        mx.load_fit(p)
    assert "\n" not in str(ei.value)


def test_damaged_model_is_exit_2_not_a_crash(gbdt, tmp_path):
    """In a child process: a truncated and an edited model give exit 2 and one line, never a signal."""
    for i, (edit, rehash) in enumerate(((lambda t: t[: len(t) // 2], True),
                                        (lambda t: _sub_first(t, "left_child", " ".join(
                                            ["100000"] + _values(t, "left_child")[1:])), True))):
        p = tmp_path / f"m{i}.json"
        p.write_text(json.dumps(_edit_model(gbdt, edit, rehash)))
        r = subprocess.run([sys.executable, "-m", "scalelaw", "mixture", "recommend", str(p), "--samples", "100",
                            "--top-k", "4", "--boot", "0"], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert r.returncode == 2, (r.returncode, r.stderr[-500:])
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")


def test_mixture_fit_records_the_model_hash(gbdt):
    assert gbdt["model_sha256"] == hashlib.sha256(gbdt["model_text"].encode()).hexdigest()
    fitschema.check_model_text(gbdt["model_text"], len(gbdt["domains"]))


@pytest.mark.parametrize("key, value, needle", [
    ("model", "pickle", "model"), ("domains", ["a", "a"], "domains"), ("evil", 1, "unknown key 'evil'"),
    ("prior", {"weights": {"a": -1}}, "prior.weights.a"), ("schema", True, "schema"),
])
def test_mixture_schema(gbdt, key, value, needle, tmp_path):
    from scalelaw.analysis import mixture as mx

    d = {k: v for k, v in gbdt.items() if k not in ("model_text", "model_sha256")}
    d.update(model="linear", params={x: 0.0 for x in d["domains"]})
    d[key] = value
    p = tmp_path / "m.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ScalelawError, match=needle):
        mx.load_fit(p)
