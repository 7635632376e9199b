"""The comparison's statistics on synthetic runs with known answers: error rates, scipy's figures, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from experiments.analysis import stats as zs

SIMULATIONS = 4000
RUNS = 3


def _null_and_shifted(shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(SIMULATIONS, RUNS)) + shift
    b = rng.normal(size=(SIMULATIONS, RUNS))
    return a, b


def _verdict_rate(a: np.ndarray, b: np.ndarray) -> float:
    """Share of simulations whose verdict says one group is better (the rule `decide` applies)."""
    p = stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue
    return float(np.mean(p < zs.ALPHA))


def test_the_verdict_is_welchs_test_at_five_percent() -> None:
    """`compare_pair`'s verdict is the vectorised rule below, so the simulated rates are the verdict's."""
    a, b = _null_and_shifted(1.5, seed=1)
    expected = stats.ttest_ind(a[:200], b[:200], axis=1, equal_var=False).pvalue < zs.ALPHA
    got = [zs.compare_pair(x, y).outcome in ("better", "worse") for x, y in zip(a[:200], b[:200], strict=True)]
    assert got == list(expected)
    assert 20 < sum(got) < 180  # both kinds of verdict were checked


def test_false_positive_rate_at_three_runs_per_group_is_at_most_seven_percent() -> None:
    a, b = _null_and_shifted(0.0, seed=2)
    rate = _verdict_rate(a, b)
    assert rate <= 0.07
    assert rate > 0.01  # a test that never says "better" would pass the line above


def test_a_difference_of_five_standard_deviations_is_found_nine_times_in_ten() -> None:
    a, b = _null_and_shifted(5.0, seed=3)
    assert _verdict_rate(a, b) >= 0.9
    assert zs.compare_pair([5.1, 4.9, 5.0], [0.1, -0.1, 0.0], ("A", "B")).verdict.startswith("A better than B (p = ")


def test_every_figure_equals_scipys_own() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.6, 0.02, 12), rng.normal(0.58, 0.03, 11)
    pair = zs.compare_pair(x, y, ("A", "B"))
    welch = stats.ttest_ind(x, y, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert pair.diff == pytest.approx(x.mean() - y.mean())
    assert (pair.ci_low, pair.ci_high) == pytest.approx((ci.low, ci.high))
    assert pair.df == pytest.approx(welch.df)
    assert pair.p == pytest.approx(welch.pvalue)
    assert pair.prob_a_beats_b == pytest.approx(stats.mannwhitneyu(x, y).statistic / (12 * 11))
    boot = stats.bootstrap(
        (x, y), lambda u, v, axis=-1: u.mean(axis) - v.mean(axis), method="BCa", random_state=0, vectorized=True
    )
    assert (pair.boot_low, pair.boot_high) == pytest.approx(
        (boot.confidence_interval.low, boot.confidence_interval.high)
    )
    group = zs.describe(x)
    low, high = stats.t.interval(0.95, 11, loc=x.mean(), scale=stats.sem(x))
    assert (group.n, group.mean, group.std) == (12, pytest.approx(x.mean()), pytest.approx(x.std(ddof=1)))
    assert (group.ci_low, group.ci_high) == pytest.approx((low, high))


def test_the_paired_test_only_where_both_groups_ran_the_same_seeds() -> None:
    a, b = [0.50, 0.60, 0.70], [0.49, 0.58, 0.69]
    pair = zs.compare_pair(a, b, seeds=([0, 1, 2], [2, 0, 1]))
    b_by_seed = [0.58, 0.69, 0.49]  # b's values ordered as a's seeds 0, 1, 2
    assert pair.paired_n == 3
    assert pair.paired_p == pytest.approx(stats.ttest_rel(a, b_by_seed).pvalue)
    assert zs.compare_pair(a, b, seeds=([0, 1, 2], [0, 1, 3])).paired_n == 0
    assert math.isnan(zs.compare_pair(a, b).paired_p)


def test_bootstrap_only_with_ten_runs_per_group() -> None:
    rng = np.random.default_rng(5)
    assert math.isnan(zs.compare_pair(rng.normal(size=9), rng.normal(size=30)).boot_low)
    assert not math.isnan(zs.compare_pair(rng.normal(size=10), rng.normal(size=10)).boot_low)


def test_power_from_the_noncentral_t() -> None:
    n = zs.runs_for_power(1.0)
    assert zs.two_sample_power(n, 1.0) >= 0.8 > zs.two_sample_power(n - 1, 1.0)
    assert n == 17  # the textbook answer for d = 1 at 80% power and 5%
    df, ncp = 2 * 17 - 2, math.sqrt(17 / 2)
    crit = stats.t.ppf(0.975, df)
    assert zs.two_sample_power(17, 1.0) == pytest.approx(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))
    assert math.isinf(zs.runs_for_power(0.001))
    pair = zs.compare_pair([0.50, 0.52, 0.51], [0.505, 0.49, 0.50])
    assert pair.outcome == "no difference"
    assert f"about {int(pair.runs_needed)} runs per group would detect a difference of 0.0117 at 80% power" in (
        pair.verdict
    )


def test_holm_step_down() -> None:
    assert zs.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert zs.holm([0.5, 0.01]) == pytest.approx([0.5, 0.02])
    adjusted = zs.holm([0.02, math.nan])
    assert adjusted[0] == pytest.approx(0.02)
    assert math.isnan(adjusted[1])


def test_one_run_is_cannot_tell() -> None:
    pair = zs.compare_pair([0.9], [0.5, 0.6], ("A", "B"))
    assert pair.outcome == "cannot tell"
    assert pair.verdict == "cannot tell: fewer than two runs (A has 1, B has 2)"
    one = zs.describe([0.9])
    assert (one.n, one.mean) == (1, 0.9)
    assert math.isnan(one.std)
    assert math.isnan(one.ci_low)


def test_zero_spread() -> None:
    same = zs.compare_pair([0.5, 0.5, 0.5], [0.5, 0.5])
    assert same.verdict == "no detectable difference: the means are equal"
    apart = zs.compare_pair([0.6, 0.6], [0.5, 0.5], ("A", "B"))
    assert apart.verdict == "A better than B (p = 0)"
    assert "zero spread" in apart.notes[0]
    assert zs.describe([0.5, 0.5]).ci_low == 0.5


def test_lower_is_better() -> None:
    loss_a, loss_b = [0.10, 0.11, 0.12], [0.50, 0.52, 0.51]
    pair = zs.compare_pair(loss_a, loss_b, ("A", "B"), lower_is_better=True)
    assert pair.outcome == "better"
    assert pair.verdict.startswith("A better than B")
    assert pair.diff < 0
    assert pair.prob_a_beats_b == 1.0
    assert zs.compare_pair(loss_a, loss_b, ("A", "B")).verdict.startswith("B better than A")


def test_more_than_two_groups_are_holm_adjusted() -> None:
    groups = {"A": [0.90, 0.91, 0.92], "B": [0.80, 0.83, 0.86], "C": [0.89, 0.91, 0.90]}
    table = zs.compare_table(groups, [("A", "B"), ("A", "C")])
    raw = [stats.ttest_ind(groups["A"], groups[g], equal_var=False).pvalue for g in ("B", "C")]
    assert [p.p for p in table] == pytest.approx(raw)
    assert [p.p_adjusted for p in table] == pytest.approx(zs.holm(raw))
    assert table[0].p_adjusted > table[0].p
    assert table[1].outcome == "no difference"


def test_unequal_budgets_are_confounded() -> None:
    pair = zs.compare_pair([0.9, 0.91, 0.92], [0.5, 0.51, 0.52], confounded="epochs 6 vs 2")
    assert pair.outcome == "confounded"
    assert pair.verdict == "confounded: the budgets differ (epochs 6 vs 2)"
    assert pair.p < 0.05  # the figures are there; the verdict is withheld


def test_nan_runs_are_counted_and_left_out() -> None:
    pair = zs.compare_pair([0.9, math.nan, 0.91, None], [0.5, 0.52], ("A", "B"))
    assert (pair.n_a, pair.n_b) == (2, 2)
    assert pair.notes == ["2 run(s) of A with no value (NaN or missing) left out"]
    assert zs.describe([math.nan, 1.0]).n_nan == 1


def test_expected_maximum_of_a_random_search() -> None:
    assert zs.expected_max([3.0, 1.0, 2.0]) == pytest.approx([2.0, 1 / 9 + 2 * 3 / 9 + 3 * 5 / 9, 72 / 27])
    assert zs.expected_max([1.0, 2.0, 3.0], lower_is_better=True)[-1] == pytest.approx(36 / 27)
    rng = np.random.default_rng(6)
    values = rng.normal(size=8)
    draws = rng.choice(values, size=(200_000, 4)).max(axis=1)  # the best of 4 trials drawn from the 8
    assert zs.expected_max(values)[3] == pytest.approx(draws.mean(), abs=0.01)
    assert zs.expected_max([math.nan, None]) == []
