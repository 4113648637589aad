# Sweep expansion, paths and wildcard constraints. The logic lives in weightzoo.config.
import sys

# The library in src/ is importable here whether or not it is installed (workflow/scripts/
# does the same for the jobs through _src_path.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from weightzoo.config import (
    ConfigError,
    all_cells,
    cell_params,
    claims_params,
    dataset_inputs,
    dataset_source,
    image_shape,
    raw_folder,
    seed_blocks,
    training_packs,
    training_resources,
    unit_params,
    validate_config,
)
from weightzoo.imports import ZooFileError, plan_imports
from weightzoo.planning import merge_warnings

try:
    validate_config(config, Path(workflow.basedir) / "config" / "schema.yaml")
except ConfigError as err:
    sys.exit(f"weightzoo: config error: {err}")
try:  # zoos trained elsewhere: their runs, from their small files (rules/imports.smk)
    IMPORTS = plan_imports(config)
except ZooFileError as err:
    sys.exit(f"weightzoo: import error: {err}")

# A --configfile replaces lists whole: say so when it drops sweep entries of the default.
if workflow.is_main_process:
    for line in merge_warnings(
        Path(workflow.basedir) / "config" / "config.yaml",
        workflow.overwrite_configfiles,
    ):
        print(f"weightzoo: warning: {line}", file=sys.stderr)

CELLS = all_cells(config)  # (architecture id, setting id) -> Cell
BLOCKS = seed_blocks(config)
PACKS = training_packs(config)  # {} unless pack.jobs_per_family > 0
DATASETS = config["datasets"]
# a training job's part of every path: dataset, architecture, setting, block of seeds
UNIT = "dataset={dataset}/arch={arch}/setting={setting}/seeds-{seeds}"


wildcard_constraints:
    dataset=r"[a-z][a-z0-9_]*",
    arch=r"(mlp|cnn|vit)(-[a-z]\d+)+",
    setting=r"[a-z][a-z0-9.+-]*",
    seeds=r"\d+-\d+",


def train_outputs(kind):
    """One file per training job (dataset x architecture x setting x seed block) of one
    output kind, then one per imported run."""
    trained = [
        f"results/{kind}/dataset={d}/arch={a}/setting={t}/seeds-{s}.parquet"
        for d in DATASETS
        for a, t in CELLS
        for s in BLOCKS
    ]
    return trained + [f for plan in IMPORTS.values() for f in plan.files(kind)]


def weight_files():
    return train_outputs("weights")


def metric_files():
    return train_outputs("metrics")


def run_files():
    return train_outputs("runs")


def family_of(wildcards):
    """The model family of a job: the first part of its architecture id (mlp-d2-w16)."""
    return wildcards.arch.split("-")[0]


def train_settings(wildcards):
    """What one training job trains, as the keyword arguments of jobs.train_job: one params
    entry (one input function per job keeps planning of thousands of jobs fast)."""
    cell = CELLS[wildcards.arch, wildcards.setting]
    return {**cell_params(config, cell), "seeds": BLOCKS[wildcards.seeds]}


def train_resource(name):
    """One scheduler resource of a training job, from its family's config (memory and runtime
    grow with each attempt)."""
    return lambda wildcards, attempt: training_resources(
        config, family_of(wildcards), attempt
    )[name]


def pack_resource(units, name):
    """A resource of a packed training job: its family's, the runtime summed over blocks."""
    family = units[0].cell.family

    def resource(wildcards, attempt):
        value = training_resources(config, family, attempt)[name]
        return value * len(units) if name == "runtime" else value

    return resource


def stats_settings(wildcards):
    """What one statistics job needs to know of its networks (jobs.stats_job's arguments)."""
    return {
        "family": family_of(wildcards),
        "in_shape": list(image_shape(config, wildcards.dataset)),
    }
