"""Model arithmetic: forward FLOPs counted by hand, against torch's FLOP counter on the real
models, and a whole config's zoo."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import ROOT
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from weightzoo import config, data, flops, training
from weightzoo.families import parse
from weightzoo.models import build_model


def test_mlp_counts_two_flops_per_weight_of_every_layer():
    # 784 -> 50 -> 50 -> 10: 2 * (784 * 50 + 50 * 50 + 50 * 10) = 84,400
    arch = parse("mlp", {"depth": 2, "width": 50})
    assert flops.forward_terms(arch, (1, 28, 28), 10) == {
        "hidden.0": 78_400,
        "hidden.1": 5_000,
        "head": 1_000,
    }
    assert flops.forward_flops(parse("mlp", {"depth": 0, "width": 7}), (1, 8, 8), 10) == 1_280


def test_cnn_counts_each_convolution_at_its_map_size():
    # 28x28 -> conv 1->4 at 28x28, pool -> 14x14, conv 4->4 at 14x14, pool -> 7x7, head 196 -> 10
    arch = parse("cnn", {"blocks": 2, "channels": 4})
    assert flops.forward_terms(arch, (1, 28, 28), 10) == {
        "blocks.0.conv": 2 * 1 * 4 * 9 * 28 * 28,  # 56,448
        "blocks.1.conv": 2 * 4 * 4 * 9 * 14 * 14,  # 56,448
        "head": 2 * 4 * 7 * 7 * 10,  # 3,920
    }
    # on 8x8 digits the map stops pooling at 1x1: 8 -> 4 -> 2 -> 1 -> 1
    deep = flops.forward_terms(parse("cnn", {"blocks": 5, "channels": 2}), (1, 8, 8), 10)
    assert [deep[f"blocks.{i}.conv"] for i in range(5)] == [
        2 * 2 * 9 * 64,
        2 * 4 * 9 * 16,
        2 * 4 * 9 * 4,
        2 * 4 * 9,
        2 * 4 * 9,
    ]
    assert deep["head"] == 2 * 2 * 10


def test_vit_counts_embedding_projections_attention_mlp_and_head():
    # 28x28, patch 4: 49 patches + a class token = 50 tokens of width 16, MLP 32 wide
    arch = parse("vit", {"patch": 4, "depth": 1, "heads": 4, "embed": 16})
    n, e = 50, 16
    assert flops.forward_terms(arch, (1, 28, 28), 10) == {
        "patch_embed": 2 * 49 * 16 * e,  # each patch: 16 pixels -> 16
        "blocks.0.qkv": 3 * 2 * n * e * e,
        "blocks.0.attention": 2 * 2 * n * n * e,  # q k^T and weights @ v, over all heads
        "blocks.0.proj": 2 * n * e * e,
        "blocks.0.mlp": 2 * 2 * n * e * 32,
        "head": 2 * e * 10,
    }
    mean = parse("vit", {"patch": 4, "depth": 1, "heads": 4, "embed": 16, "pool": "mean"})
    assert flops.forward_terms(mean, (1, 28, 28), 10)["blocks.0.attention"] == 4 * 49 * 49 * e


ARCHS = [
    ("mlp", {"depth": 3, "width": 40}, (1, 28, 28)),
    ("cnn", {"blocks": 4, "channels": 8}, (3, 32, 32)),
    ("cnn", {"blocks": 3, "channels": 5}, (1, 28, 28)),
    ("vit", {"patch": 4, "depth": 2, "heads": 4, "embed": 16}, (1, 28, 28)),
    ("vit", {"patch": 8, "depth": 2, "heads": 2, "embed": 12, "pool": "mean"}, (3, 32, 32)),
]


@pytest.mark.parametrize("family,arch,shape", ARCHS)
def test_counts_match_torchs_flop_counter_on_the_real_models(family, arch, shape, default_config):
    """Tolerance: none. Both count 2 FLOPs per multiply-add of the matrix products and
    convolutions only (the math attention kernel, so that its two products are visible)."""
    expected = flops.forward_flops(parse(family, arch), shape, 10)
    model = build_model(family, arch, shape, 10)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as plain:
        model(torch.randn(5, *shape))
    assert plain.get_total_flops() == 5 * expected
    # the seed-stacked forward of a training job does K times the work of one model
    block = training.Block(
        parse(family, arch),
        training.Recipe.from_config(default_config["families"][family]["train"]),
        seeds=(0, 1, 2),
        dump_epochs=(),
        divergence=training.DivergenceRule.from_config(default_config["divergence"]),
    )
    stacked = training.seed_models(block, shape, 10, torch.device("cpu"))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        stacked(torch.randn(3, 5, *shape))
    assert counter.get_total_flops() == 3 * 5 * expected


def test_a_cell_counts_every_step_and_evaluation_of_every_seed():
    cell = flops.CellFlops(
        "mnist",
        "mlp",
        "a",
        n_params=1,
        forward=100,
        n_train=60_000,
        n_test=10_000,
        epochs=30,
        seeds=3,
    )
    assert cell.train == 3 * 30 * 60_000 * 3 * 100
    # test split before training and after each of 30 epochs, training split before and after
    assert cell.evaluation == 3 * (31 * 10_000 + 2 * 60_000) * 100
    assert cell.total == cell.train + cell.evaluation


def test_digits_sizes_are_those_of_the_prepared_split(default_config):
    prepared = data.prepare_digits(test_fraction=0.25, split_seed=0)
    assert flops.dataset_counts(default_config, "digits") == (
        len(prepared.y_train),
        len(prepared.y_test),
        10,
    )


def test_paper_config_zoo_arithmetic():
    paper = config.load_config(ROOT / "config/config.yaml", ROOT / "config/paper.yaml")
    study = flops.study_flops(paper)
    assert len(study.cells) == 3 * (40 + 24 + 8) and {c.seeds for c in study.cells} == {30}
    by_dataset = {c.dataset: c.n_train for c in study.cells}
    assert by_dataset == {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
    assert sum(study.by("family").values()) == study.total
    # the largest MLP on CIFAR-10: 3072 -> 1000 x 4 -> 10, 30 epochs, 30 seeds
    big = next(c for c in study.cells if c.dataset == "cifar10" and c.arch == "mlp-d4-w1000")
    assert big.forward == 2 * (3072 * 1000 + 3 * 1000 * 1000 + 1000 * 10)
    assert big.total == 30 * (30 * 50_000 * 3 + 31 * 10_000 + 2 * 50_000) * big.forward
    # about 6.2e16 FLOPs; the ViTs (50 epochs) are half of it
    assert math.isclose(study.total, 6.184e16, rel_tol=1e-3)
    assert 0.45 < study.by("family")[("vit",)] / study.total < 0.5
