"""The training recipes' parts end to end: `zoo train` with all of them, its params, and the same batches on resume."""

from __future__ import annotations

import hashlib
import signal

import pytest
from mlflow.tracking import MlflowClient

from experiments.cli import main
from experiments.training.classifier import Classifier

RECIPE = {
    "optimizer": "lamb",
    "weight_decay": "0.02",
    "decay_norm_bias": "False",
    "schedule": "step",
    "step_epochs": "1",
    "lr_gamma": "0.5",
    "loss": "bce",
    "label_smoothing": "0.1",
    "mixup_alpha": "0.2",
    "cutmix_alpha": "1.0",
    "mixup_prob": "0.9",
    "mixup_switch_prob": "0.5",
    "erase_prob": "0.25",
    "auto_augment": "randaugment",
    "augment_magnitude": "7",
    "repeated_augment": "2",
    "train_image_size": "24",
}
FLAGS = [
    "--data", "digits", "--preset", "cifar", "--augment", "--limit-per-class", "8", "--batch-size", "16",
    "--epochs", "3", "--no-early-stopping", "--workers", "0", "--no-progress-bar", "--no-log-model",
    "--optimizer", "lamb", "--weight-decay", "0.02", "--no-decay-norm-bias", "--schedule", "step",
    "--step-epochs", "1", "--lr-gamma", "0.5", "--loss", "bce", "--label-smoothing", "0.1",
    "--mixup-alpha", "0.2", "--cutmix-alpha", "1.0", "--mixup-prob", "0.9", "--erase-prob", "0.25",
    "--auto-augment", "randaugment", "--augment-magnitude", "7", "--repeated-augment", "2", "--train-image-size", "24",
]  # fmt: skip


def batches_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Record (epoch, digest of images and targets) of every training batch the model receives."""
    seen: list[tuple[int, str]] = []
    original = Classifier.training_step

    def recording(self, batch, batch_idx):
        digest = hashlib.sha256(b"".join(t.detach().cpu().numpy().tobytes() for t in batch)).hexdigest()
        seen.append((self.current_epoch, digest))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(Classifier, "training_step", recording)
    return seen


def only_run(uri: str, name: str):
    client = MlflowClient(uri)
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], filter_string=f"attributes.run_name = '{name}'"
    )
    return client, run


@pytest.mark.slow
@pytest.mark.floors  # timm's Lamb and Lightning's resume on the lowest allowed releases too
def test_a_run_with_every_recipe_part_records_them_and_repeats_its_batches_on_resume(
    mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = batches_seen(monkeypatch)
    assert main(["train", "resnet_tiny_scratch", *FLAGS, "--run-name", "whole"]) == 0
    whole = list(whole)  # the runs below record into it too
    _, run = only_run(mlflow_store, "whole")
    assert run.info.status == "FINISHED"
    assert {k: run.data.params[k] for k in RECIPE} == RECIPE
    assert run.data.metrics["train_loss_epoch"] > 0
    assert len({digest for _, digest in whole}) == len(whole)  # every batch augmented its own way

    original = Classifier.on_train_epoch_start

    def stop_at_epoch_one(self):
        if self.current_epoch == 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Classifier, "on_train_epoch_start", stop_at_epoch_one)
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert main(["train", "resnet_tiny_scratch", *FLAGS, "--run-name", "stopped"]) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(Classifier, "on_train_epoch_start", original)
    resumed = batches_seen(monkeypatch)
    _, stopped = only_run(mlflow_store, "stopped")
    assert main(["train", "--resume", stopped.info.run_id]) == 0
    assert len(resumed) == 10
    assert resumed == [batch for batch in whole if batch[0] >= 1]  # epochs 1 and 2, batch for batch
