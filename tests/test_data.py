"""Tests of weightzoo.data: readers of the official formats, downloads, user .npz, saving.

Everything is offline: the MNIST and CIFAR-10 files are tiny files written here in the
real formats, and downloads are served by http.server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import logging
import os
import pickle
import socket
import stat
import struct
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from weightzoo import data
from weightzoo.data import DatasetError, RawFile


def md5(payload: bytes) -> str:
    return hashlib.md5(payload).hexdigest()


# ---------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> data.Prepared:
    return data.prepare_digits(test_fraction=0.25, split_seed=0)


def test_digits_has_all_1797_images_as_uint8_nchw_scaled_to_255(digits):
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert digits.x_train.shape[1:] == digits.x_test.shape[1:] == (1, 8, 8)
    assert digits.x_train.dtype == digits.x_test.dtype == np.uint8
    assert digits.y_train.dtype == np.int64
    assert max(digits.x_train.max(), digits.x_test.max()) == 255  # 16 * 255 / 16
    assert digits.n_classes == 10
    assert digits.x_train.shape[1:] == data.IMAGE_SHAPES["digits"]


def test_digits_split_is_stratified(digits):
    train_counts = np.bincount(digits.y_train, minlength=10)
    test_counts = np.bincount(digits.y_test, minlength=10)
    per_class = train_counts + test_counts
    assert np.all(np.abs(test_counts - 0.25 * per_class) <= 1)
    assert digits.meta["test_counts"] == test_counts.tolist()


def test_digits_split_indices_are_recorded_and_partition_the_images(digits):
    split = digits.meta["split"]
    both = sorted(split["train_indices"] + split["test_indices"])
    assert both == list(range(1797))
    assert len(split["test_indices"]) == len(digits.y_test)


def test_same_split_seed_gives_identical_split_and_another_seed_differs(digits):
    again = data.prepare_digits(test_fraction=0.25, split_seed=0)
    other = data.prepare_digits(test_fraction=0.25, split_seed=1)
    assert again.meta["split"]["test_indices"] == digits.meta["split"]["test_indices"]
    np.testing.assert_array_equal(again.x_train, digits.x_train)
    assert other.meta["split"]["test_indices"] != digits.meta["split"]["test_indices"]


def test_mean_and_std_equal_numpys_on_train_images_over_255(digits):
    scaled = digits.x_train / 255.0
    assert digits.mean.dtype == digits.std.dtype == np.float32
    np.testing.assert_allclose(digits.mean, scaled.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(digits.std, scaled.std(axis=(0, 2, 3)), rtol=1e-6)


# ---------------------------------------------------------------------------------------
# MNIST: IDX files
# ---------------------------------------------------------------------------------------

MNIST_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """The IDX encoding: 0, 0, type code, ndim, big-endian int32 dims, big-endian data."""
    big_endian = {0x08: ">u1", 0x0C: ">i4"}[type_code]
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(big_endian).tobytes()


def tiny_mnist() -> dict[str, np.ndarray]:
    """6 train / 4 test 28x28 images whose pixels are (image * 784 + position) % 256."""
    pixels = (np.arange(10 * 28 * 28) % 256).astype(np.uint8).reshape(10, 28, 28)
    labels = np.arange(10, dtype=np.uint8)
    return {
        MNIST_NAMES[0]: pixels[:6],
        MNIST_NAMES[1]: labels[:6],
        MNIST_NAMES[2]: pixels[6:],
        MNIST_NAMES[3]: labels[6:],
    }


@pytest.fixture
def mnist_folder(tmp_path, monkeypatch) -> Path:
    """A folder with the four tiny MNIST files; raw_files() reports their md5s."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    files = []
    for name, array in tiny_mnist().items():
        payload = gzip.compress(idx_bytes(array))
        (folder / name).write_bytes(payload)
        files.append(RawFile(name, md5(payload), (f"https://example.invalid/{name}",)))
    monkeypatch.setattr(data, "raw_files", lambda name: files)
    return folder


def test_read_idx_reads_gzipped_and_plain_files_exactly(tmp_path):
    images = tiny_mnist()[MNIST_NAMES[0]]
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "a").write_bytes(idx_bytes(images))
    for path in (tmp_path / "a.gz", tmp_path / "a"):
        out = data.read_idx(path)
        assert out.dtype == np.uint8 and out.shape == (6, 28, 28)
        assert out[1, 0, 0] == 784 % 256 == 16
        np.testing.assert_array_equal(out, images)


def test_read_idx_converts_big_endian_int32_to_native(tmp_path):
    (tmp_path / "ints").write_bytes(idx_bytes(np.array([1, 256, -2]), type_code=0x0C))
    out = data.read_idx(tmp_path / "ints")
    assert out.dtype == np.dtype("=i4")
    assert out.tolist() == [1, 256, -2]


def test_read_idx_truncated_file_raises_naming_it(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(tiny_mnist()[MNIST_NAMES[0]])[:-10])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.*truncated"):
        data.read_idx(path)


def test_read_idx_truncated_gzip_raises_naming_it(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(tiny_mnist()[MNIST_NAMES[2]]))[:-20])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz"):
        data.read_idx(path)


def test_read_idx_bad_magic_raises(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">i", 3) + b"abc")
    with pytest.raises(DatasetError, match=r"not-idx.*bad magic"):
        data.read_idx(path)


def test_prepare_torchvision_reads_mnist_files_into_nchw(mnist_folder):
    p = data.prepare_torchvision("mnist", mnist_folder)
    arrays = tiny_mnist()
    assert p.x_train.shape == (6, 1, 28, 28) and p.x_test.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(p.x_train[:, 0], arrays[MNIST_NAMES[0]])
    np.testing.assert_array_equal(p.x_test[:, 0], arrays[MNIST_NAMES[2]])
    assert p.y_train.tolist() == [0, 1, 2, 3, 4, 5] and p.y_test.tolist() == [6, 7, 8, 9]
    assert p.y_train.dtype == np.int64
    assert p.n_classes == 10
    assert [f["filename"] for f in p.meta["files"]] == list(MNIST_NAMES)


def test_prepare_torchvision_catches_a_corrupted_byte_by_checksum(mnist_folder):
    path = mnist_folder / MNIST_NAMES[1]
    payload = bytearray(path.read_bytes())
    payload[-1] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(DatasetError, match=f"checksum mismatch: .*{MNIST_NAMES[1]}"):
        data.prepare_torchvision("mnist", mnist_folder)


def test_prepare_torchvision_names_every_missing_or_corrupted_file(mnist_folder):
    (mnist_folder / MNIST_NAMES[2]).unlink()
    (mnist_folder / MNIST_NAMES[3]).write_bytes(b"junk")
    with pytest.raises(DatasetError) as info:
        data.prepare_torchvision("mnist", mnist_folder)
    message = str(info.value)
    assert f"missing: {mnist_folder / MNIST_NAMES[2]}" in message
    assert f"checksum mismatch: {mnist_folder / MNIST_NAMES[3]}" in message
    assert str(mnist_folder) in message


def test_missing_files_checks_existence_only(mnist_folder):
    files = data.raw_files("mnist")
    (mnist_folder / MNIST_NAMES[0]).write_bytes(b"wrong but present")
    (mnist_folder / MNIST_NAMES[3]).unlink()
    assert data.missing_files(files, mnist_folder) == [mnist_folder / MNIST_NAMES[3]]
    assert len(data.staged_problems(files, mnist_folder)) == 2


def test_staged_problems_is_empty_when_all_files_are_good(mnist_folder):
    assert data.staged_problems(data.raw_files("mnist"), mnist_folder) == []


# ---------------------------------------------------------------------------------------
# CIFAR-10: tar.gz of pickled batches
# ---------------------------------------------------------------------------------------


def cifar_batch(n: int, first_label: int) -> dict:
    """A batch as in the official files: {b"data": uint8 (n, 3072), b"labels": [...]}."""
    return {
        b"batch_label": b"tiny batch",
        b"data": np.zeros((n, 3072), dtype=np.uint8),
        b"labels": [(first_label + i) % 10 for i in range(n)],
    }


def write_cifar(path: Path, batches: dict[str, dict]) -> None:
    """A tar.gz with members cifar-10-batches-py/<name>, each a pickled batch."""
    with tarfile.open(path, "w:gz") as tar:
        for i, (name, batch) in enumerate(batches.items()):
            # alternate the old protocol of the official files and today's default
            payload = pickle.dumps(batch, protocol=2 if i % 2 else pickle.HIGHEST_PROTOCOL)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def tiny_cifar_batches() -> dict[str, dict]:
    """Five train batches of 2 images and a test batch of 3; one marked green pixel."""
    batches = {f"data_batch_{i}": cifar_batch(2, first_label=2 * (i - 1)) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(3, first_label=7)
    # Row layout: R plane (1024) then G then B, each 32x32 row-major. Green, row 5, column 7
    # of the second image of batch 2 (= train image 3):
    batches["data_batch_2"][b"data"][1, 1 * 1024 + 5 * 32 + 7] = 200
    # Red, row 31, column 0 of the first test image:
    batches["test_batch"][b"data"][0, 0 * 1024 + 31 * 32 + 0] = 99
    return batches


def test_read_cifar10_puts_each_plane_pixel_at_its_channel_row_and_column(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_cifar(archive, tiny_cifar_batches())
    x_train, y_train, x_test, y_test = data.read_cifar10(archive)
    assert x_train.shape == (10, 32, 32, 3) and x_test.shape == (3, 32, 32, 3)  # HWC
    assert x_train.dtype == np.uint8
    assert x_train[3, 5, 7, 1] == 200 and x_train.sum() == 200
    assert x_test[0, 31, 0, 0] == 99 and x_test.sum() == 99
    assert y_train.tolist() == list(range(10)) and y_test.tolist() == [7, 8, 9]


def test_prepare_torchvision_gives_cifar10_in_chw(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_cifar(archive, tiny_cifar_batches())
    raw = [RawFile(archive.name, md5(archive.read_bytes()), ("https://example.invalid/",))]
    monkeypatch.setattr(data, "raw_files", lambda name: raw)
    p = data.prepare_torchvision("cifar10", tmp_path)
    assert p.x_train.shape == (10, 3, 32, 32) and p.x_train.flags.c_contiguous
    assert p.x_train[3, 1, 5, 7] == 200  # channel G, row 5, column 7
    assert p.x_test[0, 0, 31, 0] == 99  # channel R, row 31, column 0
    np.testing.assert_allclose(p.mean, [0.0, 200 / 255 / (10 * 1024), 0.0], rtol=1e-6)


def test_read_cifar10_missing_member_raises_naming_it(tmp_path):
    batches = tiny_cifar_batches()
    del batches["data_batch_3"]
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_cifar(archive, batches)
    with pytest.raises(DatasetError, match="cifar-10-batches-py/data_batch_3"):
        data.read_cifar10(archive)


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_read_cifar10_refuses_pickles_that_would_call_arbitrary_code(tmp_path):
    batches = tiny_cifar_batches()
    batches["test_batch"][b"labels"] = _RunsCode()
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_cifar(archive, batches)
    with pytest.raises(DatasetError, match=r"test_batch.*not allowed"):
        data.read_cifar10(archive)


# ---------------------------------------------------------------------------------------
# download()
# ---------------------------------------------------------------------------------------

PAYLOAD = b"weightzoo test file\n" * 500


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # same signature as the base class
        pass


@pytest.fixture
def serve(monkeypatch):
    """Start http.server on 127.0.0.1 over a directory; returns its base URL."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def served_dir(tmp_path: Path, payload: bytes) -> Path:
    directory = tmp_path / "www"
    directory.mkdir()
    (directory / "blob.bin").write_bytes(payload)
    return directory


def test_download_puts_the_verified_file_in_place(tmp_path, serve):
    url = serve(served_dir(tmp_path, PAYLOAD))
    folder = tmp_path / "raw"
    data.download([RawFile("blob.bin", md5(PAYLOAD), (f"{url}/blob.bin",))], folder, timeout=5)
    assert (folder / "blob.bin").read_bytes() == PAYLOAD
    assert [p.name for p in folder.iterdir()] == ["blob.bin"]  # temp folder removed


def test_download_with_wrong_bytes_raises_and_leaves_nothing_behind(tmp_path, serve):
    url = serve(served_dir(tmp_path, b"not the real file"))
    folder = tmp_path / "raw"
    raw = RawFile("blob.bin", md5(PAYLOAD), (f"{url}/blob.bin",))
    with pytest.raises(DatasetError) as info:
        data.download([raw], folder, timeout=5, retries=2, backoff=0)
    message = str(info.value)
    assert "blob.bin" in message and "checksum mismatch" in message
    assert f"{url}/blob.bin" in message and "data.download: false" in message
    assert list(folder.iterdir()) == []


def test_download_falls_back_to_the_second_mirror_after_a_404(tmp_path, serve):
    url = serve(served_dir(tmp_path, PAYLOAD))
    folder = tmp_path / "raw"
    raw = RawFile("blob.bin", md5(PAYLOAD), (f"{url}/gone/blob.bin", f"{url}/blob.bin"))
    data.download([raw], folder, timeout=5, retries=2, backoff=0)
    assert (folder / "blob.bin").read_bytes() == PAYLOAD


def test_download_replaces_a_present_file_with_the_wrong_md5(tmp_path, serve):
    url = serve(served_dir(tmp_path, PAYLOAD))
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "blob.bin").write_bytes(b"stale")
    data.download([RawFile("blob.bin", md5(PAYLOAD), (f"{url}/blob.bin",))], folder, timeout=5)
    assert (folder / "blob.bin").read_bytes() == PAYLOAD


def test_download_skips_a_file_already_present_with_the_right_md5(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "blob.bin").write_bytes(PAYLOAD)
    unreachable = "http://127.0.0.1:9/blob.bin"  # would fail if it were tried
    data.download([RawFile("blob.bin", md5(PAYLOAD), (unreachable,))], folder, retries=1)
    assert (folder / "blob.bin").read_bytes() == PAYLOAD


def test_download_from_a_silent_server_gives_up_after_retries_attempts_of_timeout(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    folder = tmp_path / "raw"
    with socket.socket() as silent:  # the kernel accepts connections; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/blob.bin"
        raw = RawFile("blob.bin", md5(PAYLOAD), (url,))
        start = time.monotonic()
        with (
            caplog.at_level(logging.INFO, logger="weightzoo.data"),
            pytest.raises(DatasetError, match=r"blob\.bin.*2 attempt"),
        ):
            data.download([raw], folder, timeout=0.5, retries=2, backoff=0)
        elapsed = time.monotonic() - start
    assert 2 * 0.5 * 0.9 <= elapsed < 5
    assert sum("attempt" in r.getMessage() for r in caplog.records) == 2
    assert list(folder.iterdir()) == []


# ---------------------------------------------------------------------------------------
# raw_files(): the official files as torchvision knows them
# ---------------------------------------------------------------------------------------


def test_raw_files_lists_the_four_mnist_files_and_the_one_cifar10_archive():
    mnist = data.raw_files("mnist")
    assert [f.filename for f in mnist] == list(MNIST_NAMES)
    for f in mnist:
        assert len(f.md5) == 32 and int(f.md5, 16) >= 0
        assert any(u.startswith("https://") and u.endswith(f.filename) for u in f.urls)
    (cifar,) = data.raw_files("cifar10")
    assert cifar.filename == "cifar-10-python.tar.gz" and len(cifar.md5) == 32
    assert len(data.raw_files("fashion_mnist")) == 4


def test_raw_files_of_an_unknown_dataset_raises():
    with pytest.raises(DatasetError, match="svhn"):
        data.raw_files("svhn")


# ---------------------------------------------------------------------------------------
# User datasets (.npz)
# ---------------------------------------------------------------------------------------


def user_arrays(channels_last: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (4, 5, 3) if channels_last else (4, 5)
    return {
        "x_train": rng.integers(0, 256, (6, *shape), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 0, 1, 2]),
        "x_test": rng.integers(0, 256, (3, *shape), dtype=np.uint8),
        "y_test": np.array([2, 1, 0]),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def test_prepare_npz_grayscale_images_become_n_1_h_w(tmp_path):
    arrays = user_arrays()
    p = data.prepare_npz(write_npz(tmp_path / "u.npz", arrays), "mine", n_classes=5)
    assert p.x_train.shape == (6, 1, 4, 5) and p.x_test.shape == (3, 1, 4, 5)
    np.testing.assert_array_equal(p.x_train[:, 0], arrays["x_train"])
    assert p.n_classes == 5  # declared: labels 0..2 seen, classes 3 and 4 empty
    assert p.meta["name"] == "mine" and p.meta["train_counts"] == [2, 2, 2, 0, 0]


def test_prepare_npz_channels_last_images_become_n_c_h_w(tmp_path):
    arrays = user_arrays(channels_last=True)
    p = data.prepare_npz(write_npz(tmp_path / "u.npz", arrays), "mine")
    assert p.x_train.shape == (6, 3, 4, 5)
    assert p.x_train[2, 1, 3, 4] == arrays["x_train"][2, 3, 4, 1]
    np.testing.assert_array_equal(p.x_test, arrays["x_test"].transpose(0, 3, 1, 2))
    assert p.mean.shape == p.std.shape == (3,)


def _drop(key):
    return lambda a: a.pop(key)


def _set(key, fn):
    return lambda a: a.update({key: fn(a)})


@pytest.mark.parametrize(
    "change, culprit",
    [
        pytest.param(_drop("y_test"), "y_test", id="missing key"),
        pytest.param(_set("extra", lambda a: np.zeros(2)), "extra", id="extra key"),
        pytest.param(_set("x_train", lambda a: a["x_train"] / 255), "x_train", id="float images"),
        pytest.param(_set("x_test", lambda a: a["x_test"][:, 0]), "x_test", id="2-D images"),
        pytest.param(_set("y_train", lambda a: a["y_train"][:-1]), "y_train", id="labels too few"),
        pytest.param(_set("y_train", lambda a: a["y_train"] * 1.0), "y_train", id="float labels"),
        pytest.param(_set("y_test", lambda a: a["y_test"] - 3), "y_test", id="negative labels"),
        pytest.param(_set("x_test", lambda a: a["x_test"][:, :, :4]), "x_test", id="H,W mismatch"),
    ],
)
def test_prepare_npz_bad_input_raises_naming_the_key(tmp_path, change, culprit):
    arrays = user_arrays()
    change(arrays)
    path = write_npz(tmp_path / "u.npz", arrays)
    with pytest.raises(DatasetError, match=culprit) as info:
        data.prepare_npz(path, "mine")
    assert str(path) in str(info.value)


def test_prepare_npz_channel_mismatch_between_train_and_test_raises(tmp_path):
    arrays = user_arrays(channels_last=True)
    arrays["x_test"] = arrays["x_test"][..., :1]
    with pytest.raises(DatasetError, match=r"x_train.*x_test"):
        data.prepare_npz(write_npz(tmp_path / "u.npz", arrays), "mine")


def test_prepare_npz_nonexistent_file_raises_naming_it(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere\.npz"):
        data.prepare_npz(tmp_path / "nowhere.npz", "mine")


def test_npz_image_shape_matches_the_loaded_shape_without_loading(tmp_path, monkeypatch):
    gray = write_npz(tmp_path / "gray.npz", user_arrays())
    rgb = write_npz(tmp_path / "rgb.npz", user_arrays(channels_last=True))

    def no_loading(*args, **kwargs):
        raise AssertionError("npz_image_shape must not load arrays")

    monkeypatch.setattr(np, "load", no_loading)
    shapes = data.npz_image_shape(gray), data.npz_image_shape(rgb)
    monkeypatch.undo()
    assert shapes == ((1, 4, 5), (3, 4, 5))
    assert shapes[1] == data.prepare_npz(rgb, "rgb").x_train.shape[1:]


def test_npz_image_shape_rejects_float_images_naming_the_key(tmp_path):
    arrays = user_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float32)
    with pytest.raises(DatasetError, match=r"x_train.*float32"):
        data.npz_image_shape(write_npz(tmp_path / "u.npz", arrays))


# ---------------------------------------------------------------------------------------
# save_prepared / load_prepared
# ---------------------------------------------------------------------------------------


def test_save_then_load_round_trips_exactly(tmp_path, digits):
    path = tmp_path / "digits.prepared"  # no .npz suffix: nothing gets appended
    data.save_prepared(digits, path)
    assert [p.name for p in tmp_path.iterdir()] == ["digits.prepared"]
    back = data.load_prepared(path)
    for field in ("x_train", "y_train", "x_test", "y_test", "mean", "std"):
        original, loaded = getattr(digits, field), getattr(back, field)
        assert loaded.dtype == original.dtype
        np.testing.assert_array_equal(loaded, original)
    assert back.n_classes == 10 and back.meta == digits.meta


def test_saved_file_has_ordinary_permissions(tmp_path, digits):
    path = tmp_path / "digits.npz"
    data.save_prepared(digits, path)
    reference = tmp_path / "plain"
    reference.write_bytes(b"")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


def test_failed_save_leaves_no_file_and_no_temp_file(tmp_path, digits, monkeypatch):
    def fails_midway(fh, **arrays):
        fh.write(b"half an npz")
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", fails_midway)
    with pytest.raises(RuntimeError, match="disk full"):
        data.save_prepared(digits, tmp_path / "digits.npz")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_file_intact(tmp_path, digits, monkeypatch):
    path = tmp_path / "digits.npz"
    data.save_prepared(digits, path)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", lambda fh, **arrays: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        data.save_prepared(digits, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["digits.npz"]
