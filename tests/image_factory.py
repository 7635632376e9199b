"""Small synthetic image data sets for the data tests: both layouts, as folders and zips.

Every image of class ``i`` has a red channel near ``red_of(i)``, so a test can
check that labels still match pixels after splitting, caching and loading.
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLASSES = ("cat", "dog", "frog")


def red_of(label: int) -> int:
    """The red level of every image of class ``label``."""
    return 40 + 70 * label


def image_bytes(
    label: int, index: int, size: tuple[int, int] = (16, 16), fmt: str = "JPEG", mode: str = "RGB"
) -> bytes:
    """Encode one synthetic image.

    Args:
        label: Class index (sets the red channel).
        index: Image number (varies the other channels).
        size: (height, width).
        fmt: PIL format name (JPEG, PNG, BMP, GIF, ...).
        mode: PIL mode to save in (RGB, L, RGBA, P, CMYK).

    Returns:
        The file's bytes.
    """
    rng = np.random.default_rng(1000 * label + index)
    pixels = np.empty((*size, 3), dtype=np.uint8)
    pixels[..., 0] = red_of(label)
    pixels[..., 1] = (index * 37) % 200
    pixels[..., 2] = rng.integers(0, 200, size, dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def write_image_folder(
    root: Path,
    layout: str = "split",
    classes: Sequence[str] = CLASSES,
    n_train: int = 10,
    n_test: int = 4,
    size: tuple[int, int] = (16, 16),
    ext: str = "jpg",
) -> Path:
    """Write a synthetic image folder.

    Args:
        root: Folder to create.
        layout: ``"split"`` (train/<class>, test/<class>) or ``"classes"`` (<class>/ with n_train images).
        classes: Class folder names.
        n_train: Images per class in train (or per class folder).
        n_test: Images per class in test.
        size: Image (height, width).
        ext: ``jpg`` or ``png``.

    Returns:
        ``root``.
    """
    fmt = {"jpg": "JPEG", "png": "PNG"}[ext]
    parts = {"train/": n_train, "test/": n_test} if layout == "split" else {"": n_train}
    for prefix, count in parts.items():
        for label, name in enumerate(classes):
            folder = root / f"{prefix}{name}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                (folder / f"{index:04d}.{ext}").write_bytes(image_bytes(label, index, size, fmt))
    return root


def zip_folder(folder: Path, zip_path: Path, wrap: str | None = None, shuffle: bool = True) -> Path:
    """Zip a folder (stored, like the CIFAR archive), members in a shuffled order.

    Args:
        folder: The folder to pack.
        zip_path: The zip to write.
        wrap: A top-level folder name to put everything under (like ``CIFAR-10-images-master``).
        shuffle: List members in a random order, to show the split does not depend on it.

    Returns:
        ``zip_path``.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if shuffle:
        random.Random(7).shuffle(files)
    prefix = f"{wrap}/" if wrap else ""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for path in files:
            archive.write(path, prefix + path.relative_to(folder).as_posix())
    return zip_path


def write_cifar_batches(root: Path, per_batch: int = 6, classes: Sequence[str] = ("b_cls", "a_cls", "c_cls")) -> Path:
    """Write a tiny ``cifar-10-batches-py`` folder in CIFAR's own pickle format (protocol 2, bytes keys).

    Args:
        root: Folder that will hold ``cifar-10-batches-py``.
        per_batch: Images per batch file.
        classes: Label names in CIFAR's (unsorted) order.

    Returns:
        The ``cifar-10-batches-py`` folder.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": list(classes), b"num_vis": 3072}, handle, protocol=2)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for number, name in enumerate(names):
        labels = [(number + i) % len(classes) for i in range(per_batch)]
        data = np.zeros((per_batch, 3, 32, 32), dtype=np.uint8)
        data[:, 0] = np.array([red_of(label) for label in labels], dtype=np.uint8)[:, None, None]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data.reshape(per_batch, 3072)}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    return folder


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``$ZOO_CACHE_DIR`` at a fresh folder for one test."""
    cache = tmp_path / "zoo-cache"
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache))
    return cache
