"""Groups: each run labelled optimal / intermediate / suboptimal / at chance by its
architecture cell's mean accuracy, and each run's final-epoch statistics with its group."""

from __future__ import annotations

import polars as pl

from weightzoo.tables import CELL_KEYS, RUN_KEYS, with_setting

STRATUM_KEYS = ["dataset", "family"]  # cells are compared within a dataset and a family
DEFAULT_CLASSES = 10  # when the runs table has no n_classes column


def label_groups(
    runs: pl.DataFrame, optimal_within: float, suboptimal_below: float, chance_margin: float
) -> pl.DataFrame:
    """Label each run optimal / intermediate / suboptimal by its architecture's accuracy.

    Per dataset and family, an architecture is optimal when its mean final test accuracy is
    within `optimal_within` of the best architecture's, suboptimal when it is more than
    `suboptimal_below` below it, intermediate otherwise. A family whose best architecture is
    at chance (<= 1 / n_classes + `chance_margin`) has no groups: all its runs are
    "at chance". The rule is kept in the table.
    """
    runs = with_setting(runs)
    # an imported zoo's runs say their classes; trained ones (and older tables) are 10-class
    classes = pl.col("n_classes") if "n_classes" in runs.columns else pl.lit(None)
    classes = classes.fill_null(DEFAULT_CLASSES)
    cells = (
        runs.group_by(CELL_KEYS)
        .agg(arch_mean_acc=pl.col("final_test_acc").mean(), chance_acc=1.0 / classes.first())
        .with_columns(best_arch_acc=pl.col("arch_mean_acc").max().over(STRATUM_KEYS))
        .with_columns(
            family_at_chance=pl.col("best_arch_acc") <= pl.col("chance_acc") + chance_margin
        )
        .with_columns(
            group=pl.when(pl.col("family_at_chance"))
            .then(pl.lit("at chance"))
            .when(pl.col("arch_mean_acc") >= pl.col("best_arch_acc") - optimal_within)
            .then(pl.lit("optimal"))
            .when(pl.col("arch_mean_acc") < pl.col("best_arch_acc") - suboptimal_below)
            .then(pl.lit("suboptimal"))
            .otherwise(pl.lit("intermediate")),
            group_rule=pl.lit(
                f"optimal: arch mean test acc >= best - {optimal_within}; "
                f"suboptimal: < best - {suboptimal_below}; else intermediate; "
                f"'at chance' when the best is <= 1/n_classes + {chance_margin}"
            ),
        )
    )
    return runs.join(cells, on=CELL_KEYS, how="left")


def final_stats(stats: pl.LazyFrame, groups: pl.DataFrame) -> pl.LazyFrame:
    """Statistics of each run's final dumped epoch, joined with its group and accuracy.

    Lazy, so the job can stream it to disk: at the paper's scale it is the largest table.
    """
    stats = with_setting(stats)
    cols = [*RUN_KEYS, "epochs_run", "status", "final_test_acc", "group", "n_params"]
    runs = keys_like(with_setting(groups).select(cols), stats).lazy()
    epochs = groups["epochs_run"].unique().to_list()
    return (
        stats.filter(pl.col("epoch").is_in(epochs))
        .join(runs, on=RUN_KEYS, how="inner", maintain_order="left")
        .filter(pl.col("epoch") == pl.col("epochs_run"))
    )


def keys_like(frame: pl.DataFrame, stats: pl.LazyFrame) -> pl.DataFrame:
    """The frame with its run keys cast to the stats table's types, so joins match."""
    schema = stats.collect_schema()
    frame = with_setting(frame)
    return frame.with_columns(pl.col(k).cast(schema[k]) for k in RUN_KEYS if k in schema)
