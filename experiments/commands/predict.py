"""`zoo predict (--run RUN_ID | --checkpoint PATH) IMAGE...`: top classes with probabilities."""

from __future__ import annotations

import argparse

from experiments.commands import SUMMARIES, add_tracking_uri_argument, positive_int
from experiments.console import printable


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``predict`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser("predict", help=SUMMARIES["predict"])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", dest="run_id", metavar="RUN_ID", help="a run's best weights (with its preprocessing)")
    source.add_argument("--checkpoint", metavar="PATH", help="a Lightning checkpoint written by zoo train")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any size; RGB or greyscale)")
    parser.add_argument("--top-k", type=positive_int, default=3, help="classes shown per image (default 3)")
    add_tracking_uri_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print, per image, its top classes.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    from experiments.serving import loading  # deferred: the CLI's parser loads without torch and MLflow
    from experiments.serving import model as serving_model

    if args.run_id:
        model = loading.load_run_model(args.run_id, args.tracking_uri)
    else:
        model = loading.load_checkpoint_model(args.checkpoint)
    for path in args.images:
        ranked = model.predict(serving_model.read_image(path)[None], top_k=args.top_k)[0]
        # class names come from the run's model.json: shown with control characters escaped
        print(printable(f"{path}: " + ", ".join(f"{name} {prob:.3f}" for name, prob in ranked)))
    return 0
