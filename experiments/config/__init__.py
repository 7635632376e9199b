"""The configuration: one typed `ExperimentConfig`, its command-line flags, config and experiment files.

This is the bottom layer of `experiments`: it imports nothing of the other
sub-packages, and nothing heavier than PyYAML and pydantic, so the ``zoo`` command can build
its parser (one flag per field) without loading torch.

- `schema`: `ExperimentConfig` (a pydantic model), every field and its check, `from_dict`, `load_config`.
- `flags`: the generated flags.
- `files`: YAML read within bounds.
- `experiment`: experiment files (``zoo run FILE``): defaults, runs, seeds, grids.
- ``shipped/``: the experiment files that come with the zoo (``zoo run seed``).

This package re-exports nothing, so that the ``zoo`` command's start (which masks passwords
with `secrets`) does not build the pydantic schema.
"""
