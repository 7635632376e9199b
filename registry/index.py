"""A package's model index: measured facts of its models, generated once, read instead of building.

This module is the registry's one reader of the index; `zoo.indexer` writes it.

Counting a model's parameters and FLOPs means building it (on the meta device) and running
it; for sixty models that is most of a minute. A package that registers models can ship
``model_index.json`` at its top level, generated from the registry by
``python -m zoo.indexer PACKAGE``; `registry.model_info` then reads a model's facts
from it and builds nothing. An entry is used only while it still describes the model: the
same builder (module and name) and the same default input size, asked about with the
builder's default arguments. Anything else (a plugin without an index, other arguments) is
measured as before, and a test keeps the zoo's index equal to what the builders measure.

The index also names the entry points whose models it holds (``"entry_points"``). Before
the plugins are imported, when every ``zoo.models`` entry point is named by its package's
index (`covering_index`), the registry lists and describes models from the indexes alone:
no plugin is imported, so listing needs neither torch nor the models. The index is found
with `importlib.util.find_spec`, which locates a package without running it.

Importing this module does not import torch.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from registry.spec import ModelSpec

INDEX_FILE = "model_index.json"
"""The index's file name, at the top of the package whose models it describes."""


def builder_path(spec: ModelSpec) -> str:
    """The builder's dotted path, which an index entry must name to be used.

    Args:
        spec: The model's spec.

    Returns:
        ``module.qualname``, such as ``"zoo.models.resnext.resnext50_32x4d_scratch"``.
    """
    return f"{spec.builder.__module__}.{spec.builder.__qualname__}"


def package_of(spec: ModelSpec) -> str:
    """The top-level package a model's builder belongs to, whose index describes it.

    Args:
        spec: The model's spec.

    Returns:
        Such as ``"zoo"``.
    """
    return str(spec.builder.__module__).split(".")[0]


def _tuples(value: Any) -> Any:
    # JSON has no tuples; the facts the registry hands out use them (input sizes, mean, std).
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def package_file(package: str, filename: str = INDEX_FILE) -> Path | None:
    """A data file at the top of a package (its index, its throughput), found without importing the package.

    `importlib.util.find_spec` of a top-level name locates the package without running its
    ``__init__``, so reading the zoo's index does not import the zoo (nor torch).

    Args:
        package: The top-level package, such as ``"zoo"``.
        filename: The file's name, such as ``"model_index.json"``.

    Returns:
        The file's path, or ``None`` when the package is not found or ships no such file.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / filename
        if path.is_file():
            return path
    return None


@functools.cache
def load_document(package: str) -> dict[str, Any]:
    """Read a package's whole index file, once per process, without importing the package.

    Args:
        package: The top-level package, such as ``"zoo"``.

    Returns:
        ``{"entry_points": [...], "models": {name: entry}}`` with JSON lists as tuples;
        empty when the package ships no index.
    """
    path = package_file(package) if "." not in package else None
    if path is None:
        return {}
    document = json.loads(path.read_text(encoding="utf-8"))
    return {
        "entry_points": list(document.get("entry_points", [])),
        "models": {name: _tuples(entry) for name, entry in document["models"].items()},
    }


def load_index(package: str) -> dict[str, dict[str, Any]]:
    """A package's index entries by model name.

    Args:
        package: The top-level package, such as ``"zoo"``.

    Returns:
        Entries by model name; empty when the package ships no index.
    """
    models: dict[str, dict[str, Any]] = load_document(package).get("models", {})
    return models


def clear_cache() -> None:
    """Forget the indexes read so far (after writing one, or when a test swaps one)."""
    load_document.cache_clear()
    _covering_index.cache_clear()


def entry_point_package(value: str) -> str:
    """The top-level package an entry point's value (``pkg.mod:attr``) lives in.

    Args:
        value: The entry point's value, such as ``"zoo"``.

    Returns:
        Such as ``"zoo"``.
    """
    return value.split(":")[0].split(".")[0].strip()


@functools.cache
def _covering_index(group: str, path: tuple[str, ...]) -> dict[str, dict[str, Any]] | None:
    models: dict[str, dict[str, Any]] = {}
    for ep in entry_points(group=group):
        document = load_document(entry_point_package(ep.value))
        if ep.value not in document.get("entry_points", ()):
            return None  # a plugin without an index: its models are known only by importing it
        models.update(document["models"])
    return models


def covering_index(group: str) -> dict[str, dict[str, Any]] | None:
    """Every model the group's entry points register, from their packages' indexes.

    The registry lists models from here without importing any plugin when every entry
    point of the group is covered: its package ships an index generated with that entry
    point loaded (the index names it in ``entry_points``). One entry point without such an
    index, and the answer is ``None``: the plugins must be imported, as before.

    Args:
        group: The entry-point group, ``"zoo.models"``.

    Returns:
        Entries by model name, or ``None`` when an entry point is not covered.
    """
    return _covering_index(group, tuple(sys.path))  # a path added later may bring new plugins


def indexed_facts(spec: ModelSpec) -> dict[str, Any] | None:
    """A model's indexed facts, if its package's index still describes it.

    Args:
        spec: The model's spec.

    Returns:
        The entry (``num_params``, ``flops``, ``pretrained_cfg``, ...), or ``None`` when
        the model must be measured.
    """
    entry = load_index(package_of(spec)).get(spec.name)
    if entry is None or entry.get("builder") != builder_path(spec) or entry.get("input_size") != spec.input_size:
        return None
    return entry
