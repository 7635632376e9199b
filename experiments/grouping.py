"""Runs grouped by params: mean, standard deviation and count of the summary metrics, and group curves.

``zoo compare --group-by model`` (any param, or several) puts the runs that share
those param values into one row. Statistics are over the runs' MLflow metrics:
the mean and the sample standard deviation (``ddof=1``, as pandas' ``std``;
empty for a group of one run). ``--plot`` then draws each group's mean curve
with a band of one standard deviation, and ``--plot-grad-norms`` the runs'
per-stage gradient norms.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Sequence

from experiments import tracking
from experiments.compare import is_lower_better

GROUP_METRICS = ("best_val_acc", "test_acc", "test_loss", "epochs", "train_time_s")
"""Summary metrics averaged per group, in column order."""


def param_key(name: str) -> str:
    """A param name without MLflow's ``params.`` prefix.

    Args:
        name: ``model`` or ``params.model``.

    Returns:
        ``model``.
    """
    return name[len("params."):] if name.startswith("params.") else name


def check_group_keys(runs: list[Any], keys: Sequence[str]) -> list[str]:
    """Check that every key is a param of the runs.

    Args:
        runs: The runs.
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
            raise tracking.TrackingError(f"--group-by {key}: no run has that param; params: {', '.join(known)}")
    return out


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (``None`` where undefined).

    Args:
        values: The numbers.

    Returns:
        ``(mean, std)``; std is ``None`` for fewer than two values.
    """
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def groups_of(runs: list[Any], keys: Sequence[str]) -> dict[tuple[str, ...], list[Any]]:
    """Runs bucketed by their values of the params ``keys``, in first-seen order.

    Args:
        runs: The runs.
        keys: Param names (without ``params.``).

    Returns:
        ``{(value, ...): [runs]}``.
    """
    groups: dict[tuple[str, ...], list[Any]] = {}
    for r in runs:
        groups.setdefault(tuple(r.data.params.get(k, "-") for k in keys), []).append(r)
    return groups


def group_rows(runs: list[Any], keys: Sequence[str], metrics: Sequence[str] = GROUP_METRICS,
               sort: str = "test_acc") -> tuple[list[dict[str, Any]], list[str]]:
    """One row per group: its param values, run count, and mean/std of each metric.

    Args:
        runs: The runs (training runs; see `experiments.sweeps.is_training_run`).
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
        row: dict[str, Any] = {"best": "", **dict(zip(keys, values)), "runs": len(members)}
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


def _histories(client: Any, runs: list[Any], metric: str) -> list[dict[int, float]]:
    out = []
    for r in runs:
        history = client.get_metric_history(r.info.run_id, metric)
        if history:
            out.append({h.step: h.value for h in history})
    return out


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


def _figure(n_panels: int, width: float = 5.5) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, 4), squeeze=False)
    return fig, axes[0]


def _save(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _label(keys: Sequence[str], values: tuple[str, ...], n: int) -> str:
    return ", ".join(values if len(keys) == 1 else [f"{k}={v}" for k, v in zip(keys, values)]) + f" (n={n})"


def plot_group_curves(runs: list[Any], keys: Sequence[str], path: str | Path,
                      metrics: Sequence[str] = ("train_acc", "val_acc", "train_loss_epoch", "val_loss"),
                      uri: str | None = None) -> Path:
    """Draw each group's mean epoch curve with a band of one standard deviation.

    Args:
        runs: The runs.
        keys: Params to group by.
        path: Output PNG.
        metrics: Epoch metrics, one panel each.
        uri: Tracking URI.

    Returns:
        The file written.
    """
    keys = check_group_keys(runs, keys)
    client = tracking.get_client(uri)
    fig, axes = _figure(len(metrics), width=4.5)
    for values, members in groups_of(runs, keys).items():
        label = _label(keys, values, len(members))
        for ax, metric in zip(axes, metrics):
            steps, means, stds = mean_curve(_histories(client, members, metric))
            if not steps:
                continue
            x = [s + 1 for s in steps]
            line, = ax.plot(x, means, marker="o", label=label)
            ax.fill_between(x, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=line.get_color(), alpha=0.2)
    from matplotlib.ticker import MaxNLocator

    for ax, metric in zip(axes, metrics):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{metric} (mean ± std)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def grad_norm_parts(client: Any, runs: list[Any]) -> list[str]:
    """The parts (``stem``, ``layer1``, ..., ``head``) whose gradient norms the runs logged.

    Args:
        client: An `MlflowClient`.
        runs: The runs.

    Returns:
        Part names in forward order.
    """
    from experiments.gradnorms import METRIC_PREFIX

    names = {k[len(METRIC_PREFIX):] for r in runs for k in r.data.metrics if k.startswith(METRIC_PREFIX)}
    order = {"stem": -1, "head": 10_000}
    return sorted(names, key=lambda n: (order.get(n, int(n[5:]) if n.startswith("layer") and n[5:].isdigit() else 5_000), n))


def plot_grad_norms(runs: list[Any], path: str | Path, keys: Sequence[str] = (), uri: str | None = None) -> Path:
    """Draw the per-stage gradient norms of the runs side by side: one panel per stage.

    Args:
        runs: The runs (trained with ``--log-grad-norms``).
        path: Output PNG.
        keys: Params to group by; each group's mean (log scale) with a band. Empty: one line per run.
        uri: Tracking URI.

    Returns:
        The file written.

    Raises:
        TrackingError: If no run logged gradient norms.
    """
    from experiments.gradnorms import METRIC_PREFIX

    client = tracking.get_client(uri)
    parts = grad_norm_parts(client, runs)
    if not parts:
        raise tracking.TrackingError("no run logged gradient norms; train with --log-grad-norms (log_grad_norms: true)")
    keys = check_group_keys(runs, keys) if keys else []
    series = groups_of(runs, keys) if keys else {(f"{r.info.run_name} ({r.info.run_id[:8]})",): [r] for r in runs}
    fig, axes = _figure(len(parts), width=3.6)
    for values, members in series.items():
        label = _label(keys, values, len(members)) if keys else values[0]
        for ax, part in zip(axes, parts):
            steps, means, stds = mean_curve(_histories(client, members, METRIC_PREFIX + part))
            if not steps:
                continue
            line, = ax.plot(steps, means, label=label, linewidth=1.2)
            if keys:
                lower = [max(m - s, m * 1e-3) for m, s in zip(means, stds)]
                ax.fill_between(steps, lower, [m + s for m, s in zip(means, stds)], color=line.get_color(), alpha=0.2)
    for ax, part in zip(axes, parts):
        ax.set_yscale("log")
        ax.set_title(part)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("gradient L2 norm")
    axes[0].legend(fontsize=7)
    return _save(fig, path)


__all__ = ["GROUP_METRICS", "group_rows", "mean_curve", "plot_grad_norms", "plot_group_curves"]
