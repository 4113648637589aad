"""The zoo's per-run tables: their keys and columns, and how a training job's records become
the metrics and runs tables of results/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

# A cell is one architecture trained with one training setting on one dataset: the unit of
# inference of the analysis (its seeds are not independent samples). A run is one seed of a
# cell; every table carries these keys.
CELL_KEYS = ["dataset", "family", "arch", "setting"]
RUN_KEYS = [*CELL_KEYS, "seed"]
DEFAULT_SETTING = "default"  # the setting of a table written before settings existed
# The stats table's whole-network scopes (beside one scope per tensor).
WEIGHT_POOL, PARAM_POOL = "all_weights", "all_params"
# The runs table's leading columns, in order (provenance and the config slice follow).
RUNS_COLUMNS = [
    "dataset",
    "family",
    "arch",
    "setting",
    "seed",
    "n_params",
    "status",
    "final_test_acc",
    "best_test_acc",
    "best_epoch",
    "final_train_acc",
    "final_test_loss",
    "final_train_loss",
    "epochs_run",
    "epochs_planned",
    "diverged_epoch",
    "diverged_because",
    "wall_time_s",
    "seeds_in_block",
]
_INT_COLUMNS = ("seed", "epochs_run", "epochs_planned", "best_epoch", "seeds_in_block")


def with_setting(frame: pl.DataFrame | pl.LazyFrame):
    """The frame with a `setting` column: a table from before settings is the default one."""
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    if "setting" in names:
        return frame
    return frame.with_columns(setting=pl.lit(DEFAULT_SETTING))


def metrics_frame(
    rows: list[dict], *, dataset: str, family: str, arch: str, setting: str = DEFAULT_SETTING
) -> pl.DataFrame:
    """One row per (seed, epoch) of a training job, keyed like every table."""
    keys = {"dataset": dataset, "family": family, "arch": arch, "setting": setting}
    return (
        pl.DataFrame(rows)
        .select(
            *(pl.lit(v).alias(k) for k, v in keys.items()),
            pl.col("seed").cast(pl.Int32),
            pl.col("epoch").cast(pl.Int32),
            pl.exclude("seed", "epoch"),
        )
        .sort("seed", "epoch", maintain_order=True)
    )


def runs_frame(
    results: list,
    *,
    tags: dict,
    epochs_planned: int,
    provenance: dict,
    config_slice: dict,
    setting_values: dict | None = None,
) -> pl.DataFrame:
    """One row per seed of a training job: its result, the value of every setting key (a
    typed column each), its provenance and config slice."""
    config = json.dumps(config_slice, sort_keys=True)
    values = setting_values or {}
    rows = []
    for r in results:
        row = {**tags, **vars(r), "epochs_planned": epochs_planned, **values}
        rows.append({**row, **provenance, "config": config})
    return pl.DataFrame(rows).with_columns(
        pl.col(_INT_COLUMNS).cast(pl.Int32), pl.col("diverged_epoch").cast(pl.Int32)
    )


# The rule that writes each kind of results/ file: what to rerun when one is broken.
PRODUCERS = {
    "weights": "train", "metrics": "train", "runs": "train", "stats": "weight_stats",
    "strength_maps": "weight_stats", "tables/runs": "aggregate_runs",
    "tables/stats": "aggregate_stats", "tables/strength_maps": "aggregate_strength_maps",
    "tables/prediction": "predict_accuracy", "tables/predictions_oof": "predict_accuracy",
    "tables": "claims", "figures": "figure", "data": "prepare_dataset",
}  # fmt: skip
# The per-job kinds of results/: their files sit in dataset=/arch=/setting= folders.
UNIT_KINDS = ("weights", "metrics", "runs", "stats", "strength_maps")


class DamagedFileError(ValueError):
    """A results file does not read back as it was written (truncated, or a page whose
    checksum does not match); the message names the file, its job and how to redo it."""


def _results_parts(path: str | Path) -> tuple[str, ...]:
    parts = Path(path).parts
    return parts[parts.index("results") + 1 :] if "results" in parts else parts


def producer(path: str | Path) -> str:
    """The rule that writes `path` (by its place in results/), for the fix of a broken file."""
    parts = _results_parts(path)
    for key in (f"{parts[0]}/{Path(parts[-1]).stem}" if len(parts) > 1 else "", parts[0]):
        if key in PRODUCERS:
            return PRODUCERS[key]
    return "the rule that writes it"


def producing_job(path: str | Path) -> str:
    """The job that writes `path`: its rule and, for per-job files, its wildcards, e.g.
    `train (dataset=digits, arch=mlp-d1-w16, setting=default, seeds=0-1)`."""
    parts = _results_parts(path)
    rule = producer(path)
    if parts and parts[0] in UNIT_KINDS:
        wildcards = [p for p in parts[1:-1] if "=" in p]
        stem = Path(parts[-1]).stem
        if stem.startswith("seeds-"):
            wildcards.append(f"seeds={stem.removeprefix('seeds-')}")
        return f"{rule} ({', '.join(wildcards)})" if wildcards else rule
    if parts and parts[0] == "figures":
        return f"{rule} (figure={Path(parts[-1]).name.split('.')[0]})"
    return rule


def damaged_message(path: str | Path, err: BaseException) -> str:
    """One line for a file that does not read back: which, why, its job, how to redo it."""
    why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (
        f"{path} is damaged ({why}): it was written by {producing_job(path)}; delete it, or "
        f"run with --forcerun {path}, to redo that job alone (and what depends on it)"
    )


def verify_parquet(path: str | Path) -> None:
    """Read every page of a Parquet file, checking the page checksums it was written with
    (files from before checksums read unchecked); DamagedFileError naming it otherwise."""
    try:
        f = pq.ParquetFile(path, page_checksum_verification=True)
        for i in range(f.num_row_groups):
            f.read_row_group(i)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise DamagedFileError(damaged_message(path, err)) from None


def check_footer(path: str | Path) -> None:
    """A cheap check that a Parquet file is whole: it ends with its footer (a file cut short
    by a full disk or a copy that stopped does not); DamagedFileError naming it otherwise."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(size - 8, 0))
            tail = f.read(8)
    except OSError as err:
        raise DamagedFileError(damaged_message(path, err)) from None
    footer = int.from_bytes(tail[:4], "little") if len(tail) == 8 else -1
    if tail[4:] != b"PAR1" or not 0 < footer <= size - 12:
        reason = OSError(f"{size} bytes, no Parquet footer at its end: it was cut short")
        raise DamagedFileError(damaged_message(path, reason))


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Turn a failure of pyarrow to read `path` inside the block into DamagedFileError
    naming the file (for readers that check page checksums as they go)."""
    try:
        yield
    except (OSError, pa.ArrowException) as err:
        raise DamagedFileError(damaged_message(path, err)) from None


def check_parquet(*paths: str | Path) -> None:
    """Each file reads back whole (`verify_parquet`); DamagedFileError naming the first that
    does not, its job, and how to redo that job alone."""
    for path in paths:
        verify_parquet(path)
