"""The one error type for bad data input."""

from __future__ import annotations

from registry.errors import ZooError


class UnreadableImage(Exception):
    """Bytes that no decoder can (or may) turn into an image.

    Corrupt, truncated, not an image, or larger than the bounds of `experiments.data.decode`
    and `experiments.data.sources`.
    """


class DataError(ZooError, ValueError):
    """A data source that cannot be found, read or used.

    A missing path, an unknown layout, empty class folders, train and test with different classes,
    a bad split option. Its message is one line naming the problem and the fix.
    """
