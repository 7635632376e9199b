"""`ExperimentConfig`: everything a run needs, in one flat pydantic model that declares every field's check.

The model is the single schema. YAML files use its field names as keys
(``batch_size: 64``); the command line gets one flag per field, generated from
it (`experiments.config.flags`), so the two can never drift; the MLflow params
and the docs' table of fields follow from it too. A config is checked when it is
made (types, bounds and choices on the fields, the rules that tie fields together
in one validator), and a bad value is a one-line `ConfigError` naming the field
and what is allowed (`explain`). Code that receives an `ExperimentConfig` trusts it.

To add a field: add it with a default and, where its values are limited, a
``Literal`` type, bounds (``ge=1``) or a check in ``_check_together``.
"""

from __future__ import annotations

import difflib
import functools
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from experiments.config.errors import ConfigError
from experiments.config.files import load_yaml, read_yaml
from experiments.config.secrets import mask_values

EpochMetric = Literal["train_loss_epoch", "train_acc", "val_loss", "val_acc"]
"""The figures every epoch logs; a search's objective may be any of them."""

EPOCH_METRICS: tuple[str, ...] = typing.get_args(EpochMetric)
"""`EpochMetric`'s names, in that order."""

MonitoredMetric = Literal["val_acc", "val_loss"]
"""What checkpointing and early stopping can watch: they act at validation's end, before the epoch's
training figures are computed."""

MAX_SEED = 2**32 - 1
"""Seeds go to NumPy, which takes 0 .. 2**32 - 1."""

MAX_IMAGE_SIZE = 8192
"""Largest ``image_size`` and ``decode_size`` in pixels (a side)."""

BATCH_MEMORY_SHARE = 0.25
"""One float32 input batch may take at most this share of the machine's memory."""


def _field(default: Any, help: str, *, plumbing: bool = False, fix: str = "", unit: str = "", **checks: Any) -> Any:
    """A field's default, help text and bounds (``ge=1``; pydantic checks them).

    ``plumbing`` marks a field that says where or how a run is done (its store, its folder, its
    progress bar), not what is trained: it stays in the run's ``config.yaml``, not in its params.
    ``fix`` is what the error says to do when a bound or pattern refuses a value (derived from the
    bounds when empty); ``unit`` ends a derived "at most" (``pixels``).
    """
    return Field(
        default, description=help, json_schema_extra={"plumbing": plumbing, "fix": fix, "unit": unit}, **checks
    )


class ExperimentConfig(BaseModel):
    """The configuration of one training run.

    Defaults follow the original notebook (Adam at 1e-3, batch 32, the ``seed``
    preset) except where noted. See ``docs/training.md`` for every field.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=(), defer_build=True)

    # -- model ---------------------------------------------------------------
    model: str = _field("", "registered model name (zoo models lists them)")
    stem: Literal["imagenet", "cifar"] | None = _field(None, "ResNet stem; default: the model's own")
    model_args: dict[str, Any] = _field({}, "other builder arguments, KEY=VALUE (YAML values)")
    weights: str | None = _field(None, "initial weights: a .safetensors/.pth file or runs:/RUN_ID")
    # -- data ----------------------------------------------------------------
    data: str = _field("cifar10", "data source: CIFAR-10 zip/folder, an image folder, cifar10, digits")
    preset: Literal["seed", "cifar"] = _field("seed", "preprocessing preset")
    image_size: int | None = _field(
        None, "input size in pixels; default: the preset's", ge=1, le=MAX_IMAGE_SIZE, unit=" pixels"
    )
    mean: list[float] | None = _field(
        None, "normalisation mean, three floats; default: the preset's", min_length=3, max_length=3,
        fix="give three numbers (one per RGB channel)",
    )  # fmt: skip
    std: list[Annotated[float, Field(gt=0)]] | None = _field(
        None, "normalisation std, three floats; default: the preset's", min_length=3, max_length=3,
        fix="give three numbers (one per RGB channel, all > 0)",
    )  # fmt: skip
    augment: bool | None = _field(None, "random crop + flip while training; default: the preset's")
    train_image_size: int | None = _field(
        None, "input size of training batches, if not the test size (image_size)", ge=1, le=MAX_IMAGE_SIZE,
        unit=" pixels",
    )  # fmt: skip
    repeated_augment: int = _field(
        1, "repeated augmentation: each training image N times in a row, each copy augmented its own way; "
        "the epoch keeps its length", ge=1, le=16,
    )  # fmt: skip
    auto_augment: Literal["none", "randaugment", "trivialaugment"] = _field(
        "none", "RandAugment (2 operations) or TrivialAugment of training images (torchvision's)"
    )
    augment_magnitude: int = _field(9, "RandAugment's magnitude, 0 to 30", ge=0, le=30)
    erase_prob: float = _field(
        0.0, "random erasing: share of training images with a rectangle erased to noise", ge=0, le=1,
        fix="give a number in [0, 1]",
    )  # fmt: skip
    mixup_alpha: float = _field(0.0, "mixup of training batches: Beta(alpha, alpha) weights; 0: off", ge=0)
    cutmix_alpha: float = _field(0.0, "CutMix of training batches: Beta(alpha, alpha) box areas; 0: off", ge=0)
    mixup_prob: float = _field(
        1.0, "probability that a training batch is mixed (mixup or CutMix)", ge=0, le=1, fix="give a number in [0, 1]"
    )
    mixup_switch_prob: float = _field(
        0.5, "with mixup and CutMix both on: probability of CutMix for a batch", ge=0, le=1,
        fix="give a number in [0, 1]",
    )  # fmt: skip
    decode_size: int | None = _field(
        None, "size images are decoded to in the cache; default: the source's", ge=1, le=MAX_IMAGE_SIZE, unit=" pixels"
    )
    limit_per_class: int | None = _field(None, "use at most N images per class (quick runs)", ge=1)
    val_fraction: float = _field(
        0.2, "fraction of the training images held out for validation", gt=0, lt=1,
        fix="give a number between 0 and 1 (exclusive)",
    )  # fmt: skip
    batch_size: int = _field(32, "images per batch (per process)", ge=1)
    workers: str = _field(
        "auto", "data-loader worker processes, or auto", plumbing=True, pattern=r"^(auto|[0-9]+)$",
        fix="give auto or a whole number of processes",
    )  # fmt: skip
    # -- optimisation --------------------------------------------------------
    epochs: int = _field(10, "maximum number of epochs", ge=1)
    optimizer: Literal["adam", "adamw", "sgd", "lamb"] = _field("adam", "optimizer (lamb: timm's LAMB)")
    lr: float = _field(1e-3, "learning rate", ge=0)
    momentum: float = _field(0.9, "SGD momentum", ge=0)
    nesterov: bool = _field(False, "SGD with Nesterov momentum")
    weight_decay: float = _field(0.0, "weight decay", ge=0)
    decay_norm_bias: bool = _field(True, "weight decay on norm layers and biases too (off: as timm's recipes)")
    schedule: Literal["none", "cosine", "onecycle", "step", "multistep"] = _field("none", "learning-rate schedule")
    step_epochs: int = _field(30, "schedule step: multiply the learning rate by lr_gamma every N epochs", ge=1)
    milestones: list[Annotated[int, Field(ge=1)]] | None = _field(
        None, "schedule multistep: epochs at which the learning rate is multiplied by lr_gamma, e.g. 30,60",
        min_length=1, fix="give whole numbers of epochs >= 1, e.g. 30,60",
    )  # fmt: skip
    lr_gamma: float = _field(
        0.1, "factor of the step and multistep schedules", gt=0, le=1, fix="give a number in (0, 1]"
    )
    warmup_epochs: float = _field(0.0, "linear warmup epochs before the schedule", ge=0)
    loss: Literal["ce", "bce"] = _field(
        "ce", "training loss: ce (cross-entropy) or bce (binary cross-entropy per class, on soft targets)"
    )
    label_smoothing: float = _field(
        0.0, "label smoothing of the training loss (ce or bce)", ge=0, lt=1, fix="give a number in [0, 1)"
    )
    seed: int = _field(
        0, "seed of weights, split, shuffling and augmentation", ge=0, le=MAX_SEED,
        fix=f"give a whole number from 0 to {MAX_SEED} (NumPy's range)",
    )  # fmt: skip
    # -- fine-tuning (see experiments/training/finetune.py) ------------------
    freeze: str = _field(
        "none", "freeze: none, backbone (all but the head), or N (stem + first N stages)",
        pattern=r"^(none|backbone|0*[1-9][0-9]*)$",
        fix="give none, backbone, or a whole number N >= 1 (the stem and the first N stages)",
    )  # fmt: skip
    head_lr: float | None = _field(
        None, "learning rate of the classifier head; default: lr", gt=0, fix="give a number above 0 (or leave it unset)"
    )
    grad_clip: float | None = _field(
        None, "clip gradients at this value (Lightning gradient_clip_val)", gt=0,
        fix="give a number above 0 (or leave it unset)",
    )  # fmt: skip
    grad_clip_algorithm: Literal["norm", "value"] = _field("norm", "gradient clipping by total norm or by value")
    accumulate_grad_batches: int = _field(1, "batches whose gradients add up to one optimizer step", ge=1)
    ema_decay: float | None = _field(
        None, "keep an EMA of the weights with this decay (such as 0.999); validate, test and save it", gt=0, lt=1,
        fix="give a number between 0 and 1, such as 0.999",
    )  # fmt: skip
    log_grad_norms: bool = _field(False, "log per-stage gradient norms (grad_norm/STAGE) every optimizer step")
    # -- callbacks -----------------------------------------------------------
    monitor: MonitoredMetric = _field("val_acc", "metric that checkpointing and early stopping watch")
    monitor_mode: Literal["max", "min"] = _field("max", "whether the monitored metric should go up or down")
    early_stopping: bool = _field(True, "stop when the monitored metric stops improving")
    patience: int = _field(5, "early-stopping patience in epochs", ge=0)
    min_delta: float = _field(1e-4, "smallest change that counts as an improvement", ge=0)
    checkpoint_dir: str = _field("checkpoints", "local folder; each run writes into its own subfolder", plumbing=True)
    # -- hardware ------------------------------------------------------------
    precision: Literal["auto", "32", "32-true", "bf16-mixed", "16-mixed"] = _field(
        "auto",
        "numeric precision; auto: bf16-mixed where the hardware computes bf16 natively (CUDA compute "
        "capability 8.0+, CPUs with AVX512-BF16 or AMX), else 32-true; 16-mixed needs a GPU",
    )
    channels_last: bool | None = _field(
        None,
        "channels-last memory format; default auto: on a CPU, and on a GPU with bf16-mixed or 16-mixed, "
        "where it is measured faster",
    )
    compile: bool = _field(False, "torch.compile the model")
    detect_anomaly: bool = _field(False, "autograd anomaly detection (slow; the notebook had it on)")
    accelerator: str = _field("auto", "Lightning accelerator: auto, cpu, gpu, cuda, mps")
    devices: str = _field(
        "auto", "Lightning devices: auto, a count, or a list such as 0,1",
        pattern=r"^(auto|-1|[1-9][0-9]*|[0-9]+(,[0-9]+)*,?)$",
        fix="give auto, -1 (all), a count such as 2, or device indices such as 0,1",
    )  # fmt: skip
    strategy: str = _field("auto", "Lightning strategy: auto, ddp, ...")
    num_nodes: int = _field(1, "number of machines", ge=1)
    progress_bar: bool | None = _field(
        None,
        "Lightning's progress bar; default: in a terminal, else one line per epoch (a log, CI, a batch job)",
        plumbing=True,
    )
    # -- tracking ------------------------------------------------------------
    tracking: bool = _field(True, "record the run in MLflow (off: local checkpoints only)", plumbing=True)
    tracking_uri: str | None = _field(
        None,
        "MLflow store; default $MLFLOW_TRACKING_URI, else ./mlflow.db if one is here, else mlflow.db in "
        "$ZOO_RUNS_DIR (./zoo-runs)",
        plumbing=True,
    )
    experiment: str = _field("zoo", "MLflow experiment name", plumbing=True)
    run_name: str | None = _field(None, "MLflow run name; default MODEL-sSEED", plumbing=True)
    tags: dict[str, Any] = _field({}, "MLflow tags, KEY=VALUE", plumbing=True)
    log_model: bool = _field(True, "log the trained model (with its preprocessing) to MLflow", plumbing=True)
    parent_run: str | None = _field(None, "MLflow parent run id (zoo run sets it for seeds and grids)", plumbing=True)
    system_metrics: bool = _field(
        True, "record MLflow's system metrics (CPU, memory, disk, network; GPU where there is one)", plumbing=True
    )
    keep_last_state: bool = _field(
        False,
        "keep the last training state in MLflow once the run has finished (it is there while it trains, for "
        "--resume); off: the finished run holds its best weights, logged model and test report",
        plumbing=True,
    )
    keep_local_checkpoints: bool = _field(
        False,
        "keep the run's local checkpoint folder once it has finished (with tracking off it is always kept: "
        "it is the only copy)",
        plumbing=True,
    )

    def __init__(self, **values: Any) -> None:
        """Check every value; a bad one is a one-line `ConfigError` (see `explain`), not pydantic's report."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(explain(exc, values)) from None

    @field_validator("*", mode="before")
    @classmethod
    def _read_text(cls, value: Any, info: ValidationInfo) -> Any:
        """What the command line and YAML write, read as the field's type before pydantic checks it.

        ``none``/``null``/empty text is unset where a field may be unset, ``auto`` too for a switch
        the run decides (channels_last, progress_bar); ``0.5,0.5,0.5`` is a list; repeated
        ``KEY=VALUE`` flags are a mapping (values read as YAML); a YAML number is text for a text
        field; a true/false is not a number.
        """
        kind, optional = field_kind(str(info.field_name))
        unset = ("none", "null", "", *(("auto",) if kind is bool else ()))
        if isinstance(value, str) and optional and kind is not str and value.lower() in unset:
            return None
        if isinstance(value, bool) and kind in (int, float):
            return str(value)  # refused below as not a number, and shown as written
        if isinstance(value, int | float) and not isinstance(value, bool) and kind is str:
            return str(value)
        if isinstance(value, str) and kind is list:
            return value.split(",")
        if isinstance(value, list | tuple) and kind is dict:
            return _key_values(value)
        if isinstance(value, Mapping) and kind is dict:
            return {str(k): v for k, v in value.items()}
        return value

    @field_validator("freeze", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_together(self) -> ExperimentConfig:
        """The rules that tie fields together, or need the machine or Lightning's registries."""
        if not self.model:
            raise ConfigError("model: no model given; name a registered model (run `zoo models` to list them)")
        if self.nesterov and self.optimizer != "sgd":
            raise ConfigError(
                f"nesterov: only applies to optimizer sgd, not '{self.optimizer}'; "
                "drop --nesterov or use --optimizer sgd"
            )
        self._check_recipe()
        size = max(self.image_size or self.decode_size or 0, self.train_image_size or 0) or None
        if size is not None:
            batch_bytes = self.batch_size * 3 * size * size * 4
            allowed = machine_memory_bytes() * BATCH_MEMORY_SHARE
            if batch_bytes > allowed:
                raise ConfigError(
                    f"image_size {size} with batch_size {self.batch_size}: one input batch takes "
                    f"{batch_bytes / 2**30:.1f} GiB, more than a quarter of this machine's "
                    f"{allowed / BATCH_MEMORY_SHARE / 2**30:.0f} GiB; lower the image size or the batch size"
                )
        _check_folder("checkpoint_dir", self.checkpoint_dir)
        cores = os.cpu_count() or 1
        if self.devices.isdigit() and int(self.devices) > cores and _resolves_to_cpu(self.accelerator):
            raise ConfigError(
                f"devices: {self.devices} processes asked for on the CPU, but this machine has {cores} cores; "
                f"give at most {cores}, or train on GPUs"
            )
        if self.accelerator != "auto" or self.strategy != "auto":
            # Deferred: Lightning takes seconds to import, and only these two fields need its registries.
            from lightning.pytorch.accelerators import AcceleratorRegistry
            from lightning.pytorch.strategies import StrategyRegistry

            accelerators = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
            if self.accelerator not in accelerators:
                raise ConfigError(
                    f"accelerator: '{self.accelerator}' is not allowed; choose one of: {', '.join(accelerators)}"
                )
            strategies = ["auto", *StrategyRegistry.available_strategies()]
            if self.strategy not in strategies:
                raise ConfigError(
                    f"strategy: '{self.strategy}' is not allowed; choose one of: {', '.join(strategies[:8])}, "
                    f"... (Lightning's strategy names)"
                )
        if self.precision == "16-mixed" and _resolves_to_cpu(self.accelerator):
            raise ConfigError("precision: 16-mixed is refused on a CPU (it needs a GPU); use bf16-mixed or 32 there")
        return self

    def _check_recipe(self) -> None:
        """The training recipe's fields that only make sense together (schedule, mixing, decay)."""
        if self.milestones is not None and self.schedule != "multistep":
            raise ConfigError(
                f"milestones: only apply to schedule multistep, not '{self.schedule}'; "
                "drop --milestones or use --schedule multistep"
            )
        if self.schedule == "multistep":
            if self.milestones is None:
                raise ConfigError("schedule: multistep needs milestones; give --milestones EPOCH,EPOCH,...")
            if self.milestones != sorted(set(self.milestones)):
                raise ConfigError(f"milestones: {self.milestones} must go up, each once; e.g. 30,60")
            if self.milestones[-1] >= self.epochs:
                raise ConfigError(
                    f"milestones: {self.milestones[-1]} is past the last epoch (epochs {self.epochs}); "
                    f"give milestones below {self.epochs} or raise --epochs"
                )
        if self.schedule == "step" and self.step_epochs >= self.epochs:
            raise ConfigError(
                f"step_epochs: {self.step_epochs} is past the last epoch (epochs {self.epochs}), so the "
                f"learning rate never steps; give step_epochs below {self.epochs} or raise --epochs"
            )
        mixing = "mixup_alpha" if self.mixup_alpha > 0 else "cutmix_alpha" if self.cutmix_alpha > 0 else None
        if mixing and self.batch_size < 2:
            raise ConfigError(
                f"{mixing}: mixing needs batch_size >= 2 (an image mixes with another of its batch), "
                f"not batch_size {self.batch_size}; raise --batch-size or drop --{mixing.replace('_', '-')}"
            )
        if not self.decay_norm_bias and self.weight_decay == 0:
            raise ConfigError(
                "decay_norm_bias: off has no effect with weight_decay 0; drop --no-decay-norm-bias "
                "or give --weight-decay"
            )

    def validate(self) -> ExperimentConfig:  # type: ignore[override]  # pydantic's is a deprecated v1 classmethod
        """The config itself: it was checked when it was made (kept for the callers that chain it).

        Returns:
            The config.
        """
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain YAML-able data.

        Returns:
            ``{field: value}`` for every field.
        """
        return self.model_dump()

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


def machine_memory_bytes() -> int:
    """The machine's physical memory.

    Returns:
        Bytes (``os.sysconf``); a large figure where the platform does not say.
    """
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 2**40


def _check_folder(name: str, path: str) -> None:
    """A folder that exists, or can be made: no part of it may be a file."""
    folder = Path(os.path.abspath(path))
    existing = next((part for part in (folder, *folder.parents) if part.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"{name}: '{existing}' is a file, not a folder; give a folder for the checkpoints")


def _resolves_to_cpu(accelerator: str) -> bool:
    if accelerator != "auto":
        return accelerator == "cpu"
    import torch  # deferred: the config (and so the CLI's parser) loads without torch

    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


@functools.cache
def field_kind(name: str) -> tuple[type, bool]:
    """The kind of a field's values (``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``), and if it may be unset.

    Args:
        name: A field name.

    Returns:
        ``(int, True)`` for ``image_size: int | None``; a ``Literal`` of texts is ``str``.
    """
    annotation = ExperimentConfig.model_fields[name].annotation
    args = typing.get_args(annotation)
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        annotation = next(a for a in args if a is not type(None))
    if typing.get_origin(annotation) is Literal:
        return str, optional
    return typing.cast(type, typing.get_origin(annotation) or annotation), optional


def choices(name: str) -> tuple[Any, ...]:
    """The values a field allows, where it lists them (its ``Literal``).

    Args:
        name: A field name.

    Returns:
        Such as ``("adam", "adamw", "sgd")``; empty for a field without a list.
    """
    annotation = ExperimentConfig.model_fields[name].annotation
    for part in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(part) is Literal:
            return typing.get_args(part)
    return ()


KINDS = {
    bool: "true/false value",
    int: "whole number",
    float: "number",
    str: "string",
    list: "list of numbers (such as 0.5,0.5,0.5)",
    dict: "mapping of KEY=VALUE pairs",
}
"""What a value of each kind looks like, for error messages."""

_BOUND_FIXES = {
    "greater_than_equal": "give a {kind} of at least {ge}",
    "greater_than": "give a number above {gt}",
    "less_than_equal": "give at most {le}{unit}",
    "less_than": "give a number below {lt}",
}


def explain(error: ValidationError, values: Mapping[str, Any]) -> str:
    """The one line a `ConfigError` says for pydantic's report: the first problem, its field and the fix.

    Args:
        error: What pydantic refused, from `ExperimentConfig` or a model of some of its fields.
        values: The values given, to show a refused one as it was written.

    Returns:
        Such as ``batch_size: 0 is not allowed; give a whole number of at least 1``.
    """
    problems = error.errors()
    first = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    if first["type"] == "value_error":  # a check of ours, already one line (ConfigError)
        return str(first["ctx"]["error"])
    name = str(first["loc"][0])
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(name, field_names(), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown field '{name}'; {hint}see docs/training.md for the fields"
    kind, _ = field_kind(name)
    given, item = values.get(name, first["input"]), len(first["loc"]) > 1
    if given is None:
        return f"{name}: a value is required ({kind.__name__}); it cannot be empty"
    if item or kind in (int, float):
        value = _number(first["input"], float if item else kind)
    else:
        value = first["input"] if kind is str else given
    if first["type"] == "literal_error" and isinstance(value, str):
        return f"{name}: '{value}' is not allowed; choose one of: {', '.join(map(str, choices(name)))}"
    if first["type"] == "finite_number":
        return f"{name}: {value} is not allowed; give a finite number"
    extra = typing.cast(dict[str, Any], ExperimentConfig.model_fields[name].json_schema_extra)
    if first["type"] in _BOUND_FIXES or first["type"] in ("string_pattern_mismatch", "too_short", "too_long"):
        bounds = {k: _number(v, int) for k, v in first.get("ctx", {}).items()}
        fix = extra["fix"] or _BOUND_FIXES[first["type"]].format(kind=KINDS[kind], unit=extra["unit"], **bounds)
        value = given if item else value  # an item out of bounds: the whole list, as written
        return f"{name}: {repr(value) if isinstance(value, str) else value} is not allowed; {fix}"
    return f"{name}: {given!r} is not a valid {KINDS[kind]}"


def _number(value: Any, kind: type) -> Any:
    """A number as the field holds it (``-1`` given to a float field is ``-1.0``); a bound as written (``0``)."""
    try:
        number = float(value)
        return int(number) if kind is int and number.is_integer() else number
    except (TypeError, ValueError, OverflowError):
        return value


def _key_values(items: list[Any] | tuple[Any, ...]) -> Any:
    """Repeated ``KEY=VALUE`` flags as a mapping, each value read as YAML (``depth=3`` is the number 3).

    Returns the items as they were (refused as not a mapping) where one has no ``=``, no key, or no valid YAML.
    """
    pairs = [str(item).partition("=") for item in items]
    if not all(sep and key for key, sep, _ in pairs):
        return items
    try:
        return {key: load_yaml(raw, f"the value of {key}") if raw else "" for key, _, raw in pairs}
    except yaml.YAMLError:
        return items


def is_plumbing(name: str) -> bool:
    """Whether a field says where or how a run is done, not what is trained (see ``_field``).

    Args:
        name: A field name.

    Returns:
        True for ``tracking_uri``, ``checkpoint_dir``, ``progress_bar`` and the like.
    """
    extra = typing.cast(dict[str, Any], ExperimentConfig.model_fields[name].json_schema_extra)
    return bool(extra["plumbing"])


def field_names() -> list[str]:
    """Names of every config field, in declaration order.

    Returns:
        The names.
    """
    return list(ExperimentConfig.model_fields)


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
    try:
        return ExperimentConfig(**{str(k): v for k, v in values.items()})
    except ConfigError as exc:
        if source in ("config", "command line") and not str(exc).startswith("unknown field"):
            raise
        raise ConfigError(f"{source}: {exc}") from None


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
