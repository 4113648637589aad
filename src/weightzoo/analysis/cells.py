"""The zoo as architecture cells: what every claim test reads.

A cell is an architecture under one training setting on one dataset (`CELL_KEYS`); its
value is the mean over its seeds. `load_cells` reads from the stats table only the pooled
rows the tests need and builds the cells, their strata (dataset x family) and each run's
CDF; `seed_dispersion` is a cell's mean pairwise W1 between its seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from weightzoo.analysis.claim_settings import ClaimSettings
from weightzoo.analysis.groups import STRATUM_KEYS, keys_like
from weightzoo.tables import CELL_KEYS, RUN_KEYS, WEIGHT_POOL, with_setting

ALL = "all"  # the dataset / family name of pooled subsets
TARGETS = ("w", "delta", "scaled")
TARGET_LABELS = {"w": "w", "delta": "w − w0", "scaled": "w / std(w0)"}
# Statistics whose epoch-0 value is a scale (away from 0): relative value stat(w_T)/stat(w_0).
# The others (location and shape: mean, median, skew, kurtosis) sit near 0 at initialisation,
# where a ratio is meaningless: their relative value is stat(w_T) - stat(w_0).
RATIO_STATISTICS = frozenset({"std", "var", "l1", "l2", "max_abs", "min", "max", "q0", "q1", "q5",
                              "q25", "q75", "q95", "q99", "q100", "spectral_norm"})  # fmt: skip


@dataclass
class Cells:
    """The healthy runs, their architecture cells and their final weight distributions.

    `within`: "family" (cells of a dataset x family compared) or "architecture" (the
    settings of one architecture compared); `runs`: one row per ok run (sorted by RUN_KEYS;
    `cell`, `stratum` codes); `table`: one row per cell (means over seeds, seed std, epoch-0
    and relative values, seed W1 per target); `strata`: one row per dataset x family;
    `cdfs`: per target, one CDF row per run (NaN where the run has no histogram); `widths`:
    each target's histogram bin width.
    """

    within: str
    runs: pl.DataFrame
    table: pl.DataFrame
    strata: pl.DataFrame
    cdfs: dict[str, np.ndarray]
    widths: dict[str, float]
    statistics: tuple[str, ...]
    _mean_cdfs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def targets(self) -> list[str]:
        return [t for t in TARGETS if t in self.cdfs]

    def testable_strata(self) -> pl.DataFrame:
        """The strata whose family is not at chance."""
        return self.strata.filter(~pl.col("at_chance"))

    def mean_cdfs(self, target: str) -> np.ndarray:
        """Each cell's mean CDF over its seeds (the CDF of the seeds' pooled weights)."""
        if target not in self._mean_cdfs:
            cdf, cell = self.cdfs[target], self.runs["cell"].to_numpy()
            valid = np.isfinite(cdf).all(axis=1)
            sums = np.zeros((self.table.height, cdf.shape[1]))
            np.add.at(sums, cell[valid], cdf[valid])
            counts = np.bincount(cell[valid], minlength=self.table.height)
            with np.errstate(invalid="ignore"):
                self._mean_cdfs[target] = sums / counts[:, None]
        return self._mean_cdfs[target]


def load_cells(
    stats: pl.LazyFrame, groups: pl.DataFrame, settings: ClaimSettings, within: str
) -> Cells:
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
        keys_like(groups.filter(status="ok"), stats)
        .sort(RUN_KEYS)
        .with_row_index("run")
        .with_columns(
            cell=pl.struct(CELL_KEYS).rle_id().cast(pl.Int64),  # rows are sorted by cell
            stratum=pl.struct(STRATUM_KEYS).rle_id().cast(pl.Int64),
        )
    )
    keys = runs.select(*RUN_KEYS, "run", "epochs_run").lazy()
    pool = stats.filter(pl.col("scope") == WEIGHT_POOL)
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
    table = _cell_table(per_run, statistics)
    for target, cdf in cdfs.items():
        table = table.with_columns(
            pl.Series(
                f"seed_w1_{target}",
                seed_dispersion(cdf, runs["cell"].to_numpy(), table.height, widths[target]),
            )
        )
    strata = (
        table.group_by("stratum", *STRATUM_KEYS)
        .agg(
            at_chance=pl.col("at_chance").first(), n_cells=pl.len(), n_runs=pl.col("n_seeds").sum()
        )
        .sort("stratum")
    )
    return Cells(within, per_run, table, strata, cdfs, widths, tuple(statistics))


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


def _hist_matrix(hist: pl.Series) -> np.ndarray:
    """A list<float> column of equal-length histograms as a 2-D float64 array."""
    lengths = hist.list.len().unique().to_list()
    if len(lengths) != 1:
        raise ValueError(f"histograms of different lengths in one target: {sorted(lengths)}")
    return hist.explode().to_numpy().astype(np.float64).reshape(len(hist), lengths[0])


def _cell_table(per_run: pl.DataFrame, statistics: Sequence[str]) -> pl.DataFrame:
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
