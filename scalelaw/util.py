"""Small helpers shared by every module: atomic writes, hashing, JSON of numpy values."""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ScalelawError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _describe(p: Path) -> str | None:
    """Why ``p`` can never be an output path (a folder, a device, a pipe), else None."""
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder; give a file path inside it"
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(p)
        except OSError:
            return None  # a dangling link: refused without --force, replaced with it
        if stat.S_ISDIR(target.st_mode):
            return "is a link to a folder; give a file path"
        if not stat.S_ISREG(target.st_mode):
            return "is a link to a device, pipe or socket, not a regular file; give a file path"
        return None
    if not stat.S_ISREG(st.st_mode):
        return "is a device, pipe or socket, not a regular file; give a file path"
    return None


def require_readable(path, what: str = "input") -> Path:
    """A regular file or folder to read; a device, pipe or socket (/dev/zero, a FIFO) would never end
    or block, so it is refused before anything opens it."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise ScalelawError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise ScalelawError(f"{what} {p} is a device, pipe or socket, not a file; give a file")
    return p


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    """Refuse an output path that exists (unless ``force``), is a folder/device, or whose folder is missing.

    Call it before long work so a bad -o fails at once; the write itself (atomic_write_bytes) is
    exclusive, so a file created in between is still never overwritten without ``force``."""
    if path is None or str(path).strip() == "":
        raise ScalelawError("the output path is empty; give a file name with -o")
    p = Path(path)
    if "\x00" in str(path):
        raise ScalelawError("the output path contains a NUL character; give a plain file name")
    why = _describe(p)
    if why:
        raise ScalelawError(f"cannot write {p}: it {why}.")
    if os.path.lexists(p) and not force:
        what = "is a link to a file that does not exist" if not p.exists() else "already exists"
        raise ScalelawError(f"{p} {what}; pass --force to overwrite it, or choose another -o path.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ScalelawError(f"cannot write {p}: folder {parent} does not exist; create it first.")
    return p


def check_targets(paths, force: bool) -> list:
    """check_writable for every path of a multi-file write, before any is written (no duplicates)."""
    out = [check_writable(p, force) for p in paths]
    seen = set()
    for p in out:
        key = os.path.abspath(p)
        if key in seen:
            raise ScalelawError(f"{p} is named twice among the outputs; give each output its own path.")
        seen.add(key)
    return out


def _write_error(p: Path, exc: OSError) -> ScalelawError:
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
              errno.EFBIG: "the file is larger than the file-size limit (ulimit -f)",
              errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied"}.get(exc.errno, exc.strerror or str(exc))
    return ScalelawError(f"cannot write {p}: {reason}; nothing was written (free space, fix permissions "
                         "or choose another -o path).")


def _ignore_sigxfsz() -> None:
    """A file-size limit must surface as an OSError (EFBIG), not kill the process with SIGXFSZ."""
    sig = getattr(signal, "SIGXFSZ", None)
    if sig is not None and threading.current_thread() is threading.main_thread():
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):
            pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically and, without ``force``, exclusively.

    The data goes to a temporary file in the same folder first. Without ``force`` it is then
    hard-linked to ``path``, which fails when anything (a file, a link) exists there: of several
    processes creating the same new path exactly one succeeds, the others get a ScalelawError,
    and nothing is ever overwritten. With ``force`` it is renamed over ``path`` (a link at
    ``path`` is replaced, the file it pointed to is left alone). A crash half way leaves the old
    file (or none), never a truncated one; write failures (full disk, read-only folder, file-size
    limit) are one ScalelawError and leave nothing behind.
    """
    p = check_writable(path, force)
    _ignore_sigxfsz()
    folder = str(p.parent) if str(p.parent) else "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _write_error(p, exc) from None
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            # mkstemp creates 0600; give the file the permissions a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        except OSError as exc:
            raise _write_error(p, exc) from None
        if force:
            why = _describe(p)
            if why:
                raise ScalelawError(f"cannot write {p}: it {why}.")
            try:
                os.replace(tmp, p)
            except OSError as exc:
                raise _write_error(p, exc) from None
        else:
            _link_exclusive(tmp, p)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return p


def _link_exclusive(tmp: str, p: Path) -> None:
    try:
        os.link(tmp, p)
        return
    except FileExistsError:
        raise ScalelawError(f"{p} already exists (created while scalelaw was writing it); pass --force to "
                            "overwrite it, or choose another -o path.") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise _write_error(p, exc) from None
    # a file system without hard links: claim the name exclusively, then fill it
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise ScalelawError(f"{p} already exists (created while scalelaw was writing it); pass --force to "
                            "overwrite it, or choose another -o path.") from None
    except OSError as exc:
        raise _write_error(p, exc) from None
    try:
        with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
            out.write(src.read())
    except OSError as exc:
        os.unlink(p)
        raise _write_error(p, exc) from None


def atomic_write_text(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), force=force)


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats into plain JSON values (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if type(obj).__name__ == "Series" and hasattr(obj, "to_dict"):   # pandas, not imported here
        return to_jsonable(obj.to_dict())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
