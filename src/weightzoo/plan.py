"""What a config will cost before anything runs: its jobs, its networks and the disk its dumps
take, per dataset x family.

Everything is counted from the config alone (sweeps, seeds, epochs, parameter counts from the
family dataclasses), without torch and without touching results/. The weights are the bulk:
every run dumps its parameters at each dumped epoch (epoch 0, `dump_epochs` below its own
epochs, its last), `dump.dtype` decides the bytes a value takes. The other outputs are
estimated from bytes per row measured on real runs (BYTES_PER_ROW).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from weightzoo import config as wzconfig
from weightzoo import families, io

# Bytes a dumped value takes on disk. Files hold zstd-compressed byte-stream-split float32
# values: 0.96-1.06x the raw float32 bytes on trained weights (benchmarks/results.md,
# section c); a rounded dtype leaves 16 (bfloat16) or 13 (float16) low bits zero, which the
# compression drops (0.42x the float32 file on Gaussian weights, tests/test_dumps.py), so the
# bytes that carry information, those of the stored precision, are the planning figure.
BYTES_PER_VALUE = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0}
# Bytes per row of the smaller outputs, compressed: estimates (a stats row holds ~60 float64
# numbers and a 200-bin float32 histogram; a strength-map row one pixel of a first layer; a
# metrics row one (seed, epoch)), small beside the weights. Each per-job table is written
# once more, aggregated, by the workflow.
BYTES_PER_ROW = {"stats": 900.0, "maps": 3.0, "metrics": 60.0}


@dataclass(frozen=True)
class Stratum:
    """What one dataset x family of a config trains, writes and keeps."""

    dataset: str
    family: str
    cells: int  # architecture x setting
    networks: int  # cells x seeds
    training_jobs: int
    dumps: int  # (network, epoch) dumps
    values: int  # dumped parameter values, all dumps together
    weights_bytes: float
    stats_bytes: float  # per-job stats and strength maps, and their aggregated tables
    metrics_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.stats_bytes + self.metrics_bytes


def _stats_rows(arch: families.ArchConfig) -> int:
    """Rows of the stats table per dump: every tensor and the two pools, of w and w - w0,
    and the pool of w / std(w0)."""
    return 2 * (n_tensors(arch) + 2) + 1


def n_tensors(arch: families.ArchConfig) -> int:
    """Tensors of a model's state_dict: weight and bias of every layer; a ViT adds its
    position embedding, class token (pool cls) and LayerNorms (16 tensors a block)."""
    if arch.family == "mlp":
        return 2 * (arch.depth + 1)
    if arch.family == "cnn":
        return 2 * (arch.blocks + 1)
    return 2 + 1 + (arch.pool == "cls") + 16 * arch.depth + 2 + 2


def _map_rows(arch: families.ArchConfig, shape: tuple[int, int, int]) -> int:
    """Rows of the strength maps per dump: the first layer's inputs (none for a CNN)."""
    if arch.family == "mlp":
        return math.prod(shape)
    if arch.family == "vit":
        return shape[0] * arch.patch**2
    return 0


def strata(config: dict) -> list[Stratum]:
    """One `Stratum` per dataset x enabled family of a (validated) config, in config order."""
    blocks = wzconfig.seed_blocks(config)
    seeds = config["seeds"]["count"]
    per_value = BYTES_PER_VALUE[config["dump"]["dtype"]]
    packs = wzconfig.training_packs(config)
    out = []
    for dataset in config["datasets"]:
        shape = wzconfig.image_shape(config, dataset)
        classes = wzconfig.dataset_sizes(config, dataset)[2]
        for family in families.FAMILY_CONFIGS:
            cells = wzconfig.family_cells(config, family)
            if not cells:
                continue
            dumps = values = stats_rows = map_rows = metric_rows = 0
            for cell in cells:
                arch = families.parse(family, cell.arch_params)
                epochs = cell.train["epochs"]
                n_dumps = len(wzconfig.dump_epochs(config, epochs)) * seeds
                dumps += n_dumps
                values += arch.n_params(shape, classes) * n_dumps
                stats_rows += _stats_rows(arch) * n_dumps
                map_rows += _map_rows(arch, shape) * n_dumps
                metric_rows += (epochs + 1) * seeds
            jobs = len(cells) * len(blocks)
            if packs:
                jobs = sum(1 for key in packs if key.startswith(f"{dataset}_{family}_"))
            out.append(
                Stratum(
                    dataset=dataset,
                    family=family,
                    cells=len(cells),
                    networks=len(cells) * seeds,
                    training_jobs=jobs,
                    dumps=dumps,
                    values=values,
                    weights_bytes=values * per_value,
                    stats_bytes=2
                    * (stats_rows * BYTES_PER_ROW["stats"] + map_rows * BYTES_PER_ROW["maps"]),
                    metrics_bytes=2 * metric_rows * BYTES_PER_ROW["metrics"],
                )
            )
    return out


def prepared_bytes(config: dict, dataset: str) -> int:
    """The prepared dataset's size: uint8 images and int64 labels of both splits."""
    n_train, n_test, _ = wzconfig.dataset_sizes(config, dataset)
    return (n_train + n_test) * (math.prod(wzconfig.image_shape(config, dataset)) + 8)


def size_text(n: float) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1 (1.5 GiB)."""
    return io.size_text(n, io.BINARY)


def plan_text(config: dict) -> str:
    """The plan of a config as a few lines and a Markdown table: jobs, networks, expected
    volume by dataset x family, and the totals."""
    rows = strata(config)
    header = ["dataset", "family", "cells", "networks", "training jobs", "dumps", "weights",
              "stats, maps", "metrics", "total"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append(
            f"| {r.dataset} | {r.family} | {r.cells:,} | {r.networks:,} | {r.training_jobs:,} | "
            f"{r.dumps:,} | {size_text(r.weights_bytes)} | {size_text(r.stats_bytes)} | "
            f"{size_text(r.metrics_bytes)} | {size_text(r.total_bytes)} |"
        )
    jobs = sum(r.training_jobs for r in rows)
    networks = sum(r.networks for r in rows)
    total = sum(r.total_bytes for r in rows)
    weights = sum(r.weights_bytes for r in rows)
    data_bytes = sum(prepared_bytes(config, d) for d in config["datasets"])
    dtype = config["dump"]["dtype"]
    lines.append(
        f"| all | all | {sum(r.cells for r in rows):,} | {networks:,} | {jobs:,} | "
        f"{sum(r.dumps for r in rows):,} | {size_text(weights)} | "
        f"{size_text(sum(r.stats_bytes for r in rows))} | "
        f"{size_text(sum(r.metrics_bytes for r in rows))} | {size_text(total)} |"
    )
    summary = [
        f"{jobs:,} training jobs and as many statistics jobs; {networks:,} networks "
        f"({sum(r.cells for r in rows):,} dataset x architecture x setting cells of "
        f"{config['seeds']['count']} seeds).",
        f"Expected volume of results/: {size_text(total)}, of which the weight dumps "
        f"{size_text(weights)} ({dtype}, {sum(r.values for r in rows):,} values); prepared "
        f"datasets {size_text(data_bytes)} more.",
    ]
    return "\n".join([*summary, "", *lines])
