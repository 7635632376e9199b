"""A package's model index: measured facts of its models, generated once, read instead of building.

Counting a model's parameters and FLOPs means building it (on the meta device) and running
it; for sixty models that is most of a minute. A package that registers models can ship
``model_index.json`` at its top level, generated from the registry by
``python -m registry.indexer PACKAGE``; `registry.model_info` then reads a model's facts
from it and builds nothing. An entry is used only while it still describes the model: the
same builder (module and name) and the same default input size, asked about with the
builder's default arguments. Anything else (a plugin without an index, other arguments) is
measured as before, and a test keeps the zoo's index equal to what the builders measure.

Importing this module does not import torch.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
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


@functools.cache
def load_index(package: str) -> dict[str, dict[str, Any]]:
    """Read a package's index, once per process.

    Args:
        package: The top-level package, such as ``"zoo"``.

    Returns:
        Entries by model name; empty when the package ships no index.
    """
    try:
        text = resources.files(package).joinpath(INDEX_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError, TypeError):
        return {}
    return {name: _tuples(entry) for name, entry in json.loads(text)["models"].items()}


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
