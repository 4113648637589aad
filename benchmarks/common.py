"""Shared pieces of the benchmark suite: timing with repeats, peak memory, Markdown tables.

Every figure is a median over `repeats` runs with its min-max, and every comparison is
measured in the same run as its reference, on the same machine, with the same threads.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


@dataclass
class Options:
    """What `benchmarks/run.py` was asked for; every section reads it."""

    repeats: int = 3
    quick: bool = False  # smaller sizes: to check the suite runs, not to report
    device: str = "cpu"  # "cuda" when a GPU is present and asked for
    threads: int = 1
    workdir: Path = field(default_factory=lambda: ROOT / "benchmarks" / ".work")
    import_rows: tuple[int, ...] = (27_000,)  # sizes of the imported zoo (section j)


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def fmt(self, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
        m, lo, hi = (v * scale for v in (self.median, min(self.values), max(self.values)))
        return f"{m:.{digits}f} {unit} ({lo:.{digits}f}–{hi:.{digits}f})"


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Timing:
    """Run fn `warmup` times untimed, then `repeats` times timed."""
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        values.append(time.perf_counter() - t0)
    return Timing(values)


def rate(t: Timing, work: float, digits: int = 0) -> str:
    """Throughput `work / seconds`, median with min-max (the min-max swap: fast = high)."""
    vals = [work / v for v in t.values]
    return (
        f"{statistics.median(vals):,.{digits}f} ({min(vals):,.{digits}f}–{max(vals):,.{digits}f})"
    )


def ratio(slow: Timing, fast: Timing) -> str:
    """Median ratio slow/fast with the range over paired repeats."""
    pairs = [a / b for a, b in zip(slow.values, fast.values, strict=False)]
    return f"{slow.median / fast.median:.2f}× ({min(pairs):.2f}–{max(pairs):.2f})"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run_with_peak_rss(cmd: Sequence[str], cwd: Path | None = None, env: dict | None = None,
                      interval: float = 0.05) -> tuple[float, float, subprocess.CompletedProcess]:  # fmt: skip
    """Run cmd; return (wall seconds, peak summed RSS of its process tree in MiB, result).

    The tree is sampled every `interval` seconds, so peaks shorter than that can be missed.
    """
    peak = 0.0
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True)
    reader.start()
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss / 2**20)
        except psutil.Error:
            pass
        time.sleep(interval)
    wall = time.perf_counter() - t0
    reader.join()
    result = subprocess.CompletedProcess(cmd, proc.returncode, "".join(output), "")
    return wall, peak, result


def machine() -> str:
    """One line describing where the figures were taken."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, GPU: {gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")  # fmt: skip
