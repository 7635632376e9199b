"""No credential leaves the process: passwords masked wherever the zoo writes or prints a URI, secrets never in argv.

A canary password travels in the tracking URI of a real run against a real ``mlflow
server`` (``http://zoo:CANARY@127.0.0.1:PORT``: a server without authentication
ignores it, and MLflow's client sends it as HTTP basic auth); afterwards no byte of
the store, its artifacts (``config.yaml``, the checkpoints' hyper-parameters) or
the command's output holds it, through train, resume, eval, register, predict and a
failed run. Sweep workers and ``zoo ui``'s server get their URIs
through the environment: their ``/proc/PID/cmdline`` holds none (the real ``zoo ui``
is checked in test_cli_ui.py). A PostgreSQL store
or study storage that cannot be reached is one line, password masked, in seconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

from experiments import ExperimentConfig
from experiments.cli import main
from experiments.commands.ui import ui_command
from experiments.config.secrets import has_password, mask_text, mask_uri
from experiments.sweeps import workers
from experiments.tracking import readback
from experiments.tracking.names import CONFIG_ARTIFACT, FAILURE_TAG, LAST_STATE_ARTIFACT, TRACEBACK_ARTIFACT
from experiments.tracking.runs import TrackedRun
from experiments.tracking.store import auth_header
from experiments.training import runner

pytest.register_assert_rewrite("servers")  # before pytest_plugins below loads it as a plugin

pytest_plugins = ["servers"]  # mlflow_server_sqlite

CANARY = "CANARY-7f3e9b1d"

TINY = [
    "resnet_tiny_scratch",
    "--data",
    "digits",
    "--preset",
    "cifar",
    "--no-augment",
    "--limit-per-class",
    "8",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--workers",
    "0",
    "--no-progress-bar",
    "--no-log-model",
]


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        ("postgresql://zoo:SECRET@db/mlflow", "postgresql://zoo:***@db/mlflow"),
        ("postgresql+psycopg2://zoo:p@ss:w0rd@db:5432/x", "postgresql+psycopg2://zoo:***@db:5432/x"),
        ("http://user:pw@127.0.0.1:5000", "http://user:***@127.0.0.1:5000"),
        ("mysql+pymysql://:pw@h/d", "mysql+pymysql://:***@h/d"),
        ("postgresql://zoo@db/x?password=SECRET&sslmode=require", "postgresql://zoo@db/x?password=***&sslmode=require"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("postgresql://zoo@db/mlflow", "postgresql://zoo@db/mlflow"),
        ("sqlite:////tmp/a:b@c/mlflow.db", "sqlite:////tmp/a:b@c/mlflow.db"),  # a path, no user part
    ],
)
def test_a_uris_password_is_masked_and_nothing_else_changes(uri: str, masked: str) -> None:
    assert mask_uri(uri) == masked
    assert has_password(uri) == (uri != masked)


def test_passwords_in_a_text_and_from_the_environment_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "cannot reach postgresql://a:S1@h/x, nor http://b:S2@e:1/ (user b)\nline 2"
    assert mask_text(text) == "cannot reach postgresql://a:***@h/x, nor http://b:***@e:1/ (user b)\nline 2"
    monkeypatch.setenv("PGPASSWORD", CANARY)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")  # too short to mask by value: it would hit ordinary words
    assert mask_text(f"FATAL: password {CANARY} refused; tok") == "FATAL: password *** refused; tok"
    assert mask_uri(None) is None


def test_a_config_is_written_down_with_its_passwords_masked() -> None:
    config = ExperimentConfig(model="resnet_tiny_scratch", tracking_uri=f"postgresql://zoo:{CANARY}@db/mlflow")
    assert CANARY not in config.to_yaml()
    assert config.to_record()["tracking_uri"] == "postgresql://zoo:***@db/mlflow"
    assert config.tracking_uri == f"postgresql://zoo:{CANARY}@db/mlflow"  # the process itself uses it as given


def files_holding(folder: Path, secret: bytes) -> list[str]:
    """Every file under ``folder`` whose bytes hold ``secret``."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret in p.read_bytes()]


@pytest.mark.slow
def test_no_trace_of_the_password_in_the_store_its_artifacts_checkpoints_or_output(
    mlflow_server_sqlite: str, zoo_cache_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = mlflow_server_sqlite.replace("http://", f"http://zoo:{CANARY}@")  # basic auth the server ignores
    code = main(["train", *TINY, "--tracking-uri", uri, "--keep-last-state", "--keep-local-checkpoints"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert CANARY not in out + err
    assert "http://zoo:***@127.0.0.1" in out  # the line after the run names the store, masked

    client = MlflowClient(mlflow_server_sqlite)
    run = client.search_runs([client.get_experiment_by_name("zoo").experiment_id])[0]
    config = client.download_artifacts(run.info.run_id, CONFIG_ARTIFACT, str(tmp_path / "down"))
    assert f"http://zoo:***@127.0.0.1:{mlflow_server_sqlite.rsplit(':', 1)[1]}" in Path(config).read_text()
    state = client.download_artifacts(run.info.run_id, LAST_STATE_ARTIFACT, str(tmp_path / "down"))
    hparams = torch.load(state, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["config"]["tracking_uri"].startswith("http://zoo:***@")

    # The other command paths, with the store from the environment: resume, eval, register, predict.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client.set_terminated(run.info.run_id, "FAILED")  # as if its process had died: resume takes it up
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    for argv in (
        ["train", "--resume", run.info.run_id],
        ["eval", run.info.run_id],
        ["register", run.info.run_id, "--name", "canary"],
        ["predict", "--run", run.info.run_id, str(image)],
    ):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, (argv, err)
        assert CANARY not in out + err, argv
    assert client.get_run(run.info.run_id).info.status == "FINISHED"  # the resume finished it

    # A failure whose text holds the URI: its tag and traceback hold it masked.
    failing = TrackedRun.create("zoo", "fails", {}, uri)
    with pytest.raises(RuntimeError), failing.lifecycle():
        raise RuntimeError(f"the store {uri} went away")
    failed = client.get_run(failing.run_id)
    assert failed.info.status == "FAILED"
    assert "http://zoo:***@" in failed.data.tags[FAILURE_TAG]
    trace = client.download_artifacts(failing.run_id, TRACEBACK_ARTIFACT, str(tmp_path / "down"))
    assert "http://zoo:***@" in Path(trace).read_text()

    assert files_holding(tmp_path / "mlflow", CANARY.encode()) == []  # the store's database and every artifact
    assert files_holding(tmp_path / "checkpoints", CANARY.encode()) == []  # the local checkpoints


def test_a_resumed_run_takes_its_store_as_given_never_the_resolved_uri(monkeypatch, tmp_path: Path) -> None:
    seen = {}

    def read_config(run_id, uri, **changes):
        seen.update(changes)
        raise RuntimeError("stop here")

    monkeypatch.setattr(runner, "require_writable", lambda uri: "resolved-store")
    monkeypatch.setattr(
        readback, "get_run", lambda run_id, uri: argparse.Namespace(info=argparse.Namespace(status="FAILED"))
    )
    monkeypatch.setattr(readback, "run_config", read_config)
    with pytest.raises(RuntimeError, match="stop here"):
        runner.resume("0123abcd", None)
    assert seen["tracking_uri"] is None  # $MLFLOW_TRACKING_URI is read again, not written into the config


# -- secrets never on a command line ------------------------------------------------


def cmdline(pid: int) -> str:
    """A process's command line as ``ps`` shows it to every user."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_sweep_workers_get_their_store_and_storage_through_the_environment(tmp_path: Path) -> None:
    storage = f"postgresql+psycopg2://zoo:{CANARY}@127.0.0.1:1/optuna"
    tracking = f"http://zoo:{CANARY}@127.0.0.1:1"
    argv = ["run", "search.yaml", "--storage", storage, f"--tracking-uri={tracking}", "--workers", "2"]
    args = argparse.Namespace(storage=storage, tracking_uri=tracking, worker_index=None)
    secrets = workers.secret_options(args)
    command = workers.worker_command(argv, 1, secrets)
    assert command[-4:] == ["search.yaml", "--workers", "2", "--worker-index", "1"][-4:]
    assert "--storage" not in command
    assert not [a for a in command if CANARY in a]

    # A real child started the way workers are: its /proc/PID/cmdline holds no secret, its environment has them.
    probe = "import json, os, sys, time; sys.stdout.write(os.environ['ZOO_WORKER_OPTIONS']); sys.stdout.flush()"
    env = {**os.environ, workers.OPTIONS_ENV: json.dumps(secrets)}
    child = subprocess.Popen([sys.executable, "-c", probe + "; time.sleep(5)"], env=env, stdout=subprocess.PIPE)
    try:
        handed = json.loads(child.stdout.readline() or "{}") if child.stdout else {}
        assert CANARY not in cmdline(child.pid)
    finally:
        child.kill()
        child.wait()
    worker = argparse.Namespace(worker_index=1)
    os.environ[workers.OPTIONS_ENV] = json.dumps(handed)
    workers.restore_secret_options(worker)
    assert (worker.storage, worker.tracking_uri) == (storage, tracking)
    assert workers.OPTIONS_ENV not in os.environ  # read once, then gone from the worker's environment


def test_the_ui_servers_command_line_holds_no_store_uri() -> None:
    argv, env = ui_command(5123, f"postgresql+psycopg2://zoo:{CANARY}@db/mlflow")
    assert not [a for a in argv if CANARY in a]
    assert CANARY in env["MLFLOW_BACKEND_STORE_URI"]


# -- stores that cannot be reached: one line, password masked, in seconds --------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("zoo: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    "scheme", ["postgresql+psycopg2", "http"], ids=["postgresql-store", "http-server-with-user-and-password"]
)
def test_an_unreachable_store_with_a_password_is_one_line_with_the_password_masked(
    scheme: str, mlflow_store: str, capsys: pytest.CaptureFixture
) -> None:
    port = closed_port()
    uri = f"{scheme}://zoo:{CANARY}@127.0.0.1:{port}/mlflow"
    started = time.monotonic()
    code = main(["train", *TINY, "--tracking-uri", uri])
    seconds = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 2, err
    assert seconds < 30
    line = one_error_line(err)
    assert f"zoo:***@127.0.0.1:{port}" in line
    assert "cannot be reached" in line
    assert CANARY not in out + err


def test_an_unreachable_study_storage_is_one_line_with_the_password_masked(
    mlflow_store: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    file = tmp_path / "seeds.yaml"
    file.write_text("defaults: {model: resnet_tiny_scratch, data: digits, epochs: 1}\nseeds: [0, 1]\n")
    storage = f"postgresql+psycopg2://zoo:{CANARY}@127.0.0.1:{closed_port()}/optuna"
    started = time.monotonic()
    code = main(["run", str(file), "--storage", storage])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert time.monotonic() - started < 30
    line = one_error_line(err)
    assert "study storage postgresql+psycopg2://zoo:***@127.0.0.1" in line
    assert CANARY not in out + err


def test_the_store_check_sends_basic_auth_from_the_url_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    base, header = auth_header("http://alice:p%40ss@127.0.0.1:5000/")
    assert base == "http://127.0.0.1:5000"  # no user part left in the URL that is requested
    assert header == {"Authorization": "Basic " + base64.b64encode(b"alice:p@ss").decode()}
    assert auth_header("https://mlflow.internal/prefix") == ("https://mlflow.internal/prefix", {})
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    assert auth_header("http://[::1]:5000")[1] == {"Authorization": "Basic " + base64.b64encode(b"bob:pw").decode()}
    assert auth_header("http://[::1]:5000")[0] == "http://[::1]:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
    assert auth_header("http://h:1")[1] == {"Authorization": "Bearer tok"}


def test_a_traceback_that_escapes_the_zoo_command_has_its_passwords_masked(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from experiments import cli\n"
        "cli.build_parser = lambda: (_ for _ in ()).throw(RuntimeError('cannot reach ' + sys.argv[1]))\n"
        "sys.exit(cli.main([]))\n"
    )
    uri = f"postgresql://zoo:{CANARY}@db.example/mlflow"
    done = subprocess.run([sys.executable, "-c", script, uri], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "RuntimeError: cannot reach postgresql://zoo:***@db.example/mlflow" in done.stderr
    assert CANARY not in done.stderr
