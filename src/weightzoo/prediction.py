"""Test accuracy predicted from the weights, against a ladder of honest baselines.

Unterthiner et al. (2020) predict a CNN's test accuracy from 7 numbers per weight and bias
tensor (mean, std and the 0/25/50/75/100 % quantiles) with R² ≈ 0.98. In a zoo whose
networks range from 100 to 10⁶ parameters, the parameter count alone already ranks them
well, so the question here is what the weights add to it:

- Features, one named set each, per run and dumped epoch (`features`): `size` (log10 of
  the parameter count), `arch` (family one-hot and the architecture's sweep numbers),
  `global7` (the 7 numbers of all weights pooled), `layer7` (the 7 numbers of each weight
  and bias tensor, tensors aligned by position from the input and from the output, so that
  networks of different depth share columns), `layer7_delta` (the same of w − w0),
  `spectral` (per-layer spectral norm and stable rank, and the heavy-tail fits where the
  statistics table has them, NaN unless `fit_status` is ok), `init` (`layer7` of epoch 0: a
  control — if the initialisation predicts as well, the signal is the architecture, not
  learning); `a+b` is the union of sets.
- Predictors: ridge regression (`RidgeCV` on median-imputed, standardised features with
  missingness indicators) and `HistGradientBoostingRegressor` (NaN-aware). Every
  hyperparameter is chosen by cross-validation inside the training folds, grouped by cell.
- Evaluation on pooled out-of-fold predictions: R², Kendall τ-b, Spearman ρ and MAE, with
  95 % percentile-bootstrap CIs over architecture cells (whole cells resampled), and each
  metric's increment over the strongest size baseline and over `arch`, paired: the same
  folds and the same resamples of cells. The size baselines are `size` fitted by each
  predictor and `size_rank`, which fits nothing: runs ranked by their parameter count (τ and
  ρ only), often the strongest. Early prediction uses the weights of each dumped epoch to
  predict the final accuracy.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from weightzoo import families, resampling
from weightzoo.markdown import finite, md_table
from weightzoo.settings import SETTING_KEYS
from weightzoo.stats import WEIGHT_POOL
from weightzoo.zoo import RUN_KEYS, SPLIT_KINDS, TooFewGroups, cell_ids, fold_ids, with_keys

logger = logging.getLogger(__name__)

FINAL = "final"  # the epoch label of each run's last dump
STATS7 = ("mean", "std", "q0", "q25", "q50", "q75", "q100")
KINDS = ("weight", "bias")
SPECTRAL = ("spectral_norm", "stable_rank")
HEAVY_TAIL_FITS = ("alpha", "alpha_hill", "alpha_weighted", "log_alpha_norm")  # need fit ok
HEAVY_TAIL_NORMS = ("log_norm", "log_spectral_norm")
FEATURE_SETS = {
    "size": "log10 of the parameter count",
    "arch": "family one-hot and the sweep numbers of its architecture, log2(1 + value)",
    "setting": "the training setting: log10 lr, log2 batch size, the other numbers as they "
    "are, a 0/1 column per optimizer, schedule and activation",
    "global7": "mean, std, q0, q25, q50, q75, q100 of all weights pooled",
    "layer7": "the same 7 numbers of each weight and bias tensor, aligned by position",
    "layer7_delta": "layer7 of w − w0",
    "spectral": "spectral norm and stable rank (and valid heavy-tail fits) per weight matrix",
    "init": "layer7 of the initialisation (epoch 0): a control",
}
BASELINES = ("size", "arch")
# The zero-parameter size baseline: runs ranked by parameter count, no fit, no folds. It has
# rank metrics only (an accuracy is not a rank), and is a size baseline beside `size`.
SIZE_RANK, RANK = "size_rank", "rank"
SIZE_RANK_TEXT = "no fit: runs ranked by their parameter count (τ and ρ only)"
RANK_METRICS = ("tau", "rho")
EPOCH_FREE_SETS = {"size", "arch", "setting", "init"}  # the same at every epoch
SETTING_LOGS = {"lr": 10, "batch_size": 2}  # setting keys read on a log scale (base)
WEIGHT_SETS = ("global7", "layer7", "layer7_delta", "spectral")  # what the trained weights say
PREDICTORS = {"ridge": "ridge (RidgeCV)", "hgb": "gradient boosting (HistGradientBoosting)"}
METRICS = ("r2", "tau", "rho", "mae")
LOWER_IS_BETTER = {"mae"}
TOO_FEW = "too few cells for a split"


# --------------------------------------------------------------------------------------------
# Settings (config: analysis.prediction), typed once at the job's entry point
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RidgeConfig:
    """RidgeCV's candidate penalties, chosen by inner CV."""

    alphas: tuple[float, ...]


@dataclass(frozen=True)
class HgbConfig:
    """HistGradientBoostingRegressor: at most `max_iter` iterations and the `max_leaf_nodes`
    candidates (both chosen by inner CV), its shrinkage and smallest leaf."""

    max_iter: int
    learning_rate: float
    max_leaf_nodes: tuple[int, ...]
    min_samples_leaf: int


@dataclass(frozen=True)
class EarlyConfig:
    """Final accuracy from the weights of earlier dumped epochs: which, and with what."""

    epochs: tuple[int, ...]
    feature_sets: tuple[str, ...]
    predictors: tuple[str, ...]
    splits: tuple[str, ...]


@dataclass(frozen=True)
class Headline:
    """The row the headline sentence reports, fixed in the config."""

    feature_set: str
    predictor: str


@dataclass(frozen=True)
class PredictionConfig:
    """Every setting of the prediction (config: analysis.prediction; the schema documents
    each). No defaults: they live in config/config.yaml and its schema only."""

    feature_sets: tuple[str, ...]
    predictors: tuple[str, ...]
    splits: tuple[str, ...]
    folds: int
    inner_folds: int
    positions: int
    target: str  # accuracy | logit
    logit_clip: float
    ridge: RidgeConfig
    hgb: HgbConfig
    early: EarlyConfig
    headline: Headline
    bootstrap: int
    max_rank_runs: int
    seed: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> PredictionConfig:
        """The settings of a validated analysis.prediction block (lists become tuples)."""

        def frozen(block: Mapping[str, Any]) -> dict[str, Any]:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in block.items()}

        return cls(
            **{
                **frozen(cfg),
                "ridge": RidgeConfig(**frozen(cfg["ridge"])),
                "hgb": HgbConfig(**frozen(cfg["hgb"])),
                "early": EarlyConfig(**frozen(cfg["early"])),
                "headline": Headline(**cfg["headline"]),
            }
        )


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------


def base_sets(name: str) -> list[str]:
    """The named sets a feature set ('size+layer7') unites; ValueError for an unknown one."""
    parts = name.split("+")
    if unknown := [p for p in parts if p not in FEATURE_SETS]:
        raise ValueError(
            f"unknown feature set(s) {unknown} in {name!r}; known: {list(FEATURE_SETS)}"
        )
    return parts


def feature_columns(columns: Sequence[str], name: str) -> list[str]:
    """The columns of feature set `name` in a `features` frame (named '<set>.<feature>')."""
    return [c for part in base_sets(name) for c in columns if c.startswith(f"{part}.")]


def _slots(positions: int) -> list[str]:
    """in1 is the first tensor from the input, in2 the second ...; out1 the last, out2 the
    second-to-last ..."""
    return [f"in{i}" for i in range(1, positions + 1)] + [
        f"out{i}" for i in range(1, positions + 1)
    ]


def _wide(long: pl.DataFrame, values: Sequence[str], prefix: str, names: list[str]) -> pl.DataFrame:
    """Per (run, epoch) one column '<prefix>.<slot>_<kind>_<value>' for every name in `names`
    (absent slots are null)."""
    index = [*RUN_KEYS, "epoch"]
    columns = [f"{prefix}.{n}_{v}" for n in names for v in values]
    if long.height == 0:
        return pl.DataFrame(schema={**dict.fromkeys(index), **dict.fromkeys(columns, pl.Float64)})
    wide = long.pivot(on="name", index=index, values=list(values))
    if len(values) == 1:  # a single value column keeps the bare slot names
        wide = wide.rename({n: f"{values[0]}_{n}" for n in wide.columns if n not in index})
    renamed = {f"{v}_{n}": f"{prefix}.{n}_{v}" for n in names for v in values}
    wide = wide.rename({k: v for k, v in renamed.items() if k in wide.columns})
    return wide.select(
        *index,
        *(pl.col(c) if c in wide.columns else pl.lit(None, pl.Float64).alias(c) for c in columns),
    )


def features(
    stats: pl.LazyFrame, runs: pl.DataFrame, *, epochs: Sequence[int] = (), positions: int
) -> pl.DataFrame:
    """Every feature set of every finished run at its final dump (epoch "final") and at each of
    `epochs` it has dumped before that: one row per run and epoch label, with the run keys,
    `epoch`, `dump_epoch`, `n_params`, `final_test_acc`, then '<set>.<feature>' columns.
    Tensors are in state_dict order, the forward order of every weightzoo family."""
    runs = with_keys(runs.lazy()).filter(pl.col("status") == "ok").sort(RUN_KEYS).collect()
    setting = _setting_columns(runs)
    runs = runs.select(*RUN_KEYS, "n_params", "final_test_acc", "epochs_run", *setting)
    wanted = pl.concat(
        [
            runs.select(
                *RUN_KEYS, epoch=pl.lit(FINAL), dump_epoch=pl.col("epochs_run").cast(pl.Int32)
            ),
            *(
                runs.filter(pl.col("epochs_run") > e).select(
                    *RUN_KEYS, epoch=pl.lit(str(e)), dump_epoch=pl.lit(e, pl.Int32)
                )
                for e in sorted(set(epochs))
            ),
        ]
    )
    dumps = sorted({0, *wanted["dump_epoch"].unique().to_list()})
    schema = stats.collect_schema()
    heavy = [c for c in (*HEAVY_TAIL_FITS, *HEAVY_TAIL_NORMS) if c in schema]
    valid = pl.col("fit_status") == "ok" if "fit_status" in schema else pl.lit(True)
    fits = [pl.when(valid).then(c).alias(c) for c in heavy if c in HEAVY_TAIL_FITS]
    norms = [c for c in heavy if c in HEAVY_TAIL_NORMS]
    columns = ["scope_type", "kind", "target", *STATS7, *SPECTRAL, *fits, *norms]
    rows = (
        with_keys(stats)
        .filter(
            pl.col("epoch").is_in(dumps),
            (pl.col("scope_type") == "tensor") & pl.col("kind").is_in(KINDS)
            | (pl.col("scope") == WEIGHT_POOL) & (pl.col("target") == "w"),
        )
        .join(runs.lazy().select(RUN_KEYS), on=RUN_KEYS, how="semi", maintain_order="left")
        .select(*RUN_KEYS, "epoch", *columns)
        .collect()
    )
    group = [*RUN_KEYS, "epoch", "target", "kind"]
    tensors = rows.filter(scope_type="tensor").with_columns(
        pos=pl.int_range(pl.len()).over(group), n=pl.len().over(group)
    )
    slots = pl.concat(
        [
            tensors.filter(pl.col("pos") < positions).with_columns(
                name=pl.format("in{}_{}", pl.col("pos") + 1, "kind")
            ),
            tensors.filter(pl.col("n") - pl.col("pos") <= positions).with_columns(
                name=pl.format("out{}_{}", pl.col("n") - pl.col("pos"), "kind")
            ),
        ]
    )
    names = [f"{s}_{k}" for s in _slots(positions) for k in KINDS]
    weight_names = [f"{s}_weight" for s in _slots(positions)]
    w, delta = slots.filter(target="w"), slots.filter(target="delta")
    init = _wide(w.filter(epoch=0), STATS7, "init", names).drop("epoch")
    parts = [
        _wide(w, STATS7, "layer7", names),
        _wide(delta, STATS7, "layer7_delta", names),
        _wide(w.filter(kind="weight"), [*SPECTRAL, *heavy], "spectral", weight_names),
    ]
    pooled = rows.filter(scope_type="pool").select(
        *RUN_KEYS, "epoch", *(pl.col(s).alias(f"global7.{s}") for s in STATS7)
    )
    table = (
        wanted.join(runs.drop("epochs_run"), on=RUN_KEYS)
        .join(pooled.rename({"epoch": "dump_epoch"}), on=[*RUN_KEYS, "dump_epoch"])
        .with_columns(pl.col("n_params").cast(pl.Float64).log10().alias("size.log10_params"))
        .with_columns(_arch_columns())
    )
    for part in parts:
        table = table.join(
            part.rename({"epoch": "dump_epoch"}), on=[*RUN_KEYS, "dump_epoch"], how="left"
        )
    table = table.join(init, on=RUN_KEYS, how="left")
    order = {FINAL: -1} | {str(e): e for e in epochs}
    return (
        table.with_columns(_order=pl.col("epoch").replace_strict(order))
        .sort("_order", *RUN_KEYS)
        .drop("_order")
    )


def _setting_columns(runs: pl.DataFrame) -> list[pl.Expr]:
    """`setting` set: each setting key the runs table has (settings.SETTING_KEYS), numbers as
    they are or on a log scale (SETTING_LOGS), text as a 0/1 column per value it takes."""
    out = []
    for key, spec in SETTING_KEYS.items():
        if key not in runs.columns:  # a results folder from before settings: no such column
            continue
        if spec.type is str:
            values = runs[key].drop_nulls().unique().sort().to_list()
            out += [(pl.col(key) == v).cast(pl.Float64).alias(f"setting.{key}_{v}") for v in values]
        else:
            value = pl.col(key).cast(pl.Float64)
            value = value.log(SETTING_LOGS[key]) if key in SETTING_LOGS else value
            out.append(value.alias(f"setting.{key}"))
    return out


def _arch_columns() -> list[pl.Expr]:
    """`arch` set: a 0/1 column per family and log2(1 + value) of each of its sweep keys,
    parsed from the readable id (mlp-d2-w50: depth 2, width 50), NaN for other families."""
    out = []
    for family, cls in families.FAMILY_CONFIGS.items():
        own = pl.col("family") == family
        out.append(own.cast(pl.Float64).alias(f"arch.family_{family}"))
        for f in cls.sweep_fields():
            value = (
                pl.col("arch").str.extract(rf"-{f.metadata['tag']}(\d+)(?:-|$)").cast(pl.Float64)
            )
            out.append(pl.when(own).then((value + 1).log(2)).alias(f"arch.{family}_{f.name}"))
    return out


# --------------------------------------------------------------------------------------------
# Predictors: every hyperparameter chosen by grouped cross-validation inside the training fold
# --------------------------------------------------------------------------------------------


def inner_splits(cells: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold over cells inside a training fold: no cell on both sides of an inner split."""
    from sklearn.model_selection import GroupKFold

    k = min(n, len(np.unique(cells)))
    return list(GroupKFold(n_splits=k).split(np.zeros(len(cells)), groups=cells))


def fit_ridge(X: np.ndarray, y: np.ndarray, cells: np.ndarray, cfg: PredictionConfig):
    """Median imputation with missingness indicators, standardisation, RidgeCV whose alpha
    is chosen on grouped inner folds (least squared error)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        RidgeCV(
            alphas=list(cfg.ridge.alphas),
            cv=inner_splits(cells, cfg.inner_folds),
            scoring="neg_mean_squared_error",
        ),
    )
    model.fit(X, y)
    return model, {"alpha": float(model[-1].alpha_)}


def fit_hgb(X: np.ndarray, y: np.ndarray, cells: np.ndarray, cfg: PredictionConfig):
    """HistGradientBoostingRegressor: max_leaf_nodes from the grid and the number of boosting
    iterations (read off staged predictions up to max_iter) chosen on grouped inner folds."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    hgb = cfg.hgb
    fixed = {
        "learning_rate": hgb.learning_rate,
        "min_samples_leaf": hgb.min_samples_leaf,
        "early_stopping": False,
    }
    splits = inner_splits(cells, cfg.inner_folds)
    best = (math.inf, None, None)
    for leaves in hgb.max_leaf_nodes:
        sse = np.zeros(hgb.max_iter)
        for train, test in splits:
            inner_X, held_X = usable_features(X[train], X[test])  # per inner fold, too
            if inner_X.shape[1] == 0:  # nothing varies inside: the inner fold's mean
                staged = np.full((hgb.max_iter, len(test)), y[train].mean())
            else:
                model = HistGradientBoostingRegressor(
                    max_iter=hgb.max_iter, max_leaf_nodes=leaves, **fixed
                ).fit(inner_X, y[train])
                staged = np.stack(list(model.staged_predict(held_X)))  # (iterations, runs)
            sse[: len(staged)] += ((staged - y[test]) ** 2).sum(axis=1)
            sse[len(staged) :] = math.inf
        i = int(np.argmin(sse))
        if sse[i] < best[0]:
            best = (sse[i], leaves, i + 1)
    _, leaves, iterations = best
    model = HistGradientBoostingRegressor(max_iter=iterations, max_leaf_nodes=leaves, **fixed)
    return model.fit(X, y), {"max_leaf_nodes": leaves, "max_iter": iterations}


FITS = {"ridge": fit_ridge, "hgb": fit_hgb}


def usable_features(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The columns a training fold can learn from: non-finite values as missing, constant
    columns dropped, and a column with one value and gaps as its 0/1 presence (what it says
    then; gradient boosting's binning needs two distinct values)."""
    train, test = (np.where(np.isfinite(x), x, np.nan) for x in (train, test))
    present = ~np.isnan(train)
    lo = np.where(present, train, np.inf).min(axis=0)
    hi = np.where(present, train, -np.inf).max(axis=0)
    varies, gaps = hi > lo, (~present).any(axis=0) & present.any(axis=0)
    flags = gaps & ~varies
    keep = [train[:, varies], (~np.isnan(train[:, flags])).astype(float)]
    held = [test[:, varies], (~np.isnan(test[:, flags])).astype(float)]
    return np.hstack(keep), np.hstack(held)


def out_of_fold(
    X: np.ndarray,
    acc: np.ndarray,
    folds: np.ndarray,
    cells: np.ndarray,
    predictor: str,
    cfg: PredictionConfig,
) -> tuple[np.ndarray, list[dict]]:
    """Held-out predictions of accuracy for every run: each fold predicted by a model fitted
    on the other folds (target accuracy, or its clipped logit mapped back), in [0, 1]."""
    from threadpoolctl import threadpool_limits

    logit = cfg.target == "logit"
    clip = cfg.logit_clip
    y = np.log(np.clip(acc, clip, 1 - clip) / (1 - np.clip(acc, clip, 1 - clip))) if logit else acc
    pred = np.full(len(acc), np.nan)
    chosen = []
    with threadpool_limits(1), warnings.catch_warnings():  # parallel over tasks, not in them
        warnings.simplefilter("ignore", category=UserWarning)
        for f in np.unique(folds):
            test = folds == f
            train_X, test_X = usable_features(X[~test], X[test])
            if train_X.shape[1] == 0:  # nothing varies in this fold: its mean is the guess
                pred[test] = y[~test].mean()
                chosen.append({"no_usable_feature": True})
                continue
            model, params = FITS[predictor](train_X, y[~test], cells[~test], cfg)
            pred[test] = model.predict(test_X)
            chosen.append(params)
    # an accuracy is in [0, 1]: a linear model far outside its training range is clipped
    return (1 / (1 + np.exp(-pred)) if logit else np.clip(pred, 0.0, 1.0)), chosen


# --------------------------------------------------------------------------------------------
# Metrics, with a bootstrap over cells
# --------------------------------------------------------------------------------------------


def point_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """R², Kendall τ-b, Spearman ρ and MAE of predictions p of y (NaN where undefined)."""
    from scipy import stats as sps

    sst = float(((y - y.mean()) ** 2).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: NaN, said so by the NaN
        tau = sps.kendalltau(y, p).statistic if np.ptp(p) > 0 else math.nan
        rho = sps.spearmanr(y, p).statistic if np.ptp(p) > 0 else math.nan
    return {
        "r2": 1 - float(((y - p) ** 2).sum()) / sst if sst > 0 else math.nan,
        "tau": float(tau),
        "rho": float(rho),
        "mae": float(np.abs(y - p).mean()),
    }


def cell_resamples(n_cells: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_cells): how often each cell is drawn in each resample of the cells with
    replacement (resampling.bootstrap_indices, the claims' resampling of cells), counted a
    block of resamples at a time (the draws of 999 x 30,000 cells would be 240 MB more)."""
    counts = np.empty((n_boot, n_cells))
    start = 0
    for draws in resampling.bootstrap_chunks(n_cells, n_boot, np.random.default_rng(seed)):
        m = len(draws)
        flat = (np.arange(m)[:, None] * n_cells + draws).ravel()
        counts[start : start + m] = np.bincount(flat, minlength=m * n_cells).reshape(m, n_cells)
        start += m
    return counts


def rank_subsample(cells: np.ndarray, max_runs: int) -> np.ndarray:
    """Indices of at most about `max_runs` runs, the same number (the first) of every cell,
    at least 2 each: rank metrics' bootstrap cost grows with the square of the runs (and of
    the cells). With more than max_runs / 2 cells, every step-th cell (in code order) is kept,
    so that a zoo of 30,000 one-run cells does not need cell x cell matrices of 7 GB."""
    order = np.argsort(cells, kind="stable")
    sorted_cells = cells[order]
    new = np.r_[True, sorted_cells[1:] != sorted_cells[:-1]]
    starts = np.flatnonzero(new)
    rank = np.arange(len(cells)) - np.repeat(starts, np.diff(np.r_[starts, len(cells)]))
    keep = max(2, max_runs // max(len(starts), 1))
    step = -(-len(starts) // max(max_runs // 2, 1))  # ceil: 1 unless cells > max_runs / 2
    kept_cell = (np.cumsum(new) - 1) % step == 0
    return np.sort(order[(rank < keep) & kept_cell])


def bootstrap_r2_mae(y, p, cells, counts) -> dict[str, np.ndarray]:
    """R² and MAE of every resample (rows of `counts`), from per-cell sums of every run."""
    m = counts.shape[1]
    sums = {
        name: np.bincount(cells, weights=v, minlength=m)
        for name, v in {
            "n": np.ones_like(y),
            "y": y,
            "yy": y * y,
            "se": (y - p) ** 2,
            "ae": np.abs(y - p),
        }.items()
    }
    n, sy, syy, sse, sae = (counts @ sums[k] for k in ("n", "y", "yy", "se", "ae"))
    with np.errstate(all="ignore"):
        sst = syy - sy * sy / n
        return {"r2": np.where(sst > 1e-12, 1 - sse / sst, np.nan), "mae": sae / n}


def bootstrap_kendall(y, p, cells, counts, chunk: int = 256) -> np.ndarray:
    """Kendall τ-b of every resample of cells, exact for the resampled multiset of runs.

    The ordered-pair sums of concordance and of ties are taken once per pair of cells
    (K, Ty, Tp: cell x cell); a resample with draw counts w then has S = wᵀKw, ties
    wᵀTw + Σ w(w − 1)·n_cell (copies of one run tie with each other) and
    N(N − 1) ordered pairs.
    """
    m = counts.shape[1]
    order = np.argsort(cells, kind="stable")
    y, p, cells = y[order], p[order], cells[order]
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    present = cells[starts]
    local = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(cells)]))
    k = np.zeros((len(starts), len(starts)))
    ty, tp = np.zeros_like(k), np.zeros_like(k)
    for i in range(0, len(y), chunk):
        sy = np.sign(y[i : i + chunk, None] - y[None, :])
        sp = np.sign(p[i : i + chunk, None] - p[None, :])
        rows = local[i : i + chunk]
        np.add.at(k, rows, np.add.reduceat(sy * sp, starts, axis=1))
        np.add.at(ty, rows, np.add.reduceat((sy == 0).astype(float), starts, axis=1))
        np.add.at(tp, rows, np.add.reduceat((sp == 0).astype(float), starts, axis=1))
    n_cell = np.diff(np.r_[starts, len(cells)]).astype(float)
    ty[np.diag_indices_from(ty)] -= n_cell  # a run is not a pair with itself
    tp[np.diag_indices_from(tp)] -= n_cell
    w = counts[:, present] if m else counts
    n = w @ n_cell
    copies = (w * (w - 1)) @ n_cell
    pairs = n * (n - 1)
    s = resampling.quadratic_forms(w, k)
    ties_y = resampling.quadratic_forms(w, ty) + copies
    ties_p = resampling.quadratic_forms(w, tp) + copies
    with np.errstate(all="ignore"):
        return s / np.sqrt((pairs - ties_y) * (pairs - ties_p))


def _weighted_ranks(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mid-ranks of v in the multiset where run i appears w[b, i] times, per row b of w."""
    order = np.argsort(v, kind="stable")
    sv = v[order]
    new = np.r_[True, sv[1:] != sv[:-1]]
    starts, group = np.flatnonzero(new), np.cumsum(new) - 1
    size = np.add.reduceat(w[:, order], starts, axis=1)
    mid = np.cumsum(size, axis=1) - size + (size + 1) / 2
    ranks = np.empty_like(w)
    ranks[:, order] = mid[:, group]
    return ranks


def bootstrap_spearman(y, p, cells, counts, chunk: int = 128) -> np.ndarray:
    """Spearman ρ of every resample of cells: mid-ranks in the resampled multiset, then the
    Pearson correlation weighted by each run's copies."""
    out = np.empty(len(counts))
    for b in range(0, len(counts), chunk):
        w = counts[b : b + chunk][:, cells]
        ry, rp = _weighted_ranks(y, w), _weighted_ranks(p, w)
        n = w.sum(axis=1, keepdims=True)
        dy = ry - (w * ry).sum(axis=1, keepdims=True) / n
        dp = rp - (w * rp).sum(axis=1, keepdims=True) / n
        with np.errstate(all="ignore"):
            cov = (w * dy * dp).sum(axis=1)
            out[b : b + chunk] = cov / np.sqrt(
                (w * dy * dy).sum(axis=1) * (w * dp * dp).sum(axis=1)
            )
    return out


def bootstrap_metrics(
    y: np.ndarray, p: np.ndarray, cells: np.ndarray, counts: np.ndarray, max_runs: int
) -> dict[str, np.ndarray]:
    """Every metric of every resample of cells (rows of `counts`); the rank metrics on
    `rank_subsample` when there are more than `max_runs` runs."""
    out = bootstrap_r2_mae(y, p, cells, counts)
    keep = rank_subsample(cells, max_runs) if len(y) > max_runs else np.arange(len(y))
    if np.ptp(p) > 0:
        out["tau"] = bootstrap_kendall(y[keep], p[keep], cells[keep], counts)
        out["rho"] = bootstrap_spearman(y[keep], p[keep], cells[keep], counts)
    else:
        out["tau"] = out["rho"] = np.full(len(counts), np.nan)
    return out


def _ci(draws: np.ndarray) -> tuple[float | None, float | None]:
    """95 % percentile interval; none where the metric is undefined in over 10 % of draws."""
    if np.isfinite(draws).sum() < 0.9 * len(draws):
        return None, None
    return resampling.percentile_ci(draws)


# --------------------------------------------------------------------------------------------
# The whole evaluation
# --------------------------------------------------------------------------------------------

PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "feature_set": pl.String, "predictor": pl.String, "split": pl.String, "epoch": pl.String,
    "target": pl.String, "headline": pl.Boolean, "n_features": pl.Int64, "n_cells": pl.Int64,
    "n_runs": pl.Int64, "n_folds": pl.Int64,
    **{f"{m}{s}": pl.Float64 for m in METRICS for s in ("", "_low", "_high")},
    **{f"{m}_over_{b}{s}": pl.Float64 for b in BASELINES for m in METRICS
       for s in ("", "_low", "_high")},
    "size_baselines": pl.String, "hyperparameters": pl.String, "note": pl.String,
}  # fmt: skip
OOF_SCHEMA: dict[str, pl.DataType] = {
    **dict.fromkeys(RUN_KEYS, pl.String), "seed": pl.Int32, "cell": pl.Int64,
    "feature_set": pl.String, "predictor": pl.String, "split": pl.String, "epoch": pl.String,
    "fold": pl.Int64, "actual": pl.Float64, "predicted": pl.Float64,
}  # fmt: skip


def plan(cfg: PredictionConfig, epochs_present: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """(epoch, split, feature set, predictor) of every row: the full ladder at the final
    epoch, the early sets at the early epochs; `size_rank` (predictor `rank`), `size` and
    `arch` always (the baselines)."""

    def ladder(sets: Sequence[str]) -> list[str]:
        return list(dict.fromkeys([*BASELINES, *sets]))

    early = cfg.early
    rows = []
    for s in cfg.splits:
        rows.append((FINAL, s, SIZE_RANK, RANK))
        rows += [(FINAL, s, f, p) for f in ladder(cfg.feature_sets) for p in cfg.predictors]
    for e in (str(e) for e in early.epochs if str(e) in epochs_present):
        for s in early.splits:
            rows.append((e, s, SIZE_RANK, RANK))
            rows += [(e, s, f, p) for f in ladder(early.feature_sets) for p in early.predictors]
    return rows


def split_folds(table: pl.DataFrame, kind: str, cfg: PredictionConfig) -> np.ndarray:
    """The folds of `kind` over the runs of one epoch; TooFewGroups where a fold cannot be
    held out or a training fold has fewer than 2 cells for its inner cross-validation."""
    folds = fold_ids(table, kind, cfg.folds, cfg.seed)
    cells = table["cell"].to_numpy()
    for f in np.unique(folds):
        if (n := len(np.unique(cells[folds != f]))) < 2:
            raise TooFewGroups(f"{TOO_FEW}: a training fold has {n} cell (inner CV needs 2)")
    return folds


def predict_accuracy(
    stats: pl.LazyFrame, runs: pl.DataFrame, cfg: PredictionConfig, threads: int = 1
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The prediction table (one row per feature set x predictor x split x epoch) and the
    held-out predictions behind it (one row per run of each)."""
    from joblib import Parallel, delayed

    started = time.perf_counter()
    table = features(stats, runs, epochs=list(cfg.early.epochs), positions=cfg.positions)
    logger.info("phase features: %.1f s", time.perf_counter() - started)
    by_epoch = {
        e: part.with_columns(cell=cell_ids(part))  # cells numbered within each epoch's runs
        for (e,), part in table.group_by("epoch", maintain_order=True)
    }
    rows = plan(cfg, list(by_epoch))
    sets = {f: feature_columns(table.columns, f) for _, _, f, _ in rows if f != SIZE_RANK}
    sets[SIZE_RANK] = ["size.log10_params"]
    folds, notes = {}, {}
    for epoch, kind in dict.fromkeys((e, s) for e, s, _, _ in rows):
        if epoch not in by_epoch:
            by_epoch[epoch] = table.head(0).with_columns(cell=pl.lit(0, pl.Int64))
        try:
            folds[epoch, kind] = split_folds(by_epoch[epoch], kind, cfg)
        except TooFewGroups as err:
            notes[epoch, kind] = str(err)
    for epoch, kind, fset, _ in rows:
        if not sets[fset] and (epoch, kind) in folds:
            notes[epoch, kind, fset] = f"no {fset} columns in this zoo"
    runnable = [r for r in rows if (r[0], r[1]) in folds and sets[r[2]] and r[3] != RANK]
    ranked = {
        r: (by_epoch[r[0]]["n_params"].cast(pl.Float64).to_numpy(), [])
        for r in rows
        if r[3] == RANK and (r[0], r[1]) in folds
    }
    # a set that does not change with the epoch, on the final epoch's runs: the final fit
    final_keys = by_epoch[FINAL].select(RUN_KEYS) if FINAL in by_epoch else None
    same = {
        e: final_keys is not None and part.select(RUN_KEYS).equals(final_keys)
        for e, part in by_epoch.items()
    }
    reused = {
        r: (FINAL, *r[1:])
        for r in runnable
        if r[0] != FINAL
        and same[r[0]]
        and (FINAL, *r[1:]) in runnable
        and set(base_sets(r[2])) <= EPOCH_FREE_SETS
    }
    # two splits with the same folds (e.g. `architecture` and `cell` when no architecture has
    # two cells) give the same predictions: fitted once
    for r in runnable:
        twin = next(
            (
                t
                for t in runnable
                if t[0] == r[0]
                and t[2:] == r[2:]
                and t[1] != r[1]
                and t not in reused
                and runnable.index(t) < runnable.index(r)
                and np.array_equal(folds[r[0], r[1]], folds[t[0], t[1]])
            ),
            None,
        )
        if r not in reused and twin is not None:
            reused[r] = twin
    tasks = [r for r in runnable if r not in reused]
    logger.info(
        "%d rows, %d fitted, %d the same as at the final epoch (%d runs, %d features)",
        len(rows),
        len(tasks),
        len(reused),
        table.filter(epoch=FINAL).height,
        len(table.columns),
    )

    def inputs(epoch, kind, fset, predictor):
        part = by_epoch[epoch]
        X = part.select(pl.col(sets[fset]).cast(pl.Float64).fill_null(np.nan)).to_numpy()
        return (
            X,
            part["final_test_acc"].to_numpy(),
            folds[epoch, kind],
            part["cell"].to_numpy(),
            predictor,
            cfg,
        )

    started = time.perf_counter()
    fitted = Parallel(n_jobs=threads)(delayed(out_of_fold)(*inputs(*t)) for t in tasks)
    results = dict(zip(tasks, fitted, strict=True))
    pending = dict(reused)
    while pending:  # a source is fitted, or reused from one that is (no cycles: see above)
        for r, source in list(pending.items()):
            if source in results:
                results[r] = results.pop(r, results[source])
                del pending[r]
    results |= ranked
    logger.info("phase fits: %.1f s", time.perf_counter() - started)
    started = time.perf_counter()
    out = _evaluate(rows, results, by_epoch, folds, notes, sets, cfg)
    logger.info("phase metrics: %.1f s", time.perf_counter() - started)
    return out


def _evaluate(rows, results, by_epoch, folds, notes, sets, cfg):
    """Metrics, CIs and paired increments of every row; the out-of-fold predictions."""
    boots, points, out, oof = {}, {}, [], []
    counts = {}
    head = (cfg.headline.feature_set, cfg.headline.predictor)
    for row in rows:
        epoch, kind, fset, predictor = row
        if row not in results:
            continue
        part = by_epoch[epoch]
        y, cells = part["final_test_acc"].to_numpy(), part["cell"].to_numpy()
        n_cells = int(cells.max()) + 1
        if n_cells not in counts:  # one set of resamples per zoo size: increments are paired
            counts[n_cells] = cell_resamples(n_cells, cfg.bootstrap, cfg.seed)  # 240 MB at
        resamples = counts[n_cells]  # 30,000 cells: shared by the epochs of that many cells
        pred = results[row][0]
        points[row] = point_metrics(y, pred)
        boots[row] = bootstrap_metrics(y, pred, cells, resamples, cfg.max_rank_runs)
        if predictor == RANK:  # a ranking, not an accuracy: rank metrics only, no held-out rows
            for m in set(METRICS) - set(RANK_METRICS):
                points[row][m] = math.nan
                boots[row][m] = np.full(len(resamples), np.nan)
            continue
        labels = {"feature_set": fset, "predictor": predictor, "split": kind, "epoch": epoch}
        oof.append(
            part.select(*RUN_KEYS, "cell").with_columns(
                *(pl.lit(v).alias(k) for k, v in labels.items()),
                pl.Series("fold", folds[epoch, kind]),
                pl.Series("actual", y),
                pl.Series("predicted", pred),
            )
        )
    for row in rows:
        epoch, kind, fset, predictor = row
        part = by_epoch[epoch]
        record = {
            "feature_set": fset,
            "predictor": predictor,
            "split": kind,
            "epoch": epoch,
            "target": cfg.target,
            "headline": (fset, predictor) == head,
            "n_features": len(sets[fset]),
            "n_cells": part["cell"].n_unique(),
            "n_runs": part.height,
        }
        if row not in results:
            out.append({**record, "note": notes.get((epoch, kind, fset), notes.get((epoch, kind)))})
            continue
        record["n_folds"] = None if predictor == RANK else len(np.unique(folds[epoch, kind]))
        strongest = {}
        for m in METRICS:
            record[m] = finite(points[row][m])
            record[f"{m}_low"], record[f"{m}_high"] = _ci(boots[row][m])
            refs = {"size": size_baseline(row, m, points), "arch": (epoch, kind, "arch", predictor)}
            for base, ref in refs.items():
                if ref in results and math.isfinite(points[row][m]):
                    record[f"{m}_over_{base}"] = finite(points[row][m] - points[ref][m])
                    diff = boots[row][m] - boots[ref][m]
                    record[f"{m}_over_{base}_low"], record[f"{m}_over_{base}_high"] = _ci(diff)
            if refs["size"] is not None:
                strongest[m] = baseline_label(refs["size"])
        record["size_baselines"] = json.dumps(strongest)
        record["hyperparameters"] = json.dumps(results[row][1])
        record["note"] = SIZE_RANK_TEXT if predictor == RANK else SPLIT_KINDS[kind]
        out.append(record)
    table = pl.DataFrame(out, schema=PREDICTION_SCHEMA)
    oof_table = pl.concat(oof).cast(OOF_SCHEMA) if oof else pl.DataFrame(schema=OOF_SCHEMA)
    return table, oof_table.select(list(OOF_SCHEMA))


def size_baseline(row: tuple, metric: str, points: dict) -> tuple | None:
    """The strongest size baseline of `row`'s epoch and split for `metric`: `size` fitted by
    any predictor, or `size_rank` for the rank metrics; the best point value wins (least for
    MAE), so an increment over it is over parameter count at its strongest."""
    epoch, kind = row[:2]
    candidates = [
        r
        for r in points
        if r[:2] == (epoch, kind)
        and (r[2] == "size" or (r[2] == SIZE_RANK and metric in RANK_METRICS))
        and math.isfinite(points[r][metric])
    ]
    if not candidates:
        return None
    sign = 1 if metric in LOWER_IS_BETTER else -1
    return min(candidates, key=lambda r: (sign * points[r][metric], r[2], r[3]))


def baseline_label(row: tuple) -> str:
    """`size_rank`, or `size (predictor)`: how the tables name a size baseline."""
    return SIZE_RANK if row[2] == SIZE_RANK else f"size ({row[3]})"


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------

SPLIT_TITLES = {
    "architecture": "Held-out architectures",
    "cell": "Held-out cells",
    "family": "Held-out model families",
    "dataset": "Held-out datasets",
    "seed": "Held-out seeds (every cell on both sides)",
}


def _num(v, digits: int = 2, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _with_ci(r: dict, key: str, sign: bool = False) -> str:
    value = _num(r.get(key), sign=sign)
    if r.get(f"{key}_low") is None:
        return value
    return f"{value} [{_num(r[f'{key}_low'], sign=sign)}, {_num(r[f'{key}_high'], sign=sign)}]"


def headline(table: pl.DataFrame) -> str:
    """The page's first sentence: the headline row's held-out τ against the strongest size
    baseline's, on held-out architectures (on the first split with numbers if that one has
    none)."""
    done = table.filter(pl.col("epoch") == FINAL, pl.col("tau").is_not_null())
    splits = [s for s in SPLIT_KINDS if s in done["split"].to_list()]
    if not splits:
        notes = table.filter(epoch=FINAL)["note"].unique(maintain_order=True).to_list()
        return f"No held-out prediction could be made: {'; '.join(notes)}."
    part = done.filter(split=splits[0])
    row = part.filter("headline").row(0, named=True) if part["headline"].any() else None
    if row is None:
        return f"The headline feature set has no result on {splits[0]}."
    feature_set, predictor = row["feature_set"], row["predictor"]
    chosen = json.loads(row["size_baselines"] or "{}")
    size, size_r2 = (_baseline_row(part, chosen.get(m)) for m in ("tau", "r2"))
    split = splits[0]
    gain = row["tau_over_size_low"] is not None and row["tau_over_size_low"] > 0
    verdict = "an increment whose CI excludes 0" if gain else "an increment whose CI covers 0"
    init = part.filter(feature_set="init", predictor=predictor)
    control = (
        " The same numbers of the initial weights (`init`, a control that knows the "
        f"architecture but nothing learned) give τ = {_with_ci(init.row(0, named=True), 'tau')}."
        if init.height
        else ""
    )
    return (
        f"On {SPLIT_TITLES[split].lower()}, the weights predict test accuracy with "
        f"τ = {_with_ci(row, 'tau')} ({feature_set}, {PREDICTORS[predictor]}) beyond the "
        f"strongest size baseline ({chosen.get('tau', 'none')}: τ = {_with_ci(size, 'tau')}): "
        f"Δτ = {_with_ci(row, 'tau_over_size', True)}, {verdict}; R² {_num(row['r2'])} against "
        f"{_num(size_r2.get('r2'))} ({chosen.get('r2', 'none')}) ({row['n_cells']} cells, "
        f"{row['n_runs']} runs, 95 % bootstrap CIs over cells)." + control
    )


def _baseline_row(part: pl.DataFrame, label: str | None) -> dict:
    """The row of a size baseline named as `baseline_label` names it ({} if absent)."""
    if label is None:
        return {}
    fset, predictor = (SIZE_RANK, RANK) if label == SIZE_RANK else ("size", label[6:-1])
    found = part.filter(feature_set=fset, predictor=predictor)
    return found.row(0, named=True) if found.height else {}


LADDER_HEADERS = ["feature set", "predictor", "n features", "τ [95 % CI]", "R² [95 % CI]", "ρ",
                  "MAE", "Δτ over best size", "ΔR² over best size", "Δτ over arch"]  # fmt: skip


def ladder_rows(part: pl.DataFrame) -> list[list[str]]:
    """The cells of LADDER_HEADERS for each row of `part`."""
    return [
        [
            f"`{r['feature_set']}`",
            r["predictor"],
            str(r["n_features"]),
            _with_ci(r, "tau"),
            _with_ci(r, "r2"),
            _num(r["rho"]),
            _num(r["mae"], 3),
            _with_ci(r, "tau_over_size", True),
            _with_ci(r, "r2_over_size", True),
            _with_ci(r, "tau_over_arch", True),
        ]
        for r in part.iter_rows(named=True)
    ]


def prediction_markdown(table: pl.DataFrame, cfg: PredictionConfig) -> str:
    """results/prediction.md: the headline, the ladder per split, then early prediction."""
    final = table.filter(epoch=FINAL)
    clip = cfg.logit_clip
    target = f" (fitted as its logit, clipped at {clip})" if cfg.target == "logit" else ""
    lines = [
        "# Test accuracy predicted from the weights",
        "",
        headline(table),
        "",
        f"Target: final test accuracy of every finished (not diverged) run{target}. Every "
        "prediction is held out: a fold's runs are predicted by models fitted on the other "
        "folds, with every hyperparameter chosen by cross-validation inside the training "
        "folds, grouped by cell (an architecture under one training setting on one "
        "dataset). Metrics are on the pooled held-out predictions (clipped to [0, 1]); CIs "
        f"resample whole cells (95 % percentile bootstrap, {cfg.bootstrap} resamples); "
        "increments (Δ) are paired: the same folds and the same resamples for both feature "
        "sets. The headline feature set is fixed in the config "
        "(`analysis.prediction.headline`), not picked by held-out score.",
        "",
        "Size baselines: `size` fitted by each predictor, and `size_rank`, "
        f"{SIZE_RANK_TEXT}. Every Δ over size is over the strongest of them for that metric "
        "(by its point value), so what the weights add is stated over parameter count at its "
        "best; `size_baselines` in tables/prediction.parquet names it per metric.",
        "",
        "Reading τ: `size` and `arch` predict one value for all seeds of a cell, so their "
        "seeds tie and Kendall's τ-b leaves those pairs out; a set that orders the seeds of "
        "a cell at random (weights carry seed noise) has them in its denominator with no "
        "gain. Increments in τ over `size` and `arch` are therefore conservative.",
        "",
        "Feature sets: " + "; ".join(f"`{k}`: {v}" for k, v in FEATURE_SETS.items()) + ".",
        "",
    ]
    for split in dict.fromkeys(final["split"].to_list()):
        part = final.filter(split=split)
        lines += [f"## {SPLIT_TITLES[split]} — final epoch", "", f"Split: {SPLIT_KINDS[split]}."]
        if part["tau"].is_null().all():
            lines += ["", f"No numbers: {part['note'][0]}.", ""]
            continue
        lines += ["", *md_table(LADDER_HEADERS, ladder_rows(part)), ""]
    early = table.filter(pl.col("epoch") != FINAL)
    if early.height:
        lines += [
            "## How early the weights tell",
            "",
            "Final test accuracy predicted from the weights at each dumped epoch "
            "(`init` and `size` do not change with the epoch).",
            "",
        ]
        headers = [
            "epoch",
            "split",
            "feature set",
            "predictor",
            "τ [95 % CI]",
            "R² [95 % CI]",
            "Δτ over size",
            "note",
        ]
        rows = [
            [
                r["epoch"],
                r["split"],
                f"`{r['feature_set']}`",
                r["predictor"],
                _with_ci(r, "tau"),
                _with_ci(r, "r2"),
                _with_ci(r, "tau_over_size", True),
                r["note"] if r["tau"] is None else "",
            ]
            for r in early.iter_rows(named=True)
        ]
        lines += [*md_table(headers, rows), ""]
    return "\n".join(lines)
