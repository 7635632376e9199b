"""`zoo train MODEL [flags]`, `zoo train --config FILE`, `zoo train --resume RUN_ID`: one run."""

from __future__ import annotations

import argparse

from experiments.analysis.tables import format_table
from experiments.commands import SUMMARIES
from experiments.config.errors import ConfigError
from experiments.config.flags import add_config_flags, flag_name, overrides_from_args
from experiments.config.schema import ExperimentConfig, from_dict, load_config
from experiments.config.secrets import mask_uri


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` subcommand, with one flag per config field.

    Args:
        subparsers: The `zoo` parser's subparsers.
    """
    parser = subparsers.add_parser(
        "train", help=SUMMARIES["train"], description="Train a registered model; every config field has a flag."
    )
    parser.add_argument("model", nargs="?", default=argparse.SUPPRESS, help="registered model name (zoo models)")
    parser.add_argument("--config", metavar="FILE", help="YAML file of config fields; flags override it")
    parser.add_argument(
        "--resume", metavar="RUN_ID", help="continue a run from its last state (config read from the run)"
    )
    add_config_flags(parser, skip=("model",))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and print the summary.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success.
    """
    overrides = overrides_from_args(args)
    config: ExperimentConfig | None = None
    if args.resume:
        extra = [k for k in overrides if k != "tracking_uri"] + (["model"] if "model" in args else [])
        if extra or args.config:
            given = flag_name(extra[0]) if extra else "--config"
            raise ConfigError(
                f"--resume continues the run with its own config; drop {given} (only --tracking-uri is allowed)"
            )
    elif args.config:  # the --config file, then the flags; a bad value is one line now, before torch loads
        config = load_config(args.config, **overrides)
    else:
        config = from_dict(overrides, source="command line")
    # Deferred: the CLI's parser (and a bad flag) answers without loading torch and MLflow.
    from experiments.training import distributed, runner

    result = runner.resume(args.resume, getattr(args, "tracking_uri", None)) if config is None else runner.train(config)
    if distributed.is_rank_zero():  # the other DDP ranks ran the same command; one summary is enough
        print(format_table([{"metric": k, "value": v} for k, v in result.metrics.items()], ["metric", "value"]))
        if result.run_id:
            print(f"run {result.run_id} in {mask_uri(result.tracking_uri)}; compare runs with `zoo compare`")
    return 0
