"""What a run's page shows: the zoo's plumbing tags out of sight, and runs logged before still read.

MLflow's UI lists every tag of a run but the ``mlflow.*`` ones, so the zoo writes its
plumbing (owner, heartbeat, versions, digests, ...) as ``mlflow.zoo.*`` or under
MLflow's own name. Runs logged before hold those tags as ``zoo.*``, with the heartbeat
in Unix seconds: here such runs, made by rewriting a real run's tags back to the old
names, still compare, resume, evaluate and serve, and their digests and owners still
count.
"""

from __future__ import annotations

import os
import signal
import time
import types
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from safetensors.torch import load_file, save_file

import registry
from experiments import ExperimentConfig, train
from experiments.analysis.compare import compare_rows
from experiments.cli import main
from experiments.sweeps import engine
from experiments.tracking import heartbeat
from experiments.tracking.errors import TrackingError
from experiments.tracking.names import (
    BEST_WEIGHTS_ARTIFACT,
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    HEARTBEAT_TAG,
    HIDDEN_TAG_PREFIX,
    LOGGED_MODEL_TAG,
    MODEL_TAG,
    OWNER_TAG,
    VISIBLE_TAGS,
    legacy_tag,
    read_tag,
)
from experiments.training.classifier import Classifier

from cli_errors import one_error_line

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
}
"""A tiny run with the zoo's defaults otherwise (its logged model included)."""


def to_legacy_names(client: MlflowClient, run_id: str) -> None:
    """Rewrite a run's tags as the zoo wrote them before: plumbing as ``zoo.*``, the heartbeat in Unix seconds."""
    for name, value in client.get_run(run_id).data.tags.items():
        old = legacy_tag(name)
        if old is None:
            continue
        seconds = heartbeat.parse_beat_time(value) if name == HEARTBEAT_TAG else None
        client.set_tag(run_id, old, f"{seconds:.3f}" if seconds is not None else value)
        client.delete_tag(run_id, name)


def artifact_file(client: MlflowClient, run_id: str, path: str) -> Path:
    """Where a run's artifact lies in the SQLite store's local artifact folder."""
    return Path(unquote(urlparse(client.get_run(run_id).info.artifact_uri).path)) / path


def test_a_run_page_shows_the_model_and_hides_the_plumbing(mlflow_store: str) -> None:
    result = train(ExperimentConfig(**TINY))
    tags = MlflowClient(mlflow_store).get_run(result.run_id).data.tags
    shown = {name for name in tags if not name.startswith("mlflow.")}  # what MLflow's run page lists
    assert shown == {MODEL_TAG}, sorted(shown)
    assert set(VISIBLE_TAGS) >= shown
    hidden = sorted(name for name in tags if name.startswith(HIDDEN_TAG_PREFIX))
    assert len(hidden) >= 10, hidden  # owner, heartbeat, versions, digests, data cache, logged model, ...
    beat = datetime.fromisoformat(tags[HEARTBEAT_TAG])  # a time a reader can read, in UTC
    assert beat.tzinfo is not None
    assert abs(beat.timestamp() - time.time()) < 600
    assert tags[LOGGED_MODEL_TAG].startswith("models:/m-")
    if GIT_COMMIT_TAG in tags:  # a git checkout: MLflow's own name for the dirty flag
        assert tags[GIT_DIRTY_TAG] in ("true", "false")


def test_a_run_logged_with_the_old_tag_names_compares_evaluates_and_serves(
    mlflow_store: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    result = train(ExperimentConfig(**TINY))
    client = MlflowClient(mlflow_store)
    logged = client.get_run(result.run_id).data.tags[LOGGED_MODEL_TAG]
    to_legacy_names(client, result.run_id)
    tags = client.get_run(result.run_id).data.tags
    assert not [name for name in tags if name.startswith(HIDDEN_TAG_PREFIX)]
    assert tags["zoo.logged_model_uri"] == logged
    assert float(tags["zoo.heartbeat"]) > 0

    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    assert main(["compare"]) == 0
    assert result.run_id[:8] in capsys.readouterr().out
    assert main(["eval", result.run_id, "--no-log"]) == 0
    assert main(["register", result.run_id, "--name", "old-tags"]) == 0
    (version,) = client.search_model_versions("name = 'old-tags'")
    assert version.source == logged  # the registered version is the run's logged model, found by its old tag
    assert main(["predict", "--run", result.run_id, str(image)]) == 0
    capsys.readouterr()

    weights = artifact_file(client, result.run_id, BEST_WEIGHTS_ARTIFACT)
    state = load_file(weights)
    first = next(iter(state))
    state[first] = state[first] + 1
    save_file(state, weights)
    assert main(["eval", result.run_id, "--no-log"]) == 2  # the old digest tag still guards the weights
    assert "is not the file the run wrote" in one_error_line(capsys.readouterr().err)


def test_a_stopped_run_logged_with_the_old_tag_names_resumes(
    mlflow_store: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = Classifier.on_train_epoch_start

    def stop_at_epoch_one(self: Classifier) -> None:
        if self.current_epoch == 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Classifier, "on_train_epoch_start", stop_at_epoch_one)
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(ExperimentConfig(**{**TINY, "epochs": 2, "log_model": False}))
    signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(Classifier, "on_train_epoch_start", original)
    client = MlflowClient(mlflow_store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "KILLED"
    to_legacy_names(client, run.info.run_id)

    assert main(["train", "--resume", run.info.run_id]) == 0
    resumed = client.get_run(run.info.run_id)
    assert resumed.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "val_acc")) == 2
    registry.create_model("resnet_tiny_scratch", weights=f"runs:/{run.info.run_id}")


def test_a_heartbeat_reads_back_in_either_form() -> None:
    now = time.time()
    text = heartbeat.beat_time(now)
    assert text.endswith("+00:00")
    assert datetime.fromisoformat(text).astimezone(timezone.utc).year == datetime.now(timezone.utc).year
    assert heartbeat.parse_beat_time(text) == pytest.approx(now, abs=1e-3)
    assert heartbeat.parse_beat_time(f"{now:.3f}") == pytest.approx(now, abs=1e-3)  # runs logged before
    for unreadable in (None, "", "soon", "2026-12-08T02:13:17"):  # no time zone: no instant
        assert heartbeat.parse_beat_time(unreadable) is None


def test_an_owner_under_the_old_tag_name_still_keeps_a_run_its_own(mlflow_store: str) -> None:
    client = MlflowClient(mlflow_store)
    experiment = client.create_experiment("old-owner")
    live = client.create_run(experiment, run_name="live").info.run_id
    owner = heartbeat.Owner.here()  # this process: alive
    client.set_tag(live, "zoo.owner", str(owner))
    client.set_tag(live, "zoo.heartbeat", f"{time.time():.3f}")
    run = client.get_run(live)
    assert read_tag(run.data.tags, OWNER_TAG) == str(owner)
    assert heartbeat.why_dead(run) is None
    with pytest.raises(TrackingError, match=f"RUNNING in process {os.getpid()}"):
        heartbeat.claim(client, run, settle_s=0)

    gone = client.create_run(experiment, run_name="gone").info.run_id
    client.set_tag(gone, "zoo.owner", f"{owner.host} {2**22 + 17} abcd1234")  # past Linux's largest pid
    assert heartbeat.why_dead(client.get_run(gone)) == f"its process {2**22 + 17} on this host is gone"


def test_a_pruned_trial_logged_with_the_old_tag_name_reads_pruned(mlflow_store: str) -> None:
    client = MlflowClient(mlflow_store)
    experiment = client.create_experiment("old-pruned")
    run_id = client.create_run(experiment, run_name="t0").info.run_id
    client.set_tag(run_id, "zoo.trial_state", "PRUNED")
    client.log_metric(run_id, "test_acc", 0.5)
    client.set_terminated(run_id, "KILLED")
    rows, _ = compare_rows([client.get_run(run_id)])
    assert rows[0]["status"] == "PRUNED"


def test_a_sweep_parent_logged_with_the_old_plan_tag_keeps_its_plan(mlflow_store: str) -> None:
    client = MlflowClient(mlflow_store)
    experiment = client.create_experiment("old-plan")
    parent = client.create_run(experiment, run_name="seeds", tags={"zoo.sweep": "seeds", "zoo.role": "sweep"})
    client.set_tag(parent.info.run_id, "zoo.sweep_plan", "0123abcd")
    listed = types.SimpleNamespace(runs=[types.SimpleNamespace(experiment="old-plan")])
    assert engine.parent_state(listed, "seeds", mlflow_store) == ("0123abcd", False)  # the same plan continues it
