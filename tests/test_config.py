"""ExperimentConfig: YAML and flags from one schema, validated up front with one-line errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pydantic
import pytest
import yaml

from experiments import ExperimentConfig
from experiments.cli import build_parser, main
from experiments.config.errors import ConfigError
from experiments.config.experiment import SHIPPED_DIR, load_experiment
from experiments.config.flags import add_config_flags, flag_name, overrides_from_args
from experiments.config.schema import field_names, from_dict, load_config


def test_defaults_follow_the_notebook_and_the_issue() -> None:
    c = ExperimentConfig(model="resnet50_scratch").validate()
    assert (c.optimizer, c.lr, c.batch_size, c.seed, c.val_fraction, c.preset) == ("adam", 1e-3, 32, 0, 0.2, "seed")
    assert (c.monitor, c.monitor_mode, c.min_delta, c.patience, c.early_stopping) == ("val_acc", "max", 1e-4, 5, True)


def test_every_field_has_a_flag_generated_from_the_dataclass() -> None:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    flags = {o for a in parser._actions for o in a.option_strings}
    assert {flag_name(n) for n in field_names()} <= flags
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    train_flags = {o for a in train._actions for o in a.option_strings}
    for name in (
        "--data",
        "--preset",
        "--image-size",
        "--stem",
        "--epochs",
        "--batch-size",
        "--lr",
        "--optimizer",
        "--seed",
        "--limit-per-class",
        "--precision",
        "--accelerator",
        "--devices",
        "--strategy",
        "--num-nodes",
        "--experiment",
        "--run-name",
        "--tracking-uri",
        "--config",
        "--resume",
        "--weights",
    ):
        assert name in train_flags, name


def test_flags_override_the_file(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("model: resnet18_scratch\nepochs: 7\nstem: cifar\nlr: 0.01\n")
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    args = parser.parse_args(["--epochs", "3", "--no-early-stopping", "--tags", "team=vision", "--mean", "0.5,0.5,0.5"])
    c = load_config(file, **overrides_from_args(args))
    assert (c.model, c.epochs, c.stem, c.lr, c.early_stopping) == ("resnet18_scratch", 3, "cifar", 0.01, False)
    assert c.tags == {"team": "vision"}
    assert c.mean == [0.5, 0.5, 0.5]
    assert c.model_kwargs(10) == {"num_classes": 10, "stem": "cifar"}


def test_yaml_round_trip() -> None:
    c = ExperimentConfig(model="resnet_tiny_scratch", tags={"a": "b"}, model_args={"residual": False}).validate()
    assert from_dict(yaml.safe_load(c.to_yaml())) == c


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batch_size": 0}, "batch_size: 0 is not allowed"),
        ({"optimizer": "rmsprop"}, "optimizer: 'rmsprop' is not allowed; choose one of: adam, adamw, sgd"),
        ({"precision": "8"}, "precision: '8' is not allowed"),
        ({"lr": "fast"}, "lr: 'fast' is not a valid number"),
        ({"epochs": 2.5}, "epochs: 2.5 is not a valid whole number"),
        ({"val_fraction": 1.5}, "val_fraction: 1.5 is not allowed"),
        ({"schedule": "linear"}, "schedule: 'linear' is not allowed"),
        ({"schedule": "multistep"}, "schedule: multistep needs milestones"),
        ({"schedule": "multistep", "milestones": "3,12"}, "milestones: 12 is past the last epoch (epochs 10)"),
        ({"schedule": "multistep", "milestones": "6,3"}, "milestones: [6, 3] must go up, each once"),
        ({"schedule": "multistep", "milestones": "0,3"}, "milestones: '0,3' is not allowed"),
        ({"milestones": "3"}, "milestones: only apply to schedule multistep, not 'none'"),
        ({"schedule": "step", "step_epochs": 10}, "step_epochs: 10 is past the last epoch (epochs 10)"),
        ({"lr_gamma": 1.5}, "lr_gamma: 1.5 is not allowed; give a number in (0, 1]"),
        ({"decay_norm_bias": False}, "decay_norm_bias: off has no effect with weight_decay 0"),
        ({"loss": "focal"}, "loss: 'focal' is not allowed; choose one of: ce, bce"),
        ({"auto_augment": "randaug"}, "auto_augment: 'randaug' is not allowed; choose one of: none, randaugment"),
        ({"augment_magnitude": 31}, "augment_magnitude: 31 is not allowed; give at most 30"),
        ({"repeated_augment": 0}, "repeated_augment: 0 is not allowed"),
        ({"train_image_size": 9000}, "train_image_size: 9000 is not allowed; give at most 8192"),
        ({"train_image_size": 8000, "batch_size": 256}, "more than a quarter of this machine's"),
        ({"erase_prob": 1.5}, "erase_prob: 1.5 is not allowed; give a number in [0, 1]"),
        ({"mixup_prob": -0.1}, "mixup_prob: -0.1 is not allowed; give a number in [0, 1]"),
        ({"cutmix_alpha": 1.0, "batch_size": 1}, "cutmix_alpha: mixing needs batch_size >= 2"),
        ({"stem": "deep"}, "stem: 'deep' is not allowed"),
        ({"mean": [0.5]}, "mean: [0.5] is not allowed"),
        ({"early_stopping": "maybe"}, "early_stopping: 'maybe' is not a valid true/false value"),
        ({"precision": "16-mixed", "accelerator": "cpu"}, "precision: 16-mixed is refused on a CPU"),
        ({"nesterov": True}, "nesterov: only applies to optimizer sgd"),
        ({"batchsize": 3}, "unknown field 'batchsize'; did you mean 'batch_size'?"),
        ({"model": ""}, "model: no model given"),
        ({"devices": "if"}, "devices: 'if' is not allowed; give auto, -1 (all), a count"),
        ({"accelerator": "tpux"}, "accelerator: 'tpux' is not allowed; choose one of: auto, gpu, cpu"),
        ({"strategy": "dpp"}, "strategy: 'dpp' is not allowed; choose one of: auto, ddp"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_field(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict({"model": "resnet_tiny_scratch", **values})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_bad_values_exit_2_with_one_line(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["train", "resnet_tiny_scratch", "--optimizer", "rms"]) == 2
    assert main(["train", "resnet_tiny_scratch", "--config", str(tmp_path / "missing.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    assert main(["train", "--config", str(bad)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith("zoo: error: ") for line in lines)
    assert "optimizer" in lines[0]
    assert "does not exist" in lines[1]
    assert "not valid YAML" in lines[2]


def test_shipped_experiment_files_load(capsys: pytest.CaptureFixture) -> None:
    shipped = sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))
    assert {"seed", "quick", "digits"} <= set(shipped)
    seed = load_experiment("seed")
    assert [(r.model, r.epochs, r.preset, r.optimizer, r.lr, r.batch_size) for r in seed.runs] == [
        ("resnet50_scratch", 2, "seed", "adam", 1e-3, 32),
        ("resnet101_scratch", 6, "seed", "adam", 1e-3, 32),
    ]
    assert all(r.experiment == "seed" for r in seed.runs)
    assert main(["run", "quick", "--dry-run", "--data", "some/folder"]) == 0
    assert capsys.readouterr().out.count("some/folder") == 2


def test_experiment_file_errors_name_the_run(tmp_path: Path) -> None:
    file = tmp_path / "exp.yaml"
    file.write_text(
        "defaults: {data: digits}\nruns:\n  - model: resnet_tiny_scratch\n  - {model: resnet18_scratch, lr: -1}\n"
    )
    with pytest.raises(ConfigError, match=r"run 2.*lr: -1.0 is not allowed"):
        load_experiment(str(file))
    file.write_text("runs: []\n")
    with pytest.raises(ConfigError, match="non-empty list under 'runs:'"):
        load_experiment(str(file))


def test_config_is_one_pydantic_model() -> None:
    assert issubclass(ExperimentConfig, pydantic.BaseModel)
    assert ExperimentConfig(model="m").replace(epochs=3).epochs == 3
