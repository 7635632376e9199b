"""`zoo run FILE|NAME`: train every run an experiment file lists, then compare them."""

from __future__ import annotations

import argparse

from experiments.analysis.tables import format_table
from experiments.config import SHIPPED_DIR, add_config_flags, load_experiment, overrides_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    shipped = ", ".join(sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml")))
    parser = subparsers.add_parser("run", help="train every run of an experiment file and compare them",
                                   description=f"Train the runs an experiment file lists (shipped: {shipped}).")
    parser.add_argument("file", metavar="FILE", help=f"experiment YAML file, or a shipped name ({shipped})")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the runs without training")
    add_config_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train the runs one after another and print their comparison.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success.
    """
    experiment = load_experiment(args.file, **overrides_from_args(args))
    columns = ["run_name", "model", "data", "epochs", "batch_size", "lr", "seed", "experiment"]
    if args.dry_run:
        print(format_table([{**c.to_dict(), "run_name": c.default_run_name()} for c in experiment.runs], columns))
        return 0
    from experiments.analysis import compare, grouping  # deferred: the CLI's parser loads without torch and MLflow
    from experiments.training import sweeps

    parent_id, run_ids = sweeps.run_experiment(experiment)
    tracked = [r for r in run_ids if r]
    if tracked:
        uri = experiment.runs[0].tracking_uri
        runs = [r for r in compare.find_runs(experiment.runs[0].experiment, uri=uri) if r.info.run_id in tracked]
        rows, cols = compare.compare_rows(runs)
        print(format_table(rows, cols))
        if parent_id:
            keys = ["model", *[k for k in compare.differing_params(runs) if k != "seed"]]
            print(f"\nparent run {parent_id}; mean and std over seeds:")
            rows, cols = grouping.group_rows(runs, keys)
            print(format_table(rows, cols))
    return 0
