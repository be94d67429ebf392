"""Rebuild the core reference fits in fits/ (run from the project root; needs the data mirror).

Each file is an ordinary fit JSON plus a "reference" block holding the published figures it
must stay close to; `scalelaw check` re-fits it from the recorded dataset and settings and
compares both against the recorded parameters and against that block.

Usage: SCALELAW_MIRROR=../shared/data python fits/build.py [--force]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalelaw.fit import fit  # noqa: E402
from scalelaw.io import load_table  # noqa: E402
from scalelaw.util import atomic_write_text, dumps  # noqa: E402

HERE = Path(__file__).resolve().parent

# Besiroglu et al. 2024 (Epoch), Table 1 and section 4: 240 points, 4,000 bootstrap resamples.
EPOCH = {
    "source": "Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt (arXiv:2404.10102), Table 1",
    "published": {
        "E": {"value": 1.8169, "rtol": 0.01},
        "alpha": {"value": 0.3478, "rtol": 0.01},
        "beta": {"value": 0.3658, "rtol": 0.01},
        "A": {"value": 482.01, "rtol": 0.05},
        "B": {"value": 2085.43, "rtol": 0.05},
    },
    # the summed Huber objective the plain per-start L-BFGS-B loop reaches on these 240 points,
    # quoted as 0.00101827 (6 digits): no worse than the top of its rounding interval.
    # benchmarks/bench_fit.py compares with the loop itself, to 1e-9.
    "objective_max": 0.001018275,
    "ci_overlap": {
        "A": [285.2, 743.6], "B": [1042.4, 5810.3], "E": [1.769, 1.871],
        "alpha": [0.317, 0.373], "beta": [0.331, 0.415],
    },
    "optimum": {"given": {"compute": 5.76e23}, "expect": {"N_opt": {"value": 7.225e10, "rtol": 0.03}}},
}


def build(name: str, law: str, dataset: str, reference: dict, force: bool, **kw):
    table = load_table(dataset)
    f = fit(law, table, source=dataset, **kw)
    d = f.to_dict()
    d["reference"] = reference
    out = HERE / f"{name}.json"
    atomic_write_text(out, dumps(d) + "\n", force=force)
    print(f"wrote {out}: {', '.join(f'{k}={v:.5g}' for k, v in f.params.items())}; "
          f"objective {f.objective['value']:.10g}")


if __name__ == "__main__":
    force = "--force" in sys.argv
    build("chinchilla-epoch", "chinchilla", "chinchilla-epoch", EPOCH, force, boot=1000, seed=0)
