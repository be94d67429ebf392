"""scalelaw: turn training-run logs into trustworthy scaling laws and predictions.

Flow: ``scalelaw.io`` reads logs into one run table (``scalelaw.schema``), ``scalelaw.fit``
estimates a registered law (``scalelaw.laws``), and the resulting :class:`~scalelaw.result.Fit`
predicts with intervals.
"""
__version__ = "0.1.0"

from .errors import ScalelawError  # noqa: E402
from .law import Law, Param  # noqa: E402  (sl.Law.from_formula(...) builds a user-defined law)

__all__ = ["__version__", "ScalelawError", "Law", "Param"]
