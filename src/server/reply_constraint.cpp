#include "server/reply_constraint.h"

#include "tokenizer/tokenizer.h"

namespace xtile::server {

TokenBytes::TokenBytes(const Tokenizer& tokenizer) {
  const int32_t n = tokenizer.n_vocab();
  bytes_.resize(static_cast<size_t>(n));
  kinds_.assign(static_cast<size_t>(n), Kind::kUnread);
  for (int32_t id = 0; id < n; ++id) {
    if (tokenizer.is_eog(id)) {
      kinds_[static_cast<size_t>(id)] = Kind::kEnd;
      continue;
    }
    if (tokenizer.is_control(id)) continue;
    std::string b = tokenizer.decode_token(id);
    if (b.empty()) continue;
    kinds_[static_cast<size_t>(id)] = Kind::kText;
    bytes_[static_cast<size_t>(id)] = std::move(b);
  }
}

}  // namespace xtile::server
