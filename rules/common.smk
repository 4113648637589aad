# Sweep expansion, paths and wildcard constraints. The logic lives in weightzoo.config.
import sys

# The library in src/ is importable here whether or not it is installed (workflow/scripts/
# does the same for the jobs through _src_path.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from weightzoo.config import (
    ConfigError,
    all_architectures,
    dataset_inputs,
    dataset_source,
    image_shape,
    raw_folder,
    seed_blocks,
    training_params,
    training_resources,
    validate_config,
)

try:
    validate_config(config, Path(workflow.basedir) / "config" / "schema.yaml")
except ConfigError as err:
    sys.exit(f"weightzoo: config error: {err}")

ARCHS = all_architectures(config)
BLOCKS = seed_blocks(config)
DATASETS = config["datasets"]


wildcard_constraints:
    dataset=r"[a-z][a-z0-9_]*",
    arch=r"(mlp|cnn|vit)(-[a-z]\d+)+",
    seeds=r"\d+-\d+",


def train_outputs(kind):
    """One file per training job (dataset x architecture x seed block) of one output kind."""
    return [
        f"results/{kind}/dataset={d}/arch={a}/seeds-{s}.parquet"
        for d in DATASETS
        for a in ARCHS
        for s in BLOCKS
    ]


def weight_files():
    return train_outputs("weights")


def metric_files():
    return train_outputs("metrics")


def run_files():
    return train_outputs("runs")


def train_settings(wildcards):
    """What one training job trains, as the keyword arguments of jobs.train_job: one params
    entry (one input function per job keeps planning of thousands of jobs fast)."""
    arch = ARCHS[wildcards.arch]
    setup = training_params(config, arch.family)
    return {
        "family": arch.family,
        "arch_params": arch.params,
        "train": setup["train"],
        "dump_epochs": setup["dump_epochs"],
        "seeds": BLOCKS[wildcards.seeds],
    }


def train_resource(name):
    """One scheduler resource of a training job, from its family's config (memory and runtime
    grow with each attempt)."""
    return lambda wildcards, attempt: training_resources(
        config, ARCHS[wildcards.arch].family, attempt
    )[name]


def stats_settings(wildcards):
    """What one statistics job needs to know of its networks (jobs.stats_job's arguments)."""
    return {
        "family": ARCHS[wildcards.arch].family,
        "in_shape": list(image_shape(config, wildcards.dataset)),
    }
