"""What a refused command must print: one line on stderr, ``zoo ...: error: ...``, no traceback.

Shared by the tests of bad input (values, bounds, stores, secrets, weights, searches), so that
all of them hold the CLI to the same contract.
"""

from __future__ import annotations

MLFLOW_PROGRESS = "Downloading artifacts"
"""MLflow's download progress bar, which shares stderr with the error (not a line of the zoo's)."""


def one_error_line(err: str, prefix: str = "zoo") -> str:
    """The one error line of a command's stderr, after checking that it is the only line.

    Args:
        err: What the command wrote to stderr.
        prefix: How the line must start: ``zoo`` (any subcommand's ``zoo train: error:``) or
            ``zoo: error: `` where a test holds the top-level form.

    Returns:
        The line.
    """
    lines = [
        line for line in err.strip().splitlines() if line.strip() and not line.lstrip("\r").startswith(MLFLOW_PROGRESS)
    ]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    assert ": error: " in lines[0], err
    assert "Traceback" not in err, err
    return lines[0]
