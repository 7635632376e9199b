"""Training runs of the benchmark: the data prepared once (timed), and a run that survives a broken store."""

from __future__ import annotations

import time
import traceback
from typing import Any

from experiments import ExperimentConfig, TrainResult, train
from experiments.training.runner import build_datamodule

from gpu.budget import Clock
from gpu.settings import Settings


def tracking_overrides(ctx: dict[str, Any]) -> dict[str, Any]:
    """The config values that send a run to the store the environment stage chose.

    Args:
        ctx: Shared state (``tracking``).

    Returns:
        ``tracking`` and ``tracking_uri``.
    """
    tracking = ctx["tracking"]
    return {"tracking": tracking["backend"] != "off", "tracking_uri": tracking["uri"]}


def prepare_data(config: ExperimentConfig) -> tuple[dict[str, int], float]:
    """Decode the data into the cache once (timed) and read the split's sizes.

    Args:
        config: A run's config.

    Returns:
        (``num_train``/``num_val``/``num_test``, seconds taken).
    """
    start = time.perf_counter()
    summary = build_datamodule(config).summary()
    return {k: int(summary[k]) for k in ("num_train", "num_val", "num_test")}, time.perf_counter() - start


def train_with_fallback(
    config: ExperimentConfig, estimate_s: float, clock: Clock, s: Settings
) -> tuple[TrainResult, str]:
    """`experiments.train`; if a tracked run fails, once more untracked when that still fits.

    The device has no MLflow of its own (it comes as wheels), so a store that breaks
    mid-run must not cost the figure.

    Args:
        config: The run's config.
        estimate_s: Its estimated duration.
        clock: The deadline.
        s: Settings.

    Returns:
        (the `TrainResult`, how it was tracked).
    """
    if not config.tracking:
        return train(config), "off"
    try:
        return train(config), "mlflow"
    except Exception as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    clock.require(estimate_s, f"{config.model} again without tracking (tracked run failed: {error})", s.margin_s)
    return train(config.replace(tracking=False)), f"off after the tracked run failed ({error})"
