"""Shared fixtures: the public-data mirror.

``mirror`` is the root of the public data (layout ``github/<owner>/<repo>/<commit>/<path>``):
``$SCALELAW_MIRROR``, else ``<repo>/../shared/data``. Without either, CI (``CI=true``) fails; a
user's machine tries to download the registered datasets into the scalelaw cache (same
layout) and skips when that fails. When found, ``SCALELAW_MIRROR`` is set for the session so
library calls (``scalelaw.datasets``, ``load_table("<name>")``) read it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _local_mirror() -> Path | None:
    env = os.environ.get("SCALELAW_MIRROR")
    if env:
        return Path(env).expanduser()
    cand = REPO.parent / "shared" / "data"
    return cand if cand.is_dir() else None


@pytest.fixture(scope="session", autouse=True)
def _mirror_env():
    """Point the library at the local mirror for the whole session (when there is one)."""
    root = _local_mirror()
    old = os.environ.get("SCALELAW_MIRROR")
    if root is not None:
        os.environ["SCALELAW_MIRROR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("SCALELAW_MIRROR", None)
    else:
        os.environ["SCALELAW_MIRROR"] = old


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The public-data mirror root (see the module docstring)."""
    root = _local_mirror()
    if root is not None:
        if not root.is_dir():
            pytest.fail(f"SCALELAW_MIRROR={root} is not a folder")
        return root
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but the public data mirror is missing: set SCALELAW_MIRROR or provide ../shared/data")
    from scalelaw import datasets
    from scalelaw.errors import ScalelawError

    try:
        for name in datasets.names():
            if datasets.get(name).owner is not None:
                datasets.fetch(name)
    except ScalelawError as exc:
        pytest.skip(f"no public data mirror and the download failed: {exc}")
    return datasets.cache_root()


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
