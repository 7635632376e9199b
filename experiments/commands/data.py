"""`zoo data SOURCE`: what a data source holds, how it splits, and where its cache is."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from experiments.analysis.tables import format_table
from experiments.commands import SUMMARIES, positive_int
from experiments.config.flags import field_type
from experiments.console import printable


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``data`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser(
        "data", help=SUMMARIES["data"], description="Decode a data source once into the cache and describe it."
    )
    parser.add_argument(
        "source",
        help="CIFAR-10-images-master folder or .zip, an image folder (or zip), cifar-10-batches-py, "
        "'cifar10' or 'digits'",
    )
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of each class held out for validation")
    parser.add_argument("--seed", type=field_type("seed"), default=0, help="seed of the validation split")
    parser.add_argument("--limit-per-class", type=positive_int, help="at most this many images per class per part")
    parser.add_argument("--decode-size", type=field_type("decode_size"), help="decode every image to SIZE x SIZE")
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, help="share drawn as test where the source has none"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(run=run)


def _size_of(path: str | None) -> str:
    if not path:
        return "not cached (decoded per image)"
    size = sum(f.stat().st_size for f in Path(path).iterdir())
    return f"{path} ({size / 2**20:.1f} MiB)"


def run(args: argparse.Namespace) -> int:
    """Print the description of the source.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    from experiments.data.split import describe_source  # deferred: the CLI's parser loads without torch and MLflow

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        summary = describe_source(
            args.source, val_fraction=args.val_fraction, seed=args.seed, limit_per_class=args.limit_per_class,
            decode_size=args.decode_size, test_fraction=args.test_fraction,
        )  # fmt: skip
    for warning in caught:  # one line each, like the errors, not Python's two-line format
        if issubclass(warning.category, UserWarning):
            print(f"zoo: warning: {warning.message}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(summary, indent=2))
        return 0
    height, width = summary["image_size"]
    test = "drawn from the images" if summary["test_drawn"] else "the source's own"
    print(f"source      {summary['description']}")
    print(printable(f"classes     {len(summary['classes'])}: {', '.join(summary['classes'])}"))
    print(f"image size  {height}x{width} (decoded, uint8 RGB)")
    print(
        f"images      train {summary['num_train']:,}, val {summary['num_val']:,}, test {summary['num_test']:,} "
        f"(seed {args.seed}, val fraction {args.val_fraction}; test part: {test})"
    )
    if summary["skipped"]:
        print(f"skipped     {summary['skipped']} unreadable image(s)")
    print(f"cache       {_size_of(summary['cache_path'])}")
    print()
    rows = [{"class": name, **counts} for name, counts in summary["per_class"].items()]
    print(format_table(rows, ["class", "train", "val", "test"]))
    return 0
