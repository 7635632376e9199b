"""The one error type for bad data input."""

from __future__ import annotations

from registry.errors import ZooError


class DataError(ZooError, ValueError):
    """A data source that cannot be found, read or used: a missing path, an
    unknown layout, empty class folders, train and test with different classes,
    a bad split option. Its message is one line naming the problem and the fix.
    """
