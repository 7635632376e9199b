"""What runs spent (epochs, optimizer steps, images seen, image size), and whether two groups spent alike.

A comparison between groups that trained for different budgets answers a different
question (the notebook this project came from compared ResNet-101 after 2 epochs with
ResNet-50 after 6): `budget_difference` says what differs, and the verdict is withheld
as *confounded*. `values_at_epoch` reads a metric at one epoch from the runs' per-epoch
histories, for ``zoo compare --at epoch N``: the groups then compare at an equal budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

BUDGETS = (
    ("epochs", "metric", "epochs"),
    ("steps", "metric", "optimizer_steps"),
    ("images", "metric", "images_seen"),
    ("image size", "param", "image_size"),
)
"""``(label, where, name)``: what a run spent, as its summary metrics and params record it."""

AT_EPOCH_BUDGETS = (("image size", "param", "image_size"),)
"""What must still match when groups are compared at one epoch (the epoch itself is equal)."""


def _value(run: Run, where: str, name: str) -> str | None:
    if where == "param":
        return run.data.params.get(name)
    value = run.data.metrics.get(name)
    if value is None or math.isnan(value):
        return None
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def _shown(values: set[str]) -> str:
    ordered = sorted(values, key=lambda v: (float(v) if v.replace(".", "", 1).isdigit() else math.inf, v))
    return "/".join(ordered)


def budget_difference(a: Sequence[Run], b: Sequence[Run], at_epoch: int | None = None) -> str | None:
    """What differs between two groups' budgets, as a verdict prints it.

    A budget a run did not record (a run from before budgets were logged) is not compared.

    Args:
        a: Group A's runs.
        b: Group B's runs.
        at_epoch: The groups are compared at this epoch: only the image size must match.

    Returns:
        ``"epochs 2 vs 6, steps 100 vs 300"``, or None when every recorded budget matches.
    """
    differ = []
    for label, where, name in AT_EPOCH_BUDGETS if at_epoch is not None else BUDGETS:
        values_a = [_value(r, where, name) for r in a]
        values_b = [_value(r, where, name) for r in b]
        if None in values_a or None in values_b:
            continue
        set_a, set_b = {v for v in values_a if v}, {v for v in values_b if v}
        if set_a != set_b:
            differ.append(f"{label} {_shown(set_a)} vs {_shown(set_b)}")
    return ", ".join(differ) or None


def values_at_epoch(client: MlflowClient, runs: Sequence[Run], metric: str, epoch: int) -> list[float | None]:
    """Each run's value of a per-epoch metric at one epoch (``None`` where it never got there).

    Args:
        client: An `MlflowClient` on the runs' store.
        runs: One group's runs (or any runs of the store).
        metric: A metric logged every epoch (``val_acc``, ``val_loss``, ``train_acc`` ...).
        epoch: The epoch, counted from 1 as the curves' steps are.

    Returns:
        One value (or ``None``) per run, in order.
    """
    out: list[float | None] = []
    for run in runs:
        at = [h.value for h in client.get_metric_history(run.info.run_id, metric) if h.step == epoch]
        out.append(at[-1] if at else None)
    return out
