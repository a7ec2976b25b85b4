#!/usr/bin/env bash
# The main job on a fresh machine: install, build, show what this CPU offers, write a small
# synthetic model (random weights) and list it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
./build/xtile info
out=${TMPDIR:-/tmp}/xtile-demo-qwen3-tiny-q4_0.gguf
./build/xtile synth --preset tiny-qwen3 --type q4_0 -o "$out"
./build/xtile info -m "$out"
