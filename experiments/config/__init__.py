"""The configuration: one typed `ExperimentConfig`, its command-line flags, config and experiment files.

This is the bottom layer of `experiments`: it imports nothing of the other
sub-packages, and nothing heavier than PyYAML, so the ``zoo`` command can build
its parser (one flag per field) without loading torch.

- `schema`: `ExperimentConfig` (a pydantic model), every field and its check, `from_dict`, `load_config`.
- `flags`: the generated flags.
- `files`: YAML read within bounds.
- `experiment`: experiment files (``zoo run FILE``): defaults, runs, seeds, grids.
- ``shipped/``: the experiment files that come with the zoo (``zoo run seed``).
"""

from __future__ import annotations

from experiments.config.errors import ConfigError
from experiments.config.experiment import SHIPPED_DIR, ExperimentFile, find_experiment_file, load_experiment
from experiments.config.files import read_yaml
from experiments.config.flags import add_config_flags, field_type, flag_name, overrides_from_args
from experiments.config.schema import ExperimentConfig, field_names, from_dict, load_config

__all__ = [
    "SHIPPED_DIR",
    "ConfigError",
    "ExperimentConfig",
    "ExperimentFile",
    "add_config_flags",
    "field_names",
    "field_type",
    "find_experiment_file",
    "flag_name",
    "from_dict",
    "load_config",
    "load_experiment",
    "overrides_from_args",
    "read_yaml",
]
