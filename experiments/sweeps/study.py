"""A search, or a list of runs shared by several workers or machines, as the trials of one Optuna study.

A study in a relational storage (SQLite on one machine, PostgreSQL or MySQL for a team)
hands trials to any number of workers on any number of machines. Each guarantee rests on
an operation Optuna's storage makes atomic:

- **One creator, one plan.** ``create_study(load_if_exists=False)`` succeeds for exactly one
  process. It stores the plan (`STUDY_PLAN_ATTR`), creates the MLflow parent run, enqueues the
  trials, and writes the parent's id (`STUDY_PARENT_ATTR`) last; every other process waits for
  that id, and joins only if its plan is the same.
- **Every trial once.** Every trial the sweep owes is enqueued up front (`enqueue_trial`,
  one per slot: a listed run's index, or an empty slot for the sampler to fill);
  `optuna.Study.ask` pops each for one worker only. A worker that asks when the queue is
  already empty gets a trial without a slot, which it ends PRUNED at once, unrun.
- **Dead workers retried.** Optuna's heartbeat fails the trial of a worker that stopped
  beating and `RetryHeartbeatStaleTrialCallback` enqueues it again with its values; its MLflow
  run is marked KILLED. A worker stopped by Ctrl-C or SIGTERM enqueues its trial again itself.
  A slot's outcome is its newest trial.
- **One finisher.** A lock study named after the sweep is created by whichever process finds
  the last trial done first; it summarises the sweep.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from experiments.config.experiment import ExperimentFile
from experiments.config.secrets import mask_text, mask_uri
from experiments.console import is_verbose
from experiments.sweeps.trials import Outcome, choose_name, fingerprint, objective
from experiments.tracking import sweep_records as records
from experiments.tracking.errors import TrackingError
from experiments.tracking.heartbeat import interval, stale_after
from experiments.tracking.names import (
    STUDY_PARENT_ATTR,
    STUDY_PLAN_ATTR,
    STUDY_STOP_ATTR,
    TRIAL_RUN_ATTR,
    TRIAL_SLOT_ATTR,
)
from experiments.tracking.store import (
    check_database,
    make_default_folder,
    make_runs_folder,
    resolve_tracking_uri,
    sqlite_path,
)

STUDY_FILE = "optuna.db"
"""The default storage's file, beside the local MLflow store (``mlflow.db``)."""

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

# Optuna logs every trial at INFO, and a stopped trial's stack as a warning: the zoo prints one line
# per trial itself, and one when stopped. --verbose (set before the sweeps load) lets Optuna speak.
optuna.logging.set_verbosity(optuna.logging.INFO if is_verbose() else optuna.logging.ERROR)


@contextlib.contextmanager
def heartbeat_ok() -> Iterator[None]:
    """Optuna's warnings that its heartbeat and retry callback are experimental off while the body runs.

    Yields:
        Nothing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def default_storage(tracking_uri: str | None) -> str:
    """The study storage when ``--storage`` is not given: ``optuna.db`` beside the local MLflow store.

    With a tracking server (or a database server) there is no such folder: a ``./optuna.db``
    already in use stays the storage, else it goes in the runs folder (made if need be).

    Args:
        tracking_uri: The MLflow store.

    Returns:
        ``sqlite:///DIR/optuna.db``, where DIR holds ``mlflow.db``, else as above.
    """
    path = sqlite_path(resolve_tracking_uri(tracking_uri))
    if path is not None:
        return f"sqlite:///{path.parent / STUDY_FILE}"
    here = Path.cwd() / STUDY_FILE
    return f"sqlite:///{here if here.exists() else make_runs_folder() / STUDY_FILE}"


def open_storage(url: str, tracking_uri: str | None) -> optuna.storages.BaseStorage:
    """An Optuna storage with heartbeats, reached (or refused in one line) before any trial.

    Args:
        url: ``memory``, or a SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``).
        tracking_uri: The MLflow store whose runs a dead worker's trial is marked in.

    Returns:
        The storage; an `RDBStorage` fails a silent worker's trial after `stale_after` seconds.

    Raises:
        TrackingError: The URL names a folder that does not exist, or a server that does not answer.
    """
    if url == "memory":
        return optuna.storages.InMemoryStorage()
    path, engine = sqlite_path(url), dict[str, Any]()
    if path is not None:  # the default storage may open before the MLflow store beside it
        make_default_folder(path)
    if path is not None and not path.parent.is_dir():
        raise TrackingError(
            f"study storage {mask_uri(url)}: its folder {path.parent} does not exist; create it, "
            f"or pass another --storage"
        )
    if path is not None:
        engine = {"connect_args": {"timeout": 60}}  # workers on one machine wait for SQLite's one writer
    elif url.startswith(("postgresql", "mysql")):
        check_database(url, "study storage", "--storage", CONNECT_TIMEOUT_S)  # one line, before Optuna's retries
        engine = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    with heartbeat_ok():
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)

    def dead_worker(study: optuna.Study, trial: FrozenTrial) -> None:
        reason = (
            f"its sweep worker died (trial {trial.number}; no heartbeat for {stale_after():g} s); the trial runs again"
        )
        records.mark_dead(trial.user_attrs.get(TRIAL_RUN_ATTR), tracking_uri, reason)
        retry(study, trial)

    for attempt in range(CREATE_ATTEMPTS):
        try:
            with heartbeat_ok():
                return RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=max(1, round(interval())),
                    grace_period=max(2, round(stale_after())),
                    heartbeat_stale_trial_callback=dead_worker,
                )
        except Exception as exc:  # SQLAlchemy, the driver and Optuna raise many types
            # Two machines creating a new storage's tables at the same moment: the second one sees them appear.
            if attempt < CREATE_ATTEMPTS - 1 and any(s in str(exc) for s in _CREATION_RACE):
                time.sleep(0.5 * (attempt + 1))
                continue
            detail = mask_text(" ".join(str(exc).split()))[:200] or type(exc).__name__
            raise TrackingError(
                f"study storage {mask_uri(url)} cannot be used ({detail}); check the URL and that its server "
                f"runs, or pass another --storage"
            ) from None
    raise AssertionError("unreachable")


def sampler_for(experiment: ExperimentFile, worker: int, trials_so_far: int = 0) -> optuna.samplers.BaseSampler:
    """The search's sampler, seeded apart for each worker and each start (listed runs sample nothing).

    A new sweep on one worker draws the same values every time (the config's seed); two
    workers seeded alike, or a continued sweep seeded as at its start, would draw again what
    was drawn: the worker's index and the trials so far change the seed.

    Args:
        experiment: The experiment file.
        worker: This worker's index on its machine.
        trials_so_far: Trials the study holds when this process starts on it.

    Returns:
        TPE or random.
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


def set_up_attrs(study: optuna.Study) -> dict[str, Any]:
    """A study's attributes once its creator has set it up (the parent's id is written last).

    Args:
        study: A study another process may still be setting up.

    Returns:
        Its attributes; without `STUDY_PARENT_ATTR` if its creator stopped first (waited for up to
        `JOIN_TIMEOUT_S` seconds).
    """
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while STUDY_PARENT_ATTR not in (attrs := study.user_attrs) and time.monotonic() < deadline:
        time.sleep(0.5)
    return attrs


def open_study(
    experiment: ExperimentFile,
    storage: optuna.storages.BaseStorage,
    name: str | None,
    worker: int,
    create_parent: Callable[[str], str | None],
    taken: Callable[[str], bool],
) -> tuple[optuna.Study, str, str | None]:
    """Create the sweep's study (one process does), or join the one that runs the same plan.

    Args:
        experiment: The experiment file, expanded and validated.
        storage: From `open_storage`.
        name: The study's name (``--sweep``); ``None`` for the file's (`choose_name`).
        worker: This process's worker index (seeds the sampler).
        create_parent: ``create_parent(name) -> run id or None``, called once, by the creator.
        taken: ``taken(name)``: whether a sweep without a study (a plain loop's parent) has that name.

    Returns:
        ``(study, its name, the parent run's id or None)``.

    Raises:
        TrackingError: The study runs another plan, or its creator never finished setting it up.
    """
    plan = fingerprint(experiment)

    def lookup(candidate: str) -> tuple[str | None, bool] | None:
        # The parent first: a study is made before its parent, so a parent seen here that belongs to a
        # study (a worker starting beside this one) has that study in the names read next.
        has_parent = taken(candidate)
        if candidate not in optuna.study.get_all_study_names(storage):
            return ("", True) if has_parent else None
        # Another worker may be setting this study up right now: its plan is read once that is done.
        attrs = set_up_attrs(optuna.load_study(study_name=candidate, storage=storage))
        return attrs.get(STUDY_PLAN_ATTR), LOCK_PREFIX + f"{candidate}/finished" in optuna.study.get_all_study_names(
            storage
        )

    name = name or choose_name(experiment.name, plan, lookup)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            sampler=sampler_for(experiment, worker),
            pruner=pruner_for(experiment),
            directions=[objective(experiment)[1]],
            load_if_exists=False,
        )
        study.set_user_attr(STUDY_PLAN_ATTR, plan)
        parent = create_parent(name)
        for slot in range(experiment.trials):
            study.enqueue_trial({}, user_attrs={TRIAL_SLOT_ATTR: slot})
        study.set_user_attr(STUDY_PARENT_ATTR, parent or "")  # last: joiners wait for it
        return study, name, parent
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name, pruner=pruner_for(experiment))
    study.sampler = sampler_for(experiment, worker, len(study.get_trials(deepcopy=False)))
    attrs = set_up_attrs(study)
    if STUDY_PARENT_ATTR not in attrs:
        raise TrackingError(
            f"sweep '{name}' was never set up (its creator stopped while setting it up); "
            f"pass --sweep NEW_NAME to start a new sweep"
        )
    if attrs.get(STUDY_PLAN_ATTR) != plan:
        raise TrackingError(
            f"sweep '{name}' runs another experiment (a different file, overrides or search); "
            f"pass --sweep NEW_NAME to start a new sweep"
        )
    return study, name, attrs[STUDY_PARENT_ATTR] or None


def ended(study: optuna.Study) -> tuple[list[Outcome], int]:
    """How the sweep's slots ended, each by its newest trial (a retry or a requeued copy replaces the first).

    Args:
        study: The sweep's study.

    Returns:
        ``(outcomes of the ended slots by trial number, how many slots still wait or run)``.
    """
    newest: dict[int, FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False):  # by number
        if TRIAL_SLOT_ATTR in trial.user_attrs:
            newest[trial.user_attrs[TRIAL_SLOT_ATTR]] = trial
    done = sorted((t for t in newest.values() if t.state.is_finished()), key=lambda t: t.number)
    outcomes = [
        Outcome(t.number, t.state.name, t.value, dict(t.params), t.user_attrs.get(TRIAL_RUN_ATTR, "")) for t in done
    ]
    return outcomes, len(newest) - len(done)


def work(study: optuna.Study, objective: Callable[[optuna.Trial], float], fail_fast: bool) -> None:
    """Be one worker: train the study's waiting trials until none is left (or the sweep is told to stop).

    Args:
        study: The sweep's study.
        objective: Trains one trial.
        fail_fast: Stop at the first failed trial (it raises).
    """
    with heartbeat_ok():
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial waits again before this one looks

    def waiting() -> bool:
        return (
            bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
            and STUDY_STOP_ATTR not in study.user_attrs
        )

    def stop_when_done(study: optuna.Study, trial: FrozenTrial) -> None:
        if not waiting():
            study.stop()

    if waiting():
        with heartbeat_ok():  # Optuna checks its heartbeat before each trial
            study.optimize(objective, callbacks=[stop_when_done], catch=() if fail_fast else (Exception,))


def take_finish(storage: optuna.storages.BaseStorage, name: str) -> bool:
    """Whether this process summarises the sweep: true for one caller only, across every machine.

    Args:
        storage: The sweep's storage.
        name: The sweep's name.

    Returns:
        Whether it created the sweep's lock study (the storage's unique study names decide).
    """
    try:
        optuna.create_study(storage=storage, study_name=f"{LOCK_PREFIX}{name}/finished", load_if_exists=False)
        return True
    except optuna.exceptions.DuplicatedStudyError:
        return False
