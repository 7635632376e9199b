"""The trainer's logger is the run itself (`experiments.tracking.runs.Run`); this name is kept for one reader.

`experiments.sweeps.trials` asks ``isinstance(trainer.logger, RunLogger)``; once it asks for a
`TrackedRun`, this module goes.
"""

from __future__ import annotations

from experiments.tracking.runs import TrackedRun as RunLogger

__all__ = ["RunLogger"]
