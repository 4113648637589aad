"""Statistics of learnable parameters: per tensor and per whole-network pool, of w and w - w0.

For every (run, epoch) dump and every scope (a tensor, or the pools "all_weights" and
"all_params") we summarise the weights w and their change from initialisation w - w0 with:
moments (mean, population std/var, skew, excess kurtosis), quantiles, norms, a normalised
histogram on a range common to the whole zoo, the spectral norm and stable rank of weight
matrices, and a summary of node strength (the complex-network view of a DNN: a neuron's
summed incoming / outgoing weights). Moments, extremes, norms and histograms of every scope
of several dumps are a handful of numpy reductions over one flat float64 buffer
(`segment_stats`); quantiles take one radix select per scope (`percentiles`: np.percentile's
values, bit for bit). A pool's statistics are combined from its tensors' (`_combine_pool`):
counts, extremes, histograms and quantiles are the pool's own bit for bit, sums and central
moments equal to rounding (1e-12 relative or better). The spectral norm takes one SVD per
weight matrix (Lanczos on the Gram matrix for large ones). No Python loop runs over weights.

Two more kinds of rows and columns: target "scaled" (the pool of weight matrices, each divided
by the std of its epoch-0 values: w / std(w0), which removes the fan-in scale of Kaiming
initialisation) and, for every weight matrix of target w, WeightWatcher's heavy-tail fit of
its eigenvalue spectrum with validity flags and a shuffled null (`weightzoo.spectral`,
SPECTRAL_COLUMNS), its epoch-0 value (`alpha_init`) and, on the pool rows, the mean α of the
dump's valid fits (`n_valid_fits` of them).
"""

from __future__ import annotations

import math
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.lib._function_base_impl as _nb  # numpy's percentile steps: pinned numpy
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse.linalg

from weightzoo import spectral
from weightzoo.tables import DEFAULT_SETTING, PARAM_POOL, RUN_KEYS, WEIGHT_POOL

QUANTILES = (0, 1, 5, 25, 50, 75, 95, 99, 100)  # percent

MOMENT_COLUMNS = ("count", "mean", "std", "var", "skew", "kurtosis", "min", "max")
QUANTILE_COLUMNS = tuple(f"q{q}" for q in QUANTILES)
NORM_COLUMNS = ("l1", "l2", "max_abs")
MATRIX_COLUMNS = ("spectral_norm", "stable_rank")
STRENGTHS = ("in_signed", "in_abs", "out_signed", "out_abs")
STRENGTH_COLUMNS = tuple(f"{s}_{a}" for s in STRENGTHS for a in ("mean", "std", "min", "max"))
# The scalar statistic columns of `stats_table`, in order; `hist` follows them.
STAT_COLUMNS = MOMENT_COLUMNS + QUANTILE_COLUMNS + NORM_COLUMNS + MATRIX_COLUMNS + STRENGTH_COLUMNS
SCOPE_COLUMNS = ("scope", "scope_type", "kind", "layer", "target")

# The statistics of a weight distribution that figures can name, and what claims can test:
# those and α, the mean heavy-tail exponent of a network's valid fits (config/schema.yaml
# lists the same, as $defs/statistic; a test ties them).
SUMMARY_STATISTICS = MOMENT_COLUMNS[1:] + QUANTILE_COLUMNS[1:-1] + NORM_COLUMNS
CLAIM_STATISTICS = (*SUMMARY_STATISTICS, "alpha")
# What the heavy-tail fits add: the fit and its null per weight matrix (target w), the epoch-0
# alpha, and per row the number of valid fits it summarises (1 or 0 for a matrix; the pool's
# count; pools carry the mean alpha of those fits and fit_status "ok" or "no_valid_fit").
SPECTRAL_COLUMNS = (*spectral.SPECTRAL_COLUMNS, "alpha_init", "n_valid_fits")
TARGETS = ("w", "delta", "scaled")  # weights, w - w0, w / std(w0) (pool of weights only)

FIRST_LAYER = {"mlp": ("hidden.0.weight", "head.weight"), "vit": ("patch_embed.proj.weight",)}

# Small dumps are summarised several at a time (dumps of up to BATCH_VALUES weights together),
# their scopes in segment_stats calls of about CHUNK_VALUES values, so the per-call overhead
# is shared while the float64 working arrays stay a few tens of MB.
BATCH_VALUES = 1 << 18
CHUNK_VALUES = 1 << 20
# What `_segment_raw` adds for a pool's statistics to be combined from its tensors'.
_POOL_SUMS = ("sum", "sum_sq", "central_2", "central_3", "central_4", "radix")
# Up to this many segments in one call, per-segment steps loop over views of the segments
# instead of repeating a per-segment value into an array the size of the values.
_LOOP_SEGMENTS = 64


# The keys of every dump's rows: the run and the epoch.
DUMP_SCHEMA: dict[str, pl.DataType] = {
    **dict.fromkeys(RUN_KEYS[:-1], pl.String),
    "seed": pl.Int32,
    "epoch": pl.Int32,
}
# The long format of the first-layer strength maps (`strength_maps`).
MAP_SCHEMA: dict[str, pl.DataType] = {
    **DUMP_SCHEMA,
    "tensor": pl.String,
    "channel": pl.Int32,
    "row": pl.Int32,
    "col": pl.Int32,
    "value": pl.Float64,
}


@dataclass(frozen=True)
class HistConfig:
    """The histograms of every dump (config: analysis.hist): `bins` bins on one fixed `range`
    for w and w - w0, on `scaled_range` for w / std(w0), so that runs compare."""

    range: tuple[float, float]
    bins: int
    scaled_range: tuple[float, float]

    @classmethod
    def from_config(cls, hist: Mapping[str, Any]) -> HistConfig:
        lo, hi = hist["range"]
        scaled_lo, scaled_hi = hist["scaled_range"]
        return cls((lo, hi), hist["bins"], (scaled_lo, scaled_hi))


# --------------------------------------------------------------------------------------------
# Statistics of one flat array / one tensor
# --------------------------------------------------------------------------------------------


def _check_hist(hist_range: tuple[float, float], bins: int) -> tuple[float, float]:
    lo, hi = (float(v) for v in hist_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"hist_range must be two finite numbers lo < hi, got {hist_range!r}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    return lo, hi


def segment_stats(
    x: np.ndarray, starts: np.ndarray, hist_range: tuple[float, float], bins: int
) -> dict[str, np.ndarray]:
    """`tensor_stats` of many segments of one flat float64 array at once.

    Segment i is x[starts[i]:starts[i + 1]] (the last runs to the end; starts ascending).
    Moments, extremes, norms and histograms are a handful of numpy reductions over the whole
    array (ufunc.reduceat, one bincount), whatever the number of segments; only the
    quantiles take a selection per segment (`percentiles`). Returns a column (length
    n_segments) per statistic, and "hist" as (n_segments, bins) float32.
    """
    cols = _segment_raw(x, starts, hist_range, bins)
    for internal in _POOL_SUMS:
        cols.pop(internal)
    counts = cols.pop("hist_counts")
    with np.errstate(all="ignore"):
        cols["hist"] = (counts / cols["count"][:, None]).astype(np.float32)
    return cols


def _segment_raw(
    x: np.ndarray,
    starts: np.ndarray,
    hist_range: tuple[float, float],
    bins: int,
    radix_of: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`segment_stats` with the histograms as counts ("hist_counts", int64), and the sums a
    pool's statistics are combined from (`_combine_pool`): "sum", "sum_sq" (Σx²),
    "central_2" .. "central_4" (Σ(x - mean)^k) and, for the segments `radix_of` names (an
    object array: None for none, True to count here, or `_radix_counts` already taken),
    "radix": `_radix_counts` of their values."""
    lo, hi = _check_hist(hist_range, bins)
    x = np.asarray(x, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    counts = np.diff(np.append(starts, x.size))
    k = len(starts)
    empty = counts == 0
    # reduceat of an empty segment returns the next value: reduce over non-empty ones only
    at = starts[~empty]
    n = counts[~empty].astype(np.float64)

    def reduce(ufunc, values):
        out = np.full(k, np.nan)
        if at.size:
            out[~empty] = ufunc.reduceat(values, at)
        return out

    total = reduce(np.add, x)
    mean = total / np.where(empty, 1, counts)
    # two work arrays the size of x carry every elementwise step (no temporary per step);
    # each step is the same elementwise operation as ever, so every sum has the same bits
    d = _centred(x, starts, counts, mean)
    d2 = np.multiply(d, d)
    central = [reduce(np.add, d2)]
    central.append(reduce(np.add, np.multiply(d2, d, out=d)))
    central.append(reduce(np.add, np.multiply(d2, d2, out=d)))
    m2, m3, m4 = (c[~empty] / n for c in central)
    var = np.full(k, np.nan)
    var[~empty] = m2
    skew, kurtosis = np.full(k, np.nan), np.full(k, np.nan)
    with np.errstate(all="ignore"):
        # the biased estimators of scipy.stats.skew / kurtosis(fisher=True, bias=True), and
        # like them NaN for a constant segment (m2 at the level of rounding noise)
        constant = m2 <= (np.finfo(np.float64).resolution * mean[~empty]) ** 2
        skew[~empty] = np.where(constant, np.nan, m3 / m2**1.5)
        kurtosis[~empty] = np.where(constant, np.nan, m4 / m2**2 - 3.0)
    absx = np.abs(x, out=d)
    out = {
        "count": counts,
        "mean": mean,
        "std": np.sqrt(var),
        "var": var,
        "skew": skew,
        "kurtosis": kurtosis,
        "min": reduce(np.minimum, x),
        "max": reduce(np.maximum, x),
    }
    quantiles, radix = _segment_quantiles(x, starts, counts, radix_of)
    out.update(zip(QUANTILE_COLUMNS, quantiles.T, strict=True))
    out["l1"] = reduce(np.add, absx)
    max_abs = reduce(np.maximum, absx)
    out["sum"] = total
    out["sum_sq"] = reduce(np.add, np.multiply(x, x, out=d2))
    out["l2"] = np.sqrt(out["sum_sq"])
    out["max_abs"] = max_abs
    out.update({f"central_{j}": c for j, c in enumerate(central, start=2)})
    out["radix"] = radix
    del d, d2, absx
    out["hist_counts"] = _segment_counts(x, counts, lo, hi, bins)
    return out


def _centred(x: np.ndarray, starts: np.ndarray, counts: np.ndarray, mean: np.ndarray):
    """x minus its segment's mean, into a new array."""
    d = np.empty_like(x)
    filled = counts > 0
    if len(starts) <= _LOOP_SEGMENTS:  # segment by segment: no array of repeated means
        for i in np.flatnonzero(filled):
            span = slice(starts[i], starts[i] + counts[i])
            np.subtract(x[span], mean[i], out=d[span])
    else:
        np.subtract(x, np.repeat(mean[filled], counts[filled]), out=d)
    return d


def _segment_quantiles(x, starts, counts, radix_of) -> tuple[np.ndarray, np.ndarray]:
    """`percentiles` of each non-empty segment (NaN rows for empty ones), and the radix counts
    of the segments `radix_of` names (see `_segment_raw`)."""
    quantiles = np.full((len(starts), len(QUANTILES)), np.nan)
    radix = np.full(len(starts), None, dtype=object)
    for i in np.flatnonzero(counts):
        segment = x[starts[i] : starts[i] + counts[i]]
        if radix_of is not None and radix_of[i] is not None:
            radix[i] = radix_of[i] if isinstance(radix_of[i], tuple) else _radix_counts(segment)
            quantiles[i] = percentiles(segment, radix[i])
        else:
            quantiles[i] = percentiles(segment)
    return quantiles, radix


# From this size on, `percentiles` finds its order statistics by the values' top 16 bits as
# float32 (one bincount and a small partition) instead of partitioning the whole array.
RADIX_MIN = 1 << 14
_RADIX_BITS = 1 << 16  # sign, exponent and 7 bits of mantissa of a float32
_HALF = _RADIX_BITS >> 1  # keys from here on are negative values
_Q = np.true_divide(np.asarray(QUANTILES), 100)  # what np.percentile makes of QUANTILES
_LINEAR = _nb._QuantileMethods["linear"]


def percentiles(x: np.ndarray, radix: tuple | None = None) -> np.ndarray:
    """np.percentile(x, QUANTILES) of a 1-D float64 array, the same values bit for bit.

    numpy partitions the whole array around the 18 ranks the 9 quantiles interpolate between.
    Here, from RADIX_MIN values on, those order statistics come from a radix select: the
    values rounded to float32 (rounding never reverses an order) have their top 16 bits
    (sign, exponent and 7 bits of mantissa) counted in 2^16 buckets, whose order is the
    values' order; each rank falls in one bucket, and only the few float64 values of those
    buckets are partitioned. numpy's own index, gamma and lerp functions then interpolate, so
    the result is np.percentile's. Arrays with a NaN (whose percentiles are NaN) and small
    arrays go to np.percentile itself. `radix`: `_radix_counts(x)`, if already counted.
    """
    if x.size < RADIX_MIN or x.dtype != np.float64 or not _radix_ok(x):
        return np.percentile(x, QUANTILES)
    key, raw = radix if radix is not None else _radix_counts(x)
    if raw is None:  # a NaN
        return np.percentile(x, QUANTILES)
    return _radix_select([(x, key)], raw, x.size)


def pool_percentiles(parts: list[np.ndarray], radixes: list[tuple | None]) -> np.ndarray:
    """np.percentile(np.concatenate(parts), QUANTILES), the same values bit for bit, without
    the concatenation: a pool's buckets are its parts' `_radix_counts` summed (those given,
    the others counted here), and only the values of the buckets holding a rank are taken
    from each part. Small pools and pools with a NaN go to np.percentile."""
    n = sum(part.size for part in parts)
    if n < RADIX_MIN or not all(_radix_ok(part) for part in parts):
        return np.percentile(np.concatenate(parts, dtype=np.float64), QUANTILES)
    radixes = [r or _radix_counts(p) for p, r in zip(parts, radixes, strict=True)]
    if any(raw is None for _, raw in radixes):
        return np.percentile(np.concatenate(parts, dtype=np.float64), QUANTILES)
    raw = np.sum([raw for _, raw in radixes], axis=0)
    return _radix_select([(p, key) for p, (key, _) in zip(parts, radixes, strict=True)], raw, n)


def _radix_ok(x: np.ndarray) -> bool:
    return x.dtype in (np.float64, np.float32) and x.ndim == 1 and sys.byteorder == "little"


def _radix_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(key, raw): the top 16 bits of x's values rounded to float32 (float32 values as they
    are), and their bucket counts; raw is None when x holds a NaN."""
    if x.dtype == np.float32:  # the values as stored: their own bits
        key = x.view(np.uint16)[1::2]
    else:
        with np.errstate(over="ignore"):  # beyond float32's range: inf, still in order
            key = x.astype(np.float32).view(np.uint16)[1::2]
    # the high 16 bits of each float32 (little-endian: every second uint16)
    raw = np.bincount(key, minlength=_RADIX_BITS)
    exponent_all_ones = 0x7F80  # inf and NaN: keys 0x7F80.. and 0xFF80..
    special = raw[exponent_all_ones:_HALF].any() or raw[_HALF + exponent_all_ones :].any()
    if special and np.isnan(x).any():
        return key, None
    return key, raw


def _radix_select(parts: list[tuple[np.ndarray, np.ndarray]], raw: np.ndarray, n: int):
    """np.percentile's quantiles of the n values of `parts` ((values, key) each), whose
    bucket counts are `raw`."""
    # value order: negatives by falling key, then non-negatives by rising key
    negative = raw[_HALF:][::-1]
    cum = np.concatenate([np.cumsum(negative), np.cumsum(raw[:_HALF]) + negative.sum()])
    virtual = np.asanyarray(_LINEAR["get_virtual_index"](n, _Q))
    previous, following = _nb._get_indexes(np.empty(0), virtual, n)
    indexes = np.unique(np.concatenate([previous, following]))  # numpy says -1 for the last
    ranks = np.where(indexes < 0, indexes + n, indexes)
    at = np.searchsorted(cum, ranks, side="right")  # the bucket (in value order) of each rank
    keys = np.where(at < _HALF, _RADIX_BITS - 1 - at, at - _HALF)
    wanted = np.zeros(_RADIX_BITS, dtype=bool)
    wanted[keys] = True
    near, near_key = [], []
    for values, key in parts:  # one pass each: the values of the buckets holding a rank
        where = np.flatnonzero(wanted[key])
        near.append(values[where].astype(np.float64, copy=False))
        near_key.append(key[where])
    near, near_key = np.concatenate(near), np.concatenate(near_key)
    values = np.empty(ranks.size)
    for bucket in np.unique(at):
        members = near[near_key == keys[at == bucket][0]]
        first = cum[bucket] - members.size  # rank of the bucket's smallest value
        local = ranks[at == bucket] - first
        values[at == bucket] = np.partition(members, local)[local]
    lookup = dict(zip(indexes.tolist(), values, strict=True))
    below = np.array([lookup[r] for r in previous.tolist()])
    above = np.array([lookup[r] for r in following.tolist()])
    gamma = _nb._get_gamma(virtual, previous, _LINEAR)
    return np.asarray(_nb._lerp(below, above, gamma))


# A value whose position (x - lo) / width lies this close to a whole number may have been put
# one bin off by rounding; only those are checked against the edges (the error is ~1e-13).
_EDGE_SLACK = 1e-9


def _segment_counts(x: np.ndarray, counts: np.ndarray, lo: float, hi: float, bins: int):
    """Histogram counts (segments x bins, int64): np.histogram's bin on [lo, hi] of each value
    (its floor((x - lo) / width), then, like np.histogram, one bin down or up where rounding
    put it across an edge), counted per segment; values outside [lo, hi] go to the edge bins,
    so no mass is lost."""
    edges = np.linspace(lo, hi, bins + 1)
    t = np.subtract(x, lo)
    t *= bins / (hi - lo)
    whole = np.floor(t)
    t -= whole  # the position within its bin, in [0, 1) (NaN for NaN)
    near = np.flatnonzero(~((t >= _EDGE_SLACK) & (t <= 1 - _EDGE_SLACK)))
    del t
    with np.errstate(invalid="ignore"):
        np.clip(whole, 0, bins - 1, out=whole)
        idx = whole.astype(np.intp)
    del whole
    if near.size:  # np.histogram's correction, on the few values near an edge
        v, i = x[near], idx[near]
        i -= (v < edges[i]) & (i > 0)
        i += (v >= edges[i + 1]) & (i < bins - 1)
        idx[near] = i
    if len(counts) > _LOOP_SEGMENTS:
        idx += np.repeat(np.arange(len(counts)) * bins, counts)
    elif len(counts) > 1:
        for i, (start, count) in enumerate(zip(np.cumsum(counts) - counts, counts, strict=True)):
            idx[start : start + count] += i * bins
    return np.bincount(idx, minlength=len(counts) * bins).reshape(-1, bins)


def tensor_stats(values: np.ndarray, hist_range: tuple[float, float], bins: int) -> dict:
    """Moments, quantiles, norms and a histogram of a flat array (computed in float64).

    std/var are population (ddof=0); skew and kurtosis (excess, Fisher) are the biased
    estimators of scipy.stats, NaN for a constant array. `hist` (float32, length `bins`) is
    np.histogram on the fixed `hist_range` with values outside the range counted in the edge
    bins, so no mass is lost, normalised to sum to 1. An empty array gives NaN everywhere but
    `count` (0). One segment of `segment_stats`.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    cols = segment_stats(x, np.zeros(1, np.int64), hist_range, bins)
    hist = cols.pop("hist")
    out = {key: (int(v[0]) if key == "count" else float(v[0])) for key, v in cols.items()}
    out["hist"] = hist[0]
    return out


# From this smaller side on, the spectral norm comes from a Lanczos solver (the largest
# singular value only: 4-7x faster on 256x784 to 1000x1000) instead of all singular values.
LANCZOS_MIN_DIM = 200
LANCZOS_TOL = 1e-8  # relative accuracy of that value: float32 weights carry about 1e-7


def matrix_stats(w: np.ndarray) -> dict:
    """Spectral norm and stable rank ||W||_F^2 / ||W||_2^2 of w reshaped to (shape[0], -1).

    Conv kernels (out, in, kh, kw) become (out, in*kh*kw). Small matrices get all their
    singular values (LAPACK); large ones only the largest: the square root of the largest
    eigenvalue of W^T W (or W W^T, the smaller), from scipy's ARPACK `eigsh` with a fixed
    start vector (deterministic; relative accuracy LANCZOS_TOL), falling back to LAPACK if it
    does not converge. Tensors with ndim < 2 give NaN; so does the stable rank of an
    all-zero matrix (0/0, e.g. the change w - w0 at epoch 0).
    """
    w = np.asarray(w)
    if w.ndim < 2 or w.size == 0:
        return dict.fromkeys(MATRIX_COLUMNS, math.nan)
    m = w.reshape(w.shape[0], -1).astype(np.float64, copy=False)
    frobenius2 = float(np.dot(m.ravel(), m.ravel()))
    if frobenius2 == 0:  # all zeros (w - w0 at epoch 0): no decomposition needed
        return {"spectral_norm": 0.0, "stable_rank": math.nan}
    spectral = None
    if min(m.shape) >= LANCZOS_MIN_DIM:
        # the Gram matrix of the smaller side, once (one BLAS product), so that each Lanczos
        # step is one product with it instead of one with W and one with W^T
        gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
        try:
            v0 = np.full(len(gram), 1 / math.sqrt(len(gram)))
            top = scipy.sparse.linalg.eigsh(
                gram, k=1, v0=v0, return_eigenvectors=False, tol=LANCZOS_TOL
            )
            spectral = math.sqrt(max(float(top[0]), 0.0))
        except scipy.sparse.linalg.ArpackNoConvergence:
            spectral = None
    if spectral is None:
        spectral = float(np.linalg.svd(m, compute_uv=False)[0])
    with np.errstate(all="ignore"):
        stable_rank = frobenius2 / spectral**2 if spectral > 0 else math.nan
    return {"spectral_norm": spectral, "stable_rank": stable_rank}


def node_strength(
    name: str, kind: str, shape: tuple[int, ...], values: np.ndarray
) -> dict[str, np.ndarray] | None:
    """Node strengths of a weight tensor, signed and absolute; None for non-weights.

    For a Linear W (out, in): the in-strength of output neuron o is sum_i W[o, i], the
    out-strength of input neuron i is sum_o W[o, i]. For a conv kernel (out_ch, in_ch, kh, kw)
    the nodes are channels: in-strength sums over (in_ch, kh, kw), out-strength over
    (out_ch, kh, kw). Returns in_signed, in_abs (length out) and out_signed, out_abs (length in).
    `name` is only used in error messages.
    """
    shape = tuple(int(s) for s in shape)
    if kind != "weight" or len(shape) < 2:
        return None
    x = np.asarray(values, dtype=np.float64)
    if x.size != math.prod(shape):
        raise ValueError(f"tensor {name!r}: {x.size} values do not fill shape {shape}")
    w = x.reshape(shape[0], shape[1], -1)  # Linear: (out, in, 1); conv: (out, in, kh*kw)
    a = np.abs(w)
    return {
        "in_signed": w.sum(axis=(1, 2)),
        "in_abs": a.sum(axis=(1, 2)),
        "out_signed": w.sum(axis=(0, 2)),
        "out_abs": a.sum(axis=(0, 2)),
    }


def strength_summary(strengths: dict[str, np.ndarray] | None) -> dict:
    """Mean, population std, min and max of each strength array (`in_abs_mean`, ...).

    None (a tensor that is not a weight) gives NaN for every key.
    """
    if strengths is None:
        return dict.fromkeys(STRENGTH_COLUMNS, math.nan)
    out = {}
    for key in STRENGTHS:
        s = np.asarray(strengths[key], dtype=np.float64)
        out[f"{key}_mean"] = float(s.mean())
        out[f"{key}_std"] = float(s.std())
        out[f"{key}_min"] = float(s.min())
        out[f"{key}_max"] = float(s.max())
    return out


def first_layer_strength_map(
    name: str, shape: tuple[int, ...], values: np.ndarray, in_shape: tuple[int, int, int]
) -> np.ndarray | None:
    """The first layer's absolute out-strength per input pixel, shaped like the input.

    - MLP first Linear (`hidden.0.weight`, or `head.weight` at depth 0), (width, C*H*W):
      sum_o |W[o, i]| per pixel i, reshaped to (C, H, W) (the model flattens x channel-first).
    - ViT `patch_embed.proj.weight`, (embed, C*p*p): the same per patch pixel, reshaped to
      (C, p, p), the channel-first order PatchEmbedding flattens each tile in. It is one map
      for every tile (the projection is shared), so it is not tiled over the image.
    - A conv kernel (ndim 4) has no per-pixel weights: None.
    The caller chooses the first tensor; this only checks that its input size fits in_shape.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2:
        return None
    c, h, w = (int(s) for s in in_shape)
    n_in = shape[1]
    if n_in == c * h * w:
        image = (c, h, w)
    else:
        p = math.isqrt(n_in // c) if n_in % c == 0 else 0
        if p < 1 or c * p * p != n_in:
            raise ValueError(
                f"tensor {name!r} of shape {shape}: {n_in} inputs are neither C*H*W nor C*p*p "
                f"for input shape {tuple(in_shape)}"
            )
        image = (c, p, p)
    strengths = node_strength(name, "weight", shape, values)
    return strengths["out_abs"].reshape(image)


# --------------------------------------------------------------------------------------------
# Scopes of one dump: every tensor, and the whole-network pools
# --------------------------------------------------------------------------------------------


class Scope(NamedTuple):
    """A flat array to summarise: one tensor (scope_type "tensor") or a pool ("pool")."""

    scope: str
    scope_type: str
    kind: str
    layer: str
    shape: tuple[int, ...]
    values: np.ndarray


def _flat_values(rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The values of every row as one flat float32 array (zero-copy where Arrow allows) and
    the offsets (length rows + 1, starting at 0) of each row's slice in it."""
    values = rows.column("values").combine_chunks()
    if values.null_count:
        raise ValueError("weights table has null `values` rows")
    flat = values.flatten().to_numpy(zero_copy_only=False)
    offsets = values.offsets.to_numpy().astype(np.int64)
    return flat, offsets - offsets[0]


def network_scopes(
    rows: pa.Table,
    flat: np.ndarray | None = None,
    own: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Scope]:
    """The scopes of one (run, epoch) dump: a Scope per tensor, then "all_weights" (every
    kind == "weight" tensor, concatenated) and "all_params" (every tensor but buffers).

    Tensor scopes and "all_params" are views of one flat buffer (the Arrow list column
    flattened once); only "all_weights" is a copy. `flat`, if given, replaces the rows' own
    values with an array of the same layout (e.g. w - w0). `own`: `_flat_values(rows)`, if
    already taken.
    """
    own, offsets = own if own is not None else _flat_values(rows)
    if flat is None:
        flat = own
    elif flat.shape != own.shape:
        raise ValueError(f"flat has {flat.size} values, the rows hold {own.size}")
    names = rows.column("tensor").to_pylist()
    kinds = rows.column("kind").to_pylist()
    layers = rows.column("layer").to_pylist()
    shapes = rows.column("shape").to_pylist()

    scopes = []
    for i, name in enumerate(names):
        shape = tuple(shapes[i])
        part = flat[offsets[i] : offsets[i + 1]]
        if part.size != math.prod(shape):
            raise ValueError(f"tensor {name!r}: {part.size} values do not fill shape {shape}")
        scopes.append(Scope(name, "tensor", kinds[i], layers[i] or "", shape, part))

    weights = [s.values for s in scopes if s.kind == "weight"]
    pooled = np.concatenate(weights) if weights else np.zeros(0, flat.dtype)
    scopes.append(Scope(WEIGHT_POOL, "pool", "pool", "", (pooled.size,), pooled))
    # every learnt tensor: an imported network's running statistics ("buffer") are no parameter
    learnt = [s.values for s in scopes[:-1] if s.kind != "buffer"]
    if len(learnt) < len(names):
        flat = np.concatenate(learnt) if learnt else np.zeros(0, flat.dtype)
    scopes.append(Scope(PARAM_POOL, "pool", "pool", "", (flat.size,), flat))
    return scopes


def _aligned_init(rows: pa.Table, init_rows: pa.Table) -> np.ndarray:
    """The init values laid out like `rows` (matched by tensor name), shapes checked."""
    init_flat, init_offsets = _flat_values(init_rows)
    names = rows.column("tensor").to_pylist()
    init_names = init_rows.column("tensor").to_pylist()
    shapes = rows.column("shape").to_pylist()
    init_shapes = init_rows.column("shape").to_pylist()
    if names == init_names and shapes == init_shapes:
        return init_flat  # the usual case: same tensors in the same order
    where = {n: i for i, n in enumerate(init_names)}
    parts = []
    for name, shape in zip(names, shapes, strict=True):
        j = where.get(name)
        if j is None:
            raise ValueError(f"tensor {name!r} has no epoch-0 row to compute w - w0 from")
        if init_shapes[j] != shape:
            raise ValueError(f"tensor {name!r}: shape {shape} but {init_shapes[j]} at epoch 0")
        parts.append(init_flat[init_offsets[j] : init_offsets[j + 1]])
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _dump_segments(rows: pa.Table, init_rows: pa.Table | None) -> tuple[list, list, list]:
    """The scopes of one dump for every target, laid out for `segment_stats`.

    Returns (meta, parts, matrices): meta is one (scope, scope_type, kind, layer, target) per
    segment; parts the arrays to concatenate, one per segment; matrices (segment index,
    name, shape) for each weight tensor, whose matrix and strength statistics come apart.
    """
    targets: list[tuple[str, np.ndarray | None]] = [("w", None)]
    scaled = None
    own = _flat_values(rows)
    if init_rows is not None:
        w, offsets = own
        w0 = _aligned_init(rows, init_rows)
        targets.append(("delta", w.astype(np.float64) - w0))
        scaled = _scaled_weights(rows, w, w0, offsets)
    meta, parts, matrices = [], [], []
    for target, flat in targets:
        for scope in network_scopes(rows, flat, own):
            if scope.scope_type == "tensor" and scope.kind == "weight":
                matrices.append((len(meta), scope.scope, scope.shape))
            meta.append((scope.scope, scope.scope_type, scope.kind, scope.layer, target))
            parts.append(scope.values)
    if scaled is not None:
        meta.append((WEIGHT_POOL, "pool", "pool", "", "scaled"))
        parts.append(scaled)
    return meta, parts, matrices


def _scaled_weights(rows: pa.Table, w: np.ndarray, w0: np.ndarray, offsets: np.ndarray):
    """The weight matrices pooled, each divided by the population std of its epoch-0 values."""
    kinds = rows.column("kind").to_pylist()
    picked = [i for i, kind in enumerate(kinds) if kind == "weight" and offsets[i + 1] > offsets[i]]
    if not picked:
        return np.zeros(0, np.float64)
    out = np.empty(int(np.diff(offsets)[picked].sum()), np.float64)
    at = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in picked:  # each matrix in float64 divided by its std0, into its slice of out
            end = at + offsets[i + 1] - offsets[i]
            std0 = w0[offsets[i] : offsets[i + 1]].std()
            np.divide(w[offsets[i] : offsets[i + 1]], std0, out=out[at:end], dtype=np.float64)
            at = end
    return out


def _segment_columns(
    parts: list[np.ndarray], hist_range, bins: int, radix_of: np.ndarray
) -> dict[str, np.ndarray]:
    """`_segment_raw` of consecutive parts, concatenated about CHUNK_VALUES values at a time
    (a larger part alone, uncopied when it is float64 already); radix counts of the parts
    `radix_of` marks."""
    sizes = np.array([part.size for part in parts], dtype=np.int64)
    chunks, cols, filled = [], [], CHUNK_VALUES
    for i, size in enumerate(sizes):
        if filled + size > CHUNK_VALUES:
            chunks.append([])
            filled = 0
        chunks[-1].append(i)
        filled += size
    for chunk in chunks:
        if len(chunk) == 1:
            x = np.ascontiguousarray(parts[chunk[0]], dtype=np.float64)
        else:
            x = np.concatenate([parts[i].astype(np.float64, copy=False) for i in chunk])
        starts = np.concatenate([[0], np.cumsum(sizes[chunk])[:-1]]).astype(np.int64)
        # float32 parts (weights as stored) give their radix keys without a conversion
        radix = np.full(len(chunk), None, dtype=object)
        for j, i in enumerate(chunk):
            if radix_of[i]:
                radix[j] = _radix_counts(parts[i]) if parts[i].dtype == np.float32 else True
        cols.append(_segment_raw(x, starts, hist_range, bins, radix))
        del x
    return {c: np.concatenate([part[c] for part in cols]) for c in cols[0]}


def _combine_pool(cols: dict[str, np.ndarray], pool: int, of: list[int], parts: list) -> None:
    """Fill row `pool` of `_segment_raw`'s columns from its member rows `of`: counts, sums,
    extremes and histogram counts add up; the central moments about the pool's mean come from
    each member's about its own (Σ(x - m)^k expanded around m = m_j + δ_j); the quantiles from
    the members' values (`pool_percentiles`, bit for bit np.percentile's of the pool)."""
    of = [j for j in of if cols["count"][j] > 0]
    n_j = cols["count"][of].astype(np.float64)
    n = n_j.sum()
    cols["count"][pool] = int(n)
    cols["hist_counts"][pool] = cols["hist_counts"][of].sum(axis=0)
    cols["radix"][pool] = None
    if not of:
        for v in cols.values():
            if v.dtype == np.float64:
                v[pool] = np.nan
        return
    total = cols["sum"][of].sum()
    mean = total / n
    delta = cols["mean"][of] - mean
    c2, c3, c4 = (cols[f"central_{k}"][of] for k in (2, 3, 4))
    central = (
        (c2 + n_j * delta**2).sum(),
        (c3 + 3 * delta * c2 + n_j * delta**3).sum(),
        (c4 + 4 * delta * c3 + 6 * delta**2 * c2 + n_j * delta**4).sum(),
    )
    m2, m3, m4 = (c / n for c in central)
    with np.errstate(all="ignore"):
        constant = m2 <= (np.finfo(np.float64).resolution * mean) ** 2
        skew = np.nan if constant else m3 / m2**1.5
        kurtosis = np.nan if constant else m4 / m2**2 - 3.0
    sum_sq = cols["sum_sq"][of].sum()
    found = {
        "sum": total,
        "mean": mean,
        "var": m2,
        "std": math.sqrt(m2),
        "skew": skew,
        "kurtosis": kurtosis,
        "min": cols["min"][of].min(),
        "max": cols["max"][of].max(),
        "l1": cols["l1"][of].sum(),
        "sum_sq": sum_sq,
        "l2": math.sqrt(sum_sq),
        "max_abs": cols["max_abs"][of].max(),
        **{f"central_{k}": c for k, c in enumerate(central, start=2)},
    }
    found.update(
        zip(
            QUANTILE_COLUMNS,
            pool_percentiles([parts[j] for j in of], [cols["radix"][j] for j in of]),
            strict=True,
        )
    )
    for c, v in found.items():
        cols[c][pool] = v


def _pool_members(meta: list[tuple]) -> dict[int, list[int]]:
    """The tensor segments whose values make up each pool segment of one dump's `meta`, for
    targets w and delta (the scaled pool has no tensor rows): its histogram is theirs summed."""
    members: dict[int, list[int]] = {}
    for i, (scope, scope_type, _, _, target) in enumerate(meta):
        if scope_type != "pool" or target == "scaled":
            continue
        tensors = [j for j, m in enumerate(meta) if m[1] == "tensor" and m[4] == target]
        if scope == WEIGHT_POOL:
            members[i] = [j for j in tensors if meta[j][2] == "weight"]
        else:  # PARAM_POOL: every tensor but buffers
            members[i] = [j for j in tensors if meta[j][2] != "buffer"]
    return members


def _spectral_fits(
    matrices, parts, ids, meta, fits: spectral.SpectralConfig
) -> dict[str, np.ndarray]:
    """The heavy-tail fit of every weight matrix of target w; nulls seeded by (run seed,
    epoch, tensor name), so a dump's fits have the same bits in every run."""
    n = len(meta)
    out = {c: np.full(n, np.nan) for c in spectral.SPECTRAL_COLUMNS}
    out["fit_status"] = np.full(n, None, dtype=object)
    out["heavy_tailed"] = np.full(n, None, dtype=object)
    mats = [(i, name, shape) for i, name, shape in matrices if meta[i][4] == "w"]
    if not mats:
        return out
    seeds = [[ids[i]["seed"], ids[i]["epoch"], zlib.crc32(name.encode())] for i, name, _ in mats]
    table = spectral.spectral_table(
        [parts[i].reshape(shape) for i, _, shape in mats], seeds, **fits.keywords()
    )
    rows = [i for i, _, _ in mats]
    for c in spectral.SPECTRAL_COLUMNS:
        out[c][rows] = table[c]
    for c in ("fit_status", "heavy_tailed"):  # None where there is no fit, not NaN
        out[c] = out[c].tolist()
    return out


def _dumps_frame(
    items: list[tuple[dict, pa.Table, pa.Table | None]],
    hist: HistConfig,
    fits: spectral.SpectralConfig | None,
) -> pl.DataFrame:
    """Statistics of several dumps, (ids, rows, init_rows) each, in a few `segment_stats`
    calls (one per histogram range) and one batched heavy-tail fit."""
    meta, parts, matrices, ids = [], [], [], []
    members: dict[int, list[int]] = {}
    for dump_ids, rows, init_rows in items:
        m, p, mats = _dump_segments(rows, init_rows)
        matrices += [(len(meta) + i, name, shape) for i, name, shape in mats]
        for pool, of in _pool_members(m).items():
            members[len(meta) + pool] = [len(meta) + j for j in of]
        meta += m
        parts += p
        ids += [dump_ids] * len(m)
    scaled = np.array([m[4] == "scaled" for m in meta])
    # a pool of w or delta is its tensors' values: its statistics are combined from theirs
    derived = np.zeros(len(meta), dtype=bool)
    derived[list(members)] = True
    large = np.array([part.size >= RADIX_MIN for part in parts])
    radix_of = np.zeros(len(meta), dtype=bool)
    for pool, of in members.items():
        radix_of[of] = large[pool]
    radix_of &= large
    cols: dict[str, np.ndarray] = {}
    for pick, value_range in ((~scaled & ~derived, hist.range), (scaled, hist.scaled_range)):
        if not pick.any():
            continue
        found = _segment_columns(
            [parts[i] for i in np.flatnonzero(pick)], value_range, hist.bins, radix_of[pick]
        )
        for c, v in found.items():
            if c not in cols:
                cols[c] = np.zeros((len(meta), *v.shape[1:]), v.dtype)
            cols[c][pick] = v
    for pool, of in members.items():
        _combine_pool(cols, pool, of, parts)
    for internal in _POOL_SUMS:
        cols.pop(internal)
    binned = cols.pop("hist_counts")
    with np.errstate(all="ignore"):
        counts = (binned / cols["count"][:, None]).astype(np.float32)
    extra = {c: np.full(len(meta), np.nan) for c in MATRIX_COLUMNS + STRENGTH_COLUMNS}
    for i, name, shape in matrices:
        values = parts[i]
        found = matrix_stats(values.reshape(shape))
        found.update(strength_summary(node_strength(name, "weight", shape, values)))
        for c, v in found.items():
            extra[c][i] = v
    if fits is not None:
        extra.update(_spectral_fits(matrices, parts, ids, meta, fits))
    schema = stats_schema()
    data: dict = {c: [d[c] for d in ids] for c in (*RUN_KEYS, "epoch")}
    data.update({c: [m[j] for m in meta] for j, c in enumerate(SCOPE_COLUMNS)})
    data.update(cols)
    data.update(extra)
    frame = pl.DataFrame(data, schema={c: t for c, t in schema.items() if c in data})
    offsets = np.arange(0, counts.size + 1, hist.bins, dtype=np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(counts.ravel()))
    return frame.with_columns(pl.from_arrow(lists).cast(pl.List(pl.Float32)).alias("hist"))


def dump_stats(rows: pa.Table, init_rows: pa.Table | None, hist: HistConfig) -> list[dict]:
    """Every statistic of one (run, epoch) dump: a dict per (scope, target).

    target "w" summarises the weights, "delta" the change w - w0 from `init_rows` (the run's
    epoch-0 rows, matched by tensor name; no "delta" dicts when it is None). At epoch 0 the
    delta rows are kept (all zeros): every epoch has the same rows. Keys: scope, scope_type,
    kind, layer, target, then STAT_COLUMNS (matrix and strength statistics only for weight
    tensors, NaN otherwise), then hist (float32 array of length `hist.bins`).
    """
    ids = {"dataset": "", "family": "", "arch": "", "setting": "", "seed": 0, "epoch": 0}
    frame = _dumps_frame([(ids, rows, init_rows)], hist, None).drop(list(ids))
    rows = frame.iter_rows(named=True)
    return [{**row, "hist": np.asarray(row["hist"], np.float32)} for row in rows]


# --------------------------------------------------------------------------------------------
# Whole weights files: one (seed, epoch) dump at a time
# --------------------------------------------------------------------------------------------


def stats_schema() -> dict[str, pl.DataType]:
    """Column names and types of `stats_table`."""
    schema = dict(DUMP_SCHEMA)
    schema.update(dict.fromkeys(SCOPE_COLUMNS, pl.String))
    schema["count"] = pl.Int64
    schema.update(dict.fromkeys(STAT_COLUMNS[1:], pl.Float64))
    schema.update(dict.fromkeys(SPECTRAL_COLUMNS, pl.Float64))
    schema.update(fit_status=pl.String, heavy_tailed=pl.Boolean, n_valid_fits=pl.Int32)
    schema["hist"] = pl.List(pl.Float32)
    return schema


def _spectral_summary(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows without a fit get nulls; each pool row of w the mean alpha of its dump's valid
    fits (and how many); every row its epoch-0 alpha."""
    dump = [*RUN_KEYS, "epoch", "target"]
    ok = (pl.col("fit_status") == "ok") & (pl.col("scope_type") == "tensor")
    pool = (pl.col("scope_type") == "pool") & (pl.col("target") == "w")
    n_valid = ok.sum().over(dump).cast(pl.Int32)
    numbers = [c for c in spectral.SPECTRAL_COLUMNS if c not in ("fit_status", "heavy_tailed")]
    fitted = pl.col("fit_status").is_not_null()
    return (
        frame.with_columns(pl.when(fitted).then(pl.col(numbers)))
        .with_columns(
            alpha=pl.when(pool)
            .then(pl.col("alpha").filter(ok).mean().over(dump))
            .otherwise("alpha"),
            fit_status=pl.when(pool)
            .then(pl.when(n_valid > 0).then(pl.lit("ok")).otherwise(pl.lit("no_valid_fit")))
            .otherwise("fit_status"),
            n_valid_fits=pl.when(pool).then(n_valid).when(fitted).then(ok.cast(pl.Int32)),
        )
        .with_columns(
            alpha_init=pl.col("alpha")
            .filter(pl.col("epoch") == 0)
            .first()
            .over(*RUN_KEYS, "scope", "target")
        )
    )


def _dumps(weights: pa.Table) -> Iterator[tuple[int, int, pa.Table]]:
    """(seed, epoch, rows) for every dump in the table, sorted by seed then epoch."""
    if weights.num_rows == 0:
        return
    seeds = weights.column("seed").to_numpy()
    epochs = weights.column("epoch").to_numpy()
    for seed, epoch in np.unique(np.stack([seeds, epochs], axis=1), axis=0):
        mask = (seeds == seed) & (epochs == epoch)
        yield int(seed), int(epoch), weights.filter(pa.array(mask))


def _ids(rows: pa.Table) -> dict:
    """The cell of a dump's rows (a weights file from before settings: the default one)."""
    ids = {k: rows.column(k)[0].as_py() for k in ("dataset", "family", "arch")}
    has = "setting" in rows.column_names
    return {**ids, "setting": rows.column("setting")[0].as_py() if has else DEFAULT_SETTING}


def stats_table(
    weights: pa.Table | Iterable[pa.Table],
    hist: HistConfig,
    fits: spectral.SpectralConfig | None = None,
) -> pl.DataFrame:
    """Statistics of every dump in a weights table (several seeds x epochs of one run block).

    `weights` is one table or an iterable of tables (e.g. a file's row groups, see
    `file_stats`), each holding whole dumps. One (seed, epoch) dump is summarised at a
    time, with the seed's epoch-0 rows as w0 (a seed without epoch 0 gets no "delta" and
    "scaled" rows). `fits` turns on the heavy-tail fits; without them their columns are
    null. Columns: `stats_schema()`.
    """
    parts = [weights] if isinstance(weights, pa.Table) else weights
    frames, batch, batched_values = [], [], 0
    init: dict[tuple, pa.Table | None] = {}
    for part in parts:
        for seed, epoch, rows in _dumps(part):
            ids = {**_ids(rows), "seed": seed}
            run = tuple(ids.values())  # a run's dumps come together, epoch 0 first
            if run not in init:
                init.clear()  # keep only the current run's w0 in memory
                init[run] = rows if epoch == 0 else None
            batch.append(({**ids, "epoch": epoch}, rows, init[run]))
            batched_values += int(rows.column("numel").to_numpy().sum())
            if batched_values >= BATCH_VALUES:
                frames.append(_dumps_frame(batch, hist, fits))
                batch, batched_values = [], 0
    if batch:
        frames.append(_dumps_frame(batch, hist, fits))
    if not frames:
        return pl.DataFrame(schema=stats_schema())
    schema = stats_schema()
    frame = pl.concat(frames, how="diagonal_relaxed")
    missing = [pl.lit(None, schema[c]).alias(c) for c in schema if c not in frame.columns]
    return _spectral_summary(frame.with_columns(missing)).select(list(schema))


def file_stats(
    path: str | Path, hist: HistConfig, fits: spectral.SpectralConfig | None = None
) -> pl.DataFrame:
    """`stats_table` of a weights file, streamed a few row groups (dumps) at a time."""
    pf = pq.ParquetFile(path, page_checksum_verification=True)
    return stats_table(_row_group_batches(pf), hist, fits)


# Imported zoos hold many small runs, a file each: their statistics are taken this many
# files at a time, so a few _dumps_frame calls serve them all.
FILES_AT_ONCE = 64


def files_stats(
    paths: Sequence[str | Path],
    hist: HistConfig,
    fits: spectral.SpectralConfig | None = None,
    at_once: int = FILES_AT_ONCE,
) -> Iterator[pl.DataFrame]:
    """`file_stats` of each file, in order, the same frames, computed `at_once` files at a
    time (one `stats_table` over their dumps, split by file). The files hold different runs."""
    for first in range(0, len(paths), at_once):
        group = paths[first : first + at_once]
        runs: list[tuple] = []  # (file index, run keys) of every run met
        frame = stats_table(_chained(group, runs), hist, fits)
        owner = pl.DataFrame(
            runs, schema=["file", "dataset", "arch", "setting", "seed"], orient="row"
        ).unique()
        found = frame.join(
            owner.with_columns(pl.col("seed").cast(pl.Int32)),
            on=["dataset", "arch", "setting", "seed"],
            how="left",
            maintain_order="left",
        )
        by_file = found.partition_by("file", as_dict=True, maintain_order=True)
        for i in range(len(group)):
            yield by_file[i,].drop("file") if (i,) in by_file else frame.clear()


def _chained(paths: Sequence[str | Path], runs: list[tuple]) -> Iterator[pa.Table]:
    """The row groups of several weights files, one after another; each part's runs are
    recorded in `runs` as (file index, dataset, arch, setting, seed)."""
    for i, path in enumerate(paths):
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        for part in _row_group_batches(pf):
            ids = [part[c] for c in ("dataset", "arch")]
            setting = (
                part["setting"]
                if "setting" in part.column_names
                else pa.chunked_array([pa.array([DEFAULT_SETTING] * part.num_rows)])
            )
            keys = pa.table(
                {"dataset": ids[0], "arch": ids[1], "setting": setting, "seed": part["seed"]}
            )
            runs.extend((i, *k) for k in set(zip(*keys.to_pydict().values(), strict=True)))
            yield part


def _row_group_batches(pf: pq.ParquetFile) -> Iterator[pa.Table]:
    """A file's row groups (whole dumps), read a few at a time up to ~4 * BATCH_VALUES bytes."""
    batch, size = [], 0
    for i in range(pf.num_row_groups):
        batch.append(i)
        size += pf.metadata.row_group(i).total_byte_size
        if size >= 4 * BATCH_VALUES:
            yield pf.read_row_groups(batch)
            batch, size = [], 0
    if batch:
        yield pf.read_row_groups(batch)


def file_strength_maps(
    path: str | Path, family: str, in_shape: tuple[int, int, int]
) -> pl.DataFrame:
    """`strength_maps` of a weights file, one row group (one dump) at a time."""
    pf = pq.ParquetFile(path, page_checksum_verification=True)
    if family == "cnn" or pf.num_row_groups == 0:  # a conv kernel has no per-pixel weights
        return pl.DataFrame(schema=MAP_SCHEMA)
    return pl.concat(
        [strength_maps(pf.read_row_group(i), family, in_shape) for i in range(pf.num_row_groups)]
    ).sort("seed", "epoch", maintain_order=True)


def strength_maps(weights: pa.Table, family: str, in_shape: tuple[int, int, int]) -> pl.DataFrame:
    """The first layer's absolute out-strength per input pixel, for every (seed, epoch).

    Long format: dataset, family, arch, seed, epoch, tensor, channel, row, col, value. The
    first layer is `hidden.0.weight` for an MLP (`head.weight` when it has no hidden layer)
    and `patch_embed.proj.weight` for a ViT (a (C, p, p) map); a CNN has no per-pixel
    weights, so its frame is empty. See `first_layer_strength_map`.
    """
    if family == "cnn" or weights.num_rows == 0:
        return pl.DataFrame(schema=MAP_SCHEMA)
    if family not in FIRST_LAYER:
        raise ValueError(f"unknown model family {family!r}; choose one of mlp, cnn, vit")
    names = set(weights.column("tensor").unique().to_pylist())
    first = next((n for n in FIRST_LAYER[family] if n in names), None)
    if first is None:
        raise ValueError(f"no first-layer tensor {' or '.join(FIRST_LAYER[family])} in weights")
    rows = weights.filter(pc.equal(weights.column("tensor"), first))
    flat, offsets = _flat_values(rows)
    shapes = rows.column("shape").to_pylist()
    seeds = rows.column("seed").to_numpy()
    epochs = rows.column("epoch").to_numpy()

    frames = []
    for i in np.lexsort((epochs, seeds)):
        image = first_layer_strength_map(
            first, shapes[i], flat[offsets[i] : offsets[i + 1]], in_shape
        )
        channel, row, col = np.indices(image.shape, dtype=np.int32).reshape(3, -1)
        ids = _ids(rows.slice(int(i), 1))
        frame = pl.DataFrame(
            {"channel": channel, "row": row, "col": col, "value": image.ravel()},
            schema={k: MAP_SCHEMA[k] for k in ("channel", "row", "col", "value")},
        )
        frames.append(
            frame.with_columns(
                *(pl.lit(v, MAP_SCHEMA[k]).alias(k) for k, v in ids.items()),
                pl.lit(int(seeds[i]), pl.Int32).alias("seed"),
                pl.lit(int(epochs[i]), pl.Int32).alias("epoch"),
                pl.lit(first, pl.String).alias("tensor"),
            ).select(list(MAP_SCHEMA))
        )
    return pl.concat(frames) if frames else pl.DataFrame(schema=MAP_SCHEMA)
