"""Real servers for tests: a throwaway PostgreSQL 15 and a real ``mlflow server``.

Two context managers do the work and three pytest fixtures wrap them::

    with postgres_server(tmp_path / "pg") as pg:              # pg.url: postgresql+psycopg2://postgres@127.0.0.1:PORT/zoo
        with mlflow_server(pg.url, tmp_path / "mlflow") as ml:  # ml.url: http://127.0.0.1:PORT
            MlflowClient(tracking_uri=ml.url).create_experiment("x")
            psycopg2.connect(pg.dsn)                             # pg.dsn: postgresql://postgres@127.0.0.1:PORT/zoo

    pytest_plugins = ["servers"]   # in the test module, or once in tests/conftest.py

    def test_something(mlflow_server_postgres: str): ...       # the tracking URI, as a string

Process rules, the same for every server started here:

- each server runs in its own session and so its own process group
  (``start_new_session=True``); the group's id is the leader's pid (``Server.pgid``);
- its output goes to a log file in the given folder, never to a pipe (a full pipe
  blocks a server), and a failed start raises :class:`ServerStartError` with the
  log's tail;
- on leaving the ``with`` block, however it is left (the test passed, failed, or
  was interrupted by an exception such as pytest-timeout's signal method), the whole
  group gets SIGTERM, then SIGKILL after a grace period, and the call returns only
  once no live process of the group is left. The leader's descendants get the same
  signals: PostgreSQL puts each child of the postmaster in a group of its own.

PostgreSQL refuses to run as root: when the tests run as root, ``initdb``,
``postgres`` and ``pg_ctl`` run as the ``postgres`` system user. That user cannot
enter pytest's ``tmp_path`` (``/tmp/pytest-of-root`` is mode 0700), so the data
folder lives in its own ``mkdtemp`` folder under ``/tmp``, owned by ``postgres`` and
removed afterwards; only the logs go to the test's folder (written through file
descriptors the test process opens).

Missing prerequisites (no PostgreSQL binaries, no ``postgres`` user, no psycopg2)
raise :class:`ServerUnavailable`; the fixtures turn that into ``pytest.skip`` with
the reason.

The URL names its driver, ``postgresql+psycopg2://``: SQLAlchemy 2.1 (what MLflow
3.17 installs) maps a bare ``postgresql://`` to psycopg 3, not psycopg2. libpq
clients (psycopg2.connect, psql) take ``Server.dsn``, the same URL without ``+psycopg2``.

Times measured on two busy cores: PostgreSQL starts in about 1.5-2.5 s (initdb with
``--no-sync``, the server, createdb) and stops in 0.2 s; an MLflow server starts in
about 8-13 s on either backend (imports, then the migration of the new store) and
stops in about 1.5 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

__all__ = [
    "POSTGRES_BIN_DIRS",
    "Server",
    "ServerStartError",
    "ServerUnavailable",
    "find_postgres_bin",
    "free_port",
    "group_members",
    "mlflow_server",
    "mlflow_server_postgres",
    "mlflow_server_sqlite",
    "postgres_server",
    "postgres_url",
    "process_group_alive",
    "server_processes",
    "sqlite_uri",
    "still_running",
    "stop_process_group",
]

#: Where the PostgreSQL binaries are looked for, in order; ``ZOO_POSTGRES_BIN`` (a
#: folder) comes first when set. Debian's folder holds all of them; /usr/local/bin
#: on the project's machines only links initdb, pg_ctl and postgres.
POSTGRES_BIN_DIRS: tuple[str, ...] = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")
POSTGRES_TOOLS = ("initdb", "postgres", "pg_ctl", "pg_isready", "createdb")
POSTGRES_USER = "postgres"

STOP_GRACE_S = 5.0
LOG_TAIL_CHARS = 4000


class ServerUnavailable(RuntimeError):
    """A prerequisite of a server is missing on this machine (the fixtures skip)."""


class ServerStartError(RuntimeError):
    """A server did not start in time or exited; the message ends with its log's tail."""


@dataclass(frozen=True)
class Server:
    """A running server: where to reach it, its process group and its log.

    ``url`` is what clients take; ``pid`` the leader's pid, which is also the id of
    its process group and session; ``log`` its log file; ``folder`` its own folder
    (PostgreSQL: the data root under /tmp, removed on exit; MLflow: the folder given,
    with ``artifacts/`` in it). ``str(server)`` is its URL.
    """

    url: str
    pid: int
    log: Path
    folder: Path
    dsn: str | None = None  # PostgreSQL only: the libpq form of ``url`` (for psycopg2.connect, psql)
    password: str | None = None  # PostgreSQL with a password only: not in ``url`` or ``dsn``

    @property
    def pgid(self) -> int:
        """The server's process group: its leader was started in a new session."""
        return self.pid

    def __str__(self) -> str:
        return self.url


# -- processes ------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Proc(NamedTuple):
    state: str
    ppid: int
    pgrp: int
    starttime: int  # clock ticks after boot: tells a reused pid from the process that had it


def _proc_table() -> dict[int, _Proc]:
    """Every process in /proc, zombies included: pid -> state, parent, group, start time."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:  # it exited meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        table[int(entry)] = _Proc(fields[0], int(fields[1]), int(fields[2]), int(fields[19]))
    return table


def _is_live(proc: _Proc | None) -> bool:
    # Zombies count as gone: an orphan of a killed server waits for PID 1 to reap it,
    # which can take a while in a container, but it holds no port, file or memory.
    return proc is not None and proc.state not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Return the pids of the live (not zombie) processes in process group ``pgid``."""
    if not os.path.isdir("/proc"):  # not Linux: only "some process is in the group"
        return [pgid] if _signal_group(pgid, 0) else []
    return sorted(pid for pid, proc in _proc_table().items() if proc.pgrp == pgid and _is_live(proc))


def server_processes(pid: int) -> dict[int, int]:
    """Return the live processes of the server that ``pid`` leads: its group and all its descendants.

    Both, because PostgreSQL moves every child of the postmaster into a process group
    of its own (``setsid``), so ``killpg`` of the postmaster's group misses them.

    Args:
        pid: The server's leader (the process this module started in a new session).

    Returns:
        pid -> start time (clock ticks after boot) of each, to tell a reused pid apart later.
    """
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, proc in table.items():
        children.setdefault(proc.ppid, []).append(child)
    found = {p for p, proc in table.items() if proc.pgrp == pid}
    todo = [pid]
    while todo:
        parent = todo.pop()
        if parent in table:
            found.add(parent)
        for child in children.get(parent, ()):
            if child not in found:
                todo.append(child)
    return {p: table[p].starttime for p in found if _is_live(table[p])}


def still_running(processes: dict[int, int]) -> list[int]:
    """Return those of ``processes`` (from :func:`server_processes`) that are still alive (not zombies).

    Args:
        processes: pid -> start time, as :func:`server_processes` gives them.
    """
    table = _proc_table()
    return sorted(pid for pid, start in processes.items() if _is_live(table.get(pid)) and table[pid].starttime == start)


def process_group_alive(pgid: int) -> bool:
    """Return whether any live process is left in process group ``pgid``."""
    return bool(group_members(pgid))


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):  # gone, or a reused id that is not ours
        return False


def stop_process_group(
    proc: subprocess.Popen, grace: float = STOP_GRACE_S, known: dict[int, int] | None = None
) -> None:
    """Stop a server's processes: SIGTERM to its group and descendants, SIGKILL after ``grace`` s.

    Returns once the leader is reaped and none of the group's or the leader's
    descendants' processes (as seen at any point while stopping) is alive; raises
    ``RuntimeError`` if even SIGKILL leaves one (it should not happen).

    Args:
        proc: A process started with ``start_new_session=True`` (its pid is the group's id).
        grace: Seconds to wait after SIGTERM (and again after SIGKILL).
        known: More processes of the server (pid -> start time, from :func:`server_processes`),
            taken while the leader was alive: once it is gone, its orphans are no longer
            its descendants.
    """
    pgid = proc.pid
    seen: dict[int, int] = dict(known or {})
    for sig in (signal.SIGTERM, signal.SIGKILL):
        seen.update(server_processes(pgid))
        _signal_group(pgid, sig)
        for pid in still_running(seen):
            if pid != pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while True:
            proc.poll()  # reap the leader as soon as it exits
            seen.update(server_processes(pgid))  # children forked meanwhile
            if proc.returncode is not None and not still_running(seen) and not group_members(pgid):
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    raise RuntimeError(f"processes of group {pgid} still alive after SIGKILL: {still_running(seen)}")


def _spawn(
    argv: Sequence[str | os.PathLike], log: Path, *, env: dict[str, str], cwd: Path, user: tuple[int, int] | None = None
) -> subprocess.Popen:
    """Start a server in a new session, its stdout and stderr appended to ``log``."""
    kwargs: dict = {}
    if user is not None:
        kwargs.update(user=user[0], group=user[1], extra_groups=[])
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [os.fspath(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            **kwargs,
        )


def _run(
    argv: Sequence[str | os.PathLike],
    log: Path,
    *,
    env: dict[str, str],
    cwd: Path,
    user: tuple[int, int] | None = None,
    timeout: float = 60.0,
) -> int:
    """Run a short command to completion (in its own group, killed on timeout); return its status."""
    proc = _spawn(argv, log, env=env, cwd=cwd, user=user)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1
    finally:
        if proc.poll() is None or group_members(proc.pid):
            stop_process_group(proc, grace=2.0)


def _tail(log: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError as err:
        return f"(no log: {err})"
    return text[-chars:] if text else "(log is empty)"


def _fail(what: str, log: Path) -> ServerStartError:
    return ServerStartError(f"{what}; last lines of {log}:\n{_tail(log)}")


def _port_taken(log: Path) -> bool:
    text = _tail(log, 2000).lower()
    return "address already in use" in text or "could not bind" in text or "errno 98" in text


# -- PostgreSQL -----------------------------------------------------------------------


def find_postgres_bin(dirs: Sequence[str] | None = None) -> Path:
    """Return the first folder that holds all of initdb, postgres, pg_ctl, pg_isready, createdb.

    Args:
        dirs: Folders to look in; by default ``$ZOO_POSTGRES_BIN``, then
            :data:`POSTGRES_BIN_DIRS`, then the folder of ``pg_config --bindir``'s answer
            if ``pg_config`` is on PATH.

    Returns:
        The folder.

    Raises:
        ServerUnavailable: No folder holds them all; the message names what is missing.
    """
    if dirs is None:
        dirs = [d for d in (os.environ.get("ZOO_POSTGRES_BIN"), *POSTGRES_BIN_DIRS) if d]
        pg_config = shutil.which("pg_config")
        if pg_config:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                dirs.append(
                    subprocess.run(
                        [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
                    ).stdout.strip()
                )
    missing_by_dir = {}
    for d in dirs:
        missing = [t for t in POSTGRES_TOOLS if not os.access(os.path.join(d, t), os.X_OK)]
        if not missing:
            return Path(d)
        missing_by_dir[d] = missing
    detail = "; ".join(f"{d} lacks {', '.join(m)}" for d, m in missing_by_dir.items()) or "no folder to look in"
    raise ServerUnavailable(
        f"PostgreSQL server binaries not found (need {', '.join(POSTGRES_TOOLS)} in one folder: {detail}). "
        "Install them (Debian: apt-get install postgresql-15) or set ZOO_POSTGRES_BIN to their folder."
    )


def _postgres_identity() -> tuple[int, int] | None:
    """The (uid, gid) to run PostgreSQL as: the postgres user when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        raise ServerUnavailable(
            f"running as root and there is no {POSTGRES_USER!r} system user to run "
            "PostgreSQL as (initdb and postgres refuse to run as root)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without libpq's PG* variables (they would redirect the tools)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", **extra)
    return env


@contextlib.contextmanager
def postgres_server(
    folder: str | os.PathLike,
    *,
    database: str = "zoo",
    timeout: float = 60.0,
    bin_dir: str | os.PathLike | None = None,
    password: str | None = None,
    databases: Sequence[str] = (),
) -> Iterator[Server]:
    """Run a throwaway PostgreSQL server on 127.0.0.1 for the ``with`` block.

    A fresh cluster (``initdb``, ``trust`` auth, UTF-8, C locale, fsync off) in a new
    folder under /tmp, a server on a free port and on a unix socket in that folder,
    and one database. On exit: ``pg_ctl stop -m fast``, then the process group is
    killed and the data folder removed.

    With ``password``, the ``postgres`` role gets that password and TCP connections
    need it (``scram-sha-256`` in ``pg_hba.conf``; the unix socket stays ``trust``):
    a client without it, or with another, is refused.

    Args:
        folder: Where the logs go (``postgres-initdb.log``, ``postgres.log``); created if needed.
        database: The database to create (owned by the ``postgres`` role).
        timeout: Seconds to wait for the server to accept connections.
        bin_dir: The folder of the PostgreSQL binaries; found by :func:`find_postgres_bin` if None.
        password: The ``postgres`` role's password, needed over TCP; None keeps ``trust`` auth.
        databases: More databases to create (Optuna's tables share names with MLflow's).

    Yields:
        The server; its ``url`` is ``postgresql+psycopg2://postgres@127.0.0.1:PORT/<database>``
        (a SQLAlchemy URL that MLflow and Optuna take) and its ``dsn`` the libpq form
        ``postgresql://postgres@127.0.0.1:PORT/<database>`` (for psycopg2.connect); neither
        holds the password (give it in the URL or as ``PGPASSWORD``).

    Raises:
        ServerUnavailable: The binaries (psql too, with a password) or the postgres user are missing.
        ServerStartError: initdb, the server or createdb failed (with the log's tail).
    """
    bins = Path(bin_dir) if bin_dir is not None else find_postgres_bin()
    if password is not None and not (bins / "psql").is_file():
        raise ServerUnavailable(f"a PostgreSQL server with a password needs psql, which is not in {bins}")
    identity = _postgres_identity()
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    # Not in ``folder``: the postgres user cannot enter pytest's 0700 tmp folders, and the
    # unix socket's path must stay under 108 bytes. /tmp itself is world-writable and sticky.
    root = Path(tempfile.mkdtemp(prefix="zoo-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    data = root / "data"
    env = _clean_env()
    proc: subprocess.Popen | None = None
    known: dict[int, int] = {}
    try:
        if identity is not None:
            os.chown(root, *identity)
        initdb_log = folder / "postgres-initdb.log"
        status = _run(
            [
                bins / "initdb",
                "-D",
                data,
                "-U",
                POSTGRES_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            initdb_log,
            env=env,
            cwd=root,
            user=identity,
            timeout=timeout,
        )
        if status != 0:
            raise _fail(f"initdb exited with {status}", initdb_log)

        log = folder / "postgres.log"
        for attempt in range(3):  # another process may take the free port before the server binds it
            port = free_port()
            proc = _spawn(
                [
                    bins / "postgres",
                    "-D",
                    data,
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={root}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "logging_collector=off",
                ],
                log,
                env=env,
                cwd=root,
                user=identity,
            )
            if _wait_postgres(proc, bins, port, log, env, root, time.monotonic() + timeout):
                break
            stop_process_group(proc)
            if not (_port_taken(log) and attempt < 2):
                raise _fail("PostgreSQL exited during start-up", log)
        else:  # pragma: no cover - the loop breaks or raises
            raise _fail("PostgreSQL did not start", log)

        for name in (database, *databases):
            status = _run(
                [bins / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER, name],
                log,
                env=env,
                cwd=root,
                timeout=timeout,
            )
            if status != 0:
                raise _fail(f"createdb {name} exited with {status}", log)
        if password is not None:
            _require_password(bins, data, port, password, log, env, root, identity, timeout)
        address = f"{POSTGRES_USER}@127.0.0.1:{port}/{database}"
        known = server_processes(proc.pid)
        yield Server(
            url=f"postgresql+psycopg2://{address}",
            pid=proc.pid,
            log=log,
            folder=root,
            dsn=f"postgresql://{address}",
            password=password,
        )
    finally:
        if proc is not None:
            known.update(server_processes(proc.pid))  # the postmaster's children, while it still has them
            if proc.poll() is None:  # a clean, fast shutdown first; the kill below catches the rest
                _run(
                    [bins / "pg_ctl", "stop", "-D", data, "-m", "fast", "-w", "-t", "20"],
                    folder / "postgres-stop.log",
                    env=env,
                    cwd=root,
                    user=identity,
                    timeout=30,
                )
            stop_process_group(proc, known=known)
        shutil.rmtree(root, ignore_errors=True)


def _require_password(
    bins: Path,
    data: Path,
    port: int,
    password: str,
    log: Path,
    env: dict[str, str],
    root: Path,
    identity: tuple[int, int] | None,
    timeout: float,
) -> None:
    """Give the ``postgres`` role ``password`` and make TCP clients prove it (scram-sha-256).

    The password goes to psql in a file, never on a command line; the server then
    reloads its ``pg_hba.conf``, and the call returns once a TCP client without the
    password is refused.
    """
    quoted = password.replace("'", "''")
    script = root / "password.sql"
    script.write_text(f"SET password_encryption = 'scram-sha-256';\nALTER ROLE {POSTGRES_USER} PASSWORD '{quoted}';\n")
    try:
        psql = [
            bins / "psql",
            "-X",
            "-q",
            "-w",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            POSTGRES_USER,
            "-d",
            "postgres",
        ]
        status = _run([*psql, "-v", "ON_ERROR_STOP=1", "-f", script], log, env=env, cwd=root, timeout=timeout)
    finally:
        script.unlink(missing_ok=True)
    if status != 0:
        raise _fail(f"setting the {POSTGRES_USER} role's password exited with {status}", log)
    (data / "pg_hba.conf").write_text(  # rewritten in place: it keeps its owner (postgres, when we are root)
        "local all all trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host all all ::1/128 scram-sha-256\n"
        "host replication all 127.0.0.1/32 scram-sha-256\n"
    )
    status = _run([bins / "pg_ctl", "reload", "-D", data], log, env=env, cwd=root, user=identity, timeout=timeout)
    if status != 0:
        raise _fail(f"pg_ctl reload exited with {status}", log)
    deadline = time.monotonic() + timeout
    probe = log.with_name("postgres-auth-probe.log")
    while _run([*psql, "-c", "SELECT 1"], probe, env=env, cwd=root, timeout=10) == 0:  # still trust
        if time.monotonic() > deadline:
            raise _fail("PostgreSQL still lets TCP clients in without a password after the reload", log)
        time.sleep(0.1)


def _wait_postgres(
    proc: subprocess.Popen, bins: Path, port: int, log: Path, env: dict[str, str], cwd: Path, deadline: float
) -> bool:
    """Wait until the server accepts connections (True) or exits (False); raise at the deadline."""
    probe_log = log.with_name("postgres-isready.log")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if (
            _run(
                [bins / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER],
                probe_log,
                env=env,
                cwd=cwd,
                timeout=10,
            )
            == 0
        ):
            return True
        time.sleep(0.2)
    raise _fail("PostgreSQL did not accept connections in time", log)


# -- MLflow ---------------------------------------------------------------------------


def sqlite_uri(path: str | os.PathLike) -> str:
    """Return the SQLAlchemy URI of a SQLite file (absolute: ``sqlite:////abs/path``)."""
    return f"sqlite:///{Path(path).resolve()}"


def _mlflow_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        # No huey job runner next to the server (MLflow 3 starts one by default): one
        # process less, and no temporary folder left in /dev/shm.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def mlflow_server(
    backend_uri: str,
    folder: str | os.PathLike,
    *,
    timeout: float = 120.0,
    workers: int = 1,
    app_name: str | None = "zoo",
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Run ``mlflow server`` on 127.0.0.1 for the ``with`` block, serving artifacts itself.

    The server proxies artifacts (``--serve-artifacts``) into ``folder/artifacts``, so
    new experiments get ``mlflow-artifacts:/`` locations and clients upload over HTTP.

    Args:
        backend_uri: The backend store: ``postgresql+psycopg2://...`` (needs psycopg2) or
            ``sqlite:////abs/path.db`` (see :func:`sqlite_uri`).
        folder: Where the log (``mlflow-server.log``) and the artifacts go; also the
            server's working directory. Created if needed.
        timeout: Seconds to wait for ``GET /health`` to answer 200.
        workers: uvicorn worker processes (1 keeps it light: no supervisor process).
        app_name: ``--app-name``: ``"zoo"`` (the zoo's app, what the docs tell teams to
            run), ``"basic-auth"``, or None for MLflow's plain server.
        env: More environment for the server, such as ``PGPASSWORD`` (kept off its command line).

    Yields:
        The server; its ``url`` is the tracking URI ``http://127.0.0.1:PORT``.

    Raises:
        ServerUnavailable: The backend is PostgreSQL and its driver is not installed.
        ServerStartError: The server exited or did not answer in time (with the log's tail).
    """
    if backend_uri.startswith("postgresql"):
        _require_postgres_driver(backend_uri)
    folder = Path(folder).resolve()
    artifacts = folder / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = folder / "mlflow-server.log"
    env = {**_mlflow_env(), **(env or {})}
    proc: subprocess.Popen | None = None
    try:
        for attempt in range(3):  # another process may take the free port before the server binds it
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = _spawn(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    "--backend-store-uri",
                    backend_uri,
                    "--serve-artifacts",
                    "--artifacts-destination",
                    artifacts,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                    *(["--app-name", app_name] if app_name else []),
                ],
                log,
                env=env,
                cwd=folder,
            )
            if _wait_health(proc, url, log, time.monotonic() + timeout):
                break
            stop_process_group(proc)
            if not (_port_taken(log) and attempt < 2):
                raise _fail(f"mlflow server exited with {proc.returncode} during start-up", log)
        yield Server(url=url, pid=proc.pid, log=log, folder=folder)
    finally:
        if proc is not None:
            stop_process_group(proc)


def _wait_health(proc: subprocess.Popen, url: str, log: Path, deadline: float) -> bool:
    """Wait until ``GET url/health`` answers 200 (True) or the server exits (False); raise at the deadline."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with opener.open(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise _fail(f"mlflow server at {url} did not answer /health with 200 in time", log)


def _require_postgres_driver(uri: str = "postgresql+psycopg2://") -> None:
    """Raise ServerUnavailable unless the driver SQLAlchemy would load for ``uri`` imports."""
    from sqlalchemy.engine import make_url

    driver = make_url(uri).get_dialect().driver  # a bare postgresql:// is psycopg (3) since SQLAlchemy 2.1
    package = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]"}.get(driver, driver)
    try:
        __import__(driver)
    except ImportError:
        raise ServerUnavailable(
            f"{uri.split('://')[0]}:// needs the {driver} module, which is not installed (pip install {package})"
        ) from None


# -- fixtures -------------------------------------------------------------------------
# Function-scoped: each test gets its own servers and its own data. A test module
# that uses them declares ``pytest_plugins = ["servers"]`` (or tests/conftest.py does,
# once for all modules); importing the fixture functions by name works too, but
# linters then call each test's argument a redefinition of the import (F811).


def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the test's own HTTP clients (requests, in MlflowClient) off any configured proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        monkeypatch.setenv(name, ",".join(filter(None, (current, "127.0.0.1", "localhost"))))


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database for the test: ``postgresql+psycopg2://postgres@127.0.0.1:PORT/zoo``.

    A SQLAlchemy URL (MLflow, Optuna); for psycopg2.connect drop ``+psycopg2``.

    Skips the test when the PostgreSQL binaries (or, as root, the postgres user) are
    missing. Logs in ``tmp_path / "postgres"``. Start-up: about 1.5-2.5 s.
    """
    try:
        find_postgres_bin()
        _postgres_identity()
    except ServerUnavailable as err:
        pytest.skip(str(err))
    with postgres_server(tmp_path / "postgres") as server:
        yield server.url


@pytest.fixture
def mlflow_server_postgres(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real ``mlflow server`` on a fresh PostgreSQL database; returns its tracking URI.

    Skips where PostgreSQL or psycopg2 is missing. Log and artifacts in
    ``tmp_path / "mlflow"``. Start-up: about 8-13 s (MLflow migrates the new database).
    """
    try:
        _require_postgres_driver(postgres_url)
    except ServerUnavailable as err:
        pytest.skip(str(err))
    _no_proxy_for_loopback(monkeypatch)
    with mlflow_server(postgres_url, tmp_path / "mlflow") as server:
        yield server.url


@pytest.fixture
def mlflow_server_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real ``mlflow server`` on a fresh SQLite store (``tmp_path/mlflow/mlflow.db``); returns its tracking URI.

    Log and artifacts in ``tmp_path / "mlflow"``. Start-up: about 8-13 s.
    """
    _no_proxy_for_loopback(monkeypatch)
    folder = tmp_path / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    with mlflow_server(sqlite_uri(folder / "mlflow.db"), folder) as server:
        yield server.url
