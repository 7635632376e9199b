"""Fine-tuning controls: frozen stages, the head's learning rate, warmup, clipping, accumulation, EMA."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from mlflow.tracking import MlflowClient

from experiments import ExperimentConfig, train
from experiments.cli import main
from experiments.config.errors import ConfigError
from experiments.tracking import readback
from experiments.tracking.runs import NullRun
from experiments.training import runner
from experiments.training.classifier import Classifier

BASE = {
    "model": "resnet_tiny_scratch",
    "data": "digits",
    "preset": "cifar",
    "augment": False,
    "limit_per_class": 8,
    "epochs": 1,
    "batch_size": 8,
    "workers": "0",
    "progress_bar": False,
    "log_model": False,
    "early_stopping": False,
    "tracking": False,
}


def fit(tmp_path: Path, callbacks: tuple = (), **changes) -> tuple[Classifier, dict, object]:
    """Fit through the runner's own trainer; return the module, its weights before, and the trainer."""
    config = ExperimentConfig(**{**BASE, **changes}).validate()
    torch.manual_seed(0)
    dm = runner.build_datamodule(config)
    module = Classifier(config, dm.num_classes, list(dm.classes), dm.preprocess.config())
    before = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
    trainer = runner.build_trainer(config, NullRun(), tmp_path / "ckpt", 4)
    trainer.callbacks.extend(callbacks)
    trainer.fit(module, datamodule=dm)
    return module, before, trainer


def changed(module: Classifier, before: dict, prefix: str) -> bool:
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    assert keys, prefix
    return any(not torch.equal(before[k], module.model.state_dict()[k]) for k in keys)


def test_freezing_the_stem_and_two_stages(tmp_path: Path) -> None:
    module, before, trainer = fit(tmp_path, freeze="2")
    for frozen in ("conv1", "bn1", "layer1", "layer2"):  # the stem and two stages: weights and BN statistics
        assert not changed(module, before, frozen), frozen
    for trained in ("layer3", "layer4", "fc"):
        assert changed(module, before, trained), trained
    optimised = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert optimised == {id(p) for p in module.model.parameters() if p.requires_grad}
    assert not any(id(p) in optimised for p in module.model.layer1.parameters())


def test_frozen_backbone_with_its_own_head_learning_rate(tmp_path: Path) -> None:
    module, before, trainer = fit(tmp_path, freeze="backbone", head_lr=0.01)
    for part in ("conv1", "bn1", "layer1", "layer4"):
        assert not changed(module, before, part), part
    assert changed(module, before, "fc")
    groups = trainer.optimizers[0].param_groups
    assert len(groups) == 1
    assert groups[0]["lr"] == 0.01
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in module.model.get_classifier().parameters()}


def test_head_learning_rate_is_a_second_group_and_warmup_ramps_both(tmp_path: Path) -> None:
    seen: list[list[float]] = []

    class LearningRates(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            seen.append([g["lr"] for g in trainer.optimizers[0].param_groups])

    fit(tmp_path, (LearningRates(),), lr=0.001, head_lr=0.01, warmup_epochs=1, epochs=2, batch_size=16)
    assert len(seen[0]) == 2
    steps = len(seen) // 2
    assert seen[0] == pytest.approx([0.001 / steps, 0.01 / steps])  # linear warmup from step 1 of `steps`
    assert seen[-1] == pytest.approx([0.001, 0.01])  # warmed up: each group at its own rate


def test_gradient_accumulation_and_clipping_are_lightnings_own(tmp_path: Path) -> None:
    norms: list[float] = []

    class ClippedNorm(Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            def probe(optimizer, args, kwargs) -> None:  # after optimizer.step(): the gradients it used, clipped
                grads = [p.grad.flatten() for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
                norms.append(float(torch.cat(grads).norm()))

            trainer.optimizers[0].register_step_post_hook(probe)

    _, _, trainer = fit(tmp_path, (ClippedNorm(),), grad_clip=0.05, accumulate_grad_batches=2)
    assert trainer.gradient_clip_val == 0.05
    assert trainer.gradient_clip_algorithm == "norm"
    assert trainer.accumulate_grad_batches == 2
    batches = trainer.num_training_batches
    assert trainer.global_step == -(-batches // 2) == len(norms)
    assert max(norms) <= 0.05 * 1.001


def test_ema_weights_are_validated_tested_and_saved(mlflow_store: str, tmp_path: Path) -> None:
    # The local checkpoint is kept: this test reads Lightning's own file to see the EMA inside it.
    result = train(
        ExperimentConfig(
            **{
                **BASE,
                "tracking": True,
                "epochs": 2,
                "batch_size": 16,
                "ema_decay": 0.9,
                "experiment": "ema",
                "keep_local_checkpoints": True,
            }
        )
    )
    best = torch.load(result.best_checkpoint, map_location="cpu", weights_only=True)
    assert "current_model_state" in best  # Lightning's EMA: the averaged weights are the checkpoint's weights
    averaged = {k[len("model.") :]: v for k, v in best["state_dict"].items() if k.startswith("model.")}
    raw = {k[len("model.") :]: v for k, v in best["current_model_state"].items() if k.startswith("model.")}
    saved, _ = readback.best_weights(result.run_id)
    assert all(torch.equal(saved[k], averaged[k]) for k in averaged)
    assert any(not torch.equal(averaged[k], raw[k]) for k in averaged if averaged[k].is_floating_point())
    out = io.StringIO()
    with redirect_stdout(out):  # zoo eval on the run's own test split: the same figure as the run's test_acc
        assert main(["eval", result.run_id, "--no-log"]) == 0
    accuracy = float(out.getvalue().split("accuracy ")[1].split()[0])
    assert accuracy == pytest.approx(
        MlflowClient(mlflow_store).get_run(result.run_id).data.metrics["test_acc"], abs=1e-4
    )
    params = MlflowClient(mlflow_store).get_run(result.run_id).data.params
    assert params["ema_decay"] == "0.9"
    assert params["freeze"] == "none"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"freeze": "some"}, "freeze: 'some' is not allowed"),
        ({"freeze": "0"}, "freeze: '0' is not allowed"),
        ({"head_lr": -1.0}, "head_lr: -1.0 is not allowed"),
        ({"ema_decay": 1.5}, "ema_decay: 1.5 is not allowed"),
        ({"accumulate_grad_batches": 0}, "accumulate_grad_batches: 0 is not allowed"),
        ({"grad_clip_algorithm": "max"}, "grad_clip_algorithm: 'max' is not allowed"),
    ],
)
def test_bad_fine_tuning_values(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(**{**BASE, **changes}).validate()


def test_more_stages_than_the_model_has_fails_before_any_run(mlflow_store: str, capsys) -> None:
    assert main(["train", "resnet_tiny_scratch", "--data", "digits", "--freeze", "5", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "freeze: 5 stages asked for, but ResNet has 4" in err
    assert err.count("\n") == 1
    assert MlflowClient(mlflow_store).get_experiment_by_name("zoo") is None  # no run was created
