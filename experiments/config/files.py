"""Config files: YAML read safely and within bounds, one line for any failure, overrides on top.

``yaml.safe_load`` runs no code, but an alias "bomb" (``a: &a [1, 1]``,
``b: &b [*a, *a]``, ... ten levels deep) is a few hundred bytes that expand into
billions of items as soon as anything walks them. `load_yaml` refuses a file
whose document would expand past `MAX_YAML_NODES` nodes, and a file larger than
`MAX_YAML_BYTES`, before anything is built from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from experiments.config.errors import ConfigError
from experiments.config.schema import ExperimentConfig, from_dict
from experiments.config.values import load_yaml

MAX_YAML_BYTES = 1_000_000
"""Largest config or experiment file read (bytes)."""


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file safely and within bounds, turning every failure into a `ConfigError`.

    Args:
        path: The file.

    Returns:
        The parsed data.

    Raises:
        ConfigError: If the file is missing, too large, not valid YAML, or expands past the bound.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file '{file}' does not exist; give the path of a YAML file")
    size = file.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ConfigError(f"config file '{file}' is {size:,} bytes; a config file may hold at most {MAX_YAML_BYTES:,}")
    try:
        return load_yaml(file.read_text(encoding="utf-8"), f"config file '{file}'")
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = str(exc).replace("\n", " ")[:160]
        raise ConfigError(f"config file '{file}' is not valid YAML ({detail}); fix the syntax") from None


def load_config(path: str | Path, **overrides: Any) -> ExperimentConfig:
    """Load a YAML file of config fields, with overrides on top.

    Args:
        path: The file (``zoo train --config FILE``).
        **overrides: Field values that win over the file's.

    Returns:
        The validated config.
    """
    values = read_yaml(path) or {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"config file '{path}' must hold a mapping of config fields")
    return from_dict({**values, **overrides}, source=str(path))
