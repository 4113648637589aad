"""(m) A public zoo's scale: importing a Small CNN Zoo and analysing it.

A synthetic zoo in the Small CNN Zoo's files (weights.npy of float32 rows of 4,970 weights,
metrics.csv.gz, layout.csv; weightzoo.zoo_writers) is written at each size of
`--import-rows` (27,000 rows by default; the real zoo has 270,000 per dataset, 30,000 runs
x 9 checkpoints: `--import-rows 27000,270000`). Its runs are planned as the workflow plans them and spread
over jobs of RUNS_PER_JOB runs (`imports.<name>.jobs`), so a job's memory does not grow with
the zoo. Each import job and each statistics job runs as the workflow runs it, in its own
process, two at a time (2 cores); then the runs and stats tables are aggregated and the
claims and prediction jobs run on them, each timed with its peak RSS.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path

import common
import polars as pl
import yaml

from weightzoo.imports import plan_import
from weightzoo.zoo_writers import write_small_cnn_zoo

RUNS_PER_JOB = 500
WORKERS = 2  # jobs at a time: the 2 cores of the goal
GOAL = {"seconds": 30 * 60.0, "mib": 4096.0}  # import + statistics of the full zoo, 2 cores
QUICK_ROWS = (900, 1800)
FULL_ROWS = 270_000  # one dataset of the real Small CNN Zoo


def _script(lines: list[str]) -> list[str]:
    return [
        sys.executable,
        "-c",
        "\n".join([f"import sys; sys.path.insert(0, {str(common.ROOT / 'src')!r})", *lines]),
    ]


def run_jobs(commands: list[list[str]], workers: int = WORKERS) -> tuple[float, float, int]:
    """Run the commands `workers` at a time: (wall seconds, largest peak MiB of one, failed)."""
    queue, lock = list(commands), threading.Lock()
    peaks, failed = [], []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                cmd = queue.pop(0)
            _, peak, proc = common.run_with_peak_rss(cmd, cwd=common.ROOT)
            with lock:
                peaks.append(peak)
                if proc.returncode != 0:
                    failed.append(proc.stdout[-2000:])

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) failed; the first:\n{failed[0]}")
    return time.perf_counter() - started, max(peaks), len(commands)


def measure(rows: int, work: Path) -> dict:
    """Write, import, summarise and analyse a zoo of `rows` rows; seconds and MiB of each."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    n_runs = rows // 9
    t0 = time.perf_counter()
    write_small_cnn_zoo(work / "zoo", n_runs, seed=rows)
    written = time.perf_counter() - t0
    t0 = time.perf_counter()
    jobs = max(1, round(n_runs / RUNS_PER_JOB))
    plan = plan_import(
        "cnnzoo", {"format": "small_cnn_zoo", "path": str(work / "zoo"), "jobs": jobs}
    )
    planned = time.perf_counter() - t0
    config = yaml.safe_load((common.ROOT / "config" / "config.yaml").read_text())
    analysis = config["analysis"]
    results = work / "results"
    imports, stats = [], []
    for shard, runs in plan.shards().items():
        job = plan.job(runs)
        job["outputs"] = [{k: str(work / v) for k, v in o.items()} for o in job["outputs"]]
        spec = work / f"{shard}.json"
        spec.write_text(json.dumps(job))
        imports.append(
            _script(
                [
                    "import json; from weightzoo import imports, jobs",
                    f"jobs.setup_logging({str(work / f'{shard}.import.log')!r})",
                    f"imports.import_shard(**json.load(open({str(spec)!r})))",
                ]
            )
        )
        units = [
            {
                "weights": str(work / plan.file(r, "weights")),
                "stats": str(work / plan.file(r, "stats")),
                "maps": str(work / plan.file(r, "strength_maps")),
            }
            for r in runs
        ]
        (work / f"{shard}.stats.json").write_text(json.dumps(units))
        stats.append(
            _script(
                [
                    "import json; from weightzoo import imports, jobs",
                    f"jobs.setup_logging({str(work / f'{shard}.stats.log')!r})",
                    f"imports.import_stats(units=json.load(open({str(work / f'{shard}.stats.json')!r})), "
                    f"hist={analysis['hist']!r}, spectral={analysis['spectral']!r})",
                ]
            )
        )
    out = {"rows": rows, "runs": n_runs, "jobs": jobs, "write_s": written, "plan_s": planned}
    out["import_s"], out["import_mib"], _ = run_jobs(imports)
    out["stats_s"], out["stats_mib"], _ = run_jobs(stats)
    files = {k: [str(work / f) for f in plan.files(k)] for k in ("runs", "stats")}
    out["zoo_gib"] = sum(f.stat().st_size for f in (work / "zoo").iterdir()) / 2**30
    tables = results / "tables"
    (work / "files.json").write_text(json.dumps(files))
    aggregate = _script(
        [
            "import json; from weightzoo import jobs",
            f"f = json.load(open({str(work / 'files.json')!r}))",
            f"jobs.aggregate_runs(run_files=f['runs'], parquet_out={str(tables / 'runs.parquet')!r}, "
            f"csv_out={str(tables / 'runs.csv')!r})",
            f"jobs.concat_tables(files=f['stats'], output={str(tables / 'stats.parquet')!r})",
        ]
    )
    out["aggregate_s"], out["aggregate_mib"], _ = run_jobs([aggregate], 1)
    claims_cfg = {k: v for k, v in analysis.items() if k != "prediction"}
    claims = _script(
        [
            "import json; from weightzoo import jobs",
            f"jobs.setup_logging({str(work / 'claims.log')!r})",
            f"T = {str(tables)!r}",
            f"jobs.claims_job(runs_path=T + '/runs.parquet', stats_path=T + '/stats.parquet', "
            f"analysis_cfg=json.loads({json.dumps(claims_cfg)!r}), outputs={{"
            "'groups': T + '/groups.parquet', 'final': T + '/final_stats.parquet', "
            "'trajectories': T + '/trajectories.parquet', 'claims': T + '/claims.parquet', "
            f"'cells': T + '/cells.parquet', 'claims_md': {str(work / 'claims.md')!r}}})",
        ]
    )
    out["claims_s"], out["claims_mib"], _ = run_jobs([claims], 1)
    predict = _script(
        [
            "import json; from weightzoo import jobs",
            f"jobs.setup_logging({str(work / 'predict.log')!r})",
            f"T = {str(tables)!r}",
            f"jobs.predict_job(runs_path=T + '/runs.parquet', stats_path=T + '/stats.parquet', "
            f"prediction_cfg=json.loads({json.dumps(analysis['prediction'])!r}), threads=2, "
            "table_out=T + '/prediction.parquet', oof_out=T + '/predictions_oof.parquet', "
            f"md_out={str(work / 'prediction.md')!r})",
        ]
    )
    out["predict_s"], out["predict_mib"], _ = run_jobs([predict], 1)
    out["stats_rows"] = pl.scan_parquet(tables / "stats.parquet").select(pl.len()).collect().item()
    page = (work / "claims.md").read_text().split("## Verdicts", 1)[1].split("\n## Claim", 1)[0]
    out["verdicts"] = "\n".join(
        line for line in page.splitlines() if line.startswith(("|", "### "))
    ).replace("\n### ", "\n\n### ")
    shutil.rmtree(work, ignore_errors=True)
    return out


ANALYSIS_KEYS = ("aggregate_s", "claims_s", "claims_mib", "predict_s", "predict_mib")
HEADERS = [
    "rows (runs)",
    "jobs",
    "import s",
    "import MiB",
    "stats s",
    "stats MiB",
    "aggregate s",
    "claims s",
    "claims MiB",
    "prediction s",
    "prediction MiB",
]


def extrapolation(results: dict[int, dict]) -> str:
    """The full zoo's import and statistics, extrapolated (not measured) from the two largest
    sizes: time on the line through them, memory the larger peak (flat if streaming works)."""
    (a, ra), (b, rb) = sorted(results.items())[-2:]
    parts = []
    for name in ("import", "stats"):
        slope = (rb[f"{name}_s"] - ra[f"{name}_s"]) / (b - a)
        seconds = rb[f"{name}_s"] + slope * (FULL_ROWS - b)
        growth = rb[f"{name}_mib"] - ra[f"{name}_mib"]
        parts.append(
            f"{name} {seconds / 60:.0f} min, peak {rb[f'{name}_mib']:.0f} MiB "
            f"({growth:+.0f} MiB from {a:,} to {b:,} rows)"
        )
    return (
        f"**Extrapolated, not measured**: the full zoo ({FULL_ROWS:,} rows), linear in the rows "
        f"from {a:,} and {b:,}: " + "; ".join(parts) + "."
    )


def section_imports(opts: common.Options) -> str:
    """Markdown section (m): import, statistics, claims and prediction of a Small CNN Zoo."""
    head = "## (m) A public zoo's scale: a Small CNN Zoo imported and analysed"
    sizes = QUICK_ROWS if opts.quick else opts.import_rows
    results = {rows: measure(rows, opts.workdir / "imports" / str(rows)) for rows in sizes}
    table = [
        [
            f"{r['rows']:,} ({r['runs']:,})",
            r["jobs"],
            f"{r['import_s']:.0f}",
            f"{r['import_mib']:.0f}",
            f"{r['stats_s']:.0f}",
            f"{r['stats_mib']:.0f}",
            *(f"{r[k]:.0f}" for k in ANALYSIS_KEYS),
        ]
        for r in results.values()
    ]
    largest = results[max(results)]
    total = largest["import_s"] + largest["stats_s"]
    peak = max(largest["import_mib"], largest["stats_mib"])
    within = total <= GOAL["seconds"] and peak <= GOAL["mib"]
    lines = [
        head,
        f"A synthetic zoo in the Small CNN Zoo's files (9 checkpoints a run, 4,970 float32 "
        f"weights a row), planned as the workflow plans it, its runs spread over jobs of "
        f"{RUNS_PER_JOB} (`imports.<name>.jobs`). Import and statistics jobs run in their own "
        f"processes, {WORKERS} at a time; `import s` and `stats s` are the wall time of all of "
        "them, `MiB` the largest peak RSS of one job (its process tree, sampled every 50 ms). "
        "Aggregation (runs and stats tables), the claims job and the prediction job (2 "
        "workers) run after, under the default config's `analysis`. Writing the zoo and "
        "planning it: "
        + "; ".join(
            f"{r['rows']:,} rows {r['write_s']:.0f} s and {r['plan_s']:.1f} s ({r['zoo_gib']:.2f} GiB)"
            for r in results.values()
        )
        + ".",
        common.table(HEADERS, table),
        f"At {largest['rows']:,} rows, import and statistics took {total / 60:.1f} min with a "
        f"largest job of {peak:.0f} MiB: {'within' if within else 'outside'} the goal of "
        f"{GOAL['seconds'] / 60:.0f} min and {GOAL['mib'] / 1024:.0f} GiB on 2 cores"
        + (f" (a goal for {FULL_ROWS:,} rows). " if largest["rows"] < FULL_ROWS else ". ")
        + f"{largest['stats_rows']:,} statistics rows. The claims job draws its permutations "
        "and bootstraps in blocks of rows (`resampling.CHUNK_BYTES`), and runs claim 2's "
        "between test on a stratified subsample of at most `analysis.between_max_cells` "
        "cells of a stratum (its claims.md says so).",
    ]
    lines += [f"The verdicts at {largest['rows']:,} rows:", largest["verdicts"]]
    if len(results) >= 2 and max(results) < FULL_ROWS:
        lines.insert(-2, extrapolation(results))
    if opts.quick:
        lines.insert(1, "--quick: tiny sizes, not for reporting.")
    return "\n\n".join(lines)
