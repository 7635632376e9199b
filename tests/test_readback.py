"""Reading a run back (resume, runs:/ weights, predict, eval) leaves nothing behind in the temp folder."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

import registry
from experiments import ExperimentConfig, train
from experiments.cli import main
from experiments.training.classifier import Classifier

TINY = {
    "model": "resnet_tiny_scratch",
    "data": "digits",
    "preset": "cifar",
    "augment": False,
    "limit_per_class": 8,
    "epochs": 3,
    "batch_size": 32,
    "workers": "0",
    "progress_bar": False,
    "log_model": False,
}


def test_what_a_run_read_back_downloads_is_removed(
    mlflow_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Classifier.on_train_epoch_start

    def stop_at_epoch_one(self):
        if self.current_epoch == 1:
            raise KeyboardInterrupt  # a stopped run: KILLED, with a last state to resume from
        return original(self)

    monkeypatch.setattr(Classifier, "on_train_epoch_start", stop_at_epoch_one)
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(ExperimentConfig(**TINY))
    signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(Classifier, "on_train_epoch_start", original)
    client = MlflowClient(mlflow_store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    run_id = run.info.run_id
    assert run.info.status == "KILLED"
    image = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(image)

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # every temporary folder of this process lands here
    assert main(["train", "--resume", run_id]) == 0
    registry.create_model("resnet_tiny_scratch", weights=f"runs:/{run_id}")
    assert main(["predict", "--run", run_id, str(image)]) == 0
    assert main(["eval", run_id, "--no-log"]) == 0
    assert sorted(p.name for p in temp.iterdir()) == []
