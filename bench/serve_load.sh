#!/usr/bin/env bash
# Load test of xtile serve beside llama-server on the same GGUF, in the same run (issue 13):
# CLIENTS concurrent streaming clients (bench/serve_load.py), each REQUESTS completions of
# TOKENS tokens (ignore_eos), loopback only. Prints, per engine, the aggregate generation
# throughput, its ratio to CLIENTS x the single-stream tg and to the batched-decode roofline
# min(CLIENTS x tg, pp512) (both from xtile bench on the same file) and to xtile bench's
# "tg128 x CLIENTS" (the engine decoding CLIENTS sequences per step alone: the most a server's
# steps could give), and time to first token.
#
#   MODEL=qwen3-1.7b-q4_0.gguf LLAMA_SERVER=../peers/llama.cpp/build/bin/llama-server \
#     bash bench/serve_load.sh
# Variables: MODEL (default: synthesize qwen3-1.7b q4_0 with the Qwen2 vocabulary into OUT),
# CLIENTS (8), REQUESTS (2), TOKENS (128), TEMPERATURE (0: greedy; above it the servers sample
# with their default top-k, top-p and min-p, each request its own seed), THREADS (physical
# cores), XTILE (./build/xtile),
# LLAMA_SERVER (skipped when unset), OUT (folder for models and logs, default /tmp/xtile-serve-load).
set -euo pipefail
cd "$(dirname "$0")/.."
XTILE=${XTILE:-./build/xtile}
CLIENTS=${CLIENTS:-8}
TEMPERATURE=${TEMPERATURE:-0}
REQUESTS=${REQUESTS:-2}
TOKENS=${TOKENS:-128}
OUT=${OUT:-/tmp/xtile-serve-load}
THREADS=${THREADS:-$("$XTILE" info | sed -n 's/.*default threads[^0-9]*\([0-9]*\).*/\1/p' | head -n 1)}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
[ -x "$XTILE" ] || { echo "no xtile binary at $XTILE (build first)"; exit 1; }
if [ -z "${MODEL:-}" ]; then
  MODEL=$OUT/qwen3-1.7b-q4_0.gguf
  [ -f "$MODEL" ] || "$XTILE" synth --preset qwen3-1.7b --type q4_0 \
    --vocab ../shared/fixtures/tokenizers/vocab-qwen2.gguf -o "$MODEL"
fi
echo "load at start: $(cut -d ' ' -f 1-3 /proc/loadavg) (figures are only meaningful below 1)"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); model $MODEL"
echo "$CLIENTS clients x $REQUESTS requests x $TOKENS tokens, temperature $TEMPERATURE, $THREADS threads"

# tg128 x CLIENTS: the engine's own batched decoding (CLIENTS sequences per forward pass, every
# row with logits, no HTTP, no prompts): what the server's steps could reach at best.
"$XTILE" bench -m "$MODEL" -p 512 -n 128 -np "1,$CLIENTS" -r 2 -t "$THREADS" -o json \
  >"$OUT/bench.json"
read -r PP TG TGN < <(python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
get = lambda t: next(r["avg_ts"] for r in rows if r["test"] == t)
n = sys.argv[2]
print(get("pp512"), get("tg128"), get("tg128" if n == "1" else "tg128 x" + n))' "$OUT/bench.json" "$CLIENTS")
echo "xtile bench: pp512 $PP t/s, tg128 $TG t/s, tg128 x$CLIENTS $TGN t/s"

CTX=$((CLIENTS * (TOKENS + 96)))
port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_health() {
  for _ in $(seq 1 1200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health")" = 200 ] && return 0
    sleep 0.25
  done
  return 1
}
RESULTS=()
run_engine() {  # name port cmd...
  local name=$1 port=$2
  shift 2
  "$@" >"$OUT/$name.log" 2>&1 &
  local pid=$!
  if ! wait_health "$port"; then
    echo "$name did not start (log: $OUT/$name.log)"
    kill "$pid" 2>/dev/null || true
    return
  fi
  python3 bench/serve_load.py --url "http://127.0.0.1:$port" --clients 1 --requests 1 \
    --max-tokens 8 >/dev/null  # warm-up
  python3 bench/serve_load.py --url "http://127.0.0.1:$port" --clients "$CLIENTS" \
    --requests "$REQUESTS" --max-tokens "$TOKENS" --temperature "$TEMPERATURE" --timeout 1500 \
    --json >"$OUT/$name.json" || true
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  RESULTS+=("$name")
}

P=$(port_of)
run_engine xtile "$P" "$XTILE" serve -m "$MODEL" --host 127.0.0.1 --port "$P" -np "$CLIENTS" \
  -c "$CTX" -t "$THREADS"
if [ -n "${LLAMA_SERVER:-}" ]; then
  P=$(port_of)
  run_engine llama-server "$P" "$LLAMA_SERVER" -m "$MODEL" --host 127.0.0.1 --port "$P" \
    -np "$CLIENTS" -c "$CTX" -t "$THREADS" --no-webui
else
  echo "LLAMA_SERVER unset: llama-server not measured"
fi
echo "load at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
python3 - "$OUT" "$PP" "$TG" "$TGN" "$CLIENTS" "${RESULTS[@]}" <<'PY'
import json, sys
out, pp, tg, tgn, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
roof = min(n * tg, pp)
print(f"\nxtile bench tg128 x{n} (batched decoding alone): {tgn:.2f} t/s = {tgn / roof:.2f} of "
      f"min({n} x tg128, pp512) = {roof:.2f}")
print(f"\n| engine | aggregate t/s | / ({n} x tg128) | / min({n} x tg128, pp512) | / tg128 x{n} | TTFT p50 s | TTFT p99 s | per-request t/s p50 | failed |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
agg = {}
for name in sys.argv[6:]:
    r = json.load(open(f"{out}/{name}.json"))
    agg[name] = r["aggregate_tps"]
    print(f"| {name} | {r['aggregate_tps']:.2f} | {r['aggregate_tps'] / (n * tg):.2f} | "
          f"{r['aggregate_tps'] / roof:.2f} | {r['aggregate_tps'] / tgn:.2f} | {r['ttft_p50_s']:.2f} | {r['ttft_p99_s']:.2f} | "
          f"{r['per_request_decode_tps_p50']:.2f} | {len(r['errors'])} |")
if "xtile" in agg and "llama-server" in agg and agg["llama-server"] > 0:
    print(f"\nxtile / llama-server aggregate: {agg['xtile'] / agg['llama-server']:.2f}")
PY
