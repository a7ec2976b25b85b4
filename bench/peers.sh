#!/usr/bin/env bash
# The docs/PERF.md comparison with ../shared/peers.md: synthesizes the models peers.md measured
# (random weights, the real shapes; kept in $XTILE_MODELS between runs), runs `xtile bench` on
# each (pp512 and tg128, 2 threads, -r $REPS, with the roofline) and prints one markdown table
# with the ratio to the best peer of each test.
#
#   bash bench/peers.sh                 # all models: about 10 minutes on a 2-core machine
#   MODELS="qwen3-0.6b:q4_0" bash bench/peers.sh
#   FULL_MOE=1 bash bench/peers.sh      # also the full 48-layer Qwen3-30B-A3B (17 GB on disk)
set -euo pipefail
cd "$(dirname "$0")/.."
XTILE=${XTILE:-build/xtile}
PEERS=${PEERS:-../shared/peers.md}
DIR=${XTILE_MODELS:-/tmp/xtile-models}
REPS=${REPS:-5}
THREADS=${THREADS:-2}
KERNELS=${KERNELS:-auto}
MODELS=${MODELS:-"qwen3-0.6b:q4_0 qwen3-0.6b:q8_0 qwen3-1.7b:q4_0 qwen3-1.7b:q8_0 qwen3moe-30b-a3b-4L:q4_0"}
if [[ -n "${FULL_MOE:-}" ]]; then MODELS="$MODELS qwen3-30b-a3b:q4_0"; fi
[[ -x "$XTILE" ]] || { echo "no $XTILE: build first (bash scripts/build.sh)" >&2; exit 1; }
[[ -f "$PEERS" ]] || { echo "no $PEERS (the shared folder beside the repository)" >&2; exit 1; }
mkdir -p "$DIR"
args=()
for spec in $MODELS; do
  name=${spec%%:*} type=${spec##*:}
  file="$DIR/$name-$type.gguf"
  if [[ ! -f "$file" ]]; then
    case "$name" in  # peers.md's 4-layer cut of Qwen3-30B-A3B
      qwen3moe-30b-a3b-4L) "$XTILE" synth --preset qwen3-30b-a3b --layers 4 --type "$type" -o "$file" ;;
      *) "$XTILE" synth --preset "$name" --type "$type" -o "$file" ;;
    esac
  fi
  out="$DIR/$name-$type.bench.json"
  "$XTILE" bench -m "$file" -p 512 -n 128 -r "$REPS" -t "$THREADS" --kernels "$KERNELS" \
    -o json --roofline > "$out"
  args+=("$name=$out")
done
python3 bench/peer_table.py "$PEERS" "${args[@]}"
