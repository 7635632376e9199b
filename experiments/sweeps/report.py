"""What a sweep's parent run holds once its last trial ended: the best trial, the groups, the plots, the tables.

Done once, by whichever process sees the last trial end first (a lock in the
study storage decides), so that N machines summarise one sweep once:

- params ``best.trial`` and ``best.<field>`` (the best trial's sampled values), and
  the metric ``best_<objective>``;
- per group of children (the params that differ, seeds aside): ``<metric>_mean/<group>``,
  ``<metric>_std/<group>`` and ``runs/<group>`` for the summary metrics, and the best
  group on ``test_acc`` against each other on every quality metric the children have
  (``test_acc``, ``best_val_acc``, ``test_loss``): ``vs/<group>/<metric>/diff``, ``ci_low``,
  ``ci_high``, ``p``, ``p_adjusted``, ``prob_a_beats_b`` (`experiments.analysis.stats`), and
  for ``test_acc`` the same under their first names, ``vs/<group>/diff`` and so on;
- artifacts under ``sweep/``: the experiment file, ``trials.csv`` (Optuna's trials),
  ``groups.csv`` (the table ``zoo run`` prints), ``pairs.csv`` (the pairs with their
  verdicts, one row per pair and metric), for a random search ``expected_max.png`` (with the metric
  ``expected_best_<objective>`` by number of trials) and, for a search with at least two
  finished trials, Optuna's parameter-importance and parallel-coordinate plots;
- the status: FINISHED when every trial completed or was pruned, FAILED when one failed.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure
from mlflow.entities import Run
from optuna.trial import TrialState

from experiments.analysis.compare import find_runs, group_keys, is_lower_better
from experiments.analysis.grouping import GROUP_METRICS, Comparison, compare_metrics, group_rows, pair_rows
from experiments.analysis.plots import plot_expected_max
from experiments.analysis.stats import expected_max
from experiments.analysis.tables import format_table
from experiments.config import ExperimentFile
from experiments.sweeps import study as studies
from experiments.tracking.errors import TrackingError
from experiments.tracking.names import PARENT_TAG
from experiments.tracking.runs import TrackedRun


def parent_params(experiment: ExperimentFile) -> dict[str, str]:
    """What the parent run records about the sweep when it is created.

    Args:
        experiment: The experiment file.

    Returns:
        Params: the file, seeds, grid, search space, trials, sampler, objective, models.
    """
    search = experiment.search
    metric, direction = objective(experiment)
    params = {
        "sweep.file": Path(experiment.source).name,
        "sweep.trials": str(experiment.trials),
        "sweep.models": json.dumps(sorted({c.model for c in experiment.runs})),
        "sweep.objective": f"{direction} {metric}",
    }
    if experiment.seeds:
        params["sweep.seeds"] = json.dumps(experiment.seeds)
    if experiment.grid:
        params["sweep.grid"] = json.dumps(experiment.grid, sort_keys=True)
    if search is not None:
        params.update({f"search.{k}": d.describe() for k, d in search.space.items()})
        params.update({"sweep.sampler": search.sampler, "sweep.pruner": search.pruner})
    return params


def children(sweep: studies.Sweep, tracking_uri: str) -> list[Run]:
    """The sweep's child runs in MLflow.

    Args:
        sweep: The open sweep (its study and parent run).
        tracking_uri: Its MLflow store.

    Returns:
        The runs whose parent is the sweep's parent run (every child of every process).
    """
    return find_runs(
        sweep.experiment.runs[0].experiment, f"tags.`{PARENT_TAG}` = '{sweep.parent_run_id}'", tracking_uri
    )


def metric_label(values: tuple[str, ...]) -> str:
    """A group's values as the last part of an MLflow metric name (letters, digits, ``_-. /`` only).

    Args:
        values: The group's param values.

    Returns:
        Such as ``resnet_tiny_scratch_lr_0.001``.
    """
    return re.sub(r"[^A-Za-z0-9_.\- ]", "_", "_".join(values))[:200]


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The sweep's best completed trial (its objective at its best epoch).

    Args:
        study: The sweep's Optuna study.

    Returns:
        The trial, or ``None`` before one completed.
    """
    complete = [
        (t, t.value)
        for t in studies.finished_trials(study)
        if t.state == TrialState.COMPLETE and t.value is not None and not math.isnan(t.value)
    ]
    if not complete:
        return None
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    best, _ = max(complete, key=lambda pair: sign * pair[1])
    return best


def finish_sweep(sweep: studies.Sweep, tracking_uri: str | None) -> bool:
    """Summarise the sweep into its parent run, once, if its last trial has ended.

    Args:
        sweep: The open sweep (its study and parent run).
        tracking_uri: Its MLflow store.

    Returns:
        Whether this call summarised it (else it is not done yet, or another process did).
    """
    if not studies.is_done(sweep.study):
        return False
    if sweep.storage_url != "memory" and not studies.exclusive(sweep.storage, f"{sweep.name}/finished"):
        return False
    if tracking_uri is None or sweep.parent_run_id is None:
        return True
    parent = TrackedRun(sweep.parent_run_id, tracking_uri)
    runs = children(sweep, tracking_uri)
    metric, _ = objective(sweep.experiment)
    best = best_trial(sweep.study)
    if best is not None and best.value is not None:  # best_trial returns a trial with a value
        parent.log_params({"best.trial": best.number, **{f"best.{k}": v for k, v in best.params.items()}})
        parent.log_metrics({f"best_{metric}": float(best.value)})
    now = studies.counts(sweep.study)
    parent.log_metrics(
        {"sweep.complete": now["complete"], "sweep.pruned": now["pruned"], "sweep.failed": now["failed"]}
    )
    if runs and not sweep.experiment.samples:  # seeds and grids form groups; every sampled trial is its own
        comparisons = sweep_comparisons(runs)
        rows, columns = group_rows(runs, group_keys(runs), comparison=comparisons[0] if comparisons else None)
        parent.log_metrics(group_metrics(rows, group_keys(runs)))
        parent.log_text(format_table(rows, columns, "csv") + "\n", "sweep/groups.csv")
        if comparisons and comparisons[0].pairs:
            parent.log_metrics(pair_metrics(comparisons))
            pairs, pair_columns = pair_rows(comparisons)
            parent.log_text(format_table(pairs, pair_columns, "csv") + "\n", "sweep/pairs.csv")
    log_study_artifacts(parent, sweep.study, plots=sweep.experiment.samples)
    if sweep.experiment.search is not None and sweep.experiment.search.sampler == "random":
        log_expected_max(parent, sweep.study, *objective(sweep.experiment))
    parent.end("FAILED" if now["failed"] else "FINISHED")
    return True


def objective(experiment: ExperimentFile) -> tuple[str, str]:
    """The sweep's objective metric and direction (listed runs: their monitor).

    Args:
        experiment: The experiment file.

    Returns:
        ``(metric, direction)``.
    """
    if experiment.search is not None:
        return experiment.search.objective, experiment.search.direction
    return experiment.runs[0].monitor, studies.direction_of(experiment)


def group_metrics(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, float]:
    """The group table as parent metrics: mean, std and count of each summary metric per group.

    Args:
        rows: From `experiments.analysis.grouping.group_rows`.
        keys: The params the groups differ by.

    Returns:
        ``{"test_acc_mean/GROUP": ..., "test_acc_std/GROUP": ..., "runs/GROUP": ...}``.
    """
    metrics: dict[str, float] = {}
    for row in rows:
        label = metric_label(tuple(str(row[k]) for k in keys))
        metrics[f"runs/{label}"] = float(row["runs"])
        for name in GROUP_METRICS:
            for stat in ("mean", "std"):
                value = row.get(f"{name} {stat}")
                if value is not None and not math.isnan(value):
                    metrics[f"{name}_{stat}/{label}"] = float(value)
    return metrics


def sweep_comparisons(runs: list[Run], metric: str = "test_acc") -> list[Comparison]:
    """The sweep's groups compared: the best on ``metric`` against each other, on every quality metric.

    Args:
        runs: The sweep's finished children.
        metric: The metric that ranks the groups, compared first.

    Returns:
        One `experiments.analysis.grouping.Comparison` per metric (`compare_metrics`), ``metric``'s
        first; empty when no child has ``metric``.
    """
    try:
        return compare_metrics(runs, group_keys(runs), metric)
    except TrackingError:
        return []


PAIR_FIGURES = ("diff", "ci_low", "ci_high", "p", "p_adjusted", "prob_a_beats_b")
"""A pair's figures logged as parent metrics."""


def pair_metrics(comparisons: list[Comparison]) -> dict[str, float]:
    """The pairwise figures as parent metrics: ``vs/GROUP/METRIC/diff``, ``.../ci_low``, ``.../p`` and so on.

    The first comparison's (``test_acc``'s) are also logged under the names they had before
    every metric was compared, ``vs/GROUP/diff`` and so on, for whatever reads them.

    Args:
        comparisons: From `sweep_comparisons` (the best group against each other, per metric).

    Returns:
        The finite figures of every pair and metric, named by the other group.
    """
    metrics: dict[str, float] = {}
    for i, comparison in enumerate(comparisons):
        for pair in comparison.pairs:
            label = metric_label((pair.b,))
            for name in PAIR_FIGURES:
                value = float(getattr(pair, name))
                if math.isfinite(value):
                    metrics[f"vs/{label}/{comparison.metric}/{name}"] = value
                    if i == 0:
                        metrics[f"vs/{label}/{name}"] = value
    return metrics


def log_expected_max(parent: TrackedRun, study: optuna.Study, metric: str, direction: str) -> list[float]:
    """Log a random search's expected best objective after 1..N trials on its parent run.

    As the metric ``expected_best_<metric>`` (step n: n trials) and the plot
    ``sweep/expected_max.png`` (`experiments.analysis.stats.expected_max`, Dodge et al. 2019;
    valid for random search only, which is why only a ``sampler: random`` search logs it).

    Args:
        parent: The sweep's parent run.
        study: The sweep's Optuna study.
        metric: The objective's metric.
        direction: ``maximize`` or ``minimize``.

    Returns:
        The curve logged (empty without a finished trial).
    """
    values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    curve = expected_max(values, lower_is_better=direction == "minimize")
    for n, value in enumerate(curve, start=1):
        parent.log_metrics({f"expected_best_{metric}": value}, step=n)
    if curve:
        with tempfile.TemporaryDirectory() as folder:
            parent.log_artifact(plot_expected_max(curve, metric, Path(folder) / "expected_max.png"), "sweep")
    return curve


def log_study_artifacts(parent: TrackedRun, study: optuna.Study, plots: bool) -> None:
    """Upload the trials table and, for a search, Optuna's importance and parallel-coordinate plots.

    Args:
        parent: The sweep's parent run.
        study: The sweep's Optuna study.
        plots: Draw the plots (a search samples values; listed runs have none to plot).
    """
    frame = study.trials_dataframe(attrs=("number", "value", "params", "state", "user_attrs", "duration"))
    frame = frame[[c for c in frame.columns if not c.startswith("user_attrs_") or c == "user_attrs_zoo.mlflow_run_id"]]
    parent.log_text(frame.to_csv(index=False), "sweep/trials.csv")
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not plots or len(finished) < 2:
        return  # nothing sampled, or too few trials to compare
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for name, plot in (
            ("param_importances", optuna.visualization.matplotlib.plot_param_importances),
            ("parallel_coordinate", optuna.visualization.matplotlib.plot_parallel_coordinate),
        ):
            with contextlib.suppress(Exception):  # one value only, or no variance: no plot, no failure
                axes = plot(study)
                figure = axes if isinstance(axes, Figure) else axes.figure
                if not isinstance(figure, Figure):  # Optuna draws on a whole figure, never a subfigure
                    continue
                path = Path(folder) / f"{name}.png"
                figure.savefig(path, dpi=100, bbox_inches="tight")
                import matplotlib.pyplot as plt  # deferred: Optuna draws with pyplot; its figure is closed here

                plt.close(figure)
                parent.log_artifact(path, "sweep")


def sweep_rows(sweep: studies.Sweep, tracking_uri: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per trial of the sweep, best first: number, state, value, sampled values, run.

    Args:
        sweep: The open sweep (its study and parent run).
        tracking_uri: Its MLflow store.

    Returns:
        ``(rows, columns)`` for `experiments.analysis.tables.format_table`.
    """
    metric, direction = objective(sweep.experiment)
    trials = studies.finished_trials(sweep.study)
    names = sorted({k for t in trials for k in t.params})
    rows = []
    for t in trials:
        row = {
            "trial": t.number,
            "state": t.state.name,
            metric: t.value,
            **{k: t.params.get(k) for k in names},
            "run_id": t.user_attrs.get(studies.MLFLOW_RUN_ATTR, ""),
        }
        rows.append(row)
    lower = direction == "minimize" or is_lower_better(metric)
    ranked = sorted(
        [r for r in rows if isinstance(r[metric], float) and not math.isnan(r[metric])],
        key=lambda r: r[metric],
        reverse=not lower,
    )
    rows = ranked + [r for r in rows if r not in ranked]
    return rows, ["trial", "state", metric, *names, "run_id"]
