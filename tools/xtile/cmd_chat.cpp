// `xtile chat -m FILE`: an interactive chat in the terminal. Each turn renders the whole
// conversation with the model's chat template and runs it through the server's scheduler (one
// slot), whose prefix reuse keeps the conversation's KV cache between turns: only the new
// message is read. The answer streams as it is generated (a leading <think> block dimmed);
// Ctrl-C stops the answer, not the program; /exit or Ctrl-D ends.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "cpu/cpu_caps.h"
#include "engine_flags.h"
#include "model/chat_template.h"
#include "sampler_flags.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/scheduler.h"
#include "server/text_stream.h"

namespace xtile::cli {

namespace {
namespace cmd_chat {  // unity batches: CMakeLists.txt

volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) {
  g_interrupted = 1;
}

struct ChatFlags {
  EngineFlags engine;
  std::string system;
  int64_t n_predict = -1;
  SamplerFlags sampling;
  std::optional<uint64_t> seed;
  std::vector<std::string> logit_bias;
  bool no_think = false;
  bool ignore_eos = false;  // answers run to -n tokens (tests, load; llama-cli's --ignore-eos)
};

enum class ReadResult { kLine, kEof, kInterrupted };

// One line from stdin with read(2), so that Ctrl-C (EINTR) is seen while waiting for input.
ReadResult read_line(std::string* line) {
  line->clear();
  for (;;) {
    char c;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n == 1) {
      if (c == '\n') return ReadResult::kLine;
      *line += c;
      continue;
    }
    if (n == 0) return line->empty() ? ReadResult::kEof : ReadResult::kLine;
    if (errno == EINTR) {
      if (g_interrupted) return ReadResult::kInterrupted;
      continue;
    }
    return ReadResult::kEof;
  }
}

int run_chat(const ChatFlags& f) {
  const bool tty = isatty(STDOUT_FILENO) != 0;
  const bool interactive = isatty(STDIN_FILENO) != 0;
  // The engine's threads must not take SIGINT: only this thread's read() and reply loop react.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  pthread_sigmask(SIG_BLOCK, &block, nullptr);
  Engine e = load_engine(f.engine);
  server::Metrics metrics;
  server::Scheduler scheduler(*e.weights, *e.pool, *e.tok, e.options, metrics);
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read() waiting for input returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  pthread_sigmask(SIG_UNBLOCK, &block, nullptr);

  const ChatFamily family = resolve_chat_family(f.engine.chat_template, e.weights->file());
  std::fprintf(stderr,
               "xtile chat: %s, tier %s, chat template %s, context %lld\n"
               "Type a message and press Enter. /exit or Ctrl-D ends, /reset forgets the "
               "conversation, Ctrl-C stops an answer.\n",
               f.engine.model.c_str(), std::string(tier_name(e.weights->tier())).c_str(),
               std::string(chat_family_name(family)).c_str(),
               static_cast<long long>(e.options.n_ctx));

  server::GenerationParams gen;
  f.sampling.apply(&gen.sampler, e.tok.get());
  gen.sampler.logit_bias = parse_logit_bias(f.logit_bias, e.weights->config().n_vocab);
  gen.max_tokens = f.n_predict;
  gen.ignore_eos = f.ignore_eos;
  std::mt19937_64 seeds(f.seed ? *f.seed : std::random_device{}());

  std::vector<ChatMessage> history;
  if (!f.system.empty()) history.push_back({"system", f.system});
  const char* dim = tty ? "\033[2m" : "";
  const char* plain = tty ? "\033[0m" : "";
  std::string line;
  for (;;) {
    if (interactive) std::fputs("> ", stdout);
    std::fflush(stdout);
    g_interrupted = 0;
    const ReadResult rr = read_line(&line);
    if (rr == ReadResult::kEof) break;
    if (rr == ReadResult::kInterrupted) {
      std::fputs("\n(Ctrl-C stops an answer; /exit or Ctrl-D ends the chat)\n", stdout);
      continue;
    }
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history.resize(f.system.empty() ? 0 : 1);
      std::fputs("(conversation forgotten)\n", stdout);
      continue;
    }
    if (line.empty()) continue;

    history.push_back({"user", line});
    ChatOptions co;
    co.enable_thinking = !f.no_think;
    const std::string text = apply_chat_template(family, history, co);
    std::vector<int32_t> prompt = e.tok->encode(text, /*add_bos=*/false, /*parse_special=*/true);
    if (static_cast<int64_t>(prompt.size()) >= e.options.n_ctx) {
      std::fprintf(stdout,
                   "(the conversation is %zu tokens, the context %lld: /reset, or start with a "
                   "larger -c)\n",
                   prompt.size(), static_cast<long long>(e.options.n_ctx));
      history.pop_back();
      continue;
    }
    gen.sampler.seed = seeds();
    auto job = std::make_shared<server::Job>(std::move(prompt), gen);
    if (scheduler.submit(job) != server::Scheduler::Submit::kQueued)
      fail("the scheduler refused the message");
    server::ReasoningSplitter splitter(text.ends_with("<think>\n"));
    std::string answer;
    bool in_reasoning = false;
    auto print = [&](const std::string& reasoning, const std::string& content) {
      if (!reasoning.empty()) {
        if (!in_reasoning) std::fputs(dim, stdout);
        in_reasoning = true;
        std::fputs(reasoning.c_str(), stdout);
      }
      if (!content.empty()) {
        if (in_reasoning) std::fprintf(stdout, "%s\n\n", plain);
        in_reasoning = false;
        std::fputs(content.c_str(), stdout);
        answer += content;
      }
      std::fflush(stdout);
    };
    server::Job::Cursor cursor;
    bool stopped = false;
    for (;;) {
      server::Job::Update u;
      const bool news = job->wait(&cursor, &u, std::chrono::milliseconds(50));
      if (g_interrupted && !stopped) {
        job->cancel();  // the scheduler ends it at its next step; the text so far stays
        stopped = true;
      }
      if (!news) continue;
      std::string reasoning, content;
      splitter.push(u.text, &reasoning, &content);
      if (u.done) splitter.finish(&reasoning, &content);
      print(reasoning, content);
      if (u.done) break;
    }
    if (in_reasoning) std::fputs(plain, stdout);
    const server::JobStats s = job->stats();
    if (job->finish_reason() == server::FinishReason::kError) {
      std::fprintf(stdout, "\n(error: %s)\n", job->error().c_str());
      history.pop_back();
      continue;
    }
    std::fputs(job->finish_reason() == server::FinishReason::kCancelled ? " [stopped]\n" : "\n",
               stdout);
    std::fflush(stdout);
    const double tps = s.predicted_ms > 0
                           ? 1000.0 * std::max<int64_t>(0, s.completion_tokens - 1) / s.predicted_ms
                           : 0.0;
    std::fprintf(
        stderr, "%s[%lld tokens, %.1f tokens/s; prompt %lld tokens, %lld from the cache]%s\n", dim,
        static_cast<long long>(s.completion_tokens), tps, static_cast<long long>(s.prompt_tokens),
        static_cast<long long>(s.cached_tokens), plain);
    // The template drops earlier turns' reasoning: the history keeps the answer only.
    history.push_back({"assistant", answer});
  }
  scheduler.stop();
  return 0;
}

}  // namespace cmd_chat
}  // namespace

Command register_chat(CLI::App& root) {
  using namespace cmd_chat;  // this file's helpers
  auto f = std::make_shared<ChatFlags>();
  CLI::App* app = root.add_subcommand("chat", "interactive chat in the terminal");
  add_engine_flags(app, &f->engine, 1);
  app->add_option("--system-prompt", f->system, "system message (-sys)")->type_name("TEXT");
  app->add_option("-n,--n-predict", f->n_predict,
                  "most tokens per answer (-1: until the context is full)")
      ->capture_default_str()
      ->type_name("N");
  add_sampler_flags(app, &f->sampling);
  app->add_option("-s,--seed", f->seed, "seed of the first answer's sampler (default: random)")
      ->type_name("N");
  add_logit_bias_flag(app, &f->logit_bias);
  app->add_flag("--no-think", f->no_think,
                "Qwen3: answer without thinking (enable_thinking=false)");
  app->add_flag("--ignore-eos", f->ignore_eos,
                "keep answering past end-of-generation tokens (each answer runs to -n tokens)");
  return {app, [f] { return run_chat(*f); }};
}

}  // namespace xtile::cli
