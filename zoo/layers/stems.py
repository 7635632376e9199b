"""The stems a ResNet can start with (timm's module names: ``conv1``, ``bn1``, ``maxpool``).

Two independent choices:

- ``stem``: the input resolution it is made for. ``"imagenet"`` reduces the image 4x (a
  stride-2 convolution, then a stride-2 pool), for 224x224 input; ``"cifar"`` keeps every
  stride at 1 and drops the pool, for native 32x32 input.
- ``stem_type``: its shape. ``""`` is the paper's single 7x7 convolution (a single 3x3 for
  ``cifar``); ``"deep"`` is three 3x3 convolutions of ``stem_width``, ``stem_width`` and
  ``2 * stem_width`` channels (ResNet-C/-D with ``stem_width=32``, -S with 64);
  ``"deep_tiered"`` narrows the first two to ``3 * stem_width // 4`` and ``stem_width``
  (ResNet-T). A deep stem keeps its three convolutions under ``cifar``, at stride 1.

The pool after it: a 3x3/2 max-pool; a 3x3/2 convolution, norm and ReLU instead
(``replace_stem_pool``, ResNet-RS); or, with anti-aliasing, a 2x2 average pool (``"avg"``)
or a stride-1 max-pool followed by a blur pool (``"blur"``).
"""

from torch import nn

from registry.errors import ModelArgumentError
from zoo.layers.blur_pool import create_aa
from zoo.layers.norm import NormLayer

STEMS = ("imagenet", "cifar")
"""Stems a ResNet can take: ``imagenet`` (reduces 4x, for 224x224) or ``cifar`` (stride 1, for 32x32)."""

STEM_TYPES = ("", "deep", "deep_tiered")
"""Stem shapes: timm's ``stem_type`` values."""


def stem_channels(stem_type: str, stem_width: int) -> int:
    """The channels a stem hands to the first stage.

    Args:
        stem_type: ``""``, ``"deep"`` or ``"deep_tiered"``.
        stem_width: The stem's width.

    Returns:
        ``2 * stem_width`` for a deep stem, else ``stem_width``.
    """
    return stem_width * 2 if stem_type else stem_width


def make_stem(
    stem: str,
    stem_type: str,
    stem_width: int,
    in_chans: int,
    norm_layer: NormLayer,
    replace_stem_pool: bool = False,
    aa_layer: str | None = None,
) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Build a stem's convolution(s), its norm and its pool.

    Args:
        stem: ``"imagenet"`` or ``"cifar"``.
        stem_type: ``""``, ``"deep"`` or ``"deep_tiered"``.
        stem_width: Width of the stem (see `stem_channels` for its output).
        in_chans: Input channels.
        norm_layer: Builds a norm layer for a channel count.
        replace_stem_pool: Replace the max-pool with a 3x3/2 convolution, norm and ReLU.
        aa_layer: Anti-aliasing (``"avg"``, ``"blur"``) for the pool, or ``None``.

    Returns:
        ``(conv1, bn1, maxpool)``, the modules a ResNet names so.

    Raises:
        ModelArgumentError: If `stem` or `stem_type` is unknown.
    """
    if stem not in STEMS:
        raise ModelArgumentError(f"unknown stem '{stem}'; use one of: {', '.join(STEMS)}")
    if stem_type not in STEM_TYPES:
        raise ModelArgumentError(f"unknown stem_type '{stem_type}'; use one of: {', '.join(map(repr, STEM_TYPES))}")
    out = stem_channels(stem_type, stem_width)
    stride = 2 if stem == "imagenet" else 1
    conv1: nn.Module
    if stem_type:
        first, second = (3 * (stem_width // 4), stem_width) if stem_type == "deep_tiered" else (stem_width, stem_width)
        conv1 = nn.Sequential(
            nn.Conv2d(in_chans, first, 3, stride=stride, padding=1, bias=False),
            norm_layer(first),
            nn.ReLU(inplace=True),
            nn.Conv2d(first, second, 3, stride=1, padding=1, bias=False),
            norm_layer(second),
            nn.ReLU(inplace=True),
            nn.Conv2d(second, out, 3, stride=1, padding=1, bias=False),
        )
    elif stem == "imagenet":
        conv1 = nn.Conv2d(in_chans, out, 7, stride=2, padding=3, bias=False)
    else:
        conv1 = nn.Conv2d(in_chans, out, 3, stride=1, padding=1, bias=False)
    return conv1, norm_layer(out), _stem_pool(stem, out, norm_layer, replace_stem_pool, aa_layer)


def _stem_pool(
    stem: str, channels: int, norm_layer: NormLayer, replace_stem_pool: bool, aa_layer: str | None
) -> nn.Module:
    if stem == "cifar":
        return nn.Identity()
    if replace_stem_pool:
        aa = create_aa(aa_layer, channels, stride=2)
        conv = nn.Conv2d(channels, channels, 3, stride=1 if aa is not None else 2, padding=1, bias=False)
        layers = [conv] + ([aa] if aa is not None else []) + [norm_layer(channels), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)
    if aa_layer == "avg":
        return nn.AvgPool2d(2)
    aa = create_aa(aa_layer, channels, stride=2)
    if aa is not None:
        return nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1), aa)
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
