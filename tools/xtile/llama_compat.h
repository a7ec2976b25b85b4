// llama.cpp's command lines, unchanged: its multi-letter one-dash spellings (-ngl, -ctk, -fa,
// ...), and the flags that choose what a CPU engine has no choice about, accepted with the one
// setting xtile has:
//   -ngl/--n-gpu-layers N   no GPU: every layer runs on the CPU (as in llama.cpp's CPU build)
//   -sm/--split-mode, -mg/--main-gpu, -nkvo/--no-kv-offload   GPU placement: nothing to place
//   -fa/--flash-attn [on|off|auto|0|1]   xtile's attention is always tiled with an online softmax
//                            (flash-style) and exact by its contract; "off" gets a note
//   -mmp/--mmap 0|1, --no-mmap   the file is always mapped (weights repacked at load replace
//                            their pages); 0 gets a note
//   -ub/--ubatch-size N      llama.cpp's physical batch: the forward batch is min(-b, -ub)
// llama.cpp flags for what xtile does not do (a draft model, Hugging Face downloads, tensor
// overrides, ik_llama.cpp's run-time repacking, ...) are refused with a message that says so.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace xtile::cli {

// `lists`: llama-bench's comma lists (-ngl 0,99, -fa 0,1, -mmp 0,1) are accepted.
// `ubatch` receives -ub (0 when absent); forward_batch() combines it with -b.
void add_llama_compat_flags(CLI::App* app, bool lists, int64_t* ubatch);
int64_t forward_batch(int64_t batch, int64_t ubatch);

// Rewrites llama.cpp's multi-letter one-dash flags to xtile's long spellings (CLI11's short
// flags are one letter: "-ngl" would parse as "-n gl"); throws xtile::Error naming a llama.cpp
// flag xtile does not have.
void respell_llama_flags(std::vector<std::string>* args);

}  // namespace xtile::cli
