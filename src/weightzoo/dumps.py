"""Weight dumps: state_dicts to long Parquet rows and back.

One row per (seed, epoch, tensor) with the tensor's shape and its values flattened in
row-major order, so `rows_to_state_dict` rebuilds the exact state_dict. Rows are built with
Arrow list arrays from one flat buffer per dump: no Python loop over weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from weightzoo.io import atomic_path

if TYPE_CHECKING:  # torch is imported where tensors are made: jobs without them skip it
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
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3}
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

    Use as a context manager: on an exception the temporary file is removed and nothing
    appears at `path`.
    """

    def __init__(self, path: str | Path):
        self._atomic = atomic_path(Path(path))
        tmp = self._atomic.__enter__()
        try:
            self._writer = pq.ParquetWriter(tmp, WEIGHTS_SCHEMA, **WEIGHTS_PARQUET_OPTIONS)
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def __enter__(self) -> DumpWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.close()
        self._atomic.__exit__(exc_type, exc, tb)


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


def rows_to_state_dict(rows: pa.Table) -> dict[str, torch.Tensor]:
    """Rebuild a state_dict from the rows of one (seed, epoch) dump (polars: `.to_arrow()`);
    MixedDumpsError if the rows hold a tensor twice (see `check_one_dump`)."""
    import torch

    check_one_dump(rows)
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
    """Write a small table atomically as zstd Parquet."""
    with atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)
