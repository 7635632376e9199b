"""No credential leaves the process: passwords masked wherever the zoo writes or prints a URI, secrets never in argv.

The canary test: a PostgreSQL 15 whose role needs a canary password (scram-sha-256)
holds the store behind a real ``mlflow server`` and a sweep's study; the zoo's tracking
URI carries the password as HTTP basic auth (``http://zoo:CANARY@127.0.0.1:PORT``, which
the server ignores). Through train, resume, a failed run, eval, register, predict, a
sweep on two workers and ``zoo ui`` (its store the database, the password in its
environment), no byte of ``pg_dump``, of any artifact, checkpoint or log, of the
commands' output, or of any process's ``/proc/PID/cmdline`` (read every 0.1 s while
they run) holds it. A wrong PostgreSQL password is one line for store and study
storage; ``PGPASSWORD`` alone lands a run. A PostgreSQL store or study storage that
cannot be reached is one line, password masked, in seconds.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import optuna
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

from cli_errors import one_error_line
from procs import ZOO, running, wait_for

pytest.register_assert_rewrite("servers")  # before pytest_plugins below loads it as a plugin

pytest_plugins = ["servers"]  # postgres_server, mlflow_server

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


class CommandLines:
    """Every process's ``/proc/PID/cmdline``, read every 0.1 s on a thread while the ``with`` block runs.

    ``hits`` holds the command lines with the secret in them (what ``ps`` would show any
    user), ``seen`` every command line read, to show the processes were there to be read.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.hits: dict[int, str] = {}
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def scan(self) -> None:
        """Read every process's command line once."""
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(entry.path, "cmdline").read_bytes()
            except OSError:  # gone in between
                continue
            text = raw.replace(b"\0", b" ").decode(errors="replace")
            self.seen.add(text)
            if self.secret in raw:
                self.hits[int(entry.name)] = text

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            self.scan()

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_the_command_line_watch_sees_a_secret_on_a_short_lived_command_line() -> None:
    secret = f"WATCH-{os.urandom(4).hex()}"
    with CommandLines(secret) as ps:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)", f"--storage=x:{secret}@h"])
        child.wait(timeout=60)
    assert list(ps.hits) == [child.pid]
    assert secret in ps.hits[child.pid]


@pytest.fixture
def scram_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A PostgreSQL 15 whose ``postgres`` role needs a canary password over TCP; databases zoo, optuna, direct."""
    from servers import ServerUnavailable, find_postgres_bin, postgres_server  # deferred: pytest_plugins loads it

    try:
        find_postgres_bin()
        import psycopg2  # noqa: F401  # deferred: only to skip where the driver is missing
    except (ServerUnavailable, ImportError) as missing:
        pytest.skip(f"needs PostgreSQL's binaries and psycopg2: {missing}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    for name in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))  # not the user's own ~/.pgpass
    password = f"{CANARY}-{os.urandom(4).hex()}"  # unique: a test run elsewhere on the machine holds another
    with postgres_server(tmp_path / "postgres", password=password, databases=["optuna", "direct"]) as pg:
        yield pg


def database_dump(pg, database: str) -> bytes:
    """``pg_dump`` of one database of ``pg``: every row of every table, as SQL."""
    from servers import find_postgres_bin  # deferred: pytest_plugins loads it

    address = pg.dsn.split("@", 1)[1]  # 127.0.0.1:PORT/zoo
    host, port = address.split("/", 1)[0].split(":")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    done = subprocess.run(
        [find_postgres_bin() / "pg_dump", "-h", host, "-p", port, "-U", "postgres", "-w", database],
        env={**env, "PGPASSWORD": pg.password},
        capture_output=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def healthy(port: int) -> bool:
    """Whether MLflow's server on ``port`` answers its health check."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_no_trace_of_the_password_in_the_database_artifacts_checkpoints_output_or_command_lines(
    scram_postgres, zoo_cache_dir: Path, tmp_path: Path, monkeypatch, capfd
) -> None:
    """A canary password through train, resume, a failed run, eval, register, predict, a two-worker sweep and ui.

    PostgreSQL 15 needs the password (scram-sha-256) for the store behind a real ``mlflow
    server`` (which gets it as ``PGPASSWORD``), for the sweep's study storage and for ``zoo
    ui``'s store; the zoo's tracking URI carries it as HTTP basic auth (the server ignores it).
    """
    from servers import mlflow_server  # deferred: pytest_plugins loads it

    pg = scram_postgres
    canary = pg.password
    secret = canary.encode()
    database = pg.url.rsplit("/", 1)[0]  # postgresql+psycopg2://postgres@127.0.0.1:PORT
    with_password = database.replace("postgres@", f"postgres:{canary}@")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
    with mlflow_server(pg.url, tmp_path / "mlflow", env={"PGPASSWORD": canary}) as server, CommandLines(canary) as ps:
        uri = server.url.replace("http://", f"http://zoo:{canary}@")
        code = main(["train", *TINY, "--tracking-uri", uri, "--keep-last-state", "--keep-local-checkpoints"])
        out, err = capfd.readouterr()
        assert code == 0, err
        assert canary not in out + err
        assert "http://zoo:***@127.0.0.1" in out  # the line after the run names the store, masked

        client = MlflowClient(server.url)
        run = client.search_runs([client.get_experiment_by_name("zoo").experiment_id])[0]
        config = client.download_artifacts(run.info.run_id, CONFIG_ARTIFACT, str(tmp_path / "down"))
        assert f"http://zoo:***@127.0.0.1:{server.url.rsplit(':', 1)[1]}" in Path(config).read_text()
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
            out, err = capfd.readouterr()
            assert code == 0, (argv, err)
            assert canary not in out + err, argv
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

        # A sweep on two workers: the study in PostgreSQL, both URIs with the password in them.
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
        search = tmp_path / "search.yaml"
        search.write_text(
            "trials: 2\npruner: none\n"
            "defaults: {model: resnet_tiny_scratch, data: digits, preset: cifar, augment: false,\n"
            "  limit_per_class: 8, epochs: 1, batch_size: 32, workers: '0', progress_bar: false, log_model: false}\n"
            "search: {lr: {loguniform: [1.0e-4, 1.0e-1]}}\n"
        )
        storage = f"{with_password}/optuna"
        sweep = ["run", str(search), "--workers", "2", "--sweep", "canary", "--storage", storage]
        with mock.patch.dict(os.environ), torch_threads_kept():  # worker 0 is this process: it sets its threads
            code = main([*sweep, "--tracking-uri", uri])
        out, err = capfd.readouterr()  # worker 1's output too: it writes to the same descriptors
        assert code == 0, err[-3000:]
        assert canary not in out + err
        study = optuna.load_study(study_name="canary", storage=storage)
        assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2
        assert [line for line in ps.seen if "--worker-index 1" in line], "worker 1 was never seen running"

        # zoo ui on the PostgreSQL store, the URI with its password in zoo ui's environment.
        port = closed_port()
        log = tmp_path / "ui.log"
        ui_env = {"MLFLOW_TRACKING_URI": f"{with_password}/zoo", "NO_PROXY": "127.0.0.1,localhost"}
        with running([*ZOO, "ui", "--port", str(port)], log, **ui_env) as ui:
            wait_for(lambda: healthy(port), ui, log, timeout=180)
            ps.scan()  # once more, now that its server answers
            os.kill(ui.pid, signal.SIGTERM)
            assert ui.wait(timeout=60) == 0, log.read_text()[-2000:]
        assert [line for line in ps.seen if "mlflow" in line and str(port) in line], "zoo ui's server never seen"
        assert secret not in log.read_bytes()

    assert ps.hits == {}  # no process's command line held it, at any moment the watch looked
    dumps = {name: database_dump(pg, name) for name in ("zoo", "optuna")}
    assert run.info.run_id.encode() in dumps["zoo"]  # the dumps hold what the commands wrote:
    assert b"canary" in dumps["zoo"]  # the registered model
    assert b"canary" in dumps["optuna"]  # the study
    assert [name for name, dump in dumps.items() if secret in dump] == []
    assert files_holding(tmp_path, secret) == []  # every artifact, checkpoint, download and log


@contextlib.contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Give back this process's torch thread count after a sweep's worker 0 set its own."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_wrong_postgresql_password_is_one_line_for_the_store_and_the_study_storage_and_pgpassword_works(
    scram_postgres, zoo_cache_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    pg = scram_postgres
    canary = pg.password
    host = pg.url.split("@", 1)[1].rsplit("/", 1)[0]  # 127.0.0.1:PORT
    wrong = f"postgresql+psycopg2://postgres:WRONG-{canary}@{host}"
    file = tmp_path / "seeds.yaml"
    file.write_text("defaults: {model: resnet_tiny_scratch, data: digits, epochs: 1}\nseeds: [0, 1]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
    for argv, what in (
        (["train", *TINY, "--tracking-uri", f"{wrong}/direct"], "tracking store"),
        (["run", str(file), "--storage", f"{wrong}/optuna"], "study storage"),
    ):
        started = time.monotonic()
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 2, err
        assert time.monotonic() - started < 30
        line = one_error_line(err, prefix="zoo: error: ")
        assert f"{what} postgresql+psycopg2://postgres:***@{host}/" in line
        assert "password" in line  # the refusal, and the fix (PGPASSWORD, ~/.pgpass, PGSERVICE)
        assert canary not in out + err
    assert not (tmp_path / "mlruns").exists()  # no run was created (its artifacts would be here
    assert not (tmp_path / "zoo-runs" / "mlruns").exists()  # or, with the default store, in the runs folder)

    # The password from PGPASSWORD, none in the URI: the run lands in the database.
    monkeypatch.setenv("PGPASSWORD", canary)
    store = pg.url.rsplit("/", 1)[0] + "/direct"
    assert main(["train", *TINY, "--tracking-uri", store]) == 0, capsys.readouterr().err
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("zoo").experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]


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
    line = one_error_line(err, prefix="zoo: error: ")
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
    line = one_error_line(err, prefix="zoo: error: ")
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
        "cli.build_parser = lambda *_: (_ for _ in ()).throw(RuntimeError('cannot reach ' + sys.argv[1]))\n"
        "sys.exit(cli.main([]))\n"
    )
    uri = f"postgresql://zoo:{CANARY}@db.example/mlflow"
    done = subprocess.run([sys.executable, "-c", script, uri], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "RuntimeError: cannot reach postgresql://zoo:***@db.example/mlflow" in done.stderr
    assert CANARY not in done.stderr
