// `xtile serve -m FILE [--host H] [--port P] [-c N] [-np N] ...`: an OpenAI-compatible HTTP
// server (src/server) with continuous batching over -np slots that share one KV budget, and a
// chat page at /. It listens at once and answers 503 while the model loads; Ctrl-C or SIGTERM
// stops it (running requests end with 503).
#include <signal.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "cpu/cpu_caps.h"
#include "engine_flags.h"
#include "gguf/gguf.h"
#include "model/chat_template.h"
#include "model/ftype.h"
#include "sampler_flags.h"
#include "server/http_server.h"
#include "server/infill.h"
#include "server/rerank_head.h"

namespace xtile::cli {

namespace {
namespace cmd_serve {  // unity batches: CMakeLists.txt

struct ServeFlags {
  EngineFlags engine;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string alias;
  std::vector<std::string> api_keys;
  std::string api_key_file;
  int timeout = 600;
  int http_threads = 0;
  int64_t max_body = 16 << 20;
  int sse_ping = 30;
  int64_t n_predict = -1;
  SamplerFlags sampling;
  std::vector<std::string> logit_bias;
  std::string reasoning_format = "deepseek";
  std::string pooling;  // "" : the GGUF's
};

// --pooling, else the GGUF's <arch>.pooling_type (llama.cpp's numbers: 1 mean, 3 last), else
// last: a causal model's last position is the one that has read the whole text.
server::Pooling pooling_of(const std::string& flag, const gguf::File& file,
                           const std::string& arch) {
  if (flag == "mean") return server::Pooling::kMean;
  if (flag == "last") return server::Pooling::kLast;
  if (flag == "none") return server::Pooling::kTokens;
  // "rank" (llama-server's --reranking): /rerank reads the last position; embeddings too.
  if (flag == "rank") return server::Pooling::kLast;
  return file.get_uint_or(arch + ".pooling_type", 3) == 1 ? server::Pooling::kMean
                                                          : server::Pooling::kLast;
}

std::vector<std::string> read_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read --api-key-file '", path, "'");
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) keys.push_back(line);
  }
  if (keys.empty()) fail("--api-key-file '", path, "' holds no key");
  return keys;
}

int run_serve(const ServeFlags& f) {
  require_file(f.engine.model, "model file");
  if (f.pooling == "cls")
    fail(
        "--pooling 'cls': xtile pools mean, last or none (cls is for encoder models, which it "
        "does not run)");
  if (f.reasoning_format != "none" && f.reasoning_format != "deepseek" &&
      f.reasoning_format != "auto")
    fail("--reasoning-format '", f.reasoning_format, "': expected none, auto or deepseek");
  server::ServerOptions so;
  so.host = f.host;
  so.port = f.port;
  for (const std::string& k : f.api_keys) {
    std::stringstream in(k);  // llama-server takes a comma-separated list
    std::string one;
    while (std::getline(in, one, ','))
      if (!one.empty()) so.api_keys.push_back(one);
  }
  if (const char* env = std::getenv("LLAMA_API_KEY"); env && *env && so.api_keys.empty())
    so.api_keys.push_back(env);
  if (!f.api_key_file.empty())
    for (const std::string& k : read_keys(f.api_key_file)) so.api_keys.push_back(k);
  so.max_body_bytes = static_cast<size_t>(f.max_body);
  so.timeout_s = f.timeout;
  so.sse_ping_s = f.sse_ping;
  // Every open request holds an HTTP thread while it waits (running or queued), and /health
  // must still find one free.
  so.http_threads = f.http_threads > 0 ? f.http_threads
                                       : static_cast<int>(f.engine.slots + f.engine.max_queue + 8);
  server::RequestDefaults& d = so.defaults;
  f.sampling.apply(&d.sampler, nullptr);  // DRY's breakers are read per request
  d.dry_breakers = f.sampling.breaker_strings();
  // The ids are checked against the vocabulary again once the model is loaded (below).
  d.sampler.logit_bias = parse_logit_bias(f.logit_bias, INT64_MAX);
  d.max_tokens = f.n_predict;
  d.reasoning = f.reasoning_format != "none";

  // Signals go to one thread, which stops the server (or, while loading, the process).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that went away is a failed write, not the end
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::atomic<bool> loaded{false};
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!loaded.load()) {
      std::fprintf(stderr, "\nxtile: %s while loading: exiting\n",
                   sig == SIGINT ? "interrupted" : "terminated");
      std::_Exit(130);
    }
    std::lock_guard lock(mu);
    stopping = true;
    cv.notify_all();
  });
  watcher.detach();

  server::Metrics metrics;
  server::HttpServer http(so, metrics);
  const int port = http.bind();
  http.start();
  std::fprintf(stderr, "xtile: listening on http://%s:%d (loading %s)\n", f.host.c_str(), port,
               f.engine.model.c_str());

  Engine e = load_engine(f.engine);
  const ModelConfig& c = e.weights->config();
  parse_logit_bias(f.logit_bias, c.n_vocab);
  server::ModelInfo info;
  info.path = f.engine.model;
  info.id = f.alias.empty() ? std::filesystem::path(f.engine.model).filename().string() : f.alias;
  info.arch = c.arch_name;
  info.tier = std::string(tier_name(e.weights->tier()));
  info.chat_family = resolve_chat_family(f.engine.chat_template, e.weights->file());
  info.n_ctx_train = c.n_ctx_train;
  info.n_vocab = c.n_vocab;
  info.n_embd = c.n_embd;
  for (const gguf::TensorInfo& t : e.weights->file().tensors()) info.n_params += t.elements();
  info.size_bytes = e.weights->file().file_size();
  const uint64_t file_type = e.weights->file().get_uint_or("general.file_type", ~uint64_t{0});
  std::string_view quant;
  for (const Ftype& t : ftypes())
    if (t.file_type == file_type) quant = t.name;
  if (quant.empty()) {  // no (known) file type: the type that holds the most parameters
    std::map<GgmlType, uint64_t> by_type;
    for (const gguf::TensorInfo& t : e.weights->file().tensors()) by_type[t.type] += t.elements();
    uint64_t most = 0;
    for (const auto& [type, n] : by_type)
      if (n > most) {
        most = n;
        quant = ggml_type_name(type);
      }
  }
  for (char ch : quant) info.quantization += static_cast<char>(std::toupper(ch));
  info.fingerprint = "xtile-" + std::string(XTILE_VERSION) + "-" + info.tier;
  info.pooling = pooling_of(f.pooling, e.weights->file(), c.arch_name);
  info.fill_in_middle = server::fim_tokens(*e.tok).usable();
  info.rerank = server::rerank_head(*e.weights, *e.tok);
  server::Scheduler scheduler(*e.weights, *e.pool, *e.tok, e.options, metrics);
  http.set_ready(&scheduler, e.tok.get(), info);
  loaded = true;
  std::fprintf(stderr,
               "xtile: ready: %s (%s, %s), tier %s, %d slots, %lld KV positions shared "
               "(%lld per request), batch %lld, chat template %s; http://%s:%d\n",
               info.id.c_str(), c.arch_name.c_str(), format_bytes(info.size_bytes).c_str(),
               info.tier.c_str(), e.options.n_slots, static_cast<long long>(e.options.kv_budget),
               static_cast<long long>(e.options.n_ctx), static_cast<long long>(e.options.n_batch),
               std::string(chat_family_name(info.chat_family)).c_str(), f.host.c_str(), port);
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stopping; });
  }
  std::fprintf(stderr, "xtile: shutting down\n");
  scheduler.stop();  // running and queued requests end with 503 ...
  http.stop();       // ... so their HTTP threads finish, and the server can stop
  return 0;
}

}  // namespace cmd_serve
}  // namespace

Command register_serve(CLI::App& root) {
  using namespace cmd_serve;  // this file's helpers
  auto f = std::make_shared<ServeFlags>();
  CLI::App* app = root.add_subcommand(
      "serve", "OpenAI-compatible HTTP server with continuous batching and a chat page");
  add_engine_flags(app, &f->engine, 4);
  app->add_option("--host", f->host, "address to listen on")->capture_default_str();
  app->add_option("--port", f->port, "port to listen on (0: any free port, printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app->add_option("-a,--alias", f->alias, "model name for clients (default: the file name)");
  app->add_option("--api-key", f->api_keys,
                  "require this key (Authorization: Bearer KEY or X-Api-Key); repeat or "
                  "comma-separate for several; LLAMA_API_KEY too")
      ->type_name("KEY");
  app->add_option("--api-key-file", f->api_key_file, "file with one API key per line")
      ->type_name("FILE");
  app->add_option("--max-queue", f->engine.max_queue,
                  "requests that may wait for a slot; more get 429 with Retry-After")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str()
      ->type_name("N");
  // llama-server's switches for what xtile serve always does.
  const std::pair<const char*, const char*> always[] = {
      {"--jinja", "the GGUF's chat template is used (recognised by its markers)"},
      {"--metrics", "GET /metrics is always served"},
      {"--cont-batching", "-cb: batching is always continuous"},
      {"--kv-unified", "-kvu: the slots always share one KV budget"},
      {"--no-warmup", "xtile runs no warm-up pass"},
  };
  for (const auto& [name, what] : always)
    app->add_flag_callback(
           name, [] {}, what)
        ->group("llama-server's switches for what xtile serve always does");
  app->add_option("--timeout", f->timeout, "read/write timeout of a connection, seconds (-to)")
      ->check(at_least_one())
      ->capture_default_str();
  app->add_option("--threads-http", f->http_threads,
                  "HTTP threads (default: slots + max-queue + 8)")
      ->type_name("N");
  app->add_option("--max-body-size", f->max_body, "largest request body, bytes (more: 413)")
      ->check(at_least_one())
      ->capture_default_str()
      ->type_name("BYTES");
  app->add_option("--sse-ping-interval", f->sse_ping,
                  "seconds of silence before a ': ping' comment on a stream (0: never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("-n,--n-predict", f->n_predict,
                  "default max_tokens of a request (-1: until its context is full)")
      ->capture_default_str()
      ->type_name("N");
  add_sampler_flags(app, &f->sampling, "default ");
  add_logit_bias_flag(app, &f->logit_bias)
      ->description(
          "TOKEN_ID(+|-)BIAS on every request (a request's logit_bias adds to it), repeatable: "
          "15043+1, 2-inf (never token 2)");
  app->add_option("--reasoning-format", f->reasoning_format,
                  "deepseek: a leading <think> block becomes reasoning_content; none: left in "
                  "the content")
      ->capture_default_str();
  app->add_option("--pooling", f->pooling,
                  "how the embedding routes pool a text: mean, last or none (a vector per "
                  "token, on /embedding only); rank (llama-server's --reranking) is last "
                  "(default: the GGUF's pooling_type, else last)")
      ->check(CLI::IsMember({"mean", "last", "none", "cls", "rank"}))
      ->type_name("TYPE");
  app->add_flag_callback(
         "--embeddings,--embedding", [] {},
         "llama-server's switch for its embedding endpoint: /v1/embeddings is always served")
      ->group("llama-server's switches for what xtile serve always does");
  app->add_flag_callback(
         "--reranking,--rerank", [] {},
         "llama-server's switch for its rerank endpoint: /rerank is always served (a model "
         "without a rerank prompt or label rows answers 501 there)")
      ->group("llama-server's switches for what xtile serve always does");
  app->footer(
      "Endpoints: POST /v1/chat/completions, /v1/completions (stream: true for SSE), "
      "/v1/responses, /v1/embeddings, /completion, /embedding, /rerank, /infill (llama-server's), "
      "/v1/messages (Anthropic's), /api/chat, /api/generate, /api/embed (Ollama's); GET "
      "/v1/models, /health, "
      "/metrics, /slots, /props, POST /tokenize, /detokenize, /apply-template; the chat page at "
      "/.\nA request's output does not depend on the other requests running beside "
      "it: the same request and seed give the same tokens alone or in a batch.");
  return {app, [f] { return run_serve(*f); }};
}

}  // namespace xtile::cli
