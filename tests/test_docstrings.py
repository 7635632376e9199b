"""Every public function, class and method of `registry`, `zoo` and `experiments` has a
Google-style docstring, so that the API reference on the docs site is complete.

Public means: listed in the module's ``__all__`` where it has one, otherwise a name
not starting with ``_`` that the module itself defines; and the public methods and
properties a public class defines itself. The checks:

- a docstring of its own (an inherited one, or a dataclass's generated signature,
  does not count);
- an ``Args:`` section naming every parameter (``self`` and ``cls`` aside), as
  ``name:``, ``*args:`` or ``**kwargs:``;
- a ``Returns:`` (or ``Yields:``) section where the return annotation is not
  ``None``/``NoReturn``, unless the docstring starts with "Return" or "Yield",
  which Google style allows for one-liners, or it is a property.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from types import ModuleType
from typing import Any, Iterator

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


def public_objects(module: ModuleType) -> Iterator[tuple[str, Any]]:
    """The public functions and classes of a module, and the public members of those classes.

    Args:
        module: The module.

    Yields:
        ``(qualified name, object)`` pairs.
    """
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__]
    for name in names:
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue  # constants document themselves in the reference with their value
        yield f"{module.__name__}.{name}", obj
        if inspect.isclass(obj) and obj.__module__ == module.__name__:
            for member_name, member in vars(obj).items():
                if member_name.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member) or isinstance(member, property):
                    yield f"{module.__name__}.{name}.{member_name}", member


def _own_doc(obj: Any) -> str:
    doc = obj.fget.__doc__ if isinstance(obj, property) else obj.__doc__
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__")
        if dataclasses.is_dataclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
            doc = None  # the signature dataclasses write when the class has no docstring
    return inspect.cleandoc(doc or "")


def docstring_problems(qualname: str, obj: Any) -> list[str]:
    """What a public object's docstring lacks.

    Args:
        qualname: Its dotted name, for the report.
        obj: A function, class or property.

    Returns:
        One line per problem; empty when the docstring is complete.
    """
    doc = _own_doc(obj)
    if not doc:
        return [f"{qualname}: no docstring"]
    if not inspect.isfunction(obj):
        return []
    problems = []
    signature = inspect.signature(obj)
    params = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
    if params:
        args = re.search(r"^(Args|Arguments|Parameters):\s*$(?P<body>.*?)(?=^\S|\Z)", doc, re.MULTILINE | re.DOTALL)
        if not args:
            problems.append(f"{qualname}: no Args: section for {', '.join(p.name for p in params)}")
        else:
            for p in params:
                prefix = {p.VAR_POSITIONAL: r"\*", p.VAR_KEYWORD: r"\*\*"}.get(p.kind, "")
                if not re.search(rf"^\s+{prefix}{re.escape(p.name)}\b[^:\n]*:", args.group("body"), re.MULTILINE):
                    problems.append(f"{qualname}: parameter '{p.name}' is not in Args:")
    returns = signature.return_annotation
    returns_nothing = returns in (None, "None", "NoReturn", "typing.NoReturn", inspect.Signature.empty)
    if not returns_nothing and not re.search(r"^(Returns|Yields):", doc, re.MULTILINE):
        if not re.match(r"(Return|Yield)", doc):
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
        for qualname, obj in public_objects(module):
            if id(obj) in seen:
                continue  # a re-export is checked where it is defined
            seen.add(id(obj))
            problems += docstring_problems(qualname, obj)
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

    @dataclasses.dataclass
    class Undocumented:
        value: int = 0

    assert docstring_problems("no_doc", no_doc) == ["no_doc: no docstring"]
    assert docstring_problems("no_args", no_args) == ["no_args: no Args: section for x, rest, options"]
    assert docstring_problems("complete", complete) == []
    assert docstring_problems("one_liner", one_liner) == []
    assert docstring_problems("Undocumented", Undocumented) == ["Undocumented: no docstring"]
    found = dict(public_objects(importlib.import_module("registry.spec")))
    assert "registry.spec.ModelSpec.is_pretrained" in found  # methods and properties are walked too
