"""Stop signals: one the zoo was started with ignored stays ignored; a stop names the runs it killed."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from experiments.cli import interrupted_line
from experiments.signals import handle_unless_ignored, killed, restore
from experiments.tracking.runs import NullRun
from experiments.training.interrupts import StopSignals


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored, as a script's shell leaves it for ``zoo train ... &``; put back afterwards."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_ignored_signal_is_left_ignored_and_the_others_are_handled(sigint_ignored: None) -> None:
    def handler(signum, frame):
        return None

    before = signal.getsignal(signal.SIGTERM)
    previous = handle_unless_ignored((signal.SIGINT, signal.SIGTERM), handler)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is handler
    assert set(previous) == {signal.SIGTERM}
    restore(previous)
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_graceful_stop_of_training_keeps_an_ignored_sigint(sigint_ignored: None, tmp_path: Path) -> None:
    stop = StopSignals(NullRun(), tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    with stop.handling():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == stop.on_signal
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_stop_gathers_the_runs_it_killed_and_the_command_names_them_in_one_line() -> None:
    stop = killed(KeyboardInterrupt(), "run s0 (46b49a5e)")
    assert killed(stop, "sweep digits (82704d0d)") is stop  # the same stop on its way up
    assert interrupted_line(stop) == "zoo: interrupted; marked KILLED: run s0 (46b49a5e), sweep digits (82704d0d)"
    assert interrupted_line(KeyboardInterrupt()) == "zoo: interrupted"  # stopped before any run: nothing to name
