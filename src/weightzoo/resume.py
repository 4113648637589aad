"""Resumable training jobs: a job's progress on disk, so a killed job continues where it stopped."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from weightzoo import dumps
from weightzoo.io import atomic_path

logger = logging.getLogger(__name__)


def prune(folder: Path) -> None:
    """Remove `folder` and its parents while they are empty, up to results/resume (the
    setting, architecture and dataset folders a finished block leaves). Jobs finishing at
    once prune the same folders: one that another job removed, or filled, first is left to
    it."""
    for _ in range(3):
        if folder.name == "resume":
            break
        try:
            if any(folder.iterdir()):
                break
            folder.rmdir()
        except (FileNotFoundError, OSError):  # gone, or filled by another job, meanwhile
            break
        folder = folder.parent


class BusyError(ValueError):
    """Another process is training the same block of seeds."""


class _Lock:
    """An exclusive lock (flock) on a file beside a resume folder, held while a job runs, so
    one training unit has one writer; the kernel releases it when the process dies.

    The file is removed when its job is done, while the lock is still held. A process that
    opened it just before, and gets the lock once it is released, holds a lock on a file no
    longer at that path: it checks that the path still names the file it locked, and opens
    the path again if not. (Removing the file after releasing the lock would let a third
    process lock a new file while the second holds the old one: two writers.)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd: int | None = None
        for _ in range(100):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise BusyError(
                    f"{path.parent / path.stem}: another process is training this block of seeds "
                    "(its lock is held); wait for it to finish, or stop it, then run again"
                ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return
            os.close(fd)  # removed by the job that held it: lock the path's new file
        raise BusyError(f"{path}: its lock file keeps being replaced; run again")

    def release(self, remove: bool = False) -> None:
        """Release the lock; with `remove`, first remove its file (see the class)."""
        if self.fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


class ResumeState:
    """A training job's progress on disk, so a killed job continues where it stopped.

    `folder/state.pt` holds the last checkpointed epoch of the job's block of seeds (weights,
    optimizer and batch-order RNG states, metrics so far, the dumps written by then);
    `folder/dumps/` holds one Parquet file per dump epoch up to it, a row group per seed.
    Dumps wait in memory until the next checkpoint (or PENDING_BYTES of them), so a short job
    writes its dumps once, into its weights file. Files are written atomically; dumps made
    after the last checkpoint are made again, with the same bits, on resume. The state
    carries the job's config slice: a job started with other settings discards it and starts
    afresh; so does one whose state or dump files cannot be read (it says which). A lock
    (`folder.lock`) keeps a second process off the same block while this one runs.
    """

    PENDING_BYTES = 256 * 2**20

    def __init__(self, folder: str | Path, key: dict):
        self.folder = Path(folder)
        self.lock = _Lock(self.folder.with_name(self.folder.name + ".lock"))
        self.dumps = self.folder / "dumps"
        self.key = json.dumps(key, sort_keys=True)
        self.state = {"key": self.key, "metrics": [], "current": None, "dumped": []}
        self.pending: dict[tuple[int, int], pa.Table] = {}  # (seed, epoch) -> its dump
        saved = self._saved()
        if saved is not None:
            self.state = saved
            logger.info("resuming after epoch %d", saved["current"]["epoch"])
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.dumps.mkdir(parents=True, exist_ok=True)

    def _saved(self) -> dict | None:
        """The saved state if it is this job's and whole (its dump files verified), else None."""
        import torch

        path = self.folder / "state.pt"
        if not path.is_file():
            return None
        try:
            saved = torch.load(path, weights_only=True)
            assert isinstance(saved, dict) and saved.get("current") is not None
        except Exception as err:  # truncated, foreign or garbage: never a reason to stop
            why = type(err).__name__
            logger.warning("resume state %s unreadable (%s): starting the block again", path, why)
            return None
        if saved.get("key") != self.key:
            logger.info("discarding resume state made with other settings")
            return None
        held = self._held()
        if held is None or not set(map(tuple, saved.get("dumped", []))) <= set(held):
            logger.warning("resume dumps in %s unreadable or missing: starting again", self.dumps)
            return None
        return saved

    def _held(self) -> dict[tuple[int, int], tuple[pq.ParquetFile, int]] | None:
        """(seed, epoch) -> (file, row group) of the dump files on disk; None if one of them
        cannot be read (named in the log)."""
        groups = {}
        for path in sorted(self.dumps.glob("*.parquet")):
            try:
                f = pq.ParquetFile(path)
                for i in range(f.metadata.num_row_groups):
                    ids = f.read_row_group(i, columns=["seed", "epoch"])
                    groups[ids["seed"][0].as_py(), ids["epoch"][0].as_py()] = (f, i)
            except Exception as err:
                logger.warning("resume dump %s unreadable (%s)", path, type(err).__name__)
                return None
        return groups

    def checkpoint(self, current: dict) -> None:
        """Save the state after a completed epoch; the metrics rows so far come with it."""
        import torch

        self.flush()
        self.state["current"] = current
        self.state["dumped"] = sorted(self._held() or {})
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

    def assemble(self, path: str | Path, expected: dict[int, list[int]]) -> None:
        """The job's weights file: a row group per dump, seed by seed, epochs in order.

        `expected` maps each seed to the epochs it must hold; a file that would lack one, or
        hold one more, is not written: a ValueError says which instead."""
        groups = self._held()
        if groups is None:
            raise ValueError(f"{self.dumps}: a dump file is unreadable; delete it and run again")
        groups.update(self.pending)
        for seed, epochs in expected.items():
            held = sorted(e for s, e in groups if s == seed)
            if held != sorted(epochs):
                raise ValueError(
                    f"{path}: seed {seed} holds dumps of epochs {held}, not {sorted(epochs)}: "
                    f"the weights file would be incomplete; delete {self.folder} and run again"
                )
        with dumps.DumpWriter(path) as writer:  # one dump from disk in memory at a time
            for seed in expected:
                for epoch in sorted(e for s, e in groups if s == seed):
                    found = groups[seed, epoch]
                    if isinstance(found, tuple):  # (file, row group) on disk
                        found = found[0].read_row_group(found[1])
                    writer.write(found)

    def remove(self) -> None:
        """The job is done: its folder, its lock file (removed while held, see _Lock) and the
        resume folders left empty go."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.lock.release(remove=True)
        prune(self.folder.parent)

    def close(self) -> None:
        """Release the lock (the folder stays, for a later resume)."""
        self.lock.release()

    def __enter__(self) -> ResumeState:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
