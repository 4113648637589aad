"""`weightzoo plan`: jobs, networks, dump volume and scheduler requests from the config."""

from __future__ import annotations

import copy
import json

import polars as pl
import yaml
from conftest import ROOT

from weightzoo import cli, planning
from weightzoo.config import all_cells, cell_params, load_config, merge

DEFAULT = ROOT / "config" / "config.yaml"
PAPER = ROOT / "config" / "paper.yaml"
ONE_MLP = {
    "datasets": ["digits"],
    "seeds": {"start": 0, "count": 2},
    "seeds_per_job": 2,
    "dump_epochs": [1],
    "families": {
        "mlp": {"grid": [{"depth": [1], "width": [16]}], "train": {"epochs": 3}},
        "cnn": {"enabled": False},
        "vit": {"enabled": False},
    },
}


def test_dump_volume_is_parameters_x_dumps_x_seeds_x_4_bytes(default_config):
    config = merge(default_config, ONE_MLP)
    # mlp-d1-w16 on 8x8 digits: 64*16 + 16 + 16*10 + 10 = 1,210 parameters; dumps at
    # epochs 0, 1 and 3 (the last); 2 seeds; 4 bytes per float32
    assert planning.weight_dump_bytes(config) == 1210 * 3 * 2 * 4 == 29_040
    # metrics: 2 seeds x 4 epochs (0..3) x 6 numbers of 8 bytes
    assert planning.metrics_bytes(config) == 2 * 4 * 6 * 8


def test_one_cell_plans_its_jobs_and_networks(default_config):
    plan = planning.make_plan(merge(default_config, ONE_MLP))
    assert plan.networks == 2 and plan.train_jobs_per_family == {"mlp": 1}
    assert plan.jobs["train"] == plan.jobs["weight_stats"] == 1
    assert plan.jobs["prepare_dataset"] == 1 and "download_dataset" not in plan.jobs


def test_statistics_per_pack_plan_one_statistics_job_per_training_pack():
    # the paper's zoo: 648 blocks of each family spread over 4 training jobs per family
    config = load_config(DEFAULT, PAPER)
    config["pack"] = {"jobs_per_family": 4, "stats": False}
    assert planning.job_counts(config)["weight_stats"] == 648  # one per block
    config["pack"]["stats"] = True
    counts = planning.job_counts(config)
    assert counts["train"] == counts["weight_stats"] == 3 * 3 * 4  # datasets x families x 4


def paper_profile(tmp_path, account="myproj", partition="gpu"):
    text = (ROOT / "profiles/slurm/config.yaml").read_text()
    text = text.replace("CHANGE_ME_account", account).replace("CHANGE_ME_partition", partition)
    (tmp_path / "config.yaml").write_text(text)
    return tmp_path


def mlp_params(depth: int, width: int, inputs: int = 28 * 28, classes: int = 10) -> int:
    """Weights and biases of an MLP by hand: input layer, depth-1 hidden layers, head."""
    return inputs * width + width + (depth - 1) * (width * width + width) + width * 10 + classes


def test_paper_plan_prints_gpu_hours_and_dump_volume(tmp_path, capsys):
    profile = paper_profile(tmp_path)
    assert cli.main(["plan", "--configfile", str(PAPER), "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    # 648 training jobs: 360 MLP, 216 CNN, 72 ViT (3 datasets x cells x 3 blocks of 10 seeds)
    assert "training jobs by family: mlp 360, cnn 216, vit 72" in out
    assert "networks: 6480" in out
    # groups of 5 (train + weight_stats of 15 min), 1 GPU each, time = sum of the members':
    # mlp 72 x 5 x (120 + 15) min, cnn 43 x 5 x 195 + 1 x 195, vit 14 x 5 x 255 + 2 x 255
    assert "72 x mlp (5 jobs): gpus=1 cpus=4 mem=8000 MB time=11 h 15 min" in out
    assert "14 x vit (5 jobs): gpus=1 cpus=4 mem=8000 MB time=21 h 15 min" in out
    hours = (72 * 5 * 135 + 43 * 5 * 195 + 195 + 14 * 5 * 255 + 2 * 255) / 60
    assert hours == 1818.0 and "GPU-hours requested: 1,818.0" in out
    # the dump volume, checked for the MLPs by hand: 7 dumps (epochs 0, 1, 2, 5, 10, 20, 30)
    # of 30 seeds on MNIST and Fashion-MNIST (28x28) and CIFAR-10 (3x32x32)
    config = load_config(DEFAULT, PAPER)
    mlp = sum(v.weight_bytes for v in planning.cell_volumes(config) if v.family == "mlp")
    widths, depths = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], [1, 2, 3, 4]
    by_hand = sum(
        (2 * mlp_params(d, w) + mlp_params(d, w, inputs=3 * 32 * 32)) * 7 * 30 * 4
        for d in depths
        for w in widths
    )
    assert mlp == by_hand
    total = planning.weight_dump_bytes(config)
    assert f"weight dumps: {planning.size(total)}" in out and total > mlp


def test_placeholder_slurm_account_stops_the_plan_with_one_line(capsys):
    code = cli.main(["plan", "--configfile", str(PAPER), "--profile", str(ROOT / "profiles/slurm")])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if not line.startswith("weightzoo: warning")]
    assert code == 1 and len(errors) == 1
    assert (
        "default-resources.slurm_account is still the placeholder 'CHANGE_ME_account'" in errors[0]
    )


def test_placeholder_partition_alone_also_stops_it(tmp_path, capsys):
    profile = paper_profile(tmp_path, partition="CHANGE_ME_partition")
    assert cli.main(["plan", "--configfile", str(PAPER), "--profile", str(profile)]) == 1
    assert "slurm_partition is still the placeholder" in capsys.readouterr().err


def test_restating_one_grid_entry_warns_that_the_others_are_dropped(tmp_path, default_config):
    first = default_config["families"]["mlp"]["grid"][0]
    override = tmp_path / "one.yaml"
    override.write_text(yaml.safe_dump({"families": {"mlp": {"grid": [first]}}}))
    lines = planning.merge_warnings(DEFAULT, [override])
    # the default's MLP grid: 14 architectures and a 6-rate sweep of mlp-d2-w16 whose
    # 1e-3 cell is the default one: 19 cells; the first entry alone: 14
    assert lines == [
        f"{override} replaces families.mlp.grid: 1 grid entry (14 cells) instead of 2 "
        "(19 cells), 1 of them kept; lists are replaced whole, not merged: restate an entry "
        "to keep it (docs/cli.md)"
    ]


def test_restating_every_entry_or_a_longer_list_does_not_warn(tmp_path, default_config):
    grid = default_config["families"]["mlp"]["grid"]
    same = tmp_path / "same.yaml"
    same.write_text(
        yaml.safe_dump({"families": {"mlp": {"grid": [*grid, {"depth": [3], "width": [8]}]}}})
    )
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"families": {"cnn": {"train": {"lr": 0.01}}}}))
    assert planning.merge_warnings(DEFAULT, [same, other]) == []


def test_plan_diff_names_jobs_added_removed_and_retrained(tmp_path, default_config):
    config = merge(default_config, {**ONE_MLP, "seeds": {"start": 0, "count": 4}})
    results = tmp_path / "results"
    cell = all_cells(config)["mlp-d1-w16", "default"]
    recorded = {**cell_params(config, cell), "dataset": "digits"}
    changed = {**recorded, "train": {**recorded["train"], "lr": 0.1}}
    for name, slice_ in (
        ("arch=mlp-d1-w4/setting=default/seeds-0-1", recorded),  # a cell no longer planned
        ("arch=mlp-d1-w16/setting=default/seeds-0-1", recorded),  # as planned
        ("arch=mlp-d1-w16/setting=default/seeds-2-3", changed),  # trained at another lr
    ):
        for kind in ("weights", "runs"):
            path = results / kind / f"dataset=digits/{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pl.DataFrame({"seed": [0], "config": [json.dumps(slice_)]}).write_parquet(path)
    assert planning.plan_diff(config, results) == {
        "added": [],
        "removed": ["dataset=digits/arch=mlp-d1-w4/setting=default/seeds-0-1.parquet"],
        "retrained": ["dataset=digits/arch=mlp-d1-w16/setting=default/seeds-2-3.parquet"],
    }
    (results / "weights/dataset=digits/arch=mlp-d1-w16/setting=default/seeds-0-1.parquet").unlink()
    added = planning.plan_diff(config, results)["added"]
    assert added == ["dataset=digits/arch=mlp-d1-w16/setting=default/seeds-0-1.parquet"]


def test_the_console_script_points_at_the_cli():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["weightzoo"].partition(":")
    assert (module, name) == ("weightzoo.cli", "main") and callable(cli.main)


def test_without_a_profile_each_training_job_asks_what_its_family_config_says():
    plan = planning.make_plan(load_config(DEFAULT, PAPER))
    # 360 MLP jobs of 120 min, 216 CNN jobs of 180 min, 72 ViT jobs of 240 min, 1 GPU each
    assert len(plan.requests) == 648
    assert plan.gpu_hours == 360 * 2 + 216 * 3 + 72 * 4 == 1656


def test_a_zoo_of_more_than_ten_thousand_single_jobs_is_told_to_pack(default_config):
    config = copy.deepcopy(default_config)
    config |= {"datasets": ["digits"], "seeds": {"start": 0, "count": 2}, "seeds_per_job": 2}
    mlp = config["families"]["mlp"]
    for family in ("cnn", "vit"):
        config["families"][family]["enabled"] = False
    # depths 1-4 x widths 1..2,500: 10,000 cells, one block each: no line
    mlp["grid"] = [{"depth": [1, 2, 3, 4], "width": list(range(1, 2_501))}]
    assert planning.pack_hint(config) is None
    mlp["grid"][0]["width"].append(2_501)  # 10,004 blocks
    line = planning.pack_hint(config)
    assert line.startswith("weightzoo: 10,004 training jobs and as many statistics jobs")
    assert "pack: {jobs_per_family: 8, stats: true}" in line
    config["seeds_per_job"] = 1  # two blocks per cell
    assert "20,008 training jobs" in planning.pack_hint(config)
    config["pack"] = {"jobs_per_family": 8, "stats": False}
    assert planning.pack_hint(config) is None
