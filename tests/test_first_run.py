"""A newcomer's first commands, in an empty folder: what they leave there, and what the docs say they print.

The README's commands run as a user runs them, each its own process in a folder with
nothing in it and no store named (``MLFLOW_TRACKING_URI`` and ``ZOO_RUNS_DIR`` unset):
``zoo run digits``, ``zoo compare``, ``zoo train`` and ``zoo data digits`` (the training ones
with fewer images than the docs' commands, which changes figures, not the shape of the lines
printed). Then:

- the folder holds one folder, ``zoo-runs/``, with the MLflow store and its artifacts,
  and every command found the runs there (``zoo compare`` lists them, ``zoo ui`` would
  serve that store);
- every code block of the docs that a ``<!-- zoo:checked-output zoo ARGS -->`` line
  precedes has the shape of what that command printed here: the same lines once
  figures, ids, the folder and the verdict words that follow from the figures are
  normalised (see `shapes`), in order (see `mismatch`: rows sort by their figures, so a
  run of lines may come in any order). A ``...`` line in a block stands for lines it leaves out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.commands.ui import ui_command

from procs import ZOO, finish

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

SHORTER = ["--limit-per-class", "10"]
"""What the test adds to the training commands: the same output in less time."""

COMMANDS = {
    "zoo run digits": ["run", "digits", *SHORTER],
    "zoo compare --experiment digits": ["compare", "--experiment", "digits"],
    "zoo train resnet_tiny_scratch --data digits --preset cifar --epochs 2": [
        "train",
        "resnet_tiny_scratch",
        "--data",
        "digits",
        "--preset",
        "cifar",
        "--epochs",
        "2",
        *SHORTER,
    ],
    "zoo data digits": ["data", "digits"],
}
"""The commands the docs show the output of, as the docs write them, and as this test runs them (in order)."""

CHECKED = re.compile(r"^<!--\s*zoo:checked-output\s+(?P<command>zoo\b[^>]*?)\s*-->[ \t]*\n", re.MULTILINE)
BLOCK = re.compile(r"(?P<fence>`{3,})[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)

HOME = "/home/you"
"""Where the docs' outputs say the newcomer's folder is."""

CACHE = "~/.cache/zoo"
"""Where the docs' outputs say the data cache is (the user's cache folder)."""


@dataclass
class FirstRun:
    """What the commands printed, the folder they ran in, and their data cache."""

    folder: Path
    cache: Path
    outputs: dict[str, str]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, zoo_cache_dir: Path) -> Iterator[FirstRun]:
    """The commands of `COMMANDS`, run one after another in a new empty folder."""
    folder = tmp_path_factory.mktemp("newcomer") / "home"
    folder.mkdir()
    logs = tmp_path_factory.mktemp("logs")
    outputs = {}
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)  # no store named: the defaults
        env.delenv("ZOO_RUNS_DIR", raising=False)
        env.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))  # outside the folder, as ~/.cache/zoo is
        for number, (written, argv) in enumerate(COMMANDS.items()):
            code, out = finish([*ZOO, *argv], logs / f"{number}.log", timeout=1200, cwd=folder)
            assert code == 0, f"{written}:\n{out[-3000:]}"
            outputs[written] = out
        yield FirstRun(folder, zoo_cache_dir, outputs)


def test_a_first_run_in_an_empty_folder_leaves_one_folder_that_every_command_finds(
    first_run: FirstRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = first_run.folder
    assert sorted(p.name for p in folder.iterdir()) == ["zoo-runs"]
    runs = folder / "zoo-runs"
    assert {"mlflow.db", "mlruns"} <= {p.name for p in runs.iterdir()} <= {"mlflow.db", "mlflow.db.lock", "mlruns"}
    store = f"sqlite:///{runs / 'mlflow.db'}"
    client = MlflowClient(store)
    experiments = {e.name: e for e in client.search_experiments()}
    assert {"digits", "zoo"} <= set(experiments)
    found = client.search_runs([experiments["digits"].experiment_id, experiments["zoo"].experiment_id])
    assert len(found) == 6 + 1 + 1  # six runs and their parent, and zoo train's run
    assert all(r.info.artifact_uri.startswith(str(runs / "mlruns") + "/") for r in found)
    compared = first_run.outputs["zoo compare --experiment digits"]
    for model in ("resnet_tiny_scratch", "plain_tiny_scratch"):
        for seed in range(3):
            assert f"s{seed}-{model} (" in compared, compared  # zoo compare read the runs from zoo-runs/
    assert f"in {store};" in first_run.outputs[next(c for c in COMMANDS if c.startswith("zoo train"))]
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ZOO_RUNS_DIR", raising=False)
    assert ui_command(5000)[1]["MLFLOW_BACKEND_STORE_URI"] == store  # zoo ui would serve the same store


def checked_blocks() -> list[tuple[str, int, str, str]]:
    """Every block of the docs that a ``zoo:checked-output`` line precedes.

    Returns:
        ``(page, line, command, block)`` for each.
    """
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for marker in CHECKED.finditer(text):
            block = BLOCK.match(text, marker.end())
            line = text.count("\n", 0, marker.start()) + 1
            assert block, f"{page.relative_to(ROOT)}:{line}: a zoo:checked-output line must precede a code block"
            found.append((str(page.relative_to(ROOT)), line, marker.group("command"), block.group("body")))
    return found


NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?|\b(?:nan|-?inf)\b")
ID = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b")
OUTCOMES = ("no difference", "better", "worse", "cannot tell", "confounded")
VERDICT = re.compile(r"^(?P<a>\S+) vs (?P<b>\S+) (?P<metric>\(\w+\)): .*$")
RULE = re.compile(r"^-+(?: +-+)*$")
"""A table's line under its header: one run of dashes per column."""


def _text(text: str) -> str:
    """Figures and ids as ``#``, aligning spaces as one, a rule's dashes as ``--``."""
    return re.sub(r"-{2,}", "--", " ".join(NUMBER.sub("#", ID.sub("#", text)).split()))


def _cell(cell: str) -> str:
    """A table cell's shape: a figure, a mark (``*``, ``=``, ``?``) or a cell left empty is ``#``; an outcome ``~``."""
    cell = cell.strip()
    if cell in OUTCOMES:
        return "~"
    return "#" if cell in ("", "*", "=", "?") else _text(cell)


def shapes(text: str, places: dict[str, str] | None = None) -> list[str]:
    """The lines a command printed, with what changes from run to run and machine to machine taken out.

    Figures (counts, times, metrics, intervals) and run ids become ``#``; the folders of the run
    become what the docs write (`HOME`, `CACHE`); in a table (a header, a rule of dashes, rows
    up to a blank line), each cell is read at its column, and a cell that holds a figure, a mark
    or nothing (a test that had too few runs) is ``#``, an outcome ``~``, and a pair's two
    groups come in name order (the better one comes first); a verdict's text is ``~``.

    Args:
        text: What the command printed, or a page's block of it.
        places: Each folder of the run, and what the docs write for it.

    Returns:
        The shape of each line that is not blank.
    """
    for place, written in (places or {}).items():
        text = text.replace(place, written)
    lines = [line.rstrip() for line in text.splitlines()]
    found, columns = [], list[int]()
    for number, line in enumerate(lines):
        if not line.strip() or line.strip() == "...":
            columns = []
            if line.strip():
                found.append("...")
            continue
        if RULE.match(line) and number > 0 and lines[number - 1].strip():
            columns = [m.start() for m in re.finditer(r"-+", line)]
            found.append(_text(line))
            continue
        if columns:  # a row: its cells where the rule's columns start
            cells = [_cell(line[a:b]) for a, b in zip(columns, [*columns[1:], len(line)], strict=True)]
            if len(cells) > 3 and cells[-1] == "~":  # a row of the pairs table: metric, a, b, ..., outcome
                cells[1:3] = sorted(cells[1:3])
            found.append(" ".join(cells))
            continue
        verdict = VERDICT.match(line)
        if verdict:
            a, b = sorted((verdict.group("a"), verdict.group("b")))
            line = f"{a} vs {b} {verdict.group('metric')}: ~"
        found.append(_text(line))
    return found


def shape(line: str, places: dict[str, str] | None = None) -> str:
    """One line's shape, as `shapes` reads a line outside a table.

    Args:
        line: A line of output.
        places: Each folder of the run, and what the docs write for it.

    Returns:
        Its shape.
    """
    return shapes(line, places)[0]


def test_the_extractor_and_the_shapes_read_as_the_docs_mean() -> None:
    assert shape("s1-resnet_tiny_scratch (18fd30ad)  resnet_tiny_scratch  130,002  0.9094  25.56  FINISHED") == (
        "s#-resnet_tiny_scratch (#) resnet_tiny_scratch # # # FINISHED"
    )
    assert shape("a vs b (test_acc): no detectable difference: about 22 runs") == "a vs b (test_acc): ~"
    assert shape("b vs a (test_acc): b better than a (p = 0.01)") == "a vs b (test_acc): ~"
    assert shape("b vs a (test_loss): no detectable difference") != shape("a vs b (test_acc): ~")
    assert shape("run dad26452095c42debe71acb94ca15e70 in sqlite:////tmp/x/zoo-runs/mlflow.db", {"/tmp/x": HOME}) == (
        "run # in sqlite:///" + HOME + "/zoo-runs/mlflow.db"
    )
    groups = "best  model  runs  mean\n----  -----  ----  ----\n=     a      3     0.89\n*     b      3     nan\n"
    assert shapes(groups) == ["best model runs mean", "-- -- -- --", "# a # #", "# b # #"]
    pairs = (
        "metric    a  b  p      paired_p  outcome\n"
        "--------  -  -  -----  --------  -------------\n"
        "test_acc  a  b  0.3    0.25      no difference\n"
        "test_acc  b  a  0.01             better\n"
    )
    assert shapes(pairs)[2:] == ["test_acc a b # # ~", "test_acc a b # # ~"]  # an empty cell is a figure
    assert shapes("x\n...\ny") == ["x", "...", "y"]


def mismatch(shown: list[str], printed: list[str]) -> str | None:
    """Where a page's block (as `shapes`) differs from what the command printed, or ``None``.

    The block's parts between ``...`` lines must each be a run of consecutive printed lines
    (in any order within the run: rows sort by their figures), in the block's order; a block
    that does not start (end) with ``...`` starts (ends) where the output does.

    Args:
        shown: The block's shapes.
        printed: The output's shapes.

    Returns:
        What differs, for the failure message.
    """
    parts: list[list[str]] = [[]]
    for line in shown:
        if line == "...":
            parts.append([])
        else:
            parts[-1].append(line)
    position = 0
    for number, part in enumerate(parts):
        if not part:
            continue
        end = len(printed) - len(part)
        starts = [position] if number == 0 else list(range(position, end + 1))
        if number == len(parts) - 1:
            starts = [at for at in starts if at == end]
        found = next((at for at in starts if Counter(printed[at : at + len(part)]) == Counter(part)), None)
        if found is None:
            rest = Counter(printed[position:])
            return (
                f"the lines {part} are not printed together (part {number + 1} of the block; "
                f"not printed at all: {sorted(Counter(part) - rest)}; printed from here on: {printed[position:]})"
            )
        position = found + len(part)
    return None


def test_a_block_must_be_what_is_printed_in_order_where_it_does_not_leave_lines_out() -> None:
    printed = ["a", "x", "y", "b", "c"]
    assert mismatch(["a", "x", "y", "b", "c"], printed) is None
    assert mismatch(["a", "y", "x", "b", "c"], printed) is None  # rows in another order
    assert mismatch(["a", "...", "b", "c"], printed) is None
    assert mismatch(["...", "y", "b", "..."], printed) is None
    assert mismatch(["a", "...", "c"], printed) is None
    assert mismatch(["a", "x", "...", "c"], printed) is None
    assert mismatch(["...", "b", "c", "new"], printed) is not None  # a line no longer printed
    assert mismatch(["...", "x", "b", "..."], printed) is not None  # a printed line left out between them
    assert mismatch(["x", "...", "c"], printed) is not None  # the output starts elsewhere
    assert mismatch(["a", "...", "b"], printed) is not None  # and ends elsewhere


def test_the_docs_printed_outputs_have_the_shape_of_what_the_commands_print(first_run: FirstRun) -> None:
    blocks = checked_blocks()
    places = {str(first_run.folder): HOME, str(first_run.cache): CACHE}
    pages = {page for page, *_ in blocks}
    assert {"docs/quickstart.md", "docs/tracking.md"} <= pages, pages
    for page, line, command, block in blocks:
        where = f"{page}:{line} (`{command}`)"
        assert command in first_run.outputs, f"{where}: no check runs this command; add it to COMMANDS"
        differs = mismatch(shapes(block), shapes(first_run.outputs[command], places))
        assert differs is None, f"{where}: the page's block is not what the command prints: {differs}"
