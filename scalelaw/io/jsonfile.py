"""Reading one JSON document from a log file, with one-line errors naming the file and line."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ScalelawError


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
