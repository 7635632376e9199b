"""`RunLogger`: Lightning's MLflow logger, writing per-step metrics into a run the zoo owns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger

from experiments.tracking.runs import Run, TrackedRun


class RunLogger(MLFlowLogger):
    """Lightning's `MLFlowLogger` bound to an existing run, leaving params and status to the zoo.

    Params are logged by `TrackedRun` in full (Lightning would cut them to 250
    characters) and the run's status is set by `TrackedRun.lifecycle`, so
    Lightning's two hooks for them do nothing here.

    Args:
        run_id: The run's id.
        uri: Tracking URI.
    """

    def __init__(self, run_id: str, uri: str) -> None:
        super().__init__(run_id=run_id, tracking_uri=uri, log_model=False)

    def log_hyperparams(self, params: Any) -> None:
        """Leave params to `TrackedRun.log_params` (in full length)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log the per-step figures, without Lightning's ``epoch`` (an epoch plotted against the step)."""
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)

    def finalize(self, status: str = "success") -> None:
        """Leave the run's status to `TrackedRun.lifecycle`."""


def logger_for(run: Run) -> RunLogger | bool:
    """The Lightning logger of a run: a `RunLogger` for a tracked run, else ``False`` (no logger).

    Args:
        run: The run this process writes.

    Returns:
        The logger, or Lightning's value for "no logger".
    """
    if isinstance(run, TrackedRun) and run.run_id and run.uri:
        return RunLogger(run.run_id, run.uri)
    return False
