// The JSON grammar tests' probe: how much of a text JsonPrefix takes.
#pragma once

#include <cstdint>
#include <string_view>

#include "server/json_prefix.h"

namespace xtile::server::test {

// How many bytes of s the grammar (with `schema`, or any object) takes before it refuses one
// (s.size(): all), and whether the object is complete after them.
struct Fed {
  size_t taken = 0;
  bool complete = false;
};
inline Fed feed_all(std::string_view s, const JsonSchema* schema = nullptr) {
  JsonPrefix p(schema);
  Fed f;
  for (char c : s) {
    if (!p.feed(static_cast<uint8_t>(c))) break;
    ++f.taken;
  }
  f.complete = p.complete();
  return f;
}

}  // namespace xtile::server::test
