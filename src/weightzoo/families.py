"""The architecture of each model family as one frozen dataclass, like nanoGPT's GPTConfig.

A family's dataclass is the one source of its architecture: its fields are the keyword
arguments of the model class in weightzoo.models; fields made with `sweep()` are the sweep
keys, whose one-letter tags make the readable id (mlp-d2-w50, cnn-b3-c16,
vit-d2-h4-e32-p4); the other fields are family settings (activation, ...). Every check of an
architecture lives in `__post_init__` (and `check_input` for the input image), and
`n_params` counts the learnable parameters without building the model. No torch here: the
config uses these classes while Snakemake plans the workflow.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

# the activation functions a model can use (weightzoo.models maps each to its nn.Module)
ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid", "silu", "leaky_relu")


def sweep(tag: str, minimum: int = 1) -> Any:
    """A sweep key of an architecture: an integer >= `minimum`, tagged in the id."""
    return field(metadata={"tag": tag, "minimum": minimum})


def check_int(name: str, value: Any, minimum: int) -> None:
    """`value` must be an integer (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_in_shape(in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) with positive sizes."""
    shape = tuple(int(s) for s in in_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"in_shape must be (C, H, W) with positive sizes, got {in_shape!r}")
    return shape  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class ArchConfig:
    """What every family shares: an activation; subclasses add sweep keys and settings."""

    family: ClassVar[str]
    activation: str = "relu"

    def __post_init__(self) -> None:
        for f in self.sweep_fields():
            check_int(f.name, getattr(self, f.name), f.metadata["minimum"])
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}"
            )

    @classmethod
    def sweep_fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if "tag" in f.metadata]

    @classmethod
    def sweep_keys(cls) -> tuple[str, ...]:
        """The keys of a sweep grid point, in id order."""
        return tuple(f.name for f in cls.sweep_fields())

    @classmethod
    def setting_keys(cls) -> tuple[str, ...]:
        """Family-level settings that complete an architecture but are not in its id."""
        return tuple(f.name for f in dataclasses.fields(cls) if "tag" not in f.metadata)

    @property
    def id(self) -> str:
        """The readable id: family, then each sweep key's tag and value (mlp-d2-w50)."""
        tags = [f"{f.metadata['tag']}{getattr(self, f.name)}" for f in self.sweep_fields()]
        return "-".join([self.family, *tags])

    def kwargs(self) -> dict[str, Any]:
        """The model's keyword arguments."""
        return dataclasses.asdict(self)

    def check_input(self, in_shape: tuple[int, int, int]) -> None:
        """Raise ValueError if the architecture cannot take images of `in_shape` (C, H, W)."""

    def n_params(self, in_shape: tuple[int, int, int], n_classes: int) -> int:
        raise NotImplementedError


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


@dataclass(frozen=True, kw_only=True)
class MLPConfig(ArchConfig):
    """Fully connected: `depth` hidden layers of `width` units (depth 0: logistic regression)."""

    family: ClassVar[str] = "mlp"
    depth: int = sweep("d", minimum=0)
    width: int = sweep("w")

    def sizes(self, in_shape: tuple[int, int, int]) -> list[int]:
        """Input size, then each hidden layer's width."""
        return [math.prod(in_shape)] + [self.width] * self.depth

    def n_params(self, in_shape: tuple[int, int, int], n_classes: int) -> int:
        sizes = self.sizes(in_shape)
        return sum(_linear(a, b) for a, b in itertools.pairwise(sizes)) + _linear(
            sizes[-1], n_classes
        )


@dataclass(frozen=True, kw_only=True)
class CNNConfig(ArchConfig):
    """`blocks` x (3x3 conv of `channels` -> activation -> 2x2 max-pool while >= 2x2)."""

    family: ClassVar[str] = "cnn"
    blocks: int = sweep("b", minimum=0)
    channels: int = sweep("c")

    def pools(self, in_shape: tuple[int, int, int]) -> tuple[list[bool], tuple[int, int, int]]:
        """Whether each block pools, and the (C, H, W) of the map the head reads."""
        c, h, w = in_shape
        pools = []
        for _ in range(self.blocks):
            pools.append(min(h, w) >= 2)
            c = self.channels
            if pools[-1]:  # MaxPool2d(2) floors odd sizes: 7 -> 3
                h, w = h // 2, w // 2
        return pools, (c, h, w)

    def n_params(self, in_shape: tuple[int, int, int], n_classes: int) -> int:
        convs = [in_shape[0]] + [self.channels] * self.blocks
        kernels = sum(a * b * 9 + b for a, b in itertools.pairwise(convs))
        return kernels + _linear(math.prod(self.pools(in_shape)[1]), n_classes)


@dataclass(frozen=True, kw_only=True)
class ViTConfig(ArchConfig):
    """Vision transformer: `depth` pre-norm blocks of `heads` heads on `embed`-wide tokens of
    `patch` x `patch` tiles; the MLP is `mlp_ratio` x embed wide; class token or mean pool."""

    family: ClassVar[str] = "vit"
    depth: int = sweep("d", minimum=0)
    heads: int = sweep("h")
    embed: int = sweep("e")
    patch: int = sweep("p")
    mlp_ratio: float = 2.0
    pool: str = "cls"
    activation: str = "gelu"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embed % self.heads:
            raise ValueError(f"heads={self.heads} does not divide embed={self.embed}")
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"unknown pool {self.pool!r}; choose 'cls' or 'mean'")
        if not self.mlp_ratio > 0 or self.hidden < 1:
            raise ValueError(
                f"mlp_ratio={self.mlp_ratio} gives an empty MLP for embed={self.embed}"
            )

    @property
    def hidden(self) -> int:
        """Width of each block's MLP."""
        return int(self.embed * self.mlp_ratio)

    def check_input(self, in_shape: tuple[int, int, int]) -> None:
        _, h, w = in_shape
        if h % self.patch or w % self.patch:
            raise ValueError(f"patch={self.patch} does not divide the {h}x{w} images")

    def n_tokens(self, in_shape: tuple[int, int, int]) -> int:
        _, h, w = in_shape
        return (h // self.patch) * (w // self.patch) + (self.pool == "cls")

    def n_params(self, in_shape: tuple[int, int, int], n_classes: int) -> int:
        e = self.embed
        block = 2 * 2 * e + 4 * _linear(e, e) + _linear(e, self.hidden) + _linear(self.hidden, e)
        embedding = _linear(in_shape[0] * self.patch**2, e) + self.n_tokens(in_shape) * e
        cls_token = e if self.pool == "cls" else 0
        return embedding + cls_token + self.depth * block + 2 * e + _linear(e, n_classes)


FAMILY_CONFIGS: dict[str, type[ArchConfig]] = {
    c.family: c for c in (MLPConfig, CNNConfig, ViTConfig)
}


def parse(family: str, params: dict[str, Any]) -> ArchConfig:
    """The architecture `params` of `family`, checked; ValueError names a bad key or value."""
    if family not in FAMILY_CONFIGS:
        raise ValueError(f"unknown model family {family!r}; choose one of {sorted(FAMILY_CONFIGS)}")
    cls = FAMILY_CONFIGS[family]
    names = {f.name for f in dataclasses.fields(cls)}
    if unknown := sorted(set(params) - names):
        raise ValueError(
            f"unknown argument(s) {unknown} for family {family!r}; accepted: {sorted(names)}"
        )
    if missing := sorted(set(cls.sweep_keys()) - set(params)):
        raise ValueError(f"missing argument(s) {missing} for family {family!r}")
    return cls(**params)
