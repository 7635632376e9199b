"""The real-server helpers of ``servers.py``: PostgreSQL, ``mlflow server`` on it and on SQLite.

The round trips go through the fixtures (as other tests would use them); the
process checks use the context managers directly, so that they can look at the
process groups after the ``with`` block is left, normally and through an exception.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytest.register_assert_rewrite("servers")  # before the import: pytest_plugins below loads it as a plugin
from servers import (  # noqa: E402
    ServerStartError,
    ServerUnavailable,
    find_postgres_bin,
    free_port,
    group_members,
    mlflow_server,
    postgres_server,
    process_group_alive,
    server_processes,
    sqlite_uri,
    still_running,
)

# The fixtures postgres_url, mlflow_server_postgres and mlflow_server_sqlite.
pytest_plugins = ["servers"]


def round_trip(tracking_uri: str, tmp_path: Path) -> str:
    """Experiment, run, metric and a proxied artifact through the server; return the run id."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment("servers-round-trip")
    experiment = client.get_experiment(experiment_id)
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment.artifact_location

    run = client.create_run(experiment_id, run_name="round-trip")
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.25, step=3)
    note = tmp_path / "note.txt"
    note.write_text("through the artifact proxy\n")
    client.log_artifact(run_id, str(note), artifact_path="notes")
    client.set_terminated(run_id)

    again = client.get_run(run_id)
    assert again.info.status == "FINISHED"
    assert again.data.metrics == {"loss": 0.25}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(3, 0.25)]
    assert [f.path for f in client.list_artifacts(run_id, "notes")] == ["notes/note.txt"]
    fetched = Path(client.download_artifacts(run_id, "notes/note.txt", str(tmp_path / "download")))
    assert fetched.read_text() == "through the artifact proxy\n"
    # The proxy wrote it into the server's --artifacts-destination, not next to the client.
    stored = list((tmp_path / "mlflow" / "artifacts").rglob("note.txt"))
    assert len(stored) == 1
    assert run_id in str(stored[0])
    return run_id


@pytest.mark.slow
def test_mlflow_server_on_postgres_round_trip(postgres_url: str, mlflow_server_postgres: str, tmp_path: Path) -> None:
    import psycopg2

    assert postgres_url.startswith("postgresql+psycopg2://postgres@127.0.0.1:")
    assert postgres_url.endswith("/zoo")
    assert mlflow_server_postgres.startswith("http://127.0.0.1:")
    run_id = round_trip(mlflow_server_postgres, tmp_path)

    with psycopg2.connect(postgres_url.replace("+psycopg2", "")) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT r.status, r.name, e.name FROM runs r JOIN experiments e USING (experiment_id) "
            "WHERE r.run_uuid = %s",
            (run_id,),
        )
        assert cur.fetchall() == [("FINISHED", "round-trip", "servers-round-trip")]
        cur.execute("SELECT value, step FROM metrics WHERE run_uuid = %s AND key = 'loss'", (run_id,))
        assert cur.fetchall() == [(0.25, 3)]
    conn.close()


@pytest.mark.slow
def test_mlflow_server_on_sqlite_round_trip(mlflow_server_sqlite: str, tmp_path: Path) -> None:
    run_id = round_trip(mlflow_server_sqlite, tmp_path)
    with sqlite3.connect(tmp_path / "mlflow" / "mlflow.db") as conn:
        assert conn.execute("SELECT status FROM runs WHERE run_uuid = ?", (run_id,)).fetchall() == [("FINISHED",)]
    conn.close()


@pytest.mark.slow
def test_process_groups_are_gone_after_the_with_blocks(tmp_path: Path) -> None:
    try:
        find_postgres_bin()
    except ServerUnavailable as err:
        pytest.skip(str(err))
    seen: dict[int, dict[int, int]] = {}
    data_folder = None

    class TestFailed(Exception):
        pass

    started = time.monotonic()
    # The test body fails: the servers must go all the same.
    with (  # noqa: PT012 -- TestFailed must pass through the servers' context managers, which stop them
        pytest.raises(TestFailed),
        postgres_server(tmp_path / "pg") as pg,
        mlflow_server(pg.url, tmp_path / "mlflow") as ml,
    ):
        data_folder = pg.folder
        for server in (pg, ml):
            assert server.pgid == server.pid
            assert os.getpgid(server.pid) == server.pid
            assert os.getpgid(server.pid) != os.getpgrp()
            assert os.getsid(server.pid) == server.pid
            seen[server.pgid] = server_processes(server.pid)
            assert set(group_members(server.pgid)) <= set(seen[server.pgid])
        # The postmaster and its background processes (each in a group of its own).
        assert len(seen[pg.pgid]) > 1
        assert group_members(pg.pgid) == [pg.pid]
        assert pg.dsn == pg.url.replace("postgresql+psycopg2://", "postgresql://")
        assert pg.log.is_file()
        assert ml.log.is_file()
        assert ml.log.stat().st_size > 0
        raise TestFailed
    print(f"postgres + mlflow server started and stopped in {time.monotonic() - started:.1f} s")

    for pgid, processes in seen.items():
        assert not process_group_alive(pgid), f"group {pgid} left {group_members(pgid)}"
        assert not still_running(processes)
    assert data_folder is not None
    assert not data_folder.exists()
    assert not processes_mentioning(str(tmp_path), str(data_folder))


def processes_mentioning(*words: str) -> list[str]:
    """Command lines of live processes naming any of ``words`` (a test's folders: its servers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in "ZX" and any(w in cmdline for w in words):
            found.append(f"{entry}: {cmdline}")
    return found


@pytest.mark.slow
def test_mlflow_server_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    with (
        pytest.raises(ServerStartError, match="mlflow server exited") as raised,
        mlflow_server("nosuchdb://nowhere", tmp_path / "mlflow", timeout=120),
    ):
        pass  # pragma: no cover
    assert "last lines of" in str(raised.value)
    assert "nosuchdb" in str(raised.value)


def test_missing_postgres_binaries_are_named(tmp_path: Path) -> None:
    (tmp_path / "initdb").write_text("#!/bin/sh\n")
    (tmp_path / "initdb").chmod(0o755)
    with pytest.raises(ServerUnavailable) as raised:
        find_postgres_bin([str(tmp_path), str(tmp_path / "absent")])
    message = str(raised.value)
    assert "postgres, pg_ctl, pg_isready, createdb" in message
    assert "ZOO_POSTGRES_BIN" in message
    assert f"{tmp_path / 'absent'} lacks initdb" in message


def test_sqlite_uri_and_free_port(tmp_path: Path) -> None:
    assert sqlite_uri(tmp_path / "m.db") == f"sqlite:///{tmp_path.resolve()}/m.db"
    assert sqlite_uri(tmp_path / "m.db").startswith("sqlite:////")
    assert 1024 < free_port() < 65536
