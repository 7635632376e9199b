"""Side-by-side timing: run functions in alternating rounds and compare their medians.

These machines are noisy (shared cores), so a benchmark never compares against
a number measured at another time: every side runs in turn in one process.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def _no_sync() -> None:
    """Nothing to wait for: CPU work is done when the call returns."""


def interleaved_rounds(
    fns: Mapping[str, Callable[[], object]],
    rounds: int = 7,
    warmup: int = 1,
    calls_per_round: int = 1,
    sync: Callable[[], None] = _no_sync,
) -> dict[str, float]:
    """Time functions in alternating rounds and return each one's median seconds per call.

    Args:
        fns: ``{name: function}``.
        rounds: Timed rounds; in each, every function runs ``calls_per_round`` times in a row.
        warmup: Untimed calls of each first.
        calls_per_round: Calls timed together (their mean is the round's figure).
        sync: Waits for queued work (a GPU's) before a timer stops.

    Returns:
        ``{name: median seconds per call}``.
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        # Rotate which side goes first so drift hits all equally.
        for name in names[index % len(names) :] + names[: index % len(names)]:
            start = time.perf_counter()
            for _ in range(calls_per_round):
                fns[name]()
            sync()
            times[name].append((time.perf_counter() - start) / calls_per_round)
    return {name: statistics.median(t) for name, t in times.items()}


def interleaved_medians(
    candidate: Callable[[], object], reference: Callable[[], object], rounds: int = 7, warmup: int = 1
) -> tuple[float, float]:
    """Time two functions alternately and return their median wall times.

    Args:
        candidate: The code under test.
        reference: What it is compared with.
        rounds: Timed calls of each.
        warmup: Untimed calls of each first.

    Returns:
        ``(candidate_median_s, reference_median_s)``.
    """
    medians = interleaved_rounds({"candidate": candidate, "reference": reference}, rounds, warmup)
    return medians["candidate"], medians["reference"]
