"""The GPU benchmark script (benchmarks/gpu/run_gpu_bench.py) in its tiny CPU mode.

The script is meant for one device call that must work the first time, so every
code path it takes on the GPU is run here with small numbers: all stages within
a generous deadline, and a deadline too short for anything after the environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu" / "run_gpu_bench.py"
STAGES = ["environment", "notebook_table", "throughput", "precision", "data_pipeline", "compile", "recipe"]
STAGE_KEYS = {
    "environment": {"python", "versions", "cuda_available", "driver", "tracking"},
    "notebook_table": {"rows", "sizes", "data_prepare_s", "reproduced", "rule", "skipped_runs"},
    "throughput": {"rows", "zoo_at_least_as_fast", "rounds", "probe_ms", "size", "batch"},
    "precision": {"model", "rows"},
    "data_pipeline": {"pipeline_images_per_s", "model_images_per_s", "pipeline_over_model", "data_not_bottleneck"},
    "compile": {"backend", "compile_s", "eager_ms", "compiled_ms", "speedup"},
    "recipe": {"epochs", "estimate_s", "test_acc", "test_loss", "wall_s", "anchor_acc"},
}


def load_script():
    """The script as a module, for its command line (loading it puts its package `gpu` on the path)."""
    spec = importlib.util.spec_from_file_location("run_gpu_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_gpu_bench"] = module
    spec.loader.exec_module(module)
    return module


def bench_module(name: str):
    """A module of the script's package `gpu` (benchmarks/gpu/), such as ``budget`` or ``report``."""
    load_script()
    return importlib.import_module(f"gpu.{name}")


def run_script(tmp_path: Path, cache: Path, template: Path, *args: str, timeout: float = 240) -> tuple[dict, str, str]:
    """Run the script with --tiny; return its JSON results, its Markdown and its output."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(template, out / "mlflow.db")  # skip the store's first migration (seconds)
    env = {**os.environ, "ZOO_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(out), "--work", str(tmp_path / "work"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert (out / "results.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "results.md").is_file()
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text(), proc.stdout + proc.stderr


@pytest.mark.slow
def test_tiny_run_does_every_stage_and_writes_after_each(
    tmp_path: Path, zoo_cache_dir: Path, mlflow_template: Path
) -> None:
    # The subprocess's own limit stays above the script's deadline, so that a slow machine meets the
    # script's deadline handling (later stages skipped with a reason), not a killed process.
    results, markdown, output = run_script(tmp_path, zoo_cache_dir, mlflow_template, "--deadline-s", "300", timeout=420)
    stages = results["stages"]
    assert list(stages) == STAGES
    for name in STAGES:
        assert stages[name]["status"] == "done", (name, stages[name], output[-3000:])
        assert STAGE_KEYS[name] <= set(stages[name]), (name, STAGE_KEYS[name] - set(stages[name]))
        assert f"## {name}: done" in markdown
    # One write after every stage (and after each training run), in order.
    assert [u for u in results["updates"] if ":" not in u] == ["start", *STAGES]
    assert [u for u in results["updates"] if u.startswith("precision:")] == ["precision:32x32-b32"]
    assert {r["config"] for r in stages["precision"]["rows"]} == {"default", "32-true NCHW"}
    assert [u for u in results["updates"] if u.startswith("notebook_table:")] == [
        "notebook_table:resnet50_scratch",
        "notebook_table:resnet101_scratch",
    ]
    rows = stages["notebook_table"]["rows"]
    assert [r["notebook_row"] for r in rows] == ["resnet50_scratch", "resnet101_scratch"]
    assert all(0 <= r["test_acc"] <= 1 and r["test_loss"] > 0 and r["wall_s"] > 0 for r in rows)
    assert [r["notebook_acc"] for r in rows] == [0.5647, 0.7312]
    assert stages["notebook_table"]["reproduced"] is None  # tiny figures are not compared with the notebook
    assert [r["model"] for r in stages["throughput"]["rows"]] == [
        "zoo resnet50_scratch",
        "timm resnet50",
        "torchvision resnet50",
    ]
    assert stages["data_pipeline"]["pipeline_images_per_s"] > 0
    assert stages["recipe"]["epochs"] >= 1
    assert 0 <= stages["recipe"]["test_acc"] <= 1
    assert results["tracking"]["backend"] == "sqlite"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(results["tracking"]["uri"])
    finished = {
        e.name: [r for r in client.search_runs([e.experiment_id]) if r.info.status == "FINISHED"]
        for e in client.search_experiments()
    }
    assert len(finished["gpu-bench-seed"]) == 2
    assert len(finished["gpu-bench-recipe"]) == 1
    assert len(finished["gpu-bench-probe"]) == 1  # the store was tried before any training
    assert {r["tracking"] for r in rows} == {"mlflow"}
    assert stages["recipe"]["tracking"] == "mlflow"
    assert "| resnet101_scratch | resnet_tiny_scratch |" in markdown


def test_too_short_deadline_skips_later_stages_with_a_reason(
    tmp_path: Path, zoo_cache_dir: Path, mlflow_template: Path
) -> None:
    results, markdown, output = run_script(tmp_path, zoo_cache_dir, mlflow_template, "--deadline-s", "1", timeout=120)
    stages = results["stages"]
    assert stages["environment"]["status"] == "done", output[-3000:]
    for name in STAGES[1:]:
        assert stages[name]["status"] == "skipped", (name, stages[name])
        assert "deadline" in stages[name]["reason"]
        assert f"## {name}: skipped" in markdown
    assert [u for u in results["updates"] if ":" not in u] == ["start", *STAGES]


def test_a_stage_that_would_not_fit_is_skipped_with_its_estimate() -> None:
    budget = bench_module("budget")
    clock = budget.Clock(deadline_s=100.0)
    clock.require(10.0, "a short thing", margin_s=5.0)  # fits: no exception
    with pytest.raises(budget.Skip, match=r"a long thing needs about 200 s \(\+5 s margin\) but \d+ s of the 100 s"):
        clock.require(200.0, "a long thing", margin_s=5.0)


def test_run_estimate_counts_training_and_evaluation_steps() -> None:
    budget = bench_module("budget")
    s = bench_module("settings").Settings(lightning_factor=1.0, run_overhead_s=10.0, epoch_overhead_s=2.0)
    sizes = {"num_train": 100, "num_val": 30, "num_test": 30}
    # 2 epochs x 4 train steps + (2 x 1 + 1) eval steps at a third of a step, 0.5 s each, 2 x 2 s, plus 10 s.
    assert budget.estimate_run_s(0.5, 2, sizes, 32, s) == pytest.approx(0.5 * (8 + 3 / 3) + 4.0 + 10.0)


def test_markdown_names_every_stage_and_its_status() -> None:
    data = {
        "tiny": False,
        "started_utc": "now",
        "deadline_s": 360,
        "elapsed_s": 1,
        "data": "x",
        "stages": {name: {"status": "skipped", "reason": f"no time for {name}"} for name in STAGES},
    }
    text = bench_module("report").render_markdown(data)
    for name in STAGES:
        assert f"## {name}: skipped" in text
        assert f"reason: no time for {name}" in text


def test_the_script_loads_without_torch_and_maps_every_stage_to_a_module() -> None:
    """The first report needs no torch; each stage's module (and torch with it) loads when the stage runs."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('run_gpu_bench', {str(SCRIPT)!r})\n"
        "bench = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(bench)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'mlflow', 'timm'}))\n"
        "print(list(bench.STAGE_FUNCTIONS) == list(bench.STAGES))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines() == ["[]", "True"], proc.stdout + proc.stderr[-2000:]


def test_readme_device_command_fits_and_parses() -> None:
    readme = (SCRIPT.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- device-command -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    command = block.strip()
    assert "\n" not in command
    assert len(command) <= 2000
    assert "run_gpu_bench.py" in command
    assert ".whl/*.whl" in command
    assert ".gpu/cifar.tar.gz" in command
    assert subprocess.run(["bash", "-n", "-c", command], capture_output=True).returncode == 0
    bench = load_script()
    args = bench.parse_args(command.split("run_gpu_bench.py", 1)[1].split("2>&1")[0].replace("$OUT", "/x").split())
    assert args.deadline_s == 480
    assert args.data == "/tmp/CIFAR-10-images-master"


def test_without_a_gpu_the_full_mode_fails_the_environment_and_skips_the_rest(
    tmp_path: Path, mlflow_template: Path
) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the full mode would run")
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(mlflow_template, out / "mlflow.db")
    env = {**os.environ, "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
            "--stages",
            "environment,throughput",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    stages = json.loads((out / "results.json").read_text())["stages"]
    assert stages["environment"]["status"] == "failed"
    assert "no CUDA device" in stages["environment"]["error"]
    assert "versions" in stages["environment"]  # the facts gathered before the failure are kept
    assert stages["throughput"]["reason"].startswith("the environment failed")
    assert stages["recipe"]["reason"] == "not asked for (--stages)"
