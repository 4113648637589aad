"""A training job's progress in its log, so `tail -f` on the log shows it moving.

`Progress.add_metrics` takes the training loop's metrics rows (one per seed and epoch) and,
once every running seed has reported an epoch, logs one line: the epoch, the block's mean
train loss and test accuracy, the seconds the epoch took and an ETA for the job. When an
epoch runs longer than `every_s`, a background thread adds a line every `every_s` seconds
saying how long the epoch has been running, so a slow job is never silent for long.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
import weakref
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """A short human duration: 42 s, 3 min 05 s, 1 h 02 min."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Logs the training of `arch` on a block of seeds: a line per epoch, and a line every
    `every_s` within long epochs. Feed it the loop's rows with `add_metrics` (or wrap the
    loop's `on_epoch` callback); `history` holds the rows of epochs done before a resume."""

    def __init__(
        self,
        arch: str,
        seeds: list[int],
        epochs: int,
        *,
        history: Iterable[dict] = (),
        every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        thread: bool = True,
    ) -> None:
        self.label = f"{arch} seeds {seeds[0]}-{seeds[-1]}"
        self.epochs, self.every_s, self.clock = epochs, every_s, clock
        history = list(history)
        diverged = {r["seed"] for r in history if r["epoch"] > 0 and _diverged(r)}
        self.running = len(seeds) - len(diverged)  # seeds that report the next epoch
        self.done = max((r["epoch"] for r in history), default=-1)  # last epoch logged
        last = [r["wall_time_s"] for r in history if r["epoch"] == self.done]
        self.last_wall = max(last) if last else None
        self.epoch_s: list[float] = []  # seconds of each epoch seen here
        self.pending: dict[int, list[dict]] = {}
        self.last_line = self.epoch_started = clock()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        if thread:
            poll = min(every_s / 6, 5.0)
            beat = threading.Thread(
                target=_heartbeat, args=(weakref.ref(self), self.stopped, poll), daemon=True
            )
            weakref.finalize(self, self.stopped.set)  # no thread outlives its Progress
            beat.start()

    @property
    def finished(self) -> bool:
        return self.done >= self.epochs or self.running == 0

    def wrap(self, on_epoch: Callable[[dict], None]) -> Callable[[dict], None]:
        """`on_epoch`, then `add_metrics`: the training loop's callback with progress lines."""

        def both(row: dict) -> None:
            on_epoch(row)
            self.add_metrics(row)

        return both

    def add_metrics(self, row: dict) -> None:
        """One metrics row (seed, epoch, losses, accuracies, wall_time_s)."""
        with self.lock:
            for earlier in sorted(e for e in self.pending if e < row["epoch"]):  # never expected
                self._epoch_line(earlier, self.pending.pop(earlier))
            rows = self.pending.setdefault(row["epoch"], [])
            rows.append(row)
            if len(rows) >= self.running:
                self._epoch_line(row["epoch"], self.pending.pop(row["epoch"]))

    def _epoch_line(self, epoch: int, rows: list[dict]) -> None:
        finite = [r for r in rows if not _diverged(r)]
        if epoch > 0:  # a seed whose loss is not finite after an epoch stops (training.fit)
            self.running -= len(rows) - len(finite)
        wall = max(r["wall_time_s"] for r in rows)
        seconds = None
        if epoch > 0 and self.last_wall is not None:
            seconds = wall - self.last_wall
            self.epoch_s.append(seconds)
        self.last_wall, self.done = wall, epoch
        if finite:
            loss = statistics.fmean(r["train_loss"] for r in finite)
            acc = statistics.fmean(r["test_acc"] for r in finite)
            what = f"train loss {loss:.4f}, test acc {acc:.4f} (mean of {len(finite)} seeds"
            what += f", {len(rows) - len(finite)} diverged)" if len(finite) < len(rows) else ")"
        else:
            what = "every seed diverged"
        timing = f"{seconds:.2f} s/epoch, " if seconds is not None else ""
        self._log(f"epoch {epoch}/{self.epochs}: {what}, {timing}ETA {self._eta(0.0)}")
        self.epoch_started = self.last_line
        if self.finished:
            self.stopped.set()

    def _eta(self, into_epoch: float) -> str:
        """Time left for the job, `into_epoch` seconds into the epoch after `done`."""
        if self.finished:
            return "0 s"
        if not self.epoch_s:
            return "unknown until an epoch is done"
        per_epoch = statistics.fmean(self.epoch_s[-5:])  # the last few: a cheap running rate
        left = self.epochs - self.done
        return duration(max(per_epoch * left - into_epoch, per_epoch * (left - 1)))

    def tick(self) -> None:
        """Log a line if none came for `every_s` seconds (the heartbeat thread calls this)."""
        with self.lock:
            now = self.clock()
            if self.finished or now - self.last_line < self.every_s:
                return
            running_for = now - self.epoch_started
            self._log(
                f"epoch {self.done + 1}/{self.epochs} running for {duration(running_for)}, "
                f"ETA {self._eta(running_for)}"
            )

    def _log(self, message: str) -> None:
        logger.info("%s: %s", self.label, message)
        self.last_line = self.clock()


def _diverged(row: dict) -> bool:
    return not math.isfinite(row["train_loss"])


def _heartbeat(ref: weakref.ref, stopped: threading.Event, poll: float) -> None:
    """Tick the Progress behind `ref` every `poll` seconds until it stops or is gone."""
    while not stopped.wait(poll):
        progress = ref()
        if progress is None:
            return
        progress.tick()
        del progress
