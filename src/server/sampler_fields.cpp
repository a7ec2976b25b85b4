#include "server/sampler_fields.h"

#include <map>
#include <mutex>
#include <utility>

#include "server/api_error.h"
#include "server/json_fields.h"

namespace xtile::server {

using nlohmann::ordered_json;

std::vector<std::string> default_dry_breakers() {
  return {"\n", ":", "\"", "*"};
}

void parse_sampler_extras(const ordered_json& body, SamplerParams* s,
                          const std::vector<std::string>& default_breakers,
                          std::vector<std::string>* dry_breakers) {
  auto number = [&](const char* name, float* out, double lo, double hi) {
    if (const ordered_json* v = field(body, name))
      *out = static_cast<float>(get_number(*v, name, lo, hi));
  };
  auto integer = [&](const char* name, int32_t* out, int64_t lo, int64_t hi) {
    if (const ordered_json* v = field(body, name))
      *out = static_cast<int32_t>(get_int(*v, name, lo, hi));
  };
  number("typical_p", &s->typical_p, 0.0, 1.0);
  number("top_n_sigma", &s->top_n_sigma, -1.0, 1e6);
  number("xtc_probability", &s->xtc_probability, 0.0, 1.0);
  number("xtc_threshold", &s->xtc_threshold, 0.0, 1.0);
  number("dynatemp_range", &s->dynatemp_range, 0.0, 100.0);
  number("dynatemp_exponent", &s->dynatemp_exponent, 0.0, 100.0);
  integer("mirostat", &s->mirostat, 0, 2);
  number("mirostat_tau", &s->mirostat_tau, 0.0, 100.0);
  number("mirostat_eta", &s->mirostat_eta, 0.0, 1.0);
  number("dry_multiplier", &s->dry_multiplier, 0.0, 1e6);
  number("dry_base", &s->dry_base, 1.0, 100.0);
  integer("dry_allowed_length", &s->dry_allowed_length, 0, INT32_MAX);
  integer("dry_penalty_last_n", &s->dry_penalty_last_n, -1, INT32_MAX);
  std::vector<std::string> breakers = default_breakers;
  if (const ordered_json* v = field(body, "dry_sequence_breakers")) {
    if (!v->is_array() || v->empty())
      wrong_type("dry_sequence_breakers", "a non-empty list of strings", *v);
    breakers.clear();
    for (const ordered_json& b : *v) {
      if (!b.is_string() || b.get<std::string>().empty())
        throw bad_request("'dry_sequence_breakers' must hold non-empty strings",
                          "dry_sequence_breakers");
      breakers.push_back(b.get<std::string>());
    }
  }
  dry_breakers->clear();
  if (s->dry_multiplier > 0.0f) *dry_breakers = std::move(breakers);
}

std::vector<int32_t> dry_breaker_tokens(const Tokenizer& tok,
                                        const std::vector<std::string>& breakers) {
  using Key = std::pair<const Tokenizer*, std::vector<std::string>>;
  static std::mutex mu;
  static std::map<Key, std::vector<int32_t>> memo;
  Key key{&tok, breakers};
  {
    std::lock_guard lock(mu);
    if (const auto it = memo.find(key); it != memo.end()) return it->second;
  }
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    const std::string text = tok.decode_token(id);
    for (const std::string& b : breakers)
      if (text.find(b) != std::string::npos) {
        ids.push_back(id);
        break;
      }
  }
  std::lock_guard lock(mu);
  if (memo.size() >= 32) memo.clear();  // a bound: lists are few in practice
  memo.emplace(std::move(key), ids);
  return ids;
}

}  // namespace xtile::server
