"""`ImageDataModule`, `Preprocess` and the presets, end to end on tiny data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from timm.data.mixup import mixup_target
from torchvision.transforms import v2

from experiments.data.datamodule import ImageDataModule
from experiments.data.datasets import SeededSampler
from experiments.data.errors import DataError
from experiments.data.transforms import (
    CIFAR10_MEAN,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PRESETS,
    STREAMS,
    Mixing,
    Preprocess,
    augment_batch,
    augmentation_generator,
    auto_augment_batch,
    erase_batch,
    resolve_preset,
)

from image_factory import isolated_cache, write_image_folder, zip_folder

pytestmark = pytest.mark.usefixtures("isolated_cache")
_ = isolated_cache


def fake_trainer(training: bool, epoch: int = 0, step: int = 0) -> SimpleNamespace:
    """What `on_after_batch_transfer` reads from a Trainer (``step``: the batch's index in the epoch)."""
    progress = SimpleNamespace(current=SimpleNamespace(ready=step))
    loop = SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress))
    return SimpleNamespace(training=training, current_epoch=epoch, fit_loop=loop)


def transfer(dm: ImageDataModule, batch, **trainer) -> tuple[torch.Tensor, torch.Tensor]:
    dm.trainer = fake_trainer(**trainer) if trainer else None
    return dm.on_after_batch_transfer(batch, 0)


def test_loaders_yield_uint8_and_the_hook_gives_normalised_float_at_the_preset_size() -> None:
    dm = ImageDataModule("digits", batch_size=32)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.classes == [str(i) for i in range(10)]
    assert dm.num_classes == 10
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8
    assert images.shape == (32, 3, 8, 8)
    assert labels.dtype == torch.int64
    assert labels.shape == (32,)
    x, y = transfer(dm, (images, labels))
    assert x.dtype == torch.float32
    assert x.shape == (32, 3, 224, 224)
    assert torch.equal(y, labels)
    expected = (images[:, :, :1, :1].float() / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD
    ).view(1, 3, 1, 1)
    assert torch.allclose(x[:, :, :1, :1], expected, atol=1e-5)  # upscaling keeps the corner pixel


def test_every_part_has_its_images_once() -> None:
    dm = ImageDataModule("digits", batch_size=100, preset="cifar")
    summary = dm.summary()
    seen = {}
    for part, loader in (
        ("train", dm.train_dataloader()),
        ("val", dm.val_dataloader()),
        ("test", dm.test_dataloader()),
    ):
        seen[part] = sum(len(labels) for _, labels in loader)
    assert seen == {"train": summary["num_train"], "val": summary["num_val"], "test": summary["num_test"]}
    assert sum(seen.values()) == 1797
    assert summary["preset"] == "cifar"
    assert summary["input_size"] == 32
    assert summary["image_size"] == (8, 8)


def test_augmentation_only_while_training_and_fixed_by_seed_epoch_and_batch() -> None:
    dm = ImageDataModule("digits", batch_size=64, preset="cifar")
    images, labels = next(iter(dm.val_dataloader()))
    evaluation = transfer(dm, (images, labels), training=False)[0]
    assert torch.equal(evaluation, transfer(dm, (images, labels))[0])  # no trainer: no augmentation
    assert torch.equal(evaluation, dm.preprocess(images))  # eval is exactly Preprocess
    first = transfer(dm, (images, labels), training=True, epoch=1, step=3)[0]
    assert not torch.equal(first, evaluation)
    assert torch.equal(first, transfer(dm, (images, labels), training=True, epoch=1, step=3)[0])
    assert not torch.equal(first, transfer(dm, (images, labels), training=True, epoch=2, step=3)[0])
    assert not torch.equal(first, transfer(dm, (images, labels), training=True, epoch=1, step=4)[0])
    other_seed = ImageDataModule("digits", batch_size=64, preset="cifar", seed=1)
    other_seed.setup()
    assert not torch.equal(first, transfer(other_seed, (images, labels), training=True, epoch=1, step=3)[0])
    seed_preset = ImageDataModule("digits", batch_size=64)  # `seed` preset: no augmentation at all
    assert torch.equal(transfer(seed_preset, (images, labels), training=True)[0], seed_preset.preprocess(images))


def test_augment_batch_crops_and_flips_each_image() -> None:
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.int64).view(2, 3, 6, 6).to(torch.uint8)
    out = augment_batch(images, augmentation_generator(0, 0, 0), padding=2)
    assert out.shape == images.shape
    assert out.dtype == torch.uint8
    for original, augmented in zip(images, out, strict=True):
        # Each output is a window of the zero-padded image, flipped or not.
        padded = torch.nn.functional.pad(original, (2, 2, 2, 2))
        windows = [padded[:, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(augmented, w) or torch.equal(augmented, w.flip(-1)) for w in windows)


@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment"])
def test_auto_augment_gives_each_image_torchvisions_transform_under_its_own_seed(policy: str) -> None:
    images = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8)
    before = torch.random.get_rng_state()
    out = auto_augment_batch(images, augmentation_generator(0, 0, 0, STREAMS["auto_augment"]), policy, magnitude=9)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator is left alone
    assert out.dtype == torch.uint8
    assert out.shape == images.shape
    again = auto_augment_batch(images, augmentation_generator(0, 0, 0, STREAMS["auto_augment"]), policy, magnitude=9)
    assert torch.equal(out, again)
    seeds = torch.randint(0, 2**62, (12,), generator=augmentation_generator(0, 0, 0, STREAMS["auto_augment"]))
    transform = v2.RandAugment(num_ops=2, magnitude=9) if policy == "randaugment" else v2.TrivialAugmentWide()
    with torch.random.fork_rng(devices=[]):
        for image, seed, augmented in zip(images, seeds.tolist(), out, strict=True):
            torch.manual_seed(seed)
            assert torch.equal(transform(image), augmented)  # torchvision's own transform, image by image
    assert sum(not torch.equal(a, b) for a, b in zip(images, out, strict=True)) >= 6


def test_auto_augment_in_the_hook_and_a_bad_name() -> None:
    dm = ImageDataModule("digits", batch_size=32, auto_augment="randaugment")  # no crop and flip
    images, labels = next(iter(dm.val_dataloader()))
    first = transfer(dm, (images, labels), training=True, epoch=0, step=1)[0]
    assert not torch.equal(first, dm.preprocess(images))
    assert torch.equal(first, transfer(dm, (images, labels), training=True, epoch=0, step=1)[0])
    assert torch.equal(transfer(dm, (images, labels), training=False)[0], dm.preprocess(images))
    with pytest.raises(DataError, match="unknown auto_augment 'randaug'; choose one of none, randaugment"):
        ImageDataModule("digits", auto_augment="randaug")


def test_repeated_augmentation_repeats_each_shuffled_index_and_keeps_the_epochs_length() -> None:
    sampler = SeededSampler(10, seed=0, repeats=3)
    order = list(sampler)
    assert len(order) == 10
    assert order[:9:3] == order[1:9:3] == order[2:9:3]  # each index three times in a row
    assert order[9] == order[::3][-1]
    assert len(set(order)) == 4
    assert order[::3] == list(SeededSampler(10, seed=0))[:4]  # the shuffle's first quarter-plus, repeated
    dm = ImageDataModule("digits", batch_size=30, preset="cifar", repeated_augment=3)
    images, _ = next(iter(dm.train_dataloader()))
    assert torch.equal(images[0], images[1])  # the loader repeats the image ...
    x = transfer(dm, (images, torch.zeros(30, dtype=torch.long)), training=True, epoch=0, step=1)[0]
    assert not torch.equal(x[0], x[1])  # ... and each copy is augmented its own way
    validation = list(dm.val_dataloader().sampler)
    assert validation == list(range(len(validation)))  # evaluation: every image once, in order


def test_train_image_size_resizes_training_batches_and_evaluation_keeps_the_test_size() -> None:
    dm = ImageDataModule("digits", batch_size=16, preset="cifar", train_image_size=24)
    images, labels = next(iter(dm.val_dataloader()))
    assert transfer(dm, (images, labels), training=True, epoch=0, step=1)[0].shape == (16, 3, 24, 24)
    assert transfer(dm, (images, labels), training=False)[0].shape == (16, 3, 32, 32)
    assert dm.preprocess.image_size == 32  # what the logged model serves


def test_erase_batch_erases_one_rectangle_of_a_share_of_the_images_as_the_generator_says() -> None:
    images = torch.full((64, 3, 32, 32), 7.0)
    erased = erase_batch(images, augmentation_generator(0, 0, 0, STREAMS["erase"]), prob=0.5)
    assert torch.equal(erased, erase_batch(images, augmentation_generator(0, 0, 0, STREAMS["erase"]), prob=0.5))
    assert torch.equal(images, torch.full((64, 3, 32, 32), 7.0))  # a new tensor
    changed = erased != 7.0
    assert torch.equal(changed[:, 0], changed[:, 1])  # the same rectangle in every channel
    hit = changed[:, 0].flatten(1).any(1)
    assert 16 <= int(hit.sum()) <= 48  # about half the images
    for mask in changed[hit, 0]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        height, width = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert int(mask.sum()) == height * width  # one rectangle
        assert 0.02 * 1024 * 0.8 <= height * width <= 1024 / 3 * 1.2  # of 2% to a third of the image (rounded sides)
    assert torch.equal(erase_batch(images, augmentation_generator(0, 0, 0), prob=0.0), images)


def test_mixup_mixes_each_image_with_the_reversed_batch_and_targets_are_timms() -> None:
    images, labels = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(6)
    mixed, targets = Mixing(mixup_alpha=0.4)(images, labels, 6, augmentation_generator(0, 0, 0, STREAMS["mix"]))
    lam = float(targets[0, 0])
    assert 0 < lam < 1
    assert torch.allclose(mixed, images * lam + images.flip(0) * (1 - lam), atol=1e-6)  # lam rounded to float32
    assert torch.allclose(targets, mixup_target(labels, 6, lam=lam))
    again = Mixing(mixup_alpha=0.4)(images, labels, 6, augmentation_generator(0, 0, 0, STREAMS["mix"]))
    assert torch.equal(again[0], mixed)
    assert torch.equal(again[1], targets)


def test_cutmix_pastes_one_box_whose_area_is_the_targets_weight() -> None:
    images, labels = torch.zeros(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    images[2:] = 1.0  # the reversed batch pastes ones into the first two images
    both = Mixing(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=1.0)  # always CutMix
    for batch in range(5):
        mixed, targets = both(images, labels, 4, augmentation_generator(0, 0, batch, STREAMS["mix"]))
        pasted = float(mixed[0, 0].mean())
        assert set(mixed.unique().tolist()) <= {0.0, 1.0}  # pasted, not blended
        assert torch.allclose(targets, mixup_target(labels, 4, lam=1 - pasted))
    never = Mixing(cutmix_alpha=1.0, prob=0.0)(images, labels, 4, augmentation_generator(0, 0, 0))
    assert torch.equal(never[0], images)
    assert torch.equal(never[1], torch.eye(4))


def test_erasing_and_mixing_in_the_hook_are_fixed_by_seed_epoch_and_batch() -> None:
    dm = ImageDataModule("digits", batch_size=64, preset="cifar", erase_prob=0.5, mixup_alpha=0.2, cutmix_alpha=1.0)
    images, labels = next(iter(dm.val_dataloader()))
    x, y = transfer(dm, (images, labels), training=True, epoch=1, step=3)
    assert y.shape == (64, dm.num_classes)
    assert torch.allclose(y.sum(1), torch.ones(64))
    again = transfer(dm, (images, labels), training=True, epoch=1, step=3)
    assert torch.equal(x, again[0])
    assert torch.equal(y, again[1])
    assert not torch.equal(x, transfer(dm, (images, labels), training=True, epoch=1, step=4)[0])
    evaluation = transfer(dm, (images, labels), training=False)
    assert torch.equal(evaluation[0], dm.preprocess(images))
    assert torch.equal(evaluation[1], labels)
    crops_only = ImageDataModule("digits", batch_size=64, preset="cifar")  # a new part leaves crops as they were
    crops = transfer(crops_only, (images, labels), training=True, epoch=1, step=3)[0]
    erasing = ImageDataModule("digits", batch_size=64, preset="cifar", erase_prob=0.5)
    erased = transfer(erasing, (images, labels), training=True, epoch=1, step=3)[0]
    kept = (erased == crops).flatten(1).all(1)
    assert 10 < int(kept.sum()) < 54  # the images not erased are exactly the crops
    plain = ImageDataModule("digits", batch_size=64, erase_prob=1.0)  # no crop and flip, still erased
    assert not torch.equal(transfer(plain, (images, labels), training=True)[0], plain.preprocess(images))


def test_shuffle_is_seeded_per_epoch() -> None:
    sampler = SeededSampler(50, seed=0)
    first = list(sampler)
    assert sorted(first) == list(range(50))
    assert first == list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(SeededSampler(50, seed=0, shuffle=False)) == list(range(50))


def test_train_loader_order_follows_the_epoch() -> None:
    dm = ImageDataModule("digits", batch_size=1000)
    loader = dm.train_dataloader()
    epoch0 = next(iter(loader))[1]
    loader.sampler.set_epoch(1)
    assert not torch.equal(epoch0, next(iter(loader))[1])
    loader.sampler.set_epoch(0)
    assert torch.equal(epoch0, next(iter(dm.train_dataloader()))[1])


def test_per_image_loader_matches_the_cached_one(tmp_path: Path) -> None:
    source = str(zip_folder(write_image_folder(tmp_path / "d", "split", n_train=6, n_test=2), tmp_path / "d.zip"))
    cached = ImageDataModule(source, batch_size=8, workers=0)
    per_image = ImageDataModule(source, batch_size=8, workers=0, in_memory=False)
    assert per_image.summary()["cache_path"] is None
    assert not per_image.summary()["in_memory"]
    for part in ("train_dataloader", "test_dataloader"):
        a = list(getattr(cached, part)())
        b = list(getattr(per_image, part)())
        assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
        assert len(a) == len(b)


def test_per_image_loader_replaces_unreadable_images_and_runs_workers(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "d", "classes", n_train=8)
    (folder / "cat" / "0003.jpg").write_bytes(b"\xff\xd8\xff broken")
    dm = ImageDataModule(str(folder), batch_size=4, workers=0, in_memory=False, val_fraction=0.0, test_fraction=0.0)
    with pytest.warns(UserWarning, match="unreadable image cat/0003.jpg"):
        batches = list(dm.train_dataloader())
    assert sum(len(labels) for _, labels in batches) == 24  # never a crash mid-epoch
    with_workers = ImageDataModule(
        str(folder), batch_size=4, workers=1, in_memory=False, val_fraction=0.0, test_fraction=0.0
    )
    loader = with_workers.train_dataloader()
    assert loader.num_workers == 1
    assert sum(len(labels) for images, labels in loader if images.dtype == torch.uint8) == 24


def test_workers_auto_is_zero_for_cached_data() -> None:
    dm = ImageDataModule("digits")
    assert dm.train_dataloader().num_workers == 0
    assert ImageDataModule("digits", workers=2).train_dataloader().num_workers == 2
    assert ImageDataModule("digits", workers="1").train_dataloader().num_workers == 1
    with pytest.raises(DataError, match="workers"):
        ImageDataModule("digits", workers=-1).train_dataloader()


def test_fit_with_a_trainer_uses_the_hook() -> None:
    seen: list[tuple] = []

    class Probe(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(3 * 32 * 32, 10)

        def training_step(self, batch, batch_idx):
            images, labels = batch
            seen.append((images.dtype, tuple(images.shape[1:])))
            return torch.nn.functional.cross_entropy(self.layer(images.flatten(1)), labels)

        def validation_step(self, batch, batch_idx):
            seen.append((batch[0].dtype, tuple(batch[0].shape[1:])))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    dm = ImageDataModule("digits", batch_size=64, preset="cifar", limit_per_class=20)
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=2, limit_val_batches=1, accelerator="cpu", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Probe(), datamodule=dm)
    assert seen
    assert all(s == (torch.float32, (3, 32, 32)) for s in seen)


def test_resolve_preset_precedence() -> None:
    assert PRESETS["seed"].image_size == 224
    assert not PRESETS["seed"].augment
    assert PRESETS["cifar"].image_size == 32
    assert PRESETS["cifar"].augment
    assert PRESETS["cifar"].mean == CIFAR10_MEAN
    cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "input_size": (3, 256, 256), "interpolation": "bicubic"}
    from_cfg = resolve_preset("cifar", pretrained_cfg=cfg)
    assert (from_cfg.image_size, from_cfg.mean, from_cfg.interpolation, from_cfg.augment) == (
        256,
        (0.5,) * 3,
        "bicubic",
        True,
    )
    explicit = resolve_preset("cifar", pretrained_cfg=cfg, image_size=64, mean=[0.1, 0.2, 0.3], augment=False)
    assert (explicit.image_size, explicit.mean, explicit.std, explicit.augment) == (
        64,
        (0.1, 0.2, 0.3),
        (0.25,) * 3,
        False,
    )
    with pytest.raises(DataError, match="unknown preset 'imagenet'; choose one of seed, cifar"):
        resolve_preset("imagenet")
    with pytest.raises(DataError, match="std"):
        resolve_preset(std=(1, 0, 1))


def test_preprocess_shapes_config_and_state_dict() -> None:
    pre = Preprocess(16, IMAGENET_MEAN, IMAGENET_STD, ["a", "b"])
    gray = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    out = pre(gray)
    assert out.shape == (2, 3, 16, 16)
    assert out.dtype == torch.float32
    assert torch.allclose(out[:, :, 0, 0], (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD))
    assert torch.allclose(pre(gray.float() / 255), out)  # float input is taken as [0, 1]
    assert pre.config() == {
        "image_size": 16, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
        "class_names": ["a", "b"], "interpolation": "bilinear",
    }  # fmt: skip
    restored = Preprocess(32, (0, 0, 0), (1, 1, 1))
    restored.load_state_dict(pre.state_dict())
    assert restored.config() == pre.config()
    big = torch.randint(0, 255, (1, 3, 64, 48), dtype=torch.uint8)
    assert pre(big).shape == (1, 3, 16, 16)


def test_module_preprocess_carries_the_classes(tmp_path: Path) -> None:
    dm = ImageDataModule(str(write_image_folder(tmp_path / "d", "split")), preset="cifar", image_size=24)
    assert dm.preprocess.class_names == ["cat", "dog", "frog"]
    assert dm.preprocess.image_size == 24
    assert np.isclose(dm.preprocess.config()["mean"][0], CIFAR10_MEAN[0])


def test_bad_batch_size() -> None:
    with pytest.raises(DataError, match="batch_size"):
        ImageDataModule("digits", batch_size=0)


@pytest.mark.floors  # 2.6.0's wrapper did not pass set_epoch on: the floor is 2.6.1 for it
def test_distributed_wrapper_splits_the_seeded_order_between_ranks() -> None:
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    def rank_orders(epoch: int) -> list[list[int]]:
        orders = []
        for rank in (0, 1):
            wrapper = DistributedSamplerWrapper(SeededSampler(40, seed=0), num_replicas=2, rank=rank, shuffle=False)
            wrapper.set_epoch(epoch)  # what Lightning calls; forwarded to our sampler
            orders.append(list(wrapper))
        return orders

    first, second = rank_orders(0), rank_orders(1)
    assert sorted(first[0] + first[1]) == list(range(40))
    assert not set(first[0]) & set(first[1])
    assert first != second
    assert first == rank_orders(0)
