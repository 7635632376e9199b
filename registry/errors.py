"""Errors that a user can fix: each message names the problem and the fix."""

from __future__ import annotations


class ZooError(Exception):
    """Base class of every error the zoo raises on purpose.

    Its message is one line that names the problem and how to fix it; the `zoo`
    command prints it on stderr without a traceback and exits with code 2.
    """


class UnknownModelError(ZooError, KeyError):
    """A model name that no builder is registered under (a `KeyError`)."""

    def __str__(self) -> str:
        # KeyError would print the message quoted, as a repr.
        return str(self.args[0]) if self.args else ""


class RegistrationError(ZooError, ValueError):
    """A registration that conflicts with another, such as a name taken twice."""


class WeightsError(ZooError, ValueError):
    """Weights that cannot be found, read, trusted or loaded into a model."""


class ModelArgumentError(ZooError, ValueError):
    """A builder argument (such as `num_classes` or `stem`) with a bad value."""
