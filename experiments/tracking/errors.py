"""The one error type for a tracking store or run that cannot be reached or used."""

from __future__ import annotations

from registry.errors import ZooError


class TrackingError(ZooError, RuntimeError):
    """A tracking store or run that cannot be reached or used; its message names the fix."""
