#!/usr/bin/env bash
# Set everything up and run the main job: the native kernels on a real IHC image.
# Outputs go to ./her2fast_demo (pictures, feature matrix, summary.json).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$root/scripts/setup_env.sh"
cd "$root"
her2fast demo --out her2fast_demo "$@"
