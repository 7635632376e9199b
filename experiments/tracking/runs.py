"""The run objects and their lifecycle: a run is created by the zoo, written through one object, ended once.

The run is created here, not by Lightning. Everything a run records goes through
its `Run` object, which is also the trainer's Lightning logger (Lightning's per-step
figures come through it), and its status is set in one place,
`TrackedRun.lifecycle`: FINISHED on success, FAILED (with the traceback as an
artifact) on an exception, KILLED on Ctrl-C or SIGTERM. With tracking off a
`NullRun` takes its place, and on DDP ranks other than 0 a
`experiments.training.distributed.FollowerRun`; all three are a `Run`.

Artifact layout of a run (stable paths from `experiments.tracking.names`, one
copy each, overwritten in place):

- ``config.yaml``: the full config, readable by ``zoo train --config``
- ``checkpoints/last.ckpt``: the last full training state (for ``--resume``)
- ``weights/best.safetensors`` and ``weights/model.json``: best weights and what they fit
- ``test/confusion_matrix.png``, ``test/per_class_accuracy.csv``
- ``error/traceback.txt`` on failure
- the logged model (``mlflow.pytorch``; an MLflow LoggedModel linked to the run,
  its URI in the tag ``mlflow.zoo.logged_model_uri``)
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.entities import Run as MlflowRun
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

from experiments.config.secrets import mask_text
from experiments.signals import killed
from experiments.tracking.errors import TrackingError
from experiments.tracking.heartbeat import Owner, beating, claim
from experiments.tracking.names import (
    BEST_WEIGHTS_ARTIFACT,
    DATASET_CONTEXT_TAG,
    DIGESTED_ARTIFACTS,
    ENDED_EARLY_TAG,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    FAILURE_TAG,
    LOGGED_MODEL_TAG,
    MODEL_TAG,
    NOTE_TAG,
    OWNER_TAG,
    REGISTERED_METRIC_TAG_PREFIX,
    REGISTERED_RUN_TAG,
    RUN_NAME_TAG,
    TRACEBACK_ARTIFACT,
    digest_tag,
    read_tag,
)
from experiments.tracking.readback import get_run, sha256_of
from experiments.tracking.store import artifact_location, get_client, resolve_tracking_uri

PARAM_VALUE_LIMIT = 6000
"""MLflow's maximum length of a param value (Lightning truncates to 250; the zoo does not)."""

STATUS_WRITE_ATTEMPTS = 4
"""Tries to write a run's final status (a store on a full disk may take a moment to accept it)."""


@dataclass(frozen=True)
class Recorded:
    """What a reopened run's store already holds, so that a resume records each thing once.

    Attributes:
        params: The params logged (MLflow keeps them immutable).
        last_epoch: The last epoch (0-based, as Lightning counts) whose figures the run holds; -1 for none.
        summary: The summary metrics (``test_acc`` and the others, logged in one batch).
        model: The logged model.
    """

    params: frozenset[str] = frozenset()
    last_epoch: int = -1
    summary: bool = False
    model: bool = False


@dataclass(frozen=True)
class DatasetRecord:
    """One data set a run used, as MLflow's UI shows it (the runs table's Dataset column).

    Attributes:
        name: Such as ``CIFAR-10-images-master``.
        digest: Changes when the images, their labels or the split change; the same on any machine.
        source: Where the data came from (a path, ``sklearn:digits``, a URL).
        source_type: ``local``, ``code`` or ``http``.
        context: ``train``, ``validation`` or ``test``.
        profile: What it holds (JSON: images, classes, image size).
    """

    name: str
    digest: str
    source: str
    source_type: str
    context: str
    profile: str


class EndedEarly(Exception):
    """A run stopped on purpose before its end (a sweep's pruner): KILLED with the reason, not FAILED.

    Args:
        reason: One line, kept in the run's ``zoo.ended_early`` tag.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def config_params(config: Mapping[str, Any]) -> dict[str, str]:
    """Config fields as MLflow param values, full length.

    Args:
        config: ``ExperimentConfig.to_dict()``.

    Returns:
        ``{field: text}``; ``None`` becomes ``"None"``, mappings and lists are JSON.

    Raises:
        TrackingError: If a value is longer than MLflow keeps.
    """
    params = {}
    for key, value in config.items():
        text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
        if len(text) > PARAM_VALUE_LIMIT:
            raise TrackingError(f"{key}: value is {len(text)} characters; MLflow keeps at most {PARAM_VALUE_LIMIT}")
        params[key] = text
    return params


class Run(Logger):
    """What a run is written through, by the zoo and by Lightning (it is the trainer's logger).

    This base records nothing: it is the run with tracking off (`NullRun`) and, on DDP
    ranks other than 0, `experiments.training.distributed.FollowerRun`. `TrackedRun`
    writes into MLflow. The runner holds a `Run` and never asks which.

    Attributes:
        run_id: The MLflow run id; ``None`` when nothing is tracked.
        uri: The tracking URI; ``None`` when this process writes nothing.
        recorded: What the store held when the run was reopened (empty for a new run).
    """

    run_id: str | None = None
    uri: str | None = None
    recorded = Recorded()

    @property
    def name(self) -> str:
        """Lightning's logger name (unused: the checkpoint folder is the runner's)."""
        return "zoo"

    @property
    def version(self) -> str:
        """Lightning's logger version: the run id."""
        return self.run_id or ""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Lightning's hyperparameters: not logged; the runner logs the run's params in full (`log_params`)."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params, which MLflow keeps immutable once written.

        Args:
            params: ``{key: value}``; values are written as text.
        """

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Record tags, which may be overwritten later (a heartbeat, the logged model's URI).

        Args:
            tags: ``{key: value}``; values are written as text.
        """

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record metric values at one step (Lightning's per-step figures come here too).

        Args:
            metrics: ``{key: value}``; Lightning's ``epoch`` (an epoch plotted against the step) is left out.
            step: The step of every value (the epoch, for epoch curves); 0 when ``None``.
        """
        self.log_series({step or 0: metrics})

    def log_series(self, series: Mapping[int, Mapping[str, float]]) -> None:
        """Record the values of many steps at once (a buffer of per-step figures).

        Args:
            series: ``{step: {key: value}}``.
        """

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a local file under a folder of the run's artifacts, replacing one of the same name.

        Args:
            path: The local file.
            artifact_path: Folder inside the run's artifacts; ``None`` for the top.
        """

    def log_text(self, text: str, artifact_file: str) -> None:
        """Write text as an artifact file.

        Args:
            text: The file's content.
            artifact_file: Its path inside the run's artifacts, such as ``config.yaml``.
        """

    def log_inputs(self, datasets: Sequence[DatasetRecord]) -> None:
        """Record the data sets the run trained, validated and tested on.

        Args:
            datasets: One record per part.
        """

    def delete_artifacts(self, artifact_path: str) -> None:
        """Remove a file or folder of the run's artifacts (a finished run's training states).

        Args:
            artifact_path: Path inside the run's artifacts, such as ``checkpoints``.
        """

    def system_metrics(self, enabled: bool, resumed: bool = False) -> contextlib.AbstractContextManager[None]:
        """MLflow's own system metrics (CPU, memory, disk, network; GPU with NVML) while the body runs.

        Args:
            enabled: The config's ``system_metrics``.
            resumed: Continue the metrics' steps after those the run already holds.

        Returns:
            The context manager.
        """
        return contextlib.nullcontext()

    def lifecycle(self) -> contextlib.AbstractContextManager[None]:
        """A context for the body of the run; how the body ends sets the run's final status.

        Returns:
            The context manager.
        """
        return contextlib.nullcontext()


class NullRun(Run):
    """A `Run` that records nothing: tracking is off."""


class TrackedRun(Run):
    """One MLflow run, created (or reopened, for resume) and ended by the zoo.

    Args:
        run_id: The run's id.
        uri: The tracking URI.
        recorded: What the store already holds (a reopened run).
    """

    def __init__(self, run_id: str, uri: str, recorded: Recorded = Recorded()) -> None:
        super().__init__()
        self.run_id: str = run_id  # a tracked run always has both (a `Run` in general may not)
        self.uri: str = uri
        self.recorded = recorded
        self.client: MlflowClient = get_client(uri)

    @classmethod
    def create(cls, experiment: str, run_name: str, tags: Mapping[str, Any], uri: str | None = None) -> TrackedRun:
        """Create a run in an experiment (created, or restored from deletion, if need be).

        Args:
            experiment: Experiment name.
            run_name: The name the MLflow UI shows for the run.
            tags: Initial tags.
            uri: Tracking URI.

        Returns:
            The run, RUNNING.
        """
        resolved = resolve_tracking_uri(uri)
        client = get_client(resolved)
        experiment_id = ensure_experiment(client, experiment)
        # MLflow's own context (user, source) first: the run page's "Created by" and "Source" read it.
        all_tags = {
            **resolve_tags({}),
            **{k: str(v) for k, v in tags.items()},
            RUN_NAME_TAG: run_name,
            OWNER_TAG: str(Owner.here()),
        }
        run = client.create_run(experiment_id, tags=all_tags, run_name=run_name)
        return cls(run.info.run_id, resolved)

    @classmethod
    def reopen(cls, run_id: str, uri: str | None = None) -> TrackedRun:
        """Reopen an existing run to continue it (resume): claimed by this process, status back to RUNNING.

        Args:
            run_id: The run's id.
            uri: Tracking URI.

        Returns:
            The run, with what it already holds in `recorded`.

        Raises:
            TrackingError: If another live process writes the run (see `heartbeat.claim`).
        """
        resolved = resolve_tracking_uri(uri)
        client = get_client(resolved)
        record = get_run(run_id, resolved)
        claim(client, record)
        epochs = client.get_metric_history(run_id, "val_acc")  # curves count epochs from 1
        recorded = Recorded(
            frozenset(record.data.params),
            max((m.step for m in epochs), default=0) - 1,
            "test_acc" in record.data.metrics,
            read_tag(record.data.tags, LOGGED_MODEL_TAG) is not None,
        )
        client.update_run(run_id, status="RUNNING")
        return cls(run_id, resolved, recorded)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params in batches of 100, the most MLflow takes per call (values up to `PARAM_VALUE_LIMIT`)."""
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags in one call to the store."""
        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_series(self, series: Mapping[int, Mapping[str, float]]) -> None:
        """Log metrics in batches of 1,000 (the most MLflow takes per call), all with the same timestamp."""
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for step, values in series.items() for k, v in values.items()]
        items = [m for m in items if m.key != "epoch"]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file through the store's artifact repository (local folder or server).

        The weights and ``model.json`` get their SHA-256 recorded in a tag once uploaded
        (``mlflow.zoo.sha256.<path>``): every reader checks the file against it.
        """
        target = "/".join(filter(None, [artifact_path, Path(path).name]))
        digest = sha256_of(path) if target in DIGESTED_ARTIFACTS else None
        self.client.log_artifact(self.run_id, str(path), artifact_path)
        if digest is not None:  # after the upload: a kill in between leaves the old file with its own digest
            self.set_tags({digest_tag(target): digest})

    def log_text(self, text: str, artifact_file: str) -> None:
        """Write text as an artifact file through MLflow's client (with its digest, as `log_artifact`)."""
        if artifact_file not in DIGESTED_ARTIFACTS:
            self.client.log_text(self.run_id, text, artifact_file)
            return
        with tempfile.TemporaryDirectory(prefix="zoo-") as folder:  # the exact bytes that are digested
            local = Path(folder) / Path(artifact_file).name
            local.write_bytes(text.encode("utf-8"))
            self.log_artifact(local, str(Path(artifact_file).parent) if "/" in artifact_file else None)

    def log_inputs(self, datasets: Sequence[DatasetRecord]) -> None:
        """Record the data sets as MLflow dataset inputs, each with its context tag."""
        inputs = [
            DatasetInput(
                Dataset(d.name, d.digest, d.source_type, d.source, profile=d.profile),
                tags=[InputTag(DATASET_CONTEXT_TAG, d.context)],
            )
            for d in datasets
        ]
        if inputs:
            self.client.log_inputs(self.run_id, datasets=inputs)

    def delete_artifacts(self, artifact_path: str) -> None:
        """Remove the artifacts through the store's artifact repository."""
        artifact_uri = self.client.get_run(self.run_id).info.artifact_uri
        get_artifact_repository(artifact_uri).delete_artifacts(artifact_path)

    @contextlib.contextmanager
    def system_metrics(self, enabled: bool, resumed: bool = False) -> Iterator[None]:
        """Run MLflow's `SystemMetricsMonitor`."""
        if not enabled:
            yield
            return
        monitor = SystemMetricsMonitor(self.run_id, resume_logging=resumed, tracking_uri=self.uri)
        monitor.start()
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a metric missed is not worth a failed run
                monitor.finish()

    @contextlib.contextmanager
    def lifecycle(self) -> Iterator[None]:
        """Run the body and set the run's final status from how it ended.

        FINISHED when the body returns; KILLED on Ctrl-C or SIGTERM (Lightning's
        `SIGTERMException`, or a `KeyboardInterrupt`: re-raised as a `Stopped` that names it) and when it
        ends early on purpose (`EndedEarly`, with the reason in ``zoo.ended_early``; re-raised);
        FAILED on any other exception, with the reason in the tag ``zoo.failure`` and the
        traceback uploaded as ``error/traceback.txt`` (re-raised). A heartbeat tag is
        refreshed meanwhile, so that a process killed without a word is found.

        Yields:
            Nothing.
        """
        try:
            with beating(self.client, self.run_id):
                yield
        except EndedEarly as exc:
            with contextlib.suppress(Exception):
                self.set_tags({ENDED_EARLY_TAG: exc.reason})
            self.end("KILLED")
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            # Lightning turns Ctrl-C into sys.exit(1) and SIGTERM into SIGTERMException (a SystemExit).
            if isinstance(exc, SystemExit) and not isinstance(exc, SIGTERMException) and exc.code in (0, None):
                self.end("FINISHED")
                raise
            self.end("KILLED")
            stopped = killed(exc, f"run {self.label()}")
            if stopped is exc:
                raise
            raise stopped from exc
        except BaseException as exc:
            # A failure's text may hold a store's URI: written down with its password masked.
            reason = mask_text(f"{type(exc).__name__}: {' '.join(str(exc).split())}")[:500]
            with contextlib.suppress(Exception):  # a full disk may refuse the traceback: the status matters more
                self.set_tags({FAILURE_TAG: reason})
            with contextlib.suppress(Exception):
                self.log_text(mask_text(traceback.format_exc()), TRACEBACK_ARTIFACT)
            self.end("FAILED")
            raise
        else:
            self.end("FINISHED")

    def label(self) -> str:
        """The run as the `zoo` command names it: ``NAME (first 8 of its id)``, or the id alone if the store cannot say.

        Returns:
            The run's name and short id.
        """
        try:
            return f"{self.client.get_run(self.run_id).info.run_name} ({self.run_id[:8]})"
        except Exception:  # a stop must not fail on a name: the id is enough to find the run
            return self.run_id

    def end(self, status: str) -> bool:
        """Set the run's final status, trying again while the store refuses the write.

        If it never takes, the run stays RUNNING with this process named as its
        owner: once the process has ended, ``zoo runs --stale`` (and a resume)
        find it and say that its process is gone.

        Args:
            status: ``FINISHED``, ``FAILED`` or ``KILLED``.

        Returns:
            Whether the status was written.
        """
        for attempt in range(STATUS_WRITE_ATTEMPTS):
            try:
                self.client.set_terminated(self.run_id, status)
                return True
            except Exception as exc:  # MLflow, SQLAlchemy and the OS raise many types for a full disk
                error = exc
                time.sleep(0.5 * 2**attempt)
        print(
            f"zoo: warning: could not record run {self.run_id} as {status} ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:200]}); `zoo runs --stale` lists it once this process has ended",
            file=sys.stderr,
        )
        return False


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """An experiment's id, created (as a model-training one, its artifacts beside a SQLite store) or restored.

    Args:
        client: An `MlflowClient` of the store.
        name: The experiment's name.

    Returns:
        Its id.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(
            name,
            artifact_location=artifact_location(client.tracking_uri, name),  # beside a SQLite store, kept whole
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    except MlflowException:  # another process created it first: use theirs
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def describe_experiment(client: MlflowClient, experiment_id: str, description: str) -> None:
    """Give an experiment a description (its page shows it), unless it has one.

    Args:
        client: An `MlflowClient` of its store.
        experiment_id: The MLflow experiment's id.
        description: One paragraph, such as an experiment file's ``description:``.
    """
    if description and NOTE_TAG not in client.get_experiment(experiment_id).tags:
        client.set_experiment_tag(experiment_id, NOTE_TAG, description)


def register_version(run: MlflowRun, name: str, alias: str | None = None, uri: str | None = None) -> ModelVersion:
    """A new version of a registered model (created if need be) from a run, with an alias if given.

    The version points at the run's logged model when it logged one, else at its
    best weights folder, and carries the run id and its test figures as tags.

    Args:
        run: The run (a FINISHED one).
        name: The registered model's name.
        alias: Moved to the new version.
        uri: Tracking URI (its Model Registry).

    Returns:
        The version.
    """
    client = get_client(uri)
    run_id = run.info.run_id
    logged = read_tag(run.data.tags, LOGGED_MODEL_TAG)
    tags = {MODEL_TAG: run.data.params.get("model", ""), REGISTERED_RUN_TAG: run_id}
    for key in ("test_acc", "best_val_acc"):
        if key in run.data.metrics:
            tags[f"{REGISTERED_METRIC_TAG_PREFIX}{key}"] = f"{run.data.metrics[key]:.4f}"
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Registered with zoo register.")
    model_id = logged.split("/", 1)[1] if logged and logged.startswith("models:/") else None
    source = logged or f"runs:/{run_id}/{Path(BEST_WEIGHTS_ARTIFACT).parent}"
    version = client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return version
