"""One MLflow run for a distributed launch: rank 0 creates and writes it; the other ranks only train.

Lightning's DDP launcher re-runs the same command (``zoo train ...``) once per
extra device, with ``LOCAL_RANK``/``NODE_RANK``/``WORLD_SIZE`` set; a multi-node
launch runs it on every node with ``NODE_RANK`` (torchrun and SLURM set
``RANK``/``SLURM_PROCID``). Every copy would otherwise create a run of its own.
So only global rank 0 creates (or reopens) the run; it puts the id in
``$ZOO_RUN_ID`` before Lightning starts the other processes (which inherit its
environment), and `RunIdBroadcast` sends it to every rank once the process
group is up (the only way to reach other nodes). The other ranks get a
`FollowerRun`, which writes nothing.
"""

from __future__ import annotations

import os

import lightning as L
from lightning.pytorch.callbacks import Callback
from torchmetrics import Metric

from experiments.tracking.names import GLOBAL_BATCH_TAG, STRATEGY_TAG, WORLD_SIZE_TAG
from experiments.tracking.runs import Run

RUN_ID_ENV = "ZOO_RUN_ID"
"""Environment variable through which rank 0 hands its run id to the processes Lightning starts."""


def is_rank_zero() -> bool:
    """Whether this process creates and writes the run: global rank 0, read before Lightning starts.

    Returns:
        True where ``$RANK`` (torchrun) is 0, else ``$SLURM_PROCID`` inside a multi-task SLURM job,
        else where both ``$NODE_RANK`` and ``$LOCAL_RANK`` are 0 or unset (Lightning's launcher,
        and a plain run).
    """
    env = os.environ
    if env.get("RANK", "").isdigit():
        return int(env["RANK"]) == 0
    if env.get("SLURM_PROCID", "").isdigit() and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return int(env["SLURM_PROCID"]) == 0
    return int(env.get("NODE_RANK", "0") or 0) == 0 and int(env.get("LOCAL_RANK", "0") or 0) == 0


class FollowerRun(Run):
    """A rank other than 0: knows the run's id (for its checkpoint folder), writes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.run_id = os.environ.get(RUN_ID_ENV) or None


def hand_over(run: Run) -> None:
    """Put rank 0's run id where the processes Lightning starts will find it.

    Args:
        run: The run rank 0 opened.
    """
    if run.run_id and is_rank_zero():
        os.environ[RUN_ID_ENV] = run.run_id


class RunIdBroadcast(Callback):
    """Once the process group is up: every rank takes rank 0's run id; rank 0 states the world size.

    Args:
        run: This rank's run (`TrackedRun` on rank 0, `FollowerRun` elsewhere).
        batch_size: The per-process batch size.
    """

    def __init__(self, run: Run, batch_size: int) -> None:
        super().__init__()
        self.run = run
        self.batch_size = batch_size

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Broadcast the run id; on rank 0, tag the world size and the global batch size."""
        if stage != "fit":
            return
        run_id = trainer.strategy.broadcast(self.run.run_id, src=0)
        if not trainer.is_global_zero:
            self.run.run_id = run_id
            return
        world = trainer.world_size
        self.run.set_tags(
            {
                WORLD_SIZE_TAG: world,
                GLOBAL_BATCH_TAG: self.batch_size * world,
                STRATEGY_TAG: type(trainer.strategy).__name__,
            }
        )


def gather_test_figures(trainer: L.Trainer, module: L.LightningModule) -> None:
    """Compute the test confusion matrix on every rank (a collective), before rank 0 reports it alone.

    torchmetrics gathers a metric's state from all ranks when it is computed and
    keeps the result, so rank 0's later report reuses it instead of waiting on
    ranks that have finished.

    Args:
        trainer: The trainer after ``test``.
        module: The `Classifier`.
    """
    confusion = getattr(module, "test_confusion", None)
    if trainer.world_size > 1 and isinstance(confusion, Metric):
        confusion.compute()
