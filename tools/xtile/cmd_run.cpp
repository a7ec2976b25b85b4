// `xtile run -m FILE -p TEXT [-n N] ...`: loads a model (repacking its weights for the chosen
// kernel tier), processes the prompt in batches of -b, generates up to -n tokens and streams
// them; timings like llama.cpp's at the end, on stderr. Without sampling flags decoding is
// greedy (temperature 0), so a run is reproducible and the same on every tier; any sampling flag
// switches to llama.cpp's sampler chain with llama.cpp's defaults for the flags not given
// (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05), seeded by -s (default: random, printed).
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "llama_compat.h"
#include "model/chat_template.h"
#include "model/generate.h"
#include "model/sampler.h"
#include "model/session.h"
#include "model/weights.h"
#include "output_grammar.h"
#include "placement_flags.h"
#include "sampler_flags.h"
#include "tokenizer/tokenizer.h"

namespace xtile::cli {

namespace {
namespace cmd_run {  // unity batches: CMakeLists.txt

// -s's default, as llama.cpp's LLAMA_DEFAULT_SEED: draw a random seed.
constexpr uint64_t kRandomSeed = 0xFFFFFFFF;

struct RunFlags {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  std::string prompt_ids;
  int64_t n_predict = 128;
  int threads = 1;
  uint64_t seed = kRandomSeed;
  int64_t ctx = 4096;
  int64_t batch = 512;
  int64_t ubatch = 0;  // -ub: the forward batch is min(-b, -ub)
  CacheTypeFlags cache;
  SamplerFlags sampling;
  int repeat_last_n = 64;
  std::vector<std::string> logit_bias;
  std::string kernels;
  bool amx = false;
  bool no_amx = false;
  std::string logits_path;
  bool ids = false;
  bool chat = false;
  bool no_escape = false;   // llama.cpp's --no-escape: the prompt as written
  bool ignore_eos = false;  // generate all -n tokens, past end-of-generation tokens
  bool no_conversation = false;
  std::string chat_template;  // --chat-template; empty: the GGUF's
  bool no_bos = false;
  PlacementFlags placement;
  OutputGrammarFlags output_grammar;  // --grammar, --grammar-file, -j
};

std::string read_prompt_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read prompt file '", path, "'");
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) fail("cannot read prompt file '", path, "'");
  std::string s = os.str();
  if (!s.empty() && s.back() == '\n') s.pop_back();  // as llama.cpp's -f
  return s;
}

// The -p or -f text, escapes processed unless --no-escape (llama.cpp's -e, on by default there).
std::string prompt_text(const RunFlags& f) {
  const std::string text = f.prompt_file.empty() ? f.prompt : read_prompt_file(f.prompt_file);
  return f.no_escape ? text : process_escapes(text);
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX)
      fail("--prompt-ids: '", item, "' is not a token id (expected ids like 1,403,407)");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

// The further samplers switched on, for the summary line (", typical 0.90, dry 0.80").
std::string further_samplers(const SamplerParams& p) {
  std::string out;
  auto add = [&](bool on, const char* name, double v) {
    if (!on) return;
    char buf[64];
    std::snprintf(buf, sizeof buf, ", %s %.2f", name, v);
    out += buf;
  };
  add(p.typical_p < 1.0f, "typical", p.typical_p);
  add(p.top_n_sigma > 0.0f, "top-nsigma", p.top_n_sigma);
  add(p.xtc_probability > 0.0f, "xtc", p.xtc_probability);
  add(p.dynatemp_range > 0.0f, "dynatemp-range", p.dynatemp_range);
  add(p.mirostat != 0, "mirostat", p.mirostat);
  add(p.dry_multiplier > 0.0f, "dry", p.dry_multiplier);
  return out;
}

// The sampler when a sampling flag was given; nullopt: greedy. --logit-bias alone keeps greedy
// decoding (temperature 0) over the biased logits.
// `tok` is null with --prompt-ids and --ids (no text either way): DRY's breakers then need one.
std::optional<SamplerParams> sampler_params(const RunFlags& f, int64_t n_vocab,
                                            const Tokenizer* tok) {
  const bool sampling = f.sampling.any();
  if (!sampling && f.logit_bias.empty()) return std::nullopt;
  SamplerParams p;
  if (!sampling) p.temperature = 0.0f;
  p.logit_bias = parse_logit_bias(f.logit_bias, n_vocab);
  f.sampling.apply(&p, tok);
  p.repeat_last_n = f.repeat_last_n;
  p.seed = f.seed == kRandomSeed ? std::random_device{}() : f.seed;
  return p;
}

Tier choose_tier(const RunFlags& f) {
  if ((f.amx || f.no_amx) && !f.kernels.empty())
    fail("--amx/--no-amx cannot be combined with --kernels");
  if (f.amx && f.no_amx) fail("--amx and --no-amx contradict each other");
  const CpuCaps& caps = cpu_caps();
  if (f.amx) return resolve_tier(caps, "amx");
  if (f.no_amx) {
    for (Tier t : {Tier::avx512, Tier::avx2})
      if (caps.tier_available(t)) return t;
    return Tier::ref;
  }
  return resolve_kernels(f.kernels);
}

// "# pos<TAB>input_token<TAB>argmax<TAB>logits..." then one line per position, %.9g values: the
// columns of fixtures/models/micro-*.reference.tsv.
class LogitsWriter {
 public:
  explicit LogitsWriter(const std::string& path)
      : path_(path), file_(std::fopen(path.c_str(), "w")) {
    if (!file_) fail("cannot write --logits file '", path, "': ", std::strerror(errno));
    std::fputs("# pos\tinput_token\targmax\tlogits...\n", file_);
  }
  ~LogitsWriter() {
    if (file_) std::fclose(file_);
  }
  void write(int64_t pos, int32_t token, std::span<const float> logits) {
    std::fprintf(file_, "%lld\t%d\t%d", static_cast<long long>(pos), token, pick_greedy(logits));
    for (float x : logits) std::fprintf(file_, "\t%.9g", static_cast<double>(x));
    std::fputc('\n', file_);
  }
  void close() {
    const bool bad = std::ferror(file_) != 0;
    const bool close_failed = std::fclose(file_) != 0;
    file_ = nullptr;
    if (bad || close_failed) fail("error writing --logits file '", path_, "'");
  }

 private:
  std::string path_;
  FILE* file_;
};

void print_timings(const WeightStore& w, const Session& s, const GenerateResult& r, double load_ms,
                   int threads) {
  const GenerationTimings& t = r.timings;
  auto line = [](const char* what, double ms, int64_t n, const char* unit) {
    std::fprintf(
        stderr,
        "xtile: %-14s = %10.2f ms / %5lld %-6s (%8.2f ms per token, %8.2f tokens per second)\n",
        what, ms, static_cast<long long>(n), unit, n ? ms / n : 0.0,
        ms > 0 ? 1000.0 * n / ms : 0.0);
  };
  std::fprintf(stderr, "\nxtile: %-14s = %10.2f ms (%s)\n", "load + repack", load_ms,
               w.stats().summary().c_str());
  line("prompt eval", t.prompt_ms, t.prompt_tokens, "tokens");
  line("eval", t.eval_ms, t.eval_runs, "runs");
  std::fprintf(stderr, "xtile: %-14s = %10.2f ms / %5zu tokens\n", "sampling", t.sample_ms,
               r.tokens.size());
  std::string kernels;
  for (const std::string& k : w.kernel_names()) kernels += (kernels.empty() ? "" : ", ") + k;
  std::fprintf(
      stderr, "xtile: tier %s, %d threads, batch %lld, context %lld (%s KV cache, %s)%s%s\n",
      std::string(tier_name(w.tier())).c_str(), threads, static_cast<long long>(s.n_batch()),
      static_cast<long long>(s.n_ctx()), s.kv_cache().type_name().c_str(),
      format_bytes(s.kv_cache().bytes()).c_str(),
      kernels.empty() ? "" : "; kernels: ", kernels.c_str());
}

int run_run(const RunFlags& f) {
  require_file(f.model, "model file");
  const int sources = !f.prompt.empty() + !f.prompt_file.empty() + !f.prompt_ids.empty();
  if (sources > 1) fail("give the prompt once: -p, -f or --prompt-ids");
  const auto [kv_type_k, kv_type_v] = resolve_cache_types(f.cache);
  const Tier tier = choose_tier(f);
  std::optional<OutputGrammar> output_grammar;  // compiled before the model loads
  if (f.output_grammar.any()) {
    if (f.ids && !f.prompt_ids.empty())
      fail("--grammar and --json-schema need the tokenizer: not with --prompt-ids and --ids");
    output_grammar.emplace(f.output_grammar);
  }
  std::unique_ptr<LogitsWriter> logits_out;
  if (!f.logits_path.empty()) logits_out = std::make_unique<LogitsWriter>(f.logits_path);

  ThreadPool pool(f.threads, apply_placement(f.placement, f.threads));
  const auto load_start = std::chrono::steady_clock::now();
  LoadOptions lo;
  lo.tier = tier;
  ProgressBar bar("loading");
  lo.progress = [&bar](uint64_t done, uint64_t total, std::string_view tensor) {
    bar.update(done, total, tensor);
  };
  std::unique_ptr<WeightStore> weights = WeightStore::load(f.model, pool, lo);
  bar.finish();
  const ModelConfig& c = weights->config();
  std::fprintf(stderr, "xtile: %s (%s, %lld layers, %s): tier %s, %s\n", f.model.c_str(),
               c.arch_name.c_str(), static_cast<long long>(c.n_layer),
               format_bytes(weights->file().file_size()).c_str(),
               std::string(tier_name(tier)).c_str(), weights->stats().summary().c_str());
  // The tokenizer is needed for text in or out; ids in and ids out run without one (a GGUF
  // without tokenizer.* keys), stopping at tokenizer.ggml.eos_token_id when the key exists.
  std::unique_ptr<Tokenizer> tok;
  if (f.prompt_ids.empty() || !f.ids) tok = Tokenizer::from_gguf(weights->file());
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
          .count();

  std::vector<int32_t> prompt;
  if (!f.prompt_ids.empty()) {
    if (f.chat) fail("--chat needs a text prompt (-p or -f), not --prompt-ids");
    prompt = parse_ids(f.prompt_ids);  // exactly these ids: no BOS added
  } else if (f.chat) {
    const std::string text = prompt_text(f);
    ChatOptions co;
    co.bos_text = !f.no_bos;
    const std::string wrapped =
        apply_chat_template(resolve_chat_family(f.chat_template, weights->file()), "", text, co);
    // The template carries the BOS text itself and special-token texts to be parsed.
    prompt = tok->encode(wrapped, /*add_bos=*/false, /*parse_special=*/true);
  } else {
    const std::string text = prompt_text(f);
    prompt = tok->encode(text, !f.no_bos, /*parse_special=*/false);
    // An empty prompt still needs a first token: BOS, as llama.cpp does.
    if (prompt.empty() && tok->bos() >= 0) prompt.push_back(tok->bos());
  }

  SessionOptions so;
  so.n_ctx = f.ctx == 0 ? c.n_ctx_train : std::min(f.ctx, c.n_ctx_train);
  if (f.ctx > c.n_ctx_train)
    std::fprintf(stderr, "xtile: -c %lld is more than the model's context %lld: using %lld\n",
                 static_cast<long long>(f.ctx), static_cast<long long>(c.n_ctx_train),
                 static_cast<long long>(c.n_ctx_train));
  so.n_batch = forward_batch(f.batch, f.ubatch);
  // --cache-type sets both; -ctk / -ctv (llama.cpp's names) each one.
  so.kv_type = kv_type_k;
  so.kv_type_v = kv_type_v;
  Session session(*weights, pool, so);

  GenerateOptions go;
  go.n_predict = f.n_predict;
  const std::optional<SamplerParams> sp = sampler_params(f, c.n_vocab, tok.get());
  std::unique_ptr<Sampler> sampler;
  if (sp) {
    sampler = std::make_unique<Sampler>(*sp);
    go.pick = [&sampler](std::span<const float> logits, std::span<const int32_t> history) {
      return sampler->sample(logits, history);
    };
  }
  if (output_grammar) go.pick = output_grammar->picker(*tok, std::move(go.pick));
  if (f.ignore_eos) {
    // No end: all -n tokens (benchmarks; llama.cpp's --ignore-eos).
  } else if (tok) {
    go.is_eog = [&tok](int32_t id) { return tok->is_eog(id); };
  } else if (weights->file().has("tokenizer.ggml.eos_token_id")) {
    const uint64_t eos = weights->file().get_uint("tokenizer.ggml.eos_token_id");
    go.is_eog = [eos](int32_t id) { return static_cast<uint64_t>(id) == eos; };
  }
  check_generation_fits(session, static_cast<int64_t>(prompt.size()), go.n_predict);
  // In chat mode the prompt is not echoed: generated text continues the template's text.
  std::optional<StreamDecoder> decoder;
  if (tok) decoder.emplace(*tok, /*at_sequence_start=*/!f.chat);
  if (f.ids) {
    for (size_t i = 0; i < prompt.size(); ++i) std::cout << (i ? "," : "") << prompt[i];
    go.on_token = [](int32_t id) { std::cout << "," << id << std::flush; };
  } else {
    if (!f.chat) {  // echo the prompt, as llama.cpp does
      for (int32_t id : prompt) std::cout << decoder->push(id);
      std::cout << std::flush;
    }
    go.on_token = [&decoder, &tok](int32_t id) {
      if (!tok->is_eog(id)) std::cout << decoder->push(id) << std::flush;
    };
  }
  if (logits_out) {
    go.eval_last = true;
    go.on_logits = [&logits_out](int64_t pos, int32_t token, std::span<const float> logits) {
      logits_out->write(pos, token, logits);
    };
  }
  const GenerateResult result = generate(session, prompt, go);
  if (!f.ids) std::cout << decoder->flush();
  std::cout << "\n" << std::flush;
  if (logits_out) logits_out->close();
  print_timings(*weights, session, result, load_ms, f.threads);
  const std::string bias =
      sp && !sp->logit_bias.empty()
          ? ", logit bias on " + std::to_string(sp->logit_bias.size()) + " tokens"
          : "";
  if (f.sampling.any())
    std::fprintf(stderr,
                 "xtile: sampling: temp %.2f, top-k %d, top-p %.2f, min-p %.2f, "
                 "repeat-penalty %.2f (last %d)%s, seed %llu%s\n",
                 sp->temperature, sp->top_k, sp->top_p, sp->min_p, sp->repeat_penalty,
                 sp->repeat_last_n, further_samplers(*sp).c_str(),
                 static_cast<unsigned long long>(sp->seed), bias.c_str());
  else
    std::fprintf(stderr, "xtile: sampling: greedy%s\n", bias.c_str());
  return 0;
}

}  // namespace cmd_run
}  // namespace

Command register_run(CLI::App& root) {
  using namespace cmd_run;  // this file's helpers
  auto f = std::make_shared<RunFlags>();
  CLI::App* app = root.add_subcommand("run", "generate text from a prompt");
  add_model_flag(app, &f->model, true);
  app->add_option("-p,--prompt", f->prompt, "prompt text")->type_name("TEXT");
  app->add_option("-f,--file", f->prompt_file, "read the prompt from a file")->type_name("FILE");
  app->add_option("--prompt-ids", f->prompt_ids,
                  "the prompt as token ids, e.g. 1,403,407 (used as given: no BOS added)")
      ->type_name("IDS");
  app->add_option("-n,--n-predict", f->n_predict,
                  "tokens to generate (-1: until the context is full)")
      ->capture_default_str()
      ->type_name("N");
  add_threads_flag(app, &f->threads);
  add_placement_flags(app, &f->placement);
  app->add_option("-s,--seed", f->seed, "sampling seed (default: random)")->type_name("N");
  app->add_option("-c,--ctx-size", f->ctx,
                  "context size (KV cache positions; 0: the model's; capped to the model's)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str()
      ->type_name("N");
  app->add_option("-b,--batch-size", f->batch, "prompt tokens per forward batch")
      ->check(at_least_one())
      ->capture_default_str()
      ->type_name("N");
  add_cache_type_flags(app, &f->cache);
  // No sampling flag: greedy; any: llama.cpp's defaults for the others.
  add_sampler_flags(app, &f->sampling);
  app->add_option("--repeat-last-n", f->repeat_last_n,
                  "tokens the repeat penalty looks back on (-1: all)")
      ->check(CLI::Range(-1, INT32_MAX))
      ->capture_default_str()
      ->type_name("N");
  add_logit_bias_flag(app, &f->logit_bias);
  add_chat_template_flag(app, &f->chat_template);
  app->add_flag_callback(
      "-e,--escape", [] {},
      "process escapes in the prompt (\\n \\t \\xHH ...): the default, as llama.cpp");
  app->add_flag("--no-escape", f->no_escape, "the prompt as written, backslashes and all");
  app->add_flag("--ignore-eos", f->ignore_eos,
                "keep generating past end-of-generation tokens (all -n tokens)");
  app->add_flag("--no-conversation", f->no_conversation,
                "-no-cnv: accepted; xtile run never converses (xtile chat does)");
  add_llama_compat_flags(app, /*lists=*/false, &f->ubatch);
  add_kernels_flag(app, &f->kernels);
  app->add_flag("--amx", f->amx, "require the amx tier (error when the CPU or OS lacks it)");
  app->add_flag("--no-amx", f->no_amx, "use the best tier below amx");
  app->add_option("--logits", f->logits_path,
                  "write every processed position's logits as TSV (pos, token, argmax, logits)")
      ->type_name("FILE");
  app->add_flag("--ids", f->ids, "print token ids (prompt and generated, comma-separated)");
  app->add_flag("--chat", f->chat, "wrap the prompt in the model's chat template");
  add_output_grammar_flags(app, &f->output_grammar);
  app->add_flag("--no-bos", f->no_bos, "do not add the BOS token to a text prompt");
  return {app, [f] { return run_run(*f); }};
}

}  // namespace xtile::cli
