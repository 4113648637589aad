"""The three claims on the zoo: `run_claims`, and claims 1 and 2's correlations over cells.

1. Weight statistics track performance: Spearman rho of each cell's mean statistic (final
   pooled weights) with its mean test accuracy; controls: the partial Spearman given
   log(parameter count) (beyond size) and the same partial test on the statistic relative
   to its epoch-0 value (beyond initialisation).
2. Poor networks scatter: a cell's seed dispersion (mean pairwise 1-Wasserstein distance
   between its seeds' weight distributions, of w, w - w0 and w / std(w0)) against its
   accuracy, expected negative; same controls. Also reported: the across-seed std of each
   statistic, and the between-architecture test (weightzoo.analysis.between).
3. MLP, CNN and ViT learn alike: weightzoo.analysis.trajectories.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats as sps

from weightzoo import controls, resampling
from weightzoo.analysis.between import between_tests
from weightzoo.analysis.cells import RATIO_STATISTICS, Cells, load_cells, subsets
from weightzoo.analysis.claim_settings import ClaimSettings
from weightzoo.analysis.groups import STRATUM_KEYS, label_groups
from weightzoo.analysis.inference import Part, correlation_part, decide, keyed_rng, pool
from weightzoo.analysis.rows import ClaimTest, claims_table, join_notes, sign
from weightzoo.analysis.trajectories import claim3_tests
from weightzoo.markdown import finite
from weightzoo.tables import with_setting

WITHIN = ("family", "architecture")  # what groups and cells are compared within
logger = logging.getLogger(__name__)


@dataclass
class Results:
    """What the claims job writes: groups, cells, median trajectories and the claims."""

    groups: pl.DataFrame
    cells: pl.DataFrame
    trajectories: pl.DataFrame
    claims: pl.DataFrame


def run_claims(runs: pl.DataFrame, stats: pl.LazyFrame, settings: ClaimSettings) -> Results:
    """Label the runs, read what the tests need from the stats table, test the three claims.

    The cells of a dataset x family are compared with each other (`within` "family"); when
    some architecture is trained with several settings, claims 1 and 2 are also tested
    within each such architecture over its settings (`within` "architecture": same size,
    same initial scale, failure by optimisation), each architecture a stratum of its own.
    The groups table carries the labels of the comparison within families.
    """
    runs, stats = with_setting(runs), with_setting(stats)
    across = _claims(runs, stats, settings, "family")
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
    inner = _claims(within_runs, within_stats, settings, "architecture")
    family = pl.col("arch").str.split("-").list.first()
    cells = pl.concat([across.cells, inner.cells.with_columns(family=family)], how="diagonal")
    claims = pl.concat([across.claims, inner.claims])
    return Results(across.groups, cells, across.trajectories, claims)


def _claims(
    runs: pl.DataFrame, stats: pl.LazyFrame, settings: ClaimSettings, within: str
) -> Results:
    """The claims on one grouping of the cells (see `run_claims`); claim 3, which compares
    families, only within families."""
    clock = _Clock()
    groups = label_groups(
        runs, settings.optimal_within, settings.suboptimal_below, settings.chance_margin
    )
    cells = load_cells(stats, groups, settings, within)
    clock.lap("read stats")
    rows = chance_rows(cells, groups) + correlation_tests(cells, settings)
    clock.lap("claims 1 and 2, correlations")
    rows = decide(rows + between_tests(cells, settings), settings.alpha, settings.n_perm)
    clock.lap("claim 2, between architectures")
    medians = pl.DataFrame()
    if within == "family":
        shape_rows, medians = claim3_tests(stats, groups, settings)
        rows += shape_rows
        clock.lap("claim 3")
    table = cells.table.drop("cell", "stratum").with_columns(within=pl.lit(within))
    return Results(groups, table, medians, claims_table(rows))


class _Clock:
    """Logs the seconds of each phase ("phase <name>: <s> s"), for the scale benchmark."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        logger.info("phase %s: %.2f s", name, now - self.last)
        self.last = now


def chance_rows(cells: Cells, groups: pl.DataFrame) -> list[ClaimTest]:
    """Claims 1 and 2 of each family at chance: one row each, no test, the reason."""
    best = groups.group_by(STRATUM_KEYS).agg(pl.col("best_arch_acc", "chance_acc").first())
    chance = cells.strata.filter("at_chance").join(best, on=STRATUM_KEYS)
    rows = []
    for r in chance.iter_rows(named=True):
        note = (
            f"at chance: best architecture {r['best_arch_acc']:.3f} <= chance "
            f"{r['chance_acc']:.3f} + margin"
        )
        rows += [
            ClaimTest(
                claim=c,
                within=cells.within,
                dataset=r["dataset"],
                family=r["family"],
                test="none",
                n_cells=r["n_cells"],
                n_runs=r["n_runs"],
                note=note,
            )
            for c in (1, 2)
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


def correlation_tests(cells: Cells, settings: ClaimSettings) -> list[ClaimTest]:
    """Claims 1 and 2's correlation rows: each test on each stratum, pooled per subset.

    The primary test of claim 1 carries the run-level Spearman (every run an independent
    sample, the old reading) as its secondary `run_*` columns. Each row carries the power
    of its test (`detectable`) and its equivalence test against the bound of the config;
    partials carry raw − partial. Claim 1 ends with its exploratory strongest statistic.
    """
    specs = correlation_specs(cells.statistics, cells.targets, settings.primary_target)
    by_stratum = cells.table.partition_by("stratum", as_dict=True)
    strata = cells.testable_strata().select("stratum", *STRATUM_KEYS).iter_rows()
    parts, strongest = {}, {}
    for s, d, f in strata:
        for spec in specs:
            parts[spec, s] = _stratum_correlation(by_stratum[(s,)], spec, settings, d, f)
        strongest[s] = _stratum_strongest(by_stratum[(s,)], cells.statistics, settings, d, f)
    rows = []
    for dataset, family, members in subsets(cells.strata):
        runs = cells.runs.filter(pl.col("stratum").is_in(members))
        for spec in specs:
            run_level = {}
            if spec.test == "spearman_cells":
                rho, p = _run_spearman(runs[spec.column], runs["final_test_acc"])
                run_level = {"run_estimate": rho, "run_p_value": p}
            result = pool([parts[spec, s] for s in members], covariates=int(spec.partial))
            equivalence = controls.equivalence_at(
                result.estimate, result.se, settings.alpha, settings.correlation_bound
            )
            declared = spec.target == settings.primary_target
            if spec.claim == 1:
                declared = spec.statistic == settings.primary_statistic
            note = join_notes(spec.note, result.note)
            if result.undefined:
                note = join_notes(note, "undefined in every stratum: not 0, not pooled")
            rows.append(
                ClaimTest(
                    claim=spec.claim,
                    within=cells.within,
                    dataset=dataset,
                    family=family,
                    test=spec.test,
                    target=spec.target,
                    statistic=spec.statistic,
                    role=spec.role,
                    **result.columns(),
                    **run_level,
                    declared=declared and spec.role != "secondary",
                    detectable=controls.detectable_at(result.se, settings.alpha)
                    if result.se is not None
                    else None,
                    equivalence_low=equivalence.low if result.estimate is not None else None,
                    equivalence_high=equivalence.high if result.estimate is not None else None,
                    negligible=equivalence.negligible if result.estimate is not None else None,
                    cells_needed=None
                    if spec.partial
                    else controls.cells_needed(result.estimate, 1, settings.alpha),
                    note=note,
                )
            )
        rows.append(_strongest_row(cells, dataset, family, [strongest[s] for s in members]))
    return rows


def _stratum_strongest(
    table: pl.DataFrame, statistics: Sequence[str], settings: ClaimSettings, d: str, f: str
) -> Part:
    """Claim 1's statistics against accuracy on one stratum with the same permutations for
    all: (k,) estimates and a (draws, k) null, for the selection-adjusted (maxT) p."""
    part = table.filter(pl.col("acc").is_finite())
    n, n_runs = part.height, int(part["n_seeds"].sum())
    if n < settings.min_cells:
        return Part(None, n_cells=n, n_runs=n_runs)
    x = np.stack([part[s].to_numpy().astype(np.float64) for s in statistics])
    x = np.where(np.isfinite(x).all(axis=1, keepdims=True), x, np.nan)  # missing: left out
    rng = keyed_rng(settings.seed, 1, "strongest", d, f)
    perms = resampling.permutation_chunks(n, settings.n_perm, rng)  # blocks: 9,999 x n is GBs
    observed, null = controls.spearman_nulls(
        np.nan_to_num(x, nan=0.0), part["acc"].to_numpy(), perms, settings.n_perm
    )
    observed = np.where(np.isfinite(x).all(axis=1), observed, np.nan)
    return Part(0.0, null, None, n, n_runs, extra={"observed": observed})


def _strongest_row(cells: Cells, dataset: str, family: str, parts: list[Part]) -> ClaimTest:
    """Claim 1's exploratory line: the statistic with the largest pooled |ρ| and its maxT p
    (the null of the largest |ρ| of all statistics, same permutations for all)."""
    used = [p for p in parts if p.null is not None]
    n_cells, n_runs = sum(p.n_cells for p in parts), sum(p.n_runs for p in parts)
    fields = {"claim": 1, "within": cells.within, "dataset": dataset, "family": family}
    fields |= {"test": "strongest_maxt", "role": "exploratory", "n_cells": n_cells}
    fields |= {"n_runs": n_runs}
    if not used:
        return ClaimTest(**fields, note="too few architectures: no test")
    weights = np.array([p.n_cells for p in used], dtype=np.float64)
    weights /= weights.sum()
    observed = sum(w * p.extra["observed"] for w, p in zip(weights, used, strict=True))
    null = sum(w * p.null for w, p in zip(weights, used, strict=True))
    if not np.isfinite(observed).any():
        return ClaimTest(**fields, note="no statistic defined in every cell")
    k = int(np.nanargmax(np.abs(observed)))
    p = float(controls.maxt_pvalue(observed, null)[k])
    names = [s for s, o in zip(cells.statistics, observed, strict=True) if np.isfinite(o)]
    return ClaimTest(
        **fields,
        statistic=cells.statistics[k],
        estimate=float(observed[k]),
        p_value=p,
        direction=sign(float(observed[k])),
        note=f"exploratory: the strongest of {', '.join(names)}; p adjusted for the "
        "choice (single-step maxT, same permutations for all)",
    )


def correlation_specs(
    statistics: Sequence[str], targets: Sequence[str], primary_target: str = "w"
) -> list[CorrelationTest]:
    """Every correlation test of claims 1 and 2, in the order of the claims table.

    Claim 1 per statistic: cell means (primary), given size, relative to epoch 0 given size
    (the initialisation control), and the epoch-0 value (secondary: what initialisation
    alone gives). Claim 2: seed dispersion of each target, plain and given size (the
    declared target decides, w by default; w / std(w0), or w - w0 without it, is the
    initialisation control), and seed std of each statistic (secondary).
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
            if t == primary_target:
                role = "control: size" if partial else "primary"
            elif t == control and partial and control != primary_target:
                role = "control: initialisation"
            specs.append(CorrelationTest(2, test, f"seed_w1_{t}", "seed W1", role, t, partial))
    for s in statistics:
        specs.append(CorrelationTest(2, "seed_std_spearman", f"{s}_seed_std", s, "secondary"))
    return specs


def init_control(targets: Sequence[str]) -> str:
    """The target whose seed dispersion is the initialisation control of claim 2."""
    return "scaled" if "scaled" in targets else "delta"


def _stratum_correlation(
    table: pl.DataFrame, spec: CorrelationTest, settings: ClaimSettings, dataset: str, family: str
) -> Part:
    """One correlation test on one stratum's cells (those with a finite value)."""
    part = table.filter(pl.col(spec.column).is_finite(), pl.col("acc").is_finite())
    n, n_runs = part.height, int(part["n_seeds"].sum())
    if n == 0 and (reason := missing_data(table, spec)):
        return Part(None, n_cells=table.height, n_runs=int(table["n_seeds"].sum()), note=reason)
    if n < settings.min_cells:
        note = f"fewer than {settings.min_cells} architectures: no test"
        return Part(None, n_cells=n, n_runs=n_runs, note=note)
    rng = keyed_rng(settings.seed, spec.claim, spec.test, spec.column, dataset, family)
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
    return finite(res.statistic), finite(res.pvalue)
