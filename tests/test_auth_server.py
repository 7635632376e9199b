"""The authenticated team server, for real: ``mlflow server --app-name zoo-auth`` on PostgreSQL.

MLflow's basic-auth app with the zoo's UI default (``experiments.tracking.ui_app.create_auth_app``)
on a real PostgreSQL 15: an anonymous client can neither read nor write; the store check
answers a missing or wrong password in one line; a ``zoo train`` whose credentials come from
the environment lands its run; a user with READ permission cannot overwrite the run's weights.
"""

from __future__ import annotations

import importlib.metadata
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient
from PIL import Image

from experiments.cli import main
from experiments.tracking.names import BEST_WEIGHTS_ARTIFACT, UI_AUTH_APP

pytest.register_assert_rewrite("servers")  # before pytest_plugins below loads it as a plugin

pytest_plugins = ["servers"]  # postgres_url

pytestmark = pytest.mark.slow

pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth] (pip install -e '.[test]')")

ADMIN_PASSWORD = "admin-CANARY-51c2"
ALICE_PASSWORD = "alice-CANARY-93ad"
BOB_PASSWORD = "bob-CANARY-0e77"

TINY = ["resnet_tiny_scratch", "--data", "digits", "--preset", "cifar", "--no-augment", "--limit-per-class", "8"]
TINY += ["--epochs", "1", "--batch-size", "32", "--workers", "0", "--no-progress-bar", "--no-log-model"]


def register_app_for_the_server(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``--app-name zoo-auth`` findable where the installed metadata predates it (an old editable install)."""
    if importlib.metadata.entry_points(group="mlflow.app", name=UI_AUTH_APP):
        return
    info = folder / "zoo_auth_app-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-auth-app\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[mlflow.app]\n{UI_AUTH_APP} = experiments.tracking.ui_app:create_auth_app\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", ":".join(filter(None, [str(folder), root, os.environ.get("PYTHONPATH")])))


@pytest.fixture
def auth_server(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The URL of ``mlflow server --app-name zoo-auth`` on PostgreSQL, no permission by default."""
    from servers import mlflow_server  # deferred: pytest_plugins loads the module first, with assert rewriting

    config = tmp_path / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{tmp_path / 'auth.db'}\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    register_app_for_the_server(tmp_path / "apps", monkeypatch)
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(config))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "test-only-key")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    with mlflow_server(postgres_url, tmp_path / "mlflow", app_name=UI_AUTH_APP) as server:
        monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD")
        yield server.url


def as_user(monkeypatch: pytest.MonkeyPatch, user: str | None, password: str | None) -> None:
    for name, value in (("MLFLOW_TRACKING_USERNAME", user), ("MLFLOW_TRACKING_PASSWORD", password)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_authenticated_team_server(
    auth_server: str, zoo_cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", auth_server)

    # Anonymous: no read, no write; the zoo says so in one line.
    assert status_of(f"{auth_server}/api/2.0/mlflow/experiments/search?max_results=1") == 401
    request = urllib.request.Request(
        f"{auth_server}/api/2.0/mlflow/experiments/create", data=b'{"name": "x"}', method="POST"
    )
    request.add_header("Content-Type", "application/json")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    as_user(monkeypatch, None, None)
    assert main(["train", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "HTTP 401 (it needs credentials)" in err

    # The admin creates two users; a wrong password is one line too.
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    auth = get_app_client("basic-auth", tracking_uri=auth_server)
    auth.create_user("alice", ALICE_PASSWORD)
    auth.create_user("bob", BOB_PASSWORD)
    as_user(monkeypatch, "alice", "not-her-password")
    assert main(["train", *TINY]) == 2
    assert "HTTP 401 (the credentials given were refused)" in capsys.readouterr().err

    # Alice trains with her credentials from the environment: the run lands, her password nowhere.
    as_user(monkeypatch, "alice", ALICE_PASSWORD)
    assert main(["train", *TINY]) == 0
    out, err = capsys.readouterr()
    assert ALICE_PASSWORD not in out + err
    client = MlflowClient(auth_server)
    experiment = client.get_experiment_by_name("zoo")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"

    # Bob may read the experiment, not write it: the weights cannot be overwritten.
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    auth.grant_user_permission("bob", "experiment", experiment.experiment_id, "READ")
    as_user(monkeypatch, "bob", BOB_PASSWORD)
    bob = MlflowClient(auth_server)
    assert bob.get_run(run.info.run_id).info.status == "FINISHED"
    fake = tmp_path / "best.safetensors"
    fake.write_bytes(b"not the weights")
    with pytest.raises(requests.HTTPError, match="403"):  # through the server's artifact proxy
        bob.log_artifact(run.info.run_id, str(fake), str(Path(BEST_WEIGHTS_ARTIFACT).parent))
    with pytest.raises(MlflowException, match=r"Permission denied|PERMISSION_DENIED|403"):
        bob.set_tag(run.info.run_id, "mlflow.zoo.sha256.weights/best.safetensors", "0" * 64)
    as_user(monkeypatch, "alice", ALICE_PASSWORD)
    assert main(["predict", "--run", run.info.run_id, str(write_image(tmp_path))]) == 0  # the weights are alice's


def write_image(folder: Path) -> Path:
    path = folder / "x.png"
    Image.new("RGB", (32, 32)).save(path)
    return path
