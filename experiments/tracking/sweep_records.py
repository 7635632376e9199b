"""What a sweep reads and writes in MLflow: its parent run, its children, how each trial ended.

The sweep layer (`experiments.sweeps`) reaches MLflow only through this module and the run
objects (`experiments.tracking.runs.TrackedRun`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

from mlflow.entities import Run

from experiments.config.secrets import mask_text
from experiments.signals import killed
from experiments.tracking.heartbeat import Owner, beating
from experiments.tracking.names import (
    KILLED_REASON_TAG,
    NOTE_TAG,
    ROLE_TAG,
    SWEEP_FILE_ARTIFACT,
    SWEEP_PLAN_TAG,
    SWEEP_ROLE,
    SWEEP_TAG,
    TRIAL_STATE_TAG,
    TRIAL_TAG,
    children_filter,
    sweep_parents_filter,
)
from experiments.tracking.runs import TrackedRun, describe_experiment, ensure_experiment
from experiments.tracking.source import source_facts
from experiments.tracking.store import get_client


def create_parent(
    experiment: str,
    name: str,
    uri: str,
    *,
    plan: str | None,
    params: Mapping[str, str],
    file: tuple[str, str],
    description: str = "",
) -> str:
    """Create a sweep's parent run: its role, name and plan, its params, its file (masked), its description.

    Args:
        experiment: The MLflow experiment.
        name: The sweep's name (the parent's run name).
        uri: The MLflow store.
        plan: The digest of what the sweep runs (`SWEEP_PLAN_TAG`), or ``None`` (its study keeps it).
        params: What the sweep is (``sweep.file``, ``sweep.seeds``, ...).
        file: ``(file name, text)`` of the experiment file, logged under ``sweep/``.
        description: The file's description, the parent's and the experiment's note.

    Returns:
        The parent's run id (RUNNING).
    """
    tags = {ROLE_TAG: SWEEP_ROLE, SWEEP_TAG: name}
    if plan:
        tags[SWEEP_PLAN_TAG] = plan
    if description:
        tags[NOTE_TAG] = description
    parent = TrackedRun.create(experiment, name, tags, uri)
    parent.log_params(params)
    parent.set_tags(source_facts())
    parent.log_text(mask_text(file[1]), f"{SWEEP_FILE_ARTIFACT}/{file[0]}")  # a tracking_uri: in it, masked
    if description:
        describe_experiment(parent.client, ensure_experiment(parent.client, experiment), description)
    return parent.run_id


def find_parent(experiment: str, name: str, uri: str) -> Run | None:
    """The parent run of the sweep called ``name`` in an experiment, if there is one.

    Args:
        experiment: The MLflow experiment.
        name: The sweep's name.
        uri: The MLflow store.

    Returns:
        The newest such parent, or ``None``.
    """
    client = get_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs([found.experiment_id], filter_string=sweep_parents_filter(name), max_results=1)
    return runs[0] if runs else None


def ended_children(parent_run_id: str, uri: str) -> dict[int, Run]:
    """The children of a parent that ended on their own (FINISHED or FAILED), by their ``zoo.trial`` number.

    Args:
        parent_run_id: The sweep's parent run.
        uri: The MLflow store.

    Returns:
        ``{number: run}``, the newest run of each number.
    """
    client = get_client(uri)
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=children_filter(parent_run_id),
        order_by=["attributes.start_time ASC"],
        max_results=50_000,
    )
    ended = [r for r in runs if r.info.status in ("FINISHED", "FAILED") and TRIAL_TAG in r.data.tags]
    return {int(run.data.tags[TRIAL_TAG]): run for run in ended}


@contextlib.contextmanager
def parent_alive(parent_run_id: str | None, uri: str | None, others_running: Callable[[], bool]) -> Iterator[None]:
    """Keep a sweep's parent RUNNING and beating while this process works on the sweep.

    On Ctrl-C or SIGTERM it ends KILLED, on a failure (``--fail-fast``) FAILED, unless trials of
    other processes still run (the sweep goes on there); running the command again continues it.

    Args:
        parent_run_id: The parent run; ``None`` (no tracking) does nothing.
        uri: The MLflow store.
        others_running: Whether trials of other processes still run.

    Yields:
        Nothing.
    """
    if parent_run_id is None or uri is None:
        yield
        return
    client = get_client(uri)
    client.update_run(parent_run_id, status="RUNNING")
    try:
        with beating(client, parent_run_id, Owner.here()):
            yield
    except BaseException as exc:
        if others_running():
            raise
        parent = TrackedRun(parent_run_id, uri)
        parent.end("FAILED" if isinstance(exc, Exception) else "KILLED")
        if not isinstance(exc, KeyboardInterrupt):
            raise
        stopped = killed(exc, f"sweep {parent.label()}")
        if stopped is exc:
            raise
        raise stopped from exc


def record_trial_end(run_id: str | None, uri: str | None, state: str, metrics: Mapping[str, float]) -> None:
    """Write how a trial ended into its run (Optuna knows; the MLflow UI should too), and its value if missing.

    Args:
        run_id: The trial's run; ``None`` (a trainer that logs nothing) does nothing.
        uri: The MLflow store.
        state: ``COMPLETE``, ``PRUNED`` or ``FAIL``.
        metrics: The trial's value (``best_val_acc``), logged where the run lacks it, so that
            ``zoo compare --parent`` ranks the trials by it.
    """
    if run_id is None or uri is None:
        return
    with contextlib.suppress(Exception):  # the record is a courtesy: the trial's result is in the study
        client = get_client(uri)
        client.set_tag(run_id, TRIAL_STATE_TAG, state)
        held = client.get_run(run_id).data.metrics
        for key, value in metrics.items():
            if key not in held:
                client.log_metric(run_id, key, value)


def mark_dead(run_id: str | None, uri: str | None, reason: str) -> None:
    """End the run of a worker that stopped beating KILLED, with the reason (it stays RUNNING otherwise).

    Args:
        run_id: The trial's run; ``None`` does nothing.
        uri: The MLflow store.
        reason: Why, in one line.
    """
    if run_id is None or uri is None:
        return
    with contextlib.suppress(Exception):  # the retry of its trial matters more than the record
        client = get_client(uri)
        client.set_tag(run_id, KILLED_REASON_TAG, reason)
        client.set_terminated(run_id, "KILLED")
