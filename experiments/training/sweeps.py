"""`run_experiment`: every run of an experiment file; a sweep's runs go under one MLflow parent run.

The runs themselves come expanded and validated from `experiments.config.experiment`
(``seeds:`` and ``grid:``). A sweep gets one parent run (tag ``zoo.role = sweep``)
and trains every combination as its child (``mlflow.parentRunId``), so the MLflow
UI nests them and ``zoo compare --group-by model`` averages over the seeds.
"""

from __future__ import annotations

import json
from typing import Callable

from experiments.config import ConfigError, ExperimentConfig, ExperimentFile
from experiments.tracking.names import ROLE_TAG, SWEEP_ROLE
from experiments.tracking.runs import TrackedRun
from experiments.tracking.source import source_facts
from experiments.training.runner import TrainResult, train

TrainFn = Callable[[ExperimentConfig], TrainResult]
"""What trains one run: `experiments.training.runner.train` or a stand-in."""


def parent_params(experiment: ExperimentFile) -> dict[str, str]:
    """What the parent run records about the sweep.

    Args:
        experiment: The experiment file.

    Returns:
        Params: the file, its seeds and grid, the models and the number of child runs.
    """
    return {"sweep.file": experiment.source, "sweep.seeds": json.dumps(experiment.seeds),
            "sweep.grid": json.dumps(experiment.grid, sort_keys=True), "sweep.num_runs": str(len(experiment.runs)),
            "sweep.models": json.dumps(sorted({c.model for c in experiment.runs}))}


def run_experiment(experiment: ExperimentFile, train_fn: TrainFn = train) -> tuple[str | None, list[str | None]]:
    """Train every run of an experiment file; a sweep's runs go under one parent run.

    The parent is FINISHED when every child finished, FAILED (or KILLED) when one
    did not; the runs after a failed one are not started.

    Args:
        experiment: The experiment file.
        train_fn: Trains one run.

    Returns:
        ``(parent run id or None, child run ids)``.
    """
    configs = experiment.runs
    first = configs[0]
    if not experiment.is_sweep or not first.tracking:
        return None, [_train_one(train_fn, c, i, len(configs)) for i, c in enumerate(configs, 1)]
    places = {(c.experiment, c.tracking_uri) for c in configs}
    if len(places) > 1:
        raise ConfigError(f"experiment file '{experiment.source}': a sweep's runs must share one MLflow experiment "
                          f"and store; they name {len(places)}")
    parent = TrackedRun.create(first.experiment, experiment.name, {ROLE_TAG: SWEEP_ROLE}, first.tracking_uri)
    children: list[str | None] = []
    with parent.lifecycle():
        parent.log_params(parent_params(experiment))
        parent.set_tags(source_facts())
        for i, config in enumerate(configs, 1):
            children.append(_train_one(train_fn, config.replace(parent_run=parent.run_id), i, len(configs)))
        parent.log_metrics({"sweep.finished_runs": len(children)})
    return parent.run_id, children


def _train_one(train_fn: TrainFn, config: ExperimentConfig, i: int, total: int) -> str | None:
    print(f"== run {i}/{total}: {config.default_run_name()} ({config.model})", flush=True)
    return train_fn(config).run_id
