"""`zoo register RUN_ID --name NAME [--alias champion]`: a run into MLflow's Model Registry."""

from __future__ import annotations

import argparse

from experiments.commands import SUMMARIES, add_tracking_uri_argument


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``register`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser(
        "register",
        help=SUMMARIES["register"],
        description="Register a trained run as a new version of a registered model; an alias moves to it.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="a finished training run")
    parser.add_argument("--name", required=True, metavar="NAME", help="registered model name")
    parser.add_argument("--alias", metavar="ALIAS", help="alias to point at the new version, such as champion")
    add_tracking_uri_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Register and print how to load the version.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success.
    """
    # deferred: the CLI's parser loads without torch and MLflow
    from experiments.serving.model_registry import register_run

    done = register_run(args.run_id, args.name, args.alias, args.tracking_uri)
    alias = f" (alias {done.alias})" if done.alias else ""
    print(f"registered run {done.run_id} as {done.name} version {done.version}{alias}")
    print(f"load it with: registry.create_model('{done.model}', weights='{done.uri}')")
    return 0
