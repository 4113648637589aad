"""Statistics of learnable parameters: per tensor and per whole-network pool, of w and w - w0.

For every (run, epoch) dump and every scope (a tensor, or the pools "all_weights" and
"all_params") we summarise the weights w and their change from initialisation w - w0 with:
moments (mean, population std/var, skew, excess kurtosis), quantiles, norms, a normalised
histogram on a range common to the whole zoo, the spectral norm and stable rank of weight
matrices, and a summary of node strength (the complex-network view of a DNN: a neuron's
summed incoming / outgoing weights). Everything is vectorised numpy/scipy on slices of one
flat buffer per dump: the only Python loops run over tensors, never over weights.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.stats

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

WEIGHT_POOL, PARAM_POOL = "all_weights", "all_params"  # the whole-network scopes
POOLS = (WEIGHT_POOL, PARAM_POOL)
FIRST_LAYER = {"mlp": ("hidden.0.weight", "head.weight"), "vit": ("patch_embed.proj.weight",)}


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


def tensor_stats(values: np.ndarray, hist_range: tuple[float, float], bins: int) -> dict:
    """Moments, quantiles, norms and a histogram of a flat array (computed in float64).

    std/var are population (ddof=0); skew and kurtosis (excess, Fisher) are the biased
    estimators of scipy.stats, NaN for a constant array. `hist` (float32, length `bins`) is
    np.histogram on the fixed `hist_range` with values outside the range counted in the edge
    bins, so no mass is lost, normalised to sum to 1. An empty array gives NaN everywhere but
    `count` (0).
    """
    lo, hi = _check_hist(hist_range, bins)
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        out: dict = {"count": 0}
        out.update(dict.fromkeys(MOMENT_COLUMNS[1:] + QUANTILE_COLUMNS + NORM_COLUMNS, math.nan))
        out["hist"] = np.full(bins, np.nan, dtype=np.float32)
        return out

    mean = float(x.mean())
    var = float(np.mean(np.square(x - mean)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # A constant array has no defined skew/kurtosis: scipy returns NaN and warns.
        warnings.simplefilter("ignore", RuntimeWarning)
        skew = float(scipy.stats.skew(x, bias=True))
        kurtosis = float(scipy.stats.kurtosis(x, fisher=True, bias=True))
    quantiles = np.percentile(x, QUANTILES)
    absx = np.abs(x)

    counts = np.histogram(x, bins=bins, range=(lo, hi))[0].astype(np.float64)
    counts[0] += np.count_nonzero(x < lo)  # clip: outliers count in the edge bins
    counts[-1] += np.count_nonzero(x > hi)
    with np.errstate(all="ignore"):
        hist = (counts / counts.sum()).astype(np.float32)

    out = {
        "count": n,
        "mean": mean,
        "std": math.sqrt(var),
        "var": var,
        "skew": skew,
        "kurtosis": kurtosis,
        "min": float(quantiles[0]),
        "max": float(quantiles[-1]),
    }
    out.update(zip(QUANTILE_COLUMNS, (float(q) for q in quantiles), strict=True))
    out["l1"] = float(absx.sum())
    out["l2"] = float(math.sqrt(np.dot(x, x)))
    out["max_abs"] = float(absx.max())
    out["hist"] = hist
    return out


def matrix_stats(w: np.ndarray) -> dict:
    """Spectral norm and stable rank ||W||_F^2 / ||W||_2^2 of w reshaped to (shape[0], -1).

    Conv kernels (out, in, kh, kw) become (out, in*kh*kw). Tensors with ndim < 2 give NaN; so
    does the stable rank of an all-zero matrix (0/0, e.g. the change w - w0 at epoch 0).
    """
    w = np.asarray(w)
    if w.ndim < 2 or w.size == 0:
        return dict.fromkeys(MATRIX_COLUMNS, math.nan)
    m = w.reshape(w.shape[0], -1).astype(np.float64, copy=False)
    s = np.linalg.svd(m, compute_uv=False)
    spectral = float(s[0])
    with np.errstate(all="ignore"):
        stable_rank = float(np.sum(np.square(s)) / spectral**2) if spectral > 0 else math.nan
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


def network_scopes(rows: pa.Table, flat: np.ndarray | None = None) -> list[Scope]:
    """The scopes of one (run, epoch) dump: a Scope per tensor, then "all_weights" (every
    kind == "weight" tensor, concatenated) and "all_params" (every tensor).

    Tensor scopes and "all_params" are views of one flat buffer (the Arrow list column
    flattened once); only "all_weights" is a copy. `flat`, if given, replaces the rows' own
    values with an array of the same layout (e.g. w - w0).
    """
    own, offsets = _flat_values(rows)
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


def _scope_stats(scope: Scope, target: str, hist_range, bins: int) -> dict:
    out = {
        "scope": scope.scope,
        "scope_type": scope.scope_type,
        "kind": scope.kind,
        "layer": scope.layer,
        "target": target,
    }
    stats = tensor_stats(scope.values, hist_range, bins)
    hist = stats.pop("hist")
    out.update(stats)
    is_weight = scope.scope_type == "tensor" and scope.kind == "weight"
    if is_weight:
        out.update(matrix_stats(scope.values.reshape(scope.shape)))
    else:
        out.update(dict.fromkeys(MATRIX_COLUMNS, math.nan))
    strengths = (
        node_strength(scope.scope, scope.kind, scope.shape, scope.values) if is_weight else None
    )
    out.update(strength_summary(strengths))
    out["hist"] = hist
    return out


def dump_stats(
    rows: pa.Table,
    init_rows: pa.Table | None,
    hist_range: tuple[float, float],
    bins: int,
) -> list[dict]:
    """Every statistic of one (run, epoch) dump: a dict per (scope, target).

    target "w" summarises the weights, "delta" the change w - w0 from `init_rows` (the run's
    epoch-0 rows, matched by tensor name; no "delta" dicts when it is None). At epoch 0 the
    delta rows are kept (all zeros): every epoch has the same rows. Keys: scope, scope_type,
    kind, layer, target, then STAT_COLUMNS (matrix and strength statistics only for weight
    tensors, NaN otherwise), then hist (float32 array of length `bins`).
    """
    _check_hist(hist_range, bins)
    targets: list[tuple[str, np.ndarray | None]] = [("w", None)]
    if init_rows is not None:
        w, _ = _flat_values(rows)
        delta = w.astype(np.float64) - _aligned_init(rows, init_rows)
        targets.append(("delta", delta))
    out = []
    for target, flat in targets:
        for scope in network_scopes(rows, flat):
            out.append(_scope_stats(scope, target, hist_range, bins))
    return out


# --------------------------------------------------------------------------------------------
# Whole weights files: one (seed, epoch) dump at a time
# --------------------------------------------------------------------------------------------


def stats_schema() -> dict[str, pl.DataType]:
    """Column names and types of `stats_table`."""
    schema: dict[str, pl.DataType] = {
        "dataset": pl.String,
        "family": pl.String,
        "arch": pl.String,
        "seed": pl.Int32,
        "epoch": pl.Int32,
    }
    schema.update(dict.fromkeys(SCOPE_COLUMNS, pl.String))
    schema["count"] = pl.Int64
    schema.update(dict.fromkeys(STAT_COLUMNS[1:], pl.Float64))
    schema["hist"] = pl.List(pl.Float32)
    return schema


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
    return {k: rows.column(k)[0].as_py() for k in ("dataset", "family", "arch")}


def _frame(records: list[dict], hists: list[np.ndarray], schema: dict) -> pl.DataFrame:
    columns = [c for c in schema if c != "hist"]
    frame = pl.DataFrame(
        {c: [r[c] for r in records] for c in columns},
        schema={c: schema[c] for c in columns},
    )
    flat = np.concatenate(hists) if hists else np.zeros(0, np.float32)
    offsets = np.cumsum([0] + [h.size for h in hists], dtype=np.int32)
    hist = pl.from_arrow(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)))
    return frame.with_columns(hist.cast(pl.List(pl.Float32)).alias("hist"))


def stats_table(
    weights: pa.Table | Iterable[pa.Table], hist_range: tuple[float, float], bins: int
) -> pl.DataFrame:
    """Statistics of every dump in a weights table (several seeds x epochs of one run block).

    `weights` is one table or an iterable of tables (e.g. a file's row groups, see
    `file_stats`), each holding whole dumps. One (seed, epoch) dump is summarised at a
    time, with the seed's epoch-0 rows as w0 (a seed without epoch 0 gets no "delta" rows).
    Columns: dataset, family, arch, seed, epoch, scope, scope_type, kind, layer, target,
    STAT_COLUMNS, hist (List(Float32)).
    """
    _check_hist(hist_range, bins)
    parts = [weights] if isinstance(weights, pa.Table) else weights
    records: list[dict] = []
    hists: list[np.ndarray] = []
    init: dict[int, pa.Table | None] = {}
    for part in parts:
        for seed, epoch, rows in _dumps(part):
            if seed not in init:  # dumps come seed by seed, epoch 0 first
                init.clear()  # keep only the current seed's w0 in memory
                init[seed] = rows if epoch == 0 else None
            ids = {**_ids(rows), "seed": seed, "epoch": epoch}
            for d in dump_stats(rows, init[seed], hist_range, bins):
                hists.append(d.pop("hist"))
                records.append({**ids, **d})
    return _frame(records, hists, stats_schema())


def file_stats(path: str | Path, hist_range: tuple[float, float], bins: int) -> pl.DataFrame:
    """`stats_table` of a weights file, streamed one row group (one dump) at a time."""
    pf = pq.ParquetFile(path)
    return stats_table((pf.read_row_group(i) for i in range(pf.num_row_groups)), hist_range, bins)


def file_strength_maps(
    path: str | Path, family: str, in_shape: tuple[int, int, int]
) -> pl.DataFrame:
    """`strength_maps` of a weights file, reading only the first layer's rows."""
    if family == "cnn":  # a conv kernel has no per-pixel weights
        return pl.DataFrame(schema=MAP_SCHEMA)
    rows = pq.read_table(path, filters=[("tensor", "in", list(FIRST_LAYER[family]))])
    return strength_maps(rows, family, in_shape)


MAP_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String,
    "family": pl.String,
    "arch": pl.String,
    "seed": pl.Int32,
    "epoch": pl.Int32,
    "tensor": pl.String,
    "channel": pl.Int32,
    "row": pl.Int32,
    "col": pl.Int32,
    "value": pl.Float64,
}


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
