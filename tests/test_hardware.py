"""``precision: auto`` and ``channels_last: auto``: what they become, with the hardware checks mocked both ways."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import torch
import yaml
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

from experiments import ExperimentConfig, train
from experiments.cli import main
from experiments.config.schema import load_config
from experiments.training import hardware
from experiments.training.evaluate import evaluate_run
from experiments.training.hardware import (
    accelerator_kind,
    cpu_flags,
    cuda_computes_bf16,
    resolve_channels_last,
    resolve_hardware,
    resolve_precision,
)

X86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\nprocessor\t: 1\n"


def cpuinfo(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(X86.format(extra=extra))
    return path


@pytest.mark.parametrize(("extra", "native"), [("avx512_bf16", True), ("amx_bf16 amx_tile", True), ("", False)])
def test_the_cpu_flags_say_whether_bf16_is_native(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, native: bool
) -> None:
    path = cpuinfo(tmp_path, extra)
    assert "avx2" in cpu_flags(path)
    assert bool(cpu_flags(path) & hardware.BF16_CPU_FLAGS) is native
    monkeypatch.setattr(hardware, "cpu_flags", lambda: cpu_flags(path))
    assert hardware.cpu_computes_bf16() is native
    assert resolve_precision("auto", "cpu") == ("bf16-mixed" if native else "32-true")


def test_without_a_cpuinfo_file_bf16_is_not_assumed(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "absent") == frozenset()


@pytest.mark.parametrize(
    ("capabilities", "native"),
    [([(9, 0)], True), ([(8, 0), (8, 6)], True), ([(8, 0), (7, 5)], False), ([(7, 0)], False), ([], False)],
)
def test_cuda_bf16_needs_compute_capability_8_on_every_device(
    monkeypatch: pytest.MonkeyPatch, capabilities: list, native: bool
) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(capabilities))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: capabilities[i])
    assert cuda_computes_bf16() is native
    assert resolve_precision("auto", "cuda") == ("bf16-mixed" if native else "32-true")


def test_explicit_values_are_kept_and_other_accelerators_get_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_computes_bf16", lambda: True)
    monkeypatch.setattr(hardware, "cuda_computes_bf16", lambda: True)
    for precision in ("32", "32-true", "bf16-mixed", "16-mixed"):
        assert resolve_precision(precision, "cpu") == precision
    assert resolve_precision("auto", "mps") == "32-true"
    assert resolve_channels_last(False, "cpu", "bf16-mixed") is False
    assert resolve_channels_last(True, "cuda", "32-true") is True


@pytest.mark.parametrize(
    ("kind", "precision", "expected"),
    [
        ("cpu", "32-true", True),
        ("cpu", "bf16-mixed", True),
        ("cuda", "bf16-mixed", True),
        ("cuda", "16-mixed", True),
        ("cuda", "32-true", False),
        ("mps", "32-true", False),
    ],
)
def test_channels_last_auto_is_on_where_it_pays(kind: str, precision: str, expected: bool) -> None:
    assert resolve_channels_last(None, kind, precision) is expected


def test_the_accelerator_kind_follows_lightnings_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MPSAccelerator, "is_available", staticmethod(lambda: False))
    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: False))
    assert accelerator_kind("auto") == "cpu"
    assert accelerator_kind("cpu") == "cpu"
    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: True))
    assert accelerator_kind("auto") == "cuda"
    assert accelerator_kind("gpu") == "cuda"
    assert accelerator_kind("cpu") == "cpu"


@pytest.mark.parametrize("native", [True, False])
def test_a_config_resolves_as_the_machine_trains_it(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(hardware, "cpu_computes_bf16", lambda: native)
    config = ExperimentConfig(model="resnet_tiny_scratch", accelerator="cpu").validate()
    assert (config.precision, config.channels_last) == ("auto", None)  # the defaults
    resolved = resolve_hardware(config)
    assert (resolved.precision, resolved.channels_last) == ("bf16-mixed" if native else "32-true", True)
    explicit = ExperimentConfig(model="resnet_tiny_scratch", precision="32", channels_last=False).validate()
    assert resolve_hardware(explicit) is explicit


def test_auto_in_a_yaml_file_is_the_default(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: resnet_tiny_scratch\nprecision: auto\nchannels_last: auto\n")
    config = load_config(path)
    assert (config.precision, config.channels_last) == ("auto", None)


@pytest.mark.parametrize("native", [True, False])
def test_a_run_records_what_auto_became(mlflow_store: str, monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(hardware, "cpu_computes_bf16", lambda: native)
    assert (
        main(
            [
                "train",
                "resnet_tiny_scratch",
                "--data",
                "digits",
                "--limit-per-class",
                "5",
                "--epochs",
                "1",
                "--accelerator",
                "cpu",
                "--experiment",
                "auto",
            ]
        )
        == 0
    )
    run = mlflow.search_runs(experiment_names=["auto"], output_format="list")[0]
    precision = "bf16-mixed" if native else "32-true"
    assert run.data.params["precision"] == precision
    assert run.data.params["channels_last"] == "True"
    config = yaml.safe_load(
        Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="config.yaml")).read_text()
    )
    assert config["precision"] == precision
    assert config["channels_last"] is True


def test_test_figures_and_the_logged_model_are_fp32_after_bf16_training(mlflow_store: str) -> None:
    """The run's test_acc is the fp32 model's: what `zoo eval` and the logged model compute."""
    result = train(
        ExperimentConfig(
            model="resnet_tiny_scratch",
            data="digits",
            preset="cifar",
            limit_per_class=10,
            epochs=1,
            precision="bf16-mixed",
            channels_last=True,
            accelerator="cpu",
            experiment="bf16",
        )
    )
    evaluated = evaluate_run(result.run_id, log=False)
    assert evaluated.accuracy == pytest.approx(result.metrics["test_acc"], abs=1e-6)
    # The same fp32 computation: equal to float precision (a bf16 test pass is off by about 1e-5 here).
    assert evaluated.loss == pytest.approx(result.metrics["test_loss"], rel=1e-6, abs=0)
    served = mlflow.pytorch.load_model(mlflow.get_run(result.run_id).data.tags["mlflow.zoo.logged_model_uri"])
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in served.parameters())
