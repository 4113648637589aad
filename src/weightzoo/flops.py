"""Model arithmetic: FLOPs of a forward pass per architecture, and of a whole config's zoo.

Counted from the family dataclasses of weightzoo.families, without torch: a multiply-add is
2 FLOPs, and only the matrix products and convolutions are counted, the way
`torch.utils.flop_counter.FlopCounterMode` counts them:

- MLP: every Linear layer, 2 * in * out.
- CNN: every 3x3 convolution at its map size (same padding), 2 * C_in * C_out * 9 * H * W,
  then the head.
- ViT: the patch embedding, per block the q, k, v and output projections, the two attention
  products q k^T and (softmax) v (2 * N^2 * E each, N tokens of width E), the MLP's two
  layers, then the head.

Left out (each a few per cent at most on these models): bias adds, activations, max-pooling,
layer norms, softmax, residual adds, the position embedding. A training step costs about 3x
the forward pass (forward + backward, the backward computing gradients of both the inputs
and the weights); evaluation is a forward pass.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from weightzoo import config as wz_config
from weightzoo import data
from weightzoo.families import FAMILY_CONFIGS, ArchConfig, CNNConfig, MLPConfig, ViTConfig, parse

TRAIN_FACTOR = 3  # a training step ~ forward + backward ~ 3 forward passes

# (train, test) images of the built-in datasets; the digits' split comes from the config
DATASET_SIZES = {"mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000),
                 "cifar10": (50_000, 10_000)}  # fmt: skip
N_DIGITS = 1797  # scikit-learn's bundled 8x8 digits


def _mlp_terms(arch: MLPConfig, in_shape: tuple[int, int, int], n_classes: int) -> dict[str, int]:
    sizes = arch.sizes(in_shape)
    terms = {f"hidden.{i}": 2 * a * b for i, (a, b) in enumerate(itertools.pairwise(sizes))}
    return terms | {"head": 2 * sizes[-1] * n_classes}


def _cnn_terms(arch: CNNConfig, in_shape: tuple[int, int, int], n_classes: int) -> dict[str, int]:
    pools, head_map = arch.pools(in_shape)
    c, h, w = in_shape
    terms = {}
    for i, pool in enumerate(pools):
        terms[f"blocks.{i}.conv"] = 2 * c * arch.channels * 9 * h * w  # same padding: H x W out
        c = arch.channels
        if pool:
            h, w = h // 2, w // 2
    return terms | {"head": 2 * math.prod(head_map) * n_classes}


def _vit_terms(arch: ViTConfig, in_shape: tuple[int, int, int], n_classes: int) -> dict[str, int]:
    e, n = arch.embed, arch.n_tokens(in_shape)
    n_patches = (in_shape[1] // arch.patch) * (in_shape[2] // arch.patch)
    terms = {"patch_embed": 2 * n_patches * in_shape[0] * arch.patch**2 * e}
    for i in range(arch.depth):
        terms[f"blocks.{i}.qkv"] = 3 * 2 * n * e * e
        terms[f"blocks.{i}.attention"] = 2 * (2 * n * n * e)  # q k^T and weights @ v
        terms[f"blocks.{i}.proj"] = 2 * n * e * e
        terms[f"blocks.{i}.mlp"] = 2 * (2 * n * e * arch.hidden)
    return terms | {"head": 2 * e * n_classes}


TERMS: dict[type[ArchConfig], Callable[..., dict[str, int]]] = {
    MLPConfig: _mlp_terms,
    CNNConfig: _cnn_terms,
    ViTConfig: _vit_terms,
}


def forward_terms(arch: ArchConfig, in_shape: tuple[int, int, int], n_classes: int) -> dict:
    """FLOPs of one image's forward pass, per layer (the ViT's per kind of product)."""
    arch.check_input(in_shape)
    return TERMS[type(arch)](arch, tuple(in_shape), n_classes)


def forward_flops(arch: ArchConfig, in_shape: tuple[int, int, int], n_classes: int) -> int:
    """FLOPs of one image's forward pass."""
    return sum(forward_terms(arch, in_shape, n_classes).values())


@dataclass(frozen=True)
class CellFlops:
    """The model arithmetic of one cell (an architecture on a dataset), all its seeds."""

    dataset: str
    family: str
    arch: str
    n_params: int
    forward: int  # FLOPs per image
    n_train: int
    n_test: int
    epochs: int
    seeds: int

    @property
    def train(self) -> int:
        """Every training step of every seed: epochs x n_train images x 3 forward passes."""
        return self.seeds * self.epochs * self.n_train * TRAIN_FACTOR * self.forward

    @property
    def evaluation(self) -> int:
        """The evaluations a run makes: the test split before training and after every
        epoch, the training split before and after training."""
        images = (self.epochs + 1) * self.n_test + 2 * self.n_train
        return self.seeds * images * self.forward

    @property
    def total(self) -> int:
        return self.train + self.evaluation


@dataclass(frozen=True)
class StudyFlops:
    """The model arithmetic of a config's whole zoo, one entry per cell."""

    cells: list[CellFlops]

    @property
    def total(self) -> int:
        return sum(c.total for c in self.cells)

    def by(self, *keys: str) -> dict[tuple, int]:
        """Total FLOPs grouped by cell fields, e.g. by("dataset", "family")."""
        out: dict[tuple, int] = {}
        for c in self.cells:
            key = tuple(getattr(c, k) for k in keys)
            out[key] = out.get(key, 0) + c.total
        return out


def dataset_counts(config: dict, dataset: str) -> tuple[int, int, int]:
    """(train images, test images, classes) of a dataset, known without preparing it."""
    if dataset in DATASET_SIZES:
        return (*DATASET_SIZES[dataset], data.N_CLASSES)
    if dataset == "digits":  # train_test_split's rule: ceil(fraction * n) test images
        n_test = math.ceil(config["data"]["digits"]["test_fraction"] * N_DIGITS)
        return N_DIGITS - n_test, n_test, data.N_CLASSES
    import numpy as np

    with np.load(Path(config["data"]["user"][dataset])) as z:  # the labels only
        y_train, y_test = z["y_train"], z["y_test"]
    return len(y_train), len(y_test), int(max(y_train.max(), y_test.max())) + 1


def study_flops(config: dict) -> StudyFlops:
    """The model arithmetic of every dataset x architecture x seed of a (merged) config."""
    cells = []
    for dataset in config["datasets"]:
        in_shape = wz_config.image_shape(config, dataset)
        n_train, n_test, n_classes = dataset_counts(config, dataset)
        for family in FAMILY_CONFIGS:
            for arch in wz_config.architectures(config, family):
                spec = parse(family, arch.params)
                cells.append(
                    CellFlops(
                        dataset=dataset,
                        family=family,
                        arch=arch.id,
                        n_params=spec.n_params(in_shape, n_classes),
                        forward=forward_flops(spec, in_shape, n_classes),
                        n_train=n_train,
                        n_test=n_test,
                        epochs=config["families"][family]["train"]["epochs"],
                        seeds=config["seeds"]["count"],
                    )
                )
    return StudyFlops(cells)
