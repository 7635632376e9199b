"""`run_experiment`: every run of an experiment file under one MLflow parent run, in a loop or as Optuna trials.

- A list of runs (seeds, a grid, ``runs:``) on one worker is a plain loop over its configs.
  Running a stopped sweep's command again trains only the runs it has not ended (its parent's
  children say which); a finished sweep's command starts a new sweep (``NAME-2``).
- A search, or a list shared by ``--workers N``, ``--storage`` or ``--sweep``, is the trials of
  an Optuna study (`experiments.sweeps.study`): N workers on this machine
  (`experiments.sweeps.workers`), the same command on more machines joining the same study.

A failed run is recorded FAILED and the others go on (``--fail-fast`` stops the sweep); a
pruned one ends KILLED with the pruner's reason. Whichever process sees the last run end
summarises the sweep into the parent run (`experiments.sweeps.report`).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

from experiments.config.errors import ConfigError
from experiments.config.experiment import ExperimentFile
from experiments.config.schema import ExperimentConfig
from experiments.signals import handle_unless_ignored, restore
from experiments.sweeps import study as studies
from experiments.sweeps.report import finish_sweep, parent_params
from experiments.sweeps.trials import (
    Outcome,
    Pruned,
    Sweep,
    TrialReporter,
    choose_name,
    fingerprint,
    objective,
    sampled_config,
)
from experiments.sweeps.workers import THREADS_ENV, stop_workers, wait_for_workers
from experiments.tracking import sweep_records as records
from experiments.tracking.errors import TrackingError
from experiments.tracking.heartbeat import Owner
from experiments.tracking.names import (
    STUDY_STOP_ATTR,
    SWEEP_DONE_METRIC,
    SWEEP_PLAN_TAG,
    SWEEP_TAG,
    THREADS_TAG,
    TRIAL_SLOT_ATTR,
    TRIAL_TAG,
    WORKER_TAG,
    read_tag,
)
from experiments.tracking.store import resolve_tracking_uri
from experiments.training.runner import RunExtras, TrainResult, train

TrainFn = Callable[..., TrainResult]
"""What trains one run: `experiments.training.runner.train` or a stand-in (``fn(config, extras=...)``)."""


@dataclass
class SweepOptions:
    """How a sweep runs (the flags of ``zoo run``).

    Attributes:
        workers: Worker processes on this machine.
        storage: The study storage URL; ``None`` for the default beside the MLflow store.
        name: The sweep's name; ``None`` for the file's name (a finished sweep of it starts a new one).
        fail_fast: Stop the sweep at the first failed run.
        worker_index: Set in a worker process that another ``zoo run`` started.
    """

    workers: int = 1
    storage: str | None = None
    name: str | None = None
    fail_fast: bool = False
    worker_index: int | None = None


def tracking_uri_of(experiment: ExperimentFile) -> str | None:
    """The MLflow store of an experiment's runs, or ``None`` when they are not tracked.

    Args:
        experiment: The experiment file.

    Returns:
        The store's URI, resolved (the default store when the config names none).

    Raises:
        ConfigError: If its runs name different stores or experiments.
    """
    places = {(c.experiment, c.tracking_uri, c.tracking) for c in experiment.runs}
    if len(places) > 1:
        raise ConfigError(
            f"experiment file '{experiment.source}': a sweep's runs must share one MLflow experiment "
            f"and store; they name {len(places)}"
        )
    first = experiment.runs[0]
    return resolve_tracking_uri(first.tracking_uri) if first.tracking else None


def create_parent(experiment: ExperimentFile, name: str, plan: str | None, uri: str | None) -> str | None:
    """The sweep's MLflow parent run, created once, by the process that starts the sweep.

    Args:
        experiment: The experiment file.
        name: The sweep's name.
        plan: Its `experiments.sweeps.trials.fingerprint`, tagged on a plain loop's parent (a study keeps its own).
        uri: The MLflow store; ``None`` without tracking.

    Returns:
        Its run id, or ``None`` (no tracking, or runs listed without seeds, grid or search).
    """
    if uri is None or not experiment.is_sweep:
        return None
    source = Path(experiment.source)
    return records.create_parent(
        experiment.runs[0].experiment,
        name,
        uri,
        plan=plan,
        params=parent_params(experiment),
        file=(source.name, source.read_text(encoding="utf-8")),
        description=experiment.description,
    )


def parent_state(experiment: ExperimentFile, name: str, uri: str | None) -> tuple[str | None, bool] | None:
    """What the MLflow parent of the sweep called ``name`` runs, if there is one (`choose_name`'s lookup).

    Args:
        experiment: The experiment file.
        name: A sweep's name.
        uri: The MLflow store; ``None`` without tracking.

    Returns:
        ``None`` for no such parent, else ``(its plan, whether it is finished)``; a study's parent has
        no plan (its study holds it), so that a plain loop never continues it.
    """
    parent = records.find_parent(experiment.runs[0].experiment, name, uri) if uri is not None else None
    if parent is None:
        return None
    return read_tag(parent.data.tags, SWEEP_PLAN_TAG), SWEEP_DONE_METRIC in parent.data.metrics


def open_list(experiment: ExperimentFile, uri: str | None) -> Sweep:
    """Start a plain loop's sweep, or continue the stopped one of the same plan: its parent and what ended.

    Args:
        experiment: The experiment file (a list of runs).
        uri: Its MLflow store.

    Returns:
        The sweep, with the outcomes of the runs its parent's children already ended.
    """
    sweep = Sweep(experiment.name, experiment, uri)
    if uri is None or not experiment.is_sweep:
        return sweep
    plan = fingerprint(experiment)
    sweep.name = choose_name(experiment.name, plan, lambda name: parent_state(experiment, name, uri))
    if (found := records.find_parent(experiment.runs[0].experiment, sweep.name, uri)) is None:
        sweep.parent_run_id = create_parent(experiment, sweep.name, plan, uri)
        return sweep
    sweep.parent_run_id, metric = found.info.run_id, f"best_{objective(experiment)[0]}"
    for number, run in sorted(records.ended_children(found.info.run_id, uri).items()):
        done = run.info.status == "FINISHED"
        value = run.data.metrics.get(metric) if done else None
        sweep.outcomes.append(Outcome(number, "COMPLETE" if done else "FAIL", value, run_id=run.info.run_id))
    return sweep


def run_experiment(
    experiment: ExperimentFile,
    options: SweepOptions | None = None,
    train_fn: TrainFn = train,
    workers: Sequence[subprocess.Popen[bytes]] = (),
) -> Sweep:
    """Run an experiment file's runs (or trials) until every one has ended; this process is one worker.

    Args:
        experiment: The experiment file, expanded and validated.
        options: How the sweep runs; default one worker in this process.
        train_fn: Trains one run.
        workers: The other workers of this machine, already started
            (`experiments.sweeps.workers.start_workers`); they are waited for, and
            stopped at a batch end when this process is told to stop.

    Returns:
        The sweep: its parent run and how each run ended (`experiments.sweeps.report.print_results` shows it).

    Raises:
        ConfigError: ``--workers`` below 1, or several workers without a storage to share.
        TrackingError: If a started worker failed.
    """
    options = options or SweepOptions()
    if options.workers < 1:
        raise ConfigError(f"--workers {options.workers} is not allowed; give a whole number of at least 1")
    if threads := os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(threads))
    uri = tracking_uri_of(experiment)
    storage = None
    try:
        # A search, or a list that other workers or machines share: an Optuna study.
        if (
            experiment.samples
            or options.workers > 1
            or options.storage
            or options.name
            or options.worker_index is not None
        ):
            url = options.storage or (studies.default_storage(uri) if uri is not None else "memory")
            if url == "memory" and options.workers > 1:  # no tracking and no storage: this process's memory
                raise ConfigError(
                    "--workers needs a study storage shared by the processes: pass --storage "
                    "sqlite:///PATH/optuna.db (or turn tracking on)"
                )
            storage = studies.open_storage(url, uri)
            study, name, parent = studies.open_study(
                experiment,
                storage,
                options.name,
                options.worker_index or 0,
                lambda name: create_parent(experiment, name, None, uri),
                lambda name: parent_state(experiment, name, uri) is not None,
            )
            sweep = Sweep(name, experiment, uri, parent, study=study)
            if options.worker_index is not None:  # a started worker: trials only; the process that started it reports
                studies.work(study, trial_objective(sweep, options, train_fn), options.fail_fast)
                return sweep
        else:
            sweep = open_list(experiment, uri)
        with records.parent_alive(sweep.parent_run_id, uri, lambda: running(sweep.study)), stop_on_signals():
            if sweep.study is not None:
                studies.work(sweep.study, trial_objective(sweep, options, train_fn), options.fail_fast)
            else:
                run_list(sweep, options, train_fn)
            codes = wait_for_workers(workers)
    except BaseException:
        stop_workers(workers)
        raise
    if failed := [index for index, code in enumerate(codes, 1) if code != 0]:
        raise TrackingError(
            f"sweep '{sweep.name}': worker(s) {failed} exited with {[codes[i - 1] for i in failed]}; their output "
            f"above says why; run the same command again to continue the sweep"
        )
    if sweep.study is not None:
        sweep.outcomes, sweep.pending = studies.ended(sweep.study)
    if not sweep.pending and (storage is None or studies.take_finish(storage, sweep.name)):
        finish_sweep(sweep)
    return sweep


def running(study: optuna.Study | None) -> bool:
    """Whether a trial of a sweep's study runs, in any process (``None``, a plain loop: none other).

    Args:
        study: The sweep's study, if it has one.

    Returns:
        True while one does.
    """
    return study is not None and bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (a scheduler's stop) as Ctrl-C between runs; during one, the run's own handler defers it.

    Yields:
        Nothing.
    """

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = handle_unless_ignored((signal.SIGTERM,), on_signal)
    try:
        yield
    finally:
        restore(previous)


def run_list(sweep: Sweep, options: SweepOptions, train_fn: TrainFn) -> None:
    """Train every listed run that has not ended yet, in order, one after the other.

    Args:
        sweep: The open sweep (`open_list`).
        options: How the sweep runs (``fail_fast``).
        train_fn: Trains one run.
    """
    done, total = {o.number for o in sweep.outcomes}, len(sweep.experiment.runs)
    for index, config in enumerate(sweep.experiment.runs):
        if index not in done:
            reporter = TrialReporter(*objective(sweep.experiment))
            try:
                value = train_run(sweep, config, index, f"run {index + 1}/{total}", reporter, train_fn, options)
                sweep.outcomes.append(Outcome(index, "COMPLETE", value, run_id=reporter.run_id or ""))
            except Exception:
                sweep.outcomes.append(Outcome(index, "FAIL", run_id=reporter.run_id or ""))
                if options.fail_fast:
                    raise


def trial_objective(sweep: Sweep, options: SweepOptions, train_fn: TrainFn) -> Callable[[optuna.Trial], float]:
    """The study's objective: train the trial's listed run or sampled config; its value is its best epoch.

    Args:
        sweep: The open sweep (with its study).
        options: How the sweep runs.
        train_fn: Trains one run.

    Returns:
        ``objective(trial) -> value``.
    """
    experiment, study = sweep.experiment, sweep.study
    assert study is not None  # a study's sweep
    pruner, goal = experiment.search.pruner if experiment.search else "none", objective(experiment)

    def run(trial: optuna.Trial) -> float:
        if TRIAL_SLOT_ATTR not in trial.user_attrs:  # asked after the last slot was taken: ends unrun
            study.stop()
            raise optuna.TrialPruned(f"trial {trial.number}: every slot of the sweep was taken")
        slot, total = int(trial.user_attrs[TRIAL_SLOT_ATTR]), experiment.trials
        config = sampled_config(trial, experiment) if experiment.samples else experiment.runs[slot]
        label = f"trial {trial.number} ({slot + 1}/{total})" if experiment.samples else f"run {slot + 1}/{total}"
        try:
            return train_run(sweep, config, trial.number, label, TrialReporter(*goal, pruner, trial), train_fn, options)
        except KeyboardInterrupt:
            study.enqueue_trial(trial.params, user_attrs={TRIAL_SLOT_ATTR: slot})  # the command's re-run takes it
            raise

    return run


def train_run(
    sweep: Sweep,
    config: ExperimentConfig,
    number: int,
    label: str,
    reporter: TrialReporter,
    train_fn: TrainFn,
    options: SweepOptions,
) -> float:
    """Train one run as a child of the sweep's parent, record how it ended in its run, and return its value.

    Args:
        sweep: The open sweep.
        config: The run's config.
        number: Its trial number (a listed run's index in a plain loop), tagged ``zoo.trial``.
        label: How the line before its epochs names it (``run 2/6``, ``trial 3 (4/8)``).
        reporter: Keeps its epochs' values (and reports them to its trial).
        train_fn: Trains one run.
        options: How the sweep runs (``fail_fast``: a failure stops the sweep).

    Returns:
        The best value of the objective over the run's epochs.
    """
    config = config.replace(parent_run=sweep.parent_run_id) if sweep.parent_run_id else config
    # The trial number is bookkeeping, a tag: as a param it would differ between every two children.
    tags = {
        SWEEP_TAG: sweep.name,
        TRIAL_TAG: number,
        WORKER_TAG: str(Owner.here()),
        THREADS_TAG: torch.get_num_threads(),
    }
    print(f"== {label}: {config.run_name or config.default_run_name()} ({config.model})", flush=True)
    try:
        result = train_fn(config, extras=RunExtras(tags=tags, callbacks=[reporter]))
    except Pruned:
        records.record_trial_end(reporter.run_id, sweep.tracking_uri, "PRUNED", {})
        raise
    except Exception as exc:
        records.record_trial_end(reporter.run_id, sweep.tracking_uri, "FAIL", {})
        if options.fail_fast and sweep.study is not None:  # every worker stops after its trial
            sweep.study.set_user_attr(STUDY_STOP_ATTR, f"trial {number} failed: {type(exc).__name__}")
        then = "the sweep stops (--fail-fast)" if options.fail_fast else "its run is FAILED; the sweep goes on"
        print(
            f"zoo: trial {number} failed ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); {then}",
            file=sys.stderr,
        )
        raise
    metric, reporter.run_id = reporter.metric, reporter.run_id or result.run_id
    value = reporter.best
    if value is None:  # a stand-in trainer without epochs: its summary says it
        value = float(result.metrics.get(f"best_{metric}", result.metrics.get(metric, math.nan)))
    records.record_trial_end(reporter.run_id, sweep.tracking_uri, "COMPLETE", {f"best_{metric}": value})
    return value
