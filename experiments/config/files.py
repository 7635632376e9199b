"""YAML files and values read safely and within bounds, one line for any failure.

``yaml.safe_load`` runs no code, but an alias "bomb" (``a: &a [1, 1]``,
``b: &b [*a, *a]``, ... ten levels deep) is a few hundred bytes that expand into
billions of items as soon as anything walks them. `load_yaml` refuses a file
whose document would expand past `MAX_YAML_NODES` nodes, and a file larger than
`MAX_YAML_BYTES`, before anything is built from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from experiments.config.errors import ConfigError

MAX_YAML_BYTES = 1_000_000
"""Largest config or experiment file read (bytes)."""

MAX_YAML_NODES = 100_000
"""Most nodes a YAML document may expand to, every alias counted at its full size."""


def load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` that refuses a document expanding past `MAX_YAML_NODES` nodes.

    The document is composed first (aliases are references then, so this is cheap),
    its expanded size counted, and only then constructed.

    Args:
        text: The YAML text.
        source: What it is, for the error message (``config file 'x.yaml'``).

    Returns:
        The parsed data.

    Raises:
        ConfigError: If aliases make the document too large.
        yaml.YAMLError: If it is not valid YAML.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node)
        if expanded > MAX_YAML_NODES:
            raise ConfigError(
                f"{source} expands to more than {MAX_YAML_NODES:,} values through its aliases "
                f"(&anchor/*alias); write the values out"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of a composed document with every alias expanded, stopping early past the bound."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done or not children:
            sizes[id(node)] = min(MAX_YAML_NODES + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file safely and within bounds, turning every failure into a `ConfigError`.

    Args:
        path: The file.

    Returns:
        The parsed data.

    Raises:
        ConfigError: If the file is missing, too large, not valid YAML, or expands past the bound.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file '{file}' does not exist; give the path of a YAML file")
    size = file.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ConfigError(f"config file '{file}' is {size:,} bytes; a config file may hold at most {MAX_YAML_BYTES:,}")
    try:
        return load_yaml(file.read_text(encoding="utf-8"), f"config file '{file}'")
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = str(exc).replace("\n", " ")[:160]
        raise ConfigError(f"config file '{file}' is not valid YAML ({detail}); fix the syntax") from None
