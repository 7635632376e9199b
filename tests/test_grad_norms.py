"""Per-stage gradient norms: the measurement, and ``--log-grad-norms`` in a real run."""

from __future__ import annotations

import math

import pytest
import torch
from mlflow.tracking import MlflowClient

import registry
from experiments import ExperimentConfig, train
from experiments.cli import main
from experiments.training.gradnorms import grad_norms, stage_of_parameters

PARTS = ["stem", "layer1", "layer2", "layer3", "layer4", "head"]


@pytest.mark.parametrize("name", ["resnet_tiny_scratch", "plain_tiny_scratch"])
def test_parameters_are_grouped_by_stage_and_every_one_counted_once(name: str) -> None:
    model = registry.create_model(name, num_classes=4)
    groups = stage_of_parameters(model)
    assert list(groups) == PARTS
    counted = [id(p) for params in groups.values() for p in params]
    assert sorted(counted) == sorted(id(p) for p in model.parameters())
    assert {id(p) for p in groups["layer2"]} == {id(p) for p in model.layer2.parameters()}
    assert {id(p) for p in groups["head"]} == {id(p) for p in model.get_classifier().parameters()}


def test_norms_equal_the_norm_of_all_gradients_of_a_stage() -> None:
    torch.manual_seed(0)
    model = registry.create_model("resnet_tiny_scratch", num_classes=4)
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    norms = grad_norms(stage_of_parameters(model))
    by_hand = torch.cat([p.grad.flatten() for p in model.layer3.parameters()]).norm()
    assert norms["layer3"] == pytest.approx(float(by_hand), rel=1e-5)
    assert all(v > 0 and math.isfinite(v) for v in norms.values())


def test_frozen_parameters_are_left_out() -> None:
    model = registry.create_model("resnet_tiny_scratch", num_classes=4)
    for p in model.layer1.parameters():
        p.requires_grad = False
    assert "layer1" not in stage_of_parameters(model)


def test_a_run_logs_every_stage_every_optimizer_step(mlflow_store: str, tmp_path, capsys) -> None:
    config = ExperimentConfig(
        model="plain_tiny_scratch",
        data="digits",
        preset="cifar",
        augment=False,
        limit_per_class=8,
        epochs=2,
        batch_size=16,
        workers="0",
        progress_bar=False,
        log_model=False,
        log_grad_norms=True,
        experiment="grads",
    )
    result = train(config)
    client = MlflowClient(mlflow_store)
    steps_per_epoch = -(-int(client.get_run(result.run_id).data.params["data.num_train"]) // 16)
    for part in PARTS:
        history = client.get_metric_history(result.run_id, f"grad_norm/{part}")
        assert sorted(m.step for m in history) == list(range(2 * steps_per_epoch)), part
        assert all(m.value > 0 for m in history)
    png = tmp_path / "grads.png"
    assert main(["compare", "--experiment", "grads", "--plot-grad-norms", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert "gradient norms written to" in capsys.readouterr().out


def test_plotting_runs_without_grad_norms_is_a_one_line_error(mlflow_store: str, capsys) -> None:
    train(
        ExperimentConfig(
            model="resnet_tiny_scratch",
            data="digits",
            preset="cifar",
            augment=False,
            limit_per_class=4,
            epochs=1,
            batch_size=32,
            workers="0",
            progress_bar=False,
            log_model=False,
            experiment="nograds",
        )
    )
    assert main(["compare", "--experiment", "nograds", "--plot-grad-norms", "g.png"]) == 2
    assert "train with --log-grad-norms" in capsys.readouterr().err
