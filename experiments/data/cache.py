"""The on-disk cache of decoded images: one folder per content key.

A cache entry is a folder ``<cache dir>/data/<key>/`` holding ``images.npy``
(uint8 N x 3 x H x W), ``labels.npy``, ``is_test.npy`` and ``meta.json``. It is
built in a temporary folder and renamed into place under a file lock, so a
reader (another run, another rank) sees either no entry or a whole one; readers
of a finished entry take no lock. Images are read back as a memory map, so
processes on one machine share one copy in the page cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
from filelock import FileLock

from experiments.data.errors import DataError


def cache_dir() -> Path:
    """The zoo's cache folder: ``$ZOO_CACHE_DIR``, else the user's cache folder.

    Returns:
        The folder (not created).
    """
    env = os.environ.get("ZOO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("zoo"))


def cache_key(lines: Iterable[str]) -> str:
    """Hash the lines that identify a source's content and decoding.

    Args:
        lines: Signature lines (file keys with sizes and CRCs or mtimes, decoder version, size).

    Returns:
        A 24-character hex key.
    """
    text = "".join(f"{line}\n" for line in lines)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


@dataclass
class CachedImages:
    """A finished cache entry.

    Attributes:
        path: Its folder.
        images: uint8 (N, 3, H, W), memory-mapped read-only.
        labels: int64 (N,).
        is_test: bool (N,).
        meta: ``meta.json``: classes, skipped files, source description, decoder version.
    """

    path: Path
    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    is_test: np.ndarray = field(repr=False)
    meta: dict[str, Any]


def read_entry(path: Path) -> CachedImages:
    """Open a finished cache entry.

    Args:
        path: The entry's folder.

    Returns:
        The entry, images memory-mapped.
    """
    with open(path / "meta.json", encoding="utf-8") as handle:
        meta = json.load(handle)
    images = np.load(path / "images.npy", mmap_mode="r")
    return CachedImages(path, images, np.load(path / "labels.npy"), np.load(path / "is_test.npy"), meta)


def write_arrays(folder: Path, labels: np.ndarray, is_test: np.ndarray, meta: dict[str, Any]) -> None:
    """Write the small arrays and ``meta.json`` of an entry being built.

    Args:
        folder: The temporary entry folder (``images.npy`` is written by the caller).
        labels: int64 (N,).
        is_test: bool (N,).
        meta: JSON-serialisable description.
    """
    np.save(folder / "labels.npy", np.asarray(labels, dtype=np.int64))
    np.save(folder / "is_test.npy", np.asarray(is_test, dtype=bool))
    with open(folder / "meta.json", "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=1)


def load_or_build(key: str, build: Callable[[Path], None]) -> CachedImages:
    """Return the cache entry ``key``, building it first if it is missing.

    Args:
        key: The content key.
        build: Writes a whole entry into the (temporary) folder it is given.

    Returns:
        The finished entry.

    Raises:
        DataError: The cache folder cannot be written.
    """
    root = cache_dir() / "data"
    final = root / key
    if (final / "meta.json").is_file():
        return read_entry(final)  # finished entries are immutable: no lock needed
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f"{key}.lock")):
            if not (final / "meta.json").is_file():  # another process may have built it meanwhile
                temporary = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=root))
                try:
                    build(temporary)
                    if final.exists():  # an entry someone damaged (meta.json deleted): replace it
                        shutil.rmtree(final)
                    os.replace(temporary, final)
                finally:
                    shutil.rmtree(temporary, ignore_errors=True)
    except PermissionError as exc:
        raise DataError(
            f"cannot write the data cache in {root} ({exc}); set ZOO_CACHE_DIR to a writable folder"
        ) from None
    return read_entry(final)
