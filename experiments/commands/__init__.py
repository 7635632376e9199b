"""Subcommands of the `zoo` command, one module each (``add_parser`` and ``run``).

Also the argument types they share: a bad value is refused by argparse, in one line with exit code 2, before any work.
A flag that takes a config field's values (``zoo data --seed``) uses `experiments.config.field_type` instead,
so its bounds are the field's.
"""

from __future__ import annotations

import argparse
import math

SUMMARIES = {
    "models": "list the registered models (their cards)",
    "data": "describe a data source: classes, split, image size, cache",
    "train": "train one model and record the run in MLflow",
    "run": "train every run of an experiment file (or search one) and compare",
    "compare": "compare runs side by side (best row marked *)",
    "eval": "evaluate a run's best weights on another data source (or its test split again)",
    "register": "register a run's model in MLflow's Model Registry (load it with models:/NAME@ALIAS)",
    "ui": "open the MLflow UI on http://127.0.0.1:5000",
    "predict": "classify images with a trained run or checkpoint",
    "runs": "list RUNNING runs whose process died (stale) and mark them KILLED",
}
"""Each subcommand (a module of this package) and its line in ``zoo --help``, in that order.

Here rather than in the modules, so that ``zoo --help`` lists them all without importing them
(``zoo train``'s flags need the config schema, ``zoo run``'s the sweeps).
"""


def add_tracking_uri_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``--tracking-uri`` option that every command reading MLflow shares.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow store; default $MLFLOW_TRACKING_URI, else ./mlflow.db if one is here, "
        "else mlflow.db in $ZOO_RUNS_DIR (./zoo-runs)",
    )


def non_negative_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, at least 0.

    Args:
        text: The value as given.

    Returns:
        The seconds.

    Raises:
        argparse.ArgumentTypeError: For anything else.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not allowed; give a number of seconds of at least 0")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1.

    Args:
        text: The value as given.

    Returns:
        The number.

    Raises:
        argparse.ArgumentTypeError: For anything else.
    """
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not allowed; give a whole number of at least 1")
    return int(text)


def tcp_port(text: str) -> int:
    """An argparse type: a TCP port number, 1 to 65535.

    Args:
        text: The value as given.

    Returns:
        The port.

    Raises:
        argparse.ArgumentTypeError: For anything else.
    """
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port; give a number from 1 to 65535")
    return int(text)
