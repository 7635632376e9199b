"""Experiment files (``zoo run FILE``): shared defaults, a list of runs, seeds and grids, or a search.

An experiment file has ``defaults:`` (config fields every run shares), ``runs:``
(one mapping of fields per run), an optional ``description:`` and, to sweep,
either a search (``search:``, see `experiments.config.search`) or two more keys::

    seeds: [0, 1, 2]            # every run once per seed
    grid:                       # every run once per combination (a Cartesian product)
      lr: [0.001, 0.003]
      batch_size: [32, 64]

Each entry of ``runs:`` (or one empty run, when the file has only a ``grid:``) is
expanded over the grid and then over the seeds. A value given on the command
line wins: ``--seed 5`` replaces the file's seeds, ``--lr 0.01`` drops ``lr``
from the grid. Every expanded run is validated before the first one starts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, ValidationInfo, field_validator

from experiments.config.errors import ConfigError
from experiments.config.files import read_yaml
from experiments.config.schema import ExperimentConfig, from_dict
from experiments.config.search import Search, parse_search, refuse_non_fields


@dataclass
class ExperimentFile:
    """An experiment file (``zoo run FILE``) as loaded: every run's validated config, and its sweep keys.

    Attributes:
        name: The file's name (its stem), used as the default MLflow experiment.
        runs: One validated config per run.
        source: The file path.
        seeds: Its ``seeds:``, or ``None``.
        grid: Its ``grid:``, or ``None``.
        description: Its ``description:`` (the sweep parent's description in MLflow).
        search: Its search, or ``None``; with ``sampler: grid`` its combinations are `runs`.
    """

    name: str
    runs: list[ExperimentConfig]
    source: str
    seeds: list[int] | None = None
    grid: dict[str, list[Any]] | None = None
    description: str = ""
    search: Search | None = None

    @property
    def is_sweep(self) -> bool:
        """Whether its runs go under one parent run: the file gives ``seeds:``, ``grid:`` or ``search:``."""
        return bool(self.seeds or self.grid or self.search)

    @property
    def samples(self) -> bool:
        """Whether trials draw their values from a sampler (a search that is not a grid)."""
        return self.search is not None and self.search.sampler != "grid"

    @property
    def trials(self) -> int:
        """How many trials the sweep runs: the search's trials, else one per listed run."""
        return self.search.trials if self.search is not None and self.samples else len(self.runs)


class WrittenFile(BaseModel):
    """An experiment file's keys as written; a field's description is what its error says the key must be.

    The search's keys are read by `parse_search`, with the config the trials start from.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    defaults: dict[str, Any] = Field({}, description="'defaults:' must be a mapping of config fields")
    runs: list[dict[str, Any]] = Field(
        [{}], description="'runs:' must be a list of runs, each a mapping of config fields"
    )
    description: str = Field("", description="'description:' must be text")
    seeds: list[StrictInt] | None = Field(
        None, min_length=1, description="'seeds:' must be a non-empty list of whole numbers, such as [0, 1, 2]"
    )
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] | None = Field(
        None, min_length=1, description="'grid:' must map config fields to lists of values"
    )
    search: Any = None
    trials: Any = None
    sampler: Any = None
    objective: Any = None
    pruner: Any = None

    @field_validator("defaults", "runs", "description", mode="before")
    @classmethod
    def _unset(cls, value: Any, info: ValidationInfo) -> Any:
        """An empty key (``defaults:``) is the key's default."""
        return cls.model_fields[str(info.field_name)].get_default(call_default_factory=True) if value is None else value

    @field_validator("seeds")
    @classmethod
    def _once(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds and len(set(seeds)) != len(seeds):
            raise ConfigError(f"'seeds:' repeats a seed ({seeds}); list each seed once")
        return seeds

    @field_validator("grid")
    @classmethod
    def _fields(cls, grid: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        refuse_non_fields(grid or {}, "grid", "use 'seeds:' for seeds")
        return grid


def _problem(error: ValidationError) -> str:
    """The one line for pydantic's report on an experiment file's keys."""
    problems = error.errors()
    first = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    key = str(first["loc"][0])
    if first["type"] == "extra_forbidden":
        return f"unknown key '{key}'; allowed: {', '.join(WrittenFile.model_fields)}"
    if first["type"] == "value_error":
        return str(first["ctx"]["error"])
    if key == "grid" and len(first["loc"]) > 1:
        return f"grid '{first['loc'][1]}' must be a non-empty list of values"
    if key == "runs" and len(first["loc"]) > 1:
        return f"run {int(first['loc'][1]) + 1} must be a mapping of config fields"
    return str(WrittenFile.model_fields[key].description)


MAX_RUNS = 1000
"""Most runs one experiment file may expand to (runs x grid combinations x seeds)."""

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
"""Where the shipped experiment files live (``zoo run seed``)."""


def find_experiment_file(name_or_path: str) -> Path:
    """Find an experiment file by path or by the name of a shipped one.

    Args:
        name_or_path: ``path/to/file.yaml`` or a shipped name such as ``seed``.

    Returns:
        The file's path.

    Raises:
        ConfigError: If neither exists.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml")))
    raise ConfigError(f"experiment file '{name_or_path}' not found; give a YAML path or a shipped name ({names})")


def load_experiment(name_or_path: str, *, trials: int | None = None, **overrides: Any) -> ExperimentFile:
    """Load an experiment file: ``defaults:`` merged under each of ``runs:``, or its search.

    Args:
        name_or_path: A path or a shipped name.
        trials: A search's number of trials, instead of the file's (``zoo run --trials``).
        **overrides: Field values that win over the file (from the command line).

    Returns:
        The experiment, every run validated before any starts.

    Raises:
        ConfigError: Naming the run and field at fault.
    """
    path = find_experiment_file(name_or_path)
    data = read_yaml(path)
    if not isinstance(data, Mapping) or not (
        (isinstance(data.get("runs"), list) and data["runs"]) or any(data.get(k) for k in ("grid", "seeds", "search"))
    ):
        raise ConfigError(
            f"experiment file '{path}' needs a non-empty list under 'runs:', or a 'grid:', 'seeds:' "
            f"or 'search:' (and optional 'defaults:')"
        )
    try:
        written = WrittenFile.model_validate({str(k): v for k, v in data.items()})
    except ValidationError as exc:
        raise ConfigError(f"experiment file '{path}': {_problem(exc)}") from None
    defaults = {"experiment": path.stem, **written.defaults}
    if "search" in data:
        if trials is not None:
            data = {**data, "trials": trials}
        return _load_search(path, data, defaults, overrides, written.description)
    if trials is not None:
        raise ConfigError(f"--trials: experiment file '{path}' lists its runs; only a search ('search:') has trials")
    stray = [k for k in ("trials", "sampler", "objective", "pruner") if k in data]
    if stray:
        raise ConfigError(f"experiment file '{path}': '{stray[0]}:' belongs to a search; add 'search:' or drop it")
    seeds, grid = written.seeds, written.grid
    runs = [
        from_dict(values, source=f"{path} run {i + 1}")
        for i, values in enumerate(expand_runs(written.runs or [{}], defaults, overrides, seeds, grid, str(path)))
    ]
    return ExperimentFile(
        name=path.stem, runs=runs, source=str(path), seeds=seeds, grid=grid, description=written.description
    )


def _load_search(
    path: Path, data: Mapping[str, Any], defaults: Mapping[str, Any], overrides: Mapping[str, Any], description: str
) -> ExperimentFile:
    """An experiment file with ``search:``: its base config, and the grid's runs for ``sampler: grid``."""
    first = (data.get("runs") or [{}])[0]  # a mapping: WrittenFile checked it
    base = from_dict({**defaults, **first, **overrides}, source=f"{path} defaults")
    spec = data.get("search")
    if isinstance(spec, Mapping):  # a value given on the command line is no longer searched
        data = {**data, "search": {k: v for k, v in spec.items() if k not in overrides}}
    search = parse_search(data, base, str(path))
    runs = [base]
    if search.sampler == "grid":
        runs = [
            from_dict(
                {**base.to_dict(), **combo, "run_name": child_run_name(base.to_dict(), combo)}, source=f"{path} grid"
            )
            for combo in search.grid()
        ]
        if len(runs) > MAX_RUNS:
            raise ConfigError(
                f"experiment file '{path}' expands to {len(runs):,} runs; at most {MAX_RUNS:,} are "
                f"allowed; make the grid smaller"
            )
    elif search.trials > MAX_RUNS:
        raise ConfigError(f"experiment file '{path}': {search.trials:,} trials; at most {MAX_RUNS:,} are allowed")
    return ExperimentFile(name=path.stem, runs=runs, source=str(path), description=description, search=search)


def expand_runs(
    runs: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any],
    seeds: list[int] | None,
    grid: dict[str, list[Any]] | None,
    source: str,
) -> list[dict[str, Any]]:
    """Every run of an experiment file, expanded over its grid and seeds.

    Args:
        runs: The file's ``runs:`` entries (mappings of config fields).
        defaults: Its ``defaults:`` (with the experiment name).
        overrides: Field values from the command line; they win over everything.
        seeds: The ``seeds:`` list or ``None``.
        grid: The ``grid:`` mapping or ``None``.
        source: The file, for error messages.

    Returns:
        One mapping of config fields per run, in order: run, then grid combination, then seed.

    Raises:
        ConfigError: If a run sets a field that the grid also varies, or the file expands to
            more than `MAX_RUNS` runs.
    """
    grid = {k: v for k, v in (grid or {}).items() if k not in overrides}
    seeds = None if "seed" in overrides else seeds
    count = len(runs) * math.prod(len(v) for v in grid.values()) * len(seeds or [None])
    if count > MAX_RUNS:  # counted before anything is expanded: a 10 x 10 grid would not fit in memory
        raise ConfigError(
            f"experiment file '{source}' expands to {count:,} runs; at most {MAX_RUNS:,} are allowed "
            f"(runs x grid combinations x seeds); make the grid smaller"
        )
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())] if grid else [{}]
    run_seeds: list[int | None] = [*seeds] if seeds else [None]
    expanded = []
    for i, run in enumerate(runs):
        clash = [k for k in grid if k in run]
        if clash:
            raise ConfigError(
                f"experiment file '{source}': run {i + 1} sets '{clash[0]}', which the grid varies; set it in one place"
            )
        for combo in combos:
            for seed in run_seeds:
                values = {**defaults, **run, **combo, **({"seed": seed} if seed is not None else {}), **overrides}
                if (combo or seeds) and "run_name" not in run and "run_name" not in overrides:
                    values["run_name"] = child_run_name(values, combo)
                expanded.append(values)
    return expanded


def child_run_name(values: Mapping[str, Any], combo: Mapping[str, Any]) -> str:
    """The name of one combination's run, what differs first: ``[KEY=VALUE-...]sSEED-MODEL``.

    MLflow's runs table cuts a long name at its end, so the grid values and the seed,
    which tell a sweep's runs apart, come before the model name, which most share.

    Args:
        values: The run's config fields.
        combo: The grid values of this combination.

    Returns:
        The name, such as ``lr=0.001-s0-resnet50_scratch``.
    """
    parts = [f"{k}={v}" for k, v in combo.items() if k != "model"]
    parts += [f"s{values.get('seed', 0)}", str(combo.get("model", values.get("model", "run")))]
    return "-".join(parts)
