"""Reach a tracking server before any work starts: a clear error in seconds, not MLflow's minutes of retries."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from experiments.tracking import TrackingError

HEALTH_TIMEOUT_S = 5.0
"""Seconds to wait for the server's ``/health`` answer (``$ZOO_TRACKING_TIMEOUT`` overrides)."""


def check_tracking_server(uri: str, timeout: float | None = None) -> None:
    """Ask an ``http(s)://`` tracking server's ``/health`` endpoint; other stores pass unchecked.

    Args:
        uri: The tracking URI.
        timeout: Seconds to wait for the connection and the answer.

    Raises:
        TrackingError: The server refuses, does not answer in time, or answers with an error.
    """
    if not uri.startswith(("http://", "https://")):
        return
    timeout = float(timeout or os.environ.get("ZOO_TRACKING_TIMEOUT") or HEALTH_TIMEOUT_S)
    url = uri.rstrip("/") + "/health"
    fix = "start it (`zoo ui` or `mlflow server`), or pass another --tracking-uri"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - the scheme is checked above
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:  # refused, unknown host, timed out
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            reason = f"no answer within {timeout:g} s"
        raise TrackingError(f"tracking server {uri} cannot be reached ({reason}); {fix}") from None
    if status != 200:
        raise TrackingError(f"tracking server {uri} answered /health with HTTP {status}; {fix}")
