"""Facts that several places need agree: schema and code, environments and pins."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from conftest import ROOT, SCHEMA

from weightzoo import families, models, stats

SCHEMA_DOC = yaml.safe_load(SCHEMA.read_text())
PINS = dict(
    re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", dep).groups()
    for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
)


def test_schema_statistics_are_the_summary_columns_of_the_stats_table():
    listed = SCHEMA_DOC["$defs"]["statistic"]["enum"]
    assert listed == list(stats.CLAIM_STATISTICS)
    assert set(listed) <= set(stats.stats_schema())


def test_spectral_defaults_are_the_config_defaults(default_config):
    assert default_config["analysis"]["spectral"] == stats.SPECTRAL_DEFAULTS
    assert tuple(default_config["analysis"]["hist"]["scaled_range"]) == stats.SCALED_RANGE


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
