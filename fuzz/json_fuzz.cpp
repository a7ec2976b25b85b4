// libFuzzer target for JSON mode's grammar (src/server/json_prefix.h; build and run:
// fuzz/run.sh 30 json), against an independent parser, nlohmann::json:
// - the byte-at-a-time feed(), accepts() and take() agree on how much of the input is taken;
// - an input taken whole with the object complete is a JSON object for nlohmann;
// - a JSON object for nlohmann is taken whole and complete, unless the grammar refused a
//   whitespace byte (its limits on whitespace runs and on anything after the close) or the
//   nesting passed kMaxDepth;
// - once complete, every byte is refused; before, some byte is taken (no dead end).
// Inputs with a NUL byte check the first and last only (nlohmann stops reading at a NUL).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "server/json_prefix.h"

namespace {

using xtile::server::JsonPrefix;

[[noreturn]] void finding(const char* what, std::string_view input) {
  const nlohmann::json text = std::string(input);
  std::fprintf(stderr, "json fuzz finding: %s; input %s\n", what,
               text.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace).c_str());
  std::abort();
}

bool is_whitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Deepest nesting of brackets outside strings (an upper bound where the input is not JSON).
int depth(std::string_view s) {
  int d = 0, most = 0;
  bool in_string = false, escape = false;
  for (char c : s) {
    if (in_string) {
      if (escape)
        escape = false;
      else if (c == '\\')
        escape = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      most = std::max(most, ++d);
    } else if (c == '}' || c == ']') {
      --d;
    }
  }
  return most;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  JsonPrefix p;
  size_t taken = 0;
  while (taken < size && p.feed(data[taken])) ++taken;
  const bool whole = taken == size;
  if (JsonPrefix().accepts(input) != whole) finding("accepts() disagrees with feed()", input);
  JsonPrefix t;
  if (t.take(input) != whole) finding("take() disagrees with feed()", input);
  if (whole && t.complete() != p.complete()) finding("take() ends in another state", input);
  if (!p.complete()) {  // some byte continues what was taken: no dead end for a sampler
    bool some = false;
    for (int b = 0; b < 256 && !some; ++b) {
      JsonPrefix next = p;
      some = next.feed(static_cast<uint8_t>(b));
    }
    if (!some) finding("no byte continues the prefix taken", input.substr(0, taken));
  }
  if (p.complete()) {
    for (int b = 0; b < 256; ++b) {
      JsonPrefix after = p;
      if (after.feed(static_cast<uint8_t>(b))) finding("a byte taken after the close", input);
    }
  }

  // nlohmann reads a NUL byte as the end of its input; the grammar refuses it like any control
  // byte. Such inputs check the invariants above only.
  if (input.find('\0') != std::string_view::npos) return 0;
  bool object = false, out_of_range = false;
  try {
    object = nlohmann::json::parse(input).is_object();
  } catch (const nlohmann::json::out_of_range&) {
    out_of_range = true;  // a number beyond double's range: JSON syntax, refused by nlohmann
  } catch (const nlohmann::json::exception&) {
  }
  if (whole && p.complete() && !object && !out_of_range)
    finding("taken as a complete object, not an object for nlohmann", input);
  if (object && !(whole && p.complete()) && !(taken < size && is_whitespace(input[taken])) &&
      depth(input) <= JsonPrefix::kMaxDepth)
    finding("an object for nlohmann, refused", input);
  return 0;
}
