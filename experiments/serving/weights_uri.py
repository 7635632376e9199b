"""``runs:/`` and ``models:/`` weight URIs for `registry.create_model` (the ``zoo.weights`` entry points).

``create_model("resnet50_scratch", weights="runs:/RUN_ID")`` builds the model with
the run's class count and builder arguments and loads the run's best weights
(``weights/best.safetensors``). ``models:/NAME@ALIAS`` and ``models:/NAME/VERSION``
go through MLflow's Model Registry to the run that produced the version.

The registry calls a resolver with the URI and the model's name only; the store
they are read from is the default store (`resolve_tracking_uri`), unless the
caller names one with `weights_store` (the runner does, with the run's
``--tracking-uri``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from mlflow.exceptions import MlflowException

from experiments.config.secrets import mask_uri
from experiments.tracking.errors import TrackingError
from experiments.tracking.readback import best_weights, model_version
from experiments.tracking.store import resolve_tracking_uri
from registry.errors import WeightsError
from registry.weights import ResolvedWeights

_STORE: ContextVar[str | None] = ContextVar("zoo_weights_store", default=None)


@contextlib.contextmanager
def weights_store(tracking_uri: str | None) -> Iterator[None]:
    """Read ``runs:/`` and ``models:/`` weights from this store while the body runs.

    Args:
        tracking_uri: The store; ``None`` keeps the default.

    Yields:
        Nothing.
    """
    token = _STORE.set(tracking_uri)
    try:
        yield
    finally:
        _STORE.reset(token)


def _run_id_of(uri: str) -> str:
    parts = [p for p in uri[len("runs:/") :].split("/") if p]
    if not parts:
        raise WeightsError(f"weights URI '{uri}' names no run; write runs:/RUN_ID")
    return parts[0]


def resolve_run_weights(uri: str, model_name: str) -> ResolvedWeights:
    """Best weights of a run, with the builder arguments they were trained with.

    Args:
        uri: ``runs:/RUN_ID``, in the store `weights_store` names (default: the default store,
            `resolve_tracking_uri`).
        model_name: The model they are asked for.

    Returns:
        The state dict and ``{"num_classes": ..., "stem": ..., ...}``.

    Raises:
        WeightsError: If the run is missing, has no best weights, or trained another model.
    """
    run_id = _run_id_of(uri)
    try:
        state, info = best_weights(run_id, _STORE.get())
    except TrackingError as exc:
        raise WeightsError(f"cannot load weights from '{uri}': {exc}") from None
    if info.get("model") != model_name:
        raise WeightsError(
            f"run '{run_id}' trained '{info.get('model')}', not '{model_name}'; "
            f"call create_model('{info.get('model')}', weights='{uri}')"
        )
    return ResolvedWeights(state, dict(info.get("model_kwargs", {})))


def resolve_registered_weights(uri: str, model_name: str) -> ResolvedWeights:
    """Best weights of the run behind a registered model version.

    Args:
        uri: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
        model_name: The model they are asked for.

    Returns:
        As `resolve_run_weights`.

    Raises:
        WeightsError: If the name, alias or version is not registered.
    """
    ref = uri[len("models:/") :].strip("/")
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version = model_version(name, alias, None, _STORE.get())
        elif "/" in ref:
            name, number = ref.split("/", 1)
            version = model_version(name, None, number, _STORE.get())
        else:
            raise WeightsError(
                f"weights URI '{uri}' needs a version or alias: models:/NAME@ALIAS or models:/NAME/VERSION"
            )
    except MlflowException:
        raise WeightsError(
            f"'{uri}' is not in the Model Registry of {mask_uri(resolve_tracking_uri(_STORE.get()))}; "
            f"register the run first"
        ) from None
    if not version.run_id:
        raise WeightsError(f"'{uri}' is not linked to a training run; it has no zoo weights")
    return resolve_run_weights(f"runs:/{version.run_id}", model_name)  # the same store: _STORE still holds
