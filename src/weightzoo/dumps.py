"""Weight dumps: state_dicts to long Parquet rows and back.

One row per (seed, epoch, tensor) with the tensor's shape and its values flattened in
row-major order, so `rows_to_state_dict` rebuilds the exact state_dict. Rows are built with
Arrow list arrays from one flat buffer per dump: no Python loop over weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from weightzoo import io
from weightzoo.io import atomic_path

if TYPE_CHECKING:  # torch is imported where tensors are made: jobs without them skip it
    import polars as pl
    import torch

WEIGHTS_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("family", pa.string()),
        ("arch", pa.string()),
        ("setting", pa.string()),
        ("seed", pa.int32()),
        ("epoch", pa.int32()),
        ("tensor", pa.string()),
        ("kind", pa.string()),
        ("layer", pa.string()),
        ("numel", pa.int64()),
        ("shape", pa.list_(pa.int32())),
        ("values", pa.list_(pa.float32())),
    ]
)
# Every page carries a CRC32 of its bytes, checked when it is read (tables.verify_parquet):
# a flipped bit is a named error, never a number.
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_page_checksum": True}
# Weight dumps: dictionary encoding only for the label columns (on float values it fails and
# falls back after writing a useless dictionary: files 1.4x the raw floats), byte-stream-split
# floats (zstd then finds the repeated exponent bytes), min/max statistics only where a
# reader filters. Measured on digits MLP/CNN dumps: 0.94-1.0x the raw float32 bytes instead
# of 1.4x, written 2-3x faster (benchmarks/results.md, section c).
WEIGHTS_PARQUET_OPTIONS = {
    **PARQUET_OPTIONS,
    "use_dictionary": ["dataset", "family", "arch", "setting", "tensor", "kind", "layer"],
    "column_encoding": {"values.list.element": "BYTE_STREAM_SPLIT"},
    "write_statistics": ["seed", "epoch", "tensor"],
}


# What a dump may store (config: dump.dtype). The values column stays list<float32>; with
# bfloat16 or float16 each value is rounded to that precision (round to nearest even) before
# it is written, so the low mantissa bits are zero and zstd over the byte-stream-split floats
# drops them: about half the bytes on disk, at the price of exactness (bfloat16 keeps 8
# significant bits, a relative error up to 2^-9; float16 11 bits, 2^-12, and no magnitude
# beyond 65504 or below 6e-8). Stored this way, a dump no longer rebuilds the trained network
# bit for bit: `rows_to_state_dict(rows, dtype)` gives back the stored precision.
DUMP_DTYPES = ("float32", "bfloat16", "float16")


def host_values(
    tensors: list[torch.Tensor], dtype: str = "float32"
) -> tuple[np.ndarray, np.ndarray]:
    """The tensors' values as one flat float32 host array (rounded to `dtype`'s precision),
    and each tensor's size: flattened and concatenated on their device, then copied off it in
    one transfer."""
    import torch

    sizes = np.array([t.numel() for t in tensors], dtype=np.int64)
    if not tensors:
        return np.zeros(0, np.float32), sizes
    flat = torch.cat([t.detach().reshape(-1).to(torch.float32) for t in tensors])
    if dtype != "float32":
        flat = flat.to(_torch_dtype(dtype)).to(torch.float32)
    return flat.cpu().numpy(), sizes


def _torch_dtype(dtype: str):
    import torch

    if dtype not in DUMP_DTYPES:
        raise ValueError(f"unknown dump dtype {dtype!r}; choose one of {DUMP_DTYPES}")
    return getattr(torch, dtype)


def state_dict_table(  # noqa: PLR0913 (the six key columns of a dump's rows, and its precision)
    state: dict[str, torch.Tensor],
    kinds: dict[str, tuple[str, str]],
    *,
    dataset: str,
    family: str,
    arch: str,
    seed: int,
    epoch: int,
    setting: str = "default",
    dtype: str = "float32",
) -> pa.Table:
    """One dump as an Arrow table: a row per tensor, in state_dict order (values rounded to
    `dtype`'s precision, see DUMP_DTYPES)."""
    names = list(state)
    flat, sizes = host_values([state[k] for k in names], dtype)
    shapes = [list(state[k].shape) for k in names]
    keys = {"dataset": dataset, "family": family, "arch": arch, "setting": setting}
    return _dump_table(names, flat, sizes, shapes, kinds, {**keys, "seed": seed, "epoch": epoch})


def arrays_table(
    arrays: dict[str, np.ndarray],
    kinds: dict[str, tuple[str, str]],
    *,
    dataset: str,
    family: str,
    arch: str,
    seed: int,
    epoch: int,
    setting: str = "default",
) -> pa.Table:
    """`state_dict_table` of numpy arrays (an imported checkpoint: no torch needed)."""
    names = list(arrays)
    sizes = np.array([arrays[k].size for k in names], dtype=np.int64)
    parts = [np.asarray(arrays[k], dtype=np.float32).reshape(-1) for k in names]
    flat = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    shapes = [list(arrays[k].shape) for k in names]
    keys = {"dataset": dataset, "family": family, "arch": arch, "setting": setting}
    return _dump_table(names, flat, sizes, shapes, kinds, {**keys, "seed": seed, "epoch": epoch})


def _dump_table(names, flat, sizes, shapes, kinds, keys: dict) -> pa.Table:
    """The rows of one dump from its values as one flat float32 buffer; `keys` holds the
    dump's dataset, family, arch, setting, seed and epoch."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    values = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)).cast(
        pa.list_(pa.float32())
    )
    n = len(names)
    return pa.table(
        {
            **{k: [keys[k]] * n for k in ("dataset", "family", "arch", "setting")},
            "seed": pa.array([keys["seed"]] * n, pa.int32()),
            "epoch": pa.array([keys["epoch"]] * n, pa.int32()),
            "tensor": names,
            "kind": [kinds[k][0] for k in names],
            "layer": [kinds[k][1] for k in names],
            "numel": pa.array(sizes),
            "shape": pa.array(shapes, pa.list_(pa.int32())),
            "values": values,
        },
        schema=WEIGHTS_SCHEMA,
    )


class DumpWriter:
    """Streams dumps into one Parquet file (a row group per dump), renamed into place on close.

    Use as a context manager: on an exception — a full disk while the footer is written
    included — the temporary file is removed and nothing appears at `path`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tmp = io.reserve(self.path)
        try:
            self._writer = pq.ParquetWriter(self.tmp, WEIGHTS_SCHEMA, **WEIGHTS_PARQUET_OPTIONS)
        except BaseException as err:
            self._fail(err)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def __enter__(self) -> DumpWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._writer.close()  # writes the footer
            if exc is None:
                io.commit(self.tmp, self.path)
                return
        except BaseException as err:
            self._fail(exc if exc is not None else err)  # the first error is the one to tell
        self._fail(exc)

    def _fail(self, err: BaseException) -> NoReturn:
        """Remove the temporary file; raise `err`, as DiskFullError if the disk is full."""
        full = io.explain(err, self.tmp)
        io.discard(self.tmp)
        if full is not err:
            raise full from err
        raise err


class DumpSink:
    """The `on_dump` callback of training: each dump of a block of seeds becomes one Arrow
    table per seed (`state_dict_table`), handed to a store with `add_dumps(epoch, tables)`
    (a job's resume state keeps them until they are written)."""

    def __init__(
        self,
        store,
        kinds: dict[str, tuple[str, str]],
        *,
        dataset: str,
        family: str,
        arch: str,
        setting: str = "default",
        dtype: str = "float32",
    ) -> None:
        self.store, self.kinds, self.dtype = store, kinds, dtype
        self.tags = {"dataset": dataset, "family": family, "arch": arch, "setting": setting}

    def __call__(self, epoch: int, states: dict[int, dict[str, torch.Tensor]]) -> None:
        import torch

        # the whole block's dump leaves the device in one transfer (rounded to the stored
        # precision there); tables from host views, already rounded
        weights = [w for state in states.values() for w in state.values()]
        flat, sizes = host_values(weights, self.dtype)
        views = iter(np.split(flat, np.cumsum(sizes)[:-1]))
        tables = []
        for seed, state in states.items():
            host = {name: torch.from_numpy(next(views)).view(w.shape) for name, w in state.items()}
            tables.append(state_dict_table(host, self.kinds, seed=seed, epoch=epoch, **self.tags))
        self.store.add_dumps(epoch, tables)


# The columns that tell one dump from another (of the rows a filter may have left together).
DUMP_KEYS = ("dataset", "family", "arch", "setting", "seed", "epoch")


class MixedDumpsError(ValueError):
    """Rows given as one dump hold a tensor more than once: they come from several dumps."""


def check_one_dump(rows: pa.Table) -> None:
    """Raise MixedDumpsError if a tensor name repeats in `rows`, naming the key columns whose
    values differ (e.g. 5 settings left by a filter without `setting=`), so that a loader
    never silently keeps one network's tensor of several."""
    names = rows.column("tensor").to_pylist()
    if len(set(names)) == len(names):
        return
    repeated = sorted({n for n in names if names.count(n) > 1})
    differ = {
        key: sorted(set(rows.column(key).to_pylist()))
        for key in DUMP_KEYS
        if key in rows.column_names and len(set(rows.column(key).to_pylist())) > 1
    }
    where = "; ".join(f"{k} takes {len(v)} values {v[:6]}" for k, v in differ.items())
    raise MixedDumpsError(
        f"the rows hold {len(repeated)} tensor(s) more than once (e.g. {repeated[0]!r}): they "
        f"come from several dumps ({where or 'the key columns are not in the rows'}); "
        "filter on every one of dataset, arch, setting, seed and epoch"
    )


def rows_to_state_dict(rows: pa.Table, dtype: str = "float32") -> dict[str, torch.Tensor]:
    """Rebuild a state_dict from the rows of one (seed, epoch) dump (polars: `.to_arrow()`),
    in the precision the dump stored (`dtype`, the run's `dump_dtype`: exact either way);
    MixedDumpsError if the rows hold a tensor twice (see `check_one_dump`)."""
    import torch

    check_one_dump(rows)
    cast = _torch_dtype(dtype)
    values = rows.column("values").combine_chunks()
    flat = values.flatten().to_numpy()
    offsets = values.offsets.to_numpy()
    offsets = offsets - offsets[0]
    return {
        name: torch.from_numpy(flat[offsets[i] : offsets[i + 1]].copy()).reshape(shape).to(cast)
        for i, (name, shape) in enumerate(
            zip(rows.column("tensor").to_pylist(), rows.column("shape").to_pylist(), strict=True)
        )
    }


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write a small table atomically as zstd Parquet (with page checksums)."""
    with atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


def sink_table(frame: pl.LazyFrame, path: str | Path) -> None:
    """Stream a lazy polars frame into zstd Parquet with page checksums, atomically, a batch
    at a time (polars' own sink_parquet writes no checksums)."""
    import polars as pl

    schema = pl.DataFrame(schema=frame.collect_schema()).to_arrow().schema
    with atomic_path(Path(path)) as tmp, pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as w:
        for batch in frame.collect_batches():
            w.write_table(batch.to_arrow().cast(schema))


# concat_files gathers its inputs' row groups into output row groups of about this many rows
# or bytes: thousands of per-run files (an imported zoo) made as many row groups of ~190
# rows, and a reader then paid ~0.2 s a row group (15 minutes to verify 1,000).
GROUP_ROWS = 1 << 16
GROUP_BYTES = 64 << 20


def concat_files(files: list[str | Path], path: str | Path) -> int:
    """Concatenate Parquet files of one schema into one, streamed a few row groups at a time
    (written as row groups of about GROUP_ROWS rows or GROUP_BYTES bytes), each page's
    checksum checked as it is read (a damaged input is a DamagedFileError naming it); the
    number of rows."""
    from weightzoo.tables import reading

    if not files:
        raise ValueError(f"{path}: no files to concatenate")
    with reading(files[0]):
        schema = pq.read_schema(files[0])
    rows, pending, pending_bytes = 0, [], 0
    with atomic_path(Path(path)) as tmp, pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as w:
        for f in files:
            with reading(f):
                source = pq.ParquetFile(f, page_checksum_verification=True)
            for i in range(source.num_row_groups):
                with reading(f):
                    group = source.read_row_group(i)
                pending.append(group.cast(schema))
                pending_bytes += group.nbytes
                rows += group.num_rows
                if sum(g.num_rows for g in pending) >= GROUP_ROWS or pending_bytes >= GROUP_BYTES:
                    w.write_table(pa.concat_tables(pending))  # a full disk: not the input's fault
                    pending, pending_bytes = [], 0
        if pending:
            w.write_table(pa.concat_tables(pending))
    return rows
