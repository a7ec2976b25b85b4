#!/usr/bin/env bash
# Installs what xtile needs to build and test on Debian 12 (run as root, or with sudo available).
# Build: the compiler, CMake, the libraries. Tests of `xtile serve` also use curl, Node with
# the npm packages of tests/server/node (the openai, ollama and anthropic clients,
# playwright-core; npm is used for test clients only) and Debian's Chromium.
set -euo pipefail
PKGS=(g++ cmake make ninja-build pkg-config libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev
      libcli11-dev nlohmann-json3-dev libcpp-httplib-dev binutils clang libclang-rt-14-dev
      curl python3 chromium)
command -v node >/dev/null || PKGS+=(nodejs)
command -v npm >/dev/null || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
node_dir="$(cd "$(dirname "$0")/../tests/server/node" && pwd)"
if [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
   [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) ||
    echo "deps.sh: npm ci failed in $node_dir: the node and browser tests will skip"
fi
