// Byte-level BPE (GPT-2 style, llama.cpp's llm_tokenizer_bpe_session): each pre-token's bytes are
// mapped to printable code points (GPT-2's bytes_to_unicode), cut into characters, and the
// adjacent pair with the lowest merge rank (its index in tokenizer.ggml.merges) is merged again
// and again, leftmost first on ties, with a priority queue: O(n log n) per pre-token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/vocab.h"

namespace xtile::tok_internal {

// UTF-8 of the code point GPT-2 assigns to byte `b`: the printable bytes ('!'..'~', U+00A1..U+00AC,
// U+00AE..U+00FF) keep their value, the other 68 take U+0100, U+0101, ... in byte order.
const std::string& byte_to_unicode_utf8(uint8_t b);
// The byte mapped to code point `cp`, or -1 when `cp` is not one of the 256 mapped code points.
int unicode_to_byte(uint32_t cp);
// A byte-level token text back to raw bytes. A code point outside the mapping (not produced by
// GPT-2 vocabularies) is copied as its UTF-8 bytes.
std::string byte_level_decode(std::string_view token_text);

struct MergeKeyView {
  std::string_view left, right;
};
struct MergeKey {
  std::string left, right;
};
struct MergeHash {
  using is_transparent = void;
  size_t operator()(const MergeKeyView& k) const {
    const size_t a = std::hash<std::string_view>{}(k.left);
    const size_t b = std::hash<std::string_view>{}(k.right);
    return a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
  }
  size_t operator()(const MergeKey& k) const { return (*this)(MergeKeyView{k.left, k.right}); }
};
struct MergeEq {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::string_view(a.left) == std::string_view(b.left) &&
           std::string_view(a.right) == std::string_view(b.right);
  }
};

class BpeEncoder {
 public:
  // `merges`: tokenizer.ggml.merges, "left right" each (split at the first space after the first
  // byte, as llama.cpp does); the first occurrence of a pair sets its rank. `ignore_merges`: a
  // pre-token that is already a vocabulary entry is emitted whole (Llama-3). `unk` may be -1.
  BpeEncoder(const Vocab& vocab, const std::vector<std::string>& merges, bool ignore_merges,
             int32_t unk, std::string label);
  // Appends the tokens of one pre-token given as raw bytes.
  void encode_word(std::string_view word, std::vector<int32_t>* out) const;
  size_t n_merges() const { return ranks_.size(); }

 private:
  // Rank of merging `left` + `right`, or -1 when no merge joins them.
  int32_t rank(std::string_view left, std::string_view right) const;

  const Vocab& vocab_;
  bool ignore_merges_;
  int32_t unk_;
  std::string label_;
  std::unordered_map<MergeKey, int32_t, MergeHash, MergeEq> ranks_;
};

}  // namespace xtile::tok_internal
