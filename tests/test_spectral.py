"""Power-law fits of weight spectra: known answers, WeightWatcher's recipe, flags and nulls."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from weightzoo import spectral


def _orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _planted(seed: int | None, n: int = 200, n_tail: int = 150, alpha: float = 2.5):
    """W = U diag(√λ) Vᵀ, U and V random rotations: a bulk of n − n_tail eigenvalues in
    [0.05, 0.5] below a Pareto tail of n_tail, density ∝ λ^−alpha from xmin = 1. The tail is
    a random sample, or with seed None the Pareto's quantiles at (k + ½)/n_tail. (W, λ)."""
    rng = np.random.default_rng(seed)
    u = (np.arange(n_tail) + 0.5) / n_tail if seed is None else rng.random(n_tail)
    tail = (1 - u) ** (-1 / (alpha - 1))  # the Pareto's inverse CDF
    lam = np.concatenate([rng.uniform(0.05, 0.5, n - n_tail), tail])
    w = _orthogonal(n, rng) @ np.diag(np.sqrt(lam)) @ _orthogonal(n, rng).T
    return w, lam


def _reference_fit(evals: np.ndarray) -> tuple[float, float, float]:
    """WeightWatcher's WWFit.fit_power_law_standard as a plain loop: (alpha, D, xmin)."""
    data = np.sort(evals[evals > spectral.EVALS_THRESH])
    log_data = np.log(data)
    best = (math.inf, math.nan, math.nan)  # (D, alpha, xmin)
    for i, xmin in enumerate(data[:-1]):
        n = len(data) - i
        s = np.sum(log_data[i:]) - n * log_data[i]
        if s <= 0:
            continue
        alpha = 1 + n / s
        d = np.max(np.abs(1 - (data[i:] / xmin) ** (-alpha + 1) - np.arange(n) / n))
        if d < best[0]:
            best = (d, alpha, xmin)
    return best[1], best[0], best[2]


def test_planted_pareto_quantiles_are_recovered_within_0_02():
    w, lam = _planted(None)
    np.testing.assert_allclose(spectral.esd(w), np.sort(lam), rtol=1e-10)
    fit = spectral.fit_power_law(spectral.esd(w))
    assert fit["fit_status"] == "ok" and fit["num_evals"] == 200
    assert abs(fit["alpha"] - 2.5) < 0.02
    assert fit["n_tail"] == 150 and abs(fit["xmin"] - 1) < 0.01  # the whole planted tail


def test_planted_pareto_samples_are_recovered_within_three_standard_errors():
    # 150 tail eigenvalues: the MLE's standard error is (α − 1)/√150 ≈ 0.12
    alphas = []
    for seed in range(8):
        w, lam = _planted(seed)
        fit = spectral.fit_power_law(spectral.esd(w))
        assert fit["fit_status"] == "ok"
        assert fit["alpha"] == pytest.approx(spectral.fit_power_law(lam)["alpha"], rel=1e-10)
        alphas.append(fit["alpha"])
    assert abs(np.median(alphas) - 2.5) < 0.05
    assert np.max(np.abs(np.array(alphas) - 2.5)) < 0.35


def test_planted_tail_is_heavy_tailed_against_its_null():
    rows = [spectral.spectral_stats(_planted(s)[0], null_draws=10, seed=s) for s in range(6)]
    for row in rows:  # shuffled entries: a Marchenko-Pastur bulk, α of 3 to 20 and more
        assert row["alpha"] < 2.9 and row["alpha"] < row["alpha_null_low"]
    assert [row["heavy_tailed"] for row in rows].count(True) == 4  # power ≈ 75 % at 200 evals


def test_student_t_entries_recover_alpha_near_1_9_and_match_their_null():
    # entries with P(|x| > t) ~ t^-1.5: the ESD tail has α ≈ 1 + 1.5/2, 1.7-2.0 at this size
    for seed in range(3):
        w = np.random.default_rng(seed).standard_t(1.5, (400, 400))
        row = spectral.spectral_stats(w, seed=seed)
        assert row["fit_status"] == "ok"
        assert 1.65 < row["alpha"] < 2.05
        assert abs(row["alpha_null"] - row["alpha"]) < 0.15  # the shuffle keeps the entries
        assert not row["heavy_tailed"]


def test_gaussian_matrices_are_not_heavy_tailed_against_their_null():
    ws = [np.random.default_rng(s).standard_normal((64, 64)) for s in range(100)]
    table = spectral.spectral_table(ws, seeds=list(range(100)))
    ok = table["fit_status"] == "ok"
    assert ok.sum() >= 60  # many fits are "ok", with α anywhere in WeightWatcher's 2-6 band
    assert 3.5 < np.median(table["alpha"][ok]) < 5
    assert table["heavy_tailed"].sum() <= 5  # the bound's nominal rate is 5 %


def test_ten_eigenvalue_layer_is_too_few_evals_with_its_alpha_kept():
    w = np.random.default_rng(0).standard_normal((10, 30))
    row = spectral.spectral_stats(w)
    assert row["num_evals"] == 10
    assert row["fit_status"] == "too_few_evals"
    assert np.isfinite(row["alpha"]) and row["alpha"] > 1
    assert not row["heavy_tailed"]
    assert spectral.spectral_stats(w, min_evals=10)["fit_status"] != "too_few_evals"


@pytest.mark.parametrize("shape", [(1, 784), (10, 1), (1, 1, 3, 3), (1, 1)])
def test_one_eigenvalue_matrix_is_too_few_evals_not_failed(shape):
    # a width-1 MLP layer or a 1-channel conv has one eigenvalue: no fit is possible, and
    # that is the matrix's size, not a failed fit
    w = np.random.default_rng(0).standard_normal(shape)
    row = spectral.spectral_stats(w)
    assert row["num_evals"] == 1 and not np.isfinite(row["alpha"])
    assert row["fit_status"] == "too_few_evals"
    assert list(spectral.spectral_table([w], seeds=[0])["fit_status"]) == ["too_few_evals"]


def test_five_spikes_above_a_flat_bulk_are_a_short_tail():
    evals = np.concatenate([np.linspace(1, 2, 95), 100 * 2.0 ** np.arange(5)])
    fit = spectral.fit_power_law(evals)
    assert fit["n_tail"] == 5 and fit["xmin"] == 100
    assert fit["fit_status"] == "short_tail"
    assert spectral.fit_power_law(evals, min_tail=5)["fit_status"] == "ok"


def test_mle_and_ks_distance_equal_the_hand_computed_case():
    # λ = 1, 2, 4, 8. xmin = 1: Σ ln λ = 6 ln 2, α = 1 + 4/(6 ln 2); the Pareto CDF at 2, 4, 8
    # is 1 − e^(−2/3), 1 − e^(−4/3), 1 − e^(−2) against 1/4, 2/4, 3/4: D = 3/4 − e^(−2/3).
    # xmin = 2 gives D = 2/3 − e^(−1) and xmin = 4 gives D = 1/2 − e^(−2): both larger.
    fit = spectral.fit_power_law(np.array([8.0, 1.0, 4.0, 2.0]), min_evals=4, min_tail=4)
    alpha = 1 + 2 / (3 * math.log(2))
    assert fit["alpha"] == pytest.approx(alpha, rel=1e-14)
    assert fit["ks_d"] == pytest.approx(0.75 - math.exp(-2 / 3), rel=1e-14)
    assert (fit["xmin"], fit["n_tail"], fit["num_evals"]) == (1.0, 4.0, 4.0)
    assert fit["alpha_hill"] == pytest.approx(1 + 2 / math.log(2), rel=1e-14)  # xmin = 4
    assert fit["log_norm"] == pytest.approx(math.log10(15))
    assert fit["log_spectral_norm"] == pytest.approx(math.log10(8))
    assert fit["alpha_weighted"] == pytest.approx(alpha * math.log10(8))
    assert fit["log_alpha_norm"] == pytest.approx(math.log10(1 + 2**alpha + 4**alpha + 8**alpha))
    assert fit["fit_status"] == "ok"


def test_eigenvalues_at_or_below_the_cutoff_are_not_fitted_but_counted_in_norms():
    evals = np.array([0.0, 1e-5, 1.0, 2.0, 4.0, 8.0])
    fit = spectral.fit_power_law(evals, min_evals=4, min_tail=4)
    assert fit["num_evals"] == 4
    assert fit["alpha"] == pytest.approx(1 + 2 / (3 * math.log(2)), rel=1e-14)
    assert fit["log_norm"] == pytest.approx(math.log10(15 + 1e-5))


def test_same_seed_gives_identical_null_bits():
    w = np.random.default_rng(0).standard_normal((64, 48))
    first = spectral.null_fits(w, draws=3, seed=7)
    again = spectral.null_fits(w, draws=3, seed=7)
    other = spectral.null_fits(w, draws=3, seed=8)
    assert first["alphas"].tobytes() == again["alphas"].tobytes()
    assert first["alphas"].tobytes() != other["alphas"].tobytes()
    row = spectral.spectral_stats(w, seed=7)
    assert row["alpha_null"] == first["alpha_null"] == np.mean(first["alphas"])
    assert row["alpha_null_low"] == first["alphas"].min()
    assert row["alpha_null_high"] == first["alphas"].max()
    assert row["alpha_null_bound"] == first["alpha_null_bound"]


def test_null_bound_is_the_prediction_bound_on_log_alpha_minus_one():
    # nulls α = 2, 3, 5: log(α − 1) = 0, ln 2, ln 4, mean ln 2, sd ln 2; t(0.95, 2) = 2.919986
    summary = spectral._null_summary(np.array([[2.0, 3.0, 5.0], [2.0, np.nan, np.nan]]))
    bound = 1 + math.exp(math.log(2) * (1 - 2.919986 * math.sqrt(4 / 3)))
    assert summary["alpha_null_bound"][0] == pytest.approx(bound, rel=1e-6)
    assert np.isnan(summary["alpha_null_bound"][1])  # one finite draw: no spread, no bound
    assert summary["alpha_null"].tolist() == [10 / 3, 2.0]
    flags = spectral.heavy_tailed([1.1, 1.1, 1.1], ["ok", "short_tail", "ok"], [1.2, 1.2, np.nan])
    assert flags.tolist() == [True, False, False]


def test_vectorised_ks_search_equals_a_loop_over_candidates(monkeypatch):
    rng = np.random.default_rng(3)
    esds = [
        spectral.esd(rng.standard_normal((40, 90))),
        spectral.esd(rng.standard_t(2.0, (120, 120))),
        np.concatenate([np.zeros(7), rng.pareto(1.5, 60) + 1]),  # 7 below the cutoff
        np.repeat(rng.uniform(1, 3, 30), 2),  # every value twice
    ]
    fits = spectral.power_law_fits(esds, min_evals=1)
    for k, evals in enumerate(esds):
        alpha, d, xmin = _reference_fit(evals)
        assert fits["alpha"][k] == pytest.approx(alpha, rel=1e-12)
        assert fits["ks_d"][k] == pytest.approx(d, rel=1e-12, abs=1e-15)
        assert fits["xmin"][k] == xmin
    monkeypatch.setattr(spectral, "FIT_BLOCK", 50)  # blocks of a few candidates and rows
    chunked = spectral.power_law_fits(esds, min_evals=1)
    for c in ("alpha", "ks_d", "xmin", "alpha_hill"):
        np.testing.assert_array_equal(chunked[c], fits[c])


def test_table_rows_equal_single_matrix_calls_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(5)
    ws = [rng.standard_normal(s) for s in [(64, 64), (10, 64), (64, 64), (16, 16, 3, 3), (32, 4)]]
    table = spectral.spectral_table(ws, seeds=[3, 1, 4, 1, 5])
    for i, (w, seed) in enumerate(zip(ws, [3, 1, 4, 1, 5], strict=True)):
        row = spectral.spectral_stats(w, seed=seed)
        assert list(row) == list(spectral.SPECTRAL_COLUMNS)
        for c, v in row.items():
            assert isinstance(v, spectral.SPECTRAL_DTYPES[c])
            assert str(table[c][i]) == str(v), c
    monkeypatch.setattr(spectral, "STACK_VALUES", 100)  # one matrix per stacked call
    parts = spectral.spectral_table(ws, seeds=[3, 1, 4, 1, 5])
    for c in spectral.SPECTRAL_COLUMNS:
        assert [str(v) for v in parts[c]] == [str(v) for v in table[c]], c


def test_nulls_only_above_null_min_evals():
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((64, 64)), rng.standard_normal((16, 144))]
    table = spectral.spectral_table(ws, seeds=[0, 1], null_min_evals=50)
    assert np.isfinite(table["alpha_null"][0]) and np.isnan(table["alpha_null"][1])
    assert np.isfinite(table["alpha"][1])  # the fit itself is still there, flagged
    full = spectral.spectral_table(ws, seeds=[0, 1])
    assert full["alpha_null"][0] == table["alpha_null"][0]


def test_conv_reshape_and_kernel_position_pooling_give_the_expected_counts():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 8, 3, 3))
    assert spectral.esd(w).shape == (16,)  # (16, 72): min(16, 72)
    pooled = spectral.esd(w, pool_kernel_positions=True)
    assert pooled.shape == (72,)  # 9 positions × min(16, 8)
    slices = [
        np.linalg.svd(w[:, :, i, j], compute_uv=False) ** 2 / 2 for i in range(3) for j in range(3)
    ]
    np.testing.assert_allclose(pooled, np.sort(np.concatenate(slices)), rtol=1e-12)
    assert np.all(np.diff(pooled) >= 0)
    assert spectral.esd(rng.standard_normal((4, 16, 3, 3)), pool_kernel_positions=True).shape == (
        36,
    )
    assert spectral.esd(rng.standard_normal((10, 64)), pool_kernel_positions=True).shape == (10,)
    assert spectral.esd(rng.standard_normal((64, 10))).shape == (10,)
    np.testing.assert_allclose(spectral.esd(w).sum(), np.sum(w**2), rtol=1e-12)


def test_zero_and_degenerate_matrices_give_nan_and_a_status_without_warnings():
    cases = {
        "zeros": np.zeros((64, 64)),
        "identity": np.eye(64),  # every eigenvalue 1: no tail to fit
        "below cutoff": np.full((64, 64), 1e-6),
        "nan": np.full((8, 8), np.nan),
        "empty": np.zeros((0, 5)),
        "one row": np.ones((1, 5)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = spectral.spectral_table(list(cases.values()), seeds=list(range(len(cases))))
        for name in cases:
            i = list(cases).index(name)
            # no eigenvalue above the threshold (or one) is a size verdict; 64 equal ones or
            # NaN entries are a fit that failed
            expected = "failed" if name in ("identity", "nan") else "too_few_evals"
            assert table["fit_status"][i] == expected, name
            for c in ("alpha", "alpha_hill", "xmin", "n_tail", "ks_d", "alpha_weighted"):
                assert np.isnan(table[c][i]), (name, c)
            assert not table["heavy_tailed"][i]
        for c in spectral.SPECTRAL_COLUMNS:
            if c not in ("fit_status", "heavy_tailed"):
                assert not np.any(np.asarray(table[c], dtype=float) == -1), c
    assert table["num_evals"].tolist()[:3] == [0.0, 64.0, 0.0]
    assert np.isnan(table["num_evals"][3]) and table["num_evals"][4] == 0.0
    assert np.isnan(table["log_norm"][0])
    assert table["log_norm"][1] == pytest.approx(math.log10(64))
    with pytest.raises(ValueError, match="ndim >= 2"):
        spectral.spectral_stats(np.ones(5))
    with pytest.raises(ValueError, match="one seed each"):
        spectral.spectral_table([np.eye(3)], seeds=[])
