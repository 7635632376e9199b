"""Throughput on the model cards: the index carries zoo/throughput.json's figures, and a card without them says why.

No benchmark runs here: the figures are whatever ``benchmarks/test_throughput_bench.py`` last
wrote, and made-up documents check how they reach a card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import registry
from experiments.cli import main
from registry.info import NOT_MEASURED, NOT_MEASURED_WITH_ARGUMENTS
from zoo.indexer import measure_entry
from zoo.throughput import empty_document, load_throughput, merge_results, throughput_facts

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_INDEX = json.loads((ROOT / "zoo" / "model_index.json").read_text(encoding="utf-8"))["models"]
SHIPPED_THROUGHPUT = json.loads((ROOT / "zoo" / "throughput.json").read_text(encoding="utf-8"))

MACHINE = {"cpu": "Test CPU 9000", "avx512_bf16": True, "amx": False, "cpus": 4, "torch": "2.0", "torch_threads": 4}
RUN = "2030-01-02T03:04:05Z"


def _figures(models: list[str], train: float, infer: float, size: int = 32) -> dict[str, Any]:
    return {
        "models": models,
        "train_img_s": train,
        "infer_img_s": infer,
        "batch": 8,
        "input_size": [3, size, size],
        "precision": "32-true",
        "memory_format": "NCHW",
        "rounds": 3,
    }


def _document(measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    run = {"load_start": [0.25, 0.2, 0.1], "load_end": [0.5, 0.3, 0.1], "nice": 0}
    return merge_results(empty_document(), MACHINE, RUN, run, measured)[0]


def test_the_shipped_throughput_file_is_found_and_has_its_structure() -> None:
    # tests/test_packaging.py checks that the wheel ships it.
    assert load_throughput("zoo") == SHIPPED_THROUGHPUT
    assert set(SHIPPED_THROUGHPUT) == set(empty_document())


def test_every_card_carries_the_figures_of_throughput_json_or_says_why_not() -> None:
    by_model = {
        model: (arch, figures)
        for arch, figures in SHIPPED_THROUGHPUT["architectures"].items()
        for model in figures["models"]
    }
    for name, entry in SHIPPED_INDEX.items():
        info = registry.model_info(name)
        card = (info["train_img_s"], info["infer_img_s"], info["throughput_source"])
        assert card == (entry["train_img_s"], entry["infer_img_s"], entry["throughput_source"]), name
        if name not in by_model:
            assert card[:2] == (None, None), name
            assert card[2].startswith(f"{NOT_MEASURED}: zoo/throughput.json has no figures"), card
            continue
        arch, figures = by_model[name]
        assert card[:2] == (figures["train_img_s"], figures["infer_img_s"]), name
        assert SHIPPED_THROUGHPUT["machine"]["cpu"] in card[2]
        assert f"batch {figures['batch']} at {figures['input_size'][1]}x{figures['input_size'][2]}" in card[2]
        assert figures["run"][:10] in card[2]
        assert (f"measured on {arch}" in card[2]) == (arch != name), card[2]


def test_a_measured_model_its_twin_and_the_unmeasured_on_one_document() -> None:
    document = _document({"net_scratch": _figures(["net_scratch", "net_timm_pretrained"], 12.5, 40.25)})
    own = throughput_facts("net_scratch", (3, 32, 32), document)
    assert (own["train_img_s"], own["infer_img_s"]) == (12.5, 40.25)
    for words in (
        "Test CPU 9000 (4 CPUs, avx512_bf16, no AMX; torch 2.0, 4 threads)",
        "2030-01-02",
        "batch 8 at 32x32",
    ):
        assert words in own["throughput_source"]
    assert "32-true NCHW, median of 3 rounds (load average 0.25 -> 0.5)" in own["throughput_source"]
    twin = throughput_facts("net_timm_pretrained", (3, 32, 32), document)
    assert (twin["train_img_s"], twin["infer_img_s"]) == (12.5, 40.25)
    assert twin["throughput_source"].endswith(
        "measured on net_scratch, the same architecture (weights do not change the speed)"
    )
    resized = throughput_facts("net_scratch", (3, 224, 224), document)
    assert (resized["train_img_s"], resized["infer_img_s"]) == (None, None)
    assert resized["throughput_source"].startswith(
        f"{NOT_MEASURED} at its input size 224x224: throughput.json has figures at 32x32"
    )
    other = throughput_facts("other_scratch", (3, 32, 32), document)
    assert (other["train_img_s"], other["infer_img_s"]) == (None, None)
    assert other["throughput_source"] == (
        f"{NOT_MEASURED}: throughput.json has no figures for it; benchmarks/test_throughput_bench.py measures it"
    )


def test_the_indexer_merges_the_figures_into_the_entry() -> None:
    document = _document({"resnet_tiny_scratch": _figures(["resnet_tiny_scratch"], 300.0, 900.0)})
    entry = measure_entry("resnet_tiny_scratch", document)
    assert (entry["train_img_s"], entry["infer_img_s"]) == (300.0, 900.0)
    assert "Test CPU 9000" in entry["throughput_source"]
    assert measure_entry("resnet_tiny_scratch", empty_document())["train_img_s"] is None


def test_a_card_measured_with_other_arguments_has_no_figures_and_says_why() -> None:
    info = registry.model_info("resnet_tiny_scratch", num_classes=3)
    assert (info["train_img_s"], info["infer_img_s"]) == (None, None)
    assert info["throughput_source"] == NOT_MEASURED_WITH_ARGUMENTS


def test_merging_replaces_what_is_measured_again_and_never_mixes_machines() -> None:
    first = _document({"a_scratch": _figures(["a_scratch"], 1.0, 2.0), "b_scratch": _figures(["b_scratch"], 3.0, 4.0)})
    again, note = merge_results(
        first, MACHINE, "2030-02-01T00:00:00Z", {"nice": 0}, {"b_scratch": _figures(["b_scratch"], 5.0, 6.0)}
    )
    assert note == "kept 1 architectures measured before"
    assert {a: f["train_img_s"] for a, f in again["architectures"].items()} == {"a_scratch": 1.0, "b_scratch": 5.0}
    assert sorted(again["runs"]) == [RUN, "2030-02-01T00:00:00Z"]
    everything, _ = merge_results(
        again,
        MACHINE,
        "2030-03-01T00:00:00Z",
        {},
        {"a_scratch": _figures(["a_scratch"], 7.0, 8.0), "b_scratch": _figures(["b_scratch"], 9.0, 1.0)},
    )
    assert list(everything["runs"]) == ["2030-03-01T00:00:00Z"]  # runs nothing refers to are dropped
    elsewhere, note = merge_results(
        first, {**MACHINE, "cpu": "Another CPU"}, RUN, {}, {"c_scratch": _figures(["c_scratch"], 1.0, 1.0)}
    )
    assert note.startswith("dropped 2 architectures measured on another machine (Test CPU 9000")
    assert list(elsewhere["architectures"]) == ["c_scratch"]
    assert elsewhere["machine"]["cpu"] == "Another CPU"


def test_zoo_models_sorts_and_prints_the_throughput_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "models",
                "resnet*",
                "--sort",
                "infer_img_s",
                "--format",
                "json",
                "--columns",
                "name,train_img_s,infer_img_s,throughput_source",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [set(row) for row in rows] == [{"name", "train_img_s", "infer_img_s", "throughput_source"}] * len(rows)
    figures = [row["infer_img_s"] for row in rows if row["infer_img_s"] is not None]
    assert figures == sorted(figures, reverse=True)  # a throughput: the fastest first
    assert all(row["infer_img_s"] is not None for row in rows[: len(figures)])  # the unmeasured last
    assert main(["models", "resnet*", "--sort", "infer_img_s", "--reverse", "--format", "json"]) == 0
    flipped = [row["infer_img_s"] for row in json.loads(capsys.readouterr().out) if row["infer_img_s"] is not None]
    assert flipped == sorted(figures)  # --reverse: the slowest first, the unmeasured still last
    assert main(["models", "resnet*", "--sort", "gflops", "--format", "json", "--columns", "gflops"]) == 0
    sizes = [row["gflops"] for row in json.loads(capsys.readouterr().out)]
    assert sizes == sorted(sizes)  # a size: the smallest first
    assert all(row["throughput_source"] for row in rows)
