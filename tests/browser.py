"""Checking MLflow's web UI in a real headless browser.

Set-up (also what CI does; ``playwright install`` is *not* run, its downloads are
blocked): Debian's browser and the Python bindings::

    apt-get install -y chromium            # provides /usr/bin/chromium
    pip install playwright                 # into the project's venv

Pieces:

* :func:`mlflow_ui` -- a context manager that serves a store with ``mlflow ui`` on a
  free localhost port and yields its base URL; the server runs in its own process
  group, which is killed on exit.  :func:`zoo_ui` does the same with ``zoo ui``.
* the ``browser_page`` fixture -- a Playwright (sync API) Chromium page in a fresh
  context, with MLflow's "Model training" workflow preset and its popovers off;
  skipped when the browser or the package is missing.  It needs the session-wide
  ``chromium_browser`` fixture.  ``tests/conftest.py`` registers both, once: a
  fixture imported into two test modules would be two "session" fixtures, and
  Playwright's sync API refuses a second live session in one process.
* URL builders for MLflow 3.17's hash routes (:func:`experiment_url`,
  :func:`run_url`, :func:`compare_runs_url`, :func:`logged_model_url`), and helpers
  that wait for the single-page app to render and read what it shows
  (:func:`open_ui`, :func:`expect_heading`, :func:`open_runs_table`,
  :func:`runs_table_cell`, :func:`open_run_page`, :func:`run_metrics`,
  :func:`about_run_field`, :func:`open_compare_runs`, :func:`set_diff_only`,
  :func:`compare_rows`, :func:`screenshot`, ...).

Playwright's ``expect(...)`` waits 5 s unless told otherwise; the ``chromium_browser``
fixture raises that to :data:`RENDER_TIMEOUT_MS`.  ``page.screenshot(full_page=True)``
gets the viewport only: MLflow scrolls inside its main panel, not the document.

MLflow's CSS class names are generated; everything here finds elements by ARIA role,
visible text or MLflow's stable ``data-testid`` / ``data-component-id`` attributes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

if TYPE_CHECKING:  # the package is optional: only the fixtures need it
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``apt-get install chromium``); Playwright's own builds are not used."""

CHROMIUM_ARGS = (
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps phoning home; on a closed network its refused
    # connections then pile up and slow everything down.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

VIEWPORT = {"width": 1600, "height": 1000}

UI_START_TIMEOUT_S = 120.0
"""How long ``mlflow ui`` may take to answer ``/health`` (first start imports a lot)."""

RENDER_TIMEOUT_MS = 60_000
"""How long a page's content may take to appear (the SPA loads ~30 MB of JS once)."""

WORKFLOW_TYPE_KEY = "mlflow.workflowType_v1"
"""localStorage key of MLflow 3.17's global "GenAI | Model training" switch (JSON string).

It, not the experiment's ``mlflow.experimentKind`` tag, decides an experiment's
landing tab in 3.17: ``"genai"`` (the default) opens on the GenAI "Overview",
``"machine_learning"`` on the runs table.  A ``?workflowType=machine_learning``
query on the hash route overrides it for that page.
"""

QUIET_UI_STORAGE = {
    "mlflow.assistant.panelOpen_v1": "false",  # the "MLflow Assistant" side panel opens by itself
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "mlflow.detectIssues.guidanceShown_v1": "true",  # a modal popover over the GenAI overview
    "mlflow.flagForReview.guidanceShown_v1": "true",
}
"""localStorage entries that keep MLflow's first-visit popovers and panels away."""


# -- the MLflow UI server -----------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"(no log: {err})"


def _kill_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL what is left."""
    if proc.poll() is None or _group_alive(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
        # The workers may outlive the leader: kill the whole group regardless.
        deadline = time.monotonic() + grace_s
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def mlflow_ui(
    backend_store_uri: str,
    folder: str | os.PathLike,
    *,
    workers: int = 1,
    jobs: bool = False,
    timeout_s: float = UI_START_TIMEOUT_S,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Serve ``backend_store_uri`` with ``mlflow ui``; yield its base URL (no trailing ``/``).

    The server runs from ``folder`` (its default artifact folder lands there), writes
    its output to ``folder/mlflow-ui.log`` and runs in its own process group, which is
    terminated (SIGTERM, then SIGKILL) on exit, also when the body raises.  Fails with
    the log's tail if ``/health`` does not answer within ``timeout_s``.

    ``workers`` uvicorn workers (MLflow's default is 4; one is plenty for a test).
    ``jobs=False`` sets ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: the GenAI job
    runner (eight more processes) is not started.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "mlflow-ui.log"
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        backend_store_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *extra_args,
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    if not jobs:  # else the server also starts a job runner and 7 huey consumer processes
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.pop("MLFLOW_TRACKING_URI", None)
    with _serving(argv, env, folder, log, port, timeout_s) as base_url:
        yield base_url


@contextlib.contextmanager
def zoo_ui(tracking_uri: str, folder: str | os.PathLike, *, timeout_s: float = UI_START_TIMEOUT_S) -> Iterator[str]:
    """Run ``zoo ui`` (the user's command, the zoo's MLflow app) on a free port; yield its base URL.

    As :func:`mlflow_ui`: its own process group, killed on exit; output in
    ``folder/zoo-ui.log``. ``zoo ui`` runs MLflow's defaults (4 uvicorn workers, the
    job runner), as a user gets them.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "zoo-ui.log"
    zoo = Path(sys.executable).with_name("zoo")
    argv = [str(zoo), "ui", "--port", str(port), "--tracking-uri", tracking_uri]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with _serving(argv, env, folder, log, port, timeout_s) as base_url:
        yield base_url


@contextlib.contextmanager
def _serving(
    argv: list[str], env: dict[str, str], folder: Path, log: Path, port: int, timeout_s: float
) -> Iterator[str]:
    """Start a UI server in its own process group, wait for ``/health``, kill the group on exit."""
    base_url = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_health(base_url, proc, log, timeout_s)
        yield base_url
    finally:
        _kill_group(proc)


def _wait_for_health(base_url: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the UI server exited with {proc.returncode} before answering; log {log}:\n{_log_tail(log)}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the UI server did not answer {base_url}/health within {timeout_s:.0f} s; log {log}:\n{_log_tail(log)}"
            )
        time.sleep(0.5)


# -- the browser ------------------------------------------------------------------


def browser_missing() -> str | None:
    """Why no browser test can run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    return None


@contextlib.contextmanager
def launch_browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def ui_storage_script(workflow_type: str | None = "machine_learning", quiet: bool = True) -> str:
    """JavaScript that presets MLflow's localStorage before the app's own scripts run."""
    items = dict(QUIET_UI_STORAGE) if quiet else {}
    if workflow_type is not None:
        items[WORKFLOW_TYPE_KEY] = json.dumps(workflow_type)
    return f"for (const [k, v] of Object.entries({json.dumps(items)})) window.localStorage.setItem(k, v);"


def new_ui_page(
    browser: Browser,
    *,
    workflow_type: str | None = "machine_learning",
    quiet: bool = True,
    viewport: dict | None = None,
) -> Page:
    """A page in a fresh context (no shared storage), with MLflow's UI preferences preset.

    ``workflow_type``: ``"machine_learning"`` (experiments open on their runs table),
    ``"genai"``, or None for MLflow's own default (GenAI).  ``quiet`` closes the
    assistant panel and marks the guidance popovers as seen.  Close it with
    ``page.context.close()``.
    """
    context = browser.new_context(viewport=viewport or VIEWPORT)
    context.set_default_timeout(RENDER_TIMEOUT_MS)
    context.add_init_script(ui_storage_script(workflow_type, quiet))
    return context.new_page()


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    """One headless Chromium for the session (skips when it or playwright is missing)."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import expect

    # Playwright's expect() waits 5 s by default, whatever the page's own timeout.
    expect.set_options(timeout=RENDER_TIMEOUT_MS)
    with launch_browser() as browser:
        yield browser


@pytest.fixture
def browser_page(chromium_browser: Browser) -> Iterator[Page]:
    """A fresh page (own context) for the MLflow UI, workflow "Model training", popovers off."""
    page = new_ui_page(chromium_browser)
    try:
        yield page
    finally:
        page.context.close()


# -- MLflow 3.17's routes (hash router) ----------------------------------------------


def experiment_url(base_url: str, experiment_id: str, tab: str | None = "runs") -> str:
    """An experiment's page: tab ``runs`` (the runs table), ``models``, ``traces``, ...

    ``tab=None`` gives the bare experiment route: MLflow renders its default tab there
    (without changing the URL): the GenAI "Overview" or, in the "Model training"
    workflow, the runs table.
    """
    url = f"{base_url}/#/experiments/{experiment_id}"
    return f"{url}/{tab}" if tab else url


def run_url(base_url: str, experiment_id: str, run_id: str, tab: str | None = None) -> str:
    """A run's page: overview, or tab ``model-metrics``, ``system-metrics``, ``artifacts``, ..."""
    url = f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{url}/{tab}" if tab else url


def compare_runs_url(base_url: str, run_ids: Sequence[str], experiment_ids: Sequence[str]) -> str:
    """The compare-runs page of ``run_ids`` (JSON lists in the query, as MLflow writes them)."""
    runs = quote(json.dumps(list(run_ids), separators=(",", ":")))
    experiments = quote(json.dumps(list(experiment_ids), separators=(",", ":")))
    return f"{base_url}/#/compare-runs?runs={runs}&experiments={experiments}"


def logged_model_url(base_url: str, experiment_id: str, model_id: str) -> str:
    """A logged model's page (``m-...`` ids, MLflow 3)."""
    return f"{base_url}/#/experiments/{experiment_id}/models/{model_id}"


# -- waiting and reading ----------------------------------------------------------


def _expect():
    from playwright.sync_api import expect

    return expect


def wait_for_app(page: Page, timeout_ms: float = RENDER_TIMEOUT_MS) -> None:
    """Wait until MLflow's React app has rendered its main area."""
    _expect()(page.get_by_role("main").first).to_be_visible(timeout=timeout_ms)


def open_ui(page: Page, url: str, timeout_ms: float = RENDER_TIMEOUT_MS) -> Page:
    """Go to an MLflow UI URL and wait for the app to render."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    wait_for_app(page, timeout_ms)
    return page


def expect_text(
    scope: Page | Locator, text: str | re.Pattern, *, exact: bool = False, timeout_ms: float = RENDER_TIMEOUT_MS
) -> Locator:
    """Wait until (the first element with) ``text`` (str or compiled regex) is visible; return it."""
    loc = scope.get_by_text(text, exact=exact).first
    _expect()(loc).to_be_visible(timeout=timeout_ms)
    return loc


def expect_role(
    scope: Page | Locator,
    role: str,
    name: str | re.Pattern | None = None,
    *,
    exact: bool = False,
    timeout_ms: float = RENDER_TIMEOUT_MS,
    **kwargs: Any,
) -> Locator:
    """Wait until (the first element with) ARIA ``role`` and accessible ``name`` is visible; return it."""
    if name is not None:
        kwargs.update(name=name, exact=exact)
    loc = scope.get_by_role(role, **kwargs).first
    _expect()(loc).to_be_visible(timeout=timeout_ms)
    return loc


def expect_heading(
    page: Page, name: str | re.Pattern, *, exact: bool = True, timeout_ms: float = RENDER_TIMEOUT_MS
) -> Locator:
    """Wait for a heading.

    The page title (``"Runs"``, ``"Overview"``, a run's name) or a section (``"About this run"``,
    ``"Logged models (1)"``, ``"Metrics (2)"``, ...).
    """
    return expect_role(page, "heading", name, exact=exact, timeout_ms=timeout_ms)


def screenshot(page: Page, path: str | os.PathLike, *, full_page: bool = True) -> Path:
    """Save a PNG of the page to ``path`` (folders made as needed); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path


# -- the experiment's runs table (an ag-grid) -------------------------------------------


def open_runs_table(page: Page, base_url: str, experiment_id: str, timeout_ms: float = RENDER_TIMEOUT_MS) -> Locator:
    """Open an experiment's runs table; wait for its first row; return the grid."""
    open_ui(page, experiment_url(base_url, experiment_id, "runs"), timeout_ms)
    expect_heading(page, "Runs", timeout_ms=timeout_ms)
    grid = page.get_by_role("grid").first
    _expect()(grid.locator("[role=row][row-id]").first).to_be_visible(timeout=timeout_ms)
    return grid


def runs_table_cell(page: Page, run_id: str, column: str) -> Locator:
    """The runs table's cell of ``run_id`` under the column headed ``column``.

    The grid splits each run into a pinned-left row (checkbox, Run Name, Created) and a
    scrolling row (Dataset, Duration, Source, Models, metrics, ...); both carry
    ``row-id=<run id>``, and each cell the ``aria-colindex`` of its header.  Columns
    far to the right may not be rendered at all (column virtualisation): keep the
    viewport wide.
    """
    header = page.get_by_role("columnheader", name=column, exact=True).first
    _expect()(header).to_be_attached()
    index = header.get_attribute("aria-colindex")
    return page.locator(f'[role=row][row-id="{run_id}"] [role=gridcell][aria-colindex="{index}"]').first


def runs_table_name_links(page: Page) -> Locator:
    """The run-name links of the rows the table shows, top to bottom (for ``expect(...).to_have_text([...])``)."""
    return page.locator('[role=row][row-id] [role=gridcell][col-id="attributes.`Run Name`"] a')


def runs_table_run_names(page: Page) -> list[str]:
    """The run names the table shows right now, top to bottom (no waiting: see :func:`runs_table_name_links`)."""
    return runs_table_name_links(page).all_inner_texts()


def show_runs_table_columns(page: Page, *columns: str) -> None:
    """Tick columns in the runs table's "Columns" popover (a tree of checkboxes).

    By default 3.17 shows only Run Name, Created, Dataset, Duration, Source, Models;
    "User", "Version", "Description" and every metric and param are hidden (a
    "Show more columns (N total)" tile hints at them).  Names as in the popover:
    metric / param keys (``"test_acc_mean/cifar10"``) or attribute names (``"User"``).
    A ticked column's header reads the same; the choice persists in the context's
    localStorage.
    """
    page.get_by_role("button", name="Columns", exact=True).click()
    popover = page.get_by_role("dialog").filter(has=page.get_by_role("textbox", name="Search columns"))
    for column in columns:
        popover.get_by_text(column, exact=True).first.click()
    page.keyboard.press("Escape")
    for column in columns:
        _expect()(page.get_by_role("columnheader", name=column, exact=True).first).to_be_attached()


def expand_parent_run(page: Page, run_name: str) -> None:
    """Click the expander (an unnamed "+" button) left of a parent run's name."""
    cell = page.get_by_role("gridcell").filter(has=page.get_by_role("link", name=run_name, exact=True)).first
    cell.get_by_role("button").first.click()


def select_dataset_filter(page: Page, option: str | re.Pattern) -> None:
    """Tick a dataset in the runs table's "Datasets" filter (options: "NAME (DIGEST)")."""
    page.get_by_role("combobox", name=re.compile(r"^Datasets")).click()
    page.get_by_role("listbox", name="Datasets options").get_by_role("option", name=option).first.click()
    page.keyboard.press("Escape")


# -- a run's page -------------------------------------------------------------------


def open_run_page(
    page: Page,
    base_url: str,
    experiment_id: str,
    run_id: str,
    tab: str | None = None,
    timeout_ms: float = RENDER_TIMEOUT_MS,
) -> Page:
    """Open a run's page (tab None: the overview) and wait for its tab list."""
    open_ui(page, run_url(base_url, experiment_id, run_id, tab), timeout_ms)
    expect_role(page, "tablist", timeout_ms=timeout_ms)
    if tab is None:
        expect_heading(page, "About this run", timeout_ms=timeout_ms)
    return page


def about_run_field(page: Page, label: str) -> Locator:
    """One "About this run" field (label and value).

    For example ``"Source"``, ``"Created by"``, ``"Child runs"``: wait on it with
    ``expect(...).to_contain_text(...)``; some fill in late
    (``"Child runs"`` reads "loading" first).
    """
    return page.get_by_test_id(f"key-value-{label}")


def about_run(page: Page) -> dict[str, str]:
    """The overview's "About this run" fields as shown right now: label -> text.

    No waiting: call it after waiting for the fields you need (:func:`about_run_field`).

    Labels in 3.17: Created at, Created by, Experiment ID, Status, Run ID, Duration,
    Parent run / Child runs (nested runs), Source (file name + short commit),
    Logged models (only when none), Registered prompts.
    """
    texts = page.locator("[data-testid^=key-value-]").evaluate_all(
        "els => els.map(e => [e.dataset.testid.slice('key-value-'.length), e.innerText])"
    )
    return {label: " ".join(text.split("\n")[1:]).strip() for label, text in texts}


_NEXT_TABLE = "xpath=following::*[self::table or @role='table'][1]"
"""The first table after an element: the run page's are ``<div role="table">``, the compare page's ``<table>``."""


def run_metrics(page: Page, timeout_ms: float = RENDER_TIMEOUT_MS) -> dict[str, str]:
    """The overview's "Metrics (N)" table: metric key -> shown value (strings, as displayed)."""
    return _overview_table(page, "Metrics", timeout_ms)


def run_params(page: Page, timeout_ms: float = RENDER_TIMEOUT_MS) -> dict[str, str]:
    """The overview's "Parameters (N)" table: param key -> value."""
    return _overview_table(page, "Parameters", timeout_ms)


def _overview_table(page: Page, title: str, timeout_ms: float) -> dict[str, str]:
    heading = expect_heading(page, re.compile(rf"^{title} \(\d+\)$"), timeout_ms=timeout_ms)
    count = int(re.search(r"\((\d+)\)", heading.inner_text()).group(1))
    table = heading.locator(_NEXT_TABLE)
    _expect()(table).to_be_visible(timeout=timeout_ms)
    if count:
        _expect()(table.locator("[role=cell], td").first).to_be_visible(timeout=timeout_ms)
    return _two_column_rows(table)


def _two_column_rows(table: Locator) -> dict[str, str]:
    rows = table.locator("tr, [role=row]").evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('td, [role=cell]')].map(c => c.innerText.trim()))"
    )
    return {cells[0]: cells[1] for cells in rows if len(cells) >= 2}


# -- the compare-runs page -----------------------------------------------------------


def open_compare_runs(
    page: Page,
    base_url: str,
    run_ids: Sequence[str],
    experiment_ids: Sequence[str],
    timeout_ms: float = RENDER_TIMEOUT_MS,
) -> Page:
    """Open the compare page; wait for its "Comparing N Runs from M Experiment(s)" title."""
    open_ui(page, compare_runs_url(base_url, run_ids, experiment_ids), timeout_ms)
    expect_heading(page, re.compile(r"^Comparing \d+ Runs? from \d+ Experiments?$"), timeout_ms=timeout_ms)
    return page


def set_diff_only(page: Page, section: str = "Parameters", on: bool = True) -> None:
    """Switch a compare-page section's "Show diff only" (sections: Parameters, Metrics, Tags)."""
    switch = page.get_by_role("switch", name=f"{section} - Show diff only")
    if switch.is_checked() != on:
        switch.click()
    (_expect()(switch).to_be_checked if on else _expect()(switch).not_to_be_checked)()


def compare_rows(page: Page, section: str = "Parameters") -> dict[str, list[str]]:
    """The rows a compare-page section shows now: key -> one value per run, in run order.

    Sections with a ``<table>``: Parameters and Tags (Metrics is a grid).  No waiting:
    the page's data is loaded once its title shows.  With "Show diff only" on, MLflow
    removes the equal rows from the table.
    """
    table = page.get_by_role("switch", name=f"{section} - Show diff only").locator(_NEXT_TABLE)
    rows = table.get_by_role("row").evaluate_all("rows => rows.map(r => [...r.children].map(c => c.innerText.trim()))")
    return {cells[0]: cells[1:] for cells in rows if cells}
