"""The zoo as a dataset: open_zoo on a results folder of real (tiny) training jobs."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
import torch

from weightzoo import jobs
from weightzoo.dumps import MixedDumpsError, rows_to_state_dict
from weightzoo.zoo import ZooError, open_zoo

ADAM = {
    "optimizer": "adam",
    "lr": 0.003,
    "batch_size": 64,
    "epochs": 2,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "schedule": "cosine",
    "init_scale": 1.0,
    "train_fraction": 1.0,
}
JOBS = {
    "mlp-d1-w16": ("mlp", {"depth": 1, "width": 16, "activation": "relu"}),
    "mlp-d1-w4": ("mlp", {"depth": 1, "width": 4, "activation": "relu"}),
    "cnn-b1-c4": ("cnn", {"blocks": 1, "channels": 4, "activation": "relu"}),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory, digits_file):
    """A results folder as the workflow lays it out: three architectures x two seeds trained
    together (stacked), dumps at epochs 0, 1, 2, their statistics and the tables."""
    root = tmp_path_factory.mktemp("zoo") / "results"
    (root / "data").mkdir(parents=True)
    shutil.copy(digits_file, root / "data" / "digits.npz")
    for arch, (family, params) in JOBS.items():
        part = f"dataset=digits/arch={arch}/seeds-0-1.parquet"
        unit = {
            "dataset": "digits",
            "family": family,
            "arch": arch,
            "arch_params": params,
            "setting": "default",
            "setting_values": {},
            "train": ADAM,
            "seeds": [0, 1],
            "dump_epochs": [0, 1, 2],
            "divergence": {"max_loss_ratio": 0.0, "patience": 1},
        }
        outputs = {f"{k}_out": root / k / part for k in ("weights", "metrics", "runs")}
        jobs.train_job(
            data_path=digits_file,
            unit=unit,
            outputs={**outputs, "resume_dir": root / "resume"},
            device="cpu",
            threads=1,
            vectorise=True,
        )
        jobs.stats_job(
            weights_path=root / "weights" / part,
            family=family,
            in_shape=[1, 8, 8],
            hist={"range": [-1, 1], "bins": 20, "scaled_range": [-8, 8]},
            spectral=None,
            stats_out=root / "stats" / part,
            maps_out=root / "strength_maps" / part,
        )
    runs = sorted((root / "runs").rglob("*.parquet"))
    jobs.aggregate_runs(
        run_files=runs, parquet_out=root / "tables/runs.parquet", csv_out=root / "tables/runs.csv"
    )
    jobs.concat_tables(
        files=sorted((root / "stats").rglob("*.parquet")), output=root / "tables/stats.parquet"
    )
    return root


def test_model_reproduces_the_stored_test_accuracy_exactly(results):
    zoo = open_zoo(results)
    data = zoo.tensors("digits")
    for run in zoo.runs.collect().iter_rows(named=True):
        model = zoo.model(run["dataset"], run["arch"], run["seed"], run["epochs_run"])
        with torch.inference_mode():
            correct = (model(data.x_test).argmax(1) == data.y_test).sum()
        assert float(correct / len(data.y_test)) == run["final_test_acc"], run["arch"]
        assert not model.training


def test_frames_carry_the_run_keys_and_a_default_setting(results):
    zoo = open_zoo(results)
    for name in ("weights", "metrics", "runs", "stats"):
        frame = getattr(zoo, name).collect()
        assert {"dataset", "family", "arch", "seed", "setting"} <= set(frame.columns), name
        assert frame["setting"].unique().to_list() == ["default"], name
    metrics = zoo.metrics.filter(epoch=2).collect()
    assert metrics.height == 6 and (metrics["test_acc"] == metrics["final_test_acc"]).all()
    stats = zoo.stats.filter(scope="all_weights", target="w").collect()
    assert stats.height == 6 * 3 and stats["n_params"].null_count() == 0


def test_state_dict_is_the_dumped_tensors(results):
    zoo = open_zoo(results)
    state = zoo.state_dict("digits", "mlp-d1-w16", 1, 0)
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "hidden.0.weight": (16, 64),
        "hidden.0.bias": (16,),
        "head.weight": (10, 16),
        "head.bias": (10,),
    }
    rows = zoo.weights.filter(arch="mlp-d1-w16", seed=1, epoch=0, tensor="head.bias").collect()
    assert torch.equal(state["head.bias"], torch.tensor(rows["values"][0].to_list()))


def test_missing_things_are_named(results, tmp_path):
    zoo = open_zoo(results)
    with pytest.raises(ZooError, match="arch=mlp-d9-w1 setting=default seed=0 is not in the zoo"):
        zoo.model("digits", "mlp-d9-w1", 0, 2)
    with pytest.raises(ZooError, match=r"no dump at epoch 7; dumped epochs: \[0, 1, 2\]"):
        zoo.state_dict("digits", "cnn-b1-c4", 0, 7)
    with pytest.raises(FileNotFoundError, match="no results folder"):
        open_zoo(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"tables/runs\.parquet: no runs table"):
        open_zoo(tmp_path).runs  # noqa: B018


def test_to_torch_gives_flat_weights_and_their_metrics(results):
    zoo = open_zoo(results)
    ds = zoo.to_torch(arch="cnn-b1-c4", epoch=1, targets=("test_acc", "final_test_acc"))
    x, y = ds[0]
    assert len(ds) == 2 and x.shape == (4 * 9 + 4 + 64 * 10 + 10,) and y.shape == (2,)
    assert ds.keys["seed"].to_list() == [0, 1] and ds.keys["epoch"].to_list() == [1, 1]
    state = zoo.state_dict("digits", "cnn-b1-c4", 0, 1)
    rebuilt = ds.state_dict(x)
    assert all(torch.equal(rebuilt[k], state[k]) for k in state)
    metric = zoo.metrics.filter(arch="cnn-b1-c4", seed=0, epoch=1).collect()["test_acc"][0]
    assert y[0].item() == pytest.approx(metric)
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    xb, yb = next(iter(loader))
    assert xb.shape == (2, x.shape[0]) and yb.shape == (2, 2)
    assert isinstance(ds, torch.utils.data.Dataset)


def test_to_torch_pads_mixed_architectures_only_when_asked(results):
    zoo = open_zoo(results)
    with pytest.raises(ValueError, match="2 different layouts"):
        zoo.to_torch(family="mlp")
    ds = zoo.to_torch(family="mlp", pad=True)
    sizes = dict(zip(ds.keys["arch"], ds.weights.count_nonzero(dim=1).tolist(), strict=False))
    assert ds.weights.shape == (4, 64 * 16 + 16 + 16 * 10 + 10)
    assert sizes["mlp-d1-w4"] == 64 * 4 + 4 + 4 * 10 + 10  # then zeros
    with pytest.raises(ValueError, match="give family= or arch="):
        zoo.to_torch()
    with pytest.raises(ZooError, match="no finished run with family=vit"):
        zoo.to_torch(family="vit")


def test_splits_hold_every_cell_on_one_side(results):
    zoo = open_zoo(results)
    for kind, n in (("architecture", 3), ("family", 2), ("seed", 2)):
        splits = zoo.splits(kind, k=5, seed=0)
        assert len(splits) == n
        for s in splits:
            cells = lambda frame: set(frame.select("arch").to_series())  # noqa: E731
            if kind == "seed":
                assert cells(s.train) == cells(s.test) and "within-architecture" in s.note
            else:
                assert not cells(s.train) & cells(s.test)
            assert s.train.height + s.test.height == 6
    held_out = pl.concat([s.test for s in zoo.splits("architecture")])
    assert held_out.sort("arch", "seed").equals(
        zoo.runs.select(held_out.columns).collect().sort("arch", "seed")
    )
    with pytest.raises(ValueError, match="too few cells for a split: dataset has 1"):
        zoo.splits("dataset")


def test_rows_of_several_dumps_are_refused_naming_the_keys_that_differ(results):
    zoo = open_zoo(results)
    # seed 0 and seed 1 of one architecture at one epoch: every tensor twice
    rows = zoo.weights.filter(arch="mlp-d1-w16", epoch=2).collect().to_arrow()
    with pytest.raises(MixedDumpsError, match=r"4 tensor\(s\) more than once") as err:
        rows_to_state_dict(rows)
    assert "seed takes 2 values [0, 1]" in str(err.value)
    assert "setting" not in str(err.value).split("(")[2]  # only the keys that differ
    one = zoo.weights.filter(arch="mlp-d1-w16", epoch=2, seed=1).collect().to_arrow()
    assert set(rows_to_state_dict(one)) == {
        "hidden.0.weight",
        "hidden.0.bias",
        "head.weight",
        "head.bias",
    }


def test_rows_of_two_settings_name_the_setting(results):
    rows = open_zoo(results).weights.filter(arch="mlp-d1-w4", epoch=0, seed=0).collect()
    other = rows.with_columns(setting=pl.lit("lr0.1"))
    with pytest.raises(MixedDumpsError, match=r"setting takes 2 values \['default', 'lr0.1'\]"):
        rows_to_state_dict(pl.concat([rows, other]).to_arrow())


def test_to_torch_counts_the_runs_its_status_filter_leaves_out(results, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(results, root)
    runs = pl.read_parquet(root / "tables/runs.parquet")
    diverged = (pl.col("arch") == "cnn-b1-c4") & (pl.col("seed") == 1)
    runs = runs.with_columns(status=pl.when(diverged).then(pl.lit("diverged")).otherwise("status"))
    runs.write_parquet(root / "tables/runs.parquet")
    zoo = open_zoo(root)
    with pytest.warns(UserWarning, match=r"left out 1 of 2 runs \(1 diverged\) for status='ok'"):
        ds = zoo.to_torch(arch="cnn-b1-c4", epoch=1)
    assert len(ds) == 1 and ds.left_out == {"diverged": 1}
    every = zoo.to_torch(arch="cnn-b1-c4", epoch=1, status=None)
    assert len(every) == 2 and every.left_out == {}
    with pytest.warns(UserWarning, match=r"left out 1 of 2 runs \(1 ok\)"):
        only = zoo.to_torch(arch="cnn-b1-c4", epoch=1, status="diverged")
    assert only.keys["seed"].to_list() == [1] and only.left_out == {"ok": 1}
