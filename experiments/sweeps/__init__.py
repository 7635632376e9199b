"""Sweeps: an experiment file's runs under one parent run: a loop on one worker, an Optuna study across many.

A trial calls training (`experiments.training.runner.train`); this layer sits above it.

- `engine`: `run_experiment` and `SweepOptions`; the MLflow parent run, one worker's loop, a trial.
- `study`: the Optuna storage, study, sampler and pruner; dead workers' trials retried.
- `trials`: a trial's config and run name, and the callback that reports its epochs to the pruner.
- `workers`: ``--workers N`` processes on this machine, each with its GPU or share of the cores.
- `report`: what the parent run records when the last trial ends (params, grouped means, best trial).

This package re-exports nothing: `workers` (the CLI's start) must load without Optuna and torch,
which every other module here imports.
"""
