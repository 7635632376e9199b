"""Config files: YAML read safely, one line for any failure, overrides on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from experiments.config.errors import ConfigError
from experiments.config.schema import ExperimentConfig, from_dict


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file with ``yaml.safe_load``, turning every failure into a `ConfigError`.

    Args:
        path: The file.

    Returns:
        The parsed data.

    Raises:
        ConfigError: If the file is missing or not valid YAML.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file '{file}' does not exist; give the path of a YAML file")
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
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
