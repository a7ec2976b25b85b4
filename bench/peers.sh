#!/usr/bin/env bash
# xtile against the other CPU engines on the same GGUF files.
#
# Side-by-side mode (LLAMA_BENCH and/or IK_LLAMA_BENCH name a peer's llama-bench): synthesizes
# each model once (random weights, real shapes, qwen2 tokenizer so the peers load them too), then
# for each round, for each model, runs xtile bench, llama.cpp's llama-bench and ik_llama.cpp's
# llama-bench one after the other, each at every setting worth trying (llama.cpp: its defaults and
# -fa 1; ik_llama.cpp: -fa 1 with and without -rtr 1). Interleaving spreads a shared machine's
# slow minutes over every engine instead of charging them to whichever ran then. Prints one
# markdown table: best t/s of each engine per test (over settings and rounds), the winning
# setting, and xtile / best peer. Figures from another run or machine never enter this table.
#
# peers.md mode (no peer binary given; the fallback): runs xtile bench only and divides by the
# "Best peer per test" figures of ../shared/peers.md, which were measured at another time and
# possibly on another machine.
#
#   LLAMA_BENCH=/p/llama.cpp/build/bin/llama-bench IK_LLAMA_BENCH=/p/ik/build/bin/llama-bench \
#     bash bench/peers.sh                                  # 5 models, pp512 + tg128, 2 rounds
#   ... MODELS="qwen3-0.6b:q4_0 qwen3-0.6b:q4_k_m" TESTS="-p 4096 -n 0" bash bench/peers.sh
#   ... DEPTH=4096 TESTS="-p 512 -n 128" bash bench/peers.sh   # pp512 @ d4096, tg128 @ d4096
#   MODELS="qwen3-0.6b:q4_0" TESTS="-p 32 -n 8" ROUNDS=1 REPS=1 bash bench/peers.sh  # smoke test
#   bash bench/peers.sh                                    # peers.md mode
#
# Environment:
#   MODELS    "name:type[:pure] ..."; name is an `xtile synth --preset` (a trailing -NL keeps N
#             layers; qwen3moe-30b-a3b is the preset qwen3-30b-a3b), type an `xtile synth --type`
#             file type (q4_0, q8_0, q4_k_m, q5_k_m, q6_k, iq4_xs, ...; q4_0 has llama-quantize's
#             Q6_K output), ":pure" writes every weight in the base type (--pure)
#   TESTS     llama-bench test flags: -p LIST, -n LIST, -pg P,G, -d LIST (default "-p 512 -n 128")
#   DEPTH     comma list of depths, as llama-bench -d (4096: every test runs after 4096 tokens in
#             the cache; 0,4096: both). ik_llama.cpp's llama-bench has no -d: its tg at depth D
#             is -gp D,N (the same measurement); it cannot time a prompt at depth
#   ROUNDS    interleaved rounds in side-by-side mode (2); REPS repetitions per run (5)
#   THREADS   threads for every engine (2); KERNELS xtile's --kernels list (auto)
#   LLAMA_SETTINGS, IK_SETTINGS  ';'-separated flag sets to try (defaults ";-fa 1" and
#             "-fa 1;-fa 1 -rtr 1"; an empty set is the engine's defaults)
#   XTILE_ARGS extra xtile bench flags (e.g. --roofline); XTILE (build/xtile); XTILE_MODELS
#             (/tmp/xtile-models: models kept between runs); RUN_DIR (where each run's JSON and log
#             go; default XTILE_MODELS/peers-DATE); VOCAB (tokenizer for synth); PEERS (peers.md)
#   FULL_MOE=1 adds the full 48-layer Qwen3-30B-A3B (17 GB on disk)
set -euo pipefail
cd "$(dirname "$0")/.."
XTILE=${XTILE:-build/xtile}
PEERS=${PEERS:-../shared/peers.md}
DIR=${XTILE_MODELS:-/tmp/xtile-models}
VOCAB=${VOCAB:-../shared/fixtures/tokenizers/vocab-qwen2.gguf}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
KERNELS=${KERNELS:-auto}
TESTS=${TESTS:-"-p 512 -n 128"}
DEPTH=${DEPTH:-}
XTILE_ARGS=${XTILE_ARGS:-}
LLAMA_BENCH=${LLAMA_BENCH:-}
IK_LLAMA_BENCH=${IK_LLAMA_BENCH:-}
LLAMA_SETTINGS=${LLAMA_SETTINGS-";-fa 1"}
IK_SETTINGS=${IK_SETTINGS-"-fa 1;-fa 1 -rtr 1"}
MODELS=${MODELS:-"qwen3-0.6b:q4_0 qwen3-0.6b:q8_0 qwen3-1.7b:q4_0 qwen3-1.7b:q8_0 qwen3moe-30b-a3b-4L:q4_0"}
if [[ -n "${FULL_MOE:-}" ]]; then MODELS="$MODELS qwen3-30b-a3b:q4_0"; fi

die() { echo "peers.sh: $*" >&2; exit 1; }
note() { echo "peers.sh: $*" >&2; }
NOTES=()  # what the table's reader must know (tests an engine cannot run), printed above it
remark() { note "$*"; NOTES+=("$*"); }

[[ -x "$XTILE" ]] || die "no $XTILE: build first (bash scripts/build.sh) or set XTILE"
command -v python3 >/dev/null || die "python3 is needed for the table (bench/peer_table.py)"
for v in LLAMA_BENCH IK_LLAMA_BENCH; do
  [[ -z "${!v}" || -x "${!v}" ]] || die "$v=${!v} is not an executable file"
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, got '$REPS'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
side_by_side=0
[[ -n "$LLAMA_BENCH$IK_LLAMA_BENCH" ]] && side_by_side=1
if ((side_by_side)); then
  note "mode: side by side (${LLAMA_BENCH:+llama.cpp }${IK_LLAMA_BENCH:+ik_llama.cpp }measured in this run)"
else
  note "mode: peers.md fallback (no LLAMA_BENCH or IK_LLAMA_BENCH given)"
  [[ -f "$PEERS" ]] || die "no $PEERS (the shared folder beside the repository), and no peer binary given (LLAMA_BENCH, IK_LLAMA_BENCH)"
fi

# ---- TESTS and DEPTH, parsed once into lists, then written out in each engine's own flags.
P_LIST="" N_LIST="" D_LIST="" PG_LIST=()
read -r -a words <<<"$TESTS"
for ((i = 0; i < ${#words[@]}; i++)); do
  flag=${words[i]} val=${words[i + 1]:-}
  [[ -n "$val" ]] || die "TESTS: $flag needs a value ('$TESTS')"
  case "$flag" in
    -p | --n-prompt) P_LIST=${P_LIST:+$P_LIST,}$val ;;
    -n | --n-gen) N_LIST=${N_LIST:+$N_LIST,}$val ;;
    -pg | --pg) PG_LIST+=("$val") ;;
    -d | --n-depth) D_LIST=${D_LIST:+$D_LIST,}$val ;;
    *) die "TESTS: unknown flag '$flag' (use -p LIST, -n LIST, -pg P,G, -d LIST)" ;;
  esac
  i=$((i + 1))
done
[[ -n "$DEPTH" ]] && D_LIST=${D_LIST:+$D_LIST,}$DEPTH
for l in "$P_LIST" "$N_LIST" "$D_LIST"; do
  [[ -z "$l" || "$l" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "TESTS/DEPTH: '$l' is not a comma list of numbers"
done
# Both flags always given: llama-bench and xtile bench default to -p 512 -n 128 when one is absent.
P_LIST=${P_LIST:-0} N_LIST=${N_LIST:-0} D_LIST=${D_LIST:-0}
nonzero() { tr ',' '\n' <<<"$1" | awk '$1 > 0' | paste -sd, -; }
has_zero_depth=0
[[ ",$D_LIST," == *,0,* ]] && has_zero_depth=1
DEPTHS=$(nonzero "$D_LIST")  # the depths > 0

# engine_args HELP_TEXT NAME: sets TARGS to the test flags for that engine, from what its --help
# offers (-d or, failing that, ik_llama.cpp's -gp), and says which tests it cannot run.
TARGS=()
engine_args() {
  local help=$1 name=$2 pg d n
  TARGS=()
  if [[ -z "$DEPTHS" ]] || grep -qE -- '^[[:space:]]*-d[, ]' <<<"$help"; then
    TARGS=(-p "$P_LIST" -n "$N_LIST")
    [[ "$D_LIST" == 0 ]] || TARGS+=(-d "$D_LIST")
    for pg in "${PG_LIST[@]}"; do TARGS+=("$([[ $name == xtile ]] && echo --pg || echo -pg)" "$pg"); done
    return
  fi
  # No -d: the depth-0 tests as usual, and tg at depth D as "tg N after a prompt of D" where the
  # engine has that (-gp times the generation only, as llama-bench -d does).
  if ((has_zero_depth)); then
    TARGS=(-p "$P_LIST" -n "$N_LIST")
    for pg in "${PG_LIST[@]}"; do TARGS+=("$([[ $name == xtile ]] && echo --pg || echo -pg)" "$pg"); done
  else
    TARGS=(-p 0 -n 0)
  fi
  if grep -qE -- '^[[:space:]]*-gp[, ]' <<<"$help" && [[ -n "$(nonzero "$N_LIST")" ]]; then
    for d in ${DEPTHS//,/ }; do
      for n in $(nonzero "$N_LIST" | tr ',' ' '); do TARGS+=(-gp "$d,$n"); done
    done
    [[ "$(nonzero "$P_LIST")${PG_LIST[*]}" ]] &&
      remark "$name: its llama-bench has no -d; tg at depth measured with -gp DEPTH,N (tg N after a DEPTH-token prompt, the generation timed alone); prompt tests at depth $DEPTHS not measured for it"
  else
    remark "$name: its bench has no -d (not in its --help): tests at depth $DEPTHS skipped for $name"
  fi
  return 0
}
# True when TARGS asks for at least one test.
targs_nonempty() {
  local a
  for a in "${TARGS[@]}"; do [[ "$a" == -gp || "$a" == --pg || "$a" == -pg ]] && return 0; done
  [[ -n "$(nonzero "${TARGS[1]}")$(nonzero "${TARGS[3]}")" ]]
}

# ---- models: synthesized once, kept in $DIR.
mkdir -p "$DIR"
[[ -f "$VOCAB" ]] || { ((!side_by_side)) || die "no tokenizer $VOCAB: the peers cannot load a model without one (set VOCAB)"; VOCAB=""; }
FILES=() NAMES=() TYPES=()
for spec in $MODELS; do
  IFS=: read -r name type pure <<<"$spec"
  [[ -n "$name" && -n "$type" ]] || die "MODELS: '$spec' is not name:type[:pure]"
  [[ -z "$pure" || "$pure" == pure ]] || die "MODELS: '$spec': the third field can only be 'pure'"
  preset=$name layers=()
  if [[ "$name" =~ ^(.*)-([0-9]+)L$ ]]; then preset=${BASH_REMATCH[1]} layers=(--layers "${BASH_REMATCH[2]}"); fi
  [[ "$preset" == qwen3moe-30b-a3b ]] && preset=qwen3-30b-a3b  # peers.md's name for the MoE
  file="$DIR/$name-$type${pure:+-pure}.gguf"
  # The peers refuse a file without tokenizer keys; files of older runs of this script have none.
  # (Captured first: grep -q closing the pipe early would fail the pipeline under pipefail.)
  if [[ -f "$file" && -n "$VOCAB" && $side_by_side == 1 ]] &&
    ! grep -q 'tokenizer\.ggml\.model' <<<"$("$XTILE" info -m "$file" 2>/dev/null || true)"; then
    note "$file has no tokenizer; synthesizing it again with $VOCAB"
    rm -f "$file"
  fi
  if [[ ! -f "$file" ]]; then
    note "synthesizing $file"
    "$XTILE" synth --preset "$preset" "${layers[@]}" --type "$type" ${pure:+--pure} \
      ${VOCAB:+--vocab "$VOCAB"} -o "$file.part" >&2 || die "xtile synth failed for '$spec'"
    mv "$file.part" "$file"
  fi
  FILES+=("$file") NAMES+=("$name") TYPES+=("$type${pure:+ pure}")
done

XTILE_HELP=$("$XTILE" bench --help 2>&1 || true)
engine_args "$XTILE_HELP" xtile
XTILE_TARGS=("${TARGS[@]}")
XTILE_RUNS=1
targs_nonempty || { XTILE_RUNS=0; note "xtile: no test left to run (every test is at a depth xtile bench cannot take)"; }
XCMD=()
xtile_cmd() {  # FILE: sets XCMD
  # shellcheck disable=SC2206  # XTILE_ARGS is a word list on purpose
  XCMD=("$XTILE" bench -m "$1" "${XTILE_TARGS[@]}" -r "$REPS" -t "$THREADS" --kernels "$KERNELS"
        $XTILE_ARGS -o json)
}
# settings_list SETTINGS: the ';'-separated flag sets as an array SETS ("" = the defaults).
SETS=()
settings_list() {
  IFS=';' read -r -a SETS <<<"$1"
  [[ "$1" == *";" ]] && SETS+=("")  # read drops a trailing empty set
  ((${#SETS[@]})) || SETS=("")
  return 0
}

# ---- peers.md mode: xtile alone, against the recorded figures.
if ((!side_by_side)); then
  ((XTILE_RUNS)) || die "nothing to run"
  args=()
  for i in "${!FILES[@]}"; do
    out="$DIR/${NAMES[i]}-${TYPES[i]// /-}.bench.json"
    note "xtile bench ${NAMES[i]} ${TYPES[i]}"
    xtile_cmd "${FILES[i]}"
    "${XCMD[@]}" --roofline >"$out" || die "xtile bench failed on ${FILES[i]}"
    args+=("${NAMES[i]}=$out")
  done
  echo "mode: peers.md fallback: xtile measured now, peers' figures from $PEERS (another run, possibly another machine; set LLAMA_BENCH / IK_LLAMA_BENCH to measure them side by side)"
  echo
  python3 bench/peer_table.py "$PEERS" "${args[@]}"
  exit 0
fi

# ---- side-by-side mode.
RUN_DIR=${RUN_DIR:-$DIR/peers-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RUN_DIR"
MANIFEST="$RUN_DIR/runs.tsv"
: >"$MANIFEST"

# Peers: engine name, binary, settings, test flags (from each binary's own --help).
PEER_NAMES=() PEER_BINS=() PEER_SETTINGS=() PEER_TARGS=()
add_peer() {  # NAME BIN SETTINGS
  local help
  help=$("$2" --help 2>&1 || true)
  grep -q -- '--n-prompt' <<<"$help" || die "$2 does not look like llama-bench (no -p/--n-prompt in its --help)"
  if [[ $1 == llama.cpp ]] && grep -qE -- '^[[:space:]]*-rtr[, ]' <<<"$help"; then
    note "warning: LLAMA_BENCH=$2 has -rtr: that is ik_llama.cpp's llama-bench, labelled llama.cpp here"
  fi
  engine_args "$help" "$1"
  targs_nonempty || { note "$1: no test left to run for it"; return 0; }
  PEER_NAMES+=("$1") PEER_BINS+=("$2") PEER_SETTINGS+=("$3") PEER_TARGS+=("${TARGS[*]}")
}
[[ -n "$LLAMA_BENCH" ]] && add_peer llama.cpp "$LLAMA_BENCH" "$LLAMA_SETTINGS"
[[ -n "$IK_LLAMA_BENCH" ]] && add_peer ik_llama.cpp "$IK_LLAMA_BENCH" "$IK_SETTINGS"

failures=0
# run ENGINE SETTING ROUND MODEL_INDEX CMD...: one timed run; its JSON and stderr kept in $RUN_DIR,
# one manifest line. A failure is recorded (the table says so) and the run goes on.
run() {
  local engine=$1 setting=$2 round=$3 i=$4
  shift 4
  local tag="r$round.${NAMES[i]}-${TYPES[i]// /-}.$engine${setting:+.${setting//[^A-Za-z0-9]/_}}"
  local json="$RUN_DIR/$tag.json" log="$RUN_DIR/$tag.log" t0=$SECONDS rc=0
  echo "$*" >"$log"
  "$@" >"$json" 2>>"$log" || rc=$?
  note "[round $round/$ROUNDS] ${NAMES[i]} ${TYPES[i]}: $engine ${setting:-(defaults)}: $((SECONDS - t0)) s"
  if ((rc)); then
    failures=$((failures + 1))
    note "  FAILED (exit $rc), log $log:"
    tail -n 3 "$log" | sed 's/^/    /' >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "${NAMES[i]}" "${TYPES[i]}" "$engine" \
    "${setting:-defaults}" "$json" "$rc" "$log" >>"$MANIFEST"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# llama.cpp's and ik_llama.cpp's threads spin at barriers: when other processes hold the CPUs, a
# descheduled thread stalls every op (seen here: tg 20x slower in some runs under a compile),
# while xtile's pool sleeps on a futex when oversubscribed. A busy machine favours xtile.
if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
  remark "load average ${load_start%% *} on $(nproc) CPUs at the start: other processes compete for the CPUs, and the peers' spinning thread pools suffer more from that than xtile's; measure on a quiet machine"
fi
t_start=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
  for i in "${!FILES[@]}"; do
    if ((XTILE_RUNS)); then
      xtile_cmd "${FILES[i]}"
      run xtile "--kernels $KERNELS" "$r" "$i" "${XCMD[@]}"
    elif ((r == 1)); then  # keeps xtile's column in the table, empty, with the reason above it
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "${NAMES[i]}" "${TYPES[i]}" xtile \
        "--kernels $KERNELS" - skipped - >>"$MANIFEST"
    fi
    for p in "${!PEER_NAMES[@]}"; do
      settings_list "${PEER_SETTINGS[p]}"
      for s in "${SETS[@]}"; do
        # shellcheck disable=SC2086  # settings and test flags are word lists on purpose
        run "${PEER_NAMES[p]}" "$s" "$r" "$i" "${PEER_BINS[p]}" -m "${FILES[i]}" ${PEER_TARGS[p]} \
          -r "$REPS" -t "$THREADS" $s -o json
      done
    done
  done
done

{
  echo "mode: side by side: every engine measured in this run on the same files, $ROUNDS interleaved round(s), best of settings and rounds"
  echo
  echo "- machine: $("$XTILE" info 2>/dev/null | awk -F'  +' '/^  model/ {m=$3} /^  features/ {f=$3} END {print m " (" f ")"}'), $(nproc) logical CPUs; load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end ($((SECONDS - t_start)) s)"
  if ((XTILE_RUNS)); then
    echo "- xtile: $XTILE at $(git describe --always --dirty 2>/dev/null || echo '?'), \`xtile bench ${XTILE_TARGS[*]} -r $REPS -t $THREADS --kernels $KERNELS${XTILE_ARGS:+ $XTILE_ARGS}\`"
  else
    echo "- xtile: $XTILE not run: no test it can take (see the notes)"
  fi
  for p in "${!PEER_NAMES[@]}"; do
    settings_list "${PEER_SETTINGS[p]}"
    labels=()
    for s in "${SETS[@]}"; do labels+=("${s:-(defaults)}"); done
    echo "- ${PEER_NAMES[p]}: ${PEER_BINS[p]}, \`llama-bench ${PEER_TARGS[p]} -r $REPS -t $THREADS\` with each of: $(IFS='|'; echo "${labels[*]}" | sed 's/|/ | /g')"
  done
  for n in "${NOTES[@]}"; do echo "- note: $n"; done
  echo "- JSON and logs of every run: $RUN_DIR"
  echo
  python3 bench/peer_table.py --runs "$MANIFEST"
} | tee "$RUN_DIR/table.md"
((failures == 0)) || { note "$failures run(s) failed (see the table and $RUN_DIR)"; exit 1; }
