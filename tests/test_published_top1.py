"""timm's published top-1, shipped as package data: its rows, its source, the cards that read it, its generator."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch

import registry
from zoo import published
from zoo.published import TABLE_FILE, main, registered_timm_tags, timm_table, timm_top1

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_TABLE = ROOT / "zoo" / TABLE_FILE
INDEX = json.loads((ROOT / "zoo" / "model_index.json").read_text(encoding="utf-8"))["models"]
PRETRAINED = {name: entry for name, entry in INDEX.items() if entry["pretrained"]}


def _row(entry: dict) -> dict:
    """The table's row a card reads: its tag at the weights' input size."""
    tag, size = entry["pretrained"].removeprefix("timm:"), entry["pretrained_cfg"]["input_size"][-1]
    (row,) = [r for r in timm_table()["rows"][tag] if r["img_size"] == size]
    return row


def test_the_table_holds_the_registered_tags_and_names_its_source() -> None:
    assert sorted(timm_table()["rows"]) == registered_timm_tags()
    assert {e["pretrained"].removeprefix("timm:") for e in PRETRAINED.values()} == set(timm_table()["rows"])
    source = timm_table()["source"]
    assert source["repository"] == "https://github.com/huggingface/pytorch-image-models"
    assert source["path"] == "results/results-imagenet.csv"
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["date"])
    assert source["url"] == f"{source['repository']}/blob/{source['commit']}/{source['path']}"


def test_cards_carry_the_tables_top1_unless_the_file_is_torchvisions() -> None:
    commit = timm_table()["source"]["commit"][:7]
    from_timm = 0
    for name, entry in PRETRAINED.items():
        info = registry.model_info(name)
        if info["top1_source"].startswith("torchvision "):  # torchvision's figure for its file (test_model_cards.py)
            assert entry["pretrained"].endswith(".tv_in1k"), name
            continue
        row = _row(entry)
        assert info["top1"] == row["top1"], name
        size = entry["pretrained_cfg"]["input_size"][-1]
        assert info["top1_source"].startswith(f"timm results/results-imagenet.csv @ {commit} ("), name
        assert info["top1_source"].endswith(f"top-1 at {size}px"), name
        from_timm += 1
    assert from_timm == len(PRETRAINED) - 2  # all but resnext101_32x8d.tv_in1k and wide_resnet101_2.tv_in1k


def test_the_tables_param_count_is_the_models_with_imagenets_head() -> None:
    # The card counts a 10-class head; timm's param_count, in millions, counts the 1000-class one.
    # Built on the meta device without counting FLOPs (model_info would count them too: 3x slower).
    for name, entry in PRETRAINED.items():
        with torch.device("meta"):
            model = registry.create_model(name, num_classes=1000, pretrained=False)
        params = sum(p.numel() for p in model.parameters())
        assert round(params / 1e6, 2) == _row(entry)["param_count"], name


def test_a_tag_without_a_row_says_so() -> None:
    figure, why = timm_top1("resnet50.no_such_tag", 224)
    assert figure is None
    assert "has no row for resnet50.no_such_tag" in why
    figure, why = timm_top1("resnet50.a1_in1k", 320)
    assert figure is None
    assert why.endswith("at 320px (only at 288px, 224px)")


def test_the_generator_writes_the_shipped_file_from_timms_table(tmp_path: Path) -> None:
    # timm's table as it comes: all its columns, and rows of tags the zoo does not register.
    results = tmp_path / "results-imagenet.csv"
    header = ["model", "img_size", "top1", "top1_err", "top5", "top5_err", "param_count", "crop_pct", "interpolation"]
    shipped = json.loads(SHIPPED_TABLE.read_text(encoding="utf-8"))
    with results.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerow(["vit_base_patch16_224.augreg_in1k", 224, 79.1, 20.9, 94.1, 5.9, 86.57, 0.9, "bicubic"])
        for r in reversed(shipped["rows"]):
            writer.writerow([r["tag"], r["img_size"], r["top1"], 0, r["top5"], 0, f"{r['param_count']:.2f}", 1, "x"])
    output = tmp_path / TABLE_FILE
    source = shipped["source"]
    assert main([str(results), "--commit", source["commit"], "--date", source["date"], "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == SHIPPED_TABLE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--commit", "4e5207c", "--date", "2025-10-30"], "is not a full SHA"),
        (["--commit", "a" * 40, "--date", "30/10/2025"], "is not YYYY-MM-DD"),
    ],
)
def test_the_generator_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    results = tmp_path / "results.csv"
    results.write_text("model,img_size,top1\n", encoding="utf-8")
    assert main([str(results), *args, "--output", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.json").exists()


def test_the_generator_refuses_a_file_that_is_not_timms_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.csv"
    results.write_text("model,img_size,top1\n", encoding="utf-8")
    args = ["--commit", "a" * 40, "--date", "2025-10-30", "--output", str(tmp_path / "out.json")]
    assert main([str(results), *args]) == 2
    assert "has no column top5, param_count" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.csv"), *args]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
    assert published.timm_table()["rows"]  # the shipped table is still the one read
