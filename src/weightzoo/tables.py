"""The zoo's per-run tables: their keys and columns, and how a training job's records become
the metrics and runs tables of results/."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
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
    "tables": "claims",
}  # fmt: skip


def producer(path: str | Path) -> str:
    """The rule that writes `path` (by its place in results/), for the fix of a broken file."""
    parts = Path(path).parts
    if "results" in parts:
        parts = parts[parts.index("results") + 1 :]
    for key in (f"{parts[0]}/{Path(parts[-1]).stem}" if len(parts) > 1 else "", parts[0]):
        if key in PRODUCERS:
            return PRODUCERS[key]
    return "the rule that writes it"


def check_parquet(*paths: str | Path) -> None:
    """Each file is whole Parquet (its footer reads); ValueError naming the first that is
    not, and how to rebuild it."""
    for path in paths:
        try:
            pq.read_metadata(path)
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise ValueError(
                f"{path} is not readable Parquet ({str(err).splitlines()[0]}): it is truncated or "
                f"not weightzoo's; delete it (or run with --forcerun {producer(path)}) to "
                "rebuild it"
            ) from None
