"""The zoo's generated model index: equal to what the builders measure, and read instead of building."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import registry
import registry.info
from registry import index
from zoo.indexer import build_index, write_index

ZOO_INDEX = Path(__file__).resolve().parents[1] / "zoo" / "model_index.json"


def test_index_equals_what_the_builders_measure() -> None:
    measured = build_index("zoo")
    shipped = json.loads(ZOO_INDEX.read_text(encoding="utf-8"))
    stale = sorted(set(measured["models"]) ^ set(shipped["models"])) + [
        n for n in measured["models"] if n in shipped["models"] and measured["models"][n] != shipped["models"][n]
    ]
    assert not stale, f"zoo/model_index.json is stale for {stale}: run `python -m zoo.indexer zoo`"


def test_model_info_reads_the_index_and_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_building(*args: object) -> None:
        raise AssertionError("model_info built a model that the index describes")

    monkeypatch.setattr(registry.info, "measure", no_building)
    info = registry.model_info("seresnext101d_32x8d_timm_pretrained")
    entry = json.loads(ZOO_INDEX.read_text(encoding="utf-8"))["models"]["seresnext101d_32x8d_timm_pretrained"]
    assert info["num_params"] == entry["num_params"]
    assert info["gflops"] == entry["flops"] / 1e9
    assert info["pretrained_cfg"]["mean"] == tuple(entry["pretrained_cfg"]["mean"])
    assert info["input_size"] == (3, 224, 224)


def test_other_arguments_and_stale_entries_are_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.get_spec("resnet_tiny_scratch")
    assert index.indexed_facts(spec) is not None
    calls = []
    real = registry.info.measure

    def counting(name: str, frozen: tuple) -> tuple:
        calls.append((name, frozen))
        return real(name, frozen)

    monkeypatch.setattr(registry.info, "measure", counting)
    registry.model_info("resnet_tiny_scratch", num_classes=3)
    assert calls == [("resnet_tiny_scratch", (("num_classes", 3),))]
    stale = {**index.load_index("zoo")["resnet_tiny_scratch"], "builder": "zoo.elsewhere.resnet_tiny_scratch"}
    monkeypatch.setattr(index, "load_index", lambda package: {"resnet_tiny_scratch": stale})
    assert index.indexed_facts(spec) is None
    registry.model_info("resnet_tiny_scratch")
    assert calls[-1] == ("resnet_tiny_scratch", ())


def test_a_package_without_an_index_is_measured() -> None:
    assert index.load_index("registry") == {}
    assert index.load_index("no_such_package_here") == {}


def test_write_index_writes_a_model_a_line(tmp_path: Path) -> None:
    path = tmp_path / "model_index.json"
    count = write_index("zoo", path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == count + 2
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(ZOO_INDEX.read_text(encoding="utf-8"))
