// `xtile perplexity -m MODEL -f TEXT [-c 512] [--chunks N] [--kl-divergence-base FILE
// [--kl-divergence]]`: llama-perplexity's perplexity and KL-divergence, same chunks, same scoring,
// same printed forms and the same base-file format (src/model/perplexity.h, kld_base_file.h).
//   - perplexity: "[1]x,[2]y,..." then "Final estimate: PPL = X +/- Y" on stdout;
//   - with --kl-divergence-base FILE (alone): also writes the base log-probabilities to FILE;
//   - with --kl-divergence --kl-divergence-base FILE: compares with the base; the tokens and the
//     context come from the file (-f, when given, must tokenize to the same tokens).
// Loading, tokenizing and timing lines go to stderr, with a progress bar on a terminal.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "cpu/thread_pool.h"
#include "llama_compat.h"
#include "model/kld_base_file.h"
#include "model/perplexity.h"
#include "model/session.h"
#include "model/weights.h"
#include "perplexity_report.h"
#include "tokenizer/tokenizer.h"

namespace xtile::cli {

namespace {
namespace cmd_perplexity {  // unity batches: CMakeLists.txt

struct PerplexityFlags {
  std::string model;
  std::string text_file;
  int64_t ctx = 512;
  CLI::Option* ctx_option = nullptr;  // to tell a given -c from the default
  int64_t batch = 512;
  int64_t ubatch = 0;  // -ub: the forward batch is min(-b, -ub)
  int64_t chunks = -1;
  int threads = 1;
  std::string kernels;
  std::string cache_type = "f16";
  std::string kld_base;
  bool kld = false;
  std::string output = "text";
};

// The text as llama.cpp's -f reads it: the whole file, one trailing newline dropped.
std::string read_text_file(const std::string& path) {
  require_file(path, "text file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  if (!in.good() && !in.eof()) fail("cannot read text file '", path, "'");
  std::string s = os.str();
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Loaded model, tokenizer and the BOS that starts every chunk.
struct Loaded {
  std::unique_ptr<WeightStore> weights;
  std::unique_ptr<Tokenizer> tok;
  int32_t bos = -1;
};

Loaded load(const PerplexityFlags& f, Tier tier, ThreadPool& pool) {
  Loaded l;
  LoadOptions lo;
  lo.tier = tier;
  ProgressBar bar("loading");
  lo.progress = [&bar](uint64_t done, uint64_t total, std::string_view tensor) {
    bar.update(done, total, tensor);
  };
  l.weights = WeightStore::load(f.model, pool, lo);
  bar.finish();
  const ModelConfig& c = l.weights->config();
  std::fprintf(stderr, "xtile: %s (%s, %lld layers, vocabulary %lld): tier %s, %s\n",
               f.model.c_str(), c.arch_name.c_str(), static_cast<long long>(c.n_layer),
               static_cast<long long>(c.n_vocab), std::string(tier_name(tier)).c_str(),
               l.weights->stats().summary().c_str());
  l.tok = Tokenizer::from_gguf(l.weights->file());
  // llama-perplexity asserts the same: an EOS appended to the text would be scored as text.
  if (l.tok->add_eos())
    fail(
        "the vocabulary appends EOS to every text (tokenizer.ggml.add_eos_token); perplexity "
        "would score it (llama-perplexity refuses such models too)");
  l.bos = l.tok->add_bos() ? l.tok->bos() : -1;
  return l;
}

std::vector<int32_t> tokenize(const Loaded& l, const std::string& path) {
  const std::string text = read_text_file(path);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> tokens = l.tok->encode(text, /*add_bos=*/true, /*parse_special=*/false);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "xtile: '%s': %zu bytes, %zu tokens (tokenized in %.1f ms)\n", path.c_str(),
               text.size(), tokens.size(), ms);
  return tokens;
}

void warn_context(int64_t n_ctx, const ModelConfig& c) {
  if (n_ctx > c.n_ctx_train)
    std::fprintf(stderr,
                 "xtile: warning: the model was trained on only %lld context tokens (%lld "
                 "used)\n",
                 static_cast<long long>(c.n_ctx_train), static_cast<long long>(n_ctx));
}

Session make_session(const PerplexityFlags& f, const Loaded& l, ThreadPool& pool, int64_t n_ctx) {
  SessionOptions so;
  so.n_ctx = n_ctx;
  so.n_batch = forward_batch(f.batch, f.ubatch);
  so.kv_type = *kv_type_from_name(f.cache_type);
  return Session(*l.weights, pool, so);
}

void print_plan(const ChunkPlan& plan, const Session& s, Tier tier, int threads) {
  std::fprintf(stderr,
               "xtile: %lld chunks of %lld tokens, the last %lld of each scored; batch %lld, "
               "%s KV cache, tier %s, %d threads\n",
               static_cast<long long>(plan.n_chunk), static_cast<long long>(plan.n_ctx),
               static_cast<long long>(plan.scored_per_chunk()), static_cast<long long>(s.n_batch()),
               s.kv_cache().type_name().c_str(),
               std::string(tier_name(tier)).c_str(), threads);
}

void print_speed(std::chrono::steady_clock::time_point start, const ChunkPlan& plan,
                 int64_t chunks) {
  std::fflush(stdout);  // the results first when both go to one file
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "xtile: %lld chunks in %.2f s (%.2f s per chunk, %.1f tokens/s)\n",
               static_cast<long long>(chunks), s, chunks ? s / chunks : 0.0,
               s > 0 ? static_cast<double>(chunks * plan.n_ctx) / s : 0.0);
}

int run_ppl(const PerplexityFlags& f, const Loaded& l, Tier tier, ThreadPool& pool) {
  const std::vector<int32_t> tokens = tokenize(l, f.text_file);
  const ChunkPlan plan = plan_chunks(static_cast<int64_t>(tokens.size()), f.ctx, f.chunks);
  warn_context(plan.n_ctx, l.weights->config());
  Session session = make_session(f, l, pool, plan.n_ctx);
  SessionEvaluator model(session);
  print_plan(plan, session, tier, f.threads);

  std::unique_ptr<KldBaseWriter> base;
  if (!f.kld_base.empty()) {
    KldBaseHeader h;
    h.n_ctx = static_cast<int32_t>(plan.n_ctx);
    h.n_vocab = static_cast<int32_t>(model.n_vocab());
    h.n_chunk = static_cast<int32_t>(plan.n_chunk);
    base = std::make_unique<KldBaseWriter>(
        f.kld_base, h, std::span<const int32_t>(tokens).first(plan.n_chunk * plan.n_ctx));
  }
  const bool text = f.output == "text";
  ProgressBar bar("perplexity", ProgressBar::Unit::count);
  // On one terminal the bar would overwrite the running line: keep that line for the end.
  const bool defer_line = bar.enabled() && ::isatty(STDOUT_FILENO) == 1;
  std::string line;
  PerplexityRequest req;
  req.tokens = tokens;
  req.plan = plan;
  req.bos = l.bos;
  req.base_out = base.get();
  req.on_chunk = [&](const PerplexityState& s) {
    const std::string piece = chunk_ppl_text(s.chunk, s.chunk_ppl.back());
    line += piece;
    if (text && !defer_line) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
    char detail[64];
    std::snprintf(detail, sizeof(detail), "PPL %.4f", s.ppl());
    bar.update(static_cast<uint64_t>(s.chunk), static_cast<uint64_t>(plan.n_chunk), detail);
  };
  const auto start = std::chrono::steady_clock::now();
  const PerplexityState result = compute_perplexity(model, pool, req);
  bar.finish();
  if (base) {
    base->finish();
    std::fprintf(stderr, "xtile: wrote KL-divergence base '%s' (%lld chunks, %s)\n",
                 f.kld_base.c_str(), static_cast<long long>(plan.n_chunk),
                 format_bytes(KldBaseHeader{static_cast<int32_t>(plan.n_ctx),
                                            static_cast<int32_t>(model.n_vocab()),
                                            static_cast<int32_t>(plan.n_chunk)}
                                  .file_size())
                     .c_str());
  }
  if (text) {
    if (defer_line) std::fputs(line.c_str(), stdout);
    std::printf("\n%s\n", final_estimate_text(result).c_str());
  } else {
    nlohmann::json j = perplexity_json(result, plan);
    j["model"] = f.model;
    j["text"] = f.text_file;
    j["n_tokens"] = tokens.size();
    j["tier"] = std::string(tier_name(tier));
    std::printf("%s\n", j.dump(2).c_str());
  }
  print_speed(start, plan, result.chunk);
  return 0;
}

int run_kld(const PerplexityFlags& f, const Loaded& l, KldBaseReader& base, Tier tier,
            ThreadPool& pool) {
  const KldBaseHeader& h = base.header();
  const ModelConfig& c = l.weights->config();
  if (h.n_vocab != c.n_vocab)
    fail("KL-divergence base '", base.path(), "' has a vocabulary of ", h.n_vocab,
         " tokens, the "
         "model ",
         c.n_vocab, ": the base was computed with another model's vocabulary");
  if (f.ctx_option->count() > 0 && f.ctx != h.n_ctx)
    fail("KL-divergence base '", base.path(), "' was computed with a context of ", h.n_ctx, "; -c ",
         f.ctx, " differs (leave -c out to use the base's)");
  if (!f.text_file.empty()) {
    const std::vector<int32_t> tokens = tokenize(l, f.text_file);
    const std::vector<int32_t>& want = base.tokens();
    size_t i = 0;
    while (i < want.size() && i < tokens.size() && tokens[i] == want[i]) ++i;
    if (i < want.size())
      fail("'", f.text_file, "' does not tokenize to the tokens of KL-divergence base '",
           base.path(), "' (they differ at token ", i, "): another text or another tokenizer");
  }
  ChunkPlan plan;
  plan.n_ctx = h.n_ctx;
  plan.first = h.n_ctx / 2;
  plan.n_chunk = f.chunks < 0 ? h.n_chunk : std::min<int64_t>(h.n_chunk, f.chunks);
  warn_context(plan.n_ctx, c);
  Session session = make_session(f, l, pool, plan.n_ctx);
  SessionEvaluator model(session);
  std::fprintf(stderr, "xtile: KL-divergence against '%s' (%d chunks of %d tokens)\n",
               base.path().c_str(), h.n_chunk, h.n_ctx);
  print_plan(plan, session, tier, f.threads);

  const bool text = f.output == "text";
  ProgressBar bar("kl-divergence", ProgressBar::Unit::count);
  if (text) std::printf("%s\n", kld_table_header().c_str());
  KldRequest req;
  req.base = &base;
  req.max_chunks = plan.n_chunk;
  req.bos = l.bos;
  req.on_chunk = [&](const KldState& s) {
    if (text) {
      bar.clear();
      std::printf("%s\n", kld_table_row(s).c_str());
      std::fflush(stdout);
    }
    char detail[64];
    std::snprintf(detail, sizeof(detail), "KLD %.6f", s.stats.kld().value);
    bar.update(static_cast<uint64_t>(s.chunk), static_cast<uint64_t>(s.n_chunk), detail);
  };
  const auto start = std::chrono::steady_clock::now();
  const KldState result = compute_kl_divergence(model, pool, req);
  bar.finish();
  if (text) {
    std::printf("\n%s", kld_summary_text(result.stats).c_str());
  } else {
    nlohmann::json j = kld_json(result, plan);
    j["model"] = f.model;
    j["base"] = base.path();
    j["tier"] = std::string(tier_name(tier));
    std::printf("%s\n", j.dump(2).c_str());
  }
  print_speed(start, plan, result.chunk);
  return 0;
}

int run_perplexity(const PerplexityFlags& f) {
  require_file(f.model, "model file");
  if (f.output != "text" && f.output != "json")
    fail("-o: unknown output format '", f.output, "' (text, json)");
  if (!kv_type_from_name(f.cache_type))
    fail("--cache-type '", f.cache_type, "': expected ", kKvTypeNames);
  if (f.chunks == 0) fail("--chunks must be at least 1 (or -1: all)");
  if (f.kld && f.kld_base.empty())
    fail(
        "--kl-divergence needs --kl-divergence-base FILE (the base model's log-probabilities, "
        "written by a run without --kl-divergence)");
  if (!f.kld && f.text_file.empty()) fail("give the text to score with -f FILE");
  const Tier tier = resolve_kernels(f.kernels);
  // The base is validated before the model loads: a bad file fails in milliseconds.
  std::unique_ptr<KldBaseReader> base;
  if (f.kld) base = std::make_unique<KldBaseReader>(f.kld_base);
  if (!f.kld && !f.kld_base.empty()) require_output_file(f.kld_base, "KL-divergence base");

  ThreadPool pool(f.threads);
  const Loaded l = load(f, tier, pool);
  return f.kld ? run_kld(f, l, *base, tier, pool) : run_ppl(f, l, tier, pool);
}

}  // namespace cmd_perplexity
}  // namespace

Command register_perplexity(CLI::App& root) {
  using namespace cmd_perplexity;  // this file's helpers
  auto f = std::make_shared<PerplexityFlags>();
  CLI::App* app = root.add_subcommand(
      "perplexity", "perplexity of a text, or KL-divergence against a base (llama-perplexity's)");
  add_model_flag(app, &f->model, true);
  app->add_option("-f,--file", f->text_file, "the text to score")->type_name("FILE");
  f->ctx_option = app->add_option("-c,--ctx-size", f->ctx, "tokens per chunk")
                      ->check(at_least_one())
                      ->capture_default_str()
                      ->type_name("N");
  app->add_option("-b,--batch-size", f->batch, "tokens per forward batch")
      ->check(at_least_one())
      ->capture_default_str()
      ->type_name("N");
  add_llama_compat_flags(app, /*lists=*/false, &f->ubatch);
  app->add_option("--chunks", f->chunks, "chunks to evaluate (-1: all)")
      ->capture_default_str()
      ->type_name("N");
  add_threads_flag(app, &f->threads);
  add_kernels_flag(app, &f->kernels);
  app->add_option("--cache-type", f->cache_type, "K and V cache type: f16, bf16, f32 or q8_0")
      ->capture_default_str()
      ->type_name("TYPE");
  app->add_option("--kl-divergence-base", f->kld_base,
                  "write the log-probabilities to FILE (llama-perplexity's format), or with "
                  "--kl-divergence read them from it")
      ->type_name("FILE");
  app->add_flag("--kl-divergence", f->kld, "compare with the base of --kl-divergence-base");
  app->add_option("-o,--output", f->output, "text or json")->capture_default_str();
  return {app, [f] { return run_perplexity(*f); }};
}

}  // namespace xtile::cli
