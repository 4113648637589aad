"""Configuration: schema validation, cross-key checks and sweep expansion.

Everything here runs when Snakemake parses the workflow, before any job starts, so a bad
config stops the run with one line that names the key at fault.
"""

from __future__ import annotations

import functools
import math
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightzoo import data, families, settings


class ConfigError(ValueError):
    """A configuration value is invalid; the message starts with the key path."""


@dataclass(frozen=True)
class Arch:
    """One architecture of a sweep: its readable id and the model's keyword arguments."""

    family: str
    id: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Cell:
    """One architecture under one training setting: what a training job trains (its seeds
    are the runs of the cell). `values` holds every setting key's value."""

    family: str
    arch: str
    setting: str
    arch_params: dict[str, Any]
    train: dict[str, Any]
    values: dict[str, Any]


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _is_integer(checker, instance) -> bool:
    """An integer is an int: JSON Schema's default also takes 3.0, which then breaks a job."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _validator():
    """Draft 2020-12 with integers that are ints (imported here, not at the top: the sweep
    helpers, which weightzoo.flops and the GPU check use, need neither jsonschema nor yaml)."""
    import jsonschema

    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    return jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)


def _first_error(schema: dict, value: Any):
    """The most relevant schema error of `value`, or None."""
    import jsonschema

    errors = sorted(_validator()(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    return jsonschema.exceptions.best_match(errors)


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Check `config` against the JSON schema and the cross-key rules; raise ConfigError."""
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    _check_finite(config, [])
    if (error := _first_error(schema, config)) is not None:
        raise ConfigError(_message(error, schema))
    _check_datasets(config)
    _check_imports(config)
    _check_seeds(config)
    _check_families(config, schema)
    _check_splits(config)
    _check_analysis(config["analysis"])
    _check_memory(config)
    return config


def _check_finite(value: Any, path: list) -> None:
    """Every number of the config is finite (YAML's .nan and .inf are numbers to a schema)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, [*path, k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, [*path, i])
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{_key(path)}: {value} is not a finite number")


def _message(err, schema: dict) -> str:
    """One line for a schema error: the key, what is wrong and, where it helps, the fix."""
    # an integer-valued float or a number written as text inside a oneOf: the inner error
    for inner in [err, *(err.context or [])]:
        value = inner.instance
        if inner.validator == "type" and isinstance(value, float) and value.is_integer():
            where = _key(list(inner.absolute_path))
            return f"{where}: {value} is not an integer; write {int(value)}"
        if inner.validator == "type" and isinstance(value, str) and _is_number_text(value):
            where = _key(list(inner.absolute_path))
            return (
                f"{where}: {value!r} is text, not a number (YAML reads 1e-3 as a string): "
                f"write {_number_text(value)}"
            )
    path = list(err.absolute_path)
    if err.validator in UNKNOWN_KEY and isinstance(err.instance, dict):
        known = _known_keys(schema, err.schema)
        unknown = sorted(set(err.instance) - set(known))
        return f"{_key([*path, unknown[0]])}: unknown key (known here: {', '.join(known)})"
    return f"{_key(path)}: {err.message}"


def _is_number_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _number_text(text: str) -> str:
    """A number written so that YAML reads it as one: 1e-3 -> 1.0e-3 or 0.001."""
    value = float(text)
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and "." not in mantissa:
        return f"{mantissa}.0e{exponent} or {value:g}"
    return f"{value:g}"


UNKNOWN_KEY = ("additionalProperties", "unevaluatedProperties")
SEED_LIMIT = 2**31 - 1  # seeds are int32 columns of every table


def _check_seeds(config: dict) -> None:
    last = config["seeds"]["start"] + config["seeds"]["count"] - 1
    if last > SEED_LIMIT:
        raise ConfigError(
            f"seeds: the last seed would be {last}, above {SEED_LIMIT} (seeds are int32); "
            "lower seeds.start or seeds.count"
        )


def dataset_sizes(config: dict, dataset: str) -> tuple[int, int, int]:
    """(training images, test images, classes) of a dataset, known without preparing it."""
    if dataset == "digits":
        n_test = math.ceil(config["data"]["digits"]["test_fraction"] * data.DIGITS_IMAGES)
        return data.DIGITS_IMAGES - n_test, n_test, data.N_CLASSES
    if dataset in data.BUILTIN_SIZES:
        return (*data.BUILTIN_SIZES[dataset], data.N_CLASSES)
    info = dataset_info(config, dataset)
    return info.n_train, info.n_test, info.n_classes


def _check_splits(config: dict) -> None:
    """The digits split and every training subset leave each class an image."""
    for name in config["datasets"]:
        n_train, n_test, classes = dataset_sizes(config, name)
        if name == "digits" and min(n_train, n_test) < classes:
            raise ConfigError(
                f"data.digits.test_fraction: {config['data']['digits']['test_fraction']} leaves "
                f"{n_train} training and {n_test} test images for {classes} classes; a "
                "stratified split needs at least one image of each class on both sides"
            )
        for cell in all_cells(config).values():
            fraction = cell.train["train_fraction"]
            if fraction < 1 and int(fraction * n_train) < classes:
                raise ConfigError(
                    f"families.{cell.family}: train_fraction {fraction} of {name}'s {n_train} "
                    f"training images ({cell.arch}, {cell.setting}) keeps fewer than one image "
                    f"per class ({classes})"
                )


# Bytes a training job holds per parameter and seed: weights, gradients, the optimizer's two
# moments, the last finite weights and a checkpoint copy (float32 each).
BYTES_PER_PARAMETER = 6 * 4


def _check_memory(config: dict) -> None:
    """Each training job's models and data fit in the memory it asks for (resources.mem_mb)."""
    seeds = config["seeds_per_job"]
    for name in config["datasets"]:
        shape = image_shape(config, name)
        n_train, n_test, classes = dataset_sizes(config, name)
        data_bytes = (n_train + n_test) * math.prod(shape) * 5  # uint8 + float32 images
        for cell in all_cells(config).values():
            n_params = families.parse(cell.family, cell.arch_params).n_params(shape, classes)
            need = (n_params * seeds * BYTES_PER_PARAMETER + data_bytes) / 2**20
            mem = config["families"][cell.family]["resources"]["mem_mb"]
            if need > mem:
                raise ConfigError(
                    f"families.{cell.family}.resources.mem_mb: {cell.arch} on {name} holds "
                    f"{n_params:,} parameters; {seeds} seeds' weights, gradients and optimizer "
                    f"state and the dataset need about {need:,.0f} MiB, above mem_mb = {mem}: "
                    "raise mem_mb or lower seeds_per_job"
                )


def _known_keys(root: dict, schema: dict) -> list[str]:
    """The keys an object schema accepts: its own properties and those of a local $ref."""
    keys = list(schema.get("properties", {}))
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        keys = list(root["$defs"][ref.removeprefix("#/$defs/")].get("properties", {})) + keys
    return list(dict.fromkeys(keys))


def _check_analysis(analysis: dict) -> None:
    for key in ("range", "scaled_range"):
        lo, hi = analysis["hist"][key]
        if not lo < hi:
            raise ConfigError(f"analysis.hist.{key}: [{lo}, {hi}] is empty; give [low, high]")
    groups = analysis["groups"]
    if groups["suboptimal_below"] < groups["optimal_within"]:
        raise ConfigError(
            "analysis.groups: suboptimal_below must be at least optimal_within "
            f"(got {groups['suboptimal_below']} < {groups['optimal_within']})"
        )
    if analysis["primary"]["claim1"] not in analysis["statistics"]:
        raise ConfigError(
            f"analysis.primary.claim1: {analysis['primary']['claim1']!r} is not one of "
            "analysis.statistics (the declared statistic must be tested)"
        )
    prediction = analysis["prediction"]
    head = prediction["headline"]
    if head["feature_set"] not in {"size", "arch", *prediction["feature_sets"]}:
        raise ConfigError(
            f"analysis.prediction.headline.feature_set: {head['feature_set']!r} is not one of "
            "analysis.prediction.feature_sets"
        )
    if head["predictor"] not in prediction["predictors"]:
        raise ConfigError(
            f"analysis.prediction.headline.predictor: {head['predictor']!r} is not one of "
            "analysis.prediction.predictors"
        )


def claims_params(config: dict) -> dict:
    """The analysis settings the claims job reads: all but `prediction`, which has its own
    job (so that editing it does not rerun the claims)."""
    return {k: v for k, v in config["analysis"].items() if k != "prediction"}


RESERVED_NAMES = ("all",)  # the claims' label of pooled subsets


def user_dataset(config: dict, name: str) -> tuple[Path, int | None]:
    """The file of a user dataset (`canonical_path`) and its declared number of classes
    (None: from the labels); `data.user.<name>` is a path or {path, n_classes}."""
    entry = config["data"]["user"][name]
    if isinstance(entry, dict):
        return canonical_path(entry["path"]), entry.get("n_classes")
    return canonical_path(entry), None


def canonical_path(path: str | Path) -> Path:
    """One spelling of a file's path, whichever way the config wrote it: relative to the
    working directory when the file is inside it, else absolute (`.` and `..` resolved,
    symbolic links kept). A job's inputs and params carry this, so naming the same file
    another way reruns nothing."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    outside = relative == os.pardir or relative.startswith(os.pardir + os.sep)
    return Path(absolute if outside else relative)


@functools.lru_cache(maxsize=64)
def _inspect(path: Path, n_classes: int | None, mtime: float) -> data.NpzInfo:
    return data.inspect_npz(path, n_classes)


def dataset_info(config: dict, name: str) -> data.NpzInfo:
    """A user dataset's image shape, sizes and classes, checked from its headers and labels
    (once per file and version while the workflow is planned)."""
    path, n_classes = user_dataset(config, name)
    try:
        return _inspect(path, n_classes, path.stat().st_mtime if path.is_file() else 0.0)
    except data.DatasetError as err:
        raise ConfigError(f"data.user.{name}: {err}") from None


def _check_datasets(config: dict) -> None:
    user = config["data"]["user"]
    for name in user:
        if name in data.BUILTIN_DATASETS:
            raise ConfigError(f"data.user.{name}: the name of a built-in dataset cannot be reused")
        if name in RESERVED_NAMES:
            raise ConfigError(f"data.user.{name}: {name!r} is reserved (it labels pooled results)")
    for i, name in enumerate(config["datasets"]):
        if name not in data.BUILTIN_DATASETS and name not in user:
            known = ", ".join([*data.BUILTIN_DATASETS, *user])
            raise ConfigError(f"datasets[{i}]: unknown dataset {name!r} (known: {known})")
        if name in user:
            dataset_info(config, name)  # every array of the file, before any job
        if name in data.TORCHVISION_DATASETS and not config["data"]["download"]:
            _check_staged(config, name)


def _check_staged(config: dict, name: str) -> None:
    """With data.download false, every raw file of `name` is pre-staged or in the mirror
    folder (a mirror URL is only checked by the download job: it may need the network)."""
    folder, mirror = raw_folder(config, name), config["data"]["mirror"]
    missing = data.missing_files(data.raw_files(name), folder)
    if mirror and not data.is_url(mirror):
        in_mirror = {f.name for f in data.missing_files(data.raw_files(name), Path(mirror) / name)}
        missing = [p for p in missing if p.name in in_mirror]
    elif mirror:
        missing = []
    if missing:
        where = f"in {folder}" + (f" nor in the mirror {Path(mirror) / name}" if mirror else "")
        raise ConfigError(
            f"data.download is false but {name} is not pre-staged {where}: missing "
            + ", ".join(str(p) for p in missing)
        )


def _check_imports(config: dict) -> None:
    """Imported zoos' names are free dataset names; their role patterns compile; there is
    something to analyse. (Their files are checked when they are planned: weightzoo.imports.)"""
    imports = config.get("imports", {})
    if not config["datasets"] and not imports:
        raise ConfigError("datasets: empty and no imports: nothing to train or analyse")
    taken = {*data.BUILTIN_DATASETS, *config["data"]["user"], *config["datasets"]}
    for name, entry in imports.items():
        if name in taken or name in RESERVED_NAMES:
            raise ConfigError(
                f"imports.{name}: {name!r} is a dataset's name already; give the zoo another"
            )
        for pattern in entry.get("roles", {}):
            try:
                re.compile(pattern)
            except re.error as err:
                raise ConfigError(
                    f"imports.{name}.roles: {pattern!r} is no pattern ({err})"
                ) from None


def _check_families(config: dict, schema: dict) -> None:
    if not any(f["enabled"] for f in config["families"].values()):
        raise ConfigError("families: every family is disabled; enable at least one")
    shapes = {name: image_shape(config, name) for name in config["datasets"]}
    for family, spec in config["families"].items():
        if not spec["enabled"]:
            continue
        res = spec["resources"]
        if res["gpu_model"] and res["gpu"] < 1:
            raise ConfigError(f"families.{family}.resources.gpu_model: set gpu >= 1 to use it")
        family_cells(config, family, schema, shapes)


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
    return dataset_info(config, dataset).image_shape


def _setting_schema(schema: dict, key: str) -> dict:
    """The schema of one setting key's value: its entry in the train block, or activation."""
    defs = schema["$defs"]
    return defs["activation"] if key == "activation" else defs["train"]["properties"][key]


def family_cells(
    config: dict, family: str, schema: dict | None = None, shapes: dict | None = None
) -> list[Cell]:
    """The cells of one family's sweep (architecture x setting), in config order, without
    duplicates; with `schema`, every setting value is checked against its key's entry, with
    `shapes` ({dataset: (C, H, W)}) every architecture against every dataset's images."""
    spec = config["families"][family]
    if not spec["enabled"]:
        return []
    base = _family_settings(config, family)
    defaults = settings.family_defaults(spec)
    keys = families.FAMILY_CONFIGS[family].sweep_keys()
    cells: dict[tuple[str, str], Cell] = {}
    for i, grid in enumerate(spec["grid"]):
        where = f"families.{family}.grid[{i}]"
        try:
            expanded = settings.expand(grid, keys, where)
        except settings.SettingError as err:
            raise ConfigError(str(err)) from None
        for point, overrides in expanded:
            if schema is not None:
                for key, value in overrides.items():
                    _check_value(value, _setting_schema(schema, key), f"{where}.{key}")
            values = {**defaults, **overrides}
            params = {**point, **base, "activation": values["activation"]}
            try:
                arch = families.parse(family, params)
                for name, shape in (shapes or {}).items():
                    try:
                        arch.check_input(shape)
                    except ValueError as err:
                        raise ValueError(f"{err} of {name}") from None
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
            aid = arch.id
            sid = settings.setting_id(values, defaults)
            train = {k: values[k] for k in spec["train"]}
            cells.setdefault((aid, sid), Cell(family, aid, sid, params, train, values))
    return list(cells.values())


def _check_value(value: Any, schema: dict, where: str) -> None:
    """One setting value against its schema entry; ConfigError naming the key otherwise."""
    if (error := _first_error(schema, value)) is not None:
        raise ConfigError(f"{where}{_message(error, schema).removeprefix('<top level>')}")


def all_cells(config: dict) -> dict[tuple[str, str], Cell]:
    """Every cell of every enabled family, keyed by (architecture id, setting id)."""
    return {
        (c.arch, c.setting): c
        for family in families.FAMILY_CONFIGS
        for c in family_cells(config, family)
    }


def architectures(config: dict, family: str) -> list[Arch]:
    """The architectures of one family's sweep, in config order, without duplicates (with
    the family's own activation: a setting may change it)."""
    spec = config["families"][family]
    base = _family_settings(config, family)
    archs: dict[str, Arch] = {}
    for cell in family_cells(config, family):
        params = {**cell.arch_params, "activation": spec["activation"]}
        archs.setdefault(cell.arch, Arch(family, cell.arch, {**params, **base}))
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


@dataclass(frozen=True)
class Unit:
    """One block of seeds of one cell on one dataset: what one training job trains, or one
    part of a packed job."""

    dataset: str
    cell: Cell
    block: str  # "first-last" seed

    def path(self, kind: str, suffix: str = ".parquet") -> str:
        """Its file of one output kind (weights, metrics, runs, ...) in the hive layout."""
        c = self.cell
        return (
            f"results/{kind}/dataset={self.dataset}/arch={c.arch}/setting={c.setting}/"
            f"seeds-{self.block}{suffix}"
        )

    @property
    def resume_dir(self) -> str:
        return (
            f"results/resume/{self.dataset}/{self.cell.arch}/{self.cell.setting}/seeds-{self.block}"
        )


def training_packs(config: dict) -> dict[str, list[Unit]]:
    """Training jobs that hold several blocks (config: pack.jobs_per_family = N > 0): the
    blocks of each dataset x family spread over N jobs by a stable hash of the block, so a
    block always lands in the same job; {} when packing is off. Ids: dataset_family_i."""
    n = config["pack"]["jobs_per_family"]
    if not n:
        return {}
    blocks = seed_blocks(config)
    packs: dict[str, list[Unit]] = {}
    for dataset in config["datasets"]:
        for cell in all_cells(config).values():
            for block in blocks:
                i = zlib.crc32(f"{cell.arch}/{cell.setting}/{block}".encode()) % n
                unit = Unit(dataset, cell, block)
                packs.setdefault(f"{dataset}_{cell.family}_{i}", []).append(unit)
    return dict(sorted(packs.items()))


def unit_params(config: dict, unit: Unit) -> dict:
    """One block of a packed job (`jobs.train_pack_job`): its unit (`jobs.UNIT_KEYS`) and
    its files (`jobs.TrainOutputs`' keys), in one flat dict."""
    return {
        "dataset": unit.dataset,
        "arch": unit.cell.arch,
        **cell_params(config, unit.cell),
        "seeds": seed_blocks(config)[unit.block],
        "weights_out": unit.path("weights"),
        "metrics_out": unit.path("metrics"),
        "runs_out": unit.path("runs"),
        "resume_dir": unit.resume_dir,
    }


def dump_epochs(config: dict, epochs: int) -> list[int]:
    """Epochs to dump for a run of `epochs` epochs: 0, the listed ones below it, and the last."""
    return sorted({0, epochs, *(e for e in config["dump_epochs"] if e < epochs)})


def training_resources(config: dict, family: str, attempt: int = 1) -> dict:
    """Scheduler resources of one training job; memory and runtime grow with each retry."""
    res = config["families"][family]["resources"]
    return {**res, "mem_mb": res["mem_mb"] * attempt, "runtime": res["runtime"] * attempt}


def training_params(config: dict, family: str) -> dict:
    """The config slice a training job of `family`'s own recipe reads (the default setting)."""
    train = dict(config["families"][family]["train"])
    return {"train": train, "dump_epochs": dump_epochs(config, train["epochs"])}


def cell_params(config: dict, cell: Cell) -> dict:
    """What a training job of `cell` reads: its architecture, its resolved recipe, its dump
    epochs (changes to any of them retrain exactly the cells they touch)."""
    return {
        "family": cell.family,
        "arch_params": cell.arch_params,
        "train": cell.train,
        "dump_epochs": dump_epochs(config, cell.train["epochs"]),
        "setting": cell.setting,
        "setting_values": cell.values,
        "divergence": config["divergence"],
        # only when not the default, so that zoos dumped in float32 keep their params
        **({"dump_dtype": dtype} if (dtype := config["dump"]["dtype"]) != "float32" else {}),
    }


def dataset_source(config: dict, dataset: str) -> dict:
    """Where a dataset comes from, as `data.prepare` takes it (the prepare job's config slice)."""
    if dataset == "digits":
        return {"kind": "digits", **config["data"]["digits"]}
    if dataset in data.TORCHVISION_DATASETS:
        return {"kind": "torchvision", "folder": str(raw_folder(config, dataset))}
    path, n_classes = user_dataset(config, dataset)
    return {"kind": "npz", "path": str(path), "n_classes": n_classes}


def dataset_inputs(config: dict, dataset: str) -> list[str]:
    """The files a dataset's preparation reads: the verified download manifest or the .npz."""
    source = dataset_source(config, dataset)
    if source["kind"] == "torchvision":
        return [f"results/data/raw/{dataset}.json"]
    if source["kind"] == "npz":
        return [source["path"]]
    return []


def merge(base: dict, new: dict) -> dict:
    """`new` over `base` as Snakemake merges a --configfile: key by key, recursively; a list
    (a sweep's grid included) is replaced whole, never extended."""
    return base | {
        k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        for k, v in new.items()
    }


def load_config(*paths: str | Path) -> dict:
    """YAML config files merged as Snakemake merges --configfile over the embedded default:
    later files update earlier ones key by key, recursively (lists are replaced)."""
    import yaml

    merged: dict = {}
    for path in paths:
        merged = merge(merged, yaml.safe_load(Path(path).read_text()) or {})
    return merged
