"""The browser harness itself: MLflow 3.17's UI, in headless Chromium, shows what we log.

One store, one server, one browser; checks the selectors later UI tests rely on:
the run page's logged model, the runs table's Dataset and Models columns and its
dataset filter, the compare page's "Show diff only", nested runs, the run's source
fields, and which tab an experiment opens on.  Screenshots land in the test's tmp folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser import (
    about_run,
    about_run_field,
    compare_rows,
    expand_parent_run,
    expect_heading,
    experiment_url,
    mlflow_ui,
    new_ui_page,
    open_compare_runs,
    open_run_page,
    open_runs_table,
    open_ui,
    run_metrics,
    runs_table_cell,
    runs_table_name_links,
    screenshot,
    select_dataset_filter,
    set_diff_only,
    show_runs_table_columns,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _make_store(root: Path) -> dict:
    """A small store with MLflow's Python API: what the checks below look for."""
    import mlflow
    import numpy as np
    import pandas as pd
    import torch
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    try:

        def experiment(name: str) -> str:
            eid = client.create_experiment(name, artifact_location=(root / "artifacts" / name).as_uri())
            client.set_experiment_tag(eid, "mlflow.experimentKind", "custom_model_development")
            return eid

        ids: dict = {}
        # a. + b. + f.: a run with a logged model, two datasets and source tags.
        ids["main"] = main = experiment("harness-main")
        with mlflow.start_run(experiment_id=main, run_name="model-run") as run:
            mlflow.log_params({"lr": 0.1, "epochs": 2})
            mlflow.log_metric("test_acc", 0.5)
            train = mlflow.data.from_numpy(
                np.zeros((4, 12), dtype=np.float32),
                targets=np.zeros(4, dtype=np.int64),
                name="CIFAR-10-images-master",
                source="/data/CIFAR-10-images-master.zip",
            )
            mlflow.log_input(train, context="train")
            val = mlflow.data.from_pandas(
                pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}),
                targets="y",
                name="CIFAR-10-images-master-val",
                source="/data/CIFAR-10-images-master.zip",
            )
            mlflow.log_input(val, context="eval")
            mlflow.set_tags(
                {
                    "mlflow.source.name": "experiments/cli.py",
                    "mlflow.source.type": "LOCAL",
                    "mlflow.user": "zoo-tester",
                    "mlflow.source.git.commit": COMMIT,
                }
            )
            model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
            # pickle: 3.17's default "pt2" format needs an input example; fixed requirements
            # skip the seconds-long requirement inference.
            info = mlflow.pytorch.log_model(
                model, name="resnet_tiny_scratch", serialization_format="pickle", pip_requirements=["torch"]
            )
        ids["model_run"], ids["model_id"], ids["train_digest"] = run.info.run_id, info.model_id, train.digest
        with mlflow.start_run(experiment_id=main, run_name="plain-run") as run:
            mlflow.log_metric("test_acc", 0.4)
        ids["plain_run"] = run.info.run_id

        # c.: two runs, equal params but optimizer and lr.
        ids["compare"] = cmp = experiment("harness-compare")
        ids["compare_runs"] = []
        for opt, lr in (("sgd", 0.1), ("adam", 0.001)):
            with mlflow.start_run(experiment_id=cmp, run_name=f"cmp-{opt}") as run:
                mlflow.log_params(
                    {"batch_size": 64, "epochs": 3, "seed": 0, "model": "resnet_tiny", "optimizer": opt, "lr": lr}
                )
                mlflow.log_metric("test_acc", 0.4 if opt == "sgd" else 0.5)
            ids["compare_runs"].append(run.info.run_id)

        # d.: a parent with three children and grouped means.
        ids["parent_exp"] = par = experiment("harness-parent")
        with mlflow.start_run(experiment_id=par, run_name="sweep-parent") as parent:
            for seed in range(3):
                with mlflow.start_run(experiment_id=par, run_name=f"seed-{seed}", nested=True):
                    mlflow.log_param("seed", seed)
                    mlflow.log_metric("test_acc/cifar10", 0.5 + 0.01 * seed)
            mlflow.log_metrics({"test_acc_mean/cifar10": 0.51, "test_acc_std/cifar10": 0.008})
        ids["parent_run"] = parent.info.run_id
        return ids
    finally:
        mlflow.set_tracking_uri(None)


@pytest.mark.slow
def test_mlflow_ui_in_a_real_browser(tmp_path: Path, browser_page, chromium_browser) -> None:
    from playwright.sync_api import expect

    ids = _make_store(tmp_path)
    shots = tmp_path / "screens"
    page = browser_page
    with mlflow_ui(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "ui") as base:
        # a. the run page lists its logged model.
        open_run_page(page, base, ids["main"], ids["model_run"])
        expect_heading(page, "model-run")
        models = expect_heading(page, "Logged models (1)")
        model_link = models.locator("xpath=following::*[@role='grid'][1]").get_by_role(
            "link", name="resnet_tiny_scratch"
        )
        expect(model_link).to_be_visible()
        # the model's page lies in the run's own experiment
        assert model_link.get_attribute("href") == f"#/experiments/{ids['main']}/models/{ids['model_id']}"
        assert run_metrics(page) == {"test_acc": "0.5"}
        # f. source, user and commit, from the mlflow.source.* and mlflow.user tags.
        expect(about_run_field(page, "Created by").get_by_role("link")).to_have_text("zoo-tester")
        expect(about_run_field(page, "Source")).to_contain_text("cli.py")  # the file name only
        expect(about_run_field(page, "Source").get_by_role("status")).to_have_text(COMMIT[:7])
        about = about_run(page)
        assert about["Created by"] == "zoo-tester", about
        assert about["Source"] == f"cli.py {COMMIT[:7]}", about
        page.get_by_role("status").filter(has_text=COMMIT[:7]).click()  # the full hash, in a popover
        expect(page.get_by_role("dialog").filter(has_text=COMMIT)).to_be_visible()
        screenshot(page, shots / "a_run_page.png")

        # a./b. the runs table: Models and Dataset columns, and the dataset filter.
        open_runs_table(page, base, ids["main"])
        models_cell = runs_table_cell(page, ids["model_run"], "Models")
        expect(models_cell.get_by_role("link", name="resnet_tiny_scratch")).to_be_visible()
        expect(runs_table_cell(page, ids["plain_run"], "Models")).to_have_text("-")
        dataset_cell = runs_table_cell(page, ids["model_run"], "Dataset")
        train_name = f"CIFAR-10-images-master ({ids['train_digest']})"
        expect(dataset_cell.get_by_role("button", name=train_name)).to_be_visible()
        expect(dataset_cell.get_by_role("status").first).to_have_text("train")
        expect(runs_table_cell(page, ids["plain_run"], "Dataset")).to_have_text("-")
        screenshot(page, shots / "b_runs_table.png")
        expect(runs_table_name_links(page)).to_have_text(["plain-run", "model-run"])  # newest first
        select_dataset_filter(page, train_name)
        expect(page.locator(f'[role=row][row-id="{ids["plain_run"]}"]')).to_have_count(0)
        expect(runs_table_name_links(page)).to_have_text(["model-run"])
        screenshot(page, shots / "b_dataset_filter.png")

        # c. compare two runs, "Show diff only".
        open_compare_runs(page, base, ids["compare_runs"], [ids["compare"]])
        assert sorted(compare_rows(page)) == ["batch_size", "epochs", "lr", "model", "optimizer", "seed"]
        set_diff_only(page, "Parameters")
        expect(page.get_by_role("rowheader", name="batch_size", exact=True)).to_have_count(0)
        assert compare_rows(page) == {"lr": ["0.1", "0.001"], "optimizer": ["sgd", "adam"]}
        screenshot(page, shots / "c_compare_diff_only.png")

        # d. the parent: children behind the expander, means in the metrics table.
        open_runs_table(page, base, ids["parent_exp"])
        expect(runs_table_name_links(page)).to_have_text(["sweep-parent"])  # children collapsed
        expand_parent_run(page, "sweep-parent")
        expect(runs_table_name_links(page)).to_have_text(["sweep-parent", "seed-2", "seed-1", "seed-0"])
        show_runs_table_columns(page, "test_acc_mean/cifar10")  # metric columns are hidden by default
        expect(runs_table_cell(page, ids["parent_run"], "test_acc_mean/cifar10")).to_have_text("0.51")
        screenshot(page, shots / "d_nested_runs.png")
        open_run_page(page, base, ids["parent_exp"], ids["parent_run"])
        assert run_metrics(page) == {"test_acc_mean/cifar10": "0.51", "test_acc_std/cifar10": "0.008"}
        expect(about_run_field(page, "Child runs").get_by_role("link")).to_have_text(["seed-2", "seed-1", "seed-0"])

        # e. the landing tab: MLflow's global workflow switch, not the experiment tag.
        bare = experiment_url(base, ids["main"], tab=None)
        open_ui(page, bare)  # "Model training" preset in localStorage: the runs table
        expect_heading(page, "Runs")
        expect(page.get_by_role("button", name="Model training")).to_be_visible()
        genai = new_ui_page(chromium_browser, workflow_type=None)  # MLflow's default: GenAI
        try:
            open_ui(genai, bare)
            # A GenAI page although the experiment's kind is custom_model_development: its "Overview"
            # (MLflow 3.17), or, for an experiment without traces, the traces' set-up page (3.18).
            expect_heading(genai, re.compile(r"^(Overview|Send your first trace to MLflow.*)$"))
            screenshot(genai, shots / "e_default_genai_overview.png")
            open_ui(genai, f"{bare}?workflowType=machine_learning")
            expect_heading(genai, "Runs")
            screenshot(genai, shots / "e_workflow_query_runs.png")
        finally:
            genai.context.close()
    assert len(list(shots.glob("*.png"))) == 7
