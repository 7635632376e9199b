"""Shared fixtures: the real CIFAR-10 archive when it is there, template MLflow stores, a server that hangs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from browser import browser_page, chromium_browser  # noqa: F401  (fixtures, registered here once for every module)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CIFAR_ZIP = PROJECT_ROOT.parent / "shared" / "data" / "CIFAR-10-images-master.zip"


# Hypothesis: the same examples on every CI run (derandomized, a failure reproduces from its seed
# alone), fresh ones at a developer's desk, where its example database keeps what failed.
# Both are registered from Hypothesis's own default, whichever profile a plugin or an earlier
# import (an xdist worker's) loaded first.
settings.register_profile(
    "ci", parent=settings.get_profile("default"), derandomize=True, database=None, print_blob=True
)
settings.register_profile("dev", parent=settings.get_profile("default"), print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_configure(config: pytest.Config) -> None:
    """Start every process as a terminal would, with SIGINT at its default.

    A CI runner or ``pytest &`` in a script may start pytest with SIGINT ignored;
    every process a test starts would inherit that, and a zoo command keeps an
    ignored SIGINT ignored (as Python does), so the Ctrl-C tests would test nothing.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def cifar_zip() -> Path:
    """The real CIFAR-10 JPEG archive; skips the test where it is absent."""
    if not CIFAR_ZIP.is_file():
        pytest.skip(f"real CIFAR-10 archive not found at {CIFAR_ZIP} (only on the project's machines)")
    return CIFAR_ZIP


# -- MLflow stores for the runner's tests ------------------------------------------
# MLflow's first migration of a new SQLite store takes seconds: it is done once per
# session into a template, and each test gets a copy.


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite MLflow store, made once per session."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


def copy_mlflow_store(template: Path, folder: Path) -> str:
    """Copy the template store into a folder; return its tracking URI."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="session")
def zoo_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for the session (the digits decode once)."""
    return tmp_path_factory.mktemp("zoo-cache")


@pytest.fixture
def mlflow_store(mlflow_template: Path, zoo_cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh MLflow store in the test's own working directory; returns its URI.

    The test runs in ``tmp_path`` (so artifacts and checkpoints land there), with
    ``MLFLOW_TRACKING_URI`` and ``ZOO_CACHE_DIR`` pointing at its store and the
    session's data cache.
    """
    uri = copy_mlflow_store(mlflow_template, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
    return uri


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A tracking URI whose port accepts connections and never answers (a server that hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()
