# Shared by the server test scripts (sourced). CTest sets XTILE_BIN, XTILE_SHARED_DIR and
# XTILE_TEST_TMP. A missing prerequisite skips: GTEST-style line, exit 77 (SKIP_RETURN_CODE).
set -euo pipefail

skip() {
  echo "[  SKIPPED ] $*"
  exit 77
}

: "${XTILE_BIN:?set XTILE_BIN to the xtile binary}"
: "${XTILE_SHARED_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}"
: "${XTILE_TEST_TMP:=${TMPDIR:-/tmp}}"
STORIES="$XTILE_SHARED_DIR/fixtures/models/stories260K.gguf"

# synth_once FILE VOCAB ARGS...: `xtile synth ARGS --vocab VOCAB` into the build folder as FILE
# once (a temporary name first: tests run two at a time); prints its path.
synth_once() {
  local name=$1 vocab=$2
  shift 2
  local out
  out="$(dirname "$XTILE_BIN")/$name"
  [ -f "$vocab" ] || skip "$vocab is absent (needed to synthesize the test model)"
  if [ ! -f "$out" ]; then
    "$XTILE_BIN" synth "$@" --vocab "$vocab" -o "$out.$$.tmp.gguf" >/dev/null 2>&1
    mv "$out.$$.tmp.gguf" "$out"
  fi
  echo "$out"
}

# The one-layer qwen3-0.6b (Qwen2 vocabulary) the C++ tests use: slow enough per token to be
# interrupted.
slow_model() {
  synth_once server-test-qwen3-1L-q4_0.gguf \
    "$XTILE_SHARED_DIR/fixtures/tokenizers/vocab-qwen2.gguf" \
    --preset qwen3-0.6b --layers 1 --type q4_0
}

# tiny-llama's shape on the real Llama-3 vocabulary (llama_tools_http_test.cpp's model): for
# Llama 3.1's template, picked with --chat-template llama3.1.
llama3_model() {
  synth_once server-test-tiny-llama3-q4_0.gguf \
    "$XTILE_SHARED_DIR/fixtures/tokenizers/vocab-llama3.gguf" \
    --preset tiny-llama --type q4_0 --vocab-size 128256
}

SERVER_PID=""
SERVER_LOG=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

# start_server ARGS...: xtile serve on a free loopback port; sets SERVER_URL once /health is 200.
start_server() {
  SERVER_LOG="$XTILE_TEST_TMP/serve.$$.log"
  "$XTILE_BIN" serve --host 127.0.0.1 --port 0 "$@" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  trap stop_server EXIT
  local port="" i
  for i in $(seq 1 600); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$SERVER_LOG" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG"; echo "xtile serve exited"; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$SERVER_LOG"; echo "xtile serve did not listen"; exit 1; }
  SERVER_URL="http://127.0.0.1:$port"
  for i in $(seq 1 1200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVER_URL/health")" = 200 ] && return 0
    sleep 0.1
  done
  cat "$SERVER_LOG"
  echo "xtile serve did not get ready"
  exit 1
}

fail() {
  echo "FAILED: $*"
  [ -n "$SERVER_LOG" ] && { echo "--- server log"; cat "$SERVER_LOG"; }
  exit 1
}
