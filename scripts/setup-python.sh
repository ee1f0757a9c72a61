#!/usr/bin/env bash
# Creates .venv/ with the Python packages the reference checks use (ONNX Runtime as a second
# engine, numpy). Idempotent; the runtime itself never needs Python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# pip is quick when everything is already satisfied.
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-reference.txt
.venv/bin/python -c "import numpy, onnx, onnxruntime; print('reference env: numpy', numpy.__version__, '/ onnxruntime', onnxruntime.__version__, '/ onnx', onnx.__version__)"
