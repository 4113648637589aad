"""A training job killed mid-run continues from its last completed epoch, bit for bit."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from weightzoo import jobs

CNN = {"blocks": 2, "channels": 16, "activation": "relu"}
TRAIN = {
    "optimizer": "adam",
    "lr": 0.003,
    "batch_size": 32,
    "epochs": 8,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "schedule": "cosine",
    "init_scale": 1.0,
    "train_fraction": 1.0,
}


def job_args(digits_file: Path, out: Path, train: dict = TRAIN, seeds=(0, 1)) -> dict:
    """`jobs.train_job`'s arguments, JSON-ready (a subprocess reads them from argv)."""
    unit = {
        "dataset": "digits",
        "family": "cnn",
        "arch": "cnn-b2-c16",
        "arch_params": CNN,
        "setting": "default",
        "setting_values": {},
        "train": train,
        "seeds": list(seeds),
        "dump_epochs": [0, 2, 8],
        "divergence": {"max_loss_ratio": 0.0, "patience": 1},
    }
    outputs = {f"{k}_out": str(out / f"{k}.parquet") for k in ("weights", "metrics", "runs")}
    return {
        "data_path": str(digits_file),
        "unit": unit,
        "outputs": {**outputs, "resume_dir": str(out / "resume")},
        "device": "cpu",
        "threads": 1,
        "vectorise": True,
        "checkpoint_every_s": 0,
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory, digits_file):
    """The same job, never interrupted."""
    out = tmp_path_factory.mktemp("reference")
    jobs.train_job(**job_args(digits_file, out))
    return out


def saved_epoch(resume: Path) -> int:
    """The job's last completed epoch, from the state on disk."""
    return torch.load(resume / "state.pt", weights_only=True)["current"]["epoch"]


def kill_when(args: dict, sig: int, epoch: int) -> int:
    """Run the job in a subprocess and send `sig` once it has completed `epoch`."""
    code = "import json, sys; from weightzoo import jobs; jobs.train_job(**json.loads(sys.argv[1]))"
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(args)])
    resume = Path(args["outputs"]["resume_dir"])
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, "the job finished before it could be interrupted"
            assert time.monotonic() < deadline, "the job never reached the kill point"
            if (resume / "state.pt").exists() and saved_epoch(resume) >= epoch:
                break
            time.sleep(0.02)
    finally:
        proc.send_signal(sig)
        proc.wait(timeout=60)
    assert proc.returncode != 0
    return saved_epoch(resume)


def assert_same_results(out: Path, reference: Path) -> None:
    a, b = pq.read_table(out / "weights.parquet"), pq.read_table(reference / "weights.parquet")
    assert a.drop(["values"]).equals(b.drop(["values"]))
    flat = [t.column("values").combine_chunks().flatten().to_numpy() for t in (a, b)]
    assert np.array_equal(flat[0], flat[1])  # bit-identical final (and every dumped) weights
    for name in ("metrics", "runs"):
        x, y = (
            pq.read_table(d / f"{name}.parquet").drop(["wall_time_s"]) for d in (out, reference)
        )
        assert x.equals(y), name


@pytest.mark.parametrize(
    "sig,epoch",
    [
        (signal.SIGKILL, 1),  # hard kill early, before the first dump after the initialisation
        (signal.SIGTERM, 4),  # a time limit / preemption between two dumps
    ],
)
def test_killed_job_resumes_bit_identical(tmp_path, digits_file, reference, caplog, sig, epoch):
    args = job_args(digits_file, tmp_path)
    done = kill_when(args, sig, epoch)
    assert epoch <= done < TRAIN["epochs"]
    assert not (tmp_path / "weights.parquet").exists()
    with caplog.at_level(logging.INFO, logger="weightzoo"):
        jobs.train_job(**args)
    assert f"seeds [0, 1]: resuming after epoch {done}" in caplog.text
    assert_same_results(tmp_path, reference)
    assert not (tmp_path / "resume").exists()  # the state is removed once the job completes


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_job_says_so_in_one_line_and_its_log_records_the_epoch(
    tmp_path, digits_file, reference, sig
):
    args = job_args(digits_file, tmp_path)
    log = tmp_path / "train.log"
    code = ("import json, sys; from weightzoo import jobs; "
            "jobs.run_logged(jobs.train_job, sys.argv[2], **json.loads(sys.argv[1]))")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(args), str(log)],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    resume = Path(args["outputs"]["resume_dir"])
    deadline = time.monotonic() + 120
    while not (resume / "state.pt").exists() or saved_epoch(resume) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, "the job never got going"
        time.sleep(0.02)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig  # as a shell reports a process the signal ended
    last = stderr.strip().splitlines()[-1]
    name = signal.Signals(sig).name
    found = re.fullmatch(
        rf"weightzoo: stopped by {name} \(not failed\); digits cnn-b2-c16 default seeds 0-1 "
        r"stopped after epoch (\d+)/8; progress saved after epoch (\d+): a rerun resumes from "
        r"there",
        last,
    )
    assert found, last
    reached, saved = int(found[1]), int(found[2])
    assert saved == saved_epoch(resume) and 3 <= saved <= reached < 8
    assert last.removeprefix("weightzoo: ") in log.read_text()  # the job's log has it too
    assert "Traceback" not in stderr and not list(tmp_path.rglob("*.tmp"))
    jobs.train_job(**args)  # the lock was released: the rerun resumes and ends as if never stopped
    assert_same_results(tmp_path, reference)


def test_resume_state_from_other_settings_is_discarded(tmp_path, digits_file, caplog):
    args = job_args(digits_file, tmp_path)
    kill_when(args, signal.SIGKILL, 2)
    changed = job_args(digits_file, tmp_path, {**TRAIN, "lr": 0.001, "epochs": 2})
    with caplog.at_level(logging.INFO, logger="weightzoo"):
        runs = jobs.train_job(**changed)
    assert "discarding resume state" in caplog.text and "resuming" not in caplog.text
    assert runs["epochs_run"].to_list() == [2, 2]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    jobs.train_job(**job_args(digits_file, fresh, {**TRAIN, "lr": 0.001, "epochs": 2}))
    assert_same_results(tmp_path, fresh)


def fresh_results(digits_file: Path, tmp_path: Path) -> Path:
    out = tmp_path / "fresh"
    out.mkdir()
    jobs.train_job(**job_args(digits_file, out, {**TRAIN, "epochs": 2}))
    return out


def test_an_unreadable_resume_state_is_discarded_not_a_traceback(tmp_path, digits_file, caplog):
    args = job_args(digits_file, tmp_path, {**TRAIN, "epochs": 2})
    resume = Path(args["outputs"]["resume_dir"])
    resume.mkdir(parents=True)
    (resume / "state.pt").write_bytes(b"PK\x03\x04 not a checkpoint at all")
    with caplog.at_level(logging.INFO, logger="weightzoo"):
        jobs.train_job(**args)
    assert f"resume state {resume / 'state.pt'} unreadable" in caplog.text
    assert "starting the block again" in caplog.text and "weights_only" not in caplog.text
    assert_same_results(tmp_path, fresh_results(digits_file, tmp_path))


def test_a_truncated_resume_dump_is_found_when_the_state_is_loaded(tmp_path, digits_file, caplog):
    args = job_args(digits_file, tmp_path)
    kill_when(args, signal.SIGKILL, 3)  # dumps of epochs 0 and 2 are on disk by then
    dump = sorted((Path(args["outputs"]["resume_dir"]) / "dumps").glob("*.parquet"))[-1]
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    with caplog.at_level(logging.INFO, logger="weightzoo"):
        jobs.train_job(**args)
    assert f"resume dump {dump} unreadable" in caplog.text and "resuming" not in caplog.text
    assert_same_results(tmp_path, reference_of(digits_file, tmp_path))


def reference_of(digits_file: Path, tmp_path: Path) -> Path:
    out = tmp_path / "reference"
    out.mkdir()
    jobs.train_job(**job_args(digits_file, out))
    return out


def test_a_second_writer_of_one_block_stops_with_a_clear_message(tmp_path, digits_file):
    from weightzoo.resume import BusyError, ResumeState

    args = job_args(digits_file, tmp_path, {**TRAIN, "epochs": 2})
    with (
        ResumeState(args["outputs"]["resume_dir"], {"another": "job"}),  # a live job's lock
        pytest.raises(BusyError, match="another process is training this block"),
    ):
        jobs.train_job(**args)
    assert not (tmp_path / "weights.parquet").exists()
    jobs.train_job(**args)  # once it is gone, the job runs
    assert (tmp_path / "weights.parquet").exists()
    # done: the resume folder, its lock and the folders left empty are gone
    assert not list(tmp_path.glob("resume*"))


def test_a_weights_file_with_missing_dumps_is_never_written(tmp_path):
    from weightzoo.resume import ResumeState

    progress = ResumeState(tmp_path / "resume", {"k": 1})
    with pytest.raises(ValueError, match=r"seed 0 holds dumps of epochs \[\], not \[0, 2\]"):
        progress.assemble(tmp_path / "weights.parquet", {0: [0, 2]})
    assert not (tmp_path / "weights.parquet").exists()
    progress.close()


def test_a_truncated_weights_file_is_named_with_its_remedy(tmp_path, digits_file):
    out = fresh_results(digits_file, tmp_path)
    weights = tmp_path / "results/weights/dataset=digits/arch=a/setting=default/seeds-0-1.parquet"
    weights.parent.mkdir(parents=True)
    weights.write_bytes((out / "weights.parquet").read_bytes()[:500])
    hist = {"range": [-1.0, 1.0], "bins": 10, "scaled_range": [-8.0, 8.0]}
    with pytest.raises(ValueError) as info:
        jobs.stats_job(
            weights_path=weights,
            family="cnn",
            in_shape=[1, 8, 8],
            hist=hist,
            spectral=None,
            stats_out=tmp_path / "s.parquet",
            maps_out=tmp_path / "m.parquet",
        )
    message = str(info.value)
    assert message.startswith(f"{weights} is damaged")
    # the advice redoes that job alone, not every training job
    assert "written by train (dataset=digits, arch=a, setting=default, seeds=0-1)" in message
    assert f"--forcerun {weights}, to redo that job alone" in message
    assert "--forcerun train " not in message


def test_a_killed_pack_restores_its_finished_blocks_instead_of_training_them_again(
    tmp_path, digits_file, reference, caplog
):
    units = []  # config.unit_params: each block's unit and files in one flat dict
    for name, seeds in (("first", [0, 1]), ("second", [2, 3])):
        args = job_args(digits_file, tmp_path / name, seeds=seeds)
        units.append({**args["unit"], **args["outputs"]})
    pack = {
        "data_path": str(digits_file),
        "units": units,
        "device": "cpu",
        "threads": 1,
        "vectorise": True,
        "checkpoint_every_s": 0,
    }
    code = "import json, sys; from weightzoo import jobs; jobs.train_pack_job(**json.loads(sys.argv[1]))"
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(pack)])
    first_done = Path(units[0]["resume_dir"] + ".done") / "key.json"
    deadline = time.monotonic() + 180
    while not first_done.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the first block never ended"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not Path(units[0]["weights_out"]).exists()  # files move into place at the end only
    with caplog.at_level(logging.INFO, logger="weightzoo"):
        jobs.train_pack_job(**pack)
    assert "block 1/2 cnn-b2-c16 default seeds [0, 1]: restored from an earlier attempt" in (
        caplog.text
    )
    assert_same_results(tmp_path / "first", reference)  # seeds 0 and 1, as trained alone
    assert not first_done.parent.exists() and Path(units[1]["weights_out"]).exists()


def test_a_lock_file_removed_by_its_holder_is_never_locked_by_a_late_opener(tmp_path, monkeypatch):
    from weightzoo import resume

    path = tmp_path / "seeds-0-1.lock"
    opened = []
    real_open = os.open

    def open_then_holder_finishes(name, flags, mode=0o777):
        fd = real_open(name, flags, mode)
        if not opened:  # the job holding the lock finishes now and removes its file
            Path(name).unlink()
        opened.append(name)
        return fd

    monkeypatch.setattr(os, "open", open_then_holder_finishes)
    lock = resume._Lock(path)
    monkeypatch.undo()
    # the first file it opened was gone by the time it locked it: it locked the path's new file,
    # the one a third process would find, so the two cannot both write the block
    assert len(opened) == 2
    assert path.exists() and os.path.samestat(os.fstat(lock.fd), os.stat(path))
    with pytest.raises(resume.BusyError):
        resume._Lock(path)
    lock.release(remove=True)
    assert not path.exists()


def test_pruning_a_folder_another_job_removed_first_is_not_an_error(tmp_path, monkeypatch):
    from weightzoo.resume import prune

    leaf = tmp_path / "resume" / "digits" / "mlp-d1-w16" / "default"
    leaf.mkdir(parents=True)
    real_rmdir = Path.rmdir

    def raced(self):  # another job, finishing at the same moment, removes it first
        real_rmdir(self)
        raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(Path, "rmdir", raced)
    prune(leaf)  # no error: the folder is gone, whoever removed it
    assert not leaf.exists() and (tmp_path / "resume" / "digits" / "mlp-d1-w16").exists()
    monkeypatch.undo()
    sibling = tmp_path / "resume" / "digits" / "cnn-b1-c4"
    sibling.mkdir()
    prune(tmp_path / "resume" / "digits" / "mlp-d1-w16")  # a parent still holds a sibling
    assert not (tmp_path / "resume" / "digits" / "mlp-d1-w16").exists() and sibling.exists()
