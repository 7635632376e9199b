"""The team set-up, for real, on one machine: one PostgreSQL, one ``mlflow server``, two machines' ``zoo run``.

PostgreSQL 15 holds both the MLflow store (database ``zoo``, behind a real
``mlflow server`` that proxies the artifacts) and the Optuna study (database
``optuna``: the two use tables of the same names, so they get a database each).
Two ``zoo run FILE --storage ... --tracking-uri ...`` processes started at the same
moment, as two machines would be, share one 4-trial search.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from procs import ZOO, running
from servers import ServerUnavailable, find_postgres_bin, mlflow_server, postgres_server

pytestmark = pytest.mark.slow

SEARCH = {
    "description": "a team's search",
    "trials": 4,
    "pruner": "none",
    "defaults": {
        "model": "resnet_tiny_scratch",
        "data": "digits",
        "preset": "cifar",
        "augment": False,
        "limit_per_class": 5,
        "epochs": 2,
        "batch_size": 32,
        "workers": "0",
        "progress_bar": False,
        "log_model": False,
    },
    "search": {"lr": {"loguniform": [1.0e-4, 1.0e-1]}, "weight_decay": {"uniform": [0.0, 5.0e-4]}},
}


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``(study storage URL, tracking URI)`` of a PostgreSQL server and an mlflow server on it."""
    try:
        find_postgres_bin()
        import psycopg2
    except (ServerUnavailable, ImportError) as missing:
        pytest.skip(f"the team set-up needs PostgreSQL's binaries and psycopg2: {missing}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with postgres_server(tmp_path / "postgres") as pg:
        db = psycopg2.connect(pg.dsn)
        db.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        db.cursor().execute("CREATE DATABASE optuna")
        db.close()
        with mlflow_server(pg.url, tmp_path / "mlflow") as ml:
            yield pg.url.rsplit("/", 1)[0] + "/optuna", ml.url


def test_two_machines_share_one_search_on_postgresql_and_an_mlflow_server(team, tmp_path: Path) -> None:
    storage, tracking = team
    file = tmp_path / "search.yaml"
    file.write_text(yaml.safe_dump(SEARCH, sort_keys=False))
    command = [*ZOO, "run", str(file), "--storage", storage, "--tracking-uri", tracking, "--sweep", "team"]
    machines = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for folder in machines:
        folder.mkdir()
    with (
        running(command, machines[0] / "zoo.log", cwd=machines[0], ZOO_HEARTBEAT_S="1") as a,
        running(command, machines[1] / "zoo.log", cwd=machines[1], ZOO_HEARTBEAT_S="1") as b,
    ):
        codes = [a.wait(timeout=600), b.wait(timeout=600)]
    logs = "\n".join((m / "zoo.log").read_text()[-2500:] for m in machines)
    assert codes == [0, 0], logs

    study = optuna.load_study(study_name="team", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4, [(t.number, t.state, t.user_attrs) for t in study.trials]
    assert sorted(t.user_attrs["zoo.slot"] for t in complete) == [0, 1, 2, 3]  # every slot once: none twice

    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("search").experiment_id])
    parents = [r for r in runs if r.data.tags.get("zoo.role") == "sweep"]
    assert len(parents) == 1
    assert parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 4
    assert all(r.info.status == "FINISHED" for r in children)
    assert sorted(r.data.tags["zoo.trial"] for r in children) == sorted(str(t.number) for t in complete)
    assert {r.info.run_id for r in children} == {t.user_attrs["zoo.mlflow_run_id"] for t in complete}
    hosts = {r.data.tags["mlflow.zoo.worker"].split()[1] for r in children}
    assert len(hosts) == 2  # both "machines" trained
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id, "sweep")}
    assert {"sweep/trials.csv", "sweep/search.yaml"} <= artifacts  # through the server's artifact proxy
