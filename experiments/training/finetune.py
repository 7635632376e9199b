"""Fine-tuning controls: frozen stages, a learning rate for the head, clipping, accumulation, EMA.

Each control is a config field (checked with the others in
`experiments.config.schema`) and maps onto Lightning's own machinery:

- ``freeze``: ``backbone`` (everything but the classifier head) or ``N`` (the stem
  and the first N stages) through a `BaseFinetuning` callback; frozen BatchNorm
  layers keep their running statistics (Lightning's ``train_bn=False``).
- ``head_lr``: a second optimizer parameter group for ``model.get_classifier()``.
- ``warmup_epochs``: the linear warmup of `experiments.training.classifier.lr_factor`.
- ``grad_clip`` / ``grad_clip_algorithm`` / ``accumulate_grad_batches``: the
  Trainer's ``gradient_clip_val``, ``gradient_clip_algorithm`` and
  ``accumulate_grad_batches``.
- ``ema_decay``: Lightning's `EMAWeightAveraging`; validation, the best
  checkpoint, the test figures and the saved weights all use the averaged weights.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning, Callback, EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn

from experiments.config.errors import ConfigError
from experiments.config.schema import ExperimentConfig
from experiments.training.gradnorms import GradNormLogger, HasClassifier, model_of


def head_of(model: torch.nn.Module) -> torch.nn.Module:
    """The classifier head of a model.

    Args:
        model: A registry model.

    Returns:
        ``model.get_classifier()``.

    Raises:
        ConfigError: If the model has no ``get_classifier``.
    """
    if not isinstance(model, HasClassifier):
        raise ConfigError(
            f"{type(model).__name__} has no get_classifier(); freeze and head_lr need a model "
            f"with a classifier head (such as the zoo's ResNets)"
        )
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
        raise ConfigError(
            f"freeze: {n} stages asked for, but {type(model).__name__} has {len(stages)}; "
            f"give at most {len(stages)} or freeze backbone"
        )
    stem = [m for m in backbone if not any(m is s for s in stages)]
    return stem + stages[:n]


def check_model(model: torch.nn.Module, config: ExperimentConfig) -> None:
    """Fail before training when the model cannot take the config's fine-tuning controls.

    Args:
        model: The built model.
        config: The `ExperimentConfig`.
    """
    frozen_modules(model, config.freeze)
    if config.head_lr is not None:
        head_of(model)


def param_groups(model: torch.nn.Module, config: ExperimentConfig) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: the trainable body, and the head with ``head_lr``.

    Args:
        model: The model (frozen parameters already have ``requires_grad=False``).
        config: The `ExperimentConfig`.

    Returns:
        One group (``lr`` from the optimizer) or two (the head's with its own ``lr``); with
        ``decay_norm_bias`` off, each split into its decayed part and its part with weight decay 0.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if config.head_lr is None:
        groups = [{"params": trainable, "lr": config.lr}]
    else:
        head_ids = {id(p) for p in head_of(model).parameters()}
        body = [p for p in trainable if id(p) not in head_ids]
        head = [p for p in trainable if id(p) in head_ids]
        groups = [*([{"params": body, "lr": config.lr}] if body else []), {"params": head, "lr": config.head_lr}]
    return groups if config.decay_norm_bias else [part for g in groups for part in _split_decay(model, g)]


def _split_decay(model: torch.nn.Module, group: dict[str, Any]) -> list[dict[str, Any]]:
    """A group as its decayed part and its part without weight decay.

    The part without is timm's (``param_groups_weight_decay``): norms and biases, that is every
    parameter of one dimension or fewer, or named ``*.bias``.
    """
    bias_ids = {id(p) for name, p in model.named_parameters() if name.endswith(".bias")}
    plain = [p for p in group["params"] if p.ndim <= 1 or id(p) in bias_ids]
    plain_ids = {id(p) for p in plain}
    decayed = [p for p in group["params"] if id(p) not in plain_ids]
    parts = [{**group, "params": decayed}] if decayed else []
    return [*parts, *([{**group, "params": plain, "weight_decay": 0.0}] if plain else [])]


class FreezeStages(BaseFinetuning):
    """Freeze the stem and stages (or the whole backbone) before training; never unfreeze.

    Args:
        freeze: ``backbone`` or a whole number of stages.
    """

    def __init__(self, freeze: str) -> None:
        super().__init__()
        self.freeze_spec = freeze

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        """Set ``requires_grad=False`` on the frozen modules (BatchNorm statistics frozen too)."""
        self.freeze(frozen_modules(model_of(pl_module), self.freeze_spec), train_bn=False)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        """Nothing is unfrozen during training."""


class EMA(EMAWeightAveraging):
    """Lightning's EMA of the weights, also used when testing the best checkpoint.

    Lightning's callback, given a checkpoint outside fitting (``trainer.test(ckpt_path=...)``),
    puts the raw weights back into the module; here the checkpoint's averaged weights stay.

    Args:
        decay: The EMA decay per optimizer step.

    Attributes:
        validated: The averaged weights of the last validation (the registry model's keys), or ``None``
            before one.
    """

    def __init__(self, decay: float) -> None:
        super().__init__(decay=decay)
        self.validated: dict[str, torch.Tensor] | None = None

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Restore the averaging state when resuming a fit; keep the averaged weights otherwise."""
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Keep a copy of the weights just validated, then let Lightning swap the raw ones back.

        Lightning swaps the averaged weights into the module for each validation epoch: what is
        in the module here is what the epoch's figures measured, and what the best weights must be.
        """
        self.validated = {k: v.detach().cpu().clone() for k, v in model_of(pl_module).state_dict().items()}
        super().on_validation_epoch_end(trainer, pl_module)


def weights_to_save(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
    """The weights that were just validated: the EMA's when the run keeps one.

    Args:
        trainer: The trainer, whose callbacks may hold an `EMA`.
        pl_module: The `Classifier`.

    Returns:
        The model's state dict.
    """
    for callback in trainer.callbacks:  # type: ignore[attr-defined]  # Lightning sets it without declaring it
        if isinstance(callback, EMA) and callback.validated is not None:
            return callback.validated
    return model_of(pl_module).state_dict()


def extra_callbacks(config: ExperimentConfig) -> list[Callback]:
    """The callbacks the config's fine-tuning and diagnostics fields ask for.

    Args:
        config: The `ExperimentConfig`.

    Returns:
        `FreezeStages`, `EMA`, `GradNormLogger`, as asked.
    """
    callbacks: list[Callback] = []
    if config.freeze != "none":
        callbacks.append(FreezeStages(config.freeze))
    if config.ema_decay is not None:
        callbacks.append(EMA(config.ema_decay))
    if config.log_grad_norms:
        callbacks.append(GradNormLogger())
    return callbacks
