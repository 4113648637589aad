"""The claim tests on synthetic zoos whose answer is known."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import wasserstein_distance

from weightzoo import analysis

TESTS = {"alpha": 0.05, "min_group": 3}


def test_groups_follow_the_distance_to_the_best_architecture():
    runs = pl.DataFrame({
        "dataset": ["d"] * 8, "family": ["mlp"] * 8,
        "arch": ["a", "a", "b", "b", "c", "c", "e", "e"],
        "final_test_acc": [0.96, 0.94, 0.95, 0.94, 0.91, 0.89, 0.5, 0.6],
    })  # fmt: skip
    out = analysis.label_groups(runs, optimal_within=0.01, suboptimal_below=0.10)
    groups = dict(out.group_by("arch").agg(pl.col("group").first()).rows())
    # best arch mean 0.95 (a); b 0.945 within 1 point; c 0.90 within 10; e 0.55 below
    assert groups == {"a": "optimal", "b": "optimal", "c": "intermediate", "e": "suboptimal"}
    assert out["best_arch_acc"].unique().to_list() == [pytest.approx(0.95)]
    assert "best - 0.01" in out["group_rule"][0]


def test_w1_between_histograms_matches_scipy():
    hists = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0.25, 0.25, 0.25, 0.25]])
    dist = analysis.w1_matrix(hists, (0.0, 4.0))
    centres = np.arange(4) + 0.5
    assert dist[0, 1] == pytest.approx(2.0)  # all mass moved by two bins of width 1
    for i in range(3):
        for j in range(3):
            expected = wasserstein_distance(centres, centres, hists[i], hists[j])
            assert dist[i, j] == pytest.approx(expected)


def _hist_group(rng, n, spread, bins=50):
    centres = rng.normal(0, spread, size=n)
    grid = np.linspace(-1, 1, bins)
    h = np.exp(-((grid[None, :] - centres[:, None]) ** 2) / 0.02)
    return h / h.sum(axis=1, keepdims=True)


def test_permutation_test_detects_tight_optimal_group():
    rng = np.random.default_rng(0)
    hists = np.vstack([_hist_group(rng, 8, 0.01), _hist_group(rng, 8, 0.4)])
    is_opt = np.array([True] * 8 + [False] * 8)
    dist = analysis.w1_matrix(hists, (-1, 1))
    d_opt, d_sub, p = analysis.group_distance_test(dist, is_opt, 999, seed=0)
    assert d_opt < d_sub and p < 0.01
    # the reverse question (suboptimal runs tighter) has no support
    _, _, p_rev = analysis.group_distance_test(dist, ~is_opt, 999, seed=0)
    assert p_rev > 0.5


def _final(n=20, seed=0):
    rng = np.random.default_rng(seed)
    acc = np.linspace(0.2, 0.95, n)
    return pl.DataFrame({
        "dataset": "d", "family": "mlp", "arch": [f"a{i}" for i in range(n)], "seed": 0,
        "scope": "all_weights", "kind": "pool", "target": "w", "status": "ok",
        "group": ["suboptimal"] * (n // 2) + ["optimal"] * (n - n // 2),
        "final_test_acc": acc, "std": 0.5 - 0.3 * acc, "mean": rng.normal(size=n),
    })  # fmt: skip


def test_monotone_statistic_correlates_and_noise_does_not():
    rows = analysis.correlation_tests(_final(), ["std", "mean"], n_boot=999, seed=0, **TESTS)
    spearman = {r["statistic"]: r for r in rows if r["test"] == "spearman" and r["dataset"] == "d"}
    assert spearman["std"]["estimate"] == pytest.approx(-1.0)
    assert spearman["std"]["supported"] is True and spearman["std"]["ci_high"] < -0.9
    assert spearman["mean"]["supported"] is False and spearman["mean"]["p_value"] > 0.05
    pearson = [r for r in rows if r["test"] == "pearson" and r["statistic"] == "std"]
    assert pearson[0]["estimate"] == pytest.approx(-1.0)


def test_too_few_runs_are_reported_not_tested():
    rows = analysis.correlation_tests(_final(n=2), ["std"], n_boot=99, seed=0, **TESTS)
    assert {r["supported"] for r in rows} == {None}
    assert "too few runs" in rows[0]["note"]
    hist_final = _final(n=4).with_columns(hist=pl.lit([0.5, 0.5]), kind=pl.lit("pool"))
    rows = analysis.resemblance_tests(hist_final, ["std"], (-1, 1), n_perm=99, seed=0, **TESTS)
    assert all(r["supported"] is None and "fewer than 3" in r["note"] for r in rows)


def _medians(curves: dict[str, list[float]]) -> pl.DataFrame:
    progress = [0.0, 0.25, 0.5, 1.0]
    return pl.DataFrame([
        {"dataset": "d", "family": f, "progress": p, "rel_std": v, "rel_dist": v, "runs": 5}
        for f, values in curves.items() for p, v in zip(progress, values, strict=True)
    ])  # fmt: skip


def test_families_with_alike_trajectories_are_supported():
    rows = analysis.family_similarity_tests(
        _medians({"mlp": [1.0, 1.2, 1.5, 2.0], "vit": [1.0, 1.3, 1.6, 2.2]}), alpha=0.05
    )
    assert [r["supported"] for r in rows] == [True, True]
    rows = analysis.family_similarity_tests(
        _medians({"mlp": [1.0, 1.2, 1.5, 2.0], "vit": [1.0, 0.8, 0.6, 0.4]}), alpha=0.05
    )
    assert [r["supported"] for r in rows] == [False, False]
    assert "vit -0.6" in rows[0]["note"]


def test_trajectories_with_different_schedules_are_compared_on_the_union_grid():
    med = pl.concat([
        _medians({"mlp": [1.0, 1.2, 1.5, 2.0]}),
        pl.DataFrame({"dataset": "d", "family": "cnn", "progress": [0.0, 0.5, 0.75, 1.0],
                      "rel_std": [1.0, 1.5, 1.8, 2.0], "rel_dist": [1.0, 1.5, 1.8, 2.0], "runs": 5}),
    ], how="diagonal_relaxed")  # fmt: skip
    rows = analysis.family_similarity_tests(med, alpha=0.05)
    assert rows[0]["n_a"] == 5  # progress 0, .25, .5, .75, 1


def test_verdict_flags_a_raw_weights_only_result():
    claims = analysis.claims_table([
        analysis._row(2, "d", "mlp", test="w1_permutation", target="w", p_value=0.001,
                      estimate=0.5, supported=True),
        analysis._row(2, "d", "mlp", test="w1_permutation", target="delta", p_value=0.4,
                      estimate=0.9, supported=False),
    ])  # fmt: skip
    v = analysis.verdicts(claims)
    assert v["verdict"].to_list() == ["raw weights only"]
    page = analysis.claims_markdown(claims, "rule", 0.05, {"optimal": 3})
    assert "## Claim 2" in page and "**raw weights only**" in page


def test_final_stats_have_a_fixed_row_order_so_claims_reproduce():
    final = _final().with_columns(epoch=pl.lit(3, pl.Int32))
    stats = final.select("dataset", "family", "arch", "seed", "epoch", "scope", "target", "std")
    groups = final.select("dataset", "family", "arch", "seed", "status", "final_test_acc",
                          "group", n_params=pl.lit(10), epochs_run=pl.lit(3, pl.Int32))  # fmt: skip
    outs = [
        analysis.final_stats(stats.sample(fraction=1.0, shuffle=True, seed=s).lazy(),
                             groups.sample(fraction=1.0, shuffle=True, seed=s + 1))
        for s in (1, 2)
    ]  # fmt: skip
    assert outs[0].equals(outs[1])
    args = {"n_boot": 199, "seed": 0, **TESTS}
    assert analysis.correlation_tests(outs[0], ["std"], **args) == analysis.correlation_tests(
        outs[1], ["std"], **args
    )
