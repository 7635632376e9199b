"""`ExperimentConfig`: everything a run needs, in one flat dataclass, with every field's check.

The dataclass is the single schema. YAML files use its field names as keys
(``batch_size: 64``); the command line gets one flag per field, generated from
it (`experiments.config.flags`), so the two can never drift; the MLflow params
and the docs' table of fields follow from it too. `ExperimentConfig.validate`
checks every value before any work starts, and a bad one is a one-line
`ConfigError` naming the field and what is allowed.

To add a field: add it with a default and, where its values are limited,
``metadata=_meta(choices=...)`` or a check in `_check_ranges`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from experiments.config.errors import ConfigError
from experiments.config.secrets import mask_values
from experiments.config.values import coerce


def _meta(
    help: str, choices: Sequence[Any] | None = None, flag: str | None = None, plumbing: bool = False
) -> dict[str, Any]:
    """A field's help text and allowed values, as dataclass metadata (flags, docs and params read it).

    ``plumbing`` marks a field that says where or how a run is done (its store, its folder, its
    progress bar), not what is trained: it stays in the run's ``config.yaml``, not in its params.
    """
    return {"help": help, "choices": tuple(choices) if choices else None, "flag": flag, "plumbing": plumbing}


OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "cosine", "onecycle")
PRECISIONS = ("auto", "32", "32-true", "bf16-mixed", "16-mixed")
MONITOR_MODES = ("max", "min")
EPOCH_METRICS = ("train_loss_epoch", "train_acc", "val_loss", "val_acc")
"""The figures every epoch logs; a search's objective may be any of them."""

MONITORED_METRICS = ("val_acc", "val_loss")
"""What checkpointing and early stopping can watch: they act at validation's end, before the epoch's
training figures are computed."""


@dataclass
class ExperimentConfig:
    """The configuration of one training run.

    Defaults follow the original notebook (Adam at 1e-3, batch 32, the ``seed``
    preset) except where noted. See ``docs/training.md`` for every field.
    """

    # -- model ---------------------------------------------------------------
    model: str = field(default="", metadata=_meta("registered model name (zoo models lists them)"))
    stem: str | None = field(
        default=None, metadata=_meta("ResNet stem; default: the model's own", ("imagenet", "cifar"))
    )
    model_args: dict[str, Any] = field(
        default_factory=dict, metadata=_meta("other builder arguments, KEY=VALUE (YAML values)")
    )
    weights: str | None = field(
        default=None, metadata=_meta("initial weights: a .safetensors/.pth file or runs:/RUN_ID")
    )
    # -- data ----------------------------------------------------------------
    data: str = field(
        default="cifar10", metadata=_meta("data source: CIFAR-10 zip/folder, an image folder, cifar10, digits")
    )
    preset: str = field(default="seed", metadata=_meta("preprocessing preset", ("seed", "cifar")))
    image_size: int | None = field(default=None, metadata=_meta("input size in pixels; default: the preset's"))
    mean: list[float] | None = field(
        default=None, metadata=_meta("normalisation mean, three floats; default: the preset's")
    )
    std: list[float] | None = field(
        default=None, metadata=_meta("normalisation std, three floats; default: the preset's")
    )
    augment: bool | None = field(
        default=None, metadata=_meta("random crop + flip while training; default: the preset's")
    )
    decode_size: int | None = field(
        default=None, metadata=_meta("size images are decoded to in the cache; default: the source's")
    )
    limit_per_class: int | None = field(default=None, metadata=_meta("use at most N images per class (quick runs)"))
    val_fraction: float = field(default=0.2, metadata=_meta("fraction of the training images held out for validation"))
    batch_size: int = field(default=32, metadata=_meta("images per batch (per process)"))
    workers: str = field(default="auto", metadata=_meta("data-loader worker processes, or auto", plumbing=True))
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
    # -- fine-tuning (see experiments/training/finetune.py) ------------------
    freeze: str = field(
        default="none", metadata=_meta("freeze: none, backbone (all but the head), or N (stem + first N stages)")
    )
    head_lr: float | None = field(default=None, metadata=_meta("learning rate of the classifier head; default: lr"))
    grad_clip: float | None = field(
        default=None, metadata=_meta("clip gradients at this value (Lightning gradient_clip_val)")
    )
    grad_clip_algorithm: str = field(
        default="norm", metadata=_meta("gradient clipping by total norm or by value", ("norm", "value"))
    )
    accumulate_grad_batches: int = field(
        default=1, metadata=_meta("batches whose gradients add up to one optimizer step")
    )
    ema_decay: float | None = field(
        default=None,
        metadata=_meta("keep an EMA of the weights with this decay (such as 0.999); validate, test and save it"),
    )
    log_grad_norms: bool = field(
        default=False, metadata=_meta("log per-stage gradient norms (grad_norm/STAGE) every optimizer step")
    )
    # -- callbacks -----------------------------------------------------------
    monitor: str = field(
        default="val_acc", metadata=_meta("metric that checkpointing and early stopping watch", MONITORED_METRICS)
    )
    monitor_mode: str = field(
        default="max", metadata=_meta("whether the monitored metric should go up or down", MONITOR_MODES)
    )
    early_stopping: bool = field(default=True, metadata=_meta("stop when the monitored metric stops improving"))
    patience: int = field(default=5, metadata=_meta("early-stopping patience in epochs"))
    min_delta: float = field(default=1e-4, metadata=_meta("smallest change that counts as an improvement"))
    checkpoint_dir: str = field(
        default="checkpoints", metadata=_meta("local folder; each run writes into its own subfolder", plumbing=True)
    )
    # -- hardware ------------------------------------------------------------
    precision: str = field(
        default="auto",
        metadata=_meta(
            "numeric precision; auto: bf16-mixed where the hardware computes bf16 natively (CUDA compute "
            "capability 8.0+, CPUs with AVX512-BF16 or AMX), else 32-true; 16-mixed needs a GPU",
            PRECISIONS,
        ),
    )
    channels_last: bool | None = field(
        default=None,
        metadata=_meta(
            "channels-last memory format; default auto: on a CPU, and on a GPU with bf16-mixed or 16-mixed, "
            "where it is measured faster"
        ),
    )
    compile: bool = field(default=False, metadata=_meta("torch.compile the model"))
    detect_anomaly: bool = field(
        default=False, metadata=_meta("autograd anomaly detection (slow; the notebook had it on)")
    )
    accelerator: str = field(default="auto", metadata=_meta("Lightning accelerator: auto, cpu, gpu, cuda, mps"))
    devices: str = field(default="auto", metadata=_meta("Lightning devices: auto, a count, or a list such as 0,1"))
    strategy: str = field(default="auto", metadata=_meta("Lightning strategy: auto, ddp, ..."))
    num_nodes: int = field(default=1, metadata=_meta("number of machines"))
    progress_bar: bool | None = field(
        default=None,
        metadata=_meta(
            "Lightning's progress bar; default: in a terminal, else one line per epoch (a log, CI, a batch job)",
            plumbing=True,
        ),
    )
    # -- tracking ------------------------------------------------------------
    tracking: bool = field(
        default=True, metadata=_meta("record the run in MLflow (off: local checkpoints only)", plumbing=True)
    )
    tracking_uri: str | None = field(
        default=None, metadata=_meta("MLflow store; default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db", plumbing=True)
    )
    experiment: str = field(default="zoo", metadata=_meta("MLflow experiment name", plumbing=True))
    run_name: str | None = field(default=None, metadata=_meta("MLflow run name; default MODEL-sSEED", plumbing=True))
    tags: dict[str, Any] = field(default_factory=dict, metadata=_meta("MLflow tags, KEY=VALUE", plumbing=True))
    log_model: bool = field(
        default=True, metadata=_meta("log the trained model (with its preprocessing) to MLflow", plumbing=True)
    )
    parent_run: str | None = field(
        default=None, metadata=_meta("MLflow parent run id (zoo run sets it for seeds and grids)", plumbing=True)
    )
    system_metrics: bool = field(
        default=True,
        metadata=_meta(
            "record MLflow's system metrics (CPU, memory, disk, network; GPU where there is one)", plumbing=True
        ),
    )
    keep_last_state: bool = field(
        default=False,
        metadata=_meta(
            "keep the last training state in MLflow once the run has finished (it is there while it trains, for "
            "--resume); off: the finished run holds its best weights, logged model and test report",
            plumbing=True,
        ),
    )
    keep_local_checkpoints: bool = field(
        default=False,
        metadata=_meta(
            "keep the run's local checkpoint folder once it has finished (with tracking off it is always kept: "
            "it is the only copy)",
            plumbing=True,
        ),
    )

    def validate(self) -> ExperimentConfig:
        """Check every value; raise on the first bad one.

        Returns:
            The config itself, for chaining.

        Raises:
            ConfigError: Naming the field and what it allows.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            setattr(self, f.name, coerce(f.name, value, field_types()[f.name]))
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

    def to_record(self) -> dict[str, Any]:
        """Return the config as it may be written down (a run's artifact, a checkpoint): passwords masked.

        Returns:
            `to_dict` with every URI's password masked (``postgresql://zoo:***@db/mlflow``).
        """
        return mask_values(self.to_dict())

    def to_yaml(self) -> str:
        """Return the config as a YAML document that `load_config` reads back, passwords masked.

        Returns:
            The YAML text of `to_record`.
        """
        return yaml.safe_dump(self.to_record(), sort_keys=False)

    def replace(self, **changes: Any) -> ExperimentConfig:
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


MAX_SEED = 2**32 - 1
"""Seeds go to NumPy, which takes 0 .. 2**32 - 1."""

MAX_IMAGE_SIZE = 8192
"""Largest ``image_size`` and ``decode_size`` in pixels (a side)."""

BATCH_MEMORY_SHARE = 0.25
"""One float32 input batch may take at most this share of the machine's memory."""


def _check_ranges(c: ExperimentConfig) -> None:
    positive = {"batch_size": c.batch_size, "epochs": c.epochs, "num_nodes": c.num_nodes}
    positive.update(
        {
            k: v
            for k, v in {
                "image_size": c.image_size,
                "decode_size": c.decode_size,
                "limit_per_class": c.limit_per_class,
            }.items()
            if v is not None
        }
    )
    for name, value in positive.items():
        if value < 1:
            raise ConfigError(f"{name}: {value} is not allowed; give a whole number of at least 1")
    non_negative = {
        "lr": c.lr,
        "weight_decay": c.weight_decay,
        "momentum": c.momentum,
        "patience": c.patience,
        "min_delta": c.min_delta,
        "warmup_epochs": c.warmup_epochs,
    }
    for name, number in non_negative.items():
        if number < 0:
            raise ConfigError(f"{name}: {number} is not allowed; give a number of at least 0")
    if not 0 <= c.seed <= MAX_SEED:
        raise ConfigError(f"seed: {c.seed} is not allowed; give a whole number from 0 to {MAX_SEED} (NumPy's range)")
    _check_image_size(c)
    _check_folder("checkpoint_dir", c.checkpoint_dir)
    if not 0 < c.val_fraction < 1:
        raise ConfigError(f"val_fraction: {c.val_fraction} is not allowed; give a number between 0 and 1 (exclusive)")
    _check_finetune(c)
    if not 0 <= c.label_smoothing < 1:
        raise ConfigError(f"label_smoothing: {c.label_smoothing} is not allowed; give a number in [0, 1)")
    for name in ("mean", "std"):
        channels: list[float] | None = getattr(c, name)
        if channels is not None and (len(channels) != 3 or (name == "std" and min(channels) <= 0)):
            all_positive = ", all > 0" if name == "std" else ""
            raise ConfigError(
                f"{name}: {channels} is not allowed; give three numbers (one per RGB channel{all_positive})"
            )
    if c.workers != "auto" and not (c.workers.isdigit()):
        raise ConfigError(f"workers: '{c.workers}' is not allowed; give auto or a whole number of processes")
    if c.nesterov and c.optimizer != "sgd":
        raise ConfigError(
            f"nesterov: only applies to optimizer sgd, not '{c.optimizer}'; drop --nesterov or use --optimizer sgd"
        )
    if not c.model:
        raise ConfigError("model: no model given; name a registered model (run `zoo models` to list them)")
    _check_hardware(c)
    if c.precision == "16-mixed" and _resolves_to_cpu(c.accelerator):
        raise ConfigError("precision: 16-mixed is refused on a CPU (it needs a GPU); use bf16-mixed or 32 there")


def machine_memory_bytes() -> int:
    """The machine's physical memory.

    Returns:
        Bytes (``os.sysconf``); a large figure where the platform does not say.
    """
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 2**40


def _check_image_size(c: ExperimentConfig) -> None:
    """Image and decode sizes that a batch of them fits in memory."""
    for name in ("image_size", "decode_size"):
        size = getattr(c, name)
        if size is not None and size > MAX_IMAGE_SIZE:
            raise ConfigError(f"{name}: {size} is not allowed; give at most {MAX_IMAGE_SIZE} pixels")
    size = c.image_size or c.decode_size
    if size is not None:
        batch_bytes = c.batch_size * 3 * size * size * 4
        allowed = machine_memory_bytes() * BATCH_MEMORY_SHARE
        if batch_bytes > allowed:
            raise ConfigError(
                f"image_size {size} with batch_size {c.batch_size}: one input batch takes "
                f"{batch_bytes / 2**30:.1f} GiB, more than a quarter of this machine's "
                f"{allowed / BATCH_MEMORY_SHARE / 2**30:.0f} GiB; lower the image size or the batch size"
            )


def _check_folder(name: str, path: str) -> None:
    """A folder that exists, or can be made: no part of it may be a file."""
    current = os.path.abspath(path)
    while True:
        if os.path.exists(current):
            if not os.path.isdir(current):
                raise ConfigError(f"{name}: '{current}' is a file, not a folder; give a folder for the checkpoints")
            return
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def _check_finetune(c: ExperimentConfig) -> None:
    """The fine-tuning fields: ``freeze``, ``head_lr``, ``grad_clip``, accumulation, EMA."""
    freeze = str(c.freeze).strip().lower()
    if freeze not in ("none", "backbone") and not (freeze.isdigit() and int(freeze) >= 1):
        raise ConfigError(
            f"freeze: '{c.freeze}' is not allowed; give none, backbone, or a whole number N >= 1 "
            f"(the stem and the first N stages)"
        )
    c.freeze = freeze
    for name in ("head_lr", "grad_clip"):
        value = getattr(c, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name}: {value} is not allowed; give a number above 0 (or leave it unset)")
    if c.accumulate_grad_batches < 1:
        raise ConfigError(
            f"accumulate_grad_batches: {c.accumulate_grad_batches} is not allowed; give a whole number of at least 1"
        )
    if c.ema_decay is not None and not 0 < c.ema_decay < 1:
        raise ConfigError(f"ema_decay: {c.ema_decay} is not allowed; give a number between 0 and 1, such as 0.999")


_DEVICES = re.compile(r"^(auto|-1|[1-9][0-9]*|[0-9]+(,[0-9]+)*,?)$")


def _check_hardware(c: ExperimentConfig) -> None:
    """Accelerator, devices and strategy, checked against Lightning's own registries."""
    if not _DEVICES.match(str(c.devices)):
        raise ConfigError(
            f"devices: '{c.devices}' is not allowed; give auto, -1 (all), a count such as 2, "
            f"or device indices such as 0,1"
        )
    cores = os.cpu_count() or 1
    if str(c.devices).isdigit() and int(c.devices) > cores and _resolves_to_cpu(c.accelerator):
        raise ConfigError(
            f"devices: {c.devices} processes asked for on the CPU, but this machine has {cores} cores; "
            f"give at most {cores}, or train on GPUs"
        )
    if c.accelerator != "auto" or c.strategy != "auto":
        # Deferred: Lightning takes seconds to import, and only these two fields need its registries.
        from lightning.pytorch.accelerators import AcceleratorRegistry
        from lightning.pytorch.strategies import StrategyRegistry

        accelerators = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
        if c.accelerator not in accelerators:
            raise ConfigError(
                f"accelerator: '{c.accelerator}' is not allowed; choose one of: {', '.join(accelerators)}"
            )
        strategies = ["auto", *StrategyRegistry.available_strategies()]
        if c.strategy not in strategies:
            raise ConfigError(
                f"strategy: '{c.strategy}' is not allowed; choose one of: {', '.join(strategies[:8])}, "
                f"... (Lightning's strategy names)"
            )


def _resolves_to_cpu(accelerator: str) -> bool:
    if accelerator == "cpu":
        return True
    if accelerator != "auto":
        return False
    import torch  # deferred: the config (and so the CLI's parser) loads without torch

    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


@functools.cache
def field_types() -> dict[str, Any]:
    """The type annotation of every field, resolved once (the module uses postponed annotations).

    Returns:
        ``{field: annotation}`` (do not change it: it is shared).
    """
    return typing.get_type_hints(ExperimentConfig)


def is_plumbing(name: str) -> bool:
    """Whether a field says where or how a run is done, not what is trained (see ``_meta``).

    Args:
        name: A field name.

    Returns:
        True for ``tracking_uri``, ``checkpoint_dir``, ``progress_bar`` and the like.
    """
    return bool(next(f for f in fields(ExperimentConfig) if f.name == name).metadata.get("plumbing"))


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
        close = difflib.get_close_matches(str(unknown[0]), known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"{source}: unknown field '{unknown[0]}'; {hint}see docs/training.md for the fields")
    try:
        return ExperimentConfig(**dict(values)).validate()
    except ConfigError as exc:
        if source in ("config", "command line"):
            raise
        raise ConfigError(f"{source}: {exc}") from None
