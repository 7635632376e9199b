"""timm's published ImageNet accuracy for the registered timm weights, shipped as package data.

timm publishes the ImageNet-1K validation accuracy of its weights in ``results/results-imagenet.csv``
of its repository (a row per ``architecture.tag`` and evaluation image size), which its package
does not ship. The zoo ships the rows of the tags it registers in ``zoo/timm_imagenet_top1.json``,
with the repository, path, commit and date they were copied from, so that a card's top-1
(`zoo.cards`) names where it is published. The file is generated, never typed:

    python -m zoo.published results-imagenet.csv --commit SHA --date YYYY-MM-DD

reads a copy of timm's table at that commit and keeps the rows of every registered
``timm:`` tag. Reading the file imports neither timm nor torchvision.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import registry

TABLE_FILE = "timm_imagenet_top1.json"
"""The shipped table's file name, in the ``zoo`` package."""

REPOSITORY = "https://github.com/huggingface/pytorch-image-models"
"""timm's repository, whose table the shipped rows are copied from."""

RESULTS_PATH = "results/results-imagenet.csv"
"""The table's path in timm's repository."""

COLUMNS = ("model", "img_size", "top1", "top5", "param_count")
"""The columns of timm's table that are kept (``model`` is ``architecture.tag``)."""


@functools.cache
def timm_table() -> dict[str, Any]:
    """The shipped table: where it was copied from, and its rows by tag.

    Returns:
        ``{"source": {...}, "rows": {tag: [row, ...]}}``; a row holds ``img_size``, ``top1``,
        ``top5`` (percent) and ``param_count`` (millions), one per image size timm evaluated at.
    """
    text = resources.files("zoo").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in data["rows"]:
        rows.setdefault(row["tag"], []).append(row)
    return {"source": data["source"], "rows": rows}


def source_label() -> str:
    """The shipped table's source, short: file, commit and date.

    Returns:
        Such as ``"timm results/results-imagenet.csv @ 4e5207c (2025-10-30)"``.
    """
    source = timm_table()["source"]
    return f"timm {source['path']} @ {source['commit'][:7]} ({source['date']})"


def timm_top1(tag: str, img_size: int) -> tuple[float | None, str]:
    """The top-1 timm publishes for a tag, at the image size its weights are evaluated at.

    Args:
        tag: timm's ``architecture.tag``, such as ``"resnet50.a1_in1k"``.
        img_size: The evaluation image size whose row to read: the weights' input size in
            timm's pretrained config (timm's tables hold rows at that size and the test size).

    Returns:
        ``(top-1 in percent, source)``, or ``(None, why there is no figure)``.
    """
    rows = timm_table()["rows"].get(tag)
    if not rows:
        return None, f"{source_label()} has no row for {tag}"
    for row in rows:
        if row["img_size"] == img_size:
            return float(row["top1"]), f"{source_label()}, top-1 at {img_size}px"
    sizes = ", ".join(f"{row['img_size']}px" for row in rows)
    return None, f"{source_label()} has no row for {tag} at {img_size}px (only at {sizes})"


def registered_timm_tags() -> list[str]:
    """The timm tags of every registered pretrained model, plugins' included.

    Returns:
        Sorted ``architecture.tag`` names.
    """
    registry.discover_plugins()
    tags = set()
    for name in registry.list_models():
        scheme, _, tag = (registry.get_spec(name).pretrained or "").partition(":")
        if scheme == "timm" and tag:
            tags.add(tag)
    return sorted(tags)


def read_results(path: Path, tags: list[str]) -> list[dict[str, Any]]:
    """The rows of timm's results table for some tags.

    Args:
        path: A copy of timm's ``results/results-imagenet.csv``.
        tags: The tags whose rows to keep.

    Returns:
        Rows sorted by tag and image size, with ``tag``, ``img_size``, ``top1``, ``top5``, ``param_count``.

    Raises:
        ValueError: If the file lacks a column, or holds a tag twice at one image size.
    """
    wanted = set(tags)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path} has no column {', '.join(missing)}: pass timm's {RESULTS_PATH}")
        rows = [
            {
                "tag": r["model"],
                "img_size": int(r["img_size"]),
                "top1": float(r["top1"]),
                "top5": float(r["top5"]),
                "param_count": float(r["param_count"]),
            }
            for r in reader
            if r["model"] in wanted
        ]
    keys = [(r["tag"], r["img_size"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path} holds a tag twice at one image size: not timm's {RESULTS_PATH}")
    return sorted(rows, key=lambda r: (r["tag"], -r["img_size"]))


def write_table(rows: list[dict[str, Any]], commit: str, date: str, output: Path) -> None:
    """Write the shipped table, a row a line, headed by its source.

    Args:
        rows: From `read_results`.
        commit: The commit of timm's repository the table was read at.
        date: That commit's date, ``YYYY-MM-DD``.
        output: The file to write.
    """
    source = {
        "repository": REPOSITORY,
        "path": RESULTS_PATH,
        "commit": commit,
        "date": date,
        "url": f"{REPOSITORY}/blob/{commit}/{RESULTS_PATH}",
        "generated_by": "python -m zoo.published PATH --commit SHA --date YYYY-MM-DD",
    }
    lines = ",\n".join(f"  {json.dumps(row)}" for row in rows)
    output.write_text(f'{{"source": {json.dumps(source)},\n"rows": [\n{lines}\n]}}\n', encoding="utf-8")
    timm_table.cache_clear()


def main(argv: list[str] | None = None) -> int:
    """Regenerate the shipped table from a copy of timm's results table.

    Args:
        argv: Command-line arguments: the CSV, ``--commit``, ``--date``, ``--output``.

    Returns:
        0, or 2 for bad input (one line on stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m zoo.published",
        description=f"Copy the registered timm tags' rows of timm's {RESULTS_PATH} into the zoo package.",
    )
    parser.add_argument("results", type=Path, help=f"a copy of {RESULTS_PATH} from {REPOSITORY}")
    parser.add_argument("--commit", required=True, help="the full SHA of the commit the copy was read at")
    parser.add_argument("--date", required=True, help="that commit's date, YYYY-MM-DD")
    parser.add_argument("--output", type=Path, default=None, help=f"file to write (default: zoo/{TABLE_FILE})")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{40}", args.commit):
        print(f"--commit {args.commit!r} is not a full SHA: pass the 40 hex digits of `git log -1`", file=sys.stderr)
        return 2
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.date):
        print(f"--date {args.date!r} is not YYYY-MM-DD: pass the commit's date", file=sys.stderr)
        return 2
    if not args.results.is_file():
        print(f"{args.results} is not a file: pass a copy of timm's {RESULTS_PATH}", file=sys.stderr)
        return 2
    tags = registered_timm_tags()
    try:
        rows = read_results(args.results, tags)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    output = args.output or Path(str(resources.files("zoo").joinpath(TABLE_FILE)))
    write_table(rows, args.commit, args.date, output)
    absent = sorted(set(tags) - {r["tag"] for r in rows})
    print(f"wrote {len(rows)} rows for {len(tags) - len(absent)} of {len(tags)} tags to {output}")
    if absent:
        print(f"no row for {', '.join(absent)}: their cards will say so", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
