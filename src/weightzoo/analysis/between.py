"""Claim 2 between architectures: are optimal cells closer to each other than suboptimal
cells? A secondary test, with the old run-level reading (runs as independent samples)
beside it."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats as sps

from weightzoo import resampling
from weightzoo.analysis.cells import Cells, mean_distance_to_group, subsets
from weightzoo.analysis.claim_settings import ClaimSettings
from weightzoo.analysis.inference import Part, between_part, keyed_rng, pool
from weightzoo.analysis.rows import ClaimTest, join_notes


def between_tests(cells: Cells, settings: ClaimSettings) -> list[ClaimTest]:
    """Per subset and target: are optimal cells closer to each other than suboptimal cells?

    Confounded by size when the suboptimal group spans more architectures (it is secondary
    for that reason); w / std(w0) takes the initial scale out.
    """
    strata = cells.testable_strata()["stratum"].to_list()
    parts = {(t, s): _stratum_between(cells, settings, s, t) for t in cells.targets for s in strata}
    return [
        _between_row(cells, dataset, family, members, t, [parts[t, s] for s in members])
        for dataset, family, members in subsets(cells.strata)
        for t in cells.targets
    ]


def _stratum_between(cells: Cells, settings: ClaimSettings, stratum: int, target: str) -> Part:
    """The test on one stratum's optimal and suboptimal cells."""
    table = cells.table.filter(
        pl.col("stratum") == stratum, pl.col("group").is_in(["optimal", "suboptimal"])
    )
    optimal = (table["group"] == "optimal").to_numpy()
    n_runs = int(table["n_seeds"].sum())
    if min(optimal.sum(), (~optimal).sum()) < settings.min_group:
        return Part(
            None,
            n_cells=len(optimal),
            n_runs=n_runs,
            note=f"a group has fewer than {settings.min_group} architectures: no test",
            extra={"k": (int(optimal.sum()), int((~optimal).sum()))},
        )
    name = cells.strata.row(stratum, named=True)
    note = ""
    if len(optimal) > settings.between_max_cells:  # k x k distances: a subsample of cells
        rng = keyed_rng(settings.seed, 2, "between cells", name["dataset"], name["family"])
        keep = resampling.stratified_subsample(
            optimal, settings.between_max_cells, rng, min_each=settings.min_group
        )
        note = (
            f"between test on a random {len(keep):,} of {len(optimal):,} cells, each group "
            "keeping its share (analysis.between_max_cells)"
        )
        table, optimal = table[keep], optimal[keep]
        n_runs = int(table["n_seeds"].sum())
    mean_cdf = cells.mean_cdfs(target)[table["cell"].to_numpy()]
    if not np.isfinite(mean_cdf).all():
        return Part(None, n_cells=len(optimal), n_runs=n_runs, note=f"no {target} histograms")
    rng = keyed_rng(settings.seed, 2, "between", target, name["dataset"], name["family"])
    part = between_part(
        mean_cdf, optimal, cells.widths[target], n_perm=settings.n_perm, rng=rng, n_runs=n_runs
    )
    part.extra["k"] = (int(optimal.sum()), int((~optimal).sum()))
    part.note = note
    return part


def _between_row(
    cells: Cells, dataset: str, family: str, members: list[int], target: str, parts: list[Part]
) -> ClaimTest:
    """The between-architecture test, with the run-level reading as the secondary column."""
    result = pool(parts)
    k = [p.extra.get("k", (0, 0)) for p in parts]
    run_ratio, run_p = _run_between(cells, members, target)
    tested = [p for p in parts if p.estimate is not None]
    note = ""
    if tested:
        d_opt = np.mean([p.extra["within_optimal"] for p in tested])
        d_sub = np.mean([p.extra["within_suboptimal"] for p in tested])
        note = (
            f"within optimal cells {d_opt:.4g}, within suboptimal cells {d_sub:.4g} "
            "(estimate = log ratio; run-level: ratio of runs' mean W1, Mann–Whitney)"
        )
    return ClaimTest(
        claim=2,
        within=cells.within,
        dataset=dataset,
        family=family,
        test="between_w1_cells",
        target=target,
        statistic="mean pairwise W1",
        role="secondary",
        **result.columns(),
        n_a=sum(a for a, _ in k),
        n_b=sum(b for _, b in k),
        run_estimate=run_ratio,
        run_p_value=run_p,
        note=join_notes(note, result.note),
    )


def _run_between(
    cells: Cells, members: list[int], target: str
) -> tuple[float | None, float | None]:
    """The old run-level reading: each run's mean W1 to the other runs of its group, optimal
    vs suboptimal runs by Mann-Whitney as if runs were independent; ratio of the means."""
    runs = cells.runs.select("stratum", "group")
    scores = {"optimal": [], "suboptimal": []}
    stratum, group = runs["stratum"].to_numpy(), runs["group"].to_numpy()
    cdf = cells.cdfs[target]
    for s in members:
        for g, found in scores.items():
            rows = np.flatnonzero((stratum == s) & (group == g))
            rows = rows[np.isfinite(cdf[rows]).all(axis=1)]
            if len(rows) >= 2:
                found.append(mean_distance_to_group(cdf[rows], cells.widths[target]))
    if not scores["optimal"] or not scores["suboptimal"]:
        return None, None
    a, b = np.concatenate(scores["optimal"]), np.concatenate(scores["suboptimal"])
    if b.mean() <= 0:
        return None, None
    return float(a.mean() / b.mean()), float(sps.mannwhitneyu(a, b).pvalue)
