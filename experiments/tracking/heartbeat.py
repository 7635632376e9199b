"""A live run's heartbeat and owner: who writes a RUNNING run, and whether that process still lives.

A process killed without a word (SIGKILL, a lost node, a full disk that takes the
status write with it) cannot mark its run; it stays RUNNING in MLflow. While a
run is alive a background thread writes the time (UTC, ISO 8601) into its
``mlflow.zoo.heartbeat`` tag, and the run's ``mlflow.zoo.owner`` tag names its
process (``HOST PID TOKEN``); runs logged before hold ``zoo.heartbeat`` (Unix
seconds) and ``zoo.owner``, which are read as well.
A run is dead when its owner's process is gone from this host, or, for an owner
on another host, when its heartbeat is older than a few beats. ``zoo runs
--stale`` lists dead RUNNING runs and ``--mark-stale`` marks them KILLED;
``zoo train --resume`` refuses a run whose owner lives, so that two processes
never write one run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from experiments.tracking.errors import TrackingError
from experiments.tracking.names import HEARTBEAT_TAG, KILLED_REASON_TAG, OWNER_TAG, read_tag

if TYPE_CHECKING:  # types only: `zoo runs --help` reads the defaults here without loading MLflow
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

HEARTBEAT_S = 30.0
"""Seconds between two beats (``$ZOO_HEARTBEAT_S`` overrides)."""

STALE_AFTER_BEATS = 4
"""A run whose owner is on another host is dead after this many missed beats (``--older-than``)."""

CLAIM_SETTLE_S = 1.0
"""Seconds a process waits after claiming a run before it reads the claim back."""


def interval() -> float:
    """Seconds between two beats.

    Returns:
        ``$ZOO_HEARTBEAT_S`` or `HEARTBEAT_S`.
    """
    return float(os.environ.get("ZOO_HEARTBEAT_S") or HEARTBEAT_S)


def stale_after() -> float:
    """Seconds of silence after which a run on another host counts as dead.

    Returns:
        `STALE_AFTER_BEATS` beats.
    """
    return STALE_AFTER_BEATS * interval()


@dataclass(frozen=True)
class Owner:
    """The process that writes a run.

    Attributes:
        host: Its host name.
        pid: Its process id there.
        token: Random, new for every claim: two claims from one process differ.
    """

    host: str
    pid: int
    token: str

    @classmethod
    def here(cls) -> Owner:
        """This process, with a new token.

        Returns:
            The owner.
        """
        return cls(socket.gethostname(), os.getpid(), secrets.token_hex(4))

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """Read an owner tag back.

        Args:
            text: The tag's value, ``HOST PID TOKEN``.

        Returns:
            The owner, or ``None`` for a missing or malformed tag.
        """
        parts = (text or "").split()
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])

    def __str__(self) -> str:
        return f"{self.host} {self.pid} {self.token}"

    def is_alive_here(self) -> bool | None:
        """Whether the owner's process runs, when it is on this host.

        Returns:
            True or False on this host; ``None`` for another host (the heartbeat decides).
        """
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it exists
            return True
        return True


def beat_time(seconds: float) -> str:
    """A heartbeat's value: the time in UTC, readable on a run's record.

    Args:
        seconds: Unix time.

    Returns:
        Such as ``2026-12-08T02:13:17.123+00:00`` (ISO 8601, milliseconds).
    """
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def parse_beat_time(text: str | None) -> float | None:
    """Read a heartbeat back: `beat_time`'s form, or the Unix seconds that runs logged before hold.

    Args:
        text: The tag's value.

    Returns:
        Unix time, or ``None`` for a missing or unreadable tag.
    """
    if text is None:
        return None
    with contextlib.suppress(ValueError):
        return float(text)
    with contextlib.suppress(ValueError):
        moment = datetime.fromisoformat(text)
        return moment.timestamp() if moment.tzinfo is not None else None
    return None


def beat(client: MlflowClient, run_id: str, owner: Owner | None = None) -> None:
    """Write the time into the run's heartbeat tag (and, for a shared run, who beat).

    Args:
        client: An `MlflowClient`.
        run_id: The MLflow run's id.
        owner: Also write this process as the owner (a sweep's parent, which any of its
            processes keeps alive).
    """
    client.set_tag(run_id, HEARTBEAT_TAG, beat_time(time.time()))
    if owner is not None:
        client.set_tag(run_id, OWNER_TAG, str(owner))


@contextlib.contextmanager
def beating(client: MlflowClient, run_id: str | None, owner: Owner | None = None) -> Iterator[None]:
    """Beat now and then every `interval` seconds from a daemon thread until the body ends.

    Args:
        client: An `MlflowClient` of the run's store.
        run_id: The run; ``None`` beats nothing.
        owner: As for `beat`.

    Yields:
        Nothing.
    """
    if not run_id:
        yield
        return
    beat(client, run_id, owner)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval()):
            with contextlib.suppress(Exception):  # a busy store misses one beat, not the run
                beat(client, run_id, owner)

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
    seconds = parse_beat_time(read_tag(run.data.tags, HEARTBEAT_TAG))
    return seconds if seconds is not None else (run.info.start_time or 0) / 1000.0


def why_dead(run: Run, older_than: float | None = None) -> str | None:
    """Why a RUNNING run counts as dead, or ``None`` while its process lives.

    Args:
        run: An `mlflow.entities.Run`.
        older_than: Seconds of silence that make a run on another host dead; default `stale_after`.

    Returns:
        One line such as ``"its process 4242 on this host is gone"``, or ``None``.
    """
    if run.info.status != "RUNNING":
        return None
    owner = Owner.parse(read_tag(run.data.tags, OWNER_TAG))
    alive = owner.is_alive_here() if owner else None
    if owner is not None and alive is False:
        return f"its process {owner.pid} on this host is gone"
    age = time.time() - last_sign_of_life(run)
    limit = stale_after() if older_than is None else older_than
    if alive is None and age > limit:
        return f"no heartbeat for {age:.0f} s"
    return None


def claim(client: MlflowClient, run: Run, settle_s: float = CLAIM_SETTLE_S) -> Owner:
    """Make this process the one writer of a run, or refuse in one line.

    A run with a live owner is refused. Otherwise this process writes itself as
    owner (with a heartbeat), waits `settle_s`, and reads the tag back: of two
    processes that claim at the same moment, the later write wins and the other
    one sees it and backs off. The claim lasts while the heartbeat beats; it ends
    with the process.

    Args:
        client: An `MlflowClient` of the run's store.
        run: The run, freshly read.
        settle_s: Seconds between writing the claim and reading it back.

    Returns:
        This process as the run's owner.

    Raises:
        TrackingError: If another live process owns the run, or claims it at the same moment.
    """
    run_id = run.info.run_id
    current = Owner.parse(read_tag(run.data.tags, OWNER_TAG))
    if run.info.status == "RUNNING" and why_dead(run) is None:
        where = f"process {current.pid} on {current.host}" if current else "another process"
        raise TrackingError(
            f"run {run_id} is RUNNING in {where} (heartbeat {time.time() - last_sign_of_life(run):.0f} s "
            f"ago); wait for it to end or stop it (Ctrl-C or SIGTERM) before resuming it"
        )
    me = Owner.here()
    client.set_tag(run_id, OWNER_TAG, str(me))
    beat(client, run_id)
    time.sleep(settle_s)
    now = Owner.parse(client.get_run(run_id).data.tags.get(OWNER_TAG))
    if now != me:
        where = f"process {now.pid} on {now.host}" if now else "another process"
        raise TrackingError(f"run {run_id} is being resumed by {where} at the same moment; one resume at a time")
    return me


def stale_runs(
    client: MlflowClient, older_than: float | None = None, experiment_ids: list[str] | None = None
) -> list[tuple[Run, float, str]]:
    """RUNNING runs whose process is gone (this host) or silent too long (another host).

    Args:
        client: An `MlflowClient`.
        older_than: Seconds without a heartbeat that make a run dead; default `stale_after`.
        experiment_ids: Experiments to look in; all when ``None``.

    Returns:
        ``(run, seconds since its last heartbeat, why it is dead)``, oldest first.
    """
    ids = experiment_ids if experiment_ids is not None else [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    now = time.time()
    found = []
    for run in client.search_runs(ids, filter_string="attributes.status = 'RUNNING'", max_results=5000):
        reason = why_dead(run, older_than)
        if reason is not None:
            found.append((run, now - last_sign_of_life(run), reason))
    return sorted(found, key=lambda item: -item[1])


def mark_killed(client: MlflowClient, run_id: str, reason: str) -> None:
    """Mark a dead run KILLED, saying why in a tag.

    Args:
        client: An `MlflowClient`.
        run_id: The MLflow run's id.
        reason: Why it is dead, as `why_dead` says it.
    """
    client.set_tag(run_id, KILLED_REASON_TAG, f"{reason} (zoo runs --mark-stale)")
    client.set_terminated(run_id, "KILLED")
