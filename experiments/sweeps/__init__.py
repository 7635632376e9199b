"""Sweeps: every run of an experiment file as the trials of one Optuna study, on any number of workers.

A trial calls training (`experiments.training.runner.train`); this layer sits above it.

- `engine`: `run_experiment` and `SweepOptions`; the MLflow parent run, one worker's loop, a trial.
- `study`: the Optuna storage, study, sampler and pruner; dead workers' trials retried.
- `trials`: a trial's config and run name, and the callback that reports its epochs to the pruner.
- `workers`: ``--workers N`` processes on this machine, each with its GPU or share of the cores.
- `report`: what the parent run records when the last trial ends (params, grouped means, best trial).

Loaded on first use: every module here but `workers` imports Optuna, torch and MLflow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SweepOptions": "engine",
    "run_experiment": "engine",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: `from experiments.sweeps import workers` (the CLI's start) must not load Optuna and torch.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"experiments.sweeps.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
