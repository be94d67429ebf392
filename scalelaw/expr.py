"""The project's own expression language: filters and formulas are data, never code.

Every expression scalelaw accepts (``--where``, ``--train``, ``--reference``, a fit file's stored
``settings.where`` / ``data.filter``, a user-defined law's formula) is tokenized and parsed here by
a small recursive-descent parser into the node objects below, then evaluated with numpy. Nothing
is handed to ``eval``/``exec``/``pandas.eval``/``DataFrame.query``; a name is only ever looked up
in the mapping the caller passes; no attribute access except the whitelisted method forms
(``X.notna()``, ``X.isna()``, ``X.notnull()``, ``X.isnull()``, ``X.abs()``); no ``@`` names, no
calls outside the function list, no dunder names. Every refusal is a one-line ScalelawError.

Grammar (lowest precedence first; Python's, with pandas' ``&``/``|``/``~`` as ``and``/``or``/``not``)::

    expr    := or
    or      := and (("or" | "|") and)*
    and     := not (("and" | "&") not)*
    not     := ("not" | "~") not | compare
    compare := arith (("<"|"<="|">"|">="|"=="|"!=") arith | ["not"] "in" list)*   (chained: a < b < c)
    arith   := term (("+"|"-") term)*
    term    := unary (("*"|"/") unary)*
    unary   := ("-"|"+") unary | power
    power   := postfix (("**"|"^") unary)?                 (right-associative; -x**2 == -(x**2))
    postfix := atom ("." METHOD "(" ")")*
    atom    := NUMBER | STRING | NAME | `BACKTICK NAME` | FUNC "(" expr ("," expr)* ")"
             | "(" expr ")" | "True" | "False"
    list    := "[" [literal ("," literal)*] "]"  (also "(...)"; literals: numbers, strings, True/False)

``^`` is a power (as in formulas), never xor. Numbers are float64 (``3e8``, ``.5``, ``1_000``).
Strings take single or double quotes (backslash escapes the quote). Functions: ``exp log log10
log2 sqrt abs min max`` (min/max elementwise over 2+ arguments) and, in filters only,
``isna notna isnull notnull``. Formulas (mode "formula") allow only numbers, names, ``+ - * / ^
**``, unary minus, parentheses and ``exp log sqrt abs min max``.

Limits: at most MAX_CHARS characters, MAX_TOKENS tokens, MAX_DEPTH nesting levels; a constant
sub-expression (numbers only) is folded at parse time and refused when it is not finite, so
``N > 9**9**9**9`` fails at once instead of hanging; a constant exponent larger than MAX_EXPONENT
in magnitude is refused.

API::

    parse(text, mode="filter"|"formula", what="--where") -> Node   # ScalelawError if not allowed
    free_names(node) -> set[str]          # the names (columns / inputs / params) it reads
    evaluate(node, env) -> numpy value    # env: Mapping name -> array or scalar (broadcasting)
    unparse(node) -> str                  # canonical text (fully parenthesised where needed)
    mask(df, text, what="--where", source="the table") -> np.ndarray[bool]  (one per row)
    select(df, text, what="--where", source="the table") -> DataFrame  (the rows where mask is true)
    Formula(text, what="formula")         # .node, .names (sorted tuple), .text, f(**arrays) / f.compute(env)

Nodes (frozen dataclasses; compare and hash by value, so they can be simplified/differentiated):

    Num(value: float)          Str(value: str)          Name(id: str)
    Unary(op, operand)         op in {"-", "not"}       (unary plus is dropped at parse time)
    BinOp(op, left, right)     op in {"+", "-", "*", "/", "^"}   ("**" is stored as "^")
    Call(func, args: tuple)    func in FUNCS; method forms X.notna() become Call("notna", (X,))
    Compare(ops: tuple, operands: tuple)   a < b <= c: ops ("<", "<="), operands (a, b, c)
    BoolOp(op, values: tuple)  op in {"and", "or"}
    In(operand, items: tuple of Num/Str, negate: bool)

A formula only ever contains Num, Name, Unary("-"), BinOp and Call(exp|log|sqrt|abs|min|max).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from .errors import ScalelawError

MAX_CHARS = 4000
MAX_TOKENS = 1000
MAX_DEPTH = 60
MAX_EXPONENT = 1e4

FORMULA_FUNCS = {"exp": 1, "log": 1, "sqrt": 1, "abs": 1, "min": None, "max": None}
FILTER_FUNCS = dict(FORMULA_FUNCS, log10=1, log2=1, isna=1, notna=1, isnull=1, notnull=1)
FUNCS = FILTER_FUNCS
METHODS = ("isna", "notna", "isnull", "notnull", "abs")
COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")


# ---- nodes ---------------------------------------------------------------------------------------
class Node:
    __slots__ = ()


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Str(Node):
    value: str


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple


@dataclass(frozen=True)
class Compare(Node):
    ops: tuple
    operands: tuple


@dataclass(frozen=True)
class BoolOp(Node):
    op: str
    values: tuple


@dataclass(frozen=True)
class In(Node):
    operand: Node
    items: tuple
    negate: bool = False


# ---- tokenizer -----------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<back>`[^`\n]*`)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<op>\*\*|<=|>=|==|!=|[-+*/^<>()\[\],.&|~])
""", re.VERBOSE)

_KEYWORDS = {"and", "or", "not", "in", "True", "False"}
_SHORT = 60


def _short(text: str) -> str:
    return text if len(text) <= _SHORT else text[:_SHORT - 3] + "..."


class _Tok:
    __slots__ = ("kind", "value", "pos")

    def __init__(self, kind, value, pos):
        self.kind, self.value, self.pos = kind, value, pos

    def __repr__(self):
        return f"{self.kind}:{self.value!r}"


def _refuse_char(text: str, pos: int, what: str):
    ch = text[pos]
    if ch == "@":
        m = re.match(r"@\w*", text[pos:])
        why = f"'@' names ({m.group(0)!r}: Python variables) are not allowed"
    elif ch in "\"'":
        why = "a string is not closed"
    elif ch == "`":
        why = "a backtick-quoted name is not closed"
    elif ch == "=":
        why = "'=' is an assignment, not allowed (compare with '==')"
    elif ch in ":;{}":
        why = f"{ch!r} is not allowed (no lambdas, slices, statements or dicts)"
    else:
        why = f"character {ch!r} is not allowed"
    raise ScalelawError(f"{what} {_short(text)!r} could not be evaluated: {why} (at position {pos}); an expression uses column "
                        "names, numbers, strings, comparisons, and/or/not, in [...], arithmetic and "
                        "log/exp/abs/sqrt/isna/notna")


def _tokenize(text: str, what: str) -> list:
    toks = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            _refuse_char(text, pos, what)
        kind = m.lastgroup
        val = m.group(0)
        if kind == "num" and pos + len(val) < n and (text[pos + len(val)].isalpha() or text[pos + len(val)] == "_"):
            raise ScalelawError(f"{what} {_short(text)!r} could not be evaluated: {text[pos:pos + len(val) + 1]!r}... is not a number "
                                f"(at position {pos}); write numbers as 3e8 or 0.5")
        if kind != "ws":
            toks.append(_Tok(kind, val, pos))
            if len(toks) > MAX_TOKENS:
                raise ScalelawError(f"{what} is longer than {MAX_TOKENS} tokens; write a shorter expression")
        pos = m.end()
    toks.append(_Tok("end", "", n))
    return toks


def _unescape(s: str) -> str:
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# ---- parser --------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, mode: str, what: str):
        self.text, self.mode, self.what = text, mode, what
        self.toks = _tokenize(text, what)
        self.i = 0
        self.depth = 0
        self.funcs = FORMULA_FUNCS if mode == "formula" else FILTER_FUNCS

    # helpers
    def fail(self, why: str, tok: _Tok | None = None):
        tok = tok or self.peek()
        where = "at the end" if tok.kind == "end" else f"at position {tok.pos}"
        raise ScalelawError(f"{self.what} {_short(self.text)!r} could not be evaluated: {why} ({where})")

    def peek(self, k: int = 0) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, kind: str, *values) -> bool:
        t = self.peek()
        return t.kind == kind and (not values or t.value in values)

    def expect_op(self, value: str):
        t = self.peek()
        if not (t.kind == "op" and t.value == value):
            self.fail(f"expected {value!r}, found {t.value!r}" if t.kind != "end" else f"expected {value!r}")
        self.next()

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nested more than {MAX_DEPTH} levels deep; simplify the expression")

    def leave(self):
        self.depth -= 1

    def formula_only(self, what: str):
        if self.mode == "formula":
            self.fail(f"{what} is not allowed in a formula (numbers, names, + - * / ^, exp, log, sqrt, "
                      "abs, min, max)")

    # grammar
    def parse(self) -> Node:
        if self.at("end"):
            raise ScalelawError(f"{self.what} is empty; write an expression such as \"N < 1e9\"")
        node = self.expr()
        if not self.at("end"):
            t = self.peek()
            if t.kind == "op" and t.value == ".":
                self.fail("attribute access is not allowed")
            self.fail(f"unexpected {t.value!r}")
        return node

    def expr(self) -> Node:
        self.enter()
        try:
            return self.or_()
        finally:
            self.leave()

    def or_(self) -> Node:
        vals = [self.and_()]
        while self.at("name", "or") or self.at("op", "|"):
            self.formula_only("'or'")
            self.next()
            vals.append(self.and_())
        return vals[0] if len(vals) == 1 else BoolOp("or", tuple(vals))

    def and_(self) -> Node:
        vals = [self.not_()]
        while self.at("name", "and") or self.at("op", "&"):
            self.formula_only("'and'")
            self.next()
            vals.append(self.not_())
        return vals[0] if len(vals) == 1 else BoolOp("and", tuple(vals))

    def not_(self) -> Node:
        if self.at("name", "not") or self.at("op", "~"):
            self.formula_only("'not'")
            self.next()
            self.enter()
            try:
                return Unary("not", self.not_())
            finally:
                self.leave()
        return self.compare()

    def compare(self) -> Node:
        left = self.arith()
        ops, operands = [], [left]
        while True:
            t = self.peek()
            if t.kind == "op" and t.value in COMPARE_OPS:
                self.formula_only("a comparison")
                self.next()
                ops.append(t.value)
                operands.append(self.arith())
            elif (t.kind == "name" and t.value == "in") or (
                    t.kind == "name" and t.value == "not" and self.peek(1).kind == "name" and self.peek(1).value == "in"):
                self.formula_only("'in'")
                negate = t.value == "not"
                self.next()
                if negate:
                    self.next()
                if ops:
                    self.fail("'in' cannot be chained with comparisons; use 'and'")
                items = self.literal_list()
                node = In(left, items, negate)
                if self.peek().kind == "op" and self.peek().value in COMPARE_OPS:
                    self.fail("'in' cannot be chained with comparisons; use 'and'")
                return node
            else:
                break
        if not ops:
            return left
        return Compare(tuple(ops), tuple(operands))

    def literal_list(self) -> tuple:
        t = self.peek()
        if not (t.kind == "op" and t.value in "[("):
            self.fail("'in' takes a list of values, e.g. in [\"a\", \"b\"] or in [1, 2]")
        close = "]" if t.value == "[" else ")"
        self.next()
        items = []
        while not self.at("op", close):
            items.append(self.literal())
            if self.at("op", ","):
                self.next()
            elif not self.at("op", close):
                self.fail(f"expected ',' or {close!r} in the list")
        self.next()
        return tuple(items)

    def literal(self) -> Node:
        t = self.peek()
        sign = 1.0
        if t.kind == "op" and t.value in "+-":
            sign = -1.0 if t.value == "-" else 1.0
            self.next()
            t = self.peek()
            if t.kind != "num":
                self.fail("a list holds numbers and strings only")
        if t.kind == "num":
            self.next()
            return Num(sign * self.number(t))
        if t.kind == "str":
            self.next()
            return Str(_unescape(t.value))
        if t.kind == "name" and t.value in ("True", "False"):
            self.next()
            return Num(1.0 if t.value == "True" else 0.0)
        self.fail("a list holds numbers and strings only")

    def arith(self) -> Node:
        node = self.term()
        while self.at("op", "+", "-"):
            op = self.next().value
            node = _fold(BinOp(op, node, self.term()), self)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.at("op", "*", "/"):
            op = self.next().value
            node = _fold(BinOp(op, node, self.unary()), self)
        return node

    def unary(self) -> Node:
        if self.at("op", "-", "+"):
            op = self.next().value
            self.enter()
            try:
                operand = self.unary()
            finally:
                self.leave()
            if op == "+":
                return operand
            return _fold(Unary("-", operand), self)
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.at("op", "**", "^"):
            self.next()
            self.enter()
            try:
                exponent = self.unary()
            finally:
                self.leave()
            if isinstance(exponent, Num) and abs(exponent.value) > MAX_EXPONENT:
                self.fail(f"the exponent {exponent.value:g} is larger than {MAX_EXPONENT:g}; such a power "
                          "is not a real quantity")
            return _fold(BinOp("^", base, exponent), self)
        return base

    def postfix(self) -> Node:
        node = self.atom()
        while self.at("op", "."):
            dot = self.next()
            t = self.peek()
            name = t.value if t.kind == "name" else ""
            if name in METHODS and self.peek(1).kind == "op" and self.peek(1).value == "(" \
                    and self.peek(2).kind == "op" and self.peek(2).value == ")" and self.mode == "filter":
                self.next(), self.next(), self.next()
                node = Call({"isnull": "isna", "notnull": "notna"}.get(name, name), (node,))
            else:
                shown = (name or t.value)
                allowed = ("" if self.mode == "formula" else
                           f"; only the methods {', '.join('.' + m + '()' for m in METHODS)} are")
                self.fail(f"attribute access ('.{shown}') is not allowed{allowed}", dot)
        return node

    def number(self, t: _Tok) -> float:
        try:
            v = float(t.value.replace("_", ""))
        except ValueError:
            self.fail(f"{t.value!r} is not a number", t)
        if not math.isfinite(v):
            self.fail(f"the number {t.value} is too large", t)
        return v

    def atom(self) -> Node:
        t = self.peek()
        if t.kind == "num":
            self.next()
            return Num(self.number(t))
        if t.kind == "str":
            self.formula_only("a string")
            self.next()
            return Str(_unescape(t.value))
        if t.kind == "back":
            self.formula_only("a backtick-quoted name")
            self.next()
            name = t.value[1:-1]
            if not name:
                self.fail("an empty backtick-quoted name", t)
            return Name(name)
        if t.kind == "op" and t.value == "(":
            self.next()
            node = self.expr()
            self.expect_op(")")
            return node
        if t.kind == "op" and t.value == "[":
            self.fail("a list is only allowed after 'in'")
        if t.kind == "name":
            name = t.value
            if name in ("True", "False"):
                self.formula_only(name)
                self.next()
                return Num(1.0 if name == "True" else 0.0)
            if name in _KEYWORDS:
                self.fail(f"unexpected {name!r}")
            if name == "lambda" or name in ("import", "exec", "eval", "open", "getattr", "globals", "locals"):
                self.fail(f"{name!r} is not allowed")
            if name.startswith("__"):
                self.fail(f"the name {name!r} is not allowed (no dunder names)")
            self.next()
            if self.at("op", "("):
                if name not in self.funcs:
                    self.fail(f"calling {name!r} is not allowed; the functions are "
                              f"{', '.join(sorted(self.funcs))}", t)
                return self.call(name)
            if self.at("name") or self.at("num") or self.at("str"):
                nxt = self.peek()
                if not (nxt.kind == "name" and nxt.value in _KEYWORDS):
                    self.fail(f"unexpected {nxt.value!r} after {name!r} (an operator is missing)", nxt)
            return Name(name)
        if t.kind == "end":
            self.fail("the expression ends too early")
        self.fail(f"unexpected {t.value!r}")

    def call(self, name: str) -> Node:
        self.expect_op("(")
        self.enter()
        try:
            args = []
            if not self.at("op", ")"):
                args.append(self.expr())
                while self.at("op", ","):
                    self.next()
                    args.append(self.expr())
            self.expect_op(")")
        finally:
            self.leave()
        arity = self.funcs[name]
        if arity is None and len(args) < 2:
            self.fail(f"{name}() takes two or more arguments")
        if arity is not None and len(args) != arity:
            self.fail(f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, not {len(args)}")
        return _fold(Call(name, tuple(args)), self)


# ---- constant folding (numbers only) ---------------------------------------------------------------
_NUMERIC = {"+", "-", "*", "/", "^"}


def _fold(node: Node, parser: _Parser) -> Node:
    """Fold a sub-expression of numbers only; refuse it when it is not finite (9**9**9**9)."""
    if isinstance(node, BinOp):
        kids = (node.left, node.right)
    elif isinstance(node, Unary):
        kids = (node.operand,)
    elif isinstance(node, Call):
        kids = node.args
        if node.func in ("isna", "notna"):
            return node
    else:
        return node
    if any(isinstance(k, Str) for k in kids):
        parser.fail("arithmetic on a string is not allowed")
    if not all(isinstance(k, Num) for k in kids):
        return node
    with np.errstate(all="ignore"):
        v = float(evaluate(node, {}))
    if not math.isfinite(v):
        parser.fail(f"the constant {unparse(node)} is not a finite number (too large, or undefined)")
    return Num(v)


def parse(text, mode: str = "filter", what: str = "--where") -> Node:
    """Parse ``text`` into a Node (see the module docstring); ScalelawError if not allowed."""
    if mode not in ("filter", "formula"):
        raise ValueError(f"mode must be 'filter' or 'formula', not {mode!r}")
    if not isinstance(text, str):
        raise ScalelawError(f"{what} must be a text expression, not {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ScalelawError(f"{what} is {len(text)} characters long (at most {MAX_CHARS}); write a shorter expression")
    if "\x00" in text:
        raise ScalelawError(f"{what} contains a NUL character; remove it")
    return _Parser(text, mode, what).parse()


def free_names(node: Node) -> set:
    """The names a node reads (columns, inputs, parameters); function names are not included."""
    out = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Name):
            out.add(n.id)
        elif isinstance(n, Unary):
            stack.append(n.operand)
        elif isinstance(n, BinOp):
            stack += [n.left, n.right]
        elif isinstance(n, Call):
            stack += list(n.args)
        elif isinstance(n, Compare):
            stack += list(n.operands)
        elif isinstance(n, BoolOp):
            stack += list(n.values)
        elif isinstance(n, In):
            stack.append(n.operand)
    return out


# ---- evaluation ----------------------------------------------------------------------------------
def _isna(v):
    return pd.isna(v) if np.ndim(v) == 0 else np.asarray(pd.isna(v), dtype=bool)


_F1 = {"exp": np.exp, "log": np.log, "log10": np.log10, "log2": np.log2, "sqrt": np.sqrt, "abs": np.abs,
       "isna": _isna, "notna": lambda v: ~np.asarray(_isna(v), dtype=bool)}
_CMP = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
        "==": np.equal, "!=": np.not_equal}
_BIN = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _compare(op, a, b):
    try:
        return np.asarray(_CMP[op](a, b), dtype=bool)
    except TypeError:
        pass
    # object columns (text, numbers and missing values mixed): element by element; a missing value
    # compares false (as NaN does), == / != between text and a number is false / true, and ordering
    # text against a number is refused rather than answered
    a_, b_ = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    out = np.zeros(a_.shape, dtype=bool)
    for idx in np.ndindex(a_.shape):
        x, y = a_[idx], b_[idx]
        if _missing(x) or _missing(y):
            out[idx] = op == "!="
            continue
        try:
            out[idx] = bool(_CMP[op](x, y))
        except TypeError:
            if op in ("==", "!="):
                out[idx] = op == "!="
            else:
                raise ScalelawError(f"cannot order {type(x).__name__} {x!r} and {type(y).__name__} {y!r} "
                                    f"with {op!r}") from None
    return out


def _truth(v):
    v = np.asarray(v)
    if v.dtype == bool:
        return v
    if v.dtype.kind in "fiu":
        return v != 0
    raise ScalelawError("and/or/not apply to conditions, not to text values")


def evaluate(node: Node, env: Mapping):
    """Evaluate ``node`` with numpy; names are looked up in ``env`` (arrays broadcast)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Str):
        return node.value
    if isinstance(node, Name):
        try:
            return env[node.id]
        except KeyError:
            raise ScalelawError(f"unknown name {node.id!r}") from None
    if isinstance(node, Unary):
        v = evaluate(node.operand, env)
        if node.op == "-":
            return np.negative(v)
        return ~_truth(v)
    if isinstance(node, BinOp):
        a, b = evaluate(node.left, env), evaluate(node.right, env)
        if node.op == "^" and np.ndim(b) == 0 and isinstance(b, (int, float)) and float(b).is_integer():
            b = float(b)
        return _BIN[node.op](a, b)
    if isinstance(node, Call):
        args = [evaluate(a, env) for a in node.args]
        if node.func in ("min", "max"):
            f = np.minimum if node.func == "min" else np.maximum
            out = args[0]
            for a in args[1:]:
                out = f(out, a)
            return out
        return _F1[node.func](args[0])
    if isinstance(node, Compare):
        vals = [evaluate(o, env) for o in node.operands]
        out = None
        for op, a, b in zip(node.ops, vals[:-1], vals[1:]):
            r = _compare(op, a, b)
            out = r if out is None else (out & r)
        return out
    if isinstance(node, BoolOp):
        vals = [_truth(evaluate(v, env)) for v in node.values]
        out = vals[0]
        for v in vals[1:]:
            out = (out & v) if node.op == "and" else (out | v)
        return out
    if isinstance(node, In):
        v = evaluate(node.operand, env)
        items = [i.value for i in node.items]
        if np.ndim(v) == 0:
            r = np.asarray(v in items)
        else:
            r = pd.Series(np.asarray(v).ravel()).isin(items).to_numpy().reshape(np.shape(v))
        return ~r if node.negate else r
    raise TypeError(f"not an expression node: {node!r}")


_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "in": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "^": 8}


def unparse(node: Node) -> str:
    """Text of a node that parses back to the same node."""
    def go(n, outer=0):
        if isinstance(n, Num):
            s = repr(float(n.value))
            s = s[:-2] if s.endswith(".0") and "e" not in s else s
            if n.value < 0:
                return f"({s})" if outer else s
            return s
        if isinstance(n, Str):
            return repr(n.value)
        if isinstance(n, Name):
            return n.id if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n.id) and n.id not in _KEYWORDS else f"`{n.id}`"
        if isinstance(n, Unary):
            p = _PREC["neg" if n.op == "-" else "not"]
            s = ("-" if n.op == "-" else "not ") + go(n.operand, p)
        elif isinstance(n, BinOp):
            p = _PREC[n.op]
            if n.op == "^":
                s = f"{go(n.left, p + 1)} ^ {go(n.right, p)}"
            else:
                s = f"{go(n.left, p)} {n.op} {go(n.right, p + 1)}"
        elif isinstance(n, Call):
            return f"{n.func}({', '.join(go(a) for a in n.args)})"
        elif isinstance(n, Compare):
            p = _PREC["cmp"]
            s = go(n.operands[0], p + 1)
            for op, o in zip(n.ops, n.operands[1:]):
                s += f" {op} {go(o, p + 1)}"
        elif isinstance(n, BoolOp):
            p = _PREC[n.op]
            s = f" {n.op} ".join(go(v, p + 1) for v in n.values)
        elif isinstance(n, In):
            p = _PREC["in"]
            s = f"{go(n.operand, p + 1)} {'not in' if n.negate else 'in'} [{', '.join(go(i) for i in n.items)}]"
        else:
            raise TypeError(f"not an expression node: {n!r}")
        return f"({s})" if p < outer else s
    return go(node)


# ---- formulas ------------------------------------------------------------------------------------
class Formula:
    """A parsed formula: ``.node``, ``.names`` (sorted), ``.text``; call with arrays bound to names."""

    def __init__(self, text: str, what: str = "formula"):
        self.text = text
        self.what = what
        self.node = parse(text, mode="formula", what=what)
        self.names = tuple(sorted(free_names(self.node)))

    def compute(self, env: Mapping):
        missing = [n for n in self.names if n not in env]
        if missing:
            raise ScalelawError(f"{self.what} {_short(self.text)!r} needs a value for {', '.join(missing)}")
        with np.errstate(all="ignore"):
            return evaluate(self.node, env)

    def __call__(self, **env):
        return self.compute(env)

    def __repr__(self):
        return f"Formula({self.text!r})"


# ---- filters on tables ---------------------------------------------------------------------------
def _column(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s.dtype) and not s.isna().any():
        return s.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.to_numpy()
    return s.astype(object).where(s.notna(), np.nan).to_numpy(dtype=object)


def mask(df: pd.DataFrame, text, what: str = "--where", source: str = "the table") -> np.ndarray:
    """Boolean mask (one per row of ``df``) of a filter expression; one-line ScalelawError otherwise."""
    node = text if isinstance(text, Node) else parse(text, "filter", what)
    shown = unparse(node) if isinstance(text, Node) else text
    cols = {str(c) for c in df.columns}
    missing = sorted(free_names(node) - cols)
    if missing:
        names = ", ".join(map(str, list(df.columns)[:12])) + (", ..." if len(df.columns) > 12 else "")
        raise ScalelawError(f"{what} {_short(shown)!r} could not be evaluated on {source}: no column "
                            f"{', '.join(map(repr, missing))}; the columns are {names} (backticks around "
                            "names with spaces: `Model Family`)")
    env = {}
    for name in free_names(node):
        col = df[name] if name in df.columns else df[[c for c in df.columns if str(c) == name][0]]
        if isinstance(col, pd.DataFrame):
            raise ScalelawError(f"{what}: column {name!r} appears twice in {source}; rename one")
        env[name] = _column(col)
    try:
        with np.errstate(all="ignore"):
            out = evaluate(node, env)
    except ScalelawError as exc:
        raise ScalelawError(f"{what} {_short(shown)!r} could not be evaluated on {source}: {exc}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ScalelawError(f"{what} {_short(shown)!r} could not be evaluated on {source}: {exc}; compare "
                            "numbers with numbers and text with text") from None
    out = np.asarray(out)
    if out.dtype != bool:
        raise ScalelawError(f"{what} {_short(shown)!r} is not a condition (it gives {out.dtype.name} values, "
                            "not true/false); compare it, e.g. \"N < 1e9\"")
    return np.broadcast_to(out, (len(df),)).copy() if out.ndim == 0 else out.reshape(len(df))


def select(df: pd.DataFrame, text, what: str = "--where", source: str = "the table") -> pd.DataFrame:
    """The rows of ``df`` matching a filter expression (attrs kept)."""
    out = df[mask(df, text, what, source)]
    out.attrs.update(df.attrs)
    return out


def check(text, mode: str = "filter", what: str = "--where") -> str:
    """Parse only (to validate an expression before any data is read); returns the text."""
    parse(text, mode, what)
    return text
