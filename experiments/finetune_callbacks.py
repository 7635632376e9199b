"""The callbacks of the fine-tuning controls: frozen stages and an EMA of the weights."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import BaseFinetuning, EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn

from experiments.finetune import frozen_modules


class FreezeStages(BaseFinetuning):
    """Freeze the stem and stages (or the whole backbone) before training; never unfreeze.

    Args:
        freeze: ``backbone`` or a whole number of stages.
    """

    def __init__(self, freeze: str) -> None:
        super().__init__()
        self.freeze_spec = freeze

    def freeze_before_training(self, pl_module: Any) -> None:
        """Set ``requires_grad=False`` on the frozen modules (BatchNorm statistics frozen too).

        Args:
            pl_module: The `Classifier`.
        """
        self.freeze(frozen_modules(pl_module.model, self.freeze_spec), train_bn=False)

    def finetune_function(self, pl_module: Any, epoch: int, optimizer: Any) -> None:
        """Nothing is unfrozen during training.

        Args:
            pl_module: The module.
            epoch: The epoch.
            optimizer: The optimizer.
        """


class EMA(EMAWeightAveraging):
    """Lightning's EMA of the weights, also used when testing the best checkpoint.

    Lightning's callback, given a checkpoint outside fitting (``trainer.test(ckpt_path=...)``),
    puts the raw weights back into the module; here the checkpoint's averaged weights stay.

    Args:
        decay: The EMA decay per optimizer step.
    """

    def __init__(self, decay: float) -> None:
        super().__init__(decay=decay)

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        """Restore the averaging state when resuming a fit; keep the averaged weights otherwise.

        Args:
            trainer: The trainer.
            pl_module: The module.
            checkpoint: The loaded checkpoint.
        """
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def averaged_state(self) -> dict[str, torch.Tensor] | None:
        """The averaged model's weights (the registry model's keys), or ``None`` before fitting.

        Returns:
            A state dict.
        """
        if self._average_model is None:
            return None
        return self._average_model.module.model.state_dict()


def weights_to_save(trainer: Any, pl_module: Any) -> dict[str, torch.Tensor]:
    """The weights that were just validated: the EMA's when the run keeps one.

    Args:
        trainer: The trainer.
        pl_module: The `Classifier`.

    Returns:
        The model's state dict.
    """
    for callback in trainer.callbacks:
        if isinstance(callback, EMA):
            state = callback.averaged_state()
            if state is not None:
                return state
    return pl_module.model.state_dict()


def extra_callbacks(config: Any, run: Any) -> list[Any]:
    """The callbacks the config's fine-tuning and diagnostics fields ask for.

    Args:
        config: The `ExperimentConfig`.
        run: The `TrackedRun` (gradient norms are written into it).

    Returns:
        `FreezeStages`, `EMA`, `experiments.gradnorms.GradNormLogger`, as asked.
    """
    callbacks: list[Any] = []
    if config.freeze != "none":
        callbacks.append(FreezeStages(config.freeze))
    if config.ema_decay is not None:
        callbacks.append(EMA(config.ema_decay))
    if config.log_grad_norms:
        from experiments.gradnorms import GradNormLogger

        callbacks.append(GradNormLogger(run))
    return callbacks
