"""What MLflow tracking costs: the same training run with tracking on and off, side by side.

Run: ``pytest benchmarks/test_tracking_overhead.py --benchmark-only -s``. Each round
trains ``resnet_tiny_scratch`` on the offline digits (upscaled to 64x64, three
epochs) twice in the same process, tracking off then on (a local SQLite store);
rounds are interleaved and medians compared. Two measures, both must stay under 2%:

- side by side: the CPU time of ``Trainer.fit`` with tracking on against off (CPU
  time, on one thread, because this machine's wall clock is shared with other jobs);
- direct: the wall time spent inside the tracking calls during ``fit`` (``train_loss``
  every 50 steps, the epoch curves, the uploads of the last state and the best
  weights), as a fraction of the fit's wall time.

The one-off work after training (the logged model, the confusion matrix; about two
seconds whatever the run's length) is printed, not asserted.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow.tracking import MlflowClient

from experiments import ExperimentConfig, train
from experiments.tracking.runs import TrackedRun

ROUNDS = 4
CONFIG = {
    "model": "resnet_tiny_scratch",
    "data": "digits",
    "preset": "cifar",
    "image_size": 64,
    "augment": False,
    "epochs": 3,
    "batch_size": 32,
    "workers": "0",
    "progress_bar": False,
    "early_stopping": False,
    "accelerator": "cpu",
}


def timed(spent: list[float], function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    return wrapper


def test_tracking_costs_under_two_percent(benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    spent = [0.0]
    for name in ("log_series", "log_artifact"):  # every metric (Lightning's per-step ones too) goes through log_series
        monkeypatch.setattr(TrackedRun, name, timed(spent, getattr(TrackedRun, name)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # migrate the store before timing
    train(ExperimentConfig(**{**CONFIG, "epochs": 1}, tracking=False))  # warm-up: data cache, imports, kernels
    cpu: dict[bool, list[float]] = {False: [], True: []}
    direct: list[float] = []
    total: dict[bool, list[float]] = {False: [], True: []}

    def one_round() -> None:
        for tracking in (False, True):
            spent[0] = 0.0
            started = time.perf_counter()
            result = train(ExperimentConfig(**CONFIG, tracking=tracking, tracking_uri=uri if tracking else None))
            total[tracking].append(time.perf_counter() - started)
            cpu[tracking].append(result.extra["fit_cpu_s"])
            if tracking:
                direct.append(spent[0] / result.extra["fit_wall_s"])
            shutil.rmtree(result.checkpoint_dir, ignore_errors=True)

    try:
        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    finally:
        torch.set_num_threads(threads)
    off, on = statistics.median(cpu[False]), statistics.median(cpu[True])
    side_by_side, inside = on / off - 1, statistics.median(direct)
    print(f"\nfit CPU time, median of {ROUNDS}: tracking off {off:.2f} s, on {on:.2f} s: {side_by_side:+.2%}")
    print(f"time inside tracking calls during fit: {inside:.2%} of its wall time")
    off, on = statistics.median(total[False]), statistics.median(total[True])
    print(f"whole train() call (wall): off {off:.2f} s, on {on:.2f} s")
    assert inside < 0.02
    assert side_by_side < 0.02
