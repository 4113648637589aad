"""The workflow's jobs as plain functions: paths and values in, files out.

workflow/scripts/ only unpack the snakemake object and call these, so every step can be run
and tested without Snakemake. Each job imports the heavy modules it needs (torch, scipy,
altair) in its own body, so the many small jobs that need none of them, and Snakemake's
planning, start in a fraction of the time and memory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from weightzoo import data, dumps, io, stops
from weightzoo.io import atomic_path

if TYPE_CHECKING:  # torch and the training loop are imported by the jobs that train
    import torch

    from weightzoo import training

logger = logging.getLogger(__name__)


class _LogFile(logging.FileHandler):
    """A job's log file that stays quiet when its disk is full (the job says so in one line
    on the terminal instead of a logging traceback per record)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not io.is_disk_full(sys.exc_info()[1] or Exception()):
            super().handleError(record)


def setup_logging(log_path: str | Path | None) -> None:
    """Send the library's log records (and warnings) to the job's log file."""
    handler = _LogFile(log_path) if log_path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.captureWarnings(True)


def run_logged(fn, log_path: str | Path | None, **kwargs):
    """Run one job function with logging to `log_path`; known input errors exit with one line.

    Bad input (a dataset file, a config value), a damaged input file and a full disk are the
    user's to fix, so each is reported as a single clear message instead of a traceback;
    anything else keeps its traceback in the log. SIGTERM or SIGINT stops the job (not a
    failure): one line says so and what a rerun does, and it exits with 128 + the signal.
    """
    setup_logging(log_path)
    stops.raise_on_stop()
    try:
        return fn(**kwargs)
    except stops.Stopped as stop:
        logger.warning("%s", stop)
        print(f"weightzoo: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except (data.DatasetError, ValueError, io.DiskFullError) as err:
        logger.exception("%s", err)  # the log keeps the traceback; the terminal gets one line
        sys.exit(f"weightzoo: {err}")
    except Exception as err:
        logger.exception("job failed")
        if io.is_disk_full(err):  # a library that said so in words, outside atomic_path
            sys.exit(f"weightzoo: no space left on a disk this job writes to ({err})")
        raise


def download_dataset(
    *,
    name: str,
    folder: str | Path,
    download: bool,
    timeout_s: float,
    retries: int,
    manifest_out: str | Path,
    mirror: str = "",
) -> None:
    """Fetch (or, with download=False, only verify or copy from the local mirror) the raw
    files of a torchvision dataset.

    The manifest (file names, verified md5s and where each came from) is the job's output;
    it is written only once every file is in place with the right checksum.
    """
    files = data.raw_files(name)
    sources = data.fetch(
        files,
        Path(folder),
        dataset=name,
        mirror=mirror,
        download=download,
        timeout=timeout_s,
        retries=retries,
    )
    listed = [{"filename": f.filename, "md5": f.md5, "from": sources[f.filename]} for f in files]
    manifest = {"dataset": name, "folder": str(folder), "files": listed}
    with atomic_path(Path(manifest_out)) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))


def prepare_dataset(*, name: str, source: dict, output: str | Path) -> None:
    """Build the compact prepared form of one dataset and write it atomically."""
    prepared = data.prepare(name, source)
    logger.info(
        "%s: %d train / %d test images of shape %s, %d classes",
        name,
        len(prepared.y_train),
        len(prepared.y_test),
        prepared.x_train.shape[1:],
        prepared.n_classes,
    )
    data.save_prepared(prepared, Path(output))


@dataclass(frozen=True)
class TrainUnit:
    """One block of seeds of one cell on one dataset, typed once from a training job's
    config slice (`config.cell_params` with its dataset, architecture id and seeds)."""

    dataset: str
    family: str
    arch: str  # the architecture's id
    setting: str  # the training setting's id
    setting_values: dict[str, Any]  # every setting key's value: the runs table's typed columns
    block: training.Block
    config_slice: dict[str, Any]  # the plain slice, recorded with every run and checkpoint
    dump_dtype: str  # the precision the dumps store (dumps.DUMP_DTYPES)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainUnit:
        """The unit of a job's params (its keys: UNIT_KEYS)."""
        from weightzoo import families, training

        if missing := sorted(set(UNIT_KEYS) - set(params)):
            raise ValueError(f"training job: missing {', '.join(missing)}")
        if unknown := sorted(set(params) - set(UNIT_KEYS) - set(OPTIONAL_UNIT_KEYS)):
            raise ValueError(f"training job: unknown {', '.join(unknown)}")
        block = training.Block(
            arch=families.parse(params["family"], params["arch_params"]),
            recipe=training.Recipe.from_config(params["train"]),
            seeds=tuple(params["seeds"]),
            dump_epochs=tuple(params["dump_epochs"]),
            divergence=training.DivergenceRule.from_config(params["divergence"]),
        )
        tags = {k: params[k] for k in ("dataset", "family", "arch", "setting")}
        plain = {k: params[k] for k in ("arch_params", "train", "dump_epochs", "divergence")}
        # recorded only when not float32, so that float32 zoos keep their slice and resume key
        dtype = params.get("dump_dtype", "float32")
        extra = {"dump_dtype": dtype} if dtype != "float32" else {}
        return cls(
            **tags,
            setting_values=params["setting_values"],
            block=block,
            config_slice={**tags, **plain, **extra},
            dump_dtype=dtype,
        )

    @property
    def tags(self) -> dict[str, str]:
        """The keys of every table row it writes (its seeds add `seed`)."""
        return {k: getattr(self, k) for k in ("dataset", "family", "arch", "setting")}


# What a training job's params hold: the cell (config.cell_params), its dataset, architecture
# id and seeds.
UNIT_KEYS = (
    "dataset",
    "family",
    "arch",
    "arch_params",
    "setting",
    "setting_values",
    "train",
    "seeds",
    "dump_epochs",
    "divergence",
)
OPTIONAL_UNIT_KEYS = ("dump_dtype",)  # config.cell_params adds it when it is not float32


@dataclass(frozen=True)
class TrainOutputs:
    """Where a training job writes its three tables, and the folder of its progress."""

    weights_out: Path
    metrics_out: Path
    runs_out: Path
    resume_dir: Path

    @classmethod
    def from_paths(cls, paths: Mapping[str, str | Path]) -> TrainOutputs:
        return cls(**{f.name: Path(paths[f.name]) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class TrainOptions:
    """How a training job runs, beside what it trains: torch threads, seeds stacked into one
    model (vectorise) or looped, and seconds between resume checkpoints."""

    threads: int
    vectorise: bool
    checkpoint_every_s: float = 10.0


def train_job(
    *,
    data_path: str | Path,
    unit: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    device: str,
    threads: int,
    vectorise: bool,
    checkpoint_every_s: float = 10.0,
) -> pl.DataFrame:
    """Load a prepared dataset onto the device, then train one block of seeds on it:
    `unit` is the job's config slice (UNIT_KEYS), `outputs` its files (TrainOutputs)."""
    from weightzoo import training

    training.set_determinism(threads)
    dev = training.select_device(device)
    job = TrainUnit.from_params(unit)
    fraction = job.block.recipe.train_fraction
    tensors = training.to_tensors(data.load_prepared(Path(data_path)), dev, fraction)
    options = TrainOptions(threads, vectorise, checkpoint_every_s)
    return train_block(tensors, dev, job, TrainOutputs.from_paths(outputs), options)


def train_block(
    tensors: training.TensorData,
    dev: torch.device,
    unit: TrainUnit,
    outputs: TrainOutputs,
    options: TrainOptions,
) -> pl.DataFrame:
    """Train the seeds of `unit` on `tensors` (the dataset on device `dev`); write weights,
    metrics and runs.

    The seeds train together (stacked unless `options.vectorise` is false). Progress is
    saved in `outputs.resume_dir` after an epoch every `options.checkpoint_every_s` seconds:
    a job killed at any point (time limit, preemption, SIGKILL) and started again continues
    from the last checkpoint and ends with the same bits as an uninterrupted run. The folder
    is removed at the end.
    """
    from weightzoo import tables, training
    from weightzoo.progress import Progress
    from weightzoo.resume import ResumeState

    block, tags = unit.block, unit.tags
    key = {
        **unit.config_slice,
        "seeds": list(block.seeds),
        "device": dev.type,
        "vectorise": options.vectorise,
    }
    with ResumeState(outputs.resume_dir, key) as progress:  # the lock is held until the end
        history = progress.state["metrics"]
        watch = Progress(unit.arch, list(block.seeds), block.recipe.epochs, history=history)
        models = training.seed_models(
            block, tensors.in_shape, tensors.n_classes, dev, options.vectorise
        )
        io.ensure_space(outputs.weights_out, dump_bytes(models, list(block.dump_epochs)))
        callbacks = training.Callbacks(
            on_dump=dumps.DumpSink(progress, models.kinds, dtype=unit.dump_dtype, **tags),
            on_epoch=watch.wrap(progress.add_metrics),
            on_checkpoint=progress.checkpoint,
            checkpoint_every_s=options.checkpoint_every_s,
        )
        try:
            results = training.fit(models, tensors, block, callbacks, resume=progress.resume_point)
        except stops.Stopped as stop:
            saved = progress.resume_point
            seeds = list(block.seeds)
            stop.resume = (
                f"{unit.dataset} {unit.arch} {unit.setting} seeds {seeds[0]}-{seeds[-1]} stopped "
                f"after epoch {max(watch.done, 0)}/{block.recipe.epochs}; "
                + (
                    f"progress saved after epoch {saved['epoch']}: a rerun resumes from there"
                    if saved is not None
                    else "nothing saved yet: a rerun starts the block again"
                )
            )
            raise
        for r in results:
            logger.info(
                "%s %s seed %d: %s after %d epochs, test acc %.4f (best %.4f)",
                unit.dataset,
                unit.arch,
                r.seed,
                r.status,
                r.epochs_run,
                r.final_test_acc,
                r.best_test_acc,
            )
        runs = tables.runs_frame(
            results,
            tags=tags,
            epochs_planned=block.recipe.epochs,
            provenance=training.provenance(dev, options.threads),
            config_slice=unit.config_slice,
            setting_values=unit.setting_values,
        )
        # every seed holds its dump epochs up to its last one, and that last one
        expected = {
            r.seed: sorted({e for e in block.dump_epochs if e <= r.epochs_run} | {r.epochs_run})
            for r in results
        }
        progress.assemble(outputs.weights_out, expected)
        metrics = tables.metrics_frame(progress.state["metrics"], **tags)
        dumps.write_table(metrics.to_arrow(), outputs.metrics_out)
        dumps.write_table(runs.to_arrow(), outputs.runs_out)
        progress.remove()
    logger.info("job done: %d seed(s) in %.1f s", len(block.seeds), results[0].wall_time_s)
    return runs


def dump_bytes(models, dump_epochs: list[int]) -> int:
    """The disk a block's dumps take at their peak, checked free before it trains: every dump
    of every seed as float32 (the zstd files measure 0.94-1.06x that), twice — in its resume
    folder, then assembled into the weights file."""
    n_params = sum(p.numel() for p in models.parameters())  # every seed's parameters
    return 2 * 4 * n_params * len(dump_epochs)


def train_pack_job(
    *,
    data_path: str | Path,
    units: list[dict],
    device: str,
    threads: int,
    vectorise: bool,
    checkpoint_every_s: float = 10.0,
) -> None:
    """Train several blocks of one dataset in one process (config: pack.jobs_per_family), so
    the interpreter, torch, the device and the dataset start once for all of them.

    `units` are the blocks' params (`config.unit_params`: UNIT_KEYS and their files). A
    finished block's files wait in `<resume_dir>.done/` until the whole pack is done, so a
    pack killed on its way restores its finished blocks instead of training them again; at
    the end every block's files move into place and the waiting folders go.
    """
    from weightzoo import training
    from weightzoo.resume import prune

    training.set_determinism(threads)
    dev = training.select_device(device)
    prepared = data.load_prepared(Path(data_path))
    tensors: dict[float, training.TensorData] = {}  # by train_fraction: one copy on the device
    options = TrainOptions(threads, vectorise, checkpoint_every_s)
    started = time.perf_counter()
    for i, params in enumerate(units, 1):
        own = {k: params[k] for k in (*UNIT_KEYS, *OPTIONAL_UNIT_KEYS) if k in params}
        unit = TrainUnit.from_params(own)
        done = Path(f"{params['resume_dir']}.done")
        key = json.dumps(own, sort_keys=True)
        if (done / "key.json").is_file() and (done / "key.json").read_text() == key:
            name = f"{unit.arch} {unit.setting} seeds {list(unit.block.seeds)}"
            logger.info("block %d/%d %s: restored from an earlier attempt", i, len(units), name)
            continue
        fraction = unit.block.recipe.train_fraction
        if fraction not in tensors:
            tensors[fraction] = training.to_tensors(prepared, dev, fraction)
        waiting = TrainOutputs(
            *(done / f"{k}.parquet" for k in OUTPUT_FILES), Path(params["resume_dir"])
        )
        train_block(tensors[fraction], dev, unit, waiting, options)
        with atomic_path(done / "key.json") as tmp:
            tmp.write_text(key)
        elapsed = time.perf_counter() - started
        logger.info("pack: %d/%d blocks in %.0f s", i, len(units), elapsed)
    for params in units:
        done = Path(f"{params['resume_dir']}.done")
        for k in OUTPUT_FILES:
            Path(params[k]).parent.mkdir(parents=True, exist_ok=True)
            os.replace(done / f"{k}.parquet", params[k])
        shutil.rmtree(done)
        prune(done.parent)
    logger.info("pack done: %d blocks in %.1f s", len(units), time.perf_counter() - started)


OUTPUT_FILES = ("weights_out", "metrics_out", "runs_out")  # TrainOutputs' files, in order


def aggregate_runs(
    *, run_files: list[str | Path], parquet_out: str | Path, csv_out: str | Path
) -> pl.DataFrame:
    """Concatenate the per-job run tables into results/tables/runs.parquet (+ .csv)."""
    from weightzoo.imports import check_layouts
    from weightzoo.tables import RUNS_COLUMNS, check_parquet

    check_parquet(*run_files)
    runs = (
        pl.concat([pl.read_parquet(f) for f in run_files], how="diagonal_relaxed")
        .select(*RUNS_COLUMNS, pl.exclude(RUNS_COLUMNS))
        .sort("dataset", "family", "n_params", "arch", "setting", "seed")
    )
    check_layouts(runs)  # an imported architecture keeps one layout across import jobs
    dumps.write_table(runs.to_arrow(), parquet_out)
    with atomic_path(Path(csv_out)) as tmp:
        runs.drop("config").write_csv(tmp)
    summary = runs.group_by("dataset", "family").agg(
        pl.len().alias("runs"),
        (pl.col("status") == "diverged").sum().alias("diverged"),
        pl.col("final_test_acc").min().alias("min_acc"),
        pl.col("final_test_acc").max().alias("max_acc"),
    )
    logger.info("runs summary:\n%s", summary)
    return runs


def stats_job(
    *,
    weights_path: str | Path,
    family: str,
    in_shape: list[int],
    hist: Mapping[str, Any],
    spectral: Mapping[str, Any] | None,
    stats_out: str | Path,
    maps_out: str | Path,
) -> None:
    """Statistics (and first-layer strength maps) of one training job's dumps; `hist` is
    analysis.hist (range, bins, scaled_range), `spectral` analysis.spectral (None: no fits)."""
    from weightzoo import stats
    from weightzoo.spectral import SpectralConfig
    from weightzoo.tables import reading

    started = time.perf_counter()
    fits = None if spectral is None else SpectralConfig.from_config(spectral)
    with reading(weights_path):  # the page checksums are checked as the dumps are read
        table = stats.file_stats(weights_path, stats.HistConfig.from_config(hist), fits)
        maps = stats.file_strength_maps(weights_path, family, tuple(in_shape))
    dumps.write_table(table.to_arrow(), stats_out)
    dumps.write_table(maps.to_arrow(), maps_out)
    logger.info(
        "%d statistics rows, %d map pixels in %.1f s",
        table.height,
        maps.height,
        time.perf_counter() - started,
    )


def stats_pack_job(
    *,
    weights_paths: list[str | Path],
    family: str,
    in_shape: list[int],
    hist: Mapping[str, Any],
    spectral: Mapping[str, Any] | None,
    stats_outs: list[str | Path],
    maps_outs: list[str | Path],
) -> None:
    """`stats_job` for each block of a training pack (config: pack.stats), in one process:
    the same files as one job per block."""
    for weights_path, stats_out, maps_out in zip(weights_paths, stats_outs, maps_outs, strict=True):
        stats_job(
            weights_path=weights_path,
            family=family,
            in_shape=in_shape,
            hist=hist,
            spectral=spectral,
            stats_out=stats_out,
            maps_out=maps_out,
        )


def concat_tables(*, files: list[str | Path], output: str | Path) -> None:
    """Concatenate per-job Parquet files into one table, streamed (never all in memory), each
    input's page checksums checked on the way."""
    rows = dumps.concat_files(files, output)
    logger.info("%s: %d rows from %d files", output, rows, len(files))


CLAIMS_OUTPUTS = ("groups", "final", "trajectories", "cells", "claims", "claims_md")


def claims_job(
    *,
    runs_path: str | Path,
    stats_path: str | Path,
    analysis_cfg: dict,
    outputs: dict[str, str | Path],
) -> pl.DataFrame:
    """Label runs, test the paper's three claims, write the claims table and page.

    `outputs` maps each of `CLAIMS_OUTPUTS` (the claims rule's output names) to its path.
    The stats table is read lazily, only the pooled rows the tests need; the final-epoch
    statistics (the figures' table) are streamed to disk, never held whole. `cells` gets
    one row per architecture cell.
    """
    from weightzoo import analysis
    from weightzoo.bottom_line import zoo_sentence
    from weightzoo.tables import check_parquet

    if sorted(outputs) != sorted(CLAIMS_OUTPUTS):
        raise ValueError(f"claims_job: outputs {sorted(outputs)}, expected {CLAIMS_OUTPUTS}")
    check_parquet(runs_path, stats_path)
    started = time.perf_counter()
    settings = analysis.ClaimSettings.from_config(analysis_cfg)
    runs = pl.read_parquet(runs_path)
    stats_lf = pl.scan_parquet(stats_path)
    result = analysis.run_claims(runs, stats_lf, settings)
    groups = result.groups
    sunk = time.perf_counter()
    dumps.sink_table(analysis.final_stats(stats_lf, groups), outputs["final"])
    logger.info("phase final stats: %.2f s", time.perf_counter() - sunk)
    verdicts = analysis.verdicts(result.claims)
    page = analysis.claims_markdown(
        result.claims,
        verdicts,
        rule=groups["group_rule"][0],
        settings=settings,
        zoo=zoo_sentence(groups),  # each cell once, whatever level tests it
    )
    dumps.write_table(groups.to_arrow(), outputs["groups"])
    dumps.write_table(result.cells.to_arrow(), outputs["cells"])
    dumps.write_table(result.trajectories.to_arrow(), outputs["trajectories"])
    dumps.write_table(result.claims.to_arrow(), outputs["claims"])
    with atomic_path(Path(outputs["claims_md"])) as tmp:
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


def figure_job(
    *,
    name: str,
    tables: dict[str, str | Path],
    settings: dict,
    hist: Mapping[str, Any],
    html_out: str | Path,
    image_out: str | Path,
    spec_out: str | Path,
    zoo_path: str | Path | None = None,
) -> None:
    """One figure: offline HTML (with its caption and, from `zoo_path`'s groups table, the
    zoo it came from), an SVG or PNG image and its spec (for the dashboard); `settings` is
    the config's figures block, `hist` analysis.hist (the statistics' ranges)."""
    from weightzoo import figures, vega
    from weightzoo.bottom_line import zoo_sentence
    from weightzoo.stats import HistConfig
    from weightzoo.tables import check_parquet

    check_parquet(*tables.values())
    fig = figures.FIGURES[name]
    scans = {t: pl.scan_parquet(path) for t, path in tables.items()}
    hist_range = HistConfig.from_config(hist).range
    chart = figures.draw(name, scans, {**settings, "hist_range": hist_range})
    zoo = zoo_sentence(pl.read_parquet(zoo_path)) if zoo_path is not None else ""
    vega.save_chart(
        chart.properties(title=fig.title), html_out, image_out, caption=fig.caption, zoo=zoo
    )
    # the dashboard gives each figure a heading of its own, so its spec carries no title
    record = {"name": name, "title": fig.title, "caption": fig.caption}
    vega.save_spec({**record, "spec": vega.chart_spec(chart)}, spec_out)


def dashboard_job(
    *,
    spec_files: list[str | Path],
    claims_path: str | Path,
    groups_path: str | Path,
    output: str | Path,
    prediction_path: str | Path | None = None,
) -> None:
    """results/index.html: verdicts, the prediction ladder, every figure and the claims table
    on one offline page."""
    from weightzoo import analysis, bottom_line, dashboard
    from weightzoo.tables import check_parquet

    check_parquet(claims_path, groups_path)
    claims = pl.read_parquet(claims_path)
    groups = pl.read_parquet(groups_path)
    specs = [json.loads(Path(f).read_text()) for f in spec_files]
    summary = dashboard.summary(groups)
    sections, extra = [], []
    if prediction_path is not None:
        from weightzoo.prediction import headline

        prediction = pl.read_parquet(prediction_path)
        sections.append(dashboard.prediction_section(prediction))
        extra.append(headline(prediction))
    verdicts = analysis.verdicts(claims)
    found = bottom_line.findings(verdicts)
    first = bottom_line.to_html(found, bottom_line.zoo_sentence(groups), extra)
    dashboard.build_dashboard(
        specs, claims, verdicts, summary, output, sections=sections, bottom_line=first
    )


def predict_job(
    *,
    runs_path: str | Path,
    stats_path: str | Path,
    prediction_cfg: Mapping[str, Any],
    threads: int,
    table_out: str | Path,
    oof_out: str | Path,
    md_out: str | Path,
) -> pl.DataFrame:
    """Test accuracy predicted from the weights: the prediction table, the held-out
    predictions behind it and results/prediction.md; `prediction_cfg` is
    analysis.prediction."""
    from weightzoo import prediction
    from weightzoo.tables import check_parquet

    check_parquet(runs_path, stats_path)
    started = time.perf_counter()
    runs = pl.read_parquet(runs_path)
    cfg = prediction.PredictionConfig.from_config(prediction_cfg)
    table, oof = prediction.predict_accuracy(
        pl.scan_parquet(stats_path), runs, cfg, threads=threads
    )
    dumps.write_table(table.to_arrow(), table_out)
    dumps.write_table(oof.to_arrow(), oof_out)
    with atomic_path(Path(md_out)) as tmp:
        tmp.write_text(prediction.prediction_markdown(table, cfg))
    logger.info("%s", prediction.headline(table))
    logger.info("%d rows in %.1f s", table.height, time.perf_counter() - started)
    return table
