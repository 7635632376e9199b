"""Classifier: optimizers, schedules and warmup as the config names them."""

from __future__ import annotations

import math

import pytest
import torch

from experiments import ExperimentConfig
from experiments.training.classifier import Classifier, lr_factor


def test_lr_factor_warmup_then_cosine() -> None:
    factor = lr_factor("cosine", warmup=4, total=20)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == pytest.approx(1.0)
    assert factor(12) == pytest.approx(0.5)
    assert factor(20) == pytest.approx(0.0)
    assert lr_factor("none", warmup=0, total=10)(7) == 1.0


@pytest.mark.parametrize(
    ("optimizer", "cls"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)]
)
def test_optimizers(optimizer: str, cls: type) -> None:
    config = ExperimentConfig(
        model="resnet_tiny_scratch", optimizer=optimizer, lr=0.05, weight_decay=1e-4, nesterov=optimizer == "sgd"
    ).validate()
    built = Classifier(config, 10).configure_optimizers()
    assert isinstance(built, cls)
    assert built.param_groups[0]["lr"] == 0.05
    assert built.param_groups[0]["weight_decay"] == 1e-4


def test_forward_and_predict_step_shapes() -> None:
    module = Classifier(
        ExperimentConfig(model="resnet_tiny_scratch", channels_last=True).validate(), 7, list("abcdefg")
    )
    x = torch.randn(3, 3, 32, 32)
    probs = module.predict_step((x, torch.zeros(3, dtype=torch.long)), 0)
    assert probs.shape == (3, 7)
    assert torch.allclose(probs.sum(1), torch.ones(3))
    assert module.hparams["class_names"] == list("abcdefg")
    assert not math.isnan(float(module(x).sum()))
