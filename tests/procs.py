"""Subprocesses for the tests: each in its own process group, its output in a file, the group killed at the end.

A `zoo` process may fork (DDP ranks, data-loader workers, servers): killing only
the leader would leave its children running, so every helper here works on the
whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
ZOO = [sys.executable, "-m", "experiments.cli"]
FAULTS = [sys.executable, str(ROOT / "tests" / "zoo_faults.py")]

T = TypeVar("T")


def spawn(argv: list[str], log: Path, cwd: Path | None = None, **env: str) -> subprocess.Popen:
    """Start a process in a new process group, stdout and stderr into ``log``."""
    return subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=cwd or os.getcwd(),
    )


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send a signal to a process's whole group and wait for the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


@contextlib.contextmanager
def running(argv: list[str], log: Path, cwd: Path | None = None, **env: str) -> Iterator[subprocess.Popen]:
    """A process group that is killed when the body ends, however it ends."""
    process = spawn(argv, log, cwd, **env)
    try:
        yield process
    finally:
        if process.poll() is None:
            kill_group(process)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # children that outlived their leader


def finish(argv: list[str], log: Path, timeout: float = 300, cwd: Path | None = None, **env: str) -> tuple[int, str]:
    """Run a process group to its end (killed after ``timeout``); its exit code and output."""
    with running(argv, log, cwd, **env) as process:
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = -9
    return code, log.read_text()


def wait_for(condition: Callable[[], T | None], process: subprocess.Popen, log: Path, timeout: float = 240) -> T:
    """Poll ``condition`` until it holds; fail with the log's tail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode} too early:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting:\n{log.read_text()[-3000:]}")
