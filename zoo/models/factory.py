"""What every family's builders share: an architecture as data, its tags, and `create_resnet`.

An architecture is the `ResNet` arguments that make it (timm's ``model_args``), such as
``arch(Bottleneck, (3, 4, 6, 3), cardinality=32, width_per_group=4)`` for ResNeXt-50 32x4d.
Its block settings become registry tags (`arch_tags`), so ``list_models(tags=["se"])`` finds
every squeeze-excitation model.
"""

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from torch import nn

from registry import register_model
from registry.errors import ModelArgumentError
from zoo.layers.attention import ATTENTION
from zoo.pretrained import WeightsArg, build_timm_pretrained
from zoo.resnet import Block, ResNet, take_indices

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

TIMM_ARGS = (
    inspect.Parameter("pretrained", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
    inspect.Parameter("in_chans", inspect.Parameter.KEYWORD_ONLY, default=3, annotation=int),
    inspect.Parameter("global_pool", inspect.Parameter.KEYWORD_ONLY, default="avg", annotation=str),
    inspect.Parameter("output_stride", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=int | None),
    inspect.Parameter("features_only", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
    inspect.Parameter("out_indices", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Sequence[int] | None),
)
"""The keywords every scratch builder takes besides its own, as timm's builders take them.

``pretrained`` (only ``False``: a scratch model has no weights), ``in_chans``,
``global_pool`` (``"avg"``, ``"max"``, ``""``), ``output_stride`` (dilated stages below 32),
``features_only`` and ``out_indices`` (a backbone, see `backbone`)."""


def takes_timm_args(builder: Builder) -> Builder:
    """Show a builder's ``**kwargs`` as the `TIMM_ARGS` it forwards, so the registry names them and refuses others.

    Args:
        builder: A builder ending in ``**kwargs`` that it hands to `create_resnet`.

    Returns:
        The same builder, with its signature listing the `TIMM_ARGS`.
    """
    signature = inspect.signature(builder)
    own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    builder.__signature__ = signature.replace(parameters=[*own, *TIMM_ARGS])  # type: ignore[attr-defined]  # read by inspect
    return builder


def backbone(model: ResNet, features_only: bool = False, out_indices: Sequence[int] | None = None) -> nn.Module:
    """The model itself, or with ``features_only`` timm's ``FeatureListNet`` of its feature maps.

    The maps are the stem's (index 0) and each stage's; the wrapper keeps the model's
    modules (and weights) up to the last map asked for, and its ``feature_info`` says each
    map's channels, reduction and module, as a timm model's ``features_only`` twin does.

    Args:
        model: A zoo `ResNet`.
        features_only: Return the feature maps instead of logits.
        out_indices: Which maps (default all); see `zoo.resnet.take_indices`.

    Returns:
        `model`, or a ``timm.models.FeatureListNet`` whose forward returns a list of maps.

    Raises:
        ModelArgumentError: If `out_indices` is given without `features_only`, or names a map
            the model does not have (the message lists those it has).
    """
    if not features_only:
        if out_indices is not None:
            raise ModelArgumentError("out_indices picks feature maps; give features_only=True with it")
        return model
    from timm.models import FeatureListNet  # deferred: timm takes a second to import; only backbones need it

    taken = take_indices(len(model.feature_info), out_indices)
    return FeatureListNet(model, out_indices=tuple(taken))


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


def create_resnet(
    architecture: Arch,
    num_classes: int,
    *,
    pretrained: bool = False,
    output_stride: int | None = None,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build an architecture with a builder's arguments (its own and the `TIMM_ARGS`).

    Args:
        architecture: From `arch`.
        num_classes: Classes of the head.
        pretrained: Must be ``False``: a scratch model has no weights.
        output_stride: The last map's reduction (``None``: the model's own, 32, or 8 with the
            ``cifar`` stem); smaller dilates the later stages, as timm's.
        features_only: Return a backbone of the feature maps (see `backbone`).
        out_indices: Which feature maps.
        **kwargs: `ResNet` arguments (``stem``, ``zero_init_last``, ``drop_path_rate``,
            ``in_chans``, ``global_pool``).

    Returns:
        The zoo's `ResNet`, or its backbone.
    """
    if pretrained:
        raise ModelArgumentError(
            "a *_scratch model has no weights; use its *_timm_pretrained twin, or weights=PATH for your own"
        )
    model = ResNet(num_classes=num_classes, output_stride=output_stride, **architecture, **kwargs)
    return backbone(model, features_only, out_indices)


def timm_twin(
    module: str, timm_arch: str, architecture: Arch, tag: str, family: str, title: str
) -> Callable[..., nn.Module]:
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

    def builder(
        num_classes: int = 10,
        *,
        stem: str = "imagenet",
        pretrained: bool = True,
        weights: WeightsArg = None,
        timm_name: str = default,
        global_pool: str = "avg",
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
    ) -> nn.Module:
        def make(classes: int) -> ResNet:
            return ResNet(num_classes=classes, global_pool=global_pool, **architecture)

        model = build_timm_pretrained(name, make, timm_name, num_classes, stem, pretrained, weights)
        return backbone(model, features_only, out_indices)  # the weights stay: a backbone keeps the modules

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
