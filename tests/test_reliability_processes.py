"""Reliability (#6) with real processes: SIGKILL and resume, SIGTERM/Ctrl-C, concurrent starts, DDP.

Each test starts ``zoo train`` in subprocesses (signals and second processes are
the point), so all are marked slow. docs/reliability.md lists what each checks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from experiments.tracking.checkpoints import load_checkpoint

pytestmark = pytest.mark.slow

ZOO = [sys.executable, "-m", "experiments.cli"]
FLAGS = ["--data", "digits", "--preset", "cifar", "--no-augment", "--batch-size", "32", "--workers", "0",
         "--no-progress-bar", "--no-log-model", "--no-early-stopping"]
CURVES = ("train_loss_epoch", "train_acc", "val_loss", "val_acc")


def start(argv: list[str], log: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([*ZOO, *argv], env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def run_named(client: MlflowClient, name: str):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string=f"attributes.run_name = '{name}'")
    return runs[0] if runs else None


def curves(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in CURVES}


def wait_for(condition, process: subprocess.Popen, log: Path, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, f"exited {process.returncode} too early:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"timed out waiting:\n{log.read_text()[-3000:]}")


def has_last_state(client: MlflowClient, name: str):
    """The run once its epoch-0 figures and its last state are in the store."""
    run = run_named(client, name)
    if run is None or not client.get_metric_history(run.info.run_id, "val_acc"):
        return None
    files = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id, "checkpoints")}
    return run if files.get("checkpoints/last.ckpt") else None


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def kill_mid_epoch(client: MlflowClient, name: str, args: list[str], log: Path, env: dict[str, str]):
    """Start a run, SIGKILL it inside its second epoch, and return it; ``None`` if the kill landed elsewhere.

    The kill must land mid-epoch (the issue's case): after epoch 0's figures and last state are
    in the store and before epoch 1's figures are. On a loaded machine the poll can see epoch 0
    late, so the caller tries again with a new run rather than test a different case.
    """
    killed = start(["train", "resnet_tiny_scratch", *args, "--run-name", name], log, **env)
    try:
        run = wait_for(lambda: has_last_state(client, name), killed, log)
        epoch_time = client.get_metric_history(run.info.run_id, "epoch_time_s")[0].value
        time.sleep(0.3 * epoch_time)  # into epoch 1, well before its end
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
    logged = [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")]
    if logged != [0]:
        client.delete_run(run.info.run_id)  # a missed attempt must not show up as a stale run below
        return None
    return run


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(mlflow_store: str, tmp_path: Path) -> None:
    """1 (kill and resume) and 2 (stale runs): the killed run stays RUNNING, is found stale, and resumes exactly."""
    args = [*FLAGS, "--epochs", "3", "--limit-per-class", "40"]
    beat = {"ZOO_HEARTBEAT_S": "0.5"}
    reference = start(["train", "resnet_tiny_scratch", *args, "--run-name", "reference"],
                      tmp_path / "reference.log", **beat)
    client = MlflowClient(mlflow_store)
    try:
        run = None
        for attempt in range(3):
            run = kill_mid_epoch(client, f"killed{attempt}", args, tmp_path / f"killed{attempt}.log", beat)
            if run is not None:
                break
        assert run is not None, "three kills in a row missed the middle of epoch 1: the machine is too loaded"
        assert reference.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    finally:
        if reference.poll() is None:
            reference.kill()
    run_id = run.info.run_id
    before = client.get_run(run_id)
    logged = [m.step for m in client.get_metric_history(run_id, "val_acc")]
    assert before.info.status == "RUNNING" and logged == [0], "the kill did not land inside epoch 1"

    # 2. The dead process's run is stale once its heartbeat is older than a few beats; a finished run is not.
    time.sleep(1.5)
    listed = subprocess.run([*ZOO, "runs", "--stale", "--older-than", "1", "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run_id], listed.stderr[-2000:]

    # 1. Resume: same run, epochs continuous and once each, params unchanged, FINISHED, same weights.
    resumed = subprocess.run([*ZOO, "train", "--resume", run_id], capture_output=True, text=True, timeout=300,
                             env={**os.environ, **beat})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = client.get_run(run_id)
    assert after.info.status == "FINISHED" and after.data.params == before.data.params
    ref = run_named(client, "reference")
    got, want = curves(client, run_id), curves(client, ref.info.run_id)
    for key in CURVES:
        assert [s for s, _ in got[key]] == [0, 1, 2], key
    assert got == want  # the same figures, epoch by epoch, as the run that was never killed
    killed_state = state_dict(Path("checkpoints") / run_id / "last.ckpt")
    reference_state = state_dict(Path("checkpoints") / ref.info.run_id / "last.ckpt")
    assert killed_state.keys() == reference_state.keys()
    differ = {k: float((killed_state[k].double() - reference_state[k].double()).abs().max())
              for k in killed_state if not torch.equal(killed_state[k], reference_state[k])}
    assert not differ, (logged, differ, sorted(p.name for p in (Path("checkpoints") / run_id).iterdir()))
    assert after.data.metrics["epochs"] == 3


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_sigterm_and_ctrl_c_save_the_state_and_mark_the_run_killed(signum: int, mlflow_store: str,
                                                                    tmp_path: Path) -> None:
    """3: the state at the signal is saved and uploaded, the run is KILLED, the exit code non-zero."""
    log = tmp_path / "train.log"
    process = start(["train", "resnet_tiny_scratch", *FLAGS, "--epochs", "500", "--limit-per-class", "8",
                     "--run-name", "stopped"], log)
    client = MlflowClient(mlflow_store)
    try:
        run = wait_for(lambda: has_last_state(client, "stopped"), process, log)
        process.send_signal(signum)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 130, log.read_text()[-3000:]
    assert "zoo: interrupted" in log.read_text()
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED"
    epochs_logged = len(client.get_metric_history(run.info.run_id, "val_acc"))
    saved = Path(client.download_artifacts(run.info.run_id, "checkpoints/interrupted.ckpt", str(tmp_path)))
    state = load_checkpoint(saved)
    steps_per_epoch = 2  # 64 training images, batches of 32
    assert state["global_step"] >= epochs_logged * steps_per_epoch  # the state at the signal, not an older one
    assert state["state_dict"].keys() == state_dict(Path("checkpoints") / run.info.run_id / "last.ckpt").keys()


def test_four_runs_started_at_once_on_a_new_store_and_a_cold_cache_all_finish(tmp_path: Path) -> None:
    """4: a new SQLite store and an empty data cache, four processes at the same moment."""
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "ZOO_CACHE_DIR": str(tmp_path / "cold-cache")}
    processes = [start(["train", "resnet_tiny_scratch", *FLAGS, "--epochs", "1", "--limit-per-class", "4",
                        "--run-name", f"r{i}", "--seed", str(i)], tmp_path / f"r{i}.log", **env) for i in range(4)]
    try:
        codes = [p.wait(timeout=400) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0, 0, 0], "\n".join((tmp_path / f"r{i}.log").read_text()[-1500:] for i in range(4))
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(r.info.run_name for r in runs) == ["r0", "r1", "r2", "r3"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert {"test_acc", "best_val_acc", "epochs"} <= run.data.metrics.keys()
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [0]
        assert run.data.params["data.cache_key"] == runs[0].data.params["data.cache_key"]
    entries = [p for p in (tmp_path / "cold-cache" / "data").iterdir() if p.is_dir()]
    assert len(entries) == 1  # the cache was built once, not four times side by side


def test_ddp_on_two_cpu_processes_is_one_run_written_by_rank_zero(mlflow_store: str, tmp_path: Path) -> None:
    """8: ``zoo train --accelerator cpu --devices 2 --strategy ddp`` against one process with the same global batch."""
    zoo = Path(sys.executable).with_name("zoo")  # the console entry: Lightning re-runs this very command per rank
    if not zoo.is_file():
        pytest.skip(f"no zoo console script next to {sys.executable} (pip install -e .)")
    common = ["train", "resnet_tiny_scratch", "--data", "digits", "--preset", "cifar", "--no-augment",
              "--limit-per-class", "40", "--epochs", "4", "--workers", "0", "--no-progress-bar", "--no-log-model",
              "--no-early-stopping", "--accelerator", "cpu"]
    ddp = subprocess.run([str(zoo), *common, "--devices", "2", "--strategy", "ddp", "--batch-size", "16",
                          "--run-name", "ddp"], capture_output=True, text=True, timeout=400)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([str(zoo), *common, "--devices", "1", "--batch-size", "32", "--run-name", "single"],
                            capture_output=True, text=True, timeout=400)
    assert single.returncode == 0, single.stderr[-3000:]
    assert ddp.stdout.count("compare runs with") == 1  # one summary: rank 1 ran the command silently

    client = MlflowClient(mlflow_store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(r.info.run_name for r in runs) == ["ddp", "single"]  # rank 1 created no run of its own
    run, one = run_named(client, "ddp"), run_named(client, "single")
    assert run.info.status == "FINISHED"
    assert run.data.params["strategy"] == "ddp" and run.data.params["devices"] == "2"
    assert run.data.tags["zoo.world_size"] == "2" and run.data.tags["zoo.global_batch_size"] == "32"
    for key in CURVES:  # written once per epoch, by rank 0 alone
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1, 2, 3], key
    # Sharded: each rank sees half the data, so two ranks of 16 take as many steps as one process of 32.
    steps = {name: load_checkpoint(Path("checkpoints") / r.info.run_id / "last.ckpt")["global_step"]
             for name, r in (("ddp", run), ("single", one))}
    assert steps["ddp"] == steps["single"] > 0
    # Same global batch, same data: the test accuracy agrees within 0.10 (the shard order and per-rank
    # BatchNorm statistics differ, so the runs are not bit-equal; measured gap 0.02 here).
    acc_ddp, acc_one = run.data.metrics["test_acc"], one.data.metrics["test_acc"]
    assert acc_one > 0.5 and abs(acc_ddp - acc_one) <= 0.10, (acc_ddp, acc_one)
