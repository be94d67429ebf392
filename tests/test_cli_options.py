"""Options shared by several verbs behave alike everywhere (they come from cli/common.py)."""
import click
from click.testing import CliRunner

from scalelaw.cli import main
from tests.test_cli_fit import EXAMPLE, one_line_error


def _commands(cmd=main, path=("scalelaw",)):
    ctx = click.Context(main)
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            yield from _commands(cmd.get_command(ctx, name), path + (name,))
    else:
        yield " ".join(path), cmd


def _options(flag):
    for path, cmd in _commands():
        for p in cmd.params:
            if isinstance(p, click.Option) and flag in p.opts:
                yield path, p


def test_every_json_flag_is_as_json_with_help():
    found = list(_options("--json"))
    assert len(found) > 20
    for path, p in found:
        assert p.name == "as_json" and p.is_flag and p.opts == ["--json"], path
        assert p.help, path


def test_boot_and_level_share_type_but_keep_their_defaults():
    boots = dict(_options("--boot"))
    assert boots["scalelaw fit"].default == 0 and boots["scalelaw isoflop"].default == 0
    assert boots["scalelaw density score"].default == 200 and boots["scalelaw density trend"].default == 1000
    assert boots["scalelaw gadre reproduce"].default == 200
    for path, p in boots.items():
        assert isinstance(p.type, click.IntRange) and p.type.min == 0 and p.show_default, path
        assert p.help, path
    levels = dict(_options("--level"))
    assert levels["scalelaw predict"].default is None and levels["scalelaw optimum"].default is None
    for path, p in levels.items():
        assert isinstance(p.type, click.FloatRange), path
        assert (p.type.min, p.type.max, p.type.min_open, p.type.max_open) == (0, 1, True, True), path
        assert p.help and p.help.startswith("Level of the"), path
        if p.default is not None:
            assert p.default == 0.95 and p.show_default, path


def test_ingest_reads_map_and_units_like_every_table_verb():
    cmds = dict(_commands())
    spec = lambda path: [(p.opts, p.metavar, p.help, p.multiple) for p in cmds[path].params
                         if p.name in ("maps", "units")]
    assert spec("scalelaw ingest") == spec("scalelaw inspect") == spec("scalelaw fit")
    assert len(spec("scalelaw ingest")) == 2


def test_ingest_bad_map_is_one_line_error(tmp_path):
    res = CliRunner().invoke(main, ["ingest", EXAMPLE, "-o", str(tmp_path / "t.csv"), "--map", "N"])
    assert "--map expects KEY=VALUE" in one_line_error(res)
    assert not (tmp_path / "t.csv").exists()


def test_help_texts_print_as_written():
    """click prints help verbatim: a '%%' meant for %-formatting shows doubled."""
    for path, cmd in _commands():
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        for t in texts:
            assert "%%" not in t, (path, t)
