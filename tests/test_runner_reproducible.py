"""Same config and seed in two separate processes: identical curves and weights; another seed differs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from experiments.cli import main
from experiments.tracking import readback

CURVES = ("train_loss_step", "train_loss_epoch", "train_acc", "val_loss", "val_acc")


def train_argv(seed: int, name: str) -> list[str]:
    # Augmentation on (the cifar preset's crop + flip) and shuffling: both must follow the seed.
    return [
        "train",
        "resnet_tiny_scratch",
        "--data",
        "digits",
        "--preset",
        "cifar",
        "--augment",
        "--limit-per-class",
        "8",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--workers",
        "0",
        "--no-progress-bar",
        "--no-log-model",
        "--seed",
        str(seed),
        "--run-name",
        name,
    ]


def train_in_a_new_process(seed: int, name: str) -> None:
    argv = [sys.executable, "-m", "experiments.cli", *train_argv(seed, name)]
    done = subprocess.run(argv, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def record(client: MlflowClient, name: str) -> tuple[dict, dict]:
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], filter_string=f"attributes.run_name = '{name}'"
    )
    curves = {
        k: [
            (m.step, m.value)
            for m in sorted(client.get_metric_history(run.info.run_id, k), key=lambda m: (m.step, m.timestamp))
        ]
        for k in CURVES
    }
    weights, _ = readback.best_weights(run.info.run_id)  # what a finished run keeps
    return curves, weights


@pytest.mark.slow
def test_same_seed_same_run_other_seed_differs(mlflow_store: str) -> None:
    train_in_a_new_process(0, "a")
    train_in_a_new_process(0, "b")  # a second interpreter: its own hash seed, thread pools and import order
    assert main(train_argv(1, "c")) == 0  # that another seed differs needs no process of its own
    client = MlflowClient(mlflow_store)
    (curves_a, weights_a), (curves_b, weights_b), (curves_c, weights_c) = (record(client, n) for n in "abc")
    assert all(curves_a[k] for k in CURVES)
    assert curves_a == curves_b
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert curves_a["train_loss_epoch"] != curves_c["train_loss_epoch"]
    assert not all(torch.equal(weights_a[k], weights_c[k]) for k in weights_a)
