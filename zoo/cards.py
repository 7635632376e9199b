"""The published ImageNet top-1 of timm's weights, for the zoo's model cards.

A card's ImageNet top-1 is a published figure, never one measured or guessed here, and it
comes with its source. A timm tag whose file is torchvision's file (timm's pretrained config
names the same download URL, as for ``resnext101_32x8d.tv_in1k``) gets torchvision's weight
metadata (``Weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]``). The other timm tags get
timm's own figure from ``results/results-imagenet.csv`` of its repository, which its package
does not ship: the zoo ships the rows of its tags (`zoo.published`), and a card reads the row
at the weights' input size in timm's pretrained config. A tag without a row says so.

`zoo` registers `timm_top1_of` as the ``timm`` scheme's source
(`registry.register_top1_source`), which the registry asks when it measures a card
(`registry.info.measure`, the indexer).
"""

from __future__ import annotations

import functools

from zoo.published import timm_top1


@functools.cache
def torchvision_top1_by_url() -> dict[str, tuple[float, str]]:
    """The ImageNet-1K top-1 torchvision publishes for every classification weights file, by its URL.

    Returns:
        URL to ``(acc@1, source)``, the source naming torchvision's version and enum member;
        empty when torchvision is not installed.
    """
    try:
        import torchvision  # deferred: heavy, and only measuring a pretrained card needs it
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


def timm_top1_of(tag: str) -> tuple[float | None, str]:
    """The published ImageNet-1K top-1 of timm's weights, and where it is published.

    Args:
        tag: timm's ``architecture.tag``, such as ``"resnext101_32x8d.tv_in1k"`` (the part of
            a model's ``pretrained`` after ``timm:``).

    Returns:
        ``(top-1 in percent, source)``, or ``(None, why there is no figure)``.
    """
    url, img_size = _timm_cfg(tag)
    if url and url in torchvision_top1_by_url():
        acc, source = torchvision_top1_by_url()[url]
        return acc, f"{source} (timm's {tag} is the same file)"
    if img_size is None:
        return None, f"timm has no pretrained config for {tag}: no published accuracy is known"
    return timm_top1(tag, img_size)
