"""End to end: two tiny runs on the offline digits, checked in the MLflow store they wrote."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import mlflow
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

import registry
from conftest import copy_mlflow_store
from experiments import ExperimentConfig, train
from experiments.cli import main
from experiments.config import field_names

LONG_NOTE = "a note longer than Lightning's 250-character cut " * 10
CONFIG = dict(model="resnet_tiny_scratch", data="digits", preset="cifar", augment=False, limit_per_class=12,
              epochs=2, batch_size=32, workers="0", progress_bar=False, experiment="e2e", tags={"note": LONG_NOTE})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path, zoo_cache_dir: Path):
    """Two finished runs (the second with another learning rate and one epoch) in one store."""
    folder = tmp_path_factory.mktemp("e2e")
    uri = copy_mlflow_store(mlflow_template, folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
        first = train(ExperimentConfig(**CONFIG))
        second = train(ExperimentConfig(**{**CONFIG, "lr": 3e-3, "epochs": 1, "log_model": False}))
        yield first, second, MlflowClient(uri)


def test_run_finished_with_full_params_and_facts(runs) -> None:
    first, _, client = runs
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert set(field_names()) <= set(params)
    assert json.loads(params["tags"]) == {"note": LONG_NOTE} and len(params["tags"]) > 250  # not truncated
    model = registry.create_model("resnet_tiny_scratch", num_classes=10)
    assert params["model.num_params"] == str(sum(p.numel() for p in model.parameters()))
    assert params["model.family"] == registry.get_spec("resnet_tiny_scratch").family
    assert params["model.pretrained"] == "none"
    assert int(params["data.num_train"]) > 0 and int(params["data.num_test"]) > 0 and params["data.cache_key"]
    tags = run.data.tags
    assert tags["mlflow.runName"] == "resnet_tiny_scratch-s0" and tags["note"] == LONG_NOTE
    for lib in ("torch", "lightning", "timm", "mlflow"):
        assert tags[f"zoo.version.{lib}"]
    assert len(tags["mlflow.source.git.commit"]) == 40 and tags["zoo.git_dirty"] in ("true", "false")


def test_epoch_curves_have_an_explicit_epoch_axis(runs) -> None:
    first, _, client = runs
    for key in ("val_acc", "val_loss", "train_acc", "train_loss_epoch", "epoch_time_s", "lr"):
        assert [m.step for m in client.get_metric_history(first.run_id, key)] == [0, 1], key
    assert client.get_metric_history(first.run_id, "train_loss")  # per step


def test_summary_metrics_match_the_curves(runs) -> None:
    first, _, client = runs
    metrics = client.get_run(first.run_id).data.metrics
    val_acc = [m.value for m in sorted(client.get_metric_history(first.run_id, "val_acc"), key=lambda m: m.step)]
    best = max(range(len(val_acc)), key=lambda i: (val_acc[i], -i))
    assert metrics["best_val_acc"] == pytest.approx(val_acc[best])
    assert metrics["epoch_of_best"] == best + 1 and metrics["epochs"] == 2
    assert 0 <= metrics["test_acc"] <= 1 and metrics["test_loss"] > 0
    assert metrics["train_time_s"] > 0 and metrics["images_per_sec"] > 0
    for key, value in first.metrics.items():
        assert metrics[key] == pytest.approx(value)


def test_artifacts_at_stable_paths(runs, tmp_path: Path) -> None:
    first, _, client = runs
    names = {a.path for folder in ("", "weights", "checkpoints", "test") for a in client.list_artifacts(first.run_id, folder)}
    assert {"config.yaml", "weights/best.safetensors", "weights/model.json", "checkpoints/last.ckpt",
            "test/confusion_matrix.png", "test/per_class_accuracy.csv"} <= names
    local = Path(client.download_artifacts(first.run_id, "", str(tmp_path)))
    assert ExperimentConfig(**yaml.safe_load((local / "config.yaml").read_text())).validate() == first.config
    assert (local / "test/confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(io.StringIO((local / "test/per_class_accuracy.csv").read_text())))
    assert len(rows) == 10
    correct, total = sum(int(r["correct"]) for r in rows), sum(int(r["total"]) for r in rows)
    assert correct / total == pytest.approx(client.get_run(first.run_id).data.metrics["test_acc"], abs=1e-6)
    assert json.loads((local / "weights/model.json").read_text())["model_kwargs"]["num_classes"] == 10


def test_logged_model_gives_test_step_logits_on_raw_images(runs) -> None:
    from experiments.training.classifier import Classifier
    from experiments.training.runner import build_datamodule
    from registry.weights import read_weights_file

    first, _, client = runs
    logged = mlflow.pytorch.load_model(client.get_run(first.run_id).data.tags["zoo.logged_model_uri"])
    dm = build_datamodule(first.config)
    dm.setup("test")
    images, labels = next(iter(dm.test_dataloader()))
    assert images.dtype == torch.uint8
    module = Classifier(first.config, 10)
    module.model.load_state_dict(read_weights_file(Path(first.checkpoint_dir) / "best.safetensors"))
    module.eval()
    with torch.no_grad():
        expected = module.test_step(dm.on_after_batch_transfer((images, labels), 0), 0)
        got = logged.eval()(images)
    assert logged.class_names == [str(i) for i in range(10)]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_runs_uri_loads_the_best_weights(runs) -> None:
    from registry.weights import read_weights_file

    first, _, _ = runs
    model = registry.create_model("resnet_tiny_scratch", weights=f"runs:/{first.run_id}")
    best = read_weights_file(Path(first.checkpoint_dir) / "best.safetensors")
    assert model.num_classes == 10
    for key, value in model.state_dict().items():
        assert torch.equal(value, best[key]), key
    with pytest.raises(registry.WeightsError, match="trained 'resnet_tiny_scratch'"):
        registry.create_model("resnet18_scratch", weights=f"runs:/{first.run_id}")
    with pytest.raises(registry.WeightsError, match="no run"):
        registry.create_model("resnet_tiny_scratch", weights="runs:/0123456789abcdef")


def test_predict_from_run_and_checkpoint_agree(runs, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    from experiments.training.runner import build_datamodule

    first, _, _ = runs
    dm = build_datamodule(first.config)
    dm.setup("test")
    images, _ = next(iter(dm.test_dataloader()))
    path = tmp_path / "digit.png"
    Image.fromarray(images[0].permute(1, 2, 0).numpy()).save(path)
    assert main(["predict", "--run", first.run_id, str(path)]) == 0
    by_run = capsys.readouterr().out
    assert main(["predict", "--checkpoint", first.best_checkpoint, str(path), "--top-k", "3"]) == 0
    by_ckpt = capsys.readouterr().out
    assert by_run == by_ckpt and by_run.startswith(f"{path}: ") and by_run.count(",") == 2


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown"])
def test_compare_figures_are_mlflows(runs, fmt: str, capsys: pytest.CaptureFixture) -> None:
    first, second, _ = runs
    assert main(["compare", "--experiment", "e2e", "--format", fmt]) == 0
    out = capsys.readouterr().out
    frame = mlflow.search_runs(experiment_names=["e2e"])
    by_id = {row["run_id"]: row for _, row in frame.iterrows()}
    if fmt == "json":
        rows = json.loads(out)
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
    else:
        lines = out.strip().splitlines()
        assert ("| best | run |" in lines[0]) if fmt == "markdown" else lines[0].startswith("best")
        assert "lr" in lines[0] and sum("*" in line for line in lines) == 1  # the varying param; one best row
        return
    assert len(rows) == 2 and {r["run_id"] for r in rows} == {first.run_id, second.run_id}
    for row in rows:
        for key in ("test_acc", "test_loss", "best_val_acc", "train_time_s"):
            assert float(row[key]) == pytest.approx(by_id[row["run_id"]][f"metrics.{key}"])
        assert row["lr"] == by_id[row["run_id"]]["params.lr"] and row["status"] == "FINISHED"
    best = max(rows, key=lambda r: float(r["test_acc"]))
    assert best["best"] == "*" and rows[0] is best


def test_compare_sort_filter_and_plot(runs, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, second, _ = runs
    plot = tmp_path / "curves.png"
    assert main(["compare", "--experiment", "e2e", "--sort", "test_loss", "--format", "json", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[: out.rindex("]") + 1])
    assert float(rows[0]["test_loss"]) <= float(rows[1]["test_loss"])
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["compare", "--experiment", "e2e", "--filter", "params.lr = '0.003'", "--format", "json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [second.run_id]
    assert main(["compare", "--experiment", "nope"]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err


def test_models_uri_follows_the_model_registry(runs) -> None:
    from registry.weights import read_weights_file

    first, _, client = runs
    client.create_registered_model("digits-tiny")
    version = client.create_model_version("digits-tiny", f"runs:/{first.run_id}/model", run_id=first.run_id)
    client.set_registered_model_alias("digits-tiny", "champion", version.version)
    best = read_weights_file(Path(first.checkpoint_dir) / "best.safetensors")
    for uri in ("models:/digits-tiny@champion", f"models:/digits-tiny/{version.version}"):
        model = registry.create_model("resnet_tiny_scratch", weights=uri)
        assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items()), uri
    with pytest.raises(registry.WeightsError, match="not in the Model Registry"):
        registry.create_model("resnet_tiny_scratch", weights="models:/digits-tiny@nobody")
