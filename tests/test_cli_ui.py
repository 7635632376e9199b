"""`zoo ui`: MLflow's UI for the same store, on 127.0.0.1 only, telemetry off."""

from __future__ import annotations

import pytest

from experiments.commands.ui import ui_command


def test_ui_binds_localhost_with_telemetry_off(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    argv, env = ui_command(5123)
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "5123"
    assert argv[argv.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and env["DO_NOT_TRACK"] == "true"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    argv = ui_command(5000, None)[0]
    assert argv[argv.index("--backend-store-uri") + 1] == "http://127.0.0.1:9"
