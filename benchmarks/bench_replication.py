"""(o) A whole run, timed from its own log: the wall time of a finished `snakemake` run (the
replication of config/replicate.yaml on MNIST, say) and what its jobs took.

Reads the run's Snakemake log ($WEIGHTZOO_BENCH_LOG, else the newest under .snakemake/log/
of the run's working directory) for the first and last timestamps and the jobs finished, and
the run's benchmark files (results/benchmarks/, `report.benchmark_table`) for the CPU time
per rule. Nothing is rerun: this section records a run made with the command it names.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import bench_analysis
import common
import polars as pl

from weightzoo.report import benchmark_table

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$", re.M)


def run_log(results: Path) -> Path | None:
    """$WEIGHTZOO_BENCH_LOG, else the newest Snakemake log beside `results`."""
    if "WEIGHTZOO_BENCH_LOG" in os.environ:
        return Path(os.environ["WEIGHTZOO_BENCH_LOG"])
    logs = sorted((results.resolve().parent / ".snakemake" / "log").glob("*.snakemake.log"))
    return logs[-1] if logs else None


def log_summary(text: str) -> dict:
    """Wall seconds between the log's first and last timestamp, jobs finished, and whether
    the run ended complete."""
    stamps = [datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y") for s in STAMP.findall(text)]  # fmt: skip
    done = re.findall(r"^(\d+) of (\d+) steps \(100%\) done", text, flags=re.M)
    return {
        "wall_s": (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else float("nan"),
        "finished": len(re.findall(r"^Finished job", text, flags=re.M)),
        "complete": bool(done),
        "start": stamps[0] if stamps else None,
    }


def section_replication(opts: common.Options) -> str:
    """Markdown section (o): a finished run's wall time and jobs, from its log."""
    head = "## (o) A whole run: wall time and jobs, from its log"
    results = bench_analysis.source(opts.workdir)
    log = run_log(results)
    if log is None or not log.is_file():
        return f"{head}\n\nSkipped: no Snakemake log beside {results} (set WEIGHTZOO_BENCH_LOG).\n"
    found = log_summary(log.read_text())
    runs = pl.read_parquet(results / "tables" / "runs.parquet")
    datasets = ", ".join(sorted(runs["dataset"].unique().to_list()))
    bench = benchmark_table(results / "benchmarks")
    cpu = float(bench["cpu_s"].sum()) if bench.height else float("nan")
    rows = [
        [r["rule"], r["jobs"], f"{r['cpu_s']:.0f}", f"{r['longest_s']:.0f}"]
        for r in bench.iter_rows(named=True)
    ]
    start = f"{found['start']:%Y-%m-%d %H:%M}" if found["start"] else "–"
    status = "complete" if found["complete"] else "NOT complete (the log ends before 100 %)"
    return "\n".join(
        [
            head,
            "",
            f"The run whose log is `{log.name}` ({datasets}; {runs.height:,} networks, "
            f"{found['finished']} jobs finished, {status}), started {start}: "
            f"**{found['wall_s'] / 60:.1f} min** from its first to its last log line; "
            f"its jobs with a benchmark file took {cpu / 60:.1f} CPU-minutes in all.",
            "",
            common.table(["rule", "jobs", "CPU s", "longest job s"], rows),
        ]
    )
