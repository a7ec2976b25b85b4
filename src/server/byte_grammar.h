// What the server's grammars (JsonPrefix, ToolCallPrefix, ThinkFirst) share: a recognizer
// that reads a reply byte by byte and is asked about whole tokens. Derived provides
// `bool step(uint8_t c)`: takes c, or returns false, leaving a state that is then thrown away
// (feed, accepts and take copy first).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

namespace xtile::server {

// How much of `tag` the text ends with after byte c, when it ended with `matched` bytes of it:
// the longest suffix of tag[0, matched) + c that begins tag (the grammars watch for tags of a few
// bytes, "</think>", "<tool_call>", so the borders are found by comparison, not a table).
inline uint8_t tag_advance(std::string_view tag, uint8_t matched, uint8_t c) {
  for (size_t m = matched;;) {
    if (m < tag.size() && static_cast<uint8_t>(tag[m]) == c) return static_cast<uint8_t>(m + 1);
    if (m == 0) return 0;
    size_t k = m - 1;  // the next shorter border of tag[0, m)
    while (k > 0 && tag.substr(0, k) != tag.substr(m - k, k)) --k;
    m = k;
  }
}

template <class Derived>
class ByteGrammar {
 public:
  // Appends byte c: true when the bytes so far still begin something the grammar admits; on
  // false the state is as it was.
  bool feed(uint8_t c) {
    Derived before = self();
    if (self().step(c)) return true;
    self() = std::move(before);
    return false;
  }
  // Whether every byte of s would be taken (the state is not changed).
  bool accepts(std::string_view s) const {
    Derived probe = static_cast<const Derived&>(*this);
    return probe.step_all(s);
  }
  // Takes every byte of s and returns true, or takes none of them and returns false.
  bool take(std::string_view s) {
    Derived next = self();
    if (!next.step_all(s)) return false;
    self() = std::move(next);
    return true;
  }
  // Takes c, or returns false and leaves this state unusable: for a grammar inside another,
  // whose own feed / accepts / take already keep a copy (one per token, not one per byte:
  // the mask asks about every token of the vocabulary).
  bool try_step(uint8_t c) { return self().step(c); }

 protected:
  // step() over s, stopping at a refused byte.
  bool step_all(std::string_view s) {
    for (char c : s)
      if (!self().step(static_cast<uint8_t>(c))) return false;
    return true;
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace xtile::server
