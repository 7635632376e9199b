"""Where pixels become model input: `Preprocess`, the presets and the batch augmentation.

`Preprocess` resizes and normalises a whole uint8 batch on whatever device it is
on, and carries the class names. Training and evaluation (through
`ImageDataModule.on_after_batch_transfer`), prediction and the logged model all
use it, so they cannot drift apart. Presets are named bundles of input size,
mean/std and augmentation; they never change the model.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms import v2

from experiments.data.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area")


@dataclass(frozen=True)
class Preset:
    """A named bundle of input size, normalisation and augmentation.

    Attributes:
        name: The preset's name.
        image_size: Square input size in pixels; None keeps the decoded size.
        mean: Per-channel mean of [0, 1] pixels.
        std: Per-channel standard deviation.
        augment: Random crop (4-pixel padding) and horizontal flip while training.
        interpolation: Resize mode (``bilinear``, ``bicubic``, ``nearest`` or ``area``).
    """

    name: str
    image_size: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool
    interpolation: str = "bilinear"


PRESETS: dict[str, Preset] = {
    "seed": Preset("seed", 224, IMAGENET_MEAN, IMAGENET_STD, augment=False),
    "cifar": Preset("cifar", 32, CIFAR10_MEAN, CIFAR10_STD, augment=True),
}
"""``seed``: what the original notebook did (224x224, ImageNet mean/std, no augmentation).
``cifar``: native 32x32, CIFAR-10 mean/std, random crop with 4-pixel padding and flip."""


def _triple(name: str, value: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in value)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or (name == "std" and min(values) <= 0):
        raise DataError(
            f"{name} must be 3 numbers (one per channel){', all positive' if name == 'std' else ''}, not {value!r}"
        )
    return values


def resolve_preset(
    preset: str = "seed",
    *,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    augment: bool | None = None,
    pretrained_cfg: dict[str, Any] | None = None,
) -> Preset:
    """Combine a preset with a pretrained model's input settings and explicit overrides.

    Precedence: explicit arguments > the pretrained weights' cfg (mean, std, input size,
    interpolation) > the preset.

    Args:
        preset: A name in `PRESETS`.
        image_size: Square input size.
        mean: Per-channel mean.
        std: Per-channel standard deviation.
        augment: Whether to augment while training.
        pretrained_cfg: A model's ``pretrained_cfg`` (``mean``, ``std``, ``input_size`` (C, H, W),
            ``interpolation``), or None.

    Returns:
        The resolved preset (named after the base preset).

    Raises:
        DataError: Unknown preset or bad values.
    """
    if preset not in PRESETS:
        raise DataError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = pretrained_cfg or {}
    changes: dict[str, Any] = {  # the weights' settings, then the explicit ones over them; None changes nothing
        "mean": cfg.get("mean"),
        "std": cfg.get("std"),
        "image_size": int(cfg["input_size"][-1]) if cfg.get("input_size") else None,
        "interpolation": cfg.get("interpolation") if cfg.get("interpolation") in INTERPOLATIONS else None,
    }
    # image_size from a validated config: a whole number of pixels, 1 to MAX_IMAGE_SIZE
    explicit = {"mean": mean, "std": std, "image_size": image_size, "augment": augment}
    changes.update({k: v for k, v in explicit.items() if v is not None})
    for name in ("mean", "std"):
        if changes[name] is not None:
            changes[name] = _triple(name, changes[name])
    return replace(PRESETS[preset], **{k: v for k, v in changes.items() if v is not None})


class Preprocess(nn.Module):
    """Resize and normalise a batch on its device, carrying the class names.

    Args:
        image_size: Square output size; None keeps the input's size.
        mean: Per-channel mean of [0, 1] pixels.
        std: Per-channel standard deviation.
        class_names: The classes, in label order.
        interpolation: Resize mode (``bilinear``, ``bicubic``, ``nearest`` or ``area``).
    """

    # Buffers (registered in __init__, so they follow .to() and live in the state_dict).
    mean: Tensor
    std: Tensor

    def __init__(
        self,
        image_size: int | None,
        mean: Sequence[float],
        std: Sequence[float],
        class_names: Sequence[str] = (),
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        if interpolation not in INTERPOLATIONS:
            raise DataError(f"unknown interpolation {interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}")
        self.image_size = image_size
        self.class_names = list(class_names)
        self.interpolation = interpolation
        self.register_buffer("mean", torch.tensor(_triple("mean", mean)).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_triple("std", std)).view(1, 3, 1, 1))

    @classmethod
    def from_preset(cls, preset: Preset, class_names: Sequence[str] = ()) -> Preprocess:
        """Build the eval transform of a resolved preset.

        Args:
            preset: From `resolve_preset`.
            class_names: The classes, in label order.

        Returns:
            The module.
        """
        return cls(preset.image_size, preset.mean, preset.std, class_names, preset.interpolation)

    def forward(self, images: Tensor) -> Tensor:
        """Resize and normalise.

        Args:
            images: uint8 (N, 3, H, W) or (N, 1, H, W) (repeated to 3 channels), or float in [0, 1].

        Returns:
            float32 (N, 3, S, S), normalised with mean/std.
        """
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        scale = 255.0 if images.dtype == torch.uint8 else 1.0
        x = images.to(self.mean.device, torch.float32, non_blocking=True)
        size = self.image_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            smooth = self.interpolation in ("bilinear", "bicubic")
            downscale = size < max(x.shape[-2:])
            x = F.interpolate(
                x, size=(size, size), mode=self.interpolation,
                align_corners=False if smooth else None, antialias=smooth and downscale,
            )  # fmt: skip
            if self.interpolation == "bicubic":
                x = x.clamp_(0, scale)  # bicubic overshoots the pixel range
        # One fused pass: x * (1 / (scale * std)) - mean / std.
        return torch.addcmul(-self.mean / self.std, x, 1.0 / (scale * self.std))

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this module, for logging.

        Returns:
            ``image_size``, ``mean``, ``std``, ``class_names``, ``interpolation``.
        """
        return {
            "image_size": self.image_size,
            "mean": [round(v, 6) for v in self.mean.flatten().tolist()],
            "std": [round(v, 6) for v in self.std.flatten().tolist()],
            "class_names": list(self.class_names),
            "interpolation": self.interpolation,
        }

    def get_extra_state(self) -> dict[str, Any]:
        """Keep size, class names and interpolation in the ``state_dict``.

        Returns:
            ``image_size``, ``class_names`` and ``interpolation``.
        """
        return {k: v for k, v in self.config().items() if k not in ("mean", "std")}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `get_extra_state` saved.

        Args:
            state: The saved dict.
        """
        self.image_size = state.get("image_size", self.image_size)
        self.class_names = list(state.get("class_names", self.class_names))
        self.interpolation = state.get("interpolation", self.interpolation)

    def extra_repr(self) -> str:
        """The module's settings, for ``print(module)``.

        Returns:
            One line.
        """
        return f"image_size={self.image_size}, interpolation={self.interpolation!r}, classes={len(self.class_names)}"


@functools.lru_cache(maxsize=8)
def _crop_grids(height: int, width: int, padded_width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Flat indices of an (H, W) window at the top left of a padded image, plain and mirrored."""
    rows = torch.arange(height, device=device).view(height, 1) * padded_width
    plain = (rows + torch.arange(width, device=device)).view(1, -1)
    mirrored = (rows + torch.arange(width - 1, -1, -1, device=device)).view(1, -1)
    return plain, mirrored


def augment_batch(images: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Random crop with zero padding and random horizontal flip, for a whole batch at once.

    Random numbers come from a CPU generator, so a batch is augmented the same way
    on any device.

    Args:
        images: (N, C, H, W), any dtype, on any device.
        generator: CPU generator, seeded by the caller.
        padding: Pixels of zero padding on each side before cropping back to H x W.

    Returns:
        The augmented batch, same shape, dtype and device.
    """
    n, channels, height, width = images.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    padded_width = width + 2 * padding
    starts = (offsets[0] * padded_width + offsets[1]).to(images.device).view(n, 1)
    plain, mirrored = _crop_grids(height, width, padded_width, images.device)
    index = torch.where(flips.to(images.device).view(n, 1), mirrored, plain) + starts
    padded = F.pad(images, (padding, padding, padding, padding)).view(n, channels, -1)
    # One gather for the whole batch (crop and flip together): no Python loop over images.
    return torch.gather(padded, 2, index.view(n, 1, -1).expand(n, channels, -1)).view(n, channels, height, width)


def augmentation_generator(seed: int, epoch: int, batch_index: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one training batch, so a resumed run repeats the same augmentations.

    Args:
        seed: The run's seed.
        epoch: The epoch (0-based), so that every epoch augments differently.
        batch_index: The batch's index within the epoch.
        stream: Which augmentation draws from it (`STREAMS`): each has its own numbers, so that
            turning one on leaves the others' draws as they were.

    Returns:
        The seeded generator.
    """
    mixed = (seed * 1_000_003 + epoch) * 1_000_003 + batch_index + stream * 0x9E3779B97F4A7C15
    return torch.Generator().manual_seed(mixed % (2**63))


STREAMS = {"crop_flip": 0, "erase": 1, "mix": 2, "auto_augment": 3}
"""The `augmentation_generator` stream of each batch augmentation."""


AUTO_AUGMENTS = ("none", "randaugment", "trivialaugment")
"""The config's ``auto_augment`` names: torchvision's ``RandAugment`` and ``TrivialAugmentWide``."""


def auto_augment_batch(images: Tensor, generator: torch.Generator, policy: str, magnitude: int = 9) -> Tensor:
    """RandAugment (2 operations at ``magnitude``) or TrivialAugment, each image its own draw.

    torchvision's ``transforms.v2`` classes take a uint8 batch but draw one operation for all
    of it from torch's global generator; so each image is transformed alone, under a forked
    global CPU generator seeded from ``generator`` (the one per-image Python loop of the data
    path, paid only with ``auto_augment`` on). The operations run where the batch is.

    Args:
        images: uint8 (N, C, H, W), on any device.
        generator: CPU generator, seeded by the caller.
        policy: ``"randaugment"`` or ``"trivialaugment"``.
        magnitude: RandAugment's magnitude, 0 to 30 (TrivialAugment draws its own).

    Returns:
        The augmented batch, same shape, dtype and device.
    """
    transform = v2.RandAugment(num_ops=2, magnitude=magnitude) if policy == "randaugment" else v2.TrivialAugmentWide()
    seeds = torch.randint(0, 2**62, (images.shape[0],), generator=generator).tolist()
    with torch.random.fork_rng(devices=[]):  # the global CPU generator is left as it was
        augmented = []
        for image, seed in zip(images, seeds, strict=True):
            torch.manual_seed(seed)
            augmented.append(transform(image))
    return torch.stack(augmented)


def erase_batch(
    images: Tensor, generator: torch.Generator, prob: float, area: tuple[float, float] = (0.02, 1 / 3)
) -> Tensor:
    """Random erasing (Zhong et al. 2017) as timm's ``RandomErasing(mode="pixel")``, for a whole batch at once.

    Each image, with probability ``prob``, has one rectangle (``area`` of the image, aspect 0.3
    to 1/0.3, the first of 10 tries that fits, as timm draws it) replaced by normal noise.
    timm's class draws from Python's global ``random`` one image at a time; here every number
    comes from the CPU generator, so the batch is erased the same way on any device.

    Args:
        images: Normalised float (N, C, H, W), on any device.
        generator: CPU generator, seeded by the caller.
        prob: Probability that an image is erased.
        area: Smallest and largest share of the image a rectangle covers.

    Returns:
        The erased batch (a new tensor), same shape, dtype and device.
    """
    n, _, height, width = images.shape
    tries = 10
    target = (area[0] + (area[1] - area[0]) * torch.rand(n, tries, generator=generator)) * height * width
    aspect = torch.exp(math.log(0.3) + 2 * math.log(1 / 0.3) * torch.rand(n, tries, generator=generator))
    h, w = (target * aspect).sqrt().round().long(), (target / aspect).sqrt().round().long()
    fits = (h < height) & (w < width)
    first = fits.float().argmax(1, keepdim=True)  # the first try that fits (any, where none does)
    h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)
    top = (torch.rand(n, generator=generator) * (height - h + 1)).long()
    left = (torch.rand(n, generator=generator) * (width - w + 1)).long()
    erased = (torch.rand(n, generator=generator) < prob) & fits.any(1)
    noise = torch.randn(images.shape, generator=generator).to(images.device, images.dtype)
    rows, cols = torch.arange(height).view(1, -1, 1), torch.arange(width).view(1, 1, -1)
    inside = (rows >= top.view(-1, 1, 1)) & (rows < (top + h).view(-1, 1, 1))
    inside = inside & (cols >= left.view(-1, 1, 1)) & (cols < (left + w).view(-1, 1, 1)) & erased.view(-1, 1, 1)
    return torch.where(inside.unsqueeze(1).to(images.device), noise, images)


@dataclass(frozen=True)
class Mixing:
    """Mixup and CutMix of a batch with its reverse, as timm's ``Mixup(mode="batch")`` mixes.

    Attributes:
        mixup_alpha: Beta(alpha, alpha) of mixup's weight; 0 turns mixup off.
        cutmix_alpha: Beta(alpha, alpha) of CutMix's box area; 0 turns CutMix off.
        prob: Probability that a batch is mixed at all.
        switch_prob: With both on, probability of CutMix rather than mixup for a batch.
    """

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5

    @property
    def active(self) -> bool:
        """Whether any batch is ever mixed."""
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.prob > 0

    @staticmethod
    def targets(labels: Tensor, num_classes: int, lam: float) -> Tensor:
        """Soft targets: ``lam`` of each image's class and ``1 - lam`` of its partner's (the reversed batch).

        Args:
            labels: int64 (N,).
            num_classes: Classes of the targets.
            lam: Weight of each image's own class.

        Returns:
            float32 (N, num_classes).
        """
        one_hot = F.one_hot(labels, num_classes).float()
        return one_hot * lam + one_hot.flip(0) * (1 - lam)

    def __call__(
        self, images: Tensor, labels: Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Mix a batch (image ``i`` with image ``N - 1 - i``) and its labels.

        timm's ``Mixup`` draws from NumPy's global state; here the draws come from the CPU
        generator (through a NumPy generator seeded from it, for the Beta draw), so a batch
        mixes the same way on any device and on resume. The soft targets are those of timm's
        ``mixup_target``, unsmoothed (the loss smooths them); written out here, since importing
        timm would cost the data layer seconds for two lines.

        Args:
            images: Normalised float (N, C, H, W), on any device.
            labels: int64 (N,).
            num_classes: Classes of the soft targets.
            generator: CPU generator, seeded by the caller.

        Returns:
            The mixed images and float (N, num_classes) soft targets.
        """
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
        if rng.random() >= self.prob:
            return images, self.targets(labels, num_classes, 1.0)
        cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or rng.random() < self.switch_prob)
        alpha = self.cutmix_alpha if cutmix else self.mixup_alpha
        lam = float(rng.beta(alpha, alpha))
        if not cutmix:
            return images * lam + images.flip(0) * (1 - lam), self.targets(labels, num_classes, lam)
        (top, bottom, left, right), lam = cutmix_bbox_and_lam(images.shape, lam, rng)
        images = images.clone()
        images[:, :, top:bottom, left:right] = images.flip(0)[:, :, top:bottom, left:right]
        return images, self.targets(labels, num_classes, lam)


def cutmix_bbox_and_lam(
    shape: torch.Size, lam: float, rng: np.random.Generator
) -> tuple[tuple[int, int, int, int], float]:
    """CutMix's box (sides ``sqrt(1 - lam)`` of the image's, centred anywhere, clipped) and its real weight.

    timm's ``rand_bbox`` and ``cutmix_bbox_and_lam(correct_lam=True)``, drawing from ``rng``.

    Args:
        shape: The batch's (N, C, H, W).
        lam: The drawn weight of the kept image.
        rng: The batch's NumPy generator.

    Returns:
        ``(top, bottom, left, right)`` and the kept share of the pixels.
    """
    height, width = shape[-2:]
    ratio = math.sqrt(1 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    top, bottom = int(np.clip(cy - cut_h // 2, 0, height)), int(np.clip(cy + cut_h // 2, 0, height))
    left, right = int(np.clip(cx - cut_w // 2, 0, width)), int(np.clip(cx + cut_w // 2, 0, width))
    return (top, bottom, left, right), 1 - (bottom - top) * (right - left) / (height * width)
