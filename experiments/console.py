"""What the ``zoo`` command prints: its own lines, not the libraries' chatter (``--verbose`` brings it back).

Lightning, MLflow and Optuna each log at INFO on every run (the accelerators found,
"Creating initial database tables", a logger advert, the restored checkpoint,
"View run at"), and a few of their own modules warn about deprecations inside
themselves. In a log file, a CI job or a SLURM job all of that, and a progress bar
redrawn hundreds of times, buries the figures. `configure` keeps the libraries to
warnings and errors; the training prints one line per epoch when its output is
not a terminal (`experiments.training.callbacks.EpochLines`); warnings of the zoo's
own are one line each, like its errors.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import TextIO

VERBOSE_ENV = "ZOO_VERBOSE"
"""``1`` while the zoo runs verbosely (the processes it starts, DDP ranks and sweep workers, inherit it)."""

QUIET_ENV = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # "View run ... at: http://..." after every run
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # a bar per downloaded file
}

LIBRARY_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
"""Warnings a library raises about its own internals: nothing a user of the zoo can act on."""


def is_verbose() -> bool:
    """Whether the zoo runs verbosely (``--verbose``, or ``$ZOO_VERBOSE=1``).

    Returns:
        True when the libraries' own output is wanted.
    """
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false")


def configure(verbose: bool = False) -> None:
    """Set what the libraries may print for this process and the processes it starts.

    Args:
        verbose: Let Lightning, MLflow and Optuna print as they like (INFO lines, their
            model summary, deprecation warnings).
    """
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        return
    os.environ.pop(VERBOSE_ENV, None)
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # Lightning and MLflow set their loggers to INFO when they are imported, which is after this
    # (the CLI starts without them): a level set here would not hold. The zoo prints its own lines.
    logging.disable(logging.INFO)
    for category in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")  # in-memory batches need none
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")  # a resume
    warnings.showwarning = one_line_warning


def printable(text: str) -> str:
    r"""A text fit for a terminal line: every unprintable character (``\n``, ``\x1b``, ...) written as an escape.

    A run's class names, tags and a user's values come from files and stores that
    others may write: a raw escape sequence in them could rewrite what a terminal shows.

    Args:
        text: Any text.

    Returns:
        The text with each unprintable character as its Python escape (``\x1b``, ``\n``).
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Print a warning as one line, ``zoo: warning: ...``, as the zoo prints its errors.

    Args:
        message: The warning.
        category: Its class.
        filename: Where it was raised.
        lineno: The line there.
        file: Where to print; stderr by default.
        line: The source line (not shown).
    """
    text = " ".join(str(message).split())
    print(f"zoo: warning: {text}", file=file or sys.stderr)
