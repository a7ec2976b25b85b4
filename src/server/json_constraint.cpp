#include "server/json_constraint.h"

#include <limits>

#include "tokenizer/tokenizer.h"

namespace xtile::server {

TokenBytes::TokenBytes(const Tokenizer& tokenizer) {
  const int32_t n = tokenizer.n_vocab();
  bytes_.resize(static_cast<size_t>(n));
  usable_.assign(static_cast<size_t>(n), 0);
  for (int32_t id = 0; id < n; ++id) {
    if (tokenizer.is_control(id) || tokenizer.is_eog(id)) continue;
    std::string b = tokenizer.decode_token(id);
    if (b.empty()) continue;
    usable_[static_cast<size_t>(id)] = 1;
    bytes_[static_cast<size_t>(id)] = std::move(b);
  }
}

bool JsonConstraint::allows(int32_t id) const {
  if (id < 0 || id >= vocab_->size() || !vocab_->usable(id)) return false;
  return state_.accepts(vocab_->bytes(id));
}

int64_t JsonConstraint::mask(std::span<float> logits) const {
  // Which first bytes the grammar takes here: a token starting with any other is refused
  // without walking its bytes (outside strings that is most of the vocabulary).
  bool first_ok[256];
  for (int b = 0; b < 256; ++b) {
    JsonPrefix probe = state_;
    first_ok[b] = probe.feed(static_cast<uint8_t>(b));
  }
  int64_t allowed = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const int32_t id = static_cast<int32_t>(i);
    const bool ok = id < vocab_->size() && vocab_->usable(id) &&
                    first_ok[static_cast<uint8_t>(vocab_->bytes(id)[0])] &&
                    state_.accepts(vocab_->bytes(id));
    if (ok)
      ++allowed;
    else
      logits[i] = -std::numeric_limits<float>::infinity();
  }
  return allowed;
}

bool JsonConstraint::accept(int32_t id) {
  if (id < 0 || id >= vocab_->size() || !vocab_->usable(id)) return false;
  return state_.take(vocab_->bytes(id));
}

}  // namespace xtile::server
