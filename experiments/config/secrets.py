"""Credentials never leave the process: passwords in URIs and texts masked before they are written or shown.

A store or study storage URI may carry a password (``postgresql://zoo:SECRET@db/mlflow``,
``http://user:SECRET@host:5000``). The zoo uses the URI as given to connect, and
masks it (``postgresql://zoo:***@db/mlflow``) everywhere it writes or prints one:
a run's ``config.yaml``, checkpoints' hyper-parameters, failure tags and tracebacks,
printed lines and error messages. Passwords handed over the standard way, through
the environment (``PGPASSWORD``, ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``),
are masked too wherever their value shows up in such a text.

This sits in the bottom layer so that every layer above (tracking, training,
sweeps, the commands) masks the same way.
"""

from __future__ import annotations

import os
import re
from typing import Any, overload

MASK = "***"
"""What a password is replaced with."""

SECRET_ENV = ("PGPASSWORD", "MYSQL_PWD", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
"""Variables whose values are secrets (or hold one), masked wherever their value appears in a text."""

MIN_SECRET_CHARS = 4
"""Shorter values of `SECRET_ENV` are not masked by value (they would mask ordinary words)."""

# scheme://user:password@ ; the password runs to the last "@" before the host (a raw "@" in it stays masked).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:]*):(?P<password>[^\s/]*)@")
# ?password=... and the like in a query string (libpq, SQLAlchemy and PyMySQL accept them)
_QUERY_SECRET = re.compile(r"(?i)(?P<key>[?&;](?:password|passwd|pwd|token|access_token|sslpassword)=)[^&\s#;]*")


def mask_text(text: str) -> str:
    """A text with the password of every URI in it, and every secret from the environment, masked.

    Args:
        text: Any text: a URI, an error message, a traceback, a YAML document.

    Returns:
        The text, ``scheme://user:***@host...`` for each URI that had a password.
    """
    masked = mask_text_uris(text)
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= MIN_SECRET_CHARS:
            masked = masked.replace(value, MASK)
    return masked


def mask_text_uris(text: str) -> str:
    """The URI-shaped part of `mask_text` only (no values from the environment).

    Args:
        text: Any text.

    Returns:
        The text with passwords in URIs masked.
    """
    masked = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", masked)


@overload
def mask_uri(uri: str) -> str: ...
@overload
def mask_uri(uri: None) -> None: ...
def mask_uri(uri: str | None) -> str | None:
    """A URI fit to write down or show: its password masked.

    Args:
        uri: A store or storage URI, or ``None``.

    Returns:
        ``postgresql://zoo:***@db/mlflow`` for ``postgresql://zoo:SECRET@db/mlflow``;
        a URI without a password, or ``None``, as it was.
    """
    return None if uri is None else mask_text(uri)


def mask_values(values: dict[str, Any]) -> dict[str, Any]:
    """A mapping with every text value (nested mappings and lists included) masked.

    Args:
        values: Such as ``ExperimentConfig.to_dict()``.

    Returns:
        A new mapping; the texts go through `mask_text`.
    """
    return {key: _mask_any(value) for key, value in values.items()}


def _mask_any(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return mask_values(value)
    if isinstance(value, list | tuple):
        return type(value)(_mask_any(v) for v in value)
    return value


def has_password(uri: str | None) -> bool:
    """Whether a URI carries a password (in its user part or its query).

    Args:
        uri: A URI, or ``None``.

    Returns:
        True when `mask_text_uris` would change it.
    """
    return uri is not None and mask_text_uris(uri) != uri
