"""A new SQLite MLflow store, created once even when several processes start at the same moment.

MLflow creates and migrates a SQLite store's tables on first use; two processes
doing it at once collide ("table already exists", "database is locked"). The
first use in each process therefore happens under a file lock next to the
database, and is retried while another process holds SQLite's write lock.
"""

from __future__ import annotations

import time
from pathlib import Path

_READY: set[str] = set()

LOCK_TIMEOUT_S = 300.0
"""Seconds to wait for another process creating the store (its migration takes seconds)."""


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
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

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
