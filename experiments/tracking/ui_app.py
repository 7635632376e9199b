"""MLflow's tracking server, with experiments opening on their runs and no assistant: the app behind ``zoo ui``.

MLflow 3.17's UI has one switch for the whole browser, *GenAI* or *Model training*,
kept in the browser's ``localStorage`` and set to GenAI until the user flips it; it
decides whether an experiment opens on a traces overview or on its runs table (the
experiment's own ``mlflow.experimentKind`` tag, which the zoo sets, is read only when
that switch is absent). MLflow 3.17 and later also open their *Assistant* side
panel by themselves on a browser's first visit. This app is MLflow's own server,
unchanged except that its page sets the switch to *Model training* and the panel
closed when the browser has never chosen (`UI_DEFAULTS`). A user who flips the
switch or opens the panel keeps their choice.

It is registered as an MLflow app plugin (entry point group ``mlflow.app``, the
mechanism of MLflow's ``basic-auth`` app) under the name
:data:`~experiments.tracking.names.UI_APP`, so a team server
gets the same with ``mlflow server --app-name zoo``. MLflow runs one app per server:
``--app-name zoo-auth`` (:data:`~experiments.tracking.names.UI_AUTH_APP`) is MLflow's
``basic-auth`` app (users, passwords, permissions per experiment) with the same page.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import cast

from fastapi import FastAPI
from flask import Flask, Response
from flask.typing import ResponseReturnValue
from mlflow.environment_variables import _MLFLOW_SGI_NAME  # library-private: MLflow says only so which server runs it
from mlflow.server import app as mlflow_app
from mlflow.server.fastapi_app import create_fastapi_app

WORKFLOW_TYPE_KEY = "mlflow.workflowType_v1"
"""Where MLflow's UI keeps its GenAI / Model training switch (a JSON string)."""

MODEL_TRAINING = "machine_learning"
"""The switch's value for *Model training*."""

ASSISTANT_PANEL_KEY = "mlflow.assistant.panelOpen_v1"
"""Where MLflow's UI keeps whether its *Assistant* side panel is open (JSON ``true``/``false``)."""

ASSISTANT_AUTO_OPENED_KEY = "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1"
"""Set once MLflow's UI has opened the Assistant by itself: while absent, the first page load opens it."""

UI_DEFAULTS = {WORKFLOW_TYPE_KEY: MODEL_TRAINING, ASSISTANT_PANEL_KEY: False, ASSISTANT_AUTO_OPENED_KEY: True}
"""What the page sets in the browser's ``localStorage`` where the browser holds nothing yet."""

DEFAULTS_SCRIPT = (
    "<script>"
    f"for (const [key, value] of Object.entries({json.dumps({k: json.dumps(v) for k, v in UI_DEFAULTS.items()})})) "
    "if (window.localStorage.getItem(key) === null) window.localStorage.setItem(key, value);"
    "</script>"
)
"""Runs before MLflow's own scripts: `UI_DEFAULTS`, each unless the browser chose already."""


def index_page(static_folder: str) -> str:
    """MLflow's ``index.html`` with :data:`DEFAULTS_SCRIPT` as the first thing in its head.

    Args:
        static_folder: The folder of MLflow's built UI.

    Returns:
        The page's HTML.
    """
    with open(os.path.join(static_folder, "index.html"), encoding="utf-8") as page:
        html = page.read()
    return html.replace("<head>", "<head>" + DEFAULTS_SCRIPT, 1)


def with_model_training_default(app: Flask) -> Flask:
    """Serve the UI's page (MLflow's endpoint ``serve``) with `UI_DEFAULTS` set where the browser has none.

    Args:
        app: MLflow's Flask app.

    Returns:
        The same app.
    """
    # MLflow's view is a plain function; Flask's type also allows coroutines, which a sync view cannot return.
    original = cast(Callable[[], ResponseReturnValue], app.view_functions["serve"])

    def serve() -> ResponseReturnValue:
        folder = app.static_folder
        if folder is None or not os.path.exists(os.path.join(folder, "index.html")):
            return original()  # MLflow's own message for a source install without a built UI
        return Response(index_page(folder), mimetype="text/html")

    app.view_functions["serve"] = serve
    return app


def create_auth_app(app: Flask = mlflow_app) -> FastAPI | Flask:
    """The app ``mlflow server --app-name zoo-auth`` runs: MLflow's basic-auth app, experiments opening on runs.

    Args:
        app: MLflow's Flask app.

    Returns:
        What MLflow's ``basic-auth`` factory returns for the app (its FastAPI app under uvicorn).
    """
    # Deferred: importing MLflow's auth app reads its config file and opens its user store; only this app needs it.
    from mlflow.server import auth

    with_model_training_default(app)
    created: FastAPI | Flask = auth.create_app(app)  # MLflow's factory is untyped
    return created


def create_app(app: Flask = mlflow_app) -> FastAPI | Flask:
    """The app ``mlflow server --app-name zoo`` runs (a factory, as MLflow's ``basic-auth`` is).

    Args:
        app: MLflow's Flask app.

    Returns:
        Under uvicorn (MLflow's default server) the FastAPI app around it, else the Flask app.
    """
    with_model_training_default(app)
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        return create_fastapi_app(app)
    return app
