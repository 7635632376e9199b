"""What every family's builders share: an architecture as data, its tags, and `create_resnet`.

An architecture is the `ResNet` arguments that make it (timm's ``model_args``), such as
``arch(Bottleneck, (3, 4, 6, 3), cardinality=32, width_per_group=4)`` for ResNeXt-50 32x4d.
Its block settings become registry tags (`arch_tags`), so ``list_models(tags=["se"])`` finds
every squeeze-excitation model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from registry import register_model
from zoo.layers.attention import ATTENTION
from zoo.pretrained import WeightsArg, build_timm_pretrained
from zoo.resnet import Block, ResNet

Arch = dict[str, Any]
"""`ResNet` arguments that define an architecture (``block``, ``layers`` and the knobs)."""


def arch(block: Block, layers: Sequence[int], **kwargs: Any) -> Arch:
    """Describe an architecture by its `ResNet` arguments.

    Args:
        block: `Bottleneck` or `BasicBlock`.
        layers: Blocks per stage.
        **kwargs: Further `ResNet` arguments (``cardinality``, ``stem_type``, ``avg_down``, ...).

    Returns:
        The arguments as one dict, to hand to `create_resnet`.
    """
    return {"block": block, "layers": tuple(layers), **kwargs}


def _attention_name(attn_layer: Any) -> str | None:
    if attn_layer is None or isinstance(attn_layer, str):
        return attn_layer
    made = attn_layer.func if isinstance(attn_layer, partial) else attn_layer
    return next((name for name, cls in ATTENTION.items() if cls is made), "attention")


def arch_tags(architecture: Arch) -> tuple[str, ...]:
    """The block and stem settings of an architecture, as registry tags.

    Args:
        architecture: From `arch`.

    Returns:
        Tags such as ``("bottleneck", "groups-32", "width-per-group-4", "deep-stem", "avg-down", "se")``.
    """
    a = architecture
    tags = [a["block"].__name__.lower()]
    if a.get("cardinality", 1) != 1:
        tags.append(f"groups-{a['cardinality']}")
    if a.get("width_per_group", 64) != 64:
        tags.append(f"width-per-group-{a['width_per_group']}")
    tags += {"deep": ["deep-stem"], "deep_tiered": ["deep-stem", "tiered-stem"]}.get(a.get("stem_type", ""), [])
    if a.get("replace_stem_pool"):
        tags.append("no-maxpool")
    if a.get("avg_down"):
        tags.append("avg-down")
    attention = _attention_name(a.get("attn_layer"))
    if attention:
        tags.append(attention)
    if a.get("aa_layer"):
        tags.append(f"aa-{a['aa_layer']}")
    if a.get("preact"):
        tags.append("preact")
    if a.get("norm_layer", "batchnorm") != "batchnorm":
        tags.append(str(a["norm_layer"]))
    return tuple(tags)


def scratch_meta(family: str, architecture: Arch, description: str) -> dict[str, Any]:
    """`register_model` keywords for a scratch builder of an architecture.

    Args:
        family: Its family, such as ``"resnext"``.
        architecture: From `arch`.
        description: One line for tables.

    Returns:
        ``family``, ``description`` and ``tags`` (``scratch`` and the `arch_tags`).
    """
    return {"family": family, "description": description, "tags": ("scratch", *arch_tags(architecture))}


def create_resnet(architecture: Arch, num_classes: int, **kwargs: Any) -> ResNet:
    """Build an architecture with a builder's arguments.

    Args:
        architecture: From `arch`.
        num_classes: Classes of the head.
        **kwargs: Builder arguments (``stem``, ``zero_init_last``, ``drop_path_rate``).

    Returns:
        The zoo's `ResNet`.
    """
    return ResNet(num_classes=num_classes, **architecture, **kwargs)


def timm_twin(
    module: str, timm_arch: str, architecture: Arch, tag: str, family: str, title: str
) -> Callable[..., ResNet]:
    """Register ``<timm_arch>_timm_pretrained``: the architecture filled with timm's weights.

    The builder takes the arguments every ``*_timm_pretrained`` builder takes (see
    `zoo.pretrained`); ``timm_name`` defaults to ``<timm_arch>.<tag>`` and picks any other of
    the architecture's tags.

    Args:
        module: The registering module's ``__name__`` (the builder is listed as defined there).
        timm_arch: timm's architecture name, such as ``"resnext50_32x4d"``.
        architecture: From `arch`: the same as timm's, so its weights load key for key.
        tag: timm's weights tag to load by default, such as ``"a1h_in1k"``.
        family: Its family, such as ``"resnext"``.
        title: The architecture in words, such as ``"ResNeXt-50 32x4d"``.

    Returns:
        The registered builder.
    """
    name = f"{timm_arch}_timm_pretrained"
    default = f"{timm_arch}.{tag}"
    make = partial(create_resnet, architecture)

    def builder(
        num_classes: int = 10,
        *,
        stem: str = "imagenet",
        pretrained: bool = True,
        weights: WeightsArg = None,
        timm_name: str = default,
    ) -> ResNet:
        return build_timm_pretrained(name, make, timm_name, num_classes, stem, pretrained, weights)

    builder.__name__ = builder.__qualname__ = name
    builder.__module__ = module
    builder.__doc__ = f"{title} with timm's ``{default}`` weights (``timm_name`` picks another tag)."
    register = register_model(
        name,
        family=family,
        description=f"{title} with timm's weights ({default}) in the zoo's architecture",
        pretrained=f"timm:{default}",
        tags=("pretrained", "imagenet", *arch_tags(architecture)),
    )
    return register(builder)
