#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs CTest. Fixtures are read from
# ../shared beside the checkout; tests that need them skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh "$@"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
