"""Command-line interface: a thin layer over the library; the only place that prints or exits."""
import os

# The CLI's numerical work is many small products; a multi-threaded BLAS only spins on them
# (measured 10-18x slower on a loaded 2-core machine). Set before numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
from .app import main

# Each module below attaches its verbs to ``main`` when imported.
from . import fitting  # noqa: E402,F401  laws, fit, predict, optimum, backtest, check, isoflop
from . import plan  # noqa: E402,F401  plan, report
from . import density  # noqa: E402,F401
from . import hparams  # noqa: E402,F401
from . import overtrain  # noqa: E402,F401  gadre reproduce, backtest, plot
from . import isoflop  # noqa: E402,F401
from . import data  # noqa: E402,F401  data list/info/fetch, ingest, inspect
from . import mixture  # noqa: E402,F401
from . import compare  # noqa: E402,F401  compare LAW [LAW...] DATA
from . import design  # noqa: E402,F401
from . import trajectory  # noqa: E402,F401  trajectory fit/flags/emergence/plot/predict/backtest

__all__ = ["main"]
