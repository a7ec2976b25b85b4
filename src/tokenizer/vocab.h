// The vocabulary shared by the SPM and BPE algorithms: token texts, scores, types and the
// text -> id hash map (heterogeneous lookup, so probing with a string_view allocates nothing).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace xtile::tok_internal {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Vocab {
  std::vector<std::string> text;
  std::vector<float> score;
  std::vector<TokenType> type;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> to_id;

  int32_t size() const { return static_cast<int32_t>(text.size()); }
  // -1 when `s` is not a token.
  int32_t find(std::string_view s) const {
    auto it = to_id.find(s);
    return it == to_id.end() ? -1 : it->second;
  }
};

}  // namespace xtile::tok_internal
