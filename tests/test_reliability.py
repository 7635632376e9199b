"""Reliability (#6), in one process: atomic writes, unreachable servers, untrusted files, bad config, heartbeats.

The faults that need a second process (SIGKILL, SIGTERM, concurrent starts,
DDP) are in ``test_reliability_processes.py``. docs/reliability.md lists each
fault, the expected outcome and its test.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import socket
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from experiments.cli import main
from experiments.config.flags import add_config_flags
from experiments.config.schema import field_names
from experiments.tracking import heartbeat
from experiments.tracking.checkpoints import load_checkpoint
from experiments.tracking.store import check_tracking_server
from experiments.training import atomic
from registry.errors import WeightsError

from cli_errors import one_error_line

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


# -- 7. atomic writes -----------------------------------------------------------------


class Killed(BaseException):
    """Stands in for a kill in the middle of a write."""


def test_a_write_killed_midway_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "best.safetensors"
    atomic.save_safetensors({"w": torch.ones(3)}, target)
    before = target.read_bytes()

    def half_then_die(path: Path) -> None:
        path.write_bytes(before[: len(before) // 2])
        raise Killed

    with pytest.raises(Killed):
        atomic.write_atomically(target, half_then_die)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]  # no temporary left behind


def test_best_weights_are_saved_through_the_atomic_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # RunRecorder's best weights: safetensors' own writer dies midway, the previous best survives.
    target = tmp_path / "best.safetensors"
    atomic.save_safetensors({"w": torch.zeros(4)}, target)

    def dying_save_file(state: dict, filename: str) -> None:
        Path(filename).write_bytes(b"\x00" * 10)
        raise Killed

    monkeypatch.setattr(atomic, "save_file", dying_save_file)  # the writer atomic.py calls
    with pytest.raises(Killed):
        atomic.save_safetensors({"w": torch.ones(4)}, target)
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(target))["w"], torch.zeros(4))
    source = Path(__import__("experiments.training.callbacks", fromlist=["x"]).__file__).read_text()
    assert "save_safetensors(state, self.best_weights_path)" in source


def test_lightning_checkpoint_killed_midway_leaves_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning writes checkpoints through an fsspec transaction (a temporary file, moved on commit).
    from fsspec.implementations.local import LocalFileOpener
    from lightning.fabric.utilities.cloud_io import _atomic_save

    target = tmp_path / "last.ckpt"
    _atomic_save({"state_dict": {"w": torch.zeros(1000)}}, target)
    before = target.read_bytes()
    real_write = LocalFileOpener.write

    def half_then_die(self, data):
        real_write(self, bytes(data)[: len(data) // 2])
        raise Killed

    monkeypatch.setattr(LocalFileOpener, "write", half_then_die)
    with pytest.raises(Killed):
        _atomic_save({"state_dict": {"w": torch.ones(1000)}}, target)
    assert target.read_bytes() == before


def test_a_cache_build_killed_midway_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.data import cache

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))

    def half_then_die(folder: Path) -> None:
        (folder / "images.npy").write_bytes(b"partial")
        raise Killed

    with pytest.raises(Killed):
        cache.load_or_build("k" * 16, half_then_die)
    assert not (tmp_path / "data" / ("k" * 16)).exists()
    assert [p.name for p in (tmp_path / "data").iterdir() if ".tmp-" in p.name] == []


# -- 5. unreachable tracking server ----------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_closed_port_is_one_line_before_training(
    mlflow_store: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiments.training import runner

    monkeypatch.setattr(runner, "build_datamodule", lambda config: pytest.fail("data read before the check"))
    started = time.monotonic()
    uri = f"http://127.0.0.1:{closed_port()}"
    assert main(["train", "resnet_tiny_scratch", *FLAGS, "--tracking-uri", uri]) == 2
    assert time.monotonic() - started < 30
    line = one_error_line(capsys.readouterr().err)
    assert f"tracking server {uri} cannot be reached" in line
    assert "--tracking-uri" in line


def test_server_that_never_answers_is_one_line_within_30_s(
    silent_server: str, mlflow_store: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiments.training import runner

    monkeypatch.setenv("ZOO_TRACKING_TIMEOUT", "2")
    monkeypatch.setattr(runner, "build_datamodule", lambda config: pytest.fail("data read before the check"))
    for argv in (
        ["train", "resnet_tiny_scratch", *FLAGS, "--tracking-uri", silent_server],
        ["train", "--resume", "0123456789abcdef", "--tracking-uri", silent_server],
    ):
        started = time.monotonic()
        assert main(argv) == 2
        assert time.monotonic() - started < 30
        assert "no answer within 2 s" in one_error_line(capsys.readouterr().err)


def test_the_default_timeout_is_well_under_30_s(silent_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(Exception, match="no answer within 5 s"):
        check_tracking_server(silent_server)
    assert time.monotonic() - started < 15


# -- 6. untrusted files ------------------------------------------------------------------


class Payload:
    """Pickles into a call of `os.system` that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def payload_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": {"x": Payload(marker)}}, path)
    return path


def test_payload_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    ckpt = payload_checkpoint(tmp_path / "evil.ckpt", marker)
    with pytest.raises(WeightsError, match="refusing checkpoint"):
        load_checkpoint(ckpt)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # the guard is needed: a plain load would run it
        torch.load(ckpt, weights_only=True)
    # The payload is live, read without running it: the pickle calls os.system on the marker.
    with zipfile.ZipFile(ckpt) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    strings = [arg for op, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    assert f"{os.system.__module__} system" in strings
    assert f"touch {marker}" in strings
    assert not marker.exists()


def test_resume_refuses_a_payload_last_state(mlflow_store: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from experiments import ExperimentConfig

    client = MlflowClient(mlflow_store)
    run_id = client.create_run(client.create_experiment("evil")).info.run_id
    config = ExperimentConfig(model="resnet_tiny_scratch", data="digits", limit_per_class=8, workers="0")
    client.log_text(run_id, config.to_yaml(), "config.yaml")
    marker = tmp_path / "pwned"
    folder = tmp_path / "upload"
    folder.mkdir()
    client.log_artifact(run_id, str(payload_checkpoint(folder / "last.ckpt", marker)), "checkpoints")
    client.set_terminated(run_id, "KILLED")  # a run that was stopped; a RUNNING one with a live owner is refused first
    assert main(["train", "--resume", run_id]) == 2
    assert "would call posix.system" in one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_predict_and_weights_refuse_payloads(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import registry

    marker = tmp_path / "pwned"
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    assert main(["predict", "--checkpoint", str(payload_checkpoint(tmp_path / "e.ckpt", marker)), str(image)]) == 2
    one_error_line(capsys.readouterr().err)
    torch.save({"w": Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError):
        registry.create_model("resnet_tiny_scratch", weights=str(tmp_path / "evil.pth"))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("model: resnet_tiny_scratch\nbatch_sise: 8\n", "batch_sise"),
        ("model: resnet_tiny_scratch\nbatch_size: many\n", "batch_size"),
        ("model: resnet_tiny_scratch\nepochs: [1, 2]\n", "epochs"),
        ("model: resnet_tiny_scratch\nlr: {a: 1}\n", "lr"),
        ("model: resnet_tiny_scratch\nearly_stopping: perhaps\n", "early_stopping"),
    ],
)
def test_config_file_with_unknown_key_or_wrong_type_names_the_field(
    text: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["train", "--config", str(path)]) == 2
    assert named in one_error_line(capsys.readouterr().err)


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list:
    """Replace the runner: a config that passes every check is recorded, not trained."""
    from experiments.training import runner

    started: list = []

    def fake_train(config, **kwargs):
        started.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(runner, "train", fake_train)
    return started


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors, and the fake runner's clean exit
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


yaml_documents = st.one_of(
    st.text(max_size=200),
    st.dictionaries(
        st.one_of(st.sampled_from(field_names()), st.text(max_size=12)),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=True),
            st.text(max_size=20),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
        ),
        max_size=6,
    ).map(lambda d: yaml.safe_dump(d)),
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_documents)
def test_malformed_yaml_is_one_clean_line(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture, no_training: list
) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    before = len(no_training)
    code, err = run_cli(["train", "--config", str(path)], capsys)
    if len(no_training) > before:  # a valid config: it reached the runner, nothing to report
        assert code == 0
        return
    assert code == 2
    one_error_line(err)


def _flags() -> list[str]:
    import argparse

    parser = argparse.ArgumentParser()
    add_config_flags(parser, skip=("model",))
    return sorted({s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"})


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flag=st.sampled_from(_flags()),
    value=st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            ["-1", "0", "1e9", "nan", "inf", "-inf", "", "a=b", "=", "1,2", "[1", "{", "\n", "\x00", "auto"]
        ),
    ),
)
def test_malformed_cli_values_are_one_clean_line(
    flag: str, value: str, capsys: pytest.CaptureFixture, no_training: list
) -> None:
    if "\x00" in value:
        value = value.replace("\x00", "")  # an argv cannot hold NUL
    before = len(no_training)
    code, err = run_cli(["train", "resnet_tiny_scratch", "--data", "digits", f"{flag}={value}"], capsys)
    if len(no_training) > before:
        assert code == 0
        return
    assert code == 2, err
    one_error_line(err)


# -- 2. heartbeat and stale runs -----------------------------------------------------------


def test_a_live_run_beats(mlflow_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.tracking.runs import TrackedRun

    monkeypatch.setenv("ZOO_HEARTBEAT_S", "0.2")
    run = TrackedRun.create("beats", "r", {}, mlflow_store)
    seen = set()
    with run.lifecycle():
        for _ in range(10):
            seen.add(run.client.get_run(run.run_id).data.tags.get(heartbeat.HEARTBEAT_TAG))
            time.sleep(0.15)
    assert len(seen - {None}) >= 3  # written at the start and refreshed while alive
    assert run.client.get_run(run.run_id).info.status == "FINISHED"


def test_runs_stale_lists_and_marks_only_silent_runs(mlflow_store: str, capsys: pytest.CaptureFixture) -> None:
    client = MlflowClient(mlflow_store)
    experiment = client.create_experiment("stale")
    dead = client.create_run(experiment, run_name="dead").info.run_id
    client.set_tag(dead, heartbeat.HEARTBEAT_TAG, f"{time.time() - 600:.3f}")
    alive = client.create_run(experiment, run_name="alive").info.run_id
    client.set_tag(alive, heartbeat.HEARTBEAT_TAG, f"{time.time():.3f}")
    done = client.create_run(experiment, run_name="done").info.run_id
    client.set_tag(done, heartbeat.HEARTBEAT_TAG, f"{time.time() - 600:.3f}")
    client.set_terminated(done, "FINISHED")

    assert main(["runs", "--stale", "--older-than", "120", "--format", "json"]) == 0
    import json

    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed] == [dead]
    assert listed[0]["silent_s"] >= 599
    assert main(["runs", "--mark-stale", "--older-than", "120"]) == 0
    assert dead in capsys.readouterr().out
    assert client.get_run(dead).info.status == "KILLED"
    assert "no heartbeat" in client.get_run(dead).data.tags["zoo.killed_reason"]
    assert client.get_run(alive).info.status == "RUNNING"
    assert client.get_run(done).info.status == "FINISHED"
    assert main(["runs", "--stale"]) == 0
    assert "no stale RUNNING run" in capsys.readouterr().out
