"""Runs side by side: one row per MLflow run, with the figures MLflow holds, and their curves.

Every figure comes from the store (``mlflow.search_runs``), never
recomputed, so the table agrees with the MLflow UI and with
``mlflow.search_runs``.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from experiments.tracking.errors import TrackingError
from experiments.tracking.names import (
    ROLE_TAG,
    SWEEP_OBJECTIVE_PARAM,
    SWEEP_ROLE,
    TRIAL_STATE_TAG,
    children_filter,
    read_tag,
    sweep_parents_filter,
)
from experiments.tracking.store import open_store, resolve_tracking_uri

SUMMARY_METRICS = ("epochs", "best_val_acc", "test_acc", "test_loss", "train_time_s")
"""Summary metrics shown for every run, in column order."""

LOWER_IS_BETTER = ("test_loss", "val_loss", "train_loss_step", "train_time_s", "epoch_of_best")

IGNORED_PARAMS = frozenset(
    {
        "run_name",
        "experiment",
        "tracking_uri",
        "tracking",
        "checkpoint_dir",
        "progress_bar",
        "tags",
        "log_model",
        "data.cache_key",
        "parent_run",
        "trial",
    }
)
"""Params that differ between runs without making them different experiments."""


def find_runs(experiment: str | None = None, filter_string: str = "", uri: str | None = None) -> list[Run]:
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
    mlflow.set_tracking_uri(open_store(uri))
    if experiment is not None and mlflow.get_experiment_by_name(experiment) is None:
        names = ", ".join(e.name for e in mlflow.search_experiments()) or "none yet"
        raise TrackingError(f"no experiment '{experiment}' in {resolve_tracking_uri(uri)}; experiments: {names}")
    try:
        return mlflow.search_runs(
            experiment_names=[experiment] if experiment is not None else None,
            search_all_experiments=experiment is None,
            filter_string=filter_string,
            order_by=["attributes.start_time DESC"],
            output_format="list",
        )
    except MlflowException as exc:
        raise TrackingError(f"bad --filter '{filter_string}': {str(exc).splitlines()[0][:160]}") from None


def differing_params(runs: list[Run]) -> list[str]:
    """Config params whose values differ between the runs.

    Args:
        runs: MLflow runs, as `find_runs` returns them.

    Returns:
        Param names, sorted, without bookkeeping ones such as ``run_name``.
    """
    keys = sorted({k for r in runs for k in r.data.params} - IGNORED_PARAMS - {"model", "model.num_params"})
    return [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]


def group_keys(runs: list[Run]) -> list[str]:
    """The params that tell runs' configurations apart: the model and what differs, seeds and trials aside.

    Args:
        runs: MLflow runs, as `find_runs` returns them.

    Returns:
        Param names, ``model`` first: what ``--group-by`` groups the runs' seeds by.
    """
    # The model's own facts (model.family, model.num_params) follow from the model: not groups of their own.
    return ["model", *[k for k in differing_params(runs) if k not in ("seed", "trial") and not k.startswith("model")]]


def repeated_configs(runs: list[Run]) -> list[str]:
    """The params to group by when some runs repeat one configuration (seeds), else nothing.

    Args:
        runs: MLflow runs, as `find_runs` returns them.

    Returns:
        `group_keys` where two runs share their values, else ``[]``.
    """
    keys = group_keys(runs)
    configs = {tuple(r.data.params.get(k) for k in keys) for r in runs}
    return keys if len(configs) < len(runs) else []


def group_hint(keys: list[str]) -> str:
    """One line under a table of runs that repeat configurations: how to get a verdict.

    Args:
        keys: From `repeated_configs`.

    Returns:
        Such as ``several runs per model (seeds): add --group-by model for ...``.
    """
    flags = " ".join(f"--group-by {k}" for k in keys)
    return (
        f"several runs per {', '.join(keys)} (seeds): add {flags} for each group's mean and 95% CI "
        "and a verdict on their differences"
    )


def is_lower_better(metric: str) -> bool:
    """Whether a smaller value of a metric is better.

    Args:
        metric: Metric name.

    Returns:
        True for losses and times.
    """
    return metric in LOWER_IS_BETTER or metric.endswith("_loss")


def compare_rows(
    runs: list[Run], sort: str = "test_acc", mark_best: bool = True
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per run, best first by ``sort``, the best row marked.

    Args:
        runs: The runs (from `find_runs`).
        sort: Metric to rank by; losses and times rank ascending, the rest descending.
        mark_best: Mark the best row ``*`` in a ``best`` column; False leaves the column out
            (runs of seeds: one lucky seed is no verdict, the groups' comparison is).

    Returns:
        ``(rows, columns)`` for `experiments.analysis.tables.format_table`.
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
        # A pruned trial ends KILLED in MLflow (there is no PRUNED status there); the table says what it was.
        row["status"] = "PRUNED" if read_tag(r.data.tags, TRIAL_STATE_TAG) == "PRUNED" else r.info.status
        row[sort] = m.get(sort)
        rows.append(row)
    lower = is_lower_better(sort)
    ranked = [r for r in rows if isinstance(r.get(sort), (int, float))]
    rows = sorted(ranked, key=lambda r: r[sort], reverse=not lower) + [r for r in rows if r not in ranked]
    for i, row in enumerate(rows):
        row["best"] = "*" if i == 0 and row in ranked else ""
    columns = [*(["best"] if mark_best else []), "run", "model", "params", *varying, *SUMMARY_METRICS]
    if sort not in columns:
        columns.append(sort)
    return rows, [*columns, "status"]


def is_training_run(run: Run) -> bool:
    """Whether a run trained a model (not a sweep's parent nor a ``zoo eval`` run).

    Args:
        run: An `mlflow.entities.Run`.

    Returns:
        True for training runs.
    """
    return run.data.tags.get(ROLE_TAG) is None


def sweep_parent(run_id: str | None = None, name: str | None = None, uri: str | None = None) -> Run:
    """A sweep's parent run, by its run id or by the sweep's name (the newest of that name).

    Args:
        run_id: The parent's run id.
        name: The sweep's name (``zoo run --sweep NAME``, else the file's name).
        uri: Tracking URI.

    Returns:
        The parent run.

    Raises:
        TrackingError: If no sweep has that id or name.
    """
    by = f"attributes.run_id = '{run_id}'" if run_id is not None else sweep_parents_filter(str(name))
    runs = [r for r in find_runs(None, by, uri) if r.data.tags.get(ROLE_TAG) == SWEEP_ROLE]
    if not runs:
        what = f"run '{run_id}'" if run_id else f"sweep '{name}'"
        raise TrackingError(
            f"no sweep parent {what} in {resolve_tracking_uri(uri)}; list sweeps with "
            f"`zoo compare --all-runs` (their role is sweep)"
        )
    return runs[0]


def sweep_trials(parent: Run, uri: str | None = None) -> tuple[list[Run], str]:
    """A sweep's trials (its parent's children) and the metric that ranks them.

    Args:
        parent: The sweep's parent run.
        uri: Tracking URI.

    Returns:
        ``(children, metric)``: ``best_<objective>`` of the sweep (``best_val_acc`` by default).
    """
    runs = find_runs(None, children_filter(parent.info.run_id), uri)
    objective = parent.data.params.get(SWEEP_OBJECTIVE_PARAM, "maximize val_acc").split()[-1]
    return runs, f"best_{objective}"
