"""The test machinery: one test on one stratum (`Part`), pooling strata (`pool`) and the
Benjamini-Hochberg decision over a family of tests (`decide`).

A stratum is one dataset x family; a pooled estimate is the cell-weighted mean of its
strata's estimates, its null and bootstrap draws the same mean of theirs (cells never leave
their stratum). Permutations and bootstraps move whole cells (weightzoo.resampling).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import pdist, squareform

from weightzoo import controls, resampling
from weightzoo.analysis.rows import ClaimTest, join_notes, sign
from weightzoo.markdown import finite

BORDERLINE = "q within permutation error of α"
QUADRATIC_ROWS = 256  # label vectors per matrix product of the between test's quadratic forms


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


UNDEFINED = "ranks follow log size exactly: partial undefined"


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
    ranks; its permutation null is Freedman-Lane's (weightzoo.controls). Bootstrap draws
    resample cells, covariate with them, and re-rank; a partial also keeps the raw
    correlation's draws on the same resamples (raw - partial, `extra`). A partial whose
    x or y ranks follow the covariate exactly is undefined (estimate None: not pooled).
    """
    n = len(x)
    x, y = np.asarray(x, dtype=np.float64)[None, :], np.asarray(y, dtype=np.float64)[None, :]
    c = None if covariate is None else np.asarray(covariate, dtype=np.float64)[None, :]
    if not (np.isfinite(controls.rank_z(x)).all() and np.isfinite(controls.rank_z(y)).all()):
        return Part(None, n_cells=n, n_runs=n_runs, note="constant values: correlation undefined")
    estimate = float(controls.partial_estimate(x, y, c)[0])
    if not np.isfinite(estimate):
        return Part(None, n_cells=n, n_runs=n_runs, note=UNDEFINED, extra={"undefined": True})
    perms = resampling.permutation_chunks(n, n_perm, rng)  # blocks: 9,999 x n is GBs
    null = np.concatenate([controls.freedman_lane_null(x, y, c, p[None])[0] for p in perms])
    draws = [
        controls.bootstrap_draws(x, y, c, b[None])
        for b in resampling.bootstrap_chunks(n, n_boot, rng)
    ]
    raw = np.concatenate([r for r, _ in draws], axis=1)
    boot = np.concatenate([b for _, b in draws], axis=1)
    extra = {}
    if c is not None:
        raw_estimate = float(controls.partial_estimate(x, y, None)[0])
        extra = {"difference": raw_estimate - estimate, "difference_boot": raw[0] - boot[0]}
    return Part(estimate, null, boot[0], n, n_runs, extra=extra)


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
    perms = resampling.permutation_chunks(len(optimal), n_perm, rng)
    labels = itertools.chain([optimal[None, :]], (optimal[p] for p in perms))  # observed first
    qf = resampling.quadratic_forms
    forms = [
        (qf(b, dist, QUADRATIC_ROWS), qf(1 - b, dist, QUADRATIC_ROWS))
        for b in (b.astype(float) for b in resampling.rechunk(labels, QUADRATIC_ROWS))
    ]
    k1, k0 = optimal.sum(), (~optimal).sum()
    within_opt = np.concatenate([f for f, _ in forms]) / (k1 * (k1 - 1))
    within_sub = np.concatenate([f for _, f in forms]) / (k0 * (k0 - 1))
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
    difference: float | None = None  # raw - partial (partials only)
    difference_ci: tuple[float | None, float | None] = (None, None)
    se: float | None = None  # Fisher-z standard error of the (weighted) estimate
    undefined: bool = False  # every stratum's partial undefined

    def columns(self) -> dict:
        """Its columns of the claims table (the note is joined by the caller)."""
        return {
            "estimate": self.estimate,
            "p_value": self.p_value,
            "ci_low": self.ci[0],
            "ci_high": self.ci[1],
            "n_cells": self.n_cells,
            "n_runs": self.n_runs,
            "direction": sign(self.estimate),
            "difference": self.difference,
            "difference_ci_low": self.difference_ci[0],
            "difference_ci_high": self.difference_ci[1],
        }


def pool(parts: Sequence[Part], covariates: int = 0) -> Pooled:
    """Combine the strata's parts: weighted by cells; null and draws combined the same way.

    Undefined parts (estimate None) are left out. The Fisher-z standard error of the
    weighted estimate is sqrt(sum w_i^2 1.06 / (n_i - 3 - covariates)).
    """
    used = [p for p in parts if p.estimate is not None]
    n_cells, n_runs = sum(p.n_cells for p in parts), sum(p.n_runs for p in parts)
    notes = sorted({p.note for p in parts if p.note})
    if not used:
        undefined = bool(parts) and all(p.extra.get("undefined") for p in parts)
        return Pooled(
            None,
            None,
            (None, None),
            n_cells,
            n_runs,
            "; ".join(notes),
            list(parts),
            undefined=undefined,
        )
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
        ci = tuple(finite(v) for v in resampling.percentile_ci(boot))
    difference, difference_ci = None, (None, None)
    if all("difference_boot" in p.extra for p in used):
        pairs = zip(weights, used, strict=True)
        difference = float(sum(w * p.extra["difference"] for w, p in pairs))
        draws = sum(w * p.extra["difference_boot"] for w, p in zip(weights, used, strict=True))
        difference_ci = tuple(finite(v) for v in resampling.percentile_ci(draws))
    ses = [controls.fisher_se(p.n_cells, covariates) for p in used]
    se = float(np.sqrt(sum(w**2 * s**2 for w, s in zip(weights, ses, strict=True))))
    if len(used) < len(parts):
        notes.append(f"{len(parts) - len(used)} of {len(parts)} strata not testable or undefined")
    return Pooled(
        estimate,
        p_value,
        ci,
        n_cells,
        n_runs,
        "; ".join(notes),
        list(parts),
        difference,
        difference_ci,
        se if np.isfinite(se) else None,
    )


def decide(rows: Sequence[ClaimTest], alpha: float, n_perm: int) -> list[ClaimTest]:
    """Benjamini-Hochberg q-values within each (claim, test, target) family of tests;
    significant when q < alpha; supported when also in the claimed direction. A q closer to
    alpha than twice its Monte Carlo error (from `n_perm` permutations) is flagged. Returns
    new records, in the order given."""
    families: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        if r.p_value is not None and np.isfinite(r.p_value):
            families.setdefault((r.claim, r.test, r.target), []).append(i)
    out = list(rows)
    for members in families.values():
        q = sps.false_discovery_control([rows[i].p_value for i in members])
        for i, qv in zip(members, q, strict=True):
            out[i] = _decided(rows[i], qv, alpha, n_perm)
    return out


def _decided(r: ClaimTest, qv: float, alpha: float, n_perm: int) -> ClaimTest:
    """One test with its q-value and decision."""
    significant = bool(qv < alpha)
    expected = r.expected_sign
    ok = expected == 0 or controls.direction(r.estimate) == expected
    p = r.p_value
    error = 2 * math.sqrt(p * (1 - p) / n_perm) * qv / p
    note = r.note
    if abs(qv - alpha) < error:
        note = join_notes(note, f"{BORDERLINE} (±{error:.2g})")
    return replace(
        r,
        q_value=float(qv),
        significant=significant,
        supported=bool(significant and ok),
        note=note,
    )


def keyed_rng(seed: int, *labels: object) -> np.random.Generator:
    """A generator keyed by the test's labels: a stratum's draws do not depend on others."""
    return np.random.default_rng([seed, zlib.crc32("|".join(map(str, labels)).encode())])
