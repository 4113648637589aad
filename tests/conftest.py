"""Shared fixtures: the repository root, the default config and a prepared digits dataset."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from weightzoo import data

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"
# The official dataset files, byte for byte, where a development machine or CI has them: a
# folder laid out as a local mirror (<folder>/mnist/train-images-idx3-ubyte.gz, ...).
DATASETS_ENV = "WEIGHTZOO_DATASETS"
SHARED_DATASETS = Path(os.environ.get(DATASETS_ENV) or ROOT.parent / "shared" / "datasets")


def official_files(dataset: str) -> Path:
    """The folder of the official `dataset` files, or skip the test saying where it looked."""
    folder = SHARED_DATASETS / dataset
    if not folder.is_dir():
        pytest.skip(
            f"the official {dataset} files are not at {folder} (a fresh clone has none: set "
            f"{DATASETS_ENV} to a folder holding {dataset}/ to run this test)"
        )
    return folder


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
