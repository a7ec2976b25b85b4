// JSON mode (response_format {"type": "json_object"}, or "json_schema" with a schema): the tokens
// a reply may take next so that its text stays the beginning of one JSON object (of the schema's
// instances: JsonPrefix), and the end of the reply when the object closes. The sampler draws as
// usual; a drawn token the grammar refuses is replaced by a draw from the logits with every refused
// token masked out. Drawing first and masking only on a refusal gives the masked distribution (p(t)
// + (1 − S)·p(t)/S = p(t)/S over the S of the allowed tokens) and costs one vocabulary pass only on
// the steps that need it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "server/json_prefix.h"

namespace xtile {
class Tokenizer;
}

namespace xtile::server {

// Each token's bytes as a reply's text takes them, built once per server (on the first JSON
// request: 151936 strings for Qwen's vocabulary). Control, unused and end-of-generation tokens
// and tokens without bytes are never allowed: they add nothing to the object, and an end before
// it closes would leave it unfinished.
class TokenBytes {
 public:
  explicit TokenBytes(const Tokenizer& tokenizer);
  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }
  bool usable(int32_t id) const { return usable_[static_cast<size_t>(id)] != 0; }
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }

 private:
  std::vector<std::string> bytes_;
  std::vector<uint8_t> usable_;
};

class JsonConstraint {
 public:
  // schema: null for any object (json_object); else kept alive by the caller (the job).
  explicit JsonConstraint(const TokenBytes& vocab, const JsonSchema* schema = nullptr)
      : vocab_(&vocab), state_(schema) {}

  // Token id may come next.
  bool allows(int32_t id) const;
  // Sets every token that may not come next to −infinity; returns how many may.
  int64_t mask(std::span<float> logits) const;
  // Takes token id (one allows() said yes to). False, and nothing taken, otherwise.
  bool accept(int32_t id);
  // The object has closed: the reply ends here.
  bool complete() const { return state_.complete(); }

 private:
  const TokenBytes* vocab_;
  JsonPrefix state_;
};

}  // namespace xtile::server
