"""The claim tests on synthetic zoos whose answer is known, and the resampling they rest on."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest
import yaml
from conftest import ROOT
from scipy import stats as sps
from scipy.stats import wasserstein_distance

from weightzoo import analysis, controls, resampling
from weightzoo.analysis import between
from weightzoo.analysis.cells import mean_distance_to_group, seed_dispersion
from weightzoo.analysis.inference import BORDERLINE, Part, correlation_part, decide, pool
from weightzoo.analysis.rows import sign
from weightzoo.analysis.trajectories import family_similarity_tests
from weightzoo.figures import w1_matrix


def claim_settings(**overrides) -> analysis.ClaimSettings:
    """The claim settings of config/config.yaml with the given fields overridden."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["analysis"]
    return dataclasses.replace(analysis.ClaimSettings.from_config(cfg), **overrides)


STATS = ("mean", "std", "skew", "kurtosis", "max_abs", "q99")
BINS = 200
# the synthetic zoos have no spectral columns (alpha) and their own w / std(w0) range
SETTINGS = claim_settings(statistics=STATS, n_perm=999, scaled_range=(-6.0, 6.0))
Z = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])  # seed offsets: mean pairwise |z_i - z_j| = 1
E_ABS = math.sqrt(2 / math.pi)  # W1(N(0, a), N(0, b)) = |a - b| E|Z| for centred Gaussians
FINAL = 10  # the final epoch of every synthetic run


# ---------------------------------------------------------------------------------------
# Synthetic zoos: runs and stats tables shaped like the real ones, no training
# ---------------------------------------------------------------------------------------


def gaussian_hist(sigma: float, lo: float, hi: float, bins: int = BINS) -> list[float]:
    """Exact bin masses of N(0, sigma) on [lo, hi] (tails in the edge bins); sigma 0: a spike."""
    edges = np.linspace(lo, hi, bins + 1)
    cdf = sps.norm.cdf(edges, scale=sigma) if sigma > 0 else (edges >= 0).astype(float)
    cdf[0], cdf[-1] = 0.0, 1.0
    return np.diff(cdf).tolist()


def value(cell: dict, key: str, seed: int, default: float = 0.0) -> float:
    """A cell's value for one seed: its per-seed list's entry, or the one value it has."""
    v = cell.get(key, default)
    return float(v[seed]) if np.ndim(v) else float(v)


def pool_row(key: dict, epoch: int, target: str, sigma: float, n_params: int, **shape) -> dict:
    """The all_weights row of one dump and target: N(0, sigma) weights (w / std(w0) on its
    own histogram range), with the given mean, skew and kurtosis."""
    hist_range = (-6.0, 6.0) if target == "scaled" else (-1.0, 1.0)
    return {
        **key,
        "epoch": epoch,
        "scope": "all_weights",
        "scope_type": "pool",
        "kind": "pool",
        "target": target,
        "std": sigma,
        "max_abs": 3 * sigma,
        "q99": 2.33 * sigma,
        "l2": sigma * math.sqrt(n_params),
        "hist": gaussian_hist(sigma, *hist_range),
        **shape,
    }


def make_zoo(cells: list[dict], seeds: int = 5, scaled: bool = True, n_classes=None):
    """(runs, stats) of a synthetic zoo: one dict per cell with family, arch, n_params, acc,
    sigma0 (initial std), sigma (final std), delta (std of w - w0), optionally mean, skew,
    kurtosis and their *_epoch0 values; each a list per seed or one value."""
    runs, rows = [], []
    for c in cells:
        for s in range(seeds):
            key = {"dataset": c.get("dataset", "d"), "family": c["family"], "arch": c["arch"]}
            key["seed"] = s
            acc, n = value(c, "acc", s), c["n_params"]
            runs.append({**key, "n_params": n, "status": "ok", "final_test_acc": acc})
            s0, sigma, delta = (
                value(c, "sigma0", s, 0.1),
                value(c, "sigma", s, 0.1),
                value(c, "delta", s, 0.05),
            )
            for epoch, suffix, w, d in ((0, "_epoch0", s0, 0.0), (FINAL, "", sigma, delta)):
                shape = {m: value(c, m + suffix, s) for m in ("mean", "skew", "kurtosis")}
                rows.append(pool_row(key, epoch, "w", w, n, **shape))
                rows.append(pool_row(key, epoch, "delta", d, n, mean=0.0, skew=0.0, kurtosis=0.0))
                if scaled:
                    rows.append(pool_row(key, epoch, "scaled", w / s0, n, **shape))
    runs = pl.DataFrame(runs).with_columns(
        pl.col("seed").cast(pl.Int32), epochs_run=pl.lit(FINAL, pl.Int32)
    )
    if n_classes is not None:
        runs = runs.with_columns(n_classes=pl.lit(n_classes))
    stats = pl.DataFrame(rows).with_columns(
        pl.col("seed", "epoch").cast(pl.Int32), pl.col("hist").cast(pl.List(pl.Float32))
    )
    return runs, stats.lazy()


def by(frame: pl.DataFrame, **keys) -> dict:
    """The one row of `frame` matching `keys`, as a dict."""
    rows = frame.filter(**keys)
    assert rows.height == 1, (keys, rows)
    return rows.row(0, named=True)


# Sizes unrelated to accuracy (a shuffled log-spaced sweep), so size controls can pass.
SHUFFLED_SIZES = [3000, 80, 12000, 400, 1500, 200, 6000, 120, 800, 30000]
ACCS = np.linspace(0.40, 0.95, 10)


def scatter_zoo() -> list[dict]:
    """(a) Seeds of bad architectures scatter, good ones agree: the seed offsets of a cell
    are 0.1 (1 - acc) Z, so its seed dispersion is 0.1 (1 - acc) E|Z| (mean |z_i - z_j| = 1)."""
    return [
        {
            "family": "mlp",
            "arch": f"a{i}",
            "n_params": SHUFFLED_SIZES[i],
            "acc": acc,
            "sigma0": 0.1,
            "sigma": 0.2 * (1 + 0.5 * (1 - acc) * Z),
            "delta": 0.15 * (1 + 0.5 * (1 - acc) * Z),
        }
        for i, acc in enumerate(ACCS)
    ]


def test_seeds_of_bad_architectures_scatter_supports_claim_2():
    runs, stats = make_zoo(scatter_zoo())
    result = analysis.run_claims(runs, stats, SETTINGS)
    worst, best = by(result.cells, arch="a0"), by(result.cells, arch="a9")
    # sigma = 0.2 (1 + 0.5 (1 - acc) z): seed W1 = 0.1 (1 - acc) sqrt(2/pi)
    assert worst["seed_w1_w"] == pytest.approx(0.1 * 0.60 * E_ABS, rel=0.02)
    assert best["seed_w1_w"] == pytest.approx(0.1 * 0.05 * E_ABS, rel=0.05)
    rows = result.claims.filter(claim=2, dataset="d", family="mlp")
    primary = by(rows, test="seed_w1_spearman", target="w")
    assert primary["estimate"] == pytest.approx(-1.0) and primary["p_value"] <= 0.002
    assert by(rows, test="seed_w1_partial_size", target="w")["estimate"] == pytest.approx(-1.0)
    assert by(rows, test="seed_w1_partial_size", target="scaled")["role"] == (
        "control: initialisation"
    )
    v = by(analysis.verdicts(result.claims), claim=2, dataset="d", family="mlp")
    assert v["verdict"] == "supported" and v["direction"] == analysis.MINUS
    assert v["beyond_size"] and v["beyond_init"] and v["n_cells"] == 10 and v["n_runs"] == 50


# (b) Four large optimal architectures; six suboptimal ones spanning 30-3000 parameters. The
# weight scale is set by size (Kaiming-like: sigma = 0.3 (n / 30)^-1/4, initial and final
# alike); each cell's seeds agree up to offsets of size m * Z, with m unrelated to accuracy.
SIZE_ZOO = [(30, 0.30), (100, 0.40), (300, 0.50), (1000, 0.60), (2000, 0.70), (3000, 0.75),
            (9000, 0.952), (10000, 0.955), (11000, 0.96), (12000, 0.958)]  # fmt: skip
SPREAD = [4, 9, 1, 10, 6, 2, 8, 3, 7, 5]  # seed offsets m: rank correlation with acc -0.006
SIZE_ACCS = [acc for _, acc in SIZE_ZOO]


def size_zoo() -> list[dict]:
    """(b) Groups that differ only by size span: seeds agree within every architecture."""
    cells = []
    for i, ((n, acc), m) in enumerate(zip(SIZE_ZOO, SPREAD, strict=True)):
        sigma = 0.3 * (n / 30) ** -0.25
        cells.append(
            {
                "family": "mlp",
                "arch": f"s{i}",
                "n_params": n,
                "acc": acc,
                "sigma0": sigma,
                "sigma": sigma + 0.001 * m * Z,
                "delta": 0.5 * sigma + 0.001 * m * Z,
            }
        )
    return cells


def test_groups_spanning_more_sizes_do_not_support_claim_2_at_the_architecture_level():
    runs, stats = make_zoo(size_zoo())
    result = analysis.run_claims(runs, stats, SETTINGS)
    groups = dict(result.cells.select("arch", "group").rows())
    assert (groups["s5"], groups["s6"]) == ("suboptimal", "optimal")  # 0.75 and 0.952 vs 0.96
    rows = result.claims.filter(claim=2, dataset="d", family="mlp")
    primary = by(rows, test="seed_w1_spearman", target="w")
    # seed dispersion = 0.001 m sqrt(2/pi): its rank correlation with accuracy is that of m
    assert primary["estimate"] == pytest.approx(sps.spearmanr(SPREAD, SIZE_ACCS).statistic)
    assert abs(primary["estimate"]) < 0.1 and primary["p_value"] > 0.5
    v = by(analysis.verdicts(result.claims), claim=2, dataset="d", family="mlp")
    assert v["verdict"] == "not supported"
    # ... while the old run-level reading (runs as independent samples) says "supported":
    between = by(rows, test="between_w1_cells", target="w")
    assert between["run_estimate"] < 0.2 and between["run_p_value"] < 1e-6
    assert "run-level ratio" in v["detail"]
    # between architectures, raw weights repeat the size span; w / std(w0) removes it
    assert between["supported"] and math.exp(between["estimate"]) < 0.05
    scaled = by(rows, test="between_w1_cells", target="scaled")
    assert not scaled["supported"] and scaled["estimate"] > 0


def size_tracking_zoo() -> list[dict]:
    """(c) Accuracy grows with size (three swaps break exact ties); kurtosis = -log(n_params)."""
    sizes = np.geomspace(30, 30000, 12).round()
    order = [0, 2, 1, 3, 4, 5, 7, 6, 8, 9, 11, 10]  # acc rank of each size
    accs = np.linspace(0.3, 0.95, 12)[order]
    return [
        {
            "family": "cnn",
            "arch": f"c{i}",
            "n_params": int(n),
            "acc": acc,
            "kurtosis": -math.log(n),
            "kurtosis_epoch0": 0.0,
            "sigma": 0.1 * (1 + 0.1 * Z),
        }
        for i, (n, acc) in enumerate(zip(sizes, accs, strict=True))
    ]


def test_statistic_whose_ranks_follow_size_is_undefined_not_explained():
    cells = size_tracking_zoo()
    runs, stats = make_zoo(cells)
    result = analysis.run_claims(runs, stats, SETTINGS)
    rows = result.claims.filter(claim=1, dataset="d", family="cnn", statistic="kurtosis")
    raw = by(rows, test="spearman_cells")
    sizes = [c["n_params"] for c in cells]
    accs = [c["acc"] for c in cells]
    assert raw["estimate"] == pytest.approx(-sps.spearmanr(sizes, accs).statistic)  # -0.979
    assert raw["estimate"] < -0.95 and raw["supported"]
    # kurtosis = -log(n_params): its ranks are size's, nothing is left beyond size
    partial = by(rows, test="partial_size")
    assert partial["estimate"] is None and partial["p_value"] is None
    assert partial["ci_low"] is None and partial["negligible"] is None
    assert "partial undefined" in partial["note"] and "not pooled" in partial["note"]
    per_stat = analysis.statistic_verdicts(result.claims)
    assert by(per_stat, claim=1, family="cnn", statistic="kurtosis")["verdict"] == "undefined"


def opposite_zoo() -> list[dict]:
    """(d) Kurtosis rises with accuracy in the MLPs and falls in the CNNs; sizes unrelated,
    every other statistic the same in every cell."""
    return [
        {
            "family": family,
            "arch": f"{family}{i}",
            "n_params": SHUFFLED_SIZES[i],
            "acc": acc,
            "kurtosis": sign * acc,
            "kurtosis_epoch0": 0.0,
            "sigma": 0.1 * (1 + 0.1 * Z),
        }
        for family, sign in (("mlp", 1), ("cnn", -1))
        for i, acc in enumerate(ACCS)
    ]


def test_opposite_directions_in_two_families_are_inconsistent():
    runs, stats = make_zoo(opposite_zoo())
    settings = dataclasses.replace(SETTINGS, primary_statistic="kurtosis")
    result = analysis.run_claims(runs, stats, settings)
    per_stat = analysis.statistic_verdicts(result.claims).filter(claim=1, statistic="kurtosis")
    mlp, cnn = by(per_stat, family="mlp"), by(per_stat, family="cnn")
    assert (mlp["verdict"], mlp["direction"]) == ("supported", "+")
    assert (cnn["verdict"], cnn["direction"]) == ("supported", "−")
    assert (mlp["estimate"], cnn["estimate"]) == (pytest.approx(1.0), pytest.approx(-1.0))
    pooled = by(per_stat, dataset="d", family="all")
    # ten cells at +1 and ten at -1: the cell-weighted pooled rho is 0
    assert pooled["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert pooled["verdict"] == "inconsistent" and pooled["consistent"] is False
    assert pooled["directions"] == "cnn −, mlp +"
    head = by(analysis.verdicts(result.claims), claim=1, dataset="d", family="all")
    assert head["verdict"] == "inconsistent" and "kurtosis ρ +0.00" in head["detail"]


def test_family_at_chance_has_no_optimal_group_and_says_so():
    chance = [
        {"family": "vit", "arch": f"v{i}", "n_params": 100 * (i + 1), "acc": 0.10 + 0.01 * i}
        for i in range(3)
    ]  # best 0.12 <= 1/10 + 0.05
    runs, stats = make_zoo(scatter_zoo() + chance)
    result = analysis.run_claims(runs, stats, SETTINGS)
    vit = result.groups.filter(family="vit")
    assert set(vit["group"]) == {"at chance"} and vit["family_at_chance"].all()
    assert not result.groups.filter(family="mlp")["family_at_chance"].any()
    v = analysis.verdicts(result.claims)
    assert by(v, claim=1, family="vit")["verdict"] == "at chance"
    assert by(v, claim=2, family="vit")["verdict"] == "at chance"
    assert "0.120 <= chance 0.100" in by(v, claim=1, family="vit")["detail"]
    assert v.filter(family="all").height == 0  # pooling mlp alone would repeat its rows
    # a declared class count moves chance: two classes put chance at 0.5
    runs2, _ = make_zoo([{"family": "mlp", "arch": "b", "n_params": 10, "acc": 0.52}], n_classes=2)
    two_classes = analysis.label_groups(runs2, 0.01, 0.1, 0.05)
    assert two_classes["group"].unique().to_list() == ["at chance"]


def test_without_scaled_histograms_the_init_control_is_w_minus_w0():
    runs, stats = make_zoo(scatter_zoo(), scaled=False)
    result = analysis.run_claims(runs, stats, SETTINGS)
    rows = result.claims.filter(claim=2, test="seed_w1_partial_size")
    assert set(rows["target"]) == {"w", "delta"}
    assert by(rows, target="delta")["role"] == "control: initialisation"
    assert result.cells["seed_w1_delta"].is_not_null().all()
    assert "seed_w1_scaled" not in result.cells.columns


# ---------------------------------------------------------------------------------------
# Claim 3: shape and size, separately
# ---------------------------------------------------------------------------------------


def cell_traj(growth: dict[str, float], cells: int = 4, spread: float = 0.05) -> pl.DataFrame:
    """Cell trajectories rel = 1 + g (1 + spread c) p for each family's growth g."""
    rows = []
    for family, g in growth.items():
        for c in range(cells):
            for p in (0.0, 0.25, 0.5, 1.0):
                rel = 1 + g * (1 + spread * c) * p
                rows.append(
                    {
                        "dataset": "d",
                        "family": family,
                        "arch": f"{family}{c}",
                        "progress": p,
                        "rel_std": rel,
                        "rel_dist": rel - 1,
                        "runs": 5,
                        "family_at_chance": False,
                    }
                )
    return pl.DataFrame(rows)


def test_claim_3_reports_shape_and_size_separately():
    # straight lines: half time 0.5 and area 0.5 in every cell; changes 1.5 and 0.15
    claims = analysis.claims_table(
        family_similarity_tests(cell_traj({"cnn": 1.5, "vit": 0.15}), SETTINGS)
    )
    size = by(claims, test="size_ratio", statistic="rel_std")
    # geometric mean of 1.5 (1 + 0.05 c) over that of 0.15 (1 + 0.05 c): exactly 10
    assert size["estimate"] == pytest.approx(10.0) and size["ci_low"] > 1.25
    assert size["note"].startswith("different")
    half = by(claims, test="half_time", statistic="rel_std")
    assert half["estimate"] == pytest.approx(0.0, abs=1e-12) and half["note"].startswith("same")
    v = by(analysis.verdicts(claims), claim=3)
    assert v["verdict"] == "same shape" and "size_ratio: 10" in v["detail"]
    for growth, verdict in (
        ({"cnn": 1.5, "vit": 1.45}, "same shape and size"),
        ({"cnn": 1.5, "vit": -0.4}, "different"),  # opposite directions of change
    ):
        rows = family_similarity_tests(cell_traj(growth), SETTINGS)
        assert by(analysis.verdicts(analysis.claims_table(rows)), claim=3)["verdict"] == verdict


def test_claim_3_with_too_few_cells_is_inconclusive_not_same():
    # two cells per family 50 % apart, sizes 1.5 and 1.45 (ratio 1.03): too few to show it
    traj = cell_traj({"cnn": 1.5, "vit": 1.45}, cells=2, spread=0.5)
    rows = analysis.claims_table(family_similarity_tests(traj, SETTINGS))
    size = by(rows, test="size_ratio", statistic="rel_std")
    assert size["estimate"] == pytest.approx(1.5 / 1.45) and not size["note"].startswith("same")


# ---------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------


def test_groups_follow_the_distance_to_the_best_architecture():
    runs = pl.DataFrame(
        {
            "dataset": ["d"] * 8,
            "family": ["mlp"] * 8,
            "arch": ["a", "a", "b", "b", "c", "c", "e", "e"],
            "final_test_acc": [0.96, 0.94, 0.95, 0.94, 0.91, 0.89, 0.5, 0.6],
        }
    )
    out = analysis.label_groups(
        runs, optimal_within=0.01, suboptimal_below=0.10, chance_margin=0.05
    )
    groups = dict(out.group_by("arch").agg(pl.col("group").first()).rows())
    # best arch mean 0.95 (a); b 0.945 within 1 point; c 0.90 within 10; e 0.55 below
    assert groups == {"a": "optimal", "b": "optimal", "c": "intermediate", "e": "suboptimal"}
    assert out["best_arch_acc"].unique().to_list() == [pytest.approx(0.95)]
    assert "best - 0.01" in out["group_rule"][0]


def test_w1_between_histograms_matches_scipy():
    hists = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0.25, 0.25, 0.25, 0.25]])
    dist = w1_matrix(hists, (0.0, 4.0))
    centres = np.arange(4) + 0.5
    assert dist[0, 1] == pytest.approx(2.0)  # all mass moved by two bins of width 1
    for i in range(3):
        for j in range(3):
            expected = wasserstein_distance(centres, centres, hists[i], hists[j])
            assert dist[i, j] == pytest.approx(expected)


def test_seed_dispersion_and_group_distances_match_the_pairwise_matrix():
    rng = np.random.default_rng(0)
    hists = rng.random((9, 12))
    hists /= hists.sum(axis=1, keepdims=True)
    cdf = np.cumsum(hists, axis=1)
    cell = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    dist = w1_matrix(hists, (0.0, 1.2))
    disp = seed_dispersion(cdf, cell, 4, 0.1)
    for c in range(3):
        idx = np.flatnonzero(cell == c)
        block = dist[np.ix_(idx, idx)]
        assert disp[c] == pytest.approx(block.sum() / (len(idx) * (len(idx) - 1)))
    assert np.isnan(disp[3])  # a cell with no seeds
    scores = mean_distance_to_group(cdf, 0.1)
    assert scores == pytest.approx(dist.sum(axis=1) / 8)


def test_spearman_and_partial_spearman_match_their_formulas():
    rng = np.random.default_rng(3)
    x, y, c = rng.standard_normal((3, 20))
    y += x
    plain = correlation_part(x, y, None, n_perm=99, n_boot=99, rng=rng)
    assert plain.estimate == pytest.approx(sps.spearmanr(x, y).statistic)
    r = sps.spearmanr(np.vstack([x, y, c]), axis=1).statistic
    expected = (r[0, 1] - r[0, 2] * r[1, 2]) / math.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
    partial = correlation_part(x, y, c, n_perm=99, n_boot=99, rng=rng)
    assert partial.estimate == pytest.approx(expected)
    assert partial.null.shape == (99,) and partial.boot.shape == (99,)


def test_pooling_weights_strata_by_cells():
    parts = [
        Part(0.5, np.zeros(9), np.full(9, 0.5), n_cells=10, n_runs=50),
        Part(-1.0, np.zeros(9), np.full(9, -1.0), n_cells=30, n_runs=90),
        Part(None, n_cells=2, note="too few"),
    ]
    pooled = pool(parts)
    assert pooled.estimate == pytest.approx((10 * 0.5 - 30 * 1.0) / 40)
    assert pooled.p_value == pytest.approx(1 / 10)  # no null draw as extreme as -0.625
    assert (pooled.n_cells, pooled.n_runs) == (42, 140)
    assert "1 of 3 strata not testable" in pooled.note


def test_pooling_weights_nulls_draws_and_differences_by_cells():
    # weights 10/40 and 30/40; undefined strata are left out, not pooled as 0
    a = Part(0.5, np.full(9, -2.0), np.full(9, 0.2), n_cells=10, n_runs=50)
    b = Part(-1.0, np.full(9, 0.4), np.full(9, -0.6), n_cells=30, n_runs=90)
    a.extra = {"difference": 0.1, "difference_boot": np.full(9, 0.2)}
    b.extra = {"difference": 0.3, "difference_boot": np.full(9, 0.6)}
    undefined = Part(None, n_cells=8, note="undefined", extra={"undefined": True})
    pooled = pool([a, b, undefined], covariates=1)
    assert pooled.estimate == pytest.approx(-0.625)
    # pooled null 0.25 (-2.0) + 0.75 (0.4) = -0.2, never as extreme as -0.625: p = 1/10
    # (unweighted, -0.8 every draw: p = 1)
    assert pooled.p_value == pytest.approx(0.1)
    assert pooled.ci == pytest.approx((-0.4, -0.4))  # 0.25 (0.2) + 0.75 (-0.6)
    assert pooled.difference == pytest.approx(0.25)  # 0.25 (0.1) + 0.75 (0.3)
    assert pooled.difference_ci == pytest.approx((0.5, 0.5))  # 0.25 (0.2) + 0.75 (0.6)
    # Fisher se: sqrt(0.25^2 1.06 / 6 + 0.75^2 1.06 / 26)
    assert pooled.se == pytest.approx(math.sqrt(0.0625 * 1.06 / 6 + 0.5625 * 1.06 / 26))
    assert (pooled.n_cells, pooled.undefined) == (48, False)
    only = pool([undefined, undefined])
    assert only.estimate is None and only.undefined


def test_benjamini_hochberg_q_values_by_hand():
    # p 0.01, 0.04, 0.03 of one family: q = min over ranks >= own of p m / rank
    # sorted 0.01 (x3/1 = 0.03), 0.03 (x3/2 = 0.045), 0.04 (x3/3 = 0.04) -> 0.03, 0.04, 0.04
    rows = [
        analysis.ClaimTest(
            claim=1, within="family", dataset="d", family=f, test="spearman_cells", p_value=p
        )
        for f, p in (("a", 0.01), ("b", 0.04), ("c", 0.03))
    ]
    decided = decide(rows, 0.035, 999)
    assert [r.q_value for r in decided] == pytest.approx([0.03, 0.04, 0.04])
    assert [r.significant for r in decided] == [True, False, False]


def test_partial_null_is_freedman_lane():
    rng = np.random.default_rng(3)
    x, y, c = rng.standard_normal((3, 12))
    y += 2 * c
    part = correlation_part(x, y, c, n_perm=99, n_boot=99, rng=np.random.default_rng(0))
    perms = resampling.permutation_indices(12, 99, np.random.default_rng(0))
    expected = controls.freedman_lane_null(x[None], y[None], c[None], perms[None])[0]
    assert part.null == pytest.approx(expected)
    raw = sps.spearmanr(x, y).statistic
    assert part.extra["difference"] == pytest.approx(raw - part.estimate)


def declared_zoo() -> list[dict]:
    """(e) std unrelated to accuracy (rho 0.05), kurtosis = accuracy; sizes shuffled."""
    k = [3, 7, 1, 9, 0, 5, 8, 2, 6, 4]
    return [
        {
            "family": "mlp",
            "arch": f"m{i}",
            "n_params": SHUFFLED_SIZES[i],
            "acc": acc,
            "sigma": 0.1 * (1 + 0.1 * k[i]) * (1 + 0.01 * Z),
            "kurtosis": acc,
        }
        for i, acc in enumerate(ACCS)
    ]


def test_the_declared_statistic_decides_and_the_strongest_is_exploratory():
    runs, stats = make_zoo(declared_zoo())
    result = analysis.run_claims(runs, stats, SETTINGS)
    v = by(analysis.verdicts(result.claims), claim=1, family="mlp")
    assert (v["statistic"], v["verdict"]) == ("std", "not supported")
    strongest = by(result.claims, claim=1, family="mlp", test="strongest_maxt")
    assert strongest["statistic"] == "kurtosis" and strongest["estimate"] == pytest.approx(1.0)
    # no permutation of 10 cells reaches |rho| 1 for any statistic: p = 1 / (1 + 999)
    assert strongest["p_value"] == pytest.approx(0.001)
    assert "strongest: kurtosis ρ +1.00" in v["exploratory"] and "exploratory" in v["exploratory"]
    # a statistic missing in one cell takes no part; the others are still compared
    stats = stats.with_columns(
        skew=pl.when((pl.col("arch") == "m3") & (pl.col("epoch") == FINAL))
        .then(None)
        .otherwise(pl.col("skew"))
    )
    missing = analysis.run_claims(runs, stats, SETTINGS).claims
    row = by(missing, claim=1, family="mlp", test="strongest_maxt")
    assert row["statistic"] == "kurtosis" and "skew" not in row["note"]
    assert "kurtosis" in row["note"] and "std" in row["note"]
    declared = result.claims.filter(claim=1, family="mlp", declared=True)
    assert set(declared["statistic"]) == {"std"}
    # the size control's columns: power at 10 cells and the equivalence test
    size = by(result.claims, claim=1, family="mlp", statistic="std", test="partial_size")
    assert size["detectable"] == pytest.approx(controls.detectable(10, 1, 0.05))
    assert size["negligible"] is False and size["equivalence_low"] < -0.2


def test_a_q_value_within_permutation_error_of_alpha_is_flagged():
    rows = [
        analysis.ClaimTest(
            claim=1, within="family", dataset="d", family=f, test="spearman_cells", p_value=p
        )
        for f, p in (("near", 0.05), ("far", 0.001))
    ]
    near, far = decide([rows[0]], 0.05, 999) + decide([rows[1]], 0.05, 999)
    # p = q = 0.05 from 999 permutations: Monte Carlo error 2 sqrt(.05 .95 / 999) = 0.014
    assert BORDERLINE in near.note and "±0.014" in near.note
    assert far.note == "" and far.significant and far.q_value == pytest.approx(0.001)
    # the decision makes new records: the ones given stay undecided
    assert rows[0].q_value is None and rows[0].note == "" and rows[1].significant is None


def test_claims_reproduce_and_do_not_depend_on_row_order():
    runs, stats = make_zoo(opposite_zoo())
    a = analysis.run_claims(runs, stats, SETTINGS).claims
    shuffled = stats.collect().sample(fraction=1.0, shuffle=True, seed=1).lazy()
    b = analysis.run_claims(runs.sample(fraction=1.0, shuffle=True, seed=2), shuffled, SETTINGS)
    assert a.equals(b.claims)


def test_final_stats_keep_each_runs_final_epoch_with_its_group():
    runs, stats = make_zoo(scatter_zoo())
    groups = analysis.label_groups(runs, 0.01, 0.1, 0.05)
    final = analysis.final_stats(stats, groups).collect()
    assert final.height == 50 * 3 and set(final["epoch"]) == {FINAL}  # 3 targets per run
    assert {"group", "final_test_acc", "n_params", "hist"} <= set(final.columns)


def test_claims_page_opens_with_the_bottom_line_then_the_legend_before_each_levels_table():
    runs, stats = make_zoo(opposite_zoo())
    settings = dataclasses.replace(SETTINGS, primary_statistic="kurtosis")
    result = analysis.run_claims(runs, stats, settings)
    v = analysis.verdicts(result.claims)
    assert v.columns == analysis.VERDICT_COLUMNS
    zoo = "The zoo holds 100 networks."
    page = analysis.claims_markdown(result.claims, v, rule="rule", settings=settings, zoo=zoo)
    lines = page.splitlines()
    sections = [line for line in lines if line.startswith("## ")]
    assert sections[:3] == ["## Bottom line", "## How they were tested", "## Verdicts"]
    assert sections[3].startswith("## Claim 1")
    assert lines[4] == zoo  # the zoo as a sentence, first under the bottom line
    assert lines[6].startswith("- **Weight statistics track accuracy**")
    assert "Zoo: {" not in page
    legend = lines.index("What each verdict means:")
    table = lines.index("### Across the architectures of each family")
    assert legend < table  # the legend before the table
    assert "| 1 | d | all | **inconsistent** | kurtosis |" in page  # `within`: the heading
    assert "claim 1 `kurtosis`" in page and "inside ±0.2" in page
    header = next(line for line in page.splitlines() if line.startswith("| claim |"))
    for column in ("size_partial", "raw_minus_partial", "detectable", "equivalence"):
        assert f" {column} |" in header


def test_claim_settings_come_from_the_config_alone(default_config):
    cfg = default_config["analysis"]
    s = analysis.ClaimSettings.from_config(cfg)
    assert (s.n_perm, s.n_boot) == (cfg["permutations"], cfg["bootstrap"])
    assert s.statistics == tuple(cfg["statistics"]) and "alpha" in s.statistics
    assert (s.min_cells, s.chance_margin) == (cfg["min_cells"], cfg["groups"]["chance_margin"])
    assert s.scaled_range == tuple(cfg["hist"]["scaled_range"]) == (-8.0, 8.0)
    assert s.hist_width("scaled", 200) == pytest.approx(0.08)
    # no default of its own that could drift from config/config.yaml
    missing = dataclasses.MISSING
    assert all(
        f.default is missing and f.default_factory is missing
        for f in dataclasses.fields(analysis.ClaimSettings)
    )


def test_claim_test_records_make_the_claims_table():
    columns = ["claim_text", *(f.name for f in dataclasses.fields(analysis.ClaimTest))]
    assert sorted(columns) == sorted(analysis.CLAIMS_SCHEMA)
    row = analysis.ClaimTest(
        claim=2, within="family", dataset="d", family="vit", test="none", note="at chance"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.q_value = 0.01
    table = analysis.claims_table([row])
    assert table.schema == pl.Schema(analysis.CLAIMS_SCHEMA)
    got = table.row(0, named=True)
    assert got["claim_text"] == analysis.CLAIMS[2] and got["scope"] == "all_weights"
    assert (got["target"], got["role"], got["unit"]) == ("w", "primary", "architecture")
    assert got["estimate"] is None and got["note"] == "at chance"


# ---------------------------------------------------------------------------------------
# Resampling whole groups
# ---------------------------------------------------------------------------------------


def test_permutations_only_exchange_elements_within_a_stratum():
    strata = np.array([0, 0, 1, 1, 1, 2])
    perms = resampling.permutation_indices(6, 200, np.random.default_rng(0), strata)
    assert all(sorted(p) == list(range(6)) for p in perms)
    assert (strata[perms] == strata).all()
    assert (perms[:, 5] == 5).all()  # alone in its stratum
    assert len({tuple(p) for p in perms}) == 12  # 2! x 3! arrangements, all reached
    again = resampling.permutation_indices(6, 200, np.random.default_rng(0), strata)
    assert (perms == again).all()


def test_bootstrap_keeps_each_stratum_and_whole_groups():
    strata = np.array([0, 0, 0, 1, 1])
    draws = resampling.bootstrap_indices(5, 500, np.random.default_rng(0), strata)
    assert (strata[draws] == strata).all()
    assert set(draws[:, :3].ravel()) == {0, 1, 2} and set(draws[:, 3:].ravel()) == {3, 4}
    groups = np.array([0, 0, 1, 1, 1, 2])  # rows of three groups (e.g. seeds of 3 cells)
    assert resampling.rows_of(groups, [2, 0, 0]).tolist() == [5, 0, 1, 0, 1]
    for sample in resampling.bootstrap_indices(3, 50, np.random.default_rng(1)):
        rows = resampling.rows_of(groups, sample)
        picked = groups[rows]
        for g in set(picked):  # every drawn group comes whole, as often as it was drawn
            assert (picked == g).sum() == (groups == g).sum() * (sample == g).sum()


def test_generator_draws_the_same_numbers_in_blocks_as_at_once():
    """What the blocks rest on: random((a, n)) then ((b, n)) is random((a + b, n))."""
    at_once = np.random.default_rng(3).random((7, 5))
    rng = np.random.default_rng(3)
    assert (np.vstack([rng.random((2, 5)), rng.random((5, 5))]) == at_once).all()


@pytest.mark.parametrize("rows", [1, 3, 64, 200, 500])
def test_chunked_resamples_are_the_same_rows_bit_for_bit(rows):
    strata = np.array([0, 0, 1, 1, 1, 2, 0, 1, 2, 2, 0, 1, 1])
    for chunks, whole in [
        (resampling.permutation_chunks, resampling.permutation_indices),
        (resampling.bootstrap_chunks, resampling.bootstrap_indices),
    ]:
        for s in (None, strata):
            a, b = np.random.default_rng(4), np.random.default_rng(4)
            blocks = list(chunks(13, 200, a, s, rows))
            assert [len(x) for x in blocks][:-1] == [rows] * (len(blocks) - 1)
            assert (np.vstack(blocks) == whole(13, 200, b, s)).all()
            assert a.random() == b.random()  # later draws (the bootstrap's) unchanged


def test_chunk_rows_fit_the_budget(monkeypatch):
    monkeypatch.setattr(resampling, "CHUNK_BYTES", 64 * 2**20)
    assert resampling.chunk_rows(30_000) == 279  # 279 x 30,000 x 8 B = 63.9 MiB
    assert resampling.chunk_rows(10**9) == 1
    blocks = resampling.bootstrap_chunks(30_000, 600, np.random.default_rng(0))
    assert [len(b) for b in blocks] == [279, 279, 42]


def test_rechunk_hands_out_blocks_of_one_size_in_order():
    chunks = [np.arange(a, b)[:, None] for a, b in [(0, 3), (3, 8), (8, 9), (9, 18)]]
    blocks = list(resampling.rechunk(chunks, 4))
    assert [len(b) for b in blocks] == [4, 4, 4, 4, 2]
    assert np.vstack(blocks).ravel().tolist() == list(range(18))
    assert [len(b) for b in resampling.rechunk(iter([]), 4)] == []


def test_the_claims_nulls_do_not_depend_on_the_block_size(monkeypatch):
    """Permutation nulls and bootstrap draws of the correlation, between and maxT tests are
    the same bits with blocks of 3 permutations as with all of them at once."""
    from weightzoo.analysis.inference import between_part

    rng = np.random.default_rng(8)
    x, c = rng.random(40), rng.random(40)
    y = x + rng.random(40)
    cdf = np.cumsum(rng.random((40, 9)), axis=1)
    cdf /= cdf[:, -1:]
    optimal = np.arange(40) < 15
    stats = rng.random((3, 40))

    def run():
        corr = correlation_part(x, y, c, n_perm=999, n_boot=499, rng=np.random.default_rng(1))
        between = between_part(cdf, optimal, 0.1, n_perm=999, rng=np.random.default_rng(2))
        perms = resampling.permutation_chunks(40, 999, np.random.default_rng(3))
        _, null = controls.spearman_nulls(stats, y, perms, 999)
        return [corr.null, corr.boot, corr.extra["difference_boot"], between.null, null]

    whole = run()
    monkeypatch.setattr(resampling, "CHUNK_BYTES", 3 * 40 * 8)  # blocks of 3 permutations
    assert resampling.chunk_rows(40) == 3
    for got, expected in zip(run(), whole, strict=True):
        assert got.shape == expected.shape and (got == expected).all()
    one = controls.spearman_null(
        stats, y, resampling.permutation_indices(40, 999, np.random.default_rng(3))
    )
    assert (whole[-1] == one[1]).all()  # below ONE_PRODUCT_BYTES: one call's bits


def test_spearman_nulls_in_blocks_of_one_size_above_one_product(monkeypatch):
    """Above ONE_PRODUCT_BYTES the products run on MATMUL_ROWS permutations each: the same
    bits whatever the permutations' blocks, one call's values to float precision."""
    rng = np.random.default_rng(6)
    stats, y = rng.random((4, 300)), rng.random(300)
    one = controls.spearman_null(
        stats, y, resampling.permutation_indices(300, 999, np.random.default_rng(5))
    )
    monkeypatch.setattr(controls, "ONE_PRODUCT_BYTES", 0)
    found = []
    for rows in (7, 256, 999):
        perms = resampling.permutation_chunks(300, 999, np.random.default_rng(5), rows=rows)
        found.append(controls.spearman_nulls(stats, y, perms, 999))
    for observed, null in found:
        assert (observed == found[0][0]).all() and (null == found[0][1]).all()
        assert null.shape == (999, 4)
        np.testing.assert_allclose(null, one[1], rtol=0, atol=1e-12)


def test_stratified_subsample_keeps_each_groups_share():
    groups = np.repeat([0, 1], [90, 10])
    keep = resampling.stratified_subsample(groups, 20, np.random.default_rng(0))
    assert len(np.unique(keep)) == 20 and (np.diff(keep) > 0).all()
    assert np.bincount(groups[keep]).tolist() == [18, 2]  # a plain sample of 20 varies
    again = resampling.stratified_subsample(groups, 20, np.random.default_rng(0))
    other = resampling.stratified_subsample(groups, 20, np.random.default_rng(1))
    assert (keep == again).all() and not (keep == other).all()
    # quotas 99.8 and 0.2: largest remainder gives 100 and 0, min_each keeps both of group 1
    rare = np.repeat([0, 1], [998, 2])
    keep = resampling.stratified_subsample(rare, 100, np.random.default_rng(0), min_each=3)
    assert np.bincount(rare[keep]).tolist() == [100, 2]


def test_between_test_above_its_cell_cap_runs_on_a_stratified_subsample():
    runs, stats = make_zoo(size_zoo())  # 10 cells: 4 optimal, 6 suboptimal
    full = analysis.run_claims(runs, stats, SETTINGS)
    capped = analysis.run_claims(runs, stats, dataclasses.replace(SETTINGS, between_max_cells=6))
    rows = {
        name: by(
            result.claims, claim=2, dataset="d", family="mlp", test="between_w1_cells", target="w"
        )
        for name, result in (("full", full), ("capped", capped))
    }
    assert (rows["full"]["n_a"], rows["full"]["n_b"]) == (4, 6)
    assert "between test on" not in (rows["full"]["note"] or "")
    # quotas 2.4 and 3.6 -> 2 and 4, the optimal group raised to min_group (3)
    assert (rows["capped"]["n_a"], rows["capped"]["n_b"], rows["capped"]["n_cells"]) == (3, 4, 7)
    assert "between test on a random 7 of 10 cells" in rows["capped"]["note"]
    assert rows["capped"]["estimate"] != rows["full"]["estimate"]
    same = dataclasses.replace(SETTINGS, between_max_cells=10)  # at the cap: all cells
    again = analysis.run_claims(runs, stats, same)
    key = {"claim": 2, "dataset": "d", "family": "mlp", "test": "between_w1_cells"}
    assert by(again.claims, **key, target="w") == rows["full"]


def test_the_between_tests_subsample_keeps_each_cells_own_label(monkeypatch):
    """Each kept cell's CDF goes to the test with its own group label: every (CDF, label)
    pair of the capped test is one of the full test's pairs."""
    calls = []
    real = between.between_part

    def spy(cdf, optimal, *args, **kwargs):
        calls.append((cdf, optimal))
        return real(cdf, optimal, *args, **kwargs)

    monkeypatch.setattr(between, "between_part", spy)
    runs, stats = make_zoo(size_zoo())
    analysis.run_claims(runs, stats, SETTINGS)
    full = {(c.tobytes(), bool(o)) for cdf, opt in calls for c, o in zip(cdf, opt, strict=True)}
    calls.clear()
    analysis.run_claims(runs, stats, dataclasses.replace(SETTINGS, between_max_cells=6))
    assert calls and all(len(opt) == 7 for _, opt in calls)
    for cdf, opt in calls:
        assert {(c.tobytes(), bool(o)) for c, o in zip(cdf, opt, strict=True)} <= full


def test_permutation_pvalue_and_interval_by_hand():
    assert resampling.pvalue(2.0, np.array([0.0, 1.0, 2.0, -3.0])) == pytest.approx(3 / 5)
    assert resampling.pvalue(2.0, np.array([0.0, 1.0, 2.0, -3.0]), "greater") == 2 / 5
    assert resampling.pvalue(-2.0, np.array([0.0, 1.0, 2.0, -3.0]), "less") == 2 / 5
    low, high = resampling.percentile_ci(np.arange(101.0))
    assert (low, high) == (pytest.approx(2.5), pytest.approx(97.5))
    assert resampling.codes(["b", "a", "b"], [1, 1, 0]).tolist() == [2, 0, 1]


def test_float_noise_has_no_direction_and_supports_no_signed_claim():
    assert (sign(8.9e-18), sign(-3e-13), sign(0.2), sign(None)) == ("0", "0", "+", None)
    rows = [
        analysis.ClaimTest(
            claim=2,
            within="family",
            dataset="d",
            family="f",
            test="seed_w1_spearman",
            estimate=-8.9e-18,
            p_value=0.001,
        )
    ]
    (decided,) = decide(rows, 0.05, 999)
    assert decided.significant and not decided.supported  # claim 2 needs a − sign


def test_a_size_control_that_cannot_tell_is_inconclusive_with_the_cells_needed():
    # kurtosis follows size with two swaps of its own: raw rho ~ -0.96 and significant, the
    # partial given size small and not significant; 12 cells cannot show it is below 0.2
    cells = size_tracking_zoo()
    kurt = [-math.log(c["n_params"]) for c in cells]
    kurt[4], kurt[5], kurt[8], kurt[9] = kurt[5], kurt[4], kurt[9], kurt[8]
    for c, k in zip(cells, kurt, strict=True):
        c["kurtosis"] = k
    runs, stats = make_zoo(cells)
    settings = dataclasses.replace(SETTINGS, primary_statistic="kurtosis")
    result = analysis.run_claims(runs, stats, settings)
    v = by(analysis.verdicts(result.claims), claim=1, family="cnn")
    raw = by(result.claims, claim=1, statistic="kurtosis", test="spearman_cells")
    size = by(result.claims, claim=1, statistic="kurtosis", test="partial_size")
    assert raw["supported"] and not size["significant"] and size["negligible"] is False
    assert v["verdict"] == "inconclusive given size"
    assert v["cells_needed"] == controls.cells_needed(raw["estimate"], 1, 0.05)
    assert v["raw_minus_partial"] == pytest.approx(raw["estimate"] - size["estimate"])
    assert v["equivalence"].startswith("not shown negligible")


def test_between_part_equals_the_mean_pairwise_distances_it_names():
    """Every permutation's log ratio is log(mean W1 over pairs of optimal cells / over pairs
    of suboptimal cells), the pairs summed one by one."""
    from weightzoo import resampling
    from weightzoo.analysis.inference import between_part

    rng = np.random.default_rng(11)
    cdf = np.cumsum(rng.random((12, 9)), axis=1)
    cdf /= cdf[:, -1:]
    optimal = np.arange(12) < 5
    part = between_part(cdf, optimal, 0.25, n_perm=40, rng=np.random.default_rng(2))
    labels = optimal[resampling.permutation_indices(12, 40, np.random.default_rng(2))]

    def mean_w1(members):
        pairs = [(i, j) for i in members for j in members if i != j]
        return sum(np.abs(cdf[i] - cdf[j]).sum() * 0.25 for i, j in pairs) / len(pairs)

    for p, lab in enumerate([optimal, *labels]):
        expected = np.log(mean_w1(np.flatnonzero(lab)) / mean_w1(np.flatnonzero(~lab)))
        found = part.estimate if p == 0 else part.null[p - 1]
        assert found == pytest.approx(expected, rel=1e-12, abs=1e-12)
