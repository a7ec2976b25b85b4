#include "server/openai_response.h"

#include <cmath>
#include <random>

namespace xtile::server {

using nlohmann::json;

namespace {
namespace openai_response {  // unity batches: CMakeLists.txt

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

json head(const ResponseHead& h, const char* object) {
  return {{"id", h.id},
          {"object", object},
          {"created", h.created},
          {"model", h.model},
          {"system_fingerprint", h.fingerprint}};
}

}  // namespace openai_response
}  // namespace

std::string make_id(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[rng() % 62];
  return id;
}

json finish_reason_json(FinishReason reason, bool called) {
  if (called && reason == FinishReason::kStop) return "tool_calls";
  const char* name = finish_reason_name(reason);
  return name ? json(name) : json();
}

json usage_json(const JobStats& s) {
  return {{"prompt_tokens", s.prompt_tokens},
          {"completion_tokens", s.completion_tokens},
          {"total_tokens", s.prompt_tokens + s.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", s.cached_tokens}}}};
}

json usage_json(std::span<const JobStats> choices, size_t n) {
  JobStats all;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i % n == 0) {  // a prompt's first choice: its prompt, counted once
      all.prompt_tokens += choices[i].prompt_tokens;
      all.cached_tokens += choices[i].cached_tokens;
    }
    all.completion_tokens += choices[i].completion_tokens;
  }
  return usage_json(all);
}

json token_ids_json(const std::vector<TokenOut>& tokens) {
  json ids = json::array();
  for (const TokenOut& t : tokens) ids.push_back(t.id);
  return ids;
}

json timings_json(const JobStats& s) {
  const int64_t prompt_n = s.prompt_tokens - s.cached_tokens;
  // The first token comes out of the prompt's pass; generation time covers the others.
  const int64_t gen_n = std::max<int64_t>(0, s.completion_tokens - 1);
  return {{"cache_n", s.cached_tokens},
          {"prompt_n", prompt_n},
          {"prompt_ms", s.prompt_ms},
          {"prompt_per_second", s.prompt_ms > 0 ? 1000.0 * prompt_n / s.prompt_ms : 0.0},
          {"predicted_n", s.completion_tokens},
          {"predicted_ms", s.predicted_ms},
          {"predicted_per_second", s.predicted_ms > 0 ? 1000.0 * gen_n / s.predicted_ms : 0.0},
          {"queue_ms", s.queue_ms},
          {"preemptions", s.preemptions}};
}

json chat_logprobs(const std::vector<TokenOut>& tokens, const Tokenizer& tok) {
  using namespace openai_response;  // this file's helpers
  json content = json::array();
  for (const TokenOut& t : tokens) {
    const std::string piece = tok.decode_token(t.id, /*render_special=*/true);
    json top = json::array();
    for (const auto& [id, lp] : t.top) {
      const std::string p = tok.decode_token(id, true);
      top.push_back({{"id", id}, {"token", p}, {"bytes", bytes_of(p)}, {"logprob", lp}});
    }
    content.push_back({{"id", t.id},
                       {"token", piece},
                       {"bytes", bytes_of(piece)},
                       {"logprob", t.logprob},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

json completion_logprobs(const std::vector<TokenOut>& tokens, const Tokenizer& tok,
                         size_t* offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const TokenOut& t : tokens) {
    const std::string piece = tok.decode_token(t.id, true);
    toks.push_back(piece);
    offs.push_back(*offset);
    *offset += piece.size();
    if (std::isnan(t.logprob)) {  // the prompt's first token (echo): nothing scored it
      lps.push_back(nullptr);
      tops.push_back(nullptr);
      continue;
    }
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& [id, lp] : t.top) top[tok.decode_token(id, true)] = lp;
    // OpenAI's legacy completions always list the sampled token too (up to logprobs + 1).
    if (!top.contains(piece)) top[piece] = t.logprob;
    tops.push_back(std::move(top));
  }
  return {{"tokens", std::move(toks)},
          {"token_logprobs", std::move(lps)},
          {"top_logprobs", std::move(tops)},
          {"text_offset", std::move(offs)}};
}

json chat_chunk(const ResponseHead& h, json delta, json finish_reason, json logprobs) {
  using namespace openai_response;  // this file's helpers
  json j = head(h, "chat.completion.chunk");
  j["choices"] = json::array({{{"index", 0},
                               {"delta", std::move(delta)},
                               {"logprobs", std::move(logprobs)},
                               {"finish_reason", std::move(finish_reason)}}});
  return j;
}

json completion_chunk(const ResponseHead& h, const std::string& text, json finish_reason,
                      json logprobs) {
  using namespace openai_response;  // this file's helpers
  json j = head(h, "text_completion");
  j["choices"] = json::array({{{"index", 0},
                               {"text", text},
                               {"logprobs", std::move(logprobs)},
                               {"finish_reason", std::move(finish_reason)}}});
  return j;
}

json usage_chunk(const ResponseHead& h, const char* object, std::span<const JobStats> choices,
                 size_t n) {
  using namespace openai_response;  // this file's helpers
  json j = head(h, object);
  j["choices"] = json::array();
  j["usage"] = usage_json(choices, n);
  return j;
}

json chat_response(const ResponseHead& h, const std::string& content, const std::string& reasoning,
                   FinishReason reason, const JobStats& s, json logprobs,
                   const std::vector<ToolCallOut>& calls) {
  using namespace openai_response;  // this file's helpers
  json message = {{"role", "assistant"}, {"content", content}};
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  if (!calls.empty()) {
    if (content.empty()) message["content"] = nullptr;
    message["tool_calls"] = tool_calls_json(calls);
  }
  json j = head(h, "chat.completion");
  j["choices"] = json::array({{{"index", 0},
                               {"message", std::move(message)},
                               {"logprobs", std::move(logprobs)},
                               {"finish_reason", finish_reason_json(reason, !calls.empty())}}});
  j["usage"] = usage_json(s);
  j["timings"] = timings_json(s);
  return j;
}

json completion_response(const ResponseHead& h, const std::string& text, FinishReason reason,
                         const JobStats& s, json logprobs) {
  using namespace openai_response;  // this file's helpers
  json j = head(h, "text_completion");
  j["choices"] = json::array({{{"index", 0},
                               {"text", text},
                               {"logprobs", std::move(logprobs)},
                               {"finish_reason", finish_reason_json(reason)}}});
  j["usage"] = usage_json(s);
  j["timings"] = timings_json(s);
  return j;
}

}  // namespace xtile::server
