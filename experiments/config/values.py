"""Values from YAML or the command line turned into a field's declared type, or refused.

A flag always arrives as a string (``--lr 0.01``), a YAML key as whatever YAML
made of it (``lr: 1e-3`` is a string in YAML 1.1). Both go through `coerce`,
so ``--augment no`` and ``augment: false`` mean the same.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

import yaml

from experiments.config.errors import ConfigError


def base_type(annotation: Any) -> tuple[type, bool]:
    """The non-None type of a field's annotation and whether ``None`` is allowed.

    Args:
        annotation: Such as ``int | None``.

    Returns:
        ``(int, True)`` for that example.
    """
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return base_type(args[0])[0], True
    return (origin or annotation), False


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Turn a YAML or command-line value into the field's type.

    Args:
        name: The field, for the error message.
        value: The raw value.
        annotation: The field's type annotation.

    Returns:
        The value as that type (``None`` where the field allows it and the text says so).

    Raises:
        ConfigError: If the value is not of that type.
    """
    kind, optional = base_type(annotation)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name}: a value is required ({kind.__name__}); it cannot be empty")
    if isinstance(value, str) and optional and value.lower() in ("none", "null", "") and kind is not str:
        return None
    if isinstance(value, str) and optional and kind is bool and value.lower() == "auto":
        return None  # a switch whose default the run decides (channels_last, progress_bar)
    try:
        if kind is bool:
            return to_bool(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return finite(name, float(value))
        if kind is str:
            if isinstance(value, (dict, list, bool)):
                raise ValueError
            return str(value)
        if kind is list:
            return [finite(name, v) for v in to_float_list(value)]
        if kind is dict:
            return to_dict(value)
    except ConfigError:
        raise  # already names the field and the fix
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ConfigError(f"{name}: {value!r} is not a valid {describe(kind)}")


def finite(name: str, value: float) -> float:
    """A number, refused when it is NaN or infinite (they pass ``<`` checks and poison training).

    Args:
        name: The field, for the error message.
        value: The number.

    Returns:
        The number.

    Raises:
        ConfigError: For NaN, inf and -inf.
    """
    if not math.isfinite(value):
        raise ConfigError(f"{name}: {value} is not allowed; give a finite number")
    return value


def describe(kind: type) -> str:
    """What a value of a type looks like, for error messages.

    Args:
        kind: ``bool``, ``int``, ``float``, ``str``, ``list`` or ``dict``.

    Returns:
        Such as ``"whole number"``.
    """
    return {
        bool: "true/false value",
        int: "whole number",
        float: "number",
        str: "string",
        list: "list of numbers (such as 0.5,0.5,0.5)",
        dict: "mapping of KEY=VALUE pairs",
    }[kind]


def to_bool(value: Any) -> bool:
    """``true/yes/1/on`` and ``false/no/0/off`` (any case) as a bool.

    Args:
        value: A bool or such a word.

    Returns:
        The bool.

    Raises:
        ValueError: For any other value.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(value)


def to_float_list(value: Any) -> list[float]:
    """``"0.5,0.5,0.5"`` or a YAML list as a list of floats.

    Args:
        value: Comma-separated text or a sequence.

    Returns:
        The floats.

    Raises:
        ValueError: If it is neither, or an item is not a number.
    """
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(value)
    return [float(v) for v in items]


MAX_YAML_NODES = 100_000
"""Most nodes a YAML document may expand to, every alias counted at its full size."""


def load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` that refuses a document expanding past `MAX_YAML_NODES` nodes.

    The document is composed first (aliases are references then, so this is cheap),
    its expanded size counted, and only then constructed.

    Args:
        text: The YAML text.
        source: What it is, for the error message (``config file 'x.yaml'``).

    Returns:
        The parsed data.

    Raises:
        ConfigError: If aliases make the document too large.
        yaml.YAMLError: If it is not valid YAML.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node)
        if expanded > MAX_YAML_NODES:
            raise ConfigError(
                f"{source} expands to more than {MAX_YAML_NODES:,} values through its aliases "
                f"(&anchor/*alias); write the values out"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of a composed document with every alias expanded, stopping early past the bound."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done or not children:
            sizes[id(node)] = min(MAX_YAML_NODES + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def to_dict(value: Any) -> dict[str, Any]:
    """A YAML mapping, or ``KEY=VALUE`` strings from repeated flags, as a dict.

    Values after ``=`` are read as YAML (``depth=3`` gives the number 3).

    Args:
        value: A mapping or a list of ``KEY=VALUE`` strings.

    Returns:
        The dict, with string keys.

    Raises:
        ValueError: For an item without ``=`` or a key.
    """
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        out: dict[str, Any] = {}
        for item in value:
            key, sep, raw = str(item).partition("=")
            if not sep or not key:
                raise ValueError(item)
            out[key] = load_yaml(raw, f"the value of {key}") if raw else ""
        return out
    raise ValueError(value)
