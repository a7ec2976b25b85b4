#!/usr/bin/env bash
# Fuzzes with libFuzzer: fuzz/run.sh [seconds=60] [gguf|model|json|gbnf|all=all]
#                        fuzz/run.sh [seconds] gguf+model   (targets joined by + run at once)
#
#   gguf   the GGUF reader (xtile_gguf_fuzz). Seeds: small valid files from xtile_gguf_seeds,
#          plus the fixture GGUFs cut to their first 64 KiB (most of a model is tensor data, the
#          parser's work is in the header). Inputs up to 64 KiB.
#   model  what a model file feeds beyond the reader: model config, tokenizer load, weight-store
#          plan (xtile_model_fuzz). Seeds: one-layer tiny synthetic models from
#          xtile_model_seeds. Inputs up to 512 KiB (whole models, tensor data included).
#   json   the server's grammars: JSON mode's against nlohmann::json, with a schema against the
#          tests' validator, and function calling's in both formats (xtile_json_fuzz). Seeds: a
#          few objects and a call in each format written here. Inputs up to 4 KiB.
#   gbnf   llama-server's `grammar` field: the GBNF parser on any text, and the engine on a reply
#          after a NUL byte against the tests' Earley recognizer (xtile_gbnf_fuzz). Seeds: a
#          few grammars with replies. Inputs up to 4 KiB.
#   all    all four, `seconds` each, one after the other.
#   a+b    the named ones at the same time, each in its own process with its output in
#          build-fuzz/<name>.log (printed when it ends): a fuzzer is one process on one core,
#          so on 2 cores .ci/run runs them two at a time.
#
# Builds in build-fuzz/ (clang, ASan+UBSan). New interesting inputs accumulate in
# fuzz/corpus-run/<target>/ (git-ignored) across runs. Exits non-zero when libFuzzer finds a
# crash; the input is saved under build-fuzz/artifacts/.
set -euo pipefail

seconds="${1:-60}"
target="${2:-all}"
# libFuzzer reads -max_total_time=abc as 0, which is no limit: refuse anything but a count.
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz/run.sh: seconds must be a whole number above 0, not '$seconds'" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
jobs="${XTILE_FUZZ_BUILD_JOBS:-2}"

names=()
case "$target" in
  all) names=(gguf model json gbnf) ;;
  *) IFS=+ read -r -a names <<<"$target" ;;
esac
# Each name once: two runs of one target would share its seed and corpus folders.
if [ "${#names[@]}" -eq 0 ] || [ "$(printf '%s\n' "${names[@]}" | sort | uniq -d)" != "" ]; then
  echo "fuzz/run.sh: '$target' names no target, or one twice" >&2
  exit 2
fi
targets=()
for name in "${names[@]}"; do
  case "$name" in
    gguf) targets+=(xtile_gguf_fuzz xtile_gguf_seeds) ;;
    model) targets+=(xtile_model_fuzz xtile_model_seeds) ;;
    json) targets+=(xtile_json_fuzz) ;;
    gbnf) targets+=(xtile_gbnf_fuzz) ;;
    *) echo "fuzz/run.sh: unknown target '$name' (gguf, model, json, gbnf, all, or some joined by +)" >&2
       exit 2 ;;
  esac
done

# Ninja for a new build folder where installed, as scripts/build.sh.
generator=()
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DXTILE_FUZZ=ON -DXTILE_TESTS=OFF -DXTILE_BENCH=OFF >/dev/null
# The build's output only when it fails (clang errors go to stdout): a silent exit 1 hid one.
if ! cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$build/build.log" 2>&1; then
  grep -E "error|Error" "$build/build.log" | head -40 >&2
  echo "fuzz/run.sh: the fuzz build (clang) failed; full log in $build/build.log" >&2
  exit 1
fi
mkdir -p "$build/artifacts"

# -timeout: one input taking seconds is a finding too (every step is linear in the input).
run_gguf() {
  local seeds="$build/seeds-gguf" corpus="$root/fuzz/corpus-run/gguf"
  rm -rf "$seeds"
  mkdir -p "$seeds" "$corpus"
  "$build/fuzz/xtile_gguf_seeds" "$seeds"
  shopt -s nullglob
  for f in "$root"/../shared/fixtures/models/*.gguf "$root"/../shared/fixtures/tokenizers/*.gguf; do
    head -c 65536 "$f" >"$seeds/fixture-$(basename "$f")"
  done
  echo "gguf seeds: $(ls "$seeds" | wc -l) files in $seeds"
  "$build/fuzz/xtile_gguf_fuzz" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -dict="$root/fuzz/gguf.dict" -artifact_prefix="$build/artifacts/gguf-" -print_final_stats=1 \
    "$corpus" "$seeds"
}

run_model() {
  local seeds="$build/seeds-model" corpus="$root/fuzz/corpus-run/model"
  rm -rf "$seeds"
  mkdir -p "$seeds" "$corpus"
  "$build/fuzz/xtile_model_seeds" "$seeds"
  echo "model seeds: $(ls "$seeds" | wc -l) files in $seeds"
  "$build/fuzz/xtile_model_fuzz" -max_total_time="$seconds" -max_len=524288 -timeout=20 \
    -dict="$root/fuzz/gguf.dict" -artifact_prefix="$build/artifacts/model-" -print_final_stats=1 \
    "$corpus" "$seeds"
}

run_json() {
  local seeds="$build/seeds-json" corpus="$root/fuzz/corpus-run/json"
  rm -rf "$seeds"
  mkdir -p "$seeds" "$corpus"
  printf '%s' '{}' >"$seeds/empty.json"
  printf '%s' '{"a": [1, -2.5e+3, true, false, null], "b": {"c": "x\u00e9\ud83d\ude00\n"}}' \
    >"$seeds/mixed.json"
  printf '{\n  "name": "Lily",\n  "pets": [\n    "cat"\n  ]\n}' >"$seeds/indented.json"
  printf '{"s": "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}' >"$seeds/utf8.json"
  printf '%s' '{"name":"Lily","age":42,"code":123,"debt":-25,"tags":["a"],"next":null}' \
    >"$seeds/instance.json"
  printf '%s' '{"name":"Lily","plate":"AB-12","share":12.5,"day":"2024-02-29"}' \
    >"$seeds/patterned.json"
  # Numbers around the grammars' limit of 1e308 (one beyond it was a finding).
  printf '%s' '{"name":"Lily","w":8e307,"x":1e-400,"y":0.001e310,"z":-12E+306}' >"$seeds/large.json"
  printf '<think>\nhm\n</think>\n\n<tool_call>\n{"name": "get", "arguments": {"q": 1}}\n</tool_call>' \
    >"$seeds/tool_call.txt"
  printf '%s' '{"name": "get_weather", "parameters": {"name":"Lily","age":42}}' \
    >"$seeds/llama_call.txt"
  echo "json seeds: $(ls "$seeds" | wc -l) files in $seeds"
  "$build/fuzz/xtile_json_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -dict="$root/fuzz/json.dict" -artifact_prefix="$build/artifacts/json-" -print_final_stats=1 \
    "$corpus" "$seeds"
}

run_gbnf() {
  local seeds="$build/seeds-gbnf" corpus="$root/fuzz/corpus-run/gbnf"
  rm -rf "$seeds"
  mkdir -p "$seeds" "$corpus"
  printf 'root ::= "yes" | "no"\0yes' >"$seeds/choice.txt"
  printf 'root ::= (expr "=" ws num "\\n")+\nexpr ::= term ([-+*/] term)*\nterm ::= num | "(" ws expr ")" ws\nnum ::= [0-9]+ ws\nws ::= [ \\t]*\n\0(1+2)*3= 9\n' \
    >"$seeds/arithmetic.txt"
  printf 'root ::= "[" (item ("," item){0,3})? "]"\nitem ::= [^\\x00-\\x1f",\\]]+ | root\n\0[a,[\xc3\xa9,\xf0\x9f\x98\x80]]' \
    >"$seeds/nested.txt"
  printf 'root ::= "a" root "a" | "b" root "b" | "|"\n\0ab|ba' >"$seeds/palindrome.txt"
  echo "gbnf seeds: $(ls "$seeds" | wc -l) files in $seeds"
  "$build/fuzz/xtile_gbnf_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -artifact_prefix="$build/artifacts/gbnf-" -print_final_stats=1 "$corpus" "$seeds"
}

if [ "$target" = all ] || [ "${#names[@]}" -eq 1 ]; then
  for name in "${names[@]}"; do "run_$name"; done
  exit 0
fi
# Several at once: each in the background, its output in its own log; the first failure's
# status is the script's, after every one has ended (none is left running).
pids=()
for name in "${names[@]}"; do
  "run_$name" >"$build/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!names[@]}"; do
  if wait "${pids[$i]}"; then
    tail -n 25 "$build/${names[$i]}.log"
  else
    status=$?
    tail -n 80 "$build/${names[$i]}.log" >&2
    echo "fuzz/run.sh: ${names[$i]} failed (exit $status); full output in $build/${names[$i]}.log" >&2
  fi
done
exit "$status"
