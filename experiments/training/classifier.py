"""`Classifier`: the LightningModule that trains any registered model.

It receives batches already preprocessed on the device by the data module
(`ImageDataModule.on_after_batch_transfer`), so its steps only run the model;
validation and test share one `Classifier.eval_step`, as in Lightning's own
ImageNet example. Training and validation run at the run's precision; test and
prediction always in fp32 (`Classifier.full_precision`), so that a run's test
figures are those of the model it serves.
Metrics logged with ``logger=False`` are epoch figures that the tracking
callback writes to MLflow with the epoch as step (an explicit epoch axis);
``train_loss_step``, the loss of each optimizer step, goes to the Lightning logger.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from timm.optim import Lamb
from torch.optim import SGD, Adam, AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

import registry
from experiments.config.schema import ExperimentConfig, from_dict
from experiments.training.finetune import check_model, param_groups

OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {"adam": Adam, "adamw": AdamW, "sgd": SGD, "lamb": Lamb}
"""The optimizer of each of the config's ``optimizer`` names (SGD also takes its momentum and nesterov)."""


class Classifier(L.LightningModule):
    """Image classification with a model built from the registry by name.

    Args:
        config: The run's config (or its dict, as saved in a checkpoint).
        num_classes: Number of classes of the data.
        class_names: Names of the classes, in label order.
        preprocess: The data's `Preprocess.config()`, kept in checkpoints so that
            ``zoo predict --checkpoint`` can rebuild the serving model.
    """

    def __init__(
        self,
        config: ExperimentConfig | dict,
        num_classes: int,
        class_names: list[str] | None = None,
        preprocess: dict | None = None,
    ) -> None:
        super().__init__()
        self.config = config if isinstance(config, ExperimentConfig) else from_dict(config)
        self.save_hyperparameters(
            {
                "config": self.config.to_record(),  # passwords masked: checkpoints are artifacts
                "num_classes": num_classes,
                "class_names": list(class_names or []),
                "preprocess": dict(preprocess or {}),
            }
        )
        self.num_classes = num_classes
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self.model = registry.create_model(
            self.config.model, weights=self.config.weights, **self.config.model_kwargs(num_classes)
        )
        check_model(self.model, self.config)  # a bad freeze/head_lr fails before any run exists
        if self.config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._compiled: Any = None
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.train_loss_mean = MeanMetric()
        self.test_confusion = MulticlassConfusionMatrix(num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of a preprocessed batch.

        Args:
            images: Float ``(N, 3, S, S)``, normalised.

        Returns:
            Logits ``(N, num_classes)``.
        """
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.config.compile:
            if self._compiled is None:
                # Kept off the module tree so that state_dict keys stay the model's own.
                object.__setattr__(self, "_compiled", torch.compile(self.model))
            return self._compiled(images)
        return self.model(images)

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss the config names, or plain cross-entropy outside training.

        ``targets`` are labels ``(N,)`` or soft targets ``(N, C)`` (mixed batches). Binary
        cross-entropy smooths as timm's ``BinaryCrossEntropy`` does (every class ``s / C``, the
        true one ``1 - s`` more), on soft targets too, where timm's leaves smoothing upstream.
        """
        if not self.training:  # validation and test losses compare across runs whatever the recipe
            return F.cross_entropy(logits, targets)
        smoothing = self.config.label_smoothing
        if self.config.loss == "ce":
            return F.cross_entropy(logits, targets, label_smoothing=smoothing)
        soft = targets if targets.is_floating_point() else F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, soft * (1 - smoothing) + smoothing / logits.shape[1])

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One optimisation step; logs ``train_loss_step``.

        Args:
            batch: Preprocessed images and labels (or soft targets, for a mixed batch).
            batch_idx: Index of the batch in the epoch.

        Returns:
            The loss.
        """
        images, targets = batch
        logits = self(images)
        loss = self._loss(logits, targets)
        self.train_acc(logits, targets if targets.ndim == 1 else targets.argmax(1))  # a mixed batch: its main class
        self.train_loss_mean(loss.detach())
        self.log("train_loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, logger=False)
        self.log("train_loss_epoch", self.train_loss_mean, on_step=False, on_epoch=True, logger=False)
        return loss

    def eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        """The step validation and test share: logits, ``{stage}_loss`` and ``{stage}_acc`` for the epoch.

        The loss is plain cross-entropy (``self.training`` is off), so validation and
        test losses compare across runs whatever the training loss and smoothing.

        Args:
            batch: Preprocessed images and labels.
            stage: ``"val"`` or ``"test"``.

        Returns:
            The logits.
        """
        images, labels = batch
        logits = self(images)
        accuracy = self.val_acc if stage == "val" else self.test_acc
        accuracy(logits, labels)
        shown = stage == "val"  # the progress bar shows validation figures
        self.log(
            f"{stage}_loss", self._loss(logits, labels), on_epoch=True, prog_bar=shown, logger=False, sync_dist=True
        )
        self.log(f"{stage}_acc", accuracy, on_epoch=True, prog_bar=shown, logger=False)
        return logits

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Accumulate ``val_loss`` and ``val_acc`` for the epoch (`eval_step`)."""
        self.eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Accumulate ``test_loss``, ``test_acc`` (`eval_step`) and the confusion matrix.

        Returns:
            The logits (tests compare them with the logged model's).
        """
        with self.full_precision():
            logits = self.eval_step(batch, "test")
        self.test_confusion.update(logits, batch[1])
        return logits

    def on_test_epoch_start(self) -> None:
        """Start a fresh confusion matrix for this test pass."""
        self.test_confusion.reset()

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities of a preprocessed batch.

        Args:
            batch: Images, or ``(images, labels)``.
            batch_idx: Index of the batch.

        Returns:
            Probabilities ``(N, num_classes)``.
        """
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        with self.full_precision():
            return self(images).softmax(dim=1)

    def full_precision(self) -> torch.autocast:
        """Autocast off: test and prediction compute in fp32 whatever the training precision.

        Under ``bf16-mixed`` Lightning runs every step in autocast; the weights are fp32
        all along, so without it test figures are those of the fp32 model that the
        logged model, ``zoo eval`` and ``zoo predict`` serve.

        Returns:
            The context manager.
        """
        return torch.autocast(device_type=self.device.type, enabled=False)

    def configure_optimizers(self) -> Any:
        """The optimizer and learning-rate schedule the config names.

        Returns:
            Lightning's optimizer (and per-step scheduler) description.
        """
        c = self.config
        params = param_groups(self.model, c)  # frozen parameters left out; the head may have head_lr
        momentum: dict[str, Any] = {"momentum": c.momentum, "nesterov": c.nesterov} if c.optimizer == "sgd" else {}
        optimizer = OPTIMIZERS[c.optimizer](params, lr=c.lr, weight_decay=c.weight_decay, **momentum)
        if c.schedule == "none" and c.warmup_epochs == 0:
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = round(c.warmup_epochs * total / max(1, c.epochs))
        if c.schedule == "onecycle":
            pct = min(0.9, warmup / total) if warmup else 0.3
            max_lr = [g["lr"] for g in optimizer.param_groups]
            scheduler: Any = OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, pct_start=pct)
        else:
            steps = [round(e * total / c.epochs) for e in step_milestones(c)]
            scheduler = LambdaLR(optimizer, lr_factor(c.schedule, warmup, total, steps, c.lr_gamma))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def step_milestones(config: ExperimentConfig) -> list[int]:
    """The epochs at which the step and multistep schedules multiply the learning rate by ``lr_gamma``.

    Args:
        config: The run's config.

    Returns:
        Epochs, increasing; empty for the other schedules.
    """
    if config.schedule == "step":
        return list(range(config.step_epochs, config.epochs, config.step_epochs))
    return list(config.milestones or []) if config.schedule == "multistep" else []


def lr_factor(
    schedule: str, warmup: int, total: int, milestones: Sequence[int] = (), gamma: float = 0.1
) -> Callable[[int], float]:
    """The per-step learning-rate multiplier: linear warmup, then constant, cosine or stepped.

    Args:
        schedule: ``"none"``, ``"cosine"``, ``"step"`` or ``"multistep"``.
        warmup: Warmup steps.
        total: Total optimisation steps.
        milestones: Steps at which ``step`` and ``multistep`` multiply the rate by ``gamma``.
        gamma: That factor.

    Returns:
        ``factor(step) -> float``.
    """

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "cosine":
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if schedule in ("step", "multistep"):
            return float(gamma ** bisect.bisect_right(milestones, step))
        return 1.0

    return factor
