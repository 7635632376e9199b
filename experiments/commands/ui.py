"""`zoo ui`: the MLflow UI for the same store, on 127.0.0.1, usage telemetry off, only what a viewer needs.

The server runs in a process group of its own, so that Ctrl-C, SIGTERM and SIGHUP
to ``zoo ui`` stop the server and every worker it started, not just ``zoo ui``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from experiments.commands import SUMMARIES, add_tracking_uri_argument, tcp_port
from experiments.signals import handle_unless_ignored, restore
from experiments.tracking.names import UI_APP
from registry.errors import ZooError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop the server as Ctrl-C does (each unless ``zoo ui`` was started with it ignored)."""

HOST = "127.0.0.1"

VIEWER_DEFAULTS = {
    "MLFLOW_WORKERS": "1",  # `mlflow ui --workers`: MLflow's default of 4 serves a team, not one browser
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # the GenAI job runner: 7 processes, ~1.6 GB, unused by runs
}
"""MLflow server settings (its documented environment variables) for one local viewer; a user's own value wins."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ui`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser("ui", help=SUMMARIES["ui"])
    parser.add_argument("--port", type=tcp_port, default=5000, help="TCP port on 127.0.0.1 (default 5000)")
    add_tracking_uri_argument(parser)
    parser.set_defaults(run=run)


def ui_command(port: int, tracking_uri: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of the MLflow UI server.

    Args:
        port: TCP port.
        tracking_uri: The store.

    Returns:
        ``(argv, env)``: bound to 127.0.0.1 only, the zoo's app (MLflow's server whose
        UI defaults to *Model training*, its Assistant closed), MLflow's telemetry and
        ``DO_NOT_TRACK`` off, one server process and no job runner (`VIEWER_DEFAULTS`).
        The store's URI, which may hold a password, is in the environment
        (``MLFLOW_BACKEND_STORE_URI``, which MLflow's command reads), never in ``argv``:
        ``ps`` shows a command line to every user of the machine.
    """
    from experiments.tracking.store import resolve_tracking_uri  # deferred: the CLI's parser loads without MLflow

    argv = [sys.executable, "-m", "mlflow", "ui", "--host", HOST, "--port", str(port), "--app-name", UI_APP]
    env = {
        **VIEWER_DEFAULTS,
        **os.environ,
        "MLFLOW_BACKEND_STORE_URI": resolve_tracking_uri(tracking_uri),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    return argv, env


def check_port_free(port: int) -> None:
    """Refuse a port that another program already listens on, before the server tries it.

    Args:
        port: TCP port on 127.0.0.1.

    Raises:
        ZooError: If it is taken (or not ours to bind).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise ZooError(
                f"port {port} on {HOST} cannot be used ({exc.strerror}); another program listens there: "
                f"pass another --port"
            ) from None


def stop_group(server: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """Stop a server's whole process group: SIGTERM, then SIGKILL after a grace period.

    Args:
        server: The server process, the leader of its own group.
        grace_s: Seconds to wait for a clean exit.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)  # workers that outlived their leader
    server.wait()


def run(args: argparse.Namespace) -> int:
    """Run the UI until Ctrl-C, SIGTERM or SIGHUP, then stop its process group.

    Args:
        args: Parsed arguments.

    Returns:
        0 when stopped by a signal, else the server's exit code.
    """
    from experiments.tracking.store import open_store  # deferred: the CLI's parser loads without MLflow

    open_store(args.tracking_uri)  # a store that cannot be read: one line now, not a server that fails later
    check_port_free(args.port)
    argv, env = ui_command(args.port, args.tracking_uri)
    print(f"MLflow UI on http://{HOST}:{args.port} (Ctrl-C stops it)", flush=True)
    server = subprocess.Popen(argv, env=env, start_new_session=True)

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = handle_unless_ignored(STOP_SIGNALS, on_signal)  # under nohup, SIGHUP stays ignored
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        restore(previous)
        if server.poll() is None:
            stop_group(server)
