"""`ImageDataModule`: uint8 batches from the cache, transformed on the device."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from experiments.data.datasets import CachedImageDataset, FileImageDataset, SeededSampler, keep_batch
from experiments.data.digest import PartDescription, describe_parts
from experiments.data.errors import DataError
from experiments.data.load import ImageSet, load_images
from experiments.data.split import Split, split_images, summarize
from experiments.data.transforms import (
    AUTO_AUGMENTS,
    STREAMS,
    Mixing,
    Preprocess,
    augment_batch,
    augmentation_generator,
    auto_augment_batch,
    erase_batch,
    resolve_preset,
)


def _resolve_workers(workers: int | str, in_memory: bool) -> int:
    if isinstance(workers, str) and workers.strip().isdigit():
        workers = int(workers)  # from a config file or the command line
    if workers == "auto":
        # Batches from the memory map take microseconds: worker processes would only add latency.
        return 0 if in_memory else min(8, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise DataError(f"workers must be 'auto' or a whole number >= 0, not {workers!r}")
    return workers


class ImageDataModule(L.LightningDataModule):
    """Labelled images from any source, split with a seed, decoded once, transformed on the device.

    Loaders yield ``(uint8 (N, 3, H, W), int64 (N,))``; `on_after_batch_transfer`
    augments (training only), resizes and normalises the batch where it lands
    (`model_input`, which a benchmark calls without a Trainer).

    Args:
        source: A path (``CIFAR-10-images-master`` folder or ``.zip``, any image folder or zip of
            one, ``cifar-10-batches-py``), ``cifar10`` (torchvision download) or ``digits``.
        batch_size: Images per batch.
        val_fraction: Share of each class of the train part held out for validation.
        seed: Seed of the validation split, the shuffle and the augmentation.
        limit_per_class: Keep at most this many images per class in every part.
        workers: DataLoader workers; ``"auto"`` is 0 for cached data, else up to 8.
        preset: ``"seed"`` (224, ImageNet mean/std) or ``"cifar"`` (32, CIFAR mean/std, crop + flip).
        image_size: Model input size, overriding the preset and pretrained cfg.
        mean: Per-channel mean, overriding them.
        std: Per-channel std, overriding them.
        augment: Augment while training, overriding the preset.
        decode_size: Size images are decoded to (mixed sizes; see `load_images`).
        pretrained_cfg: A pretrained model's cfg: its mean, std and input size beat the preset.
        test_fraction: Share of each class drawn as the test part where the source has none.
        in_memory: Cache decoded images (True), decode per image (False), or decide by size (None).
        train_image_size: Size of training batches, if not ``image_size`` (the test size).
        repeated_augment: Each training image this many times in a row per epoch (`SeededSampler`).
        auto_augment: ``randaugment`` or ``trivialaugment`` of training images (`auto_augment_batch`).
        augment_magnitude: RandAugment's magnitude, 0 to 30.
        erase_prob: Share of training images with one rectangle erased to noise (`erase_batch`).
        mixup_alpha: Mixup of training batches (`Mixing`); 0 is off.
        cutmix_alpha: CutMix of training batches; 0 is off.
        mixup_prob: Probability that a training batch is mixed.
        mixup_switch_prob: With both on, probability of CutMix rather than mixup.
    """

    def __init__(
        self,
        source: str,
        *,
        batch_size: int = 32,
        val_fraction: float = 0.2,
        seed: int = 0,
        limit_per_class: int | None = None,
        workers: int | str = "auto",
        preset: str = "seed",
        image_size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        augment: bool | None = None,
        decode_size: int | None = None,
        pretrained_cfg: dict[str, Any] | None = None,
        test_fraction: float = 0.2,
        in_memory: bool | None = None,
        train_image_size: int | None = None,
        repeated_augment: int = 1,
        auto_augment: str = "none",
        augment_magnitude: int = 9,
        erase_prob: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mixup_prob: float = 1.0,
        mixup_switch_prob: float = 0.5,
    ) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
        self.source = str(source)
        self.batch_size = batch_size
        self.val_fraction, self.seed, self.test_fraction = val_fraction, seed, test_fraction
        self.limit_per_class, self.decode_size, self.in_memory = limit_per_class, decode_size, in_memory
        self.workers = workers
        self.preset = resolve_preset(
            preset, image_size=image_size, mean=mean, std=std, augment=augment, pretrained_cfg=pretrained_cfg
        )
        self.train_image_size, self.repeated_augment = train_image_size, repeated_augment
        if auto_augment not in AUTO_AUGMENTS:
            raise DataError(f"unknown auto_augment {auto_augment!r}; choose one of {', '.join(AUTO_AUGMENTS)}")
        self.auto_augment, self.augment_magnitude, self.erase_prob = auto_augment, augment_magnitude, erase_prob
        self.mixing = Mixing(mixup_alpha, cutmix_alpha, mixup_prob, mixup_switch_prob)
        self._images: ImageSet | None = None
        self._split: Split | None = None
        self._preprocess: Preprocess | None = None
        self._train_preprocessing: Preprocess | None = None

    def _load(self) -> ImageSet:
        if self._images is None:
            self._images = load_images(self.source, decode_size=self.decode_size, in_memory=self.in_memory)
        return self._images

    def prepare_data(self) -> None:
        """Decode the source once into the on-disk cache (Lightning runs this on one process per node)."""
        self._load()

    def setup(self, stage: str | None = None) -> None:
        """Open the cache (memory-mapped) and split it; calling it again does nothing."""
        if self._split is not None:
            return
        images = self._load()
        self._split = split_images(
            images, val_fraction=self.val_fraction, seed=self.seed,
            limit_per_class=self.limit_per_class, test_fraction=self.test_fraction,
        )  # fmt: skip
        self._preprocess = Preprocess.from_preset(self.preset, images.classes)

    def _ready(self) -> tuple[ImageSet, Split, Preprocess]:
        if self._split is None:
            self.setup()
        if self._images is None or self._split is None or self._preprocess is None:  # cannot happen: setup() sets all
            raise RuntimeError("the data module did not set itself up")
        return self._images, self._split, self._preprocess

    @property
    def classes(self) -> list[str]:
        """Sorted class names (label ``i`` is ``classes[i]``)."""
        return list(self._ready()[0].classes)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def preprocess(self) -> Preprocess:
        """The eval transform (resize + normalise, with the class names); a fresh copy on the CPU."""
        return Preprocess.from_preset(self.preset, self.classes)

    def summary(self) -> dict[str, Any]:
        """Describe the data: see `experiments.data.split.summarize`, plus the preset.

        Returns:
            ``source``, ``classes``, ``num_train``, ``num_val``, ``num_test``, ``per_class``,
            ``image_size`` (decoded (H, W)), ``cache_key``, ``cache_path``, ``preset`` and more.
        """
        images, split, _ = self._ready()
        return {**summarize(images, split), "preset": self.preset.name, "input_size": self.preset.image_size}

    def parts(self) -> list[PartDescription]:
        """The train, validation and test parts, each with its name, source, size and content digest.

        Returns:
            One description per part (what a run records as its datasets).
        """
        images, split, _ = self._ready()
        return describe_parts(images, split)

    def _loader(self, part: str, shuffle: bool) -> DataLoader[tuple[Tensor, int]]:
        images, split, _ = self._ready()
        indices = getattr(split, part)
        dataset: CachedImageDataset | FileImageDataset
        collate: Callable[[Any], tuple[Tensor, Tensor]] | None
        if images.in_memory and images.cache_path is not None:  # cached images always have their folder
            dataset = CachedImageDataset(images.cache_path / "images.npy", images.labels, indices)
            collate = keep_batch
        elif images.files is not None:  # per-image data always has its file list
            dataset, collate = FileImageDataset(images.files, indices, images.image_size), None
        else:
            raise RuntimeError(f"{self.source}: loaded without cached images or a file list")
        workers = _resolve_workers(self.workers, images.in_memory)
        sampler = SeededSampler(len(dataset), self.seed, shuffle, self.repeated_augment if shuffle else 1)
        return DataLoader(
            dataset, batch_size=self.batch_size, sampler=sampler,
            collate_fn=collate, num_workers=workers, persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader[tuple[Tensor, int]]:
        """Training batches, shuffled by ``(seed, epoch)``.

        Returns:
            A loader of ``(uint8 images, int64 labels)`` batches.
        """
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[tuple[Tensor, int]]:
        """Validation batches, in order.

        Returns:
            A loader of ``(uint8 images, int64 labels)`` batches.
        """
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[tuple[Tensor, int]]:
        """Test batches, in order.

        Returns:
            A loader of ``(uint8 images, int64 labels)`` batches.
        """
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader[tuple[Tensor, int]]:
        """The test part's batches, in order.

        Returns:
            A loader of ``(uint8 images, int64 labels)`` batches.
        """
        return self._loader("test", shuffle=False)

    @property
    def augments(self) -> bool:
        """Whether training batches change at all (crop and flip, RandAugment or TrivialAugment, erasing, mixing)."""
        return self.preset.augment or self.auto_augment != "none" or self.erase_prob > 0 or self.mixing.active

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[Tensor, Tensor]:
        """Augment (training only), resize and normalise the batch on its device.

        Returns:
            (float32 (N, 3, S, S) normalised, labels); a mixed training batch has soft
            targets, float32 (N, num_classes), in place of its labels.
        """
        images, labels = batch
        trainer = self.trainer
        if self.augments and trainer is not None and trainer.training:
            # The batch's index within the epoch is restored on resume, so augmentation repeats exactly.
            batch_index = trainer.fit_loop.epoch_loop.batch_progress.current.ready
            epoch = trainer.current_epoch
            images = self.model_input(images, epoch, batch_index)
            if not self.mixing.active:
                return images, labels
            generator = augmentation_generator(self.seed, epoch, batch_index, STREAMS["mix"])
            return self.mixing(images, labels, self.num_classes, generator)
        return self.model_input(images), labels

    def _train_preprocess(self, device: torch.device) -> Preprocess:
        """The training batches' `Preprocess` at ``train_image_size``, kept on the batches' device."""
        kept = self._train_preprocessing
        if kept is None or kept.mean.device != device:
            preset = replace(self.preset, image_size=self.train_image_size)
            kept = self._train_preprocessing = Preprocess.from_preset(preset).to(device)
        return kept

    def model_input(self, images: Tensor, epoch: int | None = None, batch_index: int = 0) -> Tensor:
        """A uint8 batch on its device as the model takes it: augmented for training, resized, normalised.

        Crop and flip (the preset's ``augment``), then RandAugment or TrivialAugment, work on the
        uint8 batch, random erasing on the
        normalised one (as timm's recipes order them); each draws from its own stream of
        `augmentation_generator`. Mixing changes the labels too, so `on_after_batch_transfer` does it.

        Args:
            images: uint8 (N, 3, H, W), on any device.
            epoch: The training epoch; with ``batch_index`` it seeds the augmentation (so a
                resumed run repeats it). None for an evaluation batch: never augmented (nor
                cropped and flipped is any batch of a preset without augmentation).
            batch_index: The batch's index within the epoch.

        Returns:
            float32 (N, 3, S, S), normalised, on the batch's device.
        """
        if self.preset.augment and epoch is not None:
            generator = augmentation_generator(self.seed, epoch, batch_index, STREAMS["crop_flip"])
            images = augment_batch(images, generator)
        if self.auto_augment != "none" and epoch is not None:
            generator = augmentation_generator(self.seed, epoch, batch_index, STREAMS["auto_augment"])
            images = auto_augment_batch(images, generator, self.auto_augment, self.augment_magnitude)
        preprocess = self._ready()[2]
        if preprocess.mean.device != images.device:
            preprocess = self._preprocess = preprocess.to(images.device)
        if epoch is not None and self.train_image_size is not None:
            preprocess = self._train_preprocess(images.device)
        output: Tensor = preprocess(images)
        if self.erase_prob > 0 and epoch is not None:
            output = erase_batch(
                output, augmentation_generator(self.seed, epoch, batch_index, STREAMS["erase"]), self.erase_prob
            )
        return output
