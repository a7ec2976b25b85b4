#!/usr/bin/env bash
# Fuzzes the GGUF reader with libFuzzer: fuzz/run.sh [seconds=60]
#
# Builds only xtile_gguf_fuzz (clang, ASan+UBSan) in build-fuzz/, writes a seed corpus (small
# valid files from xtile_gguf_seeds, plus the fixture GGUFs cut to their first 64 KiB: most of
# a model is tensor data, the parser's work is in the header), then fuzzes for the given time.
# New interesting inputs accumulate in fuzz/corpus-run/ (git-ignored) across runs. Exits
# non-zero when libFuzzer finds a crash; the input is saved under build-fuzz/artifacts/.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
jobs="${XTILE_FUZZ_BUILD_JOBS:-2}"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DXTILE_FUZZ=ON -DXTILE_TESTS=OFF -DXTILE_BENCH=OFF >/dev/null
make -C "$build" -j"$jobs" xtile_gguf_fuzz xtile_gguf_seeds >/dev/null

seeds="$build/seeds"
rm -rf "$seeds"
mkdir -p "$seeds" "$root/fuzz/corpus-run" "$build/artifacts"
"$build/fuzz/xtile_gguf_seeds" "$seeds"
shopt -s nullglob
for f in "$root"/../shared/fixtures/models/*.gguf "$root"/../shared/fixtures/tokenizers/*.gguf; do
  head -c 65536 "$f" >"$seeds/fixture-$(basename "$f")"
done
echo "seeds: $(ls "$seeds" | wc -l) files in $seeds"

# -timeout: one input taking seconds is a finding too (the parser is linear in the input).
exec "$build/fuzz/xtile_gguf_fuzz" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -dict="$root/fuzz/gguf.dict" -artifact_prefix="$build/artifacts/" -print_final_stats=1 \
  "$root/fuzz/corpus-run" "$seeds"
