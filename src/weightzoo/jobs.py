"""The workflow's jobs as plain functions: paths and values in, files out.

workflow/scripts/ only unpack the snakemake object and call these, so every step can be run
and tested without Snakemake.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from pathlib import Path

import polars as pl
import torch

import weightzoo
from weightzoo import data, dumps, training
from weightzoo.io import atomic_path
from weightzoo.models import tensor_kinds

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
        logger.error("%s", err)
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
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "weightzoo_version": weightzoo.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device.type,
        "device_name": dev or platform.machine(),
        "threads": threads,
        "host": platform.node(),
    }


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
) -> pl.DataFrame:
    """Train `seeds` of one architecture on one dataset; write weights, metrics and runs."""
    training.set_determinism(threads)
    dev = training.select_device(device)
    tensors = training.to_tensors(data.load_prepared(Path(data_path)), dev)
    config_slice = {"dataset": dataset, "family": family, "arch": arch, "arch_params": arch_params,
                    "train": train, "dump_epochs": dump_epochs}  # fmt: skip
    prov = provenance(dev, threads)
    tags = {"dataset": dataset, "family": family, "arch": arch}
    metrics: list[dict] = []
    runs: list[dict] = []
    started = time.perf_counter()
    with dumps.DumpWriter(weights_out) as writer:
        for seed in seeds:

            def on_dump(epoch, state, model, seed=seed):
                writer.write(dumps.state_dict_table(state, tensor_kinds(model), seed=seed,
                                                    epoch=epoch, **tags))  # fmt: skip

            result = training.train_seed(family, arch_params, tensors, train, seed, dump_epochs,
                                         on_dump, metrics.append)  # fmt: skip
            logger.info("%s %s seed %d: %s after %d epochs, test acc %.4f (best %.4f), %.1f s",
                        dataset, arch, seed, result.status, result.epochs_run,
                        result.final_test_acc, result.best_test_acc, result.wall_time_s)  # fmt: skip
            runs.append({**tags, **vars(result), "epochs_planned": train["epochs"], **prov,
                         "config": json.dumps(config_slice, sort_keys=True)})  # fmt: skip
        metrics_df = pl.DataFrame(metrics).select(
            pl.lit(dataset).alias("dataset"), pl.lit(family).alias("family"),
            pl.lit(arch).alias("arch"), pl.col("seed").cast(pl.Int32),
            pl.col("epoch").cast(pl.Int32), pl.exclude("seed", "epoch"),
        )  # fmt: skip
        runs_df = pl.DataFrame(runs).with_columns(
            pl.col("seed", "epochs_run", "epochs_planned", "best_epoch").cast(pl.Int32),
            pl.col("diverged_epoch").cast(pl.Int32),
        )
        dumps.write_table(metrics_df.to_arrow(), metrics_out)
        dumps.write_table(runs_df.to_arrow(), runs_out)
    logger.info("job done in %.1f s", time.perf_counter() - started)
    return runs_df


RUNS_COLUMNS = [
    "dataset", "family", "arch", "seed", "n_params", "status", "final_test_acc",
    "best_test_acc", "best_epoch", "final_train_acc", "final_test_loss", "final_train_loss",
    "epochs_run", "epochs_planned", "diverged_epoch", "wall_time_s",
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
