"""The three model families of a weight zoo: MLP, CNN and ViT, written out in plain PyTorch.

Each model is built from its architecture's frozen config object (weightzoo.families:
MLPConfig, CNNConfig, ViTConfig), as nanoGPT's GPT(config): `ViT(cfg, in_shape, n_classes)`.
Every model takes a float batch (B, C, H, W), already normalised, and returns logits
(B, n_classes). There is no dropout and no batch norm, so a forward pass is deterministic and
the state_dict holds learnable parameters only (no buffers): the dumped tensors are exactly
the weights we study.

Initialisation is PyTorch's default for nn.Linear, nn.Conv2d and nn.LayerNorm (Kaiming-uniform
weights with a = sqrt(5), uniform biases in +-1/sqrt(fan_in), LayerNorm weight 1 and bias 0).
The ViT's position embedding and class token are drawn from a normal with std 0.02 truncated
at +-2 std. All of it draws from the global torch RNG, so `torch.manual_seed(s)` before
`from_config` (or `build_model`) makes the initial weights reproducible.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from weightzoo.families import (
    ArchConfig,
    CNNConfig,
    MLPConfig,
    ViTConfig,
    check_in_shape,
    check_int,
    parse,
)

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module from its config name, or a ValueError naming the bad one."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


# Seed-stacked forward passes. Every model also has `forward_stacked(params, x)`: the same
# computation for K models at once, their parameters stacked on a leading seed axis
# ({name: (K, *shape)}, names as in the state_dict) and x of shape (K, B, C, H, W), each seed
# its own batch. Linear layers become one batched matrix product (baddbmm) and convolutions
# one grouped convolution, so K tiny models cost about as much as one K times wider.
# tests/test_models.py pins each to the plain forward of every seed's own model.


def stacked_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x (K, ..., in), w (K, out, in), b (K, out) -> (K, ..., out)."""
    k, n_in = x.shape[0], x.shape[-1]
    y = torch.baddbmm(b.unsqueeze(1), x.reshape(k, -1, n_in), w.transpose(1, 2))
    return y.view(*x.shape[:-1], w.shape[1])


def sub(p: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of a submodule, its prefix removed: sub(p, "attn")["q.weight"]."""
    return {k[len(prefix) + 1 :]: v for k, v in p.items() if k.startswith(prefix + ".")}


def stacked_layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float):
    """LayerNorm over the last axis of x (K, ..., E) with per-seed weight and bias (K, E)."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    return torch.addcmul(b.view(shape), F.layer_norm(x, x.shape[-1:], eps=eps), w.view(shape))


# --------------------------------------------------------------------------------------------
# MLP: flatten -> depth x (Linear -> activation) -> Linear head
# --------------------------------------------------------------------------------------------


class MLP(nn.Module):
    """Fully connected network; depth=0 is multinomial logistic regression on the pixels."""

    def __init__(self, cfg: MLPConfig, in_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        check_int("n_classes", n_classes, 1)
        # hidden.{i} are exactly the Linear layers; the (parameter-free) activation lives apart.
        sizes = cfg.sizes(check_in_shape(in_shape))
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.act = make_activation(cfg.activation)
        self.head = nn.Linear(sizes[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.head(x)

    def forward_stacked(self, p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        for i in range(len(self.hidden)):
            x = self.act(stacked_linear(x, p[f"hidden.{i}.weight"], p[f"hidden.{i}.bias"]))
        return stacked_linear(x, p["head.weight"], p["head.bias"])


# --------------------------------------------------------------------------------------------
# CNN: blocks x (Conv3x3 -> activation -> MaxPool2 while the map is >= 2x2) -> Linear head
# --------------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """3x3 convolution (same padding), activation, then a 2x2 max-pool or nothing."""

    def __init__(self, in_channels: int, out_channels: int, activation: str, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.act = make_activation(activation)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.conv(x)))


class CNN(nn.Module):
    """Stack of conv blocks with a linear read-out; pooling stops once the map is 1 pixel wide.

    On 8x8 digits the maps go 8 -> 4 -> 2 -> 1 -> 1 ..., on 28x28 28 -> 14 -> 7 -> 3 -> 1, on
    32x32 32 -> 16 -> 8 -> 4 -> 2 -> 1, so any number of blocks is valid on any input.
    """

    def __init__(self, cfg: CNNConfig, in_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        check_int("n_classes", n_classes, 1)
        in_shape = check_in_shape(in_shape)
        pools, (c, h, w) = cfg.pools(in_shape)
        ins = [in_shape[0]] + [cfg.channels] * cfg.blocks
        self.blocks = nn.ModuleList(
            ConvBlock(a, cfg.channels, cfg.activation, pool)
            for a, pool in zip(ins, pools, strict=False)
        )
        self.head = nn.Linear(c * h * w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(1))

    def forward_stacked(self, p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]
        # seeds side by side as channel groups: (K, B, C, H, W) -> (B, K*C, H, W), kept
        # channels-last, where CPU max-pooling is many times faster than on NCHW
        x = x.transpose(0, 1).reshape(b, -1, *x.shape[3:])
        x = x.contiguous(memory_format=torch.channels_last)
        for i, block in enumerate(self.blocks):
            w = p[f"blocks.{i}.conv.weight"]  # (K, out, in, 3, 3)
            bias = p[f"blocks.{i}.conv.bias"].flatten()
            x = F.conv2d(x, w.flatten(0, 1), bias, padding=1, groups=k)
            x = block.pool(block.act(x))
        x = x.contiguous().view(b, k, -1).transpose(0, 1)  # (K, B, out*h*w) in NCHW order
        return stacked_linear(x, p["head.weight"], p["head.bias"])


# --------------------------------------------------------------------------------------------
# ViT: patches -> tokens (+ class token, + position) -> depth x pre-norm Block -> norm -> head
# --------------------------------------------------------------------------------------------


class PatchEmbedding(nn.Module):
    """Cut the image into non-overlapping patch x patch tiles and project each to `embed`."""

    def __init__(self, in_channels: int, patch: int, embed: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(in_channels * patch * patch, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch
        # (B, C, H, W) -> (B, C, H/p, p, W/p, p) -> (B, H/p, W/p, C, p, p): tiles in row-major
        # order, each flattened channel-first, exactly like a Conv2d(kernel=p, stride=p) sees it.
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return self.proj(x.reshape(b, (h // p) * (w // p), c * p * p))

    def forward_stacked(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        k, b, c, h, w = x.shape
        p = self.patch
        x = x.reshape(k, b, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4, 6)
        x = x.reshape(k, b, (h // p) * (w // p), c * p * p)
        return stacked_linear(x, params["proj.weight"], params["proj.bias"])


class Attention(nn.Module):
    """Multi-head self-attention with separate q, k, v projections and an output projection."""

    def __init__(self, embed: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(embed, embed)
        self.k = nn.Linear(embed, embed)
        self.v = nn.Linear(embed, embed)
        self.proj = nn.Linear(embed, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, e = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, N, E) -> (B, heads, N, head_dim)
            return t.reshape(b, n, self.heads, e // self.heads).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        # softmax(q k^T / sqrt(head_dim)) v, per head; every token attends to every token.
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, e))

    def forward_stacked(self, p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        k, b, n, e = x.shape

        def split(name: str) -> torch.Tensor:  # (K, B, N, E) -> (K*B, heads, N, head_dim)
            t = stacked_linear(x, p[f"{name}.weight"], p[f"{name}.bias"])
            return t.reshape(k * b, n, self.heads, e // self.heads).transpose(1, 2)

        y = F.scaled_dot_product_attention(split("q"), split("k"), split("v"))
        y = y.transpose(1, 2).reshape(k, b, n, e)
        return stacked_linear(y, p["proj.weight"], p["proj.bias"])


class MLPBlock(nn.Module):
    """The transformer's position-wise feed-forward: fc1 -> activation -> fc2."""

    def __init__(self, embed: int, hidden: int, activation: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed, hidden)
        self.act = make_activation(activation)
        self.fc2 = nn.Linear(hidden, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))

    def forward_stacked(self, p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        x = self.act(stacked_linear(x, p["fc1.weight"], p["fc1.bias"]))
        return stacked_linear(x, p["fc2.weight"], p["fc2.bias"])


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, embed: int, heads: int, hidden: int, activation: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed)
        self.attn = Attention(embed, heads)
        self.norm2 = nn.LayerNorm(embed)
        self.mlp = MLPBlock(embed, hidden, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def forward_stacked(self, p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        def norm(name: str, x: torch.Tensor) -> torch.Tensor:
            layer = getattr(self, name)
            return stacked_layer_norm(x, p[f"{name}.weight"], p[f"{name}.bias"], layer.eps)

        x = x + self.attn.forward_stacked(sub(p, "attn"), norm("norm1", x))
        return x + self.mlp.forward_stacked(sub(p, "mlp"), norm("norm2", x))


class ViT(nn.Module):
    """Vision transformer; the logits come from the class token (pool="cls") or the token mean."""

    def __init__(self, cfg: ViTConfig, in_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        check_int("n_classes", n_classes, 1)
        in_shape = check_in_shape(in_shape)
        cfg.check_input(in_shape)

        self.pool = cfg.pool
        self.patch_embed = PatchEmbedding(in_shape[0], cfg.patch, cfg.embed)
        self.pos_embed = nn.Parameter(torch.empty(1, cfg.n_tokens(in_shape), cfg.embed))
        if cfg.pool == "cls":
            self.cls_token = nn.Parameter(torch.empty(1, 1, cfg.embed))
        # One Block per constructor call: each draws its own initial weights from the RNG.
        self.blocks = nn.ModuleList(
            Block(cfg.embed, cfg.heads, cfg.hidden, cfg.activation) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.embed)
        self.head = nn.Linear(cfg.embed, n_classes)

        # std 0.02 as in timm's ViT, cut at +-2 std (timm's default a=-2, b=2 never cuts).
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
        if cfg.pool == "cls":
            nn.init.trunc_normal_(self.cls_token, std=0.02, a=-0.04, b=0.04)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # (B, n_patches, embed)
        if self.pool == "cls":
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0] if self.pool == "cls" else x.mean(dim=1))

    def forward_stacked(self, p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.forward_stacked(sub(p, "patch_embed"), x)  # (K, B, n, embed)
        k, b = x.shape[:2]
        if self.pool == "cls":
            x = torch.cat([p["cls_token"].expand(k, b, -1, -1), x], dim=2)
        x = x + p["pos_embed"]  # (K, 1, n, embed)
        for i, block in enumerate(self.blocks):
            x = block.forward_stacked(sub(p, f"blocks.{i}"), x)
        x = stacked_layer_norm(x, p["norm.weight"], p["norm.bias"], self.norm.eps)
        x = x[:, :, 0] if self.pool == "cls" else x.mean(dim=2)
        return stacked_linear(x, p["head.weight"], p["head.bias"])


# --------------------------------------------------------------------------------------------
# Building models from config and naming their tensors
# --------------------------------------------------------------------------------------------

FAMILIES = {"mlp": MLP, "cnn": CNN, "vit": ViT}


def from_config(cfg: ArchConfig, in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """The model of an architecture (its family's class, which takes the config object).

    Initial weights come from the global torch RNG: seed it first for reproducible weights.
    """
    return FAMILIES[cfg.family](cfg, tuple(in_shape), n_classes)


def build_model(
    family: str, arch: dict, in_shape: tuple[int, int, int], n_classes: int
) -> nn.Module:
    """`from_config` of the architecture `arch` of `family` as the config writes it (checked
    by the family's dataclass in weightzoo.families: a bad name or value fails with
    ValueError)."""
    return from_config(parse(family, arch), in_shape, n_classes)


def count_params(model: nn.Module) -> int:
    """Number of learnable scalars."""
    return sum(p.numel() for p in model.parameters())


_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)


def tensor_kinds(model: nn.Module) -> dict[str, tuple[str, str]]:
    """Map every state_dict key to (kind, layer), kind from the owning module's type.

    kind is "weight" / "bias" for Linear and Conv layers, "norm" for both tensors of a
    normalisation layer, and "embedding" for tensors the ViT holds itself (pos_embed,
    cls_token); layer is the owning module's path ("" for the model itself).
    """
    keys = list(model.state_dict())
    params = [name for name, _ in model.named_parameters()]
    assert keys == params, "models here hold parameters only: state_dict has buffers or misses"

    kinds: dict[str, tuple[str, str]] = {}
    for layer, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            key = f"{layer}.{name}" if layer else name
            if isinstance(module, _WEIGHTED) and name in ("weight", "bias"):
                kind = name
            elif isinstance(module, _NORMS):
                kind = "norm"
            elif isinstance(module, ViT):
                kind = "embedding"
            else:
                raise ValueError(
                    f"cannot classify parameter {key!r} of {type(module).__name__} {layer!r}"
                )
            kinds[key] = (kind, layer)
    return kinds
