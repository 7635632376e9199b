"""Every public function, class and method has a docstring that tells a reader something.

This holds for `registry`, `zoo` and `experiments`, so that the API reference on the docs site is worth reading.

Public means: listed in the module's ``__all__`` where it has one, otherwise a name
not starting with ``_`` that the module itself defines; and the public methods and
properties a public class defines itself. The checks ask for what helps a reader:

- a docstring of its own (an inherited one, or a dataclass's generated signature,
  does not count) whose first line says more than the name does ("The trainer."
  for ``trainer`` says nothing);
- an ``Args:`` section naming every parameter of a function or method (``self`` and
  ``cls`` aside), where no entry only repeats its name (``trainer: The trainer.``)
  and none names a parameter that does not exist;
- a ``Returns:`` (or ``Yields:``) section where the return annotation is not
  ``None``/``NoReturn``, unless the docstring starts with "Return" or "Yield",
  which Google style allows for one-liners, or it is a property.

A method that overrides one its base class defines (a Lightning hook, a `Protocol`
method) needs only its own summary line: its parameters are documented where it
is declared, and repeating them there is the boilerplate this test keeps out.
The same holds for registered model builders (timm's style): a one-line docstring
each, and the arguments they share documented once, in their module's docstring
under ``Builder arguments``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

PACKAGES = ("registry", "zoo", "experiments")


def iter_modules(package: str) -> Iterator[ModuleType]:
    """Import a package and every public module in it.

    Args:
        package: Package name.

    Yields:
        The modules, the package first.
    """
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def public_objects(module: ModuleType) -> Iterator[tuple[str, Any, type | None]]:
    """The public functions and classes of a module, and the public members of those classes.

    Args:
        module: The module.

    Yields:
        ``(qualified name, object, defining class or None)``.
    """
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__
        ]
    for name in names:
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue  # constants document themselves in the reference with their value
        yield f"{module.__name__}.{name}", obj, None
        if inspect.isclass(obj) and obj.__module__ == module.__name__:
            for member_name, member in vars(obj).items():
                if member_name.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member) or isinstance(member, property):
                    yield f"{module.__name__}.{name}.{member_name}", member, obj


def _own_doc(obj: Any) -> str:
    doc = obj.fget.__doc__ if isinstance(obj, property) else obj.__doc__
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__")
        if dataclasses.is_dataclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
            doc = None  # the signature dataclasses write when the class has no docstring
    return inspect.cleandoc(doc or "")


FILLER = frozenset({"the", "a", "an", "of", "its", "this", "that", "to", "for", "and", "or", "in", "on", "is", "be"})
"""Words that carry no meaning of their own in a one-line description."""


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in FILLER}


def only_repeats(name: str, text: str) -> bool:
    """Whether a description says nothing beyond the words of the name it describes.

    Args:
        name: A parameter or function name, such as ``pl_module``.
        text: Its description, such as ``"The module."``.

    Returns:
        True when every meaningful word of ``text`` is a word of ``name``.
    """
    return _words(text) <= _words(name.replace("_", " "))


def is_override(owner: type | None, name: str) -> bool:
    """Whether a method overrides one that a base class of its class defines.

    Args:
        owner: The class the method is defined in, or ``None`` for a module function.
        name: The method's name.

    Returns:
        True for a Lightning hook, a `Protocol` method and the like.
    """
    return owner is not None and any(name in vars(base) for base in owner.__mro__[1:] if base is not object)


def _args_entries(doc: str) -> dict[str, str] | None:
    found = re.search(r"^(Args|Arguments|Parameters):\s*$(?P<body>.*?)(?=^\S|\Z)", doc, re.MULTILINE | re.DOTALL)
    if not found:
        return None
    entries: dict[str, str] = {}
    for match in re.finditer(r"^\s+(\**\w+)\b[^:\n]*:(?P<text>.*(?:\n\s{8,}.*)*)", found.group("body"), re.MULTILINE):
        entries[match.group(1).lstrip("*")] = " ".join(match.group("text").split())
    return entries


def shared_builder_args(function: Any) -> set[str]:
    """The arguments a registered builder's module documents once for all its builders.

    Args:
        function: A function.

    Returns:
        The names under ``Builder arguments`` in its module's docstring; empty if it is
        not a registered builder.
    """
    import registry

    builders = {registry.get_spec(name).builder for name in registry.list_models()}
    if function not in builders:
        return set()
    doc = inspect.getdoc(inspect.getmodule(function)) or ""
    section = re.search(r"^Builder arguments.*?:\s*$(?P<body>.*?)(?=^\S|\Z)", doc, re.MULTILINE | re.DOTALL)
    return set(re.findall(r"^\s+(\w+):", section.group("body"), re.MULTILINE)) if section else set()


def docstring_problems(qualname: str, obj: Any, owner: type | None = None) -> list[str]:
    """What a public object's docstring lacks, or says without telling anything.

    Args:
        qualname: Its dotted name, for the report.
        obj: A function, class or property.
        owner: The class that defines it, for methods.

    Returns:
        One line per problem; empty when the docstring helps a reader.
    """
    doc = _own_doc(obj)
    if not doc:
        return [f"{qualname}: no docstring"]
    name = qualname.rsplit(".", 1)[-1]
    problems = []
    if only_repeats(name, doc.splitlines()[0]):
        problems.append(f"{qualname}: its summary '{doc.splitlines()[0]}' only repeats the name")
    function = obj.fget if isinstance(obj, property) else obj
    if not inspect.isfunction(function) or isinstance(obj, property):
        return problems
    signature = inspect.signature(function)
    params = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
    entries = _args_entries(doc)
    for entry, text in (entries or {}).items():
        if entry not in signature.parameters:
            problems.append(f"{qualname}: Args: names '{entry}', which is not a parameter")
        elif only_repeats(entry, text):
            problems.append(f"{qualname}: '{entry}: {text}' only repeats the name; say what it is or drop it")
    if is_override(owner, name):
        return problems  # documented where the base class declares it
    shared = shared_builder_args(function)
    missing = [p.name for p in params if p.name not in set(entries or {}) | shared]
    if missing:
        where = "no Args: section" if entries is None else "Args: does not name"
        problems.append(f"{qualname}: {where} for {', '.join(missing)}")
    if shared:
        return problems  # a builder returns its model; the one line says which
    returns = signature.return_annotation
    returns_nothing = returns in (None, "None", "NoReturn", "typing.NoReturn", inspect.Signature.empty)
    has_returns = re.search(r"^(Returns|Yields):", doc, re.MULTILINE) or re.match(r"(Return|Yield)", doc)
    if not returns_nothing and not has_returns:
        problems.append(f"{qualname}: returns {returns} but has no Returns: section")
    return problems


def package_problems(package: str) -> list[str]:
    """Check every public object of a package.

    Args:
        package: Package name.

    Returns:
        Every problem found, one line each.
    """
    problems, seen = [], set()
    for module in iter_modules(package):
        if not _own_doc(module):
            problems.append(f"{module.__name__}: no module docstring")
        for qualname, obj, owner in public_objects(module):
            if id(obj) in seen:
                continue  # a re-export is checked where it is defined
            seen.add(id(obj))
            problems += docstring_problems(qualname, obj, owner)
    return problems


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_google_style_docstring(package: str) -> None:
    problems = package_problems(package)
    assert not problems, f"{len(problems)} docstring problem(s) in {package}:\n" + "\n".join(problems)


def test_the_checker_finds_what_is_missing() -> None:
    def no_doc(x: int) -> int:
        return x

    def no_args(x: int, *rest: int, **options: Any) -> int:
        """Do something.

        Returns:
            A number.
        """
        return x

    def complete(x: int, **options: Any) -> int:
        """Do something.

        Args:
            x: A number.
            **options: More.

        Returns:
            A number.
        """
        return x

    def one_liner() -> int:
        """Return one."""
        return 1

    def echoes(trainer: Any, pl_module: Any) -> None:
        """Echoes.

        Args:
            trainer: The trainer.
            pl_module: The module.
            stage: Gone.
        """

    class Base:
        def on_epoch_end(self, trainer: Any) -> None:
            """Called at the end of every epoch.

            Args:
                trainer: The Lightning trainer running the fit.
            """

    class Hook(Base):
        def on_epoch_end(self, trainer: Any) -> None:
            """Log the epoch's figures."""

    @dataclasses.dataclass
    class Undocumented:
        value: int = 0

    assert docstring_problems("no_doc", no_doc) == ["no_doc: no docstring"]
    assert docstring_problems("no_args", no_args) == ["no_args: no Args: section for x, rest, options"]
    assert docstring_problems("complete", complete) == []
    assert docstring_problems("one_liner", one_liner) == []
    assert docstring_problems("Undocumented", Undocumented) == ["Undocumented: no docstring"]
    assert docstring_problems("echoes", echoes) == [
        "echoes: its summary 'Echoes.' only repeats the name",
        "echoes: 'trainer: The trainer.' only repeats the name; say what it is or drop it",
        "echoes: 'pl_module: The module.' only repeats the name; say what it is or drop it",
        "echoes: Args: names 'stage', which is not a parameter",
    ]
    assert docstring_problems("Hook.on_epoch_end", Hook.on_epoch_end, Hook) == []  # documented by Base
    assert docstring_problems("Base.on_epoch_end", Base.on_epoch_end, Base) == []
    found = {name: obj for name, obj, _ in public_objects(importlib.import_module("registry.spec"))}
    assert "registry.spec.ModelSpec.is_pretrained" in found  # methods and properties are walked too
