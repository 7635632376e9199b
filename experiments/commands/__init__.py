"""Subcommands of the `zoo` command, one module each (``add_parser`` and ``run``)."""

from __future__ import annotations

import argparse


def add_tracking_uri_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``--tracking-uri`` option that every command reading MLflow shares.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow store; default $MLFLOW_TRACKING_URI or ./mlflow.db")
