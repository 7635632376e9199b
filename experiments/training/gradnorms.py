"""Per-stage gradient norms (``--log-grad-norms``): do gradients reach the early layers?

Every optimizer step, after the backward pass (and after AMP unscaling, before
clipping), the L2 norm of the gradient of each part of the model is measured:
``stem`` (everything before the first stage), ``layer1`` .. ``layerN`` (the
model's ``.stages``) and ``head`` (``get_classifier()``); a model without
``.stages`` is split by its top-level children. The values are buffered and
written once per epoch to the run as ``grad_norm/<part>`` with the optimizer step
as MLflow step, so a run with 1,000 steps costs a handful of store writes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from experiments.tracking.names import GRAD_NORM_PREFIX
from experiments.tracking.runs import Run


@runtime_checkable
class HasClassifier(Protocol):
    """A model with a classifier head (the zoo's ResNets, timm's models)."""

    def get_classifier(self) -> torch.nn.Module:
        """The head.

        Returns:
            The module that maps features to class scores.
        """
        ...


def model_of(module: torch.nn.Module) -> torch.nn.Module:
    """The registry model a `Classifier` (or the EMA's copy of one) trains, its ``.model``.

    Args:
        module: The Lightning module.

    Returns:
        ``module.model``.

    Raises:
        TypeError: If ``module.model`` is not a torch module.
    """
    model = module.model
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{type(module).__name__}.model is a {type(model).__name__}, not a torch module")
    return model


def stage_of_parameters(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Group a model's parameters by stage, in forward order.

    Args:
        model: A registry model.

    Returns:
        ``{"stem": [...], "layer1": [...], ..., "head": [...]}`` for ResNets
        (names of the stage attributes); top-level children otherwise.
    """
    stages = list(getattr(model, "stages", []))
    head = model.get_classifier() if isinstance(model, HasClassifier) else None
    groups: dict[str, list[torch.nn.Parameter]] = {}
    for name, child in model.named_children():
        in_stem = bool(stages) and not any(child is s for s in stages)
        key = "head" if child is head else "stem" if in_stem else name
        params = [p for p in child.parameters() if p.requires_grad]
        if params:
            groups.setdefault(key, []).extend(params)
    return groups


def grad_norms(groups: dict[str, list[torch.nn.Parameter]]) -> dict[str, float]:
    """The L2 norm of each group's gradient (parameters without a gradient count as zero).

    Args:
        groups: From `stage_of_parameters`.

    Returns:
        ``{group: norm}``.
    """
    return {
        name: float(torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]))
        for name, params in groups.items()
    }


class GradNormLogger(Callback):
    """Log ``grad_norm/<stage>`` for every optimizer step, written to the run (the trainer's logger) once per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self._groups: dict[str, list[torch.nn.Parameter]] = {}
        self._buffer: dict[int, dict[str, float]] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Group the trainable parameters by stage (after any freezing)."""
        self._groups = stage_of_parameters(model_of(pl_module))

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        """Measure the gradients of the step about to be taken."""
        if trainer.is_global_zero:
            norms = grad_norms(self._groups)
            self._buffer[trainer.global_step] = {GRAD_NORM_PREFIX + name: value for name, value in norms.items()}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the epoch's measurements in one batch."""
        self._flush(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Keep what was measured before a failure."""
        self._flush(trainer)

    def _flush(self, trainer: L.Trainer) -> None:
        buffer, self._buffer = self._buffer, {}
        if buffer and isinstance(trainer.logger, Run):
            trainer.logger.log_series(buffer)
