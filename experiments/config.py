"""`ExperimentConfig`: everything a run needs, from YAML and the command line, checked up front.

One flat dataclass is the single schema. YAML files use its field names as keys
(``batch_size: 64``); the command line gets one flag per field, generated from
the dataclass (``--batch-size 64``), so the two can never drift. Every value is
validated before any work starts and a bad one is a one-line `ConfigError`
naming the field and what is allowed.

To add a field: add it to `ExperimentConfig` with a default and, where its
values are limited, ``metadata=_meta(choices=...)`` or a check in
`_check_ranges`. The flag, the YAML key, the MLflow param and the docs table
follow from that.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import yaml

from registry.errors import ZooError


class ConfigError(ZooError, ValueError):
    """A config value, config file or experiment file that cannot be used."""


def _meta(help: str, choices: Sequence[Any] | None = None, flag: str | None = None) -> dict[str, Any]:
    return {"help": help, "choices": tuple(choices) if choices else None, "flag": flag}


OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "cosine", "onecycle")
PRECISIONS = ("32", "32-true", "bf16-mixed", "16-mixed")
MONITOR_MODES = ("max", "min")


@dataclass
class ExperimentConfig:
    """The configuration of one training run.

    Defaults follow the original notebook (Adam at 1e-3, batch 32, the ``seed``
    preset) except where noted. See ``docs/training.md`` for every field.
    """

    # -- model ---------------------------------------------------------------
    model: str = field(default="", metadata=_meta("registered model name (zoo models lists them)"))
    stem: str | None = field(default=None, metadata=_meta("ResNet stem; default: the model's own", ("imagenet", "cifar")))
    model_args: dict = field(default_factory=dict, metadata=_meta("other builder arguments, KEY=VALUE (YAML values)"))
    weights: str | None = field(default=None, metadata=_meta("initial weights: a .safetensors/.pth file or runs:/RUN_ID"))
    # -- data ----------------------------------------------------------------
    data: str = field(default="cifar10", metadata=_meta("data source: CIFAR-10 zip/folder, an image folder, cifar10, digits"))
    preset: str = field(default="seed", metadata=_meta("preprocessing preset", ("seed", "cifar")))
    image_size: int | None = field(default=None, metadata=_meta("input size in pixels; default: the preset's"))
    mean: list | None = field(default=None, metadata=_meta("normalisation mean, three floats; default: the preset's"))
    std: list | None = field(default=None, metadata=_meta("normalisation std, three floats; default: the preset's"))
    augment: bool | None = field(default=None, metadata=_meta("random crop + flip while training; default: the preset's"))
    decode_size: int | None = field(default=None, metadata=_meta("size images are decoded to in the cache; default: the source's"))
    limit_per_class: int | None = field(default=None, metadata=_meta("use at most N images per class (quick runs)"))
    val_fraction: float = field(default=0.2, metadata=_meta("fraction of the training images held out for validation"))
    batch_size: int = field(default=32, metadata=_meta("images per batch (per process)"))
    workers: str = field(default="auto", metadata=_meta("data-loader worker processes, or auto"))
    # -- optimisation --------------------------------------------------------
    epochs: int = field(default=10, metadata=_meta("maximum number of epochs"))
    optimizer: str = field(default="adam", metadata=_meta("optimizer", OPTIMIZERS))
    lr: float = field(default=1e-3, metadata=_meta("learning rate"))
    momentum: float = field(default=0.9, metadata=_meta("SGD momentum"))
    nesterov: bool = field(default=False, metadata=_meta("SGD with Nesterov momentum"))
    weight_decay: float = field(default=0.0, metadata=_meta("weight decay"))
    schedule: str = field(default="none", metadata=_meta("learning-rate schedule", SCHEDULES))
    warmup_epochs: float = field(default=0.0, metadata=_meta("linear warmup epochs before the schedule"))
    label_smoothing: float = field(default=0.0, metadata=_meta("label smoothing of the cross-entropy loss"))
    seed: int = field(default=0, metadata=_meta("seed of weights, split, shuffling and augmentation"))
    # -- fine-tuning (see experiments/finetune.py) ---------------------------
    freeze: str = field(default="none", metadata=_meta("freeze: none, backbone (all but the head), or N (stem + first N stages)"))
    head_lr: float | None = field(default=None, metadata=_meta("learning rate of the classifier head; default: lr"))
    grad_clip: float | None = field(default=None, metadata=_meta("clip gradients at this value (Lightning gradient_clip_val)"))
    grad_clip_algorithm: str = field(default="norm", metadata=_meta("gradient clipping by total norm or by value", ("norm", "value")))
    accumulate_grad_batches: int = field(default=1, metadata=_meta("batches whose gradients add up to one optimizer step"))
    ema_decay: float | None = field(default=None, metadata=_meta("keep an EMA of the weights with this decay (such as 0.999); validate, test and save it"))
    log_grad_norms: bool = field(default=False, metadata=_meta("log per-stage gradient norms (grad_norm/STAGE) every optimizer step"))
    # -- callbacks -----------------------------------------------------------
    monitor: str = field(default="val_acc", metadata=_meta("metric that checkpointing and early stopping watch"))
    monitor_mode: str = field(default="max", metadata=_meta("whether the monitored metric should go up or down", MONITOR_MODES))
    early_stopping: bool = field(default=True, metadata=_meta("stop when the monitored metric stops improving"))
    patience: int = field(default=5, metadata=_meta("early-stopping patience in epochs"))
    min_delta: float = field(default=1e-4, metadata=_meta("smallest change that counts as an improvement"))
    checkpoint_dir: str = field(default="checkpoints", metadata=_meta("local folder; each run writes into its own subfolder"))
    # -- hardware ------------------------------------------------------------
    precision: str = field(default="32", metadata=_meta("numeric precision (16-mixed needs a GPU)", PRECISIONS))
    channels_last: bool = field(default=False, metadata=_meta("channels-last memory format"))
    compile: bool = field(default=False, metadata=_meta("torch.compile the model"))
    detect_anomaly: bool = field(default=False, metadata=_meta("autograd anomaly detection (slow; the notebook had it on)"))
    accelerator: str = field(default="auto", metadata=_meta("Lightning accelerator: auto, cpu, gpu, cuda, mps"))
    devices: str = field(default="auto", metadata=_meta("Lightning devices: auto, a count, or a list such as 0,1"))
    strategy: str = field(default="auto", metadata=_meta("Lightning strategy: auto, ddp, ..."))
    num_nodes: int = field(default=1, metadata=_meta("number of machines"))
    progress_bar: bool = field(default=True, metadata=_meta("show the progress bar"))
    # -- tracking ------------------------------------------------------------
    tracking: bool = field(default=True, metadata=_meta("record the run in MLflow (off: local checkpoints only)"))
    tracking_uri: str | None = field(default=None, metadata=_meta("MLflow store; default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db"))
    experiment: str = field(default="zoo", metadata=_meta("MLflow experiment name"))
    run_name: str | None = field(default=None, metadata=_meta("MLflow run name; default MODEL-sSEED"))
    tags: dict = field(default_factory=dict, metadata=_meta("MLflow tags, KEY=VALUE"))
    log_model: bool = field(default=True, metadata=_meta("log the trained model (with its preprocessing) to MLflow"))
    parent_run: str | None = field(default=None, metadata=_meta("MLflow parent run id (zoo run sets it for seeds and grids)"))

    def validate(self) -> "ExperimentConfig":
        """Check every value; raise on the first bad one.

        Returns:
            The config itself, for chaining.

        Raises:
            ConfigError: Naming the field and what it allows.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            setattr(self, f.name, _coerce(f.name, value, _field_types()[f.name]))
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value is not None and value not in choices:
                raise ConfigError(f"{f.name}: '{value}' is not allowed; choose one of: {', '.join(map(str, choices))}")
        _check_ranges(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain YAML-able data.

        Returns:
            ``{field: value}`` for every field.
        """
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """Return the config as a YAML document that `load_config` reads back.

        Returns:
            The YAML text.
        """
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **changes: Any) -> "ExperimentConfig":
        """Return a validated copy with some fields changed.

        Args:
            **changes: Field values.

        Returns:
            The new config.
        """
        return from_dict({**self.to_dict(), **changes})

    def model_kwargs(self, num_classes: int) -> dict[str, Any]:
        """Builder arguments for `registry.create_model`.

        Args:
            num_classes: Classes of the data.

        Returns:
            ``num_classes``, ``stem`` where set, and ``model_args``.
        """
        kwargs: dict[str, Any] = {"num_classes": num_classes, **self.model_args}
        if self.stem is not None:
            kwargs["stem"] = self.stem
        return kwargs

    def default_run_name(self) -> str:
        """The run name: ``run_name`` or ``MODEL-sSEED``.

        Returns:
            The name.
        """
        return self.run_name or f"{self.model}-s{self.seed}"


def _check_ranges(c: ExperimentConfig) -> None:
    positive = {"batch_size": c.batch_size, "epochs": c.epochs, "num_nodes": c.num_nodes}
    positive.update({k: v for k, v in {"image_size": c.image_size, "decode_size": c.decode_size,
                                       "limit_per_class": c.limit_per_class}.items() if v is not None})
    for name, value in positive.items():
        if value < 1:
            raise ConfigError(f"{name}: {value} is not allowed; give a whole number of at least 1")
    non_negative = {"lr": c.lr, "weight_decay": c.weight_decay, "momentum": c.momentum, "patience": c.patience,
                    "min_delta": c.min_delta, "warmup_epochs": c.warmup_epochs}
    for name, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{name}: {value} is not allowed; give a number of at least 0")
    if not 0 < c.val_fraction < 1:
        raise ConfigError(f"val_fraction: {c.val_fraction} is not allowed; give a number between 0 and 1 (exclusive)")
    from experiments.finetune import check_finetune_fields

    check_finetune_fields(c)
    if not 0 <= c.label_smoothing < 1:
        raise ConfigError(f"label_smoothing: {c.label_smoothing} is not allowed; give a number in [0, 1)")
    for name in ("mean", "std"):
        value = getattr(c, name)
        if value is not None and (len(value) != 3 or (name == "std" and min(value) <= 0)):
            raise ConfigError(f"{name}: {value} is not allowed; give three numbers (one per RGB channel{', all > 0' if name == 'std' else ''})")
    if c.workers != "auto" and not (c.workers.isdigit()):
        raise ConfigError(f"workers: '{c.workers}' is not allowed; give auto or a whole number of processes")
    if c.nesterov and c.optimizer != "sgd":
        raise ConfigError(f"nesterov: only applies to optimizer sgd, not '{c.optimizer}'; drop --nesterov or use --optimizer sgd")
    if not c.model:
        raise ConfigError("model: no model given; name a registered model (run `zoo models` to list them)")
    _check_hardware(c)
    if c.precision == "16-mixed" and _resolves_to_cpu(c.accelerator):
        raise ConfigError("precision: 16-mixed is refused on a CPU (it needs a GPU); use bf16-mixed or 32 there")


_DEVICES = re.compile(r"^(auto|-1|[1-9][0-9]*|[0-9]+(,[0-9]+)*,?)$")


def _check_hardware(c: ExperimentConfig) -> None:
    """Accelerator, devices and strategy, checked against Lightning's own registries."""
    if not _DEVICES.match(str(c.devices)):
        raise ConfigError(f"devices: '{c.devices}' is not allowed; give auto, -1 (all), a count such as 2, "
                          f"or device indices such as 0,1")
    if c.accelerator != "auto" or c.strategy != "auto":
        from lightning.pytorch.accelerators import AcceleratorRegistry
        from lightning.pytorch.strategies import StrategyRegistry

        accelerators = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
        if c.accelerator not in accelerators:
            raise ConfigError(f"accelerator: '{c.accelerator}' is not allowed; choose one of: {', '.join(accelerators)}")
        strategies = ["auto", *StrategyRegistry.available_strategies()]
        if c.strategy not in strategies:
            raise ConfigError(f"strategy: '{c.strategy}' is not allowed; choose one of: {', '.join(strategies[:8])}, "
                              f"... (Lightning's strategy names)")


def _resolves_to_cpu(accelerator: str) -> bool:
    if accelerator == "cpu":
        return True
    if accelerator != "auto":
        return False
    import torch

    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


@typing.no_type_check
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(ExperimentConfig)


def _base_type(annotation: Any) -> tuple[type, bool]:
    """The non-None type of an annotation and whether None is allowed."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])[0], True
    return (origin or annotation), False


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Turn a YAML or command-line value into the field's type, or raise."""
    kind, optional = _base_type(annotation)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name}: a value is required ({kind.__name__}); it cannot be empty")
    if isinstance(value, str) and optional and value.lower() in ("none", "null", "") and kind is not str:
        return None
    try:
        if kind is bool:
            return _to_bool(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is str:
            if isinstance(value, (dict, list, bool)):
                raise ValueError
            return str(value)
        if kind is list:
            return _to_list(value)
        if kind is dict:
            return _to_dict(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ConfigError(f"{name}: {value!r} is not a valid {_describe(kind)}")


def _describe(kind: type) -> str:
    return {bool: "true/false value", int: "whole number", float: "number", str: "string",
            list: "list of numbers (such as 0.5,0.5,0.5)", dict: "mapping of KEY=VALUE pairs"}[kind]


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(value)


def _to_list(value: Any) -> list[float]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(value)
    return [float(v) for v in items]


def _to_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # KEY=VALUE strings from the command line
        out: dict[str, Any] = {}
        for item in value:
            key, sep, raw = str(item).partition("=")
            if not sep or not key:
                raise ValueError(item)
            out[key] = yaml.safe_load(raw) if raw else ""
        return out
    raise ValueError(value)


def field_names() -> list[str]:
    """Names of every config field, in declaration order.

    Returns:
        The names.
    """
    return [f.name for f in fields(ExperimentConfig)]


def from_dict(values: Mapping[str, Any], *, source: str = "config") -> ExperimentConfig:
    """Build and validate a config from a mapping of field values.

    Args:
        values: ``{field: value}``; unknown keys are refused.
        source: Where the values came from, for error messages.

    Returns:
        The validated config.

    Raises:
        ConfigError: On an unknown key or a bad value.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: expected a mapping of config fields, got {type(values).__name__}")
    known = set(field_names())
    unknown = [k for k in values if k not in known]
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]), known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"{source}: unknown field '{unknown[0]}'; {hint}see docs/training.md for the fields")
    try:
        return ExperimentConfig(**dict(values)).validate()
    except ConfigError as exc:
        if source in ("config", "command line"):
            raise
        raise ConfigError(f"{source}: {exc}") from None


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning every failure into a `ConfigError`.

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


# -- command-line flags, generated from the dataclass ------------------------------


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

    Args:
        parser: The parser of ``zoo train`` (or any command taking a config).
        skip: Fields that the command takes another way (such as a positional MODEL).
    """
    group = parser.add_argument_group("config fields (override --config)")
    hints = _field_types()
    for f in fields(ExperimentConfig):
        if f.name in skip:
            continue
        kind, _ = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
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


# -- experiment files: defaults + runs ---------------------------------------------


@dataclass
class ExperimentFile:
    """An experiment file (``zoo run FILE``): shared defaults and a list of runs.

    Attributes:
        name: The file's name (its stem), used as the default MLflow experiment.
        runs: One validated config per run.
        source: The file path.
    """

    name: str
    runs: list[ExperimentConfig]
    source: str
    seeds: list[int] | None = None
    grid: dict[str, list] | None = None

    @property
    def is_sweep(self) -> bool:
        """Whether the file gives ``seeds:`` or ``grid:`` (its runs go under one parent run)."""
        return bool(self.seeds or self.grid)


EXPERIMENT_KEYS = ("defaults", "runs", "description", "seeds", "grid")
"""Top-level keys of an experiment file; a sweep helper may add more (``seeds``, ``grid``)."""

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
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
    shipped = CONFIGS_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
    raise ConfigError(f"experiment file '{name_or_path}' not found; give a YAML path or a shipped name ({names})")


def load_experiment(name_or_path: str, **overrides: Any) -> ExperimentFile:
    """Load an experiment file: ``defaults:`` merged under each of ``runs:``.

    Args:
        name_or_path: A path or a shipped name.
        **overrides: Field values that win over the file (from the command line).

    Returns:
        The experiment, every run validated before any starts.

    Raises:
        ConfigError: Naming the run and field at fault.
    """
    path = find_experiment_file(name_or_path)
    data = read_yaml(path)
    if not isinstance(data, Mapping) or not ((isinstance(data.get("runs"), list) and data["runs"])
                                             or data.get("grid") or data.get("seeds")):
        raise ConfigError(f"experiment file '{path}' needs a non-empty list under 'runs:', or a 'grid:' or 'seeds:' "
                          f"(and optional 'defaults:')")
    unknown = [k for k in data if k not in EXPERIMENT_KEYS]
    if unknown:
        raise ConfigError(f"experiment file '{path}': unknown key '{unknown[0]}'; allowed: {', '.join(EXPERIMENT_KEYS)}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"experiment file '{path}': 'defaults:' must be a mapping of config fields")
    defaults = {"experiment": path.stem, **defaults}
    from experiments.sweeps import expand_runs, read_sweep_keys

    seeds, grid = read_sweep_keys(data, str(path))
    runs = [from_dict(values, source=f"{path} run {i + 1}")
            for i, values in enumerate(expand_runs(data.get("runs") or [{}], defaults, overrides, seeds, grid, str(path)))]
    return ExperimentFile(name=path.stem, runs=runs, source=str(path), seeds=seeds, grid=grid)
