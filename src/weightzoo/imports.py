"""Zoos trained elsewhere, imported into weightzoo's tables.

An `imports:` entry of the config names a zoo, its format and where it lies. Five formats are
read: folders of plain PyTorch state dicts or of safetensors files listed in a runs CSV, and
the layouts of three public zoos (Unterthiner et al.'s Small CNN Zoo, Schürholt et al.'s
Model Zoos, Kofinas et al.'s CNN Wild Park; docs/imports.md says where each layout comes
from).

Planning (`plan_import`, run while Snakemake plans the workflow) reads only a zoo's small
files (the runs CSV, metrics.csv.gz, params.json, folder names) and lists its runs, each
keyed like a trained run: its architecture, its setting (the zoo's own hyperparameters that
vary across it), its seed, and its checkpoints by epoch. An import job (`import_shard`)
reads each run's checkpoints (torch.load with weights_only=True only, safetensors, or rows
of a .npy matrix), checks them and writes the weights, metrics and runs files of the result
contract under `dataset=<import name>`; every file of a job appears at its end, or none.
Tensor kinds come from names and shapes (`tensor_roles`) or the entry's `roles`; a tensor
that cannot be placed is kept as kind "unknown" (no layer) and listed in the runs table.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import platform
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import weightzoo
from weightzoo import settings
from weightzoo.io import atomic_paths

# polars, pyarrow and torch are imported where they are used: planning a workflow with no
# imports, or with zoos in folder formats, needs none of them.

logger = logging.getLogger(__name__)

FORMATS = ("state_dict", "safetensors", "small_cnn_zoo", "modelzoos", "cnn_wild_park")
LISTED = ("state_dict", "safetensors")  # formats whose runs come from a runs CSV
# A tensor's kind: the four of trained zoos, "buffer" for state that is not learnt (running
# statistics of a batch norm) and "unknown" for a tensor whose role cannot be told.
KINDS = ("weight", "bias", "norm", "embedding", "buffer", "unknown")
# Ids of imported architectures and settings: path parts of the hive layout that polars reads
# as text (a leading letter), and that a shell needs no quotes for.
ID = re.compile(r"[a-z][a-z0-9.+-]*")
METRICS = ("test_acc", "train_acc", "test_loss", "train_loss")


class ZooFileError(ValueError):
    """A file of an imported zoo is missing, unreadable or inconsistent; the message starts
    with the file (or the config key) at fault."""


# --------------------------------------------------------------------------------------------
# Tensor roles: kind and layer from names and shapes
# --------------------------------------------------------------------------------------------

BUFFER_LEAVES = {"running_mean", "running_var", "num_batches_tracked", "moving_mean",
                 "moving_variance"}  # fmt: skip
WEIGHT_LEAVES = {"weight", "kernel", "w", "in_proj_weight"}
BIAS_LEAVES = {"bias", "b", "in_proj_bias"}
NORM_LEAVES = {"weight", "bias", "gamma", "beta", "scale"}
NORM_MODULE = re.compile(r".*norm.*|(bn|ln|gn)\d*|batch_normalization(_\d+)?", re.IGNORECASE)
EMBEDDING_LEAF = re.compile(r"(cls|class)_token|pos(ition)?_?emb\w*|\w*embedding\w*", re.IGNORECASE)
EMBEDDING_MODULE = re.compile(r".*emb.*", re.IGNORECASE)


def split_name(name: str) -> tuple[str, str]:
    """(module path, leaf) of a tensor name: `blocks.0.attn.q.weight` -> (`blocks.0.attn.q`,
    `weight`); TensorFlow's `sequential/conv2d/kernel:0` -> (`sequential/conv2d`, `kernel`)."""
    name = re.sub(r":\d+$", "", name)
    cut = max(name.rfind("."), name.rfind("/"))
    return (name[:cut], name[cut + 1 :]) if cut >= 0 else ("", name)


def _last(module: str) -> str:
    return re.split(r"[./]", module)[-1] if module else ""


def tensor_roles(
    shapes: Mapping[str, tuple[int, ...]], roles: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """(kind, layer) of every tensor from its name and shape; layer is its module's path.

    `roles` ({regular expression: kind}, first full match wins) decides first. Then: running
    statistics are "buffer"; 1-D tensors of a module named like a norm (LayerNorm,
    BatchNorm, bn1, ln_f) or holding running statistics are "norm"; class tokens, position
    embeddings and tables of modules named *emb* are "embedding"; a tensor named weight /
    kernel with two or more axes is a "weight" (a Linear or conv kernel), and a 1-D bias is
    a "bias" where its module has such a weight. Anything else is "unknown" with no layer:
    statistics of its values only, never node strength or spectra, never a layer guessed.
    """
    parts = {name: split_name(name) for name in shapes}
    has_stats = {m for m, leaf in parts.values() if leaf in ("running_mean", "moving_mean")}
    matrices = {
        m for n, (m, leaf) in parts.items() if leaf in WEIGHT_LEAVES and len(shapes[n]) >= 2
    }
    out = {}
    for name, shape in shapes.items():
        module, leaf = parts[name]
        ndim = len(shape)
        kind = next(
            (k for pattern, k in (roles or {}).items() if re.fullmatch(pattern, name)), None
        )
        if kind is None:
            if leaf in BUFFER_LEAVES:
                kind = "buffer"
            elif (
                ndim <= 1
                and leaf in NORM_LEAVES
                and (module in has_stats or NORM_MODULE.fullmatch(_last(module)))
            ):
                kind = "norm"
            elif EMBEDDING_LEAF.fullmatch(leaf) or (
                leaf == "weight" and ndim == 2 and EMBEDDING_MODULE.fullmatch(_last(module))
            ):
                kind = "embedding"
            elif leaf in WEIGHT_LEAVES and ndim >= 2:
                kind = "weight"
            elif leaf in BIAS_LEAVES and ndim == 1 and module in matrices:
                kind = "bias"
            else:
                kind = "unknown"
        out[name] = (kind, "" if kind == "unknown" else module)
    return out


def infer_family(shapes: Mapping[str, tuple[int, ...]], kinds: Mapping[str, tuple]) -> str:
    """cnn when a weight has spatial axes, vit when tensors are named like attention, else mlp."""
    if any(kinds[n][0] == "weight" and len(s) >= 3 for n, s in shapes.items()):
        return "cnn"
    if any(re.search(r"attn|attention|qkv|in_proj", n, re.IGNORECASE) for n in shapes):
        return "vit"
    return "mlp"


def layout_signature(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """A short fingerprint of a network's tensor names and shapes, in order."""
    text = ";".join(f"{n}:{'x'.join(map(str, s))}" for n, s in shapes.items())
    return f"{zlib.crc32(text.encode()):08x}"


def _difference(a: Mapping[str, tuple], b: Mapping[str, tuple]) -> str:
    """The first way two layouts differ, in words."""
    if missing := [n for n in a if n not in b]:
        return f"has no tensor {missing[0]!r}"
    if extra := [n for n in b if n not in a]:
        return f"has a tensor {extra[0]!r} the others lack"
    for n in a:
        if tuple(a[n]) != tuple(b[n]):
            return f"tensor {n!r} has shape {list(b[n])}, not {list(a[n])}"
    return "lists its tensors in another order"


# --------------------------------------------------------------------------------------------
# Reading checkpoints
# --------------------------------------------------------------------------------------------

STATE_KEYS = ("state_dict", "model_state_dict", "model", "net")  # where a state dict may sit


def load_torch(path: str | Path) -> Any:
    """A torch checkpoint read with weights_only=True (tensors, numbers, strings, containers):
    a file whose pickle names any other object (code) is refused with one line."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise ZooFileError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _unpickling_reason(err)
        if "GLOBAL" not in reason:  # no object refused: the bytes are no pickle torch wrote
            raise ZooFileError(f"{path}: not a readable torch checkpoint ({reason})") from None
        raise ZooFileError(
            f"{path}: refused: {reason} (checkpoints are read with torch.load(weights_only="
            "True): tensors, numbers, strings and containers only; save the state dict alone)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ZooFileError(f"{path}: not a readable torch checkpoint ({first})") from None


def _unpickling_reason(err: Exception) -> str:
    """The line of torch's weights-only error that says what was refused."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        reason = line.split("WeightsUnpickler error:", 1)[-1].strip()
        if reason and ("GLOBAL" in reason or "Unsupported" in reason or reason != line):
            return reason.split(". ")[0].rstrip(".")
    return "not a weights-only pickle"


def _is_tensor_map(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def state_dict_of(obj: Any, path: str | Path) -> dict[str, Any]:
    """The state dict in a loaded checkpoint: the object itself, or under one of STATE_KEYS
    (a Lightning checkpoint's `state_dict`, CNN Wild Park's `model`)."""
    if _is_tensor_map(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in STATE_KEYS:
            if _is_tensor_map(obj.get(key)):
                return dict(obj[key])
    raise ZooFileError(
        f"{path}: holds no state dict (a mapping of names to tensors, alone or under one of "
        f"{', '.join(repr(k) for k in STATE_KEYS)})"
    )


def to_arrays(state: Mapping[str, Any], path: str | Path) -> dict[str, np.ndarray]:
    """Each tensor as float32 numpy, in the state dict's order (float16 and bfloat16 exactly;
    float64 rounded, said in the log; integer and bool buffers as their values)."""
    import torch

    out = {}
    for name, t in state.items():
        if t.is_complex():
            raise ZooFileError(f"{path}: tensor {name!r} is complex ({t.dtype}); not read")
        if t.dtype == torch.float64:
            logger.info("%s: tensor %s is float64, stored as float32 (rounded)", path, name)
        out[name] = t.detach().to(torch.float32).contiguous().numpy()
    return out


def natural_order(names) -> list[str]:
    """Names sorted with their numbers compared as numbers (layers.2 before layers.10)."""
    return sorted(names, key=lambda n: [(0, int(t), "") if t.isdigit() else (1, 0, t)
                                        for t in re.split(r"(\d+)", n)])  # fmt: skip


def load_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file as float32 numpy. The format keeps no order of its
    own (its header sorts tensors by dtype and name), so they come in `natural_order`: the
    forward order of numbered layers (layers.0, layers.1, ..., layers.10)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ZooFileError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {name: f.get_tensor(name) for name in natural_order(f.keys())}
    except (SafetensorError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ZooFileError(f"{path}: not a readable safetensors file ({first})") from None
    return to_arrays(state, path)


class NpyRows:
    """Rows of a 2-D .npy matrix read from disk on demand: the process holds only the rows
    it asked for (no memory map, whose touched pages would count as its memory)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ZooFileError(f"{self.path}: no such file")
        with open(self.path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                    version, np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read(f)
            except ValueError as err:
                raise ZooFileError(f"{self.path}: not a .npy file ({err})") from None
            self.offset = f.tell()
        if len(shape) != 2 or fortran or dtype.kind != "f":
            raise ZooFileError(
                f"{self.path}: expected a 2-D row-major float matrix, found shape {shape}, "
                f"dtype {dtype}{', Fortran order' if fortran else ''}"
            )
        self.shape, self.dtype = shape, dtype

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as float32."""
        n_cols = self.shape[1]
        with open(self.path, "rb") as f:
            f.seek(self.offset + start * n_cols * self.dtype.itemsize)
            raw = f.read((stop - start) * n_cols * self.dtype.itemsize)
        return np.frombuffer(raw, self.dtype).reshape(stop - start, n_cols).astype(np.float32)


@dataclass(frozen=True)
class LayoutEntry:
    """One tensor of the Small CNN Zoo's flat rows: its variable name, slice and shape."""

    varname: str
    start: int
    end: int
    shape: tuple[int, ...]


def read_layout(path: str | Path, n_cols: int) -> list[LayoutEntry]:
    """layout.csv of a Small CNN Zoo folder (varname, start_idx, end_idx, shape), checked to
    tile the row's columns exactly."""
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise ZooFileError(f"{path}: no such file")
    table = pl.read_csv(path, infer_schema_length=None)
    _require(table, ("varname", "start_idx", "end_idx", "shape"), path)
    entries = []
    for i, r in enumerate(table.iter_rows(named=True)):
        try:
            shape = tuple(int(s) for s in ast.literal_eval(str(r["shape"])))
        except (ValueError, SyntaxError, TypeError):
            raise ZooFileError(
                f"{path}: line {i + 2}: shape {r['shape']!r} is not a tuple"
            ) from None
        entry = LayoutEntry(str(r["varname"]), int(r["start_idx"]), int(r["end_idx"]), shape)
        if math.prod(shape) != entry.end - entry.start:
            raise ZooFileError(
                f"{path}: line {i + 2}: {entry.varname} spans {entry.end - entry.start} columns "
                f"but its shape {list(shape)} holds {math.prod(shape)}"
            )
        entries.append(entry)
    ordered = sorted(entries, key=lambda e: e.start)
    edges = [0] + [e.end for e in ordered]
    if [e.start for e in ordered] != edges[:-1] or edges[-1] != n_cols:
        raise ZooFileError(
            f"{path}: its slices do not tile the {n_cols} columns of weights.npy exactly"
        )
    return entries


def small_cnn_arrays(row: np.ndarray, layout: list[LayoutEntry]) -> dict[str, np.ndarray]:
    """One flat row of the Small CNN Zoo as named tensors in layout order. Keras kernels
    (kh, kw, in, out) and (in, out) become PyTorch's (out, in, kh, kw) and (out, in), so that
    axis 0 is the output as node strength and spectra read it; biases stay as they are."""
    out = {}
    for e in layout:
        name = re.sub(r":\d+$", "", e.varname)
        value = row[e.start : e.end].reshape(e.shape)
        if split_name(name)[1] == "kernel":
            value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
        out[name] = np.ascontiguousarray(value)
    return out


def keras_row(arrays: Mapping[str, np.ndarray], layout: list[LayoutEntry]) -> np.ndarray:
    """The inverse of `small_cnn_arrays`: named tensors back to one flat row."""
    row = np.zeros(max((e.end for e in layout), default=0), np.float32)
    for e in layout:
        value = np.asarray(arrays[re.sub(r":\d+$", "", e.varname)])
        if split_name(e.varname)[1] == "kernel":
            value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
        row[e.start : e.end] = value.reshape(-1)
    return row


# --------------------------------------------------------------------------------------------
# Planning: a zoo's runs from its small files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of an imported run: its epoch, the file holding its tensors (and its
    row, for a matrix of flat rows) and the metrics known without opening it."""

    epoch: int
    file: str
    row: int = -1
    metrics: dict = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Run:
    """One run of an imported zoo, keyed like a trained run (arch, setting, seed); `source`
    is the zoo's own name for it, `values` its hyperparameters (runs-table columns)."""

    arch: str
    setting: str
    seed: int
    source: str
    checkpoints: tuple[Checkpoint, ...]
    values: dict = field(default_factory=dict, hash=False)
    family: str | None = None
    n_classes: int | None = None
    epochs_planned: int | None = None
    extra_files: tuple[str, ...] = ()  # files read besides checkpoints (result.json)

    @property
    def key(self) -> str:
        return f"{self.arch}/{self.setting}/{self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Run:
        checkpoints = tuple(Checkpoint(**c) for c in d["checkpoints"])
        return cls(**{**d, "checkpoints": checkpoints, "extra_files": tuple(d["extra_files"])})


@dataclass
class ImportPlan:
    """An imported zoo's runs and how its jobs split them (`jobs` 0: one per run; N: the runs
    spread over N jobs by a stable hash of their key, so a run always lands in the same job)."""

    name: str
    format: str
    path: str
    runs: list[Run]
    jobs: int = 0
    roles: dict = field(default_factory=dict)
    shared_files: tuple[str, ...] = ()  # files every job reads (weights.npy, layout.csv)

    def file(self, run: Run, kind: str) -> str:
        """The run's file of one output kind (weights, metrics, runs, stats, strength_maps)."""
        return (
            f"results/{kind}/dataset={self.name}/arch={run.arch}/setting={run.setting}/"
            f"seed-{run.seed}.parquet"
        )

    def files(self, kind: str) -> list[str]:
        return [self.file(r, kind) for r in self.runs]

    def shards(self) -> dict[str, list[Run]]:
        """Shard id (a rule-name suffix) -> its runs."""
        out: dict[str, list[Run]] = {}
        for run in self.runs:
            crc = zlib.crc32(run.key.encode())
            shard = f"{self.name}_{crc % self.jobs}" if self.jobs else f"{self.name}_{crc:08x}"
            out.setdefault(shard, []).append(run)
        return dict(sorted(out.items()))

    def inputs(self, runs: list[Run]) -> list[str]:
        """The files a job of `runs` reads for them (checkpoints, result.json)."""
        files = {c.file for r in runs for c in r.checkpoints} | {
            f for r in runs for f in r.extra_files
        }
        return sorted(files - set(self.shared_files))

    def job(self, runs: list[Run]) -> dict:
        """`import_shard`'s arguments for a job of `runs` (its files included)."""
        return {
            "name": self.name,
            "format": self.format,
            "path": self.path,
            "roles": self.roles,
            "runs": [r.to_dict() for r in runs],
            "outputs": [{k: self.file(r, k) for k in ("weights", "metrics", "runs")} for r in runs],
        }


def _require(table, columns, path) -> None:
    if missing := [c for c in columns if c not in table.columns]:
        raise ZooFileError(
            f"{path}: no column {missing[0]!r} (has {', '.join(table.columns) or 'none'})"
        )


def slug(value: Any) -> str:
    """A value as it reads in an imported id: numbers with 6 significant digits, text lower
    case with other characters as dots (he_normal -> he.normal), lists joined by dots."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ".".join(slug(v) for v in value)
    return re.sub(r"[^a-z0-9.+]+", ".", str(value).lower()).strip(".")


# A zoo's hyperparameter (the last part of its key: config.learning_rate, optim::lr) ->
# weightzoo's setting key (settings.SETTING_KEYS: its runs-table column and id tag). Others
# keep their own name: column "hp.<key>", tag made of the name's letters.
KNOWN_KEYS = {
    "learning_rate": "lr", "lr": "lr", "l2reg": "weight_decay", "wd": "weight_decay",
    "weight_decay": "weight_decay", "optimizer": "optimizer", "activation": "activation",
    "nlin": "activation", "batchsize": "batch_size", "batch_size": "batch_size",
    "epochs": "epochs", "epochs_train": "epochs", "momentum": "momentum",
    "train_fraction": "train_fraction",
}  # fmt: skip


def _short(key: str) -> str:
    return re.split(r"::|\.", key)[-1]


def _column(key: str) -> str:
    return KNOWN_KEYS.get(_short(key), f"hp.{key}")


def _typed(key: str, value: Any) -> Any:
    """A hyperparameter's value as its weightzoo setting key's type, where it has one."""
    known = settings.SETTING_KEYS.get(KNOWN_KEYS.get(_short(key), ""))
    if known is None or value is None:
        return value if not isinstance(value, list | dict) else json.dumps(value)
    try:
        return known.type(value)
    except (TypeError, ValueError):
        return value


def setting_ids(hyper: list[dict], keys: list[str]) -> list[str]:
    """Each run's setting id from the hyperparameters `keys` (those that vary across the zoo),
    weightzoo's own setting keys first (in SETTING_KEYS order, with their tags), then the
    others by name; `default` when none vary."""
    order = list(settings.SETTING_KEYS)

    def rank(k: str) -> tuple:
        name = KNOWN_KEYS.get(_short(k))
        return (order.index(name), k) if name else (len(order), k)

    keys = sorted(keys, key=rank)
    ids = []
    for h in hyper:
        parts = []
        for k in keys:
            name = KNOWN_KEYS.get(_short(k))
            tag = (
                settings.SETTING_KEYS[name].tag
                if name
                else re.sub(r"[^a-z]", "", _short(k).lower())
            )
            parts.append(f"{tag or 'hp'}{slug(h.get(k))}")
        ids.append("-".join(parts) or settings.DEFAULT)
    return ids


def _varying(hyper: list[dict], skip: set[str]) -> list[str]:
    """The keys whose values differ between runs (setting keys), besides `skip`."""
    keys = dict.fromkeys(k for h in hyper for k in h if k not in skip)
    return [k for k in keys if len({json.dumps(h.get(k), sort_keys=True) for h in hyper}) > 1]


def _values(h: dict, keys: list[str]) -> dict:
    """A run's hyperparameter columns (`keys` of `h`, typed)."""
    return {_column(k): _typed(k, h.get(k)) for k in keys}


def _check_id(value: str, what: str, where: str) -> str:
    if not ID.fullmatch(value):
        raise ZooFileError(
            f"{where}: {what} {value!r} is not an id (lower-case letters, digits, '.', '+', '-', "
            "starting with a letter)"
        )
    return value


def _check_unique(runs: list[Run]) -> None:
    seen: dict[str, Run] = {}
    for run in runs:
        if (other := seen.setdefault(run.key, run)) is not run:
            raise ZooFileError(
                f"{run.source}: same architecture, setting and seed as {other.source} "
                f"(arch={run.arch}, setting={run.setting}, seed={run.seed}): nothing tells the "
                "two runs apart"
            )


def _accuracy(value: Any, where: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or value < 0:  # the Model Zoos write -999 where nothing was measured
        return None
    if value > 1:
        raise ZooFileError(f"{where}: accuracy {value} is not a fraction in [0, 1]")
    return value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or value == -999 else value


def _plan_listed(name: str, entry: dict) -> list[Run]:
    """state_dict / safetensors: a runs CSV with a row per checkpoint file (file, arch, seed,
    test_acc; optionally epoch, setting, family, n_classes, train_acc, test_loss, train_loss,
    and hyperparameter columns, each constant within a run)."""
    import polars as pl

    folder, csv = Path(entry["path"]), Path(entry["runs"])
    if not csv.is_file():
        raise ZooFileError(f"{csv}: no such file (imports.{name}.runs)")
    table = pl.read_csv(csv, infer_schema_length=None)
    _require(table, ("file", "arch", "seed", "test_acc"), csv)
    own = {"file", "arch", "seed", "epoch", "setting", "family", "n_classes", *METRICS}
    extra = [c for c in table.columns if c not in own]
    groups: dict[tuple, list[tuple[int, dict]]] = {}
    for i, r in enumerate(table.iter_rows(named=True)):
        where = f"{csv}: line {i + 2}"
        for c in ("file", "arch", "seed", "test_acc"):
            if r[c] is None:
                raise ZooFileError(f"{where}: no {c}")
        file = folder / str(r["file"])
        if not file.is_file():
            raise ZooFileError(f"{file}: no such file ({where})")
        arch = _check_id(str(r["arch"]), "arch", where)
        setting = _check_id(str(r.get("setting") or settings.DEFAULT), "setting", where)
        key = (arch, setting, int(r["seed"]))
        groups.setdefault(key, []).append((i, {**r, "file": str(file), "where": where}))
    runs = []
    for (arch, setting, seed), rows in groups.items():
        if len(rows) > 1 and any(r.get("epoch") is None for _, r in rows):
            raise ZooFileError(
                f"{rows[1][1]['where']}: run arch={arch} setting={setting} seed={seed} has "
                f"{len(rows)} files: give each its epoch (an `epoch` column)"
            )
        checkpoints, epochs = [], {}
        for _, r in rows:
            epoch = int(r["epoch"]) if r.get("epoch") is not None else 1
            if epoch in epochs:
                raise ZooFileError(
                    f"{r['where']}: epoch {epoch} of arch={arch} setting={setting} seed={seed} "
                    f"is also {epochs[epoch]}"
                )
            epochs[epoch] = r["file"]
            metrics = {m: r.get(m) for m in METRICS}
            metrics["test_acc"] = _accuracy(r["test_acc"], r["where"])
            metrics["train_acc"] = _accuracy(r.get("train_acc"), r["where"])
            checkpoints.append(Checkpoint(epoch, r["file"], metrics=metrics))
        first = rows[0][1]
        for c in (*extra, "family", "n_classes"):
            if c in table.columns and len({json.dumps(r.get(c)) for _, r in rows}) > 1:
                raise ZooFileError(
                    f"{rows[-1][1]['where']}: column {c!r} differs between the checkpoints of "
                    f"arch={arch} setting={setting} seed={seed}; it must be one value per run"
                )
        runs.append(
            Run(
                arch=arch,
                setting=setting,
                seed=seed,
                source=first["file"] if len(rows) == 1 else f"{csv} ({arch}/{setting}/{seed})",
                checkpoints=tuple(sorted(checkpoints, key=lambda c: c.epoch)),
                values={_column(c): _typed(c, first.get(c)) for c in extra},
                family=first.get("family"),
                n_classes=int(first["n_classes"]) if first.get("n_classes") is not None else None,
            )
        )
    return runs


SMALL_CNN_FILES = ("weights.npy", "metrics.csv.gz", "layout.csv")
# Small CNN Zoo config columns that are no training setting: the architecture, the seed,
# and what every run shares (bookkeeping).
SMALL_CNN_ARCH = ("config.dnn_architecture", "config.num_layers", "config.num_units")
SMALL_CNN_SKIP = {*SMALL_CNN_ARCH, "config.random_seed", "config.dataset",
                  "config.epochs_between_checkpoints"}  # fmt: skip


def _small_cnn_metrics(folder: Path) -> Path:
    for name in ("metrics.csv.gz", "metrics.csv"):
        if (folder / name).is_file():
            return folder / name
    raise ZooFileError(f"{folder / 'metrics.csv.gz'}: no such file")


def _plan_small_cnn_zoo(name: str, entry: dict) -> tuple[list[Run], tuple[str, ...]]:
    """Small CNN Zoo: weights.npy (a row per run x checkpoint), metrics.csv.gz (the same rows:
    config.* hyperparameters, modeldir, step, test_accuracy, ...) and layout.csv."""
    import polars as pl

    folder = Path(entry["path"])
    npy, layout = folder / "weights.npy", folder / "layout.csv"
    metrics_path = _small_cnn_metrics(folder)
    rows = NpyRows(npy)
    read_layout(layout, rows.shape[1])
    table = pl.read_csv(metrics_path, infer_schema_length=None)
    _require(table, ("modeldir", "step", "test_accuracy"), metrics_path)
    if table.height != rows.shape[0]:
        raise ZooFileError(
            f"{metrics_path}: {table.height} rows, but {npy} has {rows.shape[0]}: one metrics "
            "row per weights row"
        )
    config = [c for c in table.columns if c.startswith("config.")]
    table = table.with_row_index("row")
    per_run = table.group_by("modeldir", maintain_order=True).agg(pl.all())
    hyper = [{c: r[c][0] for c in config} for r in per_run.iter_rows(named=True)]
    keys = _varying(hyper, SMALL_CNN_SKIP)
    ids = setting_ids(hyper, keys)
    runs = []
    for r, h, setting in zip(per_run.iter_rows(named=True), hyper, ids, strict=True):
        where = f"{metrics_path}: run {r['modeldir']}"
        checkpoints = []
        for i, step in enumerate(r["step"]):
            metrics = {
                "test_acc": _accuracy(r["test_accuracy"][i], where),
                "train_acc": _accuracy(r.get("train_accuracy", [None] * len(r["step"]))[i], where),
                "test_loss": _number(r.get("test_loss", [None] * len(r["step"]))[i]),
                "train_loss": _number(r.get("train_loss", [None] * len(r["step"]))[i]),
            }
            checkpoints.append(
                Checkpoint(int(step), str(npy), row=int(r["row"][i]), metrics=metrics)
            )
        kind = str(h.get("config.dnn_architecture") or "cnn")
        family = "mlp" if kind.startswith("f") else "cnn"
        arch = family
        if h.get("config.num_layers") is not None and h.get("config.num_units") is not None:
            arch = f"{family}-l{int(h['config.num_layers'])}-u{int(h['config.num_units'])}"
        runs.append(
            Run(
                arch=arch,
                setting=_check_id(setting, "setting", where),
                seed=int(h.get("config.random_seed") or 0),
                source=str(r["modeldir"]),
                checkpoints=tuple(sorted(checkpoints, key=lambda c: c.epoch)),
                values=_values(h, keys),
                family=family,
                epochs_planned=int(h["config.epochs"]) if h.get("config.epochs") else None,
            )
        )
    return runs, (str(npy), str(layout), str(metrics_path))


CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)")
# Model Zoos params.json keys that are no training setting (the seed, bookkeeping), and the
# model:: keys that are not architecture (activation, dropout, initialisation).
MODELZOO_SKIP = {"seed", "cuda", "dataset::dump", "training::data_path", "training::checkpoint_dir"}
MODELZOO_NOT_ARCH = {"model::nlin", "model::dropout", "model::init_type"}


def _trials(root: Path, marker: str) -> list[Path]:
    """Trial folders under `root` (or one level deeper) holding a file named `marker`."""
    found = sorted(p.parent for p in root.glob(f"*/{marker}"))
    return found or sorted(p.parent for p in root.glob(f"*/*/{marker}"))


def _plan_modelzoos(name: str, entry: dict) -> list[Run]:
    """Model Zoos: ray.tune trial folders, each with params.json, result.json (a JSON line
    per epoch) and checkpoint_0000NN/checkpoints (the state dict at epoch NN)."""
    root = Path(entry["path"])
    trials = _trials(root, "params.json")
    if not trials:
        raise ZooFileError(f"{root}: no trial folder with a params.json (imports.{name}.path)")
    params = []
    for trial in trials:
        try:
            params.append(json.loads((trial / "params.json").read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ZooFileError(f"{trial / 'params.json'}: not JSON ({err})") from None
    arch_keys = [k for k in _varying(params, set()) if k.startswith("model::")]
    arch_keys = [k for k in arch_keys if k not in MODELZOO_NOT_ARCH and k != "model::type"]
    keys = _varying(params, MODELZOO_SKIP | set(arch_keys) | {"model::type"})
    ids = setting_ids(params, keys)
    runs = []
    for trial, p, setting in zip(trials, params, ids, strict=True):
        checkpoints = []
        for ckpt in sorted(trial.glob("checkpoint_*/checkpoints")):
            if m := CHECKPOINT_DIR.fullmatch(ckpt.parent.name):
                checkpoints.append(Checkpoint(int(m.group(1)), str(ckpt)))
        if not checkpoints:
            raise ZooFileError(f"{trial}: no checkpoint_*/checkpoints file")
        if not (trial / "result.json").is_file():
            raise ZooFileError(f"{trial / 'result.json'}: no such file")
        model = str(p.get("model::type", "net"))
        family = _family_of_type(model)
        arch = slug(model).replace(".", "")
        arch = arch if arch.startswith(family) else f"{family}-{arch}"
        arch += "".join(
            f"-{re.sub(r'[^a-z]', '', _short(k).lower())}{slug(p.get(k))}" for k in arch_keys
        )
        runs.append(
            Run(
                arch=_check_id(arch, "arch", str(trial)),
                setting=_check_id(setting, "setting", str(trial)),
                seed=int(p.get("seed") or 0),
                source=str(trial),
                checkpoints=tuple(sorted(checkpoints, key=lambda c: c.epoch)),
                values=_values(p, keys),
                family=family,
                n_classes=int(p["model::o_dim"]) if p.get("model::o_dim") else None,
                epochs_planned=int(p["training::epochs_train"])
                if p.get("training::epochs_train")
                else None,
                extra_files=(str(trial / "result.json"),),
            )
        )
    return runs


def _family_of_type(model: str) -> str:
    low = model.lower()
    if "mlp" in low or low == "fc":
        return "mlp"
    if "vit" in low or "transformer" in low:
        return "vit"
    return "cnn"


def _plan_cnn_wild_park(name: str, entry: dict) -> list[Run]:
    """CNN Wild Park: ray.tune trial folders with checkpoint_0000NN/checkpoint.pt, each a dict
    of the state dict (`model`), the run's `config`, `iteration` and `last_result`. Every
    trial draws its own architecture: a cell of its own, one run."""
    root = Path(entry["path"])
    files = sorted(root.rglob("checkpoint.pt"))
    if not files:
        raise ZooFileError(f"{root}: no checkpoint_*/checkpoint.pt file (imports.{name}.path)")
    trials: dict[Path, list[Checkpoint]] = {}
    for f in files:
        if m := CHECKPOINT_DIR.fullmatch(f.parent.name):
            trials.setdefault(f.parent.parent, []).append(Checkpoint(int(m.group(1)), str(f)))
    runs = []
    for trial, checkpoints in trials.items():
        relative = trial.relative_to(root).as_posix()
        runs.append(
            Run(
                arch=f"cnn-t{zlib.crc32(relative.encode()):08x}",
                setting=settings.DEFAULT,
                seed=0,
                source=str(trial),
                checkpoints=tuple(sorted(checkpoints, key=lambda c: c.epoch)),
                values={"trial": relative},
                family="cnn",
            )
        )
    return runs


def plan_import(name: str, entry: dict) -> ImportPlan:
    """The runs of one `imports:` entry, from its small files only; ZooFileError names the
    file at fault (a missing checkpoint, a bad runs CSV, two runs with the same key)."""
    fmt = entry["format"]
    if fmt not in FORMATS:
        raise ZooFileError(
            f"imports.{name}.format: unknown format {fmt!r} (known: {', '.join(FORMATS)})"
        )
    path = Path(entry["path"])
    if not path.exists():
        raise ZooFileError(f"{path}: no such folder (imports.{name}.path)")
    if (fmt in LISTED) != ("runs" in entry):
        need = "needs" if fmt in LISTED else "takes no"
        raise ZooFileError(f"imports.{name}.runs: format {fmt} {need} a runs CSV")
    shared: tuple[str, ...] = ()
    if fmt in LISTED:
        runs = _plan_listed(name, entry)
    elif fmt == "small_cnn_zoo":
        runs, shared = _plan_small_cnn_zoo(name, entry)
    elif fmt == "modelzoos":
        runs = _plan_modelzoos(name, entry)
    else:
        runs = _plan_cnn_wild_park(name, entry)
    _check_unique(runs)
    return ImportPlan(
        name, fmt, str(path), runs, entry.get("jobs", 0), dict(entry.get("roles", {})), shared
    )


def plan_imports(config: dict) -> dict[str, ImportPlan]:
    """Every `imports:` entry of the config, planned."""
    return {name: plan_import(name, entry) for name, entry in config.get("imports", {}).items()}


# --------------------------------------------------------------------------------------------
# The import job: read, check and write the runs of one job
# --------------------------------------------------------------------------------------------


class Reader:
    """Reads the checkpoints of one zoo: `arrays(run, checkpoint)` -> (named float32 arrays,
    metrics found in the file)."""

    def __init__(self, fmt: str, path: str) -> None:
        self.format, self.path = fmt, Path(path)
        self.results: dict[str, dict[int, dict]] = {}
        if fmt == "small_cnn_zoo":
            self.rows = NpyRows(self.path / "weights.npy")
            self.layout = read_layout(self.path / "layout.csv", self.rows.shape[1])

    def arrays(self, run: Run, c: Checkpoint) -> tuple[dict[str, np.ndarray], dict]:
        if self.format == "small_cnn_zoo":
            return small_cnn_arrays(self.rows.rows(c.row, c.row + 1)[0], self.layout), {}
        if self.format == "safetensors":
            return load_safetensors(c.file), {}
        obj = load_torch(c.file)
        arrays = to_arrays(state_dict_of(obj, c.file), c.file)
        if self.format == "modelzoos":
            return arrays, self._result(run, c)
        if self.format == "cnn_wild_park":
            return arrays, self._park_metrics(obj, c)
        return arrays, {}

    def _result(self, run: Run, c: Checkpoint) -> dict:
        """The result.json line of a Model Zoos checkpoint (matched on training_iteration)."""
        path = run.extra_files[0]
        if path not in self.results:
            lines = {}
            for i, line in enumerate(Path(path).read_text().splitlines()):
                if line.strip():
                    try:
                        r = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise ZooFileError(f"{path}: line {i + 1} is not JSON ({err})") from None
                    lines[int(r.get("training_iteration", i))] = r
            self.results = {path: lines}  # one trial at a time
        r = self.results[path].get(c.epoch)
        if r is None:
            return {}
        return {
            "test_acc": _accuracy(r.get("test_acc"), path),
            "train_acc": _accuracy(r.get("train_acc"), path),
            "test_loss": _number(r.get("test_loss")),
            "train_loss": _number(r.get("train_loss")),
        }

    @staticmethod
    def _park_metrics(obj: Any, c: Checkpoint) -> dict:
        iteration = obj.get("iteration") if isinstance(obj, Mapping) else None
        if iteration is not None and int(iteration) != c.epoch:
            raise ZooFileError(
                f"{c.file}: iteration {iteration} does not match its folder "
                f"{Path(c.file).parent.name}"
            )
        result = (obj.get("last_result") if isinstance(obj, Mapping) else None) or {}
        return {
            "test_acc": _accuracy(result.get("test/acc"), c.file),
            "test_loss": _number(result.get("test/loss")),
        }


@dataclass
class RunResult:
    """What reading one run found: its layout, roles, the epochs kept and their metrics."""

    shapes: dict
    kinds: dict
    family: str
    epochs: list[int]
    metrics: list[dict]
    files: list[str]
    diverged_epoch: int | None = None


class RowGroups:
    """Writes a run's checkpoints into a ParquetWriter as row groups of up to GROUP_VALUES
    weights (a small run's checkpoints in one: the per-row-group cost is paid once); each
    row group holds whole checkpoints. `flush()` writes what is left."""

    GROUP_VALUES = 1 << 22

    def __init__(self, writer) -> None:
        self.writer, self.tables, self.values = writer, [], 0

    def write_table(self, table) -> None:
        self.tables.append(table)
        self.values += int(np.asarray(table.column("numel")).sum())
        if self.values >= self.GROUP_VALUES:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.tables:
            self.writer.write_table(pa.concat_tables(self.tables))
        self.tables, self.values = [], 0


def read_run(run: Run, reader: Reader, dataset: str, roles: dict, writer) -> RunResult:
    """Read a run's checkpoints in epoch order, check them, and hand each finite one to
    `writer` (a ParquetWriter of the weights schema, or RowGroups). A checkpoint with a
    NaN or infinite value ends the run as diverged (its earlier dumps are kept)."""
    from weightzoo import dumps

    result: RunResult | None = None
    for c in run.checkpoints:
        arrays, found = reader.arrays(run, c)
        shapes = {n: tuple(a.shape) for n, a in arrays.items()}
        source = f"{c.file}#row{c.row}" if c.row >= 0 else c.file
        if result is None:
            kinds = tensor_roles(shapes, roles)
            family = run.family or infer_family(shapes, kinds)
            result = RunResult(shapes, kinds, family, [], [], [])
        elif shapes != result.shapes:
            raise ZooFileError(
                f"{source}: {_difference(result.shapes, shapes)} (epoch {c.epoch}; "
                f"{result.files[0]} at epoch {result.epochs[0]})"
            )
        bad = next((n for n, a in arrays.items() if not np.isfinite(a).all()), None)
        if bad is not None:
            if not result.epochs:
                raise ZooFileError(
                    f"{source}: tensor {bad!r} holds NaN or infinite values in the run's first "
                    f"checkpoint (epoch {c.epoch}): nothing of the run can be analysed"
                )
            result.diverged_epoch = c.epoch
            break
        keys = {"dataset": dataset, "family": result.family, "arch": run.arch,
                "setting": run.setting, "seed": run.seed, "epoch": c.epoch}  # fmt: skip
        writer.write_table(dumps.arrays_table(arrays, result.kinds, **keys))
        result.epochs.append(c.epoch)
        result.metrics.append({**{m: None for m in METRICS}, **c.metrics, **found})
        result.files.append(source)
    if result is None:
        raise ZooFileError(f"{run.source}: no checkpoint")
    return result


def _run_row(run: Run, r: RunResult, dataset: str, fmt: str, entry: dict) -> dict:
    """The runs-table row of an imported run (RUNS_COLUMNS, then its hyperparameters and
    what it was imported from)."""
    final = r.metrics[-1]
    if final["test_acc"] is None:
        raise ZooFileError(f"{r.files[-1]}: no test accuracy for its epoch {r.epochs[-1]}")
    measured = [(m["test_acc"], e) for m, e in zip(r.metrics, r.epochs, strict=True)]
    best_acc, best_epoch = max((a, e) for a, e in measured if a is not None)
    learnt = {n: s for n, s in r.shapes.items() if r.kinds[n][0] != "buffer"}
    weights = [s for n, s in r.shapes.items() if r.kinds[n][0] == "weight"]
    n_classes = run.n_classes or (weights[-1][0] if weights else None)
    unplaced = [n for n in r.shapes if r.kinds[n][0] == "unknown"]
    return {
        "dataset": dataset,
        "family": r.family,
        "arch": run.arch,
        "setting": run.setting,
        "seed": run.seed,
        "n_params": sum(math.prod(s) for s in learnt.values()),
        "status": "diverged" if r.diverged_epoch is not None else "ok",
        "final_test_acc": final["test_acc"],
        "best_test_acc": best_acc,
        "best_epoch": best_epoch,
        "final_train_acc": final["train_acc"],
        "final_test_loss": final["test_loss"],
        "final_train_loss": final["train_loss"],
        "epochs_run": r.epochs[-1],
        "epochs_planned": run.epochs_planned or r.epochs[-1],
        "diverged_epoch": r.diverged_epoch,
        "diverged_because": "non-finite weights" if r.diverged_epoch is not None else None,
        "wall_time_s": None,
        "seeds_in_block": 1,
        **run.values,
        "n_classes": n_classes,
        "import_format": fmt,
        "source": run.source,
        "layout": layout_signature(r.shapes),
        "unplaced": ",".join(unplaced),
        "weightzoo_version": weightzoo.__version__,
        "python_version": platform.python_version(),
        "host": platform.node(),
        "config": json.dumps({**entry, "source": run.source, "values": run.values}, sort_keys=True),
    }


# The types of the runs and metrics columns an import writes (those of a training job's).
RUN_TYPES = {"seed": "Int32", "best_epoch": "Int32", "epochs_run": "Int32",
             "epochs_planned": "Int32", "diverged_epoch": "Int32", "seeds_in_block": "Int32",
             "n_params": "Int64", "final_test_acc": "Float64", "best_test_acc": "Float64",
             "final_train_acc": "Float64", "final_test_loss": "Float64",
             "final_train_loss": "Float64", "wall_time_s": "Float64",
             "diverged_because": "String", "n_classes": "Int32"}  # fmt: skip
METRIC_TYPES = {"seed": "Int32", "epoch": "Int32", **dict.fromkeys(METRICS, "Float64")}


def import_shard(
    *,
    name: str,
    format: str,
    path: str,
    roles: dict,
    runs: list[dict],
    outputs: list[dict],
) -> None:
    """Import the runs of one job (`ImportPlan.job`): per run, its weights (whole checkpoints
    in row groups of up to RowGroups.GROUP_VALUES weights), metrics (a row per checkpoint)
    and runs table (one row). Architectures are checked to keep one layout; the job's files
    appear together at its end (committed at once, `atomic_paths`), or not at all."""
    import polars as pl
    import pyarrow.parquet as pq

    from weightzoo import dumps

    started = time.perf_counter()
    reader = Reader(format, path)
    entry = {"import": name, "format": format, "path": path}
    layouts: dict[str, tuple[dict, str]] = {}
    options = dumps.WEIGHTS_PARQUET_OPTIONS
    with atomic_paths([out[k] for out in outputs for k in out]) as tmps:
        for i, (d, out) in enumerate(zip(runs, outputs, strict=True)):
            run = Run.from_dict(d)
            tmp = dict(zip(out, tmps[i * len(out) : (i + 1) * len(out)], strict=True))
            with pq.ParquetWriter(tmp["weights"], dumps.WEIGHTS_SCHEMA, **options) as file:
                writer = RowGroups(file)
                r = read_run(run, reader, name, roles, writer)
                writer.flush()
            shapes, first = layouts.setdefault(run.arch, (r.shapes, r.files[0]))
            if shapes != r.shapes:
                raise ZooFileError(
                    f"{r.files[0]}: {_difference(shapes, r.shapes)}, unlike {first} of the same "
                    f"architecture {run.arch}"
                )
            metrics = pl.DataFrame(
                [
                    {"seed": run.seed, "epoch": e, **m}
                    for e, m in zip(r.epochs, r.metrics, strict=True)
                ]
            )
            keys = {"dataset": name, "family": r.family, "arch": run.arch, "setting": run.setting}
            metrics = metrics.select(
                *(pl.lit(v).alias(k) for k, v in keys.items()),
                *(pl.col(c).cast(getattr(pl, t)) for c, t in METRIC_TYPES.items()),
            )
            pq.write_table(metrics.to_arrow(), tmp["metrics"], **dumps.PARQUET_OPTIONS)
            row = _run_row(run, r, name, format, entry)
            frame = pl.DataFrame([row], infer_schema_length=None)
            frame = frame.with_columns(pl.col(c).cast(getattr(pl, t)) for c, t in RUN_TYPES.items())
            pq.write_table(frame.to_arrow(), tmp["runs"], **dumps.PARQUET_OPTIONS)
            if unplaced := row["unplaced"]:
                logger.warning(
                    "%s: tensors of unknown role (kept, no layer): %s", run.source, unplaced
                )
            if r.diverged_epoch is not None:
                logger.warning(
                    "%s: non-finite weights at epoch %d: status diverged, epochs %s kept",
                    run.source,
                    r.diverged_epoch,
                    r.epochs,
                )
            if (i + 1) % 500 == 0:
                logger.info("%d/%d runs in %.0f s", i + 1, len(runs), time.perf_counter() - started)
    logger.info(
        "imported %d run(s) of %s (%s) in %.1f s",
        len(runs),
        name,
        format,
        time.perf_counter() - started,
    )


def import_stats(*, units: list[dict], hist: dict, spectral: dict | None) -> None:
    """Statistics of the imported runs of one job, each file as a training job's: `units` are
    {weights, stats, maps} paths; `hist` is analysis.hist, `spectral` analysis.spectral. No
    first-layer strength maps: an imported zoo's input images are not known (empty tables)."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    from weightzoo import dumps, stats
    from weightzoo.spectral import SpectralConfig

    started = time.perf_counter()
    ranges = stats.HistConfig.from_config(hist)
    fits = None if spectral is None else SpectralConfig.from_config(spectral)
    sink = pa.BufferOutputStream()  # every maps file is the same empty table: its bytes once
    pq.write_table(pl.DataFrame(schema=stats.MAP_SCHEMA).to_arrow(), sink, **dumps.PARQUET_OPTIONS)
    empty = sink.getvalue().to_pybytes()
    frames = stats.files_stats([u["weights"] for u in units], ranges, fits)
    for first in range(0, len(units), stats.FILES_AT_ONCE):  # committed a group at a time
        group = units[first : first + stats.FILES_AT_ONCE]
        paths = [p for u in group for p in (u["stats"], u["maps"])]
        with atomic_paths(paths) as tmps:
            for i in range(len(group)):
                pq.write_table(next(frames).to_arrow(), tmps[2 * i], **dumps.PARQUET_OPTIONS)
                tmps[2 * i + 1].write_bytes(empty)
    logger.info("statistics of %d run(s) in %.1f s", len(units), time.perf_counter() - started)


def check_layouts(runs) -> None:
    """Every architecture of an imported zoo has one layout across its runs (the import jobs
    check within a job; this, on the runs table, across jobs): ZooFileError names a run of
    each layout."""
    import polars as pl

    if "layout" not in runs.columns:
        return
    imported = runs.filter(pl.col("layout").is_not_null())
    layouts = imported.group_by("dataset", "arch").agg(
        pl.col("layout").unique(maintain_order=True), pl.col("source").unique(maintain_order=True)
    )
    for r in layouts.filter(pl.col("layout").list.len() > 1).iter_rows(named=True):
        first = imported.filter(dataset=r["dataset"], arch=r["arch"], layout=r["layout"][0])
        other = imported.filter(dataset=r["dataset"], arch=r["arch"], layout=r["layout"][1])
        raise ZooFileError(
            f"{other['source'][0]}: its tensors differ from those of {first['source'][0]}, a run "
            f"of the same architecture {r['arch']} of {r['dataset']} (layouts {r['layout'][1]} "
            f"and {r['layout'][0]})"
        )
