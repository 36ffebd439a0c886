#!/usr/bin/env bash
# The GPU check, one call of a few minutes on a machine lent with a GPU (the device tool: check its
# `status` first; most sessions have none). Builds her2fast for that machine's Python, checks CPU/GPU
# agreement of the membrane network and times the pipeline on a large phantom (benchmarks/gpu_check.py).
#
# Prerequisites there: numpy, scipy, scikit-image, scikit-learn, pillow, tifffile, pybind11, cmake,
# ninja (the 'cuda' image has them) and, carried in .gpu_wheels/ (git-ignored) when the image lacks
# them: openslide-python, openslide-bin, imagecodecs and an onnxruntime-gpu build for its CUDA; with an
# openvino wheel there too, the CPU's bf16 path (AMX on the device's Xeon) is checked afterwards
# (benchmarks/openvino_check.py: OpenVINO vs ONNX Runtime fp32, agreement, Dice, speed).
#   run: bash benchmarks/gpu.sh           results under $OUT (or ./her2fast_gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RESULTS=${OUT:-her2fast_gpu}
export PYTHONUNBUFFERED=1
if compgen -G ".gpu_wheels/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps .gpu_wheels/*.whl
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
HER2FAST_BUILD_DIR=$PWD/build/gpu "$PY" -m pip install -q --no-build-isolation --no-deps -e .
"$PY" benchmarks/gpu_check.py --out "$RESULTS" "$@" 2>&1 | tee "$RESULTS.log"
if "$PY" -c "import openvino" 2>/dev/null; then
  mkdir -p "$RESULTS"
  "$PY" benchmarks/openvino_check.py --tiles 12 --threads 1 --json "$RESULTS/openvino_cpu_1thread.json" 2>&1 | tee -a "$RESULTS.log"
  "$PY" benchmarks/openvino_check.py --tiles 12 --threads 8 --json "$RESULTS/openvino_cpu_8threads.json" 2>&1 | tee -a "$RESULTS.log"
else
  echo "openvino not installed here: CPU bf16 check skipped (carry an openvino wheel in .gpu_wheels/)"
fi
