"""lm-evaluation-harness result files -> one row per (run, checkpoint).

Two layouts of the harness's output are read:

- the older one (harness <= 0.3, e.g. Pythia's ``evals/pythia-v1/pythia-160m/zero-shot/
  160m_step143000.json``): ``{"results": {task: {"acc": .., "acc_stderr": .., "acc_norm": ..}},
  "versions": {...}, "config": {"model_args": "pretrained=...,revision=step143000", ...}}``;
- the current one (harness >= 0.4, ``<output_path>/<model>/results_<date>.json``): metric keys
  carry their filter, ``"acc,none"`` and ``"acc_stderr,none"`` (a stderr may be the string
  ``"N/A"``), beside ``"alias"``; the file adds ``configs``, ``n-shot``, ``groups``, ...

Each file is one checkpoint. Its columns:

- ``run``: the folder holding the file (skipping a ``zero-shot`` / ``five-shot`` / ``N-shot``
  level), so every checkpoint of a model, each written to its model's folder, is one run; a
  file at the top of the folder read takes the model name of ``pretrained=`` instead;
- ``step``: ``step<K>`` in the file name, else ``revision=step<K>`` in ``model_args``; a file
  without either is refused (give ``step=``);
- ``D = step x tokens_per_step``: ``tokens_per_step`` given, else read from a GPT-NeoX-style
  config beside the results (``train_batch_size`` x ``seq_length``), else known for the Pythia
  models (1024 sequences of 2048 tokens); without it D is left out (a warning says why);
- ``N`` (and ``N_nonembed``): given per run (``params={run: N}``), else the Pythia size named by
  the run (Biderman et al. 2023, Table 1);
- ``score_<task>`` and ``stderr_<task>``: the chosen ``metric`` (``acc`` by default; tasks that
  do not report it, e.g. CrowS-Pairs' ``pct_stereotype`` or a perplexity, are left out). Task names
  become column-safe (``hendrycksTest-anatomy`` -> ``score_hendrycksTest_anatomy``);
  ``attrs["tasks"]`` maps each column back to the harness's name.

Reading never executes anything from the files.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScalelawError
from .jsonfile import is_number, read_json

#: Pythia's parameter counts: total (the Pythia README's model table) and non-embedding (Biderman
#: et al. 2023, "Pythia: A Suite for Analyzing Large Language Models Across Training and Scaling",
#: ICML 2023, arXiv:2304.01373, Table 1).
PYTHIA_PARAMS = {
    "70m": (70_426_624, 18_915_328),
    "160m": (162_322_944, 85_056_000),
    "410m": (405_334_016, 302_311_424),
    "1b": (1_011_781_632, 805_736_448),
    "1.4b": (1_414_647_808, 1_208_602_624),
    "2.8b": (2_775_208_960, 2_517_652_480),
    "6.9b": (6_857_302_016, 6_444_163_072),
    "12b": (11_846_072_320, 11_327_027_200),
}
#: every Pythia model saw 1024 sequences of 2048 tokens per step (Biderman et al. 2023, sec. 2.1;
#: 143,000 steps = 299,892,736,000 tokens)
PYTHIA_TOKENS_PER_STEP = 1024 * 2048

_SHOT = re.compile(r"^(zero|one|two|three|four|five|ten|\d+)[-_]?shots?$", re.I)
_STEP_NAME = re.compile(r"(?:^|[_\-.])step[_\-]?(\d+)(?:$|[_\-.])", re.I)
_STEP_REV = re.compile(r"^(?:global_)?step[_\-]?(\d+)$", re.I)
_PYTHIA = re.compile(r"pythia-(?:v[\d.]+-)?(\d+(?:\.\d+)?[mb])(-deduped)?$", re.I)


def sniff(head: bytes) -> bool:
    """Whether the start of a JSON file looks like harness output: a ``results`` object and one of
    the harness's other keys."""
    return b'"results"' in head and any(k in head for k in (b'"versions"', b'"configs"', b'"n-shot"'))


def is_result(obj) -> bool:
    return (isinstance(obj, dict) and isinstance(obj.get("results"), dict)
            and any(k in obj for k in ("versions", "configs", "n-shot")))


def column_name(task: str) -> str:
    """A task name as a column suffix: runs of characters other than letters, digits and '_' -> '_'."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", str(task)).strip("_") or "task"


def _model_args(cfg) -> dict:
    """``model_args`` of a harness config as a dict (a 'k=v,k=v' string, or already a dict)."""
    args = cfg.get("model_args") if isinstance(cfg, dict) else None
    if isinstance(args, dict):
        return {str(k): str(v) for k, v in args.items()}
    out = {}
    if isinstance(args, str):
        for part in args.split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def _step_of(p: Path, args: dict) -> int | None:
    m = _STEP_NAME.search(p.stem)
    if m:
        return int(m.group(1))
    m = _STEP_REV.match(args.get("revision", ""))
    return int(m.group(1)) if m else None


def _run_of(p: Path, root: Path | None, args: dict) -> str:
    folder = p.parent
    if _SHOT.match(folder.name) and folder != root:
        folder = folder.parent
    if root is None or folder != root:
        return folder.name
    name = args.get("pretrained") or args.get("model") or ""
    return name.rstrip("/").split("/")[-1] or _STEP_NAME.sub("", p.stem) or p.stem


def pythia_size(run: str) -> str | None:
    """'70m', '1.4b', ... when ``run`` names a Pythia model (pythia-1.4b, pythia-v1.1-1.4b-deduped)."""
    m = _PYTHIA.search(str(run))
    return m.group(1).lower() if m and m.group(1).lower() in PYTHIA_PARAMS else None


def _neox_tokens_per_step(folder: Path) -> float | None:
    """train_batch_size x seq_length from a GPT-NeoX-style config (config.json / *.yml as JSON) in
    ``folder`` or its parent; None when there is none."""
    for d in (folder, folder.parent):
        for name in ("config.json", "neox_config.json", "train_config.json"):
            f = d / name
            if not f.is_file():
                continue
            cfg = read_json(f, fix="fix or remove the config file")
            if not isinstance(cfg, dict):
                continue
            bs, sl = cfg.get("train_batch_size"), cfg.get("seq_length")
            if is_number(bs) and is_number(sl) and bs > 0 and sl > 0:
                return float(bs) * float(sl)
    return None


def _number(v, p: Path, what: str) -> float:
    if v is None or (isinstance(v, str) and v.strip().upper() in ("N/A", "NA", "NAN", "")):
        return float("nan")
    if not is_number(v):
        raise ScalelawError(f"{p}: {what} is {v!r}, not a number; fix the file (or regenerate it with the harness)")
    return float(v)


def _metric(res: dict, metric: str) -> tuple[str | None, str | None]:
    """The keys of ``metric`` and its stderr in one task's results: 'acc'/'acc_stderr', or the
    current layout's 'acc,<filter>' (the 'none' filter first)."""
    if metric in res:
        return metric, f"{metric}_stderr" if f"{metric}_stderr" in res else None
    keys = sorted((k for k in res if isinstance(k, str) and k.split(",", 1)[0] == metric and "," in k),
                  key=lambda k: (k.split(",", 1)[1] != "none", k))
    if not keys:
        return None, None
    filt = keys[0].split(",", 1)[1]
    se = f"{metric}_stderr,{filt}"
    return keys[0], se if se in res else None


def read_result(p: Path, *, metric: str = "acc", root: Path | None = None, step: int | None = None,
                run: str | None = None) -> dict:
    """One harness result file as {run, step, score_<task>, stderr_<task>, _tasks, _path}."""
    obj = read_json(p, fix="fix the file (or regenerate it with the harness)",
                    expect_object=" (an lm-evaluation-harness result)")
    if not is_result(obj):
        raise ScalelawError(f"{p}: not an lm-evaluation-harness result (no 'results' object beside 'versions', "
                            "'configs' or 'n-shot'); give the harness's output JSON")
    args = _model_args(obj.get("config") or {})
    st = step if step is not None else _step_of(p, args)
    if st is None:
        raise ScalelawError(f"{p}: no checkpoint step (neither 'step<K>' in the file name nor revision=step<K> in "
                            "config.model_args); name the file <model>_step<K>.json or give step=")
    row: dict = {"run": run or _run_of(p, root, args), "step": int(st), "_path": str(p), "_tasks": {}}
    for task, res in obj["results"].items():
        if not isinstance(res, dict):
            raise ScalelawError(f"{p}: results[{task!r}] is {type(res).__name__}, expected an object of metrics")
        k, ks = _metric(res, metric)
        if k is None:
            continue
        col = column_name(task)
        if col in row["_tasks"] and row["_tasks"][col] != task:
            raise ScalelawError(f"{p}: tasks {row['_tasks'][col]!r} and {task!r} both become column score_{col}; "
                                "rename one of them")
        row["_tasks"][col] = task
        v = _number(res[k], p, f"results[{task!r}][{k!r}]")
        if np.isfinite(v) and not 0 <= v <= 1:
            raise ScalelawError(f"{p}: results[{task!r}][{k!r}] is {v:g}; a {metric} must lie in [0, 1]; "
                                "choose another --metric or fix the file")
        row[f"score_{col}"] = v
        row[f"stderr_{col}"] = _number(res[ks], p, f"results[{task!r}][{ks!r}]") if ks else float("nan")
    if not row["_tasks"]:
        have = sorted({str(m).split(",")[0] for r in obj["results"].values() if isinstance(r, dict) for m in r})
        raise ScalelawError(f"{p}: no task reports metric {metric!r}; metrics in the file: "
                            f"{', '.join(have[:8]) or '(none)'}; choose one with --metric")
    return row


_LOG_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".log", ".out", ".gz")


def is_results_folder(path: Path) -> bool:
    """A folder of harness results only: at least one result JSON, and no other kind of log
    (CSV, Parquet, JSONL, text logs, TensorBoard events, trainer_state.json) beside them."""
    found = False
    for f in Path(path).rglob("*"):
        if not f.is_file() or f.name.startswith("."):
            continue
        name = f.name.lower()
        if name.endswith(_LOG_SUFFIXES) or "tfevents" in name or name == "trainer_state.json":
            return False
        if not found and name.endswith(".json"):
            try:
                with open(f, "rb") as fh:
                    found = sniff(fh.read(1 << 16))
            except OSError:
                continue
    return found


def result_files(path: Path) -> list[Path]:
    """The harness result files under ``path`` (a file, or a folder searched recursively)."""
    p = Path(path)
    if p.is_file():
        return [p]
    out = []
    for f in sorted(p.rglob("*.json")):
        if f.name.startswith(".") or not f.is_file():
            continue
        try:
            with open(f, "rb") as fh:
                head = fh.read(1 << 16)
        except OSError as exc:
            raise ScalelawError(f"cannot read {f}: {exc.strerror}") from None
        if sniff(head):
            out.append(f)
    return out


def read_lmeval(path, *, metric: str = "acc", tokens_per_step: float | None = None,
                params: dict | None = None, step: int | None = None, run: str | None = None) -> pd.DataFrame:
    """Harness result files (one file, or every result file below a folder) as a per-checkpoint
    table: run, step, N, N_nonembed, D, score_<task>, stderr_<task> (see the module doc)."""
    p = Path(path)
    files = result_files(p)
    if not files:
        raise ScalelawError(f"{p}: no lm-evaluation-harness result files (JSON with 'results' and 'versions' or "
                            "'configs') found; give the harness's output folder")
    root = p if p.is_dir() else p.parent.parent if _SHOT.match(p.parent.name) else p.parent
    return read_files(files, root=None if p.is_file() else root, source=str(p), metric=metric,
                      tokens_per_step=tokens_per_step, params=params, step=step, run=run)


def read_files(files: list, *, root: Path | None, source: str, metric: str = "acc",
               tokens_per_step: float | None = None, params: dict | None = None, step: int | None = None,
               run: str | None = None) -> pd.DataFrame:
    """Result files read from below ``root`` (None: files given one by one) as one table."""
    files = [Path(f) for f in files]
    p = Path(source)
    rows = [read_result(f, metric=metric, root=root, step=step, run=run) for f in files]
    seen: dict = {}
    for r in rows:
        key = (r["run"], r["step"])
        if key in seen:
            raise ScalelawError(f"{r['_path']}: run {key[0]!r} step {key[1]} is also in {seen[key]}; one result file per "
                                "checkpoint: remove the duplicate (or move it to its own folder)")
        seen[key] = r["_path"]
    tasks: dict = {}
    for r in rows:
        tasks.update(r.pop("_tasks"))
        r.pop("_path")
    df = pd.DataFrame(rows)
    _add_sizes(df, params, p)
    _add_tokens(df, files, tokens_per_step, p)
    first = ["run", "step", "N", "N_nonembed", "D"]
    score = sorted(c for c in df.columns if c.startswith("score_"))
    cols = [c for c in first if c in df.columns] + [c for s in score for c in (s, "stderr_" + s[6:])]
    df = df[cols].sort_values(["run", "step"], kind="stable").reset_index(drop=True)
    df.attrs.update({"source": source, "tasks": dict(sorted(tasks.items())), "metric": metric,
                     "per_checkpoint": True})
    return df


def _add_sizes(df: pd.DataFrame, params: dict | None, p: Path) -> None:
    params = dict(params or {})
    N, Nne = [], []
    for run in df["run"]:
        if run in params:
            v = params[run]
            if not (is_number(v) and v > 0):
                raise ScalelawError(f"params[{run!r}] is {v!r}; give the parameter count as a positive number")
            N.append(float(v))
            Nne.append(np.nan)
            continue
        size = pythia_size(run)
        N.append(float(PYTHIA_PARAMS[size][0]) if size else np.nan)
        Nne.append(float(PYTHIA_PARAMS[size][1]) if size else np.nan)
    if np.isfinite(N).any():
        df["N"] = N
        if np.isfinite(Nne).any():
            df["N_nonembed"] = Nne
    unknown = sorted({r for r, n in zip(df["run"], N) if not np.isfinite(n)})
    if unknown:
        warnings.warn(f"{p}: parameter count unknown for run(s) {', '.join(unknown[:5])}"
                      f"{' ...' if len(unknown) > 5 else ''}; N is left empty for them (give params={{run: N}})",
                      stacklevel=3)


def _add_tokens(df: pd.DataFrame, files: list, tokens_per_step, p: Path) -> None:
    if tokens_per_step is not None:
        if not (is_number(tokens_per_step) and tokens_per_step > 0):
            raise ScalelawError(f"tokens per step {tokens_per_step!r} must be a positive number of tokens")
        df["D"] = df["step"].astype(float) * float(tokens_per_step)
        return
    per_run = {}
    for f, run in zip(files, df["run"]):
        if run not in per_run:
            tps = _neox_tokens_per_step(f.parent)
            if tps is None and pythia_size(run):
                tps = float(PYTHIA_TOKENS_PER_STEP)
            per_run[run] = tps
    if all(v is None for v in per_run.values()):
        warnings.warn(f"{p}: tokens per step unknown (no train_batch_size/seq_length config beside the results); "
                      "D is left out: give --tokens-per-step", stacklevel=3)
        return
    tps = df["run"].map(lambda r: per_run.get(r) or np.nan).astype(float)
    df["D"] = df["step"].astype(float) * tps
