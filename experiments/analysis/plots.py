"""Plots of runs from the store: epoch curves, group means with their 95% interval, runs as dots, gradient norms.

Each figure is a matplotlib `Figure` drawn without pyplot (no screen, no global
state, nothing to close) and saved as a PNG; the numbers come from MLflow's
metric histories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mlflow.entities import Run

from experiments.analysis.budgets import at_label
from experiments.analysis.grouping import Comparison, check_group_keys, group_label, groups_of, mean_curve
from experiments.tracking.errors import TrackingError
from experiments.tracking.names import GRAD_NORM_PREFIX
from experiments.tracking.readback import curve

BAND_LEGEND = "line: mean; band: 95% CI of the mean"
"""What a group's band shows, as its legend says (not one standard deviation, not min to max)."""


def plot_curves(
    runs: list[Run], path: str | Path, metrics: tuple[str, ...] = ("val_acc", "val_loss"), uri: str | None = None
) -> Path:
    """Draw each run's epoch curves of ``metrics`` side by side into a PNG.

    Args:
        runs: MLflow runs, as `experiments.analysis.compare.find_runs` returns them.
        path: Output file.
        metrics: Epoch metrics, one panel each.
        uri: Tracking URI.

    Returns:
        The file written.
    """
    fig, axes = _figure(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        for r in runs:
            if history := curve(r.info.run_id, metric, uri):
                ax.plot(list(history), list(history.values()), marker="o", label=_run_label(r))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def _run_label(run: Run) -> str:
    return f"{run.info.run_name} ({run.info.run_id[:8]})"


def _histories(runs: list[Run], metric: str, uri: str | None) -> list[dict[int, float]]:
    return [history for r in runs if (history := curve(r.info.run_id, metric, uri))]


def _figure(n_panels: int, width: float = 5.5) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width * n_panels, 4))
    axes = fig.subplots(1, n_panels, squeeze=False)
    return fig, axes[0]


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return out


def plot_group_curves(
    runs: list[Run],
    keys: Sequence[str],
    path: str | Path,
    metrics: Sequence[str] = ("train_acc", "val_acc", "train_loss_epoch", "val_loss"),
    uri: str | None = None,
) -> Path:
    """Draw each group's mean epoch curve with a band: the 95% interval of the mean (Student's t).

    Args:
        runs: MLflow runs, as `experiments.analysis.compare.find_runs` returns them.
        keys: Params to group by.
        path: Output PNG.
        metrics: Epoch metrics, one panel each.
        uri: Tracking URI.

    Returns:
        The file written.
    """
    keys = check_group_keys(runs, keys)
    fig, axes = _figure(len(metrics), width=4.5)
    for values, members in groups_of(runs, keys).items():
        label = f"{group_label(keys, values)} (n={len(members)})"
        for ax, metric in zip(axes, metrics, strict=True):
            steps, means, lows, highs = mean_curve(_histories(members, metric, uri))
            if not steps:
                continue
            # The steps are epochs counted from 1, as the summary counts them.
            (line,) = ax.plot(steps, means, marker="o", label=label)
            ax.fill_between(steps, lows, highs, color=line.get_color(), alpha=0.2)
    for ax, metric in zip(axes, metrics, strict=True):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{metric} (mean, 95% CI)")
        ax.grid(alpha=0.3)
    legend_ax = next((ax for ax in axes if ax.lines), axes[0])  # a panel with curves (not every run logs all)
    legend_ax.legend(fontsize=8, title=BAND_LEGEND, title_fontsize=7)
    return _save(fig, path)


def plot_group_runs(comparison: Comparison, path: str | Path) -> Path:
    """Draw every run as a dot (one per seed) beside its group's mean and 95% interval.

    Args:
        comparison: From `experiments.analysis.grouping.compare_run_groups`: its groups, best
            first, their runs' values and marks.
        path: Output PNG.

    Returns:
        The file written.
    """
    fig, axes = _figure(1, width=max(4.0, 1.2 * len(comparison.groups) + 2))
    ax = axes[0]
    for x, (group, stats) in enumerate(comparison.groups.items()):
        values = [v for v in comparison.values[group] if v is not None and not math.isnan(v)]
        offsets = [(i - (len(values) - 1) / 2) * 0.06 for i in range(len(values))]  # side by side, not on top
        ax.scatter([x - 0.15 + o for o in offsets], values, s=18, color="0.35", zorder=3)
        if stats.n:
            low, high = (stats.mean, stats.mean) if math.isnan(stats.ci_low) else (stats.ci_low, stats.ci_high)
            spread = [[stats.mean - low], [high - stats.mean]]
            ax.errorbar(x + 0.15, stats.mean, yerr=spread, fmt="o", color="C0", capsize=4, zorder=3)
    labels = [f"{g} {comparison.marks.get(g, '')}".strip() + f"\n(n={s.n})" for g, s in comparison.groups.items()]
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    where = f" at {at_label(comparison.at)}" if comparison.at is not None else ""
    ax.set_ylabel(f"{comparison.metric}{where}")
    ax.set_title("grey: one run each; blue: mean and 95% CI of the mean", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def plot_expected_max(curve: Sequence[float], metric: str, path: str | Path) -> Path:
    """Draw a random search's expected best objective against the number of trials.

    Args:
        curve: ``[E(best of 1), ..., E(best of N)]`` (`experiments.analysis.stats.expected_max`).
        metric: The objective's name, for the axis.
        path: Output PNG.

    Returns:
        The file written.
    """
    fig, axes = _figure(1)
    ax = axes[0]
    ax.plot(range(1, len(curve) + 1), curve, marker="o")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trials")
    ax.set_ylabel(f"expected best {metric}")
    ax.set_title("expected best after n trials (Dodge et al. 2019; random search only)", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def grad_norm_parts(runs: list[Run]) -> list[str]:
    """The parts (``stem``, ``layer1``, ..., ``head``) whose gradient norms the runs logged.

    Args:
        runs: MLflow runs, as `experiments.analysis.compare.find_runs` returns them.

    Returns:
        Part names in forward order.
    """
    names = {k[len(GRAD_NORM_PREFIX) :] for r in runs for k in r.data.metrics if k.startswith(GRAD_NORM_PREFIX)}
    order = {"stem": -1, "head": 10_000}
    return sorted(
        names, key=lambda n: (order.get(n, int(n[5:]) if n.startswith("layer") and n[5:].isdigit() else 5_000), n)
    )


def plot_grad_norms(runs: list[Run], path: str | Path, keys: Sequence[str] = (), uri: str | None = None) -> Path:
    """Draw the per-stage gradient norms of the runs side by side: one panel per stage.

    Args:
        runs: The runs (trained with ``--log-grad-norms``).
        path: Output PNG.
        keys: Params to group by; each group's mean (log scale) with its 95% interval. Empty: one line per run.
        uri: Tracking URI.

    Returns:
        The file written.

    Raises:
        TrackingError: If no run logged gradient norms.
    """
    parts = grad_norm_parts(runs)
    if not parts:
        raise TrackingError("no run logged gradient norms; train with --log-grad-norms (log_grad_norms: true)")
    keys = check_group_keys(runs, keys) if keys else []
    series = groups_of(runs, keys) if keys else {(_run_label(r),): [r] for r in runs}
    fig, axes = _figure(len(parts), width=3.6)
    for values, members in series.items():
        label = f"{group_label(keys, values)} (n={len(members)})" if keys else values[0]
        for ax, part in zip(axes, parts, strict=True):
            steps, means, lows, highs = mean_curve(_histories(members, GRAD_NORM_PREFIX + part, uri))
            if not steps:
                continue
            (line,) = ax.plot(steps, means, label=label, linewidth=1.2)
            if keys:  # the interval's lower end kept above zero: the axis is logarithmic
                lower = [max(low, m * 1e-3) for low, m in zip(lows, means, strict=True)]
                ax.fill_between(steps, lower, highs, color=line.get_color(), alpha=0.2)
    for ax, part in zip(axes, parts, strict=True):
        ax.set_yscale("log")
        ax.set_title(part)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("gradient L2 norm")
    axes[0].legend(fontsize=7, title=BAND_LEGEND if keys else None, title_fontsize=6)
    return _save(fig, path)
