"""Command-line flags generated from `ExperimentConfig`: one per field, so flags and YAML keys never drift."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from experiments.config.schema import ExperimentConfig, choices, explain, field_kind, field_names


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
    help is the field's description and ends with its default.

    Args:
        parser: The parser of ``zoo train`` (or any command taking a config).
        skip: Fields that the command takes another way (such as a positional MODEL).
    """
    group = parser.add_argument_group("config fields (override --config)")
    for name, field in ExperimentConfig.model_fields.items():
        if name in skip:
            continue
        kind, _ = field_kind(name)
        default = field.get_default(call_default_factory=True)
        help_text = field.description or ""
        if not (kind is bool and default is None):  # a switch left to the run says what its default does
            help_text += f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if kind is bool:
            group.add_argument(flag_name(name), action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if kind is dict:
            kwargs.update(action="append", metavar="KEY=VALUE")
        elif choices(name):
            kwargs["metavar"] = "{" + ",".join(map(str, choices(name))) + "}"
        else:
            kwargs["metavar"] = {int: "N", float: "F", list: "A,B,C"}.get(kind, "VALUE")
        group.add_argument(flag_name(name), **kwargs)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line.

    Args:
        args: Parsed arguments of a parser that `add_config_flags` built.

    Returns:
        ``{field: raw value}`` for the flags the user gave.
    """
    names = set(field_names())
    return {k: v for k, v in vars(args).items() if k in names}


def field_type(name: str) -> Callable[[str], Any]:
    """An argparse type for another command's flag that takes a config field's values (``zoo data --seed``).

    The text is checked by the field's own type and bounds, so the flag and the field cannot drift.

    Args:
        name: The config field.

    Returns:
        A function from the flag's text to the value, raising `argparse.ArgumentTypeError` with the
        config's one-line message.
    """
    field = ExperimentConfig.model_fields[name]
    config = ConfigDict(allow_inf_nan=False, defer_build=True)  # built when a flag is given, not with the parser
    one_field = create_model(f"Flag_{name}", __config__=config, **{name: (field.annotation, field)})  # type: ignore[call-overload]

    def parse(text: str) -> Any:
        try:
            return getattr(one_field(**{name: text}), name)
        except ValidationError as exc:
            raise argparse.ArgumentTypeError(explain(exc, {name: text})) from None

    parse.__name__ = name
    return parse
