"""The paper's claims, tested on the zoo with the architecture cell as the unit of inference.

Seeds of one architecture share its depth, width and initial scale, so every test here works
on architecture cells (`CELL_KEYS`): a cell's value is the mean over its seeds, permutations
and bootstraps move whole cells (weightzoo.resampling), and n is the number of cells (runs
are reported beside it). Tests run per dataset x family (a stratum) and pooled over strata
(per dataset, per family, all); a pooled estimate is the cell-weighted mean of its strata's
estimates, its null and bootstrap draws the same mean of theirs (cells never leave their
stratum), and its verdict says whether the strata agree in direction.

1. Weight statistics track performance: Spearman rho of each cell's mean statistic (final
   pooled weights) with its mean test accuracy; controls: the partial Spearman given
   log(parameter count) (beyond size) and the same partial test on the statistic relative
   to its epoch-0 value (beyond initialisation).
2. Poor networks scatter: a cell's seed dispersion (mean pairwise 1-Wasserstein distance
   between its seeds' weight distributions, of w, w - w0 and w / std(w0)) against its
   accuracy, expected negative; same controls. Also reported: the across-seed std of each
   statistic, and the between-architecture test (optimal cells closer to each other than
   suboptimal cells) with its old run-level reading as a labelled secondary column.
3. MLP, CNN and ViT learn alike: per family the median over cells of std(w_t)/std(w_0) and
   ||w_t - w_0|| / ||w_0|| over training progress; pairs of families compared by shape
   (Pearson r of the median curves, same direction of change) and by size (the ratio of
   their total changes, bootstrap CI over cells), reported separately.

`verdicts` turns the claims table into one line per claim x dataset x family (columns
`VERDICT_COLUMNS`, vocabulary `VERDICTS`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import stats as sps
from scipy.spatial.distance import pdist, squareform

from weightzoo import resampling
from weightzoo.stats import SCALED_RANGE
from weightzoo.stats import WEIGHT_POOL as POOL
from weightzoo.tables import CELL_KEYS, RUN_KEYS, with_setting

STRATUM_KEYS = ["dataset", "family"]  # cells are compared within a dataset and a family
ALL = "all"  # the dataset / family name of pooled subsets
TARGETS = ("w", "delta", "scaled")
TARGET_LABELS = {"w": "w", "delta": "w − w0", "scaled": "w / std(w0)"}
DEFAULT_CLASSES = 10  # when the runs table has no n_classes column
# Statistics whose epoch-0 value is a scale (away from 0): relative value stat(w_T)/stat(w_0).
# The others (location and shape: mean, median, skew, kurtosis) sit near 0 at initialisation,
# where a ratio is meaningless: their relative value is stat(w_T) - stat(w_0).
RATIO_STATISTICS = frozenset({"std", "var", "l1", "l2", "max_abs", "min", "max", "q0", "q1", "q5",
                              "q25", "q75", "q95", "q99", "q100", "spectral_norm"})  # fmt: skip
CLAIMS = {
    1: "Weight statistics correlate with performance",
    2: "Successful networks resemble each other in weight statistics and distribution; "
    "poor ones scatter",
    3: "MLP, CNN and ViT parameters show similar learning characteristics",
}
EXPECTED_SIGN = {1: 0, 2: -1}  # claim 2: better cells, less seed spread; claim 1: any sign
VERDICTS = {  # the vocabulary of `verdicts`, strongest first
    "supported": "significant (q < α) at the architecture level, beyond size and beyond "
    "initialisation (claim 3: same shape and same size)",
    "beyond size": "significant beyond size; the initialisation control is not testable (an "
    "imported zoo without initial weights)",
    "initialisation": "significant beyond size, but not once initialisation is factored out "
    "(statistic relative to epoch 0; w − w0 or w / std(w0)): raw weights only",
    "explained by size": "significant, but not given log(parameter count)",
    "shape only": "claim 3: same shape of the trajectories; the size of the change differs "
    "(or cannot be measured: a family's change indistinguishable from 0)",
    "inconsistent": "pooled: strata significant in opposite directions",
    "not supported": "no significant effect in the claimed direction",
    "not testable": "too few architectures (or seeds, or dumped epochs) for a test; an "
    "imported zoo may lack initial weights or have one seed per cell",
    "at chance": "the family's best architecture is at chance accuracy: no groups, no tests",
}
MINUS = "−"
logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The `analysis` config slice, with the documented defaults of keys it may lack."""

    statistics: tuple[str, ...] = ("mean", "std", "skew", "kurtosis", "max_abs", "q99")
    alpha: float = 0.05
    min_group: int = 3  # architectures per group in the between-architecture test
    min_cells: int = 5  # architectures in a subset for a correlation test
    n_boot: int = 999
    n_perm: int = 999
    seed: int = 0
    hist_range: tuple[float, float] = (-1.0, 1.0)
    scaled_range: tuple[float, float] = SCALED_RANGE
    optimal_within: float = 0.01
    suboptimal_below: float = 0.10
    chance_margin: float = 0.05
    within: str = "family"  # groups over all cells of a family, or over one architecture's

    @classmethod
    def from_config(cls, cfg: dict) -> Settings:
        """Read the `analysis` config slice; keys it lacks take the defaults above."""
        hist, groups, d = cfg.get("hist", {}), cfg.get("groups", {}), cls()
        return cls(
            statistics=tuple(cfg.get("statistics", d.statistics)),
            alpha=float(cfg.get("alpha", d.alpha)),
            min_group=int(cfg.get("min_group", d.min_group)),
            min_cells=int(cfg.get("min_cells", d.min_cells)),
            n_boot=int(cfg.get("bootstrap", d.n_boot)),
            n_perm=int(cfg.get("permutations", d.n_perm)),
            seed=int(cfg.get("seed", d.seed)),
            hist_range=tuple(float(v) for v in hist.get("range", d.hist_range)),
            scaled_range=tuple(float(v) for v in hist.get("scaled_range", d.scaled_range)),
            optimal_within=float(groups.get("optimal_within", d.optimal_within)),
            suboptimal_below=float(groups.get("suboptimal_below", d.suboptimal_below)),
            chance_margin=float(groups.get("chance_margin", d.chance_margin)),
            within=str(groups.get("within", d.within)),
        )

    def hist_width(self, target: str, bins: int) -> float:
        """Bin width of a target's histograms (w / std(w0) has a range of its own)."""
        lo, hi = self.scaled_range if target == "scaled" else self.hist_range
        return (hi - lo) / bins


# ---------------------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------------------


def label_groups(
    runs: pl.DataFrame, optimal_within: float, suboptimal_below: float, chance_margin: float = 0.05
) -> pl.DataFrame:
    """Label each run optimal / intermediate / suboptimal by its architecture's accuracy.

    Per dataset and family, an architecture is optimal when its mean final test accuracy is
    within `optimal_within` of the best architecture's, suboptimal when it is more than
    `suboptimal_below` below it, intermediate otherwise. A family whose best architecture is
    at chance (<= 1 / n_classes + `chance_margin`) has no groups: all its runs are
    "at chance". The rule is kept in the table.
    """
    runs = with_setting(runs)
    # an imported zoo's runs say their classes; trained ones (and older tables) are 10-class
    classes = pl.col("n_classes") if "n_classes" in runs.columns else pl.lit(None)
    classes = classes.fill_null(DEFAULT_CLASSES)
    cells = (
        runs.group_by(CELL_KEYS)
        .agg(arch_mean_acc=pl.col("final_test_acc").mean(), chance_acc=1.0 / classes.first())
        .with_columns(best_arch_acc=pl.col("arch_mean_acc").max().over(STRATUM_KEYS))
        .with_columns(
            family_at_chance=pl.col("best_arch_acc") <= pl.col("chance_acc") + chance_margin
        )
        .with_columns(
            group=pl.when(pl.col("family_at_chance"))
            .then(pl.lit("at chance"))
            .when(pl.col("arch_mean_acc") >= pl.col("best_arch_acc") - optimal_within)
            .then(pl.lit("optimal"))
            .when(pl.col("arch_mean_acc") < pl.col("best_arch_acc") - suboptimal_below)
            .then(pl.lit("suboptimal"))
            .otherwise(pl.lit("intermediate")),
            group_rule=pl.lit(
                f"optimal: arch mean test acc >= best - {optimal_within}; "
                f"suboptimal: < best - {suboptimal_below}; else intermediate; "
                f"'at chance' when the best is <= 1/n_classes + {chance_margin}"
            ),
        )
    )
    return runs.join(cells, on=CELL_KEYS, how="left")


def final_stats(stats: pl.LazyFrame, groups: pl.DataFrame) -> pl.LazyFrame:
    """Statistics of each run's final dumped epoch, joined with its group and accuracy.

    Lazy, so the job can stream it to disk: at the paper's scale it is the largest table.
    """
    stats = with_setting(stats)
    cols = [*RUN_KEYS, "epochs_run", "status", "final_test_acc", "group", "n_params"]
    runs = _keys_like(with_setting(groups).select(cols), stats).lazy()
    epochs = groups["epochs_run"].unique().to_list()
    return (
        stats.filter(pl.col("epoch").is_in(epochs))
        .join(runs, on=RUN_KEYS, how="inner", maintain_order="left")
        .filter(pl.col("epoch") == pl.col("epochs_run"))
    )


def _keys_like(frame: pl.DataFrame, stats: pl.LazyFrame) -> pl.DataFrame:
    """The frame with its run keys cast to the stats table's types, so joins match."""
    schema = stats.collect_schema()
    frame = with_setting(frame)
    return frame.with_columns(pl.col(k).cast(schema[k]) for k in RUN_KEYS if k in schema)


# ---------------------------------------------------------------------------------------
# The zoo as cells: what every test reads
# ---------------------------------------------------------------------------------------


@dataclass
class Zoo:
    """The healthy runs, their architecture cells and their final weight distributions.

    `runs`: one row per ok run (sorted by RUN_KEYS; `cell`, `stratum` codes); `cells`: one
    row per cell (means over seeds, seed std, epoch-0 and relative values, seed W1 per
    target); `strata`: one row per dataset x family; `cdfs`: per target, one CDF row per
    run (NaN where the run has no histogram); `widths`: each target's histogram bin width.
    """

    runs: pl.DataFrame
    cells: pl.DataFrame
    strata: pl.DataFrame
    cdfs: dict[str, np.ndarray]
    widths: dict[str, float]
    statistics: tuple[str, ...]
    mean_cdfs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def targets(self) -> list[str]:
        return [t for t in TARGETS if t in self.cdfs]


def _hist_matrix(hist: pl.Series) -> np.ndarray:
    """A list<float> column of equal-length histograms as a 2-D float64 array."""
    lengths = hist.list.len().unique().to_list()
    if len(lengths) != 1:
        raise ValueError(f"histograms of different lengths in one target: {sorted(lengths)}")
    return hist.explode().to_numpy().astype(np.float64).reshape(len(hist), lengths[0])


def load_zoo(stats: pl.LazyFrame, groups: pl.DataFrame, settings: Settings) -> Zoo:
    """Read from the stats table only the pooled rows the tests need, and build the cells.

    Two lazy scans: the final epoch of each run (targets w, delta and scaled with their
    histograms) and epoch 0 (target w, statistics only).
    """
    stats = with_setting(stats)
    statistics = settings.statistics
    have = set(stats.collect_schema().names())
    if missing := [s for s in statistics if s not in have]:
        raise ValueError(f"analysis.statistics: {missing} not columns of the stats table")
    runs = (
        _keys_like(groups.filter(status="ok"), stats)
        .sort(RUN_KEYS)
        .with_row_index("run")
        .with_columns(
            cell=pl.struct(CELL_KEYS).rle_id().cast(pl.Int64),  # rows are sorted by cell
            stratum=pl.struct(STRATUM_KEYS).rle_id().cast(pl.Int64),
        )
    )
    keys = runs.select(*RUN_KEYS, "run", "epochs_run").lazy()
    pool = stats.filter(pl.col("scope") == POOL)
    final = (
        pool.filter(
            pl.col("target").is_in(TARGETS),
            pl.col("epoch").is_in(runs["epochs_run"].unique().to_list()),
        )
        .select(*RUN_KEYS, "epoch", "target", *statistics, "hist")
        .join(keys, on=RUN_KEYS, how="inner")
        .filter(pl.col("epoch") == pl.col("epochs_run"))
        .drop("epochs_run", "epoch")
        .collect(engine="streaming")
    )
    init = (
        pool.filter(target="w", epoch=0)
        .select(*RUN_KEYS, *statistics)
        .join(keys, on=RUN_KEYS, how="inner")
        .select("run", *(pl.col(s).alias(f"{s}_epoch0") for s in statistics))
        .collect(engine="streaming")
    )
    w = final.filter(target="w").select("run", *statistics)
    per_run = runs.join(w, on="run", how="left").join(init, on="run", how="left")
    per_run = per_run.with_columns(
        (
            pl.col(s) / pl.col(f"{s}_epoch0")
            if s in RATIO_STATISTICS
            else pl.col(s) - pl.col(f"{s}_epoch0")
        ).alias(f"{s}_rel")
        for s in statistics
    )
    cdfs, widths = {}, {}
    for target in TARGETS:
        part = final.filter(target=target).sort("run")
        if part.height == 0:
            continue
        hists = _hist_matrix(part["hist"])
        cdf = np.full((runs.height, hists.shape[1]), np.nan)
        cdf[part["run"].to_numpy()] = np.cumsum(hists, axis=1)
        cdfs[target] = cdf
        widths[target] = settings.hist_width(target, hists.shape[1])
    cells = _cells(per_run, statistics)
    for target, cdf in cdfs.items():
        cells = cells.with_columns(
            pl.Series(
                f"seed_w1_{target}",
                seed_dispersion(cdf, runs["cell"].to_numpy(), cells.height, widths[target]),
            )
        )
    strata = (
        cells.group_by("stratum", *STRATUM_KEYS)
        .agg(
            at_chance=pl.col("at_chance").first(), n_cells=pl.len(), n_runs=pl.col("n_seeds").sum()
        )
        .sort("stratum")
    )
    return Zoo(per_run, cells, strata, cdfs, widths, tuple(statistics))


def _cells(per_run: pl.DataFrame, statistics: Sequence[str]) -> pl.DataFrame:
    """One row per cell: mean accuracy, size, group, and the mean and seed std of each stat."""
    return (
        per_run.group_by("cell", "stratum", *CELL_KEYS)
        .agg(
            n_seeds=pl.len(),
            acc=pl.col("final_test_acc").mean(),
            acc_seed_std=pl.col("final_test_acc").std(),
            n_params=pl.col("n_params").first(),
            group=pl.col("group").first(),
            at_chance=pl.col("family_at_chance").first(),
            **{s: pl.col(s).mean() for s in statistics},
            **{f"{s}_seed_std": pl.col(s).std() for s in statistics},
            **{f"{s}_epoch0": pl.col(f"{s}_epoch0").mean() for s in statistics},
            **{f"{s}_rel": pl.col(f"{s}_rel").mean() for s in statistics},
        )
        .with_columns(log_params=pl.col("n_params").cast(pl.Float64).log())
        .sort("cell")
    )


def seed_dispersion(cdf: np.ndarray, cell: np.ndarray, n_cells: int, width: float) -> np.ndarray:
    """Per cell, the mean pairwise W1 between its seeds' distributions (NaN below 2 seeds).

    W1 of two histograms on one grid is the L1 distance of their CDFs times the bin width;
    within a cell, the sum over seed pairs of |F_a - F_b| in each bin comes from one sort:
    sum_i F_(i) (2i - k + 1) over the k sorted values.
    """
    valid = np.isfinite(cdf).all(axis=1)
    cdf, cell = cdf[valid], cell[valid]
    order = np.argsort(cell, kind="stable")
    cell, cdf = cell[order], cdf[order]
    k = np.bincount(cell, minlength=n_cells)
    if cdf.shape[0] == 0:
        return np.full(n_cells, np.nan)
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    slot = np.arange(len(cell)) - starts[cell]
    padded = np.full((n_cells, k.max(), cdf.shape[1]), np.inf)
    padded[cell, slot] = cdf
    padded.sort(axis=1)  # the padding (inf) goes last
    i = np.arange(k.max())[None, :]
    coef = np.where(i < k[:, None], 2 * i - k[:, None] + 1, 0).astype(np.float64)
    finite = np.where(np.isfinite(padded), padded, 0.0)
    pair_sums = np.einsum("ck,ckb->c", coef, finite)
    pairs = k * (k - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k >= 2, pair_sums * width / pairs, np.nan)


def mean_distance_to_group(cdf: np.ndarray, width: float) -> np.ndarray:
    """Each row's mean W1 to the other rows (one sort per bin, no pairwise matrix)."""
    k = cdf.shape[0]
    if k < 2:
        return np.full(k, np.nan)
    order = np.argsort(cdf, axis=0)
    x = np.take_along_axis(cdf, order, axis=0)
    i = np.arange(k)[:, None]
    below = np.cumsum(x, axis=0) - x  # sum of the smaller values
    above = x.sum(axis=0) - below - x
    sums = np.empty_like(x)
    np.put_along_axis(sums, order, x * i - below + above - x * (k - 1 - i), axis=0)
    return sums.sum(axis=1) * width / (k - 1)


# ---------------------------------------------------------------------------------------
# One test on one stratum, and pooling
# ---------------------------------------------------------------------------------------


@dataclass
class Part:
    """One test on one stratum: its estimate, permutation null and bootstrap draws."""

    estimate: float | None
    null: np.ndarray | None = None
    boot: np.ndarray | None = None
    n_cells: int = 0
    n_runs: int = 0
    note: str = ""
    extra: dict = field(default_factory=dict)


def _rng(seed: int, *labels: object) -> np.random.Generator:
    """A generator keyed by the test's labels: a stratum's draws do not depend on others."""
    return np.random.default_rng([seed, zlib.crc32("|".join(map(str, labels)).encode())])


def _rank_z(a: np.ndarray) -> np.ndarray:
    """Row-wise average ranks, standardised (population std); NaN rows where constant."""
    r = sps.rankdata(a, axis=-1)
    r = r - r.mean(axis=-1, keepdims=True)
    sd = np.sqrt((r**2).mean(axis=-1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 1e-12, r / sd, np.nan)


def _partial(zx: np.ndarray, zy: np.ndarray, zc: np.ndarray | None) -> np.ndarray:
    """Row-wise correlation of rank z-scores, after regressing out zc (when given)."""
    if zc is not None:
        zc = np.nan_to_num(zc)  # a constant covariate controls for nothing
        zx = zx - (zx * zc).mean(axis=-1, keepdims=True) * zc
        zy = zy - (zy * zc).mean(axis=-1, keepdims=True) * zc
    with np.errstate(invalid="ignore", divide="ignore"):
        return (zx * zy).sum(axis=-1) / np.sqrt((zx**2).sum(axis=-1) * (zy**2).sum(axis=-1))


def correlation_part(
    x: np.ndarray,
    y: np.ndarray,
    covariate: np.ndarray | None,
    *,
    n_perm: int,
    n_boot: int,
    rng: np.random.Generator,
    n_runs: int = 0,
) -> Part:
    """Spearman rho of x and y over cells (partial given `covariate` when given).

    The partial correlation is that of the rank residuals of x and y on the covariate's
    ranks; its permutation null permutes the residuals of y, which keeps their relation to
    the covariate. Bootstrap draws resample cells and re-rank.
    """
    n = len(x)
    zx, zy = _rank_z(x), _rank_z(y)
    zc = None if covariate is None else _rank_z(covariate)
    if not (np.isfinite(zx).all() and np.isfinite(zy).all()):
        return Part(None, n_cells=n, n_runs=n_runs, note="constant values: correlation undefined")
    if zc is not None:
        zc = np.nan_to_num(zc)
        ex = zx - (zx @ zc) / n * zc
        ey = zy - (zy @ zc) / n * zc
    else:
        ex, ey = zx, zy
    sxx, syy = ex @ ex, ey @ ey
    if sxx < 1e-9 * n or syy < 1e-9 * n:
        # the ranks of x (or y) are those of the covariate: nothing beyond it
        return Part(
            0.0,
            np.zeros(n_perm),
            np.zeros(n_boot),
            n,
            n_runs,
            note="ranks follow log size exactly: nothing beyond size",
        )
    norm = math.sqrt(sxx * syy)
    estimate = float(ex @ ey / norm)
    null = (ex[None, :] * ey[resampling.permutation_indices(n, n_perm, rng)]).sum(axis=1) / norm
    idx = resampling.bootstrap_indices(n, n_boot, rng)
    bc = None if covariate is None else _rank_z(covariate[idx])
    boot = _partial(_rank_z(x[idx]), _rank_z(y[idx]), bc)
    return Part(estimate, null, boot, n, n_runs)


def between_part(
    cdf: np.ndarray,
    optimal: np.ndarray,
    width: float,
    *,
    n_perm: int,
    rng: np.random.Generator,
    n_runs: int = 0,
) -> Part:
    """log(mean pairwise W1 within optimal cells / within suboptimal cells), cells' mean CDFs.

    The null permutes the group labels over cells. Negative: optimal cells closer together.
    """
    dist = squareform(pdist(cdf, "cityblock")) * width
    labels = optimal[resampling.permutation_indices(len(optimal), n_perm, rng)].astype(float)
    labels = np.vstack([optimal.astype(float)[None, :], labels])
    k1, k0 = optimal.sum(), (~optimal).sum()
    within_opt = np.einsum("pi,ij,pj->p", labels, dist, labels) / (k1 * (k1 - 1))
    within_sub = np.einsum("pi,ij,pj->p", 1 - labels, dist, 1 - labels) / (k0 * (k0 - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        logratio = np.log(np.maximum(within_opt, 1e-300)) - np.log(np.maximum(within_sub, 1e-300))
    return Part(
        float(logratio[0]),
        logratio[1:],
        None,
        len(optimal),
        n_runs,
        extra={"within_optimal": float(within_opt[0]), "within_suboptimal": float(within_sub[0])},
    )


@dataclass
class Pooled:
    """A test over a subset of strata: cell-weighted means of the strata's parts."""

    estimate: float | None
    p_value: float | None
    ci: tuple[float | None, float | None]
    n_cells: int
    n_runs: int
    note: str
    parts: list[Part]


def pool(parts: Sequence[Part]) -> Pooled:
    """Combine the strata's parts: weighted by cells; null and draws combined the same way."""
    used = [p for p in parts if p.estimate is not None]
    n_cells, n_runs = sum(p.n_cells for p in parts), sum(p.n_runs for p in parts)
    notes = sorted({p.note for p in parts if p.note})
    if not used:
        return Pooled(None, None, (None, None), n_cells, n_runs, "; ".join(notes), list(parts))
    weights = np.array([p.n_cells for p in used], dtype=np.float64)
    weights /= weights.sum()
    estimate = float(sum(w * p.estimate for w, p in zip(weights, used, strict=True)))
    p_value = None
    if all(p.null is not None for p in used):
        null = sum(w * p.null for w, p in zip(weights, used, strict=True))
        p_value = resampling.pvalue(estimate, null)
    ci: tuple[float | None, float | None] = (None, None)
    if all(p.boot is not None for p in used):
        boot = sum(w * p.boot for w, p in zip(weights, used, strict=True))
        ci = tuple(_finite(v) for v in resampling.percentile_ci(boot))
    if len(used) < len(parts):
        notes.append(f"{len(parts) - len(used)} of {len(parts)} strata not testable")
    return Pooled(estimate, p_value, ci, n_cells, n_runs, "; ".join(notes), list(parts))


def _finite(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def subsets(strata: pl.DataFrame) -> list[tuple[str, str, list[int]]]:
    """(dataset, family, strata) of every subset tested: each testable stratum, then pooled
    per dataset, per family and over all; a pooled subset equal to one before it is left out."""
    ok = strata.filter(~pl.col("at_chance"))
    out: list[tuple[str, str, list[int]]] = [
        (d, f, [s]) for s, d, f in ok.select("stratum", *STRATUM_KEYS).iter_rows()
    ]
    pooled = [
        (d, ALL, ok.filter(dataset=d)["stratum"].to_list())
        for d in ok["dataset"].unique(maintain_order=True)
    ]
    pooled += [
        (ALL, f, ok.filter(family=f)["stratum"].to_list()) for f in sorted(ok["family"].unique())
    ]
    pooled.append((ALL, ALL, ok["stratum"].to_list()))
    seen = {tuple(s) for *_, s in out}
    for d, f, members in pooled:
        if members and tuple(members) not in seen:
            seen.add(tuple(members))
            out.append((d, f, members))
    return out


# ---------------------------------------------------------------------------------------
# Rows of the claims table
# ---------------------------------------------------------------------------------------

CLAIMS_SCHEMA = {
    "claim": pl.Int32, "claim_text": pl.String, "within": pl.String, "dataset": pl.String,
    "family": pl.String,
    "scope": pl.String, "target": pl.String, "statistic": pl.String, "test": pl.String,
    "role": pl.String, "unit": pl.String, "n_cells": pl.Int64, "n_runs": pl.Int64,
    "n_a": pl.Int64, "n_b": pl.Int64, "estimate": pl.Float64, "ci_low": pl.Float64,
    "ci_high": pl.Float64, "p_value": pl.Float64, "q_value": pl.Float64,
    "significant": pl.Boolean, "supported": pl.Boolean, "direction": pl.String,
    "run_estimate": pl.Float64, "run_p_value": pl.Float64, "note": pl.String,
}  # fmt: skip


def _row(claim: int, dataset: str, family: str, **fields) -> dict:
    base = dict.fromkeys(CLAIMS_SCHEMA) | {
        "claim": claim,
        "dataset": dataset,
        "family": family,
        "scope": POOL,
        "target": "w",
        "unit": "architecture",
        "role": "primary",
        "note": "",
    }
    return base | fields


def _sign(v: float | None) -> str | None:
    if v is None or not np.isfinite(v):
        return None
    return "+" if v > 0 else MINUS if v < 0 else "0"


def _pooled_row(claim: int, dataset: str, family: str, result: Pooled, **fields) -> dict:
    return _row(
        claim,
        dataset,
        family,
        estimate=result.estimate,
        p_value=result.p_value,
        ci_low=result.ci[0],
        ci_high=result.ci[1],
        n_cells=result.n_cells,
        n_runs=result.n_runs,
        direction=_sign(result.estimate),
        note="; ".join(n for n in (fields.pop("note", ""), result.note) if n),
        **fields,
    )


BORDERLINE = "q within permutation error of α"


def _decide(rows: list[dict], alpha: float, n_perm: int) -> list[dict]:
    """Benjamini-Hochberg q-values within each (claim, test, target) family of tests;
    significant when q < alpha; supported when also in the claimed direction. A q closer to
    alpha than twice its Monte Carlo error (from `n_perm` permutations) is flagged."""
    families: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["p_value"] is not None and np.isfinite(r["p_value"]):
            families.setdefault((r["claim"], r["test"], r["target"]), []).append(r)
    for members in families.values():
        q = sps.false_discovery_control([r["p_value"] for r in members])
        for r, qv in zip(members, q, strict=True):
            r["q_value"] = float(qv)
            r["significant"] = bool(qv < alpha)
            expected = EXPECTED_SIGN.get(r["claim"], 0)
            if r["test"] == "between_w1_cells":
                expected = -1  # optimal cells closer: log ratio below 0
            ok = expected == 0 or (r["estimate"] is not None and np.sign(r["estimate"]) == expected)
            r["supported"] = bool(r["significant"] and ok)
            p = r["p_value"]
            error = 2 * math.sqrt(p * (1 - p) / n_perm) * qv / p
            if abs(qv - alpha) < error:
                r["note"] = "; ".join(n for n in (r["note"], f"{BORDERLINE} (±{error:.2g})") if n)
    return rows


def _chance_rows(zoo: Zoo, groups: pl.DataFrame) -> list[dict]:
    """Claims 1 and 2 of each family at chance: one row each, no test, the reason."""
    best = groups.group_by(STRATUM_KEYS).agg(pl.col("best_arch_acc", "chance_acc").first())
    chance = zoo.strata.filter("at_chance").join(best, on=STRATUM_KEYS)
    rows = []
    for r in chance.iter_rows(named=True):
        note = (
            f"at chance: best architecture {r['best_arch_acc']:.3f} <= chance "
            f"{r['chance_acc']:.3f} + margin"
        )
        counts = {"n_cells": r["n_cells"], "n_runs": r["n_runs"]}
        rows += [
            _row(c, r["dataset"], r["family"], test="none", note=note, **counts) for c in (1, 2)
        ]
    return rows


# ---------------------------------------------------------------------------------------
# Claims 1 and 2: correlations over cells
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationTest:
    """A Spearman test over cells of one column of the cells table against accuracy."""

    claim: int
    test: str
    column: str
    statistic: str
    role: str = "primary"
    target: str = "w"
    partial: bool = False  # partial correlation given log(parameter count)
    note: str = ""


# Claim 1's tests of each statistic s: (test, column of the cells table, role, partial on size)
CLAIM1_TESTS = (
    ("spearman_cells", "{s}", "primary", False),
    ("partial_size", "{s}", "control: size", True),
    ("partial_size_rel", "{s}_rel", "control: initialisation", True),
    ("spearman_epoch0", "{s}_epoch0", "secondary", False),
)  # fmt: skip
# Claim 2's tests of the seed dispersion of each target t: (test, partial on size)
CLAIM2_TESTS = (("seed_w1_spearman", False), ("seed_w1_partial_size", True))


def correlation_specs(statistics: Sequence[str], targets: Sequence[str]) -> list[CorrelationTest]:
    """Every correlation test of claims 1 and 2, in the order of the claims table.

    Claim 1 per statistic: cell means (primary), given size, relative to epoch 0 given size
    (the initialisation control), and the epoch-0 value (secondary: what initialisation
    alone gives). Claim 2: seed dispersion of each target, plain and given size (w decides;
    w / std(w0), or w - w0 without it, is the initialisation control), and seed std of
    each statistic (secondary).
    """
    specs = []
    for s in statistics:
        rel = "ratio stat(w_T)/stat(w_0)" if s in RATIO_STATISTICS else "stat(w_T) − stat(w_0)"
        for test, column, role, partial in CLAIM1_TESTS:
            note = f"relative to epoch 0: {rel}" if test == "partial_size_rel" else ""
            specs.append(CorrelationTest(1, test, column.format(s=s), s, role, "w", partial, note))
    control = init_control(targets)
    for t in targets:
        for test, partial in CLAIM2_TESTS:
            role = "secondary"
            if t == "w":
                role = "control: size" if partial else "primary"
            elif t == control and partial:
                role = "control: initialisation"
            specs.append(CorrelationTest(2, test, f"seed_w1_{t}", "seed W1", role, t, partial))
    for s in statistics:
        specs.append(CorrelationTest(2, "seed_std_spearman", f"{s}_seed_std", s, "secondary"))
    return specs


def init_control(targets: Sequence[str]) -> str:
    """The target whose seed dispersion is the initialisation control of claim 2."""
    return "scaled" if "scaled" in targets else "delta"


def correlation_tests(zoo: Zoo, settings: Settings) -> list[dict]:
    """Claims 1 and 2's correlation rows: each test on each stratum, pooled per subset.

    The primary test of claim 1 carries the run-level Spearman (every run an independent
    sample, the old reading) as its secondary `run_*` columns.
    """
    specs = correlation_specs(zoo.statistics, zoo.targets)
    strata = zoo.strata.filter(~pl.col("at_chance"))
    by_stratum = zoo.cells.partition_by("stratum", as_dict=True)
    parts = {
        (spec, s): _stratum_correlation(by_stratum[(s,)], spec, settings, d, f)
        for spec in specs
        for s, d, f in strata.select("stratum", *STRATUM_KEYS).iter_rows()
    }
    rows = []
    for dataset, family, members in subsets(zoo.strata):
        runs = zoo.runs.filter(pl.col("stratum").is_in(members))
        for spec in specs:
            extra = {}
            if spec.test == "spearman_cells":
                rho, p = _run_spearman(runs[spec.column], runs["final_test_acc"])
                extra = {"run_estimate": rho, "run_p_value": p}
            result = pool([parts[spec, s] for s in members])
            fields = {"test": spec.test, "role": spec.role, "target": spec.target}
            fields |= {"statistic": spec.statistic, "note": spec.note, **extra}
            rows.append(_pooled_row(spec.claim, dataset, family, result, **fields))
    return rows


def _stratum_correlation(
    cells: pl.DataFrame, spec: CorrelationTest, settings: Settings, dataset: str, family: str
) -> Part:
    """One correlation test on one stratum's cells (those with a finite value)."""
    part = cells.filter(pl.col(spec.column).is_finite(), pl.col("acc").is_finite())
    n, n_runs = part.height, int(part["n_seeds"].sum())
    if n == 0 and (reason := missing_data(cells, spec)):
        return Part(None, n_cells=cells.height, n_runs=int(cells["n_seeds"].sum()), note=reason)
    if n < settings.min_cells:
        note = f"fewer than {settings.min_cells} architectures: no test"
        return Part(None, n_cells=n, n_runs=n_runs, note=note)
    rng = _rng(settings.seed, spec.claim, spec.test, spec.column, dataset, family)
    covariate = part["log_params"].to_numpy() if spec.partial else None
    x, y = part[spec.column].to_numpy().astype(np.float64), part["acc"].to_numpy()
    return correlation_part(
        x, y, covariate, n_perm=settings.n_perm, n_boot=settings.n_boot, rng=rng, n_runs=n_runs
    )


NO_INIT = "not testable: no initial weights"
ONE_SEED = "not testable: one seed per cell"


def missing_data(cells: pl.DataFrame, spec: CorrelationTest) -> str:
    """Why a stratum has no value of a test's column, when its data lack what it needs: the
    epoch-0 weights (relative values, w − w0, w / std(w0)) or a second seed per cell (seed
    dispersion and seed std). Empty when neither is the reason."""
    epoch0 = [c for c in cells.columns if c.endswith("_epoch0")]
    no_init = bool(epoch0) and all(cells[c].is_null().all() for c in epoch0)
    needs_init = spec.column.endswith(("_rel", "_epoch0")) or spec.target in ("delta", "scaled")
    needs_seeds = spec.column.startswith("seed_w1_") or spec.column.endswith("_seed_std")
    reasons = []
    if needs_seeds and cells["n_seeds"].max() < 2:
        reasons.append(ONE_SEED)
    if needs_init and no_init:
        reasons.append(NO_INIT)
    return "; ".join(reasons)


def _run_spearman(x: pl.Series, y: pl.Series) -> tuple[float | None, float | None]:
    """Run-level Spearman (every run an independent sample): the secondary, old reading."""
    x, y = x.to_numpy().astype(np.float64), y.to_numpy().astype(np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None, None
    res = sps.spearmanr(x[ok], y[ok])
    return _finite(res.statistic), _finite(res.pvalue)


# ---------------------------------------------------------------------------------------
# Claim 2, between architectures: optimal cells vs suboptimal cells
# ---------------------------------------------------------------------------------------


def between_tests(zoo: Zoo, settings: Settings) -> list[dict]:
    """Per subset and target: are optimal cells closer to each other than suboptimal cells?

    Confounded by size when the suboptimal group spans more architectures (it is secondary
    for that reason); w / std(w0) takes the initial scale out.
    """
    strata = zoo.strata.filter(~pl.col("at_chance"))["stratum"].to_list()
    parts = {(t, s): _stratum_between(zoo, settings, s, t) for t in zoo.targets for s in strata}
    return [
        _between_row(zoo, dataset, family, members, t, [parts[t, s] for s in members])
        for dataset, family, members in subsets(zoo.strata)
        for t in zoo.targets
    ]


def _stratum_between(zoo: Zoo, settings: Settings, stratum: int, target: str) -> Part:
    cells = zoo.cells.filter(
        pl.col("stratum") == stratum, pl.col("group").is_in(["optimal", "suboptimal"])
    )
    optimal = (cells["group"] == "optimal").to_numpy()
    n_runs = int(cells["n_seeds"].sum())
    if min(optimal.sum(), (~optimal).sum()) < settings.min_group:
        return Part(
            None,
            n_cells=len(optimal),
            n_runs=n_runs,
            note=f"a group has fewer than {settings.min_group} architectures: no test",
            extra={"k": (int(optimal.sum()), int((~optimal).sum()))},
        )
    mean_cdf = _cell_mean_cdfs(zoo, target)[cells["cell"].to_numpy()]
    if not np.isfinite(mean_cdf).all():
        return Part(None, n_cells=len(optimal), n_runs=n_runs, note=f"no {target} histograms")
    name = zoo.strata.row(stratum, named=True)
    rng = _rng(settings.seed, 2, "between", target, name["dataset"], name["family"])
    part = between_part(
        mean_cdf, optimal, zoo.widths[target], n_perm=settings.n_perm, rng=rng, n_runs=n_runs
    )
    part.extra["k"] = (int(optimal.sum()), int((~optimal).sum()))
    return part


def _cell_mean_cdfs(zoo: Zoo, target: str) -> np.ndarray:
    """Each cell's mean CDF over its seeds (the CDF of the seeds' pooled weights)."""
    cache = zoo.mean_cdfs
    if target not in cache:
        cdf, cell = zoo.cdfs[target], zoo.runs["cell"].to_numpy()
        valid = np.isfinite(cdf).all(axis=1)
        sums = np.zeros((zoo.cells.height, cdf.shape[1]))
        np.add.at(sums, cell[valid], cdf[valid])
        counts = np.bincount(cell[valid], minlength=zoo.cells.height)
        with np.errstate(invalid="ignore"):
            cache[target] = sums / counts[:, None]
    return cache[target]


def _between_row(
    zoo: Zoo, dataset: str, family: str, members: list[int], target: str, parts: list[Part]
) -> dict:
    """The between-architecture test, with the run-level reading as the secondary column."""
    result = pool(parts)
    k = [p.extra.get("k", (0, 0)) for p in parts]
    n_opt, n_sub = sum(a for a, _ in k), sum(b for _, b in k)
    run_ratio, run_p = _run_between(zoo, members, target)
    tested = [p for p in parts if p.estimate is not None]
    note = ""
    if tested:
        d_opt = np.mean([p.extra["within_optimal"] for p in tested])
        d_sub = np.mean([p.extra["within_suboptimal"] for p in tested])
        note = (
            f"within optimal cells {d_opt:.4g}, within suboptimal cells {d_sub:.4g} "
            "(estimate = log ratio; run-level: ratio of runs' mean W1, Mann–Whitney)"
        )
    row = _pooled_row(
        2,
        dataset,
        family,
        result,
        test="between_w1_cells",
        role="secondary",
        target=target,
        statistic="mean pairwise W1",
        n_a=n_opt,
        n_b=n_sub,
        run_estimate=run_ratio,
        run_p_value=run_p,
        note=note,
    )
    return row


def _run_between(zoo: Zoo, members: list[int], target: str) -> tuple[float | None, float | None]:
    """The old run-level reading: each run's mean W1 to the other runs of its group, optimal
    vs suboptimal runs by Mann-Whitney as if runs were independent; ratio of the means."""
    runs = zoo.runs.select("stratum", "group")
    scores = {"optimal": [], "suboptimal": []}
    stratum, group = runs["stratum"].to_numpy(), runs["group"].to_numpy()
    cdf = zoo.cdfs[target]
    for s in members:
        for g in scores:
            rows = np.flatnonzero((stratum == s) & (group == g))
            rows = rows[np.isfinite(cdf[rows]).all(axis=1)]
            if len(rows) >= 2:
                scores[g].append(mean_distance_to_group(cdf[rows], zoo.widths[target]))
    if not scores["optimal"] or not scores["suboptimal"]:
        return None, None
    a, b = np.concatenate(scores["optimal"]), np.concatenate(scores["suboptimal"])
    if b.mean() <= 0:
        return None, None
    return float(a.mean() / b.mean()), float(sps.mannwhitneyu(a, b).pvalue)


# ---------------------------------------------------------------------------------------
# Claim 3: learning trajectories across families
# ---------------------------------------------------------------------------------------

MEASURES = {"rel_std": "std(w_t)/std(w_0)", "rel_dist": "‖w_t − w_0‖/‖w_0‖"}


def trajectories(stats: pl.LazyFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """Per ok run and dumped epoch: progress (epoch / last epoch), std(w_t)/std(w_0) and
    ||w_t - w_0|| / ||w_0|| of the whole network's weights."""
    stats = with_setting(stats)
    runs = _keys_like(groups.filter(status="ok"), stats).select(
        *RUN_KEYS, "epochs_run", "group", "family_at_chance"
    )
    pool = stats.filter(pl.col("scope") == POOL).join(runs.lazy(), on=RUN_KEYS, how="inner")
    w = pool.filter(target="w").select(
        *RUN_KEYS, "epoch", "epochs_run", "group", "family_at_chance", "std", "l2"
    )
    delta = pool.filter(target="delta").select(*RUN_KEYS, "epoch", delta_l2="l2")
    return (
        w.join(delta, on=[*RUN_KEYS, "epoch"], how="left")
        .with_columns(
            progress=pl.col("epoch") / pl.col("epochs_run"),
            rel_std=pl.col("std")
            / pl.col("std").filter(pl.col("epoch") == 0).first().over(RUN_KEYS),
            rel_dist=pl.col("delta_l2")
            / pl.col("l2").filter(pl.col("epoch") == 0).first().over(RUN_KEYS),
        )
        .select(*RUN_KEYS, "group", "family_at_chance", "epoch", "progress", "rel_std", "rel_dist")
        .sort(*RUN_KEYS, "epoch")
        .collect(engine="streaming")
    )


def cell_trajectories(traj: pl.DataFrame) -> pl.DataFrame:
    """Each cell's trajectory: the mean over its seeds at each progress point."""
    return (
        with_setting(traj)
        .group_by(*CELL_KEYS, "progress")
        .agg(
            pl.col("rel_std", "rel_dist").mean(), pl.col("family_at_chance").first(), runs=pl.len()
        )
        .sort(*CELL_KEYS, "progress")
    )


def median_trajectories(traj: pl.DataFrame) -> pl.DataFrame:
    """Median over cells of each family's trajectory, per dataset and pooled ('all')."""
    cells = cell_trajectories(traj)
    agg = [pl.col("rel_std", "rel_dist").median(), pl.col("runs").sum(), pl.len().alias("cells")]
    per_dataset = cells.group_by("dataset", "family", "progress").agg(*agg)
    pooled = cells.group_by("family", "progress").agg(*agg).with_columns(dataset=pl.lit(ALL))
    return pl.concat([per_dataset, pooled.select(per_dataset.columns)]).sort(
        "dataset", "family", "progress"
    )


def _family_matrix(cells: pl.DataFrame, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """(progress grid, cells x grid matrix) of one family, gaps interpolated per cell."""
    wide = cells.pivot(on="progress", index=CELL_KEYS, values=measure, sort_columns=True)
    grid = np.array(sorted(float(c) for c in wide.columns if c not in CELL_KEYS))
    cols = sorted((c for c in wide.columns if c not in CELL_KEYS), key=float)
    m = wide.select(cols).to_numpy().astype(np.float64)
    for i in np.flatnonzero(~np.isfinite(m).all(axis=1)):
        ok = np.isfinite(m[i])
        m[i] = np.interp(grid, grid[ok], m[i, ok]) if ok.sum() >= 2 else np.nan
    return grid, m[np.isfinite(m).all(axis=1)]


def _onto(grid: np.ndarray, m: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Linear interpolation of every row of m from `grid` onto `union` (one matrix product)."""
    basis = np.stack([np.interp(union, grid, e) for e in np.eye(len(grid))])
    return m @ basis


def family_similarity_tests(cell_traj: pl.DataFrame, settings: Settings) -> list[dict]:
    """Claim 3 per dataset (and pooled when there are several) and pair of families: shape
    (Pearson r of the median curves over cells, q-values across pairs) and size (ratio of the
    total changes, bootstrap CI over cells)."""
    cell_traj = with_setting(cell_traj)
    rows = []
    datasets = sorted(cell_traj["dataset"].unique())
    views = [(d, cell_traj.filter(dataset=d)) for d in datasets]
    if len(datasets) > 1:
        views.append((ALL, cell_traj.filter(~pl.col("family_at_chance"))))
    for dataset, part in views:
        families = sorted(part["family"].unique())
        chance = set(part.filter("family_at_chance")["family"].unique())
        for fa, fb in itertools.combinations(families, 2):
            pair = f"{fa} vs {fb}"
            if chance & {fa, fb}:
                rows.append(
                    _row(
                        3,
                        dataset,
                        pair,
                        test="none",
                        statistic=None,
                        note=f"at chance: {', '.join(sorted(chance & {fa, fb}))}",
                    )
                )
                continue
            for measure in MEASURES:
                rows += _pair_rows(part, dataset, fa, fb, measure, settings)
    return _decide_shape(rows, settings.alpha)


def _pair_rows(
    part: pl.DataFrame, dataset: str, fa: str, fb: str, measure: str, settings: Settings
) -> list[dict]:
    pair = f"{fa} vs {fb}"
    (ga, ma), (gb, mb) = (_family_matrix(part.filter(family=f), measure) for f in (fa, fb))
    union = np.union1d(ga, gb)
    runs = (
        part.filter(pl.col("family").is_in([fa, fb])).group_by(CELL_KEYS).agg(pl.col("runs").max())
    )
    common = {"statistic": measure, "n_cells": len(ma) + len(mb), "n_runs": int(runs["runs"].sum())}
    if min(len(ga), len(gb)) < 3 or min(len(ma), len(mb)) < 1:
        note = "fewer than 3 dumped epochs or no cells: no test"
        return [
            _row(3, dataset, pair, test=t, **common, note=note)
            for t in ("shape_pearson", "size_ratio")
        ]
    ua, ub = _onto(ga, ma, union), _onto(gb, mb, union)
    ca, cb = np.median(ua, axis=0), np.median(ub, axis=0)
    rng = _rng(settings.seed, 3, dataset, pair, measure)
    boot_a = np.median(ua[resampling.bootstrap_indices(len(ua), settings.n_boot, rng)], axis=1)
    boot_b = np.median(ub[resampling.bootstrap_indices(len(ub), settings.n_boot, rng)], axis=1)
    change_a, change_b = ca[-1] - ca[0], cb[-1] - cb[0]
    end = f"{fa} {ca[-1]:.3g}, {fb} {cb[-1]:.3g} at the end"
    note = f"change over training: {fa} {change_a:+.3g}, {fb} {change_b:+.3g} ({end})"
    if np.ptp(ca) == 0 or np.ptp(cb) == 0:
        return [
            _row(3, dataset, pair, test=t, **common, note="a flat trajectory: no test")
            for t in ("shape_pearson", "size_ratio")
        ]
    shape = sps.pearsonr(ca, cb)
    boot_r = _partial(_center(boot_a), _center(boot_b), None)
    same_direction = bool(np.sign(change_a) == np.sign(change_b))
    direction = _sign(change_a) if same_direction else "±"
    rows = [
        _row(
            3,
            dataset,
            pair,
            test="shape_pearson",
            **common,
            estimate=float(shape.statistic),
            p_value=float(shape.pvalue),
            direction=direction,
            ci_low=_finite(resampling.percentile_ci(boot_r)[0]),
            ci_high=_finite(resampling.percentile_ci(boot_r)[1]),
            note=note + ("" if same_direction else "; opposite directions"),
        )
    ]
    ratio = change_a / change_b if change_b else None
    note = f"{fa} change / {fb} change; {end}"
    rows.append(_size_row(dataset, pair, boot_a, boot_b, ratio, common, direction, note))
    return rows


def _size_row(
    dataset: str,
    pair: str,
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    ratio: float | None,
    common: dict,
    direction: str | None,
    note: str,
) -> dict:
    """Claim 3's size comparison: the ratio of two families' changes over training, with a
    bootstrap CI over cells; "same size" when it contains 1, no comparison when either
    change's own CI contains 0 (a ratio of noise)."""
    change_a, change_b = boot_a[:, -1] - boot_a[:, 0], boot_b[:, -1] - boot_b[:, 0]
    cis = [resampling.percentile_ci(c) for c in (change_a, change_b)]
    measurable = all(not (lo <= 0 <= hi) for lo, hi in cis)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = resampling.percentile_ci(change_a / change_b)
    fields = {"estimate": _finite(ratio), "ci_low": _finite(low), "ci_high": _finite(high)}
    fields |= {**common, "direction": direction}
    if not measurable:
        note = f"{note}; a change's 95% CI contains 0: no size comparison"
        return _row(3, dataset, pair, test="size_ratio", **fields, note=note)
    same = bool(low <= 1 <= high)
    verdict = "same size (95% CI contains 1)" if same else "different size (95% CI excludes 1)"
    fields |= {"significant": not same, "supported": same}
    return _row(3, dataset, pair, test="size_ratio", **fields, note=f"{note}; {verdict}")


def _center(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=-1, keepdims=True)


def _decide_shape(rows: list[dict], alpha: float) -> list[dict]:
    """Claim 3: q-values of the shape tests; supported when r > 0 with one direction."""
    shape = [r for r in rows if r["test"] == "shape_pearson" and r["p_value"] is not None]
    if shape:
        q = sps.false_discovery_control([r["p_value"] for r in shape])
        for r, qv in zip(shape, q, strict=True):
            r["q_value"] = float(qv)
            r["significant"] = bool(qv < alpha)
            r["supported"] = bool(qv < alpha and r["estimate"] > 0 and r["direction"] != "±")
    return rows


# ---------------------------------------------------------------------------------------
# All claims
# ---------------------------------------------------------------------------------------


@dataclass
class Results:
    """What the claims job writes: groups, cells, median trajectories and the claims."""

    groups: pl.DataFrame
    cells: pl.DataFrame
    trajectories: pl.DataFrame
    claims: pl.DataFrame


WITHIN = ("family", "architecture")  # what groups and cells are compared within


def run_claims(runs: pl.DataFrame, stats: pl.LazyFrame, settings: Settings) -> Results:
    """Label the runs, read what the tests need from the stats table, test the three claims.

    The cells of a dataset x family are compared with each other (`within` "family"); when
    some architecture is trained with several settings, claims 1 and 2 are also tested
    within each such architecture over its settings (`within` "architecture": same size,
    same initial scale, failure by optimisation), each architecture a stratum of its own.
    `settings.within` picks which of the two labels the groups table carries.
    """
    runs, stats = with_setting(runs), with_setting(stats)
    across = _claims(runs, stats, settings, "family", claim3=True)
    swept = (
        runs.group_by("dataset", "family", "arch")
        .agg(settings=pl.col("setting").n_unique())
        .filter(pl.col("settings") > 1)
        .select("dataset", "family", "arch")
    )
    if swept.height == 0:
        return across
    # each swept architecture as a "family" of its own: its settings are the cells compared
    relabel = {"family": pl.col("arch")}
    within_runs = runs.join(swept, on=["dataset", "family", "arch"]).with_columns(**relabel)
    within_stats = stats.join(swept.lazy(), on=["dataset", "family", "arch"]).with_columns(
        **relabel
    )
    inner = _claims(within_runs, within_stats, settings, "architecture", claim3=False)
    family = pl.col("arch").str.split("-").list.first()
    inner_groups = inner.groups.with_columns(family=family)
    groups = across.groups
    if settings.within == "architecture":
        others = across.groups.join(swept, on=["dataset", "family", "arch"], how="anti")
        groups = pl.concat([others, inner_groups.select(others.columns)]).sort(RUN_KEYS)
    cells = pl.concat([across.cells, inner.cells.with_columns(family=family)], how="diagonal")
    claims = pl.concat([across.claims, inner.claims])
    return Results(groups, cells, across.trajectories, claims)


def _claims(
    runs: pl.DataFrame, stats: pl.LazyFrame, settings: Settings, within: str, claim3: bool
) -> Results:
    """The claims on one grouping of the cells (see `run_claims`)."""
    clock = _Clock()
    groups = label_groups(
        runs, settings.optimal_within, settings.suboptimal_below, settings.chance_margin
    )
    zoo = load_zoo(stats, groups, settings)
    clock.lap("read stats")
    rows = _chance_rows(zoo, groups) + correlation_tests(zoo, settings)
    clock.lap("claims 1 and 2, correlations")
    rows = _decide(rows + between_tests(zoo, settings), settings.alpha, settings.n_perm)
    clock.lap("claim 2, between architectures")
    medians = pl.DataFrame()
    if claim3:
        traj = trajectories(stats, groups)
        rows += family_similarity_tests(cell_trajectories(traj), settings)
        medians = median_trajectories(traj)
        clock.lap("claim 3")
    for r in rows:
        r["within"] = within
    cells = zoo.cells.drop("cell", "stratum").with_columns(within=pl.lit(within))
    return Results(groups, cells, medians, claims_table(rows))


class _Clock:
    """Logs the seconds of each phase ("phase <name>: <s> s"), for the scale benchmark."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        logger.info("phase %s: %.2f s", name, now - self.last)
        self.last = now


def claims_table(rows: list[dict]) -> pl.DataFrame:
    """The claims table (`CLAIMS_SCHEMA`), one row per test, rows in a fixed order."""
    for r in rows:
        r["claim_text"] = CLAIMS[r["claim"]]
    return pl.DataFrame(rows, schema=CLAIMS_SCHEMA).sort("claim", maintain_order=True)


# ---------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------

VERDICT_SCHEMA = {
    "claim": pl.Int32, "within": pl.String, "dataset": pl.String, "family": pl.String,
    "verdict": pl.String,
    "statistic": pl.String, "direction": pl.String, "estimate": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "q_value": pl.Float64, "n_cells": pl.Int64,
    "n_runs": pl.Int64, "beyond_size": pl.Boolean, "beyond_init": pl.Boolean,
    "consistent": pl.Boolean, "detail": pl.String,
}  # fmt: skip
VERDICT_COLUMNS = list(VERDICT_SCHEMA)
STATISTIC_VERDICT_SCHEMA = {
    "claim": pl.Int32, "dataset": pl.String, "family": pl.String, "statistic": pl.String,
    "verdict": pl.String, "direction": pl.String, "estimate": pl.Float64, "q_value": pl.Float64,
    "size_estimate": pl.Float64, "size_q_value": pl.Float64, "init_target": pl.String,
    "init_estimate": pl.Float64, "init_q_value": pl.Float64, "consistent": pl.Boolean,
    "directions": pl.String,
}  # fmt: skip
_RANK = {v: i for i, v in enumerate(reversed(list(VERDICTS)))}


def _components(rows: list[dict], dataset: str, family: str) -> list[dict]:
    """The per-stratum rows a pooled row of (dataset, family) is made of."""
    return [
        r
        for r in rows
        if r["dataset"] != ALL
        and r["family"] != ALL
        and dataset in (ALL, r["dataset"])
        and family in (ALL, r["family"])
    ]


def consistency(components: list[dict], dataset: str, family: str) -> tuple[bool | None, str]:
    """Whether the significant strata agree in sign, by family and by dataset, and a text
    such as "mlp −, cnn +": '·' none significant, '±' both signs within one value."""
    dims = [d for d, v in (("family", family), ("dataset", dataset)) if v == ALL]
    texts, agree, any_sig = [], True, False
    for dim in dims:
        values = sorted({r[dim] for r in components})
        if len(values) < 2:
            continue
        signs = {}
        for v in values:
            s = {r["direction"] for r in components if r[dim] == v and r["significant"]}
            signs[v] = "·" if not s else ("±" if len(s) > 1 else s.pop())
        definite = {s for s in signs.values() if s in ("+", MINUS)}
        any_sig |= any(s != "·" for s in signs.values())
        agree &= len(definite) <= 1 and "±" not in signs.values()
        if len(values) <= 4:
            texts.append(", ".join(f"{v} {s}" for v, s in signs.items()))
        else:  # many datasets: counts per sign
            tally = {s: sum(x == s for x in signs.values()) for s in ("+", MINUS, "±", "·")}
            texts.append(
                f"{len(values)} {dim}s: " + ", ".join(f"{n} {s}" for s, n in tally.items() if n)
            )
    if not texts:
        return None, ""
    return (agree if any_sig else None), "; ".join(texts)


def _ladder(
    primary: dict | None, size: dict | None, init: dict | None, consistent: bool | None
) -> str:
    """The verdict of one statistic: testable, consistent, significant, beyond size, beyond
    initialisation, in that order."""
    if primary is None or primary["significant"] is None:
        return "not testable"
    if consistent is False:
        return "inconsistent"
    if not primary["supported"]:
        return "not supported"
    if size is None or not size["supported"]:
        return "explained by size"
    if init is not None and init["significant"] is None and NO_INIT in (init["note"] or ""):
        return "beyond size"
    if init is None or not init["supported"]:
        return "initialisation"
    return "supported"


def _q(r: dict | None) -> str:
    if r is None or r["estimate"] is None:
        return "–"
    star = "*" if r["significant"] else ""
    return f"{r['estimate']:+.2f}{star}".replace("-", MINUS)


def verdicts(claims: pl.DataFrame) -> pl.DataFrame:
    """One line per claim and subset (dataset x family, pooled 'all'): the verdict
    (`VERDICTS`), its direction, effect size with 95 % CI, q, n cells / n runs and the
    controls. Claim 1 shows its strongest statistic and lists all in `detail`."""
    if "within" in claims.columns and claims["within"].n_unique() > 1:
        parts = claims.partition_by("within", maintain_order=True)
        return pl.concat([verdicts(part) for part in parts])
    within = claims["within"][0] if "within" in claims.columns and claims.height else "family"
    rows = claims.to_dicts()
    by_subset: dict[tuple, list[dict]] = {}
    for r in rows:
        by_subset.setdefault((r["claim"], r["dataset"], r["family"]), []).append(r)
    out = []
    for (claim, dataset, family), part in by_subset.items():
        if any(r["test"] == "none" for r in part):
            r = part[0]
            verdict = "at chance" if r["note"].startswith("at chance") else "not testable"
            out.append(_verdict(claim, dataset, family, verdict, r, detail=r["note"]))
        elif claim == 3:
            out.append(_shape_verdict(dataset, family, part))
        else:
            out.append(_effect_verdict(claim, dataset, family, part, rows))
    return pl.DataFrame([{**r, "within": within} for r in out], schema=VERDICT_SCHEMA)


def _verdict(claim, dataset, family, verdict, r, **fields) -> dict:
    base = {
        "claim": claim,
        "dataset": dataset,
        "family": family,
        "verdict": verdict,
        "statistic": r.get("statistic"),
        "direction": r.get("direction"),
        "estimate": r.get("estimate"),
        "ci_low": r.get("ci_low"),
        "ci_high": r.get("ci_high"),
        "q_value": r.get("q_value"),
        "n_cells": r.get("n_cells"),
        "n_runs": r.get("n_runs"),
        "beyond_size": None,
        "beyond_init": None,
        "consistent": None,
        "detail": "",
    }
    return base | fields


@dataclass
class StatVerdict:
    """The ladder's result for one statistic of one subset (claims 1 and 2)."""

    verdict: str
    statistic: str
    primary: dict | None
    size: dict | None
    init: dict | None
    consistent: bool | None
    directions: str

    def record(self, claim: int, dataset: str, family: str) -> dict:
        p, s, i = self.primary or {}, self.size or {}, self.init or {}
        return {
            "claim": claim,
            "dataset": dataset,
            "family": family,
            "statistic": self.statistic,
            "verdict": self.verdict,
            "direction": p.get("direction"),
            "estimate": p.get("estimate"),
            "q_value": p.get("q_value"),
            "size_estimate": s.get("estimate"),
            "size_q_value": s.get("q_value"),
            "init_target": i.get("target"),
            "init_estimate": i.get("estimate"),
            "init_q_value": i.get("q_value"),
            "consistent": self.consistent,
            "directions": self.directions,
        }


def _statistic_ladders(
    claim: int, dataset: str, family: str, part: list[dict], rows: list[dict]
) -> list[StatVerdict]:
    """The ladder of every statistic of one subset, strongest first."""
    pooled = ALL in (dataset, family)
    found = []
    for stat in dict.fromkeys(r["statistic"] for r in part if r["role"] != "secondary"):
        role = {r["role"]: r for r in part if r["statistic"] == stat}
        primary = role.get("primary")
        consistent, directions = None, ""
        if pooled and primary is not None:
            same = [
                r
                for r in rows
                if r["claim"] == claim
                and r["test"] == primary["test"]
                and r["target"] == primary["target"]
                and r["statistic"] == stat
            ]
            consistent, directions = consistency(
                _components(same, dataset, family), dataset, family
            )
        size, init = role.get("control: size"), role.get("control: initialisation")
        verdict = _ladder(primary, size, init, consistent)
        found.append(StatVerdict(verdict, stat, primary, size, init, consistent, directions))
    found.sort(key=lambda f: (-_RANK[f.verdict], *_strength(f.primary)))
    return found


def statistic_verdicts(claims: pl.DataFrame) -> pl.DataFrame:
    """Claims 1 and 2: the verdict of every statistic of every subset, with its controls."""
    rows = claims.filter(pl.col("claim").is_in([1, 2]), pl.col("test") != "none").to_dicts()
    by_subset: dict[tuple, list[dict]] = {}
    for r in rows:
        by_subset.setdefault((r["claim"], r["dataset"], r["family"]), []).append(r)
    out = [
        v.record(*key)
        for key, part in by_subset.items()
        for v in _statistic_ladders(*key, part, rows)
    ]
    return pl.DataFrame(out, schema=STATISTIC_VERDICT_SCHEMA)


def _effect_verdict(
    claim: int, dataset: str, family: str, part: list[dict], rows: list[dict]
) -> dict:
    """Claims 1 and 2: the ladder per statistic; the strongest one is the headline."""
    found = _statistic_ladders(claim, dataset, family, part, rows)
    head = found[0]
    tested = [f for f in found if f.verdict != "not testable"]
    if not tested:  # say why once, not once per statistic
        reason = (head.primary or part[0])["note"]
        return _verdict(
            claim,
            dataset,
            family,
            "not testable",
            part[0],
            statistic=None,
            estimate=None,
            direction=None,
            detail=reason,
        )
    ranks = [_RANK[f.verdict] for f in tested]
    detail = "; ".join(_stat_detail(f) for f in found)
    if claim == 2:
        detail = "; ".join([detail, *_claim2_extras(part)])
    return _verdict(
        claim,
        dataset,
        family,
        head.verdict,
        head.primary or part[0],
        beyond_size=max(ranks) >= _RANK["initialisation"] if ranks else None,
        beyond_init=None if head.verdict == "beyond size" else max(ranks) >= _RANK["supported"],
        consistent=head.consistent,
        detail=detail,
    )


def _strength(r: dict | None) -> tuple[float, float]:
    """Sort key of equally ranked statistics: smaller q, then larger |estimate|."""
    if r is None or r["q_value"] is None:
        return 2.0, 0.0
    return r["q_value"], -abs(r["estimate"] or 0.0)


def _stat_detail(v: StatVerdict) -> str:
    text = (
        f"{v.statistic} ρ {_q(v.primary)} (given size {_q(v.size)}, {_init_label(v.init)} "
        f"{_q(v.init)}): {v.verdict}"
    )
    deciding = (v.primary, v.size, v.init)
    if any(r is not None and BORDERLINE in (r["note"] or "") for r in deciding):
        text += " (borderline: a deciding q is within permutation error of α)"
    return text + (f" [{v.directions}]" if v.directions else "")


def _init_label(r: dict | None) -> str:
    if r is None:
        return "init"
    return {"scaled": "w/std(w0)", "delta": "w−w0"}.get(r["target"], "rel. to epoch 0") + " | size"


def _claim2_extras(part: list[dict]) -> list[str]:
    """Claim 2's secondary results in words: between-architecture test, run-level reading."""
    out = []
    for r in part:
        if r["test"] == "between_w1_cells" and r["estimate"] is None:
            out.append(f"between architectures {TARGET_LABELS[r['target']]}: {r['note']}")
        elif r["test"] == "between_w1_cells":
            ratio = math.exp(r["estimate"])
            run = (
                f", run-level ratio {r['run_estimate']:.3g} (p {_p(r['run_p_value'])})"
                if r["run_estimate"] is not None
                else ""
            )
            out.append(
                f"between architectures {TARGET_LABELS[r['target']]}: optimal/suboptimal "
                f"W1 {ratio:.3g}{'*' if r['significant'] else ''}{run}"
            )
    spread = [r for r in part if r["test"] == "seed_std_spearman" and r["supported"]]
    if spread:
        out.append("seed std falls with accuracy: " + ", ".join(r["statistic"] for r in spread))
    return out


def _p(p: float | None) -> str:
    return "–" if p is None else "< 1e-300" if p == 0 else f"{p:.2g}"


def _shape_verdict(dataset: str, family: str, part: list[dict]) -> dict:
    """Claim 3: same shape (every measure) and same size, reported separately."""
    shape = [r for r in part if r["test"] == "shape_pearson"]
    size = [r for r in part if r["test"] == "size_ratio"]
    head = shape[0]
    if any(r["supported"] is None for r in shape):
        verdict = "not testable"
    elif not all(r["supported"] for r in shape):
        verdict = "not supported"
    elif all(r["supported"] for r in size):
        verdict = "supported"
    else:  # a size differs, or cannot be measured
        verdict = "shape only"
    words = {True: "same size", False: "different size", None: "size not measurable"}
    detail = "; ".join(
        f"{r['statistic']}: r {_q(r)}, size ratio "
        f"{_fmt(s['estimate'])} [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}] "
        f"({words[s['supported']]}); {r['note']}"
        for r, s in zip(shape, size, strict=True)
    )
    consistent = None if verdict == "not testable" else all(r["direction"] != "±" for r in shape)
    return _verdict(
        3, dataset, family, verdict, head, beyond_size=None, consistent=consistent, detail=detail
    )


# ---------------------------------------------------------------------------------------
# The readable page
# ---------------------------------------------------------------------------------------


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _md_table(frame: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in frame.iter_rows(named=True):
        cells = []
        for c in columns:
            v = r[c]
            text = f"**{v}**" if c == "verdict" else _fmt(v)
            cells.append(text.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# The columns of claims.md: its verdict table, and each claim's table of tests.
PAGE_VERDICT_COLUMNS = ["claim", "within", "dataset", "family", "verdict", "statistic", "direction",
                        "estimate", "ci_low", "ci_high", "q_value", "cells / runs",
                        "beyond_size", "beyond_init", "consistent", "detail"]  # fmt: skip
PAGE_TEST_COLUMNS = ["within", "dataset", "family", "target", "statistic", "test", "role",
                     "n_cells", "n_runs", "estimate", "ci_low", "ci_high", "p_value", "q_value",
                     "supported", "run_estimate", "run_p_value", "note"]  # fmt: skip


def claims_markdown(
    claims: pl.DataFrame,
    verdict_table: pl.DataFrame,
    *,
    rule: str,
    settings: Settings,
    counts: dict,
) -> str:
    """results/claims.md: the one verdict table first, the vocabulary, then every test."""
    cells_runs = pl.format("{} / {}", "n_cells", "n_runs").alias("cells / runs")
    vocabulary = "; ".join(f"**{k}**: {v}" for k, v in VERDICTS.items())
    lines = [
        "# The paper's claims, tested",
        "",
        f"Zoo: {json.dumps(counts)}. Groups: {rule}. Unit of inference: the architecture "
        "cell (its seeds' mean); permutations and bootstraps move whole cells; pooled rows "
        "(`all`) weight each dataset × family by its cells and never mix cells across them. "
        f"α = {settings.alpha}, {settings.n_perm} permutations, {settings.n_boot} bootstrap "
        "draws, Benjamini–Hochberg q within each claim and test.",
        "",
        "## Verdicts",
        "",
        *_md_table(verdict_table.with_columns(cells_runs), PAGE_VERDICT_COLUMNS),
        "",
        f"Verdicts: {vocabulary}. Claim 1's headline is its strongest statistic; `detail` "
        "lists each as ρ (cells), given size, relative to epoch 0 given size (* q < α) and, "
        "pooled, the significant directions per family / dataset (· none, ± both). Claim 2's "
        "headline is the seed dispersion of w (expected −: better architectures, less seed "
        "spread).",
        "",
    ]
    for claim, text in CLAIMS.items():
        lines += [f"## Claim {claim}: {text}", ""]
        lines += [*_md_table(claims.filter(claim=claim), PAGE_TEST_COLUMNS), ""]
    lines.append(
        "run_estimate / run_p_value: the run-level reading (every run an independent "
        "sample) — secondary, never part of a verdict."
    )
    return "\n".join(lines) + "\n"


def heatmap_distances(final: pl.DataFrame, hist_range, max_runs: int) -> pl.DataFrame:
    """Run x run W1 distances of the pooled weights for one dataset x family, long format.

    Picks the first dataset's family with the most runs; above `max_runs` runs, keeps runs
    evenly spaced in accuracy rank, so the figure stays small at any scale.
    """
    pool = with_setting(final).filter(scope=POOL, target="w", status="ok")
    schema = {
        "dataset": pl.String,
        "family": pl.String,
        "run_a": pl.String,
        "run_b": pl.String,
        "acc_a": pl.Float64,
        "acc_b": pl.Float64,
        "w1": pl.Float64,
    }
    if pool.height == 0:
        return pl.DataFrame(schema=schema)
    dataset = pool["dataset"].sort()[0]
    counts = pool.filter(dataset=dataset).group_by("family").len()
    family = counts.sort("len", "family", descending=[True, False])[0, "family"]
    runs = pool.filter(dataset=dataset, family=family).sort("final_test_acc", *RUN_KEYS)
    if runs.height > max_runs:
        runs = runs[np.unique(np.linspace(0, runs.height - 1, max_runs).round().astype(int))]
    dist = w1_matrix(np.stack(runs["hist"].to_numpy()), hist_range)
    setting = (
        pl.when(pl.col("setting") == "default").then(pl.lit("")).otherwise("/" + pl.col("setting"))
    )
    labels = runs.select(pl.col("arch") + setting + "/s" + pl.col("seed").cast(pl.String))
    labels = labels.to_series().to_numpy()
    acc = runs["final_test_acc"].to_numpy()
    i, j = np.indices(dist.shape).reshape(2, -1)
    return pl.DataFrame(
        {
            "dataset": dataset,
            "family": family,
            "run_a": labels[i],
            "run_b": labels[j],
            "acc_a": acc[i],
            "acc_b": acc[j],
            "w1": dist.ravel(),
        },
        schema=schema,
    )


def w1_matrix(hists: np.ndarray, hist_range: tuple[float, float]) -> np.ndarray:
    """Pairwise 1-Wasserstein distances between normalised histograms on one fixed grid.

    W1 = integral |F_a - F_b| dx, the L1 distance between the cumulative distributions
    times the bin width. For the heatmap's few runs only: the tests never build it for runs.
    """
    hists = np.asarray(hists, dtype=np.float64)
    width = (hist_range[1] - hist_range[0]) / hists.shape[1]
    return squareform(pdist(np.cumsum(hists, axis=1), "cityblock")) * width
