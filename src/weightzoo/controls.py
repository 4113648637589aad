"""Controls that tell "explained by size" from "cannot tell", and the verdicts they decide.

A claim's correlation over architecture cells is read beside its controls (log parameter
count, initialisation). A control that is merely not significant says nothing: at 19 cells
with size collinear with both sides, a partial of −0.4 is missed more often than found. So
each control reports its partial Spearman correlation with a Freedman–Lane permutation p, a
bootstrap CI, the paired difference raw − partial (the same resamples of cells for both),
the smallest partial this many cells detect with 80 % power, and an equivalence test (TOST)
against a bound δ; "explained by size" needs that test passed. Everything works on a batch
of zoos at once (leading axis), so the calibration (weightzoo.calibration) runs thousands.

The approximation used for power and equivalence: Fisher's z of a Spearman (partial)
correlation over n cells with k covariates has standard error sqrt(1.06 / (n − 3 − k))
(Fieller, Hartley & Pearson 1957); the calibration checks it against simulation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from weightzoo import resampling

NO_DIRECTION = 1e-12  # |ρ| below this is float noise: no sign
SPEARMAN_VARIANCE = 1.06  # Fieller et al. 1957: var(atanh ρ_s) ≈ 1.06 / (n − 3 − k)
POWER = 0.8  # the power of the "detectable" effect


# ---------------------------------------------------------------------------------------
# Ranks, residuals, correlations over the last axis
# ---------------------------------------------------------------------------------------


def average_ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties sharing their mean rank) along the last axis: scipy's
    rankdata, exactly (ranks are integers and halves), from one unstable sort, a third of
    its time on 999 resamples of 30,000 cells. Rows with NaN go to scipy (NaN ranks)."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape[-1] == 0 or np.isnan(a).any():
        return sps.rankdata(a, axis=-1)
    order = np.argsort(a, axis=-1)
    x = np.take_along_axis(a, order, axis=-1)
    n = a.shape[-1]
    position = np.broadcast_to(np.arange(n), a.shape)
    new = np.ones(a.shape, dtype=bool)
    new[..., 1:] = x[..., 1:] != x[..., :-1]  # a tie group starts here
    last = np.ones(a.shape, dtype=bool)
    last[..., :-1] = new[..., 1:]  # ... or ends here
    first = np.maximum.accumulate(np.where(new, position, 0), axis=-1)
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, position, n), -1), axis=-1), -1)
    ranks = np.empty(a.shape)
    np.put_along_axis(ranks, order, (first + end) / 2 + 1, axis=-1)
    return ranks


def resampled_ranks(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """average_ranks(a[z, idx[z, d]]) of every resample d of every row z of a (zoos, n), by
    counting, without a sort per resample: a value's average rank in a resample is the
    number of drawn values below it plus (its copies + 1) / 2. The same numbers exactly."""
    a, idx = np.asarray(a, dtype=np.float64), np.asarray(idx)
    if np.isnan(a).any():
        return average_ranks(_take(a, idx))
    zoos, draws, n = idx.shape
    order = np.argsort(a, axis=-1)
    x = np.take_along_axis(a, order, axis=-1)
    new = np.ones(a.shape, dtype=bool)
    new[:, 1:] = x[:, 1:] != x[:, :-1]
    group = np.empty(a.shape, dtype=np.int64)  # each value's tie group, 0.. in sorted order
    np.put_along_axis(group, order, np.cumsum(new, axis=-1) - 1, axis=-1)
    drawn = _take(group, idx)  # (zoos, draws, n)
    offset = np.arange(zoos * draws).reshape(zoos, draws, 1) * n
    counts = np.bincount((drawn + offset).ravel(), minlength=zoos * draws * n)
    counts = counts.reshape(zoos, draws, n)
    below = np.cumsum(counts, axis=-1) - counts
    return np.take_along_axis(below + (counts + 1) / 2, drawn, axis=-1)


def rank_z(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis, centred and scaled to mean square 1; NaN where
    the values are constant (a rank vector with no spread has no z-scores)."""
    return _z_of_ranks(average_ranks(a))


def _z_of_ranks(r: np.ndarray) -> np.ndarray:
    r = r - r.mean(axis=-1, keepdims=True)
    sd = np.sqrt((r**2).mean(axis=-1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 1e-12, r / sd, np.nan)


def residual(z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """z minus its least-squares fit on c (rank z-scores: mean 0, mean square 1) and a
    constant; z unchanged without a covariate (or with a constant one, all NaN)."""
    if c is None:
        return z - z.mean(axis=-1, keepdims=True)
    c = np.nan_to_num(c)
    z = z - z.mean(axis=-1, keepdims=True)
    return z - (z * c).mean(axis=-1, keepdims=True) * c


def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of centred vectors along the last axis; NaN where one is 0."""
    num = (a * b).sum(axis=-1)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, num / np.where(den > 0, den, 1.0), np.nan)


def defined(e: np.ndarray) -> np.ndarray:
    """Whether a residual vector has spread: ranks that follow the covariate exactly leave
    none, and a partial correlation of them is undefined (not 0)."""
    n = e.shape[-1]
    return (e**2).sum(axis=-1) > 1e-9 * n


def direction(v: float | None) -> int:
    """The sign of an estimate: 0 for none, NaN or |v| below float noise."""
    if v is None or not np.isfinite(v) or abs(v) < NO_DIRECTION:
        return 0
    return 1 if v > 0 else -1


# ---------------------------------------------------------------------------------------
# Batched tests: x, y, c of shape (zoos, n); index arrays of shape (zoos, draws, n)
# ---------------------------------------------------------------------------------------


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """a[z, idx[z, d, i]] for every zoo z and draw d: (zoos, draws, n)."""
    return np.take_along_axis(a[:, None, :], idx, axis=-1)


def permutations(zoos: int, draws: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(zoos, draws, n) independent permutations of 0..n-1."""
    return np.argsort(rng.random((zoos, draws, n)), axis=-1)


def bootstraps(zoos: int, draws: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(zoos, draws, n) draws of 0..n-1 with replacement."""
    return np.floor(rng.random((zoos, draws, n)) * n).astype(np.int64)


def partial_estimate(x: np.ndarray, y: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """Spearman correlation of x and y (partial given c when given) along the last axis:
    the correlation of the rank residuals on c's ranks; NaN where undefined."""
    return _partial_of_ranks(rank_z(x), rank_z(y), None if c is None else rank_z(c))


def _partial_of_ranks(zx: np.ndarray, zy: np.ndarray, zc: np.ndarray | None) -> np.ndarray:
    ex, ey = residual(zx, zc), residual(zy, zc)
    rho = correlation(ex, ey)
    return np.where(defined(ex) & defined(ey), rho, np.nan)


def freedman_lane_null(
    x: np.ndarray, y: np.ndarray, c: np.ndarray | None, perms: np.ndarray
) -> np.ndarray:
    """(zoos, draws) permutation null of the partial Spearman correlation given c.

    Freedman–Lane: permute the residuals of y's ranks on c's ranks, add back the fitted
    values, and recompute the partial; that is the correlation of x's residuals with the
    permuted residuals re-residualised on c. Without c: y's ranks permuted.
    """
    zc = None if c is None else rank_z(c)
    ex, ey = residual(rank_z(x), zc), residual(rank_z(y), zc)
    permuted = _take(ey, perms)  # mean 0, like ey
    num = np.einsum("zdn,zn->zd", permuted, ex)  # ex is orthogonal to c: re-residualising
    syy = (ey**2).sum(axis=-1, keepdims=True)  # leaves the numerator as it is
    if zc is not None:  # |r|^2 of r = e - (e.c / n) c, c of mean square 1: |e|^2 - (e.c)^2 / n
        syy = syy - np.einsum("zdn,zn->zd", permuted, np.nan_to_num(zc)) ** 2 / ex.shape[-1]
    den = np.sqrt(np.maximum((ex**2).sum(axis=-1, keepdims=True) * syy, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, num / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_draws(
    x: np.ndarray, y: np.ndarray, c: np.ndarray | None, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(raw, partial) Spearman of each bootstrap resample of cells, (zoos, draws) each: the
    same resamples for both, re-ranked, the covariate resampled with its cells."""
    zx = _z_of_ranks(resampled_ranks(x, idx))  # ranked once, used twice
    zy = _z_of_ranks(resampled_ranks(y, idx))
    part = None if c is None else _z_of_ranks(resampled_ranks(c, idx))
    raw = _partial_of_ranks(zx, zy, None)
    part = raw if c is None else _partial_of_ranks(zx, zy, part)
    return raw, part


def maxt_pvalues(stats: np.ndarray, y: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Selection-adjusted two-sided p of each statistic's Spearman ρ with y (single-step
    maxT): the null of max |ρ| over all statistics, the same permutations of y for all.

    stats (zoos, k, n), y (zoos, n), perms (zoos, draws, n) -> (zoos, k). A constant
    statistic takes no part (NaN p).
    """
    zs, zy = rank_z(stats), rank_z(y)
    observed = np.abs(correlation(zs, zy[:, None, :]))  # (zoos, k)
    permuted = _take(zy, perms)  # (zoos, draws, n)
    null = np.abs(np.einsum("zkn,zdn->zdk", np.nan_to_num(zs), permuted)) / zs.shape[-1]
    top = np.nanmax(np.where(np.isfinite(observed)[:, None, :], null, np.nan), axis=-1)
    exceed = (top[:, :, None] >= observed[:, None, :] - 1e-12).sum(axis=1)
    p = (1 + exceed) / (1 + perms.shape[1])
    return np.where(np.isfinite(observed), p, np.nan)


def spearman_null(
    stats: np.ndarray, y: np.ndarray, perms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Spearman ρ of each statistic (k, n) with y (n,) and its permutation null (draws, k),
    the same permutations of y for every statistic (what a maxT p pools and maximises)."""
    zs, zy = rank_z(stats), rank_z(y)
    observed = correlation(zs, zy[None, :])
    null = np.nan_to_num(zs) @ zy[perms].T / zs.shape[-1]
    return observed, np.where(np.isfinite(observed)[None, :], null.T, np.nan)


# spearman_nulls: permutations up to this many bytes (as float64) go into one product, more
# in products of MATMUL_ROWS permutations each
ONE_PRODUCT_BYTES = 256 * 2**20
MATMUL_ROWS = 256


def spearman_nulls(
    stats: np.ndarray, y: np.ndarray, chunks: Iterable[np.ndarray], n_perm: int
) -> tuple[np.ndarray, np.ndarray]:
    """`spearman_null` of `n_perm` permutations arriving in blocks (resampling's `*_chunks`).

    Up to ONE_PRODUCT_BYTES (9,999 permutations of 3,355 cells) all go into one product,
    the bits of one `spearman_null` call; beyond, products of MATMUL_ROWS permutations, the
    same bits whatever the blocks' size. (OpenBLAS sums a column of a short block in
    another order than inside a larger product: blocks of one size keep the bits fixed.)
    """
    n = np.shape(y)[-1]
    rows = n_perm if n_perm * n * 8 <= ONE_PRODUCT_BYTES else MATMUL_ROWS
    nulls, observed = [], None
    for block in resampling.rechunk(chunks, rows):
        observed, null = spearman_null(stats, y, block)
        nulls.append(null)
    if observed is None:
        raise ValueError("spearman_nulls needs at least one permutation")
    return observed, np.concatenate(nulls)


def maxt_pvalue(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Single-step maxT p of each of k statistics from (k,) estimates and a (draws, k) null
    drawn with the same permutations: (1 + #(max_j |null_j| ≥ |ρ_k|)) / (1 + draws)."""
    ok = np.isfinite(observed)
    top = np.nanmax(np.abs(np.where(ok[None, :], null, np.nan)), axis=1)
    exceed = (top[:, None] >= np.abs(observed)[None, :] - 1e-12).sum(axis=0)
    return np.where(ok, (1 + exceed) / (1 + null.shape[0]), np.nan)


def pvalues(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Two-sided permutation p per zoo: (1 + #|null| ≥ |observed|) / (1 + #finite null)."""
    return np.asarray(resampling.pvalue(observed[None, :], null.T))


# ---------------------------------------------------------------------------------------
# Power and equivalence (Fisher z with the Spearman variance factor)
# ---------------------------------------------------------------------------------------


def fisher_se(n: int, k: int) -> float:
    """Standard error of atanh(ρ_s) over n cells with k covariates; inf when n ≤ 3 + k."""
    dof = n - 3 - k
    return math.sqrt(SPEARMAN_VARIANCE / dof) if dof > 0 else math.inf


def detectable(n: int, k: int, alpha: float, power: float = POWER) -> float:
    """The smallest |ρ| a two-sided level-α test over n cells finds with this power."""
    return detectable_at(fisher_se(n, k), alpha, power)


def detectable_at(se: float | None, alpha: float, power: float = POWER) -> float:
    """The smallest |ρ| found with this power when atanh(ρ) has standard error se."""
    if se is None or not math.isfinite(se):
        return 1.0
    z = (sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)) * se
    return float(math.tanh(z))


def cells_needed(rho: float | None, k: int, alpha: float, power: float = POWER) -> int | None:
    """The number of cells at which |ρ| is detectable with this power (None for ρ 0)."""
    if direction(rho) == 0 or abs(rho) >= 1:
        return None
    z = (sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)) / math.atanh(abs(rho))
    return math.ceil(3 + k + SPEARMAN_VARIANCE * z**2)


@dataclass(frozen=True)
class Equivalence:
    """TOST of a correlation against ±bound: negligible when the (1 − 2α) CI lies inside."""

    low: float
    high: float
    bound: float
    negligible: bool


def equivalence(rho: float | None, n: int, k: int, alpha: float, bound: float) -> Equivalence:
    """Two one-sided tests at level α of |ρ| < bound, by the Fisher-z (1 − 2α) interval."""
    return equivalence_at(rho, fisher_se(n, k), alpha, bound)


def equivalence_at(rho: float | None, se: float | None, alpha: float, bound: float) -> Equivalence:
    """The TOST of `equivalence` when atanh(ρ) has standard error se."""
    if rho is None or not np.isfinite(rho) or se is None or not math.isfinite(se):
        return Equivalence(-1.0, 1.0, bound, False)
    z, half = math.atanh(max(min(rho, 1 - 1e-15), -1 + 1e-15)), sps.norm.ppf(1 - alpha) * se
    low, high = math.tanh(z - half), math.tanh(z + half)
    return Equivalence(low, high, bound, bool(-bound < low and high < bound))


# ---------------------------------------------------------------------------------------
# One control on one zoo
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    """A correlation over cells and its partial given a covariate, with everything a
    verdict needs: permutation p's, bootstrap CIs, raw − partial, power, equivalence."""

    n: int
    raw: float | None
    raw_p: float | None
    raw_ci: tuple[float | None, float | None]
    partial: float | None  # None: undefined (ranks follow the covariate exactly)
    partial_p: float | None
    partial_ci: tuple[float | None, float | None]
    difference: float | None  # raw − partial
    difference_ci: tuple[float | None, float | None]
    detectable: float  # smallest |partial| found with 80 % power at this n
    equivalence: Equivalence
    cells_needed: int | None  # cells at which the raw effect would be detectable
    note: str = ""


def _value(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _ci(draws: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    low, high = resampling.percentile_ci(draws, confidence)
    return _value(low), _value(high)


def control(
    x: Sequence[float],
    y: Sequence[float],
    covariate: Sequence[float],
    *,
    n_perm: int,
    n_boot: int,
    rng: np.random.Generator,
    alpha: float = 0.05,
    bound: float = 0.2,
) -> Control:
    """Spearman ρ of x and y over cells and its partial given the covariate (one zoo)."""
    x, y, c = (np.asarray(v, dtype=np.float64)[None, :] for v in (x, y, covariate))
    n = x.shape[1]
    raw = _value(partial_estimate(x, y, None)[0])
    partial = _value(partial_estimate(x, y, c)[0])
    raw_p = partial_p = None
    if raw is not None:
        perms = permutations(1, n_perm, n, rng)
        raw_p = float(pvalues(np.array([raw]), freedman_lane_null(x, y, None, perms))[0])
        if partial is not None:
            null = freedman_lane_null(x, y, c, perms)
            partial_p = float(pvalues(np.array([partial]), null)[0])
    boot_raw, boot_part = bootstrap_draws(x, y, c, bootstraps(1, n_boot, n, rng))
    note = ""
    if raw is not None and partial is None:
        note = "ranks follow the covariate exactly: partial undefined"
    diff = None if raw is None or partial is None else raw - partial
    needed = cells_needed(raw, 1, alpha)
    return Control(
        n=n,
        raw=raw,
        raw_p=raw_p,
        raw_ci=_ci(boot_raw[0], 1 - alpha),
        partial=partial,
        partial_p=partial_p,
        partial_ci=_ci(boot_part[0], 1 - alpha) if partial is not None else (None, None),
        difference=diff,
        difference_ci=_ci(boot_raw[0] - boot_part[0], 1 - alpha)
        if diff is not None
        else (None, None),
        detectable=detectable(n, 1, alpha),
        equivalence=equivalence(partial, n, 1, alpha, bound),
        cells_needed=needed,
        note=note,
    )


# ---------------------------------------------------------------------------------------
# The decision ladder
# ---------------------------------------------------------------------------------------

VERDICTS = {  # claims 1 and 2, strongest first
    "supported": "significant at the architecture level, beyond size (partial significant, "
    "same sign) and beyond initialisation (likewise)",
    "beyond size": "significant beyond size; the initialisation control neither significant "
    "nor shown negligible (or not available)",
    "explained by initialisation": "significant beyond size, but the initialisation control "
    "is shown negligible by its equivalence test",
    "explained by size": "significant, and the partial given log(parameter count) is shown "
    "negligible: its (1 − 2α) CI lies inside ±δ (equivalence test)",
    "inconclusive given size": "significant, but the partial given size is neither "
    "significant nor shown negligible: too few cells to tell (see the detectable effect)",
    "undefined": "the statistic's (or accuracy's) ranks follow size exactly: nothing is "
    "left to correlate beyond size; not 0, and left out of pooling",
    "reversed": "a control is significant in the direction opposite to the raw effect: "
    "never support",
    "not supported": "no significant effect (in the claimed direction)",
    "not testable": "too few architectures for a test",
}
CONTROL_OUTCOMES = ("beyond", "explained", "inconclusive", "reversed", "undefined")


@dataclass(frozen=True)
class Reading:
    """The numbers one step of the ladder reads: an estimate, whether it is significant
    (q < α), whether it is defined, and (for controls) whether its equivalence test passed."""

    estimate: float | None
    significant: bool | None
    defined: bool = True
    negligible: bool = False


def control_outcome(raw_sign: int, ctl: Reading | None) -> str | None:
    """What a control says about a raw effect of sign raw_sign (see CONTROL_OUTCOMES)."""
    if ctl is None:
        return None
    if not ctl.defined or ctl.estimate is None:
        return "undefined"
    sign = direction(ctl.estimate)
    if ctl.significant and sign != 0:
        return "beyond" if sign == raw_sign else "reversed"
    return "explained" if ctl.negligible else "inconclusive"


def decide(  # noqa: PLR0911 (the ladder reads top to bottom, one return per rung)
    raw: Reading, size: Reading | None, init: Reading | None, *, expected: int = 0
) -> str:
    """The verdict (VERDICTS) of a raw correlation and its size and initialisation controls.

    expected: the claimed sign (0: either). Reversal by either control wins over every
    other reading; an undefined size partial is "undefined"; "explained by size" needs the
    size partial's equivalence test passed.
    """
    if raw.estimate is None or raw.significant is None:
        return "not testable"
    sign = direction(raw.estimate)
    if not raw.significant or sign == 0 or (expected and sign != expected):
        return "not supported"
    by_size, by_init = control_outcome(sign, size), control_outcome(sign, init)
    if "reversed" in (by_size, by_init):
        return "reversed"
    if by_size == "undefined":
        return "undefined"
    if by_size == "explained":
        return "explained by size"
    if by_size in ("inconclusive", None):
        return "inconclusive given size"
    if by_init == "beyond":
        return "supported"
    if by_init == "explained":
        return "explained by initialisation"
    return "beyond size"


# ---------------------------------------------------------------------------------------
# Claim 3: each cell's trajectory summarised, families compared on the summaries
# ---------------------------------------------------------------------------------------

TRAJECTORY_SUMMARIES = {
    "final_change": "the measure's change from initialisation to the end of training",
    "half_time": "the fraction of training at which half the final change is reached",
    "area": "area under the normalised curve (change / final change) over training: 0.5 "
    "for a straight line, towards 1 for early saturation",
}


def trajectory_summaries(progress: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(cells, 3) final change, half time and area of each cell's curve.

    progress: (points,) fractions of training from 0 to 1; values: (cells, points), the
    measure at each (std(w_t)/std(w_0) or ‖w_t − w_0‖/‖w_0‖). Shape numbers are NaN for a
    curve with no change.
    """
    t = np.asarray(progress, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    change = v - v[:, :1]
    final = change[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(np.abs(final[:, None]) > NO_DIRECTION, change / final[:, None], np.nan)
    area = (np.diff(t) * (norm[:, 1:] + norm[:, :-1]) / 2).sum(axis=1)
    half = np.full(len(v), np.nan)
    for i, curve in enumerate(norm):
        if np.isfinite(curve).all():
            j = int(np.argmax(curve >= 0.5))  # the first point at or past half
            if j == 0:
                half[i] = t[0]
            else:
                t0, t1, c0, c1 = t[j - 1], t[j], curve[j - 1], curve[j]
                half[i] = t0 + (0.5 - c0) * (t1 - t0) / (c1 - c0)
    return np.column_stack([final, half, area])


@dataclass(frozen=True)
class Comparison:
    """One summary compared between two families: estimate (difference of means, or ratio
    of geometric means for the size), the 1 − α and 1 − 2α CIs, and the verdict same /
    different / inconclusive."""

    summary: str
    estimate: float | None
    ci: tuple[float | None, float | None]
    equivalence_ci: tuple[float | None, float | None]
    verdict: str


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Welch's t interval of mean(a) − mean(b) (cells the observations); NaN with < 2 each."""
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if min(len(a), len(b)) < 2:
        return float("nan"), float("nan")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    d, se = a.mean() - b.mean(), math.sqrt(va + vb)
    if se == 0:
        return float(d), float(d)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = sps.t.ppf(0.5 + confidence / 2, dof) * se
    return float(d - half), float(d + half)


def compare_families(
    a: np.ndarray, b: np.ndarray, *, alpha: float, shape_bound: float, size_bound: float
) -> list[Comparison]:
    """Two families' cell summaries (cells, 3), each cell one observation.

    Shape: differences of mean half time and area, "same" when the 1 − 2α interval lies
    within ±shape_bound (two one-sided tests). Size: the ratio of geometric mean changes,
    "same" when its 1 − 2α interval lies within [1/size_bound, size_bound]; changes of
    opposite direction are "different". "different" when the 1 − α interval excludes 0
    (ratio 1); else "inconclusive". Welch t intervals: the calibration found percentile
    bootstraps of 5–8 cells too narrow (identical families called different too often).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = [
        _verdict_of(name, a[:, j], b[:, j], shape_bound, alpha)
        for j, name in ((1, "half_time"), (2, "area"))
    ]
    sa, sb = direction(np.mean(a[:, 0])), direction(np.mean(b[:, 0]))
    if sa * sb < 0:
        out.append(Comparison("size_ratio", None, (None, None), (None, None), "different"))
        return out
    if sa == 0 or sb == 0 or (a[:, 0] * sa <= 0).any() or (b[:, 0] * sb <= 0).any():
        out.append(Comparison("size_ratio", None, (None, None), (None, None), "inconclusive"))
        return out
    comp = _verdict_of(
        "size_ratio", np.log(a[:, 0] * sa), np.log(b[:, 0] * sb), math.log(size_bound), alpha
    )
    out.append(
        Comparison(
            "size_ratio",
            None if comp.estimate is None else math.exp(comp.estimate),
            tuple(None if v is None else math.exp(v) for v in comp.ci),
            tuple(None if v is None else math.exp(v) for v in comp.equivalence_ci),
            comp.verdict,
        )
    )
    return out


def _verdict_of(name: str, a: np.ndarray, b: np.ndarray, bound: float, alpha: float) -> Comparison:
    estimate = _value(np.nanmean(a) - np.nanmean(b)) if len(a) and len(b) else None
    ci = tuple(_value(v) for v in welch_interval(a, b, 1 - alpha))
    eq = tuple(_value(v) for v in welch_interval(a, b, 1 - 2 * alpha))
    if None in ci or None in eq:
        return Comparison(name, estimate, ci, eq, "inconclusive")
    if -bound < eq[0] and eq[1] < bound:
        verdict = "same"
    elif not ci[0] <= 0 <= ci[1]:
        verdict = "different"
    else:
        verdict = "inconclusive"
    return Comparison(name, estimate, ci, eq, verdict)
