"""`zoo ui`: MLflow's UI for the same store, on 127.0.0.1 only, telemetry off, stopped whole by a signal."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from experiments.commands.ui import ui_command
from experiments.tracking.ui_app import index_page

from procs import ZOO, running, wait_for
from servers import free_port


def test_ui_binds_localhost_with_telemetry_off(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ZOO_RUNS_DIR", raising=False)
    argv, env = ui_command(5123)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "5123"
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{tmp_path / 'zoo-runs' / 'mlflow.db'}"  # the runs folder
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["DO_NOT_TRACK"] == "true"
    (tmp_path / "mlflow.db").touch()  # a store already in the working folder is the one the UI shows
    assert ui_command(5123)[1]["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert ui_command(5000, None)[1]["MLFLOW_BACKEND_STORE_URI"] == "http://127.0.0.1:9"


def test_ui_starts_one_server_process_and_no_job_runner_unless_the_user_asks(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MLFLOW_WORKERS", raising=False)
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    env = ui_command(5123, f"sqlite:///{tmp_path / 'mlflow.db'}")[1]
    assert env["MLFLOW_WORKERS"] == "1"  # `mlflow ui --workers` through MLflow's own variable
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    monkeypatch.setenv("MLFLOW_WORKERS", "4")
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    env = ui_command(5123, f"sqlite:///{tmp_path / 'mlflow.db'}")[1]
    assert (env["MLFLOW_WORKERS"], env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]) == ("4", "true")


def test_the_ui_page_opens_on_model_training_with_the_assistant_closed(tmp_path) -> None:
    (tmp_path / "index.html").write_text("<html><head><title>MLflow</title></head><body></body></html>")
    html = index_page(str(tmp_path))
    assert html.startswith("<html><head><script>")
    script = html[len("<html><head><script>") : html.index("</script>")]
    start = script.index("Object.entries(") + len("Object.entries(")
    defaults = json.loads(script[start : script.index(")) if", start)])
    assert defaults == {
        "mlflow.workflowType_v1": '"machine_learning"',
        "mlflow.assistant.panelOpen_v1": "false",
        "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    }
    assert "getItem(key) === null" in script  # a browser's own choice stays


def test_the_store_uri_reaches_the_ui_server_through_its_environment_not_argv(monkeypatch, tmp_path) -> None:
    secret = "postgresql+psycopg2://zoo:CANARY-ui-8d1f@db.example/mlflow"
    argv, env = ui_command(5123, secret)
    assert "--backend-store-uri" not in argv
    assert not [a for a in argv if "CANARY" in a]  # ps shows argv to every user of the machine
    assert env["MLFLOW_BACKEND_STORE_URI"] == secret


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_to_zoo_ui_stops_mlflows_server_and_all_its_workers(
    signum: int, mlflow_store: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "ui.log"
    with running([*ZOO, "ui", "--port", str(port)], log) as ui:
        wait_for(lambda: healthy(port), ui, log, timeout=180)
        server = list(processes_under(ui.pid))
        assert server, "zoo ui started no server process"
        commands = [cmdline(pid) for pid in server]
        assert not [c for c in commands if "huey" in c or "jobs" in c], commands  # no job runner, no consumers
        assert len(server) <= 3, commands  # `mlflow ui`, one uvicorn server, at most one helper of Python's
        store = mlflow_store[len("sqlite:///") :]  # a store URI may hold a password: never on a command line
        assert not [pid for pid in server if store in cmdline(pid)], [cmdline(pid) for pid in server]
        os.kill(ui.pid, signum)  # to zoo ui only, as a terminal or a job scheduler sends it
        assert ui.wait(timeout=60) == 0, log.read_text()[-2000:]  # stopping the UI is its normal end
    assert not healthy(port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [p for p in server if alive(p)]:
        time.sleep(0.2)
    assert not [p for p in server if alive(p)], "MLflow's server outlived zoo ui"


@pytest.mark.slow
def test_under_nohup_a_closed_terminal_leaves_zoo_ui_running(mlflow_store: str, tmp_path: Path) -> None:
    nohup = shutil.which("nohup")
    if nohup is None:
        pytest.skip("no nohup on this machine")
    port = free_port()
    log = tmp_path / "ui.log"
    with running([nohup, *ZOO, "ui", "--port", str(port)], log) as ui:  # nohup execs zoo: the same pid
        wait_for(lambda: healthy(port), ui, log, timeout=180)
        os.kill(ui.pid, signal.SIGHUP)  # the terminal closed
        time.sleep(2)
        assert ui.poll() is None, log.read_text()[-2000:]
        assert healthy(port), log.read_text()[-2000:]
        os.kill(ui.pid, signal.SIGTERM)  # kill still stops it, whole
        assert ui.wait(timeout=60) == 0, log.read_text()[-2000:]
    assert not healthy(port)


def healthy(port: int) -> bool:
    """Whether MLflow's server on ``port`` answers its health check."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def processes_under(pid: int) -> list[int]:
    """Every descendant of a process (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    """A process's command line as ``ps`` shows it to every user ("" once it has ended)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
