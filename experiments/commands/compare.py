"""`zoo compare [--experiment NAME]`: runs side by side, figures from MLflow; with --group-by, verdicts."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.analysis.tables import FORMATS, format_table
from experiments.commands import SUMMARIES, add_tracking_uri_argument
from experiments.tracking.names import SWEEP_SAMPLER_PARAM
from registry.errors import ZooError

TABLES = ("groups", "pairs")
"""The two tables of ``zoo compare --group-by``: one row per group, one per pair and metric."""

if TYPE_CHECKING:  # for the annotation only: the CLI's parser loads without MLflow
    from mlflow.entities import Run


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``compare`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser("compare", help=SUMMARIES["compare"])
    parser.add_argument("--experiment", metavar="NAME", help="MLflow experiment; default: every experiment")
    parser.add_argument(
        "--sort",
        metavar="METRIC",
        help="metric to rank by (losses and times ascending); default test_acc, or a sweep's "
        "objective with --parent/--sweep",
    )
    sweep = parser.add_mutually_exclusive_group()
    sweep.add_argument("--parent", metavar="RUN_ID", help="one sweep's trials, best first (its parent run's id)")
    sweep.add_argument("--sweep", metavar="NAME", help="one sweep's trials, best first (the sweep's name)")
    parser.add_argument(
        "--expected-max",
        action="store_true",
        help="with --sweep/--parent: the expected best objective after 1..N trials (Dodge et al., "
        "EMNLP 2019; valid for random search only)",
    )
    parser.add_argument(
        "--filter",
        metavar="EXPR",
        default="",
        help="MLflow search expression, such as \"params.model = 'resnet50_scratch'\"",
    )
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the runs' val_acc and val_loss curves")
    parser.add_argument(
        "--group-by",
        metavar="PARAM",
        action="append",
        help="one row per value of a param (repeatable): count, mean, std and 95%% CI of the summary "
        "metrics (marked on --sort's metric), then the best group against each other with a verdict "
        "per metric (test_acc, best_val_acc, test_loss: those the runs have, --sort's first); "
        "--plot then draws each group's mean curve with its 95%% CI, and every run as a dot beside its "
        "group's mean and 95%% CI (FILE-runs.png)",
    )
    parser.add_argument(
        "--vs",
        metavar="GROUP",
        help="with --group-by: hold this group against every other (default: the best)",
    )
    parser.add_argument(
        "--columns",
        metavar="METRIC,...",
        help="with --group-by: the summary metrics of the group table, in order (default: each one "
        "compared pair by pair, --sort's first; each shown as its mean and 95%% CI)",
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="with --group-by: the group table's every figure (mean, std and 95%% CI of each metric, "
        "epochs and train_time_s too) instead of one mean (95%% CI) column per quality metric",
    )
    parser.add_argument(
        "--table",
        choices=TABLES,
        help="with --group-by --format csv: which table (default groups); JSON holds both, as "
        '{"groups": [...], "pairs": [...]}',
    )
    parser.add_argument(
        "--metric",
        metavar="METRIC",
        action="append",
        help="with --group-by: compare the groups pair by pair on this metric (repeatable; default: "
        "every summary quality metric the runs have); the first ranks the groups unless --sort "
        "says otherwise, and --sort's metric is always compared, first",
    )
    parser.add_argument(
        "--at",
        nargs=2,
        metavar=("KIND", "AMOUNT"),
        help="with --group-by: compare at an equal budget from the per-epoch curves: 'epoch N', "
        "'flops F' (training FLOPs) or 'time SECONDS' (training wall time), each run at the last "
        "epoch within it; the metric is then a per-epoch one, val_acc by default",
    )
    parser.add_argument(
        "--plot-grad-norms",
        metavar="FILE.png",
        help="draw the per-stage gradient norms of runs trained with --log-grad-norms",
    )
    parser.add_argument(
        "--all-runs", action="store_true", help="also list sweep parent runs and zoo eval runs (left out by default)"
    )
    add_tracking_uri_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the comparison (and draw it).

    Args:
        args: Parsed arguments.

    Returns:
        0, or 1 when no run matches.

    Raises:
        ZooError: ``--vs`` or ``--at`` without ``--group-by``, or a bad ``--at`` (exit code 2).
    """
    from experiments.analysis import compare, plots  # deferred: the CLI's parser loads without torch and MLflow

    at = _at(args.at)
    if args.expected_max and not (args.parent or args.sweep):
        raise ZooError("--expected-max reads one search's trials; add --sweep NAME or --parent RUN_ID")
    grouped = (("--vs", args.vs), ("--at", args.at), ("--metric", args.metric), ("--columns", args.columns))
    grouped_only = next((f for f, v in (*grouped, ("--wide", args.wide), ("--table", args.table)) if v), None)
    if grouped_only and not args.group_by:
        raise ZooError(f"{grouped_only} compares groups; add --group-by PARAM (such as model)")
    if args.table and args.format != "csv":
        raise ZooError(f"--table picks the CSV file's table; --format {args.format} shows both (add --format csv)")
    sort = args.sort or "test_acc"
    if args.parent or args.sweep:
        parent = compare.sweep_parent(args.parent, args.sweep, args.tracking_uri)
        runs, objective = compare.sweep_trials(parent, args.tracking_uri)
        sort = args.sort or objective
        print(f"sweep '{parent.info.run_name}' (parent run {parent.info.run_id}): {len(runs)} trials, ranked by {sort}")
        if args.expected_max:
            return _expected_max(parent, runs, sort, args.format)
    else:
        runs = compare.find_runs(args.experiment, args.filter, args.tracking_uri)
    if not args.all_runs:
        runs = [r for r in runs if compare.is_training_run(r)]
    if not runs:
        print("no runs match; train one with `zoo train MODEL` or `zoo run quick`")
        return 1
    if args.group_by:
        first = args.metric[0] if args.metric else ("val_acc" if at else sort)
        return _grouped(args, runs, args.sort or first, at)
    rows, columns = compare.compare_rows(runs, sort)
    if args.format in ("csv", "json"):
        columns = ["run_id" if c == "run" else c for c in columns]
        for row in rows:
            row["run_name"] = row["run"].rsplit(" (", 1)[0]
        columns.insert(1, "run_name")
    print(format_table(rows, columns, args.format))
    repeated = compare.repeated_configs(runs)
    if args.format in ("table", "markdown") and repeated:
        print(f"\n{compare.group_hint(repeated)}")
    if args.plot:
        print(f"curves written to {plots.plot_curves(runs, args.plot, uri=args.tracking_uri)}")
    if args.plot_grad_norms:
        print(f"gradient norms written to {plots.plot_grad_norms(runs, args.plot_grad_norms, uri=args.tracking_uri)}")
    return 0


def _at(at: list[str] | None) -> tuple[str, float] | None:
    if at is None:
        return None
    kind, text = at
    try:
        amount = float(text)
    except ValueError:
        amount = math.nan
    if kind == "epoch" and (not text.isdigit() or int(text) < 1):
        raise ZooError(f"--at epoch {text}: give a whole number of epochs of at least 1")
    if kind not in ("epoch", "flops", "time") or not math.isfinite(amount) or amount <= 0:
        raise ZooError(
            f"--at {kind} {text}: give --at epoch N, --at flops F or --at time SECONDS, with a positive amount"
        )
    return kind, amount


def _columns(text: str | None, runs: list[Run]) -> list[str]:
    """The metrics ``--columns`` names, each checked against the runs' metrics (none given: empty).

    Raises:
        ZooError: A name no run has, with the metrics they have.
    """
    if not text:
        return []
    known = {k for r in runs for k in r.data.metrics}
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names or [text]:
        if name not in known:
            raise ZooError(f"--columns {name}: no run has that metric; metrics: {', '.join(sorted(known))}")
    return names


def _grouped(args: argparse.Namespace, runs: list[Run], sort: str, at: tuple[str, float] | None) -> int:
    from experiments.analysis import grouping, plots  # deferred: the CLI's parser loads without torch and MLflow

    comparisons = grouping.compare_metrics(runs, args.group_by, sort, args.metric, args.vs, at, args.tracking_uri)
    comparison = comparisons[0]  # on the sort metric: the group table's marks, the plot of runs
    text = args.format in ("table", "markdown")
    compared = [c.metric for c in comparisons]
    shown = _columns(args.columns, runs) or (
        [*grouping.GROUP_METRICS, *[m for m in compared if m not in grouping.GROUP_METRICS]]
        if args.wide or not text
        else compared
    )
    rows, columns = grouping.group_rows(
        runs, args.group_by, shown, sort=sort, ci_as_text=text, comparison=comparison, compact=text and not args.wide
    )
    if args.format == "json":  # one shape, with or without --vs: a script finds both tables
        pair_table, pair_columns = grouping.pair_rows(comparisons)
        both = {"groups": json.loads(format_table(rows, columns, "json"))}
        both["pairs"] = json.loads(format_table(pair_table, pair_columns, "json"))
        print(json.dumps(both, indent=2))
    elif args.format == "csv" and args.table == "pairs":
        print(format_table(*grouping.pair_rows(comparisons), "csv"))
    else:
        print(format_table(rows, columns, args.format))
    if text and comparison.pairs:
        print(grouping.verdict_report(comparisons, args.format))
    if args.plot:
        written = plots.plot_group_curves(runs, args.group_by, args.plot, uri=args.tracking_uri)
        print(f"group curves written to {written}")
        dots = Path(args.plot).with_name(f"{Path(args.plot).stem}-runs{Path(args.plot).suffix or '.png'}")
        print(f"runs of each group ({sort}) written to {plots.plot_group_runs(comparison, dots)}")
    if args.plot_grad_norms:
        out = plots.plot_grad_norms(runs, args.plot_grad_norms, args.group_by, uri=args.tracking_uri)
        print(f"gradient norms written to {out}")
    return 0


def _expected_max(parent: Run, runs: list[Run], metric: str, fmt: str) -> int:
    from experiments.analysis import compare, stats  # deferred: the CLI's parser loads without torch and MLflow

    finished = [r for r in runs if r.info.status == "FINISHED"]
    curve = stats.expected_max([r.data.metrics.get(metric) for r in finished], compare.is_lower_better(metric))
    if not curve:
        raise ZooError(f"no finished trial of sweep '{parent.info.run_name}' has the metric '{metric}'")
    best = "min" if compare.is_lower_better(metric) else "max"
    column = f"expected {best} {metric}"
    print(format_table([{"trials": n, column: v} for n, v in enumerate(curve, start=1)], ["trials", column], fmt))
    sampler = parent.data.params.get(SWEEP_SAMPLER_PARAM, "none")
    if fmt in ("table", "markdown"):
        print(
            f"\nexpected best of n trials drawn from the {len(curve)} finished ones (Dodge et al., Show Your "
            f"Work, EMNLP 2019): valid for random search only"
            + ("" if sampler == "random" else f"; this sweep's sampler is {sampler}: read it as indicative")
        )
    return 0
