"""The deadline of a call: time left, a refusal with the reason, and what a training run will cost."""

from __future__ import annotations

import math
import time

from gpu.settings import Settings


class Skip(Exception):
    """A stage (or run) that does not fit the deadline or lacks what it needs."""


class Clock:
    """Wall time against the deadline.

    Args:
        deadline_s: Seconds from now.
    """

    def __init__(self, deadline_s: float) -> None:
        self.start = time.monotonic()
        self.deadline_s = deadline_s

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.start

    def left(self) -> float:
        """Seconds before the deadline (negative past it)."""
        return self.deadline_s - self.elapsed()

    def require(self, estimate_s: float, what: str, margin_s: float = 0.0) -> None:
        """Raise `Skip` when ``what`` would not finish before the deadline.

        Args:
            estimate_s: Its estimated duration.
            what: Its name, for the reason.
            margin_s: Time kept free at the end.

        Raises:
            Skip: With the estimate and the time left.
        """
        if estimate_s + margin_s > self.left():
            raise Skip(
                f"{what} needs about {estimate_s:.0f} s (+{margin_s:.0f} s margin) "
                f"but {max(0.0, self.left()):.0f} s of the {self.deadline_s:.0f} s deadline are left"
            )


def estimate_run_s(step_s: float, epochs: int, sizes: dict[str, int], batch: int, s: Settings) -> float:
    """Estimated wall time of one training run from a bare step time.

    Args:
        step_s: Seconds per bare training step.
        epochs: Epochs.
        sizes: ``num_train``, ``num_val``, ``num_test``.
        batch: Batch size.
        s: Settings (Lightning factor, fixed overhead).

    Returns:
        Seconds; evaluation steps count a third of a training step.
    """
    train_steps = epochs * math.ceil(sizes["num_train"] / batch)
    eval_steps = epochs * math.ceil(sizes["num_val"] / batch) + math.ceil(sizes["num_test"] / batch)
    steps_s = s.lightning_factor * step_s * (train_steps + eval_steps / 3)
    return steps_s + epochs * s.epoch_overhead_s + s.run_overhead_s
