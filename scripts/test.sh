#!/usr/bin/env bash
# Builds minnow and runs the whole test suite twice: a normal build, then an AddressSanitizer +
# UBSan build. Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DMN_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs")
if [ "${1:-}" != "--no-sanitize" ]; then
  cmake -S . -B build-asan -DMN_WERROR=ON -DMN_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j "$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$jobs")
fi
