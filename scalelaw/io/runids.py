"""Unique run ids for runs named after where their log lies.

Readers of one run's log (a TensorBoard event file, a ``trainer_state.json``, a W&B history
export, a Megatron or nanoGPT log) name the run after its folder (``exp1/train/events...`` ->
``train``) or its file's stem (``exp1/train.log`` -> ``train``), and record that path in
``attrs["run_paths"]`` ({run id: path}). Where several logs are read into one table (a folder,
or the inputs of :func:`scalelaw.io.load_tables`), two different logs in folders or files of one
name would give one run id, and ``--reduce`` would merge their steps into one run. Such ids are
lengthened into the shortest path suffix that tells them apart (``exp1/train``,
``exp2/train``); a unique id is left as it is. Run ids written in the logs themselves (a ``run``
column) are the user's and are never renamed: two logs holding one such id are refused.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, NamedTuple

from ..errors import ScalelawError


class Origin(NamedTuple):
    """Where a run id comes from. Runs of one ``key`` are one run (e.g. the event files of one
    TensorBoard log folder); ``names`` are the ids it may take, shortest first (one for an id
    written in a log); ``label`` is the file or input a message names."""

    key: object
    names: tuple
    label: str


def path_names(path, base=None, *, start: str | None = None) -> tuple:
    """The ids a run named after ``path`` may take, shortest first: the folder's name (a file's
    stem), then with more and more of the folders above it (``exp1/train``), up to ``path``
    relative to ``base`` (the loaded folder; the whole path without it); a file's whole name
    (``exp1/train.log``) last. ``start``: the run's current id; only ids at least as long are given,
    that one first."""
    p = Path(os.path.abspath(path))
    is_file = p.is_file()
    comps = [p.stem if is_file else p.name]
    top = Path(os.path.abspath(base)) if base is not None else None
    d = p.parent
    while d.name and (top is None or top in d.parents):
        comps.append(d.name)
        d = d.parent
    names = ["/".join(reversed(comps[:k])) for k in range(1, len(comps) + 1)]
    if is_file and p.suffix:
        names.append("/".join(list(reversed(comps[1:])) + [p.name]))
    if start is not None:
        start = str(start)
        if start in names:
            names = names[names.index(start):]
        else:
            depth = start.count("/") + 1
            names = [start] + [n for n in names if n.count("/") + 1 > depth]
    return tuple(dict.fromkeys(n for n in names if n))


def unique_ids(origins: list, clash: Callable[[str, str, str], ScalelawError]) -> list:
    """One id per origin (same order): each its first name, lengthened (see :func:`path_names`)
    while another origin of a different key has the same id. When no longer name is left,
    ``clash(first name, label, other label)`` is raised."""
    level = [0] * len(origins)
    while True:
        ids = [o.names[lv] for o, lv in zip(origins, level)]
        keys: dict = {}
        for o, i in zip(origins, ids):
            keys.setdefault(i, {}).setdefault(o.key, o.label)
        clashing = [j for j, i in enumerate(ids) if len(keys[i]) > 1]
        if not clashing:
            return ids
        grow = [j for j in clashing if level[j] + 1 < len(origins[j].names)]
        if not grow:  # named by the id it had before (a message names what the user knows)
            first, second = list(keys[ids[clashing[0]]].values())[:2]
            raise clash(origins[clashing[0]].names[0], first, second)
        for j in grow:
            level[j] += 1


def renamed(df, new: dict):
    """``df`` with run ids renamed by {old: new} (those that change), and ``attrs["run_paths"]``
    following them."""
    change = {o: n for o, n in new.items() if str(o) != n}
    if not change:
        return df
    df = df.copy()
    df["run"] = df["run"].map(lambda r: change.get(r, r))
    paths = df.attrs.get("run_paths") or {}
    df.attrs["run_paths"] = {change.get(r, r): p for r, p in paths.items()}
    return df
