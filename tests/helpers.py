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
