"""`GracefulStop`: SIGTERM and Ctrl-C stop training at the next batch boundary, with the state saved.

A signal that raised at once could land in the middle of an optimizer step and
leave half-updated weights. During ``fit`` the first SIGTERM or SIGINT is only
noted; the callback raises it at the end of the current batch, where the state
is whole, and saves that state (uploaded to ``checkpoints/interrupted.ckpt``)
before Lightning shuts down. A second signal raises at once, for a user who
will not wait. `TrackedRun.lifecycle` then marks the run KILLED, and ``zoo``
exits with code 130.

``zoo train --resume`` continues from ``checkpoints/last.ckpt``, the state at
the end of the last whole epoch, not from the interrupted one: Lightning
restarts a mid-epoch state with the epoch's first batches again (the data
loader cannot skip the ones already seen), so the resumed run would no longer
equal an uninterrupted one. The interrupted state is kept for inspection and
for fine-tuning from it (``--weights``).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from experiments.signals import handle_unless_ignored, restore
from experiments.tracking.names import INTERRUPTED_STATE_ARTIFACT
from experiments.tracking.runs import Interrupted, Run

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop(Callback):
    """Defer SIGTERM/SIGINT to a batch boundary during ``fit``; save and upload the state on the way out.

    Args:
        run: The `TrackedRun` (or `NullRun`) the state is uploaded to.
        state_path: Local file for the state saved at the signal.
    """

    def __init__(self, run: Run, state_path: Path) -> None:
        super().__init__()
        self.run = run
        self.state_path = Path(state_path)
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Install the deferring handlers (main thread only; signals are delivered there).

        Installed after Lightning registers its own (which it restores at teardown).
        """
        if threading.current_thread() is not threading.main_thread():
            return
        # A signal the run was started with ignored (SIGINT of `zoo train ... &` in a script) stays ignored.
        self._previous = handle_unless_ignored(STOP_SIGNALS, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        if self.requested is not None:  # the second signal: stop now
            raise Interrupted(f"signal {signum}")
        self.requested = signum

    def _stop_if_requested(self) -> None:
        if self.requested is not None:
            raise Interrupted(f"signal {self.requested}")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Stop here if a signal came during the batch."""
        self._stop_if_requested()

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Stop here if a signal came during the validation batch."""
        if not trainer.sanity_checking:
            self._stop_if_requested()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Stop before a new epoch if a signal came at the end of the last one."""
        self._stop_if_requested()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the previous handlers back; a signal that came after the last batch still stops the run."""
        self._restore()
        self._stop_if_requested()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """On an interruption, save the state (whole, at a batch boundary) and upload it."""
        self._restore()
        if not isinstance(exception, (KeyboardInterrupt, SystemExit)) or trainer.world_size > 1:
            return  # a failure is not a stop; a distributed save would need every rank
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(self.state_path)  # Lightning writes to a temporary file and renames it
        self.run.log_artifact(self.state_path, str(Path(INTERRUPTED_STATE_ARTIFACT).parent))

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Put the previous handlers back however ``fit`` ended."""
        self._restore()

    def _restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        restore(self._previous)
        self._previous = {}
