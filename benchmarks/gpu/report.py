"""The results of a call: ``results.json`` and ``results.md``, rewritten after every change that matters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from experiments.analysis.tables import format_table  # plain Python: the report needs no torch

from gpu.budget import Clock
from gpu.settings import STAGES


class Report:
    """The results, written as JSON and Markdown after every change that matters.

    Args:
        out: Output folder.
        meta: Facts about this invocation.
    """

    def __init__(self, out: Path, meta: dict[str, Any]) -> None:
        self.out = out
        self.data: dict[str, Any] = {**meta, "updates": [], "stages": {s: {"status": "pending"} for s in STAGES}}

    def stage(self, name: str) -> dict[str, Any]:
        """The mutable result dict of a stage."""
        result: dict[str, Any] = self.data["stages"][name]
        return result

    def save(self, note: str, clock: Clock) -> None:
        """Write ``results.json`` and ``results.md`` (atomically: a kill mid-write leaves the last copy).

        Args:
            note: What just finished (kept in ``updates``).
            clock: For the elapsed time.
        """
        self.data["updates"].append(note)
        self.data["elapsed_s"] = round(clock.elapsed(), 1)
        self.out.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("results.json", json.dumps(self.data, indent=2, default=str)),
            ("results.md", render_markdown(self.data)),
        ):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text + "\n", encoding="utf-8")
            tmp.replace(self.out / name)


NOTEBOOK_COLUMNS = [
    "notebook_row",
    "model",
    "epochs",
    "test_acc",
    "notebook_acc",
    "test_loss",
    "notebook_loss",
    "wall_s",
    "estimate_s",
    "reproduced",
    "tracking",
]
PRECISION_COLUMNS = ["size", "batch", "config", "precision", "channels_last", "images_per_s", "speedup_over_fp32_nchw"]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    return format_table(rows, columns, "markdown")


def _environment(r: dict[str, Any]) -> list[str]:
    return [
        f"GPU {r.get('gpu', 'none')}, driver {r.get('driver')}, CUDA {r.get('torch_cuda')}, "
        f"Python {r.get('python')}; " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()),
        "",
        f"MLflow store: {r['tracking']['backend']} ({r['tracking']['note']})",
        "",
    ]


def _notebook_table(r: dict[str, Any]) -> list[str]:
    lines = [_table(r["rows"], NOTEBOOK_COLUMNS), ""]
    lines += [f"skipped: {x['model']}: {x['reason']}" for x in r.get("skipped_runs", [])]
    return [
        *lines,
        f"reproduced: {r.get('reproduced')} ({r.get('rule')}); data prepared in {r.get('data_prepare_s')} s",
        "",
    ]


def _throughput(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['size']}x{r['size']}, batch {r['batch']}, {r['precision']}, {r['memory_format']}, eager, "
        f"{r['rounds']} interleaved rounds",
        "",
        _table(r["rows"], ["model", "ms_per_step", "images_per_s", "ratio_ref_over_zoo"]),
        "",
        f"zoo at least as fast: {r['zoo_at_least_as_fast']} ({r['rule']})",
        "",
    ]


def _figures(r: dict[str, Any]) -> list[str]:
    keys = [k for k in r if k not in ("status", "seconds", "sizes")]
    return [_table([{"figure": k, "value": r[k]} for k in keys], ["figure", "value"]), ""]


def _stage_markdown(name: str, r: dict[str, Any]) -> list[str]:
    """The Markdown of one stage: its status line, then its table where it has one."""
    head = f"## {name}: {r.get('status')}" + (f" ({r['seconds']} s)" if "seconds" in r else "")
    lines = [head, ""]
    for key in ("reason", "error"):
        if r.get(key):
            lines += [f"{key}: {r[key]}", ""]
    if name == "environment" and "versions" in r:
        lines += _environment(r)
    elif name == "notebook_table" and r.get("rows") is not None:
        lines += _notebook_table(r)
    elif name == "throughput" and "rows" in r:
        lines += _throughput(r)
    elif name == "precision" and r.get("rows"):
        lines += [_table(r["rows"], PRECISION_COLUMNS), ""]
    elif name in ("data_pipeline", "compile", "recipe") and r.get("status") == "done":
        lines += _figures(r)
    return lines


def render_markdown(data: dict[str, Any]) -> str:
    """The whole report as Markdown.

    Args:
        data: The JSON results.

    Returns:
        The text.
    """
    lines = [
        f"# GPU benchmark{' (tiny, CPU)' if data.get('tiny') else ''}",
        "",
        f"Started {data.get('started_utc')}, deadline {data.get('deadline_s')} s, "
        f"elapsed {data.get('elapsed_s')} s, data `{data.get('data')}`.",
        "",
    ]
    for name, result in data["stages"].items():
        lines += _stage_markdown(name, result)
    return "\n".join(lines).rstrip()
