#include "server/native_response.h"

#include "server/openai_response.h"

namespace xtile::server {

using nlohmann::json;

const char* native_stop_type(FinishReason reason, const JobStats& s) {
  switch (reason) {
    case FinishReason::kStop:
      return s.stop_word.empty() ? "eos" : "word";
    case FinishReason::kLength:
      return "limit";
    default:
      return "none";
  }
}

json native_chunk(const std::string& content, json probs, json ids) {
  json j = {{"index", 0}, {"content", content}, {"stop", false}};
  if (probs.is_array()) j["completion_probabilities"] = std::move(probs);
  if (ids.is_array()) j["tokens"] = std::move(ids);
  return j;
}

json native_final(const std::string& content, const std::string& model, FinishReason reason,
                  const JobStats& s, json probs, json ids) {
  json j = native_chunk(content, std::move(probs), std::move(ids));
  j["stop"] = true;
  j["model"] = model;
  j["id_slot"] = s.slot;
  j["tokens_predicted"] = s.completion_tokens;
  j["tokens_evaluated"] = s.prompt_tokens;
  j["tokens_cached"] = s.cached_tokens;
  j["stop_type"] = native_stop_type(reason, s);
  j["stopping_word"] = s.stop_word;
  j["truncated"] = false;  // a prompt longer than the context is refused, never cut
  j["timings"] = timings_json(s);
  return j;
}

json native_probs(const std::vector<TokenOut>& tokens, const Tokenizer& tok) {
  return chat_logprobs(tokens, tok)["content"];
}

}  // namespace xtile::server
