"""`zoo eval` on the run's own test split and on another source; `zoo register` and models:/ weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import copy_mlflow_store
from mlflow.tracking import MlflowClient

import registry
from experiments import ExperimentConfig, train
from experiments.cli import main

from image_factory import CLASSES, write_image_folder, zip_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path, zoo_cache_dir: Path):
    """A tiny run (with its logged model) on a synthetic three-class folder, and a second source."""
    folder = tmp_path_factory.mktemp("evalreg")
    uri = copy_mlflow_store(mlflow_template, folder)
    data = write_image_folder(folder / "shapes", "split", n_train=16, n_test=6)
    other = zip_folder(write_image_folder(folder / "more", "classes", n_train=10), folder / "more.zip")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
        result = train(
            ExperimentConfig(
                model="resnet_tiny_scratch",
                data=str(data),
                preset="cifar",
                augment=False,
                epochs=2,
                batch_size=8,
                workers="0",
                progress_bar=False,
                experiment="evalreg",
            )
        )
        yield result, other, MlflowClient(uri)


def eval_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("evalreg")
    return [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("zoo.role") == "eval"]


def test_eval_on_the_test_split_again_matches_the_run(trained, capsys) -> None:
    result, _, client = trained
    before = {r.info.run_id for r in eval_runs(client)}
    assert main(["eval", result.run_id]) == 0
    out = capsys.readouterr().out
    new = [r for r in eval_runs(client) if r.info.run_id not in before]
    assert len(new) == 1
    run = new[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["zoo.eval_of"] == result.run_id
    assert run.data.params["weights"] == f"runs:/{result.run_id}"
    source = client.get_run(result.run_id).data.metrics
    assert run.data.metrics["eval_acc"] == pytest.approx(source["test_acc"], abs=1e-6)
    assert run.data.metrics["eval_loss"] == pytest.approx(source["test_loss"], rel=1e-5)
    assert f"accuracy {source['test_acc']:.4f}" in out
    assert run.info.run_id in out
    for name in CLASSES:  # per-class accuracy, printed and recorded
        assert name in out
        assert f"eval_class_acc/{name}" in run.data.metrics
    assert run.data.metrics["eval_images"] == 3 * 6
    files = {f.path for f in client.list_artifacts(run.info.run_id, "test")}
    assert files == {"test/confusion_matrix.png", "test/per_class_accuracy.csv"}


def test_eval_on_another_source(trained, capsys) -> None:
    result, other, client = trained
    assert main(["eval", result.run_id, "--data", str(other), "--format", "json"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[out.index("[") : out.rindex("]") + 1])
    assert [r["class"] for r in rows] == sorted(CLASSES)
    assert all(r["total"] > 0 for r in rows)
    run = max(eval_runs(client), key=lambda r: r.info.start_time)
    assert run.data.params["data"] == str(other)
    correct = sum(r["correct"] for r in rows) / sum(r["total"] for r in rows)
    assert run.data.metrics["eval_acc"] == pytest.approx(correct, abs=1e-6)


def test_eval_runs_stay_out_of_compare(trained, capsys) -> None:
    capsys.readouterr()
    assert main(["compare", "--experiment", "evalreg", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "digits"], "but the run was trained on"),
        (["--data", "no/such/folder"], "no/such/folder"),
    ],
)
def test_eval_bad_input_is_one_line(trained, capsys, argv: list, message: str) -> None:
    result, _, _ = trained
    assert main(["eval", result.run_id, "--no-log", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("zoo: error:")
    assert err.count("\n") == 1


def test_eval_of_an_unknown_run(trained, capsys) -> None:
    assert main(["eval", "0" * 32]) == 2
    assert "no run" in capsys.readouterr().err


def test_register_with_an_alias_and_load_it_by_models_uri(trained, capsys) -> None:
    result, _, client = trained
    assert main(["register", result.run_id, "--name", "tiny-shapes", "--alias", "champion"]) == 0
    out = capsys.readouterr().out
    assert "tiny-shapes version 1 (alias champion)" in out
    assert "models:/tiny-shapes@champion" in out
    version = client.get_model_version_by_alias("tiny-shapes", "champion")
    assert version.run_id == result.run_id
    assert version.tags["zoo.model"] == "resnet_tiny_scratch"
    by_alias = registry.create_model("resnet_tiny_scratch", weights="models:/tiny-shapes@champion")
    by_version = registry.create_model("resnet_tiny_scratch", weights="models:/tiny-shapes/1")
    by_run = registry.create_model("resnet_tiny_scratch", weights=f"runs:/{result.run_id}")
    assert by_alias.num_classes == 3
    for key, value in by_run.state_dict().items():
        assert torch.equal(by_alias.state_dict()[key], value)
        assert torch.equal(by_version.state_dict()[key], value)
    # the registered version is the run's logged model too (loadable with MLflow alone)
    assert version.source == client.get_run(result.run_id).data.tags["mlflow.zoo.logged_model_uri"]


def test_registering_again_moves_the_alias(trained, capsys) -> None:
    result, _, client = trained
    assert main(["register", result.run_id, "--name", "tiny-moves", "--alias", "champion"]) == 0
    assert main(["register", result.run_id, "--name", "tiny-moves", "--alias", "champion"]) == 0
    assert int(client.get_model_version_by_alias("tiny-moves", "champion").version) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "bad name"], "--name 'bad name' is not allowed"),
        (["--name", "ok", "--alias", "v3"], "reserved by MLflow"),
    ],
)
def test_register_bad_input_is_one_line(trained, capsys, argv: list, message: str) -> None:
    result, _, _ = trained
    assert main(["register", result.run_id, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_unregistered_models_uri_is_a_weights_error(trained) -> None:
    with pytest.raises(registry.errors.WeightsError, match="not in the Model Registry"):
        registry.create_model("resnet_tiny_scratch", weights="models:/nobody@champion")
