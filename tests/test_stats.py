"""Unit tests of weightzoo.stats: values checked by hand or against numpy/scipy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
import scipy.stats

from weightzoo import stats
from weightzoo.dumps import WEIGHTS_SCHEMA
from weightzoo.stats import (
    QUANTILES,
    SPECTRAL_COLUMNS,
    STAT_COLUMNS,
    STRENGTH_COLUMNS,
    HistConfig,
    dump_stats,
    first_layer_strength_map,
    matrix_stats,
    network_scopes,
    node_strength,
    stats_table,
    strength_maps,
    strength_summary,
    tensor_stats,
)

RANGE = (-1.0, 1.0)


def hist(bins: int) -> HistConfig:
    """Histograms of `bins` bins on RANGE (and w / std(w0) on +-8)."""
    return HistConfig(range=RANGE, bins=bins, scaled_range=(-8.0, 8.0))


# -- tensor_stats ----------------------------------------------------------------------------


def test_tensor_stats_by_hand():
    s = tensor_stats(np.array([1, 2, 3, 4], np.float32), RANGE, 4)
    assert s["count"] == 4
    assert s["mean"] == 2.5
    assert s["var"] == 1.25  # ((1.5^2 + 0.5^2) * 2) / 4, population
    assert s["std"] == pytest.approx(math.sqrt(1.25))
    assert s["skew"] == pytest.approx(0.0, abs=1e-12)
    assert s["min"] == s["q0"] == 1 and s["max"] == s["q100"] == 4
    assert s["q50"] == 2.5
    assert s["l1"] == 10 and s["l2"] == pytest.approx(math.sqrt(30)) and s["max_abs"] == 4


def test_tensor_stats_match_numpy_and_scipy():
    x = np.random.default_rng(0).standard_t(4, size=1001).astype(np.float32)
    s = tensor_stats(x, (-3, 3), 12)
    x64 = x.astype(np.float64)
    expected = {
        "count": x.size,
        "mean": np.mean(x64),
        "std": np.std(x64, ddof=0),
        "var": np.var(x64, ddof=0),
        "skew": scipy.stats.skew(x64, bias=True),
        "kurtosis": scipy.stats.kurtosis(x64, fisher=True, bias=True),
        "min": x64.min(),
        "max": x64.max(),
        "l1": np.abs(x64).sum(),
        "l2": np.linalg.norm(x64),
        "max_abs": np.abs(x64).max(),
    }
    expected.update({f"q{q}": np.percentile(x64, q) for q in QUANTILES})
    for key, value in expected.items():
        assert s[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    counts = np.histogram(np.clip(x64, -3, 3), bins=12, range=(-3, 3))[0]
    np.testing.assert_allclose(s["hist"], counts / x.size, rtol=1e-6)


def test_histogram_clips_outliers_into_edge_bins_and_sums_to_one():
    s = tensor_stats(np.array([-5, 0.1, 0.2, 7]), RANGE, 4)
    assert s["hist"].dtype == np.float32 and s["hist"].shape == (4,)
    np.testing.assert_array_equal(s["hist"], [0.25, 0, 0.5, 0.25])
    wide = tensor_stats(np.random.default_rng(1).normal(0, 5, 500), RANGE, 7)
    assert wide["hist"].sum() == pytest.approx(1.0, rel=1e-6)


def test_constant_array_has_nan_skew_and_kurtosis_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = tensor_stats(np.full(10, 0.5), RANGE, 4)
    assert math.isnan(s["skew"]) and math.isnan(s["kurtosis"])
    assert s["std"] == 0 and s["mean"] == 0.5


def test_empty_array_is_nan_except_count():
    s = tensor_stats(np.zeros(0, np.float32), RANGE, 3)
    assert s["count"] == 0
    assert all(math.isnan(v) for k, v in s.items() if k not in ("count", "hist"))
    assert s["hist"].shape == (3,) and np.isnan(s["hist"]).all()


@pytest.mark.parametrize(("hist_range", "bins"), [((1, 1), 4), ((0, float("inf")), 4), (RANGE, 0)])
def test_bad_histogram_settings_are_rejected(hist_range, bins):
    with pytest.raises(ValueError, match=r"hist_range|bins"):
        tensor_stats(np.ones(3), hist_range, bins)


# -- matrix_stats ----------------------------------------------------------------------------


def test_matrix_stats_by_hand():
    s = matrix_stats(np.diag([3.0, 1.0]))
    assert s["spectral_norm"] == pytest.approx(3)
    assert s["stable_rank"] == pytest.approx((9 + 1) / 9)
    rank1 = np.outer([1.0, 2.0, 3.0], [4.0, -1.0])
    assert matrix_stats(rank1)["stable_rank"] == pytest.approx(1)


def test_matrix_stats_match_numpy_norms_and_reshape_conv_kernels():
    w = np.random.default_rng(2).normal(size=(4, 3, 3, 3)).astype(np.float32)
    m = w.reshape(4, -1).astype(np.float64)
    s = matrix_stats(w)
    assert s["spectral_norm"] == pytest.approx(np.linalg.norm(m, 2))
    assert s["stable_rank"] == pytest.approx(
        np.linalg.norm(m, "fro") ** 2 / np.linalg.norm(m, 2) ** 2
    )
    assert all(math.isnan(v) for v in matrix_stats(np.ones(5)).values())
    assert math.isnan(matrix_stats(np.zeros((2, 2)))["stable_rank"])


# -- node strength ---------------------------------------------------------------------------


def test_node_strength_of_a_linear_by_hand():
    w = np.array([[1, -2, 3], [0, 4, -1]], np.float32)
    s = node_strength("hidden.0.weight", "weight", (2, 3), w.ravel())
    np.testing.assert_array_equal(s["in_signed"], [2, 3])
    np.testing.assert_array_equal(s["in_abs"], [6, 5])
    np.testing.assert_array_equal(s["out_signed"], [1, 2, 2])
    np.testing.assert_array_equal(s["out_abs"], [1, 6, 4])
    summary = strength_summary(s)
    assert list(summary) == list(STRENGTH_COLUMNS)
    assert summary["in_abs_mean"] == 5.5 and summary["in_abs_std"] == 0.5
    assert summary["out_abs_min"] == 1 and summary["out_signed_max"] == 2


def test_node_strength_of_a_conv_kernel_sums_over_channels_and_taps():
    s = node_strength("blocks.0.conv.weight", "weight", (2, 3, 3, 3), np.ones(54))
    np.testing.assert_array_equal(s["in_abs"], [27, 27])  # 3 in-channels x 3 x 3
    np.testing.assert_array_equal(s["out_signed"], [18, 18, 18])  # 2 out-channels x 3 x 3


def test_node_strength_is_none_for_non_weights():
    assert node_strength("head.bias", "bias", (10,), np.ones(10)) is None
    assert node_strength("pos_embed", "embedding", (1, 5, 4), np.ones(20)) is None
    assert all(math.isnan(v) for v in strength_summary(None).values())


# -- first-layer strength maps ---------------------------------------------------------------


def test_mlp_first_layer_map_is_out_strength_per_pixel():
    w = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    m = first_layer_strength_map("hidden.0.weight", (3, 4), w.ravel(), (1, 2, 2))
    assert m.shape == (1, 2, 2)
    for r in range(2):
        for c in range(2):
            assert m[0, r, c] == np.abs(w[:, 2 * r + c]).sum()


def test_vit_patch_map_follows_the_patch_embedding_flattening():
    import torch

    from weightzoo.models import PatchEmbedding

    c, p = 2, 2  # on a (2, 4, 4) image: four 2x2 tiles, 8 inputs per tile
    embed = PatchEmbedding(c, p, embed=1)
    with torch.no_grad():
        embed.proj.bias.zero_()
        embed.proj.weight.zero_()
        embed.proj.weight[0, 5] = 1.0  # one input of the tile: which pixel is it?
    m = first_layer_strength_map(
        "patch_embed.proj.weight",
        (1, c * p * p),
        embed.proj.weight.detach().numpy().ravel(),
        (c, 4, 4),
    )
    assert m.shape == (c, p, p)
    ch, r, col = np.argwhere(m == 1)[0]
    x = torch.zeros(1, c, 4, 4)
    x[0, ch, r, col] = 1.0  # the same pixel of the first tile lights its token
    assert embed(x)[0, 0, 0].item() == 1.0


def test_first_layer_map_of_a_conv_is_none_and_bad_sizes_fail():
    assert (
        first_layer_strength_map("blocks.0.conv.weight", (2, 1, 3, 3), np.ones(18), (1, 8, 8))
        is None
    )
    with pytest.raises(ValueError, match=r"hidden\.0\.weight"):
        first_layer_strength_map("hidden.0.weight", (3, 7), np.ones(21), (1, 2, 2))


# -- whole dumps -----------------------------------------------------------------------------

W0 = np.array([[1, -2, 3], [0, 4, -1]], np.float32)
B0 = np.array([0.5, -0.5], np.float32)
W1, B1 = W0 * 2, B0 + 1


def weights_table(dumps: dict[tuple[int, int], list[tuple[str, str, np.ndarray]]]) -> pa.Table:
    """A weights table like the training dumps, from {(seed, epoch): [(tensor, kind, array)]}."""
    rows = [(k, t) for k, tensors in dumps.items() for t in tensors]
    return pa.table(
        {
            "dataset": ["digits"] * len(rows),
            "family": ["mlp"] * len(rows),
            "arch": ["mlp-d1-w2"] * len(rows),
            "setting": ["default"] * len(rows),
            "seed": [s for (s, _), _ in rows],
            "epoch": [e for (_, e), _ in rows],
            "tensor": [t for _, (t, _, _) in rows],
            "kind": [k for _, (_, k, _) in rows],
            "layer": [t.rsplit(".", 1)[0] for _, (t, _, _) in rows],
            "numel": [a.size for _, (_, _, a) in rows],
            "shape": [list(a.shape) for _, (_, _, a) in rows],
            "values": [a.ravel().tolist() for _, (_, _, a) in rows],
        },
        schema=WEIGHTS_SCHEMA,
    )


def tensors(w, b):
    return [("hidden.0.weight", "weight", w), ("hidden.0.bias", "bias", b)]


@pytest.fixture
def table() -> pa.Table:
    return weights_table({(0, 0): tensors(W0, B0), (0, 1): tensors(W1, B1)})


def test_network_scopes_are_tensors_then_pools(table):
    rows = table.filter(pa.array(np.array(table["epoch"]) == 1))
    scopes = network_scopes(rows)
    assert [(s.scope, s.scope_type, s.kind) for s in scopes] == [
        ("hidden.0.weight", "tensor", "weight"),
        ("hidden.0.bias", "tensor", "bias"),
        ("all_weights", "pool", "pool"),
        ("all_params", "pool", "pool"),
    ]
    np.testing.assert_array_equal(scopes[0].values.reshape(scopes[0].shape), W1)
    np.testing.assert_array_equal(scopes[2].values, W1.ravel())
    np.testing.assert_array_equal(scopes[3].values, np.concatenate([W1.ravel(), B1]))
    assert np.shares_memory(scopes[0].values, scopes[3].values)  # slices, not copies


def test_dump_stats_pools_and_delta(table):
    init = table.filter(pa.array(np.array(table["epoch"]) == 0))
    rows = table.filter(pa.array(np.array(table["epoch"]) == 1))
    out = {(d["scope"], d["target"]): d for d in dump_stats(rows, init, hist(4))}
    assert len(out) == 8 + 1  # (2 tensors + 2 pools) x (w, delta), and the scaled weights
    scaled = out["all_weights", "scaled"]  # W1 / std(W0): the initial scale divided out
    assert scaled["std"] == pytest.approx(W1.std() / W0.std())
    assert scaled["mean"] == pytest.approx(W1.mean() / W0.std())
    both = tensor_stats(np.concatenate([W1.ravel(), B1]), RANGE, 4)
    assert out["all_params", "w"]["l2"] == pytest.approx(both["l2"])
    pool = out["all_weights", "w"]
    for key, value in tensor_stats(W1.ravel(), RANGE, 4).items():
        np.testing.assert_allclose(pool[key], value, err_msg=key)
    delta = out["hidden.0.weight", "delta"]
    assert delta["mean"] == pytest.approx((W1 - W0).mean())
    assert delta["in_signed_mean"] == pytest.approx(W0.sum(axis=1).mean())  # W1 - W0 == W0
    assert delta["spectral_norm"] == pytest.approx(np.linalg.norm(W0, 2))
    assert math.isnan(out["hidden.0.bias", "w"]["spectral_norm"])
    assert math.isnan(out["all_weights", "w"]["in_abs_mean"])
    assert math.isnan(out["hidden.0.bias", "delta"]["skew"])  # B1 - B0 is constant (1)
    # w0 is matched by tensor name, not by row order
    reordered = init.take([1, 0])
    again = {(d["scope"], d["target"]): d for d in dump_stats(rows, reordered, hist(4))}
    assert again["all_params", "delta"]["l1"] == out["all_params", "delta"]["l1"]
    assert [d["target"] for d in dump_stats(rows, None, hist(4))] == ["w"] * 4


def test_stats_table_is_tidy_with_zero_delta_at_epoch_0(table):
    df = stats_table(table, hist(4))
    assert df.columns == [
        "dataset",
        "family",
        "arch",
        "setting",
        "seed",
        "epoch",
        "scope",
        "scope_type",
        "kind",
        "layer",
        "target",
        *STAT_COLUMNS,
        *SPECTRAL_COLUMNS,
        "hist",
    ]
    # (tensors + pools) x (w, delta) x epochs, and one scaled pool per epoch
    assert df.height == (2 + 2) * 2 * 2 + 2
    assert df.schema["hist"] == pl.List(pl.Float32) and df.schema["seed"] == pl.Int32
    zero = df.filter(epoch=0, target="delta")
    assert zero.height == 4
    assert (zero["mean"] == 0).all() and (zero["l2"] == 0).all()
    w1 = df.filter(epoch=1, target="w", scope="hidden.0.weight").row(0, named=True)
    assert w1["dataset"] == "digits" and w1["layer"] == "hidden.0" and w1["kind"] == "weight"
    assert w1["mean"] == pytest.approx(W1.mean()) and w1["in_abs_max"] == 12
    np.testing.assert_allclose(w1["hist"], tensor_stats(W1.ravel(), RANGE, 4)["hist"])
    empty = stats_table(table.slice(0, 0), hist(4))
    assert empty.height == 0 and empty.columns == df.columns


def test_strength_maps_long_format(table):
    df = strength_maps(table, "mlp", (1, 1, 3))
    assert df.columns == [
        "dataset",
        "family",
        "arch",
        "setting",
        "seed",
        "epoch",
        "tensor",
        "channel",
        "row",
        "col",
        "value",
    ]
    assert df.height == 2 * 3  # epochs x pixels
    e1 = df.filter(epoch=1).sort("col")
    np.testing.assert_allclose(e1["value"].to_numpy(), np.abs(W1).sum(axis=0))
    assert set(e1["tensor"]) == {"hidden.0.weight"}
    assert strength_maps(table, "cnn", (1, 1, 3)).height == 0


def test_stats_and_maps_of_a_real_vit_dump():
    import torch

    from weightzoo.dumps import state_dict_table
    from weightzoo.models import build_model, tensor_kinds

    torch.manual_seed(0)
    model = build_model("vit", {"patch": 2, "embed": 4, "depth": 1, "heads": 2}, (3, 4, 4), 10)
    dump = state_dict_table(
        model.state_dict(),
        tensor_kinds(model),
        dataset="d",
        family="vit",
        arch="v",
        seed=3,
        epoch=0,
    )
    df = stats_table(dump, hist(8))
    assert df.height == (dump.num_rows + 2) * 2 + 1  # (tensors + pools) x (w, delta) + scaled
    pos = df.filter(scope="pos_embed", target="w").row(0, named=True)
    assert pos["kind"] == "embedding" and math.isnan(pos["spectral_norm"])
    q = df.filter(scope="blocks.0.attn.q.weight", target="w").row(0, named=True)
    assert q["layer"] == "blocks.0.attn.q" and q["in_abs_mean"] > 0
    maps = strength_maps(dump, "vit", (3, 4, 4))
    assert maps.height == 3 * 2 * 2 and set(maps["tensor"]) == {"patch_embed.proj.weight"}


def test_large_matrices_get_the_same_spectral_norm_from_lanczos():
    from weightzoo import stats

    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.05, (300, stats.LANCZOS_MIN_DIM + 50)).astype(np.float32)
    s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    got = matrix_stats(w)
    assert got["spectral_norm"] == pytest.approx(s[0], rel=1e-7)
    assert got["stable_rank"] == pytest.approx(np.sum(s**2) / s[0] ** 2, rel=1e-7)
    assert matrix_stats(w) == got  # a fixed start vector: the same bits every time


def test_segment_stats_equal_tensor_stats_of_each_segment():
    from weightzoo.stats import segment_stats

    rng = np.random.default_rng(4)
    parts = [rng.normal(0, 1, n) for n in (5, 0, 1, 300)] + [np.full(7, 0.25)]
    cols = segment_stats(
        np.concatenate(parts), np.cumsum([0] + [p.size for p in parts[:-1]]), RANGE, 8
    )
    for i, part in enumerate(parts):
        one = tensor_stats(part, RANGE, 8)
        for key, value in one.items():
            got = cols[key][i]
            np.testing.assert_allclose(
                got, value, rtol=1e-12, atol=0, equal_nan=True, err_msg=f"segment {i} {key}"
            )


def test_heavy_tail_fits_fill_the_weight_matrices_and_summarise_the_pool():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(60, 80)).astype(np.float32)
    w1 = (w0 + 0.1 * rng.normal(size=(60, 80))).astype(np.float32)
    b = np.zeros(60, np.float32)
    table = weights_table({(0, 0): tensors(w0, b), (0, 1): tensors(w1, b)})
    from weightzoo.spectral import SpectralConfig

    fits = SpectralConfig(
        min_evals=50, min_tail=10, null_draws=3, null_min_evals=0, pool_kernel_positions=False
    )
    df = stats_table(table, hist(4), fits)
    matrix = df.filter(scope="hidden.0.weight", target="w").sort("epoch")
    assert matrix["num_evals"].to_list() == [60.0, 60.0]  # min(60, 80) eigenvalues
    assert set(matrix["fit_status"]) <= {"ok", "short_tail"}
    assert matrix["alpha_init"].to_list() == [matrix["alpha"][0]] * 2  # epoch 0's alpha
    # a Gaussian matrix: no heavy tail against its shuffled null
    assert not matrix["heavy_tailed"].any()
    # the same fit as the spectral module's own, with the null seeded by seed, epoch, name
    import zlib

    from weightzoo import spectral

    seed = [0, 1, zlib.crc32(b"hidden.0.weight")]
    again = spectral.spectral_stats(w1, seed=seed, **fits.keywords())
    assert matrix["alpha"][1] == again["alpha"] and matrix["alpha_null"][1] == again["alpha_null"]
    pool = df.filter(scope="all_weights", target="w").sort("epoch")
    ok = matrix["fit_status"] == "ok"
    assert pool["n_valid_fits"].to_list() == ok.cast(pl.Int32).to_list()
    assert pool.filter(ok.to_list())["alpha"].to_list() == matrix.filter(ok)["alpha"].to_list()
    # biases and w - w0 rows get no fit; without settings every fit column is null
    assert df.filter(scope="hidden.0.bias")["fit_status"].null_count() == 4
    assert df.filter(target="delta", scope_type="tensor")["alpha"].is_null().all()
    assert stats_table(table, hist(4))["alpha"].is_null().all()


# -- the fast paths give numpy's values bit for bit --------------------------------------------


def _adversarial_arrays() -> list[np.ndarray]:
    """Arrays at and above stats.RADIX_MIN whose percentiles a wrong radix select would get
    wrong: one sign only, ties, signed zeros, subnormals, infinities, huge and tiny scales."""
    from weightzoo.stats import RADIX_MIN

    rng = np.random.default_rng(7)
    out = []
    for n in (RADIX_MIN, RADIX_MIN + 1, 3 * RADIX_MIN + 5, 250_001):
        normal = rng.standard_normal(n)
        zeros = normal.copy()
        zeros[::7], zeros[::11] = 0.0, -0.0
        infinite = normal.copy()
        infinite[[3, 9]] = [np.inf, -np.inf]
        out += [
            normal,
            normal * 1e-30,
            np.abs(normal) * 1e6,
            -np.abs(normal),
            rng.integers(-3, 4, n).astype(np.float64),  # many ties
            np.zeros(n),
            rng.standard_cauchy(n),
            normal.astype(np.float32).astype(np.float64),  # float32 weights as stored
            zeros,
            infinite,
            np.where(rng.random(n) < 0.5, 5e-324, -5e-324),  # subnormals of both signs
        ]
    return out


def test_percentiles_are_numpys_bit_for_bit():
    from weightzoo.stats import percentiles

    with np.errstate(invalid="ignore"):
        for x in _adversarial_arrays():
            expected = np.percentile(x, QUANTILES)
            got = percentiles(x)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected, err_msg=f"n={x.size}")
    nan = np.random.default_rng(1).standard_normal(40_000)
    nan[17] = np.nan
    assert np.isnan(percentiles(nan)).all()  # as np.percentile says


def _numpy_histogram_counts(x: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """np.histogram with the outliers put in the edge bins, as the stats define it."""
    return np.histogram(np.clip(x, lo, hi), bins=bins, range=(lo, hi))[0]


def test_histogram_counts_are_numpys_at_every_edge():
    from weightzoo.stats import _segment_counts

    lo, hi, bins = -1.0, 1.0, 200
    edges = np.linspace(lo, hi, bins + 1)
    near = np.concatenate(
        [edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), edges + 1e-12]
    )
    rng = np.random.default_rng(3)
    x = np.concatenate([near, rng.normal(0, 0.4, 50_000), [-7.0, 3.0, -np.inf, np.inf, hi, lo]])
    got = _segment_counts(x, np.array([x.size]), lo, hi, bins)[0]
    np.testing.assert_array_equal(got, _numpy_histogram_counts(x, lo, hi, bins))
    # several segments at once: each its own counts
    parts = [x[:1000], x[1000:1001], x[1001:]]
    got = _segment_counts(x, np.array([p.size for p in parts]), lo, hi, bins)
    for row, part in zip(got, parts, strict=True):
        np.testing.assert_array_equal(row, _numpy_histogram_counts(part, lo, hi, bins))


def test_pool_statistics_combined_from_tensors_equal_the_pools_own():
    # A pool's statistics come from its tensors': counts, histograms, extremes and quantiles
    # must be what the pool's own values give, bit for bit; sums and moments to rounding. One
    # weight matrix is shifted by 5, another by 0.5, so that the members' means differ (the
    # cross terms of the combined central moments matter); a.weight and b.weight are large
    # enough for the radix select (their counts taken once, with the tensor's), so are the
    # pools of w and delta, c.weight is not (counted for the pool).
    rng = np.random.default_rng(5)
    shapes = {
        **{"a.weight": (300, 80), "a.bias": (300,), "b.weight": (200, 300), "b.bias": (200,)},
        **{"c.weight": (10, 200), "c.bias": (10,)},
    }
    state = {k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in shapes.items()}
    state["b.weight"] += np.float32(0.5)
    state["c.weight"] += np.float32(5.0)
    init = {k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in shapes.items()}

    def dump(arrays: dict, epoch: int) -> pa.Table:
        tensors = [(k, k.rsplit(".", 1)[1], a) for k, a in arrays.items()]
        return weights_table({(0, epoch): tensors})

    found = dump_stats(dump(state, 3), dump(init, 0), hist(50))
    weights = [v.ravel() for k, v in state.items() if k.endswith("weight")]
    deltas = [(state[k].astype(np.float64) - init[k]).ravel() for k in state]
    expected = {
        ("all_weights", "w"): np.concatenate(weights),
        ("all_params", "w"): np.concatenate([v.ravel() for v in state.values()]),
        ("all_weights", "delta"): np.concatenate([deltas[0], deltas[2], deltas[4]]),
        ("all_params", "delta"): np.concatenate(deltas),
    }
    by_key = {(r["scope"], r["target"]): r for r in found}
    assert expected[("all_weights", "w")].size >= stats.RADIX_MIN
    for key, values in expected.items():
        own = tensor_stats(values, RANGE, 50)
        np.testing.assert_array_equal(by_key[key]["hist"], own["hist"], err_msg=str(key))
        for c in ("count", "min", "max", "max_abs", *stats.QUANTILE_COLUMNS):
            assert by_key[key][c] == own[c], (key, c)
        for c in ("mean", "std", "var", "skew", "kurtosis", "l1", "l2"):
            assert by_key[key][c] == pytest.approx(own[c], rel=1e-13), (key, c)


def test_files_stats_equals_file_stats_of_each_file_whatever_the_grouping(tmp_path):
    """Many small runs summarised together give each file's own `file_stats` frame bit for
    bit: runs of different architectures with the same seed never share an epoch-0 w0, a
    file of two seeds and a file without epoch 0 keep theirs."""
    import pyarrow.parquet as pq

    from weightzoo.spectral import SpectralConfig
    from weightzoo.stats import file_stats, files_stats

    rng = np.random.default_rng(7)
    fits = SpectralConfig(
        min_evals=5, min_tail=3, null_draws=1, null_min_evals=0, pool_kernel_positions=False
    )
    paths = []
    layouts = [((8, 6), [0, 1, 2]), ((5, 9), [0, 3]), ((8, 6), [1, 2]), ((7, 7), [0, 1])]
    for i, (shape, epochs) in enumerate(layouts):
        seeds = [0, 1] if i == 3 else [0]  # every file has a seed 0
        dumps = {
            (s, e): tensors(
                rng.normal(size=shape).astype(np.float32),
                rng.normal(size=shape[0]).astype(np.float32),
            )
            for s in seeds
            for e in epochs
        }
        table = weights_table(dumps)
        table = table.set_column(2, "arch", pa.array([f"mlp-{i}"] * table.num_rows))
        path = tmp_path / f"run{i}.parquet"
        with pq.ParquetWriter(path, WEIGHTS_SCHEMA) as writer:
            for s, e in dumps:  # a row group per dump, as a training job writes them
                keep = (np.array(table["seed"]) == s) & (np.array(table["epoch"]) == e)
                writer.write_table(table.filter(pa.array(keep)))
        paths.append(path)
    one_by_one = [file_stats(p, hist(8), fits) for p in paths]
    assert one_by_one[2].filter(target="delta").height == 0  # no epoch 0: no w - w0
    for at_once in (1, 2, 3, 64):
        together = list(files_stats(paths, hist(8), fits, at_once=at_once))
        assert len(together) == len(paths)
        for alone, found in zip(one_by_one, together, strict=True):
            assert found.equals(alone), at_once
