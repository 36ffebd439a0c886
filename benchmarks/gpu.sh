#!/usr/bin/env bash
# The GPU check, one call of a few minutes on a machine lent with a GPU (the device tool: check its
# `status` first; most sessions have none). Builds her2fast for that machine's Python, checks CPU/GPU
# agreement of the membrane network and times the pipeline on a large phantom (benchmarks/gpu_check.py).
#
# Prerequisites there: numpy, scipy, scikit-image, scikit-learn, pillow, tifffile, pybind11, cmake,
# ninja (the 'cuda' image has them) and, carried in .gpu_wheels/ (git-ignored) when the image lacks
# them: openslide-python, openslide-bin, imagecodecs and an onnxruntime-gpu build for its CUDA.
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
