"""Simulated zoos that measure the type-I error and power of every verdict path.

A null zoo has n architecture cells whose log size drives both a weight statistic and the
accuracy, with nothing beyond size: the statistic and accuracy are independent given size.
A planted zoo adds a true partial correlation (given size) of the statistic with accuracy.
Each cell's values carry a cell-level random effect and the mean of its seeds' noise. The
verdict ladder of weightzoo.controls is run on every zoo, vectorised over zoos, and the
rate of each verdict is what a user of a zoo of that many cells should expect.

The simulated partial is that of the latent Gaussian cell values (a Spearman partial of
them is slightly smaller: (6/π) asin(ρ/2)); its sign is that of the raw correlation, as in
the default zoo's CNNs (size loads −0.73 on the statistic, +0.78 on accuracy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from weightzoo import controls

CELLS = (5, 8, 19, 45)  # the cell counts the claims are tested at (a family, a dataset, all)
PARTIALS = (0.0, 0.2, 0.4, 0.6)  # |true partial| given size; 0 is the null zoo


@dataclass(frozen=True)
class ZooModel:
    """How a simulated zoo's cells are drawn."""

    size_on_statistic: float = -0.73  # correlation of log size with the statistic
    size_on_accuracy: float = 0.78  # ... and with accuracy
    seeds: int = 3  # runs per cell, whose noise is averaged into the cell's value
    seed_share: float = 0.5  # of each residual's variance: seed noise (rest: cell effect)


def _residual(zoos: int, n: int, model: ZooModel, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance residuals: a cell random effect plus the scaled mean of seed noise."""
    cell = rng.standard_normal((zoos, n))
    seed_mean = rng.standard_normal((zoos, n, model.seeds)).mean(axis=-1) * math.sqrt(model.seeds)
    return math.sqrt(1 - model.seed_share) * cell + math.sqrt(model.seed_share) * seed_mean


def simulate(
    zoos: int, n: int, partial: float, rng: np.random.Generator, model: ZooModel = ZooModel()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(statistic, accuracy, log size) of `zoos` zoos of n cells, each (zoos, n), with this
    true partial correlation of statistic and accuracy given log size."""
    a, b = model.size_on_statistic, model.size_on_accuracy
    size = rng.standard_normal((zoos, n))
    ex = _residual(zoos, n, model, rng)
    ey = partial * ex + math.sqrt(1 - partial**2) * _residual(zoos, n, model, rng)
    statistic = a * size + math.sqrt(1 - a**2) * ex
    latent = b * size + math.sqrt(1 - b**2) * ey
    accuracy = 1 / (1 + np.exp(-latent))  # a monotone map: ranks are what the tests see
    log_params = 10 + 2 * size
    return statistic, accuracy, log_params


def kennedy_null(x: np.ndarray, y: np.ndarray, c: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """The permutation null weightzoo used before Freedman–Lane (Kennedy): y's residuals
    permuted against x's fixed residuals, not re-residualised; kept to measure its level."""
    zc = controls.rank_z(c)
    ex, ey = controls.residual(controls.rank_z(x), zc), controls.residual(controls.rank_z(y), zc)
    permuted = np.take_along_axis(ey[:, None, :], perms, axis=-1)
    num = np.einsum("zn,zdn->zd", ex, permuted)
    with np.errstate(invalid="ignore", divide="ignore"):  # undefined partials: NaN
        return num / np.sqrt((ex**2).sum(-1) * (ey**2).sum(-1))[:, None]


@dataclass(frozen=True)
class Rates:
    """The measured rates of one (cells, true partial) setting over `zoos` zoos."""

    n: int
    partial: float
    zoos: int
    raw_reject: float  # raw Spearman p < α
    partial_reject: float  # Freedman–Lane p < α (type-I error at partial 0, else power)
    kennedy_reject: float  # the old null's p < α
    negligible: float  # TOST passed
    verdicts: dict[str, float]  # rate of each verdict of the size ladder
    detectable: float  # the Fisher-z approximation's 80 %-power effect at n


ZOO_CHUNK = 100  # zoos simulated and tested at once: arrays of (100, permutations, cells)


def verdict_rates(
    n: int,
    partial: float,
    *,
    zoos: int,
    n_perm: int,
    alpha: float,
    bound: float,
    rng: np.random.Generator,
    model: ZooModel = ZooModel(),
) -> Rates:
    """Run the size ladder on `zoos` simulated zoos; the rate of each outcome."""
    counts = dict.fromkeys(controls.VERDICTS, 0)
    raw_rej = part_rej = ken_rej = negligible = 0
    sign = -1 if model.size_on_statistic * model.size_on_accuracy < 0 else 1
    for start in range(0, zoos, ZOO_CHUNK):
        z = min(ZOO_CHUNK, zoos - start)
        x, y, c = simulate(z, n, sign * partial, rng, model)
        perms = controls.permutations(z, n_perm, n, rng)
        raw = controls.partial_estimate(x, y, None)
        part = controls.partial_estimate(x, y, c)
        raw_p = controls.pvalues(raw, controls.freedman_lane_null(x, y, None, perms))
        part_p = controls.pvalues(part, controls.freedman_lane_null(x, y, c, perms))
        ken_p = controls.pvalues(part, kennedy_null(x, y, c, perms))
        for i in range(z):
            ok = np.isfinite(part[i])
            eq = controls.equivalence(part[i] if ok else None, n, 1, alpha, bound)
            verdict = controls.decide(
                controls.Reading(_num(raw[i]), bool(raw_p[i] < alpha)),
                controls.Reading(_num(part[i]), bool(part_p[i] < alpha), bool(ok), eq.negligible),
                None,
            )
            counts[verdict] += 1
            raw_rej += raw_p[i] < alpha
            part_rej += ok and part_p[i] < alpha
            ken_rej += ok and ken_p[i] < alpha
            negligible += eq.negligible
    return Rates(
        n=n,
        partial=partial,
        zoos=zoos,
        raw_reject=raw_rej / zoos,
        partial_reject=part_rej / zoos,
        kennedy_reject=ken_rej / zoos,
        negligible=negligible / zoos,
        verdicts={k: v / zoos for k, v in counts.items() if v},
        detectable=controls.detectable(n, 1, alpha),
    )


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def maxt_rates(
    n: int,
    *,
    statistics: int,
    zoos: int,
    n_perm: int,
    alpha: float,
    rng: np.random.Generator,
    correlated: float = 0.5,
) -> tuple[float, float]:
    """Under the complete null (accuracy independent of every statistic), the rate at which
    the strongest of `statistics` correlated statistics is called significant: (unadjusted
    p < α, maxT-adjusted p < α)."""
    shared = rng.standard_normal((zoos, 1, n))
    own = rng.standard_normal((zoos, statistics, n))
    stats = math.sqrt(correlated) * shared + math.sqrt(1 - correlated) * own
    y = rng.standard_normal((zoos, n))
    perms = controls.permutations(zoos, n_perm, n, rng)
    adjusted = controls.maxt_pvalues(stats, y, perms)
    single = np.stack(
        [
            controls.pvalues(
                controls.partial_estimate(stats[:, k], y, None),
                controls.freedman_lane_null(stats[:, k], y, None, perms),
            )
            for k in range(statistics)
        ],
        axis=1,
    )
    return float((single.min(axis=1) < alpha).mean()), float((adjusted.min(axis=1) < alpha).mean())


def band(alpha: float, zoos: int) -> tuple[float, float]:
    """The Monte Carlo band α ± 2 sqrt(α(1 − α)/zoos) a level-α rate should fall in."""
    half = 2 * math.sqrt(alpha * (1 - alpha) / zoos)
    return alpha - half, alpha + half


def calibration(
    cells: Sequence[int] = CELLS,
    partials: Sequence[float] = PARTIALS,
    *,
    zoos: int = 500,
    n_perm: int = 299,
    alpha: float = 0.05,
    bound: float = 0.2,
    seed: int = 0,
) -> list[Rates]:
    """The rates of every (cells, partial) setting, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return [
        verdict_rates(n, p, zoos=zoos, n_perm=n_perm, alpha=alpha, bound=bound, rng=rng)
        for n in cells
        for p in partials
    ]


SHOWN = ("beyond size", "explained by size", "inconclusive given size", "reversed", "undefined",
         "not supported")  # fmt: skip


def markdown(rates: Sequence[Rates], *, alpha: float, n_perm: int, bound: float) -> list[str]:
    """The calibration table: one row per cells x true partial, rates in %."""
    zoos = rates[0].zoos
    low, high = band(alpha, zoos)
    lines = [
        f"{zoos} simulated zoos per row, {n_perm} permutations each, α = {alpha}, "
        f"equivalence bound δ = {bound}; a level-α rate over {zoos} zoos falls in "
        f"[{low:.3f}, {high:.3f}] (α ± 2 Monte Carlo s.e.). Partial 0: null zoos "
        "(statistic and accuracy independent given size, both loading on size); "
        "rejection rates there are type-I errors, elsewhere power.",
        "",
        "| cells | true partial | detectable (80 %) | raw p < α | partial p < α (Freedman–Lane) "
        "| old null (Kennedy) | TOST negligible | " + " | ".join(SHOWN) + " |",
        "|" + "---|" * (7 + len(SHOWN)),
    ]
    for r in rates:
        shown = " | ".join(f"{100 * r.verdicts.get(v, 0.0):.1f}" for v in SHOWN)
        lines.append(
            f"| {r.n} | {r.partial:.1f} | {r.detectable:.2f} | {100 * r.raw_reject:.1f} | "
            f"{100 * r.partial_reject:.1f} | {100 * r.kennedy_reject:.1f} | "
            f"{100 * r.negligible:.1f} | {shown} |"
        )
    return lines


def _family_curves(
    zoos: int, cells: int, half: float, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """(zoos, cells, 3) trajectory summaries of saturating curves 1 − 2^(−t / half) over 8
    dumped epochs, each cell's scale and half time varying by 20 % and carrying noise."""
    t = np.linspace(0, 1, 8)
    halves = half * np.exp(rng.normal(0, 0.2, size=(zoos, cells, 1)))
    scales = scale * np.exp(rng.normal(0, 0.2, size=(zoos, cells, 1)))
    curves = scales * (1 - 2.0 ** (-t / halves)) / (1 - 2.0 ** (-1 / halves))
    curves = curves + rng.normal(0, 0.01 * scale, size=curves.shape)
    return np.stack([controls.trajectory_summaries(t, c) for c in curves])


def trajectory_rates(
    cells: int,
    *,
    half_b: float,
    scale_b: float,
    zoos: int,
    alpha: float,
    shape_bound: float,
    size_bound: float,
    rng: np.random.Generator,
) -> dict[str, dict[str, float]]:
    """Claim 3 on simulated pairs of families (family a: half time 0.2, scale 1): the rate
    of each verdict (same / different / inconclusive) per summary."""
    a = _family_curves(zoos, cells, 0.2, 1.0, rng)
    b = _family_curves(zoos, cells, half_b, scale_b, rng)
    out: dict[str, dict[str, float]] = {}
    for i in range(zoos):
        found = controls.compare_families(
            a[i],
            b[i],
            alpha=alpha,
            shape_bound=shape_bound,
            size_bound=size_bound,
        )
        for comp in found:
            rates = out.setdefault(
                comp.summary, {"same": 0.0, "different": 0.0, "inconclusive": 0.0}
            )
            rates[comp.verdict] += 1 / zoos
    return out
