"""The controls and the verdict ladder: known answers a person can check, and the mistakes
they guard against (the wrong thing permuted, a bootstrap without its covariate)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import SCHEMA
from scipy import stats as sps

from weightzoo import calibration, controls
from weightzoo.analysis import ClaimSettings
from weightzoo.config import ConfigError, validate_config
from weightzoo.controls import Reading, decide

X = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
Y = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
C = np.array([1.0, 3.0, 2.0, 5.0, 4.0])


def test_direction_has_no_sign_below_float_noise():
    assert controls.direction(8.9e-18) == 0
    assert controls.direction(0.0) == 0
    assert controls.direction(None) == 0
    assert controls.direction(float("nan")) == 0
    assert controls.direction(-0.3) == -1
    assert controls.direction(2e-12) == 1


def test_partial_spearman_matches_the_textbook_formula():
    # Spearman: r_xy = 0.8, r_xc = 0.8, r_yc = 0.3 (sum of squared rank differences 4, 4, 14)
    # partial = (0.8 - 0.8 * 0.3) / sqrt((1 - 0.64) * (1 - 0.09)) = 0.56 / 0.5724 = 0.9784
    got = controls.partial_estimate(X[None], Y[None], C[None])[0]
    assert got == pytest.approx(0.56 / math.sqrt(0.36 * 0.91), abs=1e-12)
    assert got == pytest.approx(0.9784, abs=1e-4)
    raw = controls.partial_estimate(X[None], Y[None], None)[0]
    assert raw == pytest.approx(0.8, abs=1e-12)


def test_partial_is_undefined_when_the_ranks_follow_size_exactly():
    size = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    stat = np.exp(size)  # a monotone function of size: the same ranks
    acc = np.array([0.1, 0.5, 0.2, 0.9, 0.3])
    assert np.isnan(controls.partial_estimate(stat[None], acc[None], size[None])[0])
    ctl = controls.control(stat, acc, size, n_perm=99, n_boot=99, rng=np.random.default_rng(0))
    assert ctl.partial is None and ctl.partial_p is None
    assert ctl.partial_ci == (None, None) and ctl.difference is None
    assert "undefined" in ctl.note
    assert not ctl.equivalence.negligible


def _lstsq_freedman_lane(x, y, c, perm):
    """Freedman–Lane by explicit regressions: y* = fitted + residual[perm] on [1, rank c],
    then the correlation of x's and y*'s residuals on [1, rank c]."""
    rx, ry, rc = (sps.rankdata(v) for v in (x, y, c))
    design = np.column_stack([np.ones_like(rc), rc])

    def resid(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    fitted = ry - resid(ry)
    y_star = fitted + resid(ry)[perm]
    return float(np.corrcoef(resid(rx), resid(y_star))[0, 1])


def test_freedman_lane_null_re_residualises_the_permuted_residuals():
    rng = np.random.default_rng(3)
    x, y, c = rng.normal(size=(3, 9))
    y = y + 2 * c
    perms = np.array([[np.arange(9), rng.permutation(9), rng.permutation(9)]])
    null = controls.freedman_lane_null(x[None], y[None], c[None], perms)[0]
    observed = controls.partial_estimate(x[None], y[None], c[None])[0]
    assert null[0] == pytest.approx(observed, abs=1e-12)  # the identity is the observed
    for k in (1, 2):
        assert null[k] == pytest.approx(_lstsq_freedman_lane(x, y, c, perms[0, k]), abs=1e-10)


def test_freedman_lane_holds_its_level_on_null_zoos():
    # 600 null zoos per n (statistic and accuracy both load on size, independent given it);
    # band: 0.05 +- 2 * sqrt(0.05 * 0.95 / 600) = [0.032, 0.068]
    rng = np.random.default_rng(11)
    low, high = calibration.band(0.05, 600)
    for n in (5, 8, 19, 45):
        x, y, c = calibration.simulate(600, n, 0.0, rng)
        perms = controls.permutations(600, 199, n, rng)
        est = controls.partial_estimate(x, y, c)
        p = controls.pvalues(est, controls.freedman_lane_null(x, y, c, perms))
        rate = np.mean(np.isfinite(est) & (p < 0.05))
        assert rate <= high, (n, rate)
        if n >= 8:  # at 5 cells the discrete null leaves the test conservative
            assert rate >= low, (n, rate)


def test_partial_bootstrap_resamples_the_covariate_with_its_cells():
    # x and y both follow size plus independent noise: raw rho near 0.9, partial near 0
    rng = np.random.default_rng(5)
    size = np.arange(30.0)
    x = size + rng.normal(scale=3, size=30)
    y = size + rng.normal(scale=3, size=30)
    ctl = controls.control(x, y, size, n_perm=199, n_boot=499, rng=rng)
    assert ctl.raw > 0.85
    assert abs(ctl.partial) < 0.3
    low, high = ctl.partial_ci
    assert low < ctl.partial < high
    assert high < 0.6  # a bootstrap of the raw correlation would sit near 0.9
    d_low, _ = ctl.difference_ci
    assert d_low > 0.3  # raw - partial clearly positive, on the same resamples


def test_raw_and_partial_draws_share_their_resamples():
    rng = np.random.default_rng(2)
    x, y, c = rng.normal(size=(3, 1, 12))
    idx = controls.bootstraps(1, 4, 12, rng)
    raw, part = controls.bootstrap_draws(x, y, c, idx)
    for d in range(4):
        i = idx[0, d]
        assert raw[0, d] == pytest.approx(sps.spearmanr(x[0, i], y[0, i]).statistic, abs=1e-12)
        expect = controls.partial_estimate(x[:, i], y[:, i], c[:, i])[0]
        assert part[0, d] == pytest.approx(expect, abs=1e-12)


def test_detectable_effect_and_cells_needed_follow_fisher_z():
    # se = sqrt(1.06 / (19 - 3 - 1)) = 0.2658; (1.960 + 0.842) * se = 0.7448; tanh = 0.632
    assert controls.detectable(19, 1, 0.05) == pytest.approx(0.632, abs=1e-3)
    assert controls.detectable(4, 1, 0.05) == 1.0  # no degrees of freedom left
    # 3 + 1 + 1.06 * (2.8016 / atanh 0.64)^2 = 18.5 -> 19 cells
    assert controls.cells_needed(0.64, 1, 0.05) == 19
    # the CNN's raw -0.67 would need 3 + 1 + 1.06 * (2.8016 / atanh 0.67)^2 = 16.7 -> 17
    assert controls.cells_needed(-0.67, 1, 0.05) == 17
    assert controls.cells_needed(0.0, 1, 0.05) is None


def test_detectable_effect_has_about_80_percent_power_in_simulation():
    rng = np.random.default_rng(7)
    n = 19
    target = controls.detectable(n, 1, 0.05)
    x, y, c = calibration.simulate(400, n, -target, rng)
    perms = controls.permutations(400, 199, n, rng)
    est = controls.partial_estimate(x, y, c)
    power = np.mean(controls.pvalues(est, controls.freedman_lane_null(x, y, c, perms)) < 0.05)
    assert 0.65 <= power <= 0.9


def test_equivalence_needs_the_90_percent_interval_inside_the_bound():
    # n 45, one covariate: se = sqrt(1.06 / 41) = 0.1608; 1.645 * se = 0.2645; tanh = 0.2585
    eq = controls.equivalence(0.0, 45, 1, 0.05, 0.2)
    assert (eq.low, eq.high) == pytest.approx((-0.2585, 0.2585), abs=1e-4)
    assert not eq.negligible
    assert controls.equivalence(0.0, 45, 1, 0.05, 0.3).negligible
    assert not controls.equivalence(0.0, 5, 1, 0.05, 0.5).negligible
    assert not controls.equivalence(None, 45, 1, 0.05, 0.9).negligible
    # |rho| < 0.2 can be shown from 74 cells on: 1.645 sqrt(1.06 / 70) = 0.2024 < atanh 0.2
    assert controls.equivalence(0.0, 74, 1, 0.05, 0.2).negligible
    assert not controls.equivalence(0.0, 73, 1, 0.05, 0.2).negligible


SIG, NS = True, False


@pytest.mark.parametrize(
    ("raw", "size", "init", "expected", "verdict"),
    [
        # the review's example: raw −0.6*, partial +0.5*, relative-to-init +0.5*
        (Reading(-0.6, SIG), Reading(0.5, SIG), Reading(0.5, SIG), 0, "reversed"),
        # the CNN: raw −0.67*, partial −0.24 n.s., not shown negligible
        (Reading(-0.67, SIG), Reading(-0.24, NS), None, 0, "inconclusive given size"),
        (Reading(-0.67, SIG), Reading(-0.05, NS, negligible=True), None, 0, "explained by size"),
        (Reading(-1.0, SIG), Reading(None, None, defined=False), None, 0, "undefined"),
        (Reading(-0.7, SIG), Reading(-0.5, SIG), Reading(-0.4, SIG), 0, "supported"),
        (Reading(-0.7, SIG), Reading(-0.5, SIG), Reading(-0.4, NS), 0, "beyond size"),
        (Reading(-0.7, SIG), Reading(-0.5, SIG), None, 0, "beyond size"),
        (
            Reading(-0.7, SIG),
            Reading(-0.5, SIG),
            Reading(0.01, NS, negligible=True),
            0,
            "explained by initialisation",
        ),
        (Reading(-0.7, SIG), Reading(-0.5, SIG), Reading(0.4, SIG), 0, "reversed"),
        (Reading(8.9e-18, SIG), Reading(0.1, SIG), None, 0, "not supported"),  # no direction
        (Reading(0.6, SIG), Reading(0.5, SIG), None, -1, "not supported"),  # claim 2: −
        (Reading(-0.3, NS), Reading(-0.3, SIG), None, 0, "not supported"),
        (Reading(None, None), None, None, 0, "not testable"),
    ],
)
def test_decision_ladder(raw, size, init, expected, verdict):
    assert decide(raw, size, init, expected=expected) == verdict


def test_no_explained_by_size_without_a_passed_equivalence_test():
    for partial in (0.0, -0.05, 0.1):
        got = decide(Reading(-0.8, SIG), Reading(partial, NS), None)
        assert got == "inconclusive given size"


def test_maxt_adjusts_for_the_strongest_of_several_statistics():
    rng = np.random.default_rng(1)
    n = 12
    y = rng.normal(size=(1, n))
    one = rng.normal(size=(1, 1, n))
    perms = controls.permutations(1, 299, n, rng)
    single = controls.pvalues(
        controls.partial_estimate(one[:, 0], y, None),
        controls.freedman_lane_null(one[:, 0], y, None, perms),
    )
    # one statistic: maxT is the plain permutation p, same permutations
    assert controls.maxt_pvalues(one, y, perms)[0, 0] == pytest.approx(single[0])
    # a copy of it changes nothing (the max of equal |rho| is the same); a constant is ignored
    two = np.concatenate([one, one, np.ones((1, 1, n))], axis=1)
    got = controls.maxt_pvalues(two, y, perms)[0]
    assert got[:2] == pytest.approx([single[0], single[0]])
    assert np.isnan(got[2])


def test_maxt_holds_the_familywise_level_the_strongest_statistic_does_not():
    rng = np.random.default_rng(4)
    unadjusted, adjusted = calibration.maxt_rates(
        19, statistics=6, zoos=600, n_perm=199, alpha=0.05, rng=rng
    )
    _, high = calibration.band(0.05, 600)
    assert adjusted <= high
    assert unadjusted > high  # the strongest of six, read as if chosen beforehand


def test_trajectory_summaries_of_a_line_and_a_saturating_curve():
    t = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    curves = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    got = controls.trajectory_summaries(t, curves)
    assert got[0] == pytest.approx([3.0, 0.5, 0.5])  # straight line: half-way at half time
    # saturating: half reached at t = 1/6; area = (1/3)(0 + 1)/2 + 1/3 + 1/3 = 5/6
    assert got[1] == pytest.approx([1.0, 1 / 6, 5 / 6])
    assert got[2, 0] == 0.0 and np.isnan(got[2, 1:]).all()  # no change: no shape


def _family(rng, cells, half, scale):
    t = np.linspace(0, 1, 8)
    rate = math.log(2) / half  # 1 - exp(-rate t) reaches half its asymptote at `half`...
    curves = scale * (1 - np.exp(-rate * t))[None, :] * rng.normal(1, 0.05, size=(cells, 1))
    return controls.trajectory_summaries(t, curves + rng.normal(0, 0.002, size=(cells, 8)))


def test_welch_interval_of_a_known_sample():
    # means 2 and 1, variances 1 and 1, 3 cells each: se = sqrt(2/3), dof 4, t_0.975 = 2.776
    low, high = controls.welch_interval(np.array([1.0, 2, 3]), np.array([0.0, 1, 2]), 0.95)
    half = 2.7764 * math.sqrt(2 / 3)
    assert (low, high) == pytest.approx((1 - half, 1 + half), abs=1e-3)
    assert np.isnan(controls.welch_interval(np.array([1.0]), np.array([0.0, 1]), 0.95)[0])


def test_families_compared_by_equivalence_not_by_an_interval_containing_zero():
    rng = np.random.default_rng(0)
    kw = {"alpha": 0.05, "shape_bound": 0.1, "size_bound": 1.25}
    a, b = _family(rng, 30, 0.2, 1.0), _family(rng, 30, 0.2, 1.02)
    same = {c.summary: c.verdict for c in controls.compare_families(a, b, **kw)}
    assert same == {"half_time": "same", "area": "same", "size_ratio": "same"}
    slow, big = _family(rng, 30, 0.6, 3.0), _family(rng, 30, 0.2, 1.0)
    diff = {c.summary: c.verdict for c in controls.compare_families(slow, big, **kw)}
    assert diff == {"half_time": "different", "area": "different", "size_ratio": "different"}
    # two cells each, one changing 1.5 times as much: too wide an interval to call "same"
    few = controls.compare_families(a[:2] * [[1, 1, 1], [1.5, 1, 1]], b[:2], **kw)
    assert {c.summary: c.verdict for c in few}["size_ratio"] != "same"


def test_opposite_changes_are_different_sizes():
    a = np.array([[1.0, 0.3, 0.6], [1.1, 0.3, 0.6], [0.9, 0.3, 0.6]])
    b = a * [-1, 1, 1]
    kw = {"alpha": 0.05, "shape_bound": 0.1, "size_bound": 1.25}
    size = controls.compare_families(a, b, **kw)[-1]
    assert size.summary == "size_ratio" and size.verdict == "different"


def test_maxt_of_pooled_nulls_matches_the_batched_maxt():
    rng = np.random.default_rng(8)
    stats, y = rng.normal(size=(4, 10)), rng.normal(size=10)
    perms = controls.permutations(1, 199, 10, rng)
    observed, null = controls.spearman_null(stats, y, perms[0])
    assert observed == pytest.approx([sps.spearmanr(s, y).statistic for s in stats])
    batched = controls.maxt_pvalues(stats[None], y[None], perms)[0]
    assert controls.maxt_pvalue(observed, null) == pytest.approx(batched)


def test_a_declared_statistic_outside_the_tested_ones_is_a_config_error(config):
    config["analysis"]["primary"]["claim1"] = "l2"
    with pytest.raises(ConfigError, match=r"analysis\.primary\.claim1: 'l2' is not one of"):
        validate_config(config, SCHEMA)
    config["analysis"]["primary"] = {"claim1": "std", "claim2": "x"}
    with pytest.raises(ConfigError, match=r"analysis\.primary\.claim2"):
        validate_config(config, SCHEMA)


def test_claim_settings_read_the_declared_statistic_and_the_bounds(default_config):
    s = ClaimSettings.from_config(default_config["analysis"])
    assert (s.primary_statistic, s.primary_target) == ("std", "w")
    assert (s.correlation_bound, s.shape_bound, s.size_bound) == (0.2, 0.1, 1.25)


def test_a_control_without_an_estimate_is_undefined_and_never_support():
    assert controls.control_outcome(-1, Reading(None, False)) == "undefined"
    assert controls.control_outcome(-1, Reading(0.3, True, defined=False)) == "undefined"
    assert controls.control_outcome(-1, None) is None


def test_a_family_whose_cells_change_both_ways_has_no_size_ratio():
    kw = {"alpha": 0.05, "shape_bound": 0.1, "size_bound": 1.25}
    a = np.array([[1.0, 0.3, 0.6], [1.1, 0.3, 0.6], [-0.2, 0.3, 0.6]])  # mean +, one cell −
    b = np.array([[1.0, 0.3, 0.6], [1.05, 0.3, 0.6], [0.95, 0.3, 0.6]])
    size = controls.compare_families(a, b, **kw)[-1]
    assert (size.summary, size.estimate, size.verdict) == ("size_ratio", None, "inconclusive")
    flat = controls.compare_families(a * [0, 1, 1], b, **kw)[-1]  # no change at all
    assert flat.verdict == "inconclusive"
    # the ratio's intervals are the exponentials of the log-ratio intervals
    same = controls.compare_families(b, b * 1.1, **kw)[-1]
    assert same.estimate == pytest.approx(1 / 1.1)
    low, high = same.ci
    assert low < 1 / 1.1 < high and same.equivalence_ci[0] > low


def test_average_ranks_by_hand_and_as_scipy_bit_for_bit():
    assert controls.average_ranks(np.array([30.0, 10.0, 20.0, 10.0])).tolist() == [4, 1.5, 3, 1.5]
    assert controls.average_ranks(np.array([[2.0, 2.0, 2.0], [3.0, 1.0, 2.0]])).tolist() == [
        [2, 2, 2],
        [3, 1, 2],
    ]
    rng = np.random.default_rng(0)
    for a in [
        rng.random((40, 30)),
        np.round(rng.random((40, 30)), 1),  # many ties, like bootstrap resamples
        rng.integers(0, 3, (20, 7)).astype(float),
        np.array([[1.0, np.nan, 2.0]]),  # NaN rows as scipy has them
        np.array([np.inf, -np.inf, 1.0, 1.0, -0.0, 0.0]),
    ]:
        assert np.array_equal(controls.average_ranks(a), sps.rankdata(a, axis=-1), equal_nan=True)


def test_resampled_ranks_count_what_a_sort_of_each_resample_gives():
    """A value drawn k times among m smaller draws ranks m + (k + 1) / 2: by hand, and as
    scipy's rankdata of every resample, bit for bit, with ties in the data too."""
    a = np.array([[10.0, 30.0, 20.0]])
    idx = np.array([[[0, 0, 2], [1, 2, 1]]])
    assert controls.resampled_ranks(a, idx).tolist() == [[[1.5, 1.5, 3], [2.5, 1, 2.5]]]
    rng = np.random.default_rng(1)
    for values in (rng.random((3, 25)), np.round(rng.random((3, 25)), 1)):
        draws = controls.bootstraps(3, 40, 25, rng)
        expected = sps.rankdata(np.take_along_axis(values[:, None, :], draws, -1), axis=-1)
        assert np.array_equal(controls.resampled_ranks(values, draws), expected)
