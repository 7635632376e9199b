"""Search spaces of experiment files: ``search:`` maps config fields to distributions, checked before any trial.

::

    search:
      lr: {loguniform: [1.0e-4, 1.0e-1]}
      weight_decay: {uniform: [0.0, 5.0e-4]}
      batch_size: {choice: [32, 64, 128]}
      epochs: {int: [2, 6]}
    trials: 20
    sampler: tpe          # tpe (default), random, grid
    objective: val_acc    # the metric and its direction; default: the config's monitor
    pruner: median        # median (default), hyperband, none; prunes at epoch ends

`Search` and `Distribution` are pydantic models: the choices of the sampler, the
pruner and the direction, and the trials' bound, are declared on their fields.
Every bound and every choice is tried against the config's own checks when the
file is read, so a search that would produce a bad config fails then, not in
trial 17. ``sampler: grid`` takes choices only: every combination is one trial.
"""

from __future__ import annotations

import itertools
import math
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, ValidationInfo, model_validator

from experiments.config.errors import ConfigError
from experiments.config.schema import EPOCH_METRICS, EpochMetric, ExperimentConfig, field_names

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
"""Kinds of a search dimension: a float on a log scale, a float, a whole number, one of a list."""


def refuse_non_fields(keys: Iterable[str], what: str, seed_hint: str) -> None:
    """Refuse a key of a file's ``search:`` or ``grid:`` that is not a config field, or is ``seed`` (swept another way).

    Args:
        keys: The keys as written.
        what: ``search`` or ``grid``, as the error names the key.
        seed_hint: What the error says to do instead of sweeping ``seed`` this way.

    Raises:
        ConfigError: For the first such key.
    """
    for key in keys:
        if key not in field_names() or key == "seed":
            hint = seed_hint if key == "seed" else "see docs/training.md for the fields"
            raise ConfigError(f"{what} key '{key}' is not a config field; {hint}")


class Distribution(BaseModel):
    """One dimension of a search space, read from ``{loguniform: [lo, hi]}``, ``{int: [lo, hi]}``, ``{choice: [...]}``.

    Attributes:
        kind: One of `DISTRIBUTIONS`.
        low: Lower bound (inclusive) of ``loguniform``, ``uniform`` and ``int``.
        high: Upper bound (inclusive).
        choices: The values of ``choice``.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    kind: Literal["loguniform", "uniform", "int", "choice"]
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _read(cls, spec: Any) -> Any:
        """The file's one-key mapping as a kind and its bounds or choices; its errors follow ``search 'FIELD'``."""
        if isinstance(spec, Distribution):
            return spec
        if not isinstance(spec, Mapping) or len(spec) != 1:
            kinds = ", ".join(f"{k}: ..." for k in DISTRIBUTIONS)
            raise ValueError(f" must be one of {{{kinds}}}, such as {{loguniform: [1.0e-4, 1.0e-1]}}")
        kind, values = next(iter(spec.items()))
        if kind not in DISTRIBUTIONS:
            raise ValueError(f": unknown distribution '{kind}'; use one of: {', '.join(DISTRIBUTIONS)}")
        if not isinstance(values, list) or not values:
            raise ValueError(f": {kind} needs a list, such as {kind}: [1, 10]")
        if kind == "choice":
            if len(values) != len({repr(v) for v in values}):
                raise ValueError(f": choice lists a value twice ({values}); list each once")
            return {"kind": kind, "choices": tuple(values)}
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if len(values) != 2 or not numeric or not all(math.isfinite(v) for v in values):
            raise ValueError(f": {kind} needs two finite numbers [low, high], not {values}")
        low, high = values
        if kind == "int" and not all(float(v).is_integer() for v in values):
            raise ValueError(f": int needs whole numbers [low, high], not {values}")
        if low >= high:
            raise ValueError(
                f": the bounds [{low}, {high}] are in the wrong order (or equal); give [low, high] with low < high"
            )
        if kind == "loguniform" and low <= 0:
            raise ValueError(f": loguniform needs bounds above 0, not {low}")
        return {"kind": kind, "low": low, "high": high}

    def edges(self) -> list[Any]:
        """The values that bound what this dimension can give: its bounds, or every choice.

        Returns:
            The values.
        """
        if self.kind == "choice":
            return list(self.choices)
        low, high = self.bounds()
        return [int(low), int(high)] if self.kind == "int" else [low, high]

    def bounds(self) -> tuple[float, float]:
        """The range of a ``loguniform``, ``uniform`` or ``int`` dimension.

        Returns:
            ``(low, high)``.

        Raises:
            ConfigError: For a dimension without bounds (a ``choice``).
        """
        if self.low is None or self.high is None:
            raise ConfigError(f"a {self.kind} dimension has no low and high bounds")
        return self.low, self.high

    def describe(self) -> str:
        """The dimension as the file writes it, for tables and params.

        Returns:
            Such as ``loguniform(0.0001, 0.1)``.
        """
        inside = ", ".join(map(str, self.choices)) if self.kind == "choice" else f"{self.low:g}, {self.high:g}"
        return f"{self.kind}({inside})"


class Search(BaseModel):
    """A file's search: the space, how many trials, how to sample and prune, and what to optimise.

    Built by `parse_search` with the config the trials start from, which the one validator checks
    every bound and choice against, and which gives the default objective and direction.

    Attributes:
        space: Config field -> `Distribution`.
        trials: Trials to run (for ``sampler: grid``, the number of combinations).
        sampler: ``tpe``, ``random`` or ``grid``.
        objective: An epoch metric (one of `EPOCH_METRICS`); a trial's value is its best epoch.
        direction: ``maximize`` or ``minimize``.
        pruner: ``median``, ``hyperband`` or ``none``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    space: dict[str, Distribution]
    trials: StrictInt = Field(ge=1)
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    objective: EpochMetric
    direction: Literal["maximize", "minimize"]
    pruner: Literal["median", "hyperband", "none"] = "median"

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        """The file's keys: ``search:`` fields only, the objective with its direction, a grid's trials counted."""
        base = typing.cast(ExperimentConfig, (info.context or {})["base"])
        spec = data.get("space")
        if not isinstance(spec, Mapping) or not spec:
            raise ConfigError(
                "'search:' must map config fields to distributions, such as lr: {loguniform: [1.0e-4, 1.0e-1]}"
            )
        refuse_non_fields(spec, "search", "seeds are not searched: give --seed, or one file per seed")
        objective = base.monitor if data.get("objective") is None else data["objective"]
        direction = None
        if isinstance(objective, Mapping):
            if any(k not in ("metric", "direction") for k in objective) or "metric" not in objective:
                raise ConfigError(
                    f"objective takes {{metric: NAME, direction: maximize|minimize}}, not {dict(objective)}"
                )
            objective, direction = objective["metric"], objective.get("direction")
        if direction is None and objective == base.monitor:  # the way the config's monitor_mode says
            direction = "maximize" if base.monitor_mode == "max" else "minimize"
        elif direction is None and objective in EPOCH_METRICS:  # losses down, accuracies up
            direction = "minimize" if str(objective).endswith(("_loss", "_loss_epoch")) else "maximize"
        values = {k: v for k, v in data.items() if v is not None}
        defaults = {"sampler": data.get("sampler") or "tpe", "pruner": data.get("pruner") or "median"}
        return {**values, **defaults, "objective": objective, "direction": direction}

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Search:
        """A grid of choices only; every value a trial can draw passes the config's checks."""
        if self.sampler == "grid":
            not_choice = [k for k, d in self.space.items() if d.kind != "choice"]
            if not_choice:
                kind = self.space[not_choice[0]].kind
                raise ConfigError(f"sampler grid takes choice lists only; '{not_choice[0]}' is {kind}")
        for key, dimension in self.space.items():
            for value in dimension.edges():
                try:
                    typing.cast(ExperimentConfig, (info.context or {})["base"]).replace(**{key: value})
                except ConfigError as exc:
                    raise ConfigError(f"search '{key}' can give {value!r}, which the config refuses: {exc}") from None
        return self

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the choices, for ``sampler: grid``.

        Returns:
            One mapping of field values per trial.
        """
        keys = list(self.space)
        return [
            dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.space[k].choices for k in keys))
        ]


def parse_search(data: Mapping[str, Any], base: ExperimentConfig, source: str) -> Search:
    """Read and check a file's ``search:``, ``trials:``, ``sampler:``, ``objective:`` and ``pruner:``.

    Args:
        data: The parsed experiment file.
        base: The config every trial starts from (``defaults:`` and the command line).
        source: The file, for error messages.

    Returns:
        The search.

    Raises:
        ConfigError: Naming the key at fault.
    """
    spec = data.get("search")
    together = next((key for key in ("grid", "seeds") if data.get(key)), None)
    if together:
        clash = [k for k in spec if k in data["grid"]] if together == "grid" and isinstance(spec, Mapping) else []
        what = f"'{clash[0]}' is in both 'search:' and 'grid:'" if clash else f"'search:' and '{together}:' together"
        raise ConfigError(
            f"experiment file '{source}': {what}; a file either searches or lists its runs: move it to one of them"
        )
    if len(data.get("runs") or [{}]) != 1:
        raise ConfigError(
            f"experiment file '{source}': a search starts from one config; give 'defaults:' (and at most one run)"
        )
    keys = {"space": spec, **{k: data.get(k) for k in ("trials", "sampler", "objective", "pruner")}}
    lists: list[Any] = (
        [d.get("choice") for d in spec.values() if isinstance(d, Mapping)] if isinstance(spec, Mapping) else []
    )
    if data.get("sampler") == "grid" and spec and len(lists) == len(spec) and all(isinstance(c, list) for c in lists):
        size: int = math.prod(len(c) for c in lists)  # one trial per combination of the choices
        if keys["trials"] is not None and keys["trials"] != size:
            raise ConfigError(
                f"experiment file '{source}': a grid of these choices has {size} trials, not {keys['trials']}; "
                f"drop 'trials:'"
            )
        keys["trials"] = size
    try:
        return Search.model_validate(keys, context={"base": base})
    except ValidationError as exc:
        raise ConfigError(f"experiment file '{source}': {_problem(exc)}") from None


def _problem(error: ValidationError) -> str:
    """The one line for pydantic's report on a search: the first problem, named as the file writes it."""
    first = error.errors()[0]
    key = first["loc"][0] if first["loc"] else ""
    if first["type"] == "value_error":
        message = str(first["ctx"]["error"])
        return f"search '{first['loc'][1]}'{message}" if key == "space" else message
    if key == "trials":
        if first["type"] == "missing":
            return "a search needs 'trials:', the number of trials to run, such as trials: 20"
        return f"trials must be a whole number of at least 1, not {first['input']!r}"
    if key == "objective":
        return f"objective: '{first['input']}' is not a metric every epoch logs; use one of: {', '.join(EPOCH_METRICS)}"
    if key == "direction":
        return f"objective: direction '{first['input']}' is not allowed; use maximize or minimize"
    allowed = typing.get_args(Search.model_fields[str(key)].annotation)
    return f"{key} '{first['input']}' is not allowed; use one of: {', '.join(allowed)}"
