"""`zoo models`, and the CLI's one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import registry
from experiments.cli import main


def test_models_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "family", "params", "gflops", "input", "pretrained"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == set(registry.list_models())
    assert rows["resnet50_scratch"][2] == f"{registry.model_info('resnet50_scratch')['num_params']:,}"
    assert rows["resnet50_timm_pretrained"][-1] == "timm:resnet50.a1_in1k"


def test_models_pattern_pretrained_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "resnet10*", "--pretrained", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["resnet101_timm_pretrained", "resnet101d_timm_pretrained"]
    assert rows[0]["params"] == registry.model_info("resnet101_timm_pretrained")["num_params"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "nothing*"], "zoo: error: no registered model matches 'nothing*'"),
        (["frobnicate"], "zoo: error: argument COMMAND: invalid choice: 'frobnicate'"),
        (["models", "--format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_errors_are_one_line_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors exit
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_console_command_is_installed() -> None:
    zoo = shutil.which("zoo")
    assert zoo, "the `zoo` console command is not on PATH: pip install -e ."
    result = subprocess.run([zoo, "models", "resnet50*"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "resnet50_scratch" in result.stdout
