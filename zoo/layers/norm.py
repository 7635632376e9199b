"""The norm layer of a block and a stem: BatchNorm, or GroupNorm with 32 groups (timm's ``resnet50_gn``)."""

from collections.abc import Callable
from functools import partial

from torch import nn

from registry.errors import ModelArgumentError

NormLayer = Callable[[int], nn.Module]
"""Builds a norm layer for a channel count."""


def group_norm(channels: int, num_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with the channel count first, so it can stand where BatchNorm stands.

    Args:
        channels: Channels to normalise.
        num_groups: Groups (32, as in Wu and He, 2018, and timm).

    Returns:
        The ``nn.GroupNorm``.
    """
    return nn.GroupNorm(num_groups, channels)


NORM_LAYERS: dict[str, NormLayer] = {"batchnorm": nn.BatchNorm2d, "groupnorm": partial(group_norm, num_groups=32)}
"""Norm layers by name, as ``norm_layer`` takes them."""


def get_norm_layer(norm_layer: str | NormLayer) -> NormLayer:
    """Resolve a norm layer name (or pass a callable through).

    Args:
        norm_layer: ``"batchnorm"``, ``"groupnorm"``, or a callable taking the channel count.

    Returns:
        A callable that builds the norm layer for a channel count.

    Raises:
        ModelArgumentError: If the name is unknown.
    """
    if callable(norm_layer):
        return norm_layer
    if norm_layer not in NORM_LAYERS:
        raise ModelArgumentError(f"unknown norm_layer '{norm_layer}'; use one of: {', '.join(NORM_LAYERS)}")
    return NORM_LAYERS[norm_layer]
