"""A package's measured throughput (``throughput.json``): the benchmarks' figures, for its model cards.

``benchmarks/test_throughput_bench.py`` times every registered architecture on the machine
it runs on (one Adam training step and one inference forward pass, images per second) and
merges the figures into ``<package>/throughput.json``. The indexer (`zoo.indexer`)
copies each model's figures into its index entry with a line saying how and where they
were measured; a model without figures gets ``None`` and a line saying why.

The file holds, once, the ``machine`` (CPU model and the flags that decide its speed, CPU
count, torch version and threads), the ``runs`` that measured (date, load average at start
and end, niceness), and per ``architectures`` entry (named by the model measured) the
figures, their setup (batch, input size, precision, memory format, rounds), the run, and
the ``models`` that share the architecture: a pretrained twin has its scratch model's
figures, since weights do not change the speed.
"""

from __future__ import annotations

import json
from typing import Any

from registry.index import package_file
from registry.info import NOT_MEASURED

THROUGHPUT_FILE = "throughput.json"
"""The file's name, at the top of the package whose models it measures."""

BENCHMARK = "benchmarks/test_throughput_bench.py"
"""What writes the file."""

FORMAT = 1
"""The file's format version."""


def empty_document() -> dict[str, Any]:
    """A throughput file without figures: its structure only.

    Returns:
        ``format``, ``about`` and empty ``machine``, ``runs``, ``architectures``.
    """
    return {
        "format": FORMAT,
        "about": f"images per second measured by {BENCHMARK}; see docs/benchmarks.md",
        "machine": {},
        "runs": {},
        "architectures": {},
    }


def load_throughput(package: str) -> dict[str, Any]:
    """Read a package's throughput file, without importing the package.

    Args:
        package: The top-level package, such as ``"zoo"``.

    Returns:
        The document; `empty_document` when the package ships none.
    """
    path = package_file(package, THROUGHPUT_FILE) if "." not in package else None
    if path is None:
        return empty_document()
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _size(input_size: Any) -> str:
    return "x".join(map(str, list(input_size)[1:]))


def describe_machine(machine: dict[str, Any]) -> str:
    """The machine in a few words, for a card's throughput source.

    Args:
        machine: The file's ``machine``.

    Returns:
        Such as ``"AMD EPYC (2 CPUs, avx512_bf16, no AMX; torch 2.14.1, 2 threads)"``.
    """
    flags = ["avx512_bf16" if machine.get("avx512_bf16") else "no avx512_bf16"]
    flags.append("AMX" if machine.get("amx") else "no AMX")
    return (
        f"{machine.get('cpu', 'an unnamed CPU')} ({machine.get('cpus', '?')} CPUs, {', '.join(flags)}; "
        f"torch {machine.get('torch', '?')}, {machine.get('torch_threads', '?')} threads)"
    )


def describe_setup(document: dict[str, Any], architecture: str) -> str:
    """How, where and when an architecture's figures were measured.

    Args:
        document: The throughput file.
        architecture: A key of its ``architectures``.

    Returns:
        One line naming the benchmark, date, machine, batch, input size, precision, memory
        format, rounds and the load average at the run's start and end.
    """
    figures = document["architectures"][architecture]
    run_id = figures.get("run", "")
    run = document.get("runs", {}).get(run_id, {})
    load = f"load average {(run.get('load_start') or ['?'])[0]} -> {(run.get('load_end') or ['?'])[0]}"
    nice = f", nice {run['nice']}" if run.get("nice") else ""
    return (
        f"{BENCHMARK}, {run_id[:10] or 'undated'}: {describe_machine(document.get('machine', {}))}; "
        f"batch {figures.get('batch')} at {_size(figures.get('input_size', ()))}, {figures.get('precision')} "
        f"{figures.get('memory_format')}, median of {figures.get('rounds')} rounds ({load}{nice})"
    )


def throughput_facts(
    name: str, input_size: Any, document: dict[str, Any], where: str = THROUGHPUT_FILE
) -> dict[str, Any]:
    """A model's card fields from the throughput file: its figures and where they come from.

    Args:
        name: Registered model name.
        input_size: The card's default ``(channels, height, width)``; figures measured at
            another size are not this card's.
        document: The package's throughput file (`load_throughput`).
        where: The file, as the reason for a missing figure names it.

    Returns:
        ``train_img_s`` and ``infer_img_s`` (images per second, or ``None``) and
        ``throughput_source`` (`describe_setup`, naming the model measured when it is a
        twin's; or why there are no figures, beginning with `NOT_MEASURED`).
    """
    architectures: dict[str, dict[str, Any]] = document.get("architectures", {})
    found = [arch for arch, figures in architectures.items() if name in figures.get("models", ())]
    if not found:
        return {
            "train_img_s": None,
            "infer_img_s": None,
            "throughput_source": f"{NOT_MEASURED}: {where} has no figures for it; {BENCHMARK} measures it",
        }
    arch = found[0]
    figures = architectures[arch]
    if tuple(figures.get("input_size", ())) != tuple(input_size):
        return {
            "train_img_s": None,
            "infer_img_s": None,
            "throughput_source": (
                f"{NOT_MEASURED} at its input size {_size(input_size)}: {where} has figures at "
                f"{_size(figures.get('input_size', ()))}; {BENCHMARK} measures it again"
            ),
        }
    source = describe_setup(document, arch)
    if arch != name:
        source += f"; measured on {arch}, the same architecture (weights do not change the speed)"
    return {"train_img_s": figures["train_img_s"], "infer_img_s": figures["infer_img_s"], "throughput_source": source}


def merge_results(
    document: dict[str, Any],
    machine: dict[str, Any],
    run_id: str,
    run: dict[str, Any],
    measured: dict[str, dict[str, Any]],
) -> tuple[dict[str, Any], str]:
    """Merge one run's figures into a throughput file.

    Figures from two machines are never mixed: when the file's machine is another (CPU,
    flags, CPU count, torch version or threads), its figures are dropped. An architecture
    measured again replaces its figures; a run no architecture refers to any more is dropped.

    Args:
        document: The file as it is (`empty_document` for a new one).
        machine: The measuring machine, as the benchmark reads it from ``lscpu`` and torch (CPU,
            bf16/AMX flags, CPUs, torch version and threads); compared with the file's machine.
        run_id: This run's key, its start as an ISO date and time (UTC).
        run: This run's facts (load averages, niceness).
        measured: Figures by architecture, each with its ``models``.

    Returns:
        ``(the new document, a line saying what happened to the old figures)``.
    """
    merged = empty_document()
    old = document.get("architectures", {})
    note = ""
    if old and document.get("machine") != machine:
        note = f"dropped {len(old)} architectures measured on another machine ({describe_machine(document['machine'])})"
        old = {}
    remeasured = {model for figures in measured.values() for model in figures["models"]}
    old = {arch: figures for arch, figures in old.items() if not remeasured & set(figures.get("models", ()))}
    architectures = {**old, **{arch: {**figures, "run": run_id} for arch, figures in measured.items()}}
    used = {figures["run"] for figures in architectures.values()}
    runs = {**document.get("runs", {}), run_id: run}
    note = note or f"kept {len(old)} architectures measured before"
    merged.update(
        machine=machine,
        runs={key: runs[key] for key in sorted(runs) if key in used},
        architectures=dict(sorted(architectures.items())),
    )
    return merged, note
