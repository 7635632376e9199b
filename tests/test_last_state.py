"""``last.ckpt`` is the state at the end of the last epoch, whether or not it improved."""

from __future__ import annotations

import pytest

from experiments import ExperimentConfig, train
from experiments.tracking.checkpoints import load_checkpoint


@pytest.mark.floors
def test_last_state_is_the_last_epoch_even_without_improvement(mlflow_store: str) -> None:
    # Monitoring the validation loss with mode "max" makes epoch 0 (the highest loss; this run learns
    # from epoch to epoch: 2.16, 1.44, 0.74) the best: Lightning
    # 2.6 alone would then keep epoch 0's state as last.ckpt, and --resume would restart from there.
    # Tracking off: the local checkpoint folder is then the run's only copy, and is kept.
    config = ExperimentConfig(
        model="resnet_tiny_scratch",
        data="digits",
        preset="cifar",
        augment=False,
        limit_per_class=40,
        lr=3e-3,
        batch_size=32,
        workers="0",
        epochs=3,
        monitor="val_loss",
        monitor_mode="max",
        early_stopping=False,
        progress_bar=False,
        log_model=False,
        tracking=False,
    )
    result = train(config)
    last = load_checkpoint(result.checkpoint_dir / "last.ckpt")
    best = load_checkpoint(result.best_checkpoint)
    assert best["epoch"] == 0
    assert last["epoch"] == 2
    assert last["global_step"] == 3 * best["global_step"]
