"""Side-by-side timing: interleave two functions and compare their medians.

These machines are noisy (shared cores), so a benchmark never compares against
a number measured at another time: both sides run alternately in one process.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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
    for _ in range(warmup):
        candidate()
        reference()
    a, b = [], []
    for index in range(rounds):
        # Alternate which side goes first so drift hits both equally.
        order = [(candidate, a), (reference, b)] if index % 2 == 0 else [(reference, b), (candidate, a)]
        for fn, times in order:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)
