"""Experiments: data, Lightning training, MLflow tracking, comparison and the `zoo` CLI.

Example:
    >>> from experiments import ExperimentConfig, train
    >>> result = train(ExperimentConfig(model="resnet_tiny_scratch", data="digits", epochs=2))
    >>> result.run_id, result.metrics["test_acc"]
"""

from experiments.config import ExperimentConfig, load_config, load_experiment
from experiments.runner import TrainResult, resume, train

__all__ = ["ExperimentConfig", "TrainResult", "load_config", "load_experiment", "resume", "train"]
