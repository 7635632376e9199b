"""One trial of a sweep: its config, its run's name, and the callback that reports epochs to Optuna and prunes."""

from __future__ import annotations

from typing import Any

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback

from experiments.config import ExperimentConfig, ExperimentFile
from experiments.sweeps.study import MLFLOW_RUN_ATTR, RUN_INDEX_ATTR
from experiments.tracking.runs import EndedEarly
from experiments.training.logger import RunLogger


class Pruned(EndedEarly, optuna.TrialPruned):
    """The pruner stopped the trial: Optuna records it PRUNED, MLflow KILLED with the reason (not FAILED)."""


def config_for(trial: optuna.Trial, experiment: ExperimentFile) -> tuple[ExperimentConfig, dict[str, Any]]:
    """The config a trial trains: a listed run, or the base config with the sampler's values.

    Args:
        trial: The trial (a slot popped from the queue, or its retry).
        experiment: The experiment file.

    Returns:
        ``(config, the values that vary in this sweep)``.
    """
    search = experiment.search
    if search is None or not experiment.samples:
        config = experiment.runs[int(trial.user_attrs[RUN_INDEX_ATTR])]
        return config, {}
    values: dict[str, Any] = {}
    for key, dimension in search.space.items():
        if dimension.kind == "loguniform":
            values[key] = trial.suggest_float(key, *dimension.bounds(), log=True)
        elif dimension.kind == "uniform":
            values[key] = trial.suggest_float(key, *dimension.bounds())
        elif dimension.kind == "int":
            low, high = dimension.bounds()
            values[key] = trial.suggest_int(key, int(low), int(high))
        else:
            values[key] = trial.suggest_categorical(key, list(dimension.choices))
    return experiment.runs[0].replace(**values), values


def trial_run_name(number: int, values: dict[str, Any], config: ExperimentConfig) -> str:
    """A trial's MLflow run name, the part that differs first (the UI's name column cuts the end).

    Args:
        number: The trial's number.
        values: Its sampled values (empty for a listed run).
        config: Its config (a listed run's own name).

    Returns:
        Such as ``t3 lr=0.00316 weight_decay=0.000211``, or the listed run's own name.
    """
    if not values:
        return config.default_run_name()
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    return f"t{number} {shown}"


class TrialReporter(Callback):
    """Report each epoch's objective to the trial, prune when the pruner says so, remember the best.

    Runs after the runner's callbacks, so an epoch's figures are logged before a
    pruned trial stops.

    Args:
        trial: The Optuna trial.
        metric: The objective, an epoch metric.
        direction: ``maximize`` or ``minimize``.
        pruner: The pruner's name, for the reason a pruned run records.
    """

    def __init__(self, trial: optuna.Trial, metric: str, direction: str, pruner: str) -> None:
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.direction = direction
        self.pruner = pruner
        self.values: dict[int, float] = {}

    @property
    def best(self) -> float | None:
        """The best value an epoch reported (``None`` before the first)."""
        if not self.values:
            return None
        return max(self.values.values()) if self.direction == "maximize" else min(self.values.values())

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Write the trial's MLflow run id into the trial (a dead worker's run is marked KILLED by it)."""
        if stage == "fit" and isinstance(trainer.logger, RunLogger):
            self.trial.set_user_attr(MLFLOW_RUN_ATTR, trainer.logger.run_id)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Report the epoch's value; stop the trial if the pruner says so."""
        value = trainer.callback_metrics.get(self.metric)
        if trainer.sanity_checking or value is None:
            return
        epoch = trainer.current_epoch
        self.values[epoch] = float(value)
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            raise Pruned(
                f"pruned by the {self.pruner} pruner after epoch {epoch + 1} ({self.metric} {float(value):.4g})"
            )
