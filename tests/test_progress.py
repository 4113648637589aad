"""A training job's log shows it moving: a line per epoch, and a line every ~30 s within long
epochs (the clock is faked, so no test waits)."""

from __future__ import annotations

import logging
import math
import re

import pytest

from weightzoo.progress import Progress, duration

LINE = re.compile(
    r"^mlp-x seeds 0-2: epoch (\d+)/4: train loss (\d+\.\d{4}), test acc (\d+\.\d{4}) "
    r"\(mean of (\d) seeds(?:, (\d) diverged)?\), (?:(\d+\.\d\d) s/epoch, )?ETA (.+)$"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rows(epoch: int, wall: float, losses=(1.0, 2.0, 3.0), accs=(0.5, 0.6, 0.7)) -> list[dict]:
    return [
        {
            "seed": s,
            "epoch": epoch,
            "train_loss": loss,
            "train_acc": 0.0,
            "test_loss": 0.0,
            "test_acc": acc,
            "lr": 0.1,
            "wall_time_s": wall,
        }
        for s, loss, acc in zip(range(3), losses, accs, strict=True)
    ]


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "weightzoo.progress"]


@pytest.fixture
def clock():
    return FakeClock()


def test_a_line_per_epoch_with_mean_loss_accuracy_seconds_and_eta(caplog, clock):
    progress = Progress("mlp-x", [0, 1, 2], 4, clock=clock, thread=False)
    seen = []
    on_epoch = progress.wrap(seen.append)
    with caplog.at_level(logging.INFO, logger="weightzoo.progress"):
        for epoch in range(5):
            for i, row in enumerate(rows(epoch, wall=1.0 + 10.0 * epoch)):
                on_epoch(row)
                assert len(messages(caplog)) == epoch + (i == 2)  # once every seed reported
    assert len(seen) == 15  # every row reached the wrapped callback
    lines = messages(caplog)
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [int(m[1]) for m in parsed] == [0, 1, 2, 3, 4]
    assert parsed[1][2] == "2.0000" and parsed[1][3] == "0.6000" and parsed[1][4] == "3"
    # epoch 0 is the evaluation before training: no rate yet, so no ETA
    assert parsed[0][6] is None and parsed[0][7] == "unknown until an epoch is done"
    # 10 s per epoch: after epoch 1 three epochs are left, after the last none
    assert [m[6] for m in parsed[1:]] == ["10.00"] * 4
    assert [m[7] for m in parsed[1:]] == ["30 s", "20 s", "10 s", "0 s"]


def test_diverged_seeds_leave_the_mean_and_the_count(caplog, clock):
    progress = Progress("mlp-x", [0, 1, 2], 4, clock=clock, thread=False)
    with caplog.at_level(logging.INFO, logger="weightzoo.progress"):
        for row in rows(0, 1.0) + rows(1, 2.0, losses=(1.0, math.nan, 3.0)):
            progress.add_metrics(row)
        for row in rows(2, 3.0)[::2]:  # only seeds 0 and 2 still run
            progress.add_metrics(row)
    lines = messages(caplog)
    assert "train loss 2.0000, test acc 0.6000 (mean of 2 seeds, 1 diverged)" in lines[1]
    assert lines[2].startswith("mlp-x seeds 0-2: epoch 2/4: train loss 2.0000")
    assert "(mean of 2 seeds)" in lines[2]


def test_long_epochs_get_a_line_every_30_s_and_short_ones_none(caplog, clock):
    progress = Progress("mlp-x", [0, 1, 2], 4, clock=clock, thread=False)
    with caplog.at_level(logging.INFO, logger="weightzoo.progress"):
        for epoch, wall in ((0, 5.0), (1, 105.0)):  # epoch 1 took 100 s
            for row in rows(epoch, wall):
                progress.add_metrics(row)
            clock.now += 100.0 if epoch else 5.0
        assert len(messages(caplog)) == 2
        clock.now -= 100.0  # epoch 2 starts just after the line of epoch 1
        for _ in range(12):  # the heartbeat thread ticks every 5 s
            clock.now += 5.0
            progress.tick()
    beats = messages(caplog)[2:]
    # 60 s into the epoch: two lines, at 30 s and 60 s, none at the ticks between
    assert beats == [
        "mlp-x seeds 0-2: epoch 2/4 running for 30 s, ETA 4 min 30 s",
        "mlp-x seeds 0-2: epoch 2/4 running for 1 min 00 s, ETA 4 min 00 s",
    ]
    # an epoch line resets the heartbeat; a short epoch gets no heartbeat at all
    with caplog.at_level(logging.INFO, logger="weightzoo.progress"):
        for row in rows(2, 170.0):
            progress.add_metrics(row)
        clock.now += 20.0
        progress.tick()
    assert len(messages(caplog)) == 5 and "epoch 2/4: train loss" in messages(caplog)[-1]


def test_a_resumed_job_continues_its_count_and_rate(caplog, clock):
    history = rows(0, 1.0) + rows(1, 11.0, losses=(1.0, math.inf, 3.0))
    progress = Progress("mlp-x", [0, 1, 2], 4, history=history, clock=clock, thread=False)
    with caplog.at_level(logging.INFO, logger="weightzoo.progress"):
        for row in rows(2, 31.0)[::2]:  # the diverged seed no longer reports
            progress.add_metrics(row)
    (line,) = messages(caplog)
    assert "epoch 2/4:" in line and "20.00 s/epoch" in line and line.endswith("ETA 40 s")


def test_the_heartbeat_thread_stops_with_its_progress():
    progress = Progress("mlp-x", [0], 1, every_s=0.06)
    stopped = progress.stopped
    del progress  # the job is done with it: its thread ends
    assert stopped.wait(1.0)


def test_durations_read_like_a_person_writes_them():
    assert [duration(s) for s in (0.4, 42, 185, 3720)] == [
        "0 s",
        "42 s",
        "3 min 05 s",
        "1 h 02 min",
    ]


def test_a_training_job_logs_every_epoch(tmp_path, digits_file, caplog):
    from weightzoo import jobs

    train = {
        "optimizer": "adam",
        "lr": 0.003,
        "batch_size": 64,
        "epochs": 3,
        "weight_decay": 0.0,
        "momentum": 0.9,
        "schedule": "cosine",
        "init_scale": 1.0,
        "train_fraction": 1.0,
    }
    unit = {
        "dataset": "digits",
        "family": "mlp",
        "arch": "mlp-d1-w16",
        "arch_params": {"depth": 1, "width": 16},
        "setting": "default",
        "setting_values": {},
        "train": train,
        "seeds": [0, 1],
        "dump_epochs": [0, 3],
        "divergence": {"max_loss_ratio": 0.0, "patience": 1},
    }
    outputs = {f"{k}_out": tmp_path / f"{k}.parquet" for k in ("weights", "metrics", "runs")}
    with caplog.at_level(logging.INFO, logger="weightzoo.progress"):
        jobs.train_job(
            data_path=digits_file,
            unit=unit,
            outputs={**outputs, "resume_dir": tmp_path / "resume"},
            device="cpu",
            threads=1,
            vectorise=True,
        )
    lines = messages(caplog)
    assert [line.split(":")[1] for line in lines] == [f" epoch {e}/3" for e in range(4)]
    assert all(line.startswith("mlp-d1-w16 seeds 0-1: ") for line in lines)
    assert re.search(r"\(mean of 2 seeds\), \d+\.\d\d s/epoch, ETA \d+ s$", lines[1])
