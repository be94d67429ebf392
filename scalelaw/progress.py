"""Progress bars for long jobs: tqdm on a terminal, silent otherwise or with --quiet."""
from __future__ import annotations

import os
import sys

_QUIET = False


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = bool(quiet)


def enabled_by_default() -> bool:
    """Bars only when stderr is a terminal, and not with --quiet or SCALELAW_QUIET=1."""
    return not _QUIET and not os.environ.get("SCALELAW_QUIET") and sys.stderr.isatty()


class Progress:
    """A thin wrapper over tqdm that costs nothing when disabled."""

    def __init__(self, total: int | None, desc: str = "", enabled: bool | None = None, unit: str = "it"):
        if enabled is None:
            enabled = enabled_by_default()
        self._bar = None
        if enabled and not _QUIET:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
