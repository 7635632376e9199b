"""Fine-tuning controls: frozen stages, a learning rate for the head, clipping, accumulation, EMA.

Each control is a config field and maps onto Lightning's own machinery:

- ``freeze``: ``backbone`` (everything but the classifier head) or ``N`` (the stem
  and the first N stages) through a `BaseFinetuning` callback; frozen BatchNorm
  layers keep their running statistics (Lightning's ``train_bn=False``).
- ``head_lr``: a second optimizer parameter group for ``model.get_classifier()``.
- ``warmup_epochs``: the linear warmup of `experiments.module.lr_factor`.
- ``grad_clip`` / ``grad_clip_algorithm`` / ``accumulate_grad_batches``: the
  Trainer's ``gradient_clip_val``, ``gradient_clip_algorithm`` and
  ``accumulate_grad_batches``.

The callbacks live in `experiments.finetune_callbacks`, so that checking a
config does not import Lightning.
- ``ema_decay``: Lightning's `EMAWeightAveraging` (see `experiments.finetune_callbacks`); validation, the best
  checkpoint, the test figures and the saved weights all use the averaged weights.
"""

from __future__ import annotations

from typing import Any

from typing import TYPE_CHECKING

from experiments.config import ConfigError

if TYPE_CHECKING:  # torch stays unimported until a model exists (config checks run without it)
    import torch


def check_finetune_fields(config: Any) -> None:
    """Check the fine-tuning fields of a config (called by `ExperimentConfig.validate`).

    Args:
        config: The `ExperimentConfig`.

    Raises:
        ConfigError: Naming the field and what it allows.
    """
    freeze = str(config.freeze).strip().lower()
    if freeze not in ("none", "backbone") and not (freeze.isdigit() and int(freeze) >= 1):
        raise ConfigError(f"freeze: '{config.freeze}' is not allowed; give none, backbone, or a whole number N >= 1 "
                          f"(the stem and the first N stages)")
    config.freeze = freeze
    for name in ("head_lr", "grad_clip"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name}: {value} is not allowed; give a number above 0 (or leave it unset)")
    if config.accumulate_grad_batches < 1:
        raise ConfigError(f"accumulate_grad_batches: {config.accumulate_grad_batches} is not allowed; "
                          f"give a whole number of at least 1")
    if config.ema_decay is not None and not 0 < config.ema_decay < 1:
        raise ConfigError(f"ema_decay: {config.ema_decay} is not allowed; give a number between 0 and 1, such as 0.999")


def head_of(model: torch.nn.Module) -> torch.nn.Module:
    """The classifier head of a model.

    Args:
        model: A registry model.

    Returns:
        ``model.get_classifier()``.

    Raises:
        ConfigError: If the model has no ``get_classifier``.
    """
    if not hasattr(model, "get_classifier"):
        raise ConfigError(f"{type(model).__name__} has no get_classifier(); freeze and head_lr need a model "
                          f"with a classifier head (such as the zoo's ResNets)")
    return model.get_classifier()


def frozen_modules(model: torch.nn.Module, freeze: str) -> list[torch.nn.Module]:
    """The top-level modules that ``freeze`` names.

    Args:
        model: A registry model (``backbone`` needs ``get_classifier``; ``N`` also ``stages``).
        freeze: ``none``, ``backbone`` or a whole number of stages.

    Returns:
        The modules to freeze (empty for ``none``).

    Raises:
        ConfigError: If the model lacks what ``freeze`` needs or has fewer stages.
    """
    if freeze == "none":
        return []
    head = head_of(model)
    stages = list(getattr(model, "stages", []))
    backbone = [m for m in model.children() if m is not head]
    if freeze == "backbone":
        return backbone
    n = int(freeze)
    if not stages or n > len(stages):
        raise ConfigError(f"freeze: {n} stages asked for, but {type(model).__name__} has {len(stages)}; "
                          f"give at most {len(stages)} or freeze backbone")
    stem = [m for m in backbone if not any(m is s for s in stages)]
    return stem + stages[:n]


def check_model(model: torch.nn.Module, config: Any) -> None:
    """Fail before training when the model cannot take the config's fine-tuning controls.

    Args:
        model: The built model.
        config: The `ExperimentConfig`.
    """
    frozen_modules(model, config.freeze)
    if config.head_lr is not None:
        head_of(model)


def param_groups(model: torch.nn.Module, config: Any) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: the trainable body, and the head with ``head_lr``.

    Args:
        model: The model (frozen parameters already have ``requires_grad=False``).
        config: The `ExperimentConfig`.

    Returns:
        One group (``lr`` from the optimizer) or two (the head's with its own ``lr``).
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if config.head_lr is None:
        return [{"params": trainable, "lr": config.lr}]
    head_ids = {id(p) for p in head_of(model).parameters()}
    body = [p for p in trainable if id(p) not in head_ids]
    head = [p for p in trainable if id(p) in head_ids]
    groups = [{"params": body, "lr": config.lr}] if body else []
    return groups + [{"params": head, "lr": config.head_lr}]


def trainer_options(config: Any) -> dict[str, Any]:
    """Trainer arguments for clipping and accumulation.

    Args:
        config: The `ExperimentConfig`.

    Returns:
        ``gradient_clip_val``, ``gradient_clip_algorithm``, ``accumulate_grad_batches``.
    """
    return {"gradient_clip_val": config.grad_clip, "gradient_clip_algorithm": config.grad_clip_algorithm,
            "accumulate_grad_batches": config.accumulate_grad_batches}
