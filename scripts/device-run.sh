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
# ("-p 512 -n 128"), REPS (3), PEER_TIMEOUT (240 s); THREADS (xtile's default).
set -uo pipefail
cd "$(dirname "$0")/.."
D=$(realpath "${1:-.device}")
OUT=$(realpath -m "${OUT:-./device-out}")
RES=$(mktemp -d)/res
mkdir -p "$OUT" "$RES"
tar -C "$D" -xzf "$D/bin.tar.gz"
export LD_LIBRARY_PATH=$D/lib
# The host's libstdc++ when it is new enough, else the carried one.
"$D/build/xtile" --version >/dev/null 2>&1 || export LD_LIBRARY_PATH=$D/lib:$D/lib/std
"$D/build/xtile" --version || { echo "device-run: the carried xtile does not start here" >&2; exit 1; }
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
  mkdir -p "$src/build" && ln -s "$D/build/xtile" "$src/build/xtile" || true
fi
T0=$SECONDS
{
  grep -m1 'model name' /proc/cpuinfo
  grep -m1 -E '^(cpu family|model)\s' /proc/cpuinfo
  echo "logical CPUs: $(nproc); amx: $(grep -o 'amx_[a-z0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  command -v lscpu >/dev/null && lscpu
} >"$RES/cpu.txt" 2>&1
head -n 4 "$RES/cpu.txt"
"$D/build/xtile" info >"$RES/xtile-info.txt" 2>&1
KERNELS=avx512
grep -qE '^\s*amx\s+available' "$RES/xtile-info.txt" && KERNELS=avx512,amx
TH=${THREADS:-$(awk '/default threads/ {print $3; exit}' "$RES/xtile-info.txt")}
echo "== kernels $KERNELS, threads $TH"

OUT=$RES/amx-check BUILD=never BUILD_DIR=$D/build BUDGET=${AMX_BUDGET:-200} \
  BENCH_MODELS=" " RUN_BENCH=1 THREADS=$TH \
  TEST_FILTER="${TEST_FILTER:-*amx*:*Amx*:*QuantFixture*SameBytes*-AmxObjdump.*}" \
  timeout $((${AMX_BUDGET:-200} + 60)) bash scripts/amx-check.sh >"$RES/amx-check.txt" 2>&1
cat "$RES/amx-check/summary.md" 2>/dev/null || tail -n 20 "$RES/amx-check.txt"
echo "== amx-check: $((SECONDS - T0)) s"

peer=$(ls "$D"/peers/llama-bench* 2>/dev/null | head -n 1)
if [[ -n "$peer" ]]; then
  XTILE=$D/build/xtile LLAMA_BENCH=$peer IK_LLAMA_BENCH= VOCAB=$D/fx/tokenizers/vocab-qwen2.gguf \
    XTILE_MODELS=${XTILE_MODELS:-/tmp/xtile-models} \
    MODELS="${PEER_MODELS:-qwen3-0.6b:q4_0 qwen3-0.6b:q8_0 qwen3moe-30b-a3b-4L:q4_0 qwen3-0.6b:q4_k_m}" \
    TESTS="${PEER_TESTS:--p 512 -n 128}" ROUNDS=1 REPS=${REPS:-3} THREADS=$TH KERNELS=$KERNELS \
    XTILE_ARGS="--roofline" RUN_DIR=$RES/peers timeout "${PEER_TIMEOUT:-240}" bash bench/peers.sh \
    >"$RES/peers.txt" 2>&1
  grep -vE '^peers.sh: \[round' "$RES/peers.txt" | tail -n 45
  echo "== peers: $((SECONDS - T0)) s"
fi
tar -C "$(dirname "$RES")" -czf "$OUT/results.tar.gz" res
echo "== total $((SECONDS - T0)) s; results in $OUT/results.tar.gz"
