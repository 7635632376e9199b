"""Model facts measured from the model itself: parameters, FLOPs, and its card's other fields.

A card's fields come from the built model (``block_settings``, ``pretrained_cfg``) and, for
its weights' published accuracy, from whoever registered a source for the weights' scheme
(`register_top1_source`: the zoo teaches the registry timm's tags). What is known about
models lives with them; the registry only asks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from registry.core import build, get_spec, indexed_entry
from registry.index import indexed_facts

Top1Source = Callable[[str], tuple[float | None, str]]
"""``lookup(tag)`` for one weights scheme: ``(top-1 in percent, source)``, or ``(None, why there is none)``."""

_top1_sources: dict[str, Top1Source] = {}

NOT_PUBLISHED_SCRATCH = "random init: no published accuracy"
"""The top-1 source of a model without pretrained weights."""

NOT_MEASURED = "not measured"
"""How every reason for empty throughput figures begins."""

NOT_MEASURED_WITH_ARGUMENTS = f"{NOT_MEASURED}: the benchmark measures models with their builder's default arguments"
"""Why a card measured with other builder arguments has no throughput."""

NO_THROUGHPUT_IN_INDEX = f"{NOT_MEASURED}: its package's index carries no throughput figures"
"""Why a card that no index entry (or one written before the throughput fields) describes has none."""


def register_top1_source(scheme: str, lookup: Top1Source) -> None:
    """Teach the cards the published ImageNet-1K top-1 of one weights scheme's tags.

    Args:
        scheme: The part of a model's ``pretrained`` before ``:``, such as ``"timm"``.
        lookup: ``lookup(tag)`` returning ``(top-1 in percent, source)``, or ``(None, why not)``.
    """
    _top1_sources[scheme] = lookup


def published_top1(pretrained: str | None) -> tuple[float | None, str]:
    """The published ImageNet-1K top-1 of a model's pretrained weights, and where it is published.

    Args:
        pretrained: The weights' source as registered, such as ``"timm:resnext101_32x8d.tv_in1k"``;
            ``None`` for a scratch model.

    Returns:
        ``(top-1 in percent, source)`` from the scheme's `register_top1_source`, or
        ``(None, why there is no figure)``.
    """
    if pretrained is None:
        return None, NOT_PUBLISHED_SCRATCH
    scheme, _, tag = pretrained.partition(":")
    lookup = _top1_sources.get(scheme)
    if lookup is None or not tag:
        return None, f"no published accuracy is known for '{pretrained}' weights"
    return lookup(tag)


def count_flops(model: Any, input_size: tuple[int, int, int], device: str = "meta") -> int:
    """Count the FLOPs of one forward pass with ``torch.utils.flop_counter``.

    A multiply-add counts as two FLOPs, as ``FlopCounterMode`` counts them.

    Args:
        model: The ``torch.nn.Module``, on ``device``.
        input_size: ``(channels, height, width)`` of one image.
        device: Device of the dummy input; ``"meta"`` allocates no memory.

    Returns:
        FLOPs for a batch of one image.
    """
    import torch  # deferred: `import registry` loads without torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.empty((1, *input_size), device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())


@functools.cache
def measure(name: str, frozen_kwargs: tuple[tuple[str, Any], ...]) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
    """Build a model on the meta device and measure it (cached per name and arguments).

    Args:
        name: Registered model name.
        frozen_kwargs: Builder arguments as sorted ``(name, value)`` pairs.

    Returns:
        ``(parameters, FLOPs of one image at the default input size, pretrained_cfg, card)``,
        the card's fields being ``block`` (the model's ``block_settings``), ``top1`` and
        ``top1_source`` (`published_top1`) and ``license`` (the weights' config's).
    """
    import torch  # deferred: `import registry` loads without torch

    spec = get_spec(name)
    kwargs = dict(frozen_kwargs)
    if spec.is_pretrained:
        kwargs.setdefault("pretrained", False)  # metadata never downloads weights
    with torch.device("meta"):
        model = build(spec, kwargs)
    num_params = sum(p.numel() for p in model.parameters())
    flops = count_flops(model, spec.input_size)
    # What the weights expect: a scratch model's own cfg (its input size, for timm's tools) is no card's.
    pretrained_cfg = dict(getattr(model, "pretrained_cfg", None) or {}) if spec.is_pretrained else {}
    top1, source = published_top1(spec.pretrained)
    card = {
        "block": dict(getattr(model, "block_settings", None) or {}),  # the zoo's ResNet has them
        "top1": top1,
        "top1_source": source,
        "license": pretrained_cfg.get("license") if spec.is_pretrained else None,
    }
    return num_params, flops, pretrained_cfg, card


def model_info(name: str, **kwargs: Any) -> dict[str, Any]:
    """Describe a registered model: its card, measured from the model built on the meta device.

    With the builder's default arguments, the facts come from its package's generated
    index where it has one (`registry.index`), and nothing is built: before the plugins
    are imported, not even the plugin (`registry.core.indexed_entry`). Nothing is
    downloaded and no memory is allocated for weights.

    Args:
        name: Registered model name.
        **kwargs: Builder arguments (such as ``num_classes=1000``) to measure with.

    Returns:
        A dict with ``name``, ``family``, ``description``, ``input_size``,
        ``pretrained`` (source or ``None``), ``tags``, ``num_params``,
        ``gflops`` (one image at the default input size, a multiply-add
        counted as two FLOPs), ``pretrained_cfg`` (mean, std, input size and
        interpolation the weights expect; empty for scratch models), ``block``
        (block settings), ``top1`` and ``top1_source`` (the weights' published
        ImageNet-1K top-1 and where it is published, or ``None`` and why not),
        ``license`` (the weights' licence), and ``train_img_s``, ``infer_img_s`` (images
        per second measured by ``benchmarks/test_throughput_bench.py``, as its package's
        index carries them: the zoo's indexer copies them from ``zoo/throughput.json``;
        ``None`` where not measured, and with other builder arguments) with
        ``throughput_source`` (machine, batch, size, precision and date, or why not).
    """
    entry = None if kwargs else indexed_entry(name)
    if entry is not None:  # the indexes cover every plugin: no import, no build
        described = {k: entry.get(k) for k in ("family", "description", "pretrained")}
        described["input_size"], described["tags"] = tuple(entry["input_size"]), tuple(entry.get("tags", ()))
        facts: dict[str, Any] = entry
    else:
        spec = get_spec(name)
        described = {
            "family": spec.family,
            "description": spec.description,
            "pretrained": spec.pretrained,
            "input_size": spec.input_size,
            "tags": spec.tags,
        }
        indexed = None if kwargs else indexed_facts(spec)
        if indexed is not None:  # the package's generated index still describes this builder
            facts = indexed
        else:
            num_params, flops, pretrained_cfg, card = measure(name, tuple(sorted(kwargs.items())))
            facts = {"num_params": num_params, "flops": flops, "pretrained_cfg": pretrained_cfg, **card}
    return {
        "name": name,
        **{k: described[k] for k in ("family", "description", "input_size", "pretrained", "tags")},
        "num_params": facts["num_params"],
        "gflops": facts["flops"] / 1e9,
        "pretrained_cfg": dict(facts["pretrained_cfg"]),
        "block": dict(facts.get("block") or {}),
        "top1": facts.get("top1"),
        "top1_source": facts.get("top1_source", ""),
        "license": facts.get("license"),
        "train_img_s": facts.get("train_img_s"),
        "infer_img_s": facts.get("infer_img_s"),
        "throughput_source": NOT_MEASURED_WITH_ARGUMENTS
        if kwargs
        else facts.get("throughput_source") or NO_THROUGHPUT_IN_INDEX,
    }
