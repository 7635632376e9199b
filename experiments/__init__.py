"""Experiments: data, Lightning training, MLflow tracking, comparison and the `zoo` CLI."""
