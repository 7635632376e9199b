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

Every bound and every choice is tried against the config's own checks when the
file is read, so a search that would produce a bad config fails then, not in
trial 17. ``sampler: grid`` takes choices only: every combination is one trial.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from experiments.config.errors import ConfigError
from experiments.config.schema import EPOCH_METRICS, ExperimentConfig, field_names

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
"""Kinds of a search dimension: a float on a log scale, a float, a whole number, one of a list."""

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Distribution:
    """One dimension of a search space.

    Attributes:
        kind: One of `DISTRIBUTIONS`.
        low: Lower bound (inclusive) of ``loguniform``, ``uniform`` and ``int``.
        high: Upper bound (inclusive).
        choices: The values of ``choice``.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def edges(self) -> list[Any]:
        """The values that bound what this dimension can give: its bounds, or every choice.

        Returns:
            The values.
        """
        if self.kind == "choice":
            return list(self.choices)
        low, high = self.bounds()
        if self.kind == "int":
            return [int(low), int(high)]
        return [low, high]

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


@dataclass(frozen=True)
class Search:
    """A file's search: the space, how many trials, how to sample and prune, and what to optimise.

    Attributes:
        space: Config field -> `Distribution`.
        trials: Trials to run.
        sampler: One of `SAMPLERS`.
        objective: An epoch metric (one of `EPOCH_METRICS`); a trial's value is its best epoch.
        direction: ``maximize`` or ``minimize``.
        pruner: One of `PRUNERS`.
    """

    space: dict[str, Distribution]
    trials: int
    sampler: str
    objective: str
    direction: str
    pruner: str

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the choices, for ``sampler: grid``.

        Returns:
            One mapping of field values per trial.
        """
        keys = list(self.space)
        return [
            dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.space[k].choices for k in keys))
        ]


def parse_distribution(field: str, spec: Any, source: str) -> Distribution:
    """Read ``{loguniform: [lo, hi]}``, ``{uniform: [lo, hi]}``, ``{int: [lo, hi]}`` or ``{choice: [...]}``.

    Args:
        field: The config field it samples.
        spec: The YAML value.
        source: The file, for error messages.

    Returns:
        The distribution.

    Raises:
        ConfigError: For an unknown kind, a malformed value, or bounds in the wrong order.
    """
    where = f"experiment file '{source}': search '{field}'"
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ConfigError(
            f"{where} must be one of {{{', '.join(f'{k}: ...' for k in DISTRIBUTIONS)}}}, "
            f"such as {{loguniform: [1.0e-4, 1.0e-1]}}"
        )
    kind, values = next(iter(spec.items()))
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: unknown distribution '{kind}'; use one of: {', '.join(DISTRIBUTIONS)}")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: {kind} needs a list, such as {kind}: [1, 10]")
    if kind == "choice":
        if len(values) != len({repr(v) for v in values}):
            raise ConfigError(f"{where}: choice lists a value twice ({values}); list each once")
        return Distribution(kind, choices=tuple(values))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if len(values) != 2 or not numeric or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{where}: {kind} needs two finite numbers [low, high], not {values}")
    low, high = values
    if kind == "int" and not all(float(v).is_integer() for v in values):
        raise ConfigError(f"{where}: int needs whole numbers [low, high], not {values}")
    if low >= high:
        raise ConfigError(
            f"{where}: the bounds [{low}, {high}] are in the wrong order (or equal); give [low, high] with low < high"
        )
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs bounds above 0, not {low}")
    return Distribution(kind, float(low), float(high))


def default_direction(metric: str, base: ExperimentConfig) -> str:
    """Which way a metric improves: the config's ``monitor_mode`` for its monitor, else down for losses.

    Args:
        metric: An epoch metric.
        base: The config the trials start from.

    Returns:
        ``maximize`` or ``minimize``.
    """
    if metric == base.monitor:
        return "maximize" if base.monitor_mode == "max" else "minimize"
    return "minimize" if metric.endswith("_loss") or metric.endswith("_loss_epoch") else "maximize"


def parse_objective(value: Any, base: ExperimentConfig, source: str) -> tuple[str, str]:
    """Read ``objective: val_acc`` or ``objective: {metric: val_loss, direction: minimize}``.

    Args:
        value: The YAML value, or ``None`` for the config's monitor.
        base: The config the trials start from.
        source: The file, for error messages.

    Returns:
        ``(metric, direction)``.

    Raises:
        ConfigError: For a metric that no epoch logs, or a direction that is not one.
    """
    where = f"experiment file '{source}': objective"
    if value is None:
        value = base.monitor
    direction = None
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in ("metric", "direction")]
        if unknown or "metric" not in value:
            raise ConfigError(f"{where} takes {{metric: NAME, direction: maximize|minimize}}, not {dict(value)}")
        direction = value.get("direction")
        value = value["metric"]
    if value not in EPOCH_METRICS:
        raise ConfigError(
            f"{where}: '{value}' is not a metric every epoch logs; use one of: {', '.join(EPOCH_METRICS)}"
        )
    direction = direction or default_direction(str(value), base)
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}: direction '{direction}' is not allowed; use maximize or minimize")
    return str(value), str(direction)


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
    where = f"experiment file '{source}'"
    spec = data.get("search")
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(
            f"{where}: 'search:' must map config fields to distributions, such as lr: {{loguniform: [1.0e-4, 1.0e-1]}}"
        )
    known = set(field_names())
    for key in spec:
        if key not in known or key == "seed":
            hint = (
                "seeds are not searched: give --seed, or one file per seed"
                if key == "seed"
                else "see docs/training.md for the fields"
            )
            raise ConfigError(f"{where}: search key '{key}' is not a config field; {hint}")
    for key in ("grid", "seeds"):
        if data.get(key):
            clash = [k for k in spec if k in (data.get("grid") or {})] if key == "grid" else []
            what = f"'{clash[0]}' is in both 'search:' and 'grid:'" if clash else f"'search:' and '{key}:' together"
            raise ConfigError(f"{where}: {what}; a file either searches or lists its runs: move it to one of them")
    if len(data.get("runs") or [{}]) != 1:
        raise ConfigError(f"{where}: a search starts from one config; give 'defaults:' (and at most one run)")
    space = {str(k): parse_distribution(str(k), v, source) for k, v in spec.items()}
    for key, dimension in space.items():  # every value a trial can draw passes the config's checks
        for value in dimension.edges():
            try:
                base.replace(**{key: value})
            except ConfigError as exc:
                raise ConfigError(
                    f"{where}: search '{key}' can give {value!r}, which the config refuses: {exc}"
                ) from None
    sampler = str(data.get("sampler") or "tpe")
    if sampler not in SAMPLERS:
        raise ConfigError(f"{where}: sampler '{sampler}' is not allowed; use one of: {', '.join(SAMPLERS)}")
    pruner = str(data.get("pruner") or "median")
    if pruner not in PRUNERS:
        raise ConfigError(f"{where}: pruner '{pruner}' is not allowed; use one of: {', '.join(PRUNERS)}")
    metric, direction = parse_objective(data.get("objective"), base, source)
    if sampler == "grid":
        not_choice = [k for k, d in space.items() if d.kind != "choice"]
        if not_choice:
            raise ConfigError(
                f"{where}: sampler grid takes choice lists only; '{not_choice[0]}' is {space[not_choice[0]].kind}"
            )
    trials = data.get("trials")
    if sampler == "grid":
        size = math.prod(len(d.choices) for d in space.values())
        if trials is not None and trials != size:
            raise ConfigError(f"{where}: a grid of these choices has {size} trials, not {trials}; drop 'trials:'")
        trials = size
    if trials is None:
        raise ConfigError(f"{where}: a search needs 'trials:', the number of trials to run, such as trials: 20")
    if isinstance(trials, bool) or not isinstance(trials, int) or not trials >= 1:
        raise ConfigError(f"{where}: trials must be a whole number of at least 1, not {trials!r}")
    return Search(space, trials, sampler, metric, direction, pruner)
