"""`weightzoo status`: jobs, networks, running epochs and ETAs from Snakemake's records."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import polars as pl
import pytest

from weightzoo import cli, status

UNIT = "dataset=digits/arch={arch}/setting=default/seeds-0-1"
LOG_STARTED = "2026-01-02T030405.000000"  # the name Snakemake gives a run's log (local time)
STARTED = status.log_started(Path(f"{LOG_STARTED}.snakemake.log"))
SNAKEMAKE_LOG = """Building DAG of jobs...
Job stats:
job             count
------------  -------
all                 1
train               4
weight_stats        4
total               9

[Fri Jan  2 03:04:06 2026]
Error in rule train:
    jobid: 7
    input: results/data/digits.npz
    log: results/logs/train/digits/cnn-b1-c4/default/seeds-0-1.log (check log file(s) for error details)
"""


def key_file(folder: Path, key: str) -> Path:
    """A record file as Snakemake's file persistence names it (urlsafe base64 of the path)."""
    path = folder / base64.urlsafe_b64encode(key.encode()).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def finished(work: Path, rule: str, output: str, log: str, start: float, seconds: float) -> None:
    (work / output).parent.mkdir(parents=True, exist_ok=True)
    (work / output).write_bytes(b"")
    record = {"rule": rule, "log": [log], "starttime": start, "endtime": start + seconds,
              "incomplete": False}  # fmt: skip
    key_file(work / ".snakemake/metadata", output).write_text(json.dumps(record))


def runs_file(work: Path, arch: str, statuses: list[str]) -> None:
    path = work / "results/runs" / f"{UNIT.format(arch=arch)}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"seed": [0, 1], "status": statuses}).write_parquet(path)


@pytest.fixture
def half_done(tmp_path) -> Path:
    """A run of 4 training jobs: 2 done (60 s and 120 s), 1 running at epoch 1 of 3 (its
    log's last line a heartbeat in epoch 2, ETA 30 s), 1 failed; 2 of 4 statistics jobs
    done (10 s each); an earlier run's job; a Snakemake process holding the directory."""
    work = tmp_path
    for i, (arch, seconds) in enumerate((("mlp-d1-w1", 60), ("mlp-d1-w16", 120))):
        unit = UNIT.format(arch=arch)
        log = f"results/logs/train/digits/{arch}/default/seeds-0-1.log"
        finished(work, "train", f"results/weights/{unit}.parquet", log, STARTED + 10 * i, seconds)
        finished(work, "train", f"results/metrics/{unit}.parquet", log, STARTED + 10 * i, seconds)
        stats_log = f"results/logs/weight_stats/digits/{arch}/default/seeds-0-1.log"
        finished(
            work, "weight_stats", f"results/stats/{unit}.parquet", stats_log, STARTED + 200, 10
        )
    finished(
        work,
        "prepare_dataset",
        "results/data/digits.npz",
        "results/logs/prep.log",
        STARTED - 500,
        5,
    )
    runs_file(work, "mlp-d1-w1", ["ok", "ok"])
    runs_file(work, "mlp-d1-w16", ["ok", "diverged"])
    running = UNIT.format(arch="cnn-b1-c1")
    for kind in ("weights", "metrics", "runs"):
        key_file(work / ".snakemake/incomplete", f"results/{kind}/{running}.parquet").write_text(
            "{}"
        )
    log = work / "results/logs/train/digits/cnn-b1-c1/default/seeds-0-1.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        "2026-01-02 03:05:00,000 INFO weightzoo.progress: cnn-b1-c1 seeds 0-1: epoch 0/3: train "
        "loss 2.3000, test acc 0.1000 (mean of 2 seeds), ETA unknown until an epoch is done\n"
        "2026-01-02 03:06:00,000 INFO weightzoo.progress: cnn-b1-c1 seeds 0-1: epoch 1/3: train "
        "loss 2.0000, test acc 0.3000 (mean of 2 seeds), 20.00 s/epoch, ETA 40 s\n"
        "2026-01-02 03:06:30,000 INFO weightzoo.progress: cnn-b1-c1 seeds 0-1: epoch 2/3 running "
        "for 10 s, ETA 30 s\n"
    )
    (work / ".snakemake/log").mkdir(parents=True)
    (work / f".snakemake/log/{LOG_STARTED}.snakemake.log").write_text(SNAKEMAKE_LOG)
    (work / ".snakemake/locks").mkdir()
    (work / ".snakemake/locks/0.input.lock").write_text("")
    return work / "results"


def test_half_finished_zoo_counts_jobs_networks_and_running_epochs(half_done):
    st = status.zoo_status(half_done)
    assert st.snakemake_running
    assert st.planned == {"train": 4, "weight_stats": 4}  # `all` has no output to record
    assert st.done == {"train": 2, "weight_stats": 2} and st.done_before == 1
    assert st.failed == {"train": ["results/logs/train/digits/cnn-b1-c4/default/seeds-0-1.log"]}
    assert st.networks == {"diverged": 1, "ok": 3}
    [job] = st.running  # one job, though its three outputs are marked
    assert (job.rule, job.epoch, job.epochs, job.eta_s) == ("train", 1, 3, 30.0)
    assert st.to_go("train") == 4 - 2 - 1 - 1 == 0 and st.to_go("weight_stats") == 2
    # the running job's 30 s, then 2 statistics jobs at their mean of 10 s, one job at a time
    assert st.eta_s() == 30 + 2 * 10


def test_status_command_prints_one_screen(half_done, capsys):
    assert cli.main(["status", str(half_done)]) == 0
    out = capsys.readouterr().out
    assert "jobs of the last run: 4 of 8 done, 1 running, 1 failed, 2 to go" in out
    assert "training jobs: 2 of 4 done, 1 running, 1 failed, 0 to go" in out
    assert "networks trained: 4 (1 diverged, 3 ok)" in out
    assert "train digits/cnn-b1-c1/default seeds 0-1: epoch 1/3, ETA 30 s" in out
    assert "ETA for the whole zoo: about 50 s" in out


def test_without_a_snakemake_process_started_jobs_read_as_interrupted(half_done, capsys):
    (half_done.parent / ".snakemake/locks/0.input.lock").unlink()
    cli.main(["status", str(half_done)])
    assert "started, not finished (interrupted):" in capsys.readouterr().out


def test_eta_text_reads_back_as_seconds():
    assert status.eta_seconds("1 h 02 min") == 3720
    assert status.eta_seconds("3 min 05 s") == 185
    assert status.eta_seconds("unknown until an epoch is done") is None


def test_missing_results_folder_is_one_line(tmp_path, capsys):
    assert cli.main(["status", str(tmp_path / "nowhere")]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"weightzoo status: {tmp_path / 'nowhere'}: no results folder (run the workflow first)"
    )
