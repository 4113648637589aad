"""A training job killed mid-run continues from its last completed epoch, bit for bit."""

from __future__ import annotations

import json
import logging
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
TRAIN = {"optimizer": "adam", "lr": 0.003, "batch_size": 32, "epochs": 8, "weight_decay": 0.0,
         "momentum": 0.9, "schedule": "cosine"}  # fmt: skip


def job_args(digits_file: Path, out: Path, train: dict = TRAIN) -> dict:
    return {
        "data_path": str(digits_file), "dataset": "digits", "family": "cnn", "arch": "cnn-b2-c16",
        "arch_params": CNN, "train": train, "seeds": [0, 1], "dump_epochs": [0, 2, 8],
        "device": "cpu", "threads": 1, "weights_out": str(out / "weights.parquet"),
        "metrics_out": str(out / "metrics.parquet"), "runs_out": str(out / "runs.parquet"),
        "resume_dir": str(out / "resume"), "checkpoint_every_s": 0,
    }  # fmt: skip


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
    resume = Path(args["resume_dir"])
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


@pytest.mark.parametrize("sig,epoch", [
    (signal.SIGKILL, 1),  # hard kill early, before the first dump after the initialisation
    (signal.SIGTERM, 4),  # a time limit / preemption between two dumps
])  # fmt: skip
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
