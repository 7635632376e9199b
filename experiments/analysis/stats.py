"""Is A better than B, by how much, and how sure are we: intervals, tests and verdicts on scipy.stats.

Plain numbers in, plain numbers out; nothing here knows about MLflow. Every figure
is scipy's own:

- a group's 95% interval of the mean: Student's t (`scipy.stats.t`, `scipy.stats.sem`);
- a pair's difference of means, its 95% interval, degrees of freedom and p-value: Welch's
  test (``scipy.stats.ttest_ind(equal_var=False)`` and its ``confidence_interval``);
- the probability that a run of A beats a run of B: Mann-Whitney U / (n_A n_B), ties
  counting half (``scipy.stats.mannwhitneyu``);
- the paired test on per-seed differences where both groups ran the same seeds
  (``scipy.stats.ttest_rel``);
- a BCa bootstrap interval (``scipy.stats.bootstrap``) only where both groups have at
  least `BOOTSTRAP_MIN_RUNS` runs: below that its coverage is far from 95%;
- the runs per group that would detect a difference at 80% power: the two-sample t-test's
  power from the noncentral t (``scipy.stats.nct``).

The verdict rests on Welch's p-value, Holm-adjusted when one table holds several pairs
(`holm`). Welch's test keeps its false-positive rate near 5% at three runs per group
(tests/test_stats.py simulates it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

ALPHA = 0.05
"""Significance level of every verdict (after Holm's adjustment)."""

CONFIDENCE = 0.95
"""Coverage of every interval."""

POWER = 0.8
"""Power at which `runs_for_power` sizes a study."""

BOOTSTRAP_MIN_RUNS = 10
"""Fewest runs per group for which the BCa bootstrap interval is shown."""

MAX_RUNS = 100_000
"""Largest study `runs_for_power` reports; beyond it the answer is 'more than this'."""


@dataclass(frozen=True)
class GroupStats:
    """One group's runs on one metric.

    Attributes:
        n: Runs with a value (NaN values left out).
        n_nan: Runs whose value was NaN (counted, left out).
        mean: Mean, or NaN without runs.
        std: Sample standard deviation (``ddof=1``), or NaN with fewer than two runs.
        ci_low: Lower end of the 95% interval of the mean (Student's t), or NaN.
        ci_high: Upper end, or NaN.
    """

    n: int
    n_nan: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


@dataclass
class PairStats:
    """Group A against group B on one metric; differences are A - B in the metric's units.

    Attributes:
        a: Name of group A.
        b: Name of group B.
        n_a: Runs of A with a value.
        n_b: Runs of B with a value.
        mean_a: Mean of A.
        mean_b: Mean of B.
        diff: ``mean_a - mean_b``.
        ci_low: Lower end of Welch's 95% interval of the difference.
        ci_high: Upper end.
        df: Welch-Satterthwaite degrees of freedom.
        p: Welch's two-sided p-value.
        p_adjusted: ``p`` after Holm's adjustment over the pairs of one table (``p`` alone).
        prob_a_beats_b: Probability that a run of A beats a run of B (better in the metric's
            direction; ties count half).
        paired_n: Seeds both groups ran (0 when they did not all match).
        paired_diff: Mean per-seed difference A - B (NaN without a paired test).
        paired_p: Paired t-test p-value (NaN without one).
        boot_low: Lower end of the BCa bootstrap interval of the difference (NaN below 10 runs).
        boot_high: Upper end.
        runs_needed: Runs per group that would detect ``|diff|`` at 80% power (NaN where undefined).
        outcome: ``better``, ``worse``, ``no difference``, ``cannot tell`` or ``confounded``
            (``better``: A is better than B).
        verdict: The one line a reader reads.
        notes: What else the reader must know (zero spread, NaN runs left out).
    """

    a: str
    b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    df: float = math.nan
    p: float = math.nan
    p_adjusted: float = math.nan
    prob_a_beats_b: float = math.nan
    paired_n: int = 0
    paired_diff: float = math.nan
    paired_p: float = math.nan
    boot_low: float = math.nan
    boot_high: float = math.nan
    runs_needed: float = math.nan
    outcome: str = "cannot tell"
    verdict: str = ""
    notes: list[str] = field(default_factory=list)


def finite(values: Sequence[float | None]) -> tuple[np.ndarray, int]:
    """The values that are numbers, and how many were NaN or missing.

    Args:
        values: Metric values (``None`` or NaN where a run has none).

    Returns:
        ``(array of the finite values, count left out)``.
    """
    array = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
    kept = array[~np.isnan(array)]
    return kept, int(array.size - kept.size)


def describe(values: Sequence[float | None], confidence: float = CONFIDENCE) -> GroupStats:
    """n, mean, standard deviation and the Student's t interval of the mean of one group.

    Args:
        values: One value per run (NaN and ``None`` are counted and left out).
        confidence: Coverage of the interval.

    Returns:
        The group's `GroupStats`; with one run the std and interval are NaN, with zero
        spread the interval is the mean itself.
    """
    x, n_nan = finite(values)
    n = int(x.size)
    if n == 0:
        return GroupStats(0, n_nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(np.mean(x))
    if n < 2:
        return GroupStats(n, n_nan, mean, math.nan, math.nan, math.nan)
    std = float(np.std(x, ddof=1))
    if std == 0:
        return GroupStats(n, n_nan, mean, 0.0, mean, mean)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=stats.sem(x))
    return GroupStats(n, n_nan, mean, std, float(low), float(high))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for several pairs tested in one table.

    The smallest of m p-values is multiplied by m, the next by m - 1, and so on, each
    adjusted value at least the one before it (and at most 1). It controls the chance of
    any false "better" over the table at the nominal level, with no assumption on how the
    tests depend on one another. NaN p-values are left as they are and not counted.

    Args:
        pvalues: Raw p-values.

    Returns:
        Adjusted p-values, in the input order.
    """
    p = np.array(pvalues, dtype=float)  # a copy: the adjusted values replace the raw ones in it
    index = np.flatnonzero(~np.isnan(p))
    order = index[np.argsort(p[index], kind="stable")]  # smallest first
    p[order] = np.minimum(1.0, np.maximum.accumulate((order.size - np.arange(order.size)) * p[order]))
    return [float(v) for v in p]


def two_sample_power(n: np.ndarray | float, effect: float, alpha: float = ALPHA) -> np.ndarray:
    """Power of the two-sided two-sample t-test with ``n`` runs per group (noncentral t).

    Args:
        n: Runs per group (an array for many at once).
        effect: The difference to detect in standard deviations (Cohen's d).
        alpha: Significance level.

    Returns:
        The probability of a significant result when the true difference is ``effect``.
    """
    n = np.asarray(n, dtype=float)
    df = 2 * n - 2
    ncp = abs(effect) * np.sqrt(n / 2)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return np.asarray(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def runs_for_power(effect: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """Fewest runs per group at which the two-sample t-test detects ``effect`` with ``power``.

    Args:
        effect: The difference in standard deviations.
        power: Wanted power.
        alpha: Significance level.

    Returns:
        Runs per group (at least 2), ``inf`` beyond `MAX_RUNS`, NaN for a zero or undefined effect.
    """
    if not math.isfinite(effect) or effect == 0:
        return math.nan
    low, high = 2, 4
    while two_sample_power(high, effect, alpha) < power:  # power grows with n: double, then bisect
        low, high = high, high * 2
        if high > MAX_RUNS:
            return math.inf
    if two_sample_power(low, effect, alpha) >= power:
        return float(low)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if two_sample_power(mid, effect, alpha) >= power else (mid, high)
    return float(high)


def _difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axis) - np.mean(y, axis=axis))


def compare_pair(
    a: Sequence[float | None],
    b: Sequence[float | None],
    names: tuple[str, str] = ("A", "B"),
    lower_is_better: bool = False,
    seeds: tuple[Sequence[object], Sequence[object]] | None = None,
    confounded: str | None = None,
) -> PairStats:
    """Every figure of A against B, and the verdict before any multiple-comparison adjustment.

    Args:
        a: Group A's values, one per run (NaN and ``None`` counted and left out).
        b: Group B's values.
        names: The groups' names, as the verdict prints them.
        lower_is_better: A smaller value is better (losses, times).
        seeds: Each run's seed, in the order of ``a`` and ``b``; where both groups ran the
            same seeds once each, the paired test is added.
        confounded: What differs between the groups' budgets (``"epochs 2 vs 6"``); the verdict
            is then withheld.

    Returns:
        The pair's `PairStats`; call `decide` again after adjusting ``p_adjusted``.
    """
    x, nan_a = finite(a)
    y, nan_b = finite(b)
    mean_a, mean_b = (float(np.mean(v)) if v.size else math.nan for v in (x, y))
    pair = PairStats(names[0], names[1], int(x.size), int(y.size), mean_a, mean_b)
    for name, dropped in zip(names, (nan_a, nan_b), strict=True):
        if dropped:
            pair.notes.append(f"{dropped} run(s) of {name} with no value (NaN or missing) left out")
    if x.size < 2 or y.size < 2:
        return decide(pair, lower_is_better, confounded)
    pair.diff = pair.mean_a - pair.mean_b
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        pair.notes.append("every run of each group gave the same value: zero spread, so no test can weigh chance")
        pair.ci_low = pair.ci_high = pair.diff
        pair.p = 1.0 if pair.diff == 0 else 0.0
    else:
        welch = stats.ttest_ind(x, y, equal_var=False)
        interval = welch.confidence_interval(CONFIDENCE)
        pair.ci_low, pair.ci_high = float(interval.low), float(interval.high)
        pair.df, pair.p = float(welch.df), float(welch.pvalue)
    sign = -1.0 if lower_is_better else 1.0
    u = stats.mannwhitneyu(sign * x, sign * y, alternative="two-sided").statistic
    pair.prob_a_beats_b = float(u) / (x.size * y.size)
    _add_paired(pair, a, b, seeds)
    if x.size >= BOOTSTRAP_MIN_RUNS and y.size >= BOOTSTRAP_MIN_RUNS:
        boot = stats.bootstrap(
            (x, y), _difference, method="BCa", confidence_level=CONFIDENCE, vectorized=True, random_state=0
        )
        pair.boot_low, pair.boot_high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    pooled = math.sqrt((np.var(x, ddof=1) + np.var(y, ddof=1)) / 2)
    pair.runs_needed = runs_for_power(pair.diff / pooled) if pooled > 0 else math.nan
    pair.p_adjusted = pair.p
    return decide(pair, lower_is_better, confounded)


def _add_paired(
    pair: PairStats,
    a: Sequence[float | None],
    b: Sequence[float | None],
    seeds: tuple[Sequence[object], Sequence[object]] | None,
) -> None:
    if seeds is None:
        return
    seeds_a, seeds_b = (list(s) for s in seeds)
    if len(set(seeds_a)) != len(seeds_a) or sorted(map(str, seeds_a)) != sorted(map(str, seeds_b)):
        return  # not the same seeds once each: nothing to pair
    by_seed = {str(s): v for s, v in zip(seeds_b, b, strict=True)}
    # One row per seed, (A, B); None becomes NaN, and a seed either group lacks a value for is left out.
    matched = np.array([(va, by_seed[str(s)]) for s, va in zip(seeds_a, a, strict=True)], dtype=float).reshape(-1, 2)
    matched = matched[~np.isnan(matched).any(axis=1)]
    if len(matched) < 2:
        return
    u, v = matched.T
    pair.paired_n = len(matched)
    pair.paired_diff = float(np.mean(u - v))
    if np.ptp(u - v) > 0:
        pair.paired_p = float(stats.ttest_rel(u, v).pvalue)


def decide(pair: PairStats, lower_is_better: bool = False, confounded: str | None = None) -> PairStats:
    """Set the pair's outcome and verdict line from its figures (``p_adjusted`` decides).

    Args:
        pair: The pair, with its figures.
        lower_is_better: A smaller value is better.
        confounded: The budgets' difference, or None when they match.

    Returns:
        The same pair, its ``outcome`` and ``verdict`` set.
    """
    a, b = pair.a, pair.b
    if confounded:
        pair.outcome, pair.verdict = "confounded", f"confounded: the budgets differ ({confounded})"
    elif pair.n_a < 2 or pair.n_b < 2:
        runs = f"{a} has {pair.n_a}, {b} has {pair.n_b}"
        pair.outcome, pair.verdict = "cannot tell", f"cannot tell: fewer than two runs ({runs})"
    elif pair.p_adjusted < ALPHA and pair.diff != 0:
        a_wins = (pair.diff < 0) if lower_is_better else (pair.diff > 0)
        winner, loser = (a, b) if a_wins else (b, a)
        pair.outcome = "better" if a_wins else "worse"
        pair.verdict = f"{winner} better than {loser} (p = {_p(pair.p_adjusted)})"
    else:
        pair.outcome = "no difference"
        pair.verdict = "no detectable difference" + _power_clause(pair)
    return pair


def _power_clause(pair: PairStats) -> str:
    if pair.diff == 0 or math.isnan(pair.diff):
        return ": the means are equal"
    d = f"{abs(pair.diff):.3g}"
    if math.isnan(pair.runs_needed):
        return f" (p = {_p(pair.p_adjusted)})"
    if math.isinf(pair.runs_needed):
        return f": more than {MAX_RUNS:,} runs per group would be needed to detect a difference of {d}"
    return f": about {int(pair.runs_needed)} runs per group would detect a difference of {d} at 80% power"


def _p(p: float) -> str:
    return "0" if p == 0 else f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def compare_table(
    groups: Mapping[str, Sequence[float | None]],
    pairs: Sequence[tuple[str, str]],
    lower_is_better: bool = False,
    seeds: Mapping[str, Sequence[object]] | None = None,
    confounded: Mapping[tuple[str, str], str | None] | None = None,
) -> list[PairStats]:
    """Several pairs on one metric, their p-values Holm-adjusted together.

    Args:
        groups: ``{name: values}``.
        pairs: ``(A, B)`` names to compare.
        lower_is_better: A smaller value is better.
        seeds: ``{name: seeds}`` in the order of the values, for the paired test.
        confounded: ``{(A, B): what differs}`` for pairs whose budgets differ.

    Returns:
        One `PairStats` per pair, in order.
    """
    whys = [(confounded or {}).get(pair) for pair in pairs]
    out = [
        compare_pair(groups[a], groups[b], (a, b), lower_is_better, (seeds[a], seeds[b]) if seeds else None, why)
        for (a, b), why in zip(pairs, whys, strict=True)
    ]
    for pair, adjusted, why in zip(out, holm([p.p for p in out]), whys, strict=True):
        pair.p_adjusted = adjusted
        decide(pair, lower_is_better, why)
    return out


def expected_max(values: Sequence[float | None], lower_is_better: bool = False) -> list[float]:
    """Expected best validation figure after n = 1, 2, ..., N trials of a random search.

    Dodge et al., *Show Your Work* (EMNLP 2019): with the N finished trials' values as the
    empirical distribution, the best of n independent draws has the expectation
    ``sum_i v_(i) * ((i/N)^n - ((i-1)/N)^n)`` over the sorted values ``v_(1) <= ... <= v_(N)``.
    It answers "what would a budget of n trials have found", and is valid for random search
    only: a sampler that learns from earlier trials (TPE) does not draw independently.

    Args:
        values: One objective value per finished trial (NaN and ``None`` left out).
        lower_is_better: The objective is minimised: the expected minimum instead.

    Returns:
        ``[E(best of 1), E(best of 2), ..., E(best of N)]``; empty without values.
    """
    x, _ = finite(values)
    if x.size == 0:
        return []
    sign = -1.0 if lower_is_better else 1.0
    ordered = np.sort(sign * x)
    share = np.arange(ordered.size + 1) / ordered.size  # (i/N) for i = 0..N
    n = np.arange(1, ordered.size + 1)[:, None]
    weights = share[1:] ** n - share[:-1] ** n  # P(the best of n draws is v_(i))
    return [float(v) for v in sign * (weights @ ordered)]
