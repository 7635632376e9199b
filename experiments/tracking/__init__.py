"""MLflow tracking: the store, the run objects and their lifecycle, every MLflow name, reading a run back.

- `names`: every tag, artifact path and role the zoo writes, spelled once.
- `store`: which store, its health check, a new SQLite store created once.
- `runs`: `Run`, `TrackedRun` and `NullRun`; the lifecycle that sets a run's status.
- `heartbeat`: a live run's heartbeat; stale runs found and marked KILLED.
- `readback`: a run's config, best weights and last state, read back from the store.
- `checkpoints`: training states read with ``weights_only=True``.
- `source`: the git commit and library versions of the code that ran.

The sub-modules are loaded on first use, so that `experiments.tracking.names`
can be read without importing MLflow (the ``zoo`` command's parser needs the
names, not MLflow).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrackingError": "errors",
    "Run": "runs",
    "TrackedRun": "runs",
    "NullRun": "runs",
    "Interrupted": "runs",
    "resolve_tracking_uri": "store",
    "get_client": "store",
    "check_tracking_server": "store",
    "get_run": "readback",
    "run_config": "readback",
    "best_weights": "readback",
    "last_state": "readback",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: `experiments.tracking.names` must not pull MLflow in through this package.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"experiments.tracking.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
