"""The click group every verb attaches to, and the one place that turns errors into exit codes.

Verb modules (scalelaw/cli/*.py) import ``main`` from here and decorate their commands with
``@main.command()`` or ``@main.group()``; scalelaw/cli/__init__.py imports them all.
"""
from __future__ import annotations

import os
import sys
import warnings

import click

from .. import __version__
from ..errors import ScalelawError


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings as one ``warning: ...`` line on stderr (no file:line), silent with --quiet.

    numpy's RuntimeWarnings (overflow in an exploratory start, ...) are internal noise, not advice."""
    from ..progress import _QUIET

    if issubclass(category, RuntimeWarning) or _QUIET:
        return
    click.echo(f"warning: {message}", err=True)


class ScalelawGroup(click.Group):
    """A click group that reports ScalelawError as one line and exit code 2, never a traceback."""

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # restored on exit
            return self._invoke(ctx)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ScalelawError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:  # a bad option or argument: one line too, with where to look
            where = exc.ctx.command_path if exc.ctx is not None else "scalelaw"
            click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except BrokenPipeError:  # the reader stopped early (`scalelaw laws | head`): not an error
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
            except (OSError, ValueError):
                pass
            sys.exit(0)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug in scalelaw: still one line, unless debugging
            if os.environ.get("SCALELAW_DEBUG"):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (this is a scalelaw bug; "
                "rerun with SCALELAW_DEBUG=1 for the traceback and report it)",
                err=True,
            )
            sys.exit(3)


@click.group(cls=ScalelawGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="scalelaw")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, notes or warnings on stderr (errors still print).")
def main(quiet):
    """scalelaw: scaling laws from training-run logs, with honest uncertainty.

    Typical flow: ingest logs into a run table, fit a law, predict or plan.
    Every verb that prints results takes --json for machine-readable output.
    """
    from ..progress import set_quiet

    set_quiet(quiet)
