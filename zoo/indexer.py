"""Generate a package's model index (``python -m zoo.indexer zoo``): measure every model once.

The index is read by `registry.index`; this module writes it. See there for what an entry
holds and when it is used. An entry is the model's card as `registry.info.measure` measures
it (the published top-1 through the scheme's source, `zoo.cards` for timm's tags), with the
package's throughput figures (`zoo.throughput`). Any package's index is written this way,
a plugin's as well as the zoo's.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from registry.core import ENTRY_POINT_GROUP, discover_plugins, get_spec, list_models
from registry.index import INDEX_FILE, builder_path, clear_cache, entry_point_package, package_of
from registry.info import measure
from zoo.throughput import THROUGHPUT_FILE, load_throughput, throughput_facts


def measure_entry(name: str, throughput: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure one model for the index, with its builder's default arguments.

    Args:
        name: Registered model name.
        throughput: Its package's throughput file (`zoo.throughput`), read here when
            not given; its figures for the model join the entry.

    Returns:
        The entry, as it is written to the index (JSON types).
    """
    spec = get_spec(name)
    package = package_of(spec)
    document = load_throughput(package) if throughput is None else throughput
    num_params, flops, pretrained_cfg, card = measure(name, ())
    entry = {
        "builder": builder_path(spec),
        "family": spec.family,
        "description": spec.description,
        "input_size": list(spec.input_size),
        "pretrained": spec.pretrained,
        "tags": list(spec.tags),
        "num_params": num_params,
        "flops": flops,
        "pretrained_cfg": pretrained_cfg,
        **card,
        **throughput_facts(name, spec.input_size, document, f"{package}/{THROUGHPUT_FILE}"),
    }
    loaded: dict[str, Any] = json.loads(json.dumps(entry))
    return loaded


def build_index(package: str) -> dict[str, Any]:
    """Measure every registered model of a package (the slow path the index saves).

    Args:
        package: The top-level package whose builders to measure, such as ``"zoo"``.

    Returns:
        ``{"entry_points": [...], "models": {name: entry}}``, models sorted by name, each
        with its figures from the package's ``throughput.json`` (`zoo.throughput`). The
        entry points are the package's own in the ``zoo.models`` group: the index covers
        what loading them registers, so the registry can list the models without them.
    """
    discover_plugins()  # the index describes what the package's entry points register
    names = [n for n in list_models() if package_of(get_spec(n)) == package]
    own = sorted({ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if entry_point_package(ep.value) == package})
    throughput = load_throughput(package)
    return {"entry_points": own, "models": {name: measure_entry(name, throughput) for name in names}}


def write_index(package: str, path: Path) -> int:
    """Measure a package's models and write its index.

    Args:
        package: The top-level package, such as ``"zoo"``.
        path: Where to write (``<package>/model_index.json`` in a checkout).

    Returns:
        The number of models written.
    """
    index = build_index(package)
    lines = [f"  {json.dumps(name)}: {json.dumps(entry, sort_keys=True)}" for name, entry in index["models"].items()]
    head = '{"entry_points": ' + json.dumps(index["entry_points"]) + ', "models": {\n'
    path.write_text(head + ",\n".join(lines) + "\n}}\n", encoding="utf-8")  # a model a line
    clear_cache()
    return len(index["models"])


def main(argv: list[str] | None = None) -> int:
    """Regenerate a package's index: ``python -m zoo.indexer zoo``.

    Args:
        argv: Command-line arguments (the package, and ``--output``).

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(prog="python -m zoo.indexer", description=main.__doc__)
    parser.add_argument("package", help="top-level package whose models to index, such as zoo")
    parser.add_argument("--output", type=Path, default=None, help="file to write (default: PACKAGE/model_index.json)")
    args = parser.parse_args(argv)
    output = args.output or Path(str(resources.files(args.package).joinpath(INDEX_FILE)))
    print(f"indexed {write_index(args.package, output)} models in {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
