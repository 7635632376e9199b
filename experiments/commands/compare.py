"""`zoo compare [--experiment NAME]`: runs side by side, figures from MLflow."""

from __future__ import annotations

import argparse

from experiments.tables import FORMATS, format_table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser("compare", help="compare runs side by side (best row marked *)")
    parser.add_argument("--experiment", metavar="NAME", help="MLflow experiment; default: every experiment")
    parser.add_argument("--sort", metavar="METRIC", default="test_acc",
                        help="metric to rank by (losses and times ascending); default test_acc")
    parser.add_argument("--filter", metavar="EXPR", default="",
                        help="MLflow search expression, such as \"params.model = 'resnet50_scratch'\"")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the runs' val_acc and val_loss curves")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow store; default $MLFLOW_TRACKING_URI or ./mlflow.db")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the comparison (and draw it).

    Args:
        args: Parsed arguments.

    Returns:
        0, or 1 when no run matches.
    """
    from experiments import compare

    runs = compare.find_runs(args.experiment, args.filter, args.tracking_uri)
    if not runs:
        print("no runs match; train one with `zoo train MODEL` or `zoo run quick`")
        return 1
    rows, columns = compare.compare_rows(runs, args.sort)
    if args.format in ("csv", "json"):
        columns = ["run_id" if c == "run" else c for c in columns]
        for row in rows:
            row["run_name"] = row["run"].rsplit(" (", 1)[0]
        columns.insert(1, "run_name")
    print(format_table(rows, columns, args.format))
    if args.plot:
        print(f"curves written to {compare.plot_curves(runs, args.plot, uri=args.tracking_uri)}")
    return 0
