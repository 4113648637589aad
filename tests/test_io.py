"""Writes that survive faults: durable renames, a full disk said in one line, no temporary
file left behind."""

from __future__ import annotations

import errno
import os
import subprocess

import pyarrow as pa
import pytest
import torch

from weightzoo import dumps, io


@pytest.fixture
def events(monkeypatch) -> list[tuple]:
    """Every os.fsync (of the path its descriptor names) and os.replace, in order."""
    seen = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(src, dst):
        seen.append(("replace", str(src), str(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return seen


def test_atomic_path_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, events):
    target = tmp_path / "done.txt"
    with io.atomic_path(target) as tmp:
        tmp.write_text("finished")
    assert events == [
        ("fsync", str(tmp)),
        ("replace", str(tmp), str(target)),
        ("fsync", str(tmp_path)),
    ]
    assert target.read_text() == "finished"


def test_a_failing_writer_leaves_neither_file_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError), io.atomic_path(tmp_path / "x.parquet") as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_paths_sync_every_file_before_any_rename_and_each_folder_once(tmp_path, events):
    targets = [tmp_path / "a" / f"{i}.txt" for i in range(5)] + [tmp_path / "b" / "5.txt"]
    with io.atomic_paths(targets) as tmps:
        for i, tmp in enumerate(tmps):
            tmp.write_text(str(i))
    kinds = [e[0] for e in events]
    assert kinds == ["fsync"] * 6 + ["replace"] * 6 + ["fsync"] * 2
    assert sorted(e[1] for e in events[:6]) == sorted(map(str, tmps))
    assert sorted(e[1] for e in events[12:]) == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert [t.read_text() for t in targets] == [str(i) for i in range(6)]


def test_atomic_paths_leave_nothing_when_the_block_fails(tmp_path):
    targets = [tmp_path / f"{i}.parquet" for i in range(3)]
    with pytest.raises(RuntimeError), io.atomic_paths(targets) as tmps:
        tmps[0].write_text("half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_size_text_reads_like_a_person_writes_it():
    assert [io.size_text(n) for n in (512, 3_400, 120_000_000, 2_100_000_000)] == [
        "512 B", "3.4 KB", "120.0 MB", "2.1 GB"]  # fmt: skip


def test_an_errno_or_the_words_of_a_full_disk_are_recognised():
    assert io.is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert io.is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert io.is_disk_full(
        RuntimeError("PytorchStreamWriter failed writing file: file write failed")
    )
    assert not io.is_disk_full(OSError(errno.EACCES, "Permission denied"))


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (root only: the tests run as root where they can)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk) -> None:
    """Use up every free byte of `disk` with one file."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC


def dump_table(n: int = 50_000) -> pa.Table:
    state = {"w": torch.arange(n, dtype=torch.float32)}
    return dumps.state_dict_table(state, {"w": ("weight", "w")}, dataset="d", family="mlp",
                                  arch="mlp-d1-w1", seed=0, epoch=0)  # fmt: skip


def test_a_disk_that_fills_while_the_footer_is_written_leaves_no_temporary_file(small_disk):
    with pytest.raises(io.DiskFullError) as info, dumps.DumpWriter(small_disk / "w.parquet") as w:
        for _ in range(40):  # 40 row groups: a footer of several pages
            w.write(dump_table(100))
        fill(small_disk)  # the row groups are out; the footer finds the disk full
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
    message = str(info.value)
    assert message.startswith(f"{small_disk}/")
    assert f"no space left on the disk mounted at {small_disk} (0 B free of 2.1 MB)" in message


def test_a_write_larger_than_the_disk_is_one_error_naming_the_disk(small_disk):
    with pytest.raises(io.DiskFullError, match=f"mounted at {small_disk}"):
        dumps.write_table(dump_table(1_000_000), small_disk / "big.parquet")
    assert list(small_disk.iterdir()) == []


def test_a_job_that_cannot_fit_says_so_before_it_starts(small_disk):
    with pytest.raises(io.DiskFullError, match=r"it needs about 5\.0 MB"):
        io.ensure_space(small_disk / "weights" / "w.parquet", 5_000_000)
    io.ensure_space(small_disk / "weights" / "w.parquet", 1_000_000)  # this one fits
