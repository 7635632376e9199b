"""`zoo data SOURCE`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main

from image_factory import isolated_cache, write_image_folder, zip_folder

pytestmark = pytest.mark.usefixtures("isolated_cache")
_ = isolated_cache


def test_zoo_data_prints_classes_split_size_and_cache(tmp_path: Path, isolated_cache: Path, capsys) -> None:
    source = zip_folder(write_image_folder(tmp_path / "d", "split", n_train=10, n_test=4), tmp_path / "d.zip", wrap="x")
    assert main(["data", str(source)]) == 0
    out = capsys.readouterr().out
    assert "classes     3: cat, dog, frog" in out
    assert "image size  16x16" in out
    assert "train 24, val 6, test 12" in out
    assert str(isolated_cache / "data") in out
    assert any(line.split() == ["dog", "8", "2", "4"] for line in out.splitlines())


def test_zoo_data_options_mirror_the_split(capsys) -> None:
    args = ["data", "digits", "--val-fraction", "0.5", "--seed", "3", "--limit-per-class", "7", "--decode-size", "12"]
    assert main([*args, "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["num_train"], summary["num_val"], summary["num_test"]) == (70, 70, 70)
    assert summary["image_size"] == [12, 12]
    assert summary["test_drawn"]


def test_zoo_data_bad_value_is_one_line(capsys) -> None:
    assert main(["data", "digits", "--val-fraction", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err == "zoo: error: val_fraction must be a fraction in [0, 1), not 1.5\n"


def test_zoo_data_reports_unreadable_images_in_one_line(tmp_path: Path, capsys) -> None:
    root = write_image_folder(tmp_path / "d", "classes", n_train=5)
    (root / "cat" / "0001.jpg").write_bytes(b"\xff\xd8\xff not really")
    assert main(["data", str(root)]) == 0
    captured = capsys.readouterr()
    assert (
        captured.err
        == "zoo: warning: skipped 1 unreadable image(s) in folder " + str(root) + " (class folders): cat/0001.jpg\n"
    )
    assert "skipped     1 unreadable image(s)" in captured.out
