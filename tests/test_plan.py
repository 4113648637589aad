"""The plan of a config: jobs, networks and the disk its dumps will take, before any run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SCHEMA

from weightzoo import families, models, plan
from weightzoo.config import load_config, validate_config


def small_config(config: dict) -> dict:
    """Two MLPs and one CNN on MNIST, 4 seeds in blocks of 2, 3 epochs, dumps at 0, 1, 3."""
    config["datasets"] = ["mnist"]
    config["seeds"] = {"start": 0, "count": 4}
    config["seeds_per_job"] = 2
    config["dump_epochs"] = [1]
    config["families"]["mlp"]["grid"] = [{"depth": [1], "width": [10, 100]}]
    config["families"]["cnn"]["grid"] = [{"blocks": [1], "channels": [4]}]
    config["families"]["vit"]["enabled"] = False
    for family in ("mlp", "cnn"):
        config["families"][family]["train"]["epochs"] = 3
    return config


def test_strata_count_jobs_networks_and_dumped_values_by_hand(config):
    mlp, cnn = plan.strata(small_config(config))
    # MLP 784-10-10: 784*10+10 + 10*10+10 = 7,960 parameters
    # MLP 784-100-10: 784*100+100 + 100*10+10 = 79,510
    assert (mlp.dataset, mlp.family, mlp.cells, mlp.networks) == ("mnist", "mlp", 2, 8)
    assert mlp.training_jobs == 4  # 2 cells x 2 blocks of seeds
    assert mlp.dumps == 2 * 4 * 3  # cells x seeds x epochs {0, 1, 3}
    assert mlp.values == (7_960 + 79_510) * 4 * 3
    assert mlp.weights_bytes == mlp.values * 4
    # CNN b1-c4 on 28x28: conv 1*4*9+4 = 40, pooled to 4x14x14 -> head 784*10+10 = 7,850
    assert cnn.values == (40 + 7_850) * 4 * 3
    assert cnn.training_jobs == 2


def test_a_rounded_dump_dtype_halves_the_weights_volume(config):
    config = small_config(config)
    full = plan.strata(config)
    config["dump"]["dtype"] = "bfloat16"
    half = plan.strata(config)
    assert [h.weights_bytes * 2 for h in half] == [f.weights_bytes for f in full]


def test_packed_jobs_are_counted_as_packs(config):
    config = small_config(config)
    config["pack"]["jobs_per_family"] = 1
    assert [s.training_jobs for s in plan.strata(config)] == [1, 1]


@pytest.mark.parametrize(
    "family,arch",
    [("mlp", {"depth": 0, "width": 3}), ("mlp", {"depth": 3, "width": 5}),
     ("cnn", {"blocks": 2, "channels": 3}),
     ("vit", {"patch": 4, "depth": 2, "heads": 2, "embed": 8}),
     ("vit", {"patch": 4, "depth": 1, "heads": 2, "embed": 8, "pool": "mean"})],
)  # fmt: skip
def test_tensor_count_is_the_models_state_dict(family, arch):
    model = models.build_model(family, arch, (1, 28, 28), 10)
    assert plan.n_tensors(families.parse(family, arch)) == len(model.state_dict())


def test_paper_config_plans_648_training_jobs_and_6480_networks():
    config = validate_config(
        load_config(ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml"), SCHEMA
    )
    rows = plan.strata(config)
    assert sum(r.training_jobs for r in rows) == 648
    assert sum(r.networks for r in rows) == 6_480
    # the 4 x 1000 MLP: 784*1000+1000 + 3*(1000*1000+1000) + 1000*10+10 = 3,798,010 values,
    # 15.2 MB a dump in float32 (the "15 MB a dump")
    assert families.parse("mlp", {"depth": 4, "width": 1000}).n_params((1, 28, 28), 10) == 3_798_010


def test_plan_command_prints_the_volume_by_dataset_and_family(tmp_path):
    extra = tmp_path / "small.yaml"
    extra.write_text(
        "datasets: [mnist]\nseeds: {start: 0, count: 2}\nseeds_per_job: 2\n"
        "families: {cnn: {enabled: false}, vit: {enabled: false},\n"
        "           mlp: {grid: [{depth: [1], width: [10]}], train: {epochs: 2}}}\n"
    )
    script = Path(sys.executable).parent / "weightzoo"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "weightzoo.cli"]
    proc = subprocess.run([*cmd, "plan", "--configfile", str(extra)], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # 1 cell x 2 seeds, dumps at epochs 0, 1, 2: 6 dumps of 7,960 values in float32
    assert "| mnist | mlp | 1 | 2 | 1 | 6 | 186.6 KiB |" in proc.stdout
    assert "1 training jobs and as many statistics jobs; 2 networks" in proc.stdout
