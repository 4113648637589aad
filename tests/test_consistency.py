"""Facts that several places need agree: schema and code, environments and pins."""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib

import pytest
import yaml
from conftest import ROOT, SCHEMA

from weightzoo import families, models, prediction, spectral, stats, training

SCHEMA_DOC = yaml.safe_load(SCHEMA.read_text())
PINS = dict(
    re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", dep).groups()
    for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
)


def test_schema_statistics_are_the_summary_columns_of_the_stats_table():
    listed = SCHEMA_DOC["$defs"]["statistic"]["enum"]
    assert listed == list(stats.CLAIM_STATISTICS)
    assert set(listed) <= set(stats.stats_schema())


def schema_keys(*path: str) -> list[str]:
    """The required keys of one object of the schema, by its path of properties."""
    node = SCHEMA_DOC
    for key in path:
        node = node["properties"][key]
    return sorted(node["required"])


def field_names(cls) -> list[str]:
    return sorted(f.name for f in dataclasses.fields(cls))


# the typed settings: (dataclass, path of its block in the schema and the config)
TYPED = [
    (training.DivergenceRule, ("divergence",)),
    (stats.HistConfig, ("analysis", "hist")),
    (spectral.SpectralConfig, ("analysis", "spectral")),
    (prediction.PredictionConfig, ("analysis", "prediction")),
    (prediction.RidgeConfig, ("analysis", "prediction", "ridge")),
    (prediction.HgbConfig, ("analysis", "prediction", "hgb")),
    (prediction.EarlyConfig, ("analysis", "prediction", "early")),
    (prediction.Headline, ("analysis", "prediction", "headline")),
]


@pytest.mark.parametrize(("cls", "path"), TYPED, ids=lambda v: getattr(v, "__name__", ""))
def test_each_typed_setting_has_the_schema_keys_and_no_defaults(cls, path):
    assert field_names(cls) == schema_keys(*path)
    # the defaults live in config/config.yaml and its schema only
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(cls))


def test_the_training_recipe_has_the_train_block_keys_and_no_defaults():
    assert field_names(training.Recipe) == sorted(SCHEMA_DOC["$defs"]["train"]["required"])
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(training.Recipe))


def test_the_default_config_builds_every_typed_setting(default_config):
    analysis = default_config["analysis"]
    hist = stats.HistConfig.from_config(analysis["hist"])
    assert (hist.range, hist.bins, hist.scaled_range) == ((-1.0, 1.0), 200, (-8.0, 8.0))
    fits = spectral.SpectralConfig.from_config(analysis["spectral"])
    assert fits.keywords() == analysis["spectral"]
    cfg = prediction.PredictionConfig.from_config(analysis["prediction"])
    assert cfg.hgb.max_leaf_nodes == (4, 8) and cfg.headline.predictor == "hgb"
    assert cfg.early.epochs == (1, 2, 5, 10, 20)
    for family in families.FAMILY_CONFIGS:
        recipe = training.Recipe.from_config(default_config["families"][family]["train"])
        assert recipe.epochs == 30 and recipe.init_scale == 1.0
    rule = training.DivergenceRule.from_config(default_config["divergence"])
    assert (rule.max_loss_ratio, rule.patience) == (10.0, 2)


def test_library_defaults_equal_the_config_defaults(default_config):
    """The few defaults outside the config (keyword defaults of the heavy-tail fit, the
    families' settings) are the config's own."""
    fit = inspect.signature(spectral.spectral_table).parameters
    assert {k: fit[k].default for k in default_config["analysis"]["spectral"]} == (
        default_config["analysis"]["spectral"]
    )
    for family, cls in families.FAMILY_CONFIGS.items():
        spec = default_config["families"][family]
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                assert f.default == spec[f.name], (family, f.name)


def test_activations_agree_between_schema_families_and_models():
    assert SCHEMA_DOC["$defs"]["activation"]["enum"] == list(families.ACTIVATIONS)
    assert list(models.ACTIVATIONS) == list(families.ACTIVATIONS)


@pytest.mark.parametrize("family", list(families.FAMILY_CONFIGS))
def test_schema_family_block_lists_the_dataclass_keys(family):
    block = SCHEMA_DOC["properties"]["families"]["properties"][family]
    cls = families.FAMILY_CONFIGS[family]
    grid = block["properties"]["grid"]["items"]
    assert sorted(grid["required"]) == sorted(cls.sweep_keys())
    assert sorted(grid["properties"]) == sorted(cls.sweep_keys())
    # the family's settings: activation in the shared block, the rest in the family's own
    own = set(block["properties"]) - {"grid"}
    assert {"activation", *own} == set(cls.setting_keys())
    assert "activation" in SCHEMA_DOC["$defs"]["family"]["properties"]


@pytest.mark.parametrize("env", sorted((ROOT / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_conda_envs_pin_what_pyproject_pins(env):
    deps = yaml.safe_load(env.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip, env
    for line in pip:
        name, version = line.split("==")
        assert PINS.get(name) == version, f"{env.name}: {line} vs pyproject {PINS.get(name)}"


ARCHS = [
    ("mlp", {"depth": 0, "width": 3}),
    ("mlp", {"depth": 3, "width": 17}),
    ("cnn", {"blocks": 0, "channels": 4}),
    ("cnn", {"blocks": 4, "channels": 5}),
    ("vit", {"patch": 4, "depth": 2, "heads": 2, "embed": 8, "pool": "mean"}),
    ("vit", {"patch": 2, "depth": 1, "heads": 1, "embed": 6, "mlp_ratio": 1.5}),
]


@pytest.mark.parametrize("family,arch", ARCHS)
@pytest.mark.parametrize("in_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_dataclass_counts_the_parameters_of_the_model(family, arch, in_shape):
    spec = families.parse(family, arch)
    model = models.build_model(family, arch, in_shape, 7)
    assert spec.n_params(in_shape, 7) == models.count_params(model)


def test_architecture_ids_come_from_the_tagged_fields():
    assert families.parse("vit", {"patch": 4, "depth": 2, "heads": 4, "embed": 32}).id == (
        "vit-d2-h4-e32-p4"
    )
    assert families.MLPConfig(depth=2, width=50).id == "mlp-d2-w50"
    assert families.CNNConfig.setting_keys() == ("activation",)
