"""`RunRecorder` writes a run's epoch curves and checkpoints; early stopping that resumes; a line per epoch."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from experiments.config.schema import EPOCH_METRICS
from experiments.tracking.names import BEST_WEIGHTS_ARTIFACT, LAST_STATE_ARTIFACT
from experiments.tracking.runs import Run
from experiments.training.atomic import save_safetensors
from experiments.training.finetune import weights_to_save

EPOCH_LINE = {"train_loss": "train_loss_epoch", "train_acc": "train_acc", "val_loss": "val_loss", "val_acc": "val_acc"}
"""The figures `EpochLines` prints: label to the epoch metric it shows."""


class RunRecorder(Callback):
    """After each epoch: log the epoch curves, refresh the last state and the best weights.

    Its counters (train time, images seen, val_acc per epoch) are saved in the
    checkpoint, so a resumed run carries on with the same totals. They are
    updated in ``on_validation_end``, which Lightning runs before
    `ModelCheckpoint` writes the epoch's files (checkpoint callbacks run last).

    Args:
        run: The run it writes into.
        checkpoint: The run's `ModelCheckpoint`, whose file names carry the epoch
            (``best-epoch007.ckpt``).
        best_weights_path: Local file for the best weights (safetensors).
        log_lr: Log the learning rate every epoch (it changes: a schedule or a warmup); a
            constant one is the ``lr`` param, not a flat curve.
    """

    def __init__(
        self,
        run: Run,
        checkpoint: ModelCheckpoint,
        best_weights_path: Path,
        log_lr: bool = True,
    ) -> None:
        super().__init__()
        self.log_lr = log_lr
        self.run = run
        self.checkpoint = checkpoint
        self.best_weights_path = Path(best_weights_path)
        self.train_time_s = 0.0
        self.images_seen = 0
        self.val_acc_history: dict[str, float] = {}
        self._saved_best = ""
        self._epoch_start = 0.0
        self._epoch_time = 0.0

    def state_dict(self) -> dict[str, Any]:
        """Counters saved into the checkpoint.

        Returns:
            The counters.
        """
        return {
            "train_time_s": self.train_time_s,
            "images_seen": self.images_seen,
            "val_acc_history": dict(self.val_acc_history),
            "saved_best": self._saved_best,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the counters on resume."""
        self.train_time_s = float(state_dict.get("train_time_s", 0.0))
        self.images_seen = int(state_dict.get("images_seen", 0))
        self.val_acc_history = dict(state_dict.get("val_acc_history", {}))
        self._saved_best = str(state_dict.get("saved_best", ""))

    @property
    def best_epoch(self) -> int:
        """Epoch (0-based) of the best checkpoint, or -1 before there is one."""
        match = _BEST_EPOCH.search(Path(self.checkpoint.best_model_path or "").name)
        return int(match.group(1)) if match else -1

    @property
    def best_val_acc(self) -> float:
        """val_acc in the epoch of the best checkpoint (NaN before there is one)."""
        return float(self.val_acc_history.get(str(self.best_epoch), float("nan")))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the epoch clock; after a resume, save best weights the last run did not reach."""
        self._epoch_start = time.perf_counter()
        self._refresh_best(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Count the images trained on."""
        self.images_seen += int(batch[1].shape[0]) * trainer.world_size

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Account the epoch (time, val_acc) before the checkpoint is written."""
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._epoch_time = time.perf_counter() - self._epoch_start
        self.train_time_s += self._epoch_time
        if "val_acc" in trainer.callback_metrics:
            self.val_acc_history[str(trainer.current_epoch)] = float(trainer.callback_metrics["val_acc"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the epoch's figures; upload the last state and, if improved, the best weights."""
        if not trainer.is_global_zero:
            return
        # Lightning replays the end of the epoch a resumed state was written in: the run holds its figures.
        if trainer.current_epoch <= self.run.recorded.last_epoch:
            self._refresh_best(trainer, pl_module)
            return
        # The epoch figures, logged with the epoch as MLflow step, counted from 1 as `epochs` and `epoch_of_best` are.
        figures = {k: float(trainer.callback_metrics[k]) for k in EPOCH_METRICS if k in trainer.callback_metrics}
        figures["epoch_time_s"] = self._epoch_time
        if trainer.optimizers and self.log_lr:
            figures["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.run.log_metrics(figures, step=trainer.current_epoch + 1)  # epoch 1 is the first, as `epochs` counts
        self._refresh_best(trainer, pl_module)
        last = Path(self.checkpoint.dirpath or ".") / Path(LAST_STATE_ARTIFACT).name
        if last.is_file():
            self.run.log_artifact(last, str(Path(LAST_STATE_ARTIFACT).parent))

    def _refresh_best(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        best = self.checkpoint.best_model_path
        if not trainer.is_global_zero or not best or best == self._saved_best:
            return
        # Only reached right after the epoch that produced the best checkpoint
        # (or right after resuming from it): the weights in memory are the best ones.
        state = {k: v.detach().cpu().contiguous() for k, v in weights_to_save(trainer, pl_module).items()}
        save_safetensors(state, self.best_weights_path)  # a kill mid-write leaves the previous best whole
        self.run.log_artifact(self.best_weights_path, str(Path(BEST_WEIGHTS_ARTIFACT).parent))
        self._saved_best = best


_BEST_EPOCH = re.compile(r"best-epoch(\d+)")


class ResumableEarlyStopping(EarlyStopping):
    """Lightning's `EarlyStopping`, checked at validation end and whole again after a resume.

    Lightning checks early stopping at the end of the training epoch when
    validation runs every epoch. A run resumed from its last state (saved at
    validation end) replays that epoch's end without validation metrics, and the
    check fails ("val_acc ... not available"). Checked at validation end, where the
    metric is, the check runs exactly once per epoch, uninterrupted or resumed; and
    a run that had decided to stop before it was killed stops again at once.

    Args:
        **kwargs: `EarlyStopping`'s own (``monitor``, ``mode``, ``patience``, ``min_delta``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(check_on_train_epoch_end=False, **kwargs)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After a resume, stop at once if the restored state had stopped (`stopped_epoch` is set)."""
        if self.stopped_epoch > 0:
            trainer.should_stop = True


class EpochLines(Callback):
    """One line per epoch with its figures, for output that is not a terminal (a log, CI, a batch job).

    Lightning's progress bar redraws itself many times a second: in a file that is
    a hundred kilobytes of carriage returns for a few epochs. This prints what a
    researcher reads instead::

        epoch 2/10  train_loss 1.234  train_acc 0.412  val_loss 1.301  val_acc 0.455  (12.3 s)
    """

    def __init__(self) -> None:
        super().__init__()
        self._started = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the epoch's clock."""
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Print the epoch's figures (rank 0 only)."""
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        figures = "  ".join(f"{label} {float(metrics[key]):.4g}" for label, key in EPOCH_LINE.items() if key in metrics)
        print(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {figures}  "
            f"({time.perf_counter() - self._started:.1f} s)",
            flush=True,
        )
