"""Kill -9 at any point, resume, and the run equals one that was never killed: with the default config.

The defaults include early stopping (the notebook had it); an earlier version of
these tests turned it off and so never saw resume crash on it. Each kill lands
exactly where it is meant to: `tests/zoo_faults.py` stands the process still at
that point and the test SIGKILLs it there. What "equal" means: the same epoch
figures, each epoch logged once; the same best weights, bit for bit; the same
test figures, logged once; the same params; FINISHED.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from experiments.cli import main
from experiments.tracking.checkpoints import load_checkpoint

from procs import FAULTS, ZOO, finish, running, wait_for

pytestmark = pytest.mark.slow

DEFAULTS = [
    "--data",
    "digits",
    "--preset",
    "cifar",
    "--no-augment",
    "--batch-size",
    "32",
    "--workers",
    "0",
    "--no-progress-bar",
    "--no-log-model",
    "--epochs",
    "3",
    "--limit-per-class",
    "16",
]
"""The user's config: early stopping on (patience 5: it does not stop within three epochs)."""

STOPS_EARLY = [*DEFAULTS, "--patience", "1", "--min-delta", "0.9"]
"""A variation where early stopping does stop: no epoch improves by 0.9, so it stops after epoch 1."""

CURVES = ("train_loss_epoch", "train_acc", "val_loss", "val_acc")
SUMMARY = ("test_acc", "test_loss", "best_val_acc", "epochs", "epoch_of_best")
BEAT = {"ZOO_HEARTBEAT_S": "0.5"}


def only_run(client: MlflowClient):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def record(uri: str, run_id: str) -> dict:
    """What a run holds: curves, summary histories, params, status, best weights."""
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory() as folder:
        weights = load_file(client.download_artifacts(run_id, "weights/best.safetensors", folder))
    return {
        "curves": {
            k: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, k), key=lambda m: m.step)]
            for k in CURVES
        },
        "summary": {k: [m.value for m in client.get_metric_history(run_id, k)] for k in SUMMARY},
        "params": run.data.params,
        "status": run.info.status,
        "weights": weights,
    }


def zoo(*argv: str) -> tuple[int, str]:
    """The zoo command in this process (no signal involved): its exit code and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


def uninterrupted(folder: Path, flags: list[str], cache: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("ZOO_CACHE_DIR", str(cache))
        patch.setenv("MLFLOW_TRACKING_URI", uri)  # as the killed runs get theirs: params alike
        code, log = zoo("train", "resnet_tiny_scratch", *flags, "--run-name", "run")
        assert code == 0, log[-3000:]
        return {**record(uri, only_run(MlflowClient(uri)).info.run_id), "uri": uri}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, zoo_cache_dir: Path) -> dict:
    return uninterrupted(tmp_path_factory.mktemp("reference"), DEFAULTS, zoo_cache_dir)


@pytest.fixture(scope="module")
def reference_stopping(tmp_path_factory: pytest.TempPathFactory, zoo_cache_dir: Path) -> dict:
    return uninterrupted(tmp_path_factory.mktemp("reference-stopping"), STOPS_EARLY, zoo_cache_dir)


def kill_at(fault: str, flags: list[str], uri: str, tmp_path: Path) -> str:
    """Start a run, SIGKILL it where ``fault`` stands it still; its run id."""
    marker, log = tmp_path / "struck", tmp_path / "killed.log"
    with running(
        [*FAULTS, "train", "resnet_tiny_scratch", *flags, "--run-name", "run"],
        log,
        ZOO_FAULT=fault,
        ZOO_FAULT_MARKER=str(marker),
        **BEAT,
    ) as process:
        wait_for(marker.exists, process, log)
    run = only_run(MlflowClient(uri))
    assert run.info.status == "RUNNING"  # SIGKILL: nobody could say otherwise
    return run.info.run_id


def resume(run_id: str, *options: str) -> tuple[int, str]:
    return zoo("train", "--resume", run_id, *options)


def assert_equal_runs(got: dict, want: dict) -> None:
    assert got["status"] == "FINISHED"
    assert got["curves"] == want["curves"]  # every epoch once, with the same figures
    for key in SUMMARY:
        assert got["summary"][key] == want["summary"][key], key  # logged once, the same value
    assert got["params"] == want["params"]
    differ = [k for k in want["weights"] if not torch.equal(got["weights"][k], want["weights"][k])]
    assert got["weights"].keys() == want["weights"].keys(), differ
    assert not differ, differ


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        pytest.param("pause:mid-epoch:1", [1], marks=pytest.mark.floors),  # inside the 2nd epoch (steps count from 1)
        ("pause:validated:1", [1]),  # right after the second epoch's validation, before its figures
        ("pause:testing", [1, 2, 3]),  # during the test of the best weights
        ("pause:mid-epoch:0", []),  # before the first state exists: it starts again
    ],
    ids=["inside-an-epoch", "after-a-validation", "during-the-test", "first-epoch"],
)
def test_sigkill_then_resume_equals_an_uninterrupted_run(
    fault: str, logged: list[int], reference: dict, mlflow_store: str, tmp_path: Path
) -> None:
    run_id = kill_at(fault, DEFAULTS, mlflow_store, tmp_path)
    client = MlflowClient(mlflow_store)
    assert [m.step for m in client.get_metric_history(run_id, "val_acc")] == logged  # the kill landed there
    code, log = resume(run_id)
    assert code == 0, log[-3000:]
    assert_equal_runs(record(mlflow_store, run_id), reference)


def test_a_run_that_stopped_early_and_was_killed_in_its_test_stops_again(
    reference_stopping: dict, mlflow_store: str, tmp_path: Path
) -> None:
    assert [s for s, _ in reference_stopping["curves"]["val_acc"]] == [1, 2]  # early stopping did stop it
    run_id = kill_at("pause:testing", STOPS_EARLY, mlflow_store, tmp_path)
    code, log = resume(run_id)
    assert code == 0, log[-3000:]
    assert_equal_runs(record(mlflow_store, run_id), reference_stopping)  # no third epoch after the resume


def test_a_dead_run_is_found_stale_at_once_and_two_resumes_at_once_train_it_once(
    reference: dict, mlflow_store: str, tmp_path: Path
) -> None:
    run_id = kill_at("pause:mid-epoch:1", DEFAULTS, mlflow_store, tmp_path)
    code, listing = zoo("runs", "--stale", "--format", "json")  # the next command, in-process
    assert code == 0
    assert run_id in listing
    assert "is gone" in listing
    with (
        running([*ZOO, "train", "--resume", run_id], tmp_path / "a.log", **BEAT) as first,
        running([*ZOO, "train", "--resume", run_id], tmp_path / "b.log", **BEAT) as second,
    ):
        codes = sorted([first.wait(timeout=300), second.wait(timeout=300)])
    logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert codes == [0, 2], logs[-3000:]
    refusal = [line for line in logs.splitlines() if line.startswith("zoo: error:")]
    assert len(refusal) == 1, refusal
    assert "same moment" in refusal[0] or "live process" in refusal[0], refusal
    assert_equal_runs(record(mlflow_store, run_id), reference)  # trained once: every epoch logged once


def test_resuming_a_finished_run_is_refused_and_changes_nothing(reference: dict) -> None:
    run_id = only_run(MlflowClient(reference["uri"])).info.run_id
    code, log = resume(run_id, "--tracking-uri", reference["uri"])
    assert code == 2, log
    assert len(log.strip().splitlines()) == 1, log  # one line, nothing else
    assert "is FINISHED" in log
    assert "--weights runs:/" in log
    assert "Traceback" not in log
    after = record(reference["uri"], run_id)
    assert after["status"] == "FINISHED"
    assert after["summary"] == reference["summary"]
    assert after["curves"] == reference["curves"]


def test_a_full_disk_fails_the_run_with_the_reason_and_keeps_the_last_state(
    reference: dict, mlflow_store: str, tmp_path: Path
) -> None:
    code, log = finish(
        [*FAULTS, "train", "resnet_tiny_scratch", *DEFAULTS, "--run-name", "run"],
        tmp_path / "full.log",
        ZOO_FAULT="enospc:checkpoint:1,enospc:status:2",
        **BEAT,
    )
    assert code == 1, log[-3000:]
    assert "No space left on device" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    run = only_run(MlflowClient(mlflow_store))
    assert run.info.status == "FAILED"  # the status write was refused twice, then taken
    assert "No space left on device" in run.data.tags["zoo.failure"]
    folder = Path("checkpoints") / run.info.run_id
    assert load_checkpoint(folder / "last.ckpt")["epoch"] == 0  # the previous state, whole at its final path
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]  # no half-written file left
    code, log = resume(run.info.run_id)
    assert code == 0, log[-3000:]
    assert_equal_runs(record(mlflow_store, run.info.run_id), reference)


def test_when_the_store_refuses_the_status_the_next_command_finds_the_run_and_says_why(
    mlflow_store: str, tmp_path: Path
) -> None:
    code, log = finish(
        [*FAULTS, "train", "resnet_tiny_scratch", *DEFAULTS, "--epochs", "1", "--run-name", "run"],
        tmp_path / "full.log",
        ZOO_FAULT="enospc:status:all",
        **BEAT,
    )
    assert "could not record run" in log, log[-3000:]
    assert "zoo runs --stale" in log, log[-3000:]
    run = only_run(MlflowClient(mlflow_store))
    assert run.info.status == "RUNNING"
    code, listing = zoo("runs", "--stale")
    assert code == 0
    assert run.info.run_id in listing
    assert "is gone" in listing
    code, log = resume(run.info.run_id)
    assert code == 0, log[-3000:]
    after = MlflowClient(mlflow_store).get_run(run.info.run_id)
    assert after.info.status == "FINISHED"
    assert len(MlflowClient(mlflow_store).get_metric_history(run.info.run_id, "test_acc")) == 1  # not twice
