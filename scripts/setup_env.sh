#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install her2fast into it,
# editable, with the CPU runtime and the test tools. Sourced by demo.sh and test.sh.
# Needs: python3 (>= 3.10) with venv, g++ (C++17). Everything else comes from PyPI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
# Build tools first, then the package without build isolation: one download of each tool, and
# the same cmake/ninja/pybind11 build the C++ tests.
python -m pip install -q "setuptools>=77" wheel "pybind11>=2.12" "cmake>=3.18" ninja
# The extension's CMake build tree is kept in build/native-pyXY (one per Python version): a rerun recompiles
# only the C++ files that changed (none: seconds), and scripts/test.sh builds the C++ unit tests in the same
# tree, on the same compiled kernels. Set HER2FAST_BUILD_DIR to keep it elsewhere.
export HER2FAST_BUILD_DIR="${HER2FAST_BUILD_DIR:-$root/build/native-$(python -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')}"
echo "== building and installing her2fast (C++ extension) into .venv"
# --no-compile: no bytecode for the ~12,000 modules of the dependencies up front; Python writes it for the
# modules that are imported, when they first are
python -m pip install -q --no-compile --no-build-isolation -e ".[cpu,test]"
