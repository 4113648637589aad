"""The workflow's jobs as plain functions: paths and values in, files out.

workflow/scripts/ only unpack the snakemake object and call these, so every step can be run
and tested without Snakemake.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

import weightzoo
from weightzoo import data, dumps
from weightzoo.io import atomic_path

if TYPE_CHECKING:
    import torch

# Each job imports the heavy modules it needs (torch, scipy, altair) in its own function, so
# the many small jobs that need none of them, and Snakemake's planning, start in a fraction
# of the time and memory.

logger = logging.getLogger(__name__)


def setup_logging(log_path: str | Path | None) -> None:
    """Send the library's log records (and warnings) to the job's log file."""
    handler = logging.FileHandler(log_path) if log_path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.captureWarnings(True)


def run_logged(fn, log_path: str | Path | None, **kwargs):
    """Run one job function with logging to `log_path`; known input errors exit with one line.

    Bad input (a dataset file, a config value) is the user's to fix, so it is reported as a
    single clear message instead of a traceback; anything else keeps its traceback in the log.
    """
    setup_logging(log_path)
    try:
        return fn(**kwargs)
    except (data.DatasetError, ValueError) as err:
        logger.exception("%s", err)  # the log keeps the traceback; the terminal gets one line
        sys.exit(f"weightzoo: {err}")
    except Exception:
        logger.exception("job failed")
        raise


def download_dataset(*, name: str, folder: str | Path, download: bool, timeout_s: float,
                     retries: int, manifest_out: str | Path) -> None:  # fmt: skip
    """Fetch (or, with download=False, only verify) the raw files of a torchvision dataset.

    The manifest (file names and verified md5s) is the job's output; it is written only once
    every file is in place with the right checksum.
    """
    files = data.raw_files(name)
    Path(folder).mkdir(parents=True, exist_ok=True)
    if download:  # verifies each file's md5 before moving it into place
        data.download(files, Path(folder), timeout=timeout_s, retries=retries)
    elif problems := data.staged_problems(files, Path(folder)):
        raise data.DatasetError(
            f"{name}: " + "; ".join(problems) + " (data.download is false: pre-stage the files)"
        )
    manifest = {"dataset": name, "folder": str(folder),
                "files": [{"filename": f.filename, "md5": f.md5} for f in files]}  # fmt: skip
    with atomic_path(Path(manifest_out)) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))


def prepare_dataset(*, name: str, source: dict, output: str | Path) -> None:
    """Build the compact prepared form of one dataset and write it atomically."""
    kind = source["kind"]
    if kind == "digits":
        prepared = data.prepare_digits(source["test_fraction"], source["split_seed"])
    elif kind == "torchvision":
        prepared = data.prepare_torchvision(name, Path(source["folder"]))
    elif kind == "npz":
        prepared = data.prepare_npz(Path(source["path"]), name)
    else:
        raise ValueError(f"unknown dataset source {kind!r}")
    logger.info("%s: %d train / %d test images of shape %s, %d classes", name,
                len(prepared.y_train), len(prepared.y_test), prepared.x_train.shape[1:],
                prepared.n_classes)  # fmt: skip
    data.save_prepared(prepared, Path(output))


def provenance(device: torch.device, threads: int) -> dict:
    """What produced a run: library versions, interpreter, device and threads."""
    import torch

    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "weightzoo_version": weightzoo.__version__,
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "device": device.type,
        "device_name": dev or platform.machine(),
        "threads": threads,
        "host": platform.node(),
    }


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
                    writer.write(found[0].read_row_group(found[1])
                                 if isinstance(found, tuple) else found)  # fmt: skip

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def train_job(
    *,
    data_path: str | Path,
    dataset: str,
    family: str,
    arch: str,
    arch_params: dict,
    train: dict,
    seeds: list[int],
    dump_epochs: list[int],
    device: str,
    threads: int,
    weights_out: str | Path,
    metrics_out: str | Path,
    runs_out: str | Path,
    resume_dir: str | Path,
    vectorise: bool = True,
    checkpoint_every_s: float = 10.0,
) -> pl.DataFrame:
    """Train `seeds` of one architecture on one dataset; write weights, metrics and runs.

    The seeds train together (vectorised unless `vectorise` is false). Progress is saved in
    `resume_dir` after an epoch every `checkpoint_every_s` seconds: a job killed at any point
    (time limit, preemption, SIGKILL) and started again continues from the last checkpoint
    and ends with the same bits as an uninterrupted run. The folder is removed at the end.
    """
    import torch

    from weightzoo import training
    from weightzoo.models import build_model, tensor_kinds

    training.set_determinism(threads)
    dev = training.select_device(device)
    tensors = training.to_tensors(data.load_prepared(Path(data_path)), dev)
    config_slice = {"dataset": dataset, "family": family, "arch": arch, "arch_params": arch_params,
                    "train": train, "dump_epochs": dump_epochs}  # fmt: skip
    progress = ResumeState(resume_dir, {**config_slice, "seeds": seeds, "device": dev.type,
                                        "vectorise": vectorise})  # fmt: skip
    metrics = progress.state["metrics"]
    with torch.device("meta"):  # names and kinds of the tensors, without touching any RNG
        kinds = tensor_kinds(build_model(family, arch_params, tensors.in_shape, tensors.n_classes))
    tags = {"dataset": dataset, "family": family, "arch": arch}

    def on_dump(epoch, states):
        progress.add_dumps(epoch, [
            dumps.state_dict_table(w, kinds, seed=seed, epoch=epoch, **tags)
            for seed, w in states.items()
        ])  # fmt: skip

    results = training.train_seeds(family, arch_params, tensors, train, seeds, dump_epochs,
                                   on_dump, metrics.append, progress.checkpoint,
                                   resume=progress.state["current"], vectorise=vectorise,
                                   checkpoint_every_s=checkpoint_every_s)  # fmt: skip
    prov = provenance(dev, threads)
    runs = []
    for result in results:
        logger.info("%s %s seed %d: %s after %d epochs, test acc %.4f (best %.4f)", dataset,
                    arch, result.seed, result.status, result.epochs_run, result.final_test_acc,
                    result.best_test_acc)  # fmt: skip
        runs.append({**tags, **vars(result), "epochs_planned": train["epochs"], **prov,
                     "config": json.dumps(config_slice, sort_keys=True)})  # fmt: skip
    progress.assemble(weights_out, seeds)
    metrics_df = (
        pl.DataFrame(metrics)
        .select(
            pl.lit(dataset).alias("dataset"), pl.lit(family).alias("family"),
            pl.lit(arch).alias("arch"), pl.col("seed").cast(pl.Int32),
            pl.col("epoch").cast(pl.Int32), pl.exclude("seed", "epoch"),
        )
        .sort("seed", "epoch", maintain_order=True)
    )  # fmt: skip
    runs_df = pl.DataFrame(runs).with_columns(
        pl.col("seed", "epochs_run", "epochs_planned", "best_epoch", "seeds_in_block").cast(
            pl.Int32
        ),
        pl.col("diverged_epoch").cast(pl.Int32),
    )
    dumps.write_table(metrics_df.to_arrow(), metrics_out)
    dumps.write_table(runs_df.to_arrow(), runs_out)
    progress.remove()
    logger.info("job done: %d seed(s) in %.1f s", len(seeds), results[0].wall_time_s)
    return runs_df


RUNS_COLUMNS = [
    "dataset", "family", "arch", "seed", "n_params", "status", "final_test_acc",
    "best_test_acc", "best_epoch", "final_train_acc", "final_test_loss", "final_train_loss",
    "epochs_run", "epochs_planned", "diverged_epoch", "wall_time_s", "seeds_in_block",
]  # fmt: skip


def aggregate_runs(*, run_files: list[str | Path], parquet_out: str | Path,
                   csv_out: str | Path) -> pl.DataFrame:  # fmt: skip
    """Concatenate the per-job run tables into results/tables/runs.parquet (+ .csv)."""
    runs = (
        pl.concat([pl.read_parquet(f) for f in run_files], how="diagonal_relaxed")
        .select(*RUNS_COLUMNS, pl.exclude(RUNS_COLUMNS))
        .sort("dataset", "family", "n_params", "arch", "seed")
    )
    dumps.write_table(runs.to_arrow(), parquet_out)
    with atomic_path(Path(csv_out)) as tmp:
        runs.drop("config").write_csv(tmp)
    summary = runs.group_by("dataset", "family").agg(
        pl.len().alias("runs"), (pl.col("status") == "diverged").sum().alias("diverged"),
        pl.col("final_test_acc").min().alias("min_acc"),
        pl.col("final_test_acc").max().alias("max_acc"),
    )  # fmt: skip
    logger.info("runs summary:\n%s", summary)
    return runs


def stats_job(*, weights_path: str | Path, family: str, in_shape: list[int],
              hist_range: list[float], bins: int, stats_out: str | Path,
              maps_out: str | Path) -> None:  # fmt: skip
    """Statistics (and first-layer strength maps) of one training job's dumps."""
    from weightzoo import stats

    started = time.perf_counter()
    table = stats.file_stats(weights_path, tuple(hist_range), bins)
    dumps.write_table(table.to_arrow(), stats_out)
    maps = stats.file_strength_maps(weights_path, family, tuple(in_shape))
    dumps.write_table(maps.to_arrow(), maps_out)
    logger.info("%d statistics rows, %d map pixels in %.1f s", table.height, maps.height,
                time.perf_counter() - started)  # fmt: skip


def concat_tables(*, files: list[str | Path], output: str | Path) -> None:
    """Concatenate per-job Parquet files into one table, streamed (never all in memory)."""
    with atomic_path(Path(output)) as tmp:
        pl.scan_parquet([str(f) for f in files]).sink_parquet(tmp, compression="zstd")
    logger.info(
        "%s: %d rows from %d files",
        output,
        pl.scan_parquet(output).select(pl.len()).collect().item(),
        len(files),
    )


def claims_job(
    *,
    runs_path: str | Path,
    stats_path: str | Path,
    analysis_cfg: dict,
    groups_out: str | Path,
    final_out: str | Path,
    trajectories_out: str | Path,
    claims_out: str | Path,
    claims_md_out: str | Path,
    cells_out: str | Path | None = None,
) -> pl.DataFrame:
    """Label runs, test the paper's three claims, write the claims table and page.

    The stats table is read lazily, only the pooled rows the tests need; the final-epoch
    statistics (the figures' table) are streamed to disk, never held whole. `cells_out`
    (default: cells.parquet beside the claims table) gets one row per architecture cell.
    """
    from weightzoo import analysis

    started = time.perf_counter()
    settings = analysis.Settings.from_config(analysis_cfg)
    runs = pl.read_parquet(runs_path)
    stats_lf = pl.scan_parquet(stats_path)
    result = analysis.run_claims(runs, stats_lf, settings)
    groups = result.groups
    sunk = time.perf_counter()
    with atomic_path(Path(final_out)) as tmp:
        analysis.final_stats(stats_lf, groups).sink_parquet(tmp, compression="zstd")
    logger.info("phase final stats: %.2f s", time.perf_counter() - sunk)
    verdicts = analysis.verdicts(result.claims)
    counts = dict(groups.group_by("group").len().sort("group").rows())
    counts |= {
        "runs": groups.height,
        "cells": result.cells.height,
        "diverged": int((groups["status"] == "diverged").sum()),
    }
    page = analysis.claims_markdown(
        result.claims, verdicts, rule=groups["group_rule"][0], settings=settings, counts=counts
    )
    cells_out = Path(claims_out).with_name("cells.parquet") if cells_out is None else cells_out
    dumps.write_table(groups.to_arrow(), groups_out)
    dumps.write_table(result.cells.to_arrow(), cells_out)
    dumps.write_table(result.trajectories.to_arrow(), trajectories_out)
    dumps.write_table(result.claims.to_arrow(), claims_out)
    with atomic_path(Path(claims_md_out)) as tmp:
        tmp.write_text(page)
    with pl.Config(tbl_rows=-1, tbl_cols=8, fmt_str_lengths=40):
        logger.info("verdicts:\n%s", verdicts.drop("detail"))
    logger.info(
        "claims of %d runs in %d cells in %.1f s",
        groups.height,
        result.cells.height,
        time.perf_counter() - started,
    )
    return result.claims


# The tables each figure is drawn from (rules/figures.smk asks for exactly these).
FIGURE_TABLES = {
    "accuracy_vs_params": ["groups"],
    "statistic_vs_accuracy": ["final"],
    "weight_histograms": ["final"],
    "node_strength": ["final"],
    "strength_maps": ["groups", "maps"],
    "trajectories": ["trajectories"],
    "distance_heatmap": ["final"],
}


def figure_chart(name: str, tables: dict[str, str | Path], settings: dict, hist_range):
    """Build one figure from its tables, aggregated with polars before plotting."""
    from weightzoo import analysis, figures

    fn = figures.FIGURES[name][0]
    size = {"width": settings["width"], "height": settings["height"]}
    if name == "accuracy_vs_params":
        return fn(pl.read_parquet(tables["groups"]), **size)
    if name == "trajectories":
        return fn(pl.read_parquet(tables["trajectories"]), **size)
    if name == "strength_maps":
        groups = pl.read_parquet(tables["groups"])
        final_epochs = groups.select(*analysis.RUN_KEYS, epoch="epochs_run").lazy()
        maps = pl.scan_parquet(tables["maps"]).join(final_epochs, on=[*analysis.RUN_KEYS, "epoch"])
        return fn(maps.collect(), groups, **size)
    final = pl.read_parquet(tables["final"])
    if name == "statistic_vs_accuracy":
        return fn(final, settings["statistic"], **size)
    if name == "weight_histograms":
        return fn(final, tuple(hist_range), **size)
    if name == "distance_heatmap":
        dist = analysis.heatmap_distances(final, tuple(hist_range), settings["max_heatmap_runs"])
        return fn(dist, max_runs=settings["max_heatmap_runs"], **size)
    return fn(final, **size)


def figure_job(*, name: str, tables: dict[str, str | Path], settings: dict, hist_range: list,
               html_out: str | Path, image_out: str | Path, spec_out: str | Path) -> None:  # fmt: skip
    """One figure: offline HTML, an SVG or PNG image and its spec (for the dashboard)."""
    from weightzoo import figures

    chart = figure_chart(name, tables, settings, hist_range)
    fn, title = figures.FIGURES[name]
    figures.save_chart(chart.properties(title=title), html_out, image_out)
    # the dashboard gives each figure a heading of its own, so its spec carries no title
    record = {"name": name, "title": title, "caption": figures.caption(fn),
              "spec": figures.chart_spec(chart)}  # fmt: skip
    with atomic_path(Path(spec_out)) as tmp:
        tmp.write_text(json.dumps(record))


def dashboard_job(*, spec_files: list[str | Path], claims_path: str | Path,
                  groups_path: str | Path, output: str | Path) -> None:  # fmt: skip
    """results/index.html: verdicts, every figure and the claims table on one offline page."""
    from weightzoo import analysis, dashboard

    claims = pl.read_parquet(claims_path)
    groups = pl.read_parquet(groups_path)
    counts = dict(groups.group_by("group").len().rows())
    summary = (
        f"{groups.height} trained networks ({', '.join(f'{n} {g}' for g, n in sorted(counts.items()))}; "
        f"{int((groups['status'] == 'diverged').sum())} diverged) over "
        f"{groups['dataset'].n_unique()} dataset(s) and {groups['arch'].n_unique()} architectures. "
        f"Groups: {groups['group_rule'][0]}."
    )
    specs = [json.loads(Path(f).read_text()) for f in spec_files]
    dashboard.build_dashboard(specs, claims, analysis.verdicts(claims), summary, output)
