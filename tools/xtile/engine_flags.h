// What `xtile serve` and `xtile chat` share: the model and engine flags (llama-server's
// spellings) and loading the model, its tokenizer and the scheduler that runs them.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "cpu/thread_pool.h"
#include "model/weights.h"
#include "common.h"
#include "placement_flags.h"
#include "server/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace xtile::cli {

struct EngineFlags {
  std::string model;
  int threads = 1;
  std::string kernels;
  int64_t ctx = 4096;  // KV positions all slots share; 0: the model's context length
  int slots = 4;
  int64_t batch = 256;
  int64_t ubatch = 0;  // -ub (llama.cpp's physical batch): the forward batch is min(-b, -ub)
  int64_t max_queue = 64;
  CacheTypeFlags cache;
  PlacementFlags placement;
  std::string chat_template;  // --chat-template; empty: the GGUF's
};

// `slots_default`: -np's default (serve: 4, chat: 1).
void add_engine_flags(CLI::App* app, EngineFlags* f, int slots_default);

struct Engine {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<WeightStore> weights;
  std::unique_ptr<Tokenizer> tok;
  server::SchedulerOptions options;
  double load_ms = 0.0;
};

// Checks the flags, then loads the weights (progress bar on a terminal) and the tokenizer.
// Throws xtile::Error naming what is wrong.
Engine load_engine(const EngineFlags& f);

}  // namespace xtile::cli
