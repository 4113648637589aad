"""Datasets: fetch the official raw files, read them, and prepare uint8 image arrays.

Every dataset ends up as a `Prepared`: uint8 images in (N, C, H, W), int64 labels, the
per-channel mean/std of the training images and a JSON-serialisable provenance record.
Built-ins are scikit-learn's 8x8 digits (bundled, offline) and the torchvision datasets
MNIST, Fashion-MNIST and CIFAR-10, read straight from their official archives (md5-checked,
no torchvision dataset classes, no extraction to disk). User datasets are .npz files.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import os
import pickle
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weightzoo.io import atomic_path

logger = logging.getLogger(__name__)

BUILTIN_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
TORCHVISION_DATASETS = ("mnist", "fashion_mnist", "cifar10")
IMAGE_SHAPES = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
}  # (C, H, W)
N_CLASSES = 10  # all four built-ins
DIGITS_IMAGES = 1797  # scikit-learn's bundled digits
BUILTIN_SIZES = {
    "mnist": (60000, 10000),
    "fashion_mnist": (60000, 10000),
    "cifar10": (50000, 10000),
}

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


class DatasetError(Exception):
    """Bad or missing dataset input; the message names the file or key at fault."""


# ---------------------------------------------------------------------------------------
# Raw files: what torchvision knows about the official downloads, staging, downloading
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawFile:
    """One official raw file of a dataset: its name, md5 and mirror URLs (tried in order)."""

    filename: str
    md5: str
    urls: tuple[str, ...]


def raw_files(name: str) -> list[RawFile]:
    """The official raw files of a torchvision dataset, from torchvision's class attributes."""
    from torchvision import datasets  # imported lazily: it pulls in torch

    if name in ("mnist", "fashion_mnist"):
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        return [
            RawFile(fn, md5, tuple(f"{m.rstrip('/')}/{fn}" for m in cls.mirrors))
            for fn, md5 in cls.resources
        ]
    if name == "cifar10":
        c = datasets.CIFAR10
        return [RawFile(c.filename, c.tgz_md5, (c.url,))]
    raise DatasetError(
        f"unknown torchvision dataset {name!r}; expected one of {TORCHVISION_DATASETS}"
    )


def md5sum(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks (the datasets' published checksums are md5)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def missing_files(files: list[RawFile], folder: Path) -> list[Path]:
    """Raw files absent from `folder` (existence only: cheap enough for config validation)."""
    return [Path(folder) / f.filename for f in files if not (Path(folder) / f.filename).is_file()]


def staged_problems(files: list[RawFile], folder: Path) -> list[str]:
    """Human-readable problems with the files in `folder` (missing or wrong md5); [] if none."""
    problems = []
    for f in files:
        path = Path(folder) / f.filename
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif (actual := md5sum(path)) != f.md5:
            problems.append(f"checksum mismatch: {path} (md5 {actual}, expected {f.md5})")
    return problems


class _ChecksumError(Exception):
    """A download finished but its md5 differs from the published one."""


def _fetch(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Stream `url` into `dest`, hashing on the way; raise unless the md5 matches."""
    h = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        while chunk := response.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    if (actual := h.hexdigest()) != md5:
        raise _ChecksumError(f"checksum mismatch (md5 {actual}, expected {md5})")


def download(
    files: list[RawFile],
    folder: Path,
    timeout: float = 60.0,
    retries: int = 3,
    log: logging.Logger | None = None,
    backoff: float = 1.0,
) -> None:
    """Download every file not already in `folder` with the right md5.

    Each file gets `retries` attempts in total, cycling through its mirrors, with a linear
    backoff (`backoff` x attempt number seconds) between attempts and a network timeout of
    `timeout` seconds per blocking socket operation. Bytes land in a temporary folder inside
    `folder` and are moved into place only once their md5 is verified, so an interrupted or
    corrupted download never looks like a staged file.
    """
    log = log or logger
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = folder / f.filename
        if target.is_file():
            if md5sum(target) == f.md5:
                log.info("%s already present with the right md5", target)
                continue
            log.warning("%s has the wrong md5; downloading it again", target)
        _download_one(f, folder, timeout, retries, log, backoff)


def _download_one(
    f: RawFile, folder: Path, timeout: float, retries: int, log: logging.Logger, backoff: float
) -> str:
    """Try the mirrors of one file in turn, `retries` attempts in total; see `download`.
    Returns the URL the verified file came from."""
    if not f.urls:
        raise DatasetError(f"no URL known for {f.filename}")
    tmpdir = Path(tempfile.mkdtemp(dir=folder, prefix=".download-"))
    tried: list[str] = []
    last_error: BaseException | None = None
    try:
        for attempt in range(retries):
            if attempt:
                time.sleep(backoff * attempt)
            url = f.urls[attempt % len(f.urls)]
            tried.append(url)
            log.info("downloading %s (attempt %d/%d)", url, attempt + 1, retries)
            try:
                _fetch(url, tmpdir / f.filename, f.md5, timeout)
            except (OSError, http.client.HTTPException, _ChecksumError) as err:
                # OSError covers URLError, HTTPError and socket timeouts.
                last_error = err
                log.warning("download of %s failed: %s", url, err)
                continue
            os.replace(tmpdir / f.filename, folder / f.filename)
            log.info("saved %s", folder / f.filename)
            return url
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    urls = ", ".join(dict.fromkeys(tried))
    raise DatasetError(
        f"could not download {f.filename} after {retries} attempt(s) from {urls}; "
        f"last error: {last_error!r}. To pre-stage it instead, set `data.download: false` "
        f"in the config and place {f.filename} (md5 {f.md5}) in {folder}"
    )


# ---------------------------------------------------------------------------------------
# A local mirror of the official files (an air-gapped cluster's copy), tried first
# ---------------------------------------------------------------------------------------


def is_url(location: str) -> bool:
    """Whether a mirror is a URL (file://, http://, ...) rather than a folder."""
    return "://" in location


def mirror_location(mirror: str, dataset: str, filename: str) -> str:
    """Where a local mirror keeps one raw file: `<mirror>/<dataset>/<filename>`, the layout
    of `data/` itself. `mirror` is a folder or a base URL (file://, http://, https://)."""
    return f"{mirror.rstrip('/')}/{dataset}/{filename}"


def _copy_verified(source: Path, dest: Path, md5: str) -> None:
    """Copy a local file into `dest`, hashing on the way; raise unless the md5 matches."""
    h = hashlib.md5(usedforsecurity=False)
    with open(source, "rb") as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    if (actual := h.hexdigest()) != md5:
        raise _ChecksumError(f"md5 {actual}, expected {md5}")


def from_mirror(
    f: RawFile,
    dataset: str,
    mirror: str,
    folder: Path,
    timeout: float = 60.0,
    log: logging.Logger | None = None,
) -> str | None:
    """Copy one raw file from the mirror into `folder` once its md5 matches (None), or
    return the one line that says why not, naming the file and the mirror.

    The bytes are hashed on their way into a temporary folder and moved into place only
    when their md5 is the published one: a corrupt copy is never read by anything else.
    """
    log = log or logger
    where = mirror_location(mirror, dataset, f.filename)
    tmpdir = Path(tempfile.mkdtemp(dir=folder, prefix=".mirror-"))
    try:
        try:
            if is_url(mirror):
                _fetch(where, tmpdir / f.filename, f.md5, timeout)
            else:
                _copy_verified(Path(where), tmpdir / f.filename, f.md5)
        except (FileNotFoundError, urllib.error.URLError) as err:
            gone = isinstance(err, FileNotFoundError) or (
                (isinstance(err, urllib.error.HTTPError) and err.code in (404, 410))
                or isinstance(getattr(err, "reason", None), FileNotFoundError)
            )
            if not gone:
                return f"mirror {mirror}: {dataset}/{f.filename} cannot be read ({where}: {err})"
            return f"mirror {mirror}: {dataset}/{f.filename} is missing ({where})"
        except _ChecksumError as err:
            return (
                f"mirror {mirror}: {dataset}/{f.filename} is corrupt ({err}); not used, "
                f"replace {where}"
            )
        except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, permissions
            return f"mirror {mirror}: {dataset}/{f.filename} cannot be read ({where}: {err})"
        os.replace(tmpdir / f.filename, folder / f.filename)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    log.info("copied %s from the mirror (md5 verified) to %s", where, folder / f.filename)
    return None


def fetch(
    files: list[RawFile],
    folder: Path,
    *,
    dataset: str,
    mirror: str = "",
    download: bool = True,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> dict[str, str]:
    """Put every raw file in `folder` with its published md5: already there, else from the
    local `mirror` (when set), else (with `download`) from the official mirrors.

    Returns where each file came from ("present", "mirror" or its URL). A file missing or
    corrupt in the mirror is logged with one line naming it and the mirror; when nothing
    else supplies it, that line is part of the DatasetError.
    """
    log = logger
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources: dict[str, str] = {}
    for f in files:
        target = folder / f.filename
        if target.is_file():
            if md5sum(target) == f.md5:
                log.info("%s already present with the right md5", target)
                sources[f.filename] = "present"
                continue
            log.warning("%s has the wrong md5; fetching it again", target)
        problem = None
        if mirror:
            if (problem := from_mirror(f, dataset, mirror, folder, timeout, log)) is None:
                sources[f.filename] = "mirror"
                continue
            log.warning("%s", problem)
        if not download:
            staged = f"{target} is {'corrupt' if target.is_file() else 'missing'}"
            reason = problem or staged
            raise DatasetError(
                f"{dataset}: {reason} (data.download is false: pre-stage {f.filename}, "
                f"md5 {f.md5}, in {folder}{' or the mirror' if mirror else ''})"
            )
        try:
            sources[f.filename] = _download_one(f, folder, timeout, retries, log, backoff)
        except DatasetError as err:
            raise DatasetError(f"{problem}; then {err}" if problem else str(err)) from None
    return sources


# ---------------------------------------------------------------------------------------
# Readers of the official formats
# ---------------------------------------------------------------------------------------

# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/)
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzip'd or plain, into a native-endian array."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        buf = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as err:  # truncated or corrupt gzip stream
        raise DatasetError(f"{path}: cannot decompress ({err})") from err
    if len(buf) < 4 or buf[:2] != b"\x00\x00" or buf[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic {buf[:4].hex() or 'empty'})")
    dtype, ndim = _IDX_DTYPES[buf[2]], buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(buf) - header != expected:
        raise DatasetError(
            f"{path}: IDX header says shape {dims} ({expected} data bytes) but the file has "
            f"{len(buf) - header} (truncated or corrupt)"
        )
    data = np.frombuffer(buf, dtype=dtype, offset=header)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches: allows only what a pickled numpy array needs."""

    _allowed = {
        (module, name)
        for module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("ndarray", "dtype", "_reconstruct")
    } | {
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"{_CIFAR_DIR}/data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = (f"{_CIFAR_DIR}/test_batch",)


def _read_cifar_batch(
    tar: tarfile.TarFile, member: str, archive: Path
) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch pickle -> images (n, 32, 32, 3) uint8 HWC and labels (n,) int64."""
    try:
        fh = tar.extractfile(member)
    except KeyError:
        fh = None
    if fh is None:
        raise DatasetError(f"{archive}: member {member} missing from the CIFAR-10 archive")
    try:
        batch = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"{archive}: cannot read member {member} ({err!r})") from err
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(
            f"{archive}: member {member} has data {data.dtype} {data.shape}, "
            "expected uint8 (n, 3072)"
        )
    if labels.shape != (len(data),):
        raise DatasetError(
            f"{archive}: member {member} has {labels.size} labels for {len(data)} images"
        )
    # Each 3072-row is the R plane (1024 = 32x32 row-major), then G, then B.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar10(archive: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test (images HWC uint8), read straight from
    cifar-10-python.tar.gz."""
    archive = Path(archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            train = [_read_cifar_batch(tar, m, archive) for m in _CIFAR_TRAIN]
            test = [_read_cifar_batch(tar, m, archive) for m in _CIFAR_TEST]
    except (OSError, EOFError, tarfile.TarError) as err:
        raise DatasetError(f"{archive}: cannot read the CIFAR-10 archive ({err})") from err
    x_train, y_train = (np.concatenate(parts) for parts in zip(*train, strict=True))
    x_test, y_test = (np.concatenate(parts) for parts in zip(*test, strict=True))
    return x_train, y_train, x_test, y_test


# ---------------------------------------------------------------------------------------
# Prepared datasets
# ---------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A dataset ready for training: uint8 (N, C, H, W) images, int64 labels, stats, provenance."""

    x_train: np.ndarray  # uint8, (N, C, H, W)
    y_train: np.ndarray  # int64, (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray  # float32, (C,), per-channel mean of x_train / 255
    std: np.ndarray  # float32, (C,), per-channel population std of x_train / 255
    n_classes: int
    meta: dict  # JSON-serialisable provenance


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std of x/255 for uint8 (N, C, H, W) images.

    Computed exactly from a 256-bin histogram per channel, so CIFAR-10 needs no float copy.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):  # a loop over channels, not samples
        counts = np.bincount(x[:, c].reshape(-1), minlength=256).astype(np.float64)
        mean = counts @ values / counts.sum()
        means.append(mean)
        stds.append(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
    return np.array(means, dtype=np.float32), np.array(stds, dtype=np.float32)


def _finish(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    meta: dict,
) -> Prepared:
    """Assemble a Prepared: contiguous arrays, channel stats, class counts and shapes in meta."""
    x_train, x_test = np.ascontiguousarray(x_train), np.ascontiguousarray(x_test)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    mean, std = _channel_stats(x_train)
    meta = {
        **meta,
        "image_shape": list(x_train.shape[1:]),
        "n_classes": n_classes,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "train_counts": np.bincount(y_train, minlength=n_classes).tolist(),
        "test_counts": np.bincount(y_test, minlength=n_classes).tolist(),
        "mean": mean.tolist(),
        "std": std.tolist(),
    }
    return Prepared(x_train, y_train, x_test, y_test, mean, std, n_classes, meta)


def prepare_digits(test_fraction: float = 0.25, split_seed: int = 0) -> Prepared:
    """scikit-learn's bundled 8x8 digits as uint8 0..255 with a fixed stratified split."""
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.rint(digits.images * 255 / 16).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=split_seed
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)  # keep the original order
    meta = {
        "name": "digits",
        "source": "sklearn.datasets.load_digits",
        "sklearn_version": sklearn.__version__,
        "scaling": "np.rint(x * 255 / 16) from 0..16",
        "split": {
            "method": "sklearn.model_selection.train_test_split(stratify=y)",
            "test_fraction": test_fraction,
            "split_seed": split_seed,
            "train_indices": train_idx.tolist(),
            "test_indices": test_idx.tolist(),
        },
    }
    return _finish(x[train_idx], y[train_idx], x[test_idx], y[test_idx], N_CLASSES, meta)


def prepare(name: str, source: dict) -> Prepared:
    """Prepare dataset `name` from its source (`weightzoo.config.dataset_source`): the bundled
    digits, official torchvision files in a folder, or a user .npz."""
    kind = source["kind"]
    if kind == "digits":
        return prepare_digits(source["test_fraction"], source["split_seed"])
    if kind == "torchvision":
        return prepare_torchvision(name, Path(source["folder"]))
    if kind == "npz":
        return prepare_npz(Path(source["path"]), name, source.get("n_classes"))
    raise DatasetError(f"{name}: unknown dataset source {kind!r}")


SUBSET_SEED = 0  # the seed of every training subset (train_fraction < 1): the same for all jobs


def training_subset(y: np.ndarray, fraction: float, seed: int = SUBSET_SEED) -> np.ndarray:
    """Indices of a fixed, stratified `fraction` of a training split, in its own order: the
    same labels and fraction give the same images in every job (1.0: all of them)."""
    if fraction >= 1:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(y)), train_size=fraction, stratify=y, random_state=seed
    )
    return np.sort(keep)


def _file(files: list[RawFile], prefix: str) -> RawFile:
    """The raw file whose name starts with `prefix` (MNIST-style names: train-images-...)."""
    for f in files:
        if f.filename.startswith(prefix):
            return f
    raise DatasetError(f"no raw file starting with {prefix!r} among {[f.filename for f in files]}")


def _read_mnist(folder: Path, files: list[RawFile]) -> tuple[np.ndarray, ...]:
    """Images (N, 1, 28, 28) and labels of an MNIST-format dataset's four IDX files."""
    arrays = []
    for split in ("train", "t10k"):
        img_path = folder / _file(files, f"{split}-images").filename
        lbl_path = folder / _file(files, f"{split}-labels").filename
        images, labels = read_idx(img_path), read_idx(lbl_path)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise DatasetError(
                f"{img_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetError(
                f"{lbl_path}: {labels.shape} labels do not match {len(images)} images in {img_path}"
            )
        arrays += [images[:, None], labels]
    return tuple(arrays)


def prepare_torchvision(name: str, folder: Path) -> Prepared:
    """MNIST, Fashion-MNIST or CIFAR-10 from its official raw files in `folder`, md5-checked
    first."""
    folder = Path(folder)
    files = raw_files(name)
    if problems := staged_problems(files, folder):
        raise DatasetError(
            f"{name}: raw files in {folder} are not usable:\n  " + "\n  ".join(problems)
        )
    if name == "cifar10":
        x_train, y_train, x_test, y_test = read_cifar10(folder / files[0].filename)
        x_train, x_test = x_train.transpose(0, 3, 1, 2), x_test.transpose(0, 3, 1, 2)  # HWC -> CHW
    else:
        x_train, y_train, x_test, y_test = _read_mnist(folder, files)
    for labels, f in ((y_train, "train"), (y_test, "test")):
        if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
            raise DatasetError(f"{name}: {f} labels outside 0..{N_CLASSES - 1} in {folder}")
    meta = {
        "name": name,
        "source": "official raw files (URLs and md5s from torchvision)",
        "folder": str(folder),
        "files": [{"filename": f.filename, "md5": f.md5, "urls": list(f.urls)} for f in files],
    }
    return _finish(x_train, y_train, x_test, y_test, N_CLASSES, meta)


# ---------------------------------------------------------------------------------------
# User datasets (.npz)
# ---------------------------------------------------------------------------------------


def _check_images(
    key: str, dtype: np.dtype, shape: tuple[int, ...], path: Path
) -> tuple[int, int, int]:
    """(C, H, W) of images stored as uint8 N×H×W or N×H×W×C; DatasetError naming `key` otherwise."""
    if dtype != np.uint8 or len(shape) not in (3, 4):
        raise DatasetError(
            f"{path}: {key} is {dtype} with shape {shape}; expected uint8 images N×H×W or N×H×W×C"
        )
    if shape[0] == 0:
        raise DatasetError(f"{path}: {key} is empty (no images)")
    if min(shape[1:]) < 1:
        raise DatasetError(f"{path}: {key} has an empty image dimension: shape {shape}")
    return (shape[3] if len(shape) == 4 else 1, shape[1], shape[2])


def _check_labels(key: str, labels: np.ndarray, n_images: int, path: Path) -> None:
    """Labels must be 1-D non-negative integers, one per image."""
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
        raise DatasetError(
            f"{path}: {key} is {labels.dtype} with shape {labels.shape}; "
            "expected 1-D integer labels"
        )
    if len(labels) != n_images:
        raise DatasetError(
            f"{path}: {key} has {len(labels)} labels but there are {n_images} images"
        )
    if labels.min() < 0:
        raise DatasetError(f"{path}: {key} has negative labels (min {labels.min()})")


@dataclass(frozen=True)
class NpzInfo:
    """What a user .npz holds, read from its headers and labels (no image is loaded)."""

    image_shape: tuple[int, int, int]  # (C, H, W)
    n_train: int
    n_test: int
    n_classes: int


def _npy_header(zf: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an .npz, from its .npy header."""
    with zf.open(f"{key}.npy") as fh:
        fmt = np.lib.format
        version = fmt.read_magic(fh)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(fh)
    return shape, dtype


def inspect_npz(path: Path, n_classes: int | None = None) -> NpzInfo:
    """Check a user dataset from its .npy headers and its labels, every array of it: exactly
    x_train, y_train, x_test, y_test; uint8 images of one (C, H, W); one integer label per
    image; at least 2 classes, labelled exactly 0..K-1 unless `n_classes` is declared (then
    any labels in 0..n_classes-1). DatasetError naming the file and key otherwise."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path} is a directory, not an .npz file")
    if not path.is_file():
        raise DatasetError(f"file not found: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            keys = {n.removesuffix(".npy") for n in zf.namelist()}
            if missing := [k for k in NPZ_KEYS if k not in keys]:
                raise DatasetError(
                    f"{path}: missing key(s) {', '.join(missing)}; expected {NPZ_KEYS}"
                )
            if extra := sorted(keys - set(NPZ_KEYS)):
                raise DatasetError(
                    f"{path}: unexpected key(s) {', '.join(extra)}; expected only {NPZ_KEYS}"
                )
            headers = {k: _npy_header(zf, k) for k in ("x_train", "x_test")}
            labels = {}
            for k in ("y_train", "y_test"):
                with zf.open(f"{k}.npy") as fh:
                    labels[k] = np.lib.format.read_array(fh, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DatasetError(f"{path}: not a readable .npz ({err})") from err
    shapes = {}
    for split in ("train", "test"):
        shape, dtype = headers[f"x_{split}"]
        shapes[split] = _check_images(f"x_{split}", dtype, shape, path)
        _check_labels(f"y_{split}", labels[f"y_{split}"], shape[0], path)
    if shapes["train"] != shapes["test"]:
        raise DatasetError(
            f"{path}: x_train images are (C, H, W) = {shapes['train']} "
            f"but x_test are {shapes['test']}"
        )
    classes = _check_classes(labels["y_train"], labels["y_test"], n_classes, path)
    n_train, n_test = (len(labels[k]) for k in ("y_train", "y_test"))
    return NpzInfo(shapes["train"], n_train, n_test, classes)


def _check_classes(y_train, y_test, n_classes: int | None, path: Path) -> int:
    """The number of classes: declared, or K when the training labels are exactly 0..K-1."""
    found = np.unique(y_train)
    if len(found) < 2:
        raise DatasetError(
            f"{path}: y_train has {len(found)} class; a zoo needs at least 2 classes"
        )
    if n_classes is None:
        if found[-1] != len(found) - 1:
            raise DatasetError(
                f"{path}: y_train: labels must be 0..K-1 ({len(found)} distinct values from "
                f"{found[0]} to {found[-1]}): relabel them, or declare n_classes for the "
                "dataset (data.user.<name>: {path: ..., n_classes: K})"
            )
        n_classes = len(found)
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        if (top := int(y.max())) >= n_classes:
            raise DatasetError(
                f"{path}: {key}: label {top} is not among the {n_classes} classes "
                f"(0..{n_classes - 1})"
            )
    return int(n_classes)


def prepare_npz(path: Path, name: str, n_classes: int | None = None) -> Prepared:
    """A user dataset from an .npz with exactly x_train, y_train, x_test, y_test."""
    path = Path(path)
    info = inspect_npz(path, n_classes)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as err:  # pickled object arrays, too
        raise DatasetError(f"{path}: not a readable .npz ({err})") from err

    def to_nchw(x: np.ndarray) -> np.ndarray:
        return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x[:, None]

    meta = {"name": name, "source": "npz", "path": str(path), "md5": md5sum(path)}
    return _finish(
        to_nchw(arrays["x_train"]),
        arrays["y_train"],
        to_nchw(arrays["x_test"]),
        arrays["y_test"],
        info.n_classes,
        meta,
    )


def npz_image_shape(path: Path) -> tuple[int, int, int]:
    """(C, H, W) of a user .npz's images, checked like `inspect_npz`."""
    return inspect_npz(path).image_shape


# ---------------------------------------------------------------------------------------
# Saving and loading prepared datasets
# ---------------------------------------------------------------------------------------


def save_prepared(p: Prepared, path: Path) -> None:
    """Write `p` as one uncompressed .npz (meta as a JSON string), atomically.

    The same dataset gives the same bytes (every zip entry carries one fixed date, where
    np.savez stamps the time of writing), so preparing it again changes no checksum and
    retrains nothing that read it."""
    arrays = {
        "x_train": p.x_train,
        "y_train": p.y_train,
        "x_test": p.x_test,
        "y_test": p.y_test,
        "mean": p.mean,
        "std": p.std,
        "n_classes": np.int64(p.n_classes),
        "meta": np.array(json.dumps(p.meta, sort_keys=True)),
    }
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            entry = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(entry, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


def load_prepared(path: Path) -> Prepared:
    """Read a dataset written by `save_prepared` (no pickle)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: cannot read the prepared dataset ({err})") from err
    fields = (*NPZ_KEYS, "mean", "std", "n_classes", "meta")
    if missing := [k for k in fields if k not in a]:
        raise DatasetError(f"{path}: not a prepared dataset, missing {', '.join(missing)}")
    return Prepared(
        x_train=a["x_train"],
        y_train=a["y_train"],
        x_test=a["x_test"],
        y_test=a["y_test"],
        mean=a["mean"],
        std=a["std"],
        n_classes=int(a["n_classes"]),
        meta=json.loads(str(a["meta"])),
    )
