"""Seeds and grids: one experiment file, many runs, one MLflow parent run over them.

An experiment file may add two keys to ``defaults:`` and ``runs:``::

    seeds: [0, 1, 2]            # every run once per seed
    grid:                       # every run once per combination (a Cartesian product)
      lr: [0.001, 0.003]
      batch_size: [32, 64]

Each entry of ``runs:`` (or one empty run, when the file has only a ``grid:``) is
expanded over the grid and then over the seeds. A value given on the command
line wins: ``--seed 5`` replaces the file's seeds, ``--lr 0.01`` drops ``lr``
from the grid. `run_experiment` then creates one parent run (tag
``zoo.role = sweep``) and trains every combination as its child
(``mlflow.parentRunId``), so the MLflow UI nests them and
``zoo compare --group-by model`` averages over the seeds.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Mapping, Sequence

from experiments.config import ConfigError, ExperimentConfig, field_names

ROLE_TAG = "zoo.role"
"""Tag that marks runs which are not training runs: ``sweep`` (a parent) or ``eval``."""

SWEEP_ROLE = "sweep"
PARENT_TAG = "mlflow.parentRunId"


def read_sweep_keys(data: Mapping[str, Any], source: str) -> tuple[list[int] | None, dict[str, list] | None]:
    """Check and return an experiment file's ``seeds:`` and ``grid:``.

    Args:
        data: The parsed file.
        source: The file, for error messages.

    Returns:
        ``(seeds, grid)``, each ``None`` when absent.

    Raises:
        ConfigError: If ``seeds`` is not a list of whole numbers or ``grid`` not a mapping
            of config fields to non-empty lists.
    """
    seeds, grid = data.get("seeds"), data.get("grid")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ConfigError(f"experiment file '{source}': 'seeds:' must be a non-empty list of whole numbers, such as [0, 1, 2]")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"experiment file '{source}': 'seeds:' repeats a seed ({seeds}); list each seed once")
    if grid is not None:
        if not isinstance(grid, Mapping) or not grid:
            raise ConfigError(f"experiment file '{source}': 'grid:' must map config fields to lists of values")
        known = set(field_names())
        for key, values in grid.items():
            if key not in known or key == "seed":
                hint = "use 'seeds:' for seeds" if key == "seed" else "see docs/training.md for the fields"
                raise ConfigError(f"experiment file '{source}': grid key '{key}' is not a config field; {hint}")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"experiment file '{source}': grid '{key}' must be a non-empty list of values")
        grid = {str(k): list(v) for k, v in grid.items()}
    return seeds, grid


def expand_runs(runs: Sequence[Any], defaults: Mapping[str, Any], overrides: Mapping[str, Any],
                seeds: list[int] | None, grid: dict[str, list] | None, source: str) -> list[dict[str, Any]]:
    """Every run of an experiment file, expanded over its grid and seeds.

    Args:
        runs: The file's ``runs:`` entries.
        defaults: Its ``defaults:`` (with the experiment name).
        overrides: Field values from the command line; they win over everything.
        seeds: The ``seeds:`` list or ``None``.
        grid: The ``grid:`` mapping or ``None``.
        source: The file, for error messages.

    Returns:
        One mapping of config fields per run, in order: run, then grid combination, then seed.

    Raises:
        ConfigError: If a run is not a mapping, or sets a field that the grid also varies.
    """
    grid = {k: v for k, v in (grid or {}).items() if k not in overrides}
    seeds = None if "seed" in overrides else seeds
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] if grid else [{}]
    expanded = []
    for i, run in enumerate(runs):
        if not isinstance(run, Mapping):
            raise ConfigError(f"experiment file '{source}': run {i + 1} must be a mapping of config fields")
        clash = [k for k in grid if k in run]
        if clash:
            raise ConfigError(f"experiment file '{source}': run {i + 1} sets '{clash[0]}', which the grid varies; "
                              f"set it in one place")
        for combo in combos:
            for seed in seeds or [None]:
                values = {**defaults, **run, **combo, **({"seed": seed} if seed is not None else {}), **overrides}
                if (combo or seeds) and "run_name" not in run and "run_name" not in overrides:
                    values["run_name"] = child_run_name(values, combo)
                expanded.append(values)
    return expanded


def child_run_name(values: Mapping[str, Any], combo: Mapping[str, Any]) -> str:
    """The name of one combination's run: ``MODEL[-KEY=VALUE...]-sSEED``.

    Args:
        values: The run's config fields.
        combo: The grid values of this combination.

    Returns:
        The name.
    """
    parts = [str(values.get("model", "run"))]
    parts += [f"{k}={v}" for k, v in combo.items() if k != "model"]
    return "-".join(parts) + f"-s{values.get('seed', 0)}"


def parent_params(experiment: Any) -> dict[str, str]:
    """What the parent run records about the sweep.

    Args:
        experiment: The `ExperimentFile`.

    Returns:
        Params: the file, its seeds and grid, and the number of child runs.
    """
    return {"sweep.file": experiment.source, "sweep.seeds": json.dumps(experiment.seeds),
            "sweep.grid": json.dumps(experiment.grid, sort_keys=True), "sweep.num_runs": str(len(experiment.runs)),
            "sweep.models": json.dumps(sorted({c.model for c in experiment.runs}))}


def run_experiment(experiment: Any, train_fn: Any = None) -> tuple[str | None, list[str | None]]:
    """Train every run of an experiment file; a sweep's runs go under one parent run.

    The parent is FINISHED when every child finished, FAILED (or KILLED) when one
    did not; the runs after a failed one are not started.

    Args:
        experiment: The `ExperimentFile`.
        train_fn: ``train(config) -> TrainResult`` (default `experiments.runner.train`).

    Returns:
        ``(parent run id or None, child run ids)``.
    """
    from experiments import runner, tracking

    train_fn = train_fn or runner.train
    configs: list[ExperimentConfig] = experiment.runs
    first = configs[0]
    if not experiment.is_sweep or not first.tracking:
        return None, [_train_one(train_fn, c, i, len(configs)) for i, c in enumerate(configs, 1)]
    places = {(c.experiment, c.tracking_uri) for c in configs}
    if len(places) > 1:
        raise ConfigError(f"experiment file '{experiment.source}': a sweep's runs must share one MLflow experiment "
                          f"and store; they name {len(places)}")
    parent = tracking.TrackedRun.create(first.experiment, experiment.name, {ROLE_TAG: SWEEP_ROLE},
                                        first.tracking_uri)
    children: list[str | None] = []
    with parent.lifecycle():
        parent.log_params(parent_params(experiment))
        parent.set_tags(tracking.source_facts())
        for i, config in enumerate(configs, 1):
            children.append(_train_one(train_fn, config.replace(parent_run=parent.run_id), i, len(configs)))
        parent.log_metrics({"sweep.finished_runs": len(children)})
    return parent.run_id, children


def _train_one(train_fn: Any, config: ExperimentConfig, i: int, total: int) -> str | None:
    print(f"== run {i}/{total}: {config.default_run_name()} ({config.model})", flush=True)
    return train_fn(config).run_id


def is_training_run(run: Any) -> bool:
    """Whether a run trained a model (not a sweep's parent nor a ``zoo eval`` run).

    Args:
        run: An `mlflow.entities.Run`.

    Returns:
        True for training runs.
    """
    return run.data.tags.get(ROLE_TAG) is None
