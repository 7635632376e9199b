"""Image data: sources, the seeded split, the decoded-once cache and `ImageDataModule`.

A source is one string: a path to a ``CIFAR-10-images-master`` folder or
``.zip``, a ``cifar-10-batches-py`` folder, any image folder (or zip of one),
the word ``cifar10`` (torchvision's download) or ``digits`` (scikit-learn's
bundled 8x8 digits, offline).

`ImageDataModule` imports Lightning, so it is loaded on first use: the
``zoo data`` command and `experiments.transforms` need only the light parts.
"""

from __future__ import annotations

from typing import Any

from experiments.data.errors import DataError

__all__ = ["DataError", "ImageDataModule", "describe_source", "load_images", "split_images"]


def __getattr__(name: str) -> Any:
    # Lazy: importing Lightning costs seconds that `zoo data` does not need.
    if name == "ImageDataModule":
        from experiments.data.module import ImageDataModule

        return ImageDataModule
    if name == "load_images":
        from experiments.data.load import load_images

        return load_images
    if name in ("split_images", "describe_source"):
        from experiments.data import split

        return getattr(split, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
