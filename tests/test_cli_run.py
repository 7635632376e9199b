"""`zoo run FILE`: every run of an experiment file into one experiment, then the comparison."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.cli import main


@pytest.mark.floors
def test_run_trains_every_listed_run_and_compares(
    mlflow_store: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    file = tmp_path / "pair.yaml"
    file.write_text(
        "defaults: {model: resnet_tiny_scratch, data: digits, preset: cifar, augment: false, limit_per_class: 6,\n"
        "           epochs: 1, workers: '0', progress_bar: false, log_model: false}\n"
        "runs:\n  - {seed: 0}\n  - {seed: 1, lr: 0.003}\n"
    )
    assert main(["run", str(file)]) == 0
    out = capsys.readouterr().out
    client = MlflowClient(mlflow_store)
    experiment = client.get_experiment_by_name("pair")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    assert {r.info.status for r in runs} == {"FINISHED"}
    table = out[out.index("best  run") :]
    assert all(r.info.run_id[:8] in table for r in runs)
    assert "lr" in table.splitlines()[0]
    assert "seed" in table.splitlines()[0]
