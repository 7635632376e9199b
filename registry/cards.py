"""The facts of a model card that come from outside the model: the weights' published accuracy.

A card's ImageNet top-1 is a published figure, never one measured or guessed here, and it
comes with its source. A timm tag whose file is torchvision's file (timm's pretrained config
names the same download URL, as for ``resnext101_32x8d.tv_in1k``) gets torchvision's weight
metadata (``Weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]``). The other timm tags get
timm's own figure from ``results/results-imagenet.csv`` of its repository, which its package
does not ship: the zoo ships the rows of its tags (`registry.published`), and a card reads
the row at the weights' input size in timm's pretrained config. A tag without a row says so.

Used when a model is measured (`registry.info.measure`, the indexer); importing this
module does not import torch, timm or torchvision.
"""

from __future__ import annotations

import functools
from typing import Any

from registry.published import timm_top1

NOT_PUBLISHED_SCRATCH = "random init: no published accuracy"
"""The top-1 source of a model without pretrained weights."""


@functools.cache
def torchvision_top1_by_url() -> dict[str, tuple[float, str]]:
    """The ImageNet-1K top-1 torchvision publishes for every classification weights file, by its URL.

    Returns:
        URL to ``(acc@1, source)``, the source naming torchvision's version and enum member;
        empty when torchvision is not installed.
    """
    try:
        import torchvision  # deferred: heavy, and only the measuring path needs it
        from torchvision import models
    except ImportError:
        return {}
    found = {}
    for builder in models.list_models(module=models):
        for weights in models.get_model_weights(builder):
            acc = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
            if acc is not None:
                source = (
                    f"torchvision {torchvision.__version__.split('+')[0]} "
                    f"{type(weights).__name__}.{weights.name}.meta['_metrics']['ImageNet-1K']['acc@1']"
                )
                found[weights.url] = (float(acc), source)
    return found


def _timm_cfg(tag: str) -> tuple[str | None, int | None]:
    """The download URL and input size (pixels a side) of timm's weights, ``None`` where timm has none."""
    from timm.models import get_pretrained_cfg  # deferred: timm takes a second to import; only measuring needs it

    try:
        cfg = get_pretrained_cfg(tag)
    except RuntimeError:  # timm's word for a tag its architecture does not have
        cfg = None
    url = getattr(cfg, "url", None) if cfg is not None else None
    input_size = getattr(cfg, "input_size", None) if cfg is not None else None
    return (str(url) if url else None), (int(input_size[-1]) if input_size else None)


def published_top1(pretrained: str | None) -> tuple[float | None, str]:
    """The published ImageNet-1K top-1 of a model's pretrained weights, and where it is published.

    Args:
        pretrained: The weights' source as registered, such as ``"timm:resnext101_32x8d.tv_in1k"``;
            ``None`` for a scratch model.

    Returns:
        ``(top-1 in percent, source)``, or ``(None, why there is no figure)``.
    """
    if pretrained is None:
        return None, NOT_PUBLISHED_SCRATCH
    scheme, _, tag = pretrained.partition(":")
    if scheme != "timm" or not tag:
        return None, f"no published accuracy is known for '{pretrained}' weights"
    url, img_size = _timm_cfg(tag)
    if url and url in torchvision_top1_by_url():
        acc, source = torchvision_top1_by_url()[url]
        return acc, f"{source} (timm's {tag} is the same file)"
    if img_size is None:
        return None, f"timm has no pretrained config for {tag}: no published accuracy is known"
    return timm_top1(tag, img_size)


def card_facts(model: Any, pretrained: str | None, pretrained_cfg: dict[str, Any]) -> dict[str, Any]:
    """The card fields of a built model besides its size: block settings, accuracy, licence.

    Args:
        model: The built model; its ``block_settings`` (a dict, as the zoo's `ResNet` has)
            describe its block, and a model without one has none.
        pretrained: The weights' source as registered, or ``None``.
        pretrained_cfg: The weights' config (``license`` is read from it).

    Returns:
        ``block`` (a dict), ``top1`` and ``top1_source``, ``license``.
    """
    top1, source = published_top1(pretrained)
    return {
        "block": dict(getattr(model, "block_settings", None) or {}),
        "top1": top1,
        "top1_source": source,
        "license": pretrained_cfg.get("license") if pretrained is not None else None,
    }
