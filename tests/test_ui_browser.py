"""What a researcher looks for in MLflow's UI, on runs the zoo made, through ``zoo ui``, in a real browser.

The store holds two runs of ``zoo train`` (the same but for ``lr``) and a small
seeded sweep of ``zoo run`` (``lr`` x two seeds), all on the offline digits data.
``zoo ui`` serves it (a second process: the server is the point); headless Chromium
opens it as a new user would, with nothing in the browser's storage, and checks:

- the experiment opens on its runs table, not on MLflow's GenAI overview, and no
  page opens MLflow's Assistant panel by itself;
- a run's page lists one tag of the zoo's, its model: the plumbing is out of the way;
- a run's page lists its logged model, named after the registry model, and shows
  its source, user and commit; the runs table shows its datasets and its model;
- the compare view of the two runs, with "Show diff only", lists ``lr`` alone;
- the sweep's parent shows its description and the grouped means, and the child
  names show in full where they differ.

Screenshots go to the test's folder; with ``ZOO_SCREENSHOTS=docs/img`` they replace
the documentation's pictures (``docs/tracking.md`` shows them).
"""

from __future__ import annotations

import os
import re
import statistics
import sys
from pathlib import Path

import mlflow
import pytest

from experiments.cli import main

from browser import (
    about_run_field,
    compare_rows,
    expand_parent_run,
    expect_heading,
    new_ui_page,
    open_compare_runs,
    open_run_page,
    open_runs_table,
    open_ui,
    run_metrics,
    runs_table_cell,
    runs_table_name_links,
    screenshot,
    set_diff_only,
    show_runs_table_columns,
    zoo_ui,
)

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ["ZOO_SCREENSHOTS"]).resolve() if os.environ.get("ZOO_SCREENSHOTS") else None
"""Where the screenshots go instead of the test's folder (resolved before the test changes directory)."""

SWEEP = """\
description: Two learning rates of the tiny ResNet, two seeds each, on the offline digits data.
defaults:
  model: resnet_tiny_scratch
  data: digits
  preset: cifar
  limit_per_class: 10
  epochs: 2
seeds: [0, 1]
grid:
  lr: [0.001, 0.003]
"""

TRAIN = [
    "train",
    "resnet_tiny_scratch",
    "--data",
    "digits",
    "--preset",
    "cifar",
    "--limit-per-class",
    "10",
    "--epochs",
    "2",
    "--experiment",
    "ui-runs",
]


def build_store(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Two runs and a seeded sweep, made with the zoo's own commands (in this process)."""
    # MLflow's "Source" is sys.argv[0]: what a user's `zoo` command line gives it.
    monkeypatch.setattr(sys, "argv", [str(Path(sys.executable).with_name("zoo")), *sys.argv[1:]])
    for lr in ("0.001", "0.003"):
        assert main([*TRAIN, "--lr", lr]) == 0
    sweep_file = folder / "ui-sweep.yaml"
    sweep_file.write_text(SWEEP)
    assert main(["run", str(sweep_file)]) == 0
    client = mlflow.MlflowClient()
    runs_exp = client.get_experiment_by_name("ui-runs")
    sweep_exp = client.get_experiment_by_name("ui-sweep")
    runs = client.search_runs([runs_exp.experiment_id], order_by=["params.lr ASC"])
    sweep_runs = client.search_runs([sweep_exp.experiment_id])
    parent = next(r for r in sweep_runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in sweep_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 2
    assert len(children) == 4
    return {
        "runs_exp": runs_exp.experiment_id,
        "runs": runs,
        "sweep_exp": sweep_exp.experiment_id,
        "parent": parent,
        "children": children,
    }


ASSISTANT_OPEN = '[data-component-id="mlflow.assistant.chat_panel.close"]'
"""The close button of MLflow's Assistant side panel: on the page while the panel is open."""


def run_page_tags(page):
    """The "Tags" section of a run's overview (its heading and the tags it lists)."""
    return page.get_by_role("heading", name="Tags", exact=True).locator("xpath=..")


def visible_prefix(page, name: str) -> str:
    """The part of a run-name link the name column shows (the rest is cut with an ellipsis)."""
    link = runs_table_name_links(page).filter(has_text=name).first
    return link.evaluate("""a => {
        const cell = a.closest('[role=gridcell]').getBoundingClientRect();
        const text = a.firstChild && a.firstChild.nodeType === 3 ? a.firstChild : a.querySelector('*').firstChild;
        const range = document.createRange();
        let shown = 0;
        for (let i = 1; i <= text.length; i++) {
            range.setStart(text, 0); range.setEnd(text, i);
            const limit = Math.min(cell.right, a.getBoundingClientRect().right) + 0.5;
            if (range.getBoundingClientRect().right > limit) break;
            shown = i;
        }
        return text.textContent.slice(0, shown);
    }""")


def test_what_a_researcher_looks_for_in_the_ui(
    tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch, chromium_browser
) -> None:
    from playwright.sync_api import expect

    store = build_store(tmp_path, monkeypatch)
    shots = SHOTS or tmp_path / "screens"
    low, high = store["runs"]
    parent = store["parent"]
    page = new_ui_page(chromium_browser, workflow_type=None, quiet=False)  # a browser that never saw MLflow's UI
    try:
        with zoo_ui(mlflow_store, tmp_path / "ui") as base:
            # 7. From the experiments list, an experiment opens on its runs table.
            open_ui(page, f"{base}/#/experiments")
            page.get_by_role("link", name="ui-runs", exact=True).click()
            expect_heading(page, "Runs")
            expect(page.get_by_role("grid").first.locator("[role=row][row-id]").first).to_be_visible()

            # 1. + 6. The run page: its logged model, source, user and commit.
            open_run_page(page, base, store["runs_exp"], low.info.run_id)
            models = expect_heading(page, "Logged models (1)")
            model_link = models.locator("xpath=following::*[@role='grid'][1]").get_by_role(
                "link", name="resnet_tiny_scratch"
            )
            expect(model_link).to_be_visible()
            assert model_link.get_attribute("href").startswith(f"#/experiments/{store['runs_exp']}/models/m-")
            expect(about_run_field(page, "Source")).to_contain_text("zoo")
            expect(about_run_field(page, "Created by")).to_contain_text(low.data.tags["mlflow.user"])
            commit = low.data.tags.get("mlflow.source.git.commit")
            if commit:  # a git checkout (an installed wheel has none to show)
                expect(about_run_field(page, "Source").get_by_role("status")).to_have_text(commit[:7])
            metrics = run_metrics(page)
            assert float(metrics["best_val_acc"]) == pytest.approx(low.data.metrics["best_val_acc"], abs=1e-3)
            expect(run_page_tags(page)).to_contain_text("zoo.model")
            assert run_page_tags(page).inner_text().split() == ["Tags", "zoo.model", ":", "resnet_tiny_scratch"]
            expect(page.locator(ASSISTANT_OPEN)).to_have_count(0)  # MLflow's own app has it open by now
            screenshot(page, shots / "mlflow_run_page.png")

            # 1. + 2. The runs table: each run's datasets and its model.
            open_runs_table(page, base, store["runs_exp"])
            dataset = runs_table_cell(page, low.info.run_id, "Dataset")
            expect(dataset.get_by_role("button", name=re.compile(r"^digits \([0-9a-f]{8,}\)$")).first).to_be_visible()
            expect(dataset).to_contain_text("train")
            expect(
                runs_table_cell(page, high.info.run_id, "Models").get_by_role("link", name="resnet_tiny_scratch")
            ).to_be_visible()
            screenshot(page, shots / "mlflow_runs.png")

            # 3. The compare view with "Show diff only": the one field that differs.
            open_compare_runs(page, base, [low.info.run_id, high.info.run_id], [store["runs_exp"]])
            assert "lr" in compare_rows(page)
            assert len(compare_rows(page)) > 10
            set_diff_only(page, "Parameters")
            expect(page.get_by_role("rowheader", name="epochs", exact=True)).to_have_count(0)
            assert compare_rows(page) == {"lr": ["0.001", "0.003"]}
            screenshot(page, shots / "mlflow_compare.png")

            # 5. The sweep: full child names where they differ, grouped means on the parent.
            open_runs_table(page, base, store["sweep_exp"])
            expand_parent_run(page, parent.info.run_name)
            expect(runs_table_name_links(page)).to_have_count(5)
            names = [c.info.run_name for c in store["children"]]
            for name in names:
                differing = name.split("-resnet")[0]  # such as "lr=0.001-s0"
                assert visible_prefix(page, name).startswith(differing), (name, visible_prefix(page, name))
            label = "resnet_tiny_scratch_0.001"
            show_runs_table_columns(page, f"test_acc_mean/{label}")
            expected_mean = statistics.mean(
                c.data.metrics["test_acc"] for c in store["children"] if c.data.params["lr"] == "0.001"
            )
            cell = runs_table_cell(page, parent.info.run_id, f"test_acc_mean/{label}")
            expect(cell).not_to_have_text("-")
            assert float(cell.inner_text()) == pytest.approx(expected_mean, abs=1e-3)
            screenshot(page, shots / "mlflow_sweep.png")

            open_run_page(page, base, store["sweep_exp"], parent.info.run_id)
            expect(page.get_by_text("Two learning rates of the tiny ResNet").first).to_be_visible()
            metrics = run_metrics(page)
            for lr in ("0.001", "0.003"):
                for key in (
                    f"test_acc_mean/resnet_tiny_scratch_{lr}",
                    f"test_acc_std/resnet_tiny_scratch_{lr}",
                    f"runs/resnet_tiny_scratch_{lr}",
                ):
                    assert key in metrics, sorted(metrics)
            assert metrics["runs/resnet_tiny_scratch_0.001"] == "2"
            expect(about_run_field(page, "Child runs").get_by_role("link")).to_have_count(4)
            screenshot(page, shots / "mlflow_sweep_parent.png")
    finally:
        page.context.close()
