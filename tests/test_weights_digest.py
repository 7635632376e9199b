"""Weights that prove they are unchanged: a run records the SHA-256 of its weights and ``model.json``.

Every read path (``zoo eval``, ``zoo predict --run``, ``runs:/`` and ``models:/``
weights) checks the downloaded file against it and refuses one that was changed in
the artifact store, in one line that names the file. Strings from a run (class
names) are printed with control characters escaped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from safetensors.torch import load_file, save_file

import registry
from experiments import ExperimentConfig, train
from experiments.analysis.tables import format_table
from experiments.cli import main
from experiments.tracking.names import BEST_WEIGHTS_ARTIFACT, WEIGHTS_INFO_ARTIFACT, digest_tag
from registry.errors import WeightsError

from cli_errors import one_error_line

TINY = {
    "model": "resnet_tiny_scratch",
    "data": "digits",
    "preset": "cifar",
    "augment": False,
    "limit_per_class": 8,
    "epochs": 1,
    "batch_size": 32,
    "workers": "0",
    "progress_bar": False,
    "log_model": False,
}


def artifact_path(client: MlflowClient, run_id: str, path: str) -> Path:
    """Where a run's artifact lies in a local (SQLite store's) artifact folder."""
    return Path(unquote(urlparse(client.get_run(run_id).info.artifact_uri).path)) / path


@pytest.fixture
def run(mlflow_store: str):
    result = train(ExperimentConfig(**TINY))
    client = MlflowClient(mlflow_store)
    return result.run_id, client


def test_a_run_records_the_sha256_of_its_weights_and_model_json(run) -> None:
    run_id, client = run
    tags = client.get_run(run_id).data.tags
    for name in (BEST_WEIGHTS_ARTIFACT, WEIGHTS_INFO_ARTIFACT):
        file = artifact_path(client, run_id, name)
        assert tags[digest_tag(name)] == hashlib.sha256(file.read_bytes()).hexdigest(), name


def test_tampered_weights_are_refused_by_every_read_path_in_one_line(run, tmp_path: Path, capsys) -> None:
    run_id, client = run
    assert main(["register", run_id, "--name", "tiny", "--alias", "champion"]) == 0
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(image)
    assert main(["predict", "--run", run_id, str(image)]) == 0  # the untouched run reads
    capsys.readouterr()

    weights = artifact_path(client, run_id, BEST_WEIGHTS_ARTIFACT)
    state = load_file(weights)
    first = next(iter(state))
    state[first] = state[first] + 1  # a valid safetensors file, other weights: only the digest tells
    save_file(state, weights)

    for argv in (["eval", run_id, "--no-log"], ["predict", "--run", run_id, str(image)]):
        assert main(argv) == 2, argv
        line = one_error_line(capsys.readouterr().err, prefix="zoo: error: ")
        assert f"{BEST_WEIGHTS_ARTIFACT} is not the file the run wrote" in line, argv
    for uri in (f"runs:/{run_id}", "models:/tiny@champion"):
        with pytest.raises(WeightsError, match="is not the file the run wrote") as refused:
            registry.create_model("resnet_tiny_scratch", weights=uri)
        assert "\n" not in str(refused.value)
        assert BEST_WEIGHTS_ARTIFACT in str(refused.value)


def test_a_tampered_model_json_is_refused(run, capsys) -> None:
    run_id, client = run
    info = artifact_path(client, run_id, WEIGHTS_INFO_ARTIFACT)
    changed = json.loads(info.read_text())
    changed["class_names"][0] = "\x1b[2J\x1b[31mpwned"
    info.write_text(json.dumps(changed, indent=2))
    assert main(["eval", run_id, "--no-log"]) == 2
    assert f"{WEIGHTS_INFO_ARTIFACT} is not the file the run wrote" in one_error_line(
        capsys.readouterr().err, prefix="zoo: error: "
    )


def test_strings_from_a_run_are_printed_with_control_characters_escaped() -> None:
    rows = [{"class": "\x1b[2Jcat\nline", "accuracy": 0.5}]
    for fmt in ("table", "markdown"):
        text = format_table(rows, ["class", "accuracy"], fmt)
        assert "\x1b" not in text
        assert "\\x1b[2Jcat\\nline" in text
