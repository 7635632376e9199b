"""Runs grouped by params: each group's figures, and the groups compared pair by pair with a verdict.

``zoo compare --group-by model`` (any param, or several) puts the runs that share
those param values into one row: the count, the mean, the sample standard deviation
(``ddof=1``, as pandas' ``std``; empty for one run) and the 95% interval of the mean
of each summary metric. `compare_run_groups` then holds the best group (or ``--vs``)
against each other on one metric with `experiments.analysis.stats`, withholding a
verdict where the budgets differ (`experiments.analysis.budgets`); the best group is
marked ``*`` only when its lead over every other is significant. `compare_metrics` does
so for every quality metric the runs have (`QUALITY_METRICS`), the sort metric first,
one Holm family per metric. `compare_groups` gives the same figures as pandas DataFrames.
`experiments.analysis.plots` draws the groups' mean curves with the same intervals.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from mlflow.entities import Run

from experiments.analysis.budgets import at_label, budget_difference, values_at
from experiments.analysis.compare import find_runs, is_lower_better, is_training_run
from experiments.analysis.stats import GroupStats, PairStats, compare_table, describe
from experiments.analysis.tables import format_table
from experiments.tracking.errors import TrackingError

GROUP_METRICS = ("best_val_acc", "test_acc", "test_loss", "epochs", "train_time_s")
"""Summary metrics averaged per group, in column order."""

QUALITY_METRICS = ("test_acc", "best_val_acc", "test_loss")
"""Summary metrics of how good a run is, each compared pair by pair; budgets (epochs, time) are not."""


def check_group_keys(runs: list[Run], keys: Sequence[str]) -> list[str]:
    """Check that every key is a param of the runs.

    Args:
        runs: MLflow runs, as `experiments.analysis.compare.find_runs` returns them.
        keys: Param names to group by.

    Returns:
        The names without MLflow's ``params.`` prefix (``params.model`` is ``model``).

    Raises:
        TrackingError: Naming the unknown param and the known ones.
    """
    known = sorted({k for r in runs for k in r.data.params})
    out = [k.removeprefix("params.") for k in keys]
    for key in out:
        if key not in known:
            raise TrackingError(f"--group-by {key}: no run has that param; params: {', '.join(known)}")
    return out


def groups_of(runs: list[Run], keys: Sequence[str]) -> dict[tuple[str, ...], list[Run]]:
    """Runs bucketed by their values of the params ``keys``, in first-seen order.

    Args:
        runs: MLflow runs, as `experiments.analysis.compare.find_runs` returns them.
        keys: Param names (without ``params.``).

    Returns:
        ``{(value, ...): [runs]}``.
    """
    groups: dict[tuple[str, ...], list[Run]] = {}
    for r in runs:
        groups.setdefault(tuple(r.data.params.get(k, "-") for k in keys), []).append(r)
    return groups


def group_label(keys: Sequence[str], values: tuple[str, ...]) -> str:
    """A group's name in tables and verdicts.

    Args:
        keys: The params grouped by.
        values: The group's values of them.

    Returns:
        The value alone for one key (``resnet50_scratch``), else ``key=value, ...``.
    """
    if len(keys) == 1:
        return values[0]
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))


@dataclass
class Comparison:
    """Groups of runs compared on one metric: each group's figures, the pairs, the marks.

    Attributes:
        metric: The metric compared.
        lower_is_better: Whether a smaller value is better.
        at: The equal budget compared at (``("epoch", 2)``, ``("flops", 1e12)``, ``("time", 60)``),
            or None for the runs' final figures.
        groups: ``{group: GroupStats}``, best mean first.
        pairs: The pairs of the table, Holm-adjusted together.
        marks: ``{group: mark}``: ``*`` for the best when its lead over every other group is
            significant, ``=`` for the groups tied for best, ``?`` where a verdict with the best
            was withheld (one run, unequal budgets).
        values: ``{group: one value per run}`` (``None`` or NaN where a run has none).
    """

    metric: str
    lower_is_better: bool
    at: tuple[str, float] | None
    groups: dict[str, GroupStats]
    pairs: list[PairStats]
    marks: dict[str, str]
    values: dict[str, list[float | None]]


def compare_run_groups(
    runs: list[Run],
    keys: Sequence[str],
    metric: str = "test_acc",
    vs: str | None = None,
    at: tuple[str, float] | None = None,
    uri: str | None = None,
) -> Comparison:
    """Compare groups of runs on one metric: the best group (or ``vs``) against each other.

    Args:
        runs: The runs (training runs; see `experiments.analysis.compare.is_training_run`).
        keys: Params to group by.
        metric: The metric; at an epoch, a per-epoch one (``val_acc``).
        vs: The group to hold against every other; default the best by mean.
        at: Compare at an equal budget from the per-epoch histories
            (`experiments.analysis.budgets.values_at`).
        uri: Tracking URI (read for the histories).

    Returns:
        The `Comparison`.

    Raises:
        TrackingError: No run has the metric, or ``vs`` names no group (the message lists them).
    """
    keys = check_group_keys(runs, keys)
    members = {group_label(keys, v): m for v, m in groups_of(runs, keys).items()}
    if at is not None:
        values = {g: values_at(m, metric, at, uri) for g, m in members.items()}
    else:
        values = {g: [r.data.metrics.get(metric) for r in m] for g, m in members.items()}
    if all(v is None for vals in values.values() for v in vals):
        known = sorted({k for r in runs for k in r.data.metrics})
        where = f" at {at_label(at)}" if at is not None else ""
        raise TrackingError(f"no run has the metric '{metric}'{where}; metrics: {', '.join(known) or 'none'}")
    lower = is_lower_better(metric)
    described = {g: describe(v) for g, v in values.items()}
    order = sorted(described, key=lambda g: _rank_key(described[g].mean, lower))
    if vs is not None and vs not in members:
        raise TrackingError(f"--vs {vs}: no such group; groups: {', '.join(order)}")
    seeds = {g: [r.data.params.get("seed") for r in m] for g, m in members.items()}

    def table(anchor: str) -> list[PairStats]:
        pairs = [(anchor, other) for other in order if other != anchor]
        budgets = {(a, b): budget_difference(members[a], members[b], at) for a, b in pairs}
        return compare_table(values, pairs, lower, seeds, budgets)

    best_table = table(order[0])
    pairs = best_table if vs in (None, order[0]) else table(vs)
    marks = best_marks(order[0], described[order[0]].n, best_table)
    ordered = {g: described[g] for g in order}
    return Comparison(metric, lower, at, ordered, pairs, marks, {g: values[g] for g in order})


def _rank_key(mean: float, lower_is_better: bool) -> tuple[bool, float]:
    return (math.isnan(mean), mean if lower_is_better else -mean)


def verdict_metrics(
    runs: list[Run], sort: str = "test_acc", metrics: Sequence[str] | None = None, at: tuple[str, float] | None = None
) -> list[str]:
    """The metrics the groups are compared on pair by pair, the sort metric first.

    Args:
        runs: The training runs being grouped; a quality metric none of them has is left out.
        sort: The metric that ranks the groups and marks them; always compared.
        metrics: The metrics asked for (``--metric``); None for the default.
        at: An equal budget (``--at``): by default only ``sort``, a per-epoch metric, is compared.

    Returns:
        ``sort``, then the metrics asked for, or else each of `QUALITY_METRICS` that some run has.
    """
    if metrics:
        chosen = list(metrics)
    elif at is not None:
        chosen = []
    else:
        chosen = [m for m in QUALITY_METRICS if any(m in r.data.metrics for r in runs)]
    return list(dict.fromkeys([sort, *chosen]))


def compare_metrics(
    runs: list[Run],
    keys: Sequence[str],
    sort: str = "test_acc",
    metrics: Sequence[str] | None = None,
    vs: str | None = None,
    at: tuple[str, float] | None = None,
    uri: str | None = None,
) -> list[Comparison]:
    """Compare groups of runs on several metrics: the same pairs on each, one Holm family per metric.

    The best group on ``sort`` (or ``vs``) is held against every other on each metric, so each
    pair appears once per metric; its p-values are Holm-adjusted over that metric's pairs.

    Args:
        runs: The runs (training runs; see `experiments.analysis.compare.is_training_run`).
        keys: Params to group by.
        sort: The metric that ranks and marks the groups; compared first.
        metrics: Metrics to compare (`verdict_metrics`); None: every quality metric the runs have.
        vs: The group to hold against every other; default the best on ``sort``.
        at: Compare at an equal budget from the per-epoch histories.
        uri: Tracking URI.

    Returns:
        One `Comparison` per metric, ``sort``'s first (its marks are the group table's).

    Raises:
        TrackingError: No run has ``sort`` or a metric asked for, or ``vs`` names no group.
    """
    first = compare_run_groups(runs, keys, sort, vs, at, uri)
    anchor = vs if vs is not None else next(iter(first.groups))
    place = {pair.b: i for i, pair in enumerate(first.pairs)}
    out = [first]
    for metric in verdict_metrics(runs, sort, metrics, at)[1:]:
        comparison = compare_run_groups(runs, keys, metric, anchor, at, uri)
        comparison.pairs.sort(key=lambda pair: place.get(pair.b, len(place)))  # the first metric's order
        out.append(comparison)
    return out


OUTCOME_MARKS = {"no difference": "=", "cannot tell": "?", "confounded": "?"}
"""The mark a group not told apart from the best gets, by its pair's outcome."""


def best_marks(best: str, best_runs: int, pairs: Sequence[PairStats]) -> dict[str, str]:
    """Marks for the group table from the best group's pairs with every other.

    Args:
        best: The group with the best mean.
        best_runs: Its runs with a value (none: nothing is marked).
        pairs: The best group against each other group.

    Returns:
        ``{best: "*"}`` when every lead is significant; otherwise ``=`` for the best and every
        group not told apart from it, ``?`` for the groups whose verdict was withheld.
    """
    if not pairs or best_runs == 0:
        return {}
    if all(p.outcome == "better" for p in pairs):
        return {best: "*"}
    return {best: "=", **{p.b: OUTCOME_MARKS[p.outcome] for p in pairs if p.outcome in OUTCOME_MARKS}}


MARKS_LEGEND = (
    "* best: its lead over every other group is significant; = tied for best (no detectable difference); "
    "? cannot tell or confounded"
)
"""What the group table's marks mean, printed under it after the metric they rest on."""


def group_rows(
    runs: list[Run],
    keys: Sequence[str],
    metrics: Sequence[str] = GROUP_METRICS,
    sort: str = "test_acc",
    ci_as_text: bool = False,
    comparison: Comparison | None = None,
    compact: bool = False,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per group: its param values, run count, and mean, std and 95% interval of each metric.

    The compact table (``compact``) is what a terminal shows by default: one column per metric,
    ``mean (low..high)``, so that two groups on three metrics fit in about 110 characters.

    Args:
        runs: The runs (training runs; see `experiments.analysis.compare.is_training_run`).
        keys: Params to group by.
        metrics: Summary metrics to describe.
        sort: Metric whose mean ranks the groups (losses and times ascending) and whose
            verdicts mark them.
        ci_as_text: One ``METRIC 95% CI`` column of text (for a terminal) instead of
            ``METRIC ci_low`` and ``METRIC ci_high`` numbers.
        comparison: The groups' `Comparison` on ``sort``, if already made.
        compact: One ``METRIC mean (95% CI)`` column of text per metric instead of three or four.

    Returns:
        ``(rows, columns)``: columns are the mark, the keys, ``runs``, then ``METRIC mean``,
        ``METRIC std`` and the interval for each metric (or the compact column); marks as
        `best_marks` gives them.
    """
    keys = check_group_keys(runs, keys)
    metrics = [*metrics, *([sort] if sort not in metrics else [])]
    if comparison is None:
        with contextlib.suppress(TrackingError):  # no run has ``sort``: the groups go unmarked
            comparison = compare_run_groups(runs, keys, sort)
    marks = comparison.marks if comparison else {}
    rows = []
    for values, members in groups_of(runs, keys).items():
        label = group_label(keys, values)
        row: dict[str, Any] = {"best": marks.get(label, ""), **dict(zip(keys, values, strict=True))}
        row["runs"] = len(members)
        for metric in metrics:
            group = describe([r.data.metrics.get(metric) for r in members])
            for figure in ("mean", "std", "ci_low", "ci_high"):
                value = getattr(group, figure)
                row[f"{metric} {figure}"] = None if math.isnan(value) else value
            row[f"{metric} 95% CI"] = _interval(group.ci_low, group.ci_high)
            ci = f" ({row[f'{metric} 95% CI']})" if row[f"{metric} 95% CI"] else ""
            row[f"{metric} {COMPACT}"] = "" if math.isnan(group.mean) else f"{group.mean:.4g}{ci}"
        rows.append(row)
    lower = is_lower_better(sort)
    rows.sort(key=lambda r: _rank_key(math.nan if r[f"{sort} mean"] is None else r[f"{sort} mean"], lower))
    interval = ("95% CI",) if ci_as_text else ("ci_low", "ci_high")
    figures = (COMPACT,) if compact else ("mean", "std", *interval)
    columns = ["best", *keys, "runs"] + [f"{m} {s}" for m in metrics for s in figures]
    return rows, columns


COMPACT = "mean (95% CI)"
"""The compact group table's one column per metric: ``METRIC mean (95% CI)``, such as ``0.918 (0.880..0.956)``."""


def pair_rows(comparisons: Sequence[Comparison], ci_as_text: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """The pairwise table: one row per pair and metric, the figures a verdict rests on.

    Args:
        comparisons: From `compare_metrics`.
        ci_as_text: Intervals as one text column each (for a terminal).

    Returns:
        ``(rows, columns)``, the ``metric`` column first; the Holm, paired and bootstrap
        columns only where they apply.
    """
    pairs = [pair for c in comparisons for pair in c.pairs]
    rows = []
    for comparison in comparisons:
        for pair in comparison.pairs:
            row: dict[str, Any] = {"metric": comparison.metric}
            row.update({k: v for k, v in asdict(pair).items() if k != "notes"})
            row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            row["diff 95% CI"] = _interval(pair.ci_low, pair.ci_high)
            row["bootstrap 95% CI"] = _interval(pair.boot_low, pair.boot_high)
            rows.append(row)
    columns = ["metric", "a", "b", "n_a", "n_b", "mean_a", "mean_b", "diff"]
    columns += ["diff 95% CI"] if ci_as_text else ["ci_low", "ci_high"]
    columns += ["df", "p"]
    if any(len(c.pairs) > 1 for c in comparisons):
        columns.append("p_adjusted")
    columns.append("prob_a_beats_b")
    if any(p.paired_n for p in pairs):
        columns += ["paired_n", "paired_diff", "paired_p"]
    if any(not math.isnan(p.boot_low) for p in pairs):
        columns += ["bootstrap 95% CI"] if ci_as_text else ["boot_low", "boot_high"]
    return rows, [*columns, "outcome"] if ci_as_text else [*columns, "outcome", "verdict"]


def _interval(low: float, high: float) -> str:
    return "" if math.isnan(low) else f"{low:.4g}..{high:.4g}"


def verdict_lines(comparisons: Sequence[Comparison]) -> list[str]:
    """One line per pair and metric (``A vs B (METRIC): verdict``), each followed by its notes.

    Args:
        comparisons: From `compare_metrics`.

    Returns:
        Lines to print, metric by metric, then how the p-values were adjusted.
    """
    lines = []
    for comparison in comparisons:
        where = f" at {at_label(comparison.at)}" if comparison.at is not None else ""
        for pair in comparison.pairs:
            lines.append(f"{pair.a} vs {pair.b} ({comparison.metric}{where}): {pair.verdict}")
            lines += [f"  note: {note}" for note in pair.notes]
    most = max((len(c.pairs) for c in comparisons), default=0)
    if most > 1:
        over = f"each metric's {most} pairs" if len(comparisons) > 1 else f"the {most} pairs"
        lines.append(f"  p-values Holm-adjusted over {over}")
    return lines


def verdict_report(comparisons: Sequence[Comparison], fmt: str = "table") -> str:
    """What follows the group table: the legend of its marks, the pairwise table, the verdict lines.

    ``zoo compare --group-by`` and ``zoo run`` of a seeded sweep print the same block.

    Args:
        comparisons: From `compare_metrics`, the sort metric's first (the marks rest on it).
        fmt: ``table`` or ``markdown`` (`experiments.analysis.tables.format_table`).

    Returns:
        The block, starting with an empty line.
    """
    rows, columns = pair_rows(comparisons, ci_as_text=True)
    legend = f"marks on {comparisons[0].metric}: {MARKS_LEGEND}"
    return f"\n{legend}\n\n{format_table(rows, columns, fmt)}\n\n" + "\n".join(verdict_lines(comparisons))


def compare_groups(
    experiment: str | None,
    group_by: Sequence[str],
    metric: str = "test_acc",
    vs: str | None = None,
    at: tuple[str, float] | None = None,
    filter_string: str = "",
    uri: str | None = None,
    metrics: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison as pandas DataFrames: one row per group, one row per pair and metric with its verdict.

    Example:
        >>> from experiments.analysis.grouping import compare_groups
        >>> groups, pairs = compare_groups("depth", ["model"], metric="test_acc")
        >>> on_test_acc = pairs[pairs.metric == "test_acc"]
        >>> on_test_acc[["a", "b", "diff", "ci_low", "ci_high", "p", "verdict"]]

    Args:
        experiment: MLflow experiment name (None: every experiment).
        group_by: Params to group by.
        metric: The metric that ranks and marks the groups, compared first (a per-epoch one,
            such as ``val_acc``, with ``at``).
        vs: The group held against every other; default the best on ``metric``.
        at: Compare at an equal budget: ``("epoch", N)``, ``("flops", F)`` or ``("time", SECONDS)``.
        filter_string: An MLflow search expression narrowing the runs.
        uri: Tracking URI.
        metrics: The metrics compared pair by pair after ``metric``; default every one of
            `QUALITY_METRICS` the runs have (with ``at``: ``metric`` alone).

    Returns:
        ``(groups, pairs)``: groups (on ``metric``) has ``group``, ``mark``, ``n``, ``n_nan``,
        ``mean``, ``std``, ``ci_low``, ``ci_high``; pairs has ``metric`` and every field of
        `experiments.analysis.stats.PairStats`, ``metric``'s pairs first, each metric's
        p-values Holm-adjusted over its own pairs.
    """
    runs = [r for r in find_runs(experiment, filter_string, uri) if is_training_run(r)]
    if not runs:
        raise TrackingError("no runs match; train some with `zoo run FILE` or `zoo train MODEL`")
    comparisons = compare_metrics(runs, group_by, metric, metrics, vs, at, uri)
    first = comparisons[0]
    groups = pd.DataFrame([{"group": g, "mark": first.marks.get(g, ""), **asdict(s)} for g, s in first.groups.items()])
    return groups, pd.DataFrame([{"metric": c.metric, **asdict(p)} for c in comparisons for p in c.pairs])


def mean_curve(histories: list[dict[int, float]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """The mean of several curves and its 95% interval (Student's t), step by step.

    Args:
        histories: ``{step: value}`` per run.

    Returns:
        ``(steps, means, lows, highs)``; at a step only some runs reached, over those runs
        (the interval is the mean itself where one run got there).
    """
    steps = sorted({s for h in histories for s in h})
    means, lows, highs = [], [], []
    for step in steps:
        group = describe([h[step] for h in histories if step in h])
        means.append(group.mean)
        lows.append(group.mean if math.isnan(group.ci_low) else group.ci_low)
        highs.append(group.mean if math.isnan(group.ci_high) else group.ci_high)
    return steps, means, lows, highs
