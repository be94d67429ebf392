"""Re-check reference fits: refit each from its recorded dataset and settings, compare.

A law fit file (written by ``Fit.save`` / ``scalelaw fit -o``) is refitted from
``data.source`` with its recorded settings; its parameters must match the recorded ones within
``reference.rtol`` (default 1e-3), and, when the file carries a ``reference`` block, the
published values, objective bound, optimum and interval overlaps listed there. Files of other
kinds delegate to their family's checker ("kind": "mixture", "reference-values").
"""
from __future__ import annotations

import json
import math
from pathlib import Path


from .errors import ScalelawError

DEFAULT_RTOL = 1e-3


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def require_dataset_name(src) -> str:
    """A recorded data source read without the user naming it: only a registered public dataset."""
    from .datasets import names

    if not isinstance(src, str) or src not in set(names()):
        raise ScalelawError(f"the file's data source {str(src)[:80]!r} is not a registered public dataset "
                            "(scalelaw data list)")
    return src


def checkable_source(src) -> str:
    """The data `scalelaw check` refits from: a registered public dataset, or a regular file (re-reading
    the recorded data is what check is for; a device, pipe or folder is never opened)."""
    from .datasets import names
    from .util import require_readable

    if not isinstance(src, str) or not src.strip() or len(src) > 4096:
        raise ScalelawError(f"the file's data source {str(src)[:80]!r} is not a dataset name or a file path")
    if src in set(names()):
        return src
    if not Path(src).is_file():
        require_readable(src, "recorded data source")
        raise ScalelawError(f"the recorded data source {src[:80]!r} is not a regular file; it cannot be re-checked")
    return src


def refit(d: dict):
    """Refit a law fit from its recorded dataset and settings."""
    from .io import load_table
    from .varpro import fit_with

    src = (d.get("data") or {}).get("source")
    if not src:
        raise ScalelawError("fit file records no data source; it cannot be re-checked")
    checkable_source(src)
    table = load_table(src)
    s = d.get("settings") or {}
    named = lambda key: s.get(key) if isinstance(s.get(key), str) else None  # noqa: E731 (column names only)
    law = d["law"]
    if d.get("law_spec"):   # a formula law: rebuilt from its stored formula (re-parsed, never run)
        from .formula import law_from_spec

        law = law_from_spec(d["law_spec"])
    return fit_with(s.get("method", "multistart"), law, table, objective=s.get("objective"), delta=s.get("delta", 1e-3),
               where=s.get("where"), weights=named("weights"), boot_groups=named("boot_groups"),
               fixed=s.get("fixed") or None, boot=int(s.get("boot") or 0), seed=int(s.get("seed") or 0),
               level=float(s.get("level") or 0.95), prepare_options=s.get("prepare_options") or None,
               source=src)


def bad_params(d: dict) -> list[str]:
    """Messages for recorded parameters that are missing, null, NaN or infinite (a reference fit
    holding one checks nothing: the comparison with the refit would silently skip it)."""
    from .law import get_law

    params = d.get("params")
    if not isinstance(params, dict):
        return [f"its 'params' is {type(params).__name__}, not an object of parameter values"]
    msgs = []
    for k in get_law(d["law"]).param_names:
        v = params.get(k, "missing")
        if v == "missing":
            msgs.append(f"parameter {k} is missing")
        elif v is None:
            msgs.append(f"parameter {k} is null")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            msgs.append(f"parameter {k} is {v!r}, not a number")
        elif not math.isfinite(v):
            msgs.append(f"parameter {k} is {v} (not finite)")
    return msgs


def check_law_fit(d: dict, name: str) -> list[str]:
    msgs: list[str] = [f"{name}: {m}; rebuild the reference fit" for m in bad_params(d)]
    new = refit(d)
    ref = d.get("reference") or {}
    rtol = ref.get("rtol_refit", DEFAULT_RTOL)
    if not new.diagnostics.get("converged"):
        msgs.append(f"{name}: refit did not converge ({new.diagnostics.get('message')})")
    msgs += [f"{name}: refit is NOT IDENTIFIED: {m}" for m in new.problems]
    old_hash, new_hash = (d.get("data") or {}).get("sha256"), new.data.get("sha256")
    if old_hash and new_hash and old_hash != new_hash:
        msgs.append(f"{name}: the data of {new.data.get('source')!r} changed since the fit was recorded "
                    f"(sha256 {old_hash[:12]}... now {new_hash[:12]}...)")
    for k, v in d["params"].items():
        if k not in new.params or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue   # reported by bad_params
        if _rel(new.params[k], v) > rtol:
            msgs.append(f"{name}: {k} refit {new.params[k]:.6g} vs recorded {v:.6g} (rtol {rtol})")
    # against published values
    for k, spec in (ref.get("published") or {}).items():
        val, tol = spec["value"], spec["rtol"]
        if _rel(new.params[k], val) > tol:
            msgs.append(f"{name}: {k} = {new.params[k]:.6g} is more than {tol:.0%} from published {val:.6g}")
    if "objective_max" in ref and new.objective["value"] > ref["objective_max"]:
        msgs.append(f"{name}: objective {new.objective['value']:.10g} worse than the baseline's {ref['objective_max']:.10g}")
    for k, (lo, hi) in (ref.get("ci_overlap") or {}).items():
        ci = new.ci.get(k)
        if ci is None or ci[1] < lo or ci[0] > hi:
            msgs.append(f"{name}: interval for {k} {ci} does not overlap the published ({lo}, {hi})")
    opt = ref.get("optimum")
    if opt:
        got = new.optimum(**opt["given"])
        for k, spec in opt["expect"].items():
            if _rel(got[k], spec["value"]) > spec["rtol"]:
                msgs.append(f"{name}: optimum {k} = {got[k]:.6g} vs published {spec['value']:.6g} (rtol {spec['rtol']})")
    return msgs


def check_file(path) -> list[str]:
    """Drift messages for one reference file (empty when everything holds)."""
    from .fitschema import read_json, validate_law_fit

    p = Path(path)
    d = read_json(p, "reference file", finite=False)
    kind = d.get("kind", "law-fit")
    if kind == "mixture":
        from .analysis.mixture import check_reference
        return list(check_reference(p))
    if kind == "reference-values":
        from .analysis.trajectory import check_reference_values
        return list(check_reference_values(p))
    if kind == "law-fit" and "law" in d:
        try:
            bad = bad_params(d)          # reported as drift (exit 1) by check_law_fit
        except (ScalelawError, TypeError, KeyError):
            bad = []
        validate_law_fit(d, str(p), finite=False, check_params=not bad)
        if d.get("label"):  # published constants: nothing to refit
            return []
        return check_law_fit(d, p.name)
    raise ScalelawError(f"{p} is not a reference file scalelaw can check (kind {kind!r})")


def default_files(root: Path | None = None) -> list[Path]:
    root = Path(root or "fits")
    if not root.is_dir():
        raise ScalelawError(f"no reference fits folder {root}/ here; run from the project root or name the files")
    files = sorted(root.glob("*.json"))
    if not files:
        raise ScalelawError(f"{root}/ holds no *.json reference fits")
    return files
