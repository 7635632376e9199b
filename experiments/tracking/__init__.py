"""MLflow tracking: the store, the run objects and their lifecycle, every MLflow name, reading a run back.

- `names`: every tag, artifact path and role the zoo writes, spelled once.
- `store`: which store, its health check, a new SQLite store created once.
- `runs`: `Run` (also the trainer's Lightning logger), `TrackedRun` and `NullRun`; the lifecycle that
  sets a run's status.
- `heartbeat`: a live run's heartbeat; stale runs found and marked KILLED.
- `readback`: the reader: runs found, their curves, config, best weights and last state.
- `checkpoints`: training states read with ``weights_only=True``.
- `source`: the git commit and library versions of the code that ran.

This package re-exports nothing, so that `experiments.tracking.names` can be read
without importing MLflow (the ``zoo`` command's parser needs the names, not MLflow).
"""
