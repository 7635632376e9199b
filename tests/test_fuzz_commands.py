"""Malformed values thrown at every config field and every command's flags.

Each gets one line and exit code 2, or a clean run of the command; never a traceback.

Work that a valid value would start (training, the UI's server) is replaced by
stand-ins, so each example costs milliseconds; the number of examples is bounded
per test. Commands that read MLflow do so on an empty store of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from experiments.cli import main
from experiments.config.schema import field_names

MALFORMED = [
    "-1",
    "0",
    "1e9",
    "1e400",
    "nan",
    "inf",
    "-inf",
    "",
    " ",
    "a=b",
    "=",
    "1,2",
    "[1",
    "{",
    "\n",
    "auto",
    "none",
    "-0",
    "4294967296",
    "99999",
    "../..",
    "/",
    "🦀",
    "0x10",
    "1_000",
    "true",
    "None",
    "%s",
    "$HOME",
]
"""Values that broke a parser somewhere, once."""

values = st.one_of(st.sampled_from(MALFORMED), st.text(max_size=25).map(lambda t: t.replace("\x00", "")))

yaml_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=3)), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

COMMAND_FLAGS = {
    "compare": [
        "--experiment",
        "--sort",
        "--filter",
        "--format",
        "--group-by",
        "--vs",
        "--columns",
        "--table",
        "--at",
        "--plot",
        "--plot-grad-norms",
    ],
    "runs": ["--older-than", "--experiment", "--format"],
    "eval": ["--data", "--limit-per-class", "--batch-size", "--accelerator", "--experiment", "--format"],
    "register": ["--name", "--alias"],
    "predict": ["--top-k"],
    "ui": ["--port"],
    "data": ["--val-fraction", "--seed", "--limit-per-class", "--decode-size", "--test-fraction", "--format"],
    "models": ["--format"],
}
"""Each command's own flags (the config flags of train and run are fuzzed below)."""

POSITIONAL = {
    "eval": ["RUN"],
    "register": ["RUN", "--name", "m"],
    "predict": ["--run", "RUN", "x.png"],
    "data": ["digits"],
    "compare": [],
    "runs": [],
    "ui": [],
    "models": [],
}


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch, mlflow_store: str) -> list:
    """Training and the UI's server replaced: a value that passes every check is recorded, not acted on."""
    from experiments.commands import ui
    from experiments.training import runner

    started: list = []

    def fake_train(config, **kwargs):
        started.append(config)
        raise SystemExit(0)

    class FakeServer:
        pid = 0

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(runner, "train", fake_train)
    monkeypatch.setattr(runner, "resume", fake_train)
    monkeypatch.setattr(ui.subprocess, "Popen", lambda *a, **k: started.append(a) or FakeServer())
    return started


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """The exit code and stderr; any exception other than SystemExit fails the test (a traceback)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals, and the stand-ins' clean exits
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def assert_clean(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith("zoo"), err
        assert ": error: " in lines[0], err
    else:
        assert code in (0, 1), (code, err)  # 1: a command that found nothing to show (compare on an empty store)


command_flags = st.sampled_from(sorted(COMMAND_FLAGS)).flatmap(
    lambda command: st.tuples(st.just(command), st.sampled_from(COMMAND_FLAGS[command]))
)
"""A command and one of its own flags."""


@settings(FUZZ, max_examples=40 * len(COMMAND_FLAGS))  # as many examples as 40 per command
@given(case=command_flags, value=values, run_id=st.one_of(st.just("0123456789abcdef"), values))
# Findings, kept: each once drew a traceback or a failed allocation.
@example(case=("data", "--decode-size"), value="4294967296", run_id="0123456789abcdef")  # 54 TB of pixels asked for
@example(case=("data", "--decode-size"), value="100000", run_id="0123456789abcdef")
def test_every_commands_flags(
    case: tuple[str, str], value: str, run_id: str, stand_ins: list, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    command, flag = case
    positional = [run_id if p == "RUN" else p for p in POSITIONAL[command]]
    assert_clean(*run_cli([command, *positional, f"{flag}={value}"], capsys))


@FUZZ
@given(field=st.sampled_from(field_names()), value=yaml_values)
def test_every_config_field_in_a_config_file(
    field: str, value: object, stand_ins: list, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump({"model": "resnet_tiny_scratch", "data": "digits", field: value}))
    before = len(stand_ins)
    code, err = run_cli(["train", "--config", str(path)], capsys)
    assert_clean(code, err)
    assert code == 2 or len(stand_ins) > before  # refused, or it passed every check and reached training


@FUZZ
@given(key=st.sampled_from(["seeds", "grid", "defaults", "runs", "description"]), value=yaml_values)
def test_every_key_of_an_experiment_file(
    key: str, value: object, stand_ins: list, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    document = {"defaults": {"model": "resnet_tiny_scratch", "data": "digits"}, "runs": [{}], key: value}
    if key == "grid" and isinstance(value, list):
        document[key] = {"lr": value}
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document))
    assert_clean(*run_cli(["run", str(path), "--dry-run"], capsys))


def test_ci_draws_the_same_examples_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest chooses the profile from the CI variable: derandomized there, so CI cannot pass or fail at random.
    assert settings.get_profile("ci").derandomize
    assert settings.get_profile("ci").database is None
    assert not settings.get_profile("dev").derandomize
    if os.environ.get("CI") and not os.environ.get("HYPOTHESIS_PROFILE"):
        assert settings.default.derandomize
