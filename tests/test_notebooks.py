"""Execute every notebook in notebooks/ (nbclient, kernel python3) against the public data mirror.

All of them together must finish in under 3 minutes; each cell has its own timeout. The
notebooks are committed without outputs and, where generated, must match notebooks/build.py.
"""
import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 150          # seconds per cell
TOTAL_BUDGET = 180.0        # seconds for all notebooks


@pytest.fixture(scope="module")
def kernel_env(mirror):
    """The kernel's environment: the public-data mirror (conftest's ``mirror`` fixture: fails in CI
    without one), this checkout on PYTHONPATH, no progress bars."""
    saved = dict(os.environ)
    os.environ["SCALELAW_MIRROR"] = str(mirror)
    os.environ["SCALELAW_QUIET"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in saved.get("PYTHONPATH", "").split(os.pathsep) if p])
    yield mirror
    os.environ.clear()
    os.environ.update(saved)


def _load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NB_DIR / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_there_are_notebooks_for_each_family():
    names = {p.name for p in NOTEBOOKS}
    assert {"chinchilla.ipynb", "hparams.ipynb", "overtrain.ipynb"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs before committing"


def test_generated_notebooks_match_build_script():
    build = _load_build()
    for name in build.NOTEBOOKS:
        path = NB_DIR / name
        if path.exists():
            assert path.read_text() == build.render(name), f"{name} differs from notebooks/build.py: rerun it"


def _execute(path) -> float:
    """Run one notebook; fail with its error cell; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(NB_DIR)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:   # the message holds the failing cell and traceback
        pytest.fail(f"{path.name} failed:\n{str(exc)[-3000:]}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: a cell raised"
    return time.perf_counter() - t0


def test_all_notebooks_run_within_budget(kernel_env):
    # one test runs them all in sequence, so the budget holds however pytest-xdist splits tests
    times = {p.name: _execute(p) for p in NOTEBOOKS}
    total = sum(times.values())
    detail = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(times.items()))
    print(f"\nnotebook times: {detail}; total {total:.1f}s", file=sys.stderr)
    assert total < TOTAL_BUDGET, f"notebooks took {total:.0f}s (> {TOTAL_BUDGET:.0f}s): {detail}"
