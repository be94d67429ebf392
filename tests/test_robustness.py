"""Outputs are created atomically and exclusively; impossible values are refused, not computed."""
import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scalelaw import util
from scalelaw.cli import main
from scalelaw.errors import ScalelawError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = str(REPO / "data" / "example_runs.csv")
FIT = str(REPO / "fits" / "chinchilla-epoch.json")


def _one_error(r, code=2):
    assert r.exit_code == code, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output and "internal error" not in r.output
    return lines[0]


# ---- 3. atomic, exclusive output ------------------------------------------------------------------
_WRITER = """
import sys, time
from scalelaw.util import atomic_write_text
from scalelaw.errors import ScalelawError
t = float(sys.argv[2])
while time.time() < t:     # start together
    pass
try:
    atomic_write_text(sys.argv[1], sys.argv[3] * 200000)
except ScalelawError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def test_eight_concurrent_writers_exactly_one_wins(tmp_path):
    import time

    target = tmp_path / "out.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(start), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes == [0] + [2] * 7, results
    for c, err in results:
        if c == 2:
            assert len(err.strip().splitlines()) == 1 and "already exists" in err
    text = target.read_text()
    assert len(text) == 200000 and len(set(text)) == 1      # one writer's whole content, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]   # no temporary files left


def test_cli_refuses_existing_output_and_force_overwrites(tmp_path):
    out = tmp_path / "t.csv"
    r = CliRunner().invoke(main, ["ingest", EXAMPLE, "-o", str(out)])
    assert r.exit_code == 0, r.output
    first = out.read_text()
    out.write_text("keep me")
    assert "already exists" in _one_error(CliRunner().invoke(main, ["ingest", EXAMPLE, "-o", str(out)]))
    assert out.read_text() == "keep me"
    assert CliRunner().invoke(main, ["ingest", EXAMPLE, "-o", str(out), "--force"]).exit_code == 0
    assert out.read_text() == first


def test_symlinks_devices_and_folders(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("original")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere" / "x.csv")
    run = lambda *a: CliRunner().invoke(main, ["ingest", EXAMPLE, *a])  # noqa: E731
    # a link to an existing file: refused without --force; with --force the link itself is replaced
    assert "already exists" in _one_error(run("-o", str(link)))
    assert run("-o", str(link), "--force").exit_code == 0
    assert not link.is_symlink() and "run" in link.read_text() and target.read_text() == "original"
    # a dangling link: refused without --force (nothing is created where it points)
    assert "link to a file that does not exist" in _one_error(run("-o", str(dangling)))
    assert not (tmp_path / "nowhere").exists()
    # a folder, a device: refused even with --force
    (tmp_path / "d.csv").mkdir()
    assert "is a folder" in _one_error(run("-o", str(tmp_path / "d.csv"), "--force"))
    assert "device" in _one_error(run("-o", "/dev/null", "--force"))
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    # an empty path, a missing folder
    assert "empty" in _one_error(run("-o", ""))
    assert "does not exist" in _one_error(run("-o", str(tmp_path / "no" / "t.csv")))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        msg = _one_error(CliRunner().invoke(main, ["ingest", EXAMPLE, "-o", str(ro / "t.csv")]))
        assert "permission denied" in msg
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("err, words", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                        (errno.EACCES, "permission denied"), (errno.EFBIG, "file-size limit")])
def test_write_failures_are_one_line_and_leave_nothing(tmp_path, monkeypatch, err, words):
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.fh.close()

        def write(self, data):
            raise OSError(err, os.strerror(err))

    monkeypatch.setattr(util.os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    r = CliRunner().invoke(main, ["ingest", EXAMPLE, "-o", str(tmp_path / "t.csv")])
    assert words in _one_error(r)
    assert list(tmp_path.iterdir()) == []


_FSIZE = """
import resource, sys
from scalelaw.util import atomic_write_bytes
from scalelaw.errors import ScalelawError
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    atomic_write_bytes(sys.argv[1], b"x" * 100000)
except ScalelawError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def test_file_size_limit_is_an_error_not_a_signal(tmp_path):
    r = subprocess.run([sys.executable, "-c", _FSIZE, str(tmp_path / "big.bin")], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "file-size limit" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    assert resource.getrlimit(resource.RLIMIT_FSIZE)   # (the limit was the child's only)


def test_multi_file_write_checks_every_target_first(tmp_path):
    from scalelaw.analysis import gadre

    (tmp_path / "gadre-rpj-err.json").write_text("mine")
    with pytest.raises(ScalelawError, match="gadre-rpj-err.json already exists"):
        gadre.reference_fit_paths("rpj", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gadre-rpj-err.json"]
    with pytest.raises(ScalelawError, match="named twice"):
        util.check_targets([tmp_path / "a.json", tmp_path / "." / "a.json"], force=False)


def test_gadre_write_fits_refuses_before_fitting(tmp_path, monkeypatch):
    from scalelaw.analysis import gadre

    (tmp_path / "gadre-rpj-err.json").write_text("mine")
    monkeypatch.setattr(gadre, "reproduce", lambda *a, **k: pytest.fail("fitted before checking the targets"))
    r = CliRunner().invoke(main, ["gadre", "reproduce", "--data", EXAMPLE, "--write-fits", str(tmp_path)])
    assert "already exists" in _one_error(r)
    assert (tmp_path / "gadre-rpj-err.json").read_text() == "mine"
    assert not (tmp_path / "gadre-rpj-loss.json").exists()


# ---- 5. impossible values --------------------------------------------------------------------------
@pytest.mark.parametrize("args, needle", [
    (("predict", FIT, "--at", "N=0", "--at", "D=1e9"), "must be positive"),
    (("predict", FIT, "--at", "N=-7e9", "--at", "D=1e9"), "must be positive"),
    (("predict", FIT, "--at", "N=1e9,0", "--at", "D=1e9"), "must be positive"),
    (("predict", FIT, "--at", "N=1e9", "--at", "D=1e9", "--at", "Q=3"), "takes no input 'Q'"),
    (("fit", "chinchilla", EXAMPLE, "--fix", "alpha=7"), "outside the bounds of parameter alpha"),
    (("fit", "chinchilla", EXAMPLE, "--fix", "E=-1"), "outside the bounds of parameter E"),
    (("fit", "chinchilla", EXAMPLE, "--fix", "E=nan"), "outside the bounds"),
    (("plan", "--compute", "1e23", "--loss", FIT, "--lr", FIT), "--lr needs a fit of the optimal learning rate"),
    (("plan", "--compute", "1e23", "--loss", FIT, "--bs", FIT), "--bs needs a fit of the optimal batch size"),
    (("plan", "--compute", "-1", "--loss", FIT), "must be positive"),
    (("plan", "--compute", "inf", "--loss", FIT), "not a finite number"),
    (("optimum", FIT, "--compute", "nan"), "not a finite number"),
    (("report", FIT, "-o", "r.html", "--plan-compute", "-1"), "must be positive"),
    (("fit", "chinchilla", EXAMPLE, "-o", ""), "output path is empty"),
    (("fit", "chinchilla", EXAMPLE, "--seed", "-1"), "--seed"),
    (("fit", "chinchilla", EXAMPLE, "--boot", "100000000"), "--boot"),
    (("fit", "chinchilla", EXAMPLE, "--scheduler", "nothing://"), "not a Dask scheduler address"),
    (("fit", "chinchilla", EXAMPLE, "--scheduler", "tcp://host:99999"), "not a Dask scheduler address"),
    (("mixture", "recommend", FIT, "--samples", "1000000000"), "--samples"),
    (("hparams", "--lr", FIT, "--N", "0", "--D", "1e9"), "positive"),
])
def test_impossible_values_refused(args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert needle in _one_error(CliRunner().invoke(main, list(args)))
    assert list(tmp_path.iterdir()) == []


def test_library_refuses_the_same(tmp_path):
    from scalelaw.fit import fit
    from scalelaw.result import load_fit

    from .helpers import ladder

    for kw, needle in (({"fixed": {"alpha": 7.0}}, "outside the bounds"), ({"seed": -1}, "--seed"),
                       ({"boot": -3}, "--boot"), ({"scheduler": "x y"}, "scheduler")):
        with pytest.raises(ScalelawError, match=needle):
            fit("chinchilla", ladder(), n_jobs=1, **kw)
    with pytest.raises(ScalelawError, match="must be positive"):
        load_fit(FIT).predict({"N": [0.0], "D": [1e9]})


def test_devices_and_pipes_are_never_read(tmp_path):
    """/dev/zero never ends and a FIFO blocks: both refused before anything opens them."""
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for args in (["inspect", "/dev/zero"], ["inspect", str(fifo)], ["fit", "chinchilla", str(fifo)],
                 ["predict", FIT, "--table", "/dev/zero"], ["predict", "/dev/zero", "--at", "N=1e9"],
                 ["check", str(fifo)]):
        assert "not a" in _one_error(CliRunner().invoke(main, args)), args
