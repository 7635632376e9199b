"""What runs spent (epochs, optimizer steps, images seen, image size), and whether two groups spent alike.

A comparison between groups that trained for different budgets answers a different
question (the notebook this project came from compared ResNet-101 after 2 epochs with
ResNet-50 after 6): `budget_difference` says what differs, and the verdict is withheld
as *confounded*. `values_at` reads a metric from the runs' per-epoch histories at an
equal budget, for ``zoo compare --at epoch N`` (or ``--at flops F``, ``--at time SECONDS``):
each run's value at that epoch, or at the last epoch whose cumulative training FLOPs or
wall time stay within the budget.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from mlflow.entities import Run

from experiments.tracking.readback import curve

BUDGETS = (
    ("epochs", "metric", "epochs"),
    ("steps", "metric", "optimizer_steps"),
    ("images", "metric", "images_seen"),
    ("image size", "param", "image_size"),
)
"""``(label, where, name)``: what a run spent, as its summary metrics and params record it."""

AT_EPOCH_BUDGETS = (("image size", "param", "image_size"),)
"""What must still match when groups are compared at one epoch (the epoch itself is equal)."""

AT_KINDS = ("epoch", "flops", "time")
"""What ``--at KIND AMOUNT`` equalises: the epoch, the training FLOPs or the training wall time."""


def at_label(at: tuple[str, float]) -> str:
    """An equal budget as the verdicts print it.

    Args:
        at: ``(kind, amount)``, kind one of `AT_KINDS`.

    Returns:
        ``"epoch 2"``, ``"1e+12 training FLOPs"`` or ``"60 s of training"``.
    """
    kind, amount = at
    if kind == "epoch":
        return f"epoch {int(amount)}"
    return f"{amount:.3g} training FLOPs" if kind == "flops" else f"{amount:g} s of training"


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


def budget_difference(a: Sequence[Run], b: Sequence[Run], at: tuple[str, float] | None = None) -> str | None:
    """What differs between two groups' budgets, as a verdict prints it.

    A budget a run did not record (a run from before budgets were logged) is not compared.

    Args:
        a: Group A's runs.
        b: Group B's runs.
        at: The groups are compared at an equal budget (`values_at`): at one epoch only the
            image size must still match; at equal FLOPs or time, nothing else.

    Returns:
        ``"epochs 2 vs 6, steps 100 vs 300"``, or None when every recorded budget matches.
    """
    if at is not None and at[0] != "epoch":
        return None  # the FLOPs or the time are the budget, equal by construction
    differ = []
    for label, where, name in AT_EPOCH_BUDGETS if at is not None else BUDGETS:
        values_a = [_value(r, where, name) for r in a]
        values_b = [_value(r, where, name) for r in b]
        if None in values_a or None in values_b:
            continue
        set_a, set_b = {v for v in values_a if v}, {v for v in values_b if v}
        if set_a != set_b:
            differ.append(f"{label} {_shown(set_a)} vs {_shown(set_b)}")
    return ", ".join(differ) or None


def values_at(runs: Sequence[Run], metric: str, at: tuple[str, float], uri: str | None = None) -> list[float | None]:
    """Each run's value of a per-epoch metric at an equal budget (``None`` where it never got there).

    Args:
        runs: One group's runs (or any runs of the store).
        metric: A metric logged every epoch (``val_acc``, ``val_loss``, ``train_acc`` ...).
        at: ``("epoch", N)`` for epoch N (counted from 1, as the curves' steps are);
            ``("flops", F)`` or ``("time", SECONDS)`` for the last epoch whose cumulative
            training FLOPs (``train_flops`` spread evenly over the ``epochs``) or wall time
            (the ``epoch_time_s`` curve) stay within the amount.
        uri: The runs' tracking URI.

    Returns:
        One value (or ``None``) per run, in order.
    """
    kind, amount = at
    out: list[float | None] = []
    for run in runs:
        values = curve(run.info.run_id, metric, uri)
        epoch = int(amount) if kind == "epoch" else _last_epoch_within(run, kind, amount, uri)
        out.append(values.get(epoch) if epoch else None)
    return out


def _last_epoch_within(run: Run, kind: str, amount: float, uri: str | None) -> int:
    if kind == "flops":
        flops, epochs = run.data.metrics.get("train_flops"), run.data.metrics.get("epochs")
        if not flops or not epochs:
            return 0  # a run from before budgets were recorded
        return min(int(epochs), math.floor(amount * epochs / flops))
    times = curve(run.info.run_id, "epoch_time_s", uri)  # sorted by epoch
    within = [step for step, spent in zip(times, itertools.accumulate(times.values()), strict=True) if spent <= amount]
    return within[-1] if within else 0
