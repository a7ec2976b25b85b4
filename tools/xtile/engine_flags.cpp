#include "engine_flags.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "base/error.h"
#include "common.h"
#include "llama_compat.h"
#include "model/kv_cache.h"

namespace xtile::cli {

void add_engine_flags(CLI::App* app, EngineFlags* f, int slots_default) {
  f->slots = slots_default;
  add_model_flag(app, &f->model, true);
  add_threads_flag(app, &f->threads);
  add_placement_flags(app, &f->placement);
  add_kernels_flag(app, &f->kernels);
  app->add_option("-c,--ctx-size", f->ctx,
                  "KV cache positions shared by all slots; one request may use them all "
                  "(capped to the model's context; 0: the model's context)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str()
      ->type_name("N");
  app->add_option("--parallel", f->slots, "slots: requests generating at once (-np)")
      ->check(at_least_one())
      ->capture_default_str()
      ->type_name("N");
  app->add_option("-b,--batch-size", f->batch,
                  "rows per forward pass: the next token of every generating slot plus a chunk "
                  "of waiting prompts")
      ->check(at_least_one())
      ->capture_default_str()
      ->type_name("N");
  add_cache_type_flags(app, &f->cache);
  add_chat_template_flag(app, &f->chat_template);
  add_llama_compat_flags(app, /*lists=*/false, &f->ubatch);
}

Engine load_engine(const EngineFlags& f) {
  require_file(f.model, "model file");
  const auto [kv_type_k, kv_type_v] = resolve_cache_types(f.cache);
  const Tier tier = resolve_kernels(f.kernels);
  Engine e;
  const auto start = std::chrono::steady_clock::now();
  e.pool = std::make_unique<ThreadPool>(f.threads, apply_placement(f.placement, f.threads));
  LoadOptions lo;
  lo.tier = tier;
  ProgressBar bar("loading");
  lo.progress = [&bar](uint64_t done, uint64_t total, std::string_view tensor) {
    bar.update(done, total, tensor);
  };
  e.weights = WeightStore::load(f.model, *e.pool, lo);
  bar.finish();
  e.tok = Tokenizer::from_gguf(e.weights->file());
  e.load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  const int64_t n_train = e.weights->config().n_ctx_train;
  server::SchedulerOptions& o = e.options;
  o.n_slots = f.slots;
  o.kv_budget = f.ctx == 0 ? n_train : f.ctx;
  o.n_ctx = std::min(o.kv_budget, n_train);
  o.n_batch = forward_batch(f.batch, f.ubatch);
  o.max_queue = f.max_queue;
  o.kv_type_k = kv_type_k;
  o.kv_type_v = kv_type_v;
  return e;
}

}  // namespace xtile::cli
