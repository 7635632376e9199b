"""`zoo run FILE|NAME`: every run (or trial) of an experiment file, on one or more workers, then the results.

``--workers N`` runs N worker processes on this machine; the same command on more
machines, with one ``--storage`` and ``--sweep``, joins the same sweep.
"""

from __future__ import annotations

import argparse
import sys

from experiments.analysis.tables import format_table
from experiments.commands import SUMMARIES, positive_int
from experiments.config import (
    SHIPPED_DIR,
    ConfigError,
    ExperimentFile,
    add_config_flags,
    load_experiment,
    overrides_from_args,
)
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
        "optuna.db beside the MLflow store",
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


def print_plan(experiment: ExperimentFile) -> None:
    """Print what a run of the file would do: its runs, or its search.

    Args:
        experiment: The experiment file.
    """
    search = experiment.search
    if search is not None and experiment.samples:
        base = experiment.runs[0]
        print(
            f"search of {base.model} on {base.data}: {search.trials} trials, sampler {search.sampler}, "
            f"pruner {search.pruner}, objective {search.direction} {search.objective}"
        )
        rows = [
            {"field": k, "distribution": d.describe(), "base value": getattr(base, k)} for k, d in search.space.items()
        ]
        print(format_table(rows, ["field", "distribution", "base value"]))
        return
    columns = ["run_name", "model", "data", "epochs", "batch_size", "lr", "seed", "experiment"]
    print(format_table([{**c.to_dict(), "run_name": c.default_run_name()} for c in experiment.runs], columns))


def run(args: argparse.Namespace) -> int:
    """Run the sweep and print its results: the runs side by side, the groups, the best trial.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success.
    """
    workers.restore_secret_options(args)  # a worker's --storage and --tracking-uri come through its environment
    experiment = load_experiment(args.file, trials=args.trials, **overrides_from_args(args))
    if args.dry_run:
        print_plan(experiment)
        return 0
    argv = tuple(getattr(args, "argv", None) or sys.argv[1:])
    started = []
    if args.sweep_workers > 1 and args.worker_index is None:
        try:
            workers.check_workers(args.sweep_workers)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        # first: their start-ups overlap this one's
        started = workers.start_workers(argv, args.sweep_workers, workers.secret_options(args))
    # Deferred: the CLI's parser (and --dry-run) answers without loading torch, MLflow and Optuna.
    from experiments.analysis import compare, grouping
    from experiments.sweeps import engine, report
    from experiments.sweeps import study as studies

    options = engine.SweepOptions(
        workers=args.sweep_workers,
        storage=args.storage,
        name=args.sweep_name,
        fail_fast=args.fail_fast,
        worker_index=args.worker_index,
    )
    sweep = engine.run_experiment(experiment, options, workers=started)
    if options.worker_index is not None:
        return 0
    uri = engine.tracking_uri_of(experiment)
    now = studies.counts(sweep.study)
    if uri is not None:
        ids = {t.user_attrs.get(studies.MLFLOW_RUN_ATTR) for t in studies.finished_trials(sweep.study)}
        runs = [r for r in compare.find_runs(experiment.runs[0].experiment, uri=uri) if r.info.run_id in ids]
        if runs:
            grouped = bool(sweep.parent_run_id) and not experiment.samples
            # Where runs repeat a configuration (seeds), the groups' verdicts judge, not the luckiest run.
            rows, cols = compare.compare_rows(runs, mark_best=not (grouped and compare.repeated_configs(runs)))
            print(format_table(rows, cols))
            if grouped:
                print(f"\nparent run {sweep.parent_run_id}; mean, std and 95% CI over seeds:")
                comparisons = report.sweep_comparisons(runs)
                first = comparisons[0] if comparisons else None
                rows, cols = grouping.group_rows(runs, compare.group_keys(runs), ci_as_text=True, comparison=first)
                print(format_table(rows, cols))
                if first is not None and first.pairs:
                    print(grouping.verdict_report(comparisons))
    if experiment.samples or uri is None:
        rows, cols = report.sweep_rows(sweep, uri)
        print(f"\nsweep '{sweep.name}': trials, best first:")
        print(format_table(rows, cols))
    best = report.best_trial(sweep.study)
    seeded_groups = bool(experiment.seeds) and not experiment.samples  # the verdicts above say which is best
    if best is not None and experiment.is_sweep and not seeded_groups:
        metric, _ = report.objective(experiment)
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        print(
            f"\nbest trial {best.number}: {metric} {best.value:.4g}"
            + (f" ({shown})" if shown else "")
            + (f"; parent run {sweep.parent_run_id}" if sweep.parent_run_id else "")
        )
    if now["waiting"] or now["running"]:
        print(
            f"\n{now['complete'] + now['pruned'] + now['failed']} of {experiment.trials} trials done; the sweep "
            f"'{sweep.name}' goes on in other processes (run this command again to join it)"
        )
    return 0
