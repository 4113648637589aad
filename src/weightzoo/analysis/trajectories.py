"""Claim 3: MLP, CNN and ViT learn alike, tested at the cell level. Each cell's trajectory
of std(w_t)/std(w_0) and ||w_t - w_0|| / ||w_0|| over training progress is summarised by
its final change, half time and area (weightzoo.controls.trajectory_summaries); pairs of
families are compared on those, each cell one observation: shape (half time, area) and
size (ratio of the changes) as separate verdicts, "same" only through the equivalence
bounds of the config. The median curves per family remain the figure's table."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from weightzoo import controls
from weightzoo.analysis.cells import ALL
from weightzoo.analysis.claim_settings import ClaimSettings
from weightzoo.analysis.groups import keys_like
from weightzoo.analysis.rows import ClaimTest, sign
from weightzoo.tables import CELL_KEYS, RUN_KEYS, WEIGHT_POOL, with_setting

MEASURES = {"rel_std": "std(w_t)/std(w_0)", "rel_dist": "‖w_t − w_0‖/‖w_0‖"}
TESTS = ("half_time", "area", "size_ratio")
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
    """Claim 3 per dataset (and pooled when there are several) and pair of families: each
    measure's half time, area and size ratio compared over cells (`TESTS`)."""
    cell_traj = with_setting(cell_traj)
    rows = []
    datasets = sorted(cell_traj["dataset"].unique())
    views = [(d, cell_traj.filter(dataset=d)) for d in datasets]
    if len(datasets) > 1:
        views.append((ALL, cell_traj.filter(~pl.col("family_at_chance"))))
    for dataset, part in views:
        families = sorted(part["family"].unique())
        chance = set(part.filter("family_at_chance")["family"].unique())
        summaries = {
            (f, m): cell_summaries(part.filter(family=f), m) for f in families for m in MEASURES
        }
        for fa, fb in itertools.combinations(families, 2):
            if chance & {fa, fb}:
                note = f"at chance: {', '.join(sorted(chance & {fa, fb}))}"
                rows.append(_row(dataset, f"{fa} vs {fb}", "none", note=note))
                continue
            runs = (
                part.filter(pl.col("family").is_in([fa, fb]))
                .group_by(CELL_KEYS)
                .agg(pl.col("runs").max())
            )
            for measure in MEASURES:
                a, b = summaries[fa, measure], summaries[fb, measure]
                common = {"statistic": measure, "n_cells": len(a) + len(b)}
                common |= {"n_runs": int(runs["runs"].sum()), "n_a": len(a), "n_b": len(b)}
                rows += _pair_rows(dataset, f"{fa} vs {fb}", a, b, common, settings)
    return rows


def _row(dataset: str, pair: str, test: str, **fields) -> ClaimTest:
    """A row of claim 3: one pair of families on one dataset."""
    return ClaimTest(claim=3, within=WITHIN, dataset=dataset, family=pair, test=test, **fields)


def cell_summaries(cells: pl.DataFrame, measure: str) -> np.ndarray:
    """(cells, 3) final change, half time and area of each cell's curve of one measure (a
    cell with fewer than 3 finite points is left out)."""
    out = []
    for _, cell in cells.sort("progress").group_by(CELL_KEYS, maintain_order=True):
        t, v = cell["progress"].to_numpy(), cell[measure].to_numpy().astype(np.float64)
        ok = np.isfinite(t) & np.isfinite(v)
        if ok.sum() >= 3:
            out.append(controls.trajectory_summaries(t[ok], v[ok][None, :])[0])
    return np.array(out).reshape(-1, 3)


WORDS = {
    "same": "same: the 90 % interval lies within the equivalence bound",
    "different": "different: the 95 % interval excludes no difference",
    "inconclusive": "inconclusive: neither shown the same nor different",
}


def _pair_rows(
    dataset: str,
    pair: str,
    a: np.ndarray,
    b: np.ndarray,
    common: dict,
    settings: ClaimSettings,
) -> list[ClaimTest]:
    """The half-time, area and size rows of one pair of families and one measure."""
    if min(len(a), len(b)) < 2:
        note = "no test: fewer than 2 cells with 3 dumped epochs in a family"
        return [_row(dataset, pair, t, **common, note=note) for t in TESTS]
    found = controls.compare_families(
        a,
        b,
        alpha=settings.alpha,
        shape_bound=settings.shape_bound,
        size_bound=settings.size_bound,
    )
    changes = f"mean change {np.mean(a[:, 0]):+.3g} vs {np.mean(b[:, 0]):+.3g}"
    if controls.direction(np.mean(a[:, 0])) * controls.direction(np.mean(b[:, 0])) < 0:
        changes += ": opposite directions"
    rows = []
    for comp in found:
        bound = (
            f"[1/{settings.size_bound:g}, {settings.size_bound:g}]"
            if comp.summary == "size_ratio"
            else f"±{settings.shape_bound:g}"
        )
        eq_low, eq_high = comp.equivalence_ci
        rows.append(
            _row(
                dataset,
                pair,
                comp.summary,
                **common,
                estimate=comp.estimate,
                ci_low=comp.ci[0],
                ci_high=comp.ci[1],
                equivalence_low=eq_low,
                equivalence_high=eq_high,
                negligible=comp.verdict == "same",
                significant=comp.verdict == "different",
                supported=comp.verdict == "same",
                direction=sign(np.mean(a[:, 0])) if comp.summary == "size_ratio" else None,
                note=f"{WORDS[comp.verdict]} {bound}"
                + (f"; {changes}" if comp.summary == "size_ratio" else ""),
            )
        )
    return rows
