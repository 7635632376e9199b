"""How a run ends: FAILED with its traceback, KILLED on Ctrl-C or SIGTERM, and resumed into the same run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments import ExperimentConfig, train
from experiments.cli import main
from experiments.training.classifier import Classifier

FLAGS = [
    "--data",
    "digits",
    "--preset",
    "cifar",
    "--no-augment",
    "--limit-per-class",
    "8",
    "--batch-size",
    "32",
    "--workers",
    "0",
    "--no-progress-bar",
    "--no-log-model",
]
CONFIG = {
    "model": "resnet_tiny_scratch",
    "data": "digits",
    "preset": "cifar",
    "augment": False,
    "limit_per_class": 8,
    "batch_size": 32,
    "workers": "0",
    "progress_bar": False,
    "log_model": False,
}


def only_run(uri: str):
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return client, run


def test_exception_marks_the_run_failed_with_its_traceback(
    mlflow_store: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken_step(self, batch, batch_idx):
        raise RuntimeError("boom in training_step")

    monkeypatch.setattr(Classifier, "training_step", broken_step)
    with pytest.raises(RuntimeError, match="boom"):
        train(ExperimentConfig(**CONFIG, epochs=1))
    client, run = only_run(mlflow_store)
    assert run.info.status == "FAILED"
    text = Path(client.download_artifacts(run.info.run_id, "error/traceback.txt", str(tmp_path))).read_text()
    assert "RuntimeError: boom in training_step" in text
    assert "Traceback" in text


def test_ctrl_c_marks_the_run_killed(
    mlflow_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def interrupted_step(self, batch, batch_idx):
        raise KeyboardInterrupt

    monkeypatch.setattr(Classifier, "training_step", interrupted_step)
    previous = signal.getsignal(signal.SIGINT)  # Lightning ignores SIGINT while shutting down
    try:
        assert main(["train", "resnet_tiny_scratch", *FLAGS, "--epochs", "1"]) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "interrupted" in capsys.readouterr().err
    assert only_run(mlflow_store)[1].info.status == "KILLED"


def test_bad_input_fails_before_any_run_exists(mlflow_store: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "resnet_tiny_scratch", *FLAGS, "--data", "/no/such/folder"]) == 2
    assert main(["train", "resnet_tiny_scratch", *FLAGS, "--model-args", "depth=7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert all(line.startswith("zoo: error: ") for line in err)
    client = MlflowClient(mlflow_store)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_resume_continues_the_same_run(
    mlflow_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    original = Classifier.on_train_epoch_start

    def stop_at_epoch_two(self):
        if self.current_epoch == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Classifier, "on_train_epoch_start", stop_at_epoch_two)
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert main(["train", "resnet_tiny_scratch", *FLAGS, "--epochs", "4", "--no-early-stopping"]) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    client, run = only_run(mlflow_store)
    assert run.info.status == "KILLED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1, 2]
    monkeypatch.setattr(Classifier, "on_train_epoch_start", original)

    assert main(["train", "--resume", run.info.run_id, "--epochs", "9"]) == 2
    assert "--resume continues the run with its own config; drop --epochs" in capsys.readouterr().err
    assert main(["train", "--resume", run.info.run_id]) == 0
    client, resumed = only_run(mlflow_store)
    assert resumed.info.run_id == run.info.run_id
    assert resumed.info.status == "FINISHED"
    assert resumed.data.params == run.data.params
    for key in ("val_acc", "val_loss", "train_acc", "epoch_time_s"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3, 4], key
    assert resumed.data.metrics["epochs"] == 4
    assert 1 <= resumed.data.metrics["epoch_of_best"] <= 4
    assert resumed.data.metrics["train_time_s"] > 0


def test_resume_of_an_unknown_run_is_one_line(mlflow_store: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--resume", "0123456789abcdef"]) == 2
    assert "no run '0123456789abcdef'" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_marks_the_run_killed(mlflow_store: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "train.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.cli",
            "train",
            "resnet_tiny_scratch",
            *FLAGS,
            "--epochs",
            "500",
            "--no-early-stopping",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = MlflowClient(mlflow_store)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
            if runs and client.get_metric_history(runs[0].info.run_id, "val_acc"):
                break  # training, an epoch done
            time.sleep(0.5)
        assert process.poll() is None, (tmp_path / "train.log").read_text()[-2000:]
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert code != 0
    assert only_run(mlflow_store)[1].info.status == "KILLED"
