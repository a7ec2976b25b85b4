#!/usr/bin/env bash
# Measures a host with Intel AMX in one call, in under 8 minutes: the CPU and its amx_* flags,
# a build if needed, the amx-tier exactness tests, the kernel benchmark amx against avx512 at a
# few shapes, and `xtile bench` (pp512, tg128) on qwen3-0.6b Q4_0 / Q8_0 / Q4_K_M and the
# Qwen3-30B-A3B 4-layer cut with --kernels avx512,amx. Everything goes under $OUT (else
# ./amx-check-out): one log per step, summary.md with the tables and each step's status.
#
# A failed or timed-out step is recorded and the next one runs: the point of the script is to
# bring back as much as one visit to a borrowed machine allows. Each step runs under a time cap,
# and no step starts past the overall budget, so the whole stays within BUDGET seconds.
#
# On a CPU without AMX it says so first and runs what it can: the tests (amx-emu, the same kernel
# source on software tiles); the benchmarks only with RUN_BENCH=1 (then on avx512 alone).
#
#   bash scripts/amx-check.sh
#   OUT=/tmp/amx bash scripts/amx-check.sh
#   # smoke test on a machine without AMX, with an existing build and tiny benchmarks:
#   BUILD=never RUN_BENCH=1 BENCH_ARGS="-p 16 -n 4 -r 1" BENCH_MODELS="qwen3-0.6b:q4_0" \
#     KBENCH_FILTER='^q4_0/avx512/2048x2048/M:(1|16)(/|$)' bash scripts/amx-check.sh
#
# Environment: OUT; BUILD_DIR (build); BUILD auto|never|always (auto: build when a binary is
# missing or older than the sources); THREADS (default: xtile's, the physical cores); BUDGET
# (seconds, 450); XTILE_MODELS (/tmp/xtile-models: synthesized models, reused); BENCH_MODELS
# ("name:type ...", name an `xtile synth` preset with an optional -NL layer cut); BENCH_ARGS
# ("-p 512 -n 128 -r 3"); KBENCH_FILTER, KBENCH_MIN_TIME (0.25 s); TEST_FILTER; RUN_BENCH (0|1).
set -euo pipefail
OUT_DIR=$(realpath -m "${OUT:-./amx-check-out}")
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD=${BUILD:-auto}
BUDGET=${BUDGET:-450}
THREADS=${THREADS:-}
MODELS_DIR=${XTILE_MODELS:-/tmp/xtile-models}
BENCH_MODELS=${BENCH_MODELS:-"qwen3-0.6b:q4_0 qwen3-0.6b:q8_0 qwen3-30b-a3b-4L:q4_0 qwen3-0.6b:q4_k_m"}
BENCH_ARGS=${BENCH_ARGS:-"-p 512 -n 128 -r 3"}
KBENCH_MIN_TIME=${KBENCH_MIN_TIME:-0.25}
TEST_FILTER=${TEST_FILTER:-'*amx*:*Amx*:*QuantFixture*SameBytes*'}
XTILE=$BUILD_DIR/xtile
TESTS_BIN=$BUILD_DIR/tests/xtile_tests
KBENCH=$BUILD_DIR/bench/xtile_kernel_bench
case "$BUILD" in auto | never | always) ;; *) echo "BUILD must be auto, never or always" >&2; exit 2 ;; esac
[[ "$BUDGET" =~ ^[0-9]+$ ]] || { echo "BUDGET must be a number of seconds" >&2; exit 2; }

mkdir -p "$OUT_DIR" "$MODELS_DIR"
SUMMARY=$OUT_DIR/summary.md
STEPS=$OUT_DIR/.steps
: >"$STEPS"
START=$SECONDS
n_step=0 n_failed=0
say() { echo "amx-check: $*" >&2; }

# step NAME CAP_SECONDS CMD...: runs CMD with stdout and stderr in NN-NAME.log, under a timeout
# of CAP or what is left of the budget, whichever is less; records the outcome; never fails.
step() {
  local name=$1 cap=$2
  shift 2
  n_step=$((n_step + 1))
  local log
  log=$OUT_DIR/$(printf '%02d' "$n_step")-$name.log
  local left=$((BUDGET - (SECONDS - START)))
  if ((left < 15)); then
    say "$name: skipped, the time budget (${BUDGET} s) is spent"
    printf '%s\t%s\t%s\t%s\n' "$name" "skipped: time budget spent" 0 "-" >>"$STEPS"
    return 1
  fi
  local t=$((cap < left ? cap : left)) t0=$SECONDS rc=0 status
  say "$name (up to $t s) ..."
  echo "\$ $*" >"$log"
  timeout -k 5 "$t" "$@" >>"$log" 2>&1 </dev/null || rc=$?
  case $rc in
    0) status=ok ;;
    124 | 137) status="TIMED OUT after $t s" ;;
    *) status="FAILED (exit $rc)" ;;
  esac
  ((rc == 0)) || n_failed=$((n_failed + 1))
  say "$name: $status, $((SECONDS - t0)) s, log $log"
  ((rc == 0)) || tail -n 5 "$log" | sed 's/^/    /' >&2
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" "$log" >>"$STEPS"
  return "$rc"
}
skip() {  # NAME REASON
  n_step=$((n_step + 1))
  say "$1: skipped: $2"
  printf '%s\t%s\t%s\t%s\n' "$1" "skipped: $2" 0 "-" >>"$STEPS"
}

# ---- 1. The CPU, before anything else: if the rest fails, this is still worth having.
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm)"
  echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "logical CPUs: $(nproc); $(grep -m1 MemTotal /proc/meminfo | tr -s ' ')"
  echo "amx flags: $(grep -o 'amx_[a-z0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  command -v lscpu >/dev/null && lscpu
} >"$OUT_DIR/00-cpu.log" 2>&1 || true
head -n 5 "$OUT_DIR/00-cpu.log" >&2
AMX_FLAGS=$(grep -o 'amx_[a-z0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ' || true)
HAS_AMX=0
[[ -n "$AMX_FLAGS" ]] && HAS_AMX=1
RUN_BENCH=${RUN_BENCH:-$HAS_AMX}
if ((HAS_AMX)); then
  say "AMX flags: $AMX_FLAGS"
elif ((RUN_BENCH)); then
  say "NO AMX on this CPU (no amx_* flag in /proc/cpuinfo): running what it can, the amx-emu" \
    "exactness tests, and the benchmarks on avx512 alone (RUN_BENCH=1)"
else
  say "NO AMX on this CPU (no amx_* flag in /proc/cpuinfo): running what it can, the amx-emu" \
    "exactness tests; benchmarks skipped (RUN_BENCH=1 runs them on avx512 alone)"
fi

# ---- 2. Build if needed. Debian packages first when missing (only those the build needs: the
# fuzzers' clang would cost a minute of the budget for nothing).
build_needed() {
  [[ "$BUILD" == always ]] && return 0
  [[ "$BUILD" == never ]] && return 1
  local b
  for b in "$XTILE" "$TESTS_BIN" "$KBENCH"; do [[ -x "$b" ]] || return 0; done
  # Sources newer than the oldest binary: a copied tree with a stale build folder.
  [[ -n "$(find src tools tests bench CMakeLists.txt -newer "$XTILE" -print -quit 2>/dev/null)" ]]
}
install_deps() {
  local pkgs=(g++ cmake make pkg-config libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev
    libcli11-dev nlohmann-json3-dev binutils) missing=() p sudo=""
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || { echo "all build packages present"; return 0; }
  echo "missing: ${missing[*]}"
  [[ "$(id -u)" -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}
export -f install_deps
if build_needed; then
  if command -v dpkg >/dev/null && command -v apt-get >/dev/null; then
    step deps 200 bash -c 'set -euo pipefail; install_deps' || true
  else
    skip deps "not a Debian system: g++, cmake, gtest/gmock, Google Benchmark, CLI11, nlohmann-json and pcre2 must be installed"
  fi
  step build 300 env BUILD_DIR="$BUILD_DIR" bash scripts/build.sh || true
else
  skip build "BUILD=$BUILD and $BUILD_DIR has xtile, xtile_tests and xtile_kernel_bench"
fi

# ---- 3. What xtile sees: CPU model, features, tiers (and why a tier is not available).
KERNELS=avx512 AMX_TIER=0 DEF_THREADS=""
if step xtile-info 30 "$XTILE" info; then
  info_log=$OUT_DIR/$(printf '%02d' "$n_step")-xtile-info.log
  sed -n '/^CPU/,/selected/p' "$info_log" >&2
  if grep -qE '^\s*amx\s+available' "$info_log"; then
    AMX_TIER=1 KERNELS=avx512,amx
  elif ((HAS_AMX)); then
    say "the CPU has AMX but xtile's amx tier is not available (see the reason above): benchmarks on avx512 alone"
  fi
  DEF_THREADS=$(awk '/default threads/ {print $3; exit}' "$info_log")
fi
THREADS=${THREADS:-${DEF_THREADS:-$(nproc)}}

# ---- 4. Exactness: the amx and amx-emu tiers against ref, and the fixture files' bytes on every
# tier and thread count.
TESTS_LOG=""
if [[ -x "$TESTS_BIN" ]]; then
  step tests 150 "$TESTS_BIN" --gtest_filter="$TEST_FILTER" --gtest_color=no || true
  TESTS_LOG=$OUT_DIR/$(printf '%02d' "$n_step")-tests.log
else
  skip tests "no $TESTS_BIN (build failed or XTILE_TESTS=OFF)"
fi

# ---- 5. Kernel benchmark, amx against avx512: three Qwen3-1.7b shapes, M = 1 (GEMV), 16, 128,
# 512; q4_0, q8_0 and q4_K, and q6_K (its byte-plane tiles) on one shape. About 80 cases at
# KBENCH_MIN_TIME each plus the packing.
KBENCH_JSON=$OUT_DIR/kernels.json
KBENCH_FILTER=${KBENCH_FILTER:-"^((q4_0|q8_0|q4_K)/(avx512|amx)/(2048x2048|6144x2048|2048x6144)|q6_K/(avx512|amx)/2048x6144)/M:(1|16|128|512)(/|\$)"}
if ((!RUN_BENCH)); then
  skip kernel-bench "no AMX (RUN_BENCH=1 runs it on avx512 alone)"
elif [[ -x "$KBENCH" ]]; then
  rm -f "$KBENCH_JSON"  # an older run's figures must not pass for this one's
  step kernel-bench 150 "$KBENCH" --threads="$THREADS" --benchmark_filter="$KBENCH_FILTER" \
    --benchmark_min_time="$KBENCH_MIN_TIME" --benchmark_color=false \
    --benchmark_out="$KBENCH_JSON" --benchmark_out_format=json || true
else
  skip kernel-bench "no $KBENCH (build failed, or Google Benchmark missing)"
fi

# ---- 6. Whole models: synthesized (random weights, real shapes), then xtile bench per model.
BENCH_JSONS=()
if ((!RUN_BENCH)); then
  skip models "no AMX (RUN_BENCH=1 runs them on avx512 alone)"
elif [[ ! -x "$XTILE" ]]; then
  skip models "no $XTILE"
else
  for spec in $BENCH_MODELS; do
    name=${spec%%:*} type=${spec##*:} preset=${spec%%:*} layers=()
    if [[ "$name" =~ ^(.*)-([0-9]+)L$ ]]; then preset=${BASH_REMATCH[1]} layers=(--layers "${BASH_REMATCH[2]}"); fi
    file=$MODELS_DIR/$name-$type.gguf
    if [[ ! -f "$file" ]]; then
      # Written to .part, then renamed: a timed-out synth leaves no truncated model behind.
      step "synth-$name-$type" 120 bash -c '"$1" synth --preset "$2" "${@:5}" --type "$3" -o "$4.part" && mv "$4.part" "$4"' \
        _ "$XTILE" "$preset" "$type" "$file" "${layers[@]}" || continue
    fi
    json=$OUT_DIR/bench-$name-$type.json
    rm -f "$json"
    # shellcheck disable=SC2086  # BENCH_ARGS is a word list on purpose
    step "bench-$name-$type" 180 bash -c 'out=$1; shift; "$@" >"$out"' _ "$json" "$XTILE" bench -m "$file" \
      $BENCH_ARGS -t "$THREADS" --kernels "$KERNELS" --roofline -o json &&
      BENCH_JSONS+=("$name $type=$json")
  done
fi

# ---- 7. Summary.
{
  echo "# amx-check, $(date -u +%FT%TZ)"
  echo
  echo '```'
  head -n 5 "$OUT_DIR/00-cpu.log"
  echo "xtile: $(git describe --always --dirty 2>/dev/null || echo '?'), threads $THREADS, kernels $KERNELS"
  if ((!HAS_AMX)); then
    echo "NO AMX on this CPU: amx-emu tests$( ((RUN_BENCH)) && echo ", benchmarks on avx512 alone" || echo " only")"
  elif ((!AMX_TIER)); then
    echo "the CPU has AMX but xtile's amx tier is not available (see the xtile-info log)"
  fi
  echo '```'
  echo
  echo "## Steps"
  echo
  echo "| step | status | seconds | log |"
  echo "|---|---|---:|---|"
  while IFS=$'\t' read -r name status secs log; do
    echo "| $name | $status | $secs | ${log#"$OUT_DIR"/} |"
  done <"$STEPS"
  if [[ -n "$TESTS_LOG" && -f "$TESTS_LOG" ]]; then
    echo
    echo "## Tests (\`--gtest_filter='$TEST_FILTER'\`)"
    echo
    echo '```'
    # gtest's totals, the failed tests once each (the list at the end), and why tiers were skipped.
    grep -E '^\[(==========|  PASSED  |  SKIPPED |  FAILED  )\] [0-9]+ tests?' "$TESTS_LOG" ||
      echo "(no gtest totals: see the log)"
    grep -E '^\[  FAILED  \] [^ ]+$' "$TESTS_LOG" || true
    grep -E 'not run on this CPU|GTEST_SKIP|Skipped' "$TESTS_LOG" | sed 's/ *$//' | sort | uniq -c |
      sort -rn | head -n 5 || true
    echo '```'
  fi
  if command -v python3 >/dev/null; then
    python3 - "$KBENCH_JSON" "${BENCH_JSONS[@]}" <<'PY' || echo "(summary tables failed: see the JSON files)"
import json, os, re, sys
kjson, benches = sys.argv[1], sys.argv[2:]
if os.path.exists(kjson):
    try:
        runs = json.load(open(kjson))["benchmarks"]
    except (OSError, ValueError, KeyError) as e:
        runs = []
        print(f"\n(kernels.json unreadable: {e})")
    cells = {}
    for r in runs:
        m = re.match(r"([^/]+)/([^/]+)/(\d+x\d+)/M:(\d+)", r["name"])
        if m and r.get("run_type", "iteration") == "iteration":
            # The counters were built as G per second already (kernels_bench.cpp).
            cells[(m[1], m[3], int(m[4]), m[2])] = (r["GOPs"], r["GBs"], r.get("label", ""))
    keys = sorted({k[:3] for k in cells}, key=lambda k: (k[0], k[1], k[2]))
    if keys:
        print("\n## Kernels, amx against avx512 (GOP/s; GB/s of weights)\n")
        print("| type | N×K | M | avx512 | amx | amx / avx512 | kernels |")
        print("|---|---|---:|---:|---:|---:|---|")
        for t, s, m in keys:
            a, x = cells.get((t, s, m, "avx512")), cells.get((t, s, m, "amx"))
            fa = f"{a[0]:.1f} ({a[1]:.1f})" if a else "—"
            fx = f"{x[0]:.1f} ({x[1]:.1f})" if x else "—"
            ratio = f"{x[0] / a[0]:.2f}×" if a and x and a[0] else "—"
            names = " / ".join(c[2].split()[0] for c in (a, x) if c and c[2])
            print(f"| {t} | {s} | {m} | {fa} | {fx} | {ratio} | {names} |")
rows = []
for arg in benches:
    label, _, path = arg.partition("=")
    try:
        for r in json.load(open(path)):
            rows.append((label, r))
    except (OSError, ValueError) as e:
        print(f"\n({path} unreadable: {e})")
if rows:
    print("\n## xtile bench (t/s, mean ± sd; roofline: fraction of the measured ceiling)\n")
    tiers = []
    for _, r in rows:
        if r["tier"] not in tiers:
            tiers.append(r["tier"])
    print("| model | test | threads | " + " | ".join(tiers) + (" | amx / avx512 |" if {"amx", "avx512"} <= set(tiers) else " |"))
    print("|---|---|---:|" + "---:|" * len(tiers) + ("---:|" if {"amx", "avx512"} <= set(tiers) else ""))
    seen = {}
    for label, r in rows:
        seen.setdefault((label, r["test"], r["n_threads"]), {})[r["tier"]] = r
    for (label, test, threads), by_tier in seen.items():
        cells = []
        for t in tiers:
            r = by_tier.get(t)
            if r is None:
                cells.append("—")
                continue
            roof = f", {100 * r['roofline']:.0f}% of {r['roofline_of']}" if "roofline" in r else ""
            cells.append(f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}{roof}")
        line = f"| {label} | {test} | {threads} | " + " | ".join(cells) + " |"
        if {"amx", "avx512"} <= set(tiers):
            a, x = by_tier.get("avx512"), by_tier.get("amx")
            line += f" {x['avg_ts'] / a['avg_ts']:.2f}× |" if a and x else " — |"
        print(line)
PY
  fi
  echo
  echo "total: $((SECONDS - START)) s (budget $BUDGET s); $n_failed step(s) failed or timed out"
} >"$SUMMARY" 2>&1
cat "$SUMMARY"
say "all output under $OUT_DIR (summary.md and one log per step); total $((SECONDS - START)) s"
