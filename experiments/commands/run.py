"""`zoo run FILE|NAME`: train every run an experiment file lists, then compare them."""

from __future__ import annotations

import argparse

from experiments.config import CONFIGS_DIR, add_config_flags, load_experiment, overrides_from_args
from experiments.tables import format_table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    shipped = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
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
    columns = ["model", "data", "epochs", "batch_size", "lr", "seed", "experiment"]
    if args.dry_run:
        print(format_table([c.to_dict() for c in experiment.runs], columns))
        return 0
    from experiments import compare, runner

    run_ids = []
    for i, config in enumerate(experiment.runs, 1):
        print(f"== run {i}/{len(experiment.runs)}: {config.default_run_name()} ({config.model})", flush=True)
        run_ids.append(runner.train(config).run_id)
    tracked = [r for r in run_ids if r]
    if tracked:
        uri = experiment.runs[0].tracking_uri
        runs = [r for r in compare.find_runs(experiment.runs[0].experiment, uri=uri) if r.info.run_id in tracked]
        rows, cols = compare.compare_rows(runs)
        print(format_table(rows, cols))
    return 0
