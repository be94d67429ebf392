"""The public dataset registry: every dataset loads from the mirror with matching hashes;
download, cache and offline behaviour with the network mocked."""
import hashlib
import io
import json
import urllib.error

import pandas as pd
import pytest

from scalelaw import datasets
from scalelaw.errors import ScalelawError
from scalelaw.io import load_table
from scalelaw.util import sha256_file

EXPECTED_ROWS = {"chinchilla-epoch": 240, "chinchilla-epoch-all": 245, "gadre-overtrain": 104, "steplaw-dense": 1911,
                 "steplaw-moe": 708, "steplaw-bootstrap": 1000, "regmix-1m-train": 512, "regmix-1m-test": 256,
                 "regmix-60m-test": 256, "regmix-1b-test": 64, "obsscaling-base": 148, "release-dates": 148,
                 "isoflops-open-athena": 947, "isoflops-open-athena-raw": 947, "isoflops-chinchilla-epoch": 123,
                 "isoflops-chinchilla-scalefit": 124, "isoflops-llama3": 133, "isoflops-llama3-exp": 133,
                 "isoflops-marin-comma": 85, "isoflops-marin-dclm": 85, "isoflops-marin-nemotron": 88,
                 "isoflops-misfitting": 176,
                 "pythia": 189, "pythia-deduped": 216}


def test_names_are_the_contract():
    assert set(datasets.names()) == set(EXPECTED_ROWS)


@pytest.mark.public_data
@pytest.mark.parametrize("name", sorted(EXPECTED_ROWS))
def test_every_dataset_loads_and_hashes_match(mirror, name):
    df = datasets.load(name)
    assert len(df) == EXPECTED_ROWS[name]
    assert df.attrs["source"] == name and len(df.attrs["sha256"]) == 64
    ds = datasets.get(name)
    files = ds.files()
    for rel, sha in files.items():
        assert sha256_file(mirror / ds.local_rel(rel)) == sha
    assert df.attrs["sha256"] == datasets.combined_sha256(files) == datasets.info(name)["sha256"]
    info = datasets.info(name)
    assert info["licence"] and info["citation"] and info["description"]


@pytest.mark.public_data
def test_chinchilla_epoch(mirror):
    df = load_table("chinchilla-epoch")
    full = datasets.load("chinchilla-epoch-all")
    assert len(df) == 240 and len(full) == 245
    assert df["loss"].max() < full["loss"].nlargest(5).min()
    assert (df["D"] - df["C"] / (6 * df["N"])).abs().max() < 1e-6 * df["D"].max()


@pytest.mark.public_data
def test_gadre_overtrain(mirror):
    df = datasets.load("gadre-overtrain")
    assert len(df) == 104 and df.attrs["validation"] == "c4_val"
    for col in ("run", "N", "N_nonembed", "D", "M", "lr", "batch_tokens", "loss", "dataset"):
        assert col in df.columns
    from scalelaw.laws.downstream import TASKS_17

    assert all(f"err_{t}" in df.columns for t in TASKS_17)
    assert len(df.attrs["random_baseline"]) > 40


@pytest.mark.public_data
def test_steplaw_and_obsscaling_columns(mirror):
    moe = datasets.load("steplaw-moe")
    assert {"N_active", "smooth_loss", "N_nonembed"} <= set(moe.columns)
    assert (moe["batch_tokens"] == moe["hp_bs"] * 2048).all()
    obs = datasets.load("obsscaling-base")
    assert {"model", "family", "score_mmlu", "score_humaneval"} <= set(obs.columns)
    assert obs["N"].max() == 405e9


@pytest.fixture
def no_mirror(monkeypatch, tmp_path):
    monkeypatch.delenv("SCALELAW_MIRROR", raising=False)
    monkeypatch.setenv("SCALELAW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_offline_without_mirror_is_one_clear_error(no_mirror, monkeypatch):
    def boom(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", boom)
    with pytest.raises(ScalelawError) as e:
        datasets.fetch("chinchilla-epoch")
    msg = str(e.value)
    assert "\n" not in msg and "SCALELAW_MIRROR" in msg and "raw.githubusercontent.com" in msg
    assert msg.startswith("dataset chinchilla-epoch:")
    with pytest.raises(ScalelawError, match="mirror"):
        datasets.fetch("release-dates")


def test_download_verifies_and_caches(no_mirror, monkeypatch, mirror):
    calls = []
    ds = datasets.get("chinchilla-epoch")
    (rel,) = ds.files()
    body = (mirror / ds.local_rel(rel)).read_bytes()

    def fake(url, timeout=0):
        calls.append(url)
        return io.BytesIO(body)

    monkeypatch.setattr(datasets.urllib.request, "urlopen", fake)
    (p,) = datasets.fetch("chinchilla-epoch")
    assert p == no_mirror / ds.local_rel(rel) and p.read_bytes() == body
    assert calls == [f"https://raw.githubusercontent.com/epoch-research/analyzing-chinchilla/{ds.commit}/{rel}"]
    assert len(datasets.load("chinchilla-epoch")) == 240 and len(calls) == 1  # cached
    assert not list(p.parent.glob(".*part"))


def test_download_hash_mismatch(no_mirror, monkeypatch):
    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda url, timeout=0: io.BytesIO(b"tampered"))
    with pytest.raises(ScalelawError, match="^dataset chinchilla-epoch: download .* sha256"):
        datasets.fetch("chinchilla-epoch")
    assert not any(no_mirror.rglob("*.csv"))


def test_mirror_hash_mismatch(monkeypatch, tmp_path):
    ds = datasets.get("steplaw-bootstrap")
    (rel,) = ds.files()
    p = tmp_path / ds.local_rel(rel)
    p.parent.mkdir(parents=True)
    p.write_text("lr_intercept\n1\n")
    monkeypatch.setenv("SCALELAW_MIRROR", str(tmp_path))
    with pytest.raises(ScalelawError, match="does not match"):
        datasets.load("steplaw-bootstrap")
    with pytest.raises(ScalelawError, match="missing from the mirror"):
        datasets.fetch("steplaw-dense")


def test_unknown_name():
    with pytest.raises(ScalelawError, match="chinchilla-epoch"):
        datasets.info("chinchila-epoch")


def test_manifest_is_small_and_complete():
    man = json.loads(datasets.MANIFEST.read_text())
    assert sum(len(v) for v in man.values()) == 225
    assert len(man["mlfoundations/scaling@a003c4913793ac2ae7ef87b28ecb562955d026d5"]) == 209
    assert datasets.MANIFEST.stat().st_size < 64_000
    # a repository of hundreds of files keeps its hashes in a side manifest: one per Pythia checkpoint file
    side = datasets.SIDE_MANIFESTS["EleutherAI/pythia@a19eecb807ec2c79a39ebf18108816e6ffffc1d5"]
    assert len(json.loads(side.read_text())) == 405 and side.stat().st_size < 64_000
    assert datasets.combined_sha256({"a": "1"}) == hashlib.sha256(b"a\x001\n").hexdigest()


def test_dataset_frames_are_run_tables(mirror):
    for name in ("chinchilla-epoch", "steplaw-dense", "regmix-1b-test"):
        df = load_table(name)
        assert isinstance(df, pd.DataFrame) and df.attrs["source"] == name
