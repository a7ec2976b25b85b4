// --cpu-mask and --numa for `xtile run` and `xtile bench` (llama.cpp's spellings; see
// docs/ARCHITECTURE.md, "Threads and memory on two sockets").
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cpu/thread_pool.h"

namespace xtile::cli {

struct PlacementFlags {
  std::string cpu_mask;  // hex; empty: not given
  std::string numa;      // distribute | isolate | numactl; empty: not given
};

void add_placement_flags(CLI::App* app, PlacementFlags* flags);

// The pool options for n_threads under the flags (no pinning when neither is given); pins the
// calling thread, which is the pool's thread 0, to the first CPU of the list. Throws
// xtile::Error for a bad mask or mode, or when they leave no CPU this process may use.
PoolOptions apply_placement(const PlacementFlags& flags, int n_threads);

}  // namespace xtile::cli
