"""MkDocs hook: tables generated from the code at build time, never typed by hand.

A page asks for a table with a marker, an HTML comment on a line of its own:

- ``<!-- zoo:models-table -->``: every model in the registry, one table per family
  (name, block settings, parameters, GFLOPs, input size, pretrained weights, their
  published ImageNet top-1 with its source as a tooltip, licence, training and
  inference images per second with their setup as a tooltip, description), from
  `registry.model_info`: the package's model index, or the model measured on the meta
  device, so nothing is downloaded. The tables are HTML, sorted
  and filtered in the browser by ``docs/javascripts/model_tables.js``.
- ``<!-- zoo:config-table -->``: every field of the experiment config class
  (`experiments.config.schema.ExperimentConfig`) with its type, default and meaning;
  ``<!-- zoo:config-table package.module.ClassName -->`` names another pydantic model.
- ``<!-- zoo:api-modules PACKAGE -->``: a mkdocstrings ``::: module`` block for
  the package and every module in it, found on disk, so that the API reference
  covers a new module without editing a page.
- ``<!-- zoo:output zoo ARGS -->``: what the command ``zoo ARGS`` prints, run at build
  time as a user runs it, as a code block (for commands that only read, such as
  ``zoo models``: the listing cannot fall behind the registry).
- ``<!-- zoo:checked-output zoo ARGS -->``, on the line before a code block the page
  writes itself (what a command that trains prints, too slow for a build): the marker is
  dropped from the page; ``tests/test_first_run.py`` runs the command and fails when
  the block no longer has the shape of what it prints.

A model registered in code (or shipped by a plugin through the ``zoo.models``
entry point) appears in the table without editing a page. The hook runs in the
MkDocs process, so a model registered before ``mkdocs.commands.build.build``
is called appears too, which is how the tests check it.
"""

from __future__ import annotations

import ast
import html
import importlib
import importlib.util
import logging
import re
import shlex
import subprocess
import sys
import types
import typing
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.zoo_tables")

MODELS_MARKER = "<!-- zoo:models-table -->"
CONFIG_MARKER = re.compile(r"<!--\s*zoo:config-table(?:\s+(?P<target>[\w.:]+))?\s*-->")
DEFAULT_CONFIG_CLASS = "experiments.config.schema.ExperimentConfig"
API_MARKER = re.compile(r"<!--\s*zoo:api-modules\s+(?P<package>[\w.]+)\s*-->")
OUTPUT_MARKER = re.compile(r"^<!--\s*zoo:output\s+zoo\s+(?P<args>[^>]*?)\s*-->[ \t]*$", re.MULTILINE)
CHECKED_MARKER = re.compile(r"^<!--\s*zoo:checked-output\s+zoo\s+(?P<args>[^>]*?)\s*-->[ \t]*\n", re.MULTILINE)
OUTPUT_TIMEOUT_S = 120
"""Seconds a ``zoo:output`` command may take (``zoo models`` takes about one)."""


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """Replace the table markers of a page with the generated tables.

    Args:
        markdown: The page's Markdown source.
        page: The MkDocs page (unused).
        config: The MkDocs config (unused).
        files: The site's files (unused).
        **kwargs: Arguments later MkDocs versions may add.

    Returns:
        The Markdown with every marker replaced.
    """
    if MODELS_MARKER in markdown:
        markdown = markdown.replace(MODELS_MARKER, models_table())
    markdown = API_MARKER.sub(lambda m: api_modules(m.group("package")), markdown)
    markdown = OUTPUT_MARKER.sub(lambda m: command_output(m.group("args")), markdown)
    markdown = CHECKED_MARKER.sub("", markdown)
    return CONFIG_MARKER.sub(lambda m: config_table(m.group("target") or DEFAULT_CONFIG_CLASS), markdown)


# -- the API reference ---------------------------------------------------------------


def package_modules(package: str) -> dict[str, Path]:
    """List a package's modules from its files, without importing them.

    Args:
        package: Importable package name, such as ``"experiments"``.

    Returns:
        Dotted module name to its source file, the package first, then its
        modules in alphabetical order.
    """
    spec = importlib.util.find_spec(package)
    locations = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    # The folder with an __init__.py: a stray folder of the same name elsewhere on
    # sys.path can turn the spec into a namespace package listing several.
    roots = [p for p in locations if (p / "__init__.py").is_file()]
    if not roots:
        raise ValueError(f"'{package}' is not an importable package (is the project installed?)")
    root = roots[0]
    found = {}
    for file in sorted(root.rglob("*.py")):
        parts = file.relative_to(root).with_suffix("").parts
        folders = [root.joinpath(*parts[:i]) for i in range(1, len(parts))]
        if any(part.startswith("_") for part in parts[:-1]) or not all((f / "__init__.py").is_file() for f in folders):
            continue  # private folders and plain folders are not modules of the package
        if parts[-1] == "__init__":
            parts = parts[:-1]
        elif parts[-1].startswith("_"):
            continue
        found[".".join((package, *parts))] = file
    return dict(sorted(found.items(), key=lambda item: (item[0] != package, item[0])))


def _defines_public_names(file: Path) -> bool:
    """Whether a module's source defines a public function or class (not only imports)."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_")
        for node in tree.body
    )


def api_modules(package: str) -> str:
    """Write one mkdocstrings block per module of a package.

    Every module gets its own block, so submodules are not rendered twice. A
    package whose ``__init__`` only re-exports shows just its docstring: the
    names it re-exports are documented where they are defined.

    Args:
        package: Importable package name.

    Returns:
        Markdown with ``::: module`` blocks, which mkdocstrings renders.
    """
    blocks = []
    for name, file in package_modules(package).items():
        hide = file.name == "__init__.py" and not _defines_public_names(file)
        options = ["show_submodules: false"] + (["members: false"] if hide else [])
        blocks.append(f"::: {name}\n    options:\n" + "".join(f"      {option}\n" for option in options))
    return "\n".join(blocks)


# -- printed outputs -------------------------------------------------------------------


def command_output(args: str) -> str:
    """Run ``zoo ARGS`` as a user would (a fresh process, this environment) and show what it prints.

    Args:
        args: The command's arguments, as written on a command line.

    Returns:
        A ``text`` code block with its standard output.

    Raises:
        RuntimeError: The command failed: the build stops rather than show an error as output.
    """
    argv = [sys.executable, "-m", "experiments.cli", *shlex.split(args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=OUTPUT_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"zoo_tables: `zoo {args}` exited {done.returncode}: {done.stderr.strip()[-500:]}")
    log.info("zoo_tables: generated the output of `zoo %s` (%d lines)", args, done.stdout.count("\n"))
    return "```text\n" + done.stdout.rstrip("\n") + "\n```"


# -- the model zoo table -----------------------------------------------------------


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _params(count: int) -> str:
    return f"{count / 1e6:.2f} M" if count >= 1e6 else f"{count:,}"


def _source(pretrained: str | None) -> str:
    if not pretrained:
        return "random init"
    scheme, _, tag = pretrained.partition(":")
    if scheme == "timm" and tag:
        # timm's weights live on the Hugging Face Hub under timm/<architecture.tag>.
        url = html.escape(f"https://huggingface.co/timm/{tag}", quote=True)
        return f'<a href="{url}">{html.escape(pretrained)}</a>'
    return f"<code>{html.escape(pretrained)}</code>"


def _block(card: dict[str, Any]) -> str:
    if not card["block"]:
        return "-"
    knobs = [card["groups"]] if card["groups"] != "1x64d" else []
    knobs += [f"{card['stem']} stem"] if card["stem"] not in (None, "single") else []
    knobs += [str(card[k]) for k in ("attn", "aa") if card[k]]
    knobs += [str(card["norm"])] if card["norm"] not in (None, "batchnorm") else []
    return html.escape(f"{card['block']} {card['layers']}" + (f" ({', '.join(knobs)})" if knobs else ""))


def _top1(card: dict[str, Any]) -> str:
    # The source (or why there is none) is the cell's tooltip; the sort reads data-sort.
    title = html.escape(str(card["top1_source"] or ""), quote=True)
    if card["top1"] is None:
        return f'<span title="{title}">-</span>'
    return f'<span title="{title}">{card["top1"]:.2f}</span>'


def _throughput(card: dict[str, Any], column: str) -> str:
    # The machine, batch, size and date (or why there is no figure) are the cell's tooltip.
    title = html.escape(str(card["throughput_source"] or ""), quote=True)
    value = card[column]
    text = "-" if value is None else f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    return f'<span title="{title}">{text}</span>'


def _sort_number(value: float | None) -> str:
    return "" if value is None else repr(value)


def model_rows() -> list[dict[str, str]]:
    """Describe every registered model, one row of HTML table cells per model.

    Returns:
        Rows with ``name``, ``family``, ``block``, ``params``, ``gflops``, ``input``,
        ``pretrained``, ``top1``, ``license``, ``train_img_s``, ``infer_img_s`` and
        ``description``, as HTML cells (escaped), each with the number to sort by under ``sort:<key>``.
    """
    import registry
    from experiments.commands.models import card_row

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = registry.list_models()
    for warning in caught:  # a plugin that failed to import: the table would be incomplete
        log.warning("zoo_tables: %s", warning.message)
    if not names:
        log.warning("zoo_tables: the registry is empty; is the project installed (pip install -e .)?")
    rows = []
    for name in names:
        info = registry.model_info(name)
        card = card_row(info)
        rows.append(
            {
                "name": f"<code>{html.escape(name)}</code>",
                "family": html.escape(info["family"] or "-"),
                "block": _block(card),
                "params": _params(info["num_params"]),
                "sort:params": str(info["num_params"]),
                "gflops": f"{info['gflops']:.3g}",
                "sort:gflops": repr(info["gflops"]),
                "input": "x".join(map(str, info["input_size"])),
                "pretrained": _source(info["pretrained"]),
                "top1": _top1(card),
                "sort:top1": "" if card["top1"] is None else str(card["top1"]),
                "license": html.escape(str(card["license"] or "-")),
                "train_img_s": _throughput(card, "train_img_s"),
                "sort:train_img_s": _sort_number(card["train_img_s"]),
                "infer_img_s": _throughput(card, "infer_img_s"),
                "sort:infer_img_s": _sort_number(card["infer_img_s"]),
                "description": html.escape(info["description"]),
            }
        )
    return rows


MODEL_COLUMNS = (
    ("name", "Name"),
    ("family", "Family"),
    ("block", "Block"),
    ("params", "Parameters"),
    ("gflops", "GFLOPs"),
    ("input", "Input"),
    ("pretrained", "Pretrained weights"),
    ("top1", "ImageNet top-1 (%)"),
    ("license", "Licence"),
    ("train_img_s", "Train (img/s)"),
    ("infer_img_s", "Infer (img/s)"),
    ("description", "Description"),
)
"""The model table's columns: row key and header."""


def _family_table(family: str, rows: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{title}</th>" for _, title in MODEL_COLUMNS)
    body = []
    for row in rows:
        cells = []
        for key, _ in MODEL_COLUMNS:
            sort = row.get(f"sort:{key}")
            attribute = f' data-sort="{html.escape(sort, quote=True)}"' if sort is not None else ""
            cells.append(f"<td{attribute}>{row[key]}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    family_attr = html.escape(family, quote=True)
    return (
        f'<table data-zoo-models="{family_attr}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def models_table() -> str:
    """Render the registry as one table per family, with a filter box (docs/javascripts/model_tables.js).

    The tables are HTML (the script sorts them by a click on a header and filters their
    rows); each family has a Markdown heading, so the page's table of contents lists them.

    Returns:
        A line saying how many models the tables list, the filter box, then a heading and
        a table per family, families in alphabetical order.
    """
    rows = model_rows()
    families: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        families.setdefault(html.unescape(row["family"]), []).append(row)
    parts = [
        f"{len(rows)} models are registered, in {len(families)} families. "
        "Click a column's header to sort its table; type in the box to keep the rows that "
        "contain every word (a name, family, block setting, licence...).",
        "",
        '<input type="search" data-zoo-model-filter placeholder="Filter the models: resnext se 224" '
        'aria-label="Filter the models" style="width: 100%; padding: 0.4em;">',
    ]
    for family in sorted(families):
        parts += ["", f"### {_escape(family)}", "", _family_table(family, families[family])]
    log.info("zoo_tables: generated the models tables (%d models, %d families)", len(rows), len(families))
    return "\n".join(parts)


# -- the config reference ------------------------------------------------------------


def _import_class(target: str) -> type:
    module_name, _, class_name = target.replace(":", ".").rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def _type_name(annotation: Any) -> str:
    """A field's type as a reader writes it: ``int | None``, ``str`` for a ``Literal`` of texts, bounds left out."""
    args, origin = typing.get_args(annotation), typing.get_origin(annotation)
    if origin is typing.Literal:
        return type(args[0]).__name__
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return (
        "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation).replace("typing.", ""))
    )


def config_rows(cls: Any) -> list[dict[str, str]]:
    """Describe every field of a pydantic model (the config is one, `experiments.config.schema`).

    The meaning is the field's description, with its choices where its type is a ``Literal``.

    Args:
        cls: The model class.

    Returns:
        Rows with ``field``, ``flag``, ``type``, ``default`` and ``meaning``, as Markdown cells.
    """
    rows = []
    for name, field in cls.model_fields.items():
        parts = (field.annotation, *typing.get_args(field.annotation))
        choices = next((typing.get_args(p) for p in parts if typing.get_origin(p) is typing.Literal), ())
        meaning = (field.description or "") + ("; one of " + ", ".join(f"`{c}`" for c in choices) if choices else "")
        flag = "--" + name.replace("_", "-")  # as experiments.config.flags.flag_name writes it
        rows.append(
            {
                "field": f"`{name}`",
                "flag": f"`{flag}`, `--no-{flag[2:]}`" if bool in parts else f"`{flag}`",
                "type": f"`{_type_name(field.annotation)}`",
                "default": f"`{field.get_default(call_default_factory=True)!r}`",  # a pipe in a code span stays
                "meaning": _escape(meaning) or "-",
            }
        )
    return rows


def config_table(target: str = DEFAULT_CONFIG_CLASS) -> str:
    """Render every field of a config model as a Markdown table.

    Args:
        target: Dotted path of the pydantic model, such as
            ``"experiments.config.schema.ExperimentConfig"``.

    Returns:
        The table; or, while the config module does not exist yet, a note saying so.
    """
    module_name = target.replace(":", ".").rpartition(".")[0]
    try:
        cls = _import_class(target)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        log.info("zoo_tables: %s does not exist yet; the config table is a note", module_name)
        return f'!!! note "Config reference not generated"\n    The config class `{target}` does not exist yet.'
    if not hasattr(cls, "model_fields"):
        log.warning("zoo_tables: %s is not a pydantic model; cannot list its fields", target)
        return f"`{target}` is not a pydantic model."
    rows = config_rows(cls)
    lines = ["| Field | Flag | Type | Default | Meaning |", "|---|---|---|---|---|"]
    lines += [f"| {r['field']} | {r['flag']} | {r['type']} | {r['default']} | {r['meaning']} |" for r in rows]
    log.info("zoo_tables: generated the config table of %s (%d fields)", target, len(rows))
    return "\n".join(lines)
