"""Runs side by side: one row per MLflow run, with the figures MLflow holds, and their curves.

Every figure comes from the store (``MlflowClient.search_runs``), never
recomputed, so the table agrees with the MLflow UI and with
``mlflow.search_runs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments import tracking

SUMMARY_METRICS = ("epochs", "best_val_acc", "test_acc", "test_loss", "train_time_s")
"""Summary metrics shown for every run, in column order."""

LOWER_IS_BETTER = ("test_loss", "val_loss", "train_loss", "train_time_s", "epoch_of_best")

IGNORED_PARAMS = frozenset({"run_name", "experiment", "tracking_uri", "tracking", "checkpoint_dir", "progress_bar",
                            "tags", "log_model", "data.cache_key", "parent_run"})
"""Params that differ between runs without making them different experiments."""


def find_runs(experiment: str | None = None, filter_string: str = "", uri: str | None = None) -> list[Any]:
    """The runs of an experiment (or of every experiment), newest first.

    Args:
        experiment: Experiment name; ``None`` for all experiments.
        filter_string: An MLflow search expression, such as ``"params.model = 'resnet50_scratch'"``.
        uri: Tracking URI.

    Returns:
        `mlflow.entities.Run` objects.

    Raises:
        TrackingError: If the experiment does not exist or the filter is invalid.
    """
    from mlflow.exceptions import MlflowException

    client = tracking.get_client(uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = ", ".join(e.name for e in client.search_experiments()) or "none yet"
            raise tracking.TrackingError(f"no experiment '{experiment}' in {tracking.resolve_tracking_uri(uri)}; experiments: {names}")
        ids = [found.experiment_id]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    runs: list[Any] = []
    token = None
    try:
        while ids:
            page = client.search_runs(ids, filter_string=filter_string, order_by=["attributes.start_time DESC"],
                                      max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                break
    except MlflowException as exc:
        raise tracking.TrackingError(f"bad --filter '{filter_string}': {str(exc).splitlines()[0][:160]}") from None
    return runs


def differing_params(runs: list[Any]) -> list[str]:
    """Config params whose values differ between the runs.

    Args:
        runs: The runs.

    Returns:
        Param names, sorted, without bookkeeping ones such as ``run_name``.
    """
    keys = sorted({k for r in runs for k in r.data.params} - IGNORED_PARAMS - {"model", "model.num_params"})
    return [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]


def is_lower_better(metric: str) -> bool:
    """Whether a smaller value of a metric is better.

    Args:
        metric: Metric name.

    Returns:
        True for losses and times.
    """
    return metric in LOWER_IS_BETTER or metric.endswith("_loss")


def compare_rows(runs: list[Any], sort: str = "test_acc") -> tuple[list[dict[str, Any]], list[str]]:
    """One row per run, best first by ``sort``, the best row marked.

    Args:
        runs: The runs (from `find_runs`).
        sort: Metric to rank by; losses and times rank ascending, the rest descending.

    Returns:
        ``(rows, columns)`` for `experiments.tables.format_table`.
    """
    varying = differing_params(runs)
    rows = []
    for r in runs:
        m, p = r.data.metrics, r.data.params
        row: dict[str, Any] = {
            "run": f"{r.info.run_name or '-'} ({r.info.run_id[:8]})",
            "run_id": r.info.run_id,
            "model": p.get("model", "-"),
            "params": int(p["model.num_params"]) if p.get("model.num_params", "").isdigit() else None,
        }
        row.update({k: p.get(k) for k in varying})
        row.update({k: (int(m[k]) if k == "epochs" and k in m else m.get(k)) for k in SUMMARY_METRICS})
        row["status"] = r.info.status
        row[sort] = m.get(sort)
        rows.append(row)
    lower = is_lower_better(sort)
    ranked = [r for r in rows if isinstance(r.get(sort), (int, float))]
    rows = sorted(ranked, key=lambda r: r[sort], reverse=not lower) + [r for r in rows if r not in ranked]
    for i, row in enumerate(rows):
        row["best"] = "*" if i == 0 and row in ranked else ""
    columns = ["best", "run", "model", "params", *varying, *SUMMARY_METRICS]
    if sort not in columns:
        columns.append(sort)
    return rows, columns + ["status"]


def plot_curves(runs: list[Any], path: str | Path, metrics: tuple[str, ...] = ("val_acc", "val_loss"),
                uri: str | None = None) -> Path:
    """Draw each run's epoch curves of ``metrics`` side by side into a PNG.

    Args:
        runs: The runs.
        path: Output file.
        metrics: Epoch metrics, one panel each.
        uri: Tracking URI.

    Returns:
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    client = tracking.get_client(uri)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for r in runs:
            history = sorted(client.get_metric_history(r.info.run_id, metric), key=lambda h: h.step)
            if history:
                ax.plot([h.step + 1 for h in history], [h.value for h in history], marker="o",
                        label=f"{r.info.run_name} ({r.info.run_id[:8]})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
