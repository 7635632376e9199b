"""Sources that are arrays already.

CIFAR-10's ``cifar-10-batches-py`` format, the word ``cifar10`` (torchvision's download of it)
and scikit-learn's ``digits``.
"""

from __future__ import annotations

import codecs
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np
from torchvision.datasets import utils as tv_utils

from experiments.data.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


@dataclass
class ArraySource:
    """Decoded images held as arrays.

    Attributes:
        description: Where they come from, in words.
        classes: Sorted class names (``labels`` index into them).
        images: uint8 (N, 3, H, W).
        labels: int64 (N,).
        is_test: bool (N,); all False when a test part is to be drawn.
        signature: Lines that identify the content cheaply.
        layout: ``"split"`` when a test part is given, else ``"classes"``.
    """

    description: str
    classes: list[str]
    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    is_test: np.ndarray = field(repr=False)
    signature: list[str] = field(repr=False)
    layout: str = "split"


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's dicts of numpy arrays and refuses anything else (no code execution)."""

    def find_class(self, module: str, name: str) -> object:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return np.ndarray.__reduce__(np.empty(0))[0]  # numpy's own _reconstruct, wherever it lives
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return np.ndarray.__reduce_ex__(np.empty(0), 5)[0]  # numpy's _frombuffer (protocol 5 pickles)
        if (module, name) == ("_codecs", "encode"):
            return codecs.encode  # how protocol-2 pickles from Python 3 spell bytes
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def _load_batch(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataError(f"cannot read CIFAR-10 batch {path} ({exc}); download cifar-10-python.tar.gz again") from None
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def cifar_batches_dir(path: Path) -> Path | None:
    """The ``cifar-10-batches-py`` folder that ``path`` is or holds.

    Args:
        path: A folder.

    Returns:
        The folder with the batch files, or None if they are not there.
    """
    for candidate in (path, path / "cifar-10-batches-py"):
        if (candidate / "batches.meta").is_file() and (candidate / "test_batch").is_file():
            return candidate
    return None


def load_cifar_batches(path: str | os.PathLike[str]) -> ArraySource:
    """Read CIFAR-10 in its Python format.

    Args:
        path: The ``cifar-10-batches-py`` folder, or the folder that holds it.

    Returns:
        50,000 train and 10,000 test images (fewer for partial copies).

    Raises:
        DataError: A batch file is missing or unreadable.
    """
    folder = cifar_batches_dir(Path(path))
    if folder is None:
        raise DataError(f"{path} holds no cifar-10-batches-py (batches.meta, data_batch_1..5, test_batch)")
    classes = list(_load_batch(folder / "batches.meta")["label_names"])
    names = [n for n in CIFAR10_BATCHES if (folder / n).is_file()]
    if names == ["test_batch"]:
        raise DataError(f"{folder} has no data_batch_* files; download cifar-10-python.tar.gz again")
    batches = [_load_batch(folder / n) for n in names]
    images = np.concatenate([np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for b in batches])
    labels = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
    is_test = np.concatenate(
        [np.full(len(b["labels"]), n == "test_batch") for n, b in zip(names, batches, strict=True)]
    )
    remap = np.argsort(np.argsort(classes, kind="stable"))  # each label's rank among the sorted class names
    signature = ["cifar-batches"] + [
        f"{n} {(folder / n).stat().st_size} {(folder / n).stat().st_mtime_ns}" for n in names
    ]
    return ArraySource(f"cifar-10-batches-py {folder}", sorted(classes), images, remap[labels], is_test, signature)


def download_cifar10(root: Path) -> Path:
    """Find or download CIFAR-10's Python format under ``root``.

    Args:
        root: Folder for the download (in the zoo's cache).

    Returns:
        The ``cifar-10-batches-py`` folder.

    Raises:
        DataError: It is not there and cannot be downloaded (offline).
    """
    folder = cifar_batches_dir(root)
    if folder is not None:
        return folder
    try:
        tv_utils.download_and_extract_archive(
            CIFAR10_URL, str(root), filename="cifar-10-python.tar.gz", md5=CIFAR10_MD5
        )
    except (URLError, OSError, RuntimeError) as exc:
        raise DataError(
            f"cannot download CIFAR-10 ({type(exc).__name__}: {exc}); offline? "
            "pass --data PATH to a local copy (CIFAR-10-images-master.zip, its folder, or cifar-10-batches-py)"
        ) from None
    return root / "cifar-10-batches-py"


def load_digits() -> ArraySource:
    """scikit-learn's bundled handwritten digits: 1,797 images, 8x8, 10 classes, offline.

    Returns:
        The digits as 3-channel uint8 images, all in the train part (a test part is drawn).
    """
    # deferred: scikit-learn costs a second; only digits need it
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    gray = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    images = np.ascontiguousarray(np.repeat(gray[:, None], 3, axis=1))
    labels, is_test = digits.target.astype(np.int64), np.zeros(len(digits.target), dtype=bool)
    classes, description = [str(i) for i in range(10)], "scikit-learn digits (8x8, offline)"
    return ArraySource(description, classes, images, labels, is_test, ["digits sklearn-1797"], layout="classes")
