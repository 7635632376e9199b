"""Model facts measured from the model itself: parameters and FLOPs."""

from __future__ import annotations

import functools
from typing import Any

from registry.core import build, get_spec
from registry.index import indexed_facts


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
def measure(name: str, frozen_kwargs: tuple[tuple[str, Any], ...]) -> tuple[int, int, dict[str, Any]]:
    """Build a model on the meta device and measure it (cached per name and arguments).

    Args:
        name: Registered model name.
        frozen_kwargs: Builder arguments as sorted ``(name, value)`` pairs.

    Returns:
        ``(parameters, FLOPs of one image at the default input size, pretrained_cfg)``.
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
    return num_params, flops, dict(getattr(model, "pretrained_cfg", None) or {})


def model_info(name: str, **kwargs: Any) -> dict[str, Any]:
    """Describe a registered model, measured from the model built on the meta device.

    With the builder's default arguments, the facts come from its package's generated
    index where it has one (`registry.index`), and nothing is built. Nothing is
    downloaded and no memory is allocated for weights.

    Args:
        name: Registered model name.
        **kwargs: Builder arguments (such as ``num_classes=1000``) to measure with.

    Returns:
        A dict with ``name``, ``family``, ``description``, ``input_size``,
        ``pretrained`` (source or ``None``), ``tags``, ``num_params``,
        ``gflops`` (one image at the default input size, a multiply-add
        counted as two FLOPs) and ``pretrained_cfg`` (mean, std, input size and
        interpolation the weights expect; empty for scratch models).
    """
    spec = get_spec(name)
    facts = None if kwargs else indexed_facts(spec)
    if facts is not None:  # the package's generated index still describes this builder
        num_params, flops, pretrained_cfg = facts["num_params"], facts["flops"], dict(facts["pretrained_cfg"])
    else:
        num_params, flops, pretrained_cfg = measure(name, tuple(sorted(kwargs.items())))
    return {
        "name": spec.name,
        "family": spec.family,
        "description": spec.description,
        "input_size": spec.input_size,
        "pretrained": spec.pretrained,
        "tags": spec.tags,
        "num_params": num_params,
        "gflops": flops / 1e9,
        "pretrained_cfg": pretrained_cfg,
    }
