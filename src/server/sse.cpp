#include "server/sse.h"

#include <functional>

#include "server/api_error.h"
#include "server/native_response.h"
#include "server/text_stream.h"

namespace xtile::server {

using nlohmann::json;

namespace {
namespace sse {  // unity batches: CMakeLists.txt

// One choice's stream state: its job, what it released and how much of it was sent.
struct Choice {
  Choice(std::shared_ptr<Job> j, int i, bool in_reasoning, ToolCallFormat tool_format)
      : job(std::move(j)), index(i), splitter(in_reasoning), tool_splitter(tool_format) {}

  std::shared_ptr<Job> job;
  int index = 0;
  ReasoningSplitter splitter;
  ToolCallSplitter tool_splitter;
  int calls_sent = 0;
  Job::Cursor cursor;
  std::vector<TokenOut> tokens;  // released, not yet sent with a chunk
  size_t text_offset = 0;        // completions' logprobs text_offset
  bool ended = false;
};

struct Stream {
  Stream(std::vector<std::shared_ptr<Job>> jobs, std::shared_ptr<JobSignal> s, ClientConnection c,
         const Tokenizer& t, StreamSpec sp)
      : signal(std::move(s)), conn(c), tok(t), spec(std::move(sp)) {
    for (size_t i = 0; i < jobs.size(); ++i)
      choices.emplace_back(std::move(jobs[i]), static_cast<int>(i), spec.in_reasoning,
                           spec.tool_format);
  }

  std::vector<Choice> choices;
  std::shared_ptr<JobSignal> signal;  // wakes the loop for any choice (several choices)
  ClientConnection conn;
  const Tokenizer& tok;
  StreamSpec spec;
  StructuredEvents* structured() const { return spec.events.get(); }

  void cancel_all() {
    for (Choice& c : choices) c.job->cancel();
  }

  json take_logprobs(Choice& c) {
    if (!spec.logprobs) return nullptr;
    json j = spec.chat ? chat_logprobs(c.tokens, tok)
                       : completion_logprobs(c.tokens, tok, &c.text_offset);
    c.tokens.clear();
    return j;
  }

  // llama-server's events carry the released tokens' ids and probabilities themselves.
  std::pair<json, json> take_native(Choice& c) {
    json probs = spec.logprobs ? native_probs(c.tokens, tok) : json();
    json ids = spec.return_tokens ? token_ids_json(c.tokens) : json();
    c.tokens.clear();
    return {std::move(probs), std::move(ids)};
  }

  // A chunk of OpenAI's shape for choice c (chat_chunk and completion_chunk write index 0).
  static json of_choice(json chunk, const Choice& c) {
    chunk["choices"][0]["index"] = c.index;
    return chunk;
  }

  json text_chunk(Choice& c, const std::string& reasoning, const std::string& content,
                  const std::vector<ToolCallOut>& calls) {
    if (spec.ollama) {
      c.tokens.clear();
      return ollama_chunk(*spec.ollama, spec.head.model, reasoning, content, calls);
    }
    if (spec.native) {
      auto [probs, ids] = take_native(c);
      return native_chunk(content, std::move(probs), std::move(ids));
    }
    if (!spec.chat)
      return of_choice(completion_chunk(spec.head, content, nullptr, take_logprobs(c)), c);
    json delta = json::object();
    if (!reasoning.empty()) delta["reasoning_content"] = reasoning;
    if (!content.empty()) delta["content"] = content;
    if (!calls.empty()) {
      delta["tool_calls"] = tool_calls_json(calls, c.calls_sent);
      c.calls_sent += static_cast<int>(calls.size());
    }
    return of_choice(chat_chunk(spec.head, std::move(delta), nullptr, take_logprobs(c)), c);
  }

  // The last chunk of an OpenAI stream's choice: finish_reason, the last tokens' logprobs and
  // llama-server's timings.
  json last_chunk(Choice& c, FinishReason reason, const JobStats& stats) {
    json last = spec.chat ? chat_chunk(spec.head, json::object(),
                                       finish_reason_json(reason, c.tool_splitter.called()),
                                       c.tokens.empty() ? json() : take_logprobs(c))
                          : completion_chunk(spec.head, "", finish_reason_json(reason),
                                             c.tokens.empty() ? json() : take_logprobs(c));
    last["timings"] = timings_json(stats);
    return of_choice(std::move(last), c);
  }

  enum class Step { kGoOn, kClientGone, kFailed };

  // Sends what choice c released in u (and, when it ended, its last chunk).
  Step take(Choice& c, Job::Update& u, const std::function<bool(const json&)>& send,
            const std::function<bool(const std::string&)>& write) {
    for (TokenOut& t : u.tokens) c.tokens.push_back(std::move(t));
    std::string reasoning, content;
    if (spec.chat && spec.reasoning) {
      c.splitter.push(u.text, &reasoning, &content);
    } else {
      content = std::move(u.text);
    }
    const FinishReason reason = u.done ? c.job->finish_reason() : FinishReason::kNone;
    const bool ended = u.done && reason != FinishReason::kError;
    if (ended && spec.chat && spec.reasoning) c.splitter.finish(&reasoning, &content);
    std::vector<ToolCallOut> calls;
    if (spec.tool_format != ToolCallFormat::kNone) {
      std::string text = std::move(content);
      content.clear();
      c.tool_splitter.push(text, &content, &calls);
      if (ended) c.tool_splitter.finish(&content, &calls);
    }
    if (structured()) {
      c.tokens.clear();
      if (!write(structured()->push(reasoning, content, calls))) return Step::kClientGone;
    } else if (!reasoning.empty() || !content.empty() || !calls.empty()) {
      if (!send(text_chunk(c, reasoning, content, calls))) return Step::kClientGone;
    }
    if (!u.done) return Step::kGoOn;
    c.ended = true;
    if (reason == FinishReason::kError) {
      const int status = c.job->error_status();
      ApiError e(status, status == 503 ? "unavailable_error" : "server_error", c.job->error());
      if (structured()) {
        write(structured()->error(status, c.job->error()));
      } else {
        send(spec.ollama ? json{{"error", c.job->error()}} : e.body());
      }
      return Step::kFailed;
    }
    if (reason == FinishReason::kCancelled) return Step::kClientGone;
    // Their last event comes after the loop.
    if (spec.native || spec.ollama || structured()) return Step::kGoOn;
    return send(last_chunk(c, reason, c.job->stats())) ? Step::kGoOn : Step::kClientGone;
  }

  // Runs the whole stream; false when the client went away (the jobs are cancelled).
  bool run(httplib::DataSink& sink) {
    // The last write, for the pings of a silent stream.
    auto last_write = std::chrono::steady_clock::now();
    const std::function<bool(const std::string&)> write = [&](const std::string& s) {
      if (s.empty()) return true;
      if (!sink.write(s.data(), s.size())) return false;
      last_write = std::chrono::steady_clock::now();
      return true;
    };
    const std::function<bool(const json&)> send = [&](const json& j) {
      return write(spec.ollama ? dump(j) + "\n" : "data: " + dump(j) + "\n\n");
    };
    if (structured() &&
        !write(structured()->start(static_cast<int64_t>(choices.front().job->prompt().size()))))
      return false;
    if (spec.chat && !spec.ollama && !structured())
      for (const Choice& c : choices)
        if (!send(of_choice(chat_chunk(spec.head, {{"role", "assistant"}, {"content", ""}}), c)))
          return false;
    // echo: the prompt's text first (its tokens' logprobs come with the next chunks).
    for (size_t i = 0; i < spec.echo.size() && i < choices.size(); ++i)
      if (!send(of_choice(completion_chunk(spec.head, spec.echo[i]), choices[i]))) return false;
    auto checked = std::chrono::steady_clock::now();
    // One choice: wait on its job. Several: poll each and sleep on the signal they share.
    const bool one = choices.size() == 1;
    for (size_t open = choices.size(); open > 0;) {
      const uint64_t seen = one ? 0 : signal->count();
      bool news = false;
      for (Choice& c : choices) {
        if (c.ended) continue;
        Job::Update u;
        if (!c.job->wait(&c.cursor, &u, std::chrono::milliseconds(one ? 100 : 0))) continue;
        news = true;
        switch (take(c, u, send, write)) {
          case Step::kGoOn:
            break;
          case Step::kClientGone:
            return false;
          case Step::kFailed:  // the other choices are not finished: the stream ends here
            cancel_all();
            return true;
        }
        if (c.ended) --open;
      }
      // A failed write says the client is gone, but text can be held back (a stop string's
      // start) or slow to come (a queue, a long prompt): look at the socket every 100 ms too.
      const auto now = std::chrono::steady_clock::now();
      if (now - checked >= std::chrono::milliseconds(100)) {
        checked = now;
        if (conn.gone()) return false;
      }
      if (news) continue;
      if (spec.ping_s > 0 && now - last_write > std::chrono::seconds(spec.ping_s)) {
        if (!write(structured() ? structured()->ping() : ": ping\n\n")) return false;
      }
      if (!one) signal->wait_past(seen, std::chrono::milliseconds(100));
    }
    std::vector<JobStats> stats;
    for (const Choice& c : choices) stats.push_back(c.job->stats());
    if (structured()) {  // the open block's end, the stop reason and usage
      const Choice& c = choices.front();
      return write(structured()->finish(c.job->finish_reason(), stats.front()));
    }
    if (spec.ollama) {  // done: true and the durations; no [DONE]
      const Choice& c = choices.front();
      return send(ollama_final(*spec.ollama, spec.head.model, "", "", {}, c.job->finish_reason(),
                               stats.front()));
    }
    if (spec.native) {  // the figures ride on the last event; no [DONE]
      Choice& c = choices.front();
      auto [probs, ids] = take_native(c);
      return send(native_final("", spec.head.model, c.job->finish_reason(), stats.front(),
                               std::move(probs), std::move(ids)));
    }
    const char* object = spec.chat ? "chat.completion.chunk" : "text_completion";
    if (spec.include_usage &&
        !send(usage_chunk(spec.head, object, stats, static_cast<size_t>(spec.n))))
      return false;
    return write("data: [DONE]\n\n");
  }
};

}  // namespace sse
}  // namespace

void stream_job(httplib::Response& res, std::vector<std::shared_ptr<Job>> jobs,
                std::shared_ptr<JobSignal> signal, ClientConnection conn, const Tokenizer& tok,
                StreamSpec spec) {
  using namespace sse;  // this file's helpers
  auto stream =
      std::make_shared<Stream>(std::move(jobs), std::move(signal), conn, tok, std::move(spec));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  const char* type = stream->spec.ollama ? "application/x-ndjson" : "text/event-stream";
  res.set_chunked_content_provider(
      type,
      [stream](size_t, httplib::DataSink& sink) {
        if (!stream->run(sink)) {
          stream->cancel_all();
          return false;
        }
        sink.done();
        return true;
      },
      [stream](bool success) {
        if (!success) stream->cancel_all();
      });
}

}  // namespace xtile::server
