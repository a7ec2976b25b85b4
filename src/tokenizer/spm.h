// SentencePiece-style tokenization (llama.cpp's llm_tokenizer_spm): the text is cut into UTF-8
// characters (an invalid byte is a character of its own, see utf8_char_len), then the adjacent
// pair whose concatenation is the vocabulary entry with the highest score is merged, again and
// again (leftmost pair on ties), with a priority queue: O(n log n).
// Characters that never became a token are emitted as <0xXX> byte tokens.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace xtile::tok_internal {

class SpmEncoder {
 public:
  // `label` names the file in error messages. `unk` may be -1.
  SpmEncoder(const Vocab& vocab, int32_t unk, std::string label);
  // Appends the tokens of `text`, whose spaces are already escaped to U+2581 and whose dummy
  // prefix is already added.
  void encode(std::string_view text, std::vector<int32_t>* out) const;
  // Token for raw byte `b`: "<0xXX>", else the one-byte text, else -1.
  int32_t byte_token(uint8_t b) const { return byte_token_[b]; }

 private:
  void emit_bytes(std::string_view s, std::vector<int32_t>* out) const;

  const Vocab& vocab_;
  int32_t unk_;
  std::string label_;
  int32_t byte_token_[256];
};

}  // namespace xtile::tok_internal
