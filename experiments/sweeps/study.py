"""A sweep's Optuna study: its storage, who creates it, the trials it hands out, and who finishes it.

A study in a relational storage (SQLite on one machine, PostgreSQL or MySQL for a
team) hands trials to any number of worker processes on any number of machines.
The zoo builds four things on top of Optuna, each on an operation the storage
makes atomic:

- **One creator.** ``create_study(load_if_exists=False)`` succeeds for exactly one
  process (the study name is unique in the storage). That process creates the
  MLflow parent run, enqueues the trials, and last writes the parent's id into
  the study; every other process waits for that id and joins.
- **Slots, not a count.** Every trial the sweep owes is enqueued up front as a
  WAITING trial (a *slot*, with fixed values for a listed run or a grid, empty for
  a sampled one); `optuna.Study.ask` pops one atomically, so no trial runs twice
  and a sweep never runs more trials than it owes. A worker that asks when the
  queue is already empty gets a *surplus* trial, which it ends at once, unrun.
- **Dead workers.** Optuna's heartbeat fails the trial of a worker that stopped
  beating; the zoo's callback marks its MLflow run KILLED and enqueues the trial
  again (Optuna's `RetryHeartbeatStaleTrialCallback`). A worker stopped by Ctrl-C or
  SIGTERM enqueues its trial again itself, so a stopped sweep continues where it
  was.
- **One finisher.** The sweep is summarised once: a tiny lock study named after it
  is created by whichever process finds the last trial done first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna
from mlflow.tracking import MlflowClient
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from experiments.config import ExperimentFile
from experiments.config.secrets import mask_text, mask_uri
from experiments.tracking.errors import TrackingError
from experiments.tracking.heartbeat import interval, stale_after
from experiments.tracking.names import KILLED_REASON_TAG
from experiments.tracking.store import check_database, get_client, resolve_tracking_uri, sqlite_path

STUDY_FILE = "optuna.db"
"""The default storage's file, beside the local MLflow store (``mlflow.db``)."""

PARENT_ATTR = "zoo.parent_run_id"
"""Study attribute: the MLflow parent run's id ("" without tracking). Written last by the creator."""

PLAN_ATTR = "zoo.plan"
"""Study attribute: the fingerprint of the experiment it runs (file, overrides, expanded runs, search)."""

SLOT_ATTR = "zoo.slot"
"""Trial attribute: the slot a trial fills (0 .. trials - 1); a trial without one is surplus."""

RUN_INDEX_ATTR = "zoo.run"
"""Trial attribute: the index of the listed run (or grid combination) a slot trains."""

MLFLOW_RUN_ATTR = "zoo.mlflow_run_id"
"""Trial attribute: the MLflow child run of the trial."""

ENDING_ATTR = "zoo.ending"
"""Trial attribute on a trial that ended without a result of its own: ``interrupted`` or ``surplus``.

A trial whose worker died is told apart by the retry that copies it (Optuna's
``retry_history``); one that failed on its own has neither."""

LOCK_PREFIX = "zoo-lock:"
"""Names of the lock studies (never optimised; one per decision that must be taken once)."""

CONNECT_TIMEOUT_S = 10
"""Seconds to wait for a storage server to accept a connection."""

JOIN_TIMEOUT_S = 120.0
"""Seconds a joining process waits for the creator to finish setting a study up."""

MAX_RETRY = 2
"""Times a dead worker's trial is tried again before it counts as failed."""

CREATE_ATTEMPTS = 10
"""Tries to open a storage whose tables another process creates at the same moment."""

_CREATION_RACE = (
    "already exists",
    "duplicate key",
    "UniqueViolation",
    "UNIQUE constraint failed",
    "database is locked",
)
"""How PostgreSQL, MySQL and SQLite word a table or row that another process created a moment before."""

# Optuna logs every trial at INFO and every failed one with its traceback at WARNING: the zoo
# prints one line per trial itself, and a failed run keeps its traceback as an artifact.
optuna.logging.set_verbosity(optuna.logging.ERROR)


@dataclass
class Sweep:
    """An open sweep: its study, its MLflow parent run, and the experiment it runs.

    Attributes:
        study: The Optuna study.
        storage: Its storage (shared by every process of the sweep).
        name: Its name (``--sweep``).
        storage_url: Where it lives (``--storage``).
        parent_run_id: The MLflow parent run, or ``None`` (no tracking, or a plain list of runs).
        experiment: The experiment file it runs.
        created: Whether this process created it (else it joined).
    """

    study: optuna.Study
    storage: optuna.storages.BaseStorage
    name: str
    storage_url: str
    parent_run_id: str | None
    experiment: ExperimentFile
    created: bool


def default_storage(tracking_uri: str | None) -> str:
    """The study storage when ``--storage`` is not given: beside the local MLflow store.

    Args:
        tracking_uri: The MLflow store.

    Returns:
        ``sqlite:///DIR/optuna.db``, where DIR holds ``mlflow.db`` (the working directory for a
        tracking server: a team gives ``--storage`` itself).
    """
    path = sqlite_path(resolve_tracking_uri(tracking_uri))
    folder = path.parent if path is not None else Path.cwd()
    return f"sqlite:///{folder / STUDY_FILE}"


def fingerprint(experiment: ExperimentFile) -> str:
    """A short digest of what a sweep runs, so that a second machine joins only the same sweep.

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
            "trials": search.trials,
            "sampler": search.sampler,
            "objective": search.objective,
            "direction": search.direction,
            "pruner": search.pruner,
        },
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


def open_storage(url: str, tracking_uri: str | None) -> optuna.storages.BaseStorage:
    """An Optuna storage with heartbeats, reached (or refused in one line) before any trial.

    Args:
        url: A SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``).
        tracking_uri: The MLflow store whose runs a dead worker's trial is marked in.

    Returns:
        An `RDBStorage` whose heartbeat fails a silent worker's trial after `stale_after` seconds.

    Raises:
        TrackingError: The URL names a folder that does not exist, or a server that does not answer.
    """
    path = sqlite_path(url)
    engine: dict[str, Any] = {}
    if path is not None:
        if not path.parent.is_dir():
            raise TrackingError(
                f"study storage {mask_uri(url)}: its folder {path.parent} does not exist; create it, "
                f"or pass another --storage"
            )
        engine = {"connect_args": {"timeout": 60}}  # workers on one machine wait for SQLite's one writer
    elif url.startswith(("postgresql", "mysql")):
        check_database(url, "study storage", "--storage", CONNECT_TIMEOUT_S)  # one line, before Optuna's retries
        engine = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=max(1, round(interval())),
                    grace_period=max(2, round(stale_after())),
                    heartbeat_stale_trial_callback=DeadWorker(tracking_uri),
                )
        except Exception as exc:  # SQLAlchemy, the driver and Optuna raise many types
            text = str(exc)
            # Two machines creating a new storage's tables at the same moment: the second one sees them appear.
            if attempt < CREATE_ATTEMPTS - 1 and any(s in text for s in _CREATION_RACE):
                time.sleep(0.5 * (attempt + 1))
                continue
            detail = mask_text(" ".join(text.split()))[:200] or type(exc).__name__
            raise TrackingError(
                f"study storage {mask_uri(url)} cannot be used ({detail}); check the URL and that its server "
                f"runs, or pass another --storage"
            ) from None
    raise AssertionError("unreachable")


class DeadWorker:
    """What happens to the trial of a worker that stopped beating: its run KILLED, the trial tried again.

    Args:
        tracking_uri: The MLflow store of the trials' runs.
    """

    def __init__(self, tracking_uri: str | None) -> None:
        self.tracking_uri = tracking_uri
        self.retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Mark the trial's MLflow run KILLED (it stays RUNNING otherwise) and enqueue the trial again."""
        run_id = trial.user_attrs.get(MLFLOW_RUN_ATTR)
        if run_id and self.tracking_uri is not None:
            with contextlib.suppress(Exception):  # the retry matters more than the record
                client = get_client(self.tracking_uri)
                client.set_tag(
                    run_id,
                    KILLED_REASON_TAG,
                    f"its sweep worker died (trial {trial.number}; no "
                    f"heartbeat for {stale_after():g} s); the trial runs again",
                )
                client.set_terminated(run_id, "KILLED")
        self.retry(study, trial)


def exclusive(storage: optuna.storages.BaseStorage, key: str) -> bool:
    """Take a decision once across every process and machine: whether this process took it.

    Args:
        storage: The sweep's storage.
        key: What is decided, such as ``"search/finished"``.

    Returns:
        True for exactly one caller per key (the storage's unique study names do the work).
    """
    try:
        optuna.create_study(storage=storage, study_name=LOCK_PREFIX + key, load_if_exists=False)
        return True
    except optuna.exceptions.DuplicatedStudyError:
        return False


def sampler_for(experiment: ExperimentFile, worker: int, trials_so_far: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler of a search, seeded apart for each worker and each start, or none needed for listed runs.

    A new sweep on one worker draws the same values every time (the config's seed).
    Two workers seeded alike, or a sweep continued with its first seed, would draw
    the values already drawn again: the worker's index and the trials so far change it.

    Args:
        experiment: The experiment file.
        worker: This worker's index on its machine.
        trials_so_far: Trials the study holds when this process starts on it.

    Returns:
        TPE or random, seeded from the config's seed; random (unused) for listed runs.
    """
    seed = (experiment.runs[0].seed * 1009 + worker * 7919 + trials_so_far * 104729) % 2**32
    if experiment.search is not None and experiment.samples and experiment.search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def pruner_for(experiment: ExperimentFile) -> optuna.pruners.BasePruner:
    """The search's pruner; listed runs are never pruned.

    Args:
        experiment: The experiment file.

    Returns:
        Median (after an epoch of warm-up), Hyperband (over the epochs), or none.
    """
    search = experiment.search
    if search is None or not experiment.samples or search.pruner == "none":
        return optuna.pruners.NopPruner()
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=experiment.runs[0].epochs)
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def direction_of(experiment: ExperimentFile) -> Literal["maximize", "minimize"]:
    """Which way the sweep's objective improves.

    Args:
        experiment: The experiment file.

    Returns:
        The search's direction, else that of the runs' monitored metric.
    """
    if experiment.search is not None:  # parse_search allows only these two
        return "minimize" if experiment.search.direction == "minimize" else "maximize"
    return "maximize" if experiment.runs[0].monitor_mode == "max" else "minimize"


def create_or_join(
    experiment: ExperimentFile, name: str, storage_url: str, *, worker: int = 0, create_parent: Any = None
) -> Sweep:
    """Open a sweep: create its study (one process does), or join the one that exists.

    Args:
        experiment: The experiment file, expanded and validated.
        name: The study's name.
        storage_url: The storage's SQLAlchemy URL.
        worker: This process's worker index (seeds the sampler).
        create_parent: ``create_parent() -> run id or None``, called once, by the creator.

    Returns:
        The sweep.

    Raises:
        TrackingError: The study runs another experiment, or its creator never finished setting it up.
    """
    first = experiment.runs[0]
    tracking_uri = resolve_tracking_uri(first.tracking_uri) if first.tracking else None
    storage = open_storage(storage_url, tracking_uri)
    sampler, pruner = sampler_for(experiment, worker), pruner_for(experiment)
    plan = fingerprint(experiment)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            sampler=sampler,
            pruner=pruner,
            direction=direction_of(experiment),
            load_if_exists=False,
        )
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner)
        study.sampler = sampler_for(experiment, worker, len(study.get_trials(deepcopy=False)))
        created = False
    if created:
        study.set_user_attr(PLAN_ATTR, plan)
        parent = create_parent() if create_parent else None
        enqueue_slots(study, experiment)
        study.set_user_attr(PARENT_ATTR, parent or "")  # last: joiners wait for it
    else:
        attrs = wait_for_setup(study, name)
        if attrs.get(PLAN_ATTR) != plan:
            raise TrackingError(
                f"sweep '{name}' in {mask_uri(storage_url)} runs another experiment (a different file, "
                f"overrides or search); pass --sweep NEW_NAME to start a new sweep"
            )
        parent = attrs[PARENT_ATTR] or None
    return Sweep(study, storage, name, storage_url, parent, experiment, created)


def wait_for_setup(study: optuna.Study, name: str) -> dict[str, Any]:
    """Wait until a study's creator has written its parent run, the last step of its set-up.

    Args:
        study: The sweep's Optuna study.
        name: Its name, for the message.

    Returns:
        The study's user attributes.

    Raises:
        TrackingError: If the creator has not finished within `JOIN_TIMEOUT_S`.
    """
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while True:
        attrs = study.user_attrs
        if PARENT_ATTR in attrs:
            return attrs
        if time.monotonic() > deadline:
            raise TrackingError(
                f"sweep '{name}' was never set up (its creator stopped while setting it up); "
                f"pass --sweep NEW_NAME to start a new sweep"
            )
        time.sleep(0.5)


def enqueue_slots(study: optuna.Study, experiment: ExperimentFile) -> None:
    """Enqueue one WAITING trial per trial the sweep owes.

    Args:
        study: The new study.
        experiment: Its experiment file: listed runs get their index as a fixed value.
    """
    if experiment.samples:
        for slot in range(experiment.trials):
            study.enqueue_trial({}, user_attrs={SLOT_ATTR: slot})
        return
    for index in range(len(experiment.runs)):
        study.enqueue_trial({}, user_attrs={SLOT_ATTR: index, RUN_INDEX_ATTR: index})


def requeue_interrupted(study: optuna.Study, trial: optuna.Trial) -> None:
    """Enqueue a trial stopped by Ctrl-C or SIGTERM again, with its values, so a re-run continues it.

    Args:
        study: The sweep's Optuna study.
        trial: The running trial, inside the objective.
    """
    trial.set_user_attr(ENDING_ATTR, "interrupted")
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in (ENDING_ATTR, MLFLOW_RUN_ATTR)}
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)


def _retried(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the trials that a retry copied (their workers died)."""
    return {number for t in trials for number in t.system_attrs.get("retry_history", [])}


def counts(study: optuna.Study) -> dict[str, int]:
    """Where a sweep's trials stand, surplus trials left out.

    Args:
        study: The sweep's Optuna study.

    Returns:
        ``waiting``, ``running``, ``complete``, ``pruned``, ``failed`` (failed on their own,
        not retried), ``retried`` (died or interrupted; a copy waits or ran).
    """
    found = {"waiting": 0, "running": 0, "complete": 0, "pruned": 0, "failed": 0, "retried": 0}
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    for trial in trials:
        ending = trial.user_attrs.get(ENDING_ATTR)
        if ending == "surplus" or SLOT_ATTR not in trial.user_attrs:
            continue
        if trial.state == TrialState.FAIL:
            found["retried" if ending == "interrupted" or trial.number in retried else "failed"] += 1
        else:
            key = {
                TrialState.WAITING: "waiting",
                TrialState.RUNNING: "running",
                TrialState.COMPLETE: "complete",
                TrialState.PRUNED: "pruned",
            }[trial.state]
            found[key] += 1
    return found


def is_done(study: optuna.Study) -> bool:
    """Whether no trial of the sweep waits or runs.

    Args:
        study: The sweep's Optuna study.

    Returns:
        True when every slot has ended (completed, pruned or failed).
    """
    now = counts(study)
    return now["waiting"] == 0 and now["running"] == 0


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The sweep's trials that ended on their own (complete, pruned, failed), by number.

    Args:
        study: The sweep's Optuna study.

    Returns:
        The trials; surplus, died and interrupted ones left out.
    """
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    return [
        t
        for t in trials
        if SLOT_ATTR in t.user_attrs
        and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        and t.user_attrs.get(ENDING_ATTR) not in ("surplus", "interrupted")
        and t.number not in retried
    ]


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's experimental-feature warnings off while the body runs (the heartbeat is one).

    Yields:
        Nothing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        logging.getLogger("optuna").setLevel(logging.WARNING)
        yield


def mlflow_client(tracking_uri: str | None) -> MlflowClient | None:
    """The MLflow client of the sweep's store, or ``None`` without tracking.

    Args:
        tracking_uri: The store.

    Returns:
        The client.
    """
    return get_client(tracking_uri) if tracking_uri is not None else None
