"""Permutations and bootstraps that move whole groups (architecture cells) together.

Seeds of one architecture share its depth, width and initial scale, so they are not
independent samples: every resampling here works on integer group codes (0..G-1, e.g. one
per architecture cell), optionally within strata (e.g. dataset x family), and returns index
arrays, so one draw serves every statistic computed on it. Everything is vectorised over
resamples: a (resamples, n) array of indices, never a Python loop over draws. At tens of
thousands of cells such an array of 9,999 permutations is GBs, so the `*_chunks` generators
hand it out a block of rows at a time (CHUNK_BYTES each), the same rows bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

# One block of (resamples, n) float64 keys: 9,999 permutations of 30,000 cells are 2.4 GB
# as one array (and as much again for their argsort), 64 MiB in blocks of 279 rows.
CHUNK_BYTES = 64 * 2**20


def codes(*keys: Sequence) -> np.ndarray:
    """Integer codes 0..G-1 of the distinct key tuples, in sorted key order."""
    if not keys:
        raise ValueError("codes needs at least one key column")
    arrays = [np.asarray(k) for k in keys]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("key columns differ in length")
    inverse = np.zeros(n, dtype=np.int64)
    for a in arrays:  # combine column by column: code = code * (distinct values) + value code
        values, inv = np.unique(a, return_inverse=True)
        inverse = inverse * len(values) + inv.ravel()
    return np.unique(inverse, return_inverse=True)[1].ravel().astype(np.int64)


def _strata(n: int, strata: Sequence[int] | None) -> np.ndarray:
    if strata is None:
        return np.zeros(n, dtype=np.int64)
    out = np.asarray(strata, dtype=np.int64)
    if out.shape != (n,):
        raise ValueError(f"strata must have one code per element ({n}), got shape {out.shape}")
    return out


def chunk_rows(n: int) -> int:
    """Rows of a (rows, n) float64 block that fit in CHUNK_BYTES (at least 1)."""
    return max(1, CHUNK_BYTES // (8 * max(n, 1)))


def _blocks(n_resamples: int, rows: int) -> Iterator[int]:
    """The row counts of consecutive blocks of at most `rows` rows."""
    for start in range(0, n_resamples, rows):
        yield min(rows, n_resamples - start)


def permutation_chunks(
    n: int,
    n_resamples: int,
    rng: np.random.Generator,
    strata: Sequence[int] | None = None,
    rows: int | None = None,
) -> Iterator[np.ndarray]:
    """`permutation_indices` a block of at most `rows` rows at a time (chunk_rows(n) by
    default), bit for bit the same rows: Generator.random((a, n)) then ((b, n)) draws the
    same numbers as ((a + b, n)). Lazy: consume every block before drawing anything else
    from `rng`, or the later draws change."""
    s = _strata(n, strata)
    base = np.argsort(s, kind="stable")  # positions grouped by stratum
    key = s[base][None, :]
    for m in _blocks(n_resamples, rows or chunk_rows(n)):
        if strata is None:  # one stratum: key 0, base the identity, the sort is the answer
            yield np.argsort(rng.random((m, n)), axis=1)
            continue
        # sorting stratum + a uniform key in [0, 1) shuffles within each stratum block only
        order = np.argsort(key + rng.random((m, n)), axis=1)
        out = np.empty((m, n), dtype=np.int64)
        out[:, base] = base[order]
        yield out


def permutation_indices(
    n: int, n_resamples: int, rng: np.random.Generator, strata: Sequence[int] | None = None
) -> np.ndarray:
    """(n_resamples, n) permutations of 0..n-1 that only exchange elements of one stratum.

    Row r maps position i to `out[r, i]`; `values[out]` is each resample's permuted values.
    """
    return _stack(permutation_chunks(n, n_resamples, rng, strata, rows=n_resamples), n)


def bootstrap_chunks(
    n: int,
    n_resamples: int,
    rng: np.random.Generator,
    strata: Sequence[int] | None = None,
    rows: int | None = None,
) -> Iterator[np.ndarray]:
    """`bootstrap_indices` a block of at most `rows` rows at a time, the same rows bit for
    bit (as `permutation_chunks`; lazy in the same way)."""
    s = _strata(n, strata)
    base = np.argsort(s, kind="stable")
    sizes = np.bincount(s)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    block = s[base]  # the stratum of each sorted position
    first, count = starts[block], sizes[block]
    for m in _blocks(n_resamples, rows or chunk_rows(n)):
        picks = first + np.floor(rng.random((m, n)) * count).astype(np.int64)
        out = np.empty((m, n), dtype=np.int64)
        out[:, base] = base[np.minimum(picks, first + count - 1)]
        yield out


def bootstrap_indices(
    n: int, n_resamples: int, rng: np.random.Generator, strata: Sequence[int] | None = None
) -> np.ndarray:
    """(n_resamples, n) draws with replacement of 0..n-1, each stratum keeping its size.

    Position i of a draw holds an element of i's stratum, so a statistic computed per
    stratum sees a resample of that stratum alone.
    """
    return _stack(bootstrap_chunks(n, n_resamples, rng, strata, rows=n_resamples), n)


def _stack(chunks: Iterable[np.ndarray], n: int) -> np.ndarray:
    """The blocks as one (rows, n) array; (0, n) for none."""
    found = list(chunks)
    return np.concatenate(found) if found else np.empty((0, n), dtype=np.int64)


def rechunk(chunks: Iterable[np.ndarray], rows: int) -> Iterator[np.ndarray]:
    """The rows of `chunks`, in order, in blocks of exactly `rows` rows (the last fewer):
    a computation whose result depends on its blocks (a BLAS product) sees the same ones
    however the rows arrive."""
    held: list[np.ndarray] = []
    count = 0
    for chunk in chunks:
        held.append(chunk)
        count += len(chunk)
        if count < rows:
            continue
        joined = np.concatenate(held)
        full = len(joined) - len(joined) % rows
        for start in range(0, full, rows):
            yield joined[start : start + rows]
        held, count = [joined[full:]], len(joined) - full
    if count:
        yield np.concatenate(held)


def stratified_subsample(
    groups: Sequence[int], size: int, rng: np.random.Generator, min_each: int = 0
) -> np.ndarray:
    """Sorted indices of a random subsample of about `size` elements, each group (codes
    0..G-1) keeping its share (largest remainders) and at least min(its size, min_each)."""
    g = np.asarray(groups, dtype=np.int64)
    sizes = np.bincount(g)
    quota = size * sizes / len(g)
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[: size - take.sum()]
    take[extra] += 1
    take = np.minimum(np.maximum(take, np.minimum(sizes, min_each)), sizes)
    picked = [rng.permutation(np.flatnonzero(g == k))[:m] for k, m in enumerate(take)]
    return np.sort(np.concatenate(picked))


def group_rows(groups: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of each group: (rows sorted by group, each group's start, each group's size)."""
    g = np.asarray(groups, dtype=np.int64)
    order = np.argsort(g, kind="stable")
    sizes = np.bincount(g)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return order, starts, sizes


def rows_of(groups: Sequence[int], sampled: Sequence[int]) -> np.ndarray:
    """Row indices of the sampled groups, every row of each, a group drawn k times k times.

    With `sampled` one row of `bootstrap_indices` over the groups, this is a resample of the
    rows (runs) that keeps whole groups (architectures) together.
    """
    order, starts, sizes = group_rows(groups)
    picked = np.asarray(sampled, dtype=np.int64)
    lengths = sizes[picked]
    offsets = np.repeat(starts[picked] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return order[np.arange(lengths.sum()) + offsets]


def pvalue(
    observed: float | np.ndarray, null: np.ndarray, alternative: str = "two-sided"
) -> float | np.ndarray:
    """Permutation p-value (1 + #null at least as extreme) / (1 + #null), along axis 0.

    Never 0: the observed arrangement is one of the possible ones. A relative tolerance of
    1e-12 counts ties (exact arrangements) as extreme.
    """
    null = np.asarray(null, dtype=np.float64)
    obs = np.asarray(observed, dtype=np.float64)
    tol = 1e-12 * np.maximum(1.0, np.abs(obs))
    if alternative == "two-sided":
        extreme = np.abs(null) >= np.abs(obs) - tol
    elif alternative == "less":
        extreme = null <= obs + tol
    elif alternative == "greater":
        extreme = null >= obs - tol
    else:
        raise ValueError(f"alternative must be two-sided, less or greater, got {alternative!r}")
    valid = np.isfinite(null)
    p = (1 + (extreme & valid).sum(axis=0)) / (1 + valid.sum(axis=0))
    return float(p) if np.ndim(p) == 0 else p


def percentile_ci(draws: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap draws (non-finite draws left out); NaN if none."""
    finite = np.asarray(draws, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def quadratic_forms(w: np.ndarray, m: np.ndarray, chunk: int = 256) -> np.ndarray:
    """wᵢᵀ M wᵢ of every row of `w` (one per resample), as matrix products `chunk` rows at a
    time: np.einsum("bi,ij,bj->b") loops without BLAS (45 s for 999 x 3,000 cells, 1 s so)."""
    w = np.asarray(w, dtype=np.float64)
    out = np.empty(len(w))
    for b in range(0, len(w), chunk):
        rows = w[b : b + chunk]
        out[b : b + chunk] = np.einsum("bi,bi->b", rows @ m, rows)
    return out
