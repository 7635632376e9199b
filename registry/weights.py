"""Weight files and weight URIs: reading them safely and loading them strictly.

Local files are read as safetensors, or with ``torch.load(weights_only=True)``
so that a file carrying a pickle payload is refused without running it. URIs
such as ``runs:/RUN_ID`` are resolved by plugins registered for their scheme
(the ``zoo.weights`` entry-point group), so the registry knows nothing of MLflow.
"""

from __future__ import annotations

import os
import pickle
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from registry.errors import WeightsError

SCHEME_ENTRY_POINT_GROUP = "zoo.weights"
"""Entry-point group mapping a URI scheme (``runs``) to its resolver."""

_URI = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):/")
_resolvers: dict[str, Callable[[str, str], ResolvedWeights]] = {}
_lock = threading.Lock()
_schemes_discovered = False


@dataclass
class ResolvedWeights:
    """Weights fetched from a URI, with the builder arguments they need.

    Attributes:
        state_dict: Tensors keyed as in the model's ``state_dict()``.
        model_kwargs: Builder arguments that the weights imply, such as
            ``num_classes`` and ``stem``.
    """

    state_dict: Mapping[str, Any]
    model_kwargs: dict[str, Any] = field(default_factory=dict)


def register_weights_scheme(scheme: str, resolver: Callable[[str, str], ResolvedWeights]) -> None:
    """Teach `create_model` a weights URI scheme.

    Args:
        scheme: The URI scheme without ``:/``, such as ``"runs"``.
        resolver: ``resolver(uri, model_name)`` returning `ResolvedWeights`.
    """
    with _lock:
        _resolvers[scheme] = resolver


def _discover_schemes() -> None:
    global _schemes_discovered
    with _lock:
        if _schemes_discovered:
            return
        _schemes_discovered = True
        found = {ep.name: ep for ep in entry_points(group=SCHEME_ENTRY_POINT_GROUP)}
    for scheme, ep in found.items():
        if scheme not in _resolvers:
            _resolvers[scheme] = ep.load()


def is_weights_uri(weights: Any) -> bool:
    """Whether `weights` is a URI (``scheme:/...``) rather than a local path.

    Args:
        weights: The value given as ``create_model(..., weights=...)``.

    Returns:
        True for strings such as ``runs:/abc`` or ``models:/name@alias``.
    """
    if not isinstance(weights, str):
        return False
    match = _URI.match(weights)
    # A one-letter "scheme" is a Windows drive (C:/...), not a URI.
    return match is not None and len(match.group(1)) > 1 and not os.path.exists(weights)


def resolve_weights_uri(uri: str, model_name: str) -> ResolvedWeights:
    """Fetch the weights a URI names, through the resolver of its scheme.

    Args:
        uri: Such as ``"runs:/RUN_ID"``.
        model_name: The registered model they are for.

    Returns:
        The weights and the builder arguments they imply.

    Raises:
        WeightsError: If no resolver knows the scheme.
    """
    _discover_schemes()
    scheme = uri.split(":", 1)[0]
    resolver = _resolvers.get(scheme)
    if resolver is None:
        known = ", ".join(f"{s}:/" for s in sorted(_resolvers)) or "none"
        raise WeightsError(
            f"no resolver for weights URI '{uri}' (known schemes: {known}); "
            f"pass weights=PATH to a local .safetensors or .pth file"
        )
    return resolver(uri, model_name)


def read_weights_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state dict from a ``.safetensors`` or ``.pth``/``.pt``/``.ckpt`` file.

    Only tensors are loaded: ``.pth`` files go through
    ``torch.load(weights_only=True)``, which refuses pickled code. A Lightning
    checkpoint's ``state_dict`` is unwrapped and its ``model.`` prefix removed.

    Args:
        path: The file.

    Returns:
        The state dict, on the CPU.

    Raises:
        WeightsError: If the file is missing, unreadable or carries a pickle payload.
    """
    import torch  # deferred: `import registry` loads without torch

    file = Path(path)
    if not file.is_file():
        raise WeightsError(
            f"weights file '{file}' does not exist; pass weights=PATH to an existing .safetensors or .pth file"
        )
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file  # deferred: `import registry` loads without torch

            return dict(load_file(str(file), device="cpu"))
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"refused to load '{file}': it holds pickled Python objects, not only tensors "
            f"({str(exc).splitlines()[0][:120]}); save the weights with safetensors or "
            f"torch.save(model.state_dict())"
        ) from None
    except Exception as exc:
        raise WeightsError(
            f"could not read weights file '{file}' ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else 'no detail'}); "
            f"pass weights=PATH to a .safetensors or .pth state dict"
        ) from None
    return unwrap_state_dict(loaded, file)


def unwrap_state_dict(loaded: Any, source: Any) -> dict[str, Any]:
    """Take the model's tensors out of a loaded file's top-level object.

    Args:
        loaded: What ``torch.load`` returned.
        source: The file, for error messages.

    Returns:
        A flat ``{name: tensor}`` dict.

    Raises:
        WeightsError: If no state dict can be found in it.
    """
    import torch  # deferred: `import registry` loads without torch

    if isinstance(loaded, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"'{source}' holds no state dict of tensors; save one with torch.save(model.state_dict())")
    if loaded and all(k.startswith("model.") for k in loaded):
        loaded = {k[len("model.") :]: v for k, v in loaded.items()}  # Lightning's wrapper prefix
    return dict(loaded)


def load_state_dict_strict(model: Any, state_dict: Mapping[str, Any], source: str, name: str) -> None:
    """Load weights into a model, every key and shape matching.

    Args:
        model: The ``torch.nn.Module``.
        state_dict: The weights.
        source: Where they came from, for the error message.
        name: The model's registered name, for the error message.

    Raises:
        WeightsError: If keys are missing or unexpected, or shapes differ: one line naming
            the first mismatched key with both shapes (in the model's key order), then the
            first missing and the first unexpected key.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: {tuple(state_dict[k].shape)} in the weights, {tuple(own[k].shape)} in the model"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(
                f"shape mismatch at {mismatched[0]}"
                + (f" (+{len(mismatched) - 1} more)" if len(mismatched) > 1 else "")
            )
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        raise WeightsError(
            f"weights from '{source}' do not fit model '{name}': {'; '.join(parts)}; "
            f"use weights saved from this model with the same num_classes and stem"
        )
    model.load_state_dict(state_dict, strict=True)
