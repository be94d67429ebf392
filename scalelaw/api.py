"""The package-level Python API: ``import scalelaw as sl`` then ``sl.fit(data, "chinchilla")``.

Every function takes its data as a DataFrame, a path (file or folder of logs) or a registered
dataset name, and applies the same loading and validation as the command line (units,
magnitudes, per-step tables): a table whose N is in billions, or whose loss is a perplexity, is
refused with the message the CLI prints. ``columns=`` maps the canonical columns (N, D, C, loss,
...) to yours (as ``--map``), ``units=`` declares units (as ``--units``: {"N": "B"}).
docs/python.md is the user's guide.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from .errors import ScalelawError


def _mapping(columns, df: pd.DataFrame | None) -> dict | None:
    """``columns`` as {canonical: your column}. A pandas-style rename ({your column: canonical})
    is turned round when that reading is the only one that names columns of the table."""
    if not columns:
        return None
    if not isinstance(columns, Mapping):
        raise ScalelawError(f"columns= must map canonical names to your columns, e.g. {{'N': 'params'}}; "
                            f"got {type(columns).__name__}")
    cols = {str(k): str(v) for k, v in columns.items()}
    if df is not None:
        have = set(map(str, df.columns))
        forward = all(v in have for v in cols.values())
        backward = all(k in have for k in cols)
        if backward and not forward:
            return {v: k for k, v in cols.items()}
    return cols


def load(source, *, columns: Mapping | None = None, units=None, reduce: str | None = None, **kwargs) -> pd.DataFrame:
    """A validated run table from a DataFrame, a path or a dataset name (``scalelaw data list``).

    columns: {canonical: your column} (e.g. {"N": "params", "loss": "val_loss"}); units: {column:
    unit} (e.g. {"N": "B"} for billions); reduce: "final" / "smooth" / "min" to make one row per run
    of a per-step log. Further keywords go to :func:`scalelaw.io.load_table`."""
    from .io import load_table

    df = source if isinstance(source, pd.DataFrame) else None
    return load_table(source, mapping=_mapping(columns, df), units=units, reduce=reduce, **kwargs)


def _table(data, columns, units, reduce=None) -> tuple[pd.DataFrame, str | None]:
    """(validated table, source label) for the verbs below."""
    if isinstance(data, pd.DataFrame):
        table = load(data, columns=columns, units=units, reduce=reduce)
        return table, data.attrs.get("source")
    if isinstance(data, str) and not data.strip():
        raise ScalelawError("data must be a DataFrame, a path or a dataset name; got an empty string")
    return load(data, columns=columns, units=units, reduce=reduce), str(data)


def _law(law):
    from .law import get_law

    if isinstance(law, pd.DataFrame):
        raise ScalelawError("scalelaw.fit takes (data, law): the table first, then the law's name, "
                            "e.g. sl.fit(runs, 'chinchilla')")
    return get_law(law)


def fit(data, law, *, columns: Mapping | None = None, units=None, reduce: str | None = None,
        where: str | None = None, boot: int = 0, seed: int = 0, level: float = 0.95,
        objective: str | None = None, delta=1e-3, fixed: Mapping | None = None, weights=None,
        options: Mapping | None = None, n_jobs: int | None = None, progress: bool = False, **kwargs):
    """Fit ``law`` (a name from :func:`laws`) to ``data`` (DataFrame, path or dataset name).

    The returned :class:`scalelaw.result.Fit` has ``params``/``stderr`` (Series), ``conf_int()``,
    ``predict()``, ``optimum()``, ``residuals``, ``aic``/``bic``/``loglike``/``rmse``, ``corr``,
    ``summary()`` and ``plot()``. ``where`` keeps rows matching an expression (as --where),
    ``boot`` bootstrap resamples over runs, ``fixed`` holds parameters, ``options`` are the law's
    data-preparation options (as --option). Further keywords go to :func:`scalelaw.fit.fit`."""
    from .fit import fit as _fit

    law = _law(law)
    table, source = _table(data, columns, units, reduce)
    res = _fit(law, table, where=where, boot=boot, seed=seed, level=level, objective=objective, delta=delta,
               fixed=dict(fixed) if fixed else None, weights=weights, prepare_options=dict(options) if options else None,
               n_jobs=n_jobs, progress=progress, source=source, **kwargs)
    res.table = table
    return res


def load_fit(path_or_name, law: str | None = None):
    """A saved fit (JSON written by ``scalelaw fit -o`` or ``Fit.save``) or a published fit by
    name (e.g. "epoch-2024"; ``law`` says which when a name belongs to several laws)."""
    from .result import load_fit as _load_fit

    return _load_fit(path_or_name, law=law)


def laws(family: str | None = None) -> pd.DataFrame:
    """The registered laws as a table: name, family, formula, inputs, target, parameters,
    published fits, citation (``family`` keeps one family, e.g. "loss")."""
    from .law import all_laws

    rows = [{"name": l.name, "family": l.family, "formula": l.formula, "inputs": ", ".join(l.inputs),
             "target": l.target, "params": ", ".join(l.param_names), "published": ", ".join(l.published),
             "citation": l.citation}
            for l in all_laws() if not l.name.startswith("_") and (family is None or l.family == family)]
    if not rows:
        fams = sorted({l.family for l in all_laws() if not l.name.startswith("_")})
        raise ScalelawError(f"no law of family {family!r}; families: {', '.join(fams)}")
    return pd.DataFrame(rows).set_index("name")


def plan(compute=None, loss=None, *, lr=None, bs=None, downstream=None, **kwargs) -> dict:
    """A training plan for a compute budget (or, with ``target_loss=``, the budget for a loss):
    compute-optimal N and D, predicted loss and, given those fits, learning rate, batch size and
    downstream error, each with an interval. Fits may be Fit objects, paths or published names.
    Keywords: tokens_per_param, params, target_loss, level, at, seed (see scalelaw.analysis.plan)."""
    from .analysis.plan import plan as _plan

    if loss is None:
        raise ScalelawError("plan needs a loss fit: sl.plan(5.76e23, loss=fit) (a Fit, a fit file or a published name)")
    return _plan(compute=compute, loss_fit=loss, lr_fit=lr, bs_fit=bs, downstream_fit=downstream, **kwargs)


def isoflop(data, *, columns: Mapping | None = None, units=None, degree: int = 2, where: str | None = None,
            boot: int = 0, seed: int = 0, level: float = 0.95, **kwargs):
    """Chinchilla's approach 2 on IsoFLOP runs (columns N, loss and C, or D for C = 6ND): per
    budget the loss minimum over model size, then N_opt = k C^a. Returns an IsoflopResult
    (``.predict([C...])``, ``.summary()``, ``.to_dict()``; draw it with scalelaw.plots.plot_isoflop)."""
    from .analysis.isoflop import isoflop as _isoflop

    table, source = _table(data, columns, units)
    return _isoflop(table, degree=degree, where=where, boot=boot, seed=seed, level=level, source=source, **kwargs)


def backtest(data, law, *, train: str | None = None, columns: Mapping | None = None, units=None,
             where: str | None = None, level: float = 0.95, **kwargs) -> dict:
    """Fit ``law`` on the smaller runs and predict the larger ones.

    train: the rows to fit on (an expression, e.g. "C < 1e21"); by default the split by compute
    of :func:`scalelaw.predict.default_split` (about the largest quarter of runs held out, whole
    compute levels on one side, both sides non-empty). Returns a dict with per-run relative
    errors, their mean and max, and the share of held-out runs inside the prediction band."""
    from .predict import backtest as _backtest, default_split

    law = _law(law)
    table, source = _table(data, columns, units)
    if train is None:
        table, train, shown = default_split(table, law, where=where)
    else:
        shown = train
    res = _backtest(law, table, train=train, where=where, level=level, source=source, **kwargs)
    res["train"] = shown
    return res


__all__ = ["load", "fit", "load_fit", "laws", "plan", "isoflop", "backtest"]


def design(fit, **kwargs) -> dict:
    """Which runs to train next: :func:`scalelaw.analysis.design.design` (docs/design.md).

    ``fit`` is a Fit, a fit file or a published name (e.g. "epoch-2024"); keywords as the
    function's (target=, target_compute=, budget=, k=, ...)."""
    from .analysis.design import design as _design
    return _design(fit, **kwargs)
