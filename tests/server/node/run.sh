#!/usr/bin/env bash
# run.sh TEST.mjs [llama3.1]: starts xtile serve on a free loopback port and runs one node test
# file against it (XTILE_URL); with llama3.1, the function-calling tests run on a model with Llama
# 3.1's template instead of Qwen's. Skips (exit 77, with the reason) without node, the npm packages
# (npm ci --prefix tests/server/node, which scripts/deps.sh runs) or, for the page, Chromium.
source "$(dirname "$0")/../lib.sh"
dir="$(cd "$(dirname "$0")" && pwd)"
command -v node >/dev/null || skip "node is not installed (scripts/deps.sh installs it)"
for p in openai ollama @anthropic-ai/sdk playwright-core; do
  [ -d "$dir/node_modules/$p" ] ||
    skip "npm package $p is missing: npm ci --prefix tests/server/node (scripts/deps.sh does)"
done
case "$1" in
  chat_page*)
    export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
    [ -x "$CHROMIUM" ] || skip "$CHROMIUM is missing (apt-get install chromium; scripts/deps.sh does)"
    model=$(slow_model)
    start_server -m "$model" -np 2 -t 2 -c 8192
    ;;
  openai_tools* | anthropic_client* | responses_client*)  # function calling
    if [ "${2:-}" = llama3.1 ]; then
      model=$(llama3_model)
      start_server -m "$model" --chat-template llama3.1 -np 2 -t 2 -c 4096
    else  # Qwen's template
      model=$(slow_model)
      start_server -m "$model" -np 2 -t 2 -c 4096
    fi
    ;;
  *)
    [ -f "$STORIES" ] || skip "$STORIES is absent"
    start_server -m "$STORIES" -np 4 -t 2 -c 2048
    ;;
esac
export XTILE_URL="$SERVER_URL"
node --test --test-reporter=spec "$dir/$1"
