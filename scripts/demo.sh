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
  fixture=$out
fi

# The OpenAI-compatible server: start it on a free port, one chat request with curl, the
# answer, stop it.
log=${TMPDIR:-/tmp}/xtile-demo-serve.log
./build/xtile serve -m "$fixture" --port 0 -np 2 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 300); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  [ -n "$port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && break
  sleep 0.2
done
echo "xtile serve on http://127.0.0.1:$port (chat page at /); one request:"
curl -s "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages": [{"role": "user", "content": "Tell me a story about a dog."}], "max_tokens": 64}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])'
kill -TERM "$server"
wait "$server" || true
