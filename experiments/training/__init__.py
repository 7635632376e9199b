"""Training: the LightningModule, its callbacks, the runner, evaluation and what a run reports.

- `classifier`: `Classifier`, the LightningModule (one shared eval step).
- `callbacks`: `RunRecorder` (epoch curves, best weights, last state), resumable early stopping.
- `finetune`: frozen stages, a head learning rate, EMA; `gradnorms`: per-stage gradient norms.
- `interrupts`: SIGTERM and Ctrl-C stop at a batch end with the state saved (`StopSignals`).
- `distributed`: one run for a DDP launch.
- `runner`: `train(config)` and `resume(run_id)` (sweeps of many runs: `experiments.sweeps`).
- `evaluate`: a run's weights on other data; `reports`: test report and the logged model.

This package re-exports nothing: every module here imports torch and Lightning.
"""
