"""timm's ImageNet weights inside the zoo's own ResNet.

Where the weights come from is resolved here, in one place:

1. ``weights=PATH``: a local ``.safetensors`` or ``.pth`` file (tensors only);
2. otherwise timm's own download (the Hugging Face Hub, or timm's URL), which
   reads the Hugging Face cache when the machine is offline.

The weights load key for key into `zoo.resnet.ResNet`, which uses the
same module names as timm's ResNet; only the head is replaced when
``num_classes`` differs from the weights' 1000 ImageNet classes. The
``*_timm_pretrained`` builders are registered next to their scratch twins in
`zoo.models`, by `zoo.models.factory.timm_twin`.

Builder arguments (the same for every ``*_timm_pretrained`` builder):
    num_classes: Classes of the head; other than 1000, only the head is new.
    stem: Must be ``"imagenet"``, the stem the weights were trained with.
    pretrained: ``False`` builds the architecture without weights (for metadata).
    weights: A local ``.safetensors``/``.pth`` file to use instead of timm's download.
    timm_name: timm's weights to load (``architecture.tag``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from registry.errors import ModelArgumentError, WeightsError
from registry.weights import load_state_dict_strict, read_weights_file
from zoo.resnet import ResNet, check_num_classes

WeightsArg = str | os.PathLike[str] | None


def timm_pretrained_cfg(timm_name: str) -> dict[str, Any]:
    """Read what timm's weights expect (mean, std, input size, interpolation).

    Reads timm's built-in table; nothing is downloaded.

    Args:
        timm_name: timm's ``architecture.tag``, such as ``"resnet50.a1_in1k"``.

    Returns:
        The relevant fields of timm's pretrained config, plus ``source`` and ``tag``.
    """
    import timm  # deferred: timm takes a second to import; only pretrained models need it

    try:
        cfg = timm.models.get_pretrained_cfg(timm_name) if "." in timm_name else None
    except RuntimeError:  # timm's word for a tag its architecture does not have
        cfg = None
    if cfg is None:
        raise WeightsError(unknown_tag_message(timm_name, timm.list_pretrained(f"{timm_name.split('.')[0]}.*")))
    full: dict[str, Any] = cfg.to_dict()  # type: ignore[no-untyped-call]  # timm's PretrainedCfg.to_dict has no hints
    keys = ["input_size", "pool_size", "interpolation", "crop_pct", "mean", "std", "num_classes", "hf_hub_id"]
    keys.append("license")
    return {"source": "timm", "tag": timm_name, **{k: full[k] for k in keys if k in full}}


def unknown_tag_message(timm_name: str, tags: list[str]) -> str:
    """One line for a ``timm_name`` timm has no weights for, listing what its architecture has.

    Args:
        timm_name: The ``architecture.tag`` asked for.
        tags: timm's tags of that architecture (``timm.list_pretrained("arch.*")``).

    Returns:
        The message.
    """
    arch = timm_name.split(".")[0]
    if not tags:
        return f"timm has no pretrained weights named '{timm_name}', nor any for '{arch}'; see timm.list_pretrained()"
    return f"timm has no pretrained weights named '{timm_name}'; pass timm_name= one of {arch}'s: {', '.join(tags)}"


def download_timm_state_dict(model: ResNet, timm_name: str, model_name: str) -> None:
    """Load timm's weights for `timm_name` into a 1000-class model via timm's own download.

    timm fetches the file (the Hugging Face Hub or its URL, the local cache
    when offline); the zoo then loads it key for key. A failure to fetch and
    weights that do not fit are told apart: they have different fixes.

    Args:
        model: A zoo ResNet with ``num_classes=1000`` and the matching depth.
        timm_name: timm's ``architecture.tag``.
        model_name: The registered name, for error messages.

    Raises:
        WeightsError: If the download fails and the cache has no copy, or the weights do not fit.
    """
    from timm.models import get_pretrained_cfg, load_pretrained  # deferred, as in timm_pretrained_cfg

    fetched: dict[str, Any] = {}

    def keep(state_dict: dict[str, Any], _model: Any) -> dict[str, Any]:
        fetched["state_dict"] = state_dict  # timm calls this once the file is in hand, before loading it
        return state_dict

    pretrained_cfg = get_pretrained_cfg(timm_name)
    if pretrained_cfg is None:
        raise WeightsError(f"timm has no pretrained weights named '{timm_name}'; see timm.list_pretrained()")
    cfg: dict[str, Any] = pretrained_cfg.to_dict()  # type: ignore[no-untyped-call]  # as in timm_pretrained_cfg
    try:
        load_pretrained(model, pretrained_cfg=cfg, num_classes=cfg["num_classes"], filter_fn=keep, strict=True)
    except Exception as exc:  # the Hub, urllib and torch raise many types for a failed fetch
        if "state_dict" in fetched:  # fetched, so the weights themselves do not fit: say which keys
            load_state_dict_strict(model, fetched["state_dict"], f"timm:{timm_name}", model_name)
            raise
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise WeightsError(
            f"could not download timm weights '{timm_name}' ({type(exc).__name__}: {detail}); "
            f"download them on a machine that is online, or pass weights=PATH to a local "
            f".safetensors or .pth file"
        ) from None


def build_timm_pretrained(
    model_name: str,
    make_model: Callable[[int], ResNet],
    timm_name: str,
    num_classes: int,
    stem: str,
    pretrained: bool,
    weights: WeightsArg,
) -> ResNet:
    """Build a zoo ResNet and fill it with timm's weights.

    Args:
        model_name: The registered name, for error messages.
        make_model: Builds the zoo ResNet for a class count.
        timm_name: timm weights to use, such as ``"resnet50.a1_in1k"``.
        num_classes: Classes of the returned model's head.
        stem: Must be ``"imagenet"``: timm's 7x7 ``conv1`` fits no other stem.
        pretrained: ``False`` builds the architecture only (for metadata).
        weights: A local weights file instead of the download.

    Returns:
        The model, with ``pretrained_cfg`` describing what the weights expect.
    """
    check_num_classes(num_classes)
    if stem != "imagenet":
        raise ModelArgumentError(
            f"'{model_name}' takes only stem='imagenet': timm's 7x7 conv1 weights cannot load "
            f"into the '{stem}' stem; use a *_scratch model for stem='{stem}'"
        )
    cfg = timm_pretrained_cfg(timm_name)
    if not pretrained:
        model = make_model(num_classes)
    elif weights is not None:
        state_dict = read_weights_file(weights)
        file_classes = state_dict["fc.weight"].shape[0] if "fc.weight" in state_dict else cfg["num_classes"]
        model = make_model(file_classes)
        load_state_dict_strict(model, state_dict, str(weights), model_name)
        cfg["weights"] = str(weights)
    else:
        model = make_model(cfg["num_classes"])
        download_timm_state_dict(model, timm_name, model_name)
        cfg["weights"] = "download"
    if model.num_classes != num_classes:
        model.reset_classifier(num_classes)
    model.pretrained_cfg = {**model.pretrained_cfg, **cfg}  # timm's keys for the layout, the weights' for the input
    return model
