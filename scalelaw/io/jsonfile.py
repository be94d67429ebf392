"""Reading one JSON document from a log file, with one-line errors naming the file and line;
telling its numbers from its booleans."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ScalelawError


def is_number(v) -> bool:
    """Whether a value read from JSON (or a numpy scalar) is a number: int or float, NaN and inf
    included, but not a bool, which Python counts as an int (``true`` is not a step or a size)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def read_json(p: Path, *, fix: str = "fix the file", expect_object: str | None = None):
    """Parse ``p``; with ``expect_object`` the document must be a JSON object (described so)."""
    try:
        obj = json.loads(Path(p).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScalelawError(f"{p} line {exc.lineno}: not valid JSON ({exc.msg}); {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScalelawError(f"cannot read {p}: {exc}") from None
    if expect_object is not None and not isinstance(obj, dict):
        raise ScalelawError(f"{p}: expected a JSON object{expect_object}, got {type(obj).__name__}")
    return obj
