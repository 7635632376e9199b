"""What ``zoo run`` prints, as a researcher reads it: in a log file, with ``--verbose``, and in a terminal.

The README's command (``zoo run digits``, shortened to two epochs of five images
per class) runs as its own process on a new store, its output going to a file
(a log, CI, a SLURM job) or to a pseudo-terminal: a separate process is the point,
since what the libraries print depends on the process's start and its output.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from procs import ZOO, finish, kill_group

pytestmark = pytest.mark.slow

COMMAND = [*ZOO, "run", "digits", "--limit-per-class", "5", "--epochs", "2"]

CHATTER = (
    "litlogger",
    "LitLogger",
    "lightning.ai",
    "LeafSpec",
    "Warning",
    "INFO",
    "Creating initial",
    "model summary",
    "View run",
    "GPU available",
    "TPU available",
    "Trainer already configured",
    "│",
    "┃",
)  # the last two: a model-summary table
"""What the libraries print unless asked: adverts, deprecations, INFO lines, their tables."""

EPOCH_LINE = re.compile(
    r"^epoch [12]/2  train_loss [\d.]+  train_acc [\d.]+  val_loss [\d.]+  val_acc [\d.]+  "
    r"\([\d.]+ s\)$",
    re.MULTILINE,
)


def environment(tmp_path: Path, zoo_cache_dir: Path) -> dict[str, str]:
    store = tmp_path / "store"
    store.mkdir()
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}", "ZOO_CACHE_DIR": str(zoo_cache_dir)}


def test_in_a_log_file_one_line_per_epoch_and_the_comparison(tmp_path: Path, zoo_cache_dir: Path) -> None:
    code, out = finish(COMMAND, tmp_path / "run.log", cwd=tmp_path, **environment(tmp_path, zoo_cache_dir))
    assert code == 0, out
    assert "\r" not in out  # no progress bar redrawn into the file
    assert not [word for word in CHATTER if word in out], out
    assert len(EPOCH_LINE.findall(out)) == 12, out  # two models x three seeds, two epochs each
    table = out[out.index("test_acc") :]
    assert "resnet_tiny_scratch" in table, out
    assert "plain_tiny_scratch" in table, out
    assert "resnet_tiny_scratch vs plain_tiny_scratch (test_acc): " in out or (
        "plain_tiny_scratch vs resnet_tiny_scratch (test_acc): " in out
    ), out  # it ends with a verdict
    assert len(out.encode()) < 8000, f"{len(out.encode())} bytes:\n{out}"


def test_verbose_brings_the_libraries_lines_back(tmp_path: Path, zoo_cache_dir: Path) -> None:
    code, out = finish(
        [*COMMAND, "--verbose"], tmp_path / "run.log", cwd=tmp_path, **environment(tmp_path, zoo_cache_dir)
    )
    assert code == 0, out
    assert "INFO" in out
    assert "Creating initial" in out
    assert len(EPOCH_LINE.findall(out)) == 12


def test_in_a_terminal_lightnings_progress_bar(tmp_path: Path, zoo_cache_dir: Path) -> None:
    leader, follower = pty.openpty()
    # A terminal's size, as a real one has (a fresh pty is 0x0, and Lightning's bar sizes itself to it).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **environment(tmp_path, zoo_cache_dir)}
    process = subprocess.Popen(
        COMMAND, stdin=follower, stdout=follower, stderr=follower, cwd=tmp_path, env=env, start_new_session=True
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the terminal closed: every process that held it has exited
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        kill_group(process)
        os.close(leader)
    out = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, out
    assert "\r" in out, out
    assert re.search(r"Epoch [01]", out), out  # Lightning's bar, redrawn in place
    assert not EPOCH_LINE.search(out.replace("\r\n", "\n"))  # the epoch lines are for files only
    assert not [word for word in CHATTER if word in out], out
    runs = re.search(r"^run +model ", out, re.MULTILINE)  # the runs' table: no best column, seeds make groups
    assert runs, out
    table = out[runs.start() :]
    assert "plain_tiny_scratch" in table, out
    assert "_tiny_scratch (test_acc): " in table, out  # the verdict line, last
