"""The reader: runs found, their curves, a run's config, best weights and what they fit, its last state.

Comparisons and plots, resume, ``zoo eval``, ``zoo predict --run``, ``runs:/`` and
``models:/`` weights all read the store through these functions (no other package
holds an `MlflowClient`), so they read it the same way, from any machine that
reaches the store. Every file is downloaded into a temporary folder
that is removed as soon as its content has been read (or, for the last state,
when the caller is done with it).

The best weights and ``model.json`` are checked against the SHA-256 the run
recorded when it wrote them (`check_digest`): a file changed in the artifact store
afterwards is refused in one line, never loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from experiments.config.errors import ConfigError
from experiments.config.files import read_yaml
from experiments.config.schema import ExperimentConfig, from_dict
from experiments.config.secrets import mask_uri
from experiments.tracking import heartbeat
from experiments.tracking.errors import TrackingError
from experiments.tracking.names import (
    BEST_WEIGHTS_ARTIFACT,
    CONFIG_ARTIFACT,
    WEIGHTS_INFO_ARTIFACT,
    digest_tag,
    read_tag,
)
from experiments.tracking.store import get_client, resolve_tracking_uri
from registry.weights import read_weights_file


def get_run(run_id: str, uri: str | None = None) -> Run:
    """Fetch a run, as a one-line error when it does not exist.

    Args:
        run_id: The MLflow run's id.
        uri: Tracking URI.

    Returns:
        The `mlflow.entities.Run`.

    Raises:
        TrackingError: If the store has no such run.
    """
    client = get_client(uri)
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise TrackingError(
            f"no run '{run_id}' in the tracking store {mask_uri(resolve_tracking_uri(uri))}; "
            f"list runs with `zoo compare` or pass --tracking-uri"
        ) from None


def curve(run_id: str, metric: str, uri: str | None = None) -> dict[int, float]:
    """A metric's history: its value at each step (an epoch curve's steps count epochs from 1).

    Args:
        run_id: The run's id.
        metric: The metric's name.
        uri: Tracking URI.

    Returns:
        ``{step: value}`` in step order (empty when the run never logged it).
    """
    return dict(sorted((m.step, m.value) for m in get_client(uri).get_metric_history(run_id, metric)))


def model_version(
    name: str, alias: str | None = None, number: str | None = None, uri: str | None = None
) -> ModelVersion:
    """A version of a registered model, by its alias or its number.

    Args:
        name: The registered model's name.
        alias: Such as ``champion``.
        number: Such as ``3`` (when ``alias`` is ``None``).
        uri: Tracking URI (its Model Registry).

    Returns:
        The version.

    Raises:
        MlflowException: If it is not registered.
    """
    client = get_client(uri)
    return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, str(number))


def stale_runs(
    experiment: str | None, older_than: float | None, mark: bool = False, uri: str | None = None
) -> list[tuple[Run, float, str]]:
    """RUNNING runs whose process is gone (`heartbeat.stale_runs`), marked KILLED if asked.

    Args:
        experiment: Look in this experiment only; all when ``None``.
        older_than: Seconds without a heartbeat that make a run on another host dead.
        mark: Mark them KILLED, saying why (`heartbeat.mark_killed`).
        uri: Tracking URI.

    Returns:
        ``(run, seconds since its last heartbeat, why it is dead)``, oldest first.

    Raises:
        TrackingError: If the experiment does not exist.
    """
    client = get_client(uri)
    ids = None
    if experiment:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise TrackingError(f"no experiment '{experiment}'; list runs with `zoo compare`")
        ids = [found.experiment_id]
    stale = heartbeat.stale_runs(client, older_than, ids)
    for run, _, reason in stale if mark else []:
        heartbeat.mark_killed(client, run.info.run_id, reason)
    return stale


def experiment_name(experiment_id: str, uri: str | None = None) -> str:
    """What an experiment is called (an eval run goes into its source run's experiment by name).

    Args:
        experiment_id: Its id (a run's ``info.experiment_id``).
        uri: Tracking URI.

    Returns:
        The name.
    """
    return get_client(uri).get_experiment(experiment_id).name


def download_artifact(run_id: str, artifact_path: str, uri: str | None, dst: str | Path) -> Path:
    """Download one artifact of a run into a folder (works against any tracking server).

    Args:
        run_id: The run's id.
        artifact_path: Path inside the run's artifacts.
        uri: Tracking URI.
        dst: Local folder to download into.

    Returns:
        The local path.

    Raises:
        TrackingError: If the run, or its artifact, does not exist.
    """
    get_run(run_id, uri)
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=str(dst), tracking_uri=resolve_tracking_uri(uri)
        )
    except Exception as exc:  # MLflow raises several types for a missing file
        raise TrackingError(
            f"run '{run_id}' has no artifact '{artifact_path}' ({type(exc).__name__}); "
            f"was it trained with tracking on, and has it finished an epoch?"
        ) from None
    return Path(local)


def has_artifact(run_id: str, artifact_path: str, uri: str | None = None) -> bool:
    """Whether a run holds an artifact (nothing is downloaded).

    Args:
        run_id: The MLflow run's id.
        artifact_path: Path inside the run's artifacts, such as ``checkpoints/last.ckpt``.
        uri: Tracking URI.

    Returns:
        True when the file is there.
    """
    folder, _, _ = artifact_path.rpartition("/")
    listed = get_client(uri).list_artifacts(run_id, folder or None)
    return any(item.path == artifact_path and not item.is_dir for item in listed)


@contextlib.contextmanager
def artifact_file(run_id: str, artifact_path: str, uri: str | None = None) -> Iterator[Path]:
    """One artifact of a run as a local file that exists while the body runs.

    Args:
        run_id: The run's id.
        artifact_path: Path inside the run's artifacts.
        uri: Tracking URI.

    Yields:
        The local file, in a temporary folder removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="zoo-") as folder:
        yield download_artifact(run_id, artifact_path, uri, folder)


def read_artifact_text(run_id: str, artifact_path: str, uri: str | None = None) -> str:
    """The text of one artifact of a run (nothing is left on disk).

    Args:
        run_id: The run's id.
        artifact_path: Path inside the run's artifacts.
        uri: Tracking URI.

    Returns:
        The file's text.
    """
    with artifact_file(run_id, artifact_path, uri) as path:
        return path.read_text(encoding="utf-8")


def run_config(run_id: str, uri: str | None = None, **changes: Any) -> ExperimentConfig:
    """A run's config, read back from its ``config.yaml``, with some fields changed.

    Args:
        run_id: The MLflow run's id.
        uri: Tracking URI.
        **changes: Field values that replace the run's.

    Returns:
        The validated `ExperimentConfig`.

    Raises:
        ConfigError: If the file is not a mapping of config fields.
    """
    with artifact_file(run_id, CONFIG_ARTIFACT, uri) as path:
        values = read_yaml(path)
    if not isinstance(values, dict):
        raise ConfigError(f"run '{run_id}' has no readable {CONFIG_ARTIFACT}; it cannot be read back")
    return from_dict({**values, **changes}, source=f"run {run_id} {CONFIG_ARTIFACT}")


def best_weights(run_id: str, uri: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's best weights and what they fit (``weights/model.json``).

    Args:
        run_id: The MLflow run's id.
        uri: Tracking URI.

    Returns:
        ``(state_dict, info)``; info has ``model``, ``model_kwargs``, ``class_names``, ``preprocess``.

    Raises:
        TrackingError: A file is missing, or is not the file the run wrote (see `check_digest`).
    """
    record = get_run(run_id, uri)
    with artifact_file(run_id, WEIGHTS_INFO_ARTIFACT, uri) as path:
        check_digest(record, WEIGHTS_INFO_ARTIFACT, path)
        info = json.loads(path.read_text(encoding="utf-8"))
    with artifact_file(run_id, BEST_WEIGHTS_ARTIFACT, uri) as path:
        check_digest(record, BEST_WEIGHTS_ARTIFACT, path)
        state = read_weights_file(path)
    return state, info


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks.

    Args:
        path: The file.

    Returns:
        64 hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(record: Run, artifact_path: str, path: Path) -> None:
    """Refuse a downloaded artifact whose SHA-256 is not the one its run recorded when writing it.

    A run from before the zoo recorded digests has none: its files are read unchecked.

    Args:
        record: The run (its tags hold the digests).
        artifact_path: The artifact's path in the run, such as ``weights/best.safetensors``.
        path: The downloaded file.

    Raises:
        TrackingError: In one line naming the file, when the digests differ.
    """
    expected = read_tag(record.data.tags, digest_tag(artifact_path))
    if expected is None:
        return
    found = sha256_of(path)
    if found != expected:
        raise TrackingError(
            f"run {record.info.run_id}: {artifact_path} is not the file the run wrote (SHA-256 {found[:16]}..., "
            f"recorded {expected[:16]}...); it was changed in the artifact store: do not use it, restore it "
            f"from a backup or train the run again"
        )
