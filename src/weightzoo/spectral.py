"""Heavy-tailed spectra of weight matrices: WeightWatcher's power-law metrics, with flags.

WeightWatcher fits a power law to the tail of each weight matrix's eigenvalue spectrum (the
ESD of WᵀW) and reads an exponent 2 ≤ α ≤ 6 as "well trained". On layers of weightzoo's size
that fit is mostly noise: Gaussian matrices without any power law land inside the band. So
every fit here carries a status, and α is read against the same fit on the matrix with its
entries shuffled (a null of the same marginal) before a layer is called heavy-tailed.

The recipe is WeightWatcher 0.7.7's `analyze()` with its defaults (`pl_package="ww"`,
`WWFit.fit_power_law_standard`, `apply_esd`, `apply_norm_metrics`), in numpy:

- ESD: the squared singular values of W in float64, the min(rows, cols) eigenvalues of WᵀW
  that can be non-zero, not divided by N (WeightWatcher's `normalize` is off). W is
  reshaped to (shape[0], -1), so a conv kernel (out, in, kh, kw) is (out, in·kh·kw). With
  `pool_kernel_positions` a conv kernel is WeightWatcher's kh·kw matrices W[:, :, i, j],
  each times √(1/2) (its `conv2d_norm`), their eigenvalues pooled.
- Fit: eigenvalues ≤ 1e-5 are dropped; every remaining eigenvalue but the largest is an xmin
  candidate; each gets the continuous MLE α = 1 + n / Σ ln(λᵢ / xmin) over its tail λ ≥ xmin
  and the KS distance D = max_j |1 − (λ_j / xmin)^(1−α) − j / n| (j = 0 … n−1 over the
  sorted tail: the fitted CDF against the empirical CDF's left limit, WeightWatcher's exact
  definition); the candidate with the smallest D wins (the first on ties). Candidates
  whose tail sum of logs is 0 (all equal eigenvalues) have no finite α and are skipped.
- Norms over every eigenvalue, the dropped ones included: log_norm = log10 Σλ (= log10
  ‖W‖_F²), log_spectral_norm = log10 λ_max, alpha_weighted = α·log10 λ_max, log_alpha_norm =
  log10 Σ λ^α (computed as a log-sum-exp: no overflow).

Where this differs from WeightWatcher: below 20 eigenvalues it switches to a bias-corrected
small-sample fitter with another objective; here the recipe stays the same and such fits are
flagged `too_few_evals` (keep `min_evals` ≥ 20). Its guess of the channel axes of a conv
kernel (spatial dims taken as channels when out + in < kh + kw) is not copied: kernels are
always PyTorch's (out, in, kh, kw). `num_evals` counts the eigenvalues above the cutoff.

Baselines: `alpha_hill` is the same MLE with xmin at the upper median of the n fitted
eigenvalues (the top ⌈n/2⌉ as its tail, no KS search). The null is the same fit on
`null_draws` shuffles of the matrix's entries (same marginal, no structure; seeded: the same
matrix and seed give the same bits; their ESDs from eigvalsh of the smaller Gram matrix,
exact to ~1e-12 rather than to rounding, which a random draw does not need). The nulls are
summarised by the mean, min and max of their α, and a bound: a layer is `heavy_tailed` only
when its own fit is `ok` and α < alpha_null_bound, the one-sided 95 % prediction bound for
one more null draw on the scale log(α − 1), 1 + exp(m − t₀.₉₅,ₖ₋₁ · s · √(1 + 1/k)) with m,
s the mean and sd of log(α_null − 1) over the k finite draws (k ≥ 2). log(α − 1) is the
MLE's variance-stabilising scale (Σ ln(λ/xmin) is Gamma-distributed: sd ≈ 1/√n_tail
whatever α), where the nulls' right skew (one shuffle of 400 eigenvalues can give α = 27)
shrinks.
Against "α below the lowest null by more than the nulls' range", measured on Gaussian,
Student-t (H0: a shuffle is the same distribution) and planted Pareto-tail matrices of 64,
144 and 400 eigenvalues: both fire for 0–7 % of H0 matrices with 3 draws, but the bound
finds a planted α = 2.5 tail in 16/27/60 % of matrices against 12/15/28 %, and with 10
draws in 13/69/98 % where the range rule, whose range grows with the draws, finds none.
Heavy-tailed entries alone (Student-t) do not make a layer heavy-tailed: a shuffle keeps
them, and their α.

Values are never a silent −1: a number that cannot be computed is NaN, with `fit_status`
saying why; one that can be computed but is not to be trusted is kept and flagged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special
from numpy.typing import ArrayLike

EVALS_THRESH = 1e-5  # WeightWatcher's cutoff: eigenvalues at or below it are not fitted
CONV_SCALE = math.sqrt(0.5)  # its conv2d_norm: each kernel-position matrix times √(1/2)
HEAVY_TAIL_LEVEL = 0.95  # one-sided level of alpha_null_bound
STACK_VALUES = 1 << 22  # matrix entries per stacked decomposition, nulls included
FIT_BLOCK = 1 << 20  # values of one block of the KS search (rows × candidates' tails)

STATUSES = ("ok", "too_few_evals", "short_tail", "failed")
FIT_COLUMNS = (
    "alpha",
    "alpha_hill",
    "xmin",
    "n_tail",
    "ks_d",
    "num_evals",
    "alpha_weighted",
    "log_norm",
    "log_spectral_norm",
    "log_alpha_norm",
    "fit_status",
)
NULL_COLUMNS = (
    "alpha_null",
    "alpha_null_low",
    "alpha_null_high",
    "alpha_null_bound",
    "heavy_tailed",
)
SPECTRAL_COLUMNS = FIT_COLUMNS + NULL_COLUMNS
# fit_status is a string of STATUSES, heavy_tailed a bool, the rest float64 (counts
# included, so that a count that cannot be taken is NaN like the other numbers).
SPECTRAL_DTYPES: dict[str, type] = {
    **dict.fromkeys(SPECTRAL_COLUMNS, float),
    "fit_status": str,
    "heavy_tailed": bool,
}
Seed = int | Sequence[int]


@dataclass(frozen=True)
class SpectralConfig:
    """The heavy-tail fit's settings (config: analysis.spectral), `spectral_table`'s keywords.
    Every field is required: the keywords' own defaults are WeightWatcher's, and a test ties
    them to config/config.yaml."""

    min_evals: int  # fewer eigenvalues: fit_status too_few_evals
    min_tail: int  # fewer in the fitted tail: short_tail
    null_draws: int  # shuffles of the matrix per fit (0: no null)
    null_min_evals: int  # nulls only for matrices with at least this many eigenvalues
    pool_kernel_positions: bool  # conv kernels as WeightWatcher's kh*kw (out, in) matrices

    @classmethod
    def from_config(cls, spectral: Mapping[str, Any]) -> SpectralConfig:
        return cls(**spectral)

    def keywords(self) -> dict[str, Any]:
        """`spectral_table`'s keyword arguments."""
        return dataclasses.asdict(self)


def kernel_matrices(w: np.ndarray, pool_kernel_positions: bool = False) -> np.ndarray:
    """The matrices whose singular values make w's ESD, stacked (k, rows, cols), float64.

    One matrix w.reshape(shape[0], -1), or for a conv kernel with `pool_kernel_positions`
    its kh·kw position matrices W[:, :, i, j] · √(1/2), as WeightWatcher takes them.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim < 2:
        raise ValueError(f"a weight matrix or kernel has ndim >= 2; got shape {w.shape}")
    if pool_kernel_positions and w.ndim == 4:
        out, inp, kh, kw = w.shape
        return w.transpose(2, 3, 0, 1).reshape(kh * kw, out, inp) * CONV_SCALE
    return w.reshape(1, w.shape[0], math.prod(w.shape[1:]))


def _esds(stacks: np.ndarray) -> np.ndarray:
    """ESDs of same-shape stacks (..., k, m, n): squared singular values, pooled, ascending."""
    sv = np.linalg.svd(stacks, compute_uv=False)
    evals = np.square(sv).reshape(*stacks.shape[:-3], -1)
    evals.sort(axis=-1)
    return evals


def _null_esds(stacks: np.ndarray) -> np.ndarray:
    """`_esds` of null draws from the smaller Gram matrix (eigvalsh): 1.2-3x cheaper here.

    Its eigenvalues are exact to ~1e-12 relative, not to float rounding as the SVD's: for a
    random draw that makes no difference, so only the matrix's own ESD pays for the SVD.
    """
    t = stacks.swapaxes(-1, -2)
    gram = stacks @ t if stacks.shape[-2] <= stacks.shape[-1] else t @ stacks
    evals = np.maximum(np.linalg.eigvalsh(gram), 0.0).reshape(*stacks.shape[:-3], -1)
    evals.sort(axis=-1)
    return evals


def esd(w: np.ndarray, pool_kernel_positions: bool = False) -> np.ndarray:
    """Eigenvalues of WᵀW ascending, the min(rows, cols) that can be non-zero (see module)."""
    stack = kernel_matrices(w, pool_kernel_positions)
    if stack.size == 0:
        return np.empty(0)
    if not np.isfinite(stack).all():
        raise ValueError(f"matrix of shape {np.shape(w)} has non-finite entries")
    return _esds(stack)


def _tails(n: int, first: int, stop: int) -> tuple[np.ndarray, ...]:
    """Candidates first..stop-1 of N sorted values with their tails laid end to end.

    Returns each element's candidate i and value j (j >= i), each candidate's tail size and
    the offset where its tail starts, and each element's empirical CDF (j - i) / (N - i).
    """
    cand = np.arange(first, stop)
    size = n - cand
    offsets = np.concatenate([[0], np.cumsum(size)[:-1]])
    i = np.repeat(cand, size)
    j = np.arange(size.sum()) - np.repeat(offsets, size) + i
    return i, j, size.astype(np.float64), offsets, (j - i) / np.repeat(size, size)


def _fit_rows(x: np.ndarray) -> dict[str, np.ndarray]:
    """The fit of each row of x (rows, N), every row sorted ascending: one array expression.

    Eigenvalues at or below the cutoff sit at the start of a row, so candidate i has the
    same tail size N − i in every row and only where the valid candidates start differs.
    The tails of all candidates are laid end to end (N(N+1)/2 − 1 values per row) and
    reduced per candidate with `reduceat`, in blocks of at most FIT_BLOCK values.
    """
    rows, n = x.shape
    valid = x > EVALS_THRESH
    num = valid.sum(axis=1)
    start = n - num
    logx = np.log(np.where(valid, x, 1.0))
    alphas = np.full((rows, n), np.nan)  # the last eigenvalue is never a candidate
    ks = np.full((rows, n), np.inf)
    per_cands = max(1, FIT_BLOCK // n)  # a candidate's tail has at most N values
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for c in range(0, n - 1, per_cands):
            cs = slice(c, min(c + per_cands, n - 1))
            i, j, size, offsets, emp = _tails(n, cs.start, cs.stop)
            per_rows = max(1, FIT_BLOCK // len(i))
            for r in range(0, rows, per_rows):
                rs = slice(r, r + per_rows)
                logs = logx[rs][:, j] - logx[rs][:, i]  # ln(λ_j / xmin) over every tail
                s = np.add.reduceat(logs, offsets, axis=1)
                a = 1.0 + size / s  # the continuous MLE of each candidate
                fit = -np.expm1((1.0 - a)[:, i - cs.start] * logs)  # the Pareto CDF
                d = np.maximum.reduceat(np.abs(fit - emp), offsets, axis=1)
                ok = (np.arange(cs.start, cs.stop) >= start[rs, None]) & (s > 0)
                alphas[rs, cs] = np.where(ok, a, np.nan)
                ks[rs, cs] = np.where(ok, d, np.inf)
    r = np.arange(rows)
    best = np.argmin(ks, axis=1)  # the first minimum, as WeightWatcher's np.argmin
    found = np.isfinite(ks[r, best])
    hill = np.minimum(start + num // 2, n - 1)  # the upper median; NaN if not a candidate
    alpha = np.where(found, alphas[r, best], np.nan)
    return {
        "alpha": alpha,
        "alpha_hill": alphas[r, hill],
        "xmin": np.where(found, x[r, best], np.nan),
        "n_tail": np.where(found, n - best, np.nan),
        "ks_d": np.where(found, ks[r, best], np.nan),
        "num_evals": num.astype(np.float64),
        **_norms(x, alpha),
    }


def _norms(x: np.ndarray, alpha: np.ndarray) -> dict[str, np.ndarray]:
    """WeightWatcher's norm metrics of rows of eigenvalues x (all of them, ascending)."""
    positive = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_norm = np.log10(np.where(positive.any(axis=1), x.sum(axis=1), np.nan))
        log_spectral = np.log10(np.where(x[:, -1] > 0, x[:, -1], np.nan))
        terms = np.where(positive, alpha[:, None] * np.log(np.where(positive, x, 1.0)), -np.inf)
        top = terms.max(axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, np.nan)
        log_alpha = (top[:, 0] + np.log(np.exp(terms - top).sum(axis=1))) / math.log(10)
    return {
        "alpha_weighted": alpha * log_spectral,
        "log_norm": log_norm,
        "log_spectral_norm": log_spectral,
        "log_alpha_norm": log_alpha,
    }


def _status(fits: dict[str, np.ndarray], min_evals: int, min_tail: int) -> np.ndarray:
    """fit_status of each row: too_few_evals before failed (no finite α) before short_tail.

    A matrix with fewer eigenvalues than `min_evals` is `too_few_evals` whether or not its fit
    gave a finite α: a width-1 layer's single eigenvalue cannot be fitted at all, and calling
    it `failed` would blame the fit for what the matrix's size decided.
    """
    few = fits["num_evals"] < min_evals
    failed = ~np.isfinite(fits["alpha"])
    short = fits["n_tail"] < min_tail
    labels = ["too_few_evals", "failed", "short_tail"]
    return np.select([few, failed, short], labels, "ok").astype(object)


def _fit_blocks(
    blocks: Sequence[np.ndarray], min_evals: int, min_tail: int
) -> dict[str, np.ndarray]:
    """Fits of the rows of 2-D blocks of sorted ESDs, in order; one `_fit_rows` per length."""
    offsets = np.cumsum([0, *(len(b) for b in blocks)])
    out = {c: np.full(offsets[-1], np.nan) for c in FIT_COLUMNS[:-1]}
    by_length: dict[int, list[int]] = {}
    for i, b in enumerate(blocks):
        by_length.setdefault(b.shape[1], []).append(i)
    for length, members in by_length.items():
        where = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in members])
        if length == 0:
            out["num_evals"][where] = 0.0
            continue
        fits = _fit_rows(np.concatenate([blocks[i] for i in members]))
        for c, v in fits.items():
            out[c][where] = v
    out["fit_status"] = _status(out, min_evals, min_tail)
    return out


def _row(columns: dict[str, np.ndarray], i: int = 0) -> dict:
    """Row i of a column dict as plain Python values."""
    return {c: v[i].item() if isinstance(v[i], np.generic) else v[i] for c, v in columns.items()}


def power_law_fits(
    esds: Sequence[np.ndarray], min_evals: int = 50, min_tail: int = 10
) -> dict[str, np.ndarray]:
    """`fit_power_law` of many ESDs at once: FIT_COLUMNS as arrays, one value per ESD."""
    blocks = []
    for esd_values in esds:
        e = np.sort(np.asarray(esd_values, dtype=np.float64).ravel())
        blocks.append(e[None] if np.isfinite(e).all() else np.empty((1, 0)))
    out = _fit_blocks(blocks, min_evals, min_tail)
    bad = np.array([b.shape[1] == 0 and np.size(e) > 0 for b, e in zip(blocks, esds, strict=True)])
    out["num_evals"][bad] = np.nan  # non-finite eigenvalues: nothing can be counted
    return out


def fit_power_law(evals: np.ndarray, min_evals: int = 50, min_tail: int = 10) -> dict:
    """WeightWatcher's default power-law fit of one ESD (any order), with its fit_status."""
    return _row(power_law_fits([evals], min_evals, min_tail))


def _shuffled(stack: np.ndarray, draws: int, seed: Seed) -> np.ndarray:
    """`draws` copies of stack with all its entries permuted, (draws, *stack.shape), seeded."""
    rng = np.random.default_rng(seed)
    flat = np.broadcast_to(stack.ravel(), (draws, stack.size))
    return rng.permuted(flat, axis=1).reshape(draws, *stack.shape)


def _null_summary(alphas: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, min, max and the prediction bound of the finite null alphas of (rows, draws)."""
    finite = np.isfinite(alphas)
    k = finite.sum(axis=1)
    logs = np.log(np.where(finite, alphas, 2.0) - 1.0)  # log(α − 1); 0 where not finite
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, alphas, 0.0).sum(axis=1) / k
        m = np.where(finite, logs, 0.0).sum(axis=1) / k
        s = np.sqrt(np.where(finite, (logs - m[:, None]) ** 2, 0.0).sum(axis=1) / (k - 1))
        # Student's t quantile (scipy.stats.t.ppf; scipy.special's is a far lighter import)
        q = scipy.special.stdtrit(np.maximum(k - 1, 1), HEAVY_TAIL_LEVEL) * np.sqrt(1 + 1 / k)
        bound = np.where(k > 1, 1.0 + np.exp(m - q * s), np.nan)
    low = np.min(alphas, axis=1, where=finite, initial=np.inf)
    high = np.max(alphas, axis=1, where=finite, initial=-np.inf)
    return {
        "alpha_null": np.where(k > 0, mean, np.nan),
        "alpha_null_low": np.where(k > 0, low, np.nan),
        "alpha_null_high": np.where(k > 0, high, np.nan),
        "alpha_null_bound": bound,
    }


def heavy_tailed(
    alpha: ArrayLike, fit_status: ArrayLike, alpha_null_bound: ArrayLike
) -> np.ndarray:
    """The rule: an `ok` fit with α below its nulls' prediction bound (see the module).

    Arrays or scalars; a NaN α or bound gives False.
    """
    alpha, bound = (
        np.asarray(alpha, dtype=np.float64),
        np.asarray(alpha_null_bound, dtype=np.float64),
    )
    with np.errstate(invalid="ignore"):
        return (np.asarray(fit_status) == "ok") & (alpha < bound)


def null_fits(
    w: np.ndarray,
    draws: int = 3,
    seed: Seed = 0,
    *,
    min_evals: int = 50,
    min_tail: int = 10,
    pool_kernel_positions: bool = False,
) -> dict:
    """The fit on `draws` shuffles of w's entries (same marginal, no structure), seeded.

    Returns `alphas` and `fit_status` per draw and their summary: alpha_null (the mean of
    the finite alphas), alpha_null_low and alpha_null_high (their min and max) and
    alpha_null_bound (the prediction bound of `heavy_tailed`, NaN below 2 finite draws).
    """
    stack = kernel_matrices(w, pool_kernel_positions)
    if draws < 1 or stack.size == 0 or not np.isfinite(stack).all():
        fits = {"alpha": np.full(max(draws, 0), np.nan), "fit_status": ["failed"] * draws}
    else:
        fits = _fit_blocks([_null_esds(_shuffled(stack, draws, seed))], min_evals, min_tail)
    summary = _row(_null_summary(fits["alpha"][None]))
    return {"alphas": fits["alpha"], "fit_status": list(fits["fit_status"]), **summary}


def spectral_table(
    ws: Sequence[np.ndarray],
    seeds: Sequence[Seed],
    *,
    min_evals: int = 50,
    min_tail: int = 10,
    null_draws: int = 3,
    null_min_evals: int = 0,
    pool_kernel_positions: bool = False,
) -> dict[str, np.ndarray]:
    """`spectral_stats` of many matrices: SPECTRAL_COLUMNS as arrays, one value per matrix.

    Matrices of one shape share one stacked SVD (their nulls one stacked eigvalsh, both in
    parts of at most STACK_VALUES entries), ESDs of one length one fit; row i equals
    `spectral_stats(ws[i], seed=seeds[i], ...)` bit for bit.
    """
    if len(seeds) != len(ws):
        raise ValueError(f"{len(ws)} matrices but {len(seeds)} seeds: give one seed each")
    if null_draws < 0:
        raise ValueError(f"null_draws is a number of shuffles >= 0; got {null_draws}")
    draws = int(null_draws)
    stacks = [kernel_matrices(w, pool_kernel_positions) for w in ws]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(stacks):
        if s.size and np.isfinite(s).all():
            by_shape.setdefault(s.shape, []).append(i)
    parts = []  # same-shape matrices, at most STACK_VALUES entries with their nulls
    for shape, group in by_shape.items():
        per = max(1, STACK_VALUES // ((1 + draws) * math.prod(shape)))
        parts += [group[i : i + per] for i in range(0, len(group), per)]
    members, drawn, own_blocks, null_blocks = [], [], [], []
    for group in parts:
        own = _esds(np.stack([stacks[i] for i in group]))
        counts = (own > EVALS_THRESH).sum(axis=1)
        nulled = [i for i, c in zip(group, counts, strict=True) if draws and c >= null_min_evals]
        if nulled:
            nulls = np.stack([_shuffled(stacks[i], draws, seeds[i]) for i in nulled])
            null_blocks.append(_null_esds(nulls).reshape(len(nulled) * draws, -1))
        members += group
        drawn += nulled
        own_blocks.append(own)
    fits = _fit_blocks(own_blocks + null_blocks, min_evals, min_tail)
    out = {c: np.full(len(ws), np.nan) for c in SPECTRAL_COLUMNS}
    out["fit_status"] = np.full(len(ws), "failed", dtype=object)
    for c in FIT_COLUMNS:
        out[c][members] = fits[c][: len(members)]
    empty = [i for i, s in enumerate(stacks) if s.size == 0]
    out["num_evals"][empty] = 0.0
    out["fit_status"][empty] = "too_few_evals"  # no eigenvalue at all: the matrix's size
    null_alphas = np.full((len(ws), draws), np.nan)
    null_alphas[drawn] = fits["alpha"][len(members) :].reshape(len(drawn), draws)
    out.update(_null_summary(null_alphas))
    out["heavy_tailed"] = heavy_tailed(out["alpha"], out["fit_status"], out["alpha_null_bound"])
    return out


def spectral_stats(
    w: np.ndarray,
    *,
    min_evals: int = 50,
    min_tail: int = 10,
    null_draws: int = 3,
    null_min_evals: int = 0,
    seed: Seed = 0,
    pool_kernel_positions: bool = False,
) -> dict:
    """Every SPECTRAL_COLUMNS value of one weight matrix or kernel, with its null and flag.

    The nulls are `null_draws` shuffles of w's entries (see `null_fits`), drawn only when
    w's ESD has at least `null_min_evals` eigenvalues above the cutoff (0: always).
    """
    return _row(
        spectral_table(
            [w],
            [seed],
            min_evals=min_evals,
            min_tail=min_tail,
            null_draws=null_draws,
            null_min_evals=null_min_evals,
            pool_kernel_positions=pool_kernel_positions,
        )
    )
