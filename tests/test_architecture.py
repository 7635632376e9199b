"""The layout holds: no import circle, layers that point one way, a light CLI, no private name borrowed.

The import graph is read with `ast` from the source, imports inside functions and
under ``if TYPE_CHECKING:`` included, so a circle hidden in a function body is a
circle here. docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("registry", "zoo", "experiments")

LAYERS = {
    "experiments.config": 0,
    "experiments.console": 0,
    "experiments.signals": 0,
    "experiments.data": 1,
    "experiments.tracking": 1,
    "experiments.training": 2,
    "experiments.analysis": 2,
    "experiments.serving": 2,
    "experiments.sweeps": 3,
    "experiments.commands": 4,
    "experiments.cli": 4,
}
"""Each sub-package of `experiments` imports only from lower layers (and itself)."""

SIDEWAYS = {
    ("experiments.training", "experiments.serving"),
    ("experiments.training", "experiments.analysis"),
    ("experiments.cli", "experiments.commands"),
}
"""Imports within one layer that are allowed, one way only: training logs the served model
(`serving_copy`) and prints its test report with the comparison's table (`analysis.tables`);
the command's entry point lists its subcommands (`commands.SUMMARIES`)."""

HEAVY = ("torch", "lightning", "mlflow", "timm", "matplotlib")
"""What the ``zoo`` command's start must not load."""

MODEL_LIBRARIES = ("torch", "timm", "torchvision")
"""What `registry` imports at no module's top: it is generic, and the model knowledge lives in `zoo`."""


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the three packages by dotted name (a package by its own name)."""
    files = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every absolute import anywhere in a module, functions included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports.

    Importing a package runs its ``__init__``, so an import of a package is an edge to
    the package, whose own imports (its re-exports) are edges from it; ``from pkg import
    sub`` is an edge to ``pkg.sub``. The lazy ``__init__`` files load through
    `importlib` and so add no edges.
    """
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for _, name in imported_names(ast.parse(path.read_text(encoding="utf-8"))):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                graph[module].add(name)
    return graph


def top_level_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every import that runs when a module loads.

    The module's own statements, those under a top-level ``if``, ``try`` or ``with`` and in a class
    body included; an import inside a function, or under ``if TYPE_CHECKING:``, runs later or never.
    """
    found = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending += node.orelse
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending += getattr(node, field, [])
    return sorted(found)


def heavy_top_level_imports(files: dict[str, Path], package: str) -> list[str]:
    """The imports of torch, timm or torchvision that run when a module of `package` loads."""
    problems = []
    for module, path in files.items():
        if module.split(".")[0] != package:
            continue
        for line, name in top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if name.split(".")[0] in MODEL_LIBRARIES:
                problems.append(f"{module}:{line} imports {name} when it loads")
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> str | None:
    """The layer key of an `experiments` module (``experiments.config`` for ``experiments.config.schema``)."""
    return next((key for key in LAYERS if module == key or module.startswith(key + ".")), None)


def layering_problems(graph: dict[str, set[str]]) -> list[str]:
    """Imports that point the wrong way between packages or between the layers of `experiments`."""
    top = {"registry": 0, "zoo": 1, "experiments": 2}
    problems = []
    for module, targets in graph.items():
        for target in targets:
            a, b = module.split(".")[0], target.split(".")[0]
            if top[b] > top[a] or (a == "experiments" and b == "zoo"):
                problems.append(f"{module} imports {target}: {a} must not depend on {b}")
                continue
            la, lb = layer_of(module), layer_of(target)
            if a != "experiments" or b != "experiments" or la is None or lb is None or la == lb:
                continue
            if LAYERS[lb] > LAYERS[la] or (LAYERS[lb] == LAYERS[la] and (la, lb) not in SIDEWAYS):
                problems.append(
                    f"{module} imports {target}: {la} (layer {LAYERS[la]}) must not import {lb} (layer {LAYERS[lb]})"
                )
    return sorted(problems)


def test_no_import_circle_anywhere() -> None:
    found = circles(import_graph(module_files()))
    assert not found, "modules that import each other in a circle: " + "; ".join(", ".join(c) for c in found)


def test_layers_point_one_way() -> None:
    problems = layering_problems(import_graph(module_files()))
    assert not problems, "\n".join(problems)


def test_the_checks_find_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    # A copy of the tree with one import added inside a function: config now reaches up to training.
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    schema = tmp_path / "experiments" / "config" / "schema.py"
    schema.write_text(schema.read_text() + "\n\ndef _late():\n    from experiments.training.runner import train\n")
    graph = import_graph(module_files(tmp_path))
    assert any("experiments.config.schema" in c and "experiments.training.runner" in c for c in circles(graph))
    assert any(
        p.startswith("experiments.config.schema imports experiments.training.runner") for p in layering_problems(graph)
    )


def test_the_registry_imports_no_model_library_when_it_loads() -> None:
    problems = heavy_top_level_imports(module_files(), "registry")
    assert not problems, "the registry must stay generic (model knowledge lives in zoo/):\n" + "\n".join(problems)


def test_the_registry_check_finds_a_model_library_at_a_module_top(tmp_path: Path) -> None:
    # A copy of the registry with timm imported at a module's top, and one inside a function (allowed).
    for path in (ROOT / "registry").rglob("*.py"):
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    spec = tmp_path / "registry" / "spec.py"
    spec.write_text(spec.read_text() + "\n\ntry:\n    import timm.models\nexcept ImportError:\n    pass\n")
    index = tmp_path / "registry" / "index.py"
    index.write_text(index.read_text() + "\n\ndef _late():\n    import torchvision  # deferred\n")
    problems = heavy_top_level_imports(module_files(tmp_path), "registry")
    assert len(problems) == 1
    assert problems[0].startswith("registry.spec:")
    assert problems[0].endswith("imports timm.models when it loads")


def test_registry_and_zoo_have_no_lazy_package_shims() -> None:
    # A PEP 562 __getattr__ in a package __init__ hides what importing the package costs.
    for package in ("registry", "zoo"):
        for path in (ROOT / package).rglob("__init__.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
            assert "__getattr__" not in names, f"{path.relative_to(ROOT)} has a lazy __getattr__"


def test_experiments_keeps_few_modules_at_its_top() -> None:
    top = sorted(p.name for p in (ROOT / "experiments").glob("*.py"))
    assert len(top) <= 8, top
    subpackages = {p.parent.name for p in (ROOT / "experiments").glob("*/__init__.py")}
    assert {"config", "data", "tracking", "training", "analysis", "serving", "sweeps", "commands"} <= subpackages


def test_no_private_name_is_used_from_another_module() -> None:
    files = module_files()
    problems = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        problems.append(f"{module}:{node.lineno} imports {node.module}.{alias.name}")
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in PACKAGES:
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and aliases[node.value.id] in files
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                problems.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not problems, "\n".join(problems)


def test_every_deferred_import_says_why() -> None:
    """An import inside a function (or under TYPE_CHECKING) has a comment on it or just above it."""
    problems = []
    for _module, path in module_files().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        nested: dict[int, int] = {}  # first line -> last line of each nested import statement
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.If)):
                for child in ast.walk(node):
                    if isinstance(child, (ast.Import, ast.ImportFrom)):
                        nested[child.lineno] = child.end_lineno or child.lineno
        for lineno, end in sorted(nested.items()):
            first, last = lineno, end
            while first >= 2 and lines[first - 2].strip().startswith(("from ", "import ")):
                first -= 1  # the comment may sit on any import of a block, or just above it
            while last < len(lines) and lines[last].strip().startswith(("from ", "import ")):
                last += 1
            block = lines[max(0, first - 2) : last]
            if not any("#" in line for line in block):
                problems.append(f"{path.relative_to(ROOT)}:{lineno}: {lines[lineno - 1].strip()}")
    assert not problems, "deferred imports without a comment saying why:\n" + "\n".join(problems)


def test_the_zoo_command_starts_without_heavy_packages() -> None:
    commands = ["models", "data", "train", "run", "compare", "eval", "register", "ui", "predict", "runs"]
    script = f"""
import contextlib, io, json, sys
import experiments.cli
loaded = {{"import": [m for m in {HEAVY!r} if m in sys.modules]}}
for argv in [["--help"]] + [[c, "--help"] for c in {commands!r}]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        experiments.cli.main(argv)
    loaded[" ".join(argv)] = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps(loaded))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded["import"] == [], loaded
    assert loaded["--help"] == [], loaded
    assert all(modules == [] for modules in loaded.values()), loaded  # every subcommand's --help too
