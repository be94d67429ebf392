"""Multi-start and bootstrap on a local Dask cluster give the same answer as local processes."""
import numpy as np
import pytest

from scalelaw.errors import ScalelawError
from scalelaw.fit import fit
from scalelaw.parallel import map_chunks
from tests.test_fit import ladder

distributed = pytest.importorskip("distributed", reason="Dask is in the dev extra: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as c:
        yield c


def test_fit_on_dask_matches_local(cluster):
    df = ladder(noise=0.01, seed=11)
    local = fit("chinchilla", df, n_jobs=1, boot=64, seed=3)
    remote = fit("chinchilla", df, scheduler=cluster.scheduler_address, boot=64, seed=3)
    assert dict(remote.params) == pytest.approx(dict(local.params), rel=1e-9)
    assert np.allclose(remote.boot, local.boot, rtol=1e-8, equal_nan=True)


def test_map_chunks_reports_progress_in_order(cluster):
    seen = []
    out = map_chunks(abs, [-1, -2, -3], scheduler=cluster.scheduler_address, sizes=[1, 2, 3],
                     progress=seen.append)
    assert out == [1, 2, 3]
    assert sorted(seen) == [1, 2, 3]


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ScalelawError, match="cannot reach the Dask scheduler"):
        map_chunks(abs, [1], scheduler="tcp://127.0.0.1:1")
