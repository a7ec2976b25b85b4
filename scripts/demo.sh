#!/usr/bin/env bash
# The main job on a fresh machine: install, build, show what this CPU offers, then generate text:
# with the trained tiny Llama of ../shared/fixtures when it is there (real text), else with a
# synthesized model (random weights: the text is gibberish, the run shows the machinery).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
./build/xtile info
fixture=../shared/fixtures/models/stories260K.gguf
if [ -f "$fixture" ]; then
  ./build/xtile run -m "$fixture" -p "Once upon a time" -n 96
  # The same model quantized to Q4_0 by xtile, on the repacked kernel path.
  q4=${TMPDIR:-/tmp}/xtile-demo-stories260K-q4_0.gguf
  ./build/xtile quantize "$fixture" "$q4" q4_0
  ./build/xtile run -m "$q4" -p "Once upon a time" -n 96
else
  echo "../shared/fixtures is absent: running a synthesized model whose weights are RANDOM"
  out=${TMPDIR:-/tmp}/xtile-demo-qwen3-tiny-q4_0.gguf
  ./build/xtile synth --preset tiny-qwen3 --type q4_0 -o "$out"
  ./build/xtile run -m "$out" -p "Hello" -n 32
fi
