"""`zoo ui`: the MLflow UI for the same store, on 127.0.0.1, usage telemetry off."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from experiments.commands import add_tracking_uri_argument


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ui`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser("ui", help="open the MLflow UI on http://127.0.0.1:5000")
    parser.add_argument("--port", type=int, default=5000)
    add_tracking_uri_argument(parser)
    parser.set_defaults(run=run)


def ui_command(port: int, tracking_uri: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of the MLflow UI server.

    Args:
        port: TCP port.
        tracking_uri: The store.

    Returns:
        ``(argv, env)``: bound to 127.0.0.1 only, with MLflow's telemetry and
        ``DO_NOT_TRACK`` set.
    """
    from experiments.tracking.store import resolve_tracking_uri  # deferred: the CLI's parser loads without torch and MLflow

    argv = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", resolve_tracking_uri(tracking_uri),
            "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    return argv, env


def run(args: argparse.Namespace) -> int:
    """Run the UI until Ctrl-C.

    Args:
        args: Parsed arguments.

    Returns:
        The server's exit code.
    """
    argv, env = ui_command(args.port, args.tracking_uri)
    print(f"MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        return subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        return 0
