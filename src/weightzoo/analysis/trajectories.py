"""Claim 3: MLP, CNN and ViT learn alike. Per family the median over cells of
std(w_t)/std(w_0) and ||w_t - w_0|| / ||w_0|| over training progress; pairs of families
compared by shape (Pearson r of the median curves, same direction of change) and by size
(the ratio of their total changes, bootstrap CI over cells), reported separately."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import polars as pl
from scipy import stats as sps

from weightzoo import resampling
from weightzoo.analysis.cells import ALL
from weightzoo.analysis.claim_settings import ClaimSettings
from weightzoo.analysis.groups import keys_like
from weightzoo.analysis.inference import keyed_rng, partial_correlation
from weightzoo.analysis.rows import ClaimTest, sign
from weightzoo.markdown import finite
from weightzoo.tables import CELL_KEYS, RUN_KEYS, WEIGHT_POOL, with_setting

MEASURES = {"rel_std": "std(w_t)/std(w_0)", "rel_dist": "‖w_t − w_0‖/‖w_0‖"}
TESTS = ("shape_pearson", "size_ratio")
WITHIN = "family"  # claim 3 compares families: its cells are always those of a family


def claim3_tests(
    stats: pl.LazyFrame, groups: pl.DataFrame, settings: ClaimSettings
) -> tuple[list[ClaimTest], pl.DataFrame]:
    """Claim 3's rows and the median trajectories per family (the figure's table)."""
    traj = trajectories(stats, groups)
    rows = family_similarity_tests(cell_trajectories(traj), settings)
    return rows, median_trajectories(traj)


def trajectories(stats: pl.LazyFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """Per ok run and dumped epoch: progress (epoch / last epoch), std(w_t)/std(w_0) and
    ||w_t - w_0|| / ||w_0|| of the whole network's weights."""
    stats = with_setting(stats)
    runs = keys_like(groups.filter(status="ok"), stats).select(
        *RUN_KEYS, "epochs_run", "group", "family_at_chance"
    )
    pool = stats.filter(pl.col("scope") == WEIGHT_POOL).join(runs.lazy(), on=RUN_KEYS, how="inner")
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


def family_similarity_tests(cell_traj: pl.DataFrame, settings: ClaimSettings) -> list[ClaimTest]:
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
            if chance & {fa, fb}:
                note = f"at chance: {', '.join(sorted(chance & {fa, fb}))}"
                rows.append(_row(dataset, f"{fa} vs {fb}", "none", note=note))
                continue
            for measure in MEASURES:
                rows += _pair_rows(part, dataset, fa, fb, measure, settings)
    return decide_shape(rows, settings.alpha)


def _row(dataset: str, pair: str, test: str, **fields) -> ClaimTest:
    """A row of claim 3: one pair of families on one dataset."""
    return ClaimTest(claim=3, within=WITHIN, dataset=dataset, family=pair, test=test, **fields)


def _pair_rows(
    part: pl.DataFrame, dataset: str, fa: str, fb: str, measure: str, settings: ClaimSettings
) -> list[ClaimTest]:
    """The shape and size rows of one pair of families and one measure."""
    pair = f"{fa} vs {fb}"
    (ga, ma), (gb, mb) = (_family_matrix(part.filter(family=f), measure) for f in (fa, fb))
    union = np.union1d(ga, gb)
    runs = (
        part.filter(pl.col("family").is_in([fa, fb])).group_by(CELL_KEYS).agg(pl.col("runs").max())
    )
    common = {"statistic": measure, "n_cells": len(ma) + len(mb), "n_runs": int(runs["runs"].sum())}
    if min(len(ga), len(gb)) < 3 or min(len(ma), len(mb)) < 1:
        note = "fewer than 3 dumped epochs or no cells: no test"
        return [_row(dataset, pair, t, **common, note=note) for t in TESTS]
    ua, ub = _onto(ga, ma, union), _onto(gb, mb, union)
    ca, cb = np.median(ua, axis=0), np.median(ub, axis=0)
    rng = keyed_rng(settings.seed, 3, dataset, pair, measure)
    boot_a = np.median(ua[resampling.bootstrap_indices(len(ua), settings.n_boot, rng)], axis=1)
    boot_b = np.median(ub[resampling.bootstrap_indices(len(ub), settings.n_boot, rng)], axis=1)
    change_a, change_b = ca[-1] - ca[0], cb[-1] - cb[0]
    end = f"{fa} {ca[-1]:.3g}, {fb} {cb[-1]:.3g} at the end"
    note = f"change over training: {fa} {change_a:+.3g}, {fb} {change_b:+.3g} ({end})"
    if np.ptp(ca) == 0 or np.ptp(cb) == 0:
        note = "a flat trajectory: no test"
        return [_row(dataset, pair, t, **common, note=note) for t in TESTS]
    shape = sps.pearsonr(ca, cb)
    boot_r = partial_correlation(_center(boot_a), _center(boot_b), None)
    low, high = resampling.percentile_ci(boot_r)
    same_direction = bool(np.sign(change_a) == np.sign(change_b))
    direction = sign(change_a) if same_direction else "±"
    shape_row = _row(
        dataset,
        pair,
        "shape_pearson",
        **common,
        estimate=float(shape.statistic),
        p_value=float(shape.pvalue),
        direction=direction,
        ci_low=finite(low),
        ci_high=finite(high),
        note=note + ("" if same_direction else "; opposite directions"),
    )
    ratio = change_a / change_b if change_b else None
    size_note = f"{fa} change / {fb} change; {end}"
    size_row = _size_row(dataset, pair, boot_a, boot_b, ratio, common, direction, size_note)
    return [shape_row, size_row]


def _size_row(
    dataset: str,
    pair: str,
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    ratio: float | None,
    common: dict,
    direction: str | None,
    note: str,
) -> ClaimTest:
    """Claim 3's size comparison: the ratio of two families' changes over training, with a
    bootstrap CI over cells; "same size" when it contains 1, no comparison when either
    change's own CI contains 0 (a ratio of noise)."""
    change_a, change_b = boot_a[:, -1] - boot_a[:, 0], boot_b[:, -1] - boot_b[:, 0]
    cis = [resampling.percentile_ci(c) for c in (change_a, change_b)]
    measurable = all(not (lo <= 0 <= hi) for lo, hi in cis)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = resampling.percentile_ci(change_a / change_b)
    fields = {"estimate": finite(ratio), "ci_low": finite(low), "ci_high": finite(high)}
    fields |= {**common, "direction": direction}
    if not measurable:
        note = f"{note}; a change's 95% CI contains 0: no size comparison"
        return _row(dataset, pair, "size_ratio", **fields, note=note)
    same = bool(low <= 1 <= high)
    verdict = "same size (95% CI contains 1)" if same else "different size (95% CI excludes 1)"
    fields |= {"significant": not same, "supported": same}
    return _row(dataset, pair, "size_ratio", **fields, note=f"{note}; {verdict}")


def decide_shape(rows: list[ClaimTest], alpha: float) -> list[ClaimTest]:
    """Claim 3: q-values of the shape tests; supported when r > 0 with one direction.
    Returns new records, in the order given."""
    shape = [i for i, r in enumerate(rows) if r.test == "shape_pearson" and r.p_value is not None]
    out = list(rows)
    if shape:
        q = sps.false_discovery_control([rows[i].p_value for i in shape])
        for i, qv in zip(shape, q, strict=True):
            r = rows[i]
            out[i] = replace(
                r,
                q_value=float(qv),
                significant=bool(qv < alpha),
                supported=bool(qv < alpha and r.estimate > 0 and r.direction != "±"),
            )
    return out


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


def _center(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=-1, keepdims=True)
