"""A sweep and its trials: what each ended with, a trial's config and name, and the callback that reports epochs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback

from experiments.config.experiment import ExperimentFile
from experiments.config.schema import ExperimentConfig
from experiments.tracking.errors import TrackingError
from experiments.tracking.names import TRIAL_RUN_ATTR
from experiments.tracking.runs import EndedEarly


@dataclass
class Outcome:
    """How one listed run or trial ended.

    Attributes:
        number: The trial's number (a listed run's place in the list, in a plain loop).
        state: ``COMPLETE``, ``PRUNED`` or ``FAIL``.
        value: Its objective at its best epoch (``None`` unless complete).
        params: Its sampled values (none for a listed run).
        run_id: Its MLflow run ("" untracked).
    """

    number: int
    state: str
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""


@dataclass
class Sweep:
    """A sweep as this process saw it: its name, its parent run, and how its runs ended.

    Attributes:
        name: Its name (``--sweep``; the parent run's name).
        experiment: The experiment file it runs.
        tracking_uri: Its MLflow store (``None`` untracked).
        parent_run_id: Its MLflow parent run (``None`` untracked).
        outcomes: Every run or trial that ended, of every process.
        pending: Trials still waiting or running (in other processes).
        study: The Optuna study of a search or a shared list; ``None`` for a plain loop.
    """

    name: str
    experiment: ExperimentFile
    tracking_uri: str | None
    parent_run_id: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    pending: int = 0
    study: optuna.Study | None = None

    def count(self, state: str) -> int:
        """How many runs ended in a state.

        Args:
            state: ``COMPLETE``, ``PRUNED`` or ``FAIL``.

        Returns:
            The count, over every process's runs.
        """
        return sum(o.state == state for o in self.outcomes)


class Pruned(EndedEarly, optuna.TrialPruned):
    """The pruner stopped the trial: Optuna records it PRUNED, MLflow KILLED with the reason (not FAILED)."""


def objective(experiment: ExperimentFile) -> tuple[str, Literal["maximize", "minimize"]]:
    """The sweep's objective metric and direction (a list of runs: their monitor).

    Args:
        experiment: The experiment file.

    Returns:
        ``(metric, "maximize" or "minimize")``.
    """
    search, first = experiment.search, experiment.runs[0]
    if search is not None:
        return search.objective, "minimize" if search.direction == "minimize" else "maximize"
    return first.monitor, "maximize" if first.monitor_mode == "max" else "minimize"


def fingerprint(experiment: ExperimentFile) -> str:
    """A digest of what a sweep runs (its runs and search, not where it logs), so that only that plan joins it.

    Args:
        experiment: The experiment file, expanded and validated.

    Returns:
        16 hex digits.
    """
    search = experiment.search
    described = {
        "runs": [
            {k: v for k, v in c.to_dict().items() if k not in ("tracking_uri", "parent_run")} for c in experiment.runs
        ],
        "search": None
        if search is None
        else {
            "space": {k: d.describe() for k, d in search.space.items()},
            **{k: getattr(search, k) for k in ("trials", "sampler", "objective", "direction", "pruner")},
        },
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sampled_config(trial: optuna.Trial, experiment: ExperimentFile) -> ExperimentConfig:
    """A search trial's config: the base config with the sampler's values.

    Args:
        trial: The trial Optuna handed out (a slot, or a dead worker's trial again, with its values).
        experiment: The experiment file (with ``search:``).

    Returns:
        The config, named after the trial and its values (``t3 lr=0.00316 weight_decay=0.000211``).
    """
    assert experiment.search is not None  # only a search samples
    values: dict[str, Any] = {}
    for key, dimension in experiment.search.space.items():
        if dimension.kind in ("loguniform", "uniform"):
            values[key] = trial.suggest_float(key, *dimension.bounds(), log=dimension.kind == "loguniform")
        elif dimension.kind == "int":
            low, high = dimension.bounds()
            values[key] = trial.suggest_int(key, int(low), int(high))
        else:
            values[key] = trial.suggest_categorical(key, list(dimension.choices))
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    # The part that differs first: the UI's name column cuts the end.
    return experiment.runs[0].replace(**values, run_name=f"t{trial.number} {shown}")


class TrialReporter(Callback):
    """Remember each epoch's objective and the run's id; with a trial, report to it and prune when told.

    Runs after the runner's callbacks, so an epoch's figures are logged before a pruned trial stops.

    Args:
        metric: The objective, an epoch metric.
        direction: ``maximize`` or ``minimize``.
        pruner: The pruner's name, for the reason a pruned run records.
        trial: The Optuna trial; ``None`` in a plain loop.
    """

    def __init__(self, metric: str, direction: str, pruner: str = "none", trial: optuna.Trial | None = None) -> None:
        super().__init__()
        self.metric, self.direction, self.pruner, self.trial = metric, direction, pruner, trial
        self.values: list[float] = []
        self.run_id: str | None = None

    @property
    def best(self) -> float | None:
        """The best value an epoch reported (``None`` before the first)."""
        if not self.values:
            return None
        return max(self.values) if self.direction == "maximize" else min(self.values)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Keep the run's MLflow id, in the trial too (a dead worker's run is marked KILLED by it)."""
        self.run_id = getattr(trainer.logger, "run_id", None)
        if stage == "fit" and self.run_id and self.trial is not None:
            self.trial.set_user_attr(TRIAL_RUN_ATTR, self.run_id)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Keep (and report) the epoch's value; stop the trial if the pruner says so."""
        value = trainer.callback_metrics.get(self.metric)
        if trainer.sanity_checking or value is None:
            return
        self.values.append(float(value))
        if self.trial is None:
            return
        self.trial.report(float(value), trainer.current_epoch)
        if self.trial.should_prune():
            raise Pruned(
                f"pruned by the {self.pruner} pruner after epoch {trainer.current_epoch + 1} "
                f"({self.metric} {float(value):.4g})"
            )


def choose_name(base: str, plan: str, lookup: Callable[[str], tuple[str | None, bool] | None]) -> str:
    """The sweep a plain ``zoo run FILE`` continues, or the new one it starts.

    The file's own name while that sweep runs this plan and is not finished; else ``NAME-2``,
    ``NAME-3``, ...: running a finished sweep's command again starts a new sweep, running a
    stopped one's continues it.

    Args:
        base: The file's name.
        plan: `fingerprint` of the experiment.
        lookup: ``lookup(name)``: ``None`` for a free name, else ``(its plan, whether it finished)``.

    Returns:
        The sweep's name.

    Raises:
        TrackingError: If no name up to ``NAME-9999`` is free.
    """
    for number in range(1, 10_000):
        name = base if number == 1 else f"{base}-{number}"
        found = lookup(name)
        if found is None or found == (plan, False):
            return name
    raise TrackingError(f"no free sweep name for '{base}'; pass --sweep NAME")
