"""Training and inference images per second of every registered architecture, for the model cards.

Run on a quiet machine (the figures are published in every card), then regenerate the index,
which copies them into the cards::

    pytest benchmarks/test_throughput_bench.py --benchmark-only -s -p no:cacheprovider
    python -m zoo.indexer zoo

For each architecture of the zoo's registered models, built with its builder's defaults
(random init, 10 classes), at its card's default input size, fp32 (``32-true``), NCHW, with
torch's default threads:

- training: one Adam step as the zoo trains (`steps.train_step`: forward, cross-entropy,
  backward, step) on a fixed random batch, in train mode;
- inference: the forward pass alone, in eval mode under ``torch.inference_mode()``;

each one warm-up call, then the median of ``ZOO_BENCH_ROUNDS`` timed calls
(`timing.interleaved_rounds`), as images per second (batch / median seconds). A pretrained
twin (``*_timm_pretrained``) has the architecture of a scratch model (same family, block
settings, parameters, FLOPs and input size): that one is timed once and the file lists both
under it, since weights do not change the speed. Nothing is asserted beyond figures above
zero: this is a measurement, not a goal.

The figures are merged into ``zoo/throughput.json`` (`zoo.throughput.merge_results`),
with the machine (``lscpu``'s model name, avx512_bf16 and AMX, CPUs, torch version and
threads) and the run (date, load average at start and end, niceness). Environment variables:

- ``ZOO_BENCH_MODELS``: comma-separated fnmatch patterns of model names (default: all); a
  pretrained model selects its scratch twin's architecture;
- ``ZOO_BENCH_BATCH``: images per call (default 8);
- ``ZOO_BENCH_ROUNDS``: timed calls of each (default 3);
- ``ZOO_BENCH_THROUGHPUT_FILE``: the file to merge into (default ``zoo/throughput.json``).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import torch

import registry
from registry.index import package_of
from zoo.throughput import empty_document, merge_results

from machine import load_average, machine_facts
from steps import train_step
from timing import interleaved_rounds

PACKAGE = "zoo"
"""The package whose models are timed, and whose throughput file is written."""

DEFAULT_RESULTS = Path(__file__).resolve().parents[1] / PACKAGE / "throughput.json"
RESULTS = Path(os.environ.get("ZOO_BENCH_THROUGHPUT_FILE", DEFAULT_RESULTS))
PATTERNS = [p.strip() for p in os.environ.get("ZOO_BENCH_MODELS", "*").split(",") if p.strip()]
BATCH = int(os.environ.get("ZOO_BENCH_BATCH", "8"))
ROUNDS = int(os.environ.get("ZOO_BENCH_ROUNDS", "3"))
PRECISION = "32-true"
CLASSES = 10

ARCHITECTURE_FACTS = ("family", "block", "num_params", "gflops", "input_size")
"""Card facts that two models of one architecture share (the weights aside)."""

MEASURED: dict[str, dict[str, Any]] = {}
"""This run's figures by architecture, written when the module's tests are done."""


def _common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def architecture_of(name: str, cards: dict[str, dict[str, Any]]) -> str:
    """The model to time for a model: its scratch twin if it is pretrained and has one, else itself.

    Args:
        name: Registered model name.
        cards: Every model's card (`registry.model_info`).

    Returns:
        A scratch model with the same `ARCHITECTURE_FACTS` (the one whose name shares the
        longest beginning with ``name``, ``resnet50_scratch`` for ``resnet50_timm_pretrained``),
        or ``name``.
    """
    card = cards[name]
    if card["pretrained"] is None:
        return name
    twins = [
        other
        for other, facts in cards.items()
        if facts["pretrained"] is None and all(facts[k] == card[k] for k in ARCHITECTURE_FACTS)
    ]
    return max(twins, key=lambda other: _common_prefix(other, name), default=name)


def architectures() -> dict[str, list[str]]:
    """The architectures to time, each with every registered model that shares it.

    Returns:
        Model to time -> the models whose cards get its figures, for the models that
        ``ZOO_BENCH_MODELS`` selects.
    """
    names = [n for n in registry.list_models() if package_of(registry.get_spec(n)) == PACKAGE]
    cards = {name: registry.model_info(name) for name in names}
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(architecture_of(name, cards), []).append(name)
    chosen = {architecture_of(n, cards) for n in names if any(fnmatch.fnmatchcase(n, p) for p in PATTERNS)}
    return {arch: sorted(groups[arch]) for arch in sorted(chosen)}


ARCHITECTURES = architectures()


@pytest.fixture(scope="module", autouse=True)
def results_file() -> Iterator[None]:
    """Merge this run's figures into `RESULTS` once every architecture is timed."""
    run_id = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = load_average()
    yield
    if not MEASURED:
        return
    run = {"load_start": start, "load_end": load_average(), "nice": os.nice(0)}
    document = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else empty_document()
    merged, note = merge_results(document, machine_facts(), run_id, run, MEASURED)
    RESULTS.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {len(MEASURED)} architectures to {RESULTS} ({note}); run: {run}")
    print("now regenerate the cards: python -m zoo.indexer zoo")


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_throughput(benchmark, arch: str) -> None:
    card = registry.model_info(arch)
    channels, height, width = card["input_size"]
    assert height == width, f"{arch}: steps.train_step times square inputs, the card's is {height}x{width}"
    torch.manual_seed(0)
    kwargs = {"pretrained": False} if card["pretrained"] else {}  # no scratch twin: its builder without weights
    module = registry.create_model(arch, num_classes=CLASSES, **kwargs)
    train = train_step(module, BATCH, height, "cpu", PRECISION, channels_last=False, classes=CLASSES)
    train_s = interleaved_rounds({"train": train}, rounds=ROUNDS, warmup=1)["train"]
    module.eval()
    x = torch.randn(BATCH, channels, height, width)

    def infer() -> None:
        with torch.inference_mode():
            module(x)

    infer_s = interleaved_rounds({"infer": infer}, rounds=ROUNDS, warmup=1)["infer"]
    figures = {
        "models": ARCHITECTURES[arch],
        "train_img_s": round(BATCH / train_s, 2),
        "infer_img_s": round(BATCH / infer_s, 2),
        "batch": BATCH,
        "input_size": [channels, height, width],
        "precision": PRECISION,
        "memory_format": "NCHW",
        "rounds": ROUNDS,
    }
    benchmark.extra_info.update(train_img_s=figures["train_img_s"], infer_img_s=figures["infer_img_s"])
    benchmark.pedantic(infer, rounds=1, iterations=1)
    print(
        f"\n{arch} ({', '.join(ARCHITECTURES[arch])}): {height}x{width} batch {BATCH} {PRECISION} NCHW, "
        f"train {figures['train_img_s']} img/s ({train_s * 1e3:.0f} ms/step), "
        f"infer {figures['infer_img_s']} img/s ({infer_s * 1e3:.0f} ms/batch)"
    )
    assert figures["train_img_s"] > 0
    assert figures["infer_img_s"] > 0
    MEASURED[arch] = figures
