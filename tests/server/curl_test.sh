#!/usr/bin/env bash
# xtile serve through curl, as a user would try it: a chat request, the same streamed, a
# completion, the models list, an error. JSON is checked with python3.
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
[ -f "$STORIES" ] || skip "$STORIES is absent"
start_server -m "$STORIES" -np 2 -t 2

check() {  # check JSON PYTHON-EXPRESSION (j is the parsed JSON)
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$1" ||
    fail "expected $2 in $1"
}

body='{"messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":16,"temperature":0}'
out=$(curl -sS "$SERVER_URL/v1/chat/completions" -H 'Content-Type: application/json' -d "$body")
check "$out" 'j["object"] == "chat.completion" and j["choices"][0]["message"]["role"] == "assistant" and len(j["choices"][0]["message"]["content"]) > 0'
check "$out" 'j["usage"]["completion_tokens"] <= 16 and j["usage"]["prompt_tokens"] > 0'
answer=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["choices"][0]["message"]["content"], end="")' "$out")

# Streamed (-N: no buffering): the role first, the same text, [DONE] last.
sse=$(curl -sS -N "$SERVER_URL/v1/chat/completions" -H 'Content-Type: application/json' \
  -d "${body%\}},\"stream\":true}")
[ "$(printf '%s\n' "$sse" | grep -c '^data: ')" -ge 3 ] || fail "too few events: $sse"
[ "$(printf '%s\n' "$sse" | grep '^data: ' | tail -n 1)" = "data: [DONE]" ] || fail "no [DONE] at the end: $sse"
# sed -n 1p, not head -n 1: head exits after one line, and a grep still writing gets SIGPIPE,
# which pipefail turns into a silent exit of this script (the flaky failure CI saw).
first=$(printf '%s\n' "$sse" | grep '^data: ' | sed -n 1p | cut -c 7-)
check "$first" 'j["choices"][0]["delta"]["role"] == "assistant"'
streamed=$(printf '%s\n' "$sse" | grep '^data: {' | cut -c 7- | python3 -c '
import json, sys
print("".join(json.loads(l)["choices"][0]["delta"].get("content") or "" for l in sys.stdin if json.loads(l)["choices"]), end="")')
[ "$streamed" = "$answer" ] || fail "streamed text differs: '$streamed' vs '$answer'"

out=$(curl -sS "$SERVER_URL/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt":"Once upon a time","max_tokens":8,"temperature":0}')
check "$out" 'j["object"] == "text_completion" and len(j["choices"][0]["text"]) > 0'
out=$(curl -sS "$SERVER_URL/v1/models")
check "$out" 'j["data"][0]["id"] == "stories260K.gguf"'
code=$(curl -sS -o "$XTILE_TEST_TMP/err.$$.json" -w '%{http_code}' "$SERVER_URL/v1/chat/completions" \
  -H 'Content-Type: application/json' -d '{"messages": [')
[ "$code" = 400 ] || fail "malformed JSON gave HTTP $code"
check "$(cat "$XTILE_TEST_TMP/err.$$.json")" 'j["error"]["type"] == "invalid_request_error"'
rm -f "$XTILE_TEST_TMP/err.$$.json"
stop_server
echo "curl: chat, streamed chat, completion, models and an error: as expected"
