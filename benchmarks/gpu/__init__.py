"""The GPU benchmark of issue #8, one module per part; ``run_gpu_bench.py`` is the command.

Imported as ``gpu`` (the script puts ``benchmarks/`` on ``sys.path``, as it does for
``steps`` and ``timing``). Torch-free, so the command starts and reports at once:

- `gpu.settings`: the numbers of a run (GPU defaults, ``--tiny`` ones) and the notebook's figures.
- `gpu.budget`: the deadline (`Clock`, `Skip`) and the estimate of a training run.
- `gpu.report`: ``results.json`` and ``results.md``, written after every stage.

The stages, each imported only when it runs (a library that fails to import fails
its stage, not the call):

- `gpu.environment`: GPU, driver, versions, the MLflow store the runs use.
- `gpu.notebook`: the shipped ``seed`` experiment, row by row beside the notebook's.
- `gpu.throughput`: the zoo's ResNet-50 against timm's and torchvision's.
- `gpu.precision`: the zoo's default precision and memory format against fp32 NCHW.
- `gpu.pipeline`: images per second reaching the model from the data module.
- `gpu.compiled`: ``torch.compile`` against eager.
- `gpu.recipe`: the from-scratch recipe at 32x32 for as many epochs as fit.

Shared by the stages: `gpu.measure` (step timing on the device) and `gpu.runs`
(data preparation and a training run that survives a broken store).
"""
