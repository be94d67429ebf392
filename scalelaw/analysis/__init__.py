"""Multi-step workflows built on fits: isoflop, sweeps, gadre, density, mixture, plan, report."""
