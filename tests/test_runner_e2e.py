"""End to end: two tiny runs on the offline digits, checked in the MLflow store they wrote."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import mlflow
import numpy as np
import pytest
import torch
import yaml
from conftest import copy_mlflow_store
from mlflow.tracking import MlflowClient

import registry
from experiments import ExperimentConfig, train
from experiments.cli import main
from experiments.config.schema import field_names, is_plumbing
from experiments.tracking import readback
from registry.info import count_flops

pytestmark = pytest.mark.floors  # training, its records and the comparison, on the lowest allowed releases too

LONG_NOTE = "a note longer than Lightning's 250-character cut " * 10
CONFIG = {
    "model": "resnet_tiny_scratch",
    "data": "digits",
    "preset": "cifar",
    "augment": False,
    "limit_per_class": 12,
    "epochs": 2,
    "batch_size": 32,
    "workers": "0",
    "progress_bar": False,
    "experiment": "e2e",
    "tags": {"note": LONG_NOTE},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path, zoo_cache_dir: Path):
    """Two finished runs (the second with another learning rate and one epoch) in one store."""
    folder = tmp_path_factory.mktemp("e2e")
    uri = copy_mlflow_store(mlflow_template, folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
        mp.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")  # MLflow samples every 10 s: runs here take 2
        first = train(ExperimentConfig(**CONFIG))
        # The second keeps its local checkpoint folder: `zoo predict --checkpoint` reads it.
        second = train(
            ExperimentConfig(
                **{
                    **CONFIG,
                    "lr": 3e-3,
                    "epochs": 1,
                    "log_model": False,
                    "keep_local_checkpoints": True,
                    "system_metrics": False,
                }
            )
        )
        yield first, second, MlflowClient(uri)


def test_params_describe_the_experiment_with_the_values_used(runs) -> None:
    first, _, client = runs
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    plumbing = {name for name in field_names() if is_plumbing(name)}
    assert not plumbing & set(params)  # no tracking_uri, checkpoint_dir, run_name, workers, ...
    assert "None" not in params.values()
    # Fields left unset here have no param.
    unset = {
        "weights",
        "decode_size",
        "head_lr",
        "grad_clip",
        "ema_decay",
        "model_args",
        "milestones",
        "train_image_size",
    }
    assert set(field_names()) - plumbing - unset <= set(params)
    assert not unset & set(params)
    # The cifar preset resolved: what the run actually used, not "None".
    assert params["image_size"] == "32"
    assert params["augment"] == "False"
    assert params["stem"] == "cifar"
    assert json.loads(params["mean"]) == pytest.approx([0.4914, 0.4822, 0.4465])
    model = registry.create_model("resnet_tiny_scratch", num_classes=10)
    assert params["model.num_params"] == str(sum(p.numel() for p in model.parameters()))
    assert params["model.family"] == registry.get_spec("resnet_tiny_scratch").family
    assert params["model.pretrained"] == "none"
    assert int(params["data.num_train"]) > 0
    assert int(params["data.num_test"]) > 0
    tags = run.data.tags
    assert tags["mlflow.runName"] == "resnet_tiny_scratch-s0"
    assert tags["note"] == LONG_NOTE
    assert tags["mlflow.zoo.data_cache_key"]
    assert tags["mlflow.user"]
    assert tags["mlflow.source.type"] == "LOCAL"
    for lib in ("torch", "lightning", "timm", "mlflow"):
        assert tags[f"mlflow.zoo.version.{lib}"]
    assert len(tags["mlflow.source.git.commit"]) == 40
    assert tags["mlflow.source.git.dirty"] in ("true", "false")


def test_epoch_curves_have_an_explicit_epoch_axis(runs) -> None:
    first, _, client = runs
    for key in ("val_acc", "val_loss", "train_acc", "train_loss_epoch", "epoch_time_s"):
        assert [m.step for m in client.get_metric_history(first.run_id, key)] == [1, 2], key  # as `epochs` counts
    assert not client.get_metric_history(first.run_id, "lr")  # a constant lr is a param, not a flat curve
    assert client.get_metric_history(first.run_id, "train_loss_step")  # per step
    assert not client.get_metric_history(first.run_id, "epoch")  # no epoch plotted against the step


def test_summary_metrics_match_the_curves(runs) -> None:
    first, _, client = runs
    metrics = client.get_run(first.run_id).data.metrics
    val_acc = [m.value for m in sorted(client.get_metric_history(first.run_id, "val_acc"), key=lambda m: m.step)]
    best = max(range(len(val_acc)), key=lambda i: (val_acc[i], -i))
    assert metrics["best_val_acc"] == pytest.approx(val_acc[best])
    assert metrics["epoch_of_best"] == best + 1
    assert metrics["epochs"] == 2
    assert 0 <= metrics["test_acc"] <= 1
    assert metrics["test_loss"] > 0
    assert metrics["train_time_s"] > 0
    assert metrics["images_per_sec"] > 0
    params = client.get_run(first.run_id).data.params
    train_size = int(params["data.num_train"])
    assert metrics["images_seen"] == 2 * train_size  # the budget a comparison checks
    assert metrics["optimizer_steps"] == 2 * -(-train_size // 32)
    with torch.device("meta"):
        model = registry.create_model("resnet_tiny_scratch", num_classes=int(params["data.num_classes"]))
    side = int(params["image_size"])
    assert metrics["train_flops"] == 3 * metrics["images_seen"] * count_flops(model, (3, side, side))
    for key, value in first.metrics.items():
        assert metrics[key] == pytest.approx(value)


def test_artifacts_at_stable_paths(runs, tmp_path: Path) -> None:
    first, _, client = runs
    names = {
        a.path for folder in ("", "weights", "checkpoints", "test") for a in client.list_artifacts(first.run_id, folder)
    }
    assert {
        "config.yaml",
        "weights/best.safetensors",
        "weights/model.json",
        "test/confusion_matrix.png",
        "test/per_class_accuracy.csv",
    } <= names
    assert not any(n.startswith("checkpoints") for n in names)  # finished: no training state kept
    assert not Path(first.checkpoint_dir).exists()  # nor a local copy of what MLflow holds
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

    first, _, client = runs
    uri = client.get_run(first.run_id).data.tags["mlflow.zoo.logged_model_uri"]
    logged = mlflow.pytorch.load_model(uri)
    dm = build_datamodule(first.config)
    dm.setup("test")
    images, labels = next(iter(dm.test_dataloader()))
    assert images.dtype == torch.uint8
    module = Classifier(first.config, 10)
    module.model.load_state_dict(readback.best_weights(first.run_id)[0])
    module.eval()
    with torch.no_grad():
        expected = module.test_step(dm.on_after_batch_transfer((images, labels), 0), 0)
        got = logged(images)
    assert mlflow.models.get_model_info(uri).metadata["class_names"] == [str(i) for i in range(10)]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


class Unpickled(AssertionError):
    """Raised where loading the logged model reaches an unpickler."""


@contextlib.contextmanager
def no_unpickling() -> Iterator[list[str]]:
    """Inside: Python's unpickler, ``pickle.load(s)`` and any ``torch.load`` but torch's weights-only one fail.

    Python's unpickler is caught by the audit event it raises for every global it
    looks up (``pickle.find_class``): a hook cannot be removed, so it checks a flag.
    """
    if not ARMED_HOOK:  # once per process: an audit hook cannot be removed
        sys.addaudithook(_audit)
        ARMED_HOOK.append(True)
    seen: list[str] = []
    ARMED.append(seen)
    real_load = torch.load

    def refuse(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen.append(name)
            raise Unpickled(name)

        return call

    def weights_only_load(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("weights_only") is not True:
            seen.append(f"torch.load(weights_only={kwargs.get('weights_only')})")
            raise Unpickled("torch.load without weights_only=True")
        return real_load(*args, **kwargs)

    try:
        with (
            mock.patch("pickle.load", refuse("pickle.load")),
            mock.patch("pickle.loads", refuse("pickle.loads")),
            mock.patch("torch.load", weights_only_load),
        ):
            yield seen
    finally:
        ARMED.remove(seen)


ARMED: list[list[str]] = []
ARMED_HOOK: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "pickle.find_class" and ARMED:
        ARMED[-1].append(f"pickle.find_class{args}")
        raise Unpickled(f"unpickling {args}")


def test_the_logged_model_loads_without_unpickling_and_equals_the_runs_weights_at_any_size(
    runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiments.serving.loading import load_run_model

    first, _, client = runs
    uri = client.get_run(first.run_id).data.tags["mlflow.zoo.logged_model_uri"]
    local = Path(mlflow.artifacts.download_artifacts(uri))
    assert (local / "data" / "model.pt2").is_file()  # MLflow's pt2 format (torch.export), no model.pth
    assert not list(local.rglob("*.pth"))
    import torch.export.pt2_archive._package  # before the guard: it subclasses pickle.Unpickler on import

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # MLflow refuses pickle, checks the archive
    with no_unpickling() as seen:
        pyfunc = mlflow.pyfunc.load_model(str(local))
    assert seen == []
    reference = load_run_model(first.run_id)  # the run's safetensors weights with today's ServingModel
    generator = torch.Generator().manual_seed(0)
    for shape in [(1, 3, 8, 8), (5, 3, 8, 8), (2, 3, 32, 32), (3, 3, 40, 20), (2, 3, 17, 64), (1, 3, 1, 1)]:
        images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        with torch.no_grad():
            expected = reference(images).numpy()
        got = pyfunc.predict(images.numpy())
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=str(shape))

    with pytest.raises(Unpickled), no_unpickling() as seen:  # the guard works: a pickle is refused
        pickle.loads(pickle.dumps(Path("x")))
    assert seen == ["pickle.loads"]
    with no_unpickling() as seen, pytest.raises(Unpickled):
        pickle.Unpickler(io.BytesIO(pickle.dumps(Path("x")))).load()
    assert seen
    assert seen[0].startswith("pickle.find_class")


def test_runs_uri_loads_the_best_weights(runs) -> None:

    first, _, _ = runs
    model = registry.create_model("resnet_tiny_scratch", weights=f"runs:/{first.run_id}")
    best, _ = readback.best_weights(first.run_id)
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

    _, second, _ = runs
    dm = build_datamodule(second.config)
    dm.setup("test")
    images, _ = next(iter(dm.test_dataloader()))
    path = tmp_path / "digit.png"
    Image.fromarray(images[0].permute(1, 2, 0).numpy()).save(path)
    assert main(["predict", "--run", second.run_id, str(path)]) == 0
    by_run = capsys.readouterr().out
    assert main(["predict", "--checkpoint", second.best_checkpoint, str(path), "--top-k", "3"]) == 0
    by_ckpt = capsys.readouterr().out
    assert by_run == by_ckpt
    assert by_run.startswith(f"{path}: ")
    assert by_run.count(",") == 2


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
        assert "lr" in lines[0]
        assert sum("*" in line for line in lines) == 1
        return
    assert len(rows) == 2
    assert {r["run_id"] for r in rows} == {first.run_id, second.run_id}
    for row in rows:
        for key in ("test_acc", "test_loss", "best_val_acc", "train_time_s"):
            assert float(row[key]) == pytest.approx(by_id[row["run_id"]][f"metrics.{key}"])
        assert row["lr"] == by_id[row["run_id"]]["params.lr"]
        assert row["status"] == "FINISHED"
    best = max(rows, key=lambda r: float(r["test_acc"]))
    assert best["best"] == "*"
    assert rows[0] is best


def test_compare_sort_filter_and_plot(runs, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _first, second, _ = runs
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

    first, _, client = runs
    client.create_registered_model("digits-tiny")
    version = client.create_model_version("digits-tiny", f"runs:/{first.run_id}/model", run_id=first.run_id)
    client.set_registered_model_alias("digits-tiny", "champion", version.version)
    best, _ = readback.best_weights(first.run_id)
    for uri in ("models:/digits-tiny@champion", f"models:/digits-tiny/{version.version}"):
        model = registry.create_model("resnet_tiny_scratch", weights=uri)
        assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items()), uri
    with pytest.raises(registry.WeightsError, match="not in the Model Registry"):
        registry.create_model("resnet_tiny_scratch", weights="models:/digits-tiny@nobody")


def test_the_logged_model_is_the_runs_in_its_experiment_with_the_best_figures(runs, tmp_path: Path) -> None:
    first, _, client = runs
    run = client.get_run(first.run_id)
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [(m.name, m.source_run_id) for m in models] == [("resnet_tiny_scratch", first.run_id)]
    default = client.get_experiment_by_name("Default")
    assert not default or not client.search_logged_models(experiment_ids=[default.experiment_id])
    linked = {m.key: m.value for m in models[0].metrics}
    for key in ("best_val_acc", "test_acc", "test_loss", "epoch_of_best"):
        assert linked[key] == pytest.approx(run.data.metrics[key]), key  # the best checkpoint's, not epoch 1's
    assert "val_acc" not in linked  # the curves are the run's, not the model's
    info = mlflow.models.get_model_info(models[0].model_uri)
    inputs, outputs = info.signature.inputs.to_dict()[0], info.signature.outputs.to_dict()[0]
    assert inputs["tensor-spec"]["dtype"] == "uint8"
    assert list(inputs["tensor-spec"]["shape"]) == [-1, 3, -1, -1]
    assert outputs["tensor-spec"]["dtype"] == "float32"
    assert list(outputs["tensor-spec"]["shape"]) == [-1, 10]
    assert info.saved_input_example_info is not None
    folder = Path(mlflow.artifacts.download_artifacts(models[0].model_uri, dst_path=str(tmp_path)))
    requirements = [line for line in (folder / "requirements.txt").read_text().splitlines() if line.strip()]
    assert requirements, requirements
    assert all("==" in line for line in requirements), requirements
    pinned = dict(line.split("==") for line in requirements)
    assert pinned["torch"] == torch.__version__.split("+")[0]
    assert pinned["mlflow"] == mlflow.__version__


def test_each_run_records_its_train_validation_and_test_sets(runs) -> None:
    first, second, client = runs
    inputs = {r: client.get_run(r).inputs.dataset_inputs for r in (first.run_id, second.run_id)}
    contexts = {
        r: {next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset for d in found}
        for r, found in inputs.items()
    }
    parts = contexts[first.run_id]
    assert set(parts) == {"train", "validation", "test"}
    assert {d.name for d in parts.values()} == {"digits"}
    assert all("load_digits" in d.source for d in parts.values())
    assert len({d.digest for d in parts.values()}) == 3  # three different parts
    sizes = {c: json.loads(d.profile)["num_images"] for c, d in parts.items()}
    params = client.get_run(first.run_id).data.params
    assert sizes == {
        "train": int(params["data.num_train"]),
        "validation": int(params["data.num_val"]),
        "test": int(params["data.num_test"]),
    }
    # The same data and split in another run: the same digests.
    assert {c: d.digest for c, d in contexts[second.run_id].items()} == {c: d.digest for c, d in parts.items()}


def test_system_metrics_are_on_by_default_with_a_switch(runs) -> None:
    first, second, client = runs
    on = client.get_run(first.run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(on), sorted(on)
    assert not [k for k in client.get_run(second.run_id).data.metrics if k.startswith("system/")]


def test_experiments_are_model_training_ones(runs) -> None:
    first, _, client = runs
    experiment = client.get_experiment(client.get_run(first.run_id).info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
