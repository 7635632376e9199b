"""The one error type for a bad config value, config file or experiment file."""

from __future__ import annotations

from registry.errors import ZooError


class ConfigError(ZooError, ValueError):
    """A config value, config file or experiment file that cannot be used.

    Its message is one line that names the field (or file) and what is allowed.
    """
