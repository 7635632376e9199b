"""On the real CIFAR-10 archive: ResNet-50 learns well above chance in two CPU epochs on 250 images per class."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments import ExperimentConfig, train


@pytest.mark.slow
@pytest.mark.real_data
def test_resnet50_on_cifar10_beats_chance(cifar_zip: Path, mlflow_store: str) -> None:
    config = ExperimentConfig(
        model="resnet50_scratch",
        stem="imagenet",
        data=str(cifar_zip),
        preset="cifar",
        limit_per_class=250,
        epochs=2,
        accelerator="cpu",
        progress_bar=False,
    )
    result = train(config)
    run = MlflowClient(mlflow_store).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_acc"] >= 0.25, run.data.metrics  # chance is 0.10
    assert int(run.data.params["data.num_classes"]) == 10
