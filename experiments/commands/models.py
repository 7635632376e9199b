"""`zoo models [PATTERN] [--pretrained | --scratch] [--filter C=V] [--sort C] [--format F]`: the model cards.

Every row is a model's card (`registry.model_info`): family, block settings, size, input,
weights and their published accuracy and licence, and the benchmarks' throughput. The rows
come from the plugins' generated indexes, so listing imports neither the plugins nor torch
while the indexes cover every plugin.
"""

from __future__ import annotations

import argparse
import fnmatch
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

import registry
from experiments.analysis.tables import format_table
from experiments.commands import SUMMARIES

COLUMNS = (
    "name", "family", "block", "layers", "groups", "stem", "attn", "aa", "norm", "params", "gflops", "input",
    "pretrained", "source", "tag", "top1", "top1_source", "license", "train_img_s", "infer_img_s",
    "throughput_source", "tags", "description",
)  # fmt: skip
"""Every column of a model card, in the order `--format csv/json/markdown` prints them."""

BEST_FIRST = ("top1", "train_img_s", "infer_img_s")
"""Columns where more is better: ``--sort`` puts the largest first (sizes, names and the rest: the smallest)."""

TABLE_COLUMNS = ("name", "family", "params", "gflops", "input", "pretrained")
"""The columns of the terminal table unless ``--columns`` names others."""

_FILTER = re.compile(r"^(?P<column>[A-Za-z_0-9]+)\s*(?P<op>>=|<=|!=|=|>|<)(?P<value>.*)$")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``models`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser(
        "models", help=SUMMARIES["models"], description="Print the model cards. Columns: " + ", ".join(COLUMNS) + "."
    )
    parser.add_argument("pattern", nargs="?", default=None, help="fnmatch wildcard, such as 'resnet*'")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--pretrained", dest="pretrained", action="store_true", default=None, help="pretrained models only"
    )
    which.add_argument("--scratch", dest="pretrained", action="store_false", help="randomly initialised models only")
    parser.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    parser.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep rows whose COLUMN matches VALUE (fnmatch, any case); also COLUMN!=VALUE, and "
        "COLUMN>=N, <=, >, < for numbers such as 'gflops<5'; repeat to combine",
    )
    parser.add_argument(
        "--sort",
        default="name",
        metavar="COLUMN[,COLUMN]",
        help=f"sort by these columns, the best first: the largest for {', '.join(BEST_FIRST)}, the smallest "
        "for sizes (params, gflops), A to Z for text (default: name)",
    )
    parser.add_argument("--reverse", action="store_true", help="flip --sort's order (empty cells stay last)")
    parser.add_argument(
        "--columns",
        metavar="COLUMN[,COLUMN]|all",
        help=f"columns to print (default: {', '.join(TABLE_COLUMNS)} in the table, all of them otherwise)",
    )
    parser.set_defaults(run=run)


def _block_cells(block: dict[str, Any]) -> dict[str, object]:
    if not block:
        return dict.fromkeys(("block", "layers", "groups", "stem", "attn", "aa", "norm"))
    return {
        "block": block.get("block"),
        "layers": "-".join(map(str, block.get("layers", ()))),
        "groups": f"{block.get('cardinality', 1)}x{block.get('width_per_group', 64)}d",
        "stem": block.get("stem_type"),
        "attn": block.get("attn_layer"),
        "aa": block.get("aa_layer"),
        "norm": block.get("norm_layer"),
    }


def card_row(info: dict[str, Any]) -> dict[str, object]:
    """One model card as a row of plain values (for tables, CSV and JSON).

    Args:
        info: From `registry.model_info`.

    Returns:
        A dict with every column of `COLUMNS`; ``None`` where a fact is missing (no
        published accuracy, no licence, throughput not measured).
    """
    source, _, tag = (info["pretrained"] or "").partition(":")
    return {
        "name": info["name"],
        "family": info["family"],
        **_block_cells(info["block"]),
        "params": info["num_params"],
        "gflops": round(info["gflops"], 3),
        "input": "x".join(map(str, info["input_size"][1:])),
        "pretrained": info["pretrained"] or "-",
        "source": source or None,
        "tag": tag or None,
        "top1": info["top1"],
        "top1_source": info["top1_source"],
        "license": info["license"],
        "train_img_s": info["train_img_s"],
        "infer_img_s": info["infer_img_s"],
        "throughput_source": info["throughput_source"],
        "tags": ",".join(info["tags"]),
        "description": info["description"],
    }


def model_rows(pattern: str | None = None, pretrained: bool | None = None) -> list[dict[str, object]]:
    """The model cards of the registered models, one row per model, sorted by name.

    Args:
        pattern: fnmatch wildcard, or ``None`` for all.
        pretrained: Filter as in `registry.list_models`.

    Returns:
        Rows from `card_row`, measured with the builder's default arguments.
    """
    return [card_row(registry.model_info(name)) for name in registry.list_models(pattern, pretrained=pretrained)]


def _check_columns(names: Sequence[str], option: str) -> None:
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise registry.ZooError(f"unknown column '{unknown[0]}' in {option}; the columns are: {', '.join(COLUMNS)}")


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise registry.ZooError(f"{option} compares with a number, got '{text}'; such as --filter 'gflops<5'") from None


def row_filter(spec: str) -> Callable[[dict[str, object]], bool]:
    """Parse one ``--filter`` into a test of a row.

    Args:
        spec: ``COLUMN=VALUE`` (fnmatch, any case), ``COLUMN!=VALUE``, or ``COLUMN>=N`` (and
            ``<=``, ``>``, ``<``) against a number; an empty cell is ``-`` for ``=``.

    Returns:
        A function that tells whether a row passes.

    Raises:
        ZooError: For a spec without an operator, an unknown column or a bad number.
    """
    match = _FILTER.match(spec.strip())
    if not match:
        raise registry.ZooError(f"--filter '{spec}' needs COLUMN=VALUE (or !=, >=, <=, >, <), such as family=resnext")
    column, op, value = match["column"], match["op"], match["value"].strip()
    _check_columns([column], "--filter")
    if op in _COMPARE:
        bound = _number(value, f"--filter '{spec}'")
        compare = _COMPARE[op]
        return lambda row: isinstance(row[column], (int, float)) and compare(row[column], bound)

    def matches(row: dict[str, object]) -> bool:
        cell = "-" if row[column] is None else str(row[column])
        return fnmatch.fnmatchcase(cell.lower(), value.lower())

    return matches if op == "=" else (lambda row: not matches(row))


def sort_rows(rows: list[dict[str, object]], columns: Sequence[str], reverse: bool = False) -> list[dict[str, object]]:
    """Sort rows by columns, the best first: numbers as numbers, empty cells last either way.

    Args:
        rows: From `model_rows`.
        columns: Column names, the first deciding first; one of `BEST_FIRST` puts its largest
            first, any other its smallest (or A to Z).
        reverse: Flip each column's order.

    Returns:
        The rows, sorted (a new list).
    """
    ordered = list(rows)
    for column in reversed(columns):  # stable sorts, the last key first
        present = [r for r in ordered if r[column] is not None]
        missing = [r for r in ordered if r[column] is None]
        numeric = all(isinstance(r[column], (int, float)) for r in present)
        descending = (column in BEST_FIRST) != reverse
        present.sort(key=lambda r: r[column] if numeric else str(r[column]).lower(), reverse=descending)  # type: ignore[return-value,arg-type]
        ordered = present + missing
    return ordered


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    """Print the model cards.

    Args:
        args: Parsed arguments.

    Returns:
        0.
    """
    sort_by = _split(args.sort)
    _check_columns(sort_by, "--sort")
    if args.columns in (None, ""):
        columns = list(TABLE_COLUMNS if args.format == "table" else COLUMNS)
    else:
        columns = list(COLUMNS) if args.columns == "all" else _split(args.columns)
        _check_columns(columns, "--columns")
    tests = [row_filter(spec) for spec in args.filters]
    rows = [row for row in model_rows(args.pattern, args.pretrained) if all(test(row) for test in tests)]
    if not rows:
        what = " and ".join([f"'{args.pattern}'"] * bool(args.pattern) + [f"--filter '{f}'" for f in args.filters])
        what = what or "these options"
        raise registry.ZooError(f"no registered model matches {what}; run `zoo models` to see them all")
    print(format_table(sort_rows(rows, sort_by, args.reverse), columns, args.format))
    return 0
