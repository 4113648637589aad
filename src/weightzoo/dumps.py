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


def host_values(tensors: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """The tensors' values as one flat float32 host array, and each tensor's size: flattened
    and concatenated on their device, then copied off it in one transfer."""
    import torch

    sizes = np.array([t.numel() for t in tensors], dtype=np.int64)
    if not tensors:
        return np.zeros(0, np.float32), sizes
    flat = torch.cat([t.detach().reshape(-1).to(torch.float32) for t in tensors])
    return flat.cpu().numpy(), sizes


def state_dict_table(
    state: dict[str, torch.Tensor],
    kinds: dict[str, tuple[str, str]],
    *,
    dataset: str,
    family: str,
    arch: str,
    seed: int,
    epoch: int,
    setting: str = "default",
) -> pa.Table:
    """One dump as an Arrow table: a row per tensor, in state_dict order."""
    names = list(state)
    flat, sizes = host_values([state[k] for k in names])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    values = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)).cast(
        pa.list_(pa.float32())
    )
    shapes = [list(state[k].shape) for k in names]
    n = len(names)
    return pa.table(
        {
            "dataset": [dataset] * n,
            "family": [family] * n,
            "arch": [arch] * n,
            "setting": [setting] * n,
            "seed": pa.array([seed] * n, pa.int32()),
            "epoch": pa.array([epoch] * n, pa.int32()),
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
    ) -> None:
        self.store, self.kinds = store, kinds
        self.tags = {"dataset": dataset, "family": family, "arch": arch, "setting": setting}

    def __call__(self, epoch: int, states: dict[int, dict[str, torch.Tensor]]) -> None:
        import torch

        # the whole block's dump leaves the device in one transfer; tables from host views
        flat, sizes = host_values([w for state in states.values() for w in state.values()])
        views = iter(np.split(flat, np.cumsum(sizes)[:-1]))
        tables = []
        for seed, state in states.items():
            host = {name: torch.from_numpy(next(views)).view(w.shape) for name, w in state.items()}
            tables.append(state_dict_table(host, self.kinds, seed=seed, epoch=epoch, **self.tags))
        self.store.add_dumps(epoch, tables)


def rows_to_state_dict(rows: pa.Table) -> dict[str, torch.Tensor]:
    """Rebuild a state_dict from the rows of one (seed, epoch) dump (polars: `.to_arrow()`)."""
    import torch

    values = rows.column("values").combine_chunks()
    flat = values.flatten().to_numpy()
    offsets = values.offsets.to_numpy()
    offsets = offsets - offsets[0]
    return {
        name: torch.from_numpy(flat[offsets[i] : offsets[i + 1]].copy()).reshape(shape)
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


def concat_files(files: list[str | Path], path: str | Path) -> int:
    """Concatenate Parquet files of one schema into one, streamed a row group at a time, each
    page's checksum checked as it is read (a damaged input is a DamagedFileError naming it)
    and written into the output; the number of rows."""
    from weightzoo.tables import reading

    if not files:
        raise ValueError(f"{path}: no files to concatenate")
    with reading(files[0]):
        schema = pq.read_schema(files[0])
    rows = 0
    with atomic_path(Path(path)) as tmp, pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as w:
        for f in files:
            with reading(f):
                source = pq.ParquetFile(f, page_checksum_verification=True)
            for i in range(source.num_row_groups):
                with reading(f):
                    group = source.read_row_group(i)
                w.write_table(group.cast(schema))  # a full disk here is not the input's fault
                rows += group.num_rows
    return rows
