"""Workers: an 8-trial sweep of a tiny model on one worker against two (one thread each), side by side.

Run: ``pytest benchmarks/test_sweep_bench.py --benchmark-only -s``. Each round runs
the same 8-trial search of ``resnet_tiny_scratch`` on the digits (100 images per class,
six epochs: 10 to 13 s a trial in bf16 on the dev CPU, so that the fixed cost of starting
``zoo run`` and its workers does not dominate) (``zoo run`` as a
process, a SQLite study storage, a SQLite MLflow store) with ``--workers 1`` and
``--workers 2``, one torch thread per worker, alternately; medians are compared.
Two goals on a 2-core machine:

- the speed-up of two workers over one: at least 1.6x;
- what the study storage costs per trial (asking for a trial, the heartbeat, telling
  its result; measured with a trainer that trains nothing): under 2% of a trial.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from mlflow.tracking import MlflowClient

from experiments.config.experiment import load_experiment
from experiments.sweeps import engine
from experiments.sweeps import study as studies

TRIALS = 8
ROUNDS = 2
SEARCH = {
    "defaults": {
        "model": "resnet_tiny_scratch",
        "data": "digits",
        "preset": "cifar",
        "augment": False,
        "limit_per_class": 100,
        "epochs": 6,
        "batch_size": 32,
        "workers": "0",
        "progress_bar": False,
        "log_model": False,
        "early_stopping": False,
    },
    "search": {"lr": {"loguniform": [1.0e-3, 1.0e-1]}},
    "trials": TRIALS,
    "pruner": "none",
}


def sweep_wall_s(folder: Path, workers: int, name: str) -> float:
    """Seconds of one ``zoo run`` of the search, from start to its results."""
    env = {**os.environ, "ZOO_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    with open(folder / f"{name}.log", "w") as log:
        code = subprocess.run(
            [
                sys.executable,
                "-m",
                "experiments.cli",
                "run",
                str(folder / "search.yaml"),
                "--workers",
                str(workers),
                "--sweep",
                name,
            ],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=1200,
            start_new_session=True,
        ).returncode
    assert code == 0, (folder / f"{name}.log").read_text()[-3000:]
    return time.perf_counter() - started


def test_two_workers_against_one_and_the_storage_cost(
    benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("two workers need two cores")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(SEARCH))
    warm = tmp_path / "warm.yaml"  # the data cache, the stores' tables, the disk cache of the imports
    warm.write_text(yaml.safe_dump({**SEARCH, "trials": 1}))
    subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", str(warm), "--sweep", "warm-up"],
        cwd=tmp_path,
        capture_output=True,
        timeout=600,
        check=True,
    )
    walls: dict[int, list[float]] = {1: [], 2: []}
    rounds = iter(range(ROUNDS))

    def one_round() -> None:
        index = next(rounds)
        for workers in (1, 2) if index % 2 == 0 else (2, 1):
            walls[workers].append(sweep_wall_s(tmp_path, workers, f"w{workers}-r{index}"))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    speedup = one / two

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    children = [
        r
        for r in client.search_runs([client.get_experiment_by_name("search").experiment_id])
        if r.data.tags.get("zoo.role") is None and r.data.tags.get("zoo.sweep", "").startswith("w1-")
    ]
    trial_s = statistics.median((r.info.end_time - r.info.start_time) / 1000 for r in children)

    experiment = load_experiment(str(tmp_path / "search.yaml"), tracking_uri=f"sqlite:///{tmp_path / 'cost.db'}")
    nothing = lambda config, extras=None: SimpleNamespace(run_id=None, metrics={"best_val_acc": config.lr})  # noqa: E731
    storage = studies.open_storage(f"sqlite:///{tmp_path / 'cost-optuna.db'}", None)
    study, name, _ = studies.open_study(experiment, storage, "cost", 0, lambda name: None, lambda name: False)
    objective = engine.trial_objective(
        engine.Sweep(name, experiment, None, study=study), engine.SweepOptions(), nothing
    )
    started = time.perf_counter()
    studies.work(study, objective, fail_fast=False)
    storage_s = (time.perf_counter() - started) / TRIALS
    share = storage_s / trial_s
    print(f"\n{TRIALS}-trial sweep, median of {ROUNDS}: 1 worker {one:.1f} s, 2 workers {two:.1f} s: {speedup:.2f}x")
    print(f"study storage per trial: {storage_s * 1000:.0f} ms, {share:.2%} of a trial ({trial_s:.1f} s)")
    benchmark.extra_info.update(speedup=speedup, storage_share=share)
    assert speedup >= 1.6
    assert share < 0.02
