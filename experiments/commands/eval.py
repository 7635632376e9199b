"""`zoo eval RUN_ID [--data SOURCE]`: a trained run's best weights on another source, recorded as a linked run."""

from __future__ import annotations

import argparse
import os

from experiments.analysis.tables import FORMATS, format_table
from experiments.commands import SUMMARIES, add_tracking_uri_argument, positive_int


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``eval`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser(
        "eval",
        help=SUMMARIES["eval"],
        description="Evaluate a run's best weights on the test part of a data source, with the run's own "
        "preprocessing; record the result as a new MLflow run tagged zoo.eval_of=RUN_ID.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the trained run (zoo compare lists them)")
    parser.add_argument("--data", metavar="SOURCE", help="data source, as for zoo train; default: the run's own")
    parser.add_argument("--limit-per-class", type=positive_int, metavar="N", help="at most N test images per class")
    parser.add_argument("--batch-size", type=positive_int, metavar="N", help="images per batch; default: the run's")
    parser.add_argument("--accelerator", metavar="A", help="Lightning accelerator; default: the run's")
    parser.add_argument("--experiment", metavar="NAME", help="MLflow experiment of the eval run; default: the run's")
    parser.add_argument("--no-log", dest="log", action="store_false", help="print only; record no eval run")
    parser.add_argument("--format", choices=FORMATS, default="table", help="format of the per-class table")
    add_tracking_uri_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print accuracy, loss and per-class accuracy.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success.
    """
    from experiments.training.evaluate import evaluate_run  # deferred: the CLI's parser loads without torch and MLflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep the output to the figures
    result = evaluate_run(
        args.run_id,
        args.data,
        limit_per_class=args.limit_per_class,
        batch_size=args.batch_size,
        accelerator=args.accelerator,
        experiment=args.experiment,
        tracking_uri=args.tracking_uri,
        log=args.log,
    )
    print(f"run {result.source_run_id} on {result.data} (test part, {result.num_images} images)")
    print(f"accuracy {result.accuracy:.4f}  loss {result.loss:.4f}")
    print(format_table(result.per_class, ["class", "correct", "total", "accuracy"], args.format))
    if result.run_id:
        print(f"recorded as run {result.run_id} (tag zoo.eval_of={result.source_run_id})")
    return 0
