"""No private member of a Lightning, MLflow or Optuna object is read or called in registry/, zoo/, experiments/.

A private member is what a library's next minor release may rename without notice. The scan reads the
project's source with ``ast`` and flags:

- an import of a private module or name from one of the libraries
  (``from mlflow.tracking._tracking_service import utils``, ``from lightning.pytorch import _x``);
- in a class deriving from a library's class, ``self._x`` (``cls._x``, ``super()._x``) where that
  class or one of its bases in the library defines ``_x`` (a def, or an attribute it assigns):
  ``self._monitor_candidates(trainer)`` in a ``ModelCheckpoint`` subclass;
- anywhere else, ``x._name`` (one leading underscore, not a dunder) or ``getattr(x, "_name")`` where
  the libraries' installed source defines ``_name`` (a def, a class, an assigned name or attribute, a
  module) and the project does not: the project's own ``self._cache`` is not flagged. (A name the
  project defines too is taken for the project's: without types, the scan cannot tell whose ``x`` it is.)

Where a private member is the only way, its line says so: ``# library-private: WHY``. Such exemptions
are listed as warnings in the test's output.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("registry", "zoo", "experiments")
# Lightning 2 ships under three top-level names (the unified package and its two standalone halves).
LIBRARIES = ("lightning", "pytorch_lightning", "lightning_fabric", "mlflow", "optuna")
EXEMPTION = re.compile(r"#\s*library-private:\s*(\S.*)")


@dataclass(frozen=True)
class Use:
    """One private library member the scanned source uses."""

    path: Path
    line: int
    what: str  # the import or the attribute, as written
    library: str  # where the library defines it
    exemption: str | None  # the `# library-private:` reason on the line, if any

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what} ({self.library})"


def is_private(name: str) -> bool:
    """``_name``, not ``__name__`` (a dunder is the language's protocol, public)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name != "_"


def sources(folders: Iterable[Path]) -> Iterator[Path]:
    """Every Python file under the folders."""
    for folder in folders:
        yield from sorted(folder.rglob("*.py"))


def defined_names(tree: ast.AST) -> Iterator[str]:
    """The names a module defines: defs, classes, assigned names and attributes, import aliases."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for part in ast.walk(target):
                    if isinstance(part, ast.Name):
                        yield part.id
                    elif isinstance(part, ast.Attribute):
                        yield part.attr
        elif isinstance(node, ast.alias) and node.asname:
            yield node.asname


def library_folders() -> dict[str, list[Path]]:
    """Each library's installed package folders (the ones this interpreter imports)."""
    found = {}
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            found[name] = [Path(p) for p in spec.submodule_search_locations]
    return found


@functools.cache
def library_sources() -> tuple[tuple[str, str], ...]:
    """(module path, text) of every module of the libraries, read once (about 20 MB, a tenth of a second)."""
    read = []
    for folders in library_folders().values():
        for folder in folders:
            for path in sources([folder]):
                read.append((str(path.relative_to(folder.parent)), path.read_text(encoding="utf-8", errors="replace")))
    return tuple(read)


@functools.cache
def library_privates(names: frozenset[str]) -> dict[str, str]:
    """Which of ``names`` the libraries define as private members, each with the first module defining it.

    Only the modules whose text holds one of the names are parsed (one regular-expression pass over
    the text first), so a scan costs a fraction of parsing all of MLflow.
    """
    if not names:
        return {}
    mentioned = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(names))) + r")\b")
    privates: dict[str, str] = {}
    for where, text in library_sources():
        module_parts = Path(where).with_suffix("").parts
        for part in module_parts:  # a private module or package: mlflow/tracking/_tracking_service/
            if part in names:
                privates.setdefault(part, where)
        if not mentioned.search(text):
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:  # a template or a file for another Python: nothing it defines is importable
            continue
        for name in defined_names(tree):
            if name in names:
                privates.setdefault(name, where)
    return privates


def exemption(lines: list[str], node: ast.AST) -> str | None:
    """The reason of a ``# library-private: WHY`` comment on any line of the node."""
    for number in range(node.lineno, (node.end_lineno or node.lineno) + 1):
        match = EXEMPTION.search(lines[number - 1])
        if match:
            return match.group(1).strip()
    return None


def library_of(module: str) -> str | None:
    """The library a dotted module name belongs to, if it is one of them."""
    top = module.split(".")[0]
    return top if top in LIBRARIES else None


def library_bound(tree: ast.AST) -> set[str]:
    """The names a module binds to a library's modules or members by importing them."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and library_of(node.module):
            bound.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            bound.update(alias.asname or alias.name.split(".")[0] for alias in node.names if library_of(alias.name))
    return bound


def base_names(node: ast.ClassDef) -> Iterator[tuple[str, str]]:
    """(root, last) of each base written as a name or a dotted name: ``L.Callback`` is ("L", "Callback")."""
    for base in node.bases:
        parts = []
        while isinstance(base, ast.Attribute):
            parts.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name):
            yield base.id, parts[0] if parts else base.id


@functools.cache
def library_class_index() -> dict[str, list[int]]:
    """Which of `library_sources` define a class of each name (one regular-expression pass)."""
    index: dict[str, list[int]] = {}
    for number, (_, text) in enumerate(library_sources()):
        for name in set(re.findall(r"^\s*class (\w+)", text, re.MULTILINE)):
            index.setdefault(name, []).append(number)
    return index


@functools.cache
def library_module(number: int) -> ast.Module:
    """One of `library_sources`, parsed once (a file that is not Python 3 here, such as a template, is empty)."""
    try:
        return ast.parse(library_sources()[number][1])
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


@functools.cache
def library_class_members(name: str) -> dict[str, str]:
    """The private members of the library's classes of this name, theirs and their library bases'.

    Returns:
        Each member's name, with the module defining it.
    """
    members: dict[str, str] = {}
    for number in library_class_index().get(name, []):
        for node in ast.walk(library_module(number)):
            if isinstance(node, ast.ClassDef) and node.name == name:
                for member in defined_names(node):
                    if is_private(member):
                        members.setdefault(member, library_sources()[number][0])
                for _, base in base_names(node):
                    if base != name:
                        for member, source in library_class_members(base).items():
                            members.setdefault(member, source)
    return members


def subclassed(tree: ast.AST) -> dict[ast.ClassDef, set[str]]:
    """The module's classes that derive from a library's class, each with those library classes' names."""
    bound = library_bound(tree)
    derived: dict[ast.ClassDef, set[str]] = {}
    by_name: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {last for root, last in base_names(node) if root in bound}
            bases.update(*(by_name.get(root, set()) for root, _ in base_names(node)))
            if bases:
                derived[node] = by_name[node.name] = bases
    return derived


def on_self(node: ast.Attribute) -> bool:
    """``self._x``, ``cls._x`` or ``super()._x``."""
    value = node.value
    return (isinstance(value, ast.Name) and value.id in {"self", "cls"}) or (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"
    )


def private_attribute(node: ast.AST) -> str | None:
    """The private name ``x._name`` or ``getattr(x, "_name")`` (and set-, has-, delattr) touches."""
    if isinstance(node, ast.Attribute) and is_private(node.attr):
        return node.attr
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and is_private(node.args[1].value)
    ):
        return node.args[1].value
    return None


def private_imports(tree: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, as written, module) of each import of a library's private module or name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and library_of(node.module):
            private_module = any(is_private(part) for part in node.module.split("."))
            if private_module or any(is_private(alias.name) for alias in node.names):
                yield node, f"from {node.module} import {', '.join(a.name for a in node.names)}", node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if library_of(alias.name) and any(is_private(part) for part in alias.name.split(".")):
                    yield node, f"import {alias.name}", alias.name


def scan(files: Iterable[Path], root: Path) -> list[Use]:
    """Every private Lightning, MLflow or Optuna member the files import or touch.

    In a class deriving from a library's class, ``self._x`` is the library's when the library
    class or one of its library bases defines ``_x``. Anywhere else ``x._name`` is the library's
    when the libraries define ``_name`` somewhere and the scanned files do not.

    Args:
        files: the Python modules to read.
        root: what the reported paths are relative to.
    """
    parsed = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        parsed.append((path.relative_to(root), text.splitlines(), ast.parse(text, filename=str(path))))
    uses: list[Use] = []
    inherited: dict[int, str] = {}  # node → name, for each `self._x` of a library base's member
    own: set[str] = set()
    for path, lines, tree in parsed:
        for node, what, module in private_imports(tree):
            uses.append(Use(path, node.lineno, what, module, exemption(lines, node)))
        for cls, bases in subclassed(tree).items():
            members: dict[str, str] = {}
            for base in bases:
                members.update(library_class_members(base))
            for node in ast.walk(cls):
                if isinstance(node, ast.Attribute) and on_self(node) and node.attr in members:
                    inherited[id(node)] = node.attr
                    uses.append(Use(path, node.lineno, ast.unparse(node), members[node.attr], exemption(lines, node)))
        own.update(name for name in defined_names(tree) if is_private(name))
    own -= set(inherited.values())  # assigning a library base's member does not make it the project's
    touched = [
        (path, lines, node, name)
        for path, lines, tree in parsed
        for node in ast.walk(tree)
        if id(node) not in inherited and (name := private_attribute(node)) and name not in own
    ]
    privates = library_privates(frozenset(name for *_, name in touched))
    uses.extend(
        Use(path, node.lineno, ast.unparse(node), privates[name], exemption(lines, node))
        for path, lines, node, name in touched
        if name in privates
    )
    return sorted(set(uses), key=lambda use: (str(use.path), use.line, use.what))


def test_the_project_uses_no_private_member_of_lightning_mlflow_or_optuna() -> None:
    uses = scan(sources(PROJECT_ROOT / package for package in PACKAGES), PROJECT_ROOT)
    for use in uses:
        if use.exemption:
            warnings.warn(f"library-private exemption: {use}: {use.exemption}", stacklevel=1)
    found = [use for use in uses if not use.exemption]
    assert not found, (
        f"{len(found)} private library member(s) used; use the public API, or say on the line why none "
        "serves (# library-private: WHY):\n" + "\n".join(map(str, found))
    )


def test_the_scan_finds_a_private_checkpoint_call_and_a_private_optuna_import(tmp_path: Path) -> None:
    module = tmp_path / "last_state.py"
    module.write_text(
        "from lightning.pytorch.callbacks import ModelCheckpoint\n"
        "from optuna.storages._heartbeat import x\n"
        "\n"
        "\n"
        "class LastState(ModelCheckpoint):\n"
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n"
        "        self._own = 1\n"
        "\n"
        "    def on_train_epoch_end(self, trainer, pl_module) -> None:\n"
        "        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))\n"
        "        print(self._own, self.__class__)\n"
        "        self._last_global_step_saved = 0  # library-private: shown exempt\n"
    )
    uses = scan([module], tmp_path)
    found = {(use.line, use.what, use.exemption) for use in uses}
    assert found == {
        (2, "from optuna.storages._heartbeat import x", None),
        (11, "self._save_last_checkpoint", None),
        (11, "self._monitor_candidates", None),
        (13, "self._last_global_step_saved", "shown exempt"),
    }
    by_name = {use.what: use.library for use in uses}
    assert by_name["self._save_last_checkpoint"].endswith("model_checkpoint.py")
    assert by_name["from optuna.storages._heartbeat import x"] == "optuna.storages._heartbeat"
