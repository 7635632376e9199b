"""The served model's exportable twin: the same numbers as `Preprocess`, traced once for every image size.

The logged model is MLflow's ``pt2`` (``torch.export``); an exported graph keeps one
branch of every Python ``if`` on a size, so `ExportablePreprocess` has none. Its output
is checked against `Preprocess` for every interpolation, on images smaller, equal and
larger than the output size, and one real export against the eager model. A network
``torch.export`` cannot trace is logged as a pickle, with a one-line warning.
"""

from __future__ import annotations

import logging
import types
from unittest import mock

import pytest
import torch
from torch.export import Dim

import registry
from experiments.data.transforms import INTERPOLATIONS, Preprocess
from experiments.serving.export import ExportablePreprocess, ExportableServingModel, export_example
from experiments.serving.model import serving_copy
from experiments.training import reports

SHAPES = [(1, 3, 8, 8), (2, 3, 32, 32), (3, 3, 40, 20), (2, 3, 17, 64), (1, 3, 1, 1), (2, 3, 33, 31)]


def preprocess(interpolation: str, size: int | None = 32) -> Preprocess:
    return Preprocess(size, (0.5, 0.4, 0.3), (0.25, 0.2, 0.3), ["a", "b"], interpolation=interpolation)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_the_exportable_preprocess_gives_the_same_numbers_at_every_size(interpolation: str) -> None:
    generator = torch.Generator().manual_seed(0)
    for size in (32, None):
        original = preprocess(interpolation, size)
        twin = ExportablePreprocess(original)
        for shape in SHAPES:
            images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
            torch.testing.assert_close(twin(images), original(images), rtol=1e-6, atol=1e-6, msg=str(shape))


def test_an_export_example_leaves_no_size_of_one() -> None:
    assert export_example(torch.zeros(1, 3, 1, 5, dtype=torch.uint8)).shape == (2, 3, 2, 5)
    assert export_example(torch.zeros(4, 3, 8, 8, dtype=torch.uint8)).shape == (4, 3, 8, 8)


def test_one_export_serves_every_batch_and_image_size() -> None:
    torch.manual_seed(0)
    served = serving_copy(preprocess("bilinear"), registry.create_model("resnet_tiny_scratch", num_classes=2))
    example = export_example(torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8))
    auto = {0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO}  # what MLflow asks for the signature's -1 sizes
    exported = torch.export.export(ExportableServingModel(served), (example,), dynamic_shapes=[auto]).module()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for shape in SHAPES:
            images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
            torch.testing.assert_close(exported(images), served(images), rtol=1e-5, atol=1e-5, msg=str(shape))


def test_a_network_export_cannot_trace_is_logged_as_a_pickle_with_a_warning(monkeypatch, caplog) -> None:
    calls: list[str] = []

    def log_model(model, **kwargs):
        calls.append(kwargs["serialization_format"])
        if kwargs["serialization_format"] == "pt2":
            raise RuntimeError("Could not guard on data-dependent expression u0 > 1\nmore lines")
        assert kwargs["metadata"] == {"class_names": ["a", "b"]}
        return types.SimpleNamespace(model_uri="models:/m-1")

    monkeypatch.setattr(reports.mlflow.pytorch, "log_model", log_model)
    monkeypatch.setattr(reports.mlflow, "set_experiment", lambda **kwargs: None)
    monkeypatch.setattr(reports.mlflow, "set_tracking_uri", lambda uri: None)
    monkeypatch.setattr(reports.readback, "get_run", lambda run_id, uri: mock.Mock())
    tags: dict[str, str] = {}
    run = types.SimpleNamespace(uri="sqlite:///x.db", run_id="r1", set_tags=tags.update)
    images = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    dm = types.SimpleNamespace(preprocess=preprocess("bilinear"), test_dataloader=lambda: [(images, None)])
    net = registry.create_model("resnet_tiny_scratch", num_classes=2)
    module = types.SimpleNamespace(model=net, config=types.SimpleNamespace(model="resnet_tiny_scratch"), num_classes=2)
    with caplog.at_level(logging.WARNING, logger=reports.__name__):
        assert reports.log_serving_model(run, dm, module) == "models:/m-1"
    assert calls == ["pt2", "pickle"]
    assert tags == {"mlflow.zoo.logged_model_uri": "models:/m-1"}
    assert "cannot be exported for MLflow's pt2 format (Could not guard on data-dependent expression" in caplog.text
    assert "more lines" not in caplog.text
