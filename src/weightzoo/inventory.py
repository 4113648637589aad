"""The zoo on disk against the config: training outputs the config no longer asks for, and
folders of results/ that cannot be written.

When a width, a setting or a block of seeds leaves the config, its training job is no longer
a target and its files stay in results/ (deleting weights is never automatic). The tables
and `open_zoo` ignore them; a run names them in its first line; `stale_files` lists them
and `remove_stale` deletes them, for whoever asks (a `weightzoo status` command, a user).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from weightzoo.tables import DEFAULT_SETTING, UNIT_KINDS


@dataclass(frozen=True, order=True)
class UnitFile:
    """One per-job file of results/: its kind (weights, metrics, ...), its cell and its
    block of seeds ("first-last"), and where it is."""

    kind: str
    dataset: str
    arch: str
    setting: str
    block: str
    path: Path

    @property
    def unit(self) -> tuple[str, str, str, str]:
        return self.dataset, self.arch, self.setting, self.block

    @property
    def cell(self) -> str:
        return f"dataset={self.dataset}/arch={self.arch}/setting={self.setting}"

    @property
    def seeds(self) -> tuple[int, int]:
        first, last = self.block.split("-")
        return int(first), int(last)


def _value(name: str, key: str) -> str | None:
    prefix = f"{key}="
    return name[len(prefix) :] if name.startswith(prefix) else None


def _subdirs(folder: str) -> list[os.DirEntry]:
    try:
        return [e for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def unit_files(results: str | Path, kinds: tuple[str, ...] = UNIT_KINDS) -> list[UnitFile]:
    """Every per-job file of `kinds` under `results` (`dataset=/arch=/setting=/seeds-A-B`; an
    imported zoo's `seed-N`, read as the block N-N; or the layout from before settings,
    without `setting=`, read as the default setting), sorted. Hidden temporary files are
    not listed."""
    found = []
    for kind in kinds:
        for d in _subdirs(os.path.join(results, kind)):
            dataset = _value(d.name, "dataset")
            for a in _subdirs(d.path) if dataset is not None else []:
                arch = _value(a.name, "arch")
                if arch is None:
                    continue
                folders = [(s, _value(s.name, "setting")) for s in _subdirs(a.path)]
                folders = [(s.path, v) for s, v in folders if v is not None]
                for folder, setting in [(a.path, DEFAULT_SETTING), *folders]:
                    for f in os.scandir(folder):
                        name = f.name
                        if not name.endswith(".parquet"):
                            continue
                        if name.startswith("seeds-"):  # a training job's block of seeds
                            block = name.removeprefix("seeds-").removesuffix(".parquet")
                        elif name.startswith("seed-"):  # one run of an imported zoo
                            seed = name.removeprefix("seed-").removesuffix(".parquet")
                            block = f"{seed}-{seed}"
                        else:
                            continue
                        unit = (kind, dataset, arch, setting, block, Path(f.path))
                        found.append(UnitFile(*unit))
    return sorted(found)


def expected_units(config: dict) -> set[tuple[str, str, str, str]]:
    """(dataset, arch, setting, block) of every training job the config asks for."""
    from weightzoo.config import all_cells, seed_blocks

    blocks = seed_blocks(config)
    cells = all_cells(config)
    return {(d, a, s, b) for d in config["datasets"] for a, s in cells for b in blocks}


def stale_files(
    results: str | Path, config: dict, kinds: tuple[str, ...] = UNIT_KINDS
) -> list[UnitFile]:
    """The per-job files under `results` whose training job the config no longer asks for
    (a cell, a dataset or a block of seeds that left it)."""
    wanted = expected_units(config)
    imported = set(config.get("imports", {}))  # their runs are planned from their own files
    return [
        f for f in unit_files(results, kinds) if f.dataset not in imported and f.unit not in wanted
    ]


def stale_summary(files: list[UnitFile]) -> str | None:
    """One line naming stale files (`stale_files` of one kind) by cell, or None if none."""
    if not files:
        return None
    cells = sorted({f.cell for f in files})
    shown = ", ".join(cells[:3]) + (f" and {len(cells) - 3} more" if len(cells) > 3 else "")
    return (
        f"weightzoo: results/ holds {len(files)} trained block(s) of {len(cells)} cell(s) that "
        f"the config no longer asks for ({shown}); the tables and open_zoo ignore them, "
        "weightzoo.inventory.remove_stale deletes them (docs/reruns.md)"
    )


def remove_stale(results: str | Path, config: dict) -> list[Path]:
    """Delete every stale per-job file (`stale_files`, every kind) and the folders that
    leaves empty; the deleted paths. Nothing else in results/ is touched."""
    removed = []
    for f in stale_files(results, config):
        f.path.unlink(missing_ok=True)
        removed.append(f.path)
        folder, root = f.path.parent, Path(results) / f.kind
        while folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return removed


def unwritable(folders: list[str | Path]) -> list[Path]:
    """The folders among `folders` that this process cannot create files in: for one that
    does not exist yet, its nearest existing parent decides."""
    existing: dict[str, str] = {}  # a folder -> itself or its nearest existing parent

    def nearest(folder: str) -> str:
        if folder not in existing:
            parent = os.path.dirname(folder)
            missing = parent != folder and not os.path.exists(folder)
            existing[folder] = nearest(parent) if missing else folder
        return existing[folder]

    # each folder is looked at once: a zoo of 20,000 cells lists 180,000 folders, most of
    # them under a few shared parents that do not exist yet
    decided = {nearest(os.path.abspath(f)) for f in folders}
    return sorted(Path(f) for f in decided if not os.access(f, os.W_OK | os.X_OK))
