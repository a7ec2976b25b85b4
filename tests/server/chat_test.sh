#!/usr/bin/env bash
# xtile chat in a terminal's place: two turns through a pipe (the second reads only its new
# message: the conversation's cache is kept), then Ctrl-C (SIGINT) during a long answer stops
# the answer, not the program, and the chat goes on until /exit.
source "$(dirname "$0")/lib.sh"
[ -f "$STORIES" ] || skip "$STORIES is absent"

out=$(printf 'Tell me a story\nAnd then?\n/exit\n' |
  "$XTILE_BIN" chat -m "$STORIES" -n 12 --temp 0 -t 2 2>&1) || fail "xtile chat failed: $out"
turns=$(printf '%s\n' "$out" | grep -c '^\[12 tokens' || true)
[ "$turns" = 2 ] || fail "expected two answers of 12 tokens: $out"
cached=$(printf '%s\n' "$out" | grep '^\[12 tokens' | tail -n 1 | sed -E 's/.* ([0-9]+) from the cache.*/\1/')
[ "$cached" -gt 10 ] || fail "the second turn reused $cached cached tokens: $out"

model=$(slow_model)
fifo="$XTILE_TEST_TMP/chat.$$.fifo"
log="$XTILE_TEST_TMP/chat.$$.log"
rm -f "$fifo"
mkfifo "$fifo"
# --ignore-eos: the random model may end an answer after a few tokens, before the Ctrl-C comes.
"$XTILE_BIN" chat -m "$model" -n 5000 -c 8192 -t 2 --ignore-eos <"$fifo" >"$log" 2>&1 &
pid=$!
exec 3>"$fifo"  # keeps the chat's stdin open between messages
echo "Hello" >&3
for i in $(seq 1 600); do  # the banner, then the answer streams
  grep -q 'Type a message' "$log" && break
  sleep 0.1
done
banner=$(wc -c <"$log")
for i in $(seq 1 600); do
  [ "$(wc -c <"$log")" -gt $((banner + 100)) ] && break
  sleep 0.1
done
kill -INT "$pid"
for i in $(seq 1 100); do
  grep -q '\[stopped\]' "$log" && break
  sleep 0.1
done
grep -q '\[stopped\]' "$log" || { kill "$pid"; fail "Ctrl-C did not stop the answer: $(cat "$log")"; }
kill -0 "$pid" || fail "Ctrl-C ended the program: $(cat "$log")"
echo "/exit" >&3
exec 3>&-
wait "$pid" || fail "xtile chat exited with $?: $(cat "$log")"
rm -f "$fifo" "$log"
echo "chat: two turns with the cache kept; Ctrl-C stopped an answer, /exit ended the chat"
