"""MLflow tracking: the store, and the life of one run from creation to its final status.

The run is created here, not by Lightning; its id is handed to Lightning's
`MLFlowLogger` (which then only writes per-step metrics). Everything else a
run records goes through `TrackedRun`, and its status is set in one place,
`TrackedRun.lifecycle`: FINISHED on success, FAILED (with the traceback as an
artifact) on an exception, KILLED on Ctrl-C or SIGTERM. With tracking off, a
`NullRun` takes its place and records nothing.

Artifact layout of a run (stable paths, one copy each, overwritten in place):

- ``config.yaml``: the full config, readable by ``zoo train --config``
- ``checkpoints/last.ckpt``: the last full training state (for ``--resume``)
- ``weights/best.safetensors`` and ``weights/model.json``: best weights and what they fit
- ``test/confusion_matrix.png``, ``test/per_class_accuracy.csv``
- ``error/traceback.txt`` on failure
- the logged model (``mlflow.pytorch``; an MLflow LoggedModel linked to the run,
  its URI in the tag ``zoo.logged_model_uri``)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Iterator, Mapping

from registry.errors import ZooError

PARAM_VALUE_LIMIT = 6000
"""MLflow's maximum length of a param value (Lightning truncates to 250; we do not)."""

LAST_STATE_ARTIFACT = "checkpoints/last.ckpt"
BEST_WEIGHTS_ARTIFACT = "weights/best.safetensors"
WEIGHTS_INFO_ARTIFACT = "weights/model.json"
CONFIG_ARTIFACT = "config.yaml"
TRACEBACK_ARTIFACT = "error/traceback.txt"
LOGGED_MODEL_TAG = "zoo.logged_model_uri"


class TrackingError(ZooError, RuntimeError):
    """A tracking store or run that cannot be reached or used."""


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking store to use: the argument, ``$MLFLOW_TRACKING_URI``, or ``mlflow.db`` here.

    The default is MLflow's own (a SQLite file in the working directory), given as
    an explicit absolute URI: Lightning's logger would otherwise fall back to a
    file store, which current MLflow refuses.

    Args:
        uri: An explicit URI, or ``None``.

    Returns:
        The URI.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return "sqlite:///" + str(Path.cwd() / "mlflow.db")


def get_client(uri: str | None = None) -> Any:
    """An `MlflowClient` for the store.

    Args:
        uri: Tracking URI, resolved with `resolve_tracking_uri`.

    Returns:
        The client.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from experiments.sqlite_store import ensure_store

    resolved = resolve_tracking_uri(uri)
    ensure_store(resolved)  # a new SQLite store is created by one process at a time
    mlflow.set_tracking_uri(resolved)
    return MlflowClient(tracking_uri=resolved)


def get_run(run_id: str, uri: str | None = None) -> Any:
    """Fetch a run, as a one-line error when it does not exist.

    Args:
        run_id: The run id.
        uri: Tracking URI.

    Returns:
        The `mlflow.entities.Run`.

    Raises:
        TrackingError: If the store has no such run.
    """
    from mlflow.exceptions import MlflowException

    client = get_client(uri)
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise TrackingError(
            f"no run '{run_id}' in the tracking store {resolve_tracking_uri(uri)}; "
            f"list runs with `zoo compare` or pass --tracking-uri"
        ) from None


def config_params(config: Mapping[str, Any]) -> dict[str, str]:
    """Every config field as an MLflow param value, full length.

    Args:
        config: ``ExperimentConfig.to_dict()``.

    Returns:
        ``{field: text}``; ``None`` becomes ``"None"``, mappings are JSON.
    """
    params = {}
    for key, value in config.items():
        text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
        if len(text) > PARAM_VALUE_LIMIT:
            raise TrackingError(f"{key}: value is {len(text)} characters; MLflow keeps at most {PARAM_VALUE_LIMIT}")
        params[key] = text
    return params


def source_facts() -> dict[str, str]:
    """Git commit and dirty flag of the code that runs, and library versions.

    Returns:
        Tags: ``mlflow.source.git.commit``, ``zoo.git_dirty``, ``zoo.version.<lib>``.
    """
    import importlib.metadata as md

    facts: dict[str, str] = {}
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            facts["mlflow.source.git.commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "status", "--porcelain"], cwd=root,
                                    capture_output=True, text=True, timeout=5)
            facts["zoo.git_dirty"] = str(bool(status.stdout.strip())).lower()
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed wheel): nothing to record
    for lib in ("torch", "lightning", "timm", "mlflow", "torchvision", "bottleneck-zoo"):
        with contextlib.suppress(md.PackageNotFoundError):
            facts[f"zoo.version.{lib}"] = md.version(lib)
    facts["zoo.version.python"] = sys.version.split()[0]
    return facts


class NullRun:
    """Stands in for `TrackedRun` when tracking is off: records nothing."""

    run_id: str | None = None
    uri: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Do nothing.

        Args:
            params: Ignored.
        """

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Do nothing.

        Args:
            tags: Ignored.
        """

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Do nothing.

        Args:
            metrics: Ignored.
            step: Ignored.
        """

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Do nothing.

        Args:
            path: Ignored.
            artifact_path: Ignored.
        """

    def log_text(self, text: str, artifact_file: str) -> None:
        """Do nothing.

        Args:
            text: Ignored.
            artifact_file: Ignored.
        """

    def logger(self) -> Any:
        """No Lightning logger.

        Returns:
            ``False`` (Lightning's value for "no logger").
        """
        return False

    @contextlib.contextmanager
    def lifecycle(self) -> Iterator[None]:
        """Run the body; nothing to record.

        Yields:
            Nothing.
        """
        with _signals_as_interrupts():
            yield


class TrackedRun:
    """One MLflow run, created (or reopened, for resume) and finished by us.

    Args:
        run_id: The run's id.
        uri: The tracking URI.
    """

    def __init__(self, run_id: str, uri: str) -> None:
        self.run_id = run_id
        self.uri = uri
        self.client = get_client(uri)

    @classmethod
    def create(cls, experiment: str, run_name: str, tags: Mapping[str, Any], uri: str | None = None) -> "TrackedRun":
        """Create a run in an experiment (created if missing).

        Args:
            experiment: Experiment name.
            run_name: Run name.
            tags: Initial tags.
            uri: Tracking URI.

        Returns:
            The run, RUNNING.
        """
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

        resolved = resolve_tracking_uri(uri)
        client = get_client(resolved)
        found = client.get_experiment_by_name(experiment)
        if found is not None and found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        experiment_id = found.experiment_id if found is not None else _create_experiment(client, experiment)
        all_tags = {**{k: str(v) for k, v in tags.items()}, MLFLOW_RUN_NAME: run_name}
        run = client.create_run(experiment_id, tags=all_tags, run_name=run_name)
        return cls(run.info.run_id, resolved)

    @classmethod
    def reopen(cls, run_id: str, uri: str | None = None) -> "TrackedRun":
        """Reopen an existing run to continue it (resume): status back to RUNNING.

        Args:
            run_id: The run's id.
            uri: Tracking URI.

        Returns:
            The run.
        """
        resolved = resolve_tracking_uri(uri)
        get_run(run_id, resolved)
        tracked = cls(run_id, resolved)
        tracked.client.update_run(run_id, status="RUNNING")
        return tracked

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params in batches (MLflow takes at most 100 per call).

        Args:
            params: ``{key: value}``; values up to `PARAM_VALUE_LIMIT` characters.
        """
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (mutable, unlike params).

        Args:
            tags: ``{key: value}``.
        """
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metrics in one call.

        Args:
            metrics: ``{key: value}``.
            step: The step (the epoch, for epoch curves); 0 when ``None``.
        """
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file under a folder of the run's artifacts (replacing one of the same name).

        Args:
            path: Local file.
            artifact_path: Folder inside the run's artifacts.
        """
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Write text as an artifact file.

        Args:
            text: The content.
            artifact_file: Path inside the run's artifacts.
        """
        self.client.log_text(self.run_id, text, artifact_file)

    def logger(self) -> Any:
        """Lightning's MLflow logger writing into this run.

        Returns:
            A `RunLogger`.
        """
        return RunLogger(self.run_id, self.uri)

    @contextlib.contextmanager
    def lifecycle(self) -> Iterator[None]:
        """Run the body and set the run's final status from how it ended.

        FINISHED when the body returns; KILLED on Ctrl-C or SIGTERM (re-raised as
        `KeyboardInterrupt`); FAILED on any other exception, with the traceback
        uploaded as ``error/traceback.txt`` (re-raised).

        Yields:
            Nothing.
        """
        from experiments.heartbeat import beating

        try:
            with _signals_as_interrupts(), beating(self):  # the heartbeat tells a live run from a dead one
                yield
        except (KeyboardInterrupt, SystemExit) as exc:
            # Lightning turns Ctrl-C into sys.exit(1) and SIGTERM into SIGTERMException (a SystemExit).
            if isinstance(exc, SystemExit) and exc.code in (0, None):
                self.end("FINISHED")
                raise
            self.end("KILLED")
            raise KeyboardInterrupt from exc
        except BaseException:
            with contextlib.suppress(Exception):
                self.log_text(traceback.format_exc(), TRACEBACK_ARTIFACT)
            self.end("FAILED")
            raise
        else:
            self.end("FINISHED")

    def end(self, status: str) -> None:
        """Set the run's final status.

        Args:
            status: ``FINISHED``, ``FAILED`` or ``KILLED``.
        """
        with contextlib.suppress(Exception):
            self.client.set_terminated(self.run_id, status)


def _create_experiment(client: Any, name: str) -> str:
    """Create an experiment; if another process created it first, use theirs."""
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(name)
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class _Interrupted(KeyboardInterrupt):
    """SIGTERM, delivered the way Ctrl-C is."""


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """Turn SIGTERM into `KeyboardInterrupt` while the body runs (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        raise _Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_logger_class() -> type:
    from lightning.pytorch.loggers import MLFlowLogger

    class RunLogger(MLFlowLogger):
        """Lightning's MLflow logger, writing into a run that we own.

        Params are logged by `TrackedRun` in full (Lightning would cut them to
        250 characters) and the run's status is ours to set, so both of
        Lightning's hooks for them do nothing here.
        """

        def __init__(self, run_id: str, uri: str) -> None:
            super().__init__(run_id=run_id, tracking_uri=uri, log_model=False)

        def log_hyperparams(self, params: Any) -> None:  # noqa: D102 - see class docstring
            return None

        def finalize(self, status: str = "success") -> None:  # noqa: D102 - see class docstring
            return None

    return RunLogger


def RunLogger(run_id: str, uri: str) -> Any:  # noqa: N802 - a factory standing in for a class
    """Lightning's `MLFlowLogger` bound to an existing run, leaving params and status to us.

    Args:
        run_id: The run's id.
        uri: Tracking URI.

    Returns:
        The logger.
    """
    return _run_logger_class()(run_id, uri)


def download_artifact(run_id: str, artifact_path: str, uri: str | None = None, dst: str | None = None) -> Path:
    """Download one artifact of a run (works against any tracking server).

    Args:
        run_id: The run's id.
        artifact_path: Path inside the run's artifacts.
        uri: Tracking URI.
        dst: Local folder; a temporary one when ``None``.

    Returns:
        The local path.

    Raises:
        TrackingError: If the run has no such artifact.
    """
    import mlflow

    get_run(run_id, uri)
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path,
                                                    dst_path=dst or tempfile.mkdtemp(prefix="zoo-"),
                                                    tracking_uri=resolve_tracking_uri(uri))
    except Exception as exc:  # MLflow raises several types for a missing file
        raise TrackingError(
            f"run '{run_id}' has no artifact '{artifact_path}' ({type(exc).__name__}); "
            f"was it trained with tracking on, and has it finished an epoch?"
        ) from None
    return Path(local)
