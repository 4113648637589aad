"""Shared pieces of the benchmark suite and the GPU check: timing with repeats, throughput,
peak memory, the machine, Markdown tables and atomic writes.

Every figure is a median over `repeats` runs with its min-max, and every comparison is
measured in the same run as its reference, on the same machine, with the same threads.
Importing this module needs only the standard library: torch and psutil are imported by the
functions that use them, so that benchmarks/gpu_check.py runs where neither psutil nor
anything beyond its own few packages is installed.
"""

from __future__ import annotations

import contextlib
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

NO_GPU = "no GPU on this machine: not measured"


@dataclass
class Options:
    """What `benchmarks/run.py` was asked for; every section reads it."""

    repeats: int = 3
    quick: bool = False  # smaller sizes: to check the suite runs, not to report
    device: str = "cpu"  # "cuda" when a GPU is present and asked for
    threads: int = 1
    workdir: Path = field(default_factory=lambda: ROOT / "benchmarks" / ".work")
    import_rows: tuple[int, ...] = (27_000,)  # sizes of the imported zoo (section m)


# -- timing and throughput ---------------------------------------------------------------------


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


def sync(dev: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so that a clock reads it."""
    if dev.type == "cuda":
        import torch

        torch.cuda.synchronize(dev)


def timed(
    fn: Callable[[], object],
    repeats: int,
    warmup: int = 1,
    device: torch.device | None = None,
) -> Timing:
    """Run fn `warmup` times untimed, then `repeats` times timed; with a `device`, it is
    synchronised before and after each timed run (GPU work is queued, not done, on return)."""
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(repeats):
        if device is not None:
            sync(device)
        t0 = time.perf_counter()
        fn()
        if device is not None:
            sync(device)
        values.append(time.perf_counter() - t0)
    return Timing(values)


def rate(t: Timing, work: float, digits: int = 0) -> str:
    """Throughput `work / seconds`, median with min-max (the min-max swap: fast = high)."""
    vals = [work / v for v in t.values]
    median, lo, hi = statistics.median(vals), min(vals), max(vals)
    return f"{median:,.{digits}f} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def ratio(slow: Timing, fast: Timing) -> str:
    """Median ratio slow/fast with the range over paired repeats."""
    pairs = [a / b for a, b in zip(slow.values, fast.values, strict=False)]
    return f"{slow.median / fast.median:.2f}× ({min(pairs):.2f}–{max(pairs):.2f})"


def run_with_peak_rss(
    cmd: Sequence[str], cwd: Path | None = None, env: dict | None = None, interval: float = 0.05
) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run cmd; return (wall seconds, peak summed RSS of its process tree in MiB, result).

    The tree is sampled every `interval` seconds, so peaks shorter than that can be missed.
    """
    import psutil

    peak = 0.0
    t0 = time.perf_counter()
    out = subprocess.PIPE
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True)
    reader.start()
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            rss = 0
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            peak = max(peak, rss / 2**20)
        time.sleep(interval)
    wall = time.perf_counter() - t0
    reader.join()
    result = subprocess.CompletedProcess(cmd, proc.returncode, "".join(output), "")
    return wall, peak, result


# -- where the figures were taken --------------------------------------------------------------


def device_label(dev: torch.device) -> str:
    """'CPU', or 'GPU (<card>)': the device column of every table."""
    if dev.type != "cuda":
        return "CPU"
    import torch

    return f"GPU ({torch.cuda.get_device_name(dev)})"


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(memory: bool = True) -> str:
    """One line describing where the figures were taken (RAM and the OS with `memory`,
    which needs psutil)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    if not memory:
        return (
            f"{cpu_name()}, {os.cpu_count()} cores; GPU: {gpu}; Python {platform.python_version()}"
        )
    import psutil

    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu_name()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, GPU: {gpu}; "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.system()} {platform.release()}"
    )


# -- the results files -------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; a row shorter than the headers ends in empty cells."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [*map(str, row), *[""] * (len(headers) - len(row))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    """Write a results file atomically: a run killed on its way leaves the last whole one."""
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
