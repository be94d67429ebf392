"""Fit files are untrusted data: read them with limits and validate them against a schema.

A fit file is shared (reference fits in CI, fits sent to colleagues), so nothing in it may make
scalelaw run code, read another file, allocate without bound or hang, and every damaged or
hostile value is refused with one ScalelawError naming the file and the key. docs/security.md
lists the schema; this module is the one place that enforces it:

- ``read_json(path)``: a regular file of at most MAX_BYTES, UTF-8 JSON without NaN/Infinity
  tokens, nested at most MAX_DEPTH levels, every number finite.
- ``validate_law_fit(d, src)``: the law-fit schema (``Fit.to_dict``): known keys only, known law
  and version, parameters finite and within the law's bounds, level in (0, 1), shapes of theta,
  cov and the bootstrap consistent with the law, stored filters parsed by scalelaw.expr.
- ``validate_mixture_fit(d, src)`` and ``check_model_text(text, n_features, src)``: the mixture
  schema and, for a LightGBM model, the sha256 recorded at write time plus a structural check of
  the header, every tree (node counts, feature indices, child indices forming one tree, finite
  numbers) and the tree sizes LightGBM uses as offsets, before any native code sees the text.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from pathlib import Path

from .errors import ScalelawError

MAX_BYTES = 64 << 20
MAX_DEPTH = 16
MAX_BOOT = 100_000
MAX_STR = 10_000
HEX64 = re.compile(r"[0-9a-f]{64}")


def _short(v, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[:n - 3] + "..."


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path, what: str = "fit file", finite: bool = True) -> dict:
    """The JSON object in ``path``, read with limits (see the module docstring). ``finite=False``
    (scalelaw check, which reports a NaN parameter as drift) accepts NaN/Infinity values."""
    p = Path(str(path))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ScalelawError(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise ScalelawError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ScalelawError(f"{what} {p} is not a regular file (a folder, device or pipe); give a JSON file")
    if st.st_size > MAX_BYTES:
        raise ScalelawError(f"{what} {p} is {st.st_size / 2**20:.0f} MB, more than any fit file scalelaw writes "
                            f"({MAX_BYTES >> 20} MB); it is not a fit file")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
        text = raw.decode("utf-8")
        d = json.loads(text, parse_constant=_refuse_constant) if finite else json.loads(text)
    except UnicodeDecodeError:
        raise ScalelawError(f"cannot read {what} {p}: it is not UTF-8 text; it must be JSON written by scalelaw") from None
    except RecursionError:
        raise ScalelawError(f"{what} {p} is nested too deeply; it is not a fit file") from None
    except (OSError, ValueError) as exc:
        raise ScalelawError(f"cannot read {what} {p}: {exc}; it must be JSON written by `scalelaw fit -o`") from None
    if not isinstance(d, dict):
        raise ScalelawError(f"{p} is not a scalelaw {what} (a JSON object is expected, not {type(d).__name__})")
    check_tree(d, str(p), finite)
    return d


def check_tree(d, src: str, finite: bool = True) -> None:
    """Nesting depth at most MAX_DEPTH and every number finite, without recursion."""
    stack = [(d, 1, "")]
    while stack:
        v, depth, key = stack.pop()
        if depth > MAX_DEPTH:
            raise ScalelawError(f"{src}: {key or 'the document'} is nested more than {MAX_DEPTH} levels deep; "
                                "the file is damaged or not a scalelaw fit")
        if isinstance(v, dict):
            for k, x in v.items():
                stack.append((x, depth + 1, f"{key}.{k}" if key else str(k)))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                stack.append((x, depth + 1, f"{key}[{i}]"))
        elif finite and isinstance(v, float) and not math.isfinite(v):
            raise ScalelawError(f"{src}: key {key!r} holds {v!r}, not a finite number; the file is damaged")


# ---- small checkers ----------------------------------------------------------------------------
class _V:
    def __init__(self, src: str):
        self.src = src

    def fail(self, key: str, expected: str, got):
        raise ScalelawError(f"{self.src}: key {key!r} must be {expected}; got {_short(got)}. The file is damaged "
                            "or was not written by scalelaw; refit it")

    def known_keys(self, d: dict, allowed: set, what: str, finite: bool = True) -> None:
        """Depth and finiteness limits, then no top-level key outside ``allowed``."""
        check_tree(d, self.src, finite)
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ScalelawError(f"{self.src}: unknown key {unknown[0]!r} ({what} has {', '.join(sorted(allowed))}); "
                                "the file is damaged or was not written by this scalelaw")

    def dict(self, d, key, optional=True):
        v = d.get(key.rsplit(".", 1)[-1]) if isinstance(d, dict) else None
        if v is None and optional:
            return {}
        if not isinstance(v, dict):
            self.fail(key, "an object", v)
        return v

    def num(self, v, key, lo=-math.inf, hi=math.inf, null=False, lo_open=False, hi_open=False):
        if v is None and null:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            rng = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}" \
                if (math.isfinite(lo) or math.isfinite(hi)) else ""
            self.fail(key, f"a finite number{rng}{' or null' if null else ''}", v)
        return float(v)

    def int(self, v, key, lo=0, hi=2**63 - 1, null=False):
        if v is None and null:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(key, f"a whole number in [{lo}, {hi}]{' or null' if null else ''}", v)
        return v

    def str(self, v, key, null=True, max_len=MAX_STR):
        if v is None and null:
            return None
        if not isinstance(v, str) or len(v) > max_len:
            self.fail(key, f"text of at most {max_len} characters{' or null' if null else ''}", v)
        return v

    def bool(self, v, key):
        if not isinstance(v, bool):
            self.fail(key, "true or false", v)
        return v

    def names(self, v, key, allowed, unique=True):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(key, "a list of names", v)
        bad = [x for x in v if x not in allowed]
        if bad:
            self.fail(key, f"names from {', '.join(sorted(allowed))}", bad[0])
        if unique and len(set(v)) != len(v):
            self.fail(key, "a list without repeats", v)
        return v

    def expression(self, v, key):
        if v is None:
            return None
        self.str(v, key)
        from . import expr
        try:
            expr.parse(v, "filter", what=f"{self.src}: key {key!r}")
        except ScalelawError as exc:
            raise ScalelawError(f"{exc}; the file is damaged or hostile") from None
        return v


# ---- law fits ------------------------------------------------------------------------------------
LAW_FIT_KEYS = {"schema", "kind", "law", "law_version", "formula", "law_spec", "params", "free", "stderr", "ci", "level",
                "interval_method", "derived", "objective", "n_obs", "input_ranges", "diagnostics", "data",
                "settings", "versions", "theta", "cov", "log_residuals", "label", "boot", "reference"}


def validate_law_fit(d: dict, src: str = "fit file", *, finite: bool = True, check_params: bool = True):
    """Refuse anything in a law fit (Fit.to_dict) outside the schema; returns the law.

    ``check_params=False`` and ``finite=False`` are for `scalelaw check`, which reports a missing,
    null or non-finite recorded parameter as drift (exit 1) rather than refusing the file."""
    from .law import get_law
    from .result import SCHEMA

    v = _V(src)
    v.known_keys(d, LAW_FIT_KEYS, "a law fit", finite)
    if d.get("kind", "law-fit") != "law-fit":
        v.fail("kind", "'law-fit'", d.get("kind"))
    if d.get("schema") != SCHEMA or isinstance(d.get("schema"), bool):
        raise ScalelawError(f"{src}: fit file has schema {_short(d.get('schema'))}; this scalelaw reads schema {SCHEMA}")
    name = v.str(d.get("law"), "law", null=False, max_len=200)
    if d.get("law_spec") is not None:   # a user-defined formula law: re-parsed by scalelaw.expr, never run
        from .formula import law_from_spec
        try:
            law = law_from_spec(v.dict(d, "law_spec"))
        except ScalelawError as exc:
            raise ScalelawError(f"{src}: key 'law_spec': {exc}") from None
    else:
        try:
            law = get_law(name)
        except ScalelawError as exc:
            raise ScalelawError(f"{src}: key 'law': {exc}") from None
    version = v.int(d.get("law_version", law.version), "law_version", lo=0, hi=10**6)
    if version != law.version:
        raise ScalelawError(f"{src}: fit was made with law {law.name!r} version {version}, this scalelaw has version "
                            f"{law.version}; refit it")
    names = list(law.param_names)
    v.str(d.get("formula"), "formula")
    params = d.get("params")
    if check_params:
        if not isinstance(params, dict) or set(params) != set(names):
            v.fail("params", f"an object with exactly the parameters of {law.name!r} ({', '.join(names)})",
                   sorted(params) if isinstance(params, dict) else params)
        for p in law.params:
            v.num(params[p.name], f"params.{p.name}", p.lower, p.upper)
    free = d.get("free")
    if free is not None:
        v.names(free, "free", set(names))
    n_free = len(free) if free else len(names)
    for k, x in v.dict(d, "stderr").items():
        v.names([k], "stderr", set(names))
        v.num(x, f"stderr.{k}", 0, null=True)
    for k, x in v.dict(d, "ci").items():
        v.names([k], "ci", set(names))
        if x is not None:
            if not isinstance(x, list) or len(x) != 2:
                v.fail(f"ci.{k}", "[lower, upper]", x)
            for i, y in enumerate(x):
                v.num(y, f"ci.{k}[{i}]", null=True)
    if "level" in d:
        v.num(d["level"], "level", 0, 1, lo_open=True, hi_open=True)
    v.str(d.get("interval_method"), "interval_method")
    v.dict(d, "derived")
    obj = v.dict(d, "objective")
    if obj:
        from .law import OBJECTIVES
        if obj.get("name") is not None and obj.get("name") not in OBJECTIVES:
            v.fail("objective.name", f"one of {', '.join(OBJECTIVES)}", obj.get("name"))
        v.num(obj.get("delta"), "objective.delta", 0, null=True, lo_open=True)
        v.num(obj.get("value"), "objective.value", null=True)
    v.int(d.get("n_obs", 0), "n_obs", 0, 10**12)
    for k, x in v.dict(d, "input_ranges").items():
        if not isinstance(x, list) or len(x) != 2:
            v.fail(f"input_ranges.{k}", "[low, high]", x)
        lo = v.num(x[0], f"input_ranges.{k}[0]")
        hi = v.num(x[1], f"input_ranges.{k}[1]")
        if lo > hi:
            v.fail(f"input_ranges.{k}", "[low, high] with low <= high", x)
    diag = v.dict(d, "diagnostics")
    if "residual_sd" in diag:
        v.num(diag["residual_sd"], "diagnostics.residual_sd", 0, null=True)
    if "converged" in diag and diag["converged"] is not None:
        v.bool(diag["converged"], "diagnostics.converged")
    data = v.dict(d, "data")
    v.str(data.get("source"), "data.source")
    if data.get("sha256") is not None and not (isinstance(data["sha256"], str) and HEX64.fullmatch(data["sha256"])):
        v.fail("data.sha256", "64 hexadecimal digits", data["sha256"])
    v.expression(data.get("filter"), "data.filter")
    s = v.dict(d, "settings")
    v.expression(s.get("where"), "settings.where")
    for k, x in (v.dict(s, "settings.fixed") or {}).items():
        v.names([k], "settings.fixed", set(names))
        p = law.param(k)
        v.num(x, f"settings.fixed.{k}", p.lower, p.upper)
    v.int(s.get("boot", 0) or 0, "settings.boot", 0, MAX_BOOT)
    v.int(s.get("seed", 0) or 0, "settings.seed", 0)
    if s.get("level") is not None:
        v.num(s["level"], "settings.level", 0, 1, lo_open=True, hi_open=True)
    if s.get("delta") is not None and s.get("delta") != "auto":
        v.num(s["delta"], "settings.delta", 0, lo_open=True)
    if s.get("objective") is not None:
        from .law import OBJECTIVES
        if s["objective"] not in OBJECTIVES:
            v.fail("settings.objective", f"one of {', '.join(OBJECTIVES)}", s["objective"])
    for key in ("weights", "boot_groups"):
        if s.get(key) is not None:
            v.str(s[key], f"settings.{key}", max_len=500)
    if s.get("prepare_options"):
        opts = v.dict(s, "settings.prepare_options")
        try:
            law.check_options(opts)
        except ScalelawError as exc:
            raise ScalelawError(f"{src}: key 'settings.prepare_options': {exc}") from None
    for k, x in v.dict(d, "versions").items():
        v.str(x, f"versions.{k}", max_len=200)
    theta = d.get("theta")
    if theta is not None:
        if not isinstance(theta, list) or len(theta) != n_free:
            v.fail("theta", f"a list of {n_free} numbers (one per free parameter)", theta)
        for i, x in enumerate(theta):
            v.num(x, f"theta[{i}]")
    cov = d.get("cov")
    if cov is not None:
        if not isinstance(cov, list) or len(cov) != n_free or not all(isinstance(r, list) and len(r) == n_free
                                                                          for r in cov):
            v.fail("cov", f"a {n_free} x {n_free} matrix", cov)
        for i, r in enumerate(cov):
            for j, x in enumerate(r):
                v.num(x, f"cov[{i}][{j}]", null=True)
    if "log_residuals" in d:
        v.bool(d["log_residuals"], "log_residuals")
    v.str(d.get("label"), "label", max_len=500)
    boot = d.get("boot")
    if boot is not None:
        if not isinstance(boot, dict) or set(boot) != {"params", "samples"}:
            v.fail("boot", "an object with keys params and samples", boot)
        bp = v.names(boot["params"], "boot.params", set(names))
        if set(bp) != set(names):
            v.fail("boot.params", f"the parameters {', '.join(names)}", bp)
        sm = boot["samples"]
        if not isinstance(sm, list) or len(sm) > MAX_BOOT:
            v.fail("boot.samples", f"a list of at most {MAX_BOOT} samples", type(sm).__name__ if not isinstance(sm, list)
                   else f"{len(sm)} samples")
        for i, r in enumerate(sm):
            if not isinstance(r, list) or len(r) != len(bp):
                v.fail(f"boot.samples[{i}]", f"a list of {len(bp)} numbers", r)
            for x in r:
                if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
                    v.fail(f"boot.samples[{i}]", "numbers (or null for a failed resample)", r)
    ref = v.dict(d, "reference")
    if ref:
        _check_reference(v, ref, law)
    return law


def _check_reference(v: _V, ref: dict, law) -> None:
    """The `reference` block `scalelaw check` reads: tolerances positive, values finite."""
    if "rtol_refit" in ref:
        v.num(ref["rtol_refit"], "reference.rtol_refit", 0, lo_open=True)
    if "objective_max" in ref:
        v.num(ref["objective_max"], "reference.objective_max")
    for k, spec in v.dict(ref, "reference.published").items():
        if not isinstance(spec, dict):
            v.fail(f"reference.published.{k}", "an object {value, rtol}", spec)
        v.num(spec.get("value"), f"reference.published.{k}.value")
        v.num(spec.get("rtol"), f"reference.published.{k}.rtol", 0, lo_open=True)
    for k, x in v.dict(ref, "reference.ci_overlap").items():
        if not isinstance(x, list) or len(x) != 2:
            v.fail(f"reference.ci_overlap.{k}", "[low, high]", x)
        for i, y in enumerate(x):
            v.num(y, f"reference.ci_overlap.{k}[{i}]")
    opt = v.dict(ref, "reference.optimum")
    if opt:
        for k, x in v.dict(opt, "reference.optimum.given").items():
            v.num(x, f"reference.optimum.given.{k}", 0, lo_open=True)
        for k, spec in v.dict(opt, "reference.optimum.expect").items():
            if not isinstance(spec, dict):
                v.fail(f"reference.optimum.expect.{k}", "an object {value, rtol}", spec)
            v.num(spec.get("value"), f"reference.optimum.expect.{k}.value")
            v.num(spec.get("rtol"), f"reference.optimum.expect.{k}.rtol", 0, lo_open=True)


# ---- mixture fits ----------------------------------------------------------------------------------
MIXTURE_KEYS = {"schema", "kind", "model", "target", "domains", "params", "prior", "data", "settings", "metrics",
                "reference", "summary", "model_text", "model_sha256"}
MIXTURE_MODELS = ("linear", "mixlaw", "gbdt")
MAX_DOMAINS = 1000


def validate_mixture_fit(d: dict, src: str = "mixture fit") -> None:
    v = _V(src)
    v.known_keys(d, MIXTURE_KEYS, "a mixture fit")
    if d.get("schema") != 1 or isinstance(d.get("schema"), bool):
        v.fail("schema", "1", d.get("schema"))
    if d.get("model") not in MIXTURE_MODELS:
        v.fail("model", f"one of {', '.join(MIXTURE_MODELS)}", d.get("model"))
    v.str(d.get("target"), "target", null=False, max_len=500)
    doms = d.get("domains")
    if not isinstance(doms, list) or not doms or len(doms) > MAX_DOMAINS \
            or not all(isinstance(x, str) and 0 < len(x) <= 200 and x.strip() == x and " " not in x for x in doms) \
            or len(set(doms)) != len(doms):
        v.fail("domains", f"a list of 1 to {MAX_DOMAINS} distinct names without spaces", doms)
    prior = v.dict(d, "prior")
    for k, x in v.dict(prior, "prior.weights").items():
        v.num(x, f"prior.weights.{k}", 0)
    v.str(prior.get("source"), "prior.source")
    v.dict(d, "data")
    v.dict(d, "settings")
    v.dict(d, "metrics")
    v.str(d.get("summary"), "summary", max_len=200_000)
    model = d["model"]
    if model == "gbdt":
        text = d.get("model_text")
        if not isinstance(text, str) or len(text) > MAX_BYTES:
            v.fail("model_text", "the LightGBM model text", type(text).__name__)
        sha = d.get("model_sha256")
        if sha is not None:
            if not (isinstance(sha, str) and HEX64.fullmatch(sha)):
                v.fail("model_sha256", "64 hexadecimal digits", sha)
            if hashlib.sha256(text.encode("utf-8")).hexdigest() != sha:
                raise ScalelawError(f"{src}: key 'model_text' is not a LightGBM model scalelaw wrote: it does not "
                                    "match its recorded sha256 (model_sha256), so it was truncated or edited; refit "
                                    "it with `scalelaw mixture fit`")
        # the structure (check_model_text) is checked where the model is built, before LightGBM sees it
    elif "model_text" in d or "model_sha256" in d:
        v.fail("model_text", f"absent for a {model} model", "a model text")


def model_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_TREE_HEAD = re.compile(r"^Tree=(\d+)\n", re.M)
_INT = re.compile(r"-?\d+")
_MAX_LEAVES = 1 << 17
_MAX_TREES = 1_000_000
_HEADER_KEYS = {"version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx", "objective",
                "feature_names", "feature_infos", "tree_sizes", "average_output", "monotone_constraints"}


def check_model_text(text: str, n_features: int, src: str = "mixture fit") -> None:
    """Structural check of a LightGBM model text (what scalelaw writes) before LightGBM parses it."""
    def bad(why):
        raise ScalelawError(f"{src}: key 'model_text' is not a valid LightGBM model ({why}); it was truncated "
                            "or edited: refit it with `scalelaw mixture fit`")

    if "\x00" in text:
        bad("it contains a NUL character")
    first = _TREE_HEAD.search(text)
    end = text.find("\nend of trees")
    if not text.startswith("tree\n") or first is None or end < 0:
        bad("no 'tree' header, trees or 'end of trees' line")
    head = {}
    for line in text[:first.start()].splitlines()[1:]:
        if not line:
            continue
        k, sep, val = line.partition("=")
        if not sep or k not in _HEADER_KEYS or k in head:
            bad(f"unexpected header line {_short(line, 40)}")
        head[k] = val
    for k in ("version", "num_class", "num_tree_per_iteration", "max_feature_idx", "objective", "feature_names",
              "tree_sizes"):
        if k not in head:
            bad(f"header lacks {k}")
    if head["version"] not in ("v3", "v4") or head["num_class"] != "1" or head["num_tree_per_iteration"] != "1":
        bad("not a single-output regression model of a known version")
    if head["objective"].split(" ")[0] not in ("regression", "regression_l1", "huber", "fair", "quantile"):
        bad(f"objective {_short(head['objective'], 40)}")
    if head.get("max_feature_idx") != str(n_features - 1) or len(head["feature_names"].split(" ")) != n_features:
        bad(f"it does not have {n_features} features (one per domain)")
    sizes = head["tree_sizes"].split(" ")
    if not all(s.isdigit() for s in sizes) or len(sizes) > _MAX_TREES:
        bad("tree_sizes is not a list of sizes")
    sizes = [int(s) for s in sizes]
    heads = list(_TREE_HEAD.finditer(text, first.start(), end + 1))
    if len(heads) != len(sizes):
        bad(f"{len(heads)} trees but {len(sizes)} tree sizes")
    bounds = [h.start() for h in heads] + [end + 1]
    for i, h in enumerate(heads):
        if int(h.group(1)) != i:
            bad(f"tree {i} is numbered {h.group(1)}")
        block = text[bounds[i]:bounds[i + 1]]
        _check_tree_block(block[h.end() - h.start():], i, n_features, bad)
        if len(block.encode("utf-8")) != sizes[i]:   # LightGBM reads trees at these offsets
            bad(f"tree {i} is {len(block.encode('utf-8'))} bytes, its recorded size is {sizes[i]}")


def _check_tree_block(body: str, i: int, n_features: int, bad) -> None:
    f = {}
    for line in body.splitlines():
        if not line:
            continue
        k, sep, val = line.partition("=")
        if not sep or k in f:
            bad(f"tree {i}: unexpected line {_short(line, 40)}")
        f[k] = val
    try:
        L = int(f.get("num_leaves", ""))
    except ValueError:
        bad(f"tree {i}: num_leaves missing")
    if not 1 <= L <= _MAX_LEAVES:
        bad(f"tree {i}: num_leaves {L}")
    if f.get("num_cat", "0") != "0" or f.get("is_linear", "0") != "0":
        bad(f"tree {i}: categorical or linear trees are not written by scalelaw")

    def nums(key, n, integer=False):
        raw = f.get(key)
        if raw is None:
            bad(f"tree {i}: {key} missing")
        parts = raw.split(" ") if raw else []
        if len(parts) != n:
            bad(f"tree {i}: {key} has {len(parts)} values, not {n}")
        try:
            out = [int(x) for x in parts] if integer else [float(x) for x in parts]
        except ValueError:
            bad(f"tree {i}: {key} holds a value that is not a number")
        if not integer and not all(math.isfinite(x) for x in out):
            bad(f"tree {i}: {key} holds a value that is not finite")
        return out

    nums("leaf_value", L)
    try:
        if not math.isfinite(float(f.get("shrinkage", "1"))):
            raise ValueError
    except ValueError:
        bad(f"tree {i}: shrinkage")
    if L == 1:
        return
    feats = nums("split_feature", L - 1, integer=True)
    if any(not 0 <= x < n_features for x in feats):
        bad(f"tree {i}: a split feature index outside 0..{n_features - 1}")
    nums("threshold", L - 1)
    dt = nums("decision_type", L - 1, integer=True)
    if any(not 0 <= x < 16 or x & 1 for x in dt):
        bad(f"tree {i}: a decision type scalelaw does not write (categorical or unknown)")
    left = nums("left_child", L - 1, integer=True)
    right = nums("right_child", L - 1, integer=True)
    for key in ("split_gain", "internal_value", "internal_weight", "internal_count"):
        if key in f:
            nums(key, L - 1)
    for key in ("leaf_weight", "leaf_count"):
        if key in f:
            nums(key, L)
    # the children must form one binary tree rooted at node 0: every internal node but the root and
    # every leaf reached exactly once
    seen_nodes, seen_leaves = {0}, set()
    stack = [0]
    while stack:
        node = stack.pop()
        for c in (left[node], right[node]):
            if c >= 0:
                if c >= L - 1 or c in seen_nodes:
                    bad(f"tree {i}: child index {c} of node {node} is out of range or repeated")
                seen_nodes.add(c)
                stack.append(c)
            else:
                leaf = ~c
                if leaf >= L or leaf in seen_leaves:
                    bad(f"tree {i}: leaf index {leaf} of node {node} is out of range or repeated")
                seen_leaves.add(leaf)
    if len(seen_nodes) != L - 1 or len(seen_leaves) != L:
        bad(f"tree {i}: the child indices do not form one tree")
