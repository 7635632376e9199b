"""The `zoo` command with one fault planted, for the reliability tests: ``python tests/zoo_faults.py ARGS...``.

``$ZOO_FAULT`` names the faults (comma-separated) and ``$ZOO_FAULT_MARKER`` a file written when it
strikes (the test waits for it). Pauses stand still until the test SIGKILLs the
process, so that the kill lands exactly there:

- ``pause:mid-epoch:K``: after the second training batch of epoch K (0-based);
- ``pause:validated:K``: after epoch K's validation, its ``last.ckpt`` written
  locally, before its figures are logged and the state uploaded;
- ``pause:testing``: in the first test batch, every epoch recorded;
- ``enospc:checkpoint:K``: the checkpoint written after epoch K's validation
  fails halfway with "No space left on device";
- ``enospc:status:N``: the first N final-status writes fail (N = ``all``: every one).

Nothing here is shipped: the command itself runs unchanged, only the hook points
are wrapped.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path
from typing import Any


def strike() -> None:
    """Say that the fault struck (the test waits for this file)."""
    marker = os.environ.get("ZOO_FAULT_MARKER")
    if marker:
        Path(marker).write_text(str(os.getpid()))


def stand_still() -> None:
    """Strike, then wait for the test's SIGKILL."""
    strike()
    while True:
        time.sleep(1)


def plant(fault: str) -> None:
    """Wrap the hook point that ``fault`` names."""
    from experiments.tracking import runs
    from experiments.training import atomic, callbacks, classifier

    kind, point, *rest = fault.split(":")
    if (kind, point) == ("pause", "mid-epoch"):
        epoch, original = int(rest[0]), callbacks.RunRecorder.on_train_batch_end

        def mid_epoch(self: Any, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            original(self, trainer, pl_module, outputs, batch, batch_idx)
            if trainer.current_epoch == epoch and batch_idx == 1:
                stand_still()

        callbacks.RunRecorder.on_train_batch_end = mid_epoch
    elif (kind, point) == ("pause", "validated"):
        epoch, original_end = int(rest[0]), callbacks.RunRecorder.on_train_epoch_end

        def validated(self: Any, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch == epoch and not trainer.sanity_checking:
                stand_still()
            original_end(self, trainer, pl_module)

        callbacks.RunRecorder.on_train_epoch_end = validated
    elif (kind, point) == ("pause", "testing"):
        original_test = classifier.Classifier.test_step

        def testing(self: Any, batch: Any, batch_idx: int) -> Any:
            stand_still()
            return original_test(self, batch, batch_idx)

        classifier.Classifier.test_step = testing
    elif (kind, point) == ("enospc", "checkpoint"):
        epoch, original_save = int(rest[0]), atomic.AtomicCheckpointIO.save_checkpoint

        def full_disk(self: Any, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
            if checkpoint.get("epoch") == epoch and Path(path).name == "last.ckpt":

                def half_then_full(tmp: Path) -> None:
                    Path(tmp).write_bytes(b"\x00" * 4096)
                    strike()
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

                atomic.write_atomically(path, half_then_full)
            original_save(self, checkpoint, path, storage_options)

        atomic.AtomicCheckpointIO.save_checkpoint = full_disk
    elif (kind, point) == ("enospc", "status"):
        left = [10**9 if rest[0] == "all" else int(rest[0])]
        original_end_run = runs.TrackedRun.end

        def refused(self: Any, status: str) -> bool:
            client_terminate = self.client.set_terminated

            def set_terminated(run_id: str, status: str) -> None:
                if left[0] > 0:
                    left[0] -= 1
                    strike()
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                client_terminate(run_id, status)

            self.client.set_terminated = set_terminated
            return original_end_run(self, status)

        runs.TrackedRun.end = refused
    else:
        raise SystemExit(f"unknown fault {fault!r}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    for planted in filter(None, os.environ.get("ZOO_FAULT", "").split(",")):
        plant(planted)
    from experiments.cli import main

    sys.exit(main(sys.argv[1:]))
