#!/usr/bin/env bash
# Set everything up and run all tests (slow ones included: --all): C++ unit tests (plain and with AddressSanitizer +
# UndefinedBehaviorSanitizer) and the Python test suite. CI runs exactly this (.ci/run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$SECONDS
took() { echo "   ($(( SECONDS - start )) s since the start)"; }

# From Debian, installed when missing: the C++ test framework (doctest-dev), clang-format 14 (the
# version .clang-format is checked with: other major versions lay some code out differently), and
# Chromium with its WebDriver for the browser test of `her2fast view` (tests/test_view_browser.py).
missing=()
[ -f /usr/include/doctest/doctest.h ] || missing+=(doctest-dev)
command -v clang-format-14 >/dev/null || missing+=(clang-format-14)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian)"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# shellcheck disable=SC1091
source "$root/scripts/setup_env.sh"
jobs="$(nproc 2>/dev/null || echo 2)"

took
echo "== style: ruff lint and format (Python), clang-format (C++), stub of the native module"
ruff check .
ruff format --check .
find csrc -name '*.cpp' -o -name '*.hpp' | xargs clang-format-14 --dry-run --Werror
python -m mypy.stubtest her2fast._native
# type check of the whole package
python -m mypy her2fast --ignore-missing-imports --follow-imports=silent

took
echo "== C++ unit tests"
# in the extension's build tree (setup_env.sh: HER2FAST_BUILD_DIR): the kernels are compiled once for both
cmake -S . -B "$HER2FAST_BUILD_DIR" -DHER2FAST_BUILD_TESTS=ON >/dev/null
cmake --build "$HER2FAST_BUILD_DIR" --target her2fast_core_tests -j "$jobs"
"$HER2FAST_BUILD_DIR/her2fast_core_tests"

took
echo "== C++ unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
# at -O1 with line tables only (-g1): what the sanitizers' guides advise, and half the compile time of -O2 -g;
# the plain run above tests the kernels as shipped (-O3)
cmake -S . -B build/cpp-tests-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DHER2FAST_BUILD_PYTHON=OFF -DHER2FAST_BUILD_TESTS=ON -DHER2FAST_SANITIZE=ON >/dev/null
cmake --build build/cpp-tests-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ./build/cpp-tests-asan/her2fast_core_tests

took
echo "== Python tests"
# with bytecode caches (an environment may turn them off): else each pytest-xdist worker and each process a test
# starts compiles her2fast and the test modules from source again
unset PYTHONDONTWRITEBYTECODE
# on every core (pytest-xdist), a test module's tests on one worker (its module fixtures are made once)
python -m pytest --all -n "$jobs" --dist loadfile --durations=15 "$@"
