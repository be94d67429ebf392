"""Rebuild the screenshots of the report's main figures shown in docs/plan.md.

    SCALELAW_MIRROR=/path/to/shared/data python docs/img/build.py

The figures are the ones `scalelaw report fits/chinchilla-epoch.json --data chinchilla-epoch
--plan-compute 5.76e23` draws (same functions, same arguments), rendered to PNG by kaleido with
the system's Chromium; the IsoFLOP figure uses a synthetic IsoFLOP grid (Epoch's runs do not
have that shape), and the backtest the default split by compute of the same fit.
"""
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import scalelaw as sl  # noqa: E402
from scalelaw import plots  # noqa: E402
from scalelaw.analysis.report import run_backtest  # noqa: E402

PLAN = 5.76e23


def main() -> None:
    warnings.simplefilter("ignore")
    plots.static_images()                      # starts one kaleido browser for every image
    fit = sl.load_fit(HERE.parents[1] / "fits" / "chinchilla-epoch.json")
    runs = sl.load("chinchilla-epoch")
    N = np.tile(np.geomspace(4e7, 3e9, 7), 4)
    C = np.repeat([1e19, 1e20, 1e21, 1e22], 7)
    grid = pd.DataFrame({"N": N, "C": C, "D": C / (6 * N)})
    grid["loss"] = fit.law.evaluate({"N": grid.N, "D": grid.D}, fit.params) * np.exp(
        0.004 * np.random.default_rng(0).standard_normal(len(grid)))
    grid = grid[grid.D > 2e8]
    figures = {
        "compute": plots.plot_compute(fit, runs, compute=PLAN),
        "allocation": plots.plot_optimum(fit, compute=PLAN, data=runs),
        "fit": plots.plot_fit(fit, runs),
        "isoflop": plots.plot_isoflop(sl.isoflop(grid, boot=200), compute=PLAN),
        "parity": plots.plot_backtest_parity(run_backtest(fit, plots.fit_rows(fit, runs))),
        "plan": plots.plot_plan(sl.plan(PLAN, loss=fit), fit),
    }
    for name, fig in figures.items():
        out = HERE / f"report-{name}.png"
        fig.write_image(out, width=1000, height=int(fig.layout.height or 450), scale=1)
        print(f"wrote {out.relative_to(HERE.parents[1])} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
