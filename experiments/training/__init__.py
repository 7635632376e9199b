"""Training: the LightningModule, its callbacks, the runner, evaluation and what a run reports.

- `classifier`: `Classifier`, the LightningModule (one shared eval step).
- `callbacks`: `RunRecorder` (epoch curves, best weights, last state) and `LastStateCheckpoint`.
- `finetune`: frozen stages, a head learning rate, EMA; `gradnorms`: per-stage gradient norms.
- `interrupts`: SIGTERM and Ctrl-C stop at a batch end with the state saved.
- `logger`: Lightning's MLflow logger bound to the zoo's run; `distributed`: one run for a DDP launch.
- `runner`: `train(config)` and `resume(run_id)` (sweeps of many runs: `experiments.sweeps`).
- `evaluate`: a run's weights on other data; `reports`: test report and the logged model.

Loaded on first use: every module here imports torch and Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainResult": "runner",
    "train": "runner",
    "resume": "runner",
    "Classifier": "classifier",
    "evaluate_run": "evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: `import experiments.training.x` should cost only x's imports.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"experiments.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
