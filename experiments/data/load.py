"""From a source string to labelled uint8 images.

Decoded once into the cache, or (for data too large to cache) listed for per-image decoding in DataLoader workers.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.config.schema import MAX_IMAGE_SIZE
from experiments.data import arrays, cache
from experiments.data.decode import DECODER_VERSION, decode_images, fit_to_size, image_size_of
from experiments.data.errors import DataError, UnreadableImage
from experiments.data.sources import LAYOUT_HELP, FileSource, ImageFile, list_image_files

MAX_CACHE_BYTES = 8 * 2**30
"""Data sets whose decoded size (N x 3 x H x W bytes) is above this are not cached:
`in_memory=None` then decodes per image in DataLoader workers instead."""

NAMED_SOURCES = ("cifar10", "digits")

DECODE_CHUNK = 512

log = logging.getLogger(__name__)


@dataclass
class ImageSet:
    """Labelled images from one source, before the split.

    Attributes:
        source: The source string as given.
        description: Where the images come from, in words.
        classes: Sorted class names.
        labels: int64 (N,).
        is_test: bool (N,); all False where a test part is drawn.
        has_test: Whether the source has its own test part.
        image_size: (height, width) of every image.
        images: uint8 (N, 3, H, W) memory map, or None for per-image data.
        files: For per-image data, the source's files (else None).
        cache_path: The cache entry's folder (None for per-image data).
        cache_key: The content key.
        skipped: Keys of unreadable images left out.
    """

    source: str
    description: str
    classes: list[str]
    labels: np.ndarray = field(repr=False)
    is_test: np.ndarray = field(repr=False)
    has_test: bool
    image_size: tuple[int, int]
    images: np.ndarray | None = field(default=None, repr=False)
    files: FileSource | None = field(default=None, repr=False)
    cache_path: Path | None = None
    cache_key: str = ""
    skipped: list[str] = field(default_factory=list)

    @property
    def in_memory(self) -> bool:
        """Whether the images are decoded in the (memory-mapped) cache."""
        return self.images is not None


def _resolve(source: str) -> FileSource | arrays.ArraySource:
    """Turn a source string into a listed file source or an array source."""
    if source == "digits":
        return arrays.load_digits()
    if source == "cifar10":
        return arrays.load_cifar_batches(arrays.download_cifar10(cache.cache_dir() / "cifar10"))
    path = Path(source).expanduser()
    if path.is_dir() and arrays.cifar_batches_dir(path):
        return arrays.load_cifar_batches(path)
    if not path.exists():
        raise DataError(
            f"data path {source!r} does not exist (named sources: {', '.join(NAMED_SOURCES)}); "
            f"{LAYOUT_HELP} (a folder or a .zip of one), or cifar-10-batches-py"
        )
    return list_image_files(path)


def _warn_skipped(skipped: list[str], description: str) -> None:
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} unreadable image(s) in {description}: {shown}", stacklevel=3)


def _decode_files(files: FileSource, size: tuple[int, int] | None, folder: Path) -> None:
    """Decode every file into ``folder/images.npy``, unreadable ones left out."""
    images: np.memmap[Any, np.dtype[np.uint8]] | None = None  # sized at the first readable image
    labels: list[int] = []
    is_test: list[bool] = []
    skipped: list[str] = []
    for start in range(0, len(files.files), DECODE_CHUNK):
        chunk: list[ImageFile] = []
        datas: list[bytes] = []
        for item in files.files[start : start + DECODE_CHUNK]:
            try:
                datas.append(files.read(item.location))
                chunk.append(item)
            except UnreadableImage:  # larger than the read bound
                skipped.append(item.key)
        for item, image in zip(chunk, decode_images(datas), strict=True):
            if image is None:
                skipped.append(item.key)
                continue
            if size is None:  # the first readable image's size
                size = (int(image.shape[-2]), int(image.shape[-1]))
            if images is None:
                shape = (len(files.files), 3, *size)
                images = np.lib.format.open_memmap(folder / "images.npy", "w+", np.uint8, shape)
            images[len(labels)] = fit_to_size(image, size).numpy()
            labels.append(item.label)
            is_test.append(item.is_test)
    if images is None or size is None:  # both are set at the first readable image
        raise DataError(f"no readable image in {files.path}; {LAYOUT_HELP}")
    if skipped:  # the file was sized for every image: rewrite it without the gaps
        kept = np.array(images[: len(labels)])
        del images
        np.save(folder / "images.npy", kept)
    else:
        images.flush()
        del images
    cache.write_arrays(folder, np.array(labels), np.array(is_test), {"skipped": skipped, "image_size": list(size)})


def _store_arrays(source: arrays.ArraySource, size: tuple[int, int] | None, folder: Path) -> None:
    images = source.images
    if size is not None and tuple(images.shape[-2:]) != size:
        needed = len(images) * 3 * size[0] * size[1]
        if needed > MAX_CACHE_BYTES:  # refused before the resize allocates it
            raise DataError(
                f"decoding {len(images):,} images of {source.description} at {size[0]}x{size[1]} takes "
                f"{needed / 2**30:,.1f} GiB, more than the cache's {MAX_CACHE_BYTES // 2**30} GiB; lower decode_size"
            )
        images = np.concatenate(
            [fit_to_size(torch.from_numpy(images[i : i + 4096]), size).numpy() for i in range(0, len(images), 4096)]
        )
    np.save(folder / "images.npy", images)
    cache.write_arrays(folder, source.labels, source.is_test, {"skipped": [], "image_size": list(images.shape[-2:])})


def _first_size(files: FileSource) -> tuple[int, int]:
    for item in files.files:
        with contextlib.suppress(UnreadableImage):
            return image_size_of(files.read(item.location))
    raise DataError(f"no readable image in {files.path}; {LAYOUT_HELP}")


def load_images(source: str, *, decode_size: int | None = None, in_memory: bool | None = None) -> ImageSet:
    """Load a source's labelled images, decoding them once into the cache.

    Args:
        source: A path (image folder or zip, ``cifar-10-batches-py``), ``cifar10`` or ``digits``.
        decode_size: Decode every image to ``decode_size`` x ``decode_size`` (resize to cover,
            centre crop). ``None`` keeps the images' size, and decodes images of mixed sizes to the
            size of the first image (in sorted key order).
        in_memory: True to decode into the cache; False to decode per image while loading (for
            data too large to cache); None decides by `MAX_CACHE_BYTES`.

    Returns:
        The images, labels and class names.

    Raises:
        DataError: The source is missing, unreadable or in no known layout.
    """
    # Checked again here although a config's decode_size is validated: load_images is also the
    # library's entry point (notebooks, describe_source), where no config stands before it.
    if decode_size is not None and (
        isinstance(decode_size, bool) or not isinstance(decode_size, int) or not 1 <= decode_size <= MAX_IMAGE_SIZE
    ):
        raise DataError(f"decode_size must be a whole number of pixels from 1 to {MAX_IMAGE_SIZE}, not {decode_size!r}")
    resolved = _resolve(source)
    size = (decode_size, decode_size) if decode_size else None
    key = cache.cache_key([*resolved.signature, f"decoder {DECODER_VERSION}", f"size {size}"])
    has_test = resolved.layout == "split"
    cached = (cache.cache_dir() / "data" / key / "meta.json").is_file()
    if isinstance(resolved, FileSource):
        if in_memory is False or (in_memory is None and not cached):
            target = size or _first_size(resolved)
            estimate = len(resolved.files) * 3 * target[0] * target[1]
            if in_memory is False or estimate > MAX_CACHE_BYTES:
                return ImageSet(
                    source, resolved.description, resolved.classes,
                    np.array([f.label for f in resolved.files], dtype=np.int64),
                    np.array([f.is_test for f in resolved.files]), has_test, target,
                    files=resolved, cache_key=key,
                )  # fmt: skip
        build = lambda folder: _decode_files(resolved, size, folder)  # noqa: E731
        if not cached:
            log.info("decoding %d images from %s once, into the cache", len(resolved.files), resolved.path)
    else:
        build = lambda folder: _store_arrays(resolved, size, folder)  # noqa: E731
    entry = cache.load_or_build(key, build)
    skipped = entry.meta.get("skipped", [])
    _warn_skipped(skipped, resolved.description)
    return ImageSet(
        source, resolved.description, resolved.classes, entry.labels, entry.is_test, has_test,
        tuple(entry.images.shape[-2:]), images=entry.images, cache_path=entry.path, cache_key=key, skipped=skipped,
    )  # fmt: skip
