"""Options and helpers shared by the CLI verbs."""
from __future__ import annotations

import sys
from typing import Iterable

import click

from ..errors import ScalelawError
from ..util import dumps


def parse_pairs(pairs: Iterable[str], option: str, numeric: bool = False) -> dict:
    """Parse repeated KEY=VALUE options; numeric values as floats (several comma-separated)."""
    out = {}
    for item in pairs or ():
        if "=" not in item:
            raise ScalelawError(f"{option} expects KEY=VALUE; got {item!r} (e.g. {option} N=7e10)")
        k, v = item.split("=", 1)
        k, v = k.strip(), v.strip()
        if not k or not v:
            raise ScalelawError(f"{option} expects KEY=VALUE; got {item!r}")
        if numeric:
            try:
                vals = [float(x) for x in v.split(",")]
            except ValueError:
                raise ScalelawError(f"{option} {k}= needs a number (or comma-separated numbers); got {v!r}") from None
            out[k] = vals if len(vals) > 1 else vals[0]
        else:
            out[k] = v
    return out


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


def load_data(source: str, maps=(), units=()):
    """A run table from a file or a dataset name."""
    from ..io import load_table

    mapping = parse_pairs(maps, "--map")
    unit = parse_pairs(units, "--units")
    return load_table(source, mapping=mapping or None, units=unit or None)


def emit_json(obj) -> None:
    click.echo(dumps(obj))


def warn(msg: str) -> None:
    from ..progress import _QUIET

    if not _QUIET:
        click.echo(f"warning: {msg}", err=True)


def fail(msg: str, code: int = 1) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)
