"""Options and helpers shared by the CLI verbs."""
from __future__ import annotations

import math
import sys
from typing import Iterable

import click

from ..errors import ScalelawError
from ..util import dumps


def parse_pairs(pairs: Iterable[str], option: str, numeric: bool = False, example: str = "N=7e10",
                many: bool = True, strip: str | None = None) -> dict:
    """Parse repeated KEY=VALUE options; numeric values as floats (several comma-separated when ``many``).

    With ``strip`` (mixture domains: ``strip="mix_"``) the keys are DOMAINs: a leading ``strip`` is
    dropped, a domain given twice is refused and each value must be one finite number.
    """
    key = "KEY" if strip is None else "DOMAIN"
    out = {}
    for item in pairs or ():
        if "=" not in item:
            raise ScalelawError(f"{option} expects {key}=VALUE; got {item!r} (e.g. {option} {example})")
        k, v = item.split("=", 1)
        k, v = k.strip(), v.strip()
        if strip:
            k = k[len(strip):] if k.startswith(strip) else k
        if not k or not v:
            raise ScalelawError(f"{option} expects {key}=VALUE; got {item!r} (e.g. {option} {example})")
        if strip is not None:
            try:
                x = float(v)
            except ValueError:
                x = math.nan
            if not math.isfinite(x):
                raise ScalelawError(f"{option} {k}= needs a finite number; got {v!r}")
            if k in out:
                raise ScalelawError(f"{option} gives domain {k!r} twice ({out[k]:g} and {x:g}); give it once.")
            out[k] = x
        elif numeric:
            try:
                vals = [float(x) for x in v.split(",")] if many else [float(v)]
            except ValueError:
                what = "a number (or comma-separated numbers)" if many else "a number"
                raise ScalelawError(f"{option} {k}= needs {what}; got {v!r}") from None
            out[k] = vals if len(vals) > 1 else vals[0]
        else:
            out[k] = v
    return out


def count(k: int, what: str) -> str:
    """``k`` and ``what``, plural unless k is 1: "1 file", "3 files"."""
    return f"{k} {what}{'' if k == 1 else 's'}"


def coerce(v: str):
    """A string option value as bool, int, float or str."""
    low = v.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def table_options(f):
    """--map and --units for verbs that read a run table."""
    f = click.option("--units", "units", multiple=True, metavar="COL=SCALE",
                     help="Declare units of a column, e.g. N=B (billions), D=T, C=PF-days, or N=1e6.")(f)
    f = click.option("--map", "maps", multiple=True, metavar="COL=SOURCE",
                     help="Map a canonical column to your column name, e.g. N=n_params.")(f)
    return f


def where_option(example: str):
    """--where EXPR; ``example`` is a filter expression (scalelaw.expr) that makes sense for the verb's table."""
    return click.option("--where", metavar="EXPR", help=f'Keep rows matching a filter expression (docs/security.md), e.g. "{example}".')


LEVEL = click.FloatRange(0, 1, min_open=True, max_open=True)
MAX_BOOT = 100_000       # resamples (the library refuses more too: scalelaw.fit.MAX_BOOT)
MAX_SAMPLES = 10_000_000  # sampled candidates (mixture recommend)


class FiniteFloat(click.ParamType):
    """A finite float (no nan/inf), optionally > 0 (``positive``) or >= 0 (``nonneg``)."""

    name = "float"

    def __init__(self, positive: bool = False, nonneg: bool = False):
        self.positive, self.nonneg = positive, nonneg
        self.name = "positive number" if positive else ("number >= 0" if nonneg else "number")

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value):
            x = value
        else:
            try:
                x = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.positive and not x > 0:
            self.fail(f"{value!r} must be positive", param, ctx)
        if self.nonneg and not x >= 0:
            self.fail(f"{value!r} must not be negative", param, ctx)
        return x


FINITE = FiniteFloat()
POSITIVE = FiniteFloat(positive=True)
NONNEG = FiniteFloat(nonneg=True)


def output_path(ctx, param, value):
    """-o/--output: an empty path is refused (it would silently write nothing)."""
    if value is not None and str(value).strip() == "":
        raise click.BadParameter("the output path is empty; give a file name", ctx=ctx, param=param)
    return value


def boot_option(default: int, help: str | None = None):
    """--boot K. Each verb keeps its own default (0 where bootstrapping is opt-in) and its own
    help, which says what is resampled (runs, models, ...)."""
    return click.option("--boot", type=click.IntRange(0, MAX_BOOT), default=default, show_default=True, help=help)


def seed_option(help: str | None = "Seed of the bootstrap."):
    """--seed S (default 0) of a verb's random resampling."""
    return click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help=help)


def level_option(default: float | None = 0.95):
    """--level: the interval level in (0, 1). ``None`` means "whatever the fit was saved with",
    and then there is no default to show."""
    extra = {"show_default": True} if default is not None else {}
    what = ("Level of the intervals, e.g. 0.9 for 90%." if default is not None else
            "Level of the intervals, e.g. 0.9 for 90% [default: the fit's own, usually 0.95].")
    return click.option("--level", type=LEVEL, default=default, help=what, **extra)


def interval_option(verb: str, what: str = "intervals"):
    """--interval METHOD: how the intervals of a saved fit are formed (scalelaw.calibration.INTERVALS);
    default: the verb's measured default (DEFAULT_INTERVAL[verb], docs/uncertainty.md)."""
    from ..calibration import DEFAULT_INTERVAL, INTERVALS

    return click.option("--interval", "interval", type=click.Choice(list(INTERVALS)), default=None,
                        help=f"How the {what} are formed: " + "; ".join(f"{k}: {v}" for k, v in INTERVALS.items())
                             + f" [default: {DEFAULT_INTERVAL[verb]}, the method that kept nominal coverage at "
                               "extrapolated targets in docs/uncertainty.md].")


def bootstrap_options(boot: int, boot_help: str | None = None, seed_help: str | None = "Seed of the bootstrap.",
                      level: bool = True):
    """--boot, --seed and (unless ``level=False``) --level, listed in that order."""
    def decorate(f):
        if level:
            f = level_option()(f)
        f = seed_option(seed_help)(f)
        return boot_option(boot, boot_help)(f)

    return decorate


def json_option(help: str | None = "Print one JSON document."):
    """--json (parameter ``as_json``): print one JSON document instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def force_option(help: str | None = "Overwrite --output if it exists."):
    """--force: overwrite what the verb writes."""
    return click.option("--force", is_flag=True, help=help)


def load_data(source: str, maps=(), units=(), **load_kw):
    """A run table from a file or a dataset name; ``load_kw`` go to io.load_table."""
    from ..io import load_table

    mapping = parse_pairs(maps, "--map")
    unit = parse_pairs(units, "--units")
    return load_table(source, mapping=mapping or None, units=unit or None, **load_kw)


def emit_json(obj) -> None:
    click.echo(dumps(obj))


def warn(msg: str) -> None:
    from ..progress import _QUIET

    if not _QUIET:
        click.echo(f"warning: {msg}", err=True)


def fail(msg: str, code: int = 1) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)
