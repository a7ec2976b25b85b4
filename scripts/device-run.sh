#!/usr/bin/env bash
# Runs a bundle made by scripts/device-bundle.sh on the borrowed machine, from the repository
# root of its copy: scripts/amx-check.sh on the carried binaries (exactness on every available
# tier, the kernel benchmark amx against avx512), then, when the bundle holds a llama-bench,
# bench/peers.sh side by side on synthesized models. Everything goes to $OUT/results.tar.gz (the
# device tool brings back at most 8 files); the summaries go to stdout.
#
#   bash scripts/device-run.sh [DIR]      # DIR: .device
#
# Environment: OUT (./device-out); AMX_BUDGET (seconds for amx-check, 200); TEST_FILTER (as
# amx-check's, without the objdump tests: they need the build tree); PEER_MODELS, PEER_TESTS
# ("-p 512 -n 128"), REPS (3), PEER_TIMEOUT (240 s); LONG=1 adds pp4096 and the depth-4096
# tests on the first of PEER_MODELS (LONG_TIMEOUT, 240 s); THREADS (xtile's default);
# AB="VAR=VALUE ..." runs xtile bench tg128 (-r 3) on AB_MODELS (qwen3-0.6b:q4_0) with and
# without those settings, AB_ROUNDS (3) interleaved rounds (AB_TIMEOUT, 150 s); SERVE=1 runs
# bench/serve_load.sh on qwen3-1.7b Q4_0 beside the carried llama-server (SERVE_TIMEOUT, 200 s);
# CARRIED_GLIBC=1 starts everything through the carried glibc even where the host's would do
# (to test that path here).
set -uo pipefail
cd "$(dirname "$0")/.."
D=$(realpath "${1:-.device}")
OUT=$(realpath -m "${OUT:-./device-out}")
RES=$(mktemp -d)/res
mkdir -p "$OUT" "$RES"
xz -dc "$D/bin.tar.xz" | tar -C "$D" -xf -
# How the carried programs start: the host's libstdc++ and glibc when they are new enough, else
# the carried libstdc++, else also the carried glibc through its loader (wrapper scripts in
# $D/run, laid out as the build tree, so that amx-check.sh and peers.sh call them as binaries).
export LD_LIBRARY_PATH=$D/lib
"$D/build/xtile" --version >/dev/null 2>&1 || export LD_LIBRARY_PATH=$D/lib:$D/lib/std
B=$D/build
if [[ "${CARRIED_GLIBC:-0}" == 1 ]] || ! "$B/xtile" --version >/dev/null 2>&1; then
  unset LD_LIBRARY_PATH
  B=$D/run
  mkdir -p "$B/tests" "$B/bench" "$D/run-peers"
  wrap() {  # BINARY WRAPPER
    printf '#!/bin/sh\nexec %q --library-path %q %q "$@"\n' "$D/lib/glibc/ld-linux-x86-64.so.2" \
      "$D/lib:$D/lib/std:$D/lib/glibc" "$1" >"$2"
    chmod +x "$2"
  }
  for b in xtile tests/xtile_tests bench/xtile_kernel_bench; do wrap "$D/build/$b" "$B/$b"; done
  for p in "$D"/peers/*; do [[ -f "$p" ]] && wrap "$p" "$D/run-peers/$(basename "$p")"; done
  echo "device-run: starting the carried programs through the carried glibc loader" >&2
fi
"$B/xtile" --version || { echo "device-run: the carried xtile does not start here" >&2; exit 1; }
peer_path() { [[ -x "$D/run-peers/$1" ]] && echo "$D/run-peers/$1" || echo "$D/peers/$1"; }
# The test binary reads SOURCE/../shared/fixtures, SOURCE being the checkout it was built in:
# make that path resolve here, to the carried subset (an existing fixtures folder is kept).
src=$(cat "$D/source-dir")
shared=$(realpath -m "$src/../shared")
if [[ ! -e "$shared/fixtures" ]]; then
  mkdir -p "$src" "$shared" && ln -s "$D/fx" "$shared/fixtures" ||
    echo "device-run: cannot link $shared/fixtures; the fixture tests will skip" >&2
fi
# The CLI tests run SOURCE/build/xtile (compiled in) as well.
if [[ ! -e "$src/build/xtile" ]]; then
  mkdir -p "$src/build" && ln -s "$B/xtile" "$src/build/xtile" || true
fi
T0=$SECONDS
{
  grep -m1 'model name' /proc/cpuinfo
  grep -m1 -E '^(cpu family|model)\s' /proc/cpuinfo
  echo "logical CPUs: $(nproc); amx: $(grep -o 'amx_[a-z0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  command -v lscpu >/dev/null && lscpu
} >"$RES/cpu.txt" 2>&1
head -n 4 "$RES/cpu.txt"
"$B/xtile" info >"$RES/xtile-info.txt" 2>&1
KERNELS=avx512
grep -qE '^\s*amx\s+available' "$RES/xtile-info.txt" && KERNELS=avx512,amx
TH=${THREADS:-$(awk '/default threads/ {print $3; exit}' "$RES/xtile-info.txt")}
echo "== kernels $KERNELS, threads $TH"

OUT=$RES/amx-check BUILD=never BUILD_DIR=$B BUDGET=${AMX_BUDGET:-200} \
  BENCH_MODELS=" " RUN_BENCH=1 THREADS=$TH \
  TEST_FILTER="${TEST_FILTER:-*amx*:*Amx*:*QuantFixture*SameBytes*-AmxObjdump.*}" \
  timeout $((${AMX_BUDGET:-200} + 60)) bash scripts/amx-check.sh >"$RES/amx-check.txt" 2>&1
cat "$RES/amx-check/summary.md" 2>/dev/null || tail -n 20 "$RES/amx-check.txt"
echo "== amx-check: $((SECONDS - T0)) s"

# Each peer carried, if it runs on this CPU (a tiny model first: a peer built for another
# instruction set dies at its first kernel).
VOCAB=$D/fx/tokenizers/vocab-qwen2.gguf
MODELS_DIR=${XTILE_MODELS:-/tmp/xtile-models}
mkdir -p "$MODELS_DIR"
"$B/xtile" synth --preset qwen3-0.6b --layers 1 --type q4_0 --vocab "$VOCAB" \
  -o "$MODELS_DIR/peer-smoke.gguf" >/dev/null 2>&1
PEER_ENV=()
for pv in llama-bench:LLAMA_BENCH ik-llama-bench:IK_LLAMA_BENCH; do
  p=$(peer_path "${pv%%:*}")
  [[ -x "$p" ]] || continue
  if timeout 60 "$p" -m "$MODELS_DIR/peer-smoke.gguf" -p 8 -n 2 -r 1 >"$RES/smoke-${pv%%:*}.txt" 2>&1; then
    PEER_ENV+=("${pv##*:}=$p")
  else
    echo "== ${pv%%:*} does not run on this CPU (left out; $RES/smoke-${pv%%:*}.txt)"
  fi
done
if ((${#PEER_ENV[@]})); then
  models=${PEER_MODELS:-qwen3-0.6b:q4_0 qwen3-0.6b:q8_0 qwen3moe-30b-a3b-4L:q4_0 qwen3-0.6b:q4_k_m}
  peers() {  # RUN_NAME TIMEOUT [VAR=VALUE ...]: bench/peers.sh with this bundle's engines
    local name=$1 limit=$2
    shift 2
    env LLAMA_BENCH= IK_LLAMA_BENCH= "${PEER_ENV[@]}" XTILE="$B/xtile" VOCAB="$VOCAB" \
      XTILE_MODELS="$MODELS_DIR" ROUNDS=1 REPS="${REPS:-3}" THREADS="$TH" KERNELS="$KERNELS" \
      LLAMA_SETTINGS="-fa 1" IK_SETTINGS="-fa 1 -rtr 1" RUN_DIR="$RES/$name" "$@" \
      timeout "$limit" bash bench/peers.sh >"$RES/$name.txt" 2>&1
    local rc=$?
    grep -vE '^peers.sh: \[round' "$RES/$name.txt" | sed -n '/^| model/,/^$/p'
    echo "== $name: $((SECONDS - T0)) s$( ((rc)) && echo ", exit $rc (124: its ${limit} s ran out)")"
  }
  peers peers "${PEER_TIMEOUT:-240}" MODELS="$models" TESTS="${PEER_TESTS:--p 512 -n 128}" \
    XTILE_ARGS=--roofline
  if [[ "${LONG:-0}" == 1 ]]; then
    first=${models%% *}
    peers peers-pp4096 "${LONG_TIMEOUT:-240}" MODELS="$first" TESTS="-p 4096 -n 0" REPS=2
    peers peers-depth "${LONG_TIMEOUT:-240}" MODELS="$first" TESTS="-p 512 -n 128" DEPTH=4096 \
      REPS=2 XTILE_ARGS=--roofline
  fi
fi
synth() {  # NAME:TYPE → the model's path under MODELS_DIR, synthesized when missing
  local name=${1%%:*} type=${1##*:} preset layers=()
  preset=$name
  if [[ $name =~ ^(.*)-([0-9]+)L$ ]]; then preset=${BASH_REMATCH[1]} layers=(--layers "${BASH_REMATCH[2]}"); fi
  [[ $preset == qwen3moe-30b-a3b ]] && preset=qwen3-30b-a3b  # as bench/peers.sh names it
  local m=$MODELS_DIR/$name-$type.gguf
  [[ -f $m ]] || "$B/xtile" synth --preset "$preset" "${layers[@]}" --type "$type" \
    --vocab "$VOCAB" -o "$m" >/dev/null 2>&1
  echo "$m"
}
if [[ -n "${AB:-}" ]]; then
  (
    for r in $(seq "${AB_ROUNDS:-3}"); do
      for spec in ${AB_MODELS:-qwen3-0.6b:q4_0}; do
        m=$(synth "$spec")
        for setting in "" "$AB"; do
          line=$(env $setting "$B/xtile" bench -m "$m" -p 0 -n 128 -r 3 -t "$TH" --roofline 2>&1 |
            grep -E '\| tg128')
          echo "round $r | $spec | ${setting:-default} $line"
        done
      done
    done
  ) >"$RES/ab.txt" 2>&1 &
  ab=$!
  (sleep "${AB_TIMEOUT:-150}"; kill $ab 2>/dev/null) &
  limit=$!
  wait $ab
  kill $limit 2>/dev/null  # so that it cannot outlive the A/B and kill a reused process id
  cat "$RES/ab.txt"
  echo "== ab: $((SECONDS - T0)) s"
fi
if [[ "${SERVE:-0}" == 1 ]]; then
  m=$(synth qwen3-1.7b:q4_0)
  ls=$(peer_path llama-server)
  [[ -x "$ls" ]] || ls=
  env XTILE="$B/xtile" MODEL="$m" LLAMA_SERVER="$ls" THREADS="$TH" OUT="$RES/serve" \
    timeout "${SERVE_TIMEOUT:-200}" bash bench/serve_load.sh >"$RES/serve.txt" 2>&1
  grep -vE '^\s*$' "$RES/serve.txt" | tail -n 20
  echo "== serve: $((SECONDS - T0)) s"
fi
tar -C "$(dirname "$RES")" -czf "$OUT/results.tar.gz" res
echo "== total $((SECONDS - T0)) s; results in $OUT/results.tar.gz"
