"""Unit tests of weightzoo.models: shapes, hand-counted parameters, keys, kinds, seeding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightzoo.families import CNNConfig, MLPConfig, ViTConfig
from weightzoo.models import (
    ACTIVATIONS,
    CNN,
    FAMILIES,
    MLP,
    ViT,
    build_model,
    count_params,
    tensor_kinds,
)

DIGITS = (1, 8, 8)
TINY = {
    "mlp": {"depth": 2, "width": 6},
    "cnn": {"blocks": 2, "channels": 3},
    "vit": {"patch": 4, "embed": 8, "depth": 2, "heads": 2},
}


def seeded(seed: int, family: str, arch: dict, in_shape=DIGITS, n_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(family, arch, in_shape, n_classes)


# -- parameter counts, computed by hand ------------------------------------------------------


def test_mlp_param_count_by_hand():
    # 64 pixels -> 2 hidden: 64*2 + 2 = 130; 2 -> 10 classes: 2*10 + 10 = 30.
    assert count_params(MLP(MLPConfig(depth=1, width=2), DIGITS, 10)) == 160


def test_mlp_depth_zero_is_logistic_regression():
    model = MLP(MLPConfig(depth=0, width=50), DIGITS, 10)
    assert count_params(model) == 64 * 10 + 10 == 650
    assert list(model.state_dict()) == ["head.weight", "head.bias"]


def test_cnn_param_count_by_hand():
    # conv 3x3, 1 -> 4 channels: 4*1*9 + 4 = 40; pooled 4x4x4 = 64 -> 10: 64*10 + 10 = 650.
    assert count_params(CNN(CNNConfig(blocks=1, channels=4), DIGITS, 10)) == 690


@pytest.mark.parametrize(
    ("in_shape", "blocks", "pools", "side"),
    [
        (DIGITS, 1, [True], 4),
        (DIGITS, 3, [True, True, True], 1),  # 8 -> 4 -> 2 -> 1
        (DIGITS, 4, [True, True, True, False], 1),  # 1x1 map: the 4th block keeps it
        ((1, 28, 28), 3, [True, True, True], 3),  # 28 -> 14 -> 7 -> 3 (floor)
        ((3, 32, 32), 6, [True] * 5 + [False], 1),  # 32 -> 16 -> 8 -> 4 -> 2 -> 1 -> 1
    ],
)
def test_cnn_pools_only_while_map_is_at_least_2x2(in_shape, blocks, pools, side):
    model = CNN(CNNConfig(blocks=blocks, channels=5), in_shape, 10)
    assert [isinstance(b.pool, nn.MaxPool2d) for b in model.blocks] == pools
    assert model.head.in_features == 5 * side * side
    assert model(torch.randn(1, *in_shape)).shape == (1, 10)


def test_vit_param_count_by_hand():
    # (1,8,8), patch 4 -> 4 patches of 16 pixels, embed 8, 1 block, 2 heads, mlp 16, cls, 10.
    patch_embed = 16 * 8 + 8  # 136
    pos_embed = (4 + 1) * 8  # 40 (4 patches + class token)
    cls_token = 8
    norm1 = norm2 = 2 * 8  # 16 each
    attn = 4 * (8 * 8 + 8)  # q, k, v, proj: 288
    mlp = (8 * 16 + 16) + (16 * 8 + 8)  # fc1 144 + fc2 136 = 280
    block = norm1 + attn + norm2 + mlp  # 600
    final_norm = 16
    head = 8 * 10 + 10  # 90
    total = patch_embed + pos_embed + cls_token + block + final_norm + head
    assert total == 890
    model = ViT(
        ViTConfig(patch=4, embed=8, depth=1, heads=2, mlp_ratio=2.0, pool="cls"), DIGITS, 10
    )
    assert count_params(model) == 890


# -- forward shapes --------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("in_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_forward_gives_logits_per_sample(family, in_shape):
    model = seeded(0, family, TINY[family], in_shape, n_classes=7)
    logits = model(torch.randn(3, *in_shape))
    assert logits.shape == (3, 7)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "family,arch",
    [
        ("mlp", TINY["mlp"]),
        ("mlp", {"depth": 0, "width": 1}),
        ("cnn", TINY["cnn"]),
        ("cnn", {"blocks": 4, "channels": 2, "activation": "tanh"}),
        ("vit", TINY["vit"]),
        ("vit", {**TINY["vit"], "pool": "mean", "depth": 1, "heads": 4}),
    ],
)
@pytest.mark.parametrize("in_shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_stacked_forward_equals_each_seeds_own_forward(family, arch, in_shape):
    models = [seeded(s, family, arch, in_shape, n_classes=7) for s in (0, 1, 2)]
    params, _ = torch.func.stack_module_state(models)
    x = torch.randn(3, 5, *in_shape)  # each seed its own batch of 5
    stacked = models[0].forward_stacked(params, x)
    assert stacked.shape == (3, 5, 7)
    for k, model in enumerate(models):
        torch.testing.assert_close(stacked[k], model(x[k]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_builds_and_runs(activation):
    model = MLP(MLPConfig(depth=1, width=4, activation=activation), DIGITS, 10)
    assert model(torch.randn(2, *DIGITS)).shape == (2, 10)


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="swish"):
        MLP(MLPConfig(depth=1, width=4, activation="swish"), DIGITS, 10)


# -- state_dict keys -------------------------------------------------------------------------


def test_mlp_keys_are_exactly_the_linear_layers():
    model = MLP(MLPConfig(depth=2, width=5), DIGITS, 10)
    assert list(model.state_dict()) == [
        "hidden.0.weight",
        "hidden.0.bias",
        "hidden.1.weight",
        "hidden.1.bias",
        "head.weight",
        "head.bias",
    ]
    assert model.state_dict()["hidden.1.weight"].shape == (5, 5)


def test_cnn_keys_name_the_conv_of_each_block():
    model = CNN(CNNConfig(blocks=2, channels=3), DIGITS, 10)
    assert list(model.state_dict()) == [
        "blocks.0.conv.weight",
        "blocks.0.conv.bias",
        "blocks.1.conv.weight",
        "blocks.1.conv.bias",
        "head.weight",
        "head.bias",
    ]
    assert model.state_dict()["blocks.1.conv.weight"].shape == (3, 3, 3, 3)


def test_vit_has_separate_qkv_linear_layers():
    model = ViT(ViTConfig(patch=4, embed=8, depth=2, heads=2), DIGITS, 10)
    state = model.state_dict()
    for name in ("q", "k", "v", "proj"):
        assert isinstance(getattr(model.blocks[0].attn, name), nn.Linear)
        assert state[f"blocks.0.attn.{name}.weight"].shape == (8, 8)
        assert state[f"blocks.0.attn.{name}.bias"].shape == (8,)
    assert not any("in_proj" in key for key in state)
    for key in (
        "patch_embed.proj.weight",
        "pos_embed",
        "cls_token",
        "blocks.1.mlp.fc1.weight",
        "blocks.1.norm1.weight",
        "blocks.1.norm2.bias",
        "norm.weight",
        "head.weight",
    ):
        assert key in state
    assert state["pos_embed"].shape == (1, 5, 8)
    assert state["blocks.1.mlp.fc1.weight"].shape == (16, 8)


def test_vit_blocks_are_initialised_independently():
    model = seeded(0, "vit", TINY["vit"])
    assert not torch.equal(model.blocks[0].attn.q.weight, model.blocks[1].attn.q.weight)
    assert not torch.equal(model.blocks[0].mlp.fc1.weight, model.blocks[1].mlp.fc1.weight)


def test_vit_mean_pool_has_no_class_token():
    model = ViT(ViTConfig(patch=4, embed=8, depth=1, heads=2, pool="mean"), DIGITS, 10)
    assert "cls_token" not in model.state_dict()
    assert model.pos_embed.shape == (1, 4, 8)
    assert count_params(model) == 890 - 8 - 8  # no class token, one fewer position


def test_vit_position_embedding_is_small_truncated_normal():
    torch.manual_seed(0)
    model = ViT(
        ViTConfig(patch=2, embed=64, depth=0, heads=1), (3, 32, 32), 10
    )  # 257 x 64 positions
    pos = model.pos_embed
    assert pos.abs().max() <= 0.04
    assert 0.01 < pos.std() < 0.02  # a normal(0.02) cut at 2 std has std ~0.0176


def test_vit_patch_embedding_matches_a_strided_conv():
    # A Linear over channel-first flattened tiles is a Conv2d with kernel = stride = patch.
    torch.manual_seed(0)
    model = ViT(ViTConfig(patch=4, embed=5, depth=0, heads=1), (3, 8, 8), 10)
    proj = model.patch_embed.proj
    conv = nn.Conv2d(3, 5, kernel_size=4, stride=4)
    conv.weight.data = proj.weight.data.reshape(5, 3, 4, 4)
    conv.bias.data = proj.bias.data
    x = torch.randn(2, 3, 8, 8)
    expected = conv(x).flatten(2).transpose(1, 2)  # (B, 4 tiles, 5) in row-major tile order
    torch.testing.assert_close(model.patch_embed(x), expected)


def test_vit_mean_pool_is_invariant_to_permuting_tokens():
    # Without position embedding, attention treats tokens as a set: permuting patches in the
    # image leaves the mean-pooled logits unchanged.
    torch.manual_seed(0)
    model = ViT(ViTConfig(patch=4, embed=8, depth=2, heads=2, pool="mean"), DIGITS, 10)
    with torch.no_grad():
        model.pos_embed.zero_()
    x = torch.randn(2, *DIGITS)
    swapped = torch.cat([x[..., 4:, :], x[..., :4, :]], dim=-2)  # swap top and bottom tiles
    torch.testing.assert_close(model(x), model(swapped))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"heads": 3}, "heads=3"),
        ({"patch": 3}, "patch=3"),
        ({"pool": "max"}, "max"),
    ],
)
def test_vit_invalid_arguments_raise_naming_the_value(kwargs, message):
    arch = {"patch": 4, "embed": 8, "depth": 1, "heads": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        ViT(ViTConfig(**arch), DIGITS, 10)


# -- seeding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_same_seed_gives_identical_weights(family):
    a = seeded(3, family, TINY[family]).state_dict()
    b = seeded(3, family, TINY[family]).state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_different_seeds_give_different_weights(family):
    a = seeded(3, family, TINY[family]).state_dict()
    b = seeded(4, family, TINY[family]).state_dict()
    assert not torch.equal(a["head.weight"], b["head.weight"])


def test_forward_is_deterministic():
    model = seeded(0, "vit", TINY["vit"])
    x = torch.randn(4, *DIGITS)
    assert torch.equal(model(x), model(x))


# -- tensor kinds ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_tensor_kinds_classify_every_state_dict_key(family):
    model = seeded(0, family, TINY[family])
    kinds = tensor_kinds(model)
    assert list(kinds) == list(model.state_dict())
    assert {kind for kind, _ in kinds.values()} <= {"weight", "bias", "norm", "embedding"}


def test_mlp_tensors_are_only_weights_and_biases():
    kinds = tensor_kinds(MLP(MLPConfig(depth=2, width=4), DIGITS, 10))
    assert kinds["hidden.1.weight"] == ("weight", "hidden.1")
    assert kinds["hidden.1.bias"] == ("bias", "hidden.1")
    assert kinds["head.bias"] == ("bias", "head")
    assert {kind for kind, _ in kinds.values()} == {"weight", "bias"}


def test_cnn_conv_kernels_are_weights():
    kinds = tensor_kinds(CNN(CNNConfig(blocks=1, channels=2), DIGITS, 10))
    assert kinds["blocks.0.conv.weight"] == ("weight", "blocks.0.conv")
    assert kinds["blocks.0.conv.bias"] == ("bias", "blocks.0.conv")


def test_vit_tensor_kinds():
    kinds = tensor_kinds(ViT(ViTConfig(patch=4, embed=8, depth=1, heads=2), DIGITS, 10))
    assert kinds["pos_embed"] == ("embedding", "")
    assert kinds["cls_token"] == ("embedding", "")
    assert kinds["blocks.0.norm1.weight"] == ("norm", "blocks.0.norm1")
    assert kinds["norm.bias"] == ("norm", "norm")
    assert kinds["blocks.0.attn.q.weight"] == ("weight", "blocks.0.attn.q")
    assert kinds["blocks.0.mlp.fc2.bias"] == ("bias", "blocks.0.mlp.fc2")
    assert kinds["patch_embed.proj.weight"] == ("weight", "patch_embed.proj")
    counts = {}
    for kind, _ in kinds.values():
        counts[kind] = counts.get(kind, 0) + 1
    # weights: patch_embed, q, k, v, proj, fc1, fc2, head; norms: norm1, norm2, norm (x2 each)
    assert counts == {"weight": 8, "bias": 8, "norm": 6, "embedding": 2}


def test_tensor_kinds_rejects_unclassifiable_parameters():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

    with pytest.raises(ValueError, match="scale"):
        tensor_kinds(Odd())


# -- build_model -----------------------------------------------------------------------------


def test_build_model_passes_arch_as_keywords():
    model = build_model("mlp", {"depth": 2, "width": 50, "activation": "tanh"}, (1, 28, 28), 10)
    assert isinstance(model, MLP)
    assert isinstance(model.act, nn.Tanh)
    assert count_params(model) == (784 * 50 + 50) + (50 * 50 + 50) + (50 * 10 + 10)


def test_build_model_unknown_family_is_named():
    with pytest.raises(ValueError, match="resnet"):
        build_model("resnet", {}, DIGITS, 10)


def test_build_model_unknown_argument_is_named():
    with pytest.raises(ValueError, match="dropout"):
        build_model("mlp", {"depth": 1, "width": 4, "dropout": 0.1}, DIGITS, 10)


def test_build_model_missing_argument_is_named():
    with pytest.raises(ValueError, match="width"):
        build_model("mlp", {"depth": 1}, DIGITS, 10)


def test_build_model_bad_value_is_named():
    with pytest.raises(ValueError, match="width"):
        build_model("mlp", {"depth": 1, "width": 0}, DIGITS, 10)


# -- can it learn at all? --------------------------------------------------------------------


def test_tiny_mlp_overfits_random_samples():
    torch.manual_seed(0)
    x, y = torch.randn(32, *DIGITS), torch.randint(0, 10, (32,))
    model = MLP(MLPConfig(depth=1, width=32), DIGITS, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
