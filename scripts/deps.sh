#!/usr/bin/env bash
# Installs what xtile needs to build and test on Debian 12 (run as root, or with sudo available).
set -euo pipefail
PKGS=(g++ cmake make pkg-config libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev
      libcli11-dev nlohmann-json3-dev binutils clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
