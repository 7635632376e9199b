"""A newcomer's first commands, in an empty folder: what they leave there, and what the docs say they print.

The README's commands run as a user runs them, each its own process in a folder with
nothing in it and no store named (``MLFLOW_TRACKING_URI`` and ``ZOO_RUNS_DIR`` unset):
``zoo run digits``, ``zoo compare``, ``zoo train`` and ``zoo data digits`` (the training ones
with fewer images and epochs than the docs' commands, which changes figures and the number of
epoch lines, not the shape of the lines printed). Then:

- the folder holds one folder, ``zoo-runs/``, with the MLflow store and its artifacts,
  and every command found the runs there (``zoo compare`` lists them, ``zoo ui`` would
  serve that store);
- every code block of the docs that a ``<!-- zoo:checked-output zoo ARGS -->`` line
  precedes has the shape of what that command printed here: the same lines once
  figures, ids, the folder and the verdict words that follow from the figures are
  normalised (see `shape`), as a multiset (rows sort by their figures). A ``...`` line
  in a block stands for lines it leaves out; without one, the block is the whole output.
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

SHORTER = ["--limit-per-class", "10", "--epochs", "1"]
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
OUTCOME = re.compile(r"\b(?:no difference|better|worse|cannot tell|confounded)$")
PAIR_ROW = re.compile(r"^(?P<metric>\S+) {2,}(?P<a>\S+) {2,}(?P<b>\S+)(?P<rest> {2,}.*)$")
VERDICT = re.compile(r"^(?P<a>\S+) vs (?P<b>\S+) (?P<metric>\(\w+\)): .*$")
MARK = re.compile(r"^[*=?] {2,}")


def shape(line: str, places: dict[str, str] | None = None) -> str:
    """A printed line with what changes from run to run and machine to machine taken out.

    Figures (counts, times, metrics, intervals) and run ids become ``#``; the folders of the
    run become what the docs write (`HOME`, `CACHE`); the words that follow from the figures (a pair's outcome, a
    verdict's text, a group's best mark) become ``~``, and so do model names in a pair's
    order (``A vs B``: the better one comes first); spaces that align columns become one.

    Args:
        line: A line of output.
        places: Each folder of the run, and what the docs write for it.

    Returns:
        The line's shape.
    """
    for place, written in (places or {}).items():
        line = line.replace(place, written)
    line = MARK.sub("~ ", line.rstrip())
    row = PAIR_ROW.match(line) if OUTCOME.search(line) else None
    if row:  # a row of the pairs table: metric, a, b, figures, outcome
        a, b = sorted((row.group("a"), row.group("b")))
        line = OUTCOME.sub("~", f"{row.group('metric')}  {a}  {b}{row.group('rest')}")
    verdict = VERDICT.match(line)
    if verdict:
        a, b = sorted((verdict.group("a"), verdict.group("b")))
        line = f"{a} vs {b} {verdict.group('metric')}: ~"
    line = NUMBER.sub("#", ID.sub("#", line))
    return re.sub(r"-{2,}", "--", " ".join(line.split()))


def test_the_extractor_and_the_shapes_read_as_the_docs_mean() -> None:
    assert shape("s1-resnet_tiny_scratch (18fd30ad)  resnet_tiny_scratch  130,002  0.9094  25.56  FINISHED") == (
        "s#-resnet_tiny_scratch (#) resnet_tiny_scratch # # # FINISHED"
    )
    assert shape("=     resnet_tiny_scratch  3     0.892   0.8543..0.9297") == "~ resnet_tiny_scratch # # #..#"
    assert shape("*  resnet_tiny_scratch  3  0.9  0.8..0.95") == "~ resnet_tiny_scratch # # #..#"
    assert shape("a vs b (test_acc): no detectable difference: about 22 runs") == "a vs b (test_acc): ~"
    assert shape("b vs a (test_acc): b better than a (p = 0.01)") == "a vs b (test_acc): ~"
    assert shape("b vs a (test_loss): no detectable difference") != shape("a vs b (test_acc): ~")
    assert (
        shape("test_acc  a  b  3  -0.01  no difference")
        == shape("test_acc  b  a  3  0.2  better")
        == "test_acc a b # # ~"
    )
    assert shape("run dad26452095c42debe71acb94ca15e70 in sqlite:////tmp/x/zoo-runs/mlflow.db", {"/tmp/x": HOME}) == (
        "run # in sqlite:///" + HOME + "/zoo-runs/mlflow.db"
    )
    assert shape("------------  ------") == "-- --"
    assert shape("best_val_acc  a  b  3  3  0.9  0.9  0  nan..nan  nan  nan  0.5  no difference") == (
        "best_val_acc a b # # # # # #..# # # # ~"
    )


def test_the_docs_printed_outputs_have_the_shape_of_what_the_commands_print(first_run: FirstRun) -> None:
    blocks = checked_blocks()
    places = {str(first_run.folder): HOME, str(first_run.cache): CACHE}
    pages = {page for page, *_ in blocks}
    assert {"docs/quickstart.md", "docs/tracking.md"} <= pages, pages
    for page, line, command, block in blocks:
        where = f"{page}:{line} (`{command}`)"
        assert command in first_run.outputs, f"{where}: no check runs this command; add it to COMMANDS"
        printed = Counter(shape(ln, places) for ln in first_run.outputs[command].splitlines() if ln.strip())
        shown = [ln for ln in block.splitlines() if ln.strip()]
        elided = any(ln.strip() == "..." for ln in shown)
        written = Counter(shape(ln) for ln in shown if ln.strip() != "...")
        missing = written - printed
        near = sorted(ln for ln in printed if ln.split()[:1] in [m.split()[:1] for m in missing])
        assert not missing, (
            f"{where}: the page shows lines the command no longer prints: {sorted(missing)}; it prints {near}"
        )
        if not elided:
            left_out = printed - written
            assert not left_out, (
                f"{where}: the command prints lines the page leaves out (add `...`): {sorted(left_out)}"
            )
