"""Run chunks of work on local processes, or on a Dask cluster when a scheduler is given."""
from __future__ import annotations

import functools
import multiprocessing as mp
import os
import re
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

from .errors import ScalelawError


def _context():
    # fork is cheap and inherits the imported modules; fall back to spawn where it is missing.
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def check_scheduler(address) -> str:
    """A Dask scheduler address (scheme://host:port) or ScalelawError; checked before connecting, since
    an address Dask cannot parse leaves a half-made client behind that hangs at exit."""
    a = str(address).strip()
    m = re.fullmatch(r"([a-z]+)://([^\s/:]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?/?", a)
    if m is None or m.group(1) not in _SCHEMES or (m.group(3) is not None and not 0 < int(m.group(3)) < 65536):
        raise ScalelawError(f"--scheduler {address!r} is not a Dask scheduler address; give "
                            f"SCHEME://HOST:PORT with SCHEME one of {', '.join(_SCHEMES)}, e.g. tcp://host:8786")
    return a


def map_chunks(fn: Callable, tasks: Sequence, *, n_jobs: int | None = None, scheduler: str | None = None,
               sizes: Sequence[int] | None = None, progress: Callable | None = None) -> list:
    """Apply ``fn`` to every task, in order; ``progress(size)`` is called as each task finishes."""
    sizes = list(sizes) if sizes is not None else [1] * len(tasks)
    if scheduler:
        check_scheduler(scheduler)
        try:
            from distributed import Client
        except ImportError:
            raise ScalelawError("--scheduler needs Dask: pip install 'scalelaw[dask]'") from None
        try:
            client = Client(scheduler, timeout="10s", set_as_default=False)
        except Exception as exc:
            raise ScalelawError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}; "
                                "check the address (e.g. tcp://host:8786)") from None
        try:
            futs = client.map(fn, list(tasks), pure=False)
            return _gather((f.result for f in futs), sizes, progress)
        finally:
            client.close()
    jobs = n_jobs or os.cpu_count() or 1
    if jobs <= 1 or len(tasks) <= 1:
        return _gather((functools.partial(fn, t) for t in tasks), sizes, progress)
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=_context()) as ex:
        futs = [ex.submit(fn, t) for t in tasks]
        return _gather((f.result for f in futs), sizes, progress)


def _gather(getters, sizes, progress) -> list:
    """Call each getter in order (a future's result, or the work itself), reporting progress."""
    out = []
    for get, size in zip(getters, sizes):
        out.append(get())
        if progress:
            progress(size)
    return out
