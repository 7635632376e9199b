"""The documentation site: it builds through the real hook, its examples run, its plugin installs.

- The site is built in this process with MkDocs' own build function and
  ``strict=True``, after registering an extra model, which must then appear in the
  generated model table: the table comes from the registry, not from a page. The
  quickstart's ``zoo models`` listing is what the command prints during the build.
- Every ```` ```python ```` block of ``docs/**/*.md`` and ``README.md`` is executed,
  page by page in a fresh process (blocks of one page share a namespace, as a
  reader running them in order would), in a temporary working directory with
  ``ZOO_CACHE_DIR`` and ``MLFLOW_TRACKING_URI`` pointing into it. A block that
  cannot run in a test (it downloads weights, say) is preceded by the line
  ``<!-- docs-test: skip (reason) -->``; the reason is required. Lines
  ``--8<-- "path"`` (pymdownx.snippets) are replaced by the file they name, as on
  the site.
- The example plugin package ``examples/zoo_plugin_example`` is installed with pip
  into a temporary folder, and a fresh interpreter finds its models.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLE_PLUGIN = ROOT / "examples" / "zoo_plugin_example"

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*\{?\.?(?P<lang>\w+)\b[^\n]*\n"
    r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip\b(?P<reason>.*?)-->\s*$")
SNIPPET = re.compile(r'^(?P<indent>[ \t]*)--8<--\s+"(?P<path>[^"]+)"\s*$', re.MULTILINE)


@dataclass
class CodeBlock:
    """One fenced Python block of a page.

    Attributes:
        path: The Markdown file.
        line: Line of the block's first code line in the file (1-based).
        code: The code, dedented, snippets expanded.
        skip: The reason given in a ``docs-test: skip`` marker, or ``None``.
    """

    path: Path
    line: int
    code: str
    skip: str | None


def doc_files() -> list[Path]:
    """Every Markdown file whose examples the tests run.

    Returns:
        ``docs/**/*.md`` and ``README.md``.
    """
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def python_blocks(path: Path, text: str | None = None) -> list[CodeBlock]:
    """Extract the fenced Python blocks of a Markdown file.

    Args:
        path: The file (read unless ``text`` is given).
        text: The file's text, for tests of the extractor.

    Returns:
        The blocks in page order.
    """
    text = path.read_text(encoding="utf-8") if text is None else text
    blocks = []
    for match in FENCE.finditer(text):
        if match.group("lang") not in ("python", "py"):
            continue
        indent = len(match.group("indent"))
        body = "".join(
            line[indent:] if line[:indent].strip() == "" else line.lstrip()
            for line in match.group("body").splitlines(True)
        )
        body = SNIPPET.sub(lambda m: (ROOT / m.group("path")).read_text(encoding="utf-8"), body)
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.match(before)
        reason = skip.group("reason").strip(" ()") if skip else None
        if skip and not reason:
            raise ValueError(f"{path}: a docs-test skip marker needs a reason: <!-- docs-test: skip (why) -->")
        line = text.count("\n", 0, match.start("body")) + 1
        blocks.append(CodeBlock(path, line, body, reason))
    return blocks


def runnable_pages() -> dict[str, list[CodeBlock]]:
    """The pages that have Python blocks to run, keyed by path relative to the project.

    Returns:
        ``{relative path: blocks not marked to skip}``.
    """
    pages = {}
    for path in doc_files():
        blocks = [b for b in python_blocks(path) if b.skip is None]
        if blocks:
            pages[str(path.relative_to(ROOT))] = blocks
    return pages


# Runs a page's blocks in one namespace; line numbers in tracebacks are the Markdown file's.
DRIVER = """
import json, sys
namespace = {"__name__": "__main__"}
for block in json.load(open(sys.argv[1], encoding="utf-8")):
    print(f"--- running {block['path']}:{block['line']}", flush=True)
    code = "\\n" * (block["line"] - 1) + block["code"]
    exec(compile(code, block["path"], "exec"), namespace)
"""


# -- the Python examples ------------------------------------------------------------------


def test_the_docs_have_python_examples_to_run() -> None:
    pages = runnable_pages()
    count = sum(len(blocks) for blocks in pages.values())
    # The runner is only worth something if it runs things: fail rather than pass on nothing.
    assert count >= 10, f"found only {count} runnable ```python blocks in {list(pages)}"
    for page in ("README.md", "docs/index.md", "docs/models.md", "docs/extending.md"):
        assert page in pages, f"{page} has no runnable ```python block"
    skipped = [b for path in doc_files() for b in python_blocks(path) if b.skip is not None]
    assert len(skipped) <= max(3, count // 5), f"too many examples skipped: {[(str(b.path), b.line) for b in skipped]}"


def test_the_extractor_reads_fences_markers_and_snippets() -> None:
    text = (
        "# Page\n\n```python\nx = 1\n```\n\n"
        "<!-- docs-test: skip (downloads weights) -->\n```python\nimport nowhere\n```\n\n"
        "- item\n\n    ```python\n    y = 2\n    ```\n\n"
        "```bash\nzoo models\n```\n\n"
        '```python\n--8<-- "examples/zoo_plugin_example/zoo_plugin_example/__init__.py"\n```\n'
    )
    blocks = python_blocks(Path("page.md"), text)
    assert [b.code for b in blocks[:3]] == ["x = 1\n", "import nowhere\n", "y = 2\n"]
    assert [b.skip for b in blocks[:3]] == [None, "downloads weights", None]
    assert [b.line for b in blocks[:3]] == [4, 9, 15]
    assert "zoo.models" in blocks[3].code
    assert "--8<--" not in blocks[3].code
    with pytest.raises(ValueError, match="needs a reason"):
        python_blocks(Path("page.md"), "<!-- docs-test: skip -->\n```python\npass\n```\n")


@pytest.mark.parametrize("page", sorted(runnable_pages()))
def test_python_examples_run(page: str, tmp_path: Path) -> None:
    blocks = runnable_pages()[page]
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps([{"path": str(ROOT / page), "line": b.line, "code": b.code} for b in blocks]))
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "ZOO_CACHE_DIR": str(tmp_path / "cache"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "HF_HUB_OFFLINE": "1",  # an example must not download anything unmarked
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"an example in {page} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    assert result.stdout.count("--- running") == len(blocks)


# -- the site, built through the real hook ---------------------------------------------------

EXTRA_MODEL = "docs_test_extra_model"


def _extra_model(num_classes: int = 10):
    """A model that only this test registers."""
    import torch

    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, num_classes))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with strict=True while an extra model is registered."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[test,docs]'")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    out = tmp_path_factory.mktemp("site")
    registry.register_model(
        EXTRA_MODEL, family="docs-test-family", description="Registered by tests/test_docs.py", input_size=(3, 16, 16)
    )(_extra_model)
    cwd = os.getcwd()
    os.chdir(ROOT)  # snippets and mkdocstrings read paths relative to the project
    try:
        build(load_config(str(ROOT / "mkdocs.yml"), site_dir=str(out), strict=True))
    finally:
        os.chdir(cwd)
        registry.unregister_model(EXTRA_MODEL)
    return out


@pytest.mark.slow
def test_site_builds_and_the_model_table_comes_from_the_registry(site: Path) -> None:
    html = (site / "models" / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL)
    extra = [row for row in rows if f"<code>{EXTRA_MODEL}</code>" in row]
    assert len(extra) == 1, "the extra registered model is not in the generated table"
    assert "docs-test-family" in extra[0]
    assert "Registered by tests/test_docs.py" in extra[0]
    assert "3x16x16" in extra[0]
    assert "7,690" in extra[0]
    for name in registry.list_models():
        assert f"<code>{name}</code>" in html, f"{name} is missing from the model table"


@pytest.mark.slow
def test_the_quickstart_shows_what_zoo_models_prints_when_the_docs_are_built(site: Path) -> None:
    html = (site / "quickstart" / "index.html").read_text(encoding="utf-8")
    names = registry.list_models()
    assert len(names) > 60  # the zoo's own models (the page once showed 11 of them, typed by hand)
    for name in names:
        assert name in html, f"{name} is missing from the quickstart's zoo models listing"


@pytest.mark.slow
def test_training_page_lists_every_config_field_from_the_config_class(site: Path) -> None:
    from experiments.config.schema import ExperimentConfig

    html = (site / "training" / "index.html").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr>\s*<td><code>(\w+)</code></td>.*?</tr>", html, re.DOTALL)}
    for name in ExperimentConfig.model_fields:
        assert name in rows, f"config field '{name}' is not in the generated table of docs/training.md"
    assert "<code>--batch-size</code>" in rows["batch_size"]
    assert "<code>32</code>" in rows["batch_size"]


@pytest.mark.slow
def test_site_has_every_page_and_no_marker_is_left(site: Path) -> None:
    nav_pages = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python/name:", "")))
    pages = {str(p.relative_to(DOCS)) for p in [*DOCS.rglob("*.md"), *DOCS.glob("notebooks/*.ipynb")]}
    assert pages == set(nav_pages), (
        f"pages outside the nav: {pages - set(nav_pages)}; missing: {set(nav_pages) - pages}"
    )
    for page in nav_pages:
        built = site / page.removesuffix(".md").removesuffix(".ipynb").removesuffix("index") / "index.html"
        html = built.read_text(encoding="utf-8")
        assert "zoo:models-table" not in html, page
        assert "zoo:config-table" not in html, page
        assert "zoo:api-modules" not in html, page
        assert "zoo:output" not in html, page
        assert "zoo:checked-output" not in html, page
    reference = (site / "reference" / "registry" / "index.html").read_text(encoding="utf-8")
    assert 'id="registry.core.create_model"' in reference  # mkdocstrings rendered the docstrings
    # The notebook is rendered with the outputs it was committed with (mkdocs-jupyter, execute: false).
    notebook = (site / "notebooks" / "resnet50_vs_resnet101" / "index.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in notebook
    assert "resnet101_scratch" in notebook
    assert "compare_groups" in notebook


def _nav_pages(config: dict) -> list[str]:
    pages: list[str] = []

    def walk(items):
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            if isinstance(value, list):
                walk(value)
            else:
                pages.append(value)

    walk(config["nav"])
    return pages


# -- the example plugin package ------------------------------------------------------------------


@pytest.mark.slow
def test_example_plugin_installs_and_its_models_are_found(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(EXAMPLE_PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site-packages"
    # No build isolation and no dependencies: nothing is fetched, the venv's setuptools builds it.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    check = (
        "import json, registry\n"
        "names = registry.list_models(tags=['example'])\n"
        "model = registry.create_model('example_resnet26_narrow', num_classes=3)\n"
        "info = registry.model_info('example_convnet')\n"
        "print(json.dumps({'names': names, 'classes': model.num_classes, 'family': info['family'],\n"
        "                  'params': info['num_params'], 'all': registry.list_models()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["names"] == ["example_convnet", "example_resnet26_narrow"]
    assert found["classes"] == 3
    assert found["family"] == "convnet"
    assert found["params"] == 20138
    assert "resnet50_scratch" in found["all"]  # the zoo's own models still arrive next to the plugin's
    # Without the package on the path, the models are not there: it is the entry point that brings them.
    plain = subprocess.run(
        [sys.executable, "-c", "import registry; print(registry.list_models(tags=['example']))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.stdout.strip() == "[]"
