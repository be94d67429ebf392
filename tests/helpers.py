"""Small shared test data (import with ``from .helpers import ...``)."""
import numpy as np
import pandas as pd

from scalelaw.law import get_law

TRUTH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}   # Epoch's Chinchilla refit


def ladder(noise=0.005, seed=0, source="synthetic ladder"):
    """A Chinchilla ladder: 6 model sizes x 4 tokens-per-parameter ratios, log-normal noise."""
    rng = np.random.default_rng(seed)
    N, R = np.meshgrid(np.geomspace(2e7, 1e9, 6), [10, 20, 40, 80])
    N, D = N.ravel(), (R * N).ravel()
    y = get_law("chinchilla").evaluate({"N": N, "D": D}, TRUTH) * np.exp(rng.normal(0, noise, N.size))
    df = pd.DataFrame({"run": [f"r{i}" for i in range(N.size)], "N": N, "D": D, "C": 6 * N * D, "loss": y})
    df.attrs["source"] = source
    return df


def no_public_data(monkeypatch, tmp_path, with_mirror: bool):
    """Make the public data unreachable: SCALELAW_MIRROR at an empty folder, or no mirror and no
    network (empty cache). The working directory is the project, next to which ../shared/data
    exists in development and CI, so any hard-coded search of that layout would find the files."""
    from pathlib import Path

    from scalelaw import datasets

    if with_mirror:
        (tmp_path / "mirror").mkdir()
        monkeypatch.setenv("SCALELAW_MIRROR", str(tmp_path / "mirror"))
    else:
        monkeypatch.delenv("SCALELAW_MIRROR", raising=False)
        monkeypatch.setenv("SCALELAW_CACHE", str(tmp_path / "cache"))

        def offline(*a, **k):
            raise datasets.urllib.error.URLError("offline (test)")

        monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
