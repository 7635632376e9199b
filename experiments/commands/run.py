"""`zoo run FILE|NAME`: every run (or trial) of an experiment file, on one or more workers, then the results.

``--workers N`` runs N worker processes on this machine; the same command on more
machines, with one ``--storage`` and ``--sweep``, joins the same sweep.
"""

from __future__ import annotations

import argparse
import sys

from experiments.commands import SUMMARIES, positive_int
from experiments.config.errors import ConfigError
from experiments.config.experiment import SHIPPED_DIR, load_experiment
from experiments.config.flags import add_config_flags, overrides_from_args
from experiments.sweeps import workers


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    shipped = ", ".join(sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml")))
    parser = subparsers.add_parser(
        "run",
        help=SUMMARIES["run"],
        description=f"Train the runs an experiment file lists, or the trials of its "
        f"search, as one sweep (shipped: {shipped}).",
    )
    parser.add_argument("file", metavar="FILE", help=f"experiment YAML file, or a shipped name ({shipped})")
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and list the runs (or the search) without training"
    )
    sweep = parser.add_argument_group("sweep (an Optuna study)")
    sweep.add_argument(
        "--workers",
        dest="sweep_workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes on this machine, each with its own GPU or share of the CPU cores "
        "(default 1, in this process)",
    )
    sweep.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage the workers share: sqlite:///PATH/optuna.db "
        "(one machine) or postgresql://... (a team); default: "
        "optuna.db beside a SQLite MLflow store (else in $ZOO_RUNS_DIR, ./zoo-runs)",
    )
    sweep.add_argument(
        "--sweep",
        dest="sweep_name",
        metavar="NAME",
        help="the study's name: machines that give the same join one sweep; default: the file's "
        "name (its finished sweep is not continued: a new one starts)",
    )
    sweep.add_argument("--trials", type=positive_int, metavar="N", help="a search's trials, instead of the file's")
    sweep.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop the whole sweep at the first failed trial (default: record it FAILED and go on)",
    )
    sweep.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)  # set for worker processes
    data = parser.add_argument_group("data loading (the config field 'workers')")
    data.add_argument(
        "--data-workers",
        dest="workers",
        metavar="N",
        default=argparse.SUPPRESS,
        help="data-loader worker processes of each run, or auto",
    )
    add_config_flags(parser, skip=("workers",))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep and print its results: the runs side by side, the groups, the best trial.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success.
    """
    workers.restore_secret_options(args)  # a worker's --storage and --tracking-uri come through its environment
    experiment = load_experiment(args.file, trials=args.trials, **overrides_from_args(args))
    started = []
    if not args.dry_run and args.sweep_workers > 1 and args.worker_index is None:
        try:
            workers.check_workers(args.sweep_workers)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        # first: their start-ups overlap this one's
        argv = tuple(getattr(args, "argv", None) or sys.argv[1:])
        started = workers.start_workers(argv, args.sweep_workers, workers.secret_options(args))
    # Deferred: the CLI's parser answers without loading torch, MLflow and Optuna.
    from experiments.sweeps import engine, report

    if args.dry_run:
        report.print_plan(experiment)
        return 0
    options = engine.SweepOptions(
        workers=args.sweep_workers,
        storage=args.storage,
        name=args.sweep_name,
        fail_fast=args.fail_fast,
        worker_index=args.worker_index,
    )
    sweep = engine.run_experiment(experiment, options, workers=started)
    if options.worker_index is None:
        report.print_results(sweep)
    return 0
