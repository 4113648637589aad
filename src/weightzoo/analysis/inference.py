"""The test machinery: one test on one stratum (`Part`), pooling strata (`pool`) and the
Benjamini-Hochberg decision over a family of tests (`decide`).

A stratum is one dataset x family; a pooled estimate is the cell-weighted mean of its
strata's estimates, its null and bootstrap draws the same mean of theirs (cells never leave
their stratum). Permutations and bootstraps move whole cells (weightzoo.resampling).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import pdist, squareform

from weightzoo import resampling
from weightzoo.analysis.rows import ClaimTest, join_notes, sign
from weightzoo.markdown import finite

BORDERLINE = "q within permutation error of α"


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
    zx, zy = rank_z(x), rank_z(y)
    zc = None if covariate is None else rank_z(covariate)
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
    bc = None if covariate is None else rank_z(covariate[idx])
    boot = partial_correlation(rank_z(x[idx]), rank_z(y[idx]), bc)
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
        }


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
        ci = tuple(finite(v) for v in resampling.percentile_ci(boot))
    if len(used) < len(parts):
        notes.append(f"{len(parts) - len(used)} of {len(parts)} strata not testable")
    return Pooled(estimate, p_value, ci, n_cells, n_runs, "; ".join(notes), list(parts))


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
    ok = expected == 0 or (r.estimate is not None and np.sign(r.estimate) == expected)
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


def rank_z(a: np.ndarray) -> np.ndarray:
    """Row-wise average ranks, standardised (population std); NaN rows where constant."""
    r = sps.rankdata(a, axis=-1)
    r = r - r.mean(axis=-1, keepdims=True)
    sd = np.sqrt((r**2).mean(axis=-1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 1e-12, r / sd, np.nan)


def partial_correlation(zx: np.ndarray, zy: np.ndarray, zc: np.ndarray | None) -> np.ndarray:
    """Row-wise correlation of (centred) rows, after regressing out zc (when given)."""
    if zc is not None:
        zc = np.nan_to_num(zc)  # a constant covariate controls for nothing
        zx = zx - (zx * zc).mean(axis=-1, keepdims=True) * zc
        zy = zy - (zy * zc).mean(axis=-1, keepdims=True) * zc
    with np.errstate(invalid="ignore", divide="ignore"):
        return (zx * zy).sum(axis=-1) / np.sqrt((zx**2).sum(axis=-1) * (zy**2).sum(axis=-1))
