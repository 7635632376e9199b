#!/usr/bin/env bash
# Prepare what one device call of benchmarks/gpu/run_gpu_bench.py carries (both folders are git-ignored):
#   .gpu/cifar.tar.gz  the CIFAR-10 JPEG archive as a gzipped tar (~20 MB; the zip is 62 MB)
#   .whl/              Python 3.12 manylinux wheels of what the device lacks: MLflow (skinny) with
#                      SQLAlchemy and Alembic for the SQLite store, their needs, and the project itself
#                      (for its entry points; the code itself runs from the working tree that travels).
# The device has torch, torchvision, lightning, timm, torchmetrics, numpy, pandas, matplotlib,
# scikit-learn, pillow, pyyaml, protobuf, requests, click, cloudpickle, anyio, h11 and packaging
# (see /work/.library/device/KINDS.md); those are not carried. Versions are pinned to the ones this
# machine's venv runs with MLflow, so the set is known to work together.
#
# Run from the project root:  bash benchmarks/gpu/prepare_device.sh [--data-only|--wheels-only]
# Then check the size (the call carries at most 64 MiB with the working tree): it prints the total.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ZIP=../shared/data/CIFAR-10-images-master.zip
PYTHON=${PYTHON:-.venv/bin/python}
# Needs of mlflow-skinny's import paths that a run takes, plus the SQLite store's (its model-registry
# tables import cryptography.fernet). Checked by simulating the device's package set on this machine.
WHEELS="mlflow-skinny sqlalchemy alembic mako sqlparse cachetools databricks-sdk google-auth pyasn1 pyasn1-modules
fastapi starlette pydantic pydantic-core annotated-types typing-inspection typing-extensions gitpython gitdb smmap
importlib-metadata opentelemetry-api opentelemetry-sdk opentelemetry-proto opentelemetry-semantic-conventions
python-dotenv uvicorn platformdirs cryptography cffi pycparser"

prepare_data() {
  [ -f "$ZIP" ] || { echo "no $ZIP: the data cannot be prepared here" >&2; return 1; }
  mkdir -p .gpu
  rm -rf .gpu/CIFAR-10-images-master
  (cd .gpu && unzip -q "../$ZIP" && tar czf cifar.tar.gz CIFAR-10-images-master && rm -r CIFAR-10-images-master)
  echo "data: $(du -h .gpu/cifar.tar.gz | cut -f1) .gpu/cifar.tar.gz"
}

pins() {  # NAME==VERSION for each wheel, as installed here
  "$PYTHON" - $WHEELS <<'EOF'
import importlib.metadata as md, sys
print(" ".join(f"{name}=={md.version(name)}" for name in sys.argv[1:]))
EOF
}

prepare_wheels() {
  rm -rf .whl && mkdir -p .whl
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $(pins)
  "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w .whl .   # the project: entry points zoo.models
  echo "wheels: $(ls .whl | wc -l) files, $(du -ch .whl/*.whl | tail -1 | cut -f1)"
}

case "${1:-all}" in
  --data-only) prepare_data ;;
  --wheels-only) prepare_wheels ;;
  all) prepare_data; prepare_wheels ;;
  *) echo "usage: $0 [--data-only|--wheels-only]" >&2; exit 2 ;;
esac
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
carried=$(du -cb $(ls -d .gpu .whl 2>/dev/null) /dev/null | tail -1 | cut -f1)
total=$(( tracked + ${untracked:-0} + carried ))
echo "total carried: $(( total / 1048576 )) MiB of 64 (tree $(( (tracked + ${untracked:-0}) / 1048576 )) MiB, .gpu + .whl $(( carried / 1048576 )) MiB)"
[ "$total" -lt $(( 64 * 1048576 )) ] || { echo "over the 64 MiB limit: carry less" >&2; exit 1; }
