"""The `zoo` command: a thin layer that parses arguments and calls the library.

Each subcommand lives in `experiments.commands.<name>` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``. An error the user can fix
(a `registry.ZooError`) is printed as one line on stderr, without a
traceback, and the command exits with code 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback
from collections.abc import Collection, Sequence
from types import TracebackType
from typing import NoReturn

from experiments import console
from experiments.commands import SUMMARIES
from experiments.config.secrets import mask_text
from experiments.signals import Stopped
from registry.errors import ZooError

USAGE_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print the error in one line and exit with code 2.

        Args:
            message: argparse's description of the problem.
        """
        self.exit(USAGE_ERROR, f"{self.prog}: error: {console.printable(message)} (see {self.prog} --help)\n")


def masked_excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """Print an unexpected error's traceback as Python does, with every password in it masked.

    A bug's traceback may quote a store's URI; it goes to a terminal, and often to a log that
    others read (a CI job, a SLURM job's output file).

    Args:
        kind: The exception's class.
        value: The exception.
        tb: Its traceback.
    """
    sys.stderr.write(mask_text("".join(traceback.format_exception(kind, value, tb))))


def interrupted_line(exc: KeyboardInterrupt) -> str:
    """The one line a stopped command prints: ``zoo: interrupted``, and the runs it marked KILLED.

    Args:
        exc: The stop; a `Stopped` names the runs that ended KILLED on its way up.

    Returns:
        The line, without a traceback (``--verbose`` prints that before it).
    """
    runs = exc.killed if isinstance(exc, Stopped) else []
    if not runs:
        return "zoo: interrupted"
    return f"zoo: interrupted; marked KILLED: {console.printable(', '.join(runs))}"


def build_parser(full: Collection[str] = SUMMARIES) -> argparse.ArgumentParser:
    """Build the `zoo` argument parser.

    Args:
        full: The subcommands built with their own flags (their modules imported); the others
            get only their name and summary line, enough for ``zoo --help`` and for argparse to
            tell a known command from a typo. `main` builds just the one it runs, so that
            ``zoo --help`` and ``zoo models`` load neither the config schema nor the sweeps.

    Returns:
        The parser.
    """
    parser = OneLineParser(prog="zoo", description="A pluggable model zoo: models, training, tracking.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="also print the libraries' own output (Lightning, MLflow, Optuna: INFO lines, deprecation warnings, "
        "the model summary)",
    )  # fmt: skip
    for name, summary in SUMMARIES.items():
        if name not in full:
            subparsers.add_parser(name, help=summary)
            continue
        importlib.import_module(f"experiments.commands.{name}").add_parser(subparsers)
        subparsers.choices[name].add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="also print the libraries' own output",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `zoo` command.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit code: 0 on success, 2 for bad input, 1 for a full disk, 130 on Ctrl-C.
    """
    sys.excepthook = masked_excepthook  # what escapes main (a bug) is printed with passwords masked
    arguments = list(argv) if argv is not None else sys.argv[1:]
    # The command is the first word that names one: the only option before it (-v) takes no value.
    command = next((word for word in arguments if word in SUMMARIES), None)
    parser = build_parser([command] if command else [])
    args = parser.parse_args(arguments)
    args.argv = arguments  # a sweep's worker processes repeat it
    console.configure(verbose=args.verbose or console.is_verbose())
    try:
        return int(args.run(args) or 0)
    except ZooError as exc:
        print(f"zoo: error: {console.printable(mask_text(str(exc)))}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt as exc:
        if console.is_verbose():  # the libraries' and the zoo's own stack, as --verbose promises
            masked_excepthook(type(exc), exc, exc.__traceback__)
        print(interrupted_line(exc), file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(
            f"zoo: error: {console.printable(mask_text(str(exc)))}; free some space, then continue a run with "
            f"`zoo train --resume RUN_ID` (its last whole state is kept)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
