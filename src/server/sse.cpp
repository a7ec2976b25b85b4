#include "server/sse.h"

#include "server/api_error.h"
#include "server/native_response.h"
#include "server/text_stream.h"

namespace xtile::server {

using nlohmann::json;

namespace {

struct Stream {
  Stream(std::shared_ptr<Job> j, ClientConnection c, const Tokenizer& t, StreamSpec s)
      : job(std::move(j)), conn(c), tok(t), spec(std::move(s)), splitter(spec.in_reasoning) {}

  std::shared_ptr<Job> job;
  ClientConnection conn;
  const Tokenizer& tok;
  StreamSpec spec;
  ReasoningSplitter splitter;
  ToolCallSplitter tool_splitter;
  int calls_sent = 0;
  Job::Cursor cursor;
  std::vector<TokenOut> tokens;  // released, not yet sent with a chunk
  size_t text_offset = 0;        // completions' logprobs text_offset

  json take_logprobs() {
    if (!spec.logprobs) return nullptr;
    json j =
        spec.chat ? chat_logprobs(tokens, tok) : completion_logprobs(tokens, tok, &text_offset);
    tokens.clear();
    return j;
  }

  // llama-server's events carry the released tokens' ids and probabilities themselves.
  std::pair<json, json> take_native() {
    json probs = spec.logprobs ? native_probs(tokens, tok) : json();
    json ids = spec.return_tokens ? token_ids_json(tokens) : json();
    tokens.clear();
    return {std::move(probs), std::move(ids)};
  }

  json text_chunk(const std::string& reasoning, const std::string& content,
                  const std::vector<ToolCallOut>& calls) {
    if (spec.native) {
      auto [probs, ids] = take_native();
      return native_chunk(content, std::move(probs), std::move(ids));
    }
    if (!spec.chat) return completion_chunk(spec.head, content, nullptr, take_logprobs());
    json delta = json::object();
    if (!reasoning.empty()) delta["reasoning_content"] = reasoning;
    if (!content.empty()) delta["content"] = content;
    if (!calls.empty()) {
      delta["tool_calls"] = tool_calls_json(calls, calls_sent);
      calls_sent += static_cast<int>(calls.size());
    }
    return chat_chunk(spec.head, std::move(delta), nullptr, take_logprobs());
  }

  // Runs the whole stream; false when the client went away (the job is cancelled).
  bool run(httplib::DataSink& sink) {
    auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
    auto send = [&](const json& j) { return write("data: " + dump(j) + "\n\n"); };
    if (spec.chat && !send(chat_chunk(spec.head, {{"role", "assistant"}, {"content", ""}})))
      return false;
    auto last_write = std::chrono::steady_clock::now();
    auto checked = last_write;
    for (;;) {
      Job::Update u;
      const bool news = job->wait(&cursor, &u, std::chrono::milliseconds(100));
      // A failed write says the client is gone, but text can be held back (a stop string's
      // start) or slow to come (a queue, a long prompt): look at the socket every 100 ms too.
      const auto now = std::chrono::steady_clock::now();
      if (now - checked >= std::chrono::milliseconds(100)) {
        checked = now;
        if (conn.gone()) return false;
      }
      if (!news) {
        if (spec.ping_s > 0 && now - last_write > std::chrono::seconds(spec.ping_s)) {
          if (!write(": ping\n\n")) return false;
          last_write = now;
        }
        continue;
      }
      for (TokenOut& t : u.tokens) tokens.push_back(std::move(t));
      std::string reasoning, content;
      if (spec.chat && spec.reasoning) {
        splitter.push(u.text, &reasoning, &content);
      } else {
        content = std::move(u.text);
      }
      const bool ended = u.done && job->finish_reason() != FinishReason::kError;
      if (ended && spec.chat && spec.reasoning) splitter.finish(&reasoning, &content);
      std::vector<ToolCallOut> calls;
      if (spec.tools) {
        std::string text = std::move(content);
        content.clear();
        tool_splitter.push(text, &content, &calls);
        if (ended) tool_splitter.finish(&content, &calls);
      }
      if (!reasoning.empty() || !content.empty() || !calls.empty()) {
        if (!send(text_chunk(reasoning, content, calls))) return false;
        last_write = std::chrono::steady_clock::now();
      }
      if (u.done) break;
    }
    const FinishReason reason = job->finish_reason();
    if (reason == FinishReason::kError) {
      const int status = job->error_status();
      ApiError e(status, status == 503 ? "unavailable_error" : "server_error", job->error());
      send(e.body());
      return true;
    }
    if (reason == FinishReason::kCancelled) return false;
    const JobStats stats = job->stats();
    if (spec.native) {  // the figures ride on the last event; no [DONE]
      auto [probs, ids] = take_native();
      return send(
          native_final("", spec.head.model, reason, stats, std::move(probs), std::move(ids)));
    }
    json last = spec.chat ? chat_chunk(spec.head, json::object(),
                                       finish_reason_json(reason, tool_splitter.called()),
                                       tokens.empty() ? json() : take_logprobs())
                          : completion_chunk(spec.head, "", finish_reason_json(reason),
                                             tokens.empty() ? json() : take_logprobs());
    last["timings"] = timings_json(stats);
    if (!send(last)) return false;
    const char* object = spec.chat ? "chat.completion.chunk" : "text_completion";
    if (spec.include_usage && !send(usage_chunk(spec.head, object, stats))) return false;
    return write("data: [DONE]\n\n");
  }
};

}  // namespace

void stream_job(httplib::Response& res, std::shared_ptr<Job> job, ClientConnection conn,
                const Tokenizer& tok, StreamSpec spec) {
  auto stream = std::make_shared<Stream>(job, conn, tok, std::move(spec));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream](size_t, httplib::DataSink& sink) {
        if (!stream->run(sink)) {
          stream->job->cancel();
          return false;
        }
        sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancel();
      });
}

}  // namespace xtile::server
