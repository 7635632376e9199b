"""Classifier: optimizers, schedules and warmup as the config names them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from timm.loss import BinaryCrossEntropy
from timm.optim import Lamb

from experiments import ExperimentConfig
from experiments.training.classifier import Classifier, lr_factor, step_milestones


def test_lr_factor_warmup_then_cosine() -> None:
    factor = lr_factor("cosine", warmup=4, total=20)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == pytest.approx(1.0)
    assert factor(12) == pytest.approx(0.5)
    assert factor(20) == pytest.approx(0.0)
    assert lr_factor("none", warmup=0, total=10)(7) == 1.0


def test_step_and_multistep_multiply_by_gamma_at_the_milestones_after_warmup() -> None:
    factor = lr_factor("multistep", warmup=2, total=20, milestones=[6, 12], gamma=0.5)
    assert [factor(s) for s in (0, 1, 5, 6, 11, 12, 19)] == [0.5, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert step_milestones(ExperimentConfig(model="m", schedule="step", step_epochs=3, epochs=10)) == [3, 6, 9]
    assert step_milestones(ExperimentConfig(model="m", schedule="multistep", milestones="4,7", epochs=10)) == [4, 7]
    assert step_milestones(ExperimentConfig(model="m", schedule="cosine")) == []


def test_multistep_milestones_are_epochs_of_the_scheduler_steps() -> None:
    """With 5 batches an epoch, milestone epoch 2 is the 10th optimizer step: the rate drops there."""
    config = ExperimentConfig(
        model="resnet_tiny_scratch", optimizer="sgd", lr=0.1, schedule="multistep", milestones=[2], epochs=4
    )
    module = Classifier(config, 10)
    module.trainer = type("Trainer", (), {"estimated_stepping_batches": 20})()  # type: ignore[assignment]  # a stub
    built = module.configure_optimizers()
    optimizer, scheduler = built["optimizer"], built["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[9] == pytest.approx(0.1)
    assert rates[10] == pytest.approx(0.01)


def test_no_decay_on_norms_and_biases_splits_every_group() -> None:
    config = ExperimentConfig(
        model="resnet_tiny_scratch", optimizer="lamb", weight_decay=0.05, decay_norm_bias=False, head_lr=0.5
    )
    module = Classifier(config, 10)
    groups = module.configure_optimizers().param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.05 for p in g["params"]}
    plain = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    for name, p in module.model.named_parameters():
        assert (id(p) in plain) == (p.ndim <= 1 or name.endswith(".bias")), name
    assert len(decayed) + len(plain) == len(list(module.model.parameters()))
    assert sorted({g["lr"] for g in groups}) == [1e-3, 0.5]  # the head keeps its own rate in both parts


@pytest.mark.parametrize(
    ("optimizer", "cls"),
    [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD), ("lamb", Lamb)],
)
def test_optimizers(optimizer: str, cls: type) -> None:
    config = ExperimentConfig(
        model="resnet_tiny_scratch", optimizer=optimizer, lr=0.05, weight_decay=1e-4, nesterov=optimizer == "sgd"
    ).validate()
    built = Classifier(config, 10).configure_optimizers()
    assert isinstance(built, cls)
    assert built.param_groups[0]["lr"] == 0.05
    assert built.param_groups[0]["weight_decay"] == 1e-4


def test_bce_smooths_as_timms_and_takes_soft_targets_and_evaluation_stays_cross_entropy() -> None:
    logits, labels = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    module = Classifier(ExperimentConfig(model="resnet_tiny_scratch", loss="bce", label_smoothing=0.1), 5)
    expected = BinaryCrossEntropy(smoothing=0.1)(logits, labels)
    assert module._loss(logits, labels) == pytest.approx(float(expected))
    soft = F.one_hot(labels, 5).float()
    assert module._loss(logits, soft) == pytest.approx(float(expected))  # smoothed here, not upstream
    module.eval()
    assert module._loss(logits, labels) == pytest.approx(float(F.cross_entropy(logits, labels)))


def test_cross_entropy_on_soft_targets_equals_it_on_labels() -> None:
    logits, labels = torch.randn(4, 3), torch.tensor([2, 0, 1, 1])
    module = Classifier(ExperimentConfig(model="resnet_tiny_scratch", label_smoothing=0.2), 3)
    hard = module._loss(logits, labels)
    assert module._loss(logits, F.one_hot(labels, 3).float()) == pytest.approx(float(hard))
    assert hard == pytest.approx(float(F.cross_entropy(logits, labels, label_smoothing=0.2)))


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
