"""The real CIFAR-10 archive (../shared/data/CIFAR-10-images-master.zip); skipped where absent.

The first decode of its 60,000 JPEGs takes seconds, so the whole session shares
one cache folder and decodes the archive at most once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.data.datamodule import ImageDataModule
from experiments.data.load import ImageSet, load_images
from experiments.data.split import split_images, summarize

pytestmark = [pytest.mark.slow, pytest.mark.real_data]

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="session")
def real_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for every real-data test of the session."""
    return tmp_path_factory.mktemp("zoo-real-cache")


@pytest.fixture
def real_images(cifar_zip: Path, real_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ImageSet:
    monkeypatch.setenv("ZOO_CACHE_DIR", str(real_cache_dir))
    return load_images(str(cifar_zip))


def test_real_archive_classes_and_split(real_images: ImageSet) -> None:
    assert real_images.classes == CLASSES
    assert real_images.images.shape == (60_000, 3, 32, 32)
    assert real_images.images.dtype == np.uint8
    summary = summarize(real_images, split_images(real_images))
    assert (summary["num_train"], summary["num_val"], summary["num_test"]) == (40_000, 10_000, 10_000)
    assert all(counts == {"train": 4000, "val": 1000, "test": 1000} for counts in summary["per_class"].values())
    assert summary["skipped"] == 0


def test_real_archive_split_is_seeded(real_images: ImageSet, cifar_zip: Path) -> None:
    first = split_images(real_images, seed=0)
    again = split_images(load_images(str(cifar_zip)), seed=0)  # a fresh load, from the cache
    other = split_images(real_images, seed=1)
    assert np.array_equal(first.train, again.train)
    assert np.array_equal(first.val, again.val)
    assert not np.array_equal(first.val, other.val)
    assert len(np.intersect1d(first.val, other.val)) < 3000  # a different draw, not a shifted one
    assert np.array_equal(first.test, other.test)  # the test part never moves


def test_real_archive_pixels_match_the_jpegs(real_images: ImageSet, cifar_zip: Path) -> None:
    import io
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(cifar_zip) as archive:
        image = np.asarray(Image.open(io.BytesIO(archive.read("CIFAR-10-images-master/test/airplane/0000.jpg"))))
    assert np.array_equal(real_images.images[0], image.transpose(2, 0, 1))  # sorted: test/airplane/0000 first


def test_real_archive_through_the_data_module(real_images: ImageSet, cifar_zip: Path) -> None:
    dm = ImageDataModule(str(cifar_zip), batch_size=256, preset="cifar")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (256, 3, 32, 32)
    assert images.dtype == torch.uint8
    x, _ = dm.on_after_batch_transfer((images, labels), 0)
    assert x.shape == (256, 3, 32, 32)
    assert abs(float(x.mean())) < 0.3
