"""Data-mixture regression (RegMix, Liu et al. 2024): predict a loss from domain weights, recommend a mixture.

A *mixture table* has one row per training run: the run's domain weights in ``mix_<domain>``
columns (non-negative, summing to 1 within :data:`SUM_TOL`) and one or more target columns
(e.g. ``loss_pile_cc``). Three regressors share one interface (:class:`MixtureModel`):

- ``linear``: ordinary least squares (statsmodels) on the weights without a separate intercept
  (the weights sum to 1, so each coefficient is the predicted loss of a pure-domain mixture and the
  intercept is implicit); the same predictions as RegMix's regression with an intercept when rows sum
  to exactly 1 (RegMix's rounded rows do not, so its figures differ slightly).
- ``gbdt``: LightGBM gradient-boosted trees with RegMix's own settings (1000 rounds, learning
  rate 0.01, otherwise LightGBM defaults, seed 42).
- ``mixlaw``: the exponential data-mixing law L = c + k exp(sum_j t_j r_j) (Ye et al. 2024),
  fitted by least squares (scipy), with the gauge sum_j t_j = 0 (the weights sum to 1, so a common
  shift of the t_j is the same as rescaling k).

:func:`recommend` samples candidate mixtures from Dirichlet(strength * prior^temperature) with the
prior the domains' token shares (RegMix's convention), keeps those within per-domain bounds and an
epoch limit, predicts, and averages the top-k; an interval comes from refitting on bootstrap
resamples of the training table. Figures: :func:`plot_predicted_vs_actual`,
:func:`plot_recommendation` (plotly; never shown). :func:`check_reference` re-checks a reference fit
(fits/regmix-*.json) for ``scalelaw check``.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import FitError, ScalelawError, unknown_name
from ..util import atomic_write_text, dumps

PREFIX = "mix_"
#: weights of a row must sum to 1 within this (RegMix's files round weights to 3 decimals: <= 0.004 off)
SUM_TOL = 0.01
MODELS = ("linear", "gbdt", "mixlaw")

#: recommend's top-k may be at most 1/MIN_POOL of the draws inside the bounds (unless fewer were asked for)
MIN_POOL = 10

#: RegMix's LightGBM settings (regression_fitting/regression.ipynb): 1000 rounds, lr 0.01, seed 42.
GBDT_DEFAULTS = {"rounds": 1000, "learning_rate": 0.01, "seed": 42, "early_stopping": 3}

#: Token shares of the 17 Pile domains RegMix trains on (GPT-NeoX tokenizer), the Dirichlet prior
#: of its mixture generator and simulator (sail-sg/regmix mixture_config/synthesize_mixture.py,
#: model_training/token_prior.yaml). Sum to 1.0 within 1e-8.
PILE_TOKEN_SHARES = {
    "arxiv": 0.113285273, "freelaw": 0.079608651, "nih_exporter": 0.003913491,
    "pubmed_central": 0.185375901, "wikipedia_en": 0.051081359, "dm_mathematics": 0.015962925,
    "github": 0.101750772, "philpapers": 0.003707518, "stackexchange": 0.066529351,
    "enron_emails": 0.001750772, "gutenberg_pg_19": 0.027085479, "pile_cc": 0.236869207,
    "ubuntu_irc": 0.01184346, "europarl": 0.007929969, "hackernews": 0.008032956,
    "pubmed_abstracts": 0.038825953, "uspto_backgrounds": 0.046446962,
}

#: RegMix data files in the public mirror (owner/repo/commit/folder) and the dataset names for them.
REGMIX_DIR = "github/sail-sg/regmix/b004d3a3f39846dcec6b3740da22bcd1ba95a5d0/data"
REGMIX_DATASETS = {
    "regmix-1m-train": ("train_mixture_1m.csv", "train_pile_loss_1m.csv"),
    "regmix-1m-test": ("test_mixture_1m.csv", "test_pile_loss_1m.csv"),
    "regmix-60m-test": ("test_mixture_60m.csv", "test_pile_loss_60m.csv"),
    "regmix-1b-test": ("test_mixture_1B.csv", "test_pile_loss_1B.csv"),
}
TEST_SETS = ("regmix-1m-test", "regmix-60m-test", "regmix-1b-test")
#: RegMix's notebook stops its trees early on the 1M test set (the runs it then reports on)
REGMIX_VALID = "regmix-1m-test"

#: Spearman rho on unseen mixtures (Pile-CC loss), trained on the 512 1M runs: the figures a
#: reproduction of RegMix reaches (Liu et al. 2024; its released notebook, sail-sg/regmix
#: regression_fitting/regression.ipynb; docs/mixture.md).
PUBLISHED_SPEARMAN = {
    "linear": {"regmix-1m-test": 0.9021, "regmix-60m-test": 0.8933, "regmix-1b-test": 0.8766},
    "gbdt": {"regmix-1m-test": 0.9892, "regmix-60m-test": 0.9849, "regmix-1b-test": 0.9651},
}


# ---- tables ----------------------------------------------------------------------------------------
def domains_of(df: pd.DataFrame) -> list[str]:
    """Domain names of the ``mix_<domain>`` columns, in table order."""
    return [c[len(PREFIX):] for c in df.columns if isinstance(c, str) and c.startswith(PREFIX)]


def validate_table(df: pd.DataFrame, source: str = "table", targets: Sequence[str] = (),
                   tol: float = SUM_TOL) -> list[str]:
    """Check a mixture table; return its domains. Raise ScalelawError naming the problem and the fix."""
    doms = domains_of(df)
    if not doms:
        raise ScalelawError(
            f"{source} has no mix_<domain> weight columns (columns: {', '.join(map(str, df.columns[:8]))}"
            f"{', ...' if len(df.columns) > 8 else ''}); name each domain's weight column mix_<domain>.")
    if len(df) == 0:
        raise ScalelawError(f"{source} has no rows; give at least one run per row.")
    names = pd.Index(df.columns)
    for c in dict.fromkeys([PREFIX + d for d in doms] + list(targets)):
        if (n := int((names == c).sum())) > 1:
            raise ScalelawError(f"{source}: {n} columns are named {c!r}; keep one (rename or drop the others).")
    for t in targets:
        if t not in df.columns:
            raise unknown_name(f"target column in {source}", t,
                               [c for c in df.columns if not str(c).startswith(PREFIX) and c != "index"])
    cols = [PREFIX + d for d in doms]
    for c in cols + list(targets):
        v = pd.to_numeric(df[c], errors="coerce")
        bad = v.isna() | ~np.isfinite(v.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ScalelawError(
                f"{source}: column {c!r} row {i} holds {df[c].iloc[i]!r}, not a finite number; "
                "fill it in or drop the row.")
    W = df[cols].to_numpy(dtype=float)
    neg = np.argwhere(W < 0)
    if len(neg):
        i, j = neg[0]
        raise ScalelawError(
            f"{source}: column {cols[j]!r} row {i} has negative weight {W[i, j]:.6g}; "
            "mixture weights must be >= 0 (fix or drop the row).")
    s = W.sum(axis=1)
    off = np.flatnonzero(np.abs(s - 1.0) > tol)
    if len(off):
        i = int(off[0])
        raise ScalelawError(
            f"{source}: weights in row {i} (mix_* columns) sum to {s[i]:.6g}, not 1 (tolerance {tol}); "
            f"{len(off)} row(s) are off. Normalise each row's weights to sum to 1, or add the missing domain's "
            "mix_ column.")
    return doms


def _rename_regmix(df: pd.DataFrame) -> pd.DataFrame:
    ren = {}
    for c in df.columns:
        s = str(c)
        if s.startswith("train_the_pile_"):
            ren[c] = PREFIX + s[len("train_the_pile_"):]
        elif s.startswith("metric/the_pile_") and s.endswith("_val_loss"):
            ren[c] = "loss_" + s[len("metric/the_pile_"):-len("_val_loss")]
    return df.rename(columns=ren)


def load_mixture_table(source) -> pd.DataFrame:
    """A mixture table from a DataFrame, a dataset name, ``MIX.csv,LOSS.csv`` (RegMix pair) or a file.

    A file named like one of RegMix's (``*_mixture_*`` / ``*_pile_loss_*``) is joined with its partner;
    other files are read as they are (CSV, TSV, Parquet or JSON records).
    """
    if isinstance(source, pd.DataFrame):
        return _rename_regmix(source)
    src = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    p = Path(src)
    if not p.exists():
        if "," in src:
            from ..io.regmix import load_pair

            a, b = (x.strip() for x in src.split(",", 1))
            return load_pair(a, b)
        from .. import datasets

        if src in datasets.names():
            return _rename_regmix(datasets.load(src))
        raise unknown_name("mixture table file or dataset", src,
                           [n for n in datasets.names() if n.startswith("regmix")])
    if p.is_dir():
        raise ScalelawError(f"{p} is a folder; give the mixture table file (CSV, Parquet or JSON).")
    suf = p.suffix.lower()
    try:
        if suf == ".csv" and ("_mixture_" in p.name or "_pile_loss_" in p.name):
            head = pd.read_csv(p, nrows=0).columns
            if any(str(c).startswith(("train_the_pile_", "metric/the_pile_")) for c in head):
                from ..io.regmix import read_single

                return read_single(p)
        if suf in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        elif suf == ".json":
            df = pd.read_json(p)
        elif suf in (".tsv", ".tab"):
            df = pd.read_csv(p, sep="\t")
        else:
            df = pd.read_csv(p)
    except (OSError, ValueError, ImportError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ScalelawError(f"cannot read mixture table {p}: {why}; give a CSV, TSV, Parquet or JSON-records file "
                            "with mix_<domain> columns.") from None
    return _rename_regmix(df)


def table_sha256(df: pd.DataFrame, domains: Sequence[str], target: str) -> str:
    """sha256 of the table as fitted: the domain weights and the target, as CSV (17 significant digits)."""
    cols = [PREFIX + d for d in domains] + [target]
    buf = io.StringIO()
    df[cols].astype(float).to_csv(buf, index=False, float_format="%.17g")
    return hashlib.sha256(buf.getvalue().encode()).hexdigest()


def _matrix(df: pd.DataFrame, domains: Sequence[str], source: str, what: str = "the fit") -> np.ndarray:
    have = domains_of(df)
    missing = [d for d in domains if d not in have]
    extra = [d for d in have if d not in domains]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(PREFIX + d for d in missing))
        if extra:
            parts.append("unknown to the model " + ", ".join(PREFIX + d for d in extra))
        raise ScalelawError(
            f"{source}: domains differ from {what} ({'; '.join(parts)}); use a table with the same mix_ columns "
            "as the training table, or refit on a table with these domains.")
    return df[[PREFIX + d for d in domains]].to_numpy(dtype=float)


def _source_name(table, default: str) -> str:
    """How ``table`` is named in messages and fit files: its path or dataset name; ``default`` for a DataFrame."""
    return default if isinstance(table, pd.DataFrame) else str(table)


def _read_xy(table, domains: Sequence[str], target: str, source: str,
             what: str = "the fit's training table") -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Load and check a table whose domains must be ``domains`` (those of ``what``): (table, weights, target)."""
    df = load_mixture_table(table)
    validate_table(df, source, targets=[target])
    return df, _matrix(df, domains, source, what), df[target].to_numpy(float)


# ---- regressors --------------------------------------------------------------------------------
class MixtureModel:
    """One regressor: ``fit(X, y)``, ``predict(X)``, ``to_dict()``, ``from_dict(d)``, ``summary()``.

    ``feature_names`` (the ``mix_<domain>`` columns, set by :func:`fit_mixture`) name the columns in
    messages and in LightGBM's model text.
    """

    name = "?"
    feature_names: list[str] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "MixtureModel":
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def summary(self, domains: Sequence[str] = ()) -> str:
        return ""

    def clone(self) -> "MixtureModel":
        """An unfitted model with the same settings."""
        return self._named(type(self)(**self.settings()))

    def _named(self, m: "MixtureModel") -> "MixtureModel":
        m.feature_names = self.feature_names
        return m

    def _require_full_rank(self, X: np.ndarray) -> None:
        """FitError when the weight columns are linearly dependent: their effects cannot be separated."""
        if np.linalg.matrix_rank(X) == X.shape[1]:
            return
        null = np.linalg.svd(X)[2][-1]
        names = self.feature_names or [f"column {i}" for i in range(X.shape[1])]
        cols = [names[i] for i in np.flatnonzero(np.abs(null) > 1e-6)]
        raise FitError(f"the weights {', '.join(cols)} are linearly dependent in this table (e.g. always equal or "
                       f"always 0), so a {self.name} fit cannot separate their effects; add runs that vary them "
                       "independently, merge them into one domain, or use --model gbdt.")

    def settings(self) -> dict:
        return {}

    @staticmethod
    def from_dict(d: Mapping) -> "MixtureModel":
        return _model_class(d.get("model"))._from_dict(d)


class LinearMixture(MixtureModel):
    """OLS on the weights (no separate intercept: sum_j w_j = 1 makes it implicit)."""

    name = "linear"

    def __init__(self):
        self.coef: np.ndarray | None = None
        self._res = None

    def fit(self, X, y):
        import statsmodels.api as sm

        X = np.asarray(X, float)
        self._require_full_rank(X)
        self._res = sm.OLS(np.asarray(y, float), X).fit()
        self.coef = np.asarray(self._res.params, float)
        return self

    def predict(self, X):
        return np.asarray(X, float) @ self.coef

    def to_dict(self):
        return {"coef": self.coef.tolist()}

    @classmethod
    def _from_dict(cls, d):
        m = cls()
        p = d["params"]
        m.coef = np.array([p[k] for k in d["domains"]], float) if isinstance(p, dict) else np.asarray(p, float)
        return m

    def summary(self, domains=()):
        if self._res is None:
            return ""
        names = [PREFIX + x for x in domains] if len(domains) == len(self.coef) else None
        return str(self._res.summary(xname=names))


class _TablePredictor:
    """Exact LightGBM prediction for large batches by per-tree lookup tables over threshold cells.

    A tree's output depends on each input only through which interval between that tree's split
    thresholds it falls in. Each input is binned once against the union of all thresholds of its
    feature (a global cell); per tree, small maps turn global cells into a mixed-radix index into a
    table holding the tree's leaf value for every combination of its local cells (filled by
    evaluating the tree on one representative point per cell). Prediction is then a few gathers per
    tree over cache-sized row blocks: about 3x less CPU than ``Booster.predict`` on RegMix's 1000-tree
    model, with identical results (checked against LightGBM when built; otherwise not used).
    """

    def __init__(self, booster, max_table: int = 1 << 19, max_total: int = 48_000_000):
        d = booster.dump_model()
        if d.get("num_tree_per_iteration", 1) != 1 or d.get("average_output"):
            raise ValueError("unsupported model")
        trees = [t["tree_structure"] for t in d["tree_info"]]
        nfeat = d["max_feature_idx"] + 1
        glob: list[set] = [set() for _ in range(nfeat)]
        per = []
        for t in trees:
            acc: dict[int, set] = {}
            stack = [t]
            while stack:
                n = stack.pop()
                if "leaf_value" in n:
                    continue
                if n.get("decision_type") != "<=" or n.get("missing_type") != "None":
                    raise ValueError("unsupported split")
                acc.setdefault(int(n["split_feature"]), set()).add(float(n["threshold"]))
                stack += [n["left_child"], n["right_child"]]
            per.append(acc)
            for f, th in acc.items():
                glob[f] |= th
        self.glob = [np.array(sorted(g)) for g in glob]
        self.const = 0.0
        self.tables = []
        total = 0
        for t, acc in zip(trees, per):
            if "leaf_value" in t:
                self.const += float(t["leaf_value"])
                continue
            feats = sorted(acc)
            loc = [np.array(sorted(acc[f])) for f in feats]
            sizes = [len(v) + 1 for v in loc]
            size = int(np.prod(sizes))
            total += size
            if size > max_table or total > max_total:
                raise ValueError("tables too large")
            strides = np.cumprod([1] + sizes[:-1])
            maps, reps = [], {}
            grid = np.arange(size)
            for f, v, st, z in zip(feats, loc, strides, sizes):
                g = self.glob[f]
                m = np.zeros(len(g) + 1, np.int64)
                m[1:] = np.searchsorted(v, g, side="right")  # local cell of global cell C: local thresholds < x
                maps.append((m * st).astype(np.int32))
                c = (grid // st) % z
                reps[f] = np.where(c < len(v), v[np.minimum(c, len(v) - 1)], v[-1] + 1.0)
            table = np.empty(size)
            stack = [(t, grid)]
            while stack:
                n, idx = stack.pop()
                if "leaf_value" in n:
                    table[idx] = n["leaf_value"]
                    continue
                go = reps[int(n["split_feature"])][idx] <= n["threshold"]
                stack.append((n["left_child"], idx[go]))
                stack.append((n["right_child"], idx[~go]))
            self.tables.append((feats, maps, table))

    def _block(self, C, out, s, e):
        m = e - s
        ib = np.empty(m, np.int32)
        tb = np.empty(m, np.int32)
        acc = np.zeros(m)
        Cb = [c[s:e] for c in C]
        for feats, maps, table in self.tables:
            np.take(maps[0], Cb[feats[0]], out=ib)
            for f, mp in zip(feats[1:], maps[1:]):
                np.take(mp, Cb[f], out=tb)
                ib += tb
            acc += table.take(ib)
        out[s:e] += acc

    def predict(self, X, num_threads: int = 1, block: int = 8192) -> np.ndarray:
        X = np.asarray(X, float)
        n = len(X)
        C = [np.searchsorted(g, X[:, f], side="left").astype(np.uint8 if len(g) < 255 else np.int32)
             for f, g in enumerate(self.glob)]
        out = np.full(n, self.const)
        spans = [(s, min(n, s + block)) for s in range(0, n, block)]
        if num_threads > 1 and len(spans) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(num_threads) as ex:
                list(ex.map(lambda se: self._block(C, out, *se), spans))
        else:
            for s, e in spans:
                self._block(C, out, s, e)
        return out


class _native_stderr_silenced:
    """Silence file descriptor 2 (what C/C++ libraries write to directly) for a with-block."""

    def __enter__(self):
        import sys

        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
        except OSError:  # no real fd 2 (an embedding host): nothing to silence
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


class GBDTMixture(MixtureModel):
    """LightGBM regression trees; RegMix's settings by default.

    With ``early_stopping`` = K and a validation set passed to :meth:`fit`, training stops once the
    validation L1 or L2 error has not improved for K rounds and keeps the rounds up to that metric's
    best (RegMix's released notebook: LightGBM's ``early_stopping(3)`` with metrics l1 and l2); the
    number kept is ``rounds_used``. Refits (:meth:`clone`, e.g. in the bootstrap) train that many
    rounds without a validation set: the number of rounds is a setting chosen once.
    """

    name = "gbdt"

    def __init__(self, rounds: int = 1000, learning_rate: float = 0.01, seed: int = 42, num_threads: int = 1,
                 early_stopping: int | None = None):
        self.rounds, self.learning_rate, self.seed, self.num_threads = int(rounds), float(learning_rate), int(seed), \
            int(num_threads)
        self.early_stopping = int(early_stopping) if early_stopping else None
        self.rounds_used: int | None = None
        self.booster = None
        self._tp = None  # the table predictor of ``booster``: None until built, False when not usable

    def settings(self):
        s = {"rounds": self.rounds, "learning_rate": self.learning_rate, "seed": self.seed,
             "num_threads": self.num_threads}
        if self.early_stopping:
            s["early_stopping"] = self.early_stopping
        if self.rounds_used is not None and self.rounds_used != self.rounds:
            s["rounds_used"] = self.rounds_used
        return s

    def clone(self) -> "GBDTMixture":
        return self._named(GBDTMixture(rounds=self.rounds_used or self.rounds, learning_rate=self.learning_rate,
                                       seed=self.seed, num_threads=self.num_threads))

    def params(self) -> dict:
        return {"objective": "regression", "learning_rate": self.learning_rate, "seed": self.seed,
                "verbosity": -1, "num_threads": self.num_threads, "deterministic": True}

    def fit(self, X, y, valid: tuple | None = None):
        """Train on (X, y); with ``early_stopping`` set, ``valid`` = (X_valid, y_valid) picks the rounds."""
        import lightgbm as lgb

        self._tp = None  # belongs to the booster being replaced
        fn = list(self.feature_names) if self.feature_names else "auto"
        ds = lgb.Dataset(np.asarray(X, float), np.asarray(y, float), params={"verbosity": -1}, feature_name=fn)
        if self.early_stopping and valid is None:
            raise ScalelawError("early stopping needs a validation table (--valid TABLE)")
        if not self.early_stopping:
            self.booster = lgb.train(self.params(), ds, num_boost_round=self.rounds)
            self.rounds_used = self.rounds
            return self
        vs = lgb.Dataset(np.asarray(valid[0], float), np.asarray(valid[1], float), reference=ds, feature_name=fn)
        b = lgb.train({**self.params(), "metric": ["l1", "l2"]}, ds, num_boost_round=self.rounds, valid_sets=[vs],
                      callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)])
        best = int(b.best_iteration) or b.current_iteration()
        # keep exactly the chosen rounds, so the saved model, the table predictor and refits agree
        self.booster = lgb.Booster(model_str=b.model_to_string(num_iteration=best))
        self.rounds_used = best
        return self

    #: batches at least this large use the exact table predictor (built once per model)
    TABLE_ROWS = 250_000

    def predict(self, X, num_threads: int | None = None):
        X = np.asarray(X, float)
        if len(X) >= self.TABLE_ROWS:
            tp = self._table_predictor(X[:2000])
            if tp is not None:
                return tp.predict(X, num_threads=num_threads or 1)
        kw = {"num_threads": num_threads} if num_threads else {}
        return np.asarray(self.booster.predict(X, **kw), float)

    def _table_predictor(self, probe: np.ndarray):
        tp = self._tp
        if tp is None:
            try:
                tp = _TablePredictor(self.booster)
                want = self.booster.predict(probe, num_threads=1)
                got = tp.predict(probe)
                if not np.allclose(got, want, rtol=1e-12, atol=1e-12):
                    tp = False
            except (ValueError, KeyError, MemoryError):
                tp = False
            self._tp = tp
        return tp or None

    def to_dict(self):
        return {"model_text": self.booster.model_to_string()}

    @classmethod
    def _from_dict(cls, d):
        import lightgbm as lgb

        s = d.get("settings") or {}
        m = cls(**{k: s[k] for k in ("rounds", "learning_rate", "seed", "num_threads", "early_stopping") if k in s})
        from ..fitschema import check_model_text

        text, doms = d.get("model_text"), d.get("domains")
        if not isinstance(text, str) or not isinstance(doms, list):
            raise ScalelawError("a gbdt mixture fit needs model_text and domains; refit with `scalelaw mixture fit`.")
        check_model_text(text, len(doms), "mixture fit")   # before any native code parses it
        try:
            with _native_stderr_silenced():  # LightGBM's C++ prints "[Fatal] ..." itself; we say it once
                m.booster = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as exc:
            why = (str(exc).strip().splitlines() or ["?"])[0]
            msg = f"model_text is not a LightGBM model ({why}); refit with `scalelaw mixture fit`."
            raise ScalelawError(msg) from None
        m.rounds_used = int(s.get("rounds_used", m.booster.current_iteration()))
        return m

    def summary(self, domains=()):
        if self.booster is None:
            return ""
        imp = self.booster.feature_importance(importance_type="gain")
        tot = imp.sum() or 1.0
        order = np.argsort(-imp)
        names = list(domains) or [f"f{i}" for i in range(len(imp))]
        stop = (f" (early stopping after {self.early_stopping} rounds without improvement: {self.rounds_used} of "
                f"{self.rounds} rounds kept)" if self.early_stopping else "")
        lines = [f"LightGBM: {self.booster.num_trees()} trees, learning rate {self.learning_rate}{stop}",
                 "split gain share by domain:"]
        lines += [f"  {PREFIX + names[i]:<28} {imp[i] / tot:6.1%}" for i in order if imp[i] > 0]
        return "\n".join(lines)


class MixLawMixture(MixtureModel):
    """L = c + k exp(sum_j t_j r_j), fitted by least squares with sum_j t_j = 0 (k > 0 or k < 0).

    Levenberg-Marquardt from 8 starts; the best of those that converged within ``MAX_NFEV`` evaluations
    is kept (FitError when none did).
    """

    name = "mixlaw"
    MAX_NFEV = 2000

    def __init__(self):
        self.c = self.k = None
        self.t: np.ndarray | None = None
        self.rmse = None

    def fit(self, X, y):
        from scipy.optimize import least_squares

        X, y = np.asarray(X, float), np.asarray(y, float)
        self._require_full_rank(X)
        span = float(np.ptp(y)) or 1.0
        best = None
        for sign in (1.0, -1.0):
            for frac in (0.05, 0.5, 1.0, 3.0):
                c0 = y.min() - frac * span if sign > 0 else y.max() + frac * span
                z = np.log(np.maximum(sign * (y - c0), 1e-12))
                u0, *_ = np.linalg.lstsq(X, z, rcond=None)

                def resid(p, s=sign):
                    return p[0] + s * np.exp(np.clip(X @ p[1:], -50, 50)) - y

                def jac(p, s=sign):
                    e = s * np.exp(np.clip(X @ p[1:], -50, 50))
                    return np.column_stack([np.ones_like(y), e[:, None] * X])

                r = least_squares(resid, np.r_[c0, u0], jac=jac, method="lm", max_nfev=self.MAX_NFEV)
                cost = float(np.sum(r.fun ** 2))
                if r.success and np.isfinite(cost) and (best is None or cost < best[0]):
                    best = (cost, sign, r.x)
        if best is None:
            raise FitError(f"the mixing law L = c + k exp(sum t_j r_j) did not converge on this table from 8 starts "
                           f"within {self.MAX_NFEV} evaluations each; use --model linear or gbdt.")
        cost, sign, p = best
        u = p[1:]
        self.c = float(p[0])
        self.k = float(sign * math.exp(u.mean()))
        self.t = u - u.mean()
        self.rmse = math.sqrt(cost / len(y))
        return self

    def predict(self, X):
        return self.c + self.k * np.exp(np.clip(np.asarray(X, float) @ self.t, -50, 50))

    def to_dict(self):
        return {"c": self.c, "k": self.k, "t": self.t.tolist()}

    @classmethod
    def _from_dict(cls, d):
        m = cls()
        p = d["params"]
        m.c, m.k = float(p["c"]), float(p["k"])
        m.t = np.array([p["t"][x] for x in d["domains"]], float)
        return m

    def summary(self, domains=()):
        if self.t is None:
            return ""
        names = list(domains) or [f"w{i}" for i in range(len(self.t))]
        lines = ["L = c + k exp(sum_j t_j r_j)   (sum_j t_j = 0)", f"  c = {self.c:.6g}", f"  k = {self.k:.6g}"]
        lines += [f"  t[{n}] = {v:+.4g}" for n, v in zip(names, self.t)]
        if self.rmse is not None:
            lines.append(f"  training RMSE {self.rmse:.4g}")
        return "\n".join(lines)


def _model_class(model) -> type[MixtureModel]:
    cls = {c.name: c for c in (LinearMixture, GBDTMixture, MixLawMixture)}.get(model)
    if cls is None:
        raise unknown_name("mixture model", str(model), MODELS)
    return cls


def make_model(model: str, **options) -> MixtureModel:
    """An unfitted ``model``; ``options`` (None: default) are its settings (gbdt only)."""
    return _model_class(model)(**{k: v for k, v in options.items() if v is not None})


# ---- metrics -----------------------------------------------------------------------------------
def metrics(pred: np.ndarray, actual: np.ndarray) -> dict:
    """Spearman and Pearson correlation and mean squared error of predictions against actual values."""
    from scipy.stats import pearsonr, spearmanr

    pred, actual = np.asarray(pred, float), np.asarray(actual, float)
    n = len(actual)
    if n < 3 or np.ptp(pred) == 0 or np.ptp(actual) == 0:
        rho = r = float("nan")
    else:
        rho = float(spearmanr(pred, actual)[0])
        r = float(pearsonr(pred, actual)[0])
    return {"spearman": rho, "pearson": r, "mse": float(np.mean((pred - actual) ** 2)), "n": n}


# ---- the fit -----------------------------------------------------------------------------------
@dataclass
class MixtureFit:
    """A fitted mixture regressor with what is needed to evaluate and recommend from the file alone."""

    model: MixtureModel
    target: str
    domains: list[str]
    prior: dict[str, float]
    data: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    reference: dict | None = None
    prior_source: str = ""

    def predict(self, X) -> np.ndarray:
        """Predicted target for weight rows (array in ``domains`` order, or a table with mix_ columns)."""
        if isinstance(X, pd.DataFrame):
            X = _matrix(X, self.domains, "table")
        X = np.atleast_2d(np.asarray(X, float))
        if X.shape[1] != len(self.domains):
            raise ScalelawError(f"expected {len(self.domains)} weights per row ({', '.join(self.domains)}); "
                                f"got {X.shape[1]}")
        return self.model.predict(X)

    def summary(self) -> str:
        head = [f"mixture fit: {self.model.name} on {self.target} ({len(self.domains)} domains, "
                f"{self.data.get('rows', '?')} runs from {self.data.get('source', '?')})"]
        for name, m in (self.metrics or {}).items():
            if isinstance(m, dict) and "spearman" in m:
                iv = m.get("spearman_interval")
                ivs = f" [{_pct(iv[0]).strip()}, {_pct(iv[1]).strip()}]" if iv else ""
                flag = "  rounds chosen on it" if m.get("early_stopping_set") else ""
                head.append(f"  {name:<18} spearman {_pct(m['spearman'])}{ivs}  pearson {_pct(m['pearson'])}  "
                            f"mse {m['mse']:.4g}  (n={m['n']}){flag}")
        body = self.model.summary(self.domains)
        return "\n".join(head) + ("\n\n" + body if body else "")

    def to_dict(self) -> dict:
        d = {"schema": 1, "kind": "mixture", "model": self.model.name, "target": self.target,
             "domains": list(self.domains)}
        md = self.model.to_dict()
        if self.model.name == "linear":
            d["params"] = dict(zip(self.domains, md["coef"]))
        elif self.model.name == "mixlaw":
            d["params"] = {"c": md["c"], "k": md["k"], "t": dict(zip(self.domains, md["t"]))}
        d["prior"] = {"source": self.prior_source, "weights": dict(self.prior)}
        d["data"] = dict(self.data)
        d["settings"] = dict(self.settings)
        d["metrics"] = dict(self.metrics)
        if self.reference:
            d["reference"] = self.reference
        summ = self.model.summary(self.domains)
        if summ and self.model.name == "linear":
            d["summary"] = summ
        if self.model.name == "gbdt":
            from ..fitschema import model_sha256

            d["model_sha256"] = model_sha256(md["model_text"])   # checked before LightGBM parses it
            d["model_text"] = md["model_text"]  # last: long
        return d

    def to_json(self) -> str:
        return dumps(self.to_dict())

    def save(self, path, force: bool = False) -> Path:
        return atomic_write_text(path, self.to_json() + "\n", force=force)

    @classmethod
    def from_dict(cls, d: Mapping) -> "MixtureFit":
        if d.get("kind") != "mixture":
            raise ScalelawError(f"not a mixture fit (kind {d.get('kind')!r}); fit one with `scalelaw mixture fit`.")
        model = MixtureModel.from_dict(d)
        model.feature_names = [PREFIX + x for x in d["domains"]]
        pr = d.get("prior") or {}
        return cls(model=model, target=d["target"], domains=list(d["domains"]),
                   prior={k: float(v) for k, v in (pr.get("weights") or {}).items()},
                   prior_source=pr.get("source", ""), data=dict(d.get("data") or {}),
                   settings=dict(d.get("settings") or {}), metrics=dict(d.get("metrics") or {}),
                   reference=d.get("reference"))


def _pct(v) -> str:
    return "   nan" if v is None or not np.isfinite(v) else f"{100 * v:6.2f}%"


def load_fit(path) -> MixtureFit:
    return _read_fit(path)[0]


def _read_fit(path) -> tuple[MixtureFit, dict]:
    """The fit in a fit file and the file's JSON; every problem with the file is a one-line ScalelawError."""
    from ..fitschema import read_json, validate_mixture_fit

    p = Path(path)
    if not p.exists():
        raise ScalelawError(
            f"mixture fit {p} does not exist; write one with `scalelaw mixture fit ... -o {p}`.")
    d = read_json(p, "mixture fit")
    if d.get("kind") != "mixture":
        raise ScalelawError(f"{p}: not a mixture fit (kind {d.get('kind')!r}); fit one with `scalelaw mixture fit`.")
    validate_mixture_fit(d, str(p))
    refit = "refit it with `scalelaw mixture fit`"
    try:
        fit = MixtureFit.from_dict(d)
        fit.from_file = True    # its recorded source is read only when it names a public dataset
        return fit, d
    except KeyError as exc:
        raise ScalelawError(f"{p}: mixture fit lacks {exc}; {refit}.") from None
    except ScalelawError as exc:
        raise ScalelawError(f"{p}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ScalelawError(f"{p}: damaged mixture fit ({exc}); {refit}.") from None


def _as_fit(fit: MixtureFit | str | Path) -> MixtureFit:
    return fit if isinstance(fit, MixtureFit) else load_fit(fit)


def default_prior(domains: Sequence[str], train: np.ndarray | None = None) -> tuple[dict, str]:
    """RegMix's Pile token shares when the domains are the Pile's; else the mean training mixture."""
    if set(domains) <= set(PILE_TOKEN_SHARES):
        w = np.array([PILE_TOKEN_SHARES[d] for d in domains])
        return dict(zip(domains, w / w.sum())), "pile-token-shares (RegMix, GPT-NeoX tokens)"
    if train is None:
        w = np.full(len(domains), 1.0 / len(domains))
        return dict(zip(domains, w)), "uniform"
    w = np.asarray(train, float).mean(axis=0)
    return dict(zip(domains, w / w.sum())), "mean training mixture"


def _parse_prior(prior, domains) -> dict:
    pr = {str(k): float(v) for k, v in dict(prior).items()}
    missing = [d for d in domains if d not in pr]
    extra = [k for k in pr if k not in domains]
    if extra:
        raise unknown_name("prior domain", extra[0], domains)
    if missing:
        raise ScalelawError(f"prior lacks domains {', '.join(missing)}; give a token share for every domain "
                            "(DOMAIN=SHARE).")
    w = np.array([pr[d] for d in domains])
    bad = [d for d, v in zip(domains, w) if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ScalelawError(f"--prior {bad[0]}={pr[bad[0]]:g}: token shares must be finite and > 0 (recommend never "
                            "samples a domain with share 0); give every domain a positive share or token count.")
    return dict(zip(domains, w / w.sum()))


def fit_mixture(table, target: str, model: str = "linear", source: str | None = None, prior=None,
                tests: Sequence = (), rounds: int | None = None, learning_rate: float | None = None,
                seed: int | None = None, num_threads: int | None = None, valid=None,
                early_stopping: int | None = None) -> MixtureFit:
    """Fit ``model`` (linear | gbdt | mixlaw) predicting ``target`` from the mix_ weights of ``table``.

    ``table`` is a DataFrame, file, ``MIX.csv,LOSS.csv`` pair or dataset name; ``source`` names it in the
    fit file (default: ``table`` when it is a string). ``tests`` (names/paths) are evaluated and recorded
    under ``metrics``. ``prior`` maps domain -> token share (default: :func:`default_prior`).

    gbdt only: ``valid`` (a table like ``table``, runs not in it) picks the number of rounds by early
    stopping after ``early_stopping`` rounds without improvement (default 3, RegMix's protocol). A test
    table that is also the validation table is flagged ``early_stopping_set`` in ``metrics``: its figure
    is not an independent one, since the rounds were chosen on it.
    """
    if model not in MODELS:
        raise unknown_name("mixture model", model, MODELS)
    src = source if source is not None else _source_name(table, "DataFrame")
    df = load_mixture_table(table)
    domains = validate_table(df, src, targets=[target])
    X, y = _matrix(df, domains, src), df[target].to_numpy(float)
    unused = [PREFIX + d for d, used in zip(domains, (X > 0).any(axis=0)) if not used]
    if unused:
        raise ScalelawError(f"{src}: {', '.join(unused)} {'is' if len(unused) == 1 else 'are'} 0 in every row, so no "
                            "model can learn the domain's effect (recommend would treat it as free); drop the column "
                            "or add runs that use the domain.")
    if len(y) < len(domains) + 2 and model != "gbdt":
        raise ScalelawError(f"{src} has {len(y)} runs for {len(domains)} domains; a {model} fit needs at least "
                            f"{len(domains) + 2}. Add runs or drop domains.")
    if model != "gbdt":
        given = [opt for opt, v in (("--rounds", rounds), ("--learning-rate", learning_rate), ("--seed", seed),
                                    ("--valid", valid), ("--early-stopping", early_stopping)) if v is not None]
        if given:
            raise ScalelawError(f"{'/'.join(given)}: settings of --model gbdt (its boosting rounds); a {model} fit has "
                                f"none, so {'they would be' if len(given) > 1 else 'it would be'} ignored. Drop "
                                f"{'them' if len(given) > 1 else 'it'} or use --model gbdt.")
    if early_stopping is not None and valid is None:
        raise ScalelawError("--early-stopping needs a validation table: add --valid TABLE (runs not in the "
                            "training table, at the same model size).")
    if prior is None:  # before the (possibly long) fit, so a bad --prior fails at once
        pr, psrc = default_prior(domains, X)
    else:
        pr, psrc = _parse_prior(prior, domains), "given"
    sha = table_sha256(df, domains, target)
    opts, vinfo, vdata = {}, None, None
    if model == "gbdt":
        opts = {"rounds": rounds if rounds is not None else GBDT_DEFAULTS["rounds"],
                "learning_rate": learning_rate if learning_rate is not None else GBDT_DEFAULTS["learning_rate"],
                "seed": seed if seed is not None else GBDT_DEFAULTS["seed"],
                "num_threads": num_threads or 1}
        if valid is not None:
            if early_stopping is not None and early_stopping < 1:
                raise ScalelawError(f"--early-stopping must be >= 1 rounds; got {early_stopping}")
            opts["early_stopping"] = early_stopping or GBDT_DEFAULTS["early_stopping"]
            vsrc = _source_name(valid, "validation DataFrame")
            vdf, Xv, yv = _read_xy(valid, domains, target, vsrc, "the training table")
            vdata = (Xv, yv)
            vinfo = {"source": vsrc, "sha256": table_sha256(vdf, domains, target), "rows": len(vdf)}
            if vinfo["sha256"] == sha:
                raise ScalelawError(f"--valid {vsrc} is the training table {src}; early stopping on the runs being "
                                    "fitted never stops. Give held-out runs.")
    m = make_model(model, **opts)
    m.feature_names = [PREFIX + d for d in domains]
    if vdata is not None:
        m.fit(X, y, valid=vdata)
        _warn_early_stop(m, vinfo["source"], y, vdata[1])
    else:
        m.fit(X, y)
    settings = {"model": model, **m.settings()}
    if vinfo:
        settings["valid"] = vinfo
    fit = MixtureFit(model=m, target=target, domains=domains, prior=pr, prior_source=psrc,
                     data={"source": src, "sha256": sha, "rows": len(df)},
                     settings=settings)
    fit.metrics["train"] = metrics(m.predict(X), y)
    for i, t in enumerate(tests, start=1):
        name = _source_name(t, f"test DataFrame {i}")
        fit.metrics[name] = _evaluate(fit, t, name)
    return fit


def _warn_early_stop(m: "GBDTMixture", vsrc: str, y: np.ndarray, y_valid: np.ndarray) -> None:
    """Say when early stopping cannot have worked: validation losses on another scale, or no improvement."""
    import warnings

    lo, hi = np.quantile(y, [0.025, 0.975])
    med = float(np.median(y_valid))
    if not lo <= med <= hi:
        warnings.warn(f"--valid {vsrc}: its median target {med:.4g} lies outside the middle 95% of the training "
                      f"targets ({lo:.4g} to {hi:.4g}); early stopping needs held-out runs of the training runs' "
                      "model size (losses of other sizes sit on another scale).", stacklevel=3)
    elif m.rounds_used is not None and m.rounds_used <= 2 * (m.early_stopping or 0):
        warnings.warn(f"early stopping on {vsrc} kept only {m.rounds_used} of {m.rounds} rounds: its error did not "
                      "fall as training went on. Check that it holds runs like the training ones, or drop --valid.",
                      stacklevel=3)


def evaluate(fit: MixtureFit | str | Path, table, source: str | None = None, level: float = 0.95,
             boot: int = 2000) -> dict:
    """Spearman, Pearson and MSE of the fit's predictions on ``table`` (unseen mixtures).

    Also ``spearman_interval``: a ``level`` percentile bootstrap interval of Spearman's rho over the
    table's runs (``boot`` resamples, fixed seed): how much the figure depends on which runs were
    tested (on RegMix's 64 1B runs about +-1.5 points).
    """
    return _evaluate(_as_fit(fit), table, source or _source_name(table, "table"), level=level, boot=boot)


def _evaluate(fit: MixtureFit, table, src: str, level: float = 0.95, boot: int = 2000) -> dict:
    """:func:`evaluate`; ``early_stopping_set`` when the table holds the runs that chose the boosting rounds."""
    if boot and not 0 < level < 1:
        raise ScalelawError(f"--level must lie in (0, 1); got {level:g}")
    df, X, actual = _read_xy(table, fit.domains, fit.target, src)
    pred = fit.predict(X)
    out = metrics(pred, actual)
    if boot and np.isfinite(out["spearman"]):
        out["spearman_interval"] = spearman_interval(pred, actual, level=level, boot=boot)
        out["level"] = level
    vsha = (fit.settings.get("valid") or {}).get("sha256")
    if vsha and table_sha256(df, fit.domains, fit.target) == vsha:
        out["early_stopping_set"] = True
    return out


def spearman_interval(pred, actual, level: float = 0.95, boot: int = 2000, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of Spearman's rho, resampling (prediction, actual) pairs."""
    from scipy.stats import rankdata

    pred, actual = np.asarray(pred, float), np.asarray(actual, float)
    n = len(actual)
    idx = np.random.default_rng(seed).integers(0, n, size=(int(boot), n))
    rp, ra = rankdata(pred[idx], axis=1), rankdata(actual[idx], axis=1)
    rp -= rp.mean(axis=1, keepdims=True)
    ra -= ra.mean(axis=1, keepdims=True)
    den = np.sqrt((rp * rp).sum(axis=1) * (ra * ra).sum(axis=1))
    ok = den > 0
    rho = (rp * ra).sum(axis=1)[ok] / den[ok]
    if not len(rho):  # every resample has constant predictions or targets
        return [float("nan"), float("nan")]
    a = (1 - level) / 2
    return [float(np.quantile(rho, a)), float(np.quantile(rho, 1 - a))]


def predictions(fit: MixtureFit | str | Path, table, source: str | None = None) -> pd.DataFrame:
    """``actual`` and ``predicted`` target per row of ``table``."""
    fit = _as_fit(fit)
    _, X, y = _read_xy(table, fit.domains, fit.target, source or _source_name(table, "table"))
    return pd.DataFrame({"actual": y, "predicted": fit.predict(X)})


# ---- recommendation ---------------------------------------------------------------------------
def sample_dirichlet(rng: np.random.Generator, alpha: np.ndarray, n: int,
                     strengths: np.ndarray | None = None) -> np.ndarray:
    """``n`` draws from Dirichlet(s * alpha), s per row from ``strengths`` (uniform pick) or 1.

    Gamma variates in log space (G = G1 * U^(1/a), G1 ~ Gamma(a + 1)), then a row softmax, so tiny
    concentrations (token shares of 0.002) neither underflow to all-zero rows nor slow down.
    """
    alpha = np.asarray(alpha, float)
    k = len(alpha)
    if strengths is None or len(strengths) == 1:
        s = 1.0 if strengths is None else float(np.asarray(strengths, float)[0])
        groups = [(s, n)]
    else:
        pick = rng.choice(np.asarray(strengths, float), size=n)
        vals, counts = np.unique(pick, return_counts=True)
        groups = list(zip(vals.tolist(), counts.tolist()))
    out = np.empty((n, k))
    row = 0
    for s, m in groups:  # one scalar-shape gamma call per domain: twice as fast as an array of shapes
        blk = out[row:row + m]
        for j in range(k):
            a = s * alpha[j]
            blk[:, j] = np.log(rng.standard_gamma(a + 1.0, size=m))
            blk[:, j] += np.log(rng.random(m)) / a
        row += m
    out -= out.max(axis=1, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def _positive(option: str, value) -> float:
    """``value`` as a float that is finite and > 0, else a ScalelawError naming ``option``."""
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ScalelawError(f"{option} must be a finite number > 0; got {v:g}")
    return v


def weight_bounds(domains: Sequence[str], prior: Mapping[str, float], min_weight: Mapping | None = None,
                  max_weight: Mapping | None = None, max_epochs: float | None = None,
                  available_tokens: Mapping | None = None, corpus_tokens: float | None = None,
                  train_tokens: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-domain lower and upper weight bounds.

    With ``max_epochs`` E a domain's weight may not exceed E * available_j / train_tokens.
    ``available_tokens`` gives available_j per domain; otherwise available_j = share_j * corpus_tokens
    with the prior's token shares. Without ``train_tokens`` the training run is taken to be as large as
    the corpus, so the bound is E * share_j: RegMix's MAXIMUM_USAGE rule.
    """
    J = len(domains)
    lo, hi = np.zeros(J), np.ones(J)
    for name, spec, arr in (("--min-weight", min_weight, lo), ("--max-weight", max_weight, hi)):
        for d, v in (spec or {}).items():
            if d not in domains:
                raise unknown_name(f"domain in {name}", str(d), domains)
            v = float(v)
            if not 0.0 <= v <= 1.0:
                raise ScalelawError(f"{name} {d}={v:g} must lie in [0, 1]")
            arr[list(domains).index(d)] = v
    tokens = [opt for opt, v in (("--available-tokens", available_tokens or None), ("--corpus-tokens", corpus_tokens),
                                 ("--train-tokens", train_tokens)) if v is not None]
    if max_epochs is None and tokens:
        several = len(tokens) > 1
        raise ScalelawError(f"{', '.join(tokens)} only {'feed' if several else 'feeds'} the epoch limit; add "
                            f"--max-epochs E or drop {'them' if several else 'it'}.")
    if max_epochs is not None:
        max_epochs = _positive("--max-epochs", max_epochs)
        corpus = _positive("--corpus-tokens", corpus_tokens) if corpus_tokens is not None else None
        train = _positive("--train-tokens", train_tokens) if train_tokens is not None else None
        share = np.array([prior[d] for d in domains], float)
        if available_tokens:
            given = {}
            for d, v in available_tokens.items():
                if d not in domains:
                    raise unknown_name("domain in --available-tokens", str(d), domains)
                given[d] = float(v)
                if not (math.isfinite(given[d]) and given[d] > 0):
                    raise ScalelawError(f"--available-tokens {d}={given[d]:g}: token counts must be finite and > 0 (a "
                                        "domain without tokens cannot be in a mixture: refit without it).")
            miss = [d for d in domains if d not in given]
            if miss and corpus is None:
                raise ScalelawError(f"--available-tokens lacks {', '.join(miss)}; give every domain or "
                                    "--corpus-tokens to split the rest by token shares.")
            avail = np.array([given[d] if d in given else share[i] * corpus for i, d in enumerate(domains)])
            tt = train or avail.sum()
        else:
            avail = share * (corpus or 1.0)
            tt = train or corpus or 1.0
        hi = np.minimum(hi, max_epochs * avail / tt)
    if (lo > hi + 1e-12).any():
        j = int(np.argmax(lo - hi))
        raise ScalelawError(f"domain {domains[j]}: minimum weight {lo[j]:g} exceeds its maximum {hi[j]:.4g}; "
                            "loosen --min-weight or the epoch limit.")
    if lo.sum() > 1 + 1e-9:
        raise ScalelawError(f"the minimum weights sum to {lo.sum():.4g} > 1; lower some --min-weight.")
    if hi.sum() < 1 - 1e-9:
        raise ScalelawError(f"the maximum weights (with the epoch limit) sum to {hi.sum():.4g} < 1, so no mixture "
                            "fits; raise --max-weight / --max-epochs or give more available tokens.")
    return lo, hi


@dataclass
class Candidates:
    """The top-k of the sampled mixtures (plus a subsample of all candidates kept for the bootstrap)."""

    top: np.ndarray
    top_pred: np.ndarray
    sampled: int
    accepted: int
    keep: np.ndarray  #: the best ``pool`` candidates and a random subsample: the bootstrap's re-selection pool


def search(predict, alpha: np.ndarray, samples: int, top_k: int, seed: int = 0, strengths=None,
           lo=None, hi=None, chunk: int = 250_000, keep: int = 5_000, pool: int = 16) -> Candidates:
    """Sample ``samples`` mixtures from Dirichlet, drop those outside [lo, hi], keep the k lowest predictions.

    Also kept: the ``pool * top_k`` best candidates and the first ``keep`` accepted ones (a random
    subsample), among which bootstrap refits re-select their own top-k.
    """
    n_best = max(top_k, pool * top_k)
    rng = np.random.default_rng(seed)
    best_x = np.empty((0, len(alpha)))
    best_p = np.empty(0)
    kept = []
    n_acc = 0
    done = 0
    while done < samples:
        n = min(chunk, samples - done)
        W = sample_dirichlet(rng, alpha, n, strengths)
        done += n
        if lo is not None:
            ok = np.all((W >= lo - 1e-12) & (W <= hi + 1e-12), axis=1)
            if not ok.all():
                W = W[ok]
        n_acc += len(W)
        if not len(W):
            continue
        if sum(len(k) for k in kept) < keep:
            kept.append(W[: keep - sum(len(k) for k in kept)])
        p = predict(W)
        allx = np.vstack([best_x, W])
        allp = np.concatenate([best_p, p])
        if len(allp) > n_best:
            idx = np.argpartition(allp, n_best - 1)[:n_best]
            allx, allp = allx[idx], allp[idx]
        best_x, best_p = allx, allp
    order = np.argsort(best_p, kind="stable")
    best_x, best_p = best_x[order], best_p[order]
    return Candidates(top=best_x[:top_k], top_pred=best_p[:top_k], sampled=done, accepted=n_acc,
                      keep=np.vstack([best_x] + kept))


def _strengths(strength) -> np.ndarray:
    """Dirichlet strengths: one value S, or 15 log-spaced values for (MIN, MAX) (RegMix's generator)."""
    vals = [1.0] if strength is None else list(np.atleast_1d(np.asarray(strength, float)))
    if len(vals) not in (1, 2):
        raise ScalelawError(f"--strength takes S or MIN,MAX; got {len(vals)} values")
    if not all(math.isfinite(v) and v > 0 for v in vals):
        raise ScalelawError(f"--strength must be finite and > 0; got {','.join(f'{v:g}' for v in vals)}")
    if len(vals) == 2 and vals[0] != vals[1]:
        return np.logspace(math.log10(min(vals)), math.log10(max(vals)), 15)
    return np.array(vals[:1])


def recommend(fit: MixtureFit | str | Path, samples: int = 100_000, top_k: int = 128, seed: int = 0,
              temperature: float = 1.0, strength=1.0, min_weight: Mapping | None = None,
              max_weight: Mapping | None = None, max_epochs: float | None = None,
              available_tokens: Mapping | None = None, corpus_tokens: float | None = None,
              train_tokens: float | None = None, boot: int = 20, level: float = 0.95, table=None,
              num_threads: int | None = None) -> dict:
    """Recommend a mixture: the mean of the ``top_k`` best of ``samples`` Dirichlet draws.

    Draws come from Dirichlet(strength * p^temperature / sum p^temperature), p the prior token shares
    recorded in the fit (RegMix's simulator: temperature 1, strength 1; its proxy-run generator:
    temperature 0.5, strength log-uniform over 15 values in [0.1, 5] -> ``strength=(0.1, 5)``). Draws
    outside the per-domain bounds (:func:`weight_bounds`) are rejected. ``boot`` refits on bootstrap
    resamples of the training table (``table``, default the fit's recorded source) give a percentile
    interval for the predicted loss of the recommended mixture and for each weight (the top-k mean
    re-selected by each refit among the 16 * top_k best candidates of the fitted model plus a random
    subsample of 5,000 accepted candidates).
    """
    fit = _as_fit(fit)
    if samples < 1 or top_k < 1:
        raise ScalelawError("--samples and --top-k must be >= 1")
    if top_k > samples:
        raise ScalelawError(f"--top-k {top_k} exceeds --samples {samples}; lower --top-k or raise --samples.")
    temperature = _positive("--temperature", temperature)
    if not 0 < level < 1:
        raise ScalelawError(f"--level must lie in (0, 1); got {level:g}")
    if boot < 0:
        raise ScalelawError(f"--boot must be >= 0 (0: no interval); got {boot}")
    doms = fit.domains
    missing = [d for d in doms if d not in fit.prior]
    if missing:
        raise ScalelawError(f"the fit records no prior share for {', '.join(missing)}; refit with --prior "
                            "DOMAIN=SHARE for every domain.")
    p = np.array([fit.prior[d] for d in doms], float)
    if (p <= 0).any():
        zero = [d for d, v in zip(doms, p) if v <= 0]
        raise ScalelawError(f"prior share of {', '.join(zero)} is 0, so Dirichlet sampling never uses them; "
                            "give a positive share.")
    alpha = p ** temperature
    alpha /= alpha.sum()
    strengths = _strengths(strength)
    lo, hi = weight_bounds(doms, fit.prior, min_weight, max_weight, max_epochs, available_tokens, corpus_tokens,
                           train_tokens)
    bounded = bool((lo > 0).any() or (hi < 1).any())

    def predict(W, model=fit.model):
        if isinstance(model, GBDTMixture):
            return model.predict(W, num_threads=num_threads or os.cpu_count() or 1)
        return model.predict(W)

    cand = search(predict, alpha, int(samples), int(top_k), seed=seed, strengths=strengths,
                  lo=lo if bounded else None, hi=hi if bounded else None)
    if len(cand.top) < top_k:
        raise ScalelawError(
            f"only {cand.accepted} of {cand.sampled} sampled mixtures satisfy the weight bounds, fewer than "
            f"--top-k {top_k}; raise --samples, lower --top-k or loosen the bounds.")
    if cand.accepted < MIN_POOL * top_k <= cand.sampled:
        need = MIN_POOL * top_k * cand.sampled / cand.accepted
        step = 10 ** max(0, math.floor(math.log10(need)) - 1)  # rounded up to 2 significant digits
        need = math.ceil(need / step) * step
        raise ScalelawError(
            f"only {cand.accepted} of {cand.sampled} sampled mixtures ({cand.accepted / cand.sampled:.1%}) satisfy "
            f"the weight bounds, so the best {top_k} would be {top_k / cand.accepted:.0%} of them and the mixture "
            f"would reflect the bounds rather than the model; raise --samples to about {need:,}, lower --top-k or "
            "loosen the bounds.")
    w = cand.top.mean(axis=0)
    pred = float(predict(w[None, :])[0])
    out = {
        "target": fit.target, "model": fit.model.name, "domains": doms,
        "mixture": dict(zip(doms, w)), "predicted": pred,
        "top_k_predicted_mean": float(cand.top_pred.mean()),
        "best_sample_predicted": float(cand.top_pred[0]),
        "prior": dict(fit.prior), "prior_source": fit.prior_source,
        "bounds": {"min": dict(zip(doms, lo)), "max": dict(zip(doms, hi))},
        "settings": {"samples": int(samples), "top_k": int(top_k), "seed": int(seed), "temperature": temperature,
                     "strength": strengths.tolist() if len(strengths) > 1 else float(strengths[0]),
                     "max_epochs": max_epochs, "boot": int(boot), "level": level},
        "sampled": cand.sampled, "accepted": cand.accepted,
    }
    if boot:
        out.update(_bootstrap(fit, w, cand, top_k, boot, level, seed, table, predict))
    return out


def _training_xy(fit: MixtureFit, table) -> tuple[np.ndarray, np.ndarray]:
    """Weights and target of the table the bootstrap resamples: ``table``, else the fit's recorded source,
    which must still hold the runs the fit was made from (same sha256)."""
    if table is not None:
        return _read_xy(table, fit.domains, fit.target, _source_name(table, "table"))[1:]
    src = fit.data.get("source")
    fix = "pass --table TABLE (the runs the fit was made from) or --boot 0"
    if not src:
        raise ScalelawError(f"the fit records no training table for the bootstrap; {fix}.")
    if src == "DataFrame" and not Path(src).exists():
        raise ScalelawError(f"the fit was made from a DataFrame, so it records no table to resample; {fix}.")
    if getattr(fit, "from_file", False):
        from ..check import require_dataset_name
        try:
            require_dataset_name(src)
        except ScalelawError:
            raise ScalelawError(f"the fit file records its training table as {str(src)[:80]!r}, a path; a path "
                                f"written in a fit file is never read on its own: {fix}.") from None
    try:
        df, X, y = _read_xy(src, fit.domains, fit.target, src)
    except ScalelawError as exc:
        msg = f"the fit's training table {src!r} cannot be read for the bootstrap ({exc}); {fix}."
        raise ScalelawError(msg) from None
    sha, now = fit.data.get("sha256"), table_sha256(df, fit.domains, fit.target)
    if sha and now != sha:
        raise ScalelawError(f"the fit's training table {src} changed since the fit (sha256 {now[:12]}, recorded "
                            f"{sha[:12]}); {fix}.")
    return X, y


def _bootstrap(fit, w, cand, top_k, boot, level, seed, table, predict) -> dict:
    """Refit on ``boot`` resamples of the training runs: interval of the predicted target at ``w`` and of the
    re-selected top-k mean. Refits that cannot be made (a resample without any run of some domain, a
    model that does not fit it) are left out and counted in ``boot_failed``; more than half is an error."""
    X, y = _training_xy(fit, table)
    rng = np.random.default_rng(seed + 1)
    keep = cand.keep
    kk = min(top_k, len(keep))
    preds, weights, failed = [], [], []
    from ..progress import Progress
    with Progress(total=int(boot), desc="mixture bootstrap") as bar:
        for _ in range(int(boot)):
            bar.update()
            idx = rng.integers(0, len(y), len(y))
            unused = [PREFIX + d for d, u in zip(fit.domains, (X[idx] > 0).any(axis=0)) if not u]
            if unused:
                failed.append(f"a resample without any run using {', '.join(unused)}")
                continue
            try:
                m = fit.model.clone().fit(X[idx], y[idx])
            except FitError as exc:
                failed.append(str(exc))
                continue
            preds.append(float(predict(w[None, :], model=m)[0]))
            if kk:
                pk = predict(keep, model=m)
                sel = np.argpartition(pk, kk - 1)[:kk]
                weights.append(keep[sel].mean(axis=0))
    if 2 * len(failed) > boot:
        raise ScalelawError(f"{len(failed)} of {boot} bootstrap refits failed (first: {failed[0].rstrip('.')}), too "
                            "many for an interval; pass --boot 0, or use a model and table whose resamples can be "
                            "refitted.")
    a = (1 - level) / 2
    lo_p, hi_p = np.quantile(preds, [a, 1 - a])
    res = {"interval": [float(lo_p), float(hi_p)], "boot_predicted": preds, "boot_failed": len(failed)}
    if weights:
        W = np.array(weights)
        ql, qh = np.quantile(W, [a, 1 - a], axis=0)
        res["mixture_interval"] = {d: [float(l), float(h)] for d, l, h in zip(fit.domains, ql, qh)}
    return res


# ---- figures ----------------------------------------------------------------------------------
def plot_predicted_vs_actual(fit: MixtureFit | str | Path, tables: Mapping[str, Any] | Sequence,
                             title: str | None = None):
    """Predicted against actual target, one panel per table (with its Spearman rho and the y = x line).

    One panel each because sets of different model sizes sit on different loss scales (RegMix's
    1B runs are ~2.5 nats below the 1M runs the regressor learnt from): ranks carry over, levels do not.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fit = _as_fit(fit)
    if not isinstance(tables, Mapping):
        tables = {_source_name(t, f"table {i}"): t for i, t in enumerate(tables, start=1)}
    names = list(tables)
    panels = []
    for name in names:
        pr = predictions(fit, tables[name], source=str(name))
        panels.append((name, pr, metrics(pr["predicted"], pr["actual"])))
    fig = make_subplots(rows=1, cols=max(1, len(panels)),
                        subplot_titles=[f"{n}: rho {_pct(m['spearman']).strip()}" for n, _, m in panels])
    for i, (name, pr, m) in enumerate(panels, start=1):
        label = f"{name} (rho {_pct(m['spearman']).strip()})"
        fig.add_trace(go.Scatter(x=pr["predicted"], y=pr["actual"], mode="markers", name=label,
                                 marker={"size": 6, "opacity": 0.7}), row=1, col=i)
        lo, hi = float(pr.min().min()), float(pr.max().max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", showlegend=i == 1,
                                 line={"dash": "dash", "color": "grey"}), row=1, col=i)
        fig.update_xaxes(title_text=f"predicted {fit.target}", row=1, col=i)
        fig.update_yaxes(title_text=f"actual {fit.target}" if i == 1 else None, row=1, col=i)
    fig.update_layout(title=title or f"{fit.model.name}: predicted vs actual {fit.target} on unseen mixtures",
                      template="plotly_white")
    return fig


def plot_recommendation(rec: Mapping, title: str | None = None):
    """Recommended weights next to the prior, one bar pair per domain (bootstrap interval as error bars)."""
    import plotly.graph_objects as go

    doms = list(rec["domains"])
    w = np.array([rec["mixture"][d] for d in doms])
    p = np.array([rec["prior"][d] for d in doms])
    err = None
    if rec.get("mixture_interval"):
        iv = np.array([rec["mixture_interval"][d] for d in doms])
        err = {"type": "data", "symmetric": False, "array": np.maximum(iv[:, 1] - w, 0),
               "arrayminus": np.maximum(w - iv[:, 0], 0)}
    fig = go.Figure()
    fig.add_trace(go.Bar(x=doms, y=p, name=f"prior ({rec.get('prior_source') or 'token shares'})"))
    fig.add_trace(go.Bar(x=doms, y=w, name=f"recommended ({rec.get('model', '')})", error_y=err))
    sub = f"predicted {rec.get('target', 'loss')} {rec['predicted']:.4g}"
    if rec.get("interval"):
        sub += f" [{rec['interval'][0]:.4g}, {rec['interval'][1]:.4g}]"
    fig.update_layout(barmode="group", title=title or f"Recommended mixture: {sub}", xaxis_title="domain",
                      yaxis_title="weight", template="plotly_white")
    return fig


# ---- reference fits ---------------------------------------------------------------------------
def build_reference(model: str, target: str = "loss_pile_cc", train: str = "regmix-1m-train",
                    tests: Sequence[str] = TEST_SETS, tolerance: float | None = None) -> MixtureFit:
    """The reference fit of ``model`` on RegMix's 1M runs with the test sets' figures recorded.

    gbdt follows RegMix's released notebook (regression_fitting/regression.ipynb): 1000 rounds at
    learning rate 0.01, stopped early (3 rounds, l1/l2) on the 1M test set, and that one model scored on
    all three test sets. The 1M figure is therefore not independent of the fit (flagged
    ``early_stopping_set``); the 60M runs reuse the 1M test mixtures; the 1B runs are new mixtures.
    """
    valid = REGMIX_VALID if model == "gbdt" and REGMIX_VALID in tests else None
    fit = fit_mixture(train, target, model=model, tests=tests, valid=valid)
    tol = tolerance if tolerance is not None else (0.002 if model == "linear" else 0.005)
    ref = {"spearman_atol": tol}
    pub = PUBLISHED_SPEARMAN.get(model) if target == "loss_pile_cc" else None
    if pub:
        ref["published_spearman"] = {k: v for k, v in pub.items() if k in tests}
        notes = [f"{k}: measured {fit.metrics[k]['spearman']:.4f} is {v - fit.metrics[k]['spearman']:.4f} below the "
                 f"reproduced {v:.4f} (see docs/mixture.md)"
                 for k, v in ref["published_spearman"].items() if round(fit.metrics[k]["spearman"], 4) < v]
        if notes:
            ref["notes"] = notes
    if valid:
        ref["protocol"] = (f"RegMix's notebook: boosting rounds chosen by early stopping on {valid} (3 rounds, l1/l2), "
                           "then the one model scored on every test set; the figure on that set is not independent "
                           "of the fit, and the 60M runs reuse its mixtures. Fixed 1000 rounds instead: see "
                           "docs/mixture.md.")
    fit.reference = ref
    return fit


def check_reference(path) -> list[str]:
    """Drift messages for a mixture reference fit (empty when fine).

    Refits from ``data.source`` with the recorded settings, checks the table's sha256, re-evaluates
    every recorded test set and compares Spearman rho with the recorded value within
    ``reference.spearman_atol`` (default 0.005). Published figures are reported when the measured
    value falls more than 2 * tolerance below them (informational drift, since they come from a
    different LightGBM build).
    """
    p = Path(path)
    old, d = _read_fit(p)
    name = p.name
    s = d.get("settings") or {}
    src = (d.get("data") or {}).get("source")
    if not src:
        return [f"{name}: records no data source; it cannot be re-checked"]
    from ..check import checkable_source
    checkable_source(src)
    if (s.get("valid") or {}).get("source"):
        checkable_source(s["valid"]["source"])
    ref = d.get("reference") or {}
    tol = float(ref.get("spearman_atol", 0.005))
    msgs: list[str] = []
    valid = s.get("valid") or {}
    new = fit_mixture(src, d["target"], model=d["model"], prior=old.prior,
                      rounds=s.get("rounds"), learning_rate=s.get("learning_rate"), seed=s.get("seed"),
                      num_threads=s.get("num_threads"), valid=valid.get("source"),
                      early_stopping=s.get("early_stopping") if valid else None)
    sha = (d.get("data") or {}).get("sha256")
    if sha and new.data["sha256"] != sha:
        msgs.append(f"{name}: data {src} changed (sha256 {new.data['sha256'][:12]} vs recorded {sha[:12]})")
    vsha = valid.get("sha256")
    if vsha and new.settings["valid"]["sha256"] != vsha:
        msgs.append(f"{name}: validation data {valid['source']} changed (sha256 "
                    f"{new.settings['valid']['sha256'][:12]} vs recorded {vsha[:12]})")
    if d["model"] == "gbdt" and new.model.rounds_used != old.model.rounds_used:
        msgs.append(f"{name}: refit kept {new.model.rounds_used} boosting rounds vs recorded {old.model.rounds_used}")
    if d["model"] == "linear":
        for k, v in (d.get("params") or {}).items():
            if k not in new.domains:
                msgs.append(f"{name}: coefficient {k} is not in the refit (domains of {src}: {', '.join(new.domains)})")
                continue
            nv = float(new.model.coef[new.domains.index(k)])
            if abs(nv - v) > 1e-6 * max(1.0, abs(v)):
                msgs.append(f"{name}: coefficient {k} refit {nv:.8g} vs recorded {v:.8g}")
    for key, m in (d.get("metrics") or {}).items():
        if key == "train" or not isinstance(m, dict) or m.get("spearman") is None:
            continue
        got = evaluate(new, key, boot=0)["spearman"]
        if not np.isfinite(got) or abs(got - m["spearman"]) > tol:
            msgs.append(f"{name}: {key} spearman {got:.4f} vs recorded {m['spearman']:.4f} (tolerance {tol})")
        pubv = (ref.get("published_spearman") or {}).get(key)
        if pubv is not None and got < pubv - 2 * tol:
            msgs.append(f"{name}: {key} spearman {got:.4f} is more than {2 * tol:g} below the reproduced figure "
                        f"{pubv:.4f}")
    return msgs
