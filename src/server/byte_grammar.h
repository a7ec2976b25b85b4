// What the server's grammars (JsonPrefix, ToolCallPrefix, ThinkFirst) share: a recognizer
// that reads a reply byte by byte and is asked about whole tokens. Derived provides
// `bool step(uint8_t c)`: takes c, or returns false, leaving a state that is then thrown away
// (these members copy first), and may provide its own `step_all` (a faster walk of a token).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

namespace xtile::server {

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
