# Sweep expansion, paths and wildcard constraints. The logic lives in weightzoo.config.
import gc
import os
import sys

# Snakemake builds a few hundred objects per job and keeps them all until the run ends, so
# Python's cycle collector, run every 700 allocations, walks the whole growing DAG again
# and again: 3.2 s of the 21 s of CPU of planning 5,000 cells. Run every 100,000
# allocations it still collects cycles, in 1.4 s (docs/reruns.md, "Planning at scale").
gc.set_threshold(100_000, 10, 10)

# The library in src/ is importable here whether or not it is installed (workflow/scripts/
# does the same for the jobs through _src_path.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from weightzoo.codehash import job_code
from weightzoo.inventory import stale_summary, unit_files, unwritable
from weightzoo.stops import RunWatch
from weightzoo.tables import UNIT_KINDS
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
from weightzoo.planning import merge_warnings, pack_hint

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
STATS_PACKS = PACKS if config["pack"]["stats"] else {}  # statistics per pack too
DATASETS = config["datasets"]
# a training job's part of every path: dataset, architecture, setting, block of seeds
UNIT = "dataset={dataset}/arch={arch}/setting={setting}/seeds-{seeds}"


def output_folders():
    """Every folder a job of this config writes into: its outputs, logs, benchmarks and
    resume state (per cell), and the shared ones."""
    shared = ["results", "results/tables", "results/figures", "results/data/raw"]
    cells = [(d, a, s) for d in DATASETS for a, s in CELLS]
    hive = [
        f"results/{k}/dataset={d}/arch={a}/setting={s}"
        for k in UNIT_KINDS
        for d, a, s in cells
    ]
    per_rule = [
        f"results/{kind}/{rule}/{d}/{a}/{s}"
        for kind in ("logs", "benchmarks")
        for rule in ("train", "weight_stats")
        for d, a, s in cells
    ]
    resume = [f"results/resume/{d}/{a}/{s}" for d, a, s in cells]
    return [*shared, *hive, *per_rule, *resume]


# Before any job: a folder of results/ that cannot be written is named (a job would fail on
# it halfway), and trained blocks the config no longer asks for are reported (never served).
if workflow.is_main_process:
    if blocked := unwritable(output_folders()):
        sys.exit(
            f"weightzoo: {blocked[0]} cannot be written (a read-only file system or folder, or "
            "no permission)"
            + (f", nor {len(blocked) - 1} other folder(s)" if len(blocked) > 1 else "")
            + ": make it writable, then run again"
        )
    wanted_units = {(d, a, s, b) for d in DATASETS for a, s in CELLS for b in BLOCKS}
    on_disk = unit_files("results", ("weights",))
    if line := stale_summary([f for f in on_disk if f.unit not in wanted_units]):
        print(line, file=sys.stderr)
    if line := pack_hint(config):
        print(line, file=sys.stderr)


wildcard_constraints:
    dataset=r"[a-z][a-z0-9_]*",
    arch=r"(mlp|cnn|vit)(-[a-z]\d+)+",
    setting=r"[a-z][a-z0-9.+-]*",
    seeds=r"\d+-\d+",


def code_of(script):
    """A rule's `code` param: content hashes of the code its script runs (the script, and the
    library functions and modules it can reach; weightzoo.codehash). Editing that code reruns
    the rule; a checkout, clone or touch, which only changes modification times, does not
    (profiles/default turns Snakemake's modification-time trigger for scripts off)."""
    return job_code(
        Path(workflow.basedir) / "workflow" / "scripts" / script,
        Path(workflow.basedir) / "src",
    )


def figure_files():
    """Every file of every figure (rules/figures.smk): its HTML, its image and its spec."""
    return expand(rules.figure.output, figure=list(FIGURES))


def trained_files(kind):
    """One file per block (dataset x architecture x setting x seed block) of one kind."""
    return [
        f"results/{kind}/dataset={d}/arch={a}/setting={t}/seeds-{s}.parquet"
        for d in DATASETS
        for a, t in CELLS
        for s in BLOCKS
    ]


def train_outputs(kind):
    """One file per training job's block of one output kind, then one per imported run."""
    return trained_files(kind) + [
        f for plan in IMPORTS.values() for f in plan.files(kind)
    ]


def job_groups(kind, packs):
    """The files of one output kind by the job that writes them: one per training job, or
    one list per pack (`packs`: PACKS for the training files, STATS_PACKS for the
    statistics'), then one list per import shard."""
    if packs:
        groups = [[u.path(kind) for u in units] for units in packs.values()]
    else:
        groups = [[f] for f in trained_files(kind)]
    return groups + [
        [plan.file(r, kind) for r in runs]
        for plan in IMPORTS.values()
        for runs in plan.shards().values()
    ]


def job_inputs(kind, packs):
    """What a job after training names as its input for one output kind: the first file of
    each job (a job that writes many, a pack or an import shard, lists them first). Depending
    on one file of a job is depending on the job, and a job ends with all its files written,
    so the reader still reads every file (from its params: `train_outputs`). Naming all N
    files of such a job costs Snakemake a match against the job's files for each, O(N^2) per
    plan: 155 s for a packed zoo of 20,000 cells (docs/reruns.md, "Planning at scale").
    """
    return [files[0] for files in job_groups(kind, packs)]


def missing_outputs():
    """The other files of such jobs that are missing on disk while the first is there: `all`
    names them, so that their job runs again (Snakemake only looks for the files that are
    asked for; a job whose first file is missing runs anyway)."""
    kinds = [(k, PACKS) for k in ("weights", "metrics", "runs")]
    kinds += [(k, STATS_PACKS) for k in ("stats", "strength_maps")]
    return [
        f
        for kind, packs in kinds
        for files in job_groups(kind, packs)
        if len(files) > 1 and os.path.exists(files[0])
        for f in files[1:]
        if not os.path.exists(f)
    ]


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
    grow with each attempt). One that no attempt changes and every family sets alike (gpu,
    gpu_model) is a plain value: Snakemake evaluates a function once per job."""
    alike = {training_resources(config, c.family)[name] for c in CELLS.values()}
    if name not in ("mem_mb", "runtime") and len(alike) == 1:
        return alike.pop()
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


def pack_stats_settings(units):
    """The same for a statistics job of a pack (one dataset, one family)."""
    return {
        "family": units[0].cell.family,
        "in_shape": list(image_shape(config, units[0].dataset)),
    }
