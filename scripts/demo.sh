#!/usr/bin/env bash
# Set everything up and run the main job: make a small phantom HER2 slide, score it, write the report.
# Outputs go to ./her2fast_demo (slide + ground truth, result JSON, QuPath GeoJSON, overlay/zoom/heat-map PNGs).
# `bash scripts/demo.sh --kernels` runs the native kernels on a real IHC image instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$root/scripts/setup_env.sh"
cd "$root"
her2fast demo --out her2fast_demo "$@"
