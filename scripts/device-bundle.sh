#!/usr/bin/env bash
# Packs what a machine without xtile's build packages needs to run scripts/amx-check.sh and
# bench/peers.sh from a copy of this repository: a borrowed AMX host (e.g. the device machine
# of a session: no Debian, no network). Built here, run there with scripts/device-run.sh.
#
#   bash scripts/device-bundle.sh [DIR] [PEER ...]     # DIR: .device (git-ignored)
#   PEER: llama=PATH or ik=PATH (a llama-bench of llama.cpp / ik_llama.cpp); a bare PATH is llama;
#         server=PATH (llama.cpp's llama-server, for device-run.sh's SERVE=1)
#
# DIR/bin.tar.xz   build/{xtile,tests/xtile_tests,bench/xtile_kernel_bench} (stripped), lib/ (the
#                  shared libraries they load beyond glibc; libstdc++ and libgcc_s in lib/std,
#                  used only when the host's own are older; glibc's loader, libc and libm in
#                  lib/glibc, used only when the host's glibc is older than this machine's),
#                  peers/{llama-bench,ik-llama-bench} (stripped). xz: both peers (~30 MB
#                  stripped) fit the device tool's 64 MiB with the fixtures (~17 MB compressed).
# DIR/fx/          a subset of ../shared/fixtures (~33 MB): models/, the qwen2 and llama-spm
#                  vocabularies (the peers need qwen2 to load synthesized models) and the
#                  tokenizer cases, seven llama-quantize files with their logits and oracle
# DIR/source-dir   this checkout's path: the test binary looks for SOURCE/../shared/fixtures
#                  (compiled in); device-run.sh links fx there
#
# A peer built with -march=native runs only on a CPU with this machine's instruction set;
# device-run.sh tries each peer on a tiny model first and leaves out one that does not run.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.device}
shift || true
BUILD_DIR=${BUILD_DIR:-build}
SHARED=$(realpath -m "$PWD/../shared")
for b in xtile tests/xtile_tests bench/xtile_kernel_bench; do
  [[ -x "$BUILD_DIR/$b" ]] || { echo "device-bundle: no $BUILD_DIR/$b (bash scripts/build.sh first)" >&2; exit 1; }
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build/tests" "$stage/build/bench" "$stage/lib/std" "$stage/peers"
for b in xtile tests/xtile_tests bench/xtile_kernel_bench; do strip -o "$stage/build/$b" "$BUILD_DIR/$b"; done
for p in "$@"; do
  case $p in
    llama=*) name=llama-bench path=${p#llama=} ;;
    ik=*) name=ik-llama-bench path=${p#ik=} ;;
    server=*) name=llama-server path=${p#server=} ;;
    *) name=llama-bench path=$p ;;
  esac
  [[ -x "$path" ]] || { echo "device-bundle: $path is not an executable" >&2; exit 1; }
  strip -o "$stage/peers/$name" "$path"
done
mkdir -p "$stage/lib/glibc"
# Every library the binaries load, except glibc's own (the host's must be used).
for f in "$stage"/build/xtile "$stage"/build/*/* "$stage"/peers/*; do
  [[ -f "$f" ]] && ldd "$f" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*)
      cp -L "$lib" "$stage/lib/glibc/" ;;
    libstdc++.so.* | libgcc_s.so.*) cp -L "$lib" "$stage/lib/std/" ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
mkdir -p "$DIR"
cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib/glibc/"
rm -f "$DIR/bin.tar.gz"  # an older bundle's
tar -C "$stage" -cf - build lib peers | xz -T0 -6 >"$DIR/bin.tar.xz"
F=$SHARED/fixtures
rm -rf "$DIR/fx"
mkdir -p "$DIR/fx/models" "$DIR/fx/tokenizers" "$DIR/fx/quant"
cp "$F"/models/* "$DIR/fx/models/"
cp "$F"/tokenizers/vocab-qwen2.gguf "$F"/tokenizers/vocab-llama-spm.gguf "$F"/tokenizers/*.inp \
  "$F"/tokenizers/*.out "$DIR/fx/tokenizers/"
for f in tiny-qwen3-{q4_0,q8_0,q4_k_m,q6_k,iq4_xs,q5_0} mini-qwen3moe-q4_k_m; do
  cp "$F/quant/$f".{gguf,llama.tsv,oracle.tsv} "$DIR/fx/quant/"
done
cp "$F/quant/prompt-ids.txt" "$DIR/fx/quant/"
echo "$PWD" >"$DIR/source-dir"
if [[ "$(realpath -m "$DIR")" == "$PWD"/* ]] && ! git check-ignore -q "$DIR/bin.tar.xz"; then
  echo "device-bundle: $DIR is not ignored by git: add it to .git/info/exclude" >&2
fi
echo "device-bundle: $DIR ($(du -sh "$DIR" | cut -f1)): bin.tar.xz $(du -h "$DIR/bin.tar.xz" | cut -f1), peers: $(ls "$stage/peers" | tr '\n' ' ')"
