"""Config validation names the key at fault; sweeps expand into readable architecture ids."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SCHEMA

from weightzoo.config import (
    ConfigError,
    all_architectures,
    architectures,
    dump_epochs,
    seed_blocks,
    validate_config,
)


def test_default_config_is_valid(config):
    assert validate_config(config, SCHEMA) is config


def errors_for(config) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, SCHEMA)
    return str(info.value)


def test_unknown_key_is_named(config):
    config["families"]["mlp"]["train"]["epoch"] = 3
    assert errors_for(config).startswith("families.mlp.train.epoch: unknown key")


def test_unknown_top_level_key_is_named(config):
    config["seed"] = 1
    assert errors_for(config).startswith("seed: unknown key")


def test_wrong_type_is_named(config):
    config["families"]["cnn"]["train"]["lr"] = "fast"
    assert errors_for(config).startswith("families.cnn.train.lr:")


@pytest.mark.parametrize("epochs", [0, -3])
def test_non_positive_epochs_are_rejected(config, epochs):
    config["families"]["vit"]["train"]["epochs"] = epochs
    assert errors_for(config).startswith("families.vit.train.epochs:")


def test_zero_width_is_rejected(config):
    config["families"]["mlp"]["grid"][0]["width"] = [0, 4]
    assert errors_for(config).startswith("families.mlp.grid[0].width[0]:")


def test_unknown_dataset_is_named(config):
    config["datasets"] = ["digits", "imagenet"]
    message = errors_for(config)
    assert message.startswith("datasets[1]: unknown dataset 'imagenet'")


def test_heads_not_dividing_embed_is_rejected(config):
    config["families"]["vit"]["grid"] = [{"patch": 2, "depth": 1, "heads": [2, 3], "embed": 8}]
    assert errors_for(config) == "families.vit.grid[0]: heads=3 does not divide embed=8"


def test_patch_not_dividing_image_is_rejected(config):
    config["families"]["vit"]["grid"] = [{"patch": 3, "depth": 1, "heads": 2, "embed": 8}]
    message = errors_for(config)
    assert message == "families.vit.grid[0]: patch=3 does not divide the 8x8 images of digits"


def test_patch_is_checked_against_every_dataset(config):
    # a patch of 8 divides digits' 8x8 and CIFAR's 32x32 but not MNIST's 28x28
    config["datasets"] = ["digits", "cifar10", "mnist"]
    config["data"]["download"] = True
    config["families"]["vit"]["grid"] = [{"patch": 8, "depth": 1, "heads": 2, "embed": 8}]
    assert "28x28 images of mnist" in errors_for(config)


def test_disabled_family_is_not_checked(config):
    config["families"]["vit"]["enabled"] = False
    config["families"]["vit"]["grid"] = [{"patch": 3, "depth": 1, "heads": 2, "embed": 8}]
    validate_config(config, SCHEMA)
    assert architectures(config, "vit") == []


def test_all_families_disabled_is_rejected(config):
    for spec in config["families"].values():
        spec["enabled"] = False
    assert errors_for(config).startswith("families: every family is disabled")


def test_missing_prestaged_files_are_named_when_download_is_off(config, tmp_path):
    config["datasets"] = ["mnist"]
    config["data"]["download"] = False
    config["data"]["root"] = str(tmp_path)
    message = errors_for(config)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "mnist") in message


def test_user_dataset_missing_file_is_named(config, tmp_path):
    config["data"]["user"] = {"blobs": str(tmp_path / "nope.npz")}
    config["datasets"] = ["blobs"]
    assert errors_for(config).startswith("data.user.blobs: file not found")


def test_user_dataset_cannot_shadow_a_builtin(config, tmp_path):
    config["data"]["user"] = {"mnist": str(tmp_path / "x.npz")}
    assert errors_for(config).startswith("data.user.mnist:")


def test_user_dataset_image_size_is_checked_against_patch(config, tmp_path):
    path = tmp_path / "blobs.npz"
    x = np.zeros((4, 10, 10, 3), np.uint8)
    y = np.array([0, 1, 0, 1])
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    config["data"]["user"] = {"blobs": str(path)}
    config["datasets"] = ["blobs"]
    config["families"]["vit"]["grid"] = [{"patch": 4, "depth": 1, "heads": 2, "embed": 8}]
    assert "patch=4 does not divide the 10x10 images of blobs" in errors_for(config)


def test_architecture_ids_are_readable_and_complete(config):
    archs = all_architectures(config)
    # mlp: 2 depths x 7 widths, cnn: 3 x 5, vit: 4 + 4 embed/heads points
    assert len(archs) == 14 + 15 + 8
    assert archs["mlp-d2-w16"].params == {"depth": 2, "width": 16, "activation": "relu"}
    assert archs["cnn-b3-c16"].params == {"blocks": 3, "channels": 16, "activation": "relu"}
    vit = archs["vit-d1-h4-e32-p2"].params
    assert vit == {
        "patch": 2,
        "depth": 1,
        "heads": 4,
        "embed": 32,
        "activation": "gelu",
        "mlp_ratio": 2.0,
        "pool": "cls",
    }


def test_duplicate_grid_points_give_one_architecture(config):
    config["families"]["mlp"]["grid"] = [{"depth": 1, "width": [4, 8]}, {"depth": [1], "width": 8}]
    assert [a.id for a in architectures(config, "mlp")] == ["mlp-d1-w4", "mlp-d1-w8"]


def test_seed_blocks_are_aligned_on_start(config):
    config["seeds"] = {"start": 10, "count": 7}
    config["seeds_per_job"] = 3
    assert seed_blocks(config) == {"10-12": [10, 11, 12], "13-15": [13, 14, 15], "16-16": [16]}
    config["seeds_per_job"] = 1
    assert list(seed_blocks(config))[:2] == ["10-10", "11-11"]


def test_dump_epochs_always_hold_init_and_final(config):
    config["dump_epochs"] = [1, 5, 50]
    assert dump_epochs(config, 10) == [0, 1, 5, 10]
    assert dump_epochs(config, 1) == [0, 1]


def test_user_dataset_with_bad_images_is_named_at_validation(config, tmp_path):
    path = tmp_path / "flat.npz"
    y = np.array([0, 1])
    np.savez(path, x_train=np.zeros((2, 64), np.float32), y_train=y, x_test=y, y_test=y)
    config["data"]["user"] = {"flat": str(path)}
    config["datasets"] = ["flat"]
    message = errors_for(config)
    assert message.startswith("data.user.flat: ") and "x_train" in message


def test_empty_histogram_range_is_rejected(config):
    config["analysis"]["hist"]["range"] = [1.0, -1.0]
    assert errors_for(config).startswith("analysis.hist.range:")


def test_group_bands_must_not_overlap(config):
    config["analysis"]["groups"] |= {"optimal_within": 0.2, "suboptimal_below": 0.1}
    assert errors_for(config).startswith("analysis.groups: suboptimal_below must be at least")


def test_chance_margin_has_no_default_outside_the_config(config):
    del config["analysis"]["groups"]["chance_margin"]
    assert "chance_margin" in errors_for(config)
