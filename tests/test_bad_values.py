"""Every value is checked before any work: bad ones are one line and exit code 2, and no run is created.

Each case here once passed the checks and failed later, after the MLflow run
existed (with a traceback), or trained to ``test_loss nan`` with exit code 0,
or started 98 processes on a 2-core machine.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.cli import main

from cli_errors import one_error_line

FLAGS = [
    "--data",
    "digits",
    "--preset",
    "cifar",
    "--no-augment",
    "--limit-per-class",
    "8",
    "--workers",
    "0",
    "--no-progress-bar",
    "--no-log-model",
]


def no_runs(uri: str) -> bool:
    client = MlflowClient(uri)
    return not client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--lr", "nan"], "lr: nan is not allowed; give a finite number"),
        (["--lr", "inf"], "lr: inf is not allowed"),
        (["--weight-decay", "nan"], "weight_decay: nan"),
        (["--warmup-epochs", "nan"], "warmup_epochs: nan"),
        (["--grad-clip", "nan"], "grad_clip: nan"),
        (["--label-smoothing=-inf"], "label_smoothing: -inf"),
        (["--std", "nan,nan,nan"], "std: nan"),
        (["--mean", "0.5,inf,0.5"], "mean: inf"),
        (["--seed=-1"], "seed: -1 is not allowed; give a whole number from 0 to 4294967295"),
        (["--seed", "4294967296"], "seed: 4294967296 is not allowed"),
        (["--image-size", "100000"], "image_size: 100000 is not allowed; give at most 8192"),
        (["--image-size", "8000", "--batch-size", "256"], "more than a quarter of this machine's"),
        (["--checkpoint-dir", "a_file"], "is a file, not a folder"),
        (["--checkpoint-dir", "a_file/below"], "is a file, not a folder"),
        (["--schedule", "multistep", "--milestones", "2,40"], "milestones: 40 is past the last epoch (epochs 10)"),
        (["--lr-gamma", "0"], "lr_gamma: 0.0 is not allowed; give a number in (0, 1]"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_bad_value_is_one_line_before_any_run(
    argv: list[str], says: str, mlflow_store: str, capsys: pytest.CaptureFixture
) -> None:
    Path("a_file").write_text("not a folder")
    assert main(["train", "resnet_tiny_scratch", *FLAGS, *argv]) == 2
    assert says in one_error_line(capsys.readouterr().err)
    assert no_runs(mlflow_store)


def test_more_devices_than_cores_on_the_cpu_names_both_numbers(
    mlflow_store: str, capsys: pytest.CaptureFixture
) -> None:
    cores = os.cpu_count() or 1
    asked = cores + 97
    assert main(["train", "resnet_tiny_scratch", *FLAGS, "--accelerator", "cpu", "--devices", str(asked)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"devices: {asked} processes" in line
    assert f"has {cores} cores" in line
    assert no_runs(mlflow_store)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["runs", "--mark-stale", "--older-than", "-5"], "-5 is not allowed; give a number of seconds of at least 0"),
        (["runs", "--older-than", "nan"], "nan is not allowed"),
        (
            ["predict", "--run", "x", "--top-k", "0", "image.png"],
            "'0' is not allowed; give a whole number of at least 1",
        ),
        (["ui", "--port", "99999"], "'99999' is not a port; give a number from 1 to 65535"),
        (["ui", "--port", "0"], "'0' is not a port"),
        (["eval", "x", "--batch-size", "-3"], "give a whole number of at least 1"),
        (["data", "digits", "--seed", "-1"], "give a whole number from 0 to"),
        (["data", "digits", "--val-fraction", "nan"], "val_fraction must be a fraction"),
    ],
)
def test_command_flags_are_checked_before_any_work(
    argv: list[str], says: str, mlflow_store: str, capsys: pytest.CaptureFixture
) -> None:
    client = MlflowClient(mlflow_store)
    live = client.create_run(client.create_experiment("live")).info.run_id  # a live run: nothing may touch it
    code = None
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    assert code == 2
    assert says in one_error_line(capsys.readouterr().err)
    assert client.get_run(live).info.status == "RUNNING"


def test_a_port_in_use_is_one_line_and_no_server(mlflow_store: str, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"port {port} on 127.0.0.1 cannot be used" in line
    assert "--port" in line
