"""Shared fixtures: the repository root, the default config and a prepared digits dataset."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from weightzoo import data

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


@pytest.fixture(scope="session")
def default_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture
def config(default_config) -> dict:
    """A fresh, mutable copy of config/config.yaml."""
    return copy.deepcopy(default_config)


@pytest.fixture(scope="session")
def digits() -> data.Prepared:
    return data.prepare_digits(test_fraction=0.25, split_seed=0)


@pytest.fixture(scope="session")
def digits_file(tmp_path_factory, digits) -> Path:
    """The prepared digits dataset on disk, as training jobs read it."""
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    data.save_prepared(digits, path)
    return path
