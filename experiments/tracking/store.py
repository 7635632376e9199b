"""The MLflow store: which one, reached in seconds or refused in one line, created once.

The default store is MLflow's own default, a SQLite file ``mlflow.db`` in the
working directory, given as an explicit absolute URI (Lightning's logger would
otherwise fall back to a file store, which current MLflow refuses). A tracking
server (``http://``) is asked for its ``/health`` first, so an unreachable one
costs one line in seconds instead of MLflow's minutes of retries. A new SQLite
store is created and migrated by one process at a time: two processes doing it
at once collide ("table already exists", "database is locked").
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
from filelock import FileLock
from mlflow.tracking import MlflowClient

from experiments.tracking.errors import TrackingError

HEALTH_TIMEOUT_S = 5.0
"""Seconds to wait for a server's ``/health`` answer (``$ZOO_TRACKING_TIMEOUT`` overrides)."""

LOCK_TIMEOUT_S = 300.0
"""Seconds to wait for another process creating a SQLite store (its migration takes seconds)."""

_READY: set[str] = set()


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking store to use: the argument, ``$MLFLOW_TRACKING_URI``, or ``mlflow.db`` here.

    Args:
        uri: An explicit URI, or ``None``.

    Returns:
        The URI.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return "sqlite:///" + str(Path.cwd() / "mlflow.db")


def get_client(uri: str | None = None) -> MlflowClient:
    """An `MlflowClient` for the store, with MLflow's fluent API pointed at it too.

    Args:
        uri: Tracking URI, resolved with `resolve_tracking_uri`.

    Returns:
        The client.
    """
    resolved = resolve_tracking_uri(uri)
    ensure_store(resolved)
    mlflow.set_tracking_uri(resolved)
    return MlflowClient(tracking_uri=resolved)


def check_tracking_server(uri: str, timeout: float | None = None) -> None:
    """Ask an ``http(s)://`` tracking server's ``/health`` endpoint; other stores pass unchecked.

    Args:
        uri: The tracking URI.
        timeout: Seconds to wait for the connection and the answer.

    Raises:
        TrackingError: The server refuses, does not answer in time, or answers with an error.
    """
    if not uri.startswith(("http://", "https://")):
        return
    timeout = float(timeout or os.environ.get("ZOO_TRACKING_TIMEOUT") or HEALTH_TIMEOUT_S)
    url = uri.rstrip("/") + "/health"
    fix = "start it (`zoo ui` or `mlflow server`), or pass another --tracking-uri"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - the scheme is checked above
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:  # refused, unknown host, timed out
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            reason = f"no answer within {timeout:g} s"
        raise TrackingError(f"tracking server {uri} cannot be reached ({reason}); {fix}") from None
    if status != 200:
        raise TrackingError(f"tracking server {uri} answered /health with HTTP {status}; {fix}")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI.

    Args:
        uri: A tracking URI.

    Returns:
        The file, or ``None`` for other stores (and in-memory SQLite).
    """
    if not uri.startswith("sqlite:///") or uri.rstrip("/").endswith(":memory:"):
        return None
    return Path(uri[len("sqlite:///"):])


def is_busy(exc: BaseException) -> bool:
    """Whether an error is SQLite's "another writer" (worth retrying).

    Args:
        exc: The error.

    Returns:
        True for "database is locked" and table-creation races.
    """
    text = str(exc).lower()
    return "database is locked" in text or "already exists" in text


def ensure_store(uri: str, attempts: int = 20) -> None:
    """Create and migrate a SQLite store under a file lock (once per process and URI).

    Args:
        uri: The tracking URI; other stores return at once.
        attempts: Tries while SQLite reports another writer.
    """
    path = sqlite_path(uri)
    if path is None or uri in _READY:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        for attempt in range(attempts):
            try:
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates and migrates the tables
                break
            except Exception as exc:  # MLflow wraps SQLAlchemy's OperationalError in several types
                if not is_busy(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
    _READY.add(uri)
