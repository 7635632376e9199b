"""`zoo compare --group-by`: intervals, pairwise verdicts, marks and budgets, on runs logged straight into MLflow."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from scipy import stats

from experiments.analysis.grouping import compare_groups
from experiments.cli import main

Budget = dict[str, float]
EQUAL: Budget = {"epochs": 3, "optimizer_steps": 30, "images_seen": 960}


def log_runs(
    uri: str,
    experiment: str,
    model: str,
    test_acc: list[float],
    budget: Budget = EQUAL,
    curve: list[list[float]] | None = None,
    epoch_time_s: float | None = None,
    more: dict[str, list[float | None]] | None = None,
) -> None:
    """One FINISHED run per value, seeds 0, 1, ..., as a training run records them (no training).

    ``test_loss`` is ``1 - test_acc`` unless ``more`` gives it; ``more`` gives other summary
    metrics, one value per run (``None``: that run does not have the metric).
    """
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    for seed, acc in enumerate(test_acc):
        run = client.create_run(experiment_id, run_name=f"s{seed}-{model}")
        params = {"model": model, "seed": str(seed), "image_size": "32", "epochs": str(int(budget["epochs"]))}
        summary: dict[str, float | None] = {"test_acc": acc, "test_loss": 1 - acc}
        summary.update({name: values[seed] for name, values in (more or {}).items()})
        metrics = [Metric(k, v, 0, 0) for k, v in summary.items() if v is not None]
        metrics += [Metric(k, v, 0, 0) for k, v in budget.items()]
        for epoch, value in enumerate(curve[seed] if curve else [], start=1):
            metrics.append(Metric("val_acc", value, 0, epoch))
            if epoch_time_s is not None:
                metrics.append(Metric("epoch_time_s", epoch_time_s, 0, epoch))
        client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
        client.set_terminated(run.info.run_id, "FINISHED")


def compare_json(capsys: pytest.CaptureFixture, *args: str) -> list[dict] | dict[str, list[dict]]:
    capsys.readouterr()
    assert main(["compare", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def grouped_json(capsys: pytest.CaptureFixture, *args: str) -> dict[str, list[dict]]:
    """``zoo compare --group-by ... --format json``: one shape, groups and pairs, with or without --vs."""
    both = compare_json(capsys, *args)
    assert isinstance(both, dict)
    assert set(both) == {"groups", "pairs"}
    return both


def groups_json(capsys: pytest.CaptureFixture, *args: str) -> list[dict]:
    return grouped_json(capsys, *args)["groups"]


def pairs_json(capsys: pytest.CaptureFixture, *args: str) -> list[dict]:
    return grouped_json(capsys, *args)["pairs"]


@pytest.mark.floors
def test_a_clear_lead_is_marked_and_every_figure_is_scipys(mlflow_store: str, capsys) -> None:
    good, bad = [0.90, 0.91, 0.92], [0.80, 0.82, 0.81]
    log_runs(mlflow_store, "lead", "big", good)
    log_runs(mlflow_store, "lead", "small", bad)
    rows = {r["model"]: r for r in groups_json(capsys, "--experiment", "lead", "--group-by", "model")}
    assert rows["big"]["best"] == "*"
    assert rows["small"]["best"] == ""
    low, high = stats.t.interval(0.95, 2, loc=0.91, scale=stats.sem(good))
    assert (rows["big"]["test_acc ci_low"], rows["big"]["test_acc ci_high"]) == pytest.approx((low, high))
    assert rows["big"]["runs"] == 3

    pairs = pairs_json(capsys, "--experiment", "lead", "--group-by", "model", "--vs", "small")
    assert [p["metric"] for p in pairs] == ["test_acc", "test_loss"]  # the runs have no best_val_acc
    pair = pairs[0]
    welch = stats.ttest_ind(bad, good, equal_var=False)
    assert (pair["a"], pair["b"]) == ("small", "big")
    assert pair["p"] == pytest.approx(welch.pvalue)
    assert pair["df"] == pytest.approx(welch.df)
    assert (pair["ci_low"], pair["ci_high"]) == pytest.approx(tuple(welch.confidence_interval()))
    assert pair["prob_a_beats_b"] == 0.0
    assert pair["paired_n"] == 3  # both ran seeds 0, 1, 2
    assert pair["verdict"].startswith("big better than small (p = ")
    assert float(pair["verdict"].split("p = ")[1].rstrip(")")) == pytest.approx(welch.pvalue, rel=0.05)

    capsys.readouterr()
    assert main(["compare", "--experiment", "lead", "--group-by", "model"]) == 0
    out = capsys.readouterr().out
    assert "test_acc mean (95% CI)" in out
    assert f"big vs small (test_acc): {pair['verdict']}" in out
    assert "* best: its lead over every other group is significant" in out


def test_three_seeds_of_noise_are_a_tie_not_a_star(mlflow_store: str, capsys) -> None:
    log_runs(mlflow_store, "tie", "resnet50", [0.61, 0.66, 0.63])
    log_runs(mlflow_store, "tie", "resnet101", [0.62, 0.60, 0.65])
    rows = groups_json(capsys, "--experiment", "tie", "--group-by", "model")
    assert [r["best"] for r in rows] == ["=", "="]
    capsys.readouterr()
    assert main(["compare", "--experiment", "tie", "--group-by", "model"]) == 0
    out = capsys.readouterr().out
    assert "no detectable difference: about " in out
    assert "runs per group would detect a difference of 0.01 at 80% power" in out


def holm_by_hand(raw: list[float]) -> list[float]:
    """Holm's adjustment of two p-values: the smaller times 2, the larger at least that."""
    low = min(1.0, 2 * min(raw))
    return [low if p == min(raw) else max(low, p) for p in raw]


def test_three_groups_are_holm_adjusted_per_metric_and_lower_is_better(mlflow_store: str, capsys) -> None:
    val = {"a": [0.70, 0.75, 0.80], "b": [0.72, 0.74, 0.79], "c": [0.50, 0.52, 0.51]}
    log_runs(mlflow_store, "three", "a", [0.90, 0.91, 0.92], more={"best_val_acc": val["a"]})
    log_runs(mlflow_store, "three", "b", [0.80, 0.83, 0.86], more={"best_val_acc": val["b"]})
    log_runs(mlflow_store, "three", "c", [0.60, 0.61, 0.62], more={"best_val_acc": val["c"]})
    groups, pairs = compare_groups("three", ["model"], metric="test_loss", uri=mlflow_store)
    assert list(groups["group"]) == ["a", "b", "c"]  # the smallest loss first
    assert list(pairs["metric"]) == ["test_loss"] * 2 + ["test_acc"] * 2 + ["best_val_acc"] * 2
    assert list(pairs["a"]) == ["a"] * 6  # the best on the sort metric against each other, on every metric
    assert list(pairs["b"]) == ["b", "c"] * 3
    losses = {"a": [0.10, 0.09, 0.08], "b": [0.2, 0.17, 0.14], "c": [0.4, 0.39, 0.38]}
    accs = {"a": [0.90, 0.91, 0.92], "b": [0.80, 0.83, 0.86], "c": [0.60, 0.61, 0.62]}
    for metric, values in (("test_loss", losses), ("test_acc", accs), ("best_val_acc", val)):
        rows = pairs[pairs["metric"] == metric]
        raw = [stats.ttest_ind(values["a"], values[b], equal_var=False).pvalue for b in ("b", "c")]
        assert list(rows["p"]) == pytest.approx(raw), metric
        assert list(rows["p_adjusted"]) == pytest.approx(holm_by_hand(raw)), metric  # two pairs, not six
    # lower is better for the loss: a's smaller losses win, and every run of a beats every run of b and c
    assert all(v.startswith("a better than") for v in pairs[pairs["metric"] != "best_val_acc"]["verdict"])
    assert list(pairs[pairs["metric"] == "test_loss"]["prob_a_beats_b"]) == [1.0, 1.0]
    assert list(pairs[pairs["metric"] == "best_val_acc"]["outcome"]) == ["no difference", "better"]
    assert groups.loc[0, "mark"] == "*"
    capsys.readouterr()
    assert main(["compare", "--experiment", "three", "--group-by", "model"]) == 0
    out = capsys.readouterr().out
    assert out.count("p-values Holm-adjusted over each metric's 2 pairs") == 1


def test_two_metrics_can_get_two_different_verdicts(mlflow_store: str, capsys) -> None:
    acc_a, acc_b = [0.90, 0.91, 0.92], [0.80, 0.82, 0.81]
    val_a, val_b = [0.80, 0.85, 0.90], [0.82, 0.86, 0.83]
    log_runs(mlflow_store, "two", "a", acc_a, more={"best_val_acc": val_a})
    log_runs(mlflow_store, "two", "b", acc_b, more={"best_val_acc": val_b})
    pairs = pairs_json(capsys, "--experiment", "two", "--group-by", "model", "--vs", "b")
    assert [p["metric"] for p in pairs] == ["test_acc", "best_val_acc", "test_loss"]  # the sort metric first
    by_metric = {p["metric"]: p for p in pairs}
    figures = {"test_acc": (acc_b, acc_a), "best_val_acc": (val_b, val_a)}
    figures["test_loss"] = ([1 - v for v in acc_b], [1 - v for v in acc_a])
    for metric, (b, a) in figures.items():
        pair = by_metric[metric]
        assert (pair["a"], pair["b"]) == ("b", "a"), metric
        welch = stats.ttest_ind(b, a, equal_var=False)
        assert pair["diff"] == pytest.approx(sum(b) / 3 - sum(a) / 3), metric
        assert (pair["ci_low"], pair["ci_high"]) == pytest.approx(tuple(welch.confidence_interval())), metric
        assert pair["df"] == pytest.approx(welch.df), metric
        assert pair["p"] == pytest.approx(welch.pvalue), metric
        assert "p_adjusted" not in pair  # one pair per metric: nothing to adjust
        assert pair["paired_p"] == pytest.approx(stats.ttest_rel(b, a).pvalue), metric
        lower = metric == "test_loss"
        u = stats.mannwhitneyu([-v for v in b] if lower else b, [-v for v in a] if lower else a).statistic
        assert pair["prob_a_beats_b"] == pytest.approx(u / 9), metric
    assert by_metric["test_acc"]["outcome"] == "worse"
    assert by_metric["test_loss"]["outcome"] == "worse"  # b's losses are larger: worse, not better
    assert by_metric["test_loss"]["prob_a_beats_b"] == 0.0
    assert by_metric["best_val_acc"]["outcome"] == "no difference"

    capsys.readouterr()
    assert main(["compare", "--experiment", "two", "--group-by", "model"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "marks on test_acc: * best: its lead over every other group is significant" in out
    assert lines[lines.index("") + 3].split()[:3] == ["metric", "a", "b"]  # the pairwise table, after the legend
    assert any(line.startswith("a vs b (test_acc): a better than b (p = ") for line in lines)
    assert any(line.startswith("a vs b (best_val_acc): no detectable difference") for line in lines)
    assert any(line.startswith("a vs b (test_loss): a better than b (p = ") for line in lines)
    assert "Holm" not in out  # one pair per metric

    with_csv = main(
        ["compare", "--experiment", "two", "--group-by", "model", "--vs", "a", "--format", "csv", "--table", "pairs"]
    )
    assert with_csv == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.startswith("metric,a,b,")
    assert [r.split(",")[:3] for r in rows] == [[m, "a", "b"] for m in ("test_acc", "best_val_acc", "test_loss")]


def test_metric_narrows_the_pairs_and_ranks_by_the_first(mlflow_store: str, capsys) -> None:
    log_runs(mlflow_store, "narrow", "a", [0.90, 0.91, 0.92], more={"best_val_acc": [0.5, 0.6, 0.7]})
    log_runs(mlflow_store, "narrow", "b", [0.80, 0.82, 0.81], more={"best_val_acc": [0.5, 0.6, 0.7]})
    pairs = pairs_json(capsys, "--experiment", "narrow", "--group-by", "model", "--vs", "a", "--metric", "test_loss")
    assert [p["metric"] for p in pairs] == ["test_loss"]
    rows = groups_json(capsys, "--experiment", "narrow", "--group-by", "model", "--metric", "test_loss")
    assert [r["model"] for r in rows] == ["a", "b"]  # ranked by test_loss, lowest first
    pairs = pairs_json(
        capsys, "--experiment", "narrow", "--group-by", "model", "--vs", "a", "--sort", "best_val_acc",
        "--metric", "test_loss",
    )  # fmt: skip
    assert [p["metric"] for p in pairs] == ["best_val_acc", "test_loss"]  # --sort's metric always, first
    assert pairs[0]["verdict"] == "no detectable difference: the means are equal"


def test_a_metric_missing_in_some_runs_is_one_note(mlflow_store: str, capsys) -> None:
    log_runs(mlflow_store, "missing", "a", [0.90, 0.91, 0.92], more={"best_val_acc": [0.8, 0.81, 0.82]})
    log_runs(mlflow_store, "missing", "b", [0.80, 0.82, 0.81], more={"best_val_acc": [0.7, None, 0.72]})
    capsys.readouterr()
    assert main(["compare", "--experiment", "missing", "--group-by", "model"]) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [line for line in lines if line.startswith("  note: ")]
    assert notes == ["  note: 1 run(s) of b with no value (NaN or missing) left out"]
    assert lines[lines.index(notes[0]) - 1].startswith("a vs b (best_val_acc): ")  # under its metric's verdict
    pairs = pairs_json(capsys, "--experiment", "missing", "--group-by", "model", "--vs", "b")
    best_val = next(p for p in pairs if p["metric"] == "best_val_acc")
    assert (best_val["n_a"], best_val["n_b"]) == (2, 3)
    assert best_val["p"] == pytest.approx(stats.ttest_ind([0.7, 0.72], [0.8, 0.81, 0.82], equal_var=False).pvalue)


def test_one_run_per_group_is_cannot_tell(mlflow_store: str, capsys) -> None:
    log_runs(mlflow_store, "single", "a", [0.9])
    log_runs(mlflow_store, "single", "b", [0.5])
    capsys.readouterr()
    assert main(["compare", "--experiment", "single", "--group-by", "model"]) == 0
    out = capsys.readouterr().out
    assert "a vs b (test_acc): cannot tell: fewer than two runs (a has 1, b has 1)" in out
    rows = groups_json(capsys, "--experiment", "single", "--group-by", "model")
    assert [r["best"] for r in rows] == ["=", "?"]


def test_unequal_budgets_are_confounded_and_at_epoch_compares_fairly(mlflow_store: str, capsys) -> None:
    curves_101 = [[0.50, 0.60], [0.52, 0.61], [0.51, 0.62]]
    curves_50 = [
        [0.30, 0.40, 0.50, 0.55, 0.60, 0.70],
        [0.31, 0.41, 0.52, 0.56, 0.61, 0.71],
        [0.32, 0.39, 0.51, 0.57, 0.59, 0.69],
    ]
    log_runs(
        mlflow_store, "notebook", "resnet101", [0.60, 0.61, 0.62], {"epochs": 2, "optimizer_steps": 20}, curves_101
    )
    log_runs(mlflow_store, "notebook", "resnet50", [0.70, 0.71, 0.69], {"epochs": 6, "optimizer_steps": 60}, curves_50)
    capsys.readouterr()
    assert main(["compare", "--experiment", "notebook", "--group-by", "model"]) == 0
    out = capsys.readouterr().out
    assert "confounded: the budgets differ (epochs 6 vs 2, steps 60 vs 20)" in out
    rows = groups_json(capsys, "--experiment", "notebook", "--group-by", "model")
    assert "*" not in [r["best"] for r in rows]

    (pair,) = pairs_json(
        capsys, "--experiment", "notebook", "--group-by", "model", "--at", "epoch", "2", "--vs", "resnet101"
    )
    at_2_101, at_2_50 = [c[1] for c in curves_101], [c[1] for c in curves_50]
    assert pair["mean_a"] == pytest.approx(sum(at_2_101) / 3)
    assert pair["p"] == pytest.approx(stats.ttest_ind(at_2_101, at_2_50, equal_var=False).pvalue)
    assert pair["verdict"].startswith("resnet101 better than resnet50")

    capsys.readouterr()
    assert main(["compare", "--experiment", "notebook", "--group-by", "model", "--at", "epoch", "4"]) == 0
    out = capsys.readouterr().out
    assert "cannot tell: fewer than two runs (resnet50 has 3, resnet101 has 0)" in out
    assert "3 run(s) of resnet101 with no value (NaN or missing) left out" in out


def test_at_equal_flops_or_time_each_run_at_its_last_epoch_within(mlflow_store: str, capsys) -> None:
    deep = [[0.50, 0.60], [0.52, 0.61], [0.51, 0.62]]  # 3e12 FLOPs and 30 s an epoch
    shallow = [
        [0.30, 0.40, 0.50, 0.55, 0.60, 0.70],
        [0.31, 0.41, 0.52, 0.56, 0.61, 0.71],
        [0.3, 0.4, 0.5, 0.6, 0.6, 0.7],
    ]
    log_runs(mlflow_store, "equal", "deep", [0.6] * 3, {"epochs": 2, "train_flops": 6e12}, deep, epoch_time_s=30)
    log_runs(mlflow_store, "equal", "shallow", [0.7] * 3, {"epochs": 6, "train_flops": 6e12}, shallow, epoch_time_s=10)
    for at, deep_epoch, shallow_epoch in ((["flops", "6e12"], 2, 6), (["flops", "5e12"], 1, 5), (["time", "35"], 1, 3)):
        (pair,) = pairs_json(capsys, "--experiment", "equal", "--group-by", "model", "--at", *at, "--vs", "deep")
        assert pair["mean_a"] == pytest.approx(sum(c[deep_epoch - 1] for c in deep) / 3), at
        assert pair["mean_b"] == pytest.approx(sum(c[shallow_epoch - 1] for c in shallow) / 3), at
        assert pair["outcome"] != "confounded"
    capsys.readouterr()
    assert main(["compare", "--experiment", "equal", "--group-by", "model", "--at", "time", "60"]) == 0
    assert "(val_acc at 60 s of training): " in capsys.readouterr().out


def test_nan_runs_are_counted_and_left_out(mlflow_store: str, capsys) -> None:
    log_runs(mlflow_store, "nan", "a", [0.90, 0.91, math.nan])  # its test_loss is NaN too
    log_runs(mlflow_store, "nan", "b", [0.80, 0.81, 0.82])
    capsys.readouterr()
    assert main(["compare", "--experiment", "nan", "--group-by", "model"]) == 0
    out = capsys.readouterr().out
    assert out.count("note: 1 run(s) of a with no value (NaN or missing) left out") == 2  # test_acc, test_loss
    pairs = pairs_json(capsys, "--experiment", "nan", "--group-by", "model", "--vs", "a")
    for pair, b in zip(pairs, ([0.80, 0.81, 0.82], [0.2, 0.19, 0.18]), strict=True):
        a = [0.90, 0.91] if pair["metric"] == "test_acc" else [0.1, 0.09]
        assert pair["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_runs_of_one_model_get_a_hint_without_group_by(mlflow_store: str, capsys) -> None:
    log_runs(mlflow_store, "hint", "a", [0.90, 0.91])
    log_runs(mlflow_store, "hint", "b", [0.80, 0.81])
    capsys.readouterr()
    assert main(["compare", "--experiment", "hint"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("best  run")
    assert sum(line.startswith("*") for line in lines) == 1  # plain compare keeps its best row
    assert lines[-1] == (
        "several runs per model (seeds): add --group-by model for each group's mean and 95% CI and a verdict "
        "on their differences"
    )
    assert len(compare_json(capsys, "--experiment", "hint")) == 4  # csv and json stay data
    log_runs(mlflow_store, "once", "a", [0.90])
    log_runs(mlflow_store, "once", "b", [0.80])
    capsys.readouterr()
    assert main(["compare", "--experiment", "once"]) == 0
    assert "--group-by" not in capsys.readouterr().out  # one run per model: nothing to group


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--group-by", "model", "--vs", "resnet18"], "--vs resnet18: no such group; groups: a, b"),
        (["--group-by", "model", "--sort", "top5"], "no run has the metric 'top5'; metrics: "),
        (["--group-by", "model", "--at", "step", "3"], "--at step 3: give --at epoch N, --at flops F or --at time"),
        (["--group-by", "model", "--at", "epoch", "1.5"], "--at epoch 1.5: give a whole number of epochs"),
        (["--group-by", "model", "--at", "flops", "-1"], "with a positive amount"),
        (["--group-by", "model", "--metric", "top1"], "no run has the metric 'top1'; metrics: "),
        (["--vs", "a"], "--vs compares groups; add --group-by PARAM"),
        (["--metric", "test_loss"], "--metric compares groups; add --group-by PARAM"),
    ],
)
def test_bad_input_is_one_line(mlflow_store: str, capsys, args: list[str], message: str) -> None:
    log_runs(mlflow_store, "bad", "a", [0.9, 0.8])
    log_runs(mlflow_store, "bad", "b", [0.7, 0.6])
    capsys.readouterr()
    assert main(["compare", "--experiment", "bad", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_plots_draw_the_interval_and_every_run(mlflow_store: str, tmp_path: Path, capsys) -> None:
    log_runs(mlflow_store, "curves", "a", [0.9, 0.8], curve=[[0.5, 0.6], [0.55, 0.65]])
    log_runs(mlflow_store, "curves", "b", [0.7, 0.6], curve=[[0.4, 0.5], [0.45, 0.55]])
    png = tmp_path / "g.png"
    capsys.readouterr()
    assert main(["compare", "--experiment", "curves", "--group-by", "model", "--plot", str(png)]) == 0
    assert f"runs of each group (test_acc) written to {tmp_path / 'g-runs.png'}" in capsys.readouterr().out
    for written in (png, tmp_path / "g-runs.png"):
        assert written.read_bytes()[:4] == b"\x89PNG"
        assert written.stat().st_size > 10_000


@pytest.mark.floors
def test_expected_max_of_a_sweeps_trials(mlflow_store: str, capsys) -> None:
    client = MlflowClient(mlflow_store)
    experiment_id = client.create_experiment("search")
    parent = client.create_run(experiment_id, run_name="lrs", tags={"zoo.role": "sweep", "zoo.sweep": "lrs"})
    client.log_param(parent.info.run_id, "sweep.sampler", "random")
    for value in (0.5, 0.7, 0.6):
        child = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent.info.run_id})
        client.log_metric(child.info.run_id, "best_val_acc", value)
        client.set_terminated(child.info.run_id, "FINISHED")
    capsys.readouterr()
    assert main(["compare", "--sweep", "lrs", "--expected-max", "--format", "json"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[out.index("[") :])
    assert [r["trials"] for r in rows] == [1, 2, 3]
    assert rows[0]["expected max best_val_acc"] == pytest.approx(0.6)
    assert rows[2]["expected max best_val_acc"] == pytest.approx(0.5 / 27 + 0.6 * 7 / 27 + 0.7 * 19 / 27)
    assert main(["compare", "--sweep", "lrs", "--expected-max"]) == 0
    assert "valid for random search only" in capsys.readouterr().out
    assert main(["compare", "--expected-max"]) == 2
    assert "--expected-max reads one search's trials; add --sweep NAME" in capsys.readouterr().err


def test_a_random_search_logs_its_expected_maximum(mlflow_store: str) -> None:
    import optuna  # only this test builds a study

    from experiments.sweeps.report import log_expected_max
    from experiments.tracking.runs import TrackedRun

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for value in (0.5, 0.7, 0.6):
        study.add_trial(optuna.trial.create_trial(value=value))
    client = MlflowClient(mlflow_store)
    parent = client.create_run(client.create_experiment("random"))
    curve = log_expected_max(TrackedRun(parent.info.run_id, mlflow_store), study, "val_acc", "maximize")
    history = sorted(client.get_metric_history(parent.info.run_id, "expected_best_val_acc"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(n, pytest.approx(v)) for n, v in enumerate(curve, start=1)]
    assert curve[0] == pytest.approx(0.6)
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "sweep")] == ["sweep/expected_max.png"]


DIGITS = {  # the figures of a real `zoo run digits` (3 seeds each), as its runs record them
    "resnet_tiny_scratch": ([0.9331, 0.9192, 0.9025], [0.9024, 0.9199, 0.892], [0.4712, 0.5683, 0.5154]),
    "plain_tiny_scratch": ([0.9164, 0.9081, 0.8134], [0.899, 0.885, 0.7979], [0.6048, 0.595, 1.036]),
}


def log_digits(uri: str) -> None:
    for model, (test_acc, best_val_acc, test_loss) in DIGITS.items():
        more = {"best_val_acc": best_val_acc, "test_loss": test_loss, "train_time_s": [12.75, 17.25, 14.98]}
        log_runs(uri, "digits", model, test_acc, more=more)


def test_the_group_table_fits_a_terminal_and_wide_or_columns_give_the_rest(mlflow_store: str, capsys) -> None:
    """By default each quality metric's mean (95% CI) and the runs: the two digits groups in under 120 characters."""
    log_digits(mlflow_store)
    capsys.readouterr()
    assert main(["compare", "--experiment", "digits", "--group-by", "model"]) == 0
    table = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert max(len(line) for line in table) < 120, "\n".join(table)
    header = table[0].split("  ")
    assert [h.strip() for h in header if h.strip()] == [
        "best", "model", "runs", "test_acc mean (95% CI)", "best_val_acc mean (95% CI)", "test_loss mean (95% CI)",
    ]  # fmt: skip
    mean = sum(DIGITS["resnet_tiny_scratch"][0]) / 3
    low, high = stats.t.interval(0.95, 2, loc=mean, scale=stats.sem(DIGITS["resnet_tiny_scratch"][0]))
    assert f"{mean:.4g} ({low:.4g}..{high:.4g})" in table[2]  # the best group first

    assert main(["compare", "--experiment", "digits", "--group-by", "model", "--wide"]) == 0
    wide = capsys.readouterr().out.split("\n\n")[0].splitlines()[0]
    for column in ("test_acc std", "test_acc 95% CI", "epochs mean", "train_time_s mean", "train_time_s 95% CI"):
        assert column in wide
    assert main(["compare", "--experiment", "digits", "--group-by", "model", "--columns", "train_time_s,test_acc"]) == 0
    chosen = capsys.readouterr().out.splitlines()[0].split("runs", 1)[1]
    assert chosen.split() == ["train_time_s", "mean", "(95%", "CI)", "test_acc", "mean", "(95%", "CI)"]


def test_the_json_holds_groups_and_pairs_with_or_without_vs_and_the_csv_one_table(mlflow_store: str, capsys) -> None:
    log_digits(mlflow_store)
    plain = grouped_json(capsys, "--experiment", "digits", "--group-by", "model")
    against = grouped_json(capsys, "--experiment", "digits", "--group-by", "model", "--vs", "plain_tiny_scratch")
    assert plain["groups"] == against["groups"]  # the same groups; the pairs follow --vs
    assert [p["metric"] for p in plain["pairs"]] == ["test_acc", "best_val_acc", "test_loss"]
    assert {(p["a"], p["b"]) for p in plain["pairs"]} == {("resnet_tiny_scratch", "plain_tiny_scratch")}
    assert {(p["a"], p["b"]) for p in against["pairs"]} == {("plain_tiny_scratch", "resnet_tiny_scratch")}
    assert {"test_acc mean", "test_acc std", "test_acc ci_low", "epochs mean"} <= plain["groups"][0].keys()

    base = ["compare", "--experiment", "digits", "--group-by", "model", "--format", "csv"]
    for extra, first in (([], "best,model,runs,"), (["--vs", "plain_tiny_scratch"], "best,model,runs,")):
        capsys.readouterr()
        assert main([*base, *extra]) == 0
        assert capsys.readouterr().out.startswith(first)  # groups by default, with or without --vs
    assert main([*base, "--table", "pairs"]) == 0
    assert capsys.readouterr().out.startswith("metric,a,b,")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--columns", "test_acc"], "--columns compares groups; add --group-by PARAM"),
        (["--group-by", "model", "--columns", "nope"], "--columns nope: no run has that metric; metrics: "),
        (["--group-by", "model", "--table", "pairs"], "--table picks the CSV file's table; --format table shows both"),
    ],
)
def test_bad_table_choices_are_one_line(mlflow_store: str, capsys, args: list[str], message: str) -> None:
    log_digits(mlflow_store)
    capsys.readouterr()
    assert main(["compare", "--experiment", "digits", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"zoo: error: {message}"), captured.err
    assert captured.err.count("\n") == 1
