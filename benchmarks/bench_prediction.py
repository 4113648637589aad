"""(i) Accuracy predicted from the weights at the paper's scale: the prediction job on
replicated tables.

A finished run's `runs` and `stats` tables are replicated (bench_analysis.replicate: new
seeds, new dataset names) to about 19,440 runs, three times the 6,480 networks of
config/paper.yaml: 3 dataset names, as the paper has 3 datasets (so leave-one-dataset-out
has its 3 folds), and as many seed copies as make up the count (28 for the 235 runs of the
default zoo: 19,740 runs). The prediction job then runs as the workflow runs it, in its own
process with 2 worker processes, under `analysis.prediction` of the default config (merged
with that of config/paper.yaml, where it sets one), timed with its peak RSS (the job and
its workers).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import common
import polars as pl
import yaml
from bench_analysis import replicate, source

TARGET_RUNS = 19_440  # 3x config/paper.yaml's 6,480 networks: a margin over the real study
DATASET_COPIES = 3
# name -> (seed copies, or None for TARGET_RUNS; dataset copies; config)
CASES = {
    "1x, default config": (1, 1, "config.yaml"),
    "3x the paper's scale, paper config": (None, DATASET_COPIES, "paper.yaml"),
}
QUICK_CASES = {"1x, quick": (1, 1, "config.yaml")}
BUDGET_S = 300.0  # 3x the paper's scale on 2 cores
THREADS = 2


def prediction_config(name: str, quick: bool) -> dict:
    """`analysis.prediction` of config/<name> merged over the default's (a --configfile)."""
    base = yaml.safe_load((common.ROOT / "config" / "config.yaml").read_text())
    cfg = base["analysis"]["prediction"]
    if name != "config.yaml":
        override = yaml.safe_load((common.ROOT / "config" / name).read_text())
        cfg = {**cfg, **override.get("analysis", {}).get("prediction", {})}
    if quick:
        cfg = {
            **cfg,
            "feature_sets": ["size", "layer7"],
            "splits": ["architecture"],
            "bootstrap": 99,
            "early": {**cfg["early"], "epochs": [1]},
        }
    return cfg


def job_code(work: Path, cfg: dict) -> str:
    """The prediction job as its workflow script calls it."""
    t = work / "tables"
    return "\n".join(
        [
            "import json, pathlib, sys",
            f"sys.path.insert(0, {str(common.ROOT / 'src')!r})",
            "from weightzoo import jobs",
            f"jobs.setup_logging({str(work / 'predict.log')!r})",
            f"T = pathlib.Path({str(t)!r})",
            f"jobs.predict_job(runs_path=T/'runs.parquet', stats_path=T/'stats.parquet', "
            f"prediction_cfg=json.loads({json.dumps(cfg)!r}), threads={THREADS}, "
            "table_out=T/'prediction.parquet', oof_out=T/'predictions_oof.parquet', "
            f"md_out=pathlib.Path({str(work / 'prediction.md')!r}))",
        ]
    )


def measure(name: str, case: tuple, workdir: Path, quick: bool, src: Path) -> dict:
    """Replicate `src`, run the job once in a subprocess: seconds, peak MiB, rows and the log."""
    seed_copies, dataset_copies, config_name = case
    if seed_copies is None:
        base = pl.scan_parquet(src / "tables" / "runs.parquet").select(pl.len()).collect()
        seed_copies = max(1, round(TARGET_RUNS / (dataset_copies * base.item())))
    work = workdir / name.split(",", 1)[0].replace(" ", "_")
    shutil.rmtree(work, ignore_errors=True)
    info = replicate(src, work, seed_copies, dataset_copies)
    try:
        cfg = prediction_config(config_name, quick)
        wall, peak, proc = common.run_with_peak_rss(
            [sys.executable, "-c", job_code(work, cfg)], cwd=common.ROOT
        )
        if proc.returncode != 0:
            raise RuntimeError(f"prediction at {name} failed:\n{proc.stdout[-3000:]}")
        table = pl.read_parquet(work / "tables" / "prediction.parquet")
        log = (work / "predict.log").read_text()
        info |= {
            "cells": int(table.filter(epoch="final")["n_cells"].max()),  # arch x setting
            "seed_copies": seed_copies,
            "seconds": wall,
            "mib": peak,
            "rows": table.height,
            "config": config_name,
            "fitted": int(table["tau"].is_not_null().sum()),
            "log": log,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return info


HEADERS = ["case", "runs", "cells", "stats rows", "rows (fitted)", "seconds", "peak MiB"]


def section_prediction_scale(opts: common.Options) -> str:
    """Markdown section (i): the prediction job at 1x and at 3x the paper's scale."""
    head = "## (i) Accuracy predicted from the weights at the paper's scale"
    src = source(opts.workdir)
    missing = [t for t in ("runs", "stats") if not (src / "tables" / f"{t}.parquet").is_file()]
    if missing:
        return (
            f"{head}\n\nSkipped: {src}/tables lacks {missing}; run `make run` first "
            "(or set WEIGHTZOO_BENCH_RESULTS to a finished results folder)."
        )
    cases = QUICK_CASES if opts.quick else CASES
    results = {
        n: measure(n, c, opts.workdir / "prediction", opts.quick, src) for n, c in cases.items()
    }
    rows = [
        [
            name,
            f"{r['runs']:,}",
            f"{r['cells']:,}",
            f"{r['stats_rows']:,}",
            f"{r['rows']} ({r['fitted']})",
            f"{r['seconds']:.0f}",
            f"{r['mib']:.0f}",
        ]
        for name, r in results.items()
    ]
    largest = results[list(results)[-1]]
    within = "within" if largest["seconds"] <= BUDGET_S else "outside"
    phases = [
        line.split("INFO weightzoo.prediction: ", 1)[1]
        for line in largest["log"].splitlines()
        if "phase " in line
    ]
    lines = [
        head,
        f"Source: the finished run in `{src}`, replicated with new seeds and dataset names "
        "(copies of the seeds are exact copies: the numbers measure cost, not science). "
        f"Each case runs the job once in its own process with {THREADS} workers (imports "
        "included); peak RSS is the job's process tree sampled every 50 ms; timings on a "
        "shared machine are noisy.",
        common.table(HEADERS, rows),
        f"At {list(results)[-1]} the job took {largest['seconds']:.0f} s ({within} the "
        f"budget of {BUDGET_S:.0f} s on 2 cores) and {largest['mib']:.0f} MiB; its phases: "
        + ("; ".join(phases) or "not logged")
        + ".",
    ]
    if opts.quick:
        lines.insert(1, "--quick: tiny sizes, not for reporting.")
    return "\n\n".join(lines)
