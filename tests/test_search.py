"""Sweeps on Optuna: search spaces, workers, failures, kills and results, on generated data and tiny models.

A stand-in trainer is used where only the sweep's logic is the point (it costs
nothing); real training where MLflow's records are (children under their parent,
a pruned run's status, the parent's summary).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from conftest import copy_mlflow_store
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from experiments.cli import main
from experiments.config.experiment import load_experiment
from experiments.sweeps import engine
from experiments.sweeps import study as studies
from experiments.sweeps.trials import fingerprint
from experiments.tracking.names import STUDY_PARENT_ATTR, STUDY_PLAN_ATTR
from experiments.tracking.runs import config_params

from cli_errors import one_error_line
from procs import FAULTS, ZOO, finish, running, wait_for

TINY = {
    "model": "resnet_tiny_scratch",
    "data": "digits",
    "preset": "cifar",
    "augment": False,
    "limit_per_class": 5,
    "epochs": 2,
    "batch_size": 32,
    "workers": "0",
    "progress_bar": False,
    "log_model": False,
}
SPACE = {"lr": {"loguniform": [1.0e-4, 1.0e-1]}, "weight_decay": {"uniform": [0.0, 5.0e-4]}}


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def search_file(folder: Path, trials: int = 4, **more) -> Path:
    return write(
        folder / "search.yaml",
        {"description": "a tiny search", "defaults": TINY, "search": SPACE, "trials": trials, **more},
    )


def stand_in(fail_on: set[int] = frozenset(), interrupt_on: set[int] = frozenset()):
    """A trainer that trains nothing: its value is the lr; trial numbers in ``fail_on`` raise."""
    calls: list = []

    def train_fn(config, extras=None):
        number = int(extras.tags["zoo.trial"])
        calls.append((number, config))
        if number in interrupt_on:
            raise KeyboardInterrupt
        if number in fail_on:
            raise RuntimeError(f"trial {number} failed")
        return SimpleNamespace(run_id=None, metrics={"best_val_acc": config.lr})

    train_fn.calls = calls
    return train_fn


# -- the search space, checked before any trial ---------------------------------------


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"search": {"lr": {"normal": [0, 1]}}}, "unknown distribution 'normal'"),
        ({"search": {"lrr": {"uniform": [0, 1]}}}, "search key 'lrr' is not a config field"),
        ({"search": {"lr": {"uniform": [0.1, 0.01]}}}, "the bounds [0.1, 0.01] are in the wrong order"),
        ({"search": {"lr": {"loguniform": [0.0, 0.1]}}}, "loguniform needs bounds above 0"),
        ({"search": {"epochs": {"int": [0, 3]}}}, "search 'epochs' can give 0, which the config refuses"),
        ({"grid": {"lr": [0.1]}}, "'lr' is in both 'search:' and 'grid:'"),
        ({"seeds": [0, 1]}, "'search:' and 'seeds:' together"),
        ({"sampler": "cmaes"}, "sampler 'cmaes' is not allowed"),
        ({"pruner": "sometimes"}, "pruner 'sometimes' is not allowed"),
        ({"objective": "test_acc"}, "'test_acc' is not a metric every epoch logs"),
        ({"trials": 0}, "trials must be a whole number of at least 1"),
        ({"sampler": "grid"}, "sampler grid takes choice lists only"),
    ],
)
def test_a_bad_search_is_one_line_before_any_trial(
    change: dict, says: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = {"defaults": TINY, "search": SPACE, "trials": 4, **change}
    assert main(["run", str(write(tmp_path / "bad.yaml", data)), "--dry-run"]) == 2
    assert says in one_error_line(capsys.readouterr().err)


def test_a_search_dry_run_shows_the_space_and_the_grid_sampler_enumerates_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    assert main(["run", str(search_file(tmp_path, trials=20)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "20 trials, sampler tpe, pruner median, objective maximize val_acc" in out
    assert "loguniform(0.0001, 0.1)" in out
    assert "uniform(0, 0.0005)" in out
    grid = load_experiment(
        str(
            write(
                tmp_path / "g.yaml",
                {
                    "defaults": TINY,
                    "sampler": "grid",
                    "search": {"lr": {"choice": [0.01, 0.1]}, "batch_size": {"choice": [16, 32, 64]}},
                },
            )
        )
    )
    assert grid.trials == 6
    assert not grid.samples
    assert sorted((c.lr, c.batch_size) for c in grid.runs) == sorted(
        (lr, b) for lr in (0.01, 0.1) for b in (16, 32, 64)
    )


def test_the_shipped_search_runs_dry(capsys: pytest.CaptureFixture) -> None:
    experiment = load_experiment("search")
    assert experiment.samples
    assert set(experiment.search.space) == {"lr", "weight_decay"}
    assert experiment.runs[0].model == "resnet50_scratch"
    assert experiment.runs[0].preset == "cifar"
    assert main(["run", "search", "--data", "digits", "--dry-run", "--trials", "3"]) == 0
    assert "search of resnet50_scratch on digits: 3 trials" in capsys.readouterr().out


def test_workers_zero_and_a_storage_that_does_not_answer_are_one_line(
    tmp_path: Path, mlflow_store: str, capsys: pytest.CaptureFixture
) -> None:
    file = search_file(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main(["run", str(file), "--workers", "0"])
    assert refused.value.code == 2
    assert "at least 1" in capsys.readouterr().err
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    for url in (f"postgresql+psycopg2://postgres@127.0.0.1:{port}/zoo", f"sqlite:///{tmp_path / 'no' / 'o.db'}"):
        assert main(["run", str(file), "--storage", url]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"study storage {url}" in line
        assert "--storage" in line
    assert time.monotonic() - started < 30
    client = MlflowClient(mlflow_store)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])  # no run was created


# -- the sweep's logic, with a stand-in trainer -------------------------------------------


@pytest.mark.floors
def test_a_search_runs_its_trials_once_each_and_reports_the_best(tmp_path: Path, mlflow_store: str) -> None:
    experiment = load_experiment(str(search_file(tmp_path, trials=6)))
    trainer = stand_in()
    sweep = engine.run_experiment(experiment, engine.SweepOptions(), trainer)
    numbers = [n for n, _ in trainer.calls]
    assert len(numbers) == 6 == len(set(numbers))
    assert [o.state for o in sweep.outcomes] == ["COMPLETE"] * 6
    assert sweep.pending == 0
    assert len(sweep.study.trials) == 6  # no trial beyond the six slots
    lrs = [c.lr for _, c in trainer.calls]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    assert len(set(lrs)) == 6
    assert sweep.study.best_value == max(lrs)
    client = MlflowClient(mlflow_store)
    (parent,) = client.search_runs([client.get_experiment_by_name("search").experiment_id])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlflow.note.content"] == "a tiny search"
    assert parent.data.params["best.trial"] == str(sweep.study.best_trial.number)
    assert float(parent.data.params["best.lr"]) == pytest.approx(max(lrs))
    assert parent.data.metrics["best_val_acc"] == pytest.approx(max(lrs))
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")} >= {
        "sweep/search.yaml",
        "sweep/trials.csv",
        "sweep/param_importances.png",
        "sweep/parallel_coordinate.png",
    }


def test_a_failed_trial_is_recorded_and_the_others_go_on_unless_fail_fast(tmp_path: Path, mlflow_store: str) -> None:
    experiment = load_experiment(str(search_file(tmp_path, trials=4)))
    trainer = stand_in(fail_on={1})
    sweep = engine.run_experiment(experiment, engine.SweepOptions(name="goes-on"), trainer)
    assert len(trainer.calls) == 4
    assert sweep.count("FAIL") == 1
    assert sweep.count("COMPLETE") == 3
    client = MlflowClient(mlflow_store)
    parents = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("search").experiment_id])}
    assert parents["goes-on"].info.status == "FAILED"
    assert parents["goes-on"].data.metrics["sweep.failed"] == 1

    trainer = stand_in(fail_on={1})
    with pytest.raises(RuntimeError, match="trial 1 failed"):
        engine.run_experiment(experiment, engine.SweepOptions(name="stops", fail_fast=True), trainer)
    assert [n for n, _ in trainer.calls] == [0, 1]  # today's behaviour: the sweep stops at the first failure
    parent = next(
        r
        for r in client.search_runs([client.get_experiment_by_name("search").experiment_id])
        if r.info.run_name == "stops"
    )
    assert parent.info.status == "FAILED"


def test_a_stopped_sweep_continues_where_it_was_and_a_finished_one_is_not_run_again(
    tmp_path: Path, mlflow_store: str
) -> None:
    experiment = load_experiment(str(search_file(tmp_path, trials=4)))
    with pytest.raises(KeyboardInterrupt):
        engine.run_experiment(experiment, engine.SweepOptions(), stand_in(interrupt_on={2}))
    client = MlflowClient(mlflow_store)
    (parent,) = client.search_runs([client.get_experiment_by_name("search").experiment_id])
    assert parent.info.status == "KILLED"
    trainer = stand_in()
    sweep = engine.run_experiment(experiment, engine.SweepOptions(), trainer)  # the same command again
    assert sweep.name == "search"
    assert len(trainer.calls) == 2
    assert sweep.count("COMPLETE") == 4
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    again = engine.run_experiment(experiment, engine.SweepOptions(), stand_in())
    assert again.name == "search-2"  # a finished sweep's command starts a new sweep


@pytest.mark.parametrize("shared", [False, True], ids=["plain-loop", "study"])
def test_seeds_and_grids_run_every_combination_once(tmp_path: Path, mlflow_store: str, shared: bool) -> None:
    file = write(
        tmp_path / "grid.yaml",
        {"defaults": {**TINY, "model": "resnet_tiny_scratch"}, "seeds": [0, 1], "grid": {"lr": [0.001, 0.01, 0.1]}},
    )
    experiment = load_experiment(str(file))
    trainer = stand_in()
    sweep = engine.run_experiment(experiment, engine.SweepOptions(name="shared" if shared else None), trainer)
    assert sorted((c.lr, c.seed) for _, c in trainer.calls) == sorted(
        (lr, s) for lr in (0.001, 0.01, 0.1) for s in (0, 1)
    )  # every combination once
    assert [o.state for o in sweep.outcomes] == ["COMPLETE"] * 6
    assert (sweep.study is not None) == shared  # one machine, one worker: a plain loop, no study
    if shared:
        assert len(sweep.study.trials) == 6


def test_a_second_plan_under_one_sweep_name_is_refused_before_any_trial(
    tmp_path: Path, mlflow_store: str, capsys: pytest.CaptureFixture
) -> None:
    engine.run_experiment(
        load_experiment(str(search_file(tmp_path, trials=2))), engine.SweepOptions(name="one-plan"), stand_in()
    )
    other = search_file(tmp_path, trials=3)  # another plan: one trial more
    assert main(["run", str(other), "--sweep", "one-plan"]) == 2
    assert "sweep 'one-plan' runs another experiment" in one_error_line(capsys.readouterr().err)
    study = optuna.load_study(study_name="one-plan", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(study.trials) == 2  # nothing enqueued or run for the other plan


def logging_stand_in(uri: str, interrupt_on: set[int] = frozenset()):
    """A trainer that trains nothing but records a FINISHED child run under the sweep's parent, as training would."""
    calls: list = []

    def train_fn(config, extras=None):
        number = int(extras.tags["zoo.trial"])
        calls.append(number)
        if number in interrupt_on:
            raise KeyboardInterrupt
        client = MlflowClient(uri)
        experiment_id = client.get_experiment_by_name(config.experiment).experiment_id
        tags = {"mlflow.parentRunId": config.parent_run, **{k: str(v) for k, v in extras.tags.items()}}
        run = client.create_run(experiment_id, tags=tags, run_name=config.default_run_name())
        params = [Param(k, v) for k, v in config_params(config.to_dict()).items()]
        client.log_batch(run.info.run_id, metrics=[Metric("best_val_acc", 0.5, 0, 0)], params=params)
        client.set_terminated(run.info.run_id, "FINISHED")
        return SimpleNamespace(run_id=run.info.run_id, metrics={"best_val_acc": 0.5})

    train_fn.calls = calls
    return train_fn


def test_a_stopped_list_continues_from_its_parents_children_and_a_finished_one_starts_anew(
    tmp_path: Path, mlflow_store: str
) -> None:
    experiment = load_experiment(str(write(tmp_path / "seeds.yaml", {"defaults": TINY, "seeds": [0, 1, 2]})))
    with pytest.raises(KeyboardInterrupt):
        engine.run_experiment(experiment, train_fn=logging_stand_in(mlflow_store, interrupt_on={1}))
    client = MlflowClient(mlflow_store)
    (parent,) = client.search_runs([client.get_experiment_by_name("seeds").experiment_id], "tags.`zoo.role` = 'sweep'")
    assert parent.info.status == "KILLED"
    trainer = logging_stand_in(mlflow_store)
    sweep = engine.run_experiment(experiment, train_fn=trainer)  # the same command again
    assert (sweep.name, sweep.parent_run_id, sweep.study) == ("seeds", parent.info.run_id, None)
    assert trainer.calls == [1, 2]  # only the runs not ended yet
    assert sorted(o.number for o in sweep.outcomes) == [0, 1, 2]
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    again = engine.run_experiment(experiment, train_fn=logging_stand_in(mlflow_store))
    assert again.name == "seeds-2"  # a finished sweep's command starts a new sweep
    assert again.parent_run_id != parent.info.run_id
    options = engine.SweepOptions(storage=f"sqlite:///{tmp_path / 'shared.db'}")
    shared = engine.run_experiment(experiment, options, logging_stand_in(mlflow_store))
    assert shared.name == "seeds-3"  # a study never takes a plain loop's name (nor a loop a study's parent)


def test_a_worker_that_asks_after_the_last_slot_runs_nothing(tmp_path: Path) -> None:
    experiment = load_experiment(str(search_file(tmp_path, trials=1, defaults={**TINY, "tracking": False})))
    storage = studies.open_storage("memory", None)
    study, name, _ = studies.open_study(experiment, storage, None, 0, lambda name: None, lambda name: False)
    study.ask()  # another worker took the one slot
    trainer = stand_in()
    sweep = engine.Sweep(name, experiment, None, study=study)
    studies.work(study, engine.trial_objective(sweep, engine.SweepOptions(), trainer), fail_fast=False)
    assert trainer.calls == []
    assert studies.ended(study) == ([], 1)  # the slot is still the other worker's


def test_a_worker_that_finds_the_study_being_set_up_joins_it_under_its_name(tmp_path: Path) -> None:
    # Workers start together: one may find the study its peer created a moment ago, before the plan
    # and the parent are written. It waits for them and joins, instead of starting NAME-2.
    file = write(tmp_path / "seeds.yaml", {"defaults": {**TINY, "tracking": False}, "seeds": [0, 1]})
    experiment = load_experiment(str(file))
    storage = studies.open_storage("memory", None)
    creating = optuna.create_study(storage=storage, study_name="seeds")  # the peer, mid-way

    def finish_setting_up() -> None:
        time.sleep(1.0)
        creating.set_user_attr(STUDY_PLAN_ATTR, fingerprint(experiment))
        creating.set_user_attr(STUDY_PARENT_ATTR, "")

    peer = threading.Thread(target=finish_setting_up)
    peer.start()
    second_parent = lambda name: pytest.fail("a second parent")  # noqa: E731
    _, name, parent = studies.open_study(experiment, storage, None, 1, second_parent, lambda name: False)
    peer.join()
    assert (name, parent) == ("seeds", None)
    assert optuna.study.get_all_study_names(storage) == ["seeds"]


# -- real training: MLflow's records --------------------------------------------------------


def test_children_under_one_parent_carry_their_trial_and_values_and_a_pruned_one_is_not_failed(
    tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    prune_after_one = optuna.pruners.ThresholdPruner(lower=0.99, n_warmup_steps=1)  # prunes at epoch 2, surely
    calls = {"n": 0}
    original = studies.pruner_for

    def one_pruned(experiment):
        calls["n"] += 1
        return prune_after_one if calls["n"] == 1 else original(experiment)

    monkeypatch.setattr(studies, "pruner_for", one_pruned)
    assert main(["run", str(search_file(tmp_path, trials=2))]) == 0
    out = capsys.readouterr().out
    assert "best trial" not in out or "sweep 'search'" in out
    client = MlflowClient(mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("search").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("zoo.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2
    assert sorted(r.data.tags["zoo.trial"] for r in children) == ["0", "1"]
    for child in children:
        assert child.info.status == "KILLED"
        assert child.data.tags["mlflow.zoo.trial_state"] == "PRUNED"
        assert "pruned by the median pruner after epoch 2" in child.data.tags["zoo.ended_early"]
        assert child.info.run_name.startswith(f"t{child.data.tags['zoo.trial']} lr=")
        assert 1e-4 <= float(child.data.params["lr"]) <= 1e-1
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")] == [1, 2]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["sweep.pruned"] == 2
    assert main(["compare", "--sweep", "search", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert {row["status"] for row in listed} == {"PRUNED"}


@pytest.mark.slow
@pytest.mark.floors
def test_a_list_on_two_workers_with_every_default_runs_each_run_once_under_one_parent(
    tmp_path: Path, zoo_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a user types: no --sweep, no store named, an empty folder. The two workers start at once
    # and race to the study: they must share one sweep (not the file's name and NAME-2), and the
    # runs folder must be made before the study storage in it opens.
    here = tmp_path / "work"
    here.mkdir()
    write(here / "seeds.yaml", {"defaults": TINY, "seeds": [0, 1, 2, 3]})
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, log = finish(
        [*ZOO, "run", "seeds.yaml", "--workers", "2"], tmp_path / "w2.log", cwd=here, ZOO_CACHE_DIR=str(zoo_cache_dir)
    )
    assert code == 0, log[-3000:]
    assert sorted(p.name for p in here.iterdir()) == ["seeds.yaml", "zoo-runs"]
    client = MlflowClient(f"sqlite:///{here / 'zoo-runs' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("seeds").experiment_id])
    parents = [r for r in runs if r.data.tags.get("zoo.role") == "sweep"]
    assert [(p.info.run_name, p.info.status) for p in parents] == [("seeds", "FINISHED")]
    children = [r for r in runs if r.data.tags.get("zoo.role") is None]
    assert sorted(r.data.params["seed"] for r in children) == ["0", "1", "2", "3"]  # each run once
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}


def test_two_workers_share_the_cores_and_a_killed_worker_is_retried(
    tmp_path: Path, mlflow_store: str, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = search_file(tmp_path, trials=4, pruner="none")  # every trial runs to its end: statuses are certain
    longer = write(
        tmp_path / "longer.yaml",
        {**yaml.safe_load(file.read_text()), "defaults": {**TINY, "limit_per_class": 40, "epochs": 3}},
    )
    # Trials of a few seconds: the second worker, starting up, still finds some left. The store and the
    # storage are given as options, which reach worker 1 through its environment (never its command line):
    # were they lost on the way, its trials would land in $MLFLOW_TRACKING_URI's store and another study.
    given = tmp_path / "given"
    store = copy_mlflow_store(mlflow_template, given)
    options = ["--tracking-uri", store, "--storage", f"sqlite:///{given / 'optuna.db'}"]
    code, log = finish(
        [*ZOO, "run", str(longer), "--workers", "2", "--sweep", "pair", *options],
        tmp_path / "pair.log",
        ZOO_HEARTBEAT_S="0.5",
    )
    assert code == 0, log[-3000:]
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("longer").experiment_id])
    children = [r for r in runs if r.data.tags.get("zoo.sweep") == "pair" and r.data.tags.get("zoo.role") is None]
    assert sorted(r.data.tags["zoo.trial"] for r in children) == ["0", "1", "2", "3"]  # four trials, none twice
    workers = {r.data.tags["mlflow.zoo.worker"].split()[1] for r in children}
    assert len(workers) == 2
    assert {r.data.tags["mlflow.zoo.torch_threads"] for r in children} == {"1"}
    assert not (tmp_path / "optuna.db").exists()  # no worker fell back to the default storage
    client = MlflowClient(mlflow_store)

    # A worker killed in its first trial: the next run of the command retries it and marks its run KILLED.
    marker = tmp_path / "struck"
    with running(
        [*FAULTS, "run", str(file), "--sweep", "killed"],
        tmp_path / "killed.log",
        ZOO_FAULT="pause:mid-epoch:0",
        ZOO_FAULT_MARKER=str(marker),
        ZOO_HEARTBEAT_S="0.5",
    ) as process:
        wait_for(marker.exists, process, tmp_path / "killed.log")
    time.sleep(3)  # past the study's grace period (two heartbeats of 0.5 s, at least 2 s)
    monkeypatch.setenv("ZOO_HEARTBEAT_S", "0.5")
    assert main(["run", str(file), "--sweep", "killed"]) == 0  # the next command, in-process: no signal in it
    runs = [
        r
        for r in client.search_runs([client.get_experiment_by_name("search").experiment_id])
        if r.data.tags.get("zoo.sweep") == "killed" and r.data.tags.get("zoo.role") is None
    ]
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4 + ["KILLED"]
    dead = next(r for r in runs if r.info.status == "KILLED")
    assert "its sweep worker died" in dead.data.tags["zoo.killed_reason"]
    retried = [r for r in runs if r.info.status == "FINISHED" and r.data.params["lr"] == dead.data.params["lr"]]
    assert len(retried) == 1, "the dead worker's trial was not run again with its values (once)"
    assert len({r.data.params["lr"] for r in runs}) == 4  # the continued sweep drew new values, not the old ones
