"""`run_experiment`: every run of an experiment file, as the trials of an Optuna study, on any number of workers.

Each trial is a child of one MLflow parent run (for seeds, grids and searches),
created by the zoo, not by an integration, so that a trial on any process of any
machine finds its parent in the study (`experiments.sweeps.study`).

- One worker (the default) runs the trials in this process.
- ``--workers N`` runs N workers on this machine (`experiments.sweeps.workers`),
  each with its own GPU or its share of the CPU cores; this process is one of them.
- The same command on more machines, with one ``--storage`` and ``--sweep``,
  joins the same study: N machines x M workers, no trial run twice.

A failed trial is recorded FAILED and the others go on (``--fail-fast`` stops the
sweep instead); a pruned one ends KILLED with the pruner's reason. Whichever
process sees the last trial end summarises the sweep into the parent run
(`experiments.sweeps.report`).
"""

from __future__ import annotations

import contextlib
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

from experiments.config import ConfigError, ExperimentFile
from experiments.config.secrets import mask_text
from experiments.signals import handle_unless_ignored, restore
from experiments.sweeps import study as studies
from experiments.sweeps.report import finish_sweep, objective, parent_params
from experiments.sweeps.trials import Pruned, TrialReporter, config_for, trial_run_name
from experiments.sweeps.workers import THREADS_ENV, stop_workers, wait_for_workers
from experiments.tracking.errors import TrackingError
from experiments.tracking.heartbeat import Owner, beating
from experiments.tracking.names import (
    NOTE_TAG,
    ROLE_TAG,
    SWEEP_ROLE,
    SWEEP_TAG,
    THREADS_TAG,
    TRIAL_STATE_TAG,
    TRIAL_TAG,
    WORKER_TAG,
)
from experiments.tracking.runs import TrackedRun, describe_experiment, ensure_experiment
from experiments.tracking.source import source_facts
from experiments.tracking.store import get_client, resolve_tracking_uri
from experiments.training.runner import RunExtras, TrainResult, train

TrainFn = Callable[..., TrainResult]
"""What trains one run: `experiments.training.runner.train` or a stand-in (``fn(config, extras=...)``)."""

STOP_ATTR = "zoo.stop"
"""Study attribute: why every worker should stop (``--fail-fast`` after a failed trial)."""


class NothingLeft(Exception):
    """A worker asked for a trial after the last slot was taken: it ends the trial unrun and stops."""


@dataclass
class SweepOptions:
    """How a sweep runs (the flags of ``zoo run``).

    Attributes:
        workers: Worker processes on this machine.
        storage: The study storage URL; ``None`` for the default beside the MLflow store.
        name: The study's name; ``None`` for the file's name (a finished sweep of it starts a new one).
        fail_fast: Stop the sweep at the first failed trial.
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
        The store's URI, resolved (``$MLFLOW_TRACKING_URI`` or ``./mlflow.db`` when the config names none).

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


def choose_name(storage: optuna.storages.BaseStorage, experiment: ExperimentFile) -> str:
    """The study a plain ``zoo run FILE`` continues, or the new one it starts.

    The file's own name, while that study runs this experiment and is not
    finished; else ``NAME-2``, ``NAME-3``, ...: running a finished sweep's command
    again starts a new sweep, running a stopped one's continues it.

    Args:
        storage: The study storage.
        experiment: The experiment file.

    Returns:
        The study's name.
    """
    existing = set(optuna.study.get_all_study_names(storage))
    plan = studies.fingerprint(experiment)
    for number in range(1, 10_000):
        name = experiment.name if number == 1 else f"{experiment.name}-{number}"
        if name not in existing:
            return name
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
        finished = f"{studies.LOCK_PREFIX}{name}/finished" in existing
        if attrs.get(studies.PLAN_ATTR) == plan and not finished:
            return name
    raise TrackingError(f"no free sweep name for '{experiment.name}' in the storage; pass --sweep NAME")


def create_parent(experiment: ExperimentFile, name: str, tracking_uri: str | None) -> str | None:
    """The sweep's MLflow parent run: what it is, its file, its description. Created once, by the study's creator.

    Args:
        experiment: The experiment file.
        name: The sweep's name.
        tracking_uri: The MLflow store; ``None`` without tracking.

    Returns:
        The parent's run id, or ``None`` (no tracking, or a plain list of runs).
    """
    if tracking_uri is None or not experiment.is_sweep:
        return None
    tags = {ROLE_TAG: SWEEP_ROLE, SWEEP_TAG: name}
    if experiment.description:
        tags[NOTE_TAG] = experiment.description
    parent = TrackedRun.create(experiment.runs[0].experiment, name, tags, tracking_uri)
    parent.log_params(parent_params(experiment))
    parent.set_tags(source_facts())
    text = Path(experiment.source).read_text(encoding="utf-8")
    parent.log_text(mask_text(text), f"sweep/{Path(experiment.source).name}")  # a tracking_uri: in it, masked
    return parent.run_id


def open_sweep(experiment: ExperimentFile, options: SweepOptions) -> studies.Sweep:
    """Create or join the sweep's study (and its parent run).

    Args:
        experiment: The experiment file.
        options: How the sweep runs.

    Returns:
        The open sweep.
    """
    tracking_uri = tracking_uri_of(experiment)
    url = options.storage or (studies.default_storage(tracking_uri) if tracking_uri is not None else None)
    if url is None:  # no tracking and no storage: a study in memory, for this process only
        if options.workers > 1:
            raise ConfigError(
                "--workers needs a study storage shared by the processes: pass --storage "
                "sqlite:///PATH/optuna.db (or turn tracking on)"
            )
        url = "memory"
    with studies.quiet_optuna():
        if url == "memory":
            storage: Any = optuna.storages.InMemoryStorage()
            name = options.name or experiment.name
            study = optuna.create_study(
                storage=storage,
                study_name=name,
                direction=studies.direction_of(experiment),
                sampler=studies.sampler_for(experiment, 0),
                pruner=studies.pruner_for(experiment),
            )
            studies.enqueue_slots(study, experiment)
            return studies.Sweep(study, storage, name, url, None, experiment, created=True)
        name = options.name or choose_name(studies.open_storage(url, tracking_uri), experiment)
        sweep = studies.create_or_join(
            experiment,
            name,
            url,
            worker=options.worker_index or 0,
            create_parent=lambda: create_parent(experiment, name, tracking_uri),
        )
    if tracking_uri is not None and experiment.description:
        client = get_client(tracking_uri)
        describe_experiment(client, ensure_experiment(client, experiment.runs[0].experiment), experiment.description)
    return sweep


def run_experiment(
    experiment: ExperimentFile,
    options: SweepOptions | None = None,
    train_fn: TrainFn = train,
    workers: Sequence[subprocess.Popen[bytes]] = (),
) -> studies.Sweep:
    """Run an experiment file's trials until the study has them all; this process is one worker.

    Args:
        experiment: The experiment file, expanded and validated.
        options: How the sweep runs; default one worker in this process.
        train_fn: Trains one run.
        workers: The other workers of this machine, already started
            (`experiments.sweeps.workers.start_workers`); they are waited for, and
            stopped at a batch end when this process is told to stop.

    Returns:
        The sweep (its study holds every trial; `sweep_report.sweep_rows` reads them).

    Raises:
        TrackingError: If a started worker failed.
    """
    options = options or SweepOptions()
    if options.workers < 1:
        raise ConfigError(f"--workers {options.workers} is not allowed; give a whole number of at least 1")
    try:
        sweep = open_sweep(experiment, options)
        tracking_uri = tracking_uri_of(experiment)
        if options.worker_index is not None:  # a started worker: trials only; the process that started it reports
            run_worker(sweep, options, train_fn)
            return sweep
        with parent_alive(sweep, tracking_uri), stop_on_signals():
            run_worker(sweep, options, train_fn)
            codes = wait_for_workers(workers)
    except BaseException:
        stop_workers(workers)
        raise
    failed = [index for index, code in enumerate(codes, 1) if code != 0]
    if failed:
        raise TrackingError(
            f"sweep '{sweep.name}': worker(s) {failed} exited with "
            f"{[codes[i - 1] for i in failed]}; their output above says why; run the same command "
            f"again to continue the sweep"
        )
    finish_sweep(sweep, tracking_uri)
    return sweep


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (a scheduler's stop) as Ctrl-C between trials; during one, the trial's own handler defers it.

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


@contextlib.contextmanager
def parent_alive(sweep: studies.Sweep, tracking_uri: str | None) -> Iterator[None]:
    """Keep the parent run RUNNING and beating while this machine works on the sweep.

    On Ctrl-C or SIGTERM it is marked KILLED, on a failure (``--fail-fast``) FAILED, unless
    trials of other processes still run (the sweep goes on elsewhere); running the command
    again continues it.

    Args:
        sweep: The open sweep.
        tracking_uri: The MLflow store.

    Yields:
        Nothing.
    """
    client = studies.mlflow_client(tracking_uri)
    parent_id = sweep.parent_run_id
    if client is None or tracking_uri is None or parent_id is None:  # no client is no tracking_uri
        yield
        return
    client.update_run(parent_id, status="RUNNING")
    try:
        with beating(client, parent_id, Owner.here()):
            yield
    except KeyboardInterrupt:
        if studies.counts(sweep.study)["running"] == 0:
            TrackedRun(parent_id, tracking_uri).end("KILLED")
        raise
    except Exception:  # --fail-fast, or the sweep's own machinery (its storage) failed
        if studies.counts(sweep.study)["running"] == 0:
            TrackedRun(parent_id, tracking_uri).end("FAILED")
        raise


def run_worker(sweep: studies.Sweep, options: SweepOptions, train_fn: TrainFn) -> None:
    """Ask the study for trials and train them until no slot is left (or the sweep is told to stop).

    Args:
        sweep: The open sweep.
        options: How the sweep runs (``fail_fast``).
        train_fn: Trains one run.
    """
    threads = os.environ.get(THREADS_ENV)
    if threads:
        torch.set_num_threads(int(threads))
    study = sweep.study

    def stop_when_done(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if study.user_attrs.get(STOP_ATTR) or not study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.WAITING,)
        ):
            study.stop()

    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        with studies.quiet_optuna():
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial comes back as a waiting one
    if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)) and not study.user_attrs.get(
        STOP_ATTR
    ):
        with studies.quiet_optuna(), contextlib.suppress(NothingLeft):
            study.optimize(
                lambda trial: run_trial(trial, sweep, options, train_fn),
                callbacks=[stop_when_done],
                catch=() if options.fail_fast else (Exception,),
            )


def run_trial(trial: optuna.Trial, sweep: studies.Sweep, options: SweepOptions, train_fn: TrainFn) -> float:
    """The objective: train the trial's config as a child run; its value is its best epoch.

    Args:
        trial: The trial Optuna handed out.
        sweep: The open sweep.
        options: How the sweep runs.
        train_fn: Trains one run.

    Returns:
        The best value of the objective over the run's epochs.

    Raises:
        NothingLeft: The trial is surplus (every slot was taken).
        Pruned: The pruner stopped it.
    """
    if studies.SLOT_ATTR not in trial.user_attrs:
        trial.set_user_attr(studies.ENDING_ATTR, "surplus")
        sweep.study.stop()
        raise NothingLeft(f"trial {trial.number}: every slot of the sweep was taken")
    experiment = sweep.experiment
    config, values = config_for(trial, experiment)
    changes: dict[str, Any] = {"run_name": trial_run_name(trial.number, values, config)} if values else {}
    if sweep.parent_run_id:
        changes["parent_run"] = sweep.parent_run_id
    config = config.replace(**changes) if changes else config
    metric, direction = objective(experiment)
    reporter = TrialReporter(trial, metric, direction, experiment.search.pruner if experiment.search else "none")
    # The trial number is bookkeeping, a tag: as a param it would differ between every two children.
    extras = RunExtras(
        tags={
            SWEEP_TAG: sweep.name,
            TRIAL_TAG: trial.number,
            WORKER_TAG: str(Owner.here()),
            THREADS_TAG: torch.get_num_threads(),
        },
        callbacks=[reporter],
    )
    total = experiment.trials
    slot = trial.user_attrs[studies.SLOT_ATTR] + 1
    what = f"trial {trial.number} ({slot}/{total})" if experiment.search else f"run {slot}/{total}"
    print(f"== {what}: {config.run_name or config.default_run_name()} ({config.model})", flush=True)
    try:
        result = train_fn(config, extras=extras)
    except KeyboardInterrupt:
        studies.requeue_interrupted(sweep.study, trial)  # a re-run of the command continues with it
        raise
    except Pruned:
        tag_trial(trial, "PRUNED", tracking_uri_of(experiment))
        raise
    except Exception as exc:
        tag_trial(trial, "FAIL", tracking_uri_of(experiment))
        if options.fail_fast:
            sweep.study.set_user_attr(STOP_ATTR, f"trial {trial.number} failed: {type(exc).__name__}")
        then = "the sweep stops (--fail-fast)" if options.fail_fast else "its run is FAILED; the sweep goes on"
        print(
            f"zoo: trial {trial.number} failed ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); {then}",
            file=sys.stderr,
        )
        raise
    value = reporter.best
    if value is None:  # a stand-in trainer without epochs: its summary says it
        value = float(result.metrics.get(f"best_{metric}", result.metrics.get(metric, float("nan"))))
    tag_trial(trial, "COMPLETE", tracking_uri_of(experiment), {f"best_{metric}": value})
    return value


def tag_trial(trial: optuna.Trial, state: str, tracking_uri: str | None, value: dict[str, float] | None = None) -> None:
    """Write how a trial ended into its MLflow run (Optuna knows; the MLflow UI should too).

    Args:
        trial: The Optuna trial that just ended.
        state: ``COMPLETE``, ``PRUNED`` or ``FAIL``.
        tracking_uri: The store of its run; ``None`` without tracking.
        value: The trial's value as a metric (``best_val_acc``), where the run does not hold it yet,
            so that ``zoo compare --parent`` ranks the trials by it.
    """
    run_id = trial.user_attrs.get(studies.MLFLOW_RUN_ATTR)
    client = studies.mlflow_client(tracking_uri)
    if run_id and client is not None:
        with contextlib.suppress(Exception):
            client.set_tag(run_id, TRIAL_STATE_TAG, state)
            held = client.get_run(run_id).data.metrics
            for key, number in (value or {}).items():
                if key not in held:
                    client.log_metric(run_id, key, number)
