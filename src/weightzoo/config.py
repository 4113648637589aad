"""Configuration: schema validation, cross-key checks and sweep expansion.

Everything here runs when Snakemake parses the workflow, before any job starts, so a bad
config stops the run with one line that names the key at fault.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightzoo import data, families


class ConfigError(ValueError):
    """A configuration value is invalid; the message starts with the key path."""


@dataclass(frozen=True)
class Arch:
    """One architecture of a sweep: its readable id and the model's keyword arguments."""

    family: str
    id: str
    params: dict[str, Any]


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Check `config` against the JSON schema and the cross-key rules; raise ConfigError."""
    import jsonschema  # here, not at the top: the sweep helpers need neither (weightzoo.flops)
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        path = list(err.absolute_path)
        if err.validator in UNKNOWN_KEY and isinstance(err.instance, dict):
            known = _known_keys(schema, err.schema)
            unknown = sorted(set(err.instance) - set(known))
            raise ConfigError(
                f"{_key([*path, unknown[0]])}: unknown key (known here: {', '.join(known)})"
            )
        raise ConfigError(f"{_key(path)}: {err.message}")
    _check_datasets(config)
    _check_families(config)
    _check_analysis(config["analysis"])
    return config


UNKNOWN_KEY = ("additionalProperties", "unevaluatedProperties")


def _known_keys(root: dict, schema: dict) -> list[str]:
    """The keys an object schema accepts: its own properties and those of a local $ref."""
    keys = list(schema.get("properties", {}))
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        keys = list(root["$defs"][ref.removeprefix("#/$defs/")].get("properties", {})) + keys
    return list(dict.fromkeys(keys))


def _check_analysis(analysis: dict) -> None:
    lo, hi = analysis["hist"]["range"]
    if not lo < hi:
        raise ConfigError(f"analysis.hist.range: [{lo}, {hi}] is empty; give [low, high]")
    groups = analysis["groups"]
    if groups["suboptimal_below"] < groups["optimal_within"]:
        raise ConfigError(
            "analysis.groups: suboptimal_below must be at least optimal_within "
            f"(got {groups['suboptimal_below']} < {groups['optimal_within']})"
        )


def _check_datasets(config: dict) -> None:
    user = config["data"]["user"]
    for name in user:
        if name in data.BUILTIN_DATASETS:
            raise ConfigError(f"data.user.{name}: the name of a built-in dataset cannot be reused")
    for i, name in enumerate(config["datasets"]):
        if name not in data.BUILTIN_DATASETS and name not in user:
            known = ", ".join([*data.BUILTIN_DATASETS, *user])
            raise ConfigError(f"datasets[{i}]: unknown dataset {name!r} (known: {known})")
        if name in user and not Path(user[name]).is_file():
            raise ConfigError(f"data.user.{name}: file not found: {user[name]}")
        if name in data.TORCHVISION_DATASETS and not config["data"]["download"]:
            folder = raw_folder(config, name)
            missing = data.missing_files(data.raw_files(name), folder)
            if missing:
                raise ConfigError(
                    f"data.download is false but {name} is not pre-staged in {folder}: missing "
                    + ", ".join(str(p) for p in missing)
                )


def _check_families(config: dict) -> None:
    if not any(f["enabled"] for f in config["families"].values()):
        raise ConfigError("families: every family is disabled; enable at least one")
    shapes = {name: image_shape(config, name) for name in config["datasets"]}
    for family, spec in config["families"].items():
        if not spec["enabled"]:
            continue
        res = spec["resources"]
        if res["gpu_model"] and res["gpu"] < 1:
            raise ConfigError(f"families.{family}.resources.gpu_model: set gpu >= 1 to use it")
        settings = _family_settings(config, family)
        for i, grid in enumerate(spec["grid"]):
            for point in _grid_points(grid):
                try:
                    arch = families.parse(family, {**point, **settings})
                    for name, shape in shapes.items():
                        try:
                            arch.check_input(shape)
                        except ValueError as err:
                            raise ValueError(f"{err} of {name}") from None
                except ValueError as err:
                    raise ConfigError(f"families.{family}.grid[{i}]: {err}") from None


def _family_settings(config: dict, family: str) -> dict:
    """A family's settings that complete each of its architectures (activation, ...)."""
    spec = config["families"][family]
    return {k: spec[k] for k in families.FAMILY_CONFIGS[family].setting_keys()}


def raw_folder(config: dict, dataset: str) -> Path:
    """Folder holding the raw (downloaded or pre-staged) files of a torchvision dataset."""
    return Path(config["data"]["root"]) / dataset


def image_shape(config: dict, dataset: str) -> tuple[int, int, int]:
    """(C, H, W) of a dataset's images, known without preparing it."""
    if dataset in data.IMAGE_SHAPES:
        return data.IMAGE_SHAPES[dataset]
    try:
        return data.npz_image_shape(Path(config["data"]["user"][dataset]))
    except data.DatasetError as err:
        raise ConfigError(f"data.user.{dataset}: {err}") from err


def _grid_points(grid: dict) -> list[dict]:
    keys = list(grid)
    values = [v if isinstance(v, list) else [v] for v in grid.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def architectures(config: dict, family: str) -> list[Arch]:
    """The architectures of one family's sweep, in config order, without duplicates."""
    spec = config["families"][family]
    if not spec["enabled"]:
        return []
    settings = _family_settings(config, family)
    archs: dict[str, Arch] = {}
    for grid in spec["grid"]:
        for point in _grid_points(grid):
            params = {**point, **settings}
            aid = families.parse(family, params).id
            archs.setdefault(aid, Arch(family, aid, params))
    return list(archs.values())


def all_architectures(config: dict) -> dict[str, Arch]:
    """Every architecture of every enabled family, keyed by id."""
    return {a.id: a for family in families.FAMILY_CONFIGS for a in architectures(config, family)}


def seed_blocks(config: dict) -> dict[str, list[int]]:
    """Seeds grouped into jobs: label 'first-last' -> seeds, in fixed blocks aligned on start.

    Blocks are aligned so that raising `seeds.count` by whole blocks adds new blocks and leaves
    the existing ones (and their outputs) untouched.
    """
    start, count, per_job = (
        config["seeds"]["start"],
        config["seeds"]["count"],
        config["seeds_per_job"],
    )
    seeds = list(range(start, start + count))
    blocks = [seeds[i : i + per_job] for i in range(0, count, per_job)]
    return {f"{b[0]}-{b[-1]}": b for b in blocks}


def dump_epochs(config: dict, epochs: int) -> list[int]:
    """Epochs to dump for a run of `epochs` epochs: 0, the listed ones below it, and the last."""
    return sorted({0, epochs, *(e for e in config["dump_epochs"] if e < epochs)})


def training_resources(config: dict, family: str, attempt: int = 1) -> dict:
    """Scheduler resources of one training job; memory and runtime grow with each retry."""
    res = config["families"][family]["resources"]
    return {**res, "mem_mb": res["mem_mb"] * attempt, "runtime": res["runtime"] * attempt}


def training_params(config: dict, family: str) -> dict:
    """The config slice a training job of `family` reads (changes to it retrain that family)."""
    train = dict(config["families"][family]["train"])
    return {"train": train, "dump_epochs": dump_epochs(config, train["epochs"])}


def dataset_source(config: dict, dataset: str) -> dict:
    """Where a dataset comes from, as `data.prepare` takes it (the prepare job's config slice)."""
    if dataset == "digits":
        return {"kind": "digits", **config["data"]["digits"]}
    if dataset in data.TORCHVISION_DATASETS:
        return {"kind": "torchvision", "folder": str(raw_folder(config, dataset))}
    return {"kind": "npz", "path": config["data"]["user"][dataset]}


def dataset_inputs(config: dict, dataset: str) -> list[str]:
    """The files a dataset's preparation reads: the verified download manifest or the .npz."""
    source = dataset_source(config, dataset)
    if source["kind"] == "torchvision":
        return [f"results/data/raw/{dataset}.json"]
    if source["kind"] == "npz":
        return [source["path"]]
    return []


def load_config(*paths: str | Path) -> dict:
    """YAML config files merged as Snakemake merges --configfile over the embedded default:
    later files update earlier ones key by key, recursively (lists are replaced)."""
    import yaml

    def update(base: dict, new: dict) -> dict:
        return base | {
            k: update(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
            for k, v in new.items()
        }

    merged: dict = {}
    for path in paths:
        merged = update(merged, yaml.safe_load(Path(path).read_text()) or {})
    return merged
