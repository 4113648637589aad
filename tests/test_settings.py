"""Training-setting sweeps: readable, stable ids; grids and random search; validation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import SCHEMA

from weightzoo import settings
from weightzoo.config import ConfigError, all_cells, validate_config
from weightzoo.data import training_subset

MLP_DEFAULTS = {
    "lr": 0.001,
    "weight_decay": 0.0,
    "batch_size": 64,
    "epochs": 30,
    "optimizer": "adam",
    "momentum": 0.9,
    "schedule": "cosine",
    "activation": "relu",
    "init_scale": 1.0,
    "train_fraction": 1.0,
}


@pytest.mark.parametrize(
    "values,expected",
    [
        ({}, "default"),
        ({"lr": 0.001}, "default"),  # the family's own value: not in the id
        ({"lr": 0.03}, "lr3e-2"),
        ({"lr": 0.001, "weight_decay": 1e-4}, "wd1e-4"),
        ({"weight_decay": 1e-4, "lr": 3e-3}, "lr3e-3-wd1e-4"),  # always in SETTING_KEYS order
        ({"lr": 0.5, "init_scale": 2.0}, "lr0.5-init2"),
        ({"activation": "tanh", "train_fraction": 0.25}, "acttanh-tf0.25"),
        ({"optimizer": "sgd", "batch_size": 16}, "bs16-optsgd"),
        ({"lr": 0.0372}, "lr3.72e-2"),
    ],
)
def test_setting_ids_name_the_keys_that_differ_from_the_family_defaults(values, expected):
    assert settings.setting_id({**MLP_DEFAULTS, **values}, MLP_DEFAULTS) == expected


def test_a_grid_entry_is_every_combination_of_its_lists():
    grid = {"depth": [1, 2], "width": 16, "lr": [1e-3, 1e-2], "activation": ["relu", "tanh"]}
    cells = settings.expand(grid, ("depth", "width"), "g")
    assert len(cells) == 2 * 2 * 2
    assert cells[0] == ({"depth": 1, "width": 16}, {"lr": 1e-3, "activation": "relu"})


RANDOM = {
    "sample": 6,
    "seed": 7,
    "depth": [2],
    "width": [32],
    "lr": {"loguniform": [1e-4, 1e-1]},
    "init_scale": {"uniform": [0.5, 2.0]},
    "activation": {"choice": ["relu", "tanh", "gelu"]},
}


def test_random_search_is_reproducible_and_prefix_stable():
    first = settings.expand(RANDOM, ("depth", "width"), "g")
    again = settings.expand(copy.deepcopy(RANDOM), ("depth", "width"), "g")
    more = settings.expand({**RANDOM, "sample": 9}, ("depth", "width"), "g")
    assert first == again and more[:6] == first and len(more) == 9
    other_seed = settings.expand({**RANDOM, "seed": 8}, ("depth", "width"), "g")
    assert other_seed != first
    for _, drawn in first:
        assert 1e-4 <= drawn["lr"] <= 1e-1 and 0.5 <= drawn["init_scale"] <= 2.0
        assert drawn["activation"] in ("relu", "tanh", "gelu")
        assert float(f"{drawn['lr']:.3g}") == drawn["lr"]  # rounded: ids and values agree
    # log-uniform: about as many draws in each decade
    many = settings.expand({**RANDOM, "sample": 300}, ("depth", "width"), "g")
    decades = np.floor(np.log10([s["lr"] for _, s in many]))
    assert set(np.unique(decades, return_counts=True)[1]) <= set(range(70, 131))


def config_with(config: dict, grid: dict, family: str = "mlp") -> dict:
    config["families"][family]["grid"] = [*config["families"][family]["grid"], grid]
    return config


def test_an_lr_sweep_adds_cells_beside_the_default_one(config):
    config_with(config, {"depth": [1], "width": [4], "lr": [1e-4, 1e-3, 1e-2]})
    validate_config(config, SCHEMA)
    cells = all_cells(config)
    swept = sorted(s for a, s in cells if a == "mlp-d1-w4")
    assert swept == ["default", "lr1e-2", "lr1e-4"]  # lr 1e-3 is the family default
    cell = cells["mlp-d1-w4", "lr1e-2"]
    assert cell.train["lr"] == 0.01 and cell.train["epochs"] == 30  # the rest: the family's
    assert cell.values["activation"] == "relu" and cell.arch_params["activation"] == "relu"
    # changing the family default of lr changes the cells that inherit it, not the others
    config["families"]["mlp"]["train"]["lr"] = 0.003
    after = all_cells(config)
    assert after["mlp-d1-w4", "lr1e-2"] == cell
    assert after["mlp-d1-w4", "default"].train["lr"] == 0.003


def test_an_activation_setting_reaches_the_model(config):
    config_with(config, {"depth": [1], "width": [8], "activation": ["tanh"]})
    cell = all_cells(config)["mlp-d1-w8", "acttanh"]
    assert cell.arch_params == {"depth": 1, "width": 8, "activation": "tanh"}


@pytest.mark.parametrize(
    "grid,message",
    [
        ({"depth": 1, "width": 4, "learning_rate": 0.1}, "grid[1].learning_rate: unknown key"),
        ({"depth": 1, "width": 4, "lr": [0.0]}, "grid[1].lr: 0.0 is less than or equal"),
        ({"depth": 1, "width": 4, "batch_size": [0]}, "grid[1].batch_size: 0 is less than"),
        ({"depth": 1, "width": 4, "train_fraction": 1.5}, "grid[1].train_fraction: 1.5 is great"),
        ({"depth": 1, "width": 4, "train_fraction": 0}, "grid[1].train_fraction: 0 is less"),
        ({"depth": 1, "width": 4, "optimizer": "lbfgs"}, "grid[1].optimizer: 'lbfgs' is not one"),
        ({"depth": 1, "width": 4, "sample": 3}, "grid[1].sample: a random search needs a setting"),
        ({"depth": 1, "width": 4, "seed": 3}, "grid[1].seed: a seed belongs to a random search"),
        ({"depth": 1, "width": 4, "lr": [0.01, 0.01]}, "grid[1].lr: 0.01 is listed twice"),
        (
            {"depth": 1, "width": 4, "sample": 4, "activation": {"choice": ["relu", "tanh"]}},
            "grid[1].sample: draw",
        ),
        (
            {"depth": 1, "width": 4, "sample": 2, "lr": {"loguniform": [0.0, 1.0]}},
            "grid[1].lr.loguniform: low must be > 0",
        ),
        (
            {"depth": 1, "width": 4, "sample": 2, "lr": {"normal": [0.0, 1.0]}},
            "grid[1].lr: a distribution is one of",
        ),
        (
            {"depth": 1, "width": 4, "sample": 2, "lr": {"uniform": [1.0, 0.5]}},
            "grid[1].lr.uniform: [1.0, 0.5] is empty",
        ),
    ],
)
def test_bad_settings_are_config_errors_naming_the_key(config, grid, message):
    config["families"]["mlp"]["grid"] = config["families"]["mlp"]["grid"][:1]
    config_with(config, grid)  # the second grid entry: grid[1]
    with pytest.raises(ConfigError) as info:
        validate_config(config, SCHEMA)
    assert f"families.mlp.{message}" in str(info.value)


def test_the_training_subset_is_stratified_seeded_and_the_same_for_every_job():
    y = np.repeat(np.arange(10), [50, 40, 60, 30, 70, 50, 45, 55, 48, 52])
    a = training_subset(y, 0.25)
    assert np.array_equal(a, training_subset(y.copy(), 0.25))  # every job: the same images
    assert np.all(np.diff(a) > 0)  # in the split's own order
    counts = np.bincount(y[a], minlength=10)
    expected = np.bincount(y, minlength=10) * 0.25
    assert np.abs(counts - expected).max() <= 1  # stratified: each class keeps its share
    assert len(a) == round(0.25 * len(y))
    assert np.array_equal(training_subset(y, 1.0), np.arange(len(y)))
