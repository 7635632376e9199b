"""The MLflow store: which one, reached in seconds or refused in one line, created once.

The default store is a SQLite file ``mlflow.db`` in the runs folder (`runs_folder`:
``$ZOO_RUNS_DIR``, else ``./zoo-runs/``), created on first use, with the artifacts and the
study storage beside it, so that a first run leaves one folder in the working directory. A
``./mlflow.db`` already here is a store in use: it stays the default. The URI is explicit and
absolute (Lightning's logger would otherwise fall back to a file store, which MLflow refuses).

`open_store` runs once per process and store, before anything else touches it:

- a tracking server (``http://``) is asked for its ``/health`` first, so one that
  is down, or accepts and never answers, costs one line in seconds instead of
  MLflow's minutes of retries; then for one experiment, with HTTP basic auth from the
  URL's user part or ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (or
  ``MLFLOW_TRACKING_TOKEN``), so that missing or wrong credentials are one line too;
- a PostgreSQL or MySQL store is connected to once, with a short timeout, so that a
  server that is down or a password it refuses is one line, not MLflow's 50 s of
  retries and a traceback (`check_database`, which the study storage uses too);
- a SQLite file must sit in a folder that exists (the folder is never created),
  be a SQLite database holding MLflow's tables (a corrupt, truncated or foreign
  file is refused, never "repaired"), and a read-only one is opened for reading
  without the lock below;
- a new SQLite store is created and migrated by one process at a time: two
  processes doing it at once collide ("table already exists", "database is locked").
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
import sqlalchemy
from filelock import FileLock
from mlflow.tracking import MlflowClient

from experiments.config.secrets import mask_text, mask_uri
from experiments.tracking.errors import TrackingError

HEALTH_TIMEOUT_S = 5.0
"""Seconds to wait for a server's ``/health`` answer (``$ZOO_TRACKING_TIMEOUT`` overrides)."""

DB_CONNECT_TIMEOUT_S = 10
"""Seconds to wait for a PostgreSQL or MySQL server to accept a connection (``$ZOO_TRACKING_TIMEOUT`` overrides)."""

DATABASE_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "mssql")
"""SQLAlchemy URL schemes of database servers (a driver may follow: ``postgresql+psycopg2://``)."""

LOCK_TIMEOUT_S = 300.0
"""Seconds to wait for another process creating a SQLite store (its migration takes seconds)."""

RUNS_DIR_ENV = "ZOO_RUNS_DIR"
"""The variable that names the runs folder (default `RUNS_DIR` in the working directory)."""

RUNS_DIR = "zoo-runs"
"""The runs folder's default name: the MLflow store, its artifacts and the study storage."""

STORE_FILE = "mlflow.db"
"""The SQLite file of the default MLflow store."""

ARTIFACTS_DIR = "mlruns"
"""The folder beside a SQLite store that holds the artifacts of the experiments the zoo creates there."""

_READY: set[str] = set()


def runs_folder() -> Path:
    """The folder the zoo keeps its stores in when none is named: ``$ZOO_RUNS_DIR``, else ``./zoo-runs``.

    Returns:
        The folder, absolute (it may not exist yet: the first run makes it).
    """
    return Path(os.environ.get(RUNS_DIR_ENV) or RUNS_DIR).expanduser().absolute()


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking store to use: the argument, ``$MLFLOW_TRACKING_URI``, or the default store.

    The default is ``./mlflow.db`` where one is already in use (and ``$ZOO_RUNS_DIR`` is not
    set), else ``mlflow.db`` in `runs_folder`.

    Args:
        uri: An explicit URI, or ``None``.

    Returns:
        The URI.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    here = Path.cwd() / STORE_FILE
    if here.exists() and not os.environ.get(RUNS_DIR_ENV):  # a store in use where it is keeps working
        return "sqlite:///" + str(here)
    return "sqlite:///" + str(runs_folder() / STORE_FILE)


def make_runs_folder() -> Path:
    """Create `runs_folder` (with its parents) if it does not exist.

    Returns:
        The folder.

    Raises:
        TrackingError: It cannot be made (a file of that name, no permission).
    """
    folder = runs_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(
            f"cannot make the runs folder {folder} ({exc.strerror or exc}); set {RUNS_DIR_ENV} to a writable "
            f"folder, or pass --tracking-uri"
        ) from None
    return folder


def make_default_folder(path: Path) -> None:
    """Make a SQLite file's folder when it is `runs_folder`: made on first use; any other folder must exist.

    The MLflow store and the study storage both call it: whichever opens first makes the folder.

    Args:
        path: A SQLite file (the MLflow store's or the study storage's).

    Raises:
        TrackingError: The runs folder cannot be made (see `make_runs_folder`).
    """
    if path.parent == runs_folder():
        make_runs_folder()


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment's artifacts go: ``mlruns/NAME`` beside a SQLite store, so the store stays whole.

    MLflow's own default is ``./mlruns`` in whatever folder the process runs in, which would
    scatter one store's artifacts over every working directory it is used from. Experiments
    whose names differ only in odd characters share a folder; their runs' ids keep them apart.

    Args:
        uri: The resolved tracking URI.
        experiment: The experiment's name.

    Returns:
        The folder, or ``None`` (MLflow's default) for a server or a database server's store.
    """
    path = sqlite_path(uri)
    if path is None:
        return None
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).lstrip(".") or "experiment"
    return str(path.parent / ARTIFACTS_DIR / folder)


def get_client(uri: str | None = None) -> MlflowClient:
    """An `MlflowClient` for the store (checked first), with MLflow's fluent API pointed at it too.

    Args:
        uri: Tracking URI, resolved with `resolve_tracking_uri`.

    Returns:
        The client.

    Raises:
        TrackingError: If the store cannot be used (see `open_store`).
    """
    resolved = open_store(uri)
    mlflow.set_tracking_uri(resolved)
    return MlflowClient(tracking_uri=resolved)


def open_store(uri: str | None = None) -> str:
    """Check a store once per process, and create a new SQLite one; see the module's docstring.

    Args:
        uri: Tracking URI, resolved with `resolve_tracking_uri`.

    Returns:
        The resolved URI.

    Raises:
        TrackingError: A server that does not answer, a SQLite path in a folder that does not
            exist, a file that is not a readable MLflow store.
    """
    resolved = resolve_tracking_uri(uri)
    if resolved in _READY:
        return resolved
    check_file_store(resolved)
    check_tracking_server(resolved)
    if is_database_server(resolved):
        check_database(resolved, "tracking store", "--tracking-uri")
    path = sqlite_path(resolved)
    if path is not None:
        make_default_folder(path)
        check_sqlite_file(resolved, path)
        try:
            if path.is_file() and path.stat().st_size and not writable(path):
                MlflowClient(tracking_uri=resolved).search_experiments(max_results=1)  # reads only: no lock
            else:
                ensure_store(resolved)
        except TrackingError:
            raise
        except Exception as exc:  # SQLAlchemy and MLflow wrap a damaged file in many types
            detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise TrackingError(
                f"tracking store {path} cannot be read as an MLflow store ({mask_text(detail)}); "
                f"restore it from a backup, or pass another --tracking-uri"
            ) from None
    _READY.add(resolved)
    return resolved


def check_file_store(uri: str) -> None:
    """Refuse a file store (``file:///path/mlruns`` or a bare path) in one line, as MLflow would in a traceback.

    MLflow 3.17 raises on its filesystem backend unless ``MLFLOW_ALLOW_FILE_STORE=true``; the
    zoo says so before any run starts, with the way out.

    Args:
        uri: The resolved tracking URI.

    Raises:
        TrackingError: A file store, unless ``MLFLOW_ALLOW_FILE_STORE`` is ``true``.
    """
    if urllib.parse.urlsplit(uri).scheme not in ("", "file"):
        return
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() == "true":
        return
    raise TrackingError(
        f"tracking store {mask_uri(uri)} is a file store, which MLflow {mlflow.__version__} no longer opens; "
        f"pass --tracking-uri sqlite:///PATH/mlflow.db (`mlflow migrate-filestore` moves old runs into one), "
        f"or set MLFLOW_ALLOW_FILE_STORE=true"
    )


def require_writable(uri: str | None = None) -> str:
    """Check a store for a command that writes to it (train, resume, eval, register).

    Args:
        uri: Tracking URI, resolved with `resolve_tracking_uri`.

    Returns:
        The resolved URI.

    Raises:
        TrackingError: As `open_store`, or if it is a SQLite file this process may not write.
    """
    resolved = open_store(uri)
    path = sqlite_path(resolved)
    if path is not None and path.is_file() and not writable(path):
        raise TrackingError(
            f"tracking store {path} is read-only here; training and evaluation write to it: make it "
            f"writable, or pass another --tracking-uri (reading it with zoo compare works)"
        )
    return resolved


def writable(path: Path) -> bool:
    """Whether this process may write a SQLite file (SQLite also writes a journal beside it).

    Args:
        path: The database file.

    Returns:
        True when both the file and its folder are writable.
    """
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def check_sqlite_file(uri: str, path: Path) -> None:
    """Refuse a SQLite store path that MLflow would otherwise create, damage or misread.

    Args:
        uri: The tracking URI, for the message.
        path: Its database file.

    Raises:
        TrackingError: Its folder does not exist, or the file is not a SQLite database with
            MLflow's tables.
    """
    fix = "pass --tracking-uri sqlite:///PATH/mlflow.db with an existing folder, or http://HOST:PORT"
    if not path.parent.is_dir():
        raise TrackingError(f"tracking store {mask_uri(uri)}: its folder {path.parent} does not exist; {fix}")
    if path.is_dir():
        raise TrackingError(f"tracking store {mask_uri(uri)}: {path} is a folder, not a SQLite file; {fix}")
    if not path.is_file() or path.stat().st_size == 0:
        return  # a new store: MLflow creates it
    with open(path, "rb") as handle:
        header = handle.read(16)
    if header != b"SQLite format 3\x00":
        raise TrackingError(
            f"tracking store {path} is not a SQLite database; point --tracking-uri at an MLflow "
            f"store (or move the file away and start a new one)"
        )
    # Read-write where allowed (never created here): a process killed in a write leaves a hot journal, which
    # only a connection that may write rolls back; a read-only one would call the whole store unreadable.
    mode = "rw" if writable(path) else "ro"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=10)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise TrackingError(
            f"tracking store {path} cannot be read as a SQLite database ({exc}); restore it from a "
            f"backup, or pass another --tracking-uri"
        ) from None
    if tables and not {"experiments", "runs", "alembic_version"} <= tables:
        raise TrackingError(
            f"tracking store {path} is a SQLite database without MLflow's tables; point "
            f"--tracking-uri at an MLflow store"
        )


def check_tracking_server(uri: str, timeout: float | None = None) -> None:
    """Ask an ``http(s)://`` tracking server's ``/health``, then whether it lets this client in.

    Other stores pass unchecked. The credentials are sent as MLflow's client sends
    them (see `auth_header`); a server without authentication answers either way.

    Args:
        uri: The tracking URI.
        timeout: Seconds to wait for the connection and each answer.

    Raises:
        TrackingError: The server refuses, does not answer in time, answers with an error, or
            refuses the credentials (HTTP 401) or their user (HTTP 403).
    """
    if not uri.startswith(("http://", "https://")):
        return
    timeout = float(timeout or os.environ.get("ZOO_TRACKING_TIMEOUT") or HEALTH_TIMEOUT_S)
    base, header = auth_header(uri)
    shown = mask_uri(uri)
    fix = "start it (`zoo ui` or `mlflow server`), or pass another --tracking-uri"
    status = _get(base + "/health", {}, timeout, shown, fix)
    if status != 200:
        raise TrackingError(f"tracking server {shown} answered /health with HTTP {status}; {fix}")
    status = _get(base + "/api/2.0/mlflow/experiments/search?max_results=1", header, timeout, shown, fix)
    if status == 401:
        given = "the credentials given were refused" if header else "it needs credentials"
        raise TrackingError(
            f"tracking server {shown} answered HTTP 401 ({given}); set MLFLOW_TRACKING_USERNAME and "
            f"MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account of that server"
        )
    if status == 403:
        raise TrackingError(
            f"tracking server {shown} answered HTTP 403 (this user may not read it); ask its admin for a "
            f"permission, or use another account"
        )


def _get(url: str, headers: dict[str, str], timeout: float, shown: str, fix: str) -> int:
    """The HTTP status of a GET, or a `TrackingError` naming the server when none comes."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, unknown host, timed out, bad URL
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            reason = f"no answer within {timeout:g} s"
        raise TrackingError(f"tracking server {shown} cannot be reached ({mask_text(str(reason))}); {fix}") from None


def auth_header(uri: str) -> tuple[str, dict[str, str]]:
    """A server's URL without its user part, and the ``Authorization`` header MLflow's client would send.

    Credentials come from the URL's user part (``http://user:password@host:5000``), else
    ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` (HTTP basic auth), else
    ``MLFLOW_TRACKING_TOKEN`` (a bearer token).

    Args:
        uri: An ``http(s)://`` tracking URI.

    Returns:
        ``(base URL, headers)``; the headers are empty without credentials.
    """
    parts = urllib.parse.urlsplit(uri.rstrip("/"))
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address goes back into brackets
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    user = urllib.parse.unquote(parts.username) if parts.username else os.environ.get("MLFLOW_TRACKING_USERNAME")
    if parts.username:
        password = urllib.parse.unquote(parts.password or "")
    else:
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return base, {"Authorization": f"Basic {token}"}
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return base, {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    return base, {}


def is_database_server(uri: str) -> bool:
    """Whether a URI names a database server (PostgreSQL, MySQL, ...), not a file or an HTTP server.

    Args:
        uri: A tracking URI or study storage URL.

    Returns:
        True for ``postgresql://``, ``postgresql+psycopg2://``, ``mysql+pymysql://`` and the like.
    """
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    return scheme in DATABASE_SCHEMES


def check_database(uri: str, what: str, option: str, timeout: float | None = None) -> None:
    """Connect to a database server once, with a short timeout, before any work uses it.

    Args:
        uri: Its SQLAlchemy URL (a password in it, or from ``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE``).
        what: What it is, for the message (``tracking store``, ``study storage``).
        option: The option that names it (``--tracking-uri``, ``--storage``).
        timeout: Seconds to wait for the connection.

    Raises:
        TrackingError: In one line, the host with its password masked and the fix: no driver, the
            server cannot be reached, or it refuses the user or password.
    """
    timeout = int(float(timeout or os.environ.get("ZOO_TRACKING_TIMEOUT") or DB_CONNECT_TIMEOUT_S))
    shown = mask_uri(uri)
    try:
        engine = sqlalchemy.create_engine(
            uri, connect_args={"connect_timeout": max(1, timeout)}, poolclass=sqlalchemy.pool.NullPool
        )
    except Exception as exc:  # no such dialect or driver, a malformed URL
        raise TrackingError(
            f"{what} {shown} cannot be used ({mask_text(_first_line(exc))}); check the URL (and install the "
            f"database's driver, such as psycopg2-binary), or pass another {option}"
        ) from None
    try:
        with engine.connect():
            pass
    except Exception as exc:  # the driver's OperationalError: refused, unknown host, timed out, authentication
        detail = mask_text(_first_line(getattr(exc, "orig", None) or exc))
        if "password" in detail or "authentication" in detail:
            fix = (
                "give the right user and password (PGPASSWORD, ~/.pgpass or PGSERVICE keep it out of the URL), "
                f"or pass another {option}"
            )
        else:
            fix = f"start the database server, check its host and port, or pass another {option}"
        raise TrackingError(f"{what} {shown} cannot be reached ({detail}); {fix}") from None
    finally:
        engine.dispose()


def _first_line(exc: object) -> str:
    """An error's first non-empty line, cut to 200 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI.

    Args:
        uri: A tracking URI.

    Returns:
        The file, or ``None`` for other stores (and in-memory SQLite).
    """
    if not uri.startswith("sqlite:///") or uri.rstrip("/").endswith(":memory:"):
        return None
    return Path(uri[len("sqlite:///") :])


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
