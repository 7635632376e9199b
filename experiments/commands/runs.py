"""`zoo runs --stale [--older-than S] [--mark-stale]`: find (and close) runs whose process died."""

from __future__ import annotations

import argparse
import time

from experiments.analysis.tables import format_table
from experiments.commands import SUMMARIES, add_tracking_uri_argument, non_negative_seconds
from experiments.tracking import heartbeat


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``runs`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser(
        "runs",
        help=SUMMARIES["runs"],
        description="A run's process names itself in the run (mlflow.zoo.owner) and writes a "
        "heartbeat tag while it lives. A RUNNING run is stale when its process "
        "is gone from this host, or, for another host, when its heartbeat is old.",
    )
    parser.add_argument("--stale", action="store_true", help="list stale RUNNING runs (the default)")
    parser.add_argument("--mark-stale", action="store_true", help="mark those runs KILLED, with the reason")
    parser.add_argument(
        "--older-than",
        type=non_negative_seconds,
        metavar="S",
        help=f"seconds without a heartbeat that make a run on another host stale (default "
        f"{heartbeat.STALE_AFTER_BEATS} beats = {heartbeat.stale_after():g} s)",
    )
    parser.add_argument("--experiment", metavar="NAME", help="only this experiment")
    add_tracking_uri_argument(parser)
    parser.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """List stale runs; with ``--mark-stale``, mark them KILLED.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    from experiments.tracking import readback  # deferred: the CLI's parser loads without MLflow

    older_than = args.older_than if args.older_than is not None else heartbeat.stale_after()
    stale = readback.stale_runs(args.experiment, older_than, args.mark_stale, args.tracking_uri)
    rows = [
        {
            "run_id": found_run.info.run_id,
            "run_name": found_run.info.run_name,
            "experiment_id": found_run.info.experiment_id,
            "last_heartbeat": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - age)),
            "silent_s": round(age),
            "why": reason,
            "status": "KILLED" if args.mark_stale else "RUNNING",
        }
        for found_run, age, reason in stale
    ]
    columns = ["run_id", "run_name", "experiment_id", "last_heartbeat", "silent_s", "why", "status"]
    if rows or args.format != "table":
        print(format_table(rows, columns, args.format))
    else:
        print(f"no stale RUNNING run (processes gone, or silent for more than {older_than:g} s)")
    return 0
