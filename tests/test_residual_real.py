"""On the real CIFAR-10 archive: the shipped `residual` experiment, reduced, logs what its docs page plots."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.cli import main

PARTS = ("stem", "layer1", "layer2", "layer3", "layer4", "head")
TWINS = {"resnet50_scratch", "plain50_scratch", "resnet101_scratch", "plain101_scratch"}


@pytest.mark.slow
@pytest.mark.real_data
def test_residual_experiment_logs_gradient_norms_and_curves_for_both_twins(
    cifar_zip: Path, mlflow_store: str, tmp_path: Path
) -> None:
    # The shipped file with every run, cut to one seed, 10 images per class and one epoch.
    assert (
        main(
            [
                "run",
                "residual",
                "--data",
                str(cifar_zip),
                "--seed",
                "0",
                "--limit-per-class",
                "10",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--no-log-model",
                "--no-progress-bar",
                "--accelerator",
                "cpu",
            ]
        )
        == 0
    )
    client = MlflowClient(mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("residual").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("zoo.role") == "sweep")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert {r.data.params["model"] for r in children} == TWINS
    assert len(children) == 4
    for run in children:
        assert run.info.status == "FINISHED", run.info.run_name
        steps = -(-int(run.data.params["data.num_train"]) // 32)
        for part in PARTS:
            history = client.get_metric_history(run.info.run_id, f"grad_norm/{part}")
            assert sorted(m.step for m in history) == list(range(steps)), (run.info.run_name, part)
            assert all(m.value > 0 for m in history)
        for curve in ("train_loss_epoch", "train_acc", "val_loss", "val_acc"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, curve)] == [1], curve
    grads, curves = tmp_path / "grads.png", tmp_path / "curves.png"
    assert (
        main(
            [
                "compare",
                "--experiment",
                "residual",
                "--group-by",
                "model",
                "--plot",
                str(curves),
                "--plot-grad-norms",
                str(grads),
            ]
        )
        == 0
    )
    assert grads.stat().st_size > 10_000
    assert curves.stat().st_size > 10_000
