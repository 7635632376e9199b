"""Names to builders: registration, lookup, plugin discovery and `create_model`.

Importing this module does not import torch: builders and weights are only
touched when a model is created or measured.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import threading
import warnings
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, TypeVar

import registry.weights as weight_sources
from registry.errors import ModelArgumentError, RegistrationError, UnknownModelError
from registry.index import covering_index
from registry.spec import ModelSpec

ENTRY_POINT_GROUP = "zoo.models"
"""Entry-point group through which packages (the zoo's own included) add models."""

_F = TypeVar("_F", bound=Callable[..., Any])
_models: dict[str, ModelSpec] = {}
_lock = threading.RLock()
_discovered = False


def register_model(
    name: str | None = None,
    *,
    family: str = "",
    description: str = "",
    input_size: tuple[int, int, int] = (3, 224, 224),
    pretrained: str | None = None,
    tags: Iterable[str] = (),
) -> Callable[[_F], _F]:
    """Register a model builder under a name, as a decorator.

    Registering the same builder again (a module imported twice) is allowed;
    a name taken by a different builder is an error.

    Args:
        name: Registered name; defaults to the builder function's name.
        family: Architecture family, such as ``"resnet"``.
        description: One line for tables and docs.
        input_size: Default input ``(channels, height, width)``.
        pretrained: Source of pretrained weights, or ``None`` for random init.
        tags: Labels to filter on with ``list_models(tags=...)``.

    Returns:
        A decorator that registers the builder and returns it unchanged.

    Raises:
        RegistrationError: If the name is taken by a different builder.
    """

    def decorator(builder: _F) -> _F:
        spec = ModelSpec(
            name=name or builder.__name__,
            builder=builder,
            family=family,
            description=description or (inspect.getdoc(builder) or "").split("\n")[0],
            input_size=tuple(input_size),  # type: ignore[arg-type]
            pretrained=pretrained,
            tags=tuple(tags),
        )
        _add(spec)
        return builder

    return decorator


def _same_builder(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # A reloaded module makes a new function object for the same builder.
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )


def _add(spec: ModelSpec) -> None:
    with _lock:
        taken = _models.get(spec.name)
        if taken is not None and not _same_builder(taken.builder, spec.builder):
            raise RegistrationError(
                f"model name '{spec.name}' is already registered by "
                f"{taken.builder.__module__}.{taken.builder.__qualname__}; "
                f"register {spec.builder.__module__}.{spec.builder.__qualname__} under another name"
            )
        _models[spec.name] = spec


def unregister_model(name: str) -> None:
    """Remove a registered model (for tests and interactive sessions).

    Args:
        name: Registered name; unknown names are ignored.
    """
    with _lock:
        _models.pop(name, None)


def discover_plugins() -> None:
    """Import every package that declares the ``zoo.models`` entry point, once.

    A plugin that fails to import is skipped with one warning naming it.
    Called lazily by every lookup; calling it again does nothing.
    """
    global _discovered
    with _lock:
        if _discovered:
            return
        _discovered = True  # set first: a plugin may itself call the registry
        seen: set[tuple[str, str]] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if (ep.name, ep.value) in seen:
                continue
            seen.add((ep.name, ep.value))
            try:
                ep.load()
            except Exception as exc:  # a broken plugin must not break the zoo
                warnings.warn(
                    f"skipped the {ENTRY_POINT_GROUP} plugin '{ep.name}' ({ep.value}): "
                    f"it failed to import ({type(exc).__name__}: {exc})",
                    RuntimeWarning,
                    stacklevel=3,
                )


def get_spec(name: str) -> ModelSpec:
    """Return the `ModelSpec` registered under a name.

    Args:
        name: Registered model name.

    Returns:
        The model's spec.

    Raises:
        UnknownModelError: If no model has that name; the message lists the
            closest registered names.
    """
    discover_plugins()
    try:
        return _models[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_models), n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else f"{len(_models)} models are registered"
        raise UnknownModelError(
            f"unknown model '{name}' ({hint}); `zoo models` lists them all, and `@registry.register_model` adds one"
        ) from None


def indexed_entry(name: str) -> dict[str, Any] | None:
    """A model's entry in the generated indexes, while the plugins are not imported.

    Before discovery, when every ``zoo.models`` entry point's package ships an index
    that covers it (`registry.index.covering_index`), the registry answers from the
    indexes: names, filters and `registry.model_info` need neither the plugins nor torch.
    Once the plugins are imported (or the model is registered in this process), the
    registered spec is the truth and this returns ``None``.

    Args:
        name: Registered model name.

    Returns:
        The index entry, or ``None`` when the spec must be used.
    """
    with _lock:
        if _discovered or name in _models:
            return None
    catalogue = covering_index(ENTRY_POINT_GROUP)
    return None if catalogue is None else catalogue.get(name)


def _candidates() -> dict[str, tuple[bool, tuple[str, ...]]]:
    # Name -> (pretrained, tags) of every model: from the indexes while they cover every
    # plugin (no import), else from the specs after importing the plugins.
    with _lock:
        catalogue = None if _discovered else covering_index(ENTRY_POINT_GROUP)
    if catalogue is None:
        discover_plugins()
        catalogue = {}
    found = {
        name: (entry.get("pretrained") is not None, tuple(entry.get("tags", ()))) for name, entry in catalogue.items()
    }
    with _lock:
        found.update({name: (spec.is_pretrained, spec.tags) for name, spec in _models.items()})
    return found


def list_models(
    pattern: str | Iterable[str] | None = None,
    *,
    pretrained: bool | None = None,
    tags: Iterable[str] | None = None,
) -> list[str]:
    """List registered model names, sorted.

    Reads the plugins' generated indexes where they cover every plugin, so listing
    imports no plugin and builds nothing (see `indexed_entry`).

    Args:
        pattern: fnmatch wildcard(s) such as ``"resnet*"``; ``None`` matches all.
        pretrained: ``True`` for pretrained models only, ``False`` for scratch
            models only, ``None`` for both.
        tags: Keep only models that carry every one of these tags.

    Returns:
        The matching names in alphabetical order.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern or ["*"])
    wanted_tags = set(tags or ())
    names = []
    for name, (is_pretrained, model_tags) in _candidates().items():
        if not any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns):
            continue
        if pretrained is not None and is_pretrained != pretrained:
            continue
        if not wanted_tags <= set(model_tags):
            continue
        names.append(name)
    return sorted(names)


def build(spec: ModelSpec, kwargs: dict[str, Any]) -> Any:
    """Call a spec's builder, turning a wrong argument name into a clear error.

    Args:
        spec: The model's spec.
        kwargs: Builder arguments.

    Returns:
        The built model.

    Raises:
        ModelArgumentError: If the builder does not take one of the arguments.
    """
    signature = inspect.signature(spec.builder)
    try:
        signature.bind(**kwargs)
    except TypeError:
        takes = [p for p in signature.parameters if p not in ("args", "kwargs")]
        unknown = [k for k in kwargs if k not in signature.parameters]
        raise ModelArgumentError(
            f"model '{spec.name}' does not take argument(s) {', '.join(map(repr, unknown)) or kwargs}; "
            f"it takes: {', '.join(takes)}"
        ) from None
    return spec.builder(**kwargs)


def create_model(name: str, *, weights: Any = None, **kwargs: Any) -> Any:
    """Build a registered model, optionally with weights.

    Args:
        name: Registered model name, such as ``"resnet50_scratch"``.
        weights: ``None`` for the builder's own initialisation (random, or the
            pretrained weights of a ``*_pretrained`` model); a local
            ``.safetensors``/``.pth`` file; or a URI whose scheme a plugin
            resolves, such as ``"runs:/RUN_ID"`` or ``"models:/NAME@alias"``
            (provided by the ``experiments`` package).
        **kwargs: Builder arguments, such as ``num_classes`` and ``stem``.

    Returns:
        The ``torch.nn.Module``.

    Raises:
        UnknownModelError: If the name is not registered.
        ModelArgumentError: If an argument is unknown or has a bad value.
        WeightsError: If the weights cannot be found, trusted or loaded.
    """
    spec = get_spec(name)
    if weights is not None and weight_sources.is_weights_uri(weights):
        resolved = weight_sources.resolve_weights_uri(str(weights), name)
        kwargs = {**resolved.model_kwargs, **kwargs}
        if spec.is_pretrained:
            kwargs["pretrained"] = False  # the run's weights replace the download
        model = build(spec, kwargs)
        weight_sources.load_state_dict_strict(model, resolved.state_dict, str(weights), name)
        return model
    if weights is not None and "weights" in inspect.signature(spec.builder).parameters:
        return build(spec, {**kwargs, "weights": weights})
    model = build(spec, kwargs)
    if weights is not None:
        state_dict = weight_sources.read_weights_file(weights)
        weight_sources.load_state_dict_strict(model, state_dict, str(weights), name)
    return model
