"""(h) The analysis at the paper's scale: claims, figures and dashboard on replicated tables.

A finished run's `runs`, `stats`, `strength_maps` and `predictions_oof` tables are replicated
to about 1x, 10x, 30x and 105x: new seeds (copies of the seeds, numbered on) and new dataset
names (copies of the datasets), so cells multiply as in the paper's zoo (105x the default
zoo: 15 datasets x 47 cells x 35 seeds = 24,675 runs, 3.8 times the paper's 6,480
networks). Each job then runs as the workflow runs it, in its own process, timed with its
peak RSS: the claims job, each figure job, the dashboard.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

import common
import numpy as np
import polars as pl
import yaml

from weightzoo.tables import CELL_KEYS, with_setting

# size -> (seed copies, dataset copies): seeds x datasets = the replication factor
LAYOUT = {1: (1, 1), 2: (1, 2), 10: (2, 5), 30: (6, 5), 105: (7, 15)}
SIZES, QUICK_SIZES = (1, 10, 30, 105), (1, 2)
BUDGET = {"seconds": 180.0, "mib": 4096.0}  # the claims job at the paper's scale
TABLES = ("runs", "stats", "strength_maps", "predictions_oof", "prediction")
# the per-run tables, replicated; `prediction` (one row per feature set x predictor x split x
# epoch: its size does not grow with the runs) is copied as it is
PER_RUN = ("stats", "strength_maps", "predictions_oof")


def source(workdir: Path) -> Path:
    """The finished run to replicate: $WEIGHTZOO_BENCH_RESULTS, else results/, else the run of
    the end-to-end section (f), which `make bench` makes before this section."""
    if "WEIGHTZOO_BENCH_RESULTS" in os.environ:
        return Path(os.environ["WEIGHTZOO_BENCH_RESULTS"])
    candidates = [common.ROOT / "results", workdir / "e2e" / "results"]
    found = [c for c in candidates if (c / "tables" / "runs.parquet").is_file()]
    return found[0] if found else candidates[0]


def replicate(source: Path, out: Path, seed_copies: int, dataset_copies: int) -> dict:
    """Write the source tables replicated to `out`/tables; returns runs, cells and stats rows.

    Copy (s, d) of a run has seed + s * (seed span) and dataset `name` (d = 0) or `name_rd`.
    The stats and maps tables are streamed (a lazy concatenation sunk to Parquet).
    """
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    runs = with_setting(pl.read_parquet(source / "tables" / "runs.parquet"))
    span = int(runs["seed"].max() - runs["seed"].min() + 1)

    def copies(frame):
        return pl.concat(
            [
                frame.with_columns(
                    seed=(pl.col("seed") + s * span).cast(pl.Int32),
                    dataset=pl.col("dataset") + (f"_r{d}" if d else ""),
                )
                for d in range(dataset_copies)
                for s in range(seed_copies)
            ]
        )

    copies(runs).write_parquet(tables / "runs.parquet")
    for name in PER_RUN:
        copies(pl.scan_parquet(source / "tables" / f"{name}.parquet")).sink_parquet(
            tables / f"{name}.parquet", compression="zstd"
        )
    shutil.copy(source / "tables" / "prediction.parquet", tables / "prediction.parquet")
    n = seed_copies * dataset_copies
    rows = pl.scan_parquet(tables / "stats.parquet").select(pl.len()).collect().item()
    cells = runs.select(CELL_KEYS).n_unique() * dataset_copies
    return {
        "runs": runs.height * n,
        "cells": cells,
        "stats_rows": rows,
        "stats_mib": (tables / "stats.parquet").stat().st_size / 2**20,
    }


def job_code(step: str, work: Path, cfg: dict) -> str:
    """The Python of one job, as its workflow script would call it (one place for the calls)."""
    t = work / "tables"
    figures_dir = work / "figures"
    if step == "claims":
        call = (
            "jobs.claims_job(runs_path=T/'runs.parquet', stats_path=T/'stats.parquet', "
            "analysis_cfg=CFG['analysis'], outputs={'groups': T/'groups.parquet', "
            "'final': T/'final_stats.parquet', 'trajectories': T/'trajectories.parquet', "
            "'cells': T/'cells.parquet', 'claims': T/'claims.parquet', "
            "'claims_md': W/'claims.md'})"
        )
    elif step == "dashboard":
        call = (
            "jobs.dashboard_job(spec_files=sorted(F.glob('*.vl.json')), "
            "claims_path=T/'claims.parquet', groups_path=T/'groups.parquet', "
            "prediction_path=T/'prediction.parquet', output=W/'index.html')"
        )
    else:
        call = (
            f"jobs.figure_job(name={step!r}, tables={{k: T/v for k, v in PATHS.items() "
            f"if k in FIGURES[{step!r}].tables}}, settings=CFG['figures'], "
            "hist=CFG['analysis']['hist'], "
            f"html_out=F/'{step}.html', image_out=F/'{step}.svg', spec_out=F/'{step}.vl.json')"
        )
    paths = {
        "groups": "groups.parquet",
        "final": "final_stats.parquet",
        "trajectories": "trajectories.parquet",
        "maps": "strength_maps.parquet",
        "prediction": "prediction.parquet",
        "predictions_oof": "predictions_oof.parquet",
    }
    return "\n".join(
        [
            "import json, pathlib, sys",
            f"sys.path.insert(0, {str(common.ROOT / 'src')!r})",
            "from weightzoo import jobs",
            "from weightzoo.figures import FIGURES",
            f"jobs.setup_logging({str(work / f'{step}.log')!r})",
            f"T, W, F = pathlib.Path({str(t)!r}), pathlib.Path({str(work)!r}), "
            f"pathlib.Path({str(figures_dir)!r})",
            f"CFG = json.loads({json.dumps(cfg)!r})",
            f"PATHS = {paths!r}",
            call,
        ]
    )


def steps() -> list[str]:
    """The jobs measured: the claims, every figure (the workflow's list), the dashboard."""
    from weightzoo.figures import FIGURES

    return ["claims", *FIGURES, "dashboard"]


def _phases(log: Path) -> dict[str, float]:
    """The claims job's own split of its time, from its log ("phase <name>: <s> s" lines)."""
    if not log.is_file():
        return {}
    return {name: float(s) for name, s in re.findall(r"phase (.+?): ([\d.]+) s", log.read_text())}


def measure(size: int, cfg: dict, workdir: Path, src: Path) -> dict:
    """Replicate `src` to `size`x, run every job once in a subprocess; seconds and peak MiB."""
    seed_copies, dataset_copies = LAYOUT[size]
    work = workdir / f"x{size}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "figures").mkdir(parents=True)
    info = replicate(src, work, seed_copies, dataset_copies)
    info["steps"] = {}
    try:
        for step in steps():
            wall, peak, proc = common.run_with_peak_rss(
                [sys.executable, "-c", job_code(step, work, cfg)], cwd=common.ROOT
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{step} at {size}x failed:\n{proc.stdout[-3000:]}")
            info["steps"][step] = (wall, peak)
        info["phases"] = _phases(work / "claims.log")
        info["final_mib"] = (work / "tables" / "final_stats.parquet").stat().st_size / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return info


def exponent(runs: list[int], values: list[float]) -> float | None:
    """Slope of log(value) on log(runs): the growth exponent (None below two sizes)."""
    if len(runs) < 2:
        return None
    return float(np.polyfit(np.log(runs), np.log(values), 1)[0])


SUMMARY_HEADERS = [
    "size",
    "runs",
    "cells",
    "stats rows",
    "stats MiB",
    "claims s",
    "claims peak MiB",
    "figures s (sum)",
    "figures peak MiB",
    "dashboard s",
    "dashboard peak MiB",
]


def _summary_row(size: int, r: dict) -> list[str]:
    """One size: the table sizes, the claims job, the figures (summed; largest peak), the page."""
    figures = [n for n in r["steps"] if n not in ("claims", "dashboard")]
    (claims_s, claims_mib), (dash_s, dash_mib) = r["steps"]["claims"], r["steps"]["dashboard"]
    fig_s = sum(r["steps"][f][0] for f in figures)
    fig_mib = max(r["steps"][f][1] for f in figures)
    counts = [f"{size}×", f"{r['runs']:,}", f"{r['cells']:,}", f"{r['stats_rows']:,}"]
    values = [r["stats_mib"], claims_s, claims_mib, fig_s, fig_mib, dash_s, dash_mib]
    return counts + [
        f"{v:.0f}" if i % 2 == 0 else f"{v:.1f}" for i, v in enumerate(values)
    ]  # MiB, s


def _method(sizes: tuple[int, ...], base_runs: int, src: Path) -> str:
    layout = ", ".join(f"{s}×: {LAYOUT[s][0]} × {LAYOUT[s][1]}" for s in sizes)
    return (
        f"Source: the finished run in `{src}` ({base_runs:,} runs), replicated with new "
        f"seeds and dataset names (seed copies × dataset copies: {layout}). Replicated seeds "
        "are exact copies, so the numbers measure cost, not science. Each job runs once per "
        "size in its own process (Python start-up and imports included), as the workflow "
        "runs it; peak RSS is sampled every 50 ms; timings on a shared machine are noisy."
    )


def section_analysis_scale(opts: common.Options) -> str:
    """Markdown section (h): the claims job, the figures and the dashboard at 1x-105x."""
    head = "## (h) The analysis at the paper's scale"
    src = source(opts.workdir)
    missing = [t for t in TABLES if not (src / "tables" / f"{t}.parquet").is_file()]
    if missing:
        return (
            f"{head}\n\nSkipped: {src}/tables lacks {missing}; run `make run` first "
            "(or set WEIGHTZOO_BENCH_RESULTS to a finished results folder)."
        )
    cfg = yaml.safe_load((common.ROOT / "config" / "config.yaml").read_text())
    sizes = QUICK_SIZES if opts.quick else SIZES
    results = {s: measure(s, cfg, opts.workdir / "analysis", src) for s in sizes}
    names = list(results[sizes[0]]["steps"])
    per_step, growth = [], []
    # the smallest sizes are dominated by start-up: fit from 10x up when there are two such
    fit = [s for s in sizes if s >= 10]
    fit = fit if len(fit) >= 2 else list(sizes)
    n_runs = [results[s]["runs"] for s in fit]
    for n in names:
        cells = [results[s]["steps"][n] for s in sizes]
        per_step.append([f"`{n}`", *(f"{t:.1f} s / {m:.0f} MiB" for t, m in cells)])
        time_exp = exponent(n_runs, [results[s]["steps"][n][0] for s in fit])
        mem_exp = exponent(n_runs, [results[s]["steps"][n][1] for s in fit])
        growth.append([f"`{n}`", _exp(time_exp), _exp(mem_exp)])
    largest = results[sizes[-1]]
    wall, peak = largest["steps"]["claims"]
    within = "within" if wall <= BUDGET["seconds"] and peak <= BUDGET["mib"] else "outside"
    slowest = max(names, key=lambda n: largest["steps"][n][0])
    base = results[sizes[0]]["runs"] // (LAYOUT[sizes[0]][0] * LAYOUT[sizes[0]][1])
    phases = largest["phases"]
    split = ", ".join(f"{name} {t:.1f} s" for name, t in phases.items()) or "not logged"
    io = phases.get("read stats", 0.0) + phases.get("final stats", 0.0)
    bound = (
        f"Reading the stats table and streaming the final-epoch rows to disk take {io:.0f} s "
        f"of the {sum(phases.values()):.0f} s logged: the job is bound by the stats table's "
        "size (linear in runs); the tests run over cells and grow with their number."
        if phases
        else ""
    )
    lines = [
        head,
        _method(sizes, base, src),
        common.table(SUMMARY_HEADERS, [_summary_row(s, r) for s, r in results.items()]),
        "Per job (seconds / peak MiB):",
        common.table(["job", *(f"{s}×" for s in sizes)], per_step),
        f"Growth exponent (slope of log value on log runs, {', '.join(f'{s}×' for s in fit)}):",
        common.table(["job", "time", "peak memory"], growth),
        f"At {sizes[-1]}× ({largest['runs']:,} runs, {largest['cells']:,} cells) the claims "
        f"job took {wall:.0f} s and {peak:.0f} MiB ({within} the budget of "
        f"{BUDGET['seconds']:.0f} s and {BUDGET['mib']:.0f} MiB); its own split: {split}. "
        f"{bound} final_stats.parquet is {largest['final_mib']:.0f} MiB. The slowest job is "
        f"`{slowest}` ({largest['steps'][slowest][0]:.0f} s).",
    ]
    if opts.quick:
        lines.insert(1, "--quick: tiny sizes, not for reporting.")
    return "\n\n".join(lines)


def _exp(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"n^{v:.2f}"
