"""Image data: sources, the seeded split, the decoded-once cache, `Preprocess` and `ImageDataModule`.

A source is one string: a path to a ``CIFAR-10-images-master`` folder or
``.zip``, a ``cifar-10-batches-py`` folder, any image folder (or zip of one),
the word ``cifar10`` (torchvision's download) or ``digits`` (scikit-learn's
bundled 8x8 digits, offline).

- `sources`: what a path holds (class folders, train/test parts); `arrays`: array sources.
- `decode`: bytes to uint8 images; `cache`: the decoded-once, content-keyed cache.
- `load`: a source decoded into the cache; `split`: the seeded, stratified split.
- `datasets`: the cached and per-file datasets, the seeded sampler.
- `transforms`: `Preprocess`, where pixels become model input, and the presets.
- `datamodule`: `ImageDataModule`, uint8 batches transformed on the device.
"""

from __future__ import annotations

import importlib
from typing import Any

from experiments.data.errors import DataError

_EXPORTS = {"ImageDataModule": "datamodule", "load_images": "load", "split_images": "split", "describe_source": "split"}

__all__ = ["DataError", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    # Lazy: importing Lightning costs seconds that `zoo data` does not need.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"experiments.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
