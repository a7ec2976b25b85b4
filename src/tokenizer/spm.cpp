#include "tokenizer/spm.h"

#include <cstdio>
#include <functional>

#include "base/error.h"
#include "tokenizer/symbol_merge.h"
#include "tokenizer/utf8.h"

namespace xtile::tok_internal {

SpmEncoder::SpmEncoder(const Vocab& vocab, int32_t unk, std::string label)
    : vocab_(vocab), unk_(unk), label_(std::move(label)) {
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    int32_t id = vocab_.find(hex);
    const char raw = static_cast<char>(b);
    if (id < 0) id = vocab_.find(std::string_view(&raw, 1));
    byte_token_[b] = id;
  }
}

void SpmEncoder::emit_bytes(std::string_view s, std::vector<int32_t>* out) const {
  for (char c : s) {
    const uint8_t b = static_cast<uint8_t>(c);
    int32_t id = byte_token_[b];
    if (id < 0) id = unk_;
    if (id < 0) {
      fail(label_, ": SentencePiece vocabulary has no token for byte 0x", std::hex,
           static_cast<int>(b), " (no <0x", static_cast<int>(b), "> byte token and no <unk>)");
    }
    out->push_back(id);
  }
}

void SpmEncoder::encode(std::string_view text, std::vector<int32_t>* out) const {
  if (text.empty()) return;
  if (text.size() >= (1u << 31)) fail(label_, ": text of ", text.size(), " bytes is too long");
  std::vector<Symbol> symbols = cut_symbols(text, utf8_char_len);
  // A pair may merge when its text is a token; the highest score first.
  merge_symbols<float, std::less<float>>(
      symbols, [&](const Symbol& l, const Symbol& r, float* score) {
        // Adjacent live symbols are contiguous in the text, so their concatenation is a
        // substring.
        const int32_t id = vocab_.find(text.substr(l.offset, l.n + r.n));
        if (id < 0) return false;
        *score = vocab_.score[id];
        return true;
      });

  // Every merged symbol is a vocabulary entry by construction (a pair is queued only if its
  // text is one), so only single characters can be missing: they become byte tokens. This is
  // what llama.cpp's resegment() reduces to; its rev_merge path is never taken.
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const std::string_view s = text.substr(symbols[i].offset, symbols[i].n);
    const int32_t id = vocab_.find(s);
    if (id >= 0) {
      out->push_back(id);
    } else {
      emit_bytes(s, out);
    }
  }
}

}  // namespace xtile::tok_internal
