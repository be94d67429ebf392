"""One error type for everything a user can get wrong.

The CLI turns a :class:`ScalelawError` into one line on stderr and exit code 2; anything else
reaching the CLI is a bug in scalelaw (it is reported as such, still without a traceback unless
SCALELAW_DEBUG=1). Messages follow one template: what was wrong (naming the file, column, option
or value), then how to fix it.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class ScalelawError(Exception):
    """A problem with the user's input or request; the message says how to fix it."""

    exit_code = 2


class FitError(ScalelawError):
    """A fit could not produce a trustworthy result (did not converge, too few points, ...)."""


def bad_value(what: str, got, expected: str, fix: str = "") -> ScalelawError:
    """Build the standard message: "The 'x' ... must be <expected>. Got <got> instead. <fix>"."""
    msg = f"{what} must be {expected}; got {got!r} instead."
    if fix:
        msg += f" {fix}"
    return ScalelawError(msg)


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ScalelawError:
    """An unknown name, listing the closest known ones (or all when few)."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=4, cutoff=0.5)
    if close:
        hint = "did you mean " + ", ".join(repr(c) for c in close) + "?"
    else:
        hint = "known: " + ", ".join(choices)
    return ScalelawError(f"unknown {kind} {name!r}; {hint}")
