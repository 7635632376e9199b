"""What a run's data sets are, for the record: a name, a source, a size, and a digest of their content.

The digest of a part (train, validation or test) covers its decoded pixels and its
labels, in order: it changes when an image, a label or the split changes, and it is
the same on any machine for the same data (file names, times and paths play no
part). Data read per image (too large for the decoded cache) is not decoded again
for this: its digest covers the files' paths inside the source, with the labels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.data.arrays import CIFAR10_URL
from experiments.data.load import ImageSet
from experiments.data.split import Split

PARTS = (("train", "train"), ("val", "validation"), ("test", "test"))
"""The split's parts and the names MLflow gives their contexts."""

CHUNK = 4096
"""Images hashed at a time (the memory map is read in pieces)."""


@dataclass(frozen=True)
class PartDescription:
    """One part of a run's data.

    Attributes:
        name: The data set's name (``CIFAR-10-images-master``, ``digits``).
        source: Where it came from (a path, ``sklearn.datasets.load_digits``, a URL).
        source_type: ``local``, ``code`` or ``http``.
        context: ``train``, ``validation`` or ``test``.
        digest: 16 hex digits of its content (see the module's docstring).
        num_images: Its images.
        profile: JSON: images, classes, image size, where the digest comes from.
    """

    name: str
    source: str
    source_type: str
    context: str
    digest: str
    num_images: int
    profile: str


def name_and_source(source: str) -> tuple[str, str, str]:
    """A data source's name, where it comes from, and what kind of place that is.

    Args:
        source: The source string (``--data``).

    Returns:
        ``(name, source, source_type)``.
    """
    if source == "digits":
        return "digits", "sklearn.datasets.load_digits", "code"
    if source == "cifar10":
        return "cifar10", CIFAR10_URL, "http"
    path = Path(source).expanduser().resolve()
    name = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.name
    return name, str(path), "local"


def part_digest(images: ImageSet, indices: np.ndarray) -> str:
    """The digest of one part: its labels and decoded pixels in order (or its files' paths).

    Args:
        images: The source's images.
        indices: The part's indices into them.

    Returns:
        16 hex digits.
    """
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images.labels[indices]).tobytes())
    if images.images is not None:
        for start in range(0, len(indices), CHUNK):
            digest.update(np.ascontiguousarray(images.images[indices[start : start + CHUNK]]).tobytes())
    elif images.files is not None:
        for index in indices:
            item = images.files.files[int(index)]
            digest.update(f"{item.key}\0".encode())
    return digest.hexdigest()[:16]


def describe_parts(images: ImageSet, split: Split) -> list[PartDescription]:
    """The train, validation and test parts of a run's data, each with its digest.

    Args:
        images: The source's images.
        split: The run's split of them.

    Returns:
        One description per part that holds images.
    """
    name, source, source_type = name_and_source(images.source)
    height, width = images.image_size
    found = []
    for attribute, context in PARTS:
        indices = getattr(split, attribute)
        if not len(indices):
            continue
        profile = json.dumps(
            {
                "num_images": len(indices),
                "num_classes": len(images.classes),
                "image_size": f"{height}x{width}",
                "digest_of": "pixels and labels" if images.images is not None else "files and labels",
            }
        )
        found.append(
            PartDescription(name, source, source_type, context, part_digest(images, indices), len(indices), profile)
        )
    return found
