#!/usr/bin/env bash
# Configures and builds xtile (Release) into ${BUILD_DIR:-build}. Extra args go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# A new build folder uses Ninja where it is installed (scripts/deps.sh installs it): Ninja
# compiles xtile_core's own sources while the tier objects are still building, where make
# waits for every tier target first and leaves one of the two cores idle behind each tier's one
# big kernel file (DEVELOPERS.md "CI time"). A folder already configured keeps its generator.
generator=()
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
