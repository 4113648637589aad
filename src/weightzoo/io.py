"""Small file-system helpers shared by the library: durable atomic writes, and a full disk
said in one line."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What a full disk or an exhausted quota looks like from the libraries that write our files:
# an OSError's errno (Python, pyarrow), or only its text (torch, polars).
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "file write failed")
# Below this much free space a write that failed is taken as a full disk, whatever it said.
NEARLY_FULL_BYTES = 1 << 20


class DiskFullError(OSError):
    """A write failed because the disk (or the quota) holding it is full; the message names
    the disk, what is free and, where known, what the job needs."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


DECIMAL = ("B", "KB", "MB", "GB", "TB")  # powers of 1000
BINARY = ("B", "KiB", "MiB", "GiB", "TiB")  # powers of 1024


def size_text(n: float, units: tuple[str, ...] = DECIMAL, digits: int = 1) -> str:
    """Bytes in the largest unit that keeps the number at least 1: 512 B, 3.4 KB, 2.1 GB
    (`units` with an "iB" unit count in powers of 1024: 1.5 GiB)."""
    base = 1024 if units[1].endswith("iB") else 1000
    for unit in units:
        if abs(n) < base or unit == units[-1]:
            return f"{n:.0f} {unit}" if unit == units[0] else f"{n:.{digits}f} {unit}"
        n /= base
    raise AssertionError("unreachable")


def mount_point(path: str | os.PathLike[str]) -> Path:
    """The mount point of the file system that holds `path` (or would, once created)."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged writer may still use on the disk of `path`."""
    return shutil.disk_usage(mount_point(path)).free


def disk_full_message(path: str | os.PathLike[str], needed: int | None = None) -> str:
    """One line: the file that could not be written, its disk, the space free and needed."""
    disk = mount_point(path)
    usage = shutil.disk_usage(disk)
    need = f"; it needs about {size_text(needed)}" if needed else ""
    return (
        f"{path}: no space left on the disk mounted at {disk} ({size_text(usage.free)} free of "
        f"{size_text(usage.total)}){need}: free space there (or move results/ to a larger "
        "disk), then run the same command again"
    )


def is_disk_full(err: BaseException, path: str | os.PathLike[str] | None = None) -> bool:
    """Whether `err` says the disk is full (or, for an error of unknown kind while writing
    `path`, whether that disk has less than NEARLY_FULL_BYTES left)."""
    if isinstance(err, DiskFullError):
        return True
    if isinstance(err, OSError) and err.errno in FULL_ERRNOS:
        return True
    if any(text in str(err) for text in FULL_TEXTS):
        return True
    if path is not None and isinstance(err, Exception):
        try:
            return free_bytes(path) < NEARLY_FULL_BYTES
        except OSError:
            return False
    return False


def ensure_space(path: str | os.PathLike[str], needed: int) -> None:
    """Raise DiskFullError before any work if the disk of `path` has less than `needed` bytes
    free (a job that would fill it halfway fails at once, naming the disk, instead)."""
    if free_bytes(path) < needed:
        raise DiskFullError(disk_full_message(path, needed))


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's data to the disk (a writer that closed it may have left it cached)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to the disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reserve(path: str | os.PathLike[str]) -> Path:
    """A new empty hidden temporary file beside `path` (`.name.<random>.tmp`), its folder
    made if missing; the writer fills it and `commit` renames it onto `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        # O_EXCL reserves the name; mode 0o666 lets the umask decide permissions, as for a
        # plain open() (tempfile.mkstemp would make the final file private, 0o600).
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as err:
        if is_disk_full(err):
            raise DiskFullError(disk_full_message(path)) from err
        raise
    return tmp


def commit(tmp: Path, path: str | os.PathLike[str]) -> None:
    """Make a complete temporary file `path`, durably: its data reach the disk before the
    rename, and the rename reaches it before this returns (a node crash leaves the old file
    or the new one, never an empty or partial one)."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def discard(tmp: Path) -> None:
    """Remove a temporary file that will not be committed."""
    tmp.unlink(missing_ok=True)


def explain(err: BaseException, path: str | os.PathLike[str]) -> BaseException:
    """`err` as a DiskFullError naming the disk if it says (or looks like) the disk is full;
    otherwise `err` itself."""
    if isinstance(err, DiskFullError) or not is_disk_full(err, path):
        return err
    return DiskFullError(disk_full_message(path))


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A killed or failing writer never leaves a complete-looking file: the temporary file is
    hidden, in the same directory (so the rename is atomic) and ends in `.tmp`, so globs such
    as `results/weights/**/*.parquet` never pick it up even if a SIGKILL leaves it behind; it
    is removed on any exception, a full disk included (then raised as DiskFullError). The
    file and the rename are synced to the disk (`commit`). The temporary file is created
    empty to reserve its name; writers simply overwrite it.
    """
    tmp = reserve(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException as err:
        full = explain(err, tmp)
        discard(tmp)
        if full is not err:
            raise full from err
        raise


# Files committed together are fsynced by this many threads: an fsync waits on the disk and
# releases the GIL, so the many small files of an import job overlap their waits.
SYNC_THREADS = 8


def commit_all(pairs: list[tuple[Path, Path]], threads: int = SYNC_THREADS) -> None:
    """`commit` of many (temporary, final) pairs: every file's data reach the disk (fsyncs in
    `threads` threads) before any rename, and each folder's renames reach it (one fsync per
    distinct folder) before this returns."""
    from concurrent.futures import ThreadPoolExecutor

    if not pairs:
        return
    with ThreadPoolExecutor(max(1, min(threads, len(pairs)))) as pool:
        list(pool.map(fsync_file, [tmp for tmp, _ in pairs]))
    for tmp, path in pairs:
        os.replace(tmp, path)
    folders = sorted({Path(path).parent for _, path in pairs})
    with ThreadPoolExecutor(max(1, min(threads, len(folders)))) as pool:
        list(pool.map(fsync_dir, folders))


@contextmanager
def atomic_paths(paths: list[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """`atomic_path` for many files written together: yields their temporary paths; if the
    block succeeds they are committed together (`commit_all`: fsyncs in threads, one per
    folder for the renames), otherwise every temporary file is removed."""
    tmps: list[Path] = []
    try:
        for path in paths:
            tmps.append(reserve(path))
        yield tmps
        commit_all(list(zip(tmps, map(Path, paths), strict=True)))
    except BaseException as err:
        full = next((e for e in (explain(err, t) for t in tmps[:1]) if e is not err), None)
        for tmp in tmps:
            discard(tmp)
        if full is not None:
            raise full from err
        raise
