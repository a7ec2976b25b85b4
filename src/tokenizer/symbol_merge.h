// The merge loop SentencePiece and byte-level BPE share (llama.cpp's llm_tokenizer_spm and
// llm_tokenizer_bpe): the text cut into symbols, a doubly linked list over byte ranges; every
// pair of neighbours that may merge goes into a priority queue; the best pair merges first (ties:
// the leftmost), and the new symbol's pairs with its neighbours are queued in turn. The encoders
// differ only in what "may merge" and "best" mean: SentencePiece, the pair's text is a token and
// the higher vocabulary score wins; BPE, the pair is a merge rule and the lower rank wins.
#pragma once

#include <cstdint>
#include <queue>
#include <string_view>
#include <vector>

namespace xtile::tok_internal {

struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t offset;  // into the text
  uint32_t n;       // bytes; 0 once merged into its left neighbour
};

// Symbols for text cut where char_len(text, offset) says a unit ends, linked in order.
template <typename CharLen>
std::vector<Symbol> cut_symbols(std::string_view text, CharLen char_len) {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offs = 0; offs < text.size();) {
    const size_t len = char_len(text, offs);
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offs + len == text.size() ? -1 : index + 1,
                       static_cast<uint32_t>(offs), static_cast<uint32_t>(len)});
    offs += len;
  }
  return symbols;
}

// Merges `symbols` (from cut_symbols) in place. priority_of(left, right, &p) says whether the
// neighbours may merge and with which priority P; Later(a, b) is true when priority a merges
// after priority b. Merged-away symbols are left with n = 0; walk the result from index 0
// through `next`.
template <typename P, typename Later, typename PriorityOf>
void merge_symbols(std::vector<Symbol>& symbols, PriorityOf priority_of) {
  struct Pair {
    int32_t left;
    int32_t right;
    P priority;
    uint32_t size;
  };
  // std::priority_queue's top is the greatest under the comparator: the pair merging first.
  // Equal priorities: the leftmost pair first (llama.cpp's comparators).
  struct After {
    bool operator()(const Pair& l, const Pair& r) const {
      return Later{}(l.priority, r.priority) ||
             (!Later{}(r.priority, l.priority) && l.left > r.left);
    }
  };
  std::priority_queue<Pair, std::vector<Pair>, After> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    P p;
    if (!priority_of(symbols[left], symbols[right], &p)) return;
    queue.push({left, right, p, symbols[left].n + symbols[right].n});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Pair pair = queue.top();
    queue.pop();
    Symbol& left = symbols[pair.left];
    Symbol& right = symbols[pair.right];
    // Stale entry: one side was merged since. Symbols only grow, so equal sizes mean both are
    // unchanged and the pair still spells what was queued (llama.cpp compares the texts).
    if (left.n == 0 || right.n == 0 || left.n + right.n != pair.size) continue;
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = pair.left;
    try_add(left.prev, pair.left);
    try_add(pair.left, left.next);
  }
}

}  // namespace xtile::tok_internal
