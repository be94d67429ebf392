"""Registry of public scaling datasets: where each file lives (GitHub owner, repo, commit, path),
its sha256, licence, citation, and a loader into the run table.

Resolution of a file: with ``SCALELAW_MIRROR`` set, ``$SCALELAW_MIRROR/github/<owner>/<repo>/
<commit>/<path>`` (hash verified); otherwise a user cache (``~/.cache/scalelaw``, or
``SCALELAW_CACHE``) with the same layout, filled from ``https://raw.githubusercontent.com/<owner>/
<repo>/<commit>/<path>`` (hash verified, written atomically). Hashes live in
``scalelaw/datasets_manifest.json`` (generated from the mirror with :func:`build_manifest`).
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pandas as pd

from .errors import ScalelawError, unknown_name
from .util import atomic_write_bytes, sha256_file

MANIFEST = Path(__file__).with_name("datasets_manifest.json")
RAW_URL = "https://raw.githubusercontent.com/{owner}/{repo}/{commit}/{path}"
EXTRA = "extra"  # files under the mirror root itself (not from GitHub): key in the manifest

CHINCHILLA = ("epoch-research", "analyzing-chinchilla", "92258837425e1b5f2851d624287f0120583a3d0e")
GADRE = ("mlfoundations", "scaling", "a003c4913793ac2ae7ef87b28ecb562955d026d5")
STEPLAW = ("step-law", "steplaw", "32a8f4cc50247695fb56cc6c9117abdf67c97763")
REGMIX = ("sail-sg", "regmix", "b004d3a3f39846dcec6b3740da22bcd1ba95a5d0")
OBSSCALING = ("ryoungj", "ObsScaling", "4d6e1e43fd2635d04654aa77d1df9d5266ea0382")
OPEN_ATHENA = ("Open-Athena", "scaling-law-analysis", "3e0656ee3dce1a2c89aa67691920f5eb9d30f0fc")
PYTHIA = ("EleutherAI", "pythia", "a19eecb807ec2c79a39ebf18108816e6ffffc1d5")


@dataclass(frozen=True)
class Dataset:
    """One registered dataset. ``paths`` are relative to the repository at ``commit`` (or to the
    mirror root when ``owner`` is None); a path ending in ``/`` registers every manifest file
    under it."""

    name: str
    owner: str | None
    repo: str | None
    commit: str | None
    paths: tuple[str, ...]
    licence: str
    citation: str
    description: str
    loader: Callable[[list[Path]], pd.DataFrame] = field(repr=False)
    required: tuple[str, ...] = ()
    rows: int | None = None

    @property
    def key(self) -> str:
        return f"{self.owner}/{self.repo}@{self.commit}" if self.owner else EXTRA

    def files(self) -> dict[str, str]:
        """{path: sha256} of every file of the dataset, from the manifest."""
        known = _manifest().get(self.key, {})
        out = {}
        for p in self.paths:
            if p.endswith("/"):
                hits = {k: v for k, v in known.items() if k.startswith(p)}
                if not hits:
                    raise ScalelawError(f"dataset {self.name}: the manifest lists no files under {p}; "
                                        "regenerate scalelaw/datasets_manifest.json")
                out.update(hits)
            else:
                if p not in known:
                    raise ScalelawError(f"dataset {self.name}: {p} is not in the manifest; "
                                        "regenerate scalelaw/datasets_manifest.json")
                out[p] = known[p]
        return dict(sorted(out.items()))

    def local_rel(self, path: str) -> str:
        """The file's path relative to a mirror (or cache) root."""
        if self.owner is None:
            return path
        return f"github/{self.owner}/{self.repo}/{self.commit}/{path}"

    def url(self, path: str) -> str | None:
        if self.owner is None:
            return None
        return RAW_URL.format(owner=self.owner, repo=self.repo, commit=self.commit, path=path)


#: repositories registering hundreds of files keep their hashes in a manifest of their own, so the
#: main one stays small (Pythia: one result file per checkpoint, 405 files)
SIDE_MANIFESTS = {"EleutherAI/pythia@a19eecb807ec2c79a39ebf18108816e6ffffc1d5":
                  MANIFEST.with_name("datasets_manifest_pythia.json")}


@lru_cache(maxsize=1)
def _manifest() -> dict[str, dict[str, str]]:
    man = {}
    for key, path in ((None, MANIFEST), *SIDE_MANIFESTS.items()):
        try:
            got = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ScalelawError(f"cannot read the dataset manifest {path} ({exc}); reinstall scalelaw") from None
        man.update(got if key is None else {key: got})
    return man


# ---- loaders --------------------------------------------------------------------------------------
def _root_of(path: Path, rel: str) -> Path:
    """The folder that ``rel`` is relative to, given the local file ``path``."""
    return Path(str(path)[: -len(rel)]) if str(path).endswith(rel) else path.parent


def _chinchilla(files: list[Path], drop_top: int = 5) -> pd.DataFrame:
    from .io.tabular import read_csv

    raw = read_csv(files[0])
    need = {"Model Size", "Training FLOP", "loss"}
    if not need <= set(raw.columns):
        raise ScalelawError(f"{files[0]}: expected columns {sorted(need)}; the file changed upstream")
    df = pd.DataFrame({"run": [f"chinchilla-{i:03d}" for i in range(len(raw))],
                       "N": raw["Model Size"].astype(float), "C": raw["Training FLOP"].astype(float),
                       "loss": raw["loss"].astype(float)})
    df["D"] = df["C"] / (6.0 * df["N"])
    if drop_top:
        df = df.drop(index=df["loss"].nlargest(drop_top).index).reset_index(drop=True)
    df.attrs.update({"C_convention": "given (Training FLOP); D = C/(6N)",
                     "N_convention": "all parameters (Model Size)",
                     "note": f"Epoch's reconstruction; {drop_top} highest-loss points dropped" if drop_top
                     else "all 245 digitised points"})
    return df


def _gadre(files: list[Path]) -> pd.DataFrame:
    from .io.openlm import read_exp_data

    first = next(f for f in files if "/models/" in str(f).replace(os.sep, "/"))
    return read_exp_data(first.parent.parent)


def _steplaw(files: list[Path]) -> pd.DataFrame:
    from .io.tabular import read_steplaw

    return read_steplaw(files[0])


def _csv(files: list[Path]) -> pd.DataFrame:
    from .io.tabular import read_csv

    return read_csv(files[0])


def _regmix(files: list[Path]) -> pd.DataFrame:
    from .io.regmix import load_pair

    mix = next(f for f in files if "_mixture_" in f.name)
    loss = next(f for f in files if "_pile_loss_" in f.name)
    return load_pair(mix, loss)


def _obsscaling(files: list[Path]) -> pd.DataFrame:
    from .io.tabular import read_obsscaling

    return read_obsscaling(files[0])


def _open_athena(files: list[Path], experiment: str | None = None) -> pd.DataFrame:
    """Open-Athena's IsoFLOP collection: N = params, D = tokens, C = budget (the study's nominal
    IsoFLOP budget), loss; ``outlier`` and ``reason`` where the file flags them; one experiment
    (one study's IsoFLOP set) when ``experiment`` is given."""
    from .io.tabular import read_csv

    raw = read_csv(files[0])
    need = {"experiment", "params", "tokens", "budget", "loss"}
    if not need <= set(raw.columns):
        raise ScalelawError(f"{files[0]}: expected columns {sorted(need)}; the file changed upstream")
    if experiment is not None:
        raw = raw[raw["experiment"] == experiment].reset_index(drop=True)
        if raw.empty:
            raise ScalelawError(f"{files[0]}: no rows of experiment {experiment!r}; the file changed upstream")
    df = pd.DataFrame({"run": [f"{e}-{i:03d}" for i, e in enumerate(raw["experiment"])],
                       "experiment": raw["experiment"].astype(str), "study": raw["source"].astype(str),
                       "N": raw["params"].astype(float), "D": raw["tokens"].astype(float),
                       "C": raw["budget"].astype(float), "loss": raw["loss"].astype(float)})
    if "outlier" in raw.columns:
        df["outlier"] = raw["outlier"].astype(str).str.lower().eq("true").to_numpy()
        df["reason"] = raw["reason"].astype(str).to_numpy()
    df.attrs.update({"C_convention": "the study's IsoFLOP budget (column budget)",
                     "note": "Open-Athena's standardised IsoFLOP sets" + (f": {experiment}" if experiment else "")})
    return df


def _pythia(files: list[Path]) -> pd.DataFrame:
    from .io.lmeval import read_files

    root = Path(os.path.commonpath([str(f) for f in files]))
    return read_files(files, root=root, source=str(root))


_CITE_CHIN = ("Besiroglu, Erdil, Barnett, You (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102; "
              "original data: Hoffmann et al. (2022), arXiv:2203.15556")
_CITE_GADRE = ("Gadre et al. (2024). Language models scale reliably with over-training and on downstream tasks. "
               "arXiv:2403.08540")
_CITE_STEP = "Li et al. (2025). Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law. arXiv:2503.04715"
_CITE_REGMIX = "Liu et al. (2025). RegMix: Data Mixture as Regression for Language Model Pre-training. ICLR 2025, arXiv:2407.01492"
_CITE_OBS = ("Ruan, Maddison, Hashimoto (2024). Observational Scaling Laws and the Predictability of Language "
             "Model Performance. arXiv:2405.10938")

_CITE_PYTHIA = ("Biderman et al. (2023). Pythia: A Suite for Analyzing Large Language Models Across Training and "
                "Scaling. ICML 2023, arXiv:2304.01373")

_RM = "data/"
REGISTRY: dict[str, Dataset] = {}


def _add(ds: Dataset) -> None:
    REGISTRY[ds.name] = ds


_add(Dataset("chinchilla-epoch", *CHINCHILLA, ("data/svg_extracted_data.csv",), "none stated", _CITE_CHIN,
             "Chinchilla IsoFLOP runs digitised by Epoch: 240 points (245 minus the 5 highest-loss ones, as "
             "Epoch fit); N all params, C given, D = C/(6N).", _chinchilla, ("N", "D", "loss"), 240))
_add(Dataset("chinchilla-epoch-all", *CHINCHILLA, ("data/svg_extracted_data.csv",), "none stated", _CITE_CHIN,
             "All 245 digitised Chinchilla points (Epoch reconstruction).",
             lambda f: _chinchilla(f, drop_top=0), ("N", "D", "loss"), 245))
_add(Dataset("gadre-overtrain", *GADRE, ("exp_data/models/", "exp_data/evals/", "exp_data/eval_metadata.csv"),
             "MIT", _CITE_GADRE,
             "Over-training testbed: 104 open_lm runs on rpj / c4_original / rw_original; loss = C4 validation "
             "loss (loss_c4_val), other validation losses as loss_*, downstream err_<task> = 1 - accuracy; "
             "random baselines in attrs['random_baseline'].", _gadre, ("N", "D", "loss"), 104))
_add(Dataset("steplaw-dense", *STEPLAW, ("data/dense_lr_bs_loss.csv",), "none stated", _CITE_STEP,
             "Step Law dense LR x batch grid: 1911 runs in 17 (N, D) cells; N = non-embedding params (also "
             "N_nonembed), batch_tokens = bs x 2048, loss and smooth_loss.", _steplaw, ("N", "D", "loss", "lr"), 1911))
_add(Dataset("steplaw-moe", *STEPLAW, ("data/moe_lr_bs_loss.csv",), "none stated", _CITE_STEP,
             "Step Law MoE LR x batch grid: 708 runs; as steplaw-dense plus N_active (Na).", _steplaw,
             ("N", "D", "loss", "lr"), 708))
_add(Dataset("steplaw-bootstrap", *STEPLAW, ("data/1004_fitted_lr_bs_scaling_model_parameters.csv",), "none stated",
             _CITE_STEP, "Step Law's 1000 bootstrap fits of the LR and batch-size power laws (log-space "
             "intercepts and coefficients).", _csv, (), 1000))
for _split, _n, _files in (("1m-train", 512, ("train_mixture_1m.csv", "train_pile_loss_1m.csv")),
                           ("1m-test", 256, ("test_mixture_1m.csv", "test_pile_loss_1m.csv")),
                           ("60m-test", 256, ("test_mixture_60m.csv", "test_pile_loss_60m.csv")),
                           ("1b-test", 64, ("test_mixture_1B.csv", "test_pile_loss_1B.csv"))):
    _add(Dataset(f"regmix-{_split}", *REGMIX, tuple(_RM + f for f in _files), "MIT", _CITE_REGMIX,
                 f"RegMix {_split.replace('-', ' ')} runs ({_n}): mix_<domain> weights over 17 Pile domains and "
                 "loss_<domain> validation losses (13 domains), paired by index.", _regmix, (), _n))
_add(Dataset("obsscaling-base", *OBSSCALING, ("eval_results/base_llm_benchmark_eval.csv",), "Apache-2.0", _CITE_OBS,
             "148 public base models: model, family, N = Model Size (B) x 1e9, D = Pretraining Data Size (T) x 1e12, "
             "C = FLOPs (1E21) x 1e21, score_<benchmark> in [0, 1].", _obsscaling, ("N",), 148))
_CITE_OA = ("Czech, Xu, Elmatad, Wang, Held (2026). Problems with Chinchilla Approach 2: Systematic Biases in "
            "IsoFLOP Parabola Fits. arXiv:2603.22339 (collection and outlier flags)")
_OA_FILE = "data/isoflops/transform/isoflops.csv"
#: name: (experiment, rows, the source study)
OPEN_ATHENA_SETS = {
    "isoflops-chinchilla-epoch": ("epochai_chinchilla__massivetext__chinchilla", 123,
                                  "Hoffmann et al. (2022), arXiv:2203.15556, IsoFLOP runs digitised by Besiroglu et al. "
                                  "(2024), arXiv:2404.10102"),
    "isoflops-chinchilla-scalefit": ("ml_scalefit__massivetext__chinchilla", 124,
                                     "Hoffmann et al. (2022), arXiv:2203.15556, runs as released with apple/ml-scalefit "
                                     "(arXiv:2507.09404)"),
    "isoflops-llama3": ("llama_3__raw_loss", 133, "Llama Team (2024), The Llama 3 Herd of Models, arXiv:2407.21783, "
                                                  "Figure 2 digitised (eric-czech/llama3_isoflop_extraction)"),
    "isoflops-llama3-exp": ("llama_3__exp_loss", 133, "as isoflops-llama3, loss exponentiated as in the collection"),
    "isoflops-marin-comma": ("marin_202603__comma__llama_2", 85, "Marin community scaling ladders (W&B report "
                                                                 "'Scaling Ladders', 2026), Comma data"),
    "isoflops-marin-dclm": ("marin_202603__dclm__llama_2", 85, "Marin community scaling ladders (W&B report "
                                                               "'Scaling Ladders', 2026), DCLM data"),
    "isoflops-marin-nemotron": ("marin_202603__nemotron__llama_2", 88, "Marin community scaling ladders (W&B report "
                                                                       "'Scaling Ladders', 2026), Nemotron data"),
    "isoflops-misfitting": ("misfitting__fineweb_c4__transformer", 176, "(Mis)Fitting scaling laws survey, "
                                                                        "arXiv:2502.18969 (hadasah/scaling_laws)"),
}
_add(Dataset("isoflops-open-athena", *OPEN_ATHENA, (_OA_FILE,), "none stated (cite each source study)", _CITE_OA,
             "Eight published IsoFLOP sets standardised by Open-Athena (column experiment): N = params, D = tokens, "
             "C = the IsoFLOP budget, loss, and their outlier flags (outlier, reason).", _open_athena,
             ("N", "D", "C", "loss"), 947))
_add(Dataset("isoflops-open-athena-raw", *OPEN_ATHENA, ("data/isoflops/extract/isoflops.csv",),
             "none stated (cite each source study)", _CITE_OA,
             "As isoflops-open-athena, before outlier flagging.", _open_athena, ("N", "D", "C", "loss"), 947))
for _name, (_exp, _rows, _cite) in OPEN_ATHENA_SETS.items():
    _add(Dataset(_name, *OPEN_ATHENA, (_OA_FILE,), "none stated (cite the source study)", f"{_cite}; {_CITE_OA}",
                 f"IsoFLOP set {_exp} of isoflops-open-athena (N, D, C = budget, loss, outlier flags).",
                 lambda f, e=_exp: _open_athena(f, e), ("N", "D", "C", "loss"), _rows))
_PYTHIA_EVALS = "evals/pythia-v1/pythia-{}/"
for _name, _sizes, _suffix, _what in (
        ("pythia", ("70m", "160m", "410m", "1.4b", "2.8b", "6.9b", "12b"), "", "the Pile"),
        ("pythia-deduped", ("70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"), "-deduped",
         "the deduplicated Pile")):
    _add(Dataset(_name, *PYTHIA, tuple(_PYTHIA_EVALS.format(s + _suffix) for s in _sizes), "Apache-2.0", _CITE_PYTHIA,
                 f"Pythia zero-shot lm-evaluation-harness results at 27 checkpoints (step 0 to 143000) of "
                 f"{len(_sizes)} models trained on {_what}: one row per (run, step); N and N_nonembed from the Pythia "
                 "paper (Table 1), D = step x 2,097,152 tokens, score_<task> = acc and stderr_<task> per task.",
                 _pythia, ("N", "step"), 27 * len(_sizes)))
_add(Dataset("release-dates", None, None, None, ("extra/release_dates.csv",), "compiled facts (cite the source column)",
             "see the 'source' column of each row",
             "First public release date of each obsscaling-base model (model, family, release_date, precision, "
             "source); ships with the mirror only.", _csv, (), None))


# ---- resolution -----------------------------------------------------------------------------------
def names() -> list[str]:
    """Registered dataset names."""
    return list(REGISTRY)


def get(name: str) -> Dataset:
    if name not in REGISTRY:
        raise unknown_name("dataset", name, REGISTRY)
    return REGISTRY[name]


def combined_sha256(files: dict[str, str]) -> str:
    """One hash over (path, sha256) pairs, sorted by path."""
    h = hashlib.sha256()
    for p, s in sorted(files.items()):
        h.update(f"{p}\0{s}\n".encode())
    return h.hexdigest()


def info(name: str) -> dict:
    """Everything known about a dataset (no download)."""
    ds = get(name)
    files = ds.files()
    return {"name": ds.name, "owner": ds.owner, "repo": ds.repo, "commit": ds.commit,
            "paths": list(ds.paths), "n_files": len(files), "sha256": combined_sha256(files),
            "files": files if len(files) <= 4 else {k: files[k] for k in list(files)[:4]},
            "licence": ds.licence, "citation": ds.citation, "description": ds.description, "rows": ds.rows,
            "url": ds.url(ds.paths[0].rstrip("/")) if ds.owner else None}


def mirror_root() -> Path | None:
    env = os.environ.get("SCALELAW_MIRROR")
    return Path(env).expanduser() if env else None


def cache_root() -> Path:
    env = os.environ.get("SCALELAW_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scalelaw"


def _verify(p: Path, sha: str, where: str) -> None:
    got = sha256_file(p)
    if got != sha:
        raise ScalelawError(f"{p}: sha256 {got[:12]}... does not match the registry's {sha[:12]}... ({where}); "
                            "the file was changed or is incomplete; restore it (or delete it from the cache)")


def _download(url: str, dest: Path, sha: str, name: str = "") -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    what = f"dataset {name}: " if name else ""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ScalelawError(f"{what}cannot download {url} ({reason}); set SCALELAW_MIRROR to a local mirror of the "
                            "public data, or connect to the internet") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        raise ScalelawError(f"{what}download of {url} has sha256 {got[:12]}..., expected {sha[:12]}...; "
                            "retry later, or use a mirror (SCALELAW_MIRROR)")
    # a stale (unverified) copy may be in the cache: replace it
    atomic_write_bytes(dest, data, force=True)


def fetch(name: str, verify: bool = True) -> list[Path]:
    """Local paths of every file of ``name``: from the mirror, else the cache (downloading as needed)."""
    ds = get(name)
    files = ds.files()
    mirror = mirror_root()
    out = []
    for rel, sha in files.items():
        local = ds.local_rel(rel)
        if mirror is not None:
            p = mirror / local
            if not p.is_file():
                raise ScalelawError(f"dataset {name}: {p} is missing from the mirror SCALELAW_MIRROR={mirror}; "
                                    "fix the mirror or unset SCALELAW_MIRROR to download")
            if verify:
                _verify(p, sha, f"mirror {mirror}")
        else:
            p = cache_root() / local
            if not p.is_file() or (verify and sha256_file(p) != sha):
                url = ds.url(rel)
                if url is None:
                    raise ScalelawError(f"dataset {name} ships only with the public-data mirror; set "
                                        "SCALELAW_MIRROR to the mirror folder (e.g. ../shared/data)")
                _download(url, p, sha, name)
        out.append(p)
    return out


def load(name: str) -> pd.DataFrame:
    """The dataset as a validated run table; ``attrs`` carry source (the name), sha256 (combined),
    licence and citation."""
    from .schema import normalize, validate

    ds = get(name)
    paths = fetch(name)
    df = ds.loader(paths)
    extra = dict(df.attrs)
    df = normalize(df, source=name)
    df.attrs.update({k: v for k, v in extra.items() if k not in ("source",)})
    validate(df, required=ds.required, source=name)
    df.attrs.update({"source": name, "sha256": combined_sha256(ds.files()), "licence": ds.licence,
                     "citation": ds.citation, "dataset": name})
    return df


def build_manifest(mirror: str | os.PathLike) -> dict:
    """{repo key: {path: sha256}} for every registered file found in ``mirror`` (a developer tool:
    run once when the registry changes, commit the JSON)."""
    root = Path(mirror)
    man: dict[str, dict[str, str]] = {}
    for ds in REGISTRY.values():
        base = root / (f"github/{ds.owner}/{ds.repo}/{ds.commit}" if ds.owner else "")
        entry = man.setdefault(ds.key, {})
        for p in ds.paths:
            if p.endswith("/"):
                for f in sorted((base / p).rglob("*")):
                    if f.is_file():
                        entry[str(f.relative_to(base)).replace(os.sep, "/")] = sha256_file(f)
            else:
                entry[p] = sha256_file(base / p)
    return {k: dict(sorted(v.items())) for k, v in sorted(man.items())}


if __name__ == "__main__":
    # python -m scalelaw.datasets MIRROR > scalelaw/datasets_manifest.json (without SIDE_MANIFESTS' repositories);
    # python -m scalelaw.datasets MIRROR KEY > the side manifest of repository KEY (see SIDE_MANIFESTS)
    import sys

    _all = build_manifest(sys.argv[1])
    if len(sys.argv) > 2:
        print(json.dumps(_all[sys.argv[2]], indent=1))
    else:
        print(json.dumps({k: v for k, v in _all.items() if k not in SIDE_MANIFESTS}, indent=1))
