"""scalelaw: turn training-run logs into trustworthy scaling laws and predictions.

    import scalelaw as sl
    fit = sl.fit("chinchilla-epoch", "chinchilla", boot=200)   # a DataFrame, a path or a dataset name
    fit.summary(); fit.predict(N=7e10, D=1.4e12); fit.optimum(compute=[1e22, 5.76e23]); fit.plot()

Package level: ``load``, ``fit``, ``load_fit``, ``laws``, ``plan``, ``isoflop``, ``backtest``,
``design``
(scalelaw.api; docs/python.md) and the submodules ``plots``, ``io``, ``datasets``. They are
imported on first use, so ``import scalelaw`` (and ``scalelaw --version``) stays cheap.

Flow: ``scalelaw.io`` reads logs into one run table (``scalelaw.schema``), ``scalelaw.fit.fit``
estimates a registered law (``scalelaw.laws``), and the resulting :class:`~scalelaw.result.Fit`
predicts with intervals.
"""
__version__ = "0.1.0"

from .errors import ScalelawError  # noqa: E402

_API = ("load", "fit", "load_fit", "laws", "plan", "isoflop", "backtest", "design")
_SUBMODULES = ("plots", "io", "datasets", "result", "api")
_LAW = ("Law", "Param")    # sl.Law.from_formula(...) builds a user-defined law

__all__ = ["__version__", "ScalelawError", *_LAW, *_API, *_SUBMODULES]


def __getattr__(name):
    if name in ("fit", "laws"):
        # submodules of those names exist (the engine scalelaw/fit.py, the registry
        # scalelaw/laws/): importing one makes it this attribute, so those modules are callable
        # and calling one is calling the API function (scalelaw.api.fit / scalelaw.api.laws)
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAW:
        from . import law
        return getattr(law, name)
    if name in _API:
        from . import api
        return getattr(api, name)
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
