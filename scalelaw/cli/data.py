"""``scalelaw data list|info|fetch``, ``scalelaw ingest`` and ``scalelaw inspect``."""
from __future__ import annotations

import io as _io

import click
import pandas as pd

from ..errors import ScalelawError
from ..util import atomic_write_bytes, check_writable, dumps
from .app import main
from .common import NONNEG, output_path, count, emit_json, force_option, json_option, load_data, table_options

OUT_FORMATS = (".parquet", ".pq", ".csv", ".jsonl", ".json")


def _short(text: str, width: int = 72) -> str:
    """The first sentence of ``text``, cut at a word boundary with an ellipsis when longer than ``width``."""
    first = text.split(": ")[0] if len(text) > width else text
    if len(first) <= width:
        return first
    cut = first[:width].rsplit(" ", 1)[0].rstrip(",;(")
    return cut + " ..."


@main.group("data")
def data():
    """Public scaling datasets: list, describe, download (or read from SCALELAW_MIRROR)."""


@data.command("list")
@json_option()
def data_list(as_json):
    """Registered dataset names, row counts and licences."""
    from .. import datasets

    rows = [{"name": n, "rows": d.rows, "licence": d.licence, "description": d.description}
            for n, d in ((n, datasets.get(n)) for n in datasets.names())]
    if as_json:
        click.echo(dumps(rows))
        return
    lic = [r["licence"].split(" (")[0] for r in rows]  # the full text: data info NAME
    wl = max(map(len, lic)) if rows else 0
    wn = max([22] + [len(r["name"]) for r in rows])  # names as long as isoflops-chinchilla-scalefit stay aligned
    for r, lc in zip(rows, lic):
        click.echo(f"{r['name']:<{wn}} {str(r['rows'] or '-'):>6}  {lc:<{wl}}  {_short(r['description'])}")


@data.command("info")
@click.argument("name")
@json_option()
def data_info(name, as_json):
    """Source, commit, files, sha256, licence and citation of dataset NAME."""
    from .. import datasets

    d = datasets.info(name)
    if as_json:
        click.echo(dumps(d))
        return
    src = f"github.com/{d['owner']}/{d['repo']} @ {d['commit']}" if d["owner"] else "the public-data mirror (extra/)"
    click.echo(f"{d['name']}: {d['description']}")
    click.echo(f"  source:   {src}")
    click.echo(f"  paths:    {', '.join(d['paths'])} ({count(d['n_files'], 'file')})")
    if d["n_files"] == 1:
        click.echo(f"  sha256:   {next(iter(d['files'].values()))}")
    else:
        click.echo(f"  sha256:   {d['sha256']} (combined over the files; per file: --json or the manifest)")
    click.echo(f"  licence:  {d['licence']}")
    click.echo(f"  citation: {d['citation']}")


@data.command("fetch")
@click.argument("name")
@json_option()
def data_fetch(name, as_json):
    """Download dataset NAME into the cache (or check it in the mirror); print where it is."""
    from .. import datasets

    paths = datasets.fetch(name)
    if as_json:
        click.echo(dumps({"name": name, "files": [str(p) for p in paths]}))
        return
    click.echo(f"{name}: {len(paths)} file(s) verified")
    for p in paths[:5]:
        click.echo(f"  {p}")
    if len(paths) > 5:
        click.echo(f"  ... and {len(paths) - 5} more")


def table_bytes(df: pd.DataFrame, path: str) -> bytes:
    """The table serialised for ``path``'s extension (Parquet keeps attrs; CSV/JSONL do not)."""
    low = path.lower()
    if low.endswith((".parquet", ".pq")):
        buf = _io.BytesIO()
        d = df.copy()
        d.attrs = _jsonable_attrs(df.attrs)
        d.to_parquet(buf, index=False)
        return buf.getvalue()
    if low.endswith(".csv"):
        return df.to_csv(index=False).encode()
    if low.endswith((".jsonl", ".json")):
        return df.to_json(orient="records", lines=low.endswith(".jsonl")).encode()
    raise ScalelawError(f"-o {path}: unknown output type; end the name with one of {', '.join(OUT_FORMATS)}")


def _jsonable_attrs(attrs: dict) -> dict:
    import json

    from ..util import to_jsonable

    out = {}
    for k, v in attrs.items():
        try:
            json.dumps(to_jsonable(v))
            out[k] = to_jsonable(v)
        except (TypeError, ValueError):
            out[k] = str(v)
    return out


@main.command("ingest")
@click.argument("logs", nargs=-1, required=True)
@click.option("-o", "--output", callback=output_path, required=True, help="Run table to write (.parquet, .csv or .jsonl).")
@table_options
@click.option("--reduce", "reduce", type=click.Choice(["final", "smooth", "min"]), default=None,
              help="One row per run: last step, smoothed final loss, or lowest loss.")
@click.option("--warmup", type=NONNEG, default=0.0, show_default=True, help="Drop steps below this before reducing.")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=0.9, show_default=True, help="EMA history weight for --reduce smooth.")
@click.option("--window", type=click.IntRange(1, 10**9), default=None, help="Mean of the last WINDOW losses for --reduce smooth (instead of EMA).")
@click.option("--format", "fmt", default=None, help="Force the input format (csv, wandb-history, tensorboard, ...).")
@force_option()
@json_option()
def ingest(logs, output, maps, units, reduce, warmup, ema, window, fmt, force, as_json):
    """Read LOGS (files, folders or dataset names) into one validated run table.

    Several LOGS are read with the same options and concatenated; their losses must be of one
    kind (e.g. not eval_loss in one and a training loss in another), else --map loss=<column>
    chooses one. Runs named after their folder or file get the path suffix that tells them apart
    (exp1/train, exp2/train); a run id written in two LOGS is refused."""
    from ..io import load_tables
    from ..schema import summarize
    from .common import parse_pairs

    check_writable(output, force)
    if not output.lower().endswith(OUT_FORMATS):
        raise ScalelawError(f"-o {output}: unknown output type; end the name with one of {', '.join(OUT_FORMATS)}")
    if len(logs) == 1:
        df = load_data(logs[0], maps, units, reduce=reduce, fmt=fmt, warmup=warmup, ema=ema, window=window)
    else:
        df = load_tables(logs, mapping=parse_pairs(maps, "--map") or None, units=parse_pairs(units, "--units") or None,
                         reduce=reduce, fmt=fmt, warmup=warmup, ema=ema, window=window)
    atomic_write_bytes(output, table_bytes(df, output), force=force)
    s = summarize(df)
    s["output"] = output
    if as_json:
        click.echo(dumps(s))
    else:
        click.echo(f"wrote {output}: {count(s['rows'], 'row')}, {count(s['runs'], 'run')}, {count(len(s['columns']), 'column')}")


@main.command("inspect")
@click.argument("table")
@table_options
@json_option()
def inspect_cmd(table, maps, units, as_json):
    """Runs, ranges of N, D, C and loss, units and missing values of TABLE (file or dataset)."""
    from ..schema import summarize

    s = summarize(load_data(table, maps, units))
    if as_json:
        emit_json(s)
        return
    click.echo(f"{s['source']}: {count(s['rows'], 'row')}, {count(s['runs'], 'run')}")
    for col, (lo, hi) in s["ranges"].items():
        click.echo(f"  {col:<12} {lo:.4g} .. {hi:.4g}")
    if s["units"]:
        click.echo("  units: " + ", ".join(f"{k} x {v:g}" for k, v in s["units"].items()))
    if s["C_convention"]:
        click.echo(f"  C: {s['C_convention']}")
    if s["missing"]:
        miss = ", ".join(f"{k} ({v})" for k, v in list(s["missing"].items())[:12])
        click.echo(f"  missing values: {miss}")
    other = [c for c in s["columns"] if c not in s["ranges"] and c != "run"]
    if other:
        click.echo(f"  other columns: {', '.join(other[:20])}{' ...' if len(other) > 20 else ''}")
