"""(n) Dump precision: the statistics of bfloat16 and float16 dumps against float32, on a
finished run's own weights.

`dump.dtype: bfloat16 | float16` rounds every stored value to that precision (about half the
bytes on disk). Here every weights file of a finished run (`bench_analysis.source`: the run
in $WEIGHTZOO_BENCH_RESULTS, else results/) is read dump by dump, its values rounded as the
training job would round them (`dumps.host_values`), and the statistics job's table
(`stats.stats_table`, heavy-tail fits on) computed for each precision. Each statistic is
compared row by row with the float32 table: the median and the largest relative difference
|x16 − x32| / |x32| over the rows where the float32 value is finite and non-zero (for the
location statistics, mean and quantiles, relative to the row's float32 std instead: a mean
near 0 would make any difference look large), and for the heavy-tail fits how often
`fit_status` and `heavy_tailed` stay the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import bench_analysis
import common
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml

from weightzoo import dumps, stats
from weightzoo.spectral import SpectralConfig

DTYPES = ("bfloat16", "float16")
COMPARED = ("mean", "std", "q5", "q50", "q95", "l2", "max_abs", "spectral_norm", "alpha")
QUICK_FILES = 3


def _rounded(batches: Iterator[pa.Table], dtype: str) -> Iterator[pa.Table]:
    """The batches with every value rounded to `dtype` and back, as a dump of that dtype."""
    for batch in batches:
        values = batch.column("values").combine_chunks()
        flat = torch.from_numpy(values.flatten().to_numpy(zero_copy_only=False).copy())
        rounded = flat.to(getattr(torch, dtype)).to(torch.float32).numpy()
        column = pa.ListArray.from_arrays(values.offsets, pa.array(rounded, pa.float32()))
        yield batch.set_column(batch.schema.get_field_index("values"), "values", column)


def _table(path, hist, fits, dtype: str | None) -> pl.DataFrame:
    batches = stats._row_group_batches(pq.ParquetFile(path))
    if dtype is not None:
        batches = _rounded(batches, dtype)
    return stats.stats_table(batches, hist, fits)


LOCATION = ("mean", "q5", "q50", "q95")  # compared on the scale of the row's float32 std


def _differences(ref: pl.DataFrame, other: pl.DataFrame) -> dict[str, tuple[float, float]]:
    out = {}
    std = ref["std"].to_numpy().astype(float)
    for c in COMPARED:
        a, b = ref[c].to_numpy().astype(float), other[c].to_numpy().astype(float)
        scale = std if c in LOCATION else np.abs(a)
        ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(scale) & (scale > 0)
        rel = np.abs(b[ok] - a[ok]) / scale[ok]
        out[c] = (float(np.median(rel)), float(rel.max())) if rel.size else (np.nan, np.nan)
    return out


def _same(ref: pl.DataFrame, other: pl.DataFrame, column: str) -> str:
    fitted = ref[column].is_not_null() & other[column].is_not_null()
    same = (ref[column] == other[column]).fill_null(False) & fitted
    n = int(fitted.sum())
    return f"{int(same.sum()):,} of {n:,}" if n else "–"


def section_precision(opts: common.Options) -> str:
    """Markdown section (n): bfloat16 / float16 dumps' statistics against float32."""
    head = "## (n) Dump precision: bfloat16 and float16 against float32"
    source = bench_analysis.source(opts.workdir)
    files = sorted((source / "weights").rglob("*.parquet"))
    if not files:
        return f"{head}\n\nSkipped: no weights under {source} (run the workflow first).\n"
    if opts.quick:
        files = files[:QUICK_FILES]
    config = yaml.safe_load((common.ROOT / "config" / "config.yaml").read_text())
    hist = stats.HistConfig.from_config(config["analysis"]["hist"])
    fits = SpectralConfig.from_config(config["analysis"]["spectral"])
    started = time.perf_counter()
    ref = pl.concat([_table(f, hist, fits, None) for f in files], how="vertical_relaxed")
    rows, same = [], []
    for dtype in DTYPES:
        other = pl.concat([_table(f, hist, fits, dtype) for f in files], how="vertical_relaxed")
        diffs = _differences(ref, other)
        rows.append([dtype, *(f"{m:.1e} / {x:.1e}" for m, x in diffs.values())])
        same.append([dtype, _same(ref, other, "fit_status"), _same(ref, other, "heavy_tailed")])
    seconds = time.perf_counter() - started
    runs = pl.read_parquet(source / "tables" / "runs.parquet")
    datasets = ", ".join(sorted(runs["dataset"].unique().to_list()))
    return "\n".join(
        [
            head,
            "",
            f"The weights of the finished run in `{source.name}/` ({datasets}: {len(files)} "
            f"weights files, {ref.height:,} statistics rows, {runs.height:,} networks), "
            "each value rounded to the dump dtype as the training job rounds it, then the "
            "statistics job's table recomputed (heavy-tail fits on). Difference to float32 "
            "relative to the float32 value (mean and quantiles: to the row's float32 std), "
            "median / largest over the rows. "
            f"{seconds:.0f} s for the three tables.",
            "",
            common.table(["dtype", *COMPARED], rows),
            "",
            "Heavy-tail fits whose outcome stays the same as with float32 dumps (rows with a fit "
            "in both):",
            "",
            common.table(["dtype", "fit_status", "heavy_tailed"], same),
            "",
            f"What the dtypes keep: {dumps.DUMP_DTYPES[1]} 8 significant bits (relative "
            "rounding error up to 2⁻⁹ ≈ 2.0e-3), float16 11 bits (2⁻¹² ≈ 2.4e-4) and no "
            "magnitude below 6e-8.",
        ]
    )
