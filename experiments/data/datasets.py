"""Datasets and the seeded sampler behind `ImageDataModule`'s loaders.

Both datasets yield ``(uint8 (3, H, W), label)`` items and batch to
``(uint8 (N, 3, H, W), int64 (N,))``. `CachedImageDataset` serves a whole batch
with one indexing operation on the memory-mapped cache (``__getitems__``); no
per-image Python work. `FileImageDataset` decodes image by image, in DataLoader
workers, for data too large to cache.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate

from experiments.data.decode import decode_image, fit_to_size
from experiments.data.errors import UnreadableImage
from experiments.data.sources import FileSource


class CachedImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images of one part, read from the memory-mapped cache.

    Args:
        images_path: The cache's ``images.npy`` (opened lazily in each process).
        labels: Labels of all cached images.
        indices: The part's indices into the cache.
    """

    def __init__(self, images_path: Path, labels: np.ndarray, indices: np.ndarray) -> None:
        self.images_path = Path(images_path)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)[self.indices])
        self._images: np.ndarray | None = None

    @property
    def images(self) -> np.ndarray:
        """The cache's images, memory-mapped."""
        if self._images is None:
            self._images = np.load(self.images_path, mmap_mode="r")
        return self._images

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(np.array(self.images[self.indices[index]])), int(self.labels[index])

    def __getitems__(self, positions: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch with one read: the DataLoader calls this instead of ``__getitem__``.

        Args:
            positions: Positions in this part.

        Returns:
            (uint8 (N, 3, H, W), int64 (N,)).
        """
        rows = np.asarray(positions, dtype=np.int64)
        return torch.from_numpy(self.images[self.indices[rows]]), self.labels[rows]

    def __getstate__(self) -> dict[str, Any]:
        # Workers reopen the memory map rather than receive a pickled copy of the images.
        return {**self.__dict__, "_images": None}


def keep_batch(
    batch: tuple[torch.Tensor, torch.Tensor] | list[tuple[torch.Tensor, int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The collate function for `CachedImageDataset`: its ``__getitems__`` already made the batch.

    Args:
        batch: (images, labels), or a plain list of items (from a wrapped or custom sampler).

    Returns:
        The same batch.
    """
    if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[1], torch.Tensor):
        return batch
    collated: tuple[torch.Tensor, torch.Tensor] = default_collate(batch)  # a plain list of items
    return collated


class FileImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images of one part, decoded from their files on every access (for data too large to cache).

    An unreadable image is replaced by the next readable one and reported in a warning,
    so a corrupt file never stops an epoch.

    Args:
        source: The listed files.
        indices: The part's indices into ``source.files``.
        image_size: (height, width) every image is decoded to.
    """

    def __init__(self, source: FileSource, indices: np.ndarray, image_size: tuple[int, int]) -> None:
        self.files = [source.files[i] for i in np.asarray(indices)]
        self.source = source
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for attempt in range(len(self.files)):
            item = self.files[(index + attempt) % len(self.files)]
            try:
                image = decode_image(self.source.read(item.location))
            except UnreadableImage as exc:
                warnings.warn(f"skipped unreadable image {item.key} ({exc})", stacklevel=2)
                continue
            return fit_to_size(image, self.image_size), item.label
        raise UnreadableImage("no readable image in this part")


class SeededSampler(Sampler[int]):
    """Indices in an order fixed by ``(seed, epoch)``: shuffled for training, in order otherwise.

    Lightning calls `set_epoch` at the start of every epoch; under distributed training
    its sampler wrapper forwards the call and splits this order between ranks.

    Args:
        length: Number of items.
        seed: Seed of the shuffle.
        shuffle: Whether to shuffle.
        repeats: Repeated augmentation (Hoffer et al. 2020, timm's ``RepeatAugSampler``): each
            shuffled index ``repeats`` times in a row, the epoch kept at ``length`` (so it sees
            a ``1 / repeats`` share of the items, each copy augmented its own way).
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, repeats: int = 1) -> None:
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.repeats = repeats
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order `__iter__` yields.

        Args:
            epoch: The epoch number.
        """
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.length))
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
        if self.repeats > 1:
            order = np.repeat(order[: -(-self.length // self.repeats)], self.repeats)[: self.length]
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.length
