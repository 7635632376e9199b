"""Every command that reads a store answers in one line, within 30 seconds, for a store it cannot use.

Stores that are corrupt, truncated, not SQLite, not MLflow's, in a folder that
does not exist (never created), on a server that accepts and never answers, or
on a closed port. A read-only store can be read (``zoo compare``), and a command
that writes to it says so. ``--weights runs:/ID`` reads the run from the
``--tracking-uri`` it is given. The default store is one folder (``./zoo-runs/``, or
``$ZOO_RUNS_DIR``), and a ``./mlflow.db`` already in use stays where it is.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments import ExperimentConfig, train
from experiments.cli import main
from experiments.sweeps.study import default_storage, open_storage
from experiments.tracking.store import RUNS_DIR_ENV, artifact_location, open_store, resolve_tracking_uri

from cli_errors import one_error_line

READERS = [
    ["compare"],
    ["runs", "--stale"],
    ["eval", "0123abcd"],
    ["predict", "--run", "0123abcd", "x.png"],
    ["register", "0123abcd", "--name", "m"],
    ["train", "--resume", "0123abcd"],
]
"""Every command that opens a store, with a run id where it needs one."""

TINY = {
    "model": "resnet_tiny_scratch",
    "data": "digits",
    "preset": "cifar",
    "augment": False,
    "limit_per_class": 8,
    "epochs": 1,
    "batch_size": 32,
    "workers": "0",
    "progress_bar": False,
    "log_model": False,
}


def cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, float]:
    started = time.monotonic()
    code = main(argv)
    return code, capsys.readouterr().err, time.monotonic() - started


def broken_stores(folder: Path, good: Path) -> dict[str, tuple[str, str]]:
    """Name -> (tracking URI, what the error says)."""
    (folder / "garbage.db").write_bytes(b"this is not a database" * 100)
    (folder / "truncated.db").write_bytes(good.read_bytes()[:40960])
    other = folder / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text)")
    return {
        "garbage": (f"sqlite:///{folder / 'garbage.db'}", "is not a SQLite database"),
        "truncated": (f"sqlite:///{folder / 'truncated.db'}", "cannot be read as a SQLite database"),
        "foreign": (f"sqlite:///{other}", "without MLflow's tables"),
        "no-folder": (f"sqlite:///{folder / 'no' / 'such' / 'mlflow.db'}", "does not exist"),
    }


@pytest.mark.parametrize("store", ["garbage", "truncated", "foreign", "no-folder"])
def test_a_store_that_cannot_be_used_is_one_line_for_every_command(
    store: str, mlflow_store: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    train(ExperimentConfig(**TINY))  # a store with a run in it: the truncated copy cuts through real tables
    capsys.readouterr()  # what the library printed while training (MLflow's INFO lines, unless a CLI quieted them)
    uri, says = broken_stores(tmp_path, Path(mlflow_store[len("sqlite:///") :]))[store]
    before = {p.name: p.stat().st_size for p in tmp_path.glob("*.db")}
    for argv in READERS:
        code, err, seconds = cli([*argv, "--tracking-uri", uri], capsys)
        assert code == 2, (argv, err)
        assert seconds < 30, (argv, err)
        assert says in one_error_line(err), argv
    assert {p.name: p.stat().st_size for p in tmp_path.glob("*.db")} == before  # nothing repaired or created
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("form", ["file-uri", "bare-path"])
def test_a_file_store_is_one_line_naming_the_way_out_before_any_run(
    form: str, mlflow_store: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # MLflow 3.17 refuses its filesystem backend with a traceback; the zoo says it in one line.
    folder = tmp_path / "mlruns"
    uri = folder.as_uri() if form == "file-uri" else str(folder)
    argv = ["train", "resnet_tiny_scratch", "--data", "digits", "--epochs", "1", "--tracking-uri", uri]
    code, err, _ = cli(argv, capsys)
    assert code == 2, err
    line = one_error_line(err)
    assert "is a file store" in line
    assert "sqlite:///" in line
    assert "MLFLOW_ALLOW_FILE_STORE=true" in line
    assert not folder.exists()  # nothing written there
    assert not MlflowClient(mlflow_store).search_runs(["0"])  # and no run started in the default store


@pytest.mark.parametrize("server", ["silent", "closed"])
def test_a_server_that_hangs_or_a_closed_port_is_one_line_for_every_command(
    server: str, silent_server: str, mlflow_store: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_TRACKING_TIMEOUT", "2")  # the default, 5 s, is tested in test_reliability.py
    if server == "closed":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            uri = f"http://127.0.0.1:{probe.getsockname()[1]}"
    else:
        uri = silent_server
    for argv in READERS:
        code, err, seconds = cli([*argv, "--tracking-uri", uri], capsys)
        assert code == 2, (argv, err)
        assert seconds < 30, (argv, err)
        line = one_error_line(err)
        assert f"tracking server {uri} cannot be reached" in line, argv


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """A folder this process may not write in: mode 555, and for root (who writes anything) immutable."""
    folder = tmp_path / "readonly"
    folder.mkdir()

    def seal() -> None:
        os.chmod(folder, 0o555)
        if os.geteuid() == 0:
            sealed = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
            if sealed.returncode != 0:
                pytest.skip(f"root writes any folder, and chattr +i is refused here: {sealed.stderr.strip()}")

    yield folder, seal
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    os.chmod(folder, 0o755)


def test_a_read_only_store_can_be_read_and_refuses_a_write_in_one_line(
    mlflow_store: str, read_only_folder, capsys: pytest.CaptureFixture
) -> None:
    result = train(ExperimentConfig(**TINY, run_name="kept"))
    folder, seal = read_only_folder
    shutil.copy(mlflow_store[len("sqlite:///") :], folder / "mlflow.db")
    seal()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    assert main(["compare", "--format", "csv", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert result.run_id in out
    assert "kept" in out
    assert main(["train", "resnet_tiny_scratch", "--data", "digits", "--tracking-uri", uri]) == 2
    assert "is read-only here" in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in folder.iterdir()) == ["mlflow.db"]  # no lock, no journal left behind


def test_weights_from_a_run_are_read_from_the_given_tracking_uri(
    mlflow_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    source = train(ExperimentConfig(**TINY))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # ./mlflow.db here is another store, empty
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    argv = [
        "train",
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
        "--workers",
        "0",
        "--no-progress-bar",
        "--no-log-model",
        "--weights",
        f"runs:/{source.run_id}",
        "--tracking-uri",
        mlflow_store,
    ]
    assert main(argv) == 0, capsys.readouterr().err[-2000:]
    client = MlflowClient(mlflow_store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert {r.data.params.get("weights") for r in runs} == {None, f"runs:/{source.run_id}"}  # unset: no param


KILLED_IN_A_WRITE = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size = 1")  # changed pages spill into the file before the commit
db.execute("BEGIN IMMEDIATE")
db.execute("CREATE TABLE half_written (x)")
db.executemany("INSERT INTO half_written VALUES (?)", ((os.urandom(512),) for _ in range(2000)))
os.kill(os.getpid(), signal.SIGKILL)  # in the middle of the transaction, as a kill -9 of a zoo command
"""


def test_a_store_whose_writer_was_killed_mid_write_is_recovered_not_refused(
    mlflow_store: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = Path(mlflow_store.removeprefix("sqlite:///"))
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_A_WRITE, str(path)], timeout=120)
    assert killed.returncode == -9
    assert Path(f"{path}-journal").stat().st_size > 0  # a hot journal: SQLite rolls it back on the next write access
    code, err, _ = cli(["runs", "--stale"], capsys)
    assert code == 0, err
    with sqlite3.connect(path) as db:  # the half-done transaction is gone, the store is whole
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "half_written" not in tables
        assert {"experiments", "runs"} <= tables
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- the default store: one folder for a new user, a store in use kept where it is --------------


def test_the_default_store_is_one_runs_folder_and_a_store_in_use_stays_where_it_is(
    mlflow_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "work"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(RUNS_DIR_ENV, raising=False)
    # An empty folder: the store, its artifacts and the study storage in ./zoo-runs/, made on first use.
    assert resolve_tracking_uri() == f"sqlite:///{here / 'zoo-runs' / 'mlflow.db'}"
    assert default_storage(None) == f"sqlite:///{here / 'zoo-runs' / 'optuna.db'}"
    assert artifact_location(resolve_tracking_uri(), "my runs/v2") == str(here / "zoo-runs" / "mlruns" / "my_runs_v2")
    assert list(here.iterdir()) == []  # resolving creates nothing
    assert open_store() == resolve_tracking_uri()
    assert sorted(p.name for p in here.iterdir()) == ["zoo-runs"]
    assert (here / "zoo-runs" / "mlflow.db").is_file()
    # The study storage opens before the MLflow store (zoo run --workers 2): it makes the folder too.
    shutil.rmtree(here / "zoo-runs")
    open_storage(default_storage(None), None)
    assert sorted(p.name for p in (here / "zoo-runs").iterdir()) == ["optuna.db"]
    # $ZOO_RUNS_DIR names the folder; --tracking-uri and $MLFLOW_TRACKING_URI name the store itself.
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "elsewhere" / "runs"))
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path / 'elsewhere' / 'runs' / 'mlflow.db'}"
    assert default_storage("http://127.0.0.1:9") == f"sqlite:///{tmp_path / 'elsewhere' / 'runs' / 'optuna.db'}"
    assert (tmp_path / "elsewhere" / "runs").is_dir()  # a server's study storage needs the folder now
    assert resolve_tracking_uri("sqlite:////given/mlflow.db") == "sqlite:////given/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert resolve_tracking_uri() == "http://127.0.0.1:9"
    assert artifact_location("http://127.0.0.1:9", "zoo") is None  # a server keeps its own artifact root
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    # A store already here (the zoo's default before the runs folder) is still the default, unless named.
    shutil.copy(mlflow_template, here / "mlflow.db")
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path / 'elsewhere' / 'runs' / 'mlflow.db'}"  # named
    monkeypatch.delenv(RUNS_DIR_ENV)
    assert resolve_tracking_uri() == f"sqlite:///{here / 'mlflow.db'}"
    assert default_storage(None) == f"sqlite:///{here / 'optuna.db'}"  # beside it, as before
    (here / "optuna.db").touch()  # a server's study storage already here stays here too
    assert default_storage("http://127.0.0.1:9") == f"sqlite:///{here / 'optuna.db'}"


def test_a_store_in_use_in_the_working_folder_keeps_its_runs_and_artifacts_there(
    mlflow_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the store is ./mlflow.db, found as the working folder's store
    result = train(ExperimentConfig(**TINY))
    assert result.tracking_uri == mlflow_store
    run = MlflowClient(mlflow_store).get_run(result.run_id)
    assert run.info.artifact_uri.startswith(str(tmp_path / "mlruns") + "/")
    assert not (tmp_path / "zoo-runs").exists()


def test_a_runs_folder_that_cannot_be_made_is_one_line_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "a-file" / "runs"))
    for argv in (["compare"], ["train", "resnet_tiny_scratch", "--data", "digits", "--epochs", "1"]):
        code, err, _ = cli(argv, capsys)
        assert code == 2, (argv, err)
        line = one_error_line(err)
        assert f"cannot make the runs folder {tmp_path / 'a-file' / 'runs'}" in line
        assert RUNS_DIR_ENV in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
