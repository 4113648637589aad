"""Bad input: every case is one clear line naming the key or file, before any job starts
where the config or the input files already tell; never a traceback, never lost results."""

from __future__ import annotations

import numpy as np
import pytest
from test_workflow import TINY, snakemake, write_config

pytestmark = pytest.mark.e2e


def npz(path, **override):
    """A valid 3-class user dataset (8x8 grey images), with some arrays replaced."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 255, (30, 8, 8), dtype=np.uint8),
        "y_train": np.arange(30) % 3,
        "x_test": rng.integers(0, 255, (9, 8, 8), dtype=np.uint8),
        "y_test": np.arange(9) % 3,
    }
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


LABELS = np.arange(30) % 3
# (name, the user .npz arrays to change, the text the one-line error must contain)
NPZ_CASES = [
    (
        "stray label",
        {"y_train": np.where(np.arange(30) == 5, 10**7, LABELS)},
        "y_train: labels must be 0..K-1",
    ),
    ("one class", {"y_train": np.zeros(30, int), "y_test": np.zeros(9, int)}, "at least 2 classes"),
    (
        "labels from 1",
        {"y_train": LABELS + 1, "y_test": np.arange(9) % 3 + 1},
        "labels must be 0..K-1",
    ),
    ("float labels", {"y_train": LABELS.astype(float)}, "y_train is float64"),
    ("2-d labels", {"y_train": LABELS.reshape(15, 2)}, "y_train is int64 with shape (15, 2)"),
    ("length mismatch", {"y_train": LABELS[:20]}, "y_train has 20 labels but there are 30"),
    (
        "empty test set",
        {"x_test": np.zeros((0, 8, 8), np.uint8), "y_test": np.zeros(0, int)},
        "x_test is empty",
    ),
    (
        "image shapes differ",
        {"x_test": np.zeros((9, 6, 6), np.uint8)},
        "x_train images are (C, H, W) = (1, 8, 8) but x_test are (1, 6, 6)",
    ),
    ("zero-sized images", {"x_train": np.zeros((30, 0, 8), np.uint8)}, "x_train has an empty"),
    ("float images", {"x_train": np.zeros((30, 8, 8), np.float32)}, "x_train is float32"),
    ("missing key", {"y_test": None}, "missing key(s) y_test"),
    (
        "test labels beyond train",
        {"y_test": np.array([0, 1, 2, 3, 0, 1, 2, 3, 0])},
        "y_test: label 3 is not among the 3 classes",
    ),
]


def assert_config_error(proc, tmp_path, *fragments: str) -> None:
    """The run stopped before any job, with one line naming the culprit; no traceback."""
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("weightzoo: config error: "), proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("case,arrays,message", NPZ_CASES, ids=[c[0] for c in NPZ_CASES])
def test_a_bad_user_dataset_stops_before_any_job(tmp_path, case, arrays, message):
    npz(tmp_path / "blobs.npz", **arrays)
    extra = write_config(
        tmp_path / "extra.yaml", {"datasets": ["blobs"], "data": {"user": {"blobs": "blobs.npz"}}}
    )
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", str(TINY), str(extra))
    assert_config_error(proc, tmp_path, "data.user.blobs", message)


INF = float("inf")
# (name, the config to merge over the tiny one, the text the one-line error must contain)
CONFIG_CASES = [
    (
        "epochs as 3.0",
        {"families": {"mlp": {"train": {"epochs": 3.0}}}},
        "families.mlp.train.epochs: 3.0 is not an integer; write 3",
    ),
    (
        "batch size as 64.0",
        {"families": {"cnn": {"train": {"batch_size": 64.0}}}},
        "families.cnn.train.batch_size: 64.0 is not an integer; write 64",
    ),
    (
        "seed count as 2.0",
        {"seeds": {"start": 0, "count": 2.0}},
        "seeds.count: 2.0 is not an integer; write 2",
    ),
    (
        "width as 16.0",
        {"families": {"mlp": {"grid": [{"depth": 1, "width": [16.0]}]}}},
        "families.mlp.grid[0].width[0]: 16.0 is not an integer; write 16",
    ),
    (
        "lr nan",
        {"families": {"mlp": {"train": {"lr": float("nan")}}}},
        "families.mlp.train.lr: nan is not a finite number",
    ),
    (
        "lr inf",
        {"families": {"mlp": {"train": {"lr": INF}}}},
        "families.mlp.train.lr: inf is not a finite number",
    ),
    (
        "histogram range inf",
        {"analysis": {"hist": {"range": [-INF, INF]}}},
        "analysis.hist.range[0]: -inf is not a finite number",
    ),
    (
        "lr written 1e-3",
        {"families": {"vit": {"train": {"lr": "1e-3"}}}},
        "families.vit.train.lr: '1e-3' is text, not a number",
    ),
    (
        "digits split too small",
        {"data": {"digits": {"test_fraction": 0.001, "split_seed": 0}}},
        "data.digits.test_fraction: 0.001 leaves 1795 training and 2 test images",
    ),
    (
        "seeds beyond int32",
        {"seeds": {"start": 2**31, "count": 2}},
        "seeds: the last seed would be 2147483649",
    ),
    (
        "empty ViT MLP",
        {"families": {"vit": {"mlp_ratio": 0.01}}},
        "families.vit.grid[0]: mlp_ratio=0.01 gives an empty MLP for embed=4",
    ),
    (
        "model larger than mem_mb",
        {"families": {"mlp": {"grid": [{"depth": 1, "width": 10**7}]}}},
        "families.mlp.resources.mem_mb: mlp-d1-w10000000 on digits holds 750,000,010 parameters",
    ),
    (
        "train fraction too small",
        {"families": {"cnn": {"train": {"train_fraction": 0.001}}}},
        "train_fraction 0.001 of digits's 1347 training images",
    ),
    (
        "unknown setting",
        {"families": {"mlp": {"grid": [{"depth": 1, "width": 4, "lrr": 0.1}]}}},
        "families.mlp.grid[0].lrr: unknown key",
    ),
    (
        "negative lr in a sweep",
        {"families": {"mlp": {"grid": [{"depth": 1, "width": 4, "lr": [0.1, -0.1]}]}}},
        "families.mlp.grid[0].lr: -0.1 is less than or equal to the minimum of 0",
    ),
    (
        "divergence patience 0",
        {"divergence": {"max_loss_ratio": 10.0, "patience": 0}},
        "divergence.patience: 0 is less than the minimum of 1",
    ),
]


@pytest.mark.parametrize("case,override,message", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_config_value_stops_before_any_job(tmp_path, case, override, message):
    bad = write_config(tmp_path / "bad.yaml", override)
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", str(TINY), str(bad))
    assert_config_error(proc, tmp_path, message)


@pytest.mark.parametrize(
    "entry,message",
    [
        ("folder", "is a directory, not an .npz file"),
        ("nowhere.npz", "file not found: nowhere.npz"),
        ({"path": "blobs.npz", "n_classes": 1}, "n_classes: 1 is less than the minimum of 2"),
    ],
)
def test_a_user_dataset_path_that_is_no_file_is_named(tmp_path, entry, message):
    (tmp_path / "folder").mkdir()
    npz(tmp_path / "blobs.npz")
    extra = write_config(
        tmp_path / "extra.yaml", {"datasets": ["blobs"], "data": {"user": {"blobs": entry}}}
    )
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", str(TINY), str(extra))
    assert_config_error(proc, tmp_path, "data.user.blobs", message)


def test_labels_beyond_0_to_k_minus_1_train_once_the_classes_are_declared(tmp_path):
    # labels 1..3 (no 0): declared as 4 classes, the zoo trains, with 4 outputs per network
    npz(tmp_path / "blobs.npz", y_train=LABELS + 1, y_test=np.arange(9) % 3 + 1)
    extra = write_config(
        tmp_path / "extra.yaml",
        {
            "datasets": ["blobs"],
            "data": {"user": {"blobs": {"path": "blobs.npz", "n_classes": 4}}},
            "families": {
                "cnn": {"enabled": False},
                "vit": {"enabled": False},
                "mlp": {"grid": [{"depth": 1, "width": 4}]},
            },
        },
    )
    target = "results/tables/runs.parquet"
    proc = snakemake(tmp_path, target, "--cores", "1", "--configfile", str(TINY), str(extra))
    assert proc.returncode == 0, proc.stderr[-2000:]
    import polars as pl

    runs = pl.read_parquet(tmp_path / target)
    assert runs["n_params"].to_list() == [64 * 4 + 4 + 4 * 4 + 4] * 2  # a 4-class head


def test_a_second_workflow_after_unlock_cannot_steal_a_live_job_and_the_weights_end_whole(
    tmp_path,
):
    import os
    import signal
    import subprocess
    import time

    import polars as pl
    import torch
    from test_workflow import ROOT, SNAKEMAKE

    slow = write_config(
        tmp_path / "slow.yaml",
        {
            "seeds": {"start": 0, "count": 1},
            "seeds_per_job": 1,
            "dump_epochs": [1, 2, 5, 10],
            "families": {
                "cnn": {
                    "grid": [{"blocks": 2, "channels": 16}],
                    "train": {"epochs": 200, "batch_size": 8},
                },
                "mlp": {"enabled": False},
                "vit": {"enabled": False},
            },
        },
    )
    target = "results/tables/runs.parquet"
    base = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    run_a = subprocess.Popen(
        [*base, target, "--cores", "1", "--configfile", str(slow)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    state = tmp_path / "results/resume/digits/cnn-b2-c16/default/seeds-0-0/state.pt"
    try:
        deadline = time.monotonic() + 120
        while not state.exists() or torch.load(state, weights_only=True)["current"]["epoch"] < 1:
            assert time.monotonic() < deadline and run_a.poll() is None, "A never got going"
            time.sleep(0.1)
        # the user follows the lock message's hint while A still runs, and starts B
        assert snakemake(tmp_path, "--unlock", "--configfile", str(slow)).returncode == 0
        run_b = snakemake(tmp_path, target, "--cores", "1", "--configfile", str(slow))
        assert run_b.returncode != 0
        log = tmp_path / "results/logs/train/digits/cnn-b2-c16/default/seeds-0-0.log"
        assert "another process is training this block of seeds" in log.read_text()
        assert "Traceback" not in run_b.stderr.split("Error in rule")[0]
        assert run_a.wait(timeout=600) == 0  # A finishes undisturbed
    finally:
        if run_a.poll() is None:
            os.killpg(run_a.pid, signal.SIGKILL)
    weights = pl.scan_parquet(tmp_path / "results/weights/**/*.parquet", hive_partitioning=True)
    epochs = weights.select(pl.col("epoch").unique().sort()).collect()["epoch"].to_list()
    assert epochs == [0, 1, 2, 5, 10, 200]  # every dump, not only the final epoch
    assert pl.read_parquet(tmp_path / target)["epochs_run"].to_list() == [200]
