"""Declarative laws and the registry.

A law is a plain, vectorised numpy function whose leading arguments are the inputs (canonical
run-table columns) and whose remaining arguments are the parameters, plus a declaration of each
parameter (bounds, starting grid, whether it is fitted in log space). Adding a law is one
``register(Law(...))`` call; the shared contract test (tests/test_law_contract.py) then checks
it. Laws are stored in fit files by name and version, never pickled.

Functions must broadcast: the fitting engine calls them with inputs of shape ``(n,)`` and
parameters of shape ``(S, 1)`` to evaluate S parameter vectors at once.
"""
from __future__ import annotations

import inspect
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .errors import ScalelawError, unknown_name

OBJECTIVES = ("huber-log", "lsq-log", "lsq", "huber")


@dataclass(frozen=True)
class Param:
    """One fitted parameter.

    ``lower``/``upper`` are bounds in natural units. With ``log=True`` the engine fits
    ``ln(value)`` (value must be positive) and ``grid`` lists starting values of ``ln(value)``,
    as Hoffmann et al. state their grid; otherwise ``grid`` holds natural values.
    """

    name: str
    lower: float = -math.inf
    upper: float = math.inf
    grid: tuple = ()
    log: bool = False
    doc: str = ""

    def __post_init__(self):
        if self.log and self.lower < 0:
            raise ValueError(f"Param {self.name!r}: log=True needs lower >= 0, got {self.lower}")
        if not self.lower < self.upper:
            raise ValueError(f"Param {self.name!r}: lower {self.lower} must be < upper {self.upper}")
        object.__setattr__(self, "grid", tuple(float(g) for g in self.grid))

    # internal <-> natural coordinates
    def internal_bounds(self) -> tuple[float, float]:
        if self.log:
            lo = math.log(self.lower) if self.lower > 0 else -math.inf
            hi = math.log(self.upper) if math.isfinite(self.upper) else math.inf
            return lo, hi
        return self.lower, self.upper

    def to_internal(self, value):
        return np.log(value) if self.log else np.asarray(value, dtype=float)

    def to_natural(self, theta):
        return np.exp(theta) if self.log else theta

    def default_start(self) -> float:
        """A start in internal coordinates when the grid is empty."""
        if self.grid:
            return self.grid[len(self.grid) // 2]
        lo, hi = self.internal_bounds()
        if math.isfinite(lo) and math.isfinite(hi):
            return 0.5 * (lo + hi)
        if math.isfinite(lo):
            return lo + 1.0
        if math.isfinite(hi):
            return hi - 1.0
        return 0.0


@dataclass(frozen=True)
class Law:
    """A scaling law declaration.

    func: ``func(*inputs, *params) -> prediction`` (names from its signature).
    jac: optional ``jac(*inputs, *params) -> tuple`` of d prediction / d param (natural units),
        one array per parameter in declaration order; without it the engine differentiates
        numerically.
    derived: name -> ``f(params: Mapping) -> value`` (works on arrays for intervals).
    optimum: ``optimum(params, **given) -> dict`` e.g. compute-optimal N and D for a budget C;
        ``optimum_args`` names the keyword(s) it takes.
    inverse: ``inverse(y, params, **other_inputs) -> value of inverse_of`` solving f = y.
    prepare: ``prepare(df, **options) -> df`` run on the selected rows before fitting.
    linear: the parameters in which ``func`` is affine jointly (f = g0 + sum_j c_j g_j with g
        free of them), e.g. ("E", "A", "B") for Chinchilla; ``fit --method varpro`` solves them
        by bounded least squares for each value of the others (scalelaw/varpro.py).
    options: the keyword options ``prepare`` takes (``--option KEY=VALUE``, ``prepare_options``);
        by default the keyword parameters of prepare's signature after the table (declare them
        when prepare forwards ``**options``). :meth:`check_options` refuses any other key.
    target_range: (lo, hi) the target can take (an error rate or a probability: (0, 1)), or None.
        Predictions, their intervals and parameter draws are clipped to it (:meth:`clip_target`)
        and the output says so: an interval reaching the bound means the law is extrapolated far
        beyond where it was fitted.
    domain: input -> (lo, hi) range used by the contract test (log-uniform when lo > 0).
    example: parameter values the contract test recovers from noiseless synthetic data.
    published: label -> {param: value} of published constants ("ready fits").
    """

    name: str
    func: Callable
    inputs: tuple
    params: tuple
    target: str = "loss"
    formula: str = ""
    version: int = 1
    citation: str = ""
    description: str = ""
    family: str = "loss"
    jac: Callable | None = None
    derived: Mapping[str, Callable] = field(default_factory=dict)
    optimum: Callable | None = None
    optimum_args: tuple = ()
    inverse: Callable | None = None
    inverse_of: str | None = None
    domain: Mapping[str, tuple] = field(default_factory=dict)
    example: Mapping[str, float] = field(default_factory=dict)
    published: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    default_objective: str = "huber-log"
    positive_target: bool = True
    target_range: tuple | None = None  # (lo, hi) of a bounded target, e.g. (0, 1) for an error rate
    starts: Callable | None = None  # optional custom start generator: starts(X, y) -> (S, P) internal
    # optional table transform applied before fitting (after --where), e.g. a sweep -> the
    # near-optimal rows of each (N, D) cell; prepare(df, **options) -> DataFrame
    prepare: Callable | None = None
    # names of prepare's keyword options; None: read from prepare's signature
    options: tuple | None = None
    # optional validation of prediction inputs: check_inputs(df, where) raises ScalelawError
    check_inputs: Callable | None = None
    # parameters in which the law is affine (jointly), e.g. E, A, B of Chinchilla: variable
    # projection (scalelaw/varpro.py) solves them exactly for each value of the others
    linear: tuple = ()
    # a formula law's own description (scalelaw/formula.py): stored in fit files so the law can
    # be rebuilt (re-parsed, never executed) where it is not registered
    spec: Mapping | None = None

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "params", tuple(self.params))
        sig = list(inspect.signature(self.func).parameters)
        want = list(self.inputs) + [p.name for p in self.params]
        if sig != want:
            raise ValueError(f"law {self.name!r}: function arguments {sig} must be inputs then params {want}")
        if self.default_objective not in OBJECTIVES:
            raise ValueError(f"law {self.name!r}: unknown default objective {self.default_objective!r}")
        if self.inverse is not None and self.inverse_of not in self.inputs + (self.target,):
            raise ValueError(f"law {self.name!r}: inverse_of must name an input")
        if self.target_range is not None:
            lo, hi = (float(v) for v in self.target_range)
            if not lo < hi:
                raise ValueError(f"law {self.name!r}: target_range needs lo < hi, got {self.target_range}")
            object.__setattr__(self, "target_range", (lo, hi))
        options = _keyword_names(self.prepare) if self.options is None else tuple(self.options)
        if options and self.prepare is None:
            raise ValueError(f"law {self.name!r}: options {options} need a prepare step to take them")
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "linear", tuple(self.linear))
        unknown = [n for n in self.linear if n not in [p.name for p in self.params]]
        if unknown:
            raise ValueError(f"law {self.name!r}: linear names unknown parameter(s) {unknown}")

    @classmethod
    def from_formula(cls, text: str, *, inputs=None, name=None, bounds=None, log=None, grid=None,
                     citation: str = "", description: str = "") -> "Law":
        """A law from ``"TARGET = EXPR"`` parsed by the project's safe grammar, e.g.
        ``Law.from_formula("loss = E + A/N^alpha + B/D^beta", inputs=("N", "D"))``; default
        inputs are the canonical run-table columns it names. See scalelaw/formula.py for the
        default bounds and grids of its parameters."""
        from .formula import from_formula

        return from_formula(text, inputs=inputs, name=name, bounds=bounds, log=log, grid=grid,
                            citation=citation, description=description)

    # ---- conveniences -------------------------------------------------------------------
    @property
    def param_names(self) -> tuple:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise unknown_name(f"parameter of law {self.name!r}", name, self.param_names)

    def check_options(self, options: Mapping | None) -> dict:
        """The options for the prepare step as a dict; one-line error for a key the law does not take.

        The one check of ``--option KEY=VALUE`` (``prepare_options``) for every law: a law
        without a prepare step takes none, and an unknown key is named with the law's options
        and the closest one (a typo must not reach prepare as a TypeError, nor be ignored).
        """
        opts = dict(options or {})
        for key in opts:
            if key in self.options:
                continue
            if not self.options:
                raise ScalelawError(
                    f"law {self.name!r} takes no --option (it has no data-preparation step); got "
                    f"--option {key}={opts[key]}: drop it")
            hint = str(unknown_name("--option", str(key), self.options)).split("; ", 1)[-1]
            close = f"; {hint} It" if hint.startswith("did you mean") else "; it"
            raise ScalelawError(f"law {self.name!r} has no --option {str(key)!r}{close} takes: "
                                f"{', '.join(self.options)} (as --option KEY=VALUE)")
        return opts

    def clip_target(self, y):
        """(y clipped to ``target_range``, mask of the values that lay outside it); NaN stays NaN."""
        y = np.asarray(y, dtype=float)
        if self.target_range is None:
            return y, np.zeros(y.shape, dtype=bool)
        lo, hi = self.target_range
        with np.errstate(invalid="ignore"):
            outside = (y < lo) | (y > hi)
        return np.clip(y, lo, hi), outside

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)

    def evaluate(self, X: Mapping[str, np.ndarray], params: Mapping[str, object]) -> np.ndarray:
        """Evaluate on inputs ``X`` (column -> array) with ``params`` (name -> value)."""
        missing = [c for c in self.inputs if c not in X]
        if missing:
            raise ScalelawError(
                f"law {self.name!r} needs input(s) {', '.join(missing)}; give them (e.g. --at {missing[0]}=...)"
            )
        with np.errstate(all="ignore"):
            return self.func(*(np.asarray(X[c], dtype=float) for c in self.inputs),
                             *(params[p] for p in self.param_names))

    def grid_starts(self, free: Sequence[str] | None = None) -> np.ndarray:
        """Cartesian product of the parameters' grids, internal coordinates, shape (S, P_free)."""
        ps = [p for p in self.params if free is None or p.name in free]
        axes = [p.grid if p.grid else (p.default_start(),) for p in ps]
        return np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(ps))

    def describe(self) -> dict:
        """A JSON-able description (for `scalelaw laws`)."""
        return {
            "name": self.name,
            "version": self.version,
            "family": self.family,
            "formula": self.formula,
            "inputs": list(self.inputs),
            "target": self.target,
            "target_range": None if self.target_range is None else list(self.target_range),
            "params": [
                {"name": p.name, "lower": p.lower, "upper": p.upper, "log": p.log,
                 "n_grid": len(p.grid), "doc": p.doc}
                for p in self.params
            ],
            "derived": list(self.derived),
            "options": list(self.options),
            "optimum": list(self.optimum_args) if self.optimum else None,
            "inverse_of": self.inverse_of,
            "default_objective": self.default_objective,
            "linear": list(self.linear),
            "published": {k: dict(v) for k, v in self.published.items()},
            "citation": self.citation,
        }


def _keyword_names(prepare: Callable | None) -> tuple:
    """The named keyword parameters of a prepare function after its table argument."""
    if prepare is None:
        return ()
    try:
        ps = list(inspect.signature(prepare).parameters.values())[1:]
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return ()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in ps if p.kind in kinds)


_REGISTRY: dict[str, Law] = {}
_LOADED = False


def register(law: Law, *, replace: bool = False) -> Law:
    """Add a law to the registry (validated once, at import)."""
    if law.name in _REGISTRY and not replace:
        raise ValueError(f"law {law.name!r} is already registered")
    _REGISTRY[law.name] = law
    return law


ENTRY_POINT_GROUP = "scalelaw.laws"


def _load_builtin():
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import laws  # noqa: F401  (registers the built-in families)
        load_entry_points()


def load_entry_points() -> list:
    """Register the laws packages ship in the ``scalelaw.laws`` entry-point group.

    Each entry point loads to a Law, a list of Laws, or a callable returning either. A plugin
    that fails to load, or gives something else, is skipped with a warning naming it (one
    broken package must not break every command). Returns the names registered."""
    import warnings
    from importlib.metadata import entry_points

    added = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, Law):
                obj = obj()
            items = [obj] if isinstance(obj, Law) else list(obj)
            if not all(isinstance(x, Law) for x in items):
                raise TypeError("it must give a Law, a list of Laws, or a callable returning them")
            for law in items:
                if law.name in _REGISTRY and _REGISTRY[law.name] is not law:
                    raise ValueError(f"law {law.name!r} is already registered")
                _REGISTRY[law.name] = law
                added.append(law.name)
        except Exception as exc:  # a third-party package: report, never crash the CLI
            warnings.warn(f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP} was skipped: {exc}",
                          stacklevel=2)
    return added


def is_registered(law: Law) -> bool:
    """True when ``law`` is the registered law of its name (so a worker can look it up)."""
    _load_builtin()
    return _REGISTRY.get(law.name) is law


def get_law(name) -> Law:
    """Look a law up by name (a Law passes through)."""
    if isinstance(name, Law):
        return name
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_name("law", str(name), _REGISTRY) from None


def all_laws() -> list[Law]:
    _load_builtin()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
