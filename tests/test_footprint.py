"""What a finished run leaves on disk: at most twice its fp32 weights, plus a few small files.

The two copies are the best weights (``weights/best.safetensors``, what ``runs:/``
loads) and the logged model (what MLflow serves: ``model.pt2``, its weights with
the exported graph). The last training state (three
times the weights with Adam) is there while the run trains, for resume, and goes
when it has finished unless ``keep_last_state``; the local checkpoint folder goes
unless ``keep_local_checkpoints``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

import registry
from experiments import ExperimentConfig, train
from experiments.tracking.names import LAST_STATE_ARTIFACT

SMALL_FILES = 256 * 1024
"""What a run stores besides its weights: config, test report and plot, model metadata, requirements."""

GRAPH_BYTES = 256 * 1024
"""The logged model's exported graph, next to its weights in ``model.pt2`` (MLflow's pt2 format):
its size follows the network's operations, not its weights (about 160 KB for resnet_tiny)."""


def fp32_weight_bytes(model_name: str, num_classes: int) -> int:
    """Bytes of a model's state (parameters and buffers) in fp32."""
    model = registry.create_model(model_name, num_classes=num_classes)
    return sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())


def stored_files(folder: Path) -> dict[str, int]:
    """Every file under the folder but MLflow's database: path -> bytes."""
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith("mlflow.db")
    }


def run_config(**changes) -> ExperimentConfig:
    return ExperimentConfig(
        model="resnet_tiny_scratch",
        data="digits",
        preset="cifar",
        limit_per_class=10,
        epochs=2,
        experiment="footprint",
        **changes,
    )


def test_a_finished_run_stores_at_most_twice_its_fp32_weights(mlflow_store: str, tmp_path: Path) -> None:
    result = train(run_config())
    weights = fp32_weight_bytes("resnet_tiny_scratch", 10)
    files = stored_files(tmp_path)
    total = sum(files.values())
    assert total <= 2 * weights + SMALL_FILES + GRAPH_BYTES, (weights, sorted(files.items(), key=lambda kv: -kv[1]))
    large = {path: size for path, size in files.items() if size > weights / 2}
    assert len(large) == 2, large
    graph = {path: GRAPH_BYTES if path.endswith("model.pt2") else 0 for path in large}
    assert all(size < 1.1 * weights + graph[path] for path, size in large.items()), large  # two copies, no more
    assert any(path.endswith("best.safetensors") for path in large)
    assert any(path.endswith("model.pt2") for path in large)  # the logged model: MLflow's pt2, no pickle
    assert not result.checkpoint_dir.parent.exists()  # the local folder was a copy of what MLflow holds
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "checkpoints")]
    assert artifacts == []  # no last state: a finished run is not resumed
    # What a user needs is all there: the weights, the logged model, the test report.
    assert registry.create_model("resnet_tiny_scratch", weights=f"runs:/{result.run_id}").num_classes == 10
    tags = mlflow.get_run(result.run_id).data.tags
    assert mlflow.pytorch.load_model(tags["mlflow.zoo.logged_model_uri"]) is not None
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "test")} >= {
        "test/confusion_matrix.png",
        "test/per_class_accuracy.csv",
    }


@pytest.mark.parametrize("keep", ["keep_last_state", "keep_local_checkpoints"])
def test_what_a_user_asks_to_keep_stays(mlflow_store: str, keep: str) -> None:
    result = train(run_config(**{keep: True}))
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "checkpoints")]
    if keep == "keep_last_state":
        assert artifacts == [LAST_STATE_ARTIFACT]
        assert not result.checkpoint_dir.exists()
    else:
        assert artifacts == []
        assert (result.checkpoint_dir / "last.ckpt").exists()
