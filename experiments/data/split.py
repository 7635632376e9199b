"""The seeded, stratified split into train, validation and test, and its summary.

Images arrive sorted by their keys (paths relative to the data set's root), so
the split depends only on the seed and the set of images, never on the order a
folder or zip lists them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments.data.errors import DataError
from experiments.data.load import ImageSet, load_images

PARTS = ("train", "val", "test")
"""The split's parts, as `Split` names them."""

TEST_SEED = 0
"""The test part (drawn or limited) never depends on the run's seed, so runs with
different seeds are evaluated on the same images."""


@dataclass
class Split:
    """Indices into an `ImageSet` for each part, each sorted.

    Attributes:
        train: Training images.
        val: Validation images (held out of the train part).
        test: Test images (the source's own, or drawn with `TEST_SEED`).
        test_drawn: Whether the test part was drawn from a source without one.
    """

    train: np.ndarray = field(repr=False)
    val: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    test_drawn: bool = False


def _check_fraction(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise DataError(f"{name} must be a fraction in [0, 1), not {value!r}")


def stratified_split(
    indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of each class, chosen at random with ``seed``.

    Args:
        indices: Candidate indices, sorted.
        labels: Labels of all images (indexed by ``indices``).
        fraction: Share of each class to hold out (rounded per class).
        seed: Seed of the choice; each class draws from its own ``(seed, class)`` stream.

    Returns:
        (kept, held_out), each sorted.
    """
    kept, held = [], []
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        order = np.random.default_rng([seed, int(label)]).permutation(len(members))
        n_held = round(len(members) * fraction)
        held.append(members[order[:n_held]])
        kept.append(members[order[n_held:]])
    empty = np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(kept or [empty])), np.sort(np.concatenate(held or [empty]))


def take_per_class(indices: np.ndarray, labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Keep at most ``limit`` images of each class: a seeded random, deterministic subset.

    Args:
        indices: Indices of one part, sorted.
        labels: Labels of all images.
        limit: Images to keep per class.
        seed: Seed of the choice.

    Returns:
        The kept indices, sorted.
    """
    kept = [
        members[np.random.default_rng([seed, int(label), 1]).permutation(len(members))[:limit]]
        for label in np.unique(labels[indices])
        for members in [indices[labels[indices] == label]]
    ]
    return np.sort(np.concatenate(kept)) if kept else indices


def split_images(
    images: ImageSet,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    limit_per_class: int | None = None,
    test_fraction: float = 0.2,
) -> Split:
    """Split images into train, validation and test parts.

    Args:
        images: The loaded images.
        val_fraction: Share of each class of the train part held out for validation.
        seed: Seed of the validation split.
        limit_per_class: Keep at most this many images per class in every part (quick runs).
        test_fraction: Share of each class drawn as the test part where the source has none.

    Returns:
        The split.
    """
    labels = images.labels
    every = np.arange(len(labels))
    if images.has_test:
        train_part, test = every[~images.is_test], every[images.is_test]
    else:
        train_part, test = stratified_split(every, labels, test_fraction, TEST_SEED)
    train, val = stratified_split(train_part, labels, val_fraction, seed)
    if limit_per_class is not None:
        train = take_per_class(train, labels, limit_per_class, seed)
        val = take_per_class(val, labels, limit_per_class, seed)
        test = take_per_class(test, labels, limit_per_class, TEST_SEED)
    return Split(train, val, test, test_drawn=not images.has_test)


def summarize(images: ImageSet, split: Split) -> dict[str, Any]:
    """Describe a split data set.

    Args:
        images: The loaded images.
        split: Their split.

    Returns:
        A dict with ``source``, ``description``, ``classes``, ``num_train``, ``num_val``,
        ``num_test``, ``per_class`` (class -> {"train", "val", "test"}), ``image_size``
        (decoded (H, W)), ``in_memory``, ``cache_key``, ``cache_path``, ``test_drawn``, ``skipped``.
    """
    counts = {p: np.bincount(images.labels[getattr(split, p)], minlength=len(images.classes)) for p in PARTS}
    per_class = {name: {p: int(c[i]) for p, c in counts.items()} for i, name in enumerate(images.classes)}
    return {
        "source": images.source,
        "description": images.description,
        "classes": list(images.classes),
        "num_train": len(split.train),
        "num_val": len(split.val),
        "num_test": len(split.test),
        "per_class": per_class,
        "image_size": tuple(images.image_size),
        "in_memory": images.in_memory,
        "cache_key": images.cache_key,
        "cache_path": str(images.cache_path) if images.cache_path else None,
        "test_drawn": split.test_drawn,
        "skipped": len(images.skipped),
    }


def describe_source(
    source: str,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    limit_per_class: int | None = None,
    decode_size: int | None = None,
    test_fraction: float = 0.2,
) -> dict[str, Any]:
    """Load (decoding once into the cache), split and summarise a source: what ``zoo data`` prints.

    Args:
        source: A source string (see `load_images`).
        val_fraction: See `split_images`.
        seed: See `split_images`.
        limit_per_class: See `split_images`.
        decode_size: See `load_images`.
        test_fraction: See `split_images`.

    Returns:
        The summary of `summarize`.

    Raises:
        DataError: A fraction or limit is out of range (checked here, where the values come from the
            caller; `split_images` trusts what a validated config gives it).
    """
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if limit_per_class is not None and (not isinstance(limit_per_class, int) or limit_per_class < 1):
        raise DataError(f"limit_per_class must be a positive whole number, not {limit_per_class!r}")
    images = load_images(source, decode_size=decode_size)
    split = split_images(
        images, val_fraction=val_fraction, seed=seed, limit_per_class=limit_per_class, test_fraction=test_fraction
    )
    return summarize(images, split)
