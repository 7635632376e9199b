"""A sweep's results: what its parent run holds once its last run ended, and what ``zoo run`` prints.

The summary is written once, by whichever process sees the last run end first (a lock in
the study storage decides between processes), so that N machines summarise one sweep once:

- params ``best.trial`` and ``best.<field>`` (the best trial's sampled values), and
  the metric ``best_<objective>``;
- per group of children (the params that differ, seeds aside): ``<metric>_mean/<group>``,
  ``<metric>_std/<group>`` and ``runs/<group>`` for the summary metrics, and the best
  group on ``test_acc`` against each other on every quality metric the children have
  (``test_acc``, ``best_val_acc``, ``test_loss``): ``vs/<group>/<metric>/diff``, ``ci_low``,
  ``ci_high``, ``p``, ``p_adjusted``, ``prob_a_beats_b`` (`experiments.analysis.stats`), and
  for ``test_acc`` the same under their first names, ``vs/<group>/diff`` and so on;
- artifacts under ``sweep/``: the experiment file, ``trials.csv`` (every run or trial, best first),
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

from experiments.analysis.compare import compare_rows, find_runs, group_keys, is_lower_better, repeated_configs
from experiments.analysis.grouping import (
    GROUP_METRICS,
    QUALITY_METRICS,
    Comparison,
    compare_metrics,
    group_rows,
    pair_rows,
    verdict_report,
)
from experiments.analysis.plots import plot_expected_max
from experiments.analysis.stats import expected_max
from experiments.analysis.tables import format_table
from experiments.config.experiment import ExperimentFile
from experiments.sweeps.trials import Outcome, Sweep, objective
from experiments.tracking.errors import TrackingError
from experiments.tracking.names import (
    SEARCH_PARAM_PREFIX,
    SWEEP_DONE_METRIC,
    SWEEP_FILE_ARTIFACT,
    SWEEP_OBJECTIVE_PARAM,
    SWEEP_SAMPLER_PARAM,
    VERSUS_METRIC_PREFIX,
    children_filter,
    sweep_param,
)
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
        sweep_param("file"): Path(experiment.source).name,
        sweep_param("trials"): str(experiment.trials),
        sweep_param("models"): json.dumps(sorted({c.model for c in experiment.runs})),
        SWEEP_OBJECTIVE_PARAM: f"{direction} {metric}",
    }
    if experiment.seeds:
        params[sweep_param("seeds")] = json.dumps(experiment.seeds)
    if experiment.grid:
        params[sweep_param("grid")] = json.dumps(experiment.grid, sort_keys=True)
    if search is not None:
        params.update({f"{SEARCH_PARAM_PREFIX}{k}": d.describe() for k, d in search.space.items()})
        params.update({SWEEP_SAMPLER_PARAM: search.sampler, sweep_param("pruner"): search.pruner})
    return params


def metric_label(values: tuple[str, ...]) -> str:
    """A group's values as the last part of an MLflow metric name (letters, digits, ``_-. /`` only).

    Args:
        values: The group's param values.

    Returns:
        Such as ``resnet_tiny_scratch_lr_0.001``.
    """
    return re.sub(r"[^A-Za-z0-9_.\- ]", "_", "_".join(values))[:200]


def best_trial(sweep: Sweep) -> Outcome | None:
    """The sweep's best completed run or trial (its objective at its best epoch).

    Args:
        sweep: The sweep, its outcomes as this process saw them last.

    Returns:
        The outcome, or ``None`` before one completed.
    """
    complete = [o for o in sweep.outcomes if o.state == "COMPLETE" and o.value is not None and not math.isnan(o.value)]
    sign = -1.0 if objective(sweep.experiment)[1] == "minimize" else 1.0
    return max(complete, key=lambda o: sign * (o.value or 0.0), default=None)


def finish_sweep(sweep: Sweep) -> None:
    """Summarise the sweep into its parent run (its last run has ended; this process was chosen to).

    Args:
        sweep: The sweep, every run ended.
    """
    if sweep.tracking_uri is None or sweep.parent_run_id is None:
        return
    experiment, parent = sweep.experiment, TrackedRun(sweep.parent_run_id, sweep.tracking_uri)
    runs = find_runs(experiment.runs[0].experiment, children_filter(sweep.parent_run_id), sweep.tracking_uri)
    metric, direction = objective(experiment)
    best = best_trial(sweep)
    if best is not None and best.value is not None:
        parent.log_params({"best.trial": best.number, **{f"best.{k}": v for k, v in best.params.items()}})
        parent.log_metrics({f"best_{metric}": float(best.value)})
    if runs and not experiment.samples:  # seeds and grids form groups; every sampled trial is its own
        comparisons = sweep_comparisons(runs)
        rows, columns = group_rows(runs, group_keys(runs), comparison=comparisons[0] if comparisons else None)
        parent.log_metrics(group_metrics(rows, group_keys(runs)))
        parent.log_text(format_table(rows, columns, "csv") + "\n", f"{SWEEP_FILE_ARTIFACT}/groups.csv")
        if comparisons and comparisons[0].pairs:
            parent.log_metrics(pair_metrics(comparisons))
            pairs, pair_columns = pair_rows(comparisons)
            parent.log_text(format_table(pairs, pair_columns, "csv") + "\n", f"{SWEEP_FILE_ARTIFACT}/pairs.csv")
    parent.log_text(format_table(*sweep_rows(sweep), "csv") + "\n", f"{SWEEP_FILE_ARTIFACT}/trials.csv")
    if sweep.study is not None and experiment.samples:
        log_study_plots(parent, sweep.study)
    if sweep.study is not None and experiment.search is not None and experiment.search.sampler == "random":
        log_expected_max(parent, sweep.study, metric, direction)
    counts = {sweep_param("pruned"): sweep.count("PRUNED"), sweep_param("failed"): sweep.count("FAIL")}
    parent.log_metrics({**counts, SWEEP_DONE_METRIC: sweep.count("COMPLETE")})  # last: the sweep is finished
    parent.end("FAILED" if sweep.count("FAIL") else "FINISHED")


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
                    metrics[f"{VERSUS_METRIC_PREFIX}{label}/{comparison.metric}/{name}"] = value
                    if i == 0:
                        metrics[f"{VERSUS_METRIC_PREFIX}{label}/{name}"] = value
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
            parent.log_artifact(
                plot_expected_max(curve, metric, Path(folder) / "expected_max.png"), SWEEP_FILE_ARTIFACT
            )
    return curve


def log_study_plots(parent: TrackedRun, study: optuna.Study) -> None:
    """Upload Optuna's parameter-importance and parallel-coordinate plots of a search (two trials at least).

    Args:
        parent: The sweep's parent run.
        study: The search's Optuna study.
    """
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return  # too few trials to compare
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
                parent.log_artifact(path, SWEEP_FILE_ARTIFACT)


def sweep_rows(sweep: Sweep) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per ended run or trial of the sweep, best first: number, state, value, sampled values, run.

    Args:
        sweep: The sweep, its outcomes as this process saw them last.

    Returns:
        ``(rows, columns)`` for `experiments.analysis.tables.format_table`.
    """
    metric, direction = objective(sweep.experiment)
    valued = [o for o in sweep.outcomes if o.value is not None and not math.isnan(o.value)]
    lower = direction == "minimize" or is_lower_better(metric)
    ordered = sorted(valued, key=lambda o: o.value or 0.0, reverse=not lower)
    ordered += [o for o in sweep.outcomes if o not in valued]
    names = sorted({k for o in ordered for k in o.params})
    rows = [
        {
            "trial": o.number,
            "state": o.state,
            metric: o.value,
            **{k: o.params.get(k) for k in names},
            "run_id": o.run_id,
        }
        for o in ordered
    ]
    return rows, ["trial", "state", metric, *names, "run_id"]


def print_plan(experiment: ExperimentFile) -> None:
    """Print what a run of the file would do (``zoo run --dry-run``): its runs, or its search.

    Args:
        experiment: The experiment file.
    """
    search = experiment.search
    if search is not None and experiment.samples:
        base = experiment.runs[0]
        print(
            f"search of {base.model} on {base.data}: {search.trials} trials, sampler {search.sampler}, "
            f"pruner {search.pruner}, objective {search.direction} {search.objective}"
        )
        rows = [
            {"field": k, "distribution": d.describe(), "base value": getattr(base, k)} for k, d in search.space.items()
        ]
        print(format_table(rows, ["field", "distribution", "base value"]))
        return
    columns = ["run_name", "model", "data", "epochs", "batch_size", "lr", "seed", "experiment"]
    print(format_table([{**c.to_dict(), "run_name": c.default_run_name()} for c in experiment.runs], columns))


def print_results(sweep: Sweep) -> None:
    """Print what ``zoo run`` shows at the end: the runs side by side, the groups and their verdicts, the best trial.

    Args:
        sweep: The sweep as `experiments.sweeps.engine.run_experiment` returned it.
    """
    experiment, uri = sweep.experiment, sweep.tracking_uri
    if uri is not None:
        ids = {o.run_id for o in sweep.outcomes}
        runs = [r for r in find_runs(experiment.runs[0].experiment, uri=uri) if r.info.run_id in ids]
        grouped = bool(sweep.parent_run_id) and not experiment.samples
        if runs:
            # Where runs repeat a configuration (seeds), the groups' verdicts judge, not the luckiest run.
            print(format_table(*compare_rows(runs, mark_best=not (grouped and repeated_configs(runs)))))
        if runs and grouped:
            keys = group_keys(runs)
            print(f"\nparent run {sweep.parent_run_id}; mean and 95% CI over seeds:")
            comparisons = sweep_comparisons(runs)
            first = comparisons[0] if comparisons else None
            quality = [c.metric for c in comparisons] or list(QUALITY_METRICS)
            print(format_table(*group_rows(runs, keys, quality, ci_as_text=True, comparison=first, compact=True)))
            wide = f"zoo compare --experiment {experiment.runs[0].experiment} --group-by {' --group-by '.join(keys)}"
            print(f"std, epochs and times too: {wide} --wide")
            if first is not None and first.pairs:
                print(verdict_report(comparisons))
    if experiment.samples or uri is None:
        print(f"\nsweep '{sweep.name}': trials, best first:")
        print(format_table(*sweep_rows(sweep)))
    best = best_trial(sweep)
    if best is not None and experiment.is_sweep and not (experiment.seeds and not experiment.samples):
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        print(
            f"\nbest trial {best.number}: {objective(experiment)[0]} {best.value:.4g}"
            + (f" ({shown})" if shown else "")
            + (f"; parent run {sweep.parent_run_id}" if sweep.parent_run_id else "")
        )
    if sweep.pending:
        print(
            f"\n{len(sweep.outcomes)} of {experiment.trials} trials done; the sweep '{sweep.name}' goes on in "
            f"other processes (run this command again to join it)"
        )
