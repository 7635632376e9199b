"""`StopSignals`: SIGTERM and Ctrl-C stop training at the next batch boundary, with the state saved.

A signal that raised at once could land in the middle of an optimizer step and
leave half-updated weights. Lightning already defers SIGTERM while it trains: its
handler notes the signal and its loops raise `SIGTERMException` at the next batch
end. What it does not do is kept here: Ctrl-C takes the same path (it is turned
into Lightning's SIGTERM); outside training (the data read, the test) both signals
stop at once as `Interrupted`; a second signal stops at once, for a user who will
not wait; and the state at the stop is saved and uploaded to
``checkpoints/interrupted.ckpt``. `TrackedRun.lifecycle` then
marks the run KILLED, and ``zoo`` exits with code 130.

``zoo train --resume`` continues from ``checkpoints/last.ckpt``, the state at
the end of the last whole epoch, not from the interrupted one: Lightning
restarts a mid-epoch state with the epoch's first batches again (the data
loader cannot skip the ones already seen), so the resumed run would no longer
equal an uninterrupted one. The interrupted state is kept for inspection and
for fine-tuning from it (``--weights``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from experiments.signals import handle_unless_ignored, restore
from experiments.tracking.names import INTERRUPTED_STATE_ARTIFACT
from experiments.tracking.runs import Run

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or Ctrl-C where no batch is in progress, delivered the way Ctrl-C is: the run ends KILLED."""


class StopSignals(Callback):
    """Handle SIGTERM/SIGINT for a run's whole body; during training, stop at a batch boundary.

    The state at a stop is saved here, not by Lightning's `OnExceptionCheckpoint`: with one
    among its callbacks, Lightning turns ``fit(ckpt_path=None)`` into ``ckpt_path="last"`` and
    would restart a new run, or one resumed from its start, from a state left in its folder.

    Args:
        run: The run the state at the stop is uploaded to.
        dirpath: The run's checkpoint folder (the state is ``interrupted.ckpt`` there).
    """

    def __init__(self, run: Run, dirpath: Path) -> None:
        super().__init__()
        self.run = run
        self.ckpt_path = Path(dirpath) / Path(INTERRUPTED_STATE_ARTIFACT).name
        self.training = False
        self.requested = False

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Install the handlers while the body runs (main thread only; signals are delivered there).

        A signal the run was started with ignored (SIGINT of ``zoo train ... &`` in a script) stays ignored.

        Yields:
            Nothing.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = handle_unless_ignored(STOP_SIGNALS, self.on_signal)
        try:
            yield
        finally:
            restore(previous)

    def on_signal(self, signum: int, frame: Any) -> None:
        """Note the first signal while training; raise `Interrupted` otherwise.

        Lightning's SIGTERM handler, installed over this one while it runs, calls this one too.

        Args:
            signum: The signal.
            frame: Where it landed.

        Raises:
            Interrupted: A second signal, or one where no batch is in progress.
        """
        if self.requested or not self.training:
            raise Interrupted(f"signal {signum}")
        if signum == signal.SIGINT:
            signal.raise_signal(signal.SIGTERM)  # Lightning's stop: its handler notes it, then calls this one again
        self.requested = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Defer signals to Lightning from here: its SIGTERM handler is installed and its loops check it."""
        self.training = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """No batch is left: a signal stops at once again, and one that came after the last batch stops now."""
        self.training = False
        if self.requested:
            raise Interrupted("a stop signal after the last batch")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """On a stop, save the state (whole, at a batch boundary) and upload it; a failure is not a stop."""
        self.training = False
        if isinstance(exception, (KeyboardInterrupt, SystemExit)) and trainer.world_size == 1:
            trainer.save_checkpoint(self.ckpt_path)  # a distributed save would need every rank
            self.run.log_artifact(self.ckpt_path, str(Path(INTERRUPTED_STATE_ARTIFACT).parent))
