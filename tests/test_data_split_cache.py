"""The seeded stratified split and the decoded-once cache, on small generated data."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from experiments.data import load as load_module
from experiments.data.cache import cache_dir
from experiments.data.load import load_images
from experiments.data.split import split_images, stratified_split, take_per_class

from image_factory import image_bytes, isolated_cache, write_image_folder, zip_folder

pytestmark = pytest.mark.usefixtures("isolated_cache")
_ = isolated_cache


def keys_of(images, indices) -> list[str]:
    """Which files the indices point at: class name and the pixels' green level (the file number)."""
    return sorted(f"{images.classes[images.labels[i]]}:{int(images.images[i, 1].mean())}" for i in indices)


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = load_module.decode_images

    def counting(datas):
        calls.append(len(datas))
        return original(datas)

    monkeypatch.setattr(load_module, "decode_images", counting)
    return calls


def test_split_is_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(4), 50)
    indices = np.arange(len(labels))
    kept, held = stratified_split(indices, labels, 0.2, seed=0)
    assert np.bincount(labels[held]).tolist() == [10] * 4
    assert np.bincount(labels[kept]).tolist() == [40] * 4
    assert not set(kept) & set(held)
    assert len(kept) + len(held) == 200
    again, _ = stratified_split(indices, labels, 0.2, seed=0)
    other, _ = stratified_split(indices, labels, 0.2, seed=1)
    assert np.array_equal(kept, again)
    assert not np.array_equal(kept, other)


def test_limit_per_class_is_a_deterministic_subset() -> None:
    labels = np.repeat(np.arange(3), 30)
    indices = np.arange(10, 90)
    subset = take_per_class(indices, labels, 5, seed=3)
    assert np.bincount(labels[subset]).tolist() == [5, 5, 5]
    assert set(subset) <= set(indices)
    assert np.array_equal(subset, take_per_class(indices, labels, 5, seed=3))


def test_limit_per_class_applies_to_every_part(tmp_path: Path) -> None:
    images = load_images(str(write_image_folder(tmp_path / "d", "split", n_train=20, n_test=8)))
    split = split_images(images, limit_per_class=3)
    for part in (split.train, split.val, split.test):
        assert np.bincount(images.labels[part]).tolist() == [3, 3, 3]
    assert set(split.val) <= set(split_images(images).val)


def test_zip_and_folder_give_the_same_split(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "d", "split", n_train=20, n_test=5)
    archive = zip_folder(folder, tmp_path / "d.zip", wrap="Images-master", shuffle=True)
    from_folder, from_zip = load_images(str(folder)), load_images(str(archive))
    assert from_folder.cache_key != from_zip.cache_key  # two sources, two cache entries
    for seed in (0, 5):
        a, b = split_images(from_folder, seed=seed), split_images(from_zip, seed=seed)
        for part in ("train", "val", "test"):
            assert keys_of(from_folder, getattr(a, part)) == keys_of(from_zip, getattr(b, part))
    assert keys_of(from_folder, split_images(from_folder, seed=0).val) != keys_of(
        from_folder, split_images(from_folder, seed=5).val
    )


def test_second_load_reads_the_cache_without_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_image_folder(tmp_path / "d", "split")
    calls = count_decodes(monkeypatch)
    first = load_images(str(folder))
    assert sum(calls) == 42
    second = load_images(str(folder))
    assert sum(calls) == 42  # no decoding the second time
    assert isinstance(second.images, np.memmap)
    assert not second.images.flags.writeable
    assert second.cache_path == first.cache_path
    assert second.cache_path.parent == cache_dir() / "data"
    assert np.array_equal(first.images, second.images)


@pytest.mark.parametrize("as_zip", [False, True])
def test_changing_one_image_decodes_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_zip: bool) -> None:
    folder = write_image_folder(tmp_path / "d", "split", n_train=4, n_test=2)
    source = lambda: str(zip_folder(folder, tmp_path / "d.zip")) if as_zip else str(folder)  # noqa: E731
    before = load_images(source())
    target = folder / "train" / "dog" / "0002.jpg"
    replacement = image_bytes(2, 99)  # a frog-red image: other bytes, another size
    assert len(replacement) != target.stat().st_size
    target.write_bytes(replacement)
    calls = count_decodes(monkeypatch)
    after = load_images(source())
    assert sum(calls) == 18
    assert after.cache_key != before.cache_key
    keys = sorted(f"{p}/{c}/{i:04d}" for p, n in (("test", 2), ("train", 4)) for c in after.classes for i in range(n))
    position = keys.index("train/dog/0002")
    assert after.images[position, 0].mean() > before.images[position, 0].mean() + 50


def test_concurrent_loads_build_the_cache_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_image_folder(tmp_path / "d", "classes", n_train=30)
    calls = count_decodes(monkeypatch)
    results, errors = [], []

    def load() -> None:
        try:
            results.append(load_images(str(folder)))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 4
    assert sum(calls) == 90  # one build; the other threads waited on the lock and read it
    entries = os.listdir(cache_dir() / "data")
    assert [e for e in entries if ".tmp-" in e] == []  # no temporary folder left behind
    assert all(np.array_equal(results[0].images, r.images) for r in results[1:])


def test_failed_build_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_image_folder(tmp_path / "d", "classes", n_train=3)

    def broken(datas):
        raise KeyboardInterrupt

    monkeypatch.setattr(load_module, "decode_images", broken)
    with pytest.raises(KeyboardInterrupt):
        load_images(str(folder))
    assert [e for e in os.listdir(cache_dir() / "data") if not e.endswith(".lock")] == []
    monkeypatch.undo()
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache_dir()))
    assert len(load_images(str(folder)).labels) == 9


def test_per_image_path_skips_the_cache(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "d", "split", n_train=4, n_test=2)
    images = load_images(str(folder), in_memory=False)
    assert not images.in_memory
    assert images.images is None
    assert images.cache_path is None
    assert images.image_size == (16, 16)
    assert len(images.files.files) == 18
    assert not (cache_dir() / "data").exists()


def test_large_data_sets_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_image_folder(tmp_path / "d", "classes", n_train=4)
    monkeypatch.setattr(load_module, "MAX_CACHE_BYTES", 1000)
    assert not load_images(str(folder)).in_memory
    assert load_images(str(folder), in_memory=True).in_memory
