"""Experiments: data, Lightning training, MLflow tracking, comparison and the `zoo` CLI.

Example:
    >>> from experiments import ExperimentConfig, compare_groups, train
    >>> result = train(ExperimentConfig(model="resnet_tiny_scratch", data="digits", epochs=2))
    >>> result.run_id, result.metrics["test_acc"]
    >>> groups, pairs = compare_groups("digits", ["model"])  # after `zoo run digits`: the verdicts

The sub-packages, from the bottom layer up (each imports only those below it):
`config` (the schema, flags, experiment files), `data` and `tracking`, then
`training`, `analysis` and `serving`, then `sweeps` (a trial calls training),
and on top the ``zoo`` command (`cli`, `commands`). See ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExperimentConfig": "experiments.config.schema",
    "load_config": "experiments.config.schema",
    "load_experiment": "experiments.config.experiment",
    "TrainResult": "experiments.training.runner",
    "train": "experiments.training.runner",
    "resume": "experiments.training.runner",
    "run_experiment": "experiments.sweeps.engine",
    "compare_groups": "experiments.analysis.grouping",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # The one lazy package (PEP 562): these names are the library's Python API (`from experiments import
    # train`), and the `zoo` command, which lives in this package, must start without torch and pydantic.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
