"""Step timing on the benchmark's device: the project's step and interleaved timer, with the device's sync.

The step is `steps.train_step` (the one the CPU benchmarks time, under Lightning's
precision plugin) and the timer `timing.interleaved_rounds`; this module adds what
a GPU needs: waiting for queued work before a timer stops, and returning cached
memory between stages.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Mapping

import torch

from gpu.settings import Settings
from steps import device_kind, train_step
from timing import interleaved_rounds

BENCH_PRECISION = "bf16-mixed"
"""The throughput and compile stages' precision (the zoo's ``auto`` on a bf16 GPU), set, not resolved."""
ESTIMATE_FACTOR = 1.2
"""Timed steps' estimate over their probe (switches between models, a slower round)."""


def sync(device: str) -> None:
    """Wait for the device's queued work (timers must not stop before the GPU does).

    Args:
        device: Torch device.
    """
    if device_kind(device) == "cuda":
        torch.cuda.synchronize()


def bench_step(model: torch.nn.Module, batch: int, size: int, device: str) -> Callable[[], None]:
    """One Adam training step, bf16 autocast, channels_last, on a fixed random batch.

    Args:
        model: The network (moved to the device and channels_last here).
        batch: Images per step.
        size: Input size.
        device: Torch device.

    Returns:
        ``step()``.
    """
    return train_step(model, batch, size, device, BENCH_PRECISION, channels_last=True)


def interleaved(steps: Mapping[str, Callable[[], None]], s: Settings, rounds: int | None = None) -> dict[str, float]:
    """Median seconds per step of each function, timed in alternating rounds.

    Args:
        steps: ``{name: step}``.
        s: Settings (warmup, rounds, steps per round, device).
        rounds: Override of ``s.rounds``.

    Returns:
        ``{name: median s/step}``.
    """
    return interleaved_rounds(steps, rounds or s.rounds, s.warmup, s.steps_per_round, functools.partial(sync, s.device))


def time_step_s(step: Callable[[], None], s: Settings, warmup: int, rounds: int) -> float:
    """Median seconds of one step alone, for an estimate.

    Args:
        step: The step.
        s: Settings (the device).
        warmup: Untimed calls first.
        rounds: Timed calls.

    Returns:
        The median.
    """
    return interleaved_rounds({"step": step}, rounds, warmup, sync=functools.partial(sync, s.device))["step"]


def probe_step_s(model: torch.nn.Module, batch: int, size: int, s: Settings) -> float:
    """Seconds per training step of a model, from a short measurement (for estimates).

    Args:
        model: The network.
        batch: Images per step.
        size: Input size.
        s: Settings.

    Returns:
        The median of a few timed steps after one warm-up.
    """
    return time_step_s(bench_step(model, batch, size, s.device), s, warmup=1, rounds=1 if s.tiny else 5)


def free_memory(s: Settings) -> None:
    """Return cached GPU memory between stages.

    Args:
        s: Settings (the device).
    """
    gc.collect()
    if device_kind(s.device) == "cuda":
        torch.cuda.empty_cache()
