"""`register_run`: a trained run into MLflow's Model Registry, under a name and an alias.

The version points at the run's logged model (``mlflow.pytorch``, with its
preprocessing) when the run logged one, else at its best weights folder; either
way it carries the run id, which is what ``models:/NAME@ALIAS`` weights need:
``create_model(MODEL, weights="models:/NAME@champion")`` loads the run's best
weights (see `experiments.serving.weights_uri`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from experiments.tracking.names import MODEL_TAG, WEIGHTS_INFO_ARTIFACT
from experiments.tracking.readback import get_run, read_artifact_text
from experiments.tracking.runs import register_version
from experiments.tracking.store import require_writable
from registry.errors import ZooError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class RegistryError(ZooError, ValueError):
    """A run or name that cannot be registered."""


@dataclass
class Registered:
    """What `register_run` returns.

    Attributes:
        name: Registered model name.
        version: The new version number.
        alias: The alias set on it, or ``None``.
        model: The zoo model name the run trained.
        source: What the version points at (MLflow's record of it; its type allows ``None``).
        run_id: The run.
    """

    name: str
    version: int
    alias: str | None
    model: str
    source: str | None
    run_id: str

    @property
    def uri(self) -> str:
        """The weights URI that loads this version: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def register_run(run_id: str, name: str, alias: str | None = None, tracking_uri: str | None = None) -> Registered:
    """Register a trained run's model as a new version of ``name``, optionally under an alias.

    Args:
        run_id: A run that finished training (it has ``weights/best.safetensors``).
        name: Registered model name (letters, digits, ``_``, ``-``, ``.``).
        alias: An alias such as ``champion``, moved to the new version.
        tracking_uri: The store (its Model Registry); default as for `experiments.train`.

    Returns:
        The new version.

    Raises:
        RegistryError: For a bad name or alias, or a run without best weights.
    """
    for label, value in (("name", name), ("alias", alias)):
        if value is not None and not _NAME.match(value):
            raise RegistryError(f"--{label} '{value}' is not allowed; use letters, digits, '_', '-' and '.'")
    if alias is not None and re.fullmatch(r"v\d+|latest", alias, re.IGNORECASE):
        raise RegistryError(
            f"--alias '{alias}' is reserved by MLflow (latest, v1, v2, ...); choose another, such as champion"
        )
    uri = require_writable(tracking_uri)
    run = get_run(run_id, uri)
    if run.info.status != "FINISHED":
        raise RegistryError(f"run '{run_id}' is {run.info.status}, not FINISHED; register a run that finished training")
    read_artifact_text(run_id, WEIGHTS_INFO_ARTIFACT, uri)  # fails clearly without zoo weights
    model = run.data.params.get("model") or run.data.tags.get(MODEL_TAG, "")
    version = register_version(run, name, alias, uri)
    return Registered(name, int(version.version), alias, model, version.source, run_id)
