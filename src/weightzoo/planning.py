"""What a config will run before it runs: jobs, networks, dump volume, scheduler requests.

`make_plan(config)` counts the workflow's jobs and networks from the config alone (the same
sweep expansion as rules/common.smk), the bytes of the weight dumps from each architecture's
parameter count, and, for a profile, what each submission will ask the scheduler for:
under profiles/slurm a group of `group-components` train + weight_stats components takes
the largest member's GPUs, CPUs and memory and the sum of their runtimes. `grid_replacements`
says which sweep lists a --configfile replaced with fewer entries (Snakemake replaces lists
whole when it merges config files); `plan_diff` compares a config with a results folder:
training jobs added, removed, and retrained because their recorded recipe differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from weightzoo import config as cfg
from weightzoo import families, io

BYTES_PER_VALUE = 4  # dumps hold float32 values
# Per metrics row (one per seed and epoch): train/test loss and accuracy, lr, wall time.
METRICS_VALUES_PER_ROW = 6
METRICS_BYTES_PER_VALUE = 8
# Jobs that run once per workflow, beside the per-dataset and per-training-job ones:
# aggregate_runs, aggregate_stats, aggregate_strength_maps, claims, predict_accuracy,
# dashboard and the `all` target (the figures are counted from weightzoo.figures.FIGURES).
ONCE_PER_RUN = (
    "aggregate_runs",
    "aggregate_stats",
    "aggregate_strength_maps",
    "claims",
    "predict_accuracy",
    "dashboard",
    "report",
    "all",
)
PLACEHOLDER = "CHANGE_ME"


class PlanError(ValueError):
    """The plan cannot be made as asked (e.g. the profile still holds placeholders)."""


@dataclass(frozen=True)
class CellVolume:
    """One cell on one dataset: its networks and the bytes of their dumps."""

    dataset: str
    family: str
    arch: str
    setting: str
    n_params: int
    seeds: int
    dumps_per_run: int
    epochs: int

    @property
    def weight_bytes(self) -> int:
        return self.n_params * BYTES_PER_VALUE * self.dumps_per_run * self.seeds

    @property
    def metrics_rows(self) -> int:
        return self.seeds * (self.epochs + 1)  # epoch 0 is measured too


def cell_volumes(config: dict) -> list[CellVolume]:
    """Every cell on every dataset with its parameter count, seeds and dumped epochs."""
    n_seeds = config["seeds"]["count"]
    out = []
    for dataset in config["datasets"]:
        shape = cfg.image_shape(config, dataset)
        n_classes = cfg.dataset_sizes(config, dataset)[2]
        for cell in cfg.all_cells(config).values():
            arch = families.parse(cell.family, cell.arch_params)
            epochs = cell.train["epochs"]
            out.append(
                CellVolume(
                    dataset=dataset,
                    family=cell.family,
                    arch=cell.arch,
                    setting=cell.setting,
                    n_params=arch.n_params(shape, n_classes),
                    seeds=n_seeds,
                    dumps_per_run=len(cfg.dump_epochs(config, epochs)),
                    epochs=epochs,
                )
            )
    return out


def _weight_bytes(volumes: list[CellVolume]) -> int:
    return sum(v.weight_bytes for v in volumes)


def _metrics_bytes(volumes: list[CellVolume]) -> int:
    rows = sum(v.metrics_rows for v in volumes)
    return rows * METRICS_VALUES_PER_ROW * METRICS_BYTES_PER_VALUE


def weight_dump_bytes(config: dict) -> int:
    """Bytes of float32 values in every weight dump the config writes: parameters x dumped
    epochs (0, the listed ones below the run's epochs, the last) x seeds, summed over cells
    and datasets. Parquet with byte-stream-split zstd stores about this much."""
    return _weight_bytes(cell_volumes(config))


def metrics_bytes(config: dict) -> int:
    """Bytes of the metrics values: one row per seed and epoch (0 included) of 6 numbers."""
    return _metrics_bytes(cell_volumes(config))


@dataclass(frozen=True)
class Request:
    """What one scheduler submission asks for; `members` training jobs (and their stats)."""

    family: str
    members: int
    gpus: int
    cpus: int
    mem_mb: int
    runtime_min: int

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.runtime_min / 60


@dataclass
class Plan:
    """The jobs, networks, volume and scheduler requests of one config (and profile)."""

    jobs: dict[str, int]
    networks: int
    cells: int
    weight_bytes: int
    metrics_bytes: int
    train_jobs_per_family: dict[str, int]
    requests: list[Request] = field(default_factory=list)
    profile: str | None = None
    group_components: int = 1

    @property
    def total_jobs(self) -> int:
        return sum(self.jobs.values())

    @property
    def gpu_hours(self) -> float:
        return sum(r.gpu_hours for r in self.requests)


def job_counts(config: dict) -> dict[str, int]:
    """The workflow's jobs by rule, as `snakemake -n` lists them (packed training jobs under
    `train`, packed statistics jobs under `weight_stats`)."""
    from weightzoo.figures import FIGURES

    units = len(config["datasets"]) * len(cfg.all_cells(config)) * len(cfg.seed_blocks(config))
    packs = cfg.training_packs(config)
    downloads = sum(
        cfg.dataset_source(config, d)["kind"] == "torchvision" for d in config["datasets"]
    )
    counts = {
        "download_dataset": downloads,
        "prepare_dataset": len(config["datasets"]),
        "train": len(packs) if packs else units,
        "weight_stats": len(packs) if packs and config["pack"]["stats"] else units,
        "figure": len(FIGURES),
        **dict.fromkeys(ONCE_PER_RUN, 1),
    }
    return {k: v for k, v in counts.items() if v}


def read_profile(folder: str | Path) -> dict:
    """A Snakemake profile's config.yaml as a dict."""
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        raise PlanError(f"{path}: no profile there (give a folder such as profiles/slurm)")
    return yaml.safe_load(path.read_text()) or {}


def check_placeholders(profile: dict, where: str) -> None:
    """PlanError naming the first default resource that still holds a CHANGE_ME value."""
    for key, value in (profile.get("default-resources") or {}).items():
        if isinstance(value, str) and PLACEHOLDER in value:
            raise PlanError(
                f"{where}: default-resources.{key} is still the placeholder {value!r}: set it "
                "for your cluster (sacctmgr show assoc user=$USER; sinfo -s) or pass "
                f"--default-resources {key}=..."
            )


def _set_resource(profile: dict, rule: str, key: str, default: Any) -> Any:
    return ((profile.get("set-resources") or {}).get(rule) or {}).get(key, default)


def grouped_requests(config: dict, profile: dict) -> list[Request]:
    """The submissions of the training jobs under `profile`: each family's jobs, with their
    weight_stats jobs, in groups of `group-components` (without `groups`, or with an empty
    profile, one request per job as the config asks); a group asks for its largest member's
    GPUs, CPUs and memory and the sum of its members' runtimes."""
    components = (profile.get("group-components") or {}).get("train", 1)
    grouped = (profile.get("groups") or {}).get("train") is not None
    defaults = profile.get("default-resources") or {}
    stats_mem = _set_resource(profile, "weight_stats", "mem_mb", defaults.get("mem_mb", 0))
    stats_min = _set_resource(profile, "weight_stats", "runtime", defaults.get("runtime", 0))
    requests = []
    for family, n_jobs in train_jobs_per_family(config).items():
        res = cfg.training_resources(config, family)
        threads = config["threads"]
        if not grouped:
            one = Request(family, 1, res["gpu"], threads, res["mem_mb"], res["runtime"])
            requests += [one] * n_jobs
            continue
        full, rest = divmod(n_jobs, components)
        for size in [components] * full + ([rest] if rest else []):
            requests.append(
                Request(
                    family,
                    size,
                    gpus=res["gpu"],
                    cpus=threads,
                    mem_mb=max(res["mem_mb"], stats_mem),
                    runtime_min=size * (res["runtime"] + stats_min),
                )
            )
    return requests


def train_jobs_per_family(config: dict) -> dict[str, int]:
    """Training jobs (dataset x cell x seed block, or packs) of each enabled family."""
    packs = cfg.training_packs(config)
    counts: dict[str, int] = {}
    if packs:
        for units in packs.values():
            counts[units[0].cell.family] = counts.get(units[0].cell.family, 0) + 1
        return counts
    per_cell = len(config["datasets"]) * len(cfg.seed_blocks(config))
    for cell in cfg.all_cells(config).values():
        counts[cell.family] = counts.get(cell.family, 0) + per_cell
    return counts


def make_plan(config: dict, profile: str | Path | None = None) -> Plan:
    """The plan of a merged, validated config; with a profile folder, its submissions (a
    SLURM profile with placeholder account or partition is a PlanError)."""
    volumes = cell_volumes(config)
    plan = Plan(
        jobs=job_counts(config),
        networks=sum(v.seeds for v in volumes),
        cells=len(volumes),
        weight_bytes=_weight_bytes(volumes),
        metrics_bytes=_metrics_bytes(volumes),
        train_jobs_per_family=train_jobs_per_family(config),
    )
    if profile is None:
        plan.requests = grouped_requests(config, {})  # each job as the config asks
        return plan
    spec = read_profile(profile)
    plan.profile = str(profile)
    if spec.get("executor") == "slurm":
        check_placeholders(spec, str(Path(profile) / "config.yaml"))
    plan.group_components = (spec.get("group-components") or {}).get("train", 1)
    plan.requests = grouped_requests(config, spec)
    return plan


def size(n_bytes: float) -> str:
    """Bytes in a readable unit: 29.00 kB, 1.45 GB (powers of 1000)."""
    return io.size_text(n_bytes, ("B", "kB", "MB", "GB", "TB"), digits=2)


def _minutes(m: float) -> str:
    return f"{int(m // 60)} h {int(m % 60):02d} min" if m >= 60 else f"{int(m)} min"


def render_plan(plan: Plan) -> str:
    """The plan on one screen."""
    jobs = ", ".join(f"{k} {v}" for k, v in plan.jobs.items())
    per_family = ", ".join(f"{f} {n}" for f, n in plan.train_jobs_per_family.items())
    lines = [
        f"jobs: {plan.total_jobs} ({jobs})",
        f"training jobs by family: {per_family}",
        f"networks: {plan.networks} ({plan.cells} cells over all datasets, their seeds each)",
        f"weight dumps: {size(plan.weight_bytes)} (float32 values: parameters x dumped epochs"
        " x seeds, summed over cells and datasets)",
        f"metrics: {size(plan.metrics_bytes)}",
    ]
    where = plan.profile or "the config's resources, no profile"
    if plan.profile and plan.group_components > 1:
        lines.append(
            f"submissions under {where}: {len(plan.requests)} (groups of up to "
            f"{plan.group_components} train + weight_stats components)"
        )
    else:
        lines.append(f"training jobs as requested under {where}: {len(plan.requests)}")
    shapes: dict[Request, int] = {}
    for r in plan.requests:
        shapes[r] = shapes.get(r, 0) + 1
    for r, n in shapes.items():
        lines.append(
            f"  {n} x {r.family} ({r.members} job{'s' if r.members > 1 else ''}): "
            f"gpus={r.gpus} cpus={r.cpus} mem={r.mem_mb} MB time={_minutes(r.runtime_min)}"
        )
    lines.append(f"GPU-hours requested: {plan.gpu_hours:,.1f} (GPUs x time limit, summed)")
    return "\n".join(lines)


@dataclass(frozen=True)
class Replacement:
    """A sweep list that a config file replaced, with the cells it had and has."""

    key: str
    source: str
    entries_before: int
    entries_after: int
    kept: int
    cells_before: int
    cells_after: int

    def message(self) -> str:
        return (
            f"{self.source} replaces {self.key}: {self.entries_after} grid "
            f"entr{'y' if self.entries_after == 1 else 'ies'} ({self.cells_after} cells) instead "
            f"of {self.entries_before} ({self.cells_before} cells), {self.kept} of them kept; "
            "lists are replaced whole, not merged: restate an entry to keep it (docs/cli.md)"
        )


def _cells_of(config: dict, family: str) -> int:
    """Cells of one family's sweep (architecture x setting, duplicates merged); -1 when the
    sweep does not expand (validation names the error)."""
    try:
        return len(cfg.family_cells(config, family))
    except (cfg.ConfigError, KeyError, TypeError, ValueError):
        return -1


def grid_replacements(base: dict, override: dict, source: str) -> list[Replacement]:
    """The families' grids that `override` (a config file's own keys) replaces with a
    shorter list that drops entries of `base`'s (the config it is merged over)."""
    out = []
    for family, spec in (override.get("families") or {}).items():
        new = (spec or {}).get("grid")
        old = ((base.get("families") or {}).get(family) or {}).get("grid")
        if not isinstance(new, list) or not isinstance(old, list):
            continue
        kept = sum(entry in new for entry in old)
        if kept == len(old) or len(new) >= len(old):
            continue  # every entry kept, or a list as long: a deliberate new sweep
        out.append(
            Replacement(
                key=f"families.{family}.grid",
                source=source,
                entries_before=len(old),
                entries_after=len(new),
                kept=kept,
                cells_before=_cells_of(base, family),
                cells_after=_cells_of(cfg.merge(base, override), family),
            )
        )
    return out


def merge_warnings(default: str | Path, files: list[str | Path]) -> list[str]:
    """One line per sweep list that one of `files`, merged in order over the `default`
    config file, replaced with fewer entries (see `grid_replacements`)."""
    merged = yaml.safe_load(Path(default).read_text()) or {}
    lines = []
    for path in files:
        own = yaml.safe_load(Path(path).read_text()) or {}
        lines += [r.message() for r in grid_replacements(merged, own, str(path))]
        merged = cfg.merge(merged, own)
    return lines


# Above this many training jobs unpacked, Snakemake's planning (about 2 ms of CPU per job,
# two jobs per block: benchmarks/results.md, section k) takes most of a minute or more.
PACK_HINT_BLOCKS = 10_000


def pack_hint(config: dict) -> str | None:
    """One line advising `pack` when a config plans so many single jobs that planning them
    takes minutes (a zoo in packs plans few jobs), else None."""
    if config["pack"]["jobs_per_family"] > 0:
        return None
    blocks = len(config["datasets"]) * len(cfg.all_cells(config)) * len(cfg.seed_blocks(config))
    if blocks <= PACK_HINT_BLOCKS:
        return None
    return (
        f"weightzoo: {blocks:,} training jobs and as many statistics jobs: Snakemake plans "
        "every one before the first starts (benchmarks/results.md, section k); "
        "pack: {jobs_per_family: 8, stats: true} trains and summarises them in 8 jobs per "
        'dataset and family, the same files (docs/reruns.md, "Planning at scale")'
    )


# What a training job's runs file records of the config that made it (its `config` column)
# and the plan compares: a difference retrains the job.
COMPARED = ("arch_params", "train", "dump_epochs")


def _recorded_slice(path: Path) -> dict | None:
    """The config slice a finished training job recorded in its runs file, or None."""
    try:
        column = pq.read_table(path, columns=["config"]).column("config")
    except (OSError, KeyError, pa.ArrowInvalid):
        return None
    return json.loads(column[0].as_py()) if len(column) else None


def plan_diff(config: dict, results: str | Path) -> dict[str, list[str]]:
    """The config against a results folder, by training job (hive path of its weights file):
    `added` (no weights file yet), `removed` (weights files the config no longer plans) and
    `retrained` (its runs file recorded another architecture, recipe or dump epochs)."""
    root = Path(results)
    planned = {
        f"dataset={d}/arch={c.arch}/setting={c.setting}/seeds-{b}.parquet": c
        for d in config["datasets"]
        for c in cfg.all_cells(config).values()
        for b in cfg.seed_blocks(config)
    }
    folder = root / "weights"
    present = {
        p.relative_to(folder).as_posix()
        for p in folder.glob("dataset=*/arch=*/setting=*/seeds-*.parquet")
    }
    retrained = []
    for name in sorted(present & set(planned)):
        recorded = _recorded_slice(root / "runs" / name)
        wanted = cfg.cell_params(config, planned[name])
        if recorded is not None and any(
            k in recorded and recorded[k] != wanted[k] for k in COMPARED
        ):
            retrained.append(name)
    return {
        "added": sorted(set(planned) - present),
        "removed": sorted(present - set(planned)),
        "retrained": retrained,
    }
