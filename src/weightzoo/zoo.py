"""The zoo as a dataset: a results folder opened in one call.

`open_zoo("results")` gives lazy polars frames over the dumps and tables, rebuilds any dumped
network exactly (`state_dict`, `model`), splits runs so that no architecture cell is on both
sides (`splits`), and hands flattened weights to PyTorch (`to_torch`) for weight-space
learning. Runs are keyed by `tables.RUN_KEYS` and cells by `tables.CELL_KEYS` (an architecture
under one training setting on one dataset): a folder written before settings could be swept
reads as `setting=default`. torch is imported only by the calls that make tensors, so the
prediction job, which takes its splits from here, starts without it.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from weightzoo import inventory, resampling, tables
from weightzoo.data import IMAGE_SHAPES
from weightzoo.tables import CELL_KEYS, DEFAULT_SETTING, RUN_KEYS

if TYPE_CHECKING:
    import torch

SETTING = "setting"
# What metrics and stats are joined with from the runs table.
RUN_COLUMNS = ["n_params", "status", "final_test_acc", "epochs_run"]
SPLIT_KINDS = {
    "architecture": "grouped k-fold over architectures: every setting, dataset, seed and epoch "
    "of an architecture on one side",
    "cell": "grouped k-fold over cells (an architecture under one setting on one dataset): "
    "every seed and epoch of a cell on one side; the same architecture under another setting "
    "or on another dataset may be on the other side",
    "family": "leave one model family out",
    "dataset": "leave one dataset out",
    "seed": "within cells: seeds split, every cell on both sides; "
    "only for within-architecture questions",
}


class ZooError(LookupError):
    """A run, dump or table asked for is not in the zoo; the message names it."""


class TooFewGroups(ValueError):
    """A split needs at least two groups (cells, families, datasets or seeds) to hold out."""


def with_keys(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`frame` with every column of RUN_KEYS: a missing `setting` is read as the default one
    (tables.with_setting), a missing other key is an error naming it."""
    frame = tables.with_setting(frame)
    names = frame.collect_schema().names()
    if missing := [k for k in RUN_KEYS if k not in names]:
        raise ValueError(f"table lacks the key column(s) {missing}; has {names}")
    return frame


def cell_ids(runs: pl.DataFrame) -> np.ndarray:
    """Each row's architecture cell as an integer 0..cells-1, in sorted cell-key order."""
    if runs.height == 0:
        return np.zeros(0, dtype=np.int64)
    runs = with_keys(runs.lazy()).collect()
    return resampling.codes(*(runs[k].to_numpy() for k in CELL_KEYS))


def fold_ids(runs: pl.DataFrame, kind: str, k: int = 5, seed: int = 0) -> np.ndarray:
    """The held-out fold of each run (row of `runs`, which has the run keys) under `kind`.

    `architecture`: architectures (their every setting and dataset together) dealt to
    min(k, architectures) folds in a seeded order, family by family so that every fold mixes
    families; `cell`: the same over cells; `family` / `dataset`: one fold per family /
    dataset; `seed`: within each cell its seeds dealt to min(k, seeds per cell) folds from a
    seeded offset (every cell on both sides: for within-architecture questions only). Raises
    TooFewGroups when fewer than two folds can be made.
    """
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; choose one of {list(SPLIT_KINDS)}")
    rng = np.random.default_rng(seed)
    cells = cell_ids(runs)
    n_cells = int(cells.max()) + 1 if len(cells) else 0
    if kind in ("family", "dataset"):
        groups = runs[kind].to_numpy()
        names, folds = np.unique(groups, return_inverse=True)
        if len(names) < 2:
            raise TooFewGroups(f"too few cells for a split: {kind} has {len(names)} {kind}(s)")
        return folds
    if kind in ("architecture", "cell"):
        groups = cells if kind == "cell" else resampling.codes(runs["arch"].to_numpy())
        n_groups = int(groups.max()) + 1 if len(groups) else 0
        if n_groups < 2:
            what = "cell(s)" if kind == "cell" else "architecture(s)"
            raise TooFewGroups(f"too few cells for a split: {n_groups} {what}")
        family = np.zeros(n_groups, dtype=np.int64)
        family[groups] = np.unique(runs["family"].to_numpy(), return_inverse=True)[1]
        order = np.lexsort((rng.random(n_groups), family))  # by family, then at random
        fold_of_group = np.empty(n_groups, dtype=np.int64)
        fold_of_group[order] = np.arange(n_groups) % min(k, n_groups)
        return fold_of_group[groups]
    by_cell = pl.col("seed").rank("ordinal").over(CELL_KEYS) - 1
    rank = with_keys(runs.lazy()).select(r=by_cell).collect()["r"].to_numpy()
    per_cell = int(rank.max()) + 1 if len(rank) else 0
    if per_cell < 2:
        raise TooFewGroups(f"too few cells for a split: at most {per_cell} seed(s) per cell")
    n = min(k, per_cell)
    return (rank + rng.integers(0, n, size=n_cells)[cells]) % n


@dataclass(frozen=True)
class Split:
    """One fold of a split: the run keys on each side, and what kind of split it is."""

    kind: str
    fold: int
    train: pl.DataFrame
    test: pl.DataFrame

    @property
    def note(self) -> str:
        return SPLIT_KINDS[self.kind]


@dataclass(frozen=True)
class Zoo:
    """A weightzoo results folder as lazy frames, exact models, splits and torch datasets."""

    root: Path

    def _file(self, relative: str, what: str) -> Path:
        path = self.root / relative
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no {what} in the zoo at {self.root} (run the workflow first, e.g. "
                "`snakemake --cores 2`)"
            )
        return path

    def unit_files(self, kind: str) -> list[inventory.UnitFile]:
        """The per-job files of `kind` (weights, metrics, ...) that hold runs of the runs
        table: files of cells or seeds that left the config (and so the table) are left out.
        A file that is cut short (no Parquet footer) is a DamagedFileError naming it."""
        runs = self.runs.select("dataset", "arch", SETTING, "seed").collect()
        seeds: dict[tuple[str, str, str], set[int]] = {}
        for dataset, arch, setting, seed in runs.iter_rows():
            seeds.setdefault((dataset, arch, setting), set()).add(seed)
        kept = []
        for f in inventory.unit_files(self.root, (kind,)):
            first, last = f.seeds
            if any(first <= s <= last for s in seeds.get((f.dataset, f.arch, f.setting), ())):
                tables.check_footer(f.path)
                kept.append(f)
        return kept

    def _scan(self, folder: str, what: str) -> pl.LazyFrame:
        path = self._file(folder, what)
        files = [str(f.path) for f in self.unit_files(folder)]
        if not files:
            raise FileNotFoundError(f"{path}: no Parquet files of {what} in the zoo")
        return with_keys(pl.scan_parquet(files, hive_partitioning=True))

    @property
    def runs(self) -> pl.LazyFrame:
        """One row per run: results/tables/runs.parquet."""
        path = self._file("tables/runs.parquet", "runs table")
        tables.check_footer(path)
        return with_keys(pl.scan_parquet(path))

    @property
    def weights(self) -> pl.LazyFrame:
        """One row per (run, epoch, tensor), read from the hive-partitioned dumps of the
        runs in the runs table (`unit_files`)."""
        return self._scan("weights", "weight dumps")

    @property
    def metrics(self) -> pl.LazyFrame:
        """One row per (run, epoch), with the run's size, status and final accuracy."""
        return self._scan("metrics", "metrics").join(
            self.runs.select(*RUN_KEYS, *RUN_COLUMNS), on=RUN_KEYS, how="left"
        )

    @property
    def stats(self) -> pl.LazyFrame:
        """One row per (run, epoch, scope, target), with the run's size, status and accuracy."""
        path = self._file("tables/stats.parquet", "statistics")
        tables.check_footer(path)
        stats = with_keys(pl.scan_parquet(path))
        return stats.join(self.runs.select(*RUN_KEYS, *RUN_COLUMNS), on=RUN_KEYS, how="left")

    def _key(self, dataset: str, arch: str, seed: int, setting: str) -> pl.Expr:
        return (
            (pl.col("dataset") == dataset)
            & (pl.col("arch") == arch)
            & (pl.col(SETTING) == setting)
            & (pl.col("seed") == seed)
        )

    def run(self, dataset: str, arch: str, seed: int, setting: str = DEFAULT_SETTING) -> dict:
        """The run's row of the runs table; ZooError if the zoo has no such run."""
        rows = self.runs.filter(self._key(dataset, arch, seed, setting)).collect()
        if rows.height == 0:
            raise ZooError(
                f"run dataset={dataset} arch={arch} setting={setting} seed={seed} is not in "
                f"the zoo at {self.root}"
            )
        return rows.row(0, named=True)

    def state_dict(
        self, dataset: str, arch: str, seed: int, epoch: int, setting: str = DEFAULT_SETTING
    ) -> dict[str, torch.Tensor]:
        """The exact state_dict of one run at one dumped epoch, read from its weights file
        with every page checksum checked (a damaged file is a DamagedFileError naming it)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from weightzoo.dumps import rows_to_state_dict

        self.run(dataset, arch, seed, setting)  # names a run that is not there
        path = self._unit_file("weights", dataset, arch, setting, seed)
        with tables.reading(path):
            f = pq.ParquetFile(path, page_checksum_verification=True)
            dumped, rows = [], None
            for i in range(f.num_row_groups):  # a row group per (seed, epoch) dump
                ids = f.read_row_group(i, columns=["seed", "epoch"])
                mine = pc.equal(ids["seed"], seed)
                dumped += pc.filter(ids["epoch"], mine).to_pylist()
                if epoch in pc.filter(ids["epoch"], mine).to_pylist():
                    group = f.read_row_group(i)
                    keep = pc.and_(pc.equal(group["seed"], seed), pc.equal(group["epoch"], epoch))
                    rows = group.filter(keep)
        if rows is None:
            raise ZooError(
                f"run dataset={dataset} arch={arch} setting={setting} seed={seed} has no dump "
                f"at epoch {epoch}; dumped epochs: {sorted(set(dumped))}"
            )
        stored = json.loads(self.run(dataset, arch, seed, setting).get("config") or "{}")
        return rows_to_state_dict(rows, stored.get("dump_dtype", "float32"))

    def _unit_file(self, kind: str, dataset: str, arch: str, setting: str, seed: int) -> Path:
        """The file of `kind` that holds one run (its block's file)."""
        for f in self.unit_files(kind):
            first, last = f.seeds
            if (f.dataset, f.arch, f.setting) == (dataset, arch, setting) and first <= seed <= last:
                return f.path
        raise ZooError(
            f"run dataset={dataset} arch={arch} setting={setting} seed={seed} has no {kind} "
            f"file in the zoo at {self.root}"
        )

    def in_shape(self, dataset: str) -> tuple[int, int, int]:
        """(C, H, W) of a dataset's images: from its prepared file, else the built-in's."""
        path = self.root / "data" / f"{dataset}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return tuple(int(s) for s in z["x_test"].shape[1:])  # type: ignore[return-value]
        if dataset in IMAGE_SHAPES:
            return IMAGE_SHAPES[dataset]
        raise ZooError(f"{path}: the prepared dataset is needed for the input shape of {dataset}")

    def model(
        self, dataset: str, arch: str, seed: int, epoch: int, setting: str = DEFAULT_SETTING
    ) -> torch.nn.Module:
        """The trained network of one run at one dumped epoch, in eval mode: built with
        models.build_model from the run's config slice, the dataset's image shape and the
        head's size, its weights loaded strictly."""
        from weightzoo.models import build_model

        run = self.run(dataset, arch, seed, setting)
        if run.get("import_format"):
            raise ZooError(
                f"run dataset={dataset} arch={arch} setting={setting} seed={seed} was imported "
                f"({run['import_format']}): weightzoo cannot build its network; use state_dict"
            )
        state = self.state_dict(dataset, arch, seed, epoch, setting)
        arch_params = json.loads(run["config"])["arch_params"]
        n_classes = int(state["head.bias"].numel())  # every family ends in a linear head
        model = build_model(run["family"], arch_params, self.in_shape(dataset), n_classes)
        model.load_state_dict(state, strict=True)
        return model.eval()

    def tensors(self, dataset: str, device: str = "cpu"):
        """The prepared dataset as normalised tensors, as training saw it (training.TensorData)."""
        import torch

        from weightzoo import data, training

        path = self._file(f"data/{dataset}.npz", f"prepared dataset {dataset}")
        return training.to_tensors(data.load_prepared(path), torch.device(device))

    def splits(self, kind: str, k: int = 5, seed: int = 0) -> list[Split]:
        """The folds of a split of the zoo's runs (see `fold_ids`): run keys on each side."""
        runs = self.runs.select(RUN_KEYS).collect().sort(RUN_KEYS)
        folds = fold_ids(runs, kind, k, seed)
        return [
            Split(kind, int(f), runs.filter(folds != f), runs.filter(folds == f))
            for f in np.unique(folds)
        ]

    def to_torch(
        self,
        *,
        family: str | None = None,
        arch: str | None = None,
        epoch: int | None = None,
        dataset: str | None = None,
        setting: str | None = None,
        targets: tuple[str, ...] = ("test_acc", "test_loss", "train_acc", "train_loss"),
        pad: bool = False,
        status: str | None = "ok",
    ) -> torch.utils.data.Dataset:
        """A torch Dataset of (flattened weights of one run at `epoch`, its metrics there) for
        one family or architecture. `epoch` None: each run's final dump. Targets are columns
        of the metrics table (at that epoch) or of the runs table. Runs of different sizes
        need `pad=True` (zeros after each run's values). `status` keeps the runs of one
        status (`ok`, the default, or `diverged`; None keeps all): the runs it leaves out are
        counted by status in the dataset's `left_out` and named in a warning. The weights
        files it reads are checked page by page first (a damaged one is a DamagedFileError
        naming it)."""
        if family is None and arch is None:
            raise ValueError("to_torch: give family= or arch= (one kind of network)")
        chosen = {"family": family, "arch": arch, "dataset": dataset, SETTING: setting}
        filters = [pl.col(c) == v for c, v in chosen.items() if v is not None]
        matching = self.runs.filter(*filters).collect().sort(RUN_KEYS)
        runs = matching if status is None else matching.filter(status=status)
        others = matching.filter(pl.col("status") != status) if status else matching.clear()
        left_out = dict(others.group_by("status").len().sort("status").iter_rows())
        if left_out:
            counts = ", ".join(f"{n} {s}" for s, n in left_out.items())
            warnings.warn(
                f"to_torch: left out {sum(left_out.values())} of {matching.height} runs "
                f"({counts}) for status={status!r}; pass status=None to keep every run",
                stacklevel=2,
            )
        if runs.height == 0:
            named = ", ".join(f"{c}={v}" for c, v in chosen.items() if v is not None)
            what = "finished run" if status == "ok" else f"run of status {status}"
            raise ZooError(f"no {what} with {named} in the zoo at {self.root}")
        at = pl.col("epochs_run") if epoch is None else pl.lit(epoch)
        wanted = runs.select(*RUN_KEYS, epoch=at.cast(pl.Int32))
        cells = set(runs.select("dataset", "arch", SETTING).iter_rows())
        chosen_files = [f.path for f in self.unit_files("weights") if f.unit[:3] in cells]
        tables.check_parquet(*chosen_files)  # every page checked: a flipped bit is named
        rows = (
            self.weights.filter(
                pl.col("dataset").is_in(runs["dataset"].unique().to_list()),
                pl.col("arch").is_in(runs["arch"].unique().to_list()),
            )
            .join(wanted.lazy(), on=[*RUN_KEYS, "epoch"], how="semi", maintain_order="left")
            .group_by(*RUN_KEYS, "epoch", maintain_order=True)
            .agg(
                "tensor",
                "shape",
                pl.col("values").list.explode(keep_nulls=False, empty_as_null=False),
            )
            .collect()
        )
        if missing := wanted.height - rows.height:
            raise ZooError(f"{missing} of {wanted.height} runs have no dump at epoch {epoch}")
        found = _weight_dataset(self, rows, targets, pad)
        found.left_out = left_out
        return found


def open_zoo(results_dir: str | Path) -> Zoo:
    """The zoo in a weightzoo results folder (the workflow's `results/`)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no results folder (run the workflow first)")
    return Zoo(root)


def _weight_dataset(zoo: Zoo, rows: pl.DataFrame, targets: tuple[str, ...], pad: bool):
    """The WeightDataset of the dumps in `rows` (one per run, values flattened)."""
    import torch

    lengths = rows["values"].list.len().to_numpy()
    layouts = rows.select("tensor", "shape").unique()
    if len(np.unique(lengths)) > 1 and not pad:
        raise ValueError(
            f"runs of {len(layouts)} different layouts ({np.unique(lengths).tolist()} "
            "parameters): choose one architecture, or pass pad=True"
        )
    flat = rows["values"].explode().to_numpy().astype(np.float32, copy=False)
    x = np.zeros((rows.height, int(lengths.max())), np.float32)
    x[np.arange(x.shape[1]) < lengths[:, None]] = flat  # each run's values, then zeros
    keys = rows.select(*RUN_KEYS, "epoch")
    metrics = zoo.metrics.join(keys.lazy(), on=[*RUN_KEYS, "epoch"], how="semi")
    found = keys.join(metrics.collect(), on=[*RUN_KEYS, "epoch"], how="left")
    if missing := [t for t in targets if t not in found.columns]:
        raise ValueError(f"to_torch: unknown target(s) {missing}; columns: {found.columns}")
    y = found.select(pl.col(t).cast(pl.Float32) for t in targets).to_numpy()
    layout = rows.row(0, named=True)
    return _dataset_class()(
        weights=torch.from_numpy(x),
        metrics=torch.from_numpy(np.ascontiguousarray(y)),
        keys=keys,
        targets=targets,
        tensors=layout["tensor"],
        shapes=layout["shape"],
    )


@functools.cache
def _dataset_class() -> type:
    """WeightDataset, made on first use so that importing this module needs no torch."""
    import torch
    from torch.utils.data import Dataset

    class WeightDataset(Dataset):
        """(flattened weights, metrics) of one run per item; `keys` says which run and epoch,
        `tensors` and `shapes` the layout of the first run's vector (see `state_dict`)."""

        def __init__(
            self,
            weights: torch.Tensor,
            metrics: torch.Tensor,
            keys: pl.DataFrame,
            targets: tuple[str, ...],
            tensors: list[str],
            shapes: list[list[int]],
        ) -> None:
            self.weights, self.metrics, self.keys = weights, metrics, keys
            self.targets, self.tensors, self.shapes = targets, tensors, shapes
            self.left_out: dict[str, int] = {}  # runs to_torch's status filter left out

        def __len__(self) -> int:
            return self.weights.shape[0]

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return self.weights[i], self.metrics[i]

        def state_dict(self, vector: torch.Tensor) -> dict[str, torch.Tensor]:
            """A flat vector in the first run's layout back as a state_dict."""
            sizes = [int(np.prod(s)) for s in self.shapes]
            parts = torch.split(vector[: sum(sizes)], sizes)
            layout = zip(self.tensors, parts, self.shapes, strict=True)
            return {name: part.reshape(shape) for name, part, shape in layout}

    WeightDataset.__module__ = __name__
    WeightDataset.__qualname__ = "WeightDataset"
    return WeightDataset


def __getattr__(name: str) -> Any:
    if name == "WeightDataset":
        return _dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
