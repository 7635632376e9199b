"""Stop signals that the zoo handles itself, except those its starter chose to ignore.

A process started by ``nohup`` has SIGHUP ignored, and one started in the
background by a script (``zoo ui &``) has SIGINT ignored: the shell does that so
that closing the terminal, or a Ctrl-C meant for the script, leaves it running.
Python keeps an ignored SIGINT ignored; the zoo's own handlers (a graceful stop at
a batch end, the UI stopping its server) keep to the same rule.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from typing import Any

Handler = Callable[[int, Any], Any]
"""A signal handler, as `signal.signal` takes it."""


def handle_unless_ignored(signums: Iterable[int], handler: Handler) -> dict[int, Any]:
    """Install ``handler`` for each of ``signums`` that this process does not ignore.

    Args:
        signums: The signals to handle.
        handler: ``handler(signum, frame)``.

    Returns:
        The previous handler of each signal that got ``handler`` (give it to `restore`);
        the ignored ones are left as they are and are not in it.
    """
    return {
        signum: signal.signal(signum, handler) for signum in signums if signal.getsignal(signum) is not signal.SIG_IGN
    }


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers that `handle_unless_ignored` replaced.

    Args:
        previous: What it returned.
    """
    for signum, handler in previous.items():
        signal.signal(signum, handler)


class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM on its way up to the `zoo` command, with the runs it left KILLED.

    Each run that ends KILLED on the way adds itself (`killed`), so that the command's one
    line, ``zoo: interrupted; marked KILLED: ...``, names them without reading the store again.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.killed: list[str] = []


def killed(exc: BaseException, run: str) -> Stopped:
    """The stop ``exc`` as a `Stopped` that names ``run`` among those it left KILLED.

    Args:
        exc: The stop as it arrived (a `KeyboardInterrupt`, Lightning's SIGTERM exit, or a `Stopped`).
        run: How the command's line names the run (``s0-resnet_tiny_scratch (46b49a5e)``).

    Returns:
        ``exc`` itself if it is a `Stopped` already, else a new one; either way with ``run`` added.
    """
    stopped = exc if isinstance(exc, Stopped) else Stopped(*exc.args)
    stopped.killed.append(run)
    return stopped
