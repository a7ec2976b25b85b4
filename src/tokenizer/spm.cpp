#include "tokenizer/spm.h"

#include <cstdio>
#include <queue>

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace xtile::tok_internal {
namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t offset;  // into the text
  uint32_t n;       // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  int32_t left;
  int32_t right;
  float score;
  uint32_t size;
};

// Highest score first; on equal scores the leftmost pair (llama.cpp's comparator).
struct BigramLess {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  }
};

}  // namespace

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
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offs = 0; offs < text.size();) {
    const size_t len = utf8_char_len(text, offs);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offs + len == text.size() ? -1 : index + 1,
                       static_cast<uint32_t>(offs), static_cast<uint32_t>(len)});
    offs += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    // Adjacent live symbols are contiguous in the text, so their concatenation is a substring.
    const int32_t id = vocab_.find(text.substr(l.offset, l.n + r.n));
    if (id < 0) return;
    queue.push({left, right, vocab_.score[id], l.n + r.n});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Stale entry: one side was merged since. Symbols only grow, so equal sizes mean both are
    // unchanged and the pair still spells the vocabulary entry that was found.
    if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

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
