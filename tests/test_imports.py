"""Imported zoos: each format read exactly from files written in its layout, tensor roles
told from names and shapes, bad checkpoints refused with one line naming the file."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from conftest import ROOT, SCHEMA
from torch import nn

from weightzoo import imports, zoo_writers
from weightzoo.config import ConfigError, validate_config
from weightzoo.dumps import rows_to_state_dict
from weightzoo.imports import ZooFileError, plan_import, tensor_roles
from weightzoo.models import build_model, tensor_kinds


def run_import(plan: imports.ImportPlan, root: Path) -> None:
    """Every job of the plan, its files under `root`."""
    for runs in plan.shards().values():
        job = plan.job(runs)
        job["outputs"] = [{k: str(root / v) for k, v in out.items()} for out in job["outputs"]]
        imports.import_shard(**job)


def dump(root: Path, plan, run, kind="weights") -> Path:
    return root / plan.file(run, kind)


def states_of(path: Path) -> dict[int, dict[str, torch.Tensor]]:
    """{epoch: state_dict} rebuilt from a weights file."""
    table = pl.read_parquet(path).to_arrow()
    epochs = sorted(set(table.column("epoch").to_pylist()))
    frame = pl.from_arrow(table)
    return {e: rows_to_state_dict(frame.filter(epoch=e).to_arrow()) for e in epochs}


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k, v in a.items():
        assert v.shape == b[k].shape, k
        assert torch.equal(v.to(torch.float32), b[k].to(torch.float32)), k


# --------------------------------------------------------------------------------------------
# Tensor roles
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family,arch",
    [
        ("mlp", {"depth": 2, "width": 5}),
        ("cnn", {"blocks": 2, "channels": 3}),
        ("vit", {"patch": 4, "depth": 2, "heads": 2, "embed": 8}),
    ],
)
def test_roles_from_names_and_shapes_match_the_module_types_of_our_own_models(family, arch):
    model = build_model(family, arch, (1, 8, 8), 10)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert tensor_roles(shapes) == tensor_kinds(model)


def test_batch_norm_in_a_sequential_is_norm_and_its_running_statistics_are_buffers():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    roles = tensor_roles(shapes)
    assert roles["0.weight"] == ("weight", "0") and roles["0.bias"] == ("bias", "0")
    assert roles["1.weight"] == roles["1.bias"] == ("norm", "1")
    assert roles["1.running_mean"] == roles["1.num_batches_tracked"] == ("buffer", "1")
    assert roles["3.weight"] == ("weight", "3")


def test_an_unnamed_layer_norm_is_unknown_not_guessed_into_a_layer_unless_mapped():
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    roles = tensor_roles(shapes)
    # a 1-D "weight" beside a 1-D "bias": a LayerNorm or a scale, nothing says which layer
    assert roles["1.weight"] == roles["1.bias"] == ("unknown", "")
    assert roles["0.bias"] == ("bias", "0")
    mapped = tensor_roles(shapes, {r"1\.(weight|bias)": "norm"})
    assert mapped["1.weight"] == mapped["1.bias"] == ("norm", "1")


def test_keras_variable_names_of_the_small_cnn_zoo_are_kernels_and_biases():
    layout = zoo_writers.small_cnn_layout()
    shapes = {imports.split_name(n)[0] + "/" + imports.split_name(n)[1]: s for n, s in layout}
    roles = tensor_roles(shapes)
    assert roles["sequential/conv2d_1/kernel"] == ("weight", "sequential/conv2d_1")
    assert roles["sequential/dense/bias"] == ("bias", "sequential/dense")
    assert sum(np.prod(s) for s in shapes.values()) == 4970


# --------------------------------------------------------------------------------------------
# Each format, round trip exact
# --------------------------------------------------------------------------------------------


@pytest.fixture
def listed_zoo(tmp_path):
    runs = zoo_writers.mlp_zoo(widths=(2, 8), seeds=(0, 1), epochs=(0, 2))
    csv_path = zoo_writers.write_listed_zoo(tmp_path / "ckpt", runs)
    entry = {"format": "state_dict", "path": str(tmp_path / "ckpt"), "runs": str(csv_path)}
    return runs, entry


@pytest.mark.parametrize("fmt", ["state_dict", "safetensors"])
def test_listed_checkpoints_round_trip_exactly(tmp_path, fmt):
    runs = zoo_writers.mlp_zoo(widths=(2, 8), seeds=(0, 1), epochs=(0, 2))
    csv_path = zoo_writers.write_listed_zoo(tmp_path / "ckpt", runs, fmt)
    plan = plan_import(
        "myzoo", {"format": fmt, "path": str(tmp_path / "ckpt"), "runs": str(csv_path)}
    )
    assert len(plan.runs) == 4 and plan.runs[0].checkpoints[0].epoch == 0
    run_import(plan, tmp_path)
    for original in runs:
        run = next(r for r in plan.runs if (r.arch, r.seed) == (original["arch"], original["seed"]))
        rebuilt = states_of(dump(tmp_path, plan, run))
        assert sorted(rebuilt) == [0, 2]
        for epoch, state in original["states"].items():
            expected = state
            if fmt == "safetensors":  # the format keeps no order: names in natural order
                assert list(rebuilt[epoch]) == ["head.bias", "head.weight", "hidden.0.bias",
                                                "hidden.0.weight"]  # fmt: skip
                expected = {k: state[k] for k in rebuilt[epoch]}
            assert_same(expected, rebuilt[epoch])


def test_listed_import_writes_the_runs_and_metrics_of_the_contract(tmp_path, listed_zoo):
    _, entry = listed_zoo
    plan = plan_import("myzoo", entry)
    run_import(plan, tmp_path)
    table = pl.concat([pl.read_parquet(dump(tmp_path, plan, r, "runs")) for r in plan.runs])
    listed = pl.read_csv(entry["runs"])
    final = listed.filter(pl.col("epoch") == 2).sort("arch", "seed")
    table = table.sort("arch", "seed")
    assert table["dataset"].unique().to_list() == ["myzoo"]
    assert table["family"].unique().to_list() == ["mlp"]
    assert table["final_test_acc"].to_list() == final["test_acc"].to_list()
    assert table["epochs_run"].to_list() == [2, 2, 2, 2]
    assert table["status"].unique().to_list() == ["ok"]
    # mlp-d1-w2 on 8x8: 64*2+2 + 2*10+10 = 160 parameters; w8: 64*8+8 + 8*10+10 = 610
    assert table["n_params"].to_list() == [160, 160, 610, 610]
    assert table["lr"].to_list() == [1e-3] * 4  # a hyperparameter column of the CSV, typed
    assert table["n_classes"].to_list() == [10] * 4  # the last weight's outputs
    metrics = pl.read_parquet(dump(tmp_path, plan, plan.runs[0], "metrics"))
    assert metrics["epoch"].to_list() == [0, 2]
    assert set(metrics.columns) >= {"dataset", "arch", "setting", "seed", "test_acc", "train_acc"}


def test_small_cnn_zoo_rows_round_trip_with_kernels_as_pytorch_lays_them_out(tmp_path):
    folder = zoo_writers.write_small_cnn_zoo(tmp_path / "zoo", n_runs=3, steps=(0, 1, 86))
    plan = plan_import("unterthiner", {"format": "small_cnn_zoo", "path": str(folder)})
    assert [len(r.checkpoints) for r in plan.runs] == [3, 3, 3]
    assert {r.arch for r in plan.runs} == {"cnn-l3-u16"}
    assert {r.seed for r in plan.runs} == {42}  # config.random_seed: one seed for every run
    run_import(plan, tmp_path)
    weights = np.load(folder / "weights.npy")
    layout = imports.read_layout(folder / "layout.csv", weights.shape[1])
    for run in plan.runs:
        rebuilt = states_of(dump(tmp_path, plan, run))
        for c in run.checkpoints:
            state = rebuilt[c.epoch]
            assert tuple(state["sequential/conv2d/kernel"].shape) == (
                16,
                1,
                3,
                3,
            )  # out, in, kh, kw
            assert tuple(state["sequential/dense/kernel"].shape) == (10, 16)
            row = imports.keras_row({k: v.numpy() for k, v in state.items()}, layout)
            assert np.array_equal(row, weights[c.row])  # the exact flat row back
    runs = pl.read_parquet(dump(tmp_path, plan, plan.runs[0], "runs"))
    assert runs["n_params"].item() == 4970
    assert runs["epochs_planned"].item() == 86
    assert "lr" in runs.columns and "hp.config.w_init" in runs.columns


def test_small_cnn_zoo_cells_are_its_hyperparameters(tmp_path):
    folder = zoo_writers.write_small_cnn_zoo(tmp_path / "zoo", n_runs=12, steps=(0, 86))
    plan = plan_import("z", {"format": "small_cnn_zoo", "path": str(folder)})
    metrics = pl.read_csv(folder / "metrics.csv.gz").filter(pl.col("step") == 0)
    first = metrics.row(0, named=True)
    setting = plan.runs[0].setting
    # weightzoo's own keys first with their tags (lr, wd, opt, act, tf), then the zoo's others
    # by name; numbers with 6 significant digits; constants (b_init, epochs) left out
    assert setting == (
        f"lr{first['config.learning_rate']:.6g}-wd{first['config.l2reg']:.6g}"
        f"-opt{first['config.optimizer']}-act{first['config.activation']}"
        f"-tf{first['config.train_fraction']:.6g}-dropout{first['config.dropout']:.6g}"
        f"-initstd{first['config.init_std']:.6g}-winit{first['config.w_init'].lower().replace('_', '.')}"
    )
    assert len({r.setting for r in plan.runs}) == 12  # every run a cell of its own


def test_model_zoos_trials_round_trip_with_their_result_lines(tmp_path):
    folder = zoo_writers.write_modelzoos(tmp_path / "zoo", epochs=(0, 1, 2))
    plan = plan_import("mz", {"format": "modelzoos", "path": str(folder)})
    assert len(plan.runs) == 12
    # cells: activation x lr (what varies besides the seed), three seeds each
    cells = {(r.arch, r.setting) for r in plan.runs}
    assert {a for a, _ in cells} == {"cnn"}
    assert {s for _, s in cells} == {"lr0.0001-acttanh", "lr0.001-acttanh", "lr0.0001-actrelu",
                                     "lr0.001-actrelu"}  # fmt: skip
    run_import(plan, tmp_path)
    run = plan.runs[0]
    trial = Path(run.source)
    rebuilt = states_of(dump(tmp_path, plan, run))
    for epoch in (0, 1, 2):
        original = torch.load(trial / f"checkpoint_{epoch:06d}" / "checkpoints", weights_only=True)
        assert_same(original, rebuilt[epoch])
    assert list(rebuilt[0]) == [
        f"module_list.{i}.{p}" for i in (0, 3, 6, 9, 11) for p in ("weight", "bias")
    ]
    metrics = pl.read_parquet(dump(tmp_path, plan, run, "metrics")).sort("epoch")
    lines = [json.loads(x) for x in (trial / "result.json").read_text().splitlines()]
    assert metrics["test_acc"].to_list() == [x["test_acc"] for x in lines]
    assert metrics["train_acc"][0] is None  # -999: nothing measured before training
    runs = pl.read_parquet(dump(tmp_path, plan, run, "runs"))
    assert runs["epochs_planned"].item() == 2 and runs["n_classes"].item() == 10


def test_cnn_wild_park_trials_round_trip_each_its_own_architecture(tmp_path):
    folder = zoo_writers.write_cnn_wild_park(tmp_path / "park", n_trials=3, epochs=(10, 20))
    plan = plan_import("park", {"format": "cnn_wild_park", "path": str(folder)})
    assert len({r.arch for r in plan.runs}) == 3 and {r.setting for r in plan.runs} == {"default"}
    run_import(plan, tmp_path)
    for run in plan.runs:
        rebuilt = states_of(dump(tmp_path, plan, run))
        assert sorted(rebuilt) == [10, 20]  # no initial weights in the park
        for c in run.checkpoints:
            saved = torch.load(c.file, weights_only=True)
            assert_same(saved["model"], rebuilt[c.epoch])
        metrics = pl.read_parquet(dump(tmp_path, plan, run, "metrics")).sort("epoch")
        accs = [
            torch.load(c.file, weights_only=True)["last_result"]["test/acc"]
            for c in run.checkpoints
        ]
        assert metrics["test_acc"].to_list() == accs


# --------------------------------------------------------------------------------------------
# Bad input: one line naming the file, before anything is written
# --------------------------------------------------------------------------------------------


class Payload:
    """An object whose unpickling would run a command."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_pickle_with_code_is_refused_with_one_line(tmp_path, listed_zoo):
    _, entry = listed_zoo
    bad = Path(entry["path"]) / "mlp-d1-w2_s0_e2.pt"
    torch.save({"hidden.0.weight": torch.zeros(2, 64), "evil": Payload()}, bad)
    plan = plan_import("myzoo", entry)
    with pytest.raises(ZooFileError) as err:
        run_import(plan, tmp_path)
    message = one_line(err)
    assert message.startswith(f"{bad}: refused:") and "system" in message
    assert not (tmp_path / "results").exists() or not list(
        (tmp_path / "results").rglob("*.parquet")
    )


def test_a_missing_checkpoint_is_named_when_the_zoo_is_planned(tmp_path, listed_zoo):
    _, entry = listed_zoo
    (Path(entry["path"]) / "mlp-d1-w8_s1_e0.pt").unlink()
    with pytest.raises(ZooFileError) as err:
        plan_import("myzoo", entry)
    assert one_line(err).startswith(f"{Path(entry['path']) / 'mlp-d1-w8_s1_e0.pt'}: no such file")


def test_shapes_that_differ_within_an_architecture_stop_the_import(tmp_path, listed_zoo):
    _, entry = listed_zoo
    states = zoo_writers.mlp_states(4, 0, [0, 2])  # a width-4 net filed as width 8
    for epoch in (0, 2):
        torch.save(states[epoch], Path(entry["path"]) / f"mlp-d1-w8_s1_e{epoch}.pt")
    plan = plan_import("myzoo", {**entry, "jobs": 1})
    with pytest.raises(ZooFileError) as err:
        run_import(plan, tmp_path)
    message = one_line(err)
    wrong, first = (Path(entry["path"]) / f"mlp-d1-w8_s{s}_e0.pt" for s in (1, 0))
    assert message.startswith(f"{wrong}: tensor 'hidden.0.weight' has shape [4, 64], not [8, 64]")
    assert message.endswith(f"unlike {first} of the same architecture mlp-d1-w8")


def test_a_checkpoint_unlike_the_others_of_its_run_is_named(tmp_path, listed_zoo):
    _, entry = listed_zoo
    wrong = Path(entry["path"]) / "mlp-d1-w8_s1_e2.pt"
    state = torch.load(wrong, weights_only=True)
    del state["head.bias"]
    torch.save(state, wrong)
    with pytest.raises(ZooFileError) as err:
        run_import(plan_import("myzoo", entry), tmp_path)
    assert one_line(err).startswith(f"{wrong}: has no tensor 'head.bias' (epoch 2; ")


def test_a_nan_tensor_ends_the_run_as_diverged_and_keeps_its_finite_dumps(tmp_path, listed_zoo):
    _, entry = listed_zoo
    late = Path(entry["path"]) / "mlp-d1-w2_s1_e2.pt"
    state = torch.load(late, weights_only=True)
    state["head.bias"][0] = float("nan")
    torch.save(state, late)
    plan = plan_import("myzoo", entry)
    run_import(plan, tmp_path)
    run = next(r for r in plan.runs if (r.arch, r.seed) == ("mlp-d1-w2", 1))
    row = pl.read_parquet(dump(tmp_path, plan, run, "runs")).row(0, named=True)
    assert (row["status"], row["diverged_epoch"], row["epochs_run"]) == ("diverged", 2, 0)
    assert sorted(states_of(dump(tmp_path, plan, run))) == [0]


def test_a_nan_tensor_in_the_first_checkpoint_is_an_error_naming_it(tmp_path, listed_zoo):
    _, entry = listed_zoo
    first = Path(entry["path"]) / "mlp-d1-w2_s0_e0.pt"
    state = torch.load(first, weights_only=True)
    state["hidden.0.weight"][1, 3] = float("inf")
    torch.save(state, first)
    with pytest.raises(ZooFileError) as err:
        run_import(plan_import("myzoo", entry), tmp_path)
    assert one_line(err).startswith(f"{first}: tensor 'hidden.0.weight' holds NaN or infinite")


def test_two_runs_with_the_same_key_are_refused(tmp_path, listed_zoo):
    _, entry = listed_zoo
    with open(entry["runs"]) as f:
        rows = list(csv.DictReader(f))
    rows.append({**rows[0], "epoch": "5"})
    rows.append({**rows[0]})  # the same file at the same epoch again
    with open(entry["runs"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ZooFileError) as err:
        plan_import("myzoo", entry)
    assert "epoch 0 of arch=mlp-d1-w2 setting=default seed=0 is also" in one_line(err)


def test_a_runs_csv_without_test_accuracy_is_refused(tmp_path, listed_zoo):
    _, entry = listed_zoo
    table = pl.read_csv(entry["runs"]).drop("test_acc")
    table.write_csv(entry["runs"])
    with pytest.raises(ZooFileError) as err:
        plan_import("myzoo", entry)
    assert one_line(err).startswith(f"{entry['runs']}: no column 'test_acc'")


def test_nothing_of_a_failed_job_is_left_behind(tmp_path, listed_zoo):
    _, entry = listed_zoo
    entry = {**entry, "jobs": 1}  # every run in one job
    plan = plan_import("myzoo", entry)
    last = plan.runs[-1].checkpoints[-1].file
    Path(last).write_bytes(b"not a checkpoint")
    with pytest.raises(ZooFileError) as err:
        run_import(plan, tmp_path)
    assert one_line(err).startswith(f"{last}: not a readable torch checkpoint")
    assert list((tmp_path / "results").rglob("*.parquet")) == []
    assert list((tmp_path / "results").rglob("*.tmp")) == []


def test_an_unknown_format_and_a_taken_name_are_config_errors(config, listed_zoo):
    _, entry = listed_zoo
    config["imports"] = {"myzoo": {**entry, "format": "keras"}}
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    assert str(err.value).startswith("imports.myzoo.format: 'keras' is not one of")
    config["imports"] = {"digits": dict(entry)}
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    assert str(err.value).startswith("imports.digits: 'digits' is a dataset's name already")


def test_a_zoo_can_be_analysed_without_training_anything(config, listed_zoo):
    _, entry = listed_zoo
    config["datasets"] = []
    with pytest.raises(ConfigError, match="nothing to train or analyse"):
        validate_config(copy.deepcopy(config), SCHEMA)
    config["imports"] = {"myzoo": entry}
    assert validate_config(config, SCHEMA) is config


# --------------------------------------------------------------------------------------------
# Jobs: adding checkpoints reruns only the jobs that hold them
# --------------------------------------------------------------------------------------------


def test_one_job_per_run_by_default_and_a_stable_shard_per_run_with_jobs(listed_zoo):
    _, entry = listed_zoo
    plan = plan_import("myzoo", entry)
    assert len(plan.shards()) == 4  # one per run
    sharded = plan_import("myzoo", {**entry, "jobs": 3})
    before = {s: [r.key for r in runs] for s, runs in sharded.shards().items()}
    extra = imports.Run("mlp-d1-w32", "default", 0, "x", plan.runs[0].checkpoints)
    sharded.runs.append(extra)
    after = {s: [r.key for r in runs] for s, runs in sharded.shards().items()}
    changed = [s for s in after if after[s] != before.get(s)]
    assert len(changed) == 1 and extra.key in after[changed[0]]


# --------------------------------------------------------------------------------------------
# End to end: a zoo of each format, imported and analysed by snakemake
# --------------------------------------------------------------------------------------------

IMPORTS_CONFIG = ROOT / "config" / "test" / "imports.yaml"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(IMPORTS_CONFIG), *args]  # fmt: skip
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)


def write_example_zoos(zoo: Path) -> list[dict]:
    """The five zoos of config/test/imports.yaml; returns the state_dict zoo's runs."""
    mlps = zoo_writers.mlp_zoo(widths=(1, 2, 4, 8, 16), seeds=(0, 1), epochs=(0, 1, 3))
    zoo_writers.write_listed_zoo(zoo / "ckpt", mlps)
    st = zoo_writers.mlp_zoo(widths=(2, 4, 8, 16, 32), seeds=(5,), epochs=(0, 2))
    zoo_writers.write_listed_zoo(zoo / "st", st, "safetensors")
    zoo_writers.write_small_cnn_zoo(zoo / "small_cnn", n_runs=12, steps=(0, 1, 86))
    zoo_writers.write_modelzoos(zoo / "modelzoo", seeds=(1, 2), epochs=(0, 1, 2))
    zoo_writers.write_cnn_wild_park(zoo / "park", n_trials=6, epochs=(10, 20))
    return mlps


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("imports")
    mlps = write_example_zoos(work / "zoo")
    proc = snakemake(work, "--cores", "2", "results/claims.md", "results/prediction.md")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, mlps


@pytest.mark.e2e
@pytest.mark.timeout(1800)  # the module's snakemake run: about 60 jobs
def test_every_format_yields_statistics_verdicts_and_predictions(imported_run):
    work, _ = imported_run
    names = {"mymlps", "mlps_st", "cnnzoo", "modelzoo", "park"}
    stats = pl.scan_parquet(work / "results/tables/stats.parquet")
    found = stats.group_by("dataset").agg(pl.len()).collect()
    assert set(found["dataset"]) == names and (found["len"] > 0).all()
    page = (work / "results/claims.md").read_text()
    verdicts = page.split("## Verdicts", 1)[1].split("## Claim 1", 1)[0]  # the verdict tables
    for name in names:
        assert f"| {name} |" in verdicts, name
    prediction = pl.read_parquet(work / "results/tables/prediction.parquet")
    assert prediction.filter(pl.col("r2").is_not_null()).height > 0
    assert "| `layer7` | ridge |" in (work / "results/prediction.md").read_text()


@pytest.mark.e2e
def test_open_zoo_rebuilds_an_imported_checkpoint_exactly(imported_run):
    from weightzoo.zoo import open_zoo

    work, mlps = imported_run
    run = next(r for r in mlps if r["arch"] == "mlp-d1-w8" and r["seed"] == 1)
    state = open_zoo(work / "results").state_dict("mymlps", "mlp-d1-w8", 1, 3)
    assert_same(run["states"][3], state)


@pytest.mark.e2e
def test_adding_checkpoints_reruns_only_the_jobs_that_hold_them(imported_run):
    work, _ = imported_run
    extra = zoo_writers.mlp_zoo(widths=(64,), seeds=(0,), epochs=(0, 3))
    csv_path = zoo_writers.write_listed_zoo(work / "zoo" / "extra", extra)
    listed = pl.concat([
        pl.read_csv(work / "zoo/ckpt/runs.csv"),
        pl.read_csv(csv_path).with_columns(pl.format("../extra/{}", "file").alias("file")),
    ])  # fmt: skip
    listed.write_csv(work / "zoo/ckpt/runs.csv")
    proc = snakemake(work, "--dry-run", "--quiet", "rules")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rules = set(re.findall(r"^(import\w*)\s+1$", proc.stdout + proc.stderr, re.MULTILINE))
    entry = {
        "format": "state_dict",
        "path": str(work / "zoo/ckpt"),
        "runs": str(work / "zoo/ckpt/runs.csv"),
    }
    plan = plan_import("mymlps", entry)
    shard = next(s for s, runs in plan.shards().items() if runs[0].arch == "mlp-d1-w64")
    # the new run's import and statistics jobs, nothing else of any zoo
    assert sorted(rules) == [f"import_{shard}", f"import_stats_{shard}"], proc.stderr[-3000:]


@pytest.mark.e2e
def test_controls_the_data_cannot_give_say_not_testable_not_a_number(imported_run):
    work, _ = imported_run
    claims = pl.read_parquet(work / "results/tables/claims.parquet")
    # the park has no checkpoint at epoch 0: its initialisation controls have no number
    init = claims.filter(dataset="park", family="cnn", test="partial_size_rel")
    assert init.height > 0 and init["estimate"].is_null().all()
    assert init["note"].str.contains("not testable: no initial weights").all()
    # the Small CNN Zoo has one seed per cell: no seed dispersion
    spread = claims.filter(dataset="cnnzoo", test="seed_w1_spearman", target="w", family="cnn")
    assert spread["estimate"].is_null().all()
    assert spread["note"].str.contains("not testable: one seed per cell").all()
    page = (work / "results/claims.md").read_text()
    assert "not testable: one seed per cell" in page and "no initial weights" in page


def test_chance_is_one_over_the_classes_a_run_states_else_ten():
    from weightzoo.analysis import label_groups

    runs = pl.DataFrame(
        {
            "dataset": ["digits", "digits", "three", "three"],
            "family": ["mlp"] * 4,
            "arch": ["a", "b", "a", "b"],
            "setting": ["default"] * 4,
            "seed": [0, 0, 0, 0],
            "final_test_acc": [0.9, 0.5, 0.36, 0.2],
            "n_classes": [None, None, 3, 3],  # a trained run's row says nothing: 10 classes
        }
    )
    groups = label_groups(runs, 0.01, 0.1, 0.05).sort("dataset", "arch")
    assert groups["chance_acc"].to_list() == pytest.approx([0.1, 0.1, 1 / 3, 1 / 3])
    # 0.36 is within the margin (0.05) of chance for 3 classes, far above it for 10
    assert groups["group"].to_list() == ["optimal", "suboptimal", "at chance", "at chance"]


def test_an_architecture_with_two_layouts_across_jobs_stops_the_runs_table():
    runs = pl.DataFrame(
        {
            "dataset": ["z", "z", "z", "digits"],
            "arch": ["a", "a", "b", "a"],
            "layout": ["0000aaaa", "0000bbbb", "0000cccc", None],  # trained runs: none
            "source": ["r1.pt", "r2.pt", "r3.pt", None],
        }
    )
    with pytest.raises(ZooFileError) as err:
        imports.check_layouts(runs)
    assert one_line(err).startswith(
        "r2.pt: its tensors differ from those of r1.pt, a run of the same architecture a of z"
    )
    imports.check_layouts(runs.filter(pl.col("source") != "r2.pt"))  # one layout each: fine
