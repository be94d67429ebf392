"""User-defined laws: a formula ``TARGET = EXPR`` becomes a :class:`scalelaw.law.Law`.

The right-hand side is parsed by the project's safe grammar (:mod:`scalelaw.expr`, formula
mode: numbers, names, ``+ - * / ^``, parentheses, ``exp log sqrt abs min max``; nothing is
ever handed to ``eval``). Names that are inputs (columns of the data, or declared) are inputs;
the others are parameters. Exact derivatives for the engine come from symbolic differentiation
of the parsed node tree (:func:`diff`), simplified and evaluated with numpy like the formula.
Parameters in which the formula is affine are found symbolically and declared ``linear``, so
``--method varpro`` applies to formula laws too.

Default parameter declarations (when neither ``--bounds`` nor a law file says otherwise; see
docs/laws.md, "Formula laws"):

* an **exponent** (a parameter inside the exponent of ``^``, inside an ``exp``, or multiplying
  the ``log`` of an input, e.g. ``alpha`` in ``N^-alpha``): bounds [0, 5], grid 0.1, 0.3, 0.6,
  1.0 (write the sign in the formula: ``A/N^alpha`` or ``A*N^-alpha``; give ``--bounds
  alpha=-5:5`` for a sign-free exponent);
* a **scale** (multiplies or divides a term that depends on an input, e.g. ``A`` in
  ``A/N^alpha``): positive, fitted in log space, bounds (0, 1e30], grid ln = 0, 5, 10, 20;
* any other parameter is an **offset** (e.g. ``E``): for the canonical target ``loss`` positive
  and fitted in log space, bounds (0, 1e3], grid ln = -1, 0, 1; for any other target unbounded,
  grid -1, 0, 1 (negative values allowed).

``--bounds NAME=LO:HI`` replaces the bounds (a parameter stays in log space only if LO >= 0
and it was a log parameter); grid values outside the new bounds are dropped and, if none are
left, four points spread inside the bounds (log-spaced for log parameters) are used.
"""
from __future__ import annotations

import difflib
import inspect
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import expr
from .errors import ScalelawError
from .expr import BinOp, Call, Name, Num, Unary

EXPONENT_BOUNDS, EXPONENT_GRID = (0.0, 5.0), (0.1, 0.3, 0.6, 1.0)
SCALE_BOUNDS, SCALE_GRID = (0.0, 1e30), (0.0, 5.0, 10.0, 20.0)
LOSS_OFFSET_BOUNDS, LOSS_OFFSET_GRID = (0.0, 1e3), (-1.0, 0.0, 1.0)
OFFSET_BOUNDS, OFFSET_GRID = (-math.inf, math.inf), (-1.0, 0.0, 1.0)
MAX_STARTS = 5000


# ---- symbolic differentiation ----------------------------------------------------------------
_ZERO, _ONE = Num(0.0), Num(1.0)


def _num(n):
    return isinstance(n, Num)


def _add(a, b):
    if _num(a) and _num(b):
        return Num(a.value + b.value)
    if a == _ZERO:
        return b
    if b == _ZERO:
        return a
    return BinOp("+", a, b)


def _sub(a, b):
    if _num(a) and _num(b):
        return Num(a.value - b.value)
    if b == _ZERO:
        return a
    if a == _ZERO:
        return _neg(b)
    return BinOp("-", a, b)


def _neg(a):
    if _num(a):
        return Num(-a.value)
    if isinstance(a, Unary) and a.op == "-":
        return a.operand
    return Unary("-", a)


def _mul(a, b):
    if _num(a) and _num(b):
        return Num(a.value * b.value)
    if a == _ZERO or b == _ZERO:
        return _ZERO
    if a == _ONE:
        return b
    if b == _ONE:
        return a
    if a == Num(-1.0):
        return _neg(b)
    if b == Num(-1.0):
        return _neg(a)
    return BinOp("*", a, b)


def _div(a, b):
    if a == _ZERO:
        return _ZERO
    if b == _ONE:
        return a
    if _num(a) and _num(b) and b.value != 0:
        return Num(a.value / b.value)
    return BinOp("/", a, b)


def _pow(a, b):
    if b == _ONE:
        return a
    if b == _ZERO:
        return _ONE
    return BinOp("^", a, b)


def _sign(a):
    """sign(a) as a / abs(a) (undefined at 0, where abs, min and max have no derivative)."""
    return BinOp("/", a, Call("abs", (a,)))


def diff(node, var: str):
    """d node / d var as a simplified node tree."""
    if isinstance(node, Num):
        return _ZERO
    if isinstance(node, Name):
        return _ONE if node.id == var else _ZERO
    if var not in expr.free_names(node):
        return _ZERO
    if isinstance(node, Unary):
        return _neg(diff(node.operand, var))
    if isinstance(node, BinOp):
        u, v = node.left, node.right
        du, dv = diff(u, var), diff(v, var)
        if node.op == "+":
            return _add(du, dv)
        if node.op == "-":
            return _sub(du, dv)
        if node.op == "*":
            return _add(_mul(du, v), _mul(u, dv))
        if node.op == "/":
            if dv == _ZERO:
                return _div(du, v)
            return _sub(_div(du, v), _div(_mul(u, dv), _pow(v, Num(2.0))))
        if node.op == "^":
            if dv == _ZERO:      # u^c: c u^(c-1) u'
                return _mul(_mul(v, _pow(u, _sub(v, _ONE))), du)
            # u^v (v' ln u + v u'/u)
            inner = _add(_mul(dv, Call("log", (u,))), _div(_mul(v, du), u))
            return _mul(node, inner)
    if isinstance(node, Call):
        f = node.func
        if f in ("min", "max"):
            # pairwise: min(a, b) = (a + b - |a - b|)/2, max(a, b) = (a + b + |a - b|)/2
            acc = node.args[0]
            for b in node.args[1:]:
                sgn = -1.0 if f == "min" else 1.0
                acc = BinOp("*", Num(0.5), BinOp("+", BinOp("+", acc, b),
                                                  BinOp("*", Num(sgn), Call("abs", (BinOp("-", acc, b),)))))
            return diff(acc, var)
        (u,) = node.args
        du = diff(u, var)
        if f == "exp":
            return _mul(node, du)
        if f == "log":
            return _div(du, u)
        if f == "sqrt":
            return _div(du, _mul(Num(2.0), node))
        if f == "abs":
            return _mul(_sign(u), du)
    raise ScalelawError(f"cannot differentiate {expr.unparse(node)!r}")


# ---- classification of parameters ------------------------------------------------------------
def _roles(node, params: set, inputs: set) -> dict:
    """name -> 'exponent' | 'scale' | 'offset' (see the module docstring)."""
    roles: dict = {}
    rank = {"offset": 0, "scale": 1, "exponent": 2}

    def mark(name, role):
        if rank[role] > rank.get(roles.get(name, "offset"), 0) or name not in roles:
            roles[name] = role if rank[role] >= rank.get(roles.get(name), -1) else roles[name]

    def walk(n, in_exp=False):
        if isinstance(n, Name):
            if n.id in params:
                mark(n.id, "exponent" if in_exp else "offset")
            return
        if isinstance(n, Unary):
            walk(n.operand, in_exp)
        elif isinstance(n, BinOp):
            if n.op == "^":
                walk(n.left, in_exp)
                walk(n.right, True)
                return
            if n.op in ("*", "/"):
                # a bare parameter multiplying/dividing something that depends on an input
                for a, b in ((n.left, n.right), (n.right, n.left)):
                    if isinstance(a, Name) and a.id in params and expr.free_names(b) & inputs:
                        # A * log(N): a slope (exponent-like); A * N^-alpha: a scale
                        slope = in_exp or (isinstance(b, Call) and b.func == "log")
                        mark(a.id, "exponent" if slope else "scale")
            walk(n.left, in_exp)
            walk(n.right, in_exp)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a, in_exp or n.func == "exp")

    walk(node)
    for p in params:
        roles.setdefault(p, "offset")
    return roles


def _linear(node, params: Sequence[str]) -> tuple:
    """Parameters in which the formula is affine jointly (df/dp free of all of them)."""
    d = {p: diff(node, p) for p in params}
    cand = {p for p in params if p not in expr.free_names(d[p])}
    changed = True
    while changed:
        changed = False
        for p in sorted(cand):
            if expr.free_names(d[p]) & cand:
                cand.discard(p)
                changed = True
    return tuple(p for p in params if p in cand)


def _grid_within(grid, lo, hi, log):
    ilo = math.log(lo) if log and lo > 0 else (-math.inf if log else lo)
    ihi = (math.log(hi) if math.isfinite(hi) else math.inf) if log else hi
    kept = tuple(g for g in grid if ilo <= g <= ihi)
    if kept:
        return kept
    a = ilo if math.isfinite(ilo) else (ihi - 4.0 if math.isfinite(ihi) else -1.0)
    b = ihi if math.isfinite(ihi) else a + 4.0
    return tuple(float(v) for v in np.linspace(a, b, 6)[1:-1])


def parse_bounds(items) -> dict:
    """``--bounds NAME=LO:HI`` (repeatable) -> {name: (lo, hi)}; one-line errors."""
    out = {}
    for item in items or ():
        if isinstance(item, (tuple, list)):
            continue
        if "=" not in str(item) or ":" not in str(item).split("=", 1)[1]:
            raise ScalelawError(f"--bounds expects NAME=LO:HI (e.g. --bounds alpha=0:2); got {item!r}")
        name, rng = str(item).split("=", 1)
        lo_s, hi_s = rng.split(":", 1)
        try:
            lo = float(lo_s) if lo_s.strip() not in ("", "-inf") else -math.inf
            hi = float(hi_s) if hi_s.strip() not in ("", "inf") else math.inf
        except ValueError:
            raise ScalelawError(f"--bounds {item!r}: LO and HI must be numbers (e.g. alpha=0:2)") from None
        if not lo < hi:
            raise ScalelawError(f"--bounds {item!r}: LO must be below HI")
        out[name.strip()] = (lo, hi)
    return out


# ---- building a Law --------------------------------------------------------------------------
def split_formula(text: str, what: str = "formula") -> tuple:
    """'TARGET = EXPR' -> (target, parsed node)."""
    if not isinstance(text, str):
        raise ScalelawError(f"{what} must be text such as \"loss = E + A/N^alpha + B/D^beta\"")
    pieces = text.split("=")
    if len(pieces) != 2 or not pieces[0].strip():
        raise ScalelawError(f"{what} {text[:60]!r} must read TARGET = EXPR with one '=' (e.g. "
                            "\"loss = E + A/N^alpha + B/D^beta\")")
    target = pieces[0].strip()
    if not target.replace("_", "a").isalnum() or target[0].isdigit():
        raise ScalelawError(f"{what} {text[:60]!r}: the target {target!r} must be a column name")
    node = expr.parse(pieces[1], mode="formula", what=what)
    return target, node


def from_formula(text: str, *, inputs: Sequence[str] | None = None, columns: Sequence[str] | None = None,
                 name: str | None = None, bounds: Mapping | None = None, log: Mapping | None = None,
                 grid: Mapping | None = None, citation: str = "", description: str = ""):
    """A :class:`scalelaw.law.Law` from ``"TARGET = EXPR"``.

    inputs: the input names (default: the names that are ``columns`` of the data, else the
        names that are canonical run-table columns, scalelaw.schema.CANONICAL).
    bounds / log / grid: per-parameter overrides ({name: (lo, hi)}, {name: bool}, {name: values
        in internal coordinates, i.e. ln(value) for log parameters}).
    """
    from .law import Law, Param
    from .schema import CANONICAL

    what = f"formula of law {name!r}" if name else "formula"
    target, node = split_formula(text, what)
    names = sorted(expr.free_names(node))
    if target in names:
        raise ScalelawError(f"{what} {text[:60]!r}: the target {target!r} also appears on the right-hand side")
    if inputs is not None:
        inputs = [str(i) for i in inputs]
        absent = [i for i in inputs if i not in names]
        if absent:
            raise ScalelawError(f"{what} {text[:60]!r}: declared input(s) {', '.join(absent)} do not appear in it")
    else:
        pool = set(columns) if columns is not None else set(CANONICAL)
        inputs = [n for n in names if n in pool]
    if not inputs:
        have = f"; columns are {', '.join(map(str, list(columns)[:15]))}" if columns is not None else ""
        raise ScalelawError(f"{what} {text[:60]!r} names no input: none of {', '.join(names) or 'its names'} "
                            f"is a column of the data{have}")
    params = [n for n in names if n not in inputs]
    if not params:
        raise ScalelawError(f"{what} {text[:60]!r} has no parameter to fit (every name is an input)")
    _refuse_unknown_inputs(node, params, inputs, columns, text, what)
    bounds = dict(bounds or {})
    log = dict(log or {})
    grid = dict(grid or {})
    for k in list(bounds) + list(log) + list(grid):
        if k not in params:
            raise ScalelawError(f"{what}: {k!r} is not a parameter of {text[:60]!r}; parameters: {', '.join(params)}")
    roles = _roles(node, set(params), set(inputs))
    is_loss = target == "loss"
    pdefs = []
    for p in params:
        role = roles[p]
        if role == "exponent":
            (lo, hi), g, lg = EXPONENT_BOUNDS, EXPONENT_GRID, False
        elif role == "scale":
            (lo, hi), g, lg = SCALE_BOUNDS, SCALE_GRID, True
        elif is_loss:
            (lo, hi), g, lg = LOSS_OFFSET_BOUNDS, LOSS_OFFSET_GRID, True
        else:
            (lo, hi), g, lg = OFFSET_BOUNDS, OFFSET_GRID, False
        if p in bounds:
            lo, hi = (float(v) for v in bounds[p])
            if not lo < hi:
                raise ScalelawError(f"{what}: bounds of {p!r} need LO < HI; got {bounds[p]}")
            lg = lg and lo >= 0
        if p in log:
            lg = bool(log[p])
            if lg and lo < 0:
                raise ScalelawError(f"{what}: parameter {p!r} cannot be fitted in log space with a negative "
                                    f"lower bound {lo:g}")
        if p in grid:
            g = tuple(float(v) for v in grid[p])
        g = _grid_within(g, lo, hi, lg)
        pdefs.append(Param(p, lo, hi, g, log=lg, doc=f"{role} (formula default)" if p not in bounds else role))
    n_starts = math.prod(len(p.grid) for p in pdefs)
    if n_starts > MAX_STARTS:
        pdefs = [Param(p.name, p.lower, p.upper, p.grid[:: max(1, len(p.grid) // 2)], log=p.log, doc=p.doc)
                 for p in pdefs]
    argnames = list(inputs) + params
    derivs = [diff(node, p) for p in params]

    def func(*args):
        env = dict(zip(argnames, args))
        with np.errstate(all="ignore"):
            return expr.evaluate(node, env)

    def jac(*args):
        env = dict(zip(argnames, args))
        with np.errstate(all="ignore"):
            return tuple(expr.evaluate(d, env) for d in derivs)

    P = inspect.Parameter
    sig = inspect.Signature([P(a, P.POSITIONAL_OR_KEYWORD) for a in argnames])
    func.__signature__ = sig
    jac.__signature__ = sig
    label = name or "formula"
    func.__name__ = f"formula_{label}"
    spec = {"formula": f"{target} = {expr.unparse(node)}", "inputs": list(inputs), "name": label,
            "params": {p.name: {"lower": p.lower, "upper": p.upper, "log": p.log, "grid": list(p.grid)}
                       for p in pdefs},
            "citation": citation, "description": description}
    return Law(name=label, func=func, jac=jac, inputs=tuple(inputs), params=tuple(pdefs), target=target,
               formula=spec["formula"], citation=citation or "user-defined formula",
               description=description or "a law defined by its formula",
               family="formula", default_objective="huber-log" if is_loss else "lsq",
               positive_target=is_loss, linear=_linear(node, params), spec=spec)


def _refuse_unknown_inputs(node, params, inputs, columns, text, what):
    """A name meant as a column but misspelt would silently become a parameter: refuse names
    close to a column, and parameters raised to a fitted power (unidentifiable)."""
    if columns is None:
        return
    cols = [str(c) for c in columns]
    for p in params:
        close = difflib.get_close_matches(p, cols, n=1, cutoff=0.6)
        if close and len(p) > 1:
            raise ScalelawError(f"{what} {text[:60]!r} names {p!r}, which is not a column of the data (did you "
                                f"mean {close[0]!r}?); columns are {', '.join(cols[:15])}")

    def walk(n):
        if isinstance(n, BinOp):
            if (n.op == "^" and isinstance(n.left, Name) and n.left.id in params
                    and expr.free_names(n.right) & set(params)):
                raise ScalelawError(f"{what} {text[:60]!r}: {n.left.id!r} is not a column of the data (columns: "
                                    f"{', '.join(cols[:15])}), and as a parameter raised to a fitted power it "
                                    "cannot be fitted; name an input column")
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Unary):
            walk(n.operand)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)
    walk(node)


def law_from_spec(spec: Mapping):
    """Rebuild a formula law from the ``law_spec`` stored in a fit file (the formula is re-parsed
    by the safe grammar, never evaluated as code)."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("formula"), str):
        raise ScalelawError("fit file: law_spec must hold the law's formula text")
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise ScalelawError("fit file: law_spec.params must map parameter names to bounds")

    def num(v):
        return float(v) if v is not None else math.nan

    try:
        bounds = {k: (num(v["lower"]), num(v["upper"])) for k, v in params.items()}
        log = {k: bool(v["log"]) for k, v in params.items()}
        grid = {k: [float(g) for g in v.get("grid", [])] for k, v in params.items()}
    except (KeyError, TypeError, ValueError):
        raise ScalelawError("fit file: law_spec.params entries need lower, upper, log (and grid)") from None
    return from_formula(spec["formula"], inputs=spec.get("inputs"), name=spec.get("name"), bounds=bounds,
                        log=log, grid=grid, citation=str(spec.get("citation") or ""),
                        description=str(spec.get("description") or ""))


# ---- law files (TOML) ------------------------------------------------------------------------
def read_law_file(path) -> dict:
    """name -> Law from a TOML file of ``[[law]]`` tables (docs/laws.md, "Law files")."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    p = Path(str(path))
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ScalelawError(f"law file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScalelawError(f"cannot read law file {p}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScalelawError(f"law file {p} is not valid TOML: {exc}") from None
    entries = data.get("law")
    if not isinstance(entries, list) or not entries:
        raise ScalelawError(f"law file {p} declares no law; write [[law]] tables with name and formula")
    out = {}
    allowed = {"name", "formula", "inputs", "params", "citation", "description"}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ScalelawError(f"law file {p}: law {i + 1} must be a table")
        extra = sorted(set(e) - allowed)
        if extra:
            raise ScalelawError(f"law file {p}: law {e.get('name', i + 1)!r} has unknown key(s) {', '.join(extra)}; "
                                f"keys are {', '.join(sorted(allowed))}")
        nm, text = e.get("name"), e.get("formula")
        if not isinstance(nm, str) or not nm or not isinstance(text, str):
            raise ScalelawError(f"law file {p}: law {i + 1} needs a name and a formula (strings)")
        if nm in out:
            raise ScalelawError(f"law file {p}: law {nm!r} is declared twice")
        bounds, log, grid = {}, {}, {}
        for pname, pd_ in (e.get("params") or {}).items():
            if not isinstance(pd_, dict):
                raise ScalelawError(f"law file {p}: params.{pname} of law {nm!r} must be a table")
            bad = sorted(set(pd_) - {"bounds", "log", "grid"})
            if bad:
                raise ScalelawError(f"law file {p}: params.{pname} of law {nm!r} has unknown key(s) "
                                    f"{', '.join(bad)}; keys are bounds, log, grid")
            if "bounds" in pd_:
                b = pd_["bounds"]
                if not (isinstance(b, list) and len(b) == 2 and all(isinstance(v, (int, float)) for v in b)):
                    raise ScalelawError(f"law file {p}: params.{pname}.bounds of law {nm!r} must be [LO, HI]")
                bounds[pname] = (float(b[0]), float(b[1]))
            if "log" in pd_:
                log[pname] = bool(pd_["log"])
            if "grid" in pd_:
                g = pd_["grid"]
                if not (isinstance(g, list) and g and all(isinstance(v, (int, float)) for v in g)):
                    raise ScalelawError(f"law file {p}: params.{pname}.grid of law {nm!r} must be a list of numbers")
                grid[pname] = [float(v) for v in g]
        inputs = e.get("inputs")
        if inputs is not None and not (isinstance(inputs, list) and all(isinstance(v, str) for v in inputs)):
            raise ScalelawError(f"law file {p}: inputs of law {nm!r} must be a list of column names")
        out[nm] = from_formula(text, inputs=inputs, name=nm, bounds=bounds, log=log, grid=grid,
                               citation=str(e.get("citation") or ""), description=str(e.get("description") or ""))
    return out


def resolve(spec, *, columns: Sequence[str] | None = None, law_files: Sequence = (), bounds: Mapping | None = None):
    """The law a user named: a formula (contains '='), a law of a ``--laws`` file, or a registered
    law name. ``bounds`` (from --bounds) apply to formulas only."""
    from .law import Law, get_law

    if isinstance(spec, Law):
        return spec
    text = str(spec)
    if "=" in text:
        return from_formula(text, columns=columns, bounds=bounds)
    if bounds:
        raise ScalelawError("--bounds applies to a formula law (\"loss = E + A/N^alpha\"); for a built-in law "
                            "use --fix, or copy its formula")
    for f in law_files or ():
        laws = read_law_file(f)
        if text in laws:
            return laws[text]
    return get_law(text)
