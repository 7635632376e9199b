"""The served model's exportable twin: the same numbers as `Preprocess`, traced once for every image size.

The logged model is MLflow's ``pt2`` (``torch.export``); an exported graph keeps one
branch of every Python ``if`` on a size, so `ExportablePreprocess` has none. Its output
is checked against `Preprocess` for every interpolation, on images smaller, equal and
larger than the output size, and one real export against the eager model.
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

import registry
from experiments.data.transforms import INTERPOLATIONS, Preprocess
from experiments.serving.export import ExportablePreprocess, ExportableServingModel, export_example
from experiments.serving.model import serving_copy

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
