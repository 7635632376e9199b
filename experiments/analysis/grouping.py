"""Runs grouped by params: mean, standard deviation and count of the summary metrics.

``zoo compare --group-by model`` (any param, or several) puts the runs that share
those param values into one row. Statistics are over the runs' MLflow metrics:
the mean and the sample standard deviation (``ddof=1``, as pandas' ``std``;
empty for a group of one run). `experiments.analysis.plots` draws the same
groups' mean curves.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from mlflow.entities import Run

from experiments.analysis.compare import is_lower_better
from experiments.tracking.errors import TrackingError

GROUP_METRICS = ("best_val_acc", "test_acc", "test_loss", "epochs", "train_time_s")
"""Summary metrics averaged per group, in column order."""


def param_key(name: str) -> str:
    """A param name without MLflow's ``params.`` prefix.

    Args:
        name: ``model`` or ``params.model``.

    Returns:
        ``model``.
    """
    return name[len("params.") :] if name.startswith("params.") else name


def check_group_keys(runs: list[Run], keys: Sequence[str]) -> list[str]:
    """Check that every key is a param of the runs.

    Args:
        runs: MLflow runs, as `experiments.analysis.compare.find_runs` returns them.
        keys: Param names to group by.

    Returns:
        The names without ``params.``.

    Raises:
        TrackingError: Naming the unknown param and the known ones.
    """
    known = sorted({k for r in runs for k in r.data.params})
    out = [param_key(k) for k in keys]
    for key in out:
        if key not in known:
            raise TrackingError(f"--group-by {key}: no run has that param; params: {', '.join(known)}")
    return out


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (``None`` where undefined).

    Args:
        values: The numbers; ``None`` (a run without the metric) and NaN are left out.

    Returns:
        ``(mean, std)``; std is ``None`` for fewer than two values.
    """
    numbers = [v for v in values if v is not None and not math.isnan(v)]
    if not numbers:
        return None, None
    return statistics.fmean(numbers), (statistics.stdev(numbers) if len(numbers) > 1 else None)


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


def group_rows(
    runs: list[Run], keys: Sequence[str], metrics: Sequence[str] = GROUP_METRICS, sort: str = "test_acc"
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per group: its param values, run count, and mean/std of each metric.

    Args:
        runs: The runs (training runs; see `experiments.analysis.compare.is_training_run`).
        keys: Params to group by.
        metrics: Summary metrics to average.
        sort: Metric whose mean ranks the groups (losses and times ascending).

    Returns:
        ``(rows, columns)``: columns are the keys, ``runs``, then ``METRIC mean`` and
        ``METRIC std`` for each metric; the best group is marked ``*``.
    """
    keys = check_group_keys(runs, keys)
    metrics = [*metrics, *([sort] if sort not in metrics else [])]
    rows = []
    for values, members in groups_of(runs, keys).items():
        row: dict[str, Any] = {"best": "", **dict(zip(keys, values, strict=True)), "runs": len(members)}
        for metric in metrics:
            row[f"{metric} mean"], row[f"{metric} std"] = mean_std([r.data.metrics.get(metric) for r in members])
        rows.append(row)
    ranked = [r for r in rows if r.get(f"{sort} mean") is not None]
    ranked.sort(key=lambda r: r[f"{sort} mean"], reverse=not is_lower_better(sort))
    rows = ranked + [r for r in rows if r not in ranked]
    if ranked:
        rows[0]["best"] = "*"
    columns = ["best", *keys, "runs"] + [f"{m} {s}" for m in metrics for s in ("mean", "std")]
    return rows, columns


def mean_curve(histories: list[dict[int, float]]) -> tuple[list[int], list[float], list[float]]:
    """The mean and standard deviation of several curves, step by step.

    Args:
        histories: ``{step: value}`` per run.

    Returns:
        ``(steps, means, stds)``; at a step only some runs reached, over those runs (std 0 for one).
    """
    steps = sorted({s for h in histories for s in h})
    means, stds = [], []
    for step in steps:
        values = [h[step] for h in histories if step in h]
        mean, std = mean_std(values)
        means.append(mean if mean is not None else float("nan"))
        stds.append(std or 0.0)
    return steps, means, stds
