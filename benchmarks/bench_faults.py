"""Sections (k) and (l): what guarding against faults costs.

(k) Planning at scale: `snakemake -n` of zoos of 2,000, 5,000 and 20,000 cells (MLP depths
    1-4 x widths 1..N/4 on digits, one block of seeds each), with the workflow profile, timed
    as whole processes (wall and CPU seconds, peak memory); weightzoo's own share (config
    validation, sweep expansion, the code hashes, the checks of results/) timed in-process;
    and the 20,000 cells again with training and statistics packed (pack.stats).
(l) Checksums: reading a large weight dump with and without checking its page checksums,
    and writing it with and without them.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import common
import yaml
from common import ROOT, Options, Timing, table, timed

SIZES = (2_000, 5_000, 20_000)
QUICK_SIZES = (200, 400)
PACKED_JOBS = 8  # pack.jobs_per_family of the packed row


def scale_config(cells: int, packed: bool = False) -> dict:
    """A zoo of `cells` cells: MLP depths 1-4 x widths 1..cells/4 on digits, one block of
    seeds per cell (so twice as many jobs, plus the tables, figures and dashboard); packed:
    the blocks in PACKED_JOBS training jobs and as many statistics jobs."""
    config = {
        "datasets": ["digits"],
        "seeds": {"start": 0, "count": 2},
        "seeds_per_job": 2,
        "families": {
            "mlp": {
                "grid": [{"depth": [1, 2, 3, 4], "width": list(range(1, cells // 4 + 1))}],
                "resources": {"mem_mb": 1_000_000},  # the widest (5,000) pass the memory check
            },
            "cnn": {"enabled": False},
            "vit": {"enabled": False},
        },
    }
    if packed:
        config["pack"] = {"jobs_per_family": PACKED_JOBS, "stats": True}
    return config


def _run_timed(
    cmd: list[str], cwd: Path
) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """(wall s, user + system CPU s, peak RSS MiB, result) of one whole process: the CPU
    seconds are what a loaded machine changes least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, peak, res = common.run_with_peak_rss(cmd, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peak, res


def _jobs(output: str) -> int | None:
    found = re.findall(r"^total\s+(\d+)\s*$", output, flags=re.M)
    return int(found[-1]) if found else None


def _weightzoo_share(config_path: Path) -> float:
    """CPU seconds weightzoo's own planning code takes for a config, in-process: validation,
    cells, blocks, the code hashes of every script and the checks of results/."""
    code = f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(ROOT / "src")!r})
from weightzoo import codehash, config as c, inventory
t0 = time.process_time()
cfg = c.load_config({str(ROOT / "config/config.yaml")!r}, {str(config_path)!r})
c.validate_config(cfg, {str(ROOT / "config/schema.yaml")!r})
cells, blocks = c.all_cells(cfg), c.seed_blocks(cfg)
for s in Path({str(ROOT / "workflow/scripts")!r}).glob("[a-z]*.py"):
    codehash.job_code(s, {str(ROOT / "src")!r})
folders = [f"results/weights/dataset=d/arch={{a}}/setting={{t}}" for a, t in cells]
inventory.unwritable(folders)
inventory.unit_files("results", ("weights",))
print(time.process_time() - t0)
"""
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=config_path.parent,
    )
    return float(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else float("nan")


def section_planning_scale(opts: Options) -> str:
    heading = "## (k) Planning at scale\n\n"
    base = opts.workdir / "scale"
    snakemake = str(Path(sys.executable).parent / "snakemake")
    rows = []
    sizes = QUICK_SIZES if opts.quick else SIZES
    for cells, packed in [*((n, False) for n in sizes), (sizes[-1], True)]:
        work = base / f"{cells}{'-packed' if packed else ''}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        cfg = work / "scale.yaml"
        cfg.write_text(yaml.safe_dump(scale_config(cells, packed)))
        cmd = [
            snakemake,
            "-n",
            "--quiet",
            "rules",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(work),
            "--configfile",
            str(cfg),
        ]
        walls, cpus, peaks, jobs = [], [], [], None
        for _ in range(opts.repeats if cells <= 5_000 else 1):
            wall, cpu, peak, res = _run_timed(cmd, work)
            if res.returncode != 0:
                return (
                    heading
                    + f"**{cells} cells: the dry run failed**\n\n```text\n"
                    + (res.stdout[-3000:] + "\n```")
                )
            walls.append(wall)
            cpus.append(cpu)
            peaks.append(peak)
            jobs = _jobs(res.stdout)
        own = _weightzoo_share(cfg)
        cpu = Timing(cpus).median
        rows.append(
            [
                f"{cells:,}" + (f" packed ({PACKED_JOBS} + {PACKED_JOBS} jobs)" if packed else ""),
                f"{jobs:,}" if jobs else "?",
                Timing(walls).fmt(),
                Timing(cpus).fmt(),
                f"{1000 * cpu / jobs:.2f} ms" if jobs else "?",
                Timing(peaks).fmt(unit="MiB", digits=0),
                f"{own:.1f} s",
            ]
        )
    return heading + "\n".join(
        [
            "`snakemake -n --quiet rules` as a whole process, with profiles/default (the workflow "
            "profile), in an empty `--directory`: every job is planned. Cells are MLP depths 1-4 "
            "x widths 1..N/4 on digits, one block of seeds each (a training and a statistics job "
            "per cell); the packed row plans the largest zoo with `pack: {jobs_per_family: "
            f"{PACKED_JOBS}, stats: true}}`. Rows over 5,000 cells are one run each; the others the "
            f"median of {opts.repeats}. CPU is the process's user + system seconds (a loaded "
            "machine stretches the wall time far more), and CPU per job divides it by the jobs. "
            "weightzoo's share is the CPU time of its own planning code, timed in-process.",
            "",
            table(
                [
                    "cells",
                    "jobs",
                    "dry run (wall)",
                    "CPU (user + sys)",
                    "CPU per job",
                    "peak RSS",
                    "weightzoo's share",
                ],
                rows,
            ),
        ]
    )


def section_checksums(opts: Options) -> str:
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    from weightzoo import dumps, tables

    heading = "## (l) Page checksums\n\n"
    work = opts.workdir / "checksums"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # a 784-1000-1000-10 MLP (1.8 M parameters) x 10 seeds x 4 dumps: 290 MB of float32
    seeds, epochs = (2, 2) if opts.quick else (10, 4)
    shapes = {
        "hidden.0.weight": (1000, 784),
        "hidden.0.bias": (1000,),
        "hidden.1.weight": (1000, 1000),
        "hidden.1.bias": (1000,),
        "head.weight": (10, 1000),
        "head.bias": (10,),
    }
    kinds = {k: ("weight" if k.endswith("weight") else "bias", k.rsplit(".", 1)[0]) for k in shapes}
    g = torch.Generator().manual_seed(0)
    tables_ = [
        dumps.state_dict_table(
            {k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()},
            kinds,
            dataset="mnist",
            family="mlp",
            arch="mlp-d2-w1000",
            seed=seed,
            epoch=epoch,
        )
        for seed in range(seeds)
        for epoch in range(epochs)
    ]
    raw = sum(np.prod(s) for s in shapes.values()) * 4 * seeds * epochs
    paths = {flag: work / f"w-{flag}.parquet" for flag in (True, False)}

    def write(flag: bool) -> None:
        options = {**dumps.WEIGHTS_PARQUET_OPTIONS, "write_page_checksum": flag}
        with pq.ParquetWriter(paths[flag], dumps.WEIGHTS_SCHEMA, **options) as w:
            for t in tables_:
                w.write_table(t)

    def read(flag: bool) -> None:
        f = pq.ParquetFile(paths[True], page_checksum_verification=flag)
        for i in range(f.num_row_groups):
            f.read_row_group(i)

    t_write = {flag: timed(lambda flag=flag: write(flag), opts.repeats) for flag in (True, False)}
    t_read = {flag: timed(lambda flag=flag: read(flag), opts.repeats) for flag in (True, False)}
    t_check = timed(lambda: tables.check_parquet(paths[True]), opts.repeats)
    size = {flag: paths[flag].stat().st_size for flag in (True, False)}
    started = time.perf_counter()
    tables.check_footer(paths[True])
    footer = time.perf_counter() - started
    rows = [
        [
            "write",
            t_write[False].fmt(),
            t_write[True].fmt(),
            f"{t_write[True].median / t_write[False].median - 1:+.1%}",
        ],
        [
            "read every row group",
            t_read[False].fmt(),
            t_read[True].fmt(),
            f"{t_read[True].median / t_read[False].median - 1:+.1%}",
        ],
    ]
    return heading + "\n".join(
        [
            f"One weights file of {seeds} seeds x {epochs} dumps of a 784-1000-1000-10 MLP "
            f"({raw / 1e6:.0f} MB of float32; {size[True] / 1e6:.0f} MB with checksums, "
            f"{size[False] / 1e6:.0f} MB without), written as training jobs write it and read "
            "row group by row group as the statistics job reads it, with page checksums "
            "(CRC32 per page) and without.",
            "",
            table(["", "without checksums", "with checksums", "cost"], rows),
            "",
            f"`tables.check_parquet` (the check every job makes of a Parquet input it reads "
            f"with polars: a full read with checksums): {t_check.fmt()}; `tables.check_footer` "
            f"(open_zoo's check of each file it lists): {footer * 1e3:.2f} ms.",
        ]
    )
