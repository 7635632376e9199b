"""Seeds and grids: expansion, one parent run with a child per combination, grouped statistics and plots."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import copy_mlflow_store
from mlflow.tracking import MlflowClient

from experiments.cli import main
from experiments.config.errors import ConfigError
from experiments.config.experiment import SHIPPED_DIR, load_experiment

QUALITY = ("test_acc", "best_val_acc", "test_loss")
"""The group table's columns by default (each a mean and its 95% CI), the sort metric first."""

TINY = {
    "data": "digits",
    "preset": "cifar",
    "augment": False,
    "limit_per_class": 5,
    "epochs": 1,
    "batch_size": 32,
    "workers": "0",
    "progress_bar": False,
    "log_model": False,
    "log_grad_norms": True,
}


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# -- expansion (no training) -------------------------------------------------------


def test_seeds_and_grid_expand_every_run(tmp_path: Path) -> None:
    file = write(
        tmp_path / "sw.yaml",
        {
            "defaults": {"model": "resnet_tiny_scratch"},
            "seeds": [0, 1, 2],
            "grid": {"lr": [0.001, 0.01], "batch_size": [16, 32]},
            "runs": [{"stem": "cifar"}, {"stem": "imagenet"}],
        },
    )
    experiment = load_experiment(str(file))
    assert experiment.is_sweep
    assert len(experiment.runs) == 2 * 2 * 2 * 3
    combos = {(c.stem, c.lr, c.batch_size, c.seed) for c in experiment.runs}
    assert len(combos) == 24  # every combination once
    first = experiment.runs[0]
    assert first.run_name == "lr=0.001-batch_size=16-s0-resnet_tiny_scratch"
    assert first.experiment == "sw"


def test_command_line_values_win_over_seeds_and_grid(tmp_path: Path) -> None:
    file = write(
        tmp_path / "sw.yaml",
        {"defaults": {"model": "resnet_tiny_scratch"}, "seeds": [0, 1], "grid": {"lr": [0.001, 0.01]}},
    )
    experiment = load_experiment(str(file), seed=7, lr=0.5)
    assert [(c.seed, c.lr) for c in experiment.runs] == [(7, 0.5)]


def test_a_plain_file_is_not_a_sweep() -> None:
    assert not load_experiment("quick").is_sweep


def test_the_readme_command_compares_two_small_models_over_three_seeds() -> None:
    digits = load_experiment("digits")
    assert digits.seeds == [0, 1, 2]
    assert {c.model for c in digits.runs} == {"resnet_tiny_scratch", "plain_tiny_scratch"}
    assert len({(c.epochs, c.limit_per_class, c.batch_size) for c in digits.runs}) == 1  # equal budgets


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"seeds": "0,1"}, "'seeds:' must be a non-empty list"),
        ({"seeds": [0, 0]}, "repeats a seed"),
        ({"grid": {"seed": [0, 1]}}, "use 'seeds:' for seeds"),
        ({"grid": {"lrr": [0.1]}}, "grid key 'lrr' is not a config field"),
        ({"grid": {"lr": []}}, "non-empty list"),
        ({"grid": {"lr": [0.1]}, "runs": [{"lr": 0.2}]}, "sets 'lr', which the grid varies"),
        ({"grid": {"lr": ["fast"]}}, "lr: 'fast' is not a valid number"),
    ],
)
def test_bad_sweep_keys_are_one_line_errors(tmp_path: Path, data: dict, message: str, capsys) -> None:
    file = write(tmp_path / "bad.yaml", {"defaults": {"model": "resnet_tiny_scratch"}, "runs": [{}], **data})
    with pytest.raises(ConfigError, match=message):
        load_experiment(str(file))
    assert main(["run", str(file), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error:")
    assert err.count("\n") == 1


def test_shipped_research_files_are_three_seed_sweeps() -> None:
    residual = load_experiment("residual")
    assert residual.seeds == [0, 1, 2]
    assert all(c.log_grad_norms for c in residual.runs)
    assert {c.model for c in residual.runs} == {
        "resnet50_scratch",
        "plain50_scratch",
        "resnet101_scratch",
        "plain101_scratch",
    }
    depth = load_experiment("depth")
    assert depth.seeds == [0, 1, 2]
    assert {c.model for c in depth.runs} == {"resnet50_scratch", "resnet101_scratch"}
    assert len({c.epochs for c in depth.runs}) == 1  # equal epochs: the fair comparison
    assert load_experiment("residual_quick").is_sweep


def test_every_shipped_experiment_says_its_precision() -> None:
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        assert "precision" in yaml.safe_load(path.read_text())["defaults"], path.name
    assert {c.precision for c in load_experiment("seed").runs} == {"32-true"}  # the notebook's arithmetic
    assert {c.precision for c in load_experiment("quick").runs} == {"auto"}


# -- a real sweep ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path, zoo_cache_dir: Path):
    """Two models (a ResNet and its plain twin) x two seeds, under one parent run."""
    folder = tmp_path_factory.mktemp("sweep")
    uri = copy_mlflow_store(mlflow_template, folder)
    file = write(
        folder / "twins.yaml",
        {
            "defaults": TINY,
            "seeds": [0, 1],
            "runs": [{"model": "resnet_tiny_scratch"}, {"model": "plain_tiny_scratch"}],
        },
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("ZOO_CACHE_DIR", str(zoo_cache_dir))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["run", str(file)]) == 0
        (folder / "run.out").write_text(printed.getvalue())  # what `zoo run` printed, for the tests to read
        yield folder, uri, MlflowClient(uri)


def test_one_parent_run_with_a_child_per_combination(sweep) -> None:
    _, _, client = sweep
    experiment = client.get_experiment_by_name("twins")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("zoo.role") == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "twins"
    assert json.loads(parent.data.params["sweep.seeds"]) == [0, 1]
    assert parent.data.params["sweep.trials"] == "4"
    children = [r for r in runs if r is not parent and r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4
    assert all(r.info.status == "FINISHED" for r in children)
    assert {(r.data.params["model"], r.data.params["seed"]) for r in children} == {
        (m, s) for m in ("resnet_tiny_scratch", "plain_tiny_scratch") for s in ("0", "1")
    }
    assert {r.info.run_name for r in children} >= {"s0-resnet_tiny_scratch", "s1-plain_tiny_scratch"}


def test_the_parent_holds_the_pairwise_verdicts_per_metric(sweep) -> None:
    _, _, client = sweep
    experiment = client.get_experiment_by_name("twins")
    (parent,) = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("zoo.role") == "sweep"]
    table = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/sweep/pairs.csv")
    header, *rows = table.splitlines()
    assert header.startswith("metric,a,b,")
    assert header.endswith("outcome,verdict")
    cells = [row.split(",") for row in rows]
    assert [c[0] for c in cells] == ["test_acc", "best_val_acc", "test_loss"]  # the sort metric first
    a, b = cells[0][1:3]
    assert {a, b} == {"resnet_tiny_scratch", "plain_tiny_scratch"}
    assert all(c[1:3] == [a, b] for c in cells)  # the same pair on every metric
    metrics = parent.data.metrics
    for metric in ("test_acc", "best_val_acc", "test_loss"):
        assert 0 <= metrics[f"vs/{b}/{metric}/p"] <= 1, metric
        assert 0 <= metrics[f"vs/{b}/{metric}/prob_a_beats_b"] <= 1, metric
    for figure in ("diff", "p", "prob_a_beats_b"):  # the sort metric's figures keep their first names
        assert metrics[f"vs/{b}/{figure}"] == metrics[f"vs/{b}/test_acc/{figure}"], figure
    assert len([k for k in metrics if k.startswith("vs/") and k.endswith("/p")]) == 4


def test_zoo_run_judges_the_groups_not_the_luckiest_seed(sweep) -> None:
    folder, _, _ = sweep
    lines = (folder / "run.out").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["run", "model"])
    runs = lines[header + 2 : lines.index("", header)]
    assert len(runs) == 4
    assert not any(line.startswith("*") for line in runs)  # no run crowned: two seeds of each model
    assert any(line.startswith("marks on test_acc: ") for line in lines)
    assert any(line.split()[:3] == ["metric", "a", "b"] for line in lines)  # the pairwise table
    start = next(i for i, line in enumerate(lines) if line.startswith("best  model  "))
    groups = lines[start : lines.index("", start)]  # the group table, then the hint to --wide
    assert groups[0].split("  runs  ")[1].split() == [w for m in QUALITY for w in (m, "mean", "(95%", "CI)")]
    assert len(groups) == 5
    assert max(len(line) for line in groups) < 120, "\n".join(groups)  # fits a terminal
    assert groups[-1] == "std, epochs and times too: zoo compare --experiment twins --group-by model --wide"
    for metric in QUALITY:
        assert sum(f"_tiny_scratch ({metric}): " in line for line in lines) == 1, metric


def test_group_by_statistics_equal_mlflow_search_runs(sweep, capsys) -> None:
    _, uri, _ = sweep
    capsys.readouterr()
    assert main(["compare", "--experiment", "twins", "--group-by", "model", "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)["groups"]}
    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs(experiment_names=["twins"])
    df = df[df["tags.zoo.role"].isna()]  # the training runs, not the parent
    for metric in ("test_acc", "best_val_acc", "test_loss", "train_time_s"):
        by_hand = df.groupby("params.model")[f"metrics.{metric}"].agg(["mean", "std", "count"])
        for model, stats in by_hand.iterrows():
            assert rows[model][f"{metric} mean"] == pytest.approx(stats["mean"], rel=1e-9, abs=1e-12)
            assert rows[model][f"{metric} std"] == pytest.approx(stats["std"], rel=1e-9, abs=1e-12)
            assert rows[model]["runs"] == stats["count"] == 2
    # `*` only for a significant lead; two seeds of a tiny model are more often a tie (`=` on both)
    assert sorted(r["best"] for r in rows.values()) in (["", "*"], ["=", "="])


def test_group_by_table_and_plots(sweep, capsys) -> None:
    folder, _, _ = sweep
    curves, grads = folder / "groups.png", folder / "grads.png"
    assert (
        main(
            [
                "compare",
                "--experiment",
                "twins",
                "--group-by",
                "params.model",
                "--group-by",
                "seed",
                "--plot",
                str(curves),
                "--plot-grad-norms",
                str(grads),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "test_acc mean" in out
    groups = out.split("\n\n")[0]  # the group table; the pairs and verdicts follow
    assert groups.count("resnet_tiny_scratch") == 2
    assert "cannot tell: fewer than two runs" in out  # one run per (model, seed)
    for png in (curves, grads):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000


def test_compare_leaves_the_parent_out_unless_asked(sweep, capsys) -> None:
    capsys.readouterr()
    assert main(["compare", "--experiment", "twins", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4
    assert main(["compare", "--experiment", "twins", "--format", "json", "--all-runs"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5


def test_group_by_an_unknown_param_is_a_one_line_error(sweep, capsys) -> None:
    capsys.readouterr()
    assert main(["compare", "--experiment", "twins", "--group-by", "modle"]) == 2
    err = capsys.readouterr().err
    assert "--group-by modle: no run has that param" in err
    assert err.count("\n") == 1


def test_with_fail_fast_a_failed_child_fails_the_parent_and_stops_the_sweep(mlflow_store: str, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from experiments.sweeps.engine import SweepOptions, run_experiment

    file = write(tmp_path / "boom.yaml", {"defaults": {"model": "resnet_tiny_scratch"}, "seeds": [0, 1, 2]})
    trained = []

    def train_fn(config, extras=None):
        assert config.parent_run  # every child knows its parent
        if config.seed == 1:
            raise RuntimeError("child failed")
        trained.append(config.seed)
        return SimpleNamespace(run_id=None, metrics={"best_val_acc": 0.5})

    with pytest.raises(RuntimeError, match="child failed"):
        run_experiment(load_experiment(str(file)), SweepOptions(fail_fast=True), train_fn)
    assert trained == [0]
    client = MlflowClient(mlflow_store)
    (parent,) = client.search_runs([client.get_experiment_by_name("boom").experiment_id])
    assert parent.data.tags["zoo.role"] == "sweep"
    assert parent.info.status == "FAILED"


def test_without_tracking_a_sweep_has_no_parent(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from experiments.sweeps.engine import run_experiment

    file = write(
        tmp_path / "off.yaml", {"defaults": {"model": "resnet_tiny_scratch", "tracking": False}, "seeds": [0, 1]}
    )
    sweep = run_experiment(
        load_experiment(str(file)),
        train_fn=lambda c, extras=None: SimpleNamespace(run_id=None, metrics={"best_val_acc": 0.5}),
    )
    assert sweep.parent_run_id is None
    assert sweep.study is None  # a plain loop: no study, in memory or on disk
    assert [o.state for o in sweep.outcomes] == ["COMPLETE", "COMPLETE"]
