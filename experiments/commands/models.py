"""`zoo models [PATTERN] [--pretrained | --scratch]`: print the registry as a table."""

from __future__ import annotations

import argparse

import registry
from experiments.analysis.tables import format_table


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``models`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser("models", help="list the registered models")
    parser.add_argument("pattern", nargs="?", default=None, help="fnmatch wildcard, such as 'resnet*'")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--pretrained", dest="pretrained", action="store_true", default=None, help="pretrained models only"
    )
    which.add_argument("--scratch", dest="pretrained", action="store_false", help="randomly initialised models only")
    parser.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    parser.set_defaults(run=run)


def model_rows(pattern: str | None = None, pretrained: bool | None = None) -> list[dict[str, object]]:
    """Describe the registered models, one dict per model.

    Args:
        pattern: fnmatch wildcard, or ``None`` for all.
        pretrained: Filter as in `registry.list_models`.

    Returns:
        Rows with name, family, parameters, GFLOPs, input size, pretrained
        source and description, measured with the builder's default arguments.
    """
    rows = []
    for name in registry.list_models(pattern, pretrained=pretrained):
        info = registry.model_info(name)
        rows.append(
            {
                "name": name,
                "family": info["family"],
                "params": info["num_params"],
                "gflops": round(info["gflops"], 3),
                "input": "x".join(map(str, info["input_size"][1:])),
                "pretrained": info["pretrained"] or "-",
                "description": info["description"],
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the models table.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    rows = model_rows(args.pattern, args.pretrained)
    if not rows:
        raise registry.ZooError(f"no registered model matches '{args.pattern}'; run `zoo models` to see them all")
    columns = ["name", "family", "params", "gflops", "input", "pretrained"]
    if args.format != "table":
        columns.append("description")
    print(format_table(rows, columns, args.format))
    return 0
