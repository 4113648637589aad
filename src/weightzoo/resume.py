"""Resumable training jobs: a job's progress on disk, so a killed job continues where it stopped."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from weightzoo import dumps
from weightzoo.io import atomic_path

logger = logging.getLogger(__name__)


class ResumeState:
    """A training job's progress on disk, so a killed job continues where it stopped.

    `folder/state.pt` holds the last checkpointed epoch of the job's block of seeds (weights,
    optimizer and batch-order RNG states, metrics so far); `folder/dumps/` holds one Parquet
    file per dump epoch up to it, a row group per seed. Dumps wait in memory until the next
    checkpoint (or PENDING_BYTES of them), so a short job writes its dumps once, into its
    weights file. Files are written atomically; dumps made after the last checkpoint are made
    again, with the same bits, on resume. The state carries the job's config slice: a job
    started with other settings discards it and starts afresh.
    """

    PENDING_BYTES = 256 * 2**20

    def __init__(self, folder: str | Path, key: dict):
        import torch

        self.folder = Path(folder)
        self.dumps = self.folder / "dumps"
        self.key = json.dumps(key, sort_keys=True)
        self.state = {"key": self.key, "metrics": [], "current": None}
        self.pending: dict[tuple[int, int], pa.Table] = {}  # (seed, epoch) -> its dump
        path = self.folder / "state.pt"
        if path.is_file():
            saved = torch.load(path, weights_only=True)
            if saved.get("key") == self.key:
                self.state = saved
                logger.info("resuming after epoch %d", saved["current"]["epoch"])
            else:
                logger.info("discarding resume state made with other settings")
        if self.state["current"] is None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.dumps.mkdir(parents=True, exist_ok=True)

    def checkpoint(self, current: dict) -> None:
        """Save the state after a completed epoch; the metrics rows so far come with it."""
        import torch

        self.flush()
        self.state["current"] = current
        with atomic_path(self.folder / "state.pt") as tmp:
            torch.save(self.state, tmp)

    @property
    def resume_point(self) -> dict | None:
        """The last checkpoint, for `training.fit(resume=...)`; None to start afresh."""
        return self.state["current"]

    def add_metrics(self, row: dict) -> None:
        """One metrics row (seed, epoch); saved with the next checkpoint."""
        self.state["metrics"].append(row)

    def add_dumps(self, epoch: int, tables: list) -> None:
        """Keep one dump epoch's tables (a table per seed) until the next checkpoint."""
        for table in tables:
            self.pending[table["seed"][0].as_py(), epoch] = table
        if sum(t.nbytes for t in self.pending.values()) > self.PENDING_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the pending dumps: one file per dump epoch, one row group per seed."""
        for epoch in sorted({e for _, e in self.pending}):
            keys = sorted(k for k in self.pending if k[1] == epoch)
            with dumps.DumpWriter(self.dumps / f"{epoch:06d}-{keys[0][0]:010d}.parquet") as w:
                for key in keys:
                    w.write(self.pending.pop(key))

    def assemble(self, path: str | Path, seeds: list[int]) -> None:
        """The job's weights file: a row group per dump, seed by seed, epochs in order."""
        files = [pq.ParquetFile(f) for f in sorted(self.dumps.glob("*.parquet"))]
        groups = {}  # (seed, epoch) -> (file, row group) on disk, or the table in memory
        for f in files:
            for i in range(f.metadata.num_row_groups):
                ids = f.read_row_group(i, columns=["seed", "epoch"])
                groups[ids["seed"][0].as_py(), ids["epoch"][0].as_py()] = (f, i)
        groups.update(self.pending)
        with dumps.DumpWriter(path) as writer:  # one dump from disk in memory at a time
            for seed in seeds:
                for epoch in sorted(e for s, e in groups if s == seed):
                    found = groups[seed, epoch]
                    if isinstance(found, tuple):  # (file, row group) on disk
                        found = found[0].read_row_group(found[1])
                    writer.write(found)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
