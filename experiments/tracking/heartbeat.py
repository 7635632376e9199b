"""A live run's heartbeat: a tag refreshed every few seconds, so a dead process's run can be told apart.

A process killed without a word (SIGKILL, a lost node) cannot mark its run; it
stays RUNNING in MLflow. While a run is alive a background thread writes the
time into its ``zoo.heartbeat`` tag; ``zoo runs --stale`` lists RUNNING runs
whose heartbeat is old, and ``zoo runs --mark-stale`` marks them KILLED.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING, Iterator

from experiments.tracking.names import HEARTBEAT_TAG, KILLED_REASON_TAG

if TYPE_CHECKING:  # types only: `zoo runs --help` reads the defaults here without loading MLflow
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

HEARTBEAT_S = 30.0
"""Seconds between two beats (``$ZOO_HEARTBEAT_S`` overrides)."""

STALE_AFTER_BEATS = 4
"""A run is stale after this many missed beats (the default of ``--older-than``)."""


def interval() -> float:
    """Seconds between two beats.

    Returns:
        ``$ZOO_HEARTBEAT_S`` or `HEARTBEAT_S`.
    """
    return float(os.environ.get("ZOO_HEARTBEAT_S") or HEARTBEAT_S)


def beat(client: MlflowClient, run_id: str) -> None:
    """Write the time into the run's heartbeat tag.

    Args:
        client: An `MlflowClient`.
        run_id: The MLflow run's id.
    """
    client.set_tag(run_id, HEARTBEAT_TAG, f"{time.time():.3f}")


@contextlib.contextmanager
def beating(client: MlflowClient, run_id: str | None) -> Iterator[None]:
    """Beat now and then every `interval` seconds from a daemon thread until the body ends.

    Args:
        client: An `MlflowClient` of the run's store.
        run_id: The run; ``None`` beats nothing.

    Yields:
        Nothing.
    """
    if not run_id:
        yield
        return
    beat(client, run_id)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval()):
            with contextlib.suppress(Exception):  # a busy store misses one beat, not the run
                beat(client, run_id)

    thread = threading.Thread(target=loop, name="zoo-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def last_sign_of_life(run: Run) -> float:
    """When a run last showed it was alive: its heartbeat, else its start time.

    Args:
        run: An `mlflow.entities.Run`.

    Returns:
        Unix time in seconds.
    """
    tag = run.data.tags.get(HEARTBEAT_TAG)
    with contextlib.suppress(TypeError, ValueError):
        return float(tag)
    return (run.info.start_time or 0) / 1000.0


def stale_runs(client: MlflowClient, older_than: float,
               experiment_ids: list[str] | None = None) -> list[tuple[Run, float]]:
    """RUNNING runs whose last sign of life is older than ``older_than`` seconds.

    Args:
        client: An `MlflowClient`.
        older_than: Seconds without a heartbeat.
        experiment_ids: Experiments to look in; all when ``None``.

    Returns:
        ``(run, age_in_seconds)`` pairs, oldest first.
    """
    ids = experiment_ids if experiment_ids is not None else [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    now = time.time()
    found = []
    for run in client.search_runs(ids, filter_string="attributes.status = 'RUNNING'", max_results=5000):
        age = now - last_sign_of_life(run)
        if age > older_than:
            found.append((run, age))
    return sorted(found, key=lambda pair: -pair[1])


def mark_killed(client: MlflowClient, run_id: str, age: float) -> None:
    """Mark a stale run KILLED, saying why in a tag.

    Args:
        client: An `MlflowClient`.
        run_id: The MLflow run's id.
        age: Seconds since its last heartbeat.
    """
    client.set_tag(run_id, KILLED_REASON_TAG, f"no heartbeat for {age:.0f} s (zoo runs --mark-stale)")
    client.set_terminated(run_id, "KILLED")
