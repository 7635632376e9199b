"""Command-line flags generated from `ExperimentConfig`: one per field, so flags and YAML keys never drift."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from experiments.config.schema import ExperimentConfig, field_names, field_types
from experiments.config.values import base_type


def flag_name(name: str) -> str:
    """The command-line flag of a field (``batch_size`` -> ``--batch-size``).

    Args:
        name: Field name.

    Returns:
        The flag.
    """
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, *, skip: Sequence[str] = ()) -> None:
    """Add one flag per config field; values the user does not give stay unset.

    Booleans get ``--x/--no-x``, mappings a repeatable ``KEY=VALUE``; every flag's
    help ends with the field's default.

    Args:
        parser: The parser of ``zoo train`` (or any command taking a config).
        skip: Fields that the command takes another way (such as a positional MODEL).
    """
    group = parser.add_argument_group("config fields (override --config)")
    hints = field_types()
    for f in fields(ExperimentConfig):
        if f.name in skip:
            continue
        kind, _ = base_type(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:  # cannot happen: ExperimentConfig() builds with no arguments, so every field has a default
            raise TypeError(f"config field {f.name} has no default")
        help_text = f.metadata.get("help", "")
        if not (kind is bool and default is None):  # a switch left to the run says what its default does
            help_text += f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if kind is bool:
            group.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if kind is dict:
            kwargs.update(action="append", metavar="KEY=VALUE")
        elif f.metadata.get("choices"):
            kwargs.update(metavar="{" + ",".join(map(str, f.metadata["choices"])) + "}")
        else:
            kwargs["metavar"] = {int: "N", float: "F", list: "A,B,C"}.get(kind, "VALUE")
        group.add_argument(flag_name(f.name), **kwargs)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line.

    Args:
        args: Parsed arguments of a parser that `add_config_flags` built.

    Returns:
        ``{field: raw value}`` for the flags the user gave.
    """
    names = set(field_names())
    return {k: v for k, v in vars(args).items() if k in names}
