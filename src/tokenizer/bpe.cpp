#include "tokenizer/bpe.h"

#include <algorithm>
#include <array>
#include <functional>

#include "base/error.h"
#include "tokenizer/symbol_merge.h"
#include "tokenizer/utf8.h"

namespace xtile::tok_internal {
namespace {

struct ByteTables {
  std::array<std::string, 256> to_utf8;
  std::array<uint32_t, 256> to_cp;
  std::unordered_map<uint32_t, uint8_t> from_cp;
  ByteTables() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      append_utf8(to_utf8[b], to_cp[b]);
      from_cp[to_cp[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

// Decodes one UTF-8 sequence at s[i] (byte-level token texts are valid UTF-8); returns its
// length and sets *cp, or returns 1 with *cp = 0xFFFFFFFF for an invalid byte.
size_t next_code_point(std::string_view s, size_t i, uint32_t* cp) {
  const uint8_t c = static_cast<uint8_t>(s[i]);
  size_t len = 0;
  uint32_t v = 0;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2;
    v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    v = c & 0x07;
  } else {
    *cp = 0xFFFFFFFFu;
    return 1;
  }
  if (i + len > s.size()) {
    *cp = 0xFFFFFFFFu;
    return 1;
  }
  for (size_t k = 1; k < len; ++k) {
    const uint8_t cc = static_cast<uint8_t>(s[i + k]);
    if ((cc & 0xC0) != 0x80) {
      *cp = 0xFFFFFFFFu;
      return 1;
    }
    v = (v << 6) | (cc & 0x3F);
  }
  *cp = v;
  return len;
}

}  // namespace

const std::string& byte_to_unicode_utf8(uint8_t b) {
  return tables().to_utf8[b];
}

int unicode_to_byte(uint32_t cp) {
  const auto& m = tables().from_cp;
  auto it = m.find(cp);
  return it == m.end() ? -1 : it->second;
}

std::string byte_level_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t len = next_code_point(text, i, &cp);
    const int b = cp == 0xFFFFFFFFu ? -1 : unicode_to_byte(cp);
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

BpeEncoder::BpeEncoder(const Vocab& vocab, const std::vector<std::string>& merges,
                       bool ignore_merges, int32_t unk, std::string label)
    : vocab_(vocab), ignore_merges_(ignore_merges), unk_(unk), label_(std::move(label)) {
  ranks_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& m = merges[i];
    // Searching from index 1 lets a merge whose left side is itself a space be read (as
    // llama.cpp does); a line without a separator can never match two symbols and is skipped.
    const size_t pos = m.find(' ', 1);
    if (pos == std::string::npos) continue;
    ranks_.emplace(MergeKey{m.substr(0, pos), m.substr(pos + 1)}, static_cast<int32_t>(i));
  }
}

int32_t BpeEncoder::rank(std::string_view left, std::string_view right) const {
  auto it = ranks_.find(MergeKeyView{left, right});
  return it == ranks_.end() ? -1 : it->second;
}

void BpeEncoder::encode_word(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  std::string enc;
  enc.reserve(word.size() * 2);
  for (char c : word) enc += byte_to_unicode_utf8(static_cast<uint8_t>(c));
  if (enc.size() >= (1u << 31)) fail(label_, ": pre-token of ", word.size(), " bytes is too long");

  if (ignore_merges_) {
    const int32_t id = vocab_.find(enc);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }

  const std::string_view text(enc);
  std::vector<Symbol> symbols = cut_symbols(text, [](std::string_view t, size_t offs) {
    return std::min(utf8_len_from_lead(static_cast<uint8_t>(t[offs])), t.size() - offs);
  });
  // A pair may merge when it is a merge rule; the lowest rank first.
  merge_symbols<int32_t, std::greater<int32_t>>(
      symbols, [&](const Symbol& l, const Symbol& r, int32_t* rk) {
        *rk = rank(text.substr(l.offset, l.n), text.substr(r.offset, r.n));
        return *rk >= 0;
      });

  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const std::string_view s = text.substr(symbols[i].offset, symbols[i].n);
    const int32_t id = vocab_.find(s);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // A merge produced a text that is not a token (an inconsistent vocabulary): fall back to its
    // characters, each the image of one byte. llama.cpp looks up single *bytes* of the mapped text
    // here and silently drops those it cannot find; we use <unk> or fail instead of losing text.
    for (size_t k = 0; k < s.size();) {
      const size_t len = std::min(utf8_len_from_lead(static_cast<uint8_t>(s[k])), s.size() - k);
      int32_t cid = vocab_.find(s.substr(k, len));
      if (cid < 0) cid = unk_;
      if (cid < 0) {
        fail(label_, ": byte-level BPE vocabulary has no token for the character '",
             std::string(s.substr(k, len)), "' and no <unk> token");
      }
      out->push_back(cid);
      k += len;
    }
  }
}

}  // namespace xtile::tok_internal
