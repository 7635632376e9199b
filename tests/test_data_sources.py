"""Every kind of data source, on small generated data.

Folders and zips in both layouts, cifar-10-batches-py, the word cifar10 (offline), digits, and mixed image sizes.
"""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from experiments.data.errors import DataError
from experiments.data.load import load_images
from experiments.data.split import describe_source, split_images

from image_factory import (
    CLASSES,
    image_bytes,
    isolated_cache,
    red_of,
    write_cifar_batches,
    write_image_folder,
    zip_folder,
)

pytestmark = pytest.mark.usefixtures("isolated_cache")
_ = isolated_cache


def assert_labels_match_pixels(images) -> None:
    """Every image's red channel says which class it was generated for."""
    reds = images.images[:, 0].reshape(len(images.labels), -1).mean(axis=1)
    expected = np.array([red_of(CLASSES.index(images.classes[label])) for label in images.labels])
    assert np.abs(reds - expected).max() < 8


def test_folder_with_train_and_test(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "data", "split", n_train=10, n_test=4)
    images = load_images(str(root))
    assert images.classes == sorted(CLASSES)
    assert images.images.dtype == np.uint8
    assert images.images.shape == (3 * 14, 3, 16, 16)
    assert images.has_test
    assert int(images.is_test.sum()) == 12
    assert_labels_match_pixels(images)
    summary = describe_source(str(root))
    assert (summary["num_train"], summary["num_val"], summary["num_test"]) == (24, 6, 12)
    assert summary["per_class"]["dog"] == {"train": 8, "val": 2, "test": 4}
    assert not summary["test_drawn"]


def test_one_folder_of_class_folders_draws_a_test_part(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "data", "classes", n_train=10)
    summary = describe_source(str(root), val_fraction=0.25, test_fraction=0.2)
    assert summary["test_drawn"]
    assert summary["per_class"]["cat"] == {"train": 6, "val": 2, "test": 2}
    # The drawn test part does not move with the seed: runs with other seeds test on the same images.
    images = load_images(str(root))
    tests = [split_images(images, seed=seed).test for seed in (0, 1, 2)]
    assert all(np.array_equal(tests[0], t) for t in tests[1:])


@pytest.mark.parametrize("layout", ["split", "classes"])
def test_zip_reads_members_without_extracting(tmp_path: Path, layout: str) -> None:
    folder = write_image_folder(tmp_path / "data", layout)
    archive = zip_folder(folder, tmp_path / "data.zip", wrap="My-Images-master")
    images = load_images(str(archive))
    assert images.classes == sorted(CLASSES)
    assert images.description.startswith("zip ")
    assert images.has_test == (layout == "split")
    assert_labels_match_pixels(images)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "data.zip", "zoo-cache"]  # nothing extracted


def test_extracted_cifar_layout_under_a_wrapping_folder(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "download" / "CIFAR-10-images-master", "split")
    (tmp_path / "download" / "README.md").write_text("not data")
    images = load_images(str(tmp_path / "download"))
    assert images.has_test
    assert images.classes == sorted(CLASSES)


def test_cifar_batches_py_format(tmp_path: Path) -> None:
    folder = write_cifar_batches(tmp_path, per_batch=6)
    for path in (folder, tmp_path):  # the folder itself, or torchvision's root that holds it
        images = load_images(str(path))
        assert images.classes == ["a_cls", "b_cls", "c_cls"]
        assert images.images.shape == (36, 3, 32, 32)
        assert int(images.is_test.sum()) == 6
    original = ("b_cls", "a_cls", "c_cls")
    reds = images.images[:, 0, 0, 0]
    for red, label in zip(reds, images.labels, strict=True):
        assert images.classes[label] == original[[red_of(i) for i in range(3)].index(red)]


def test_cifar_batches_refuse_pickled_code(tmp_path: Path) -> None:
    import pickle

    folder = write_cifar_batches(tmp_path)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"labels": [0], b"data": __import__("os").getcwd}, handle, protocol=2)
    with pytest.raises(DataError, match="refusing to load"):
        load_images(str(folder))


def test_cifar10_word_offline_names_the_data_option(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise URLError("Name or service not known")

    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive", offline)
    with pytest.raises(DataError, match="--data PATH") as error:
        load_images("cifar10")
    assert "\n" not in str(error.value)


def test_cifar10_word_uses_a_previous_download(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar_batches(isolated_cache / "cifar10")
    monkeypatch.setattr(
        "torchvision.datasets.utils.download_and_extract_archive", lambda *a, **k: pytest.fail("downloaded again")
    )
    images = load_images("cifar10")
    assert len(images.labels) == 36
    assert images.has_test


def test_digits_offline() -> None:
    images = load_images("digits")
    assert images.images.shape == (1797, 3, 8, 8)
    assert images.images.dtype == np.uint8
    assert images.classes == [str(i) for i in range(10)]
    assert images.images.max() == 255
    assert not images.has_test
    assert np.array_equal(images.images[:, 0], images.images[:, 2])  # grayscale in three channels


def test_mixed_sizes_decode_to_one_size(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "data", "classes", n_train=4, size=(20, 20))
    (root / "cat" / "wide.png").write_bytes(image_bytes(0, 9, size=(30, 60), fmt="PNG"))
    (root / "dog" / "tall.jpg").write_bytes(image_bytes(1, 9, size=(50, 10)))
    first = load_images(str(root))
    assert first.image_size == (20, 20)  # the first image's size
    assert first.images.shape == (14, 3, 20, 20)
    sized = load_images(str(root), decode_size=12)
    assert sized.images.shape == (14, 3, 12, 12)
    assert sized.cache_key != first.cache_key
    reds = sized.images[:, 0].reshape(14, -1).mean(axis=1)
    assert np.abs(reds - [red_of(CLASSES.index(sized.classes[k])) for k in sized.labels]).max() < 8


def test_decode_size_resizes_array_sources() -> None:
    images = load_images("digits", decode_size=16)
    assert images.images.shape == (1797, 3, 16, 16)


def test_zip_made_on_a_mac(tmp_path: Path) -> None:
    import zipfile

    archive = zip_folder(write_image_folder(tmp_path / "d", "split"), tmp_path / "mac.zip", wrap="Photos")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("__MACOSX/Photos/train/cat/._0000.jpg", b"AppleDouble")
        zf.writestr("Photos/.DS_Store", b"Bud1")
    images = load_images(str(archive))
    assert images.classes == sorted(CLASSES)
    assert images.has_test
    assert len(images.labels) == 42


def test_train_folder_alone_draws_a_test_part(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "d", "split", n_train=10, n_test=0)
    for folder in (root / "test").iterdir():
        folder.rmdir()
    (root / "test").rmdir()
    summary = describe_source(str(root))
    assert summary["test_drawn"]
    assert summary["per_class"]["cat"] == {"train": 6, "val": 2, "test": 2}


def test_pil_alone_decodes_the_same_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.data import decode

    datas = [image_bytes(label, index) for label in range(3) for index in range(4)]
    fast = decode.decode_images(datas)
    monkeypatch.setattr(decode, "decode_jpeg", None)  # a torchvision without its deprecated decoders
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(fast, decode.decode_images(datas), strict=True))
