// libFuzzer target for the server's grammars (build and run: fuzz/run.sh 30 json). JSON mode's
// (src/server/json_prefix.h) without a schema, against an independent parser, nlohmann::json:
// - the byte-at-a-time feed(), accepts() and take() agree on how much of the input is taken;
// - an input taken whole with the object complete is a JSON object for nlohmann, and its
//   numbers lie below 1e308 (src/server/json_number_magnitude.h);
// - a JSON object for nlohmann with such numbers is taken whole and complete, unless the grammar
//   refused a whitespace byte (its limits on whitespace runs and on anything after the close) or
//   the nesting passed kMaxDepth;
// - once complete, every byte is refused; before, some byte is taken (no dead end).
// Inputs with a NUL byte check the first and last only (nlohmann stops reading at a NUL).
// With a schema that has every supported keyword (bounds included): feed/accepts/take agree, no
// dead end, an input taken whole and complete parses to an instance (the tests' validator,
// tests/server/json_schema_oracle.h), and an instance in nlohmann's compact spelling is taken.
// The bounds on a non-integer number are inclusive, as the validator compares doubles and a
// number just above an exclusive bound can round to it (json_number_bounds_test.cpp checks those
// exactly), and keep away from 0, where nlohmann's compact spelling has an exponent (1e-05),
// which a bounded number is written without.
// Function calling's grammar (tool_call_prefix.h), forced and lazy, in Hermes' format and
// Llama's, and JSON mode after a
// think block (think_first.h): feed/accepts/take agree, and every prefix taken goes on or may
// end.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "json_number_range.h"
#include "json_schema_oracle.h"
#include "server/json_prefix.h"
#include "server/think_first.h"
#include "server/tool_call_prefix.h"

namespace {

using xtile::server::JsonPrefix;
using xtile::server::JsonSchema;
using xtile::server::ThinkFirst;
using xtile::server::ToolCallPrefix;
using xtile::server::ToolCallRules;
using xtile::server::test::number_range;
using xtile::server::test::NumberRange;

const nlohmann::json& schema_doc() {
  static const nlohmann::json doc = nlohmann::json::parse(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "minLength": 1, "maxLength": 6},
      "age": {"type": "integer", "minimum": -10, "maximum": 150},
      "code": {"allOf": [{"type": "integer", "exclusiveMinimum": 99, "exclusiveMaximum": 1000}]},
      "debt": {"type": ["integer", "null"], "maximum": -20},
      "share": {"type": "number", "minimum": 0.25, "maximum": 99.95},
      "color": {"enum": ["red", "green", 7, 2.5, null, [1, "a"], {"b": {}, "a": []}]},
      "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
      "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
      "day": {"type": "string", "format": "date"},
      "id": {"type": "string", "format": "uuid"},
      "plate": {"type": "string", "pattern": "^[A-Z]{2}-\\d{2,4}$|^\\+[0-9 ]*é$"},
      "memo": {"type": "string", "pattern": "^[a-z]+\\.?[0-9é]*$", "minLength": 1, "maxLength": 5},
      "cost": {"anyOf": [{"type": "number"}, {"type": "string", "maxLength": 6,
               "pattern": "^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$"}]},
      "home": {"type": "string", "format": "uri", "maxLength": 24},
      "num": {"anyOf": [{"type": "integer", "maximum": 9}, {"type": "number"}, {"type": "null"}]},
      "pair": {"type": "array", "prefixItems": [{"type": "integer", "minimum": 0},
               {"type": "string", "maxLength": 3}], "items": false},
      "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
      "qty": {"type": ["integer", "null"], "multipleOf": 2.5, "minimum": -100},
      "price": {"type": "number", "multipleOf": 0.05, "exclusiveMinimum": 0, "maximum": 99.95},
      "box": {"type": "object", "properties": {"w": {"type": "integer", "multipleOf": 3},
              "h": {"type": "number", "multipleOf": 0.25}, "d": {}},
              "required": ["d"], "minProperties": 2, "maxProperties": 2,
              "additionalProperties": false},
      "set": {"type": "array", "items": {"enum": ["a", 1, 1.0, true, [2], {"c": null}]},
              "uniqueItems": true, "maxItems": 4},
      "bits": {"type": "array", "items": {"type": ["boolean", "null"]}, "uniqueItems": true},
      "names": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
      "pet": {"oneOf": [
        {"type": "object", "properties": {"kind": {"const": "cat"}, "n": {"type": "integer"}},
         "required": ["kind"], "additionalProperties": false},
        {"type": "object", "properties": {"kind": {"enum": ["dog", "wolf"]}, "n": {"type": "string"}},
         "required": ["kind", "n"]}]},
      "shape": {"anyOf": [
        {"type": "object", "properties": {"r": {"type": "number", "minimum": 1}}, "required": ["r"]},
        {"type": "object", "properties": {"r": {"type": "integer", "maximum": 5}},
         "additionalProperties": false},
        {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
        {"type": "string", "maxLength": 2}, {"type": "string", "format": "date"}]},
      "lbl": {"type": "object", "properties": {"k": {"type": "boolean"}}, "required": ["k"],
              "maxProperties": 2, "additionalProperties": {"type": "integer", "maximum": 99}},
      "any": {}
    },
    "required": ["name"],
    "additionalProperties": {"type": "number"}
  })");
  return doc;
}

const JsonSchema& schema() {
  static const JsonSchema s(schema_doc());
  return s;
}

// Forced or lazy, in Hermes' format or Llama's.
const ToolCallRules& tool_rules(bool forced, bool llama) {
  static const ToolCallRules* rules[2][2] = {};
  if (!rules[forced][llama]) {
    auto* r = new ToolCallRules;
    r->add("get_weather", std::make_shared<const JsonSchema>(schema_doc()));
    r->add("get", nullptr);
    r->forced = forced;
    if (llama) r->format = xtile::ToolCallFormat::kLlamaJson;
    rules[forced][llama] = r;
  }
  return *rules[forced][llama];
}

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

// feed(), accepts() and take() agree; some byte continues every prefix taken, or it may end
// (or is complete). Returns how much was taken, and the recognizer after it.
template <class Grammar>
size_t check_grammar(const Grammar& fresh, std::string_view input, Grammar* after) {
  Grammar p = fresh;
  size_t taken = 0;
  while (taken < input.size() && p.feed(static_cast<uint8_t>(input[taken]))) ++taken;
  const bool whole = taken == input.size();
  if (fresh.accepts(input) != whole) finding("accepts() disagrees with feed()", input);
  Grammar t = fresh;
  if (t.take(input) != whole) finding("take() disagrees with feed()", input);
  if (!p.complete() && !p.may_end()) {
    bool some = false;
    for (int b = 0; b < 256 && !some; ++b) {
      Grammar next = p;
      some = next.feed(static_cast<uint8_t>(b));
    }
    if (!some) finding("no byte continues the prefix taken", input.substr(0, taken));
  }
  *after = std::move(p);
  return taken;
}

void check_schema(std::string_view input) {
  JsonPrefix p(&schema());
  const size_t taken = check_grammar(JsonPrefix(&schema()), input, &p);
  if (input.find('\0') != std::string_view::npos) return;
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(input);  // (refuses a number beyond a double's range)
  } catch (const nlohmann::json::exception&) {
    if (taken == input.size() && p.complete()) finding("taken as an instance, not JSON", input);
    return;
  }
  const NumberRange range = number_range(v);
  if (range == NumberRange::kBoundary) return;  // either way (json_number_range.h)
  const bool instance = v.is_object() && range == NumberRange::kBelow &&
                        xtile::server::test::valid(v, schema_doc(), schema_doc());
  if (taken == input.size() && p.complete() && !instance)
    finding("taken as an instance, not one for the validator", input);
  if (instance && v.dump() == input && !(taken == input.size() && p.complete()))
    finding("an instance in the compact spelling, refused", input);
}

// JSON mode after a think block (ThinkFirst): the same agreements.
void check_think_first(std::string_view input) {
  const ThinkFirst<JsonPrefix> fresh(JsonPrefix(&schema()), /*starts_in_think=*/false);
  ThinkFirst<JsonPrefix> p = fresh;
  check_grammar(fresh, input, &p);
}

void check_tool_calls(std::string_view input) {
  for (bool forced : {false, true}) {
    for (bool llama : {false, true}) {
      const ToolCallPrefix fresh(tool_rules(forced, llama), /*may_think=*/forced && !llama);
      ToolCallPrefix p = fresh;
      check_grammar(fresh, input, &p);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_schema(input);
  check_think_first(input);
  check_tool_calls(input);
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
  // An object for nlohmann (which refuses a number beyond a double's range) whose numbers lie
  // below 1e308, the grammar's range.
  bool object = false;
  try {
    const nlohmann::json v = nlohmann::json::parse(input);
    const NumberRange range = number_range(v);
    if (range == NumberRange::kBoundary) return 0;  // either way (json_number_range.h)
    object = v.is_object() && range == NumberRange::kBelow;
  } catch (const nlohmann::json::exception&) {
  }
  if (whole && p.complete() && !object)
    finding("taken as a complete object, not an object for nlohmann", input);
  if (object && !(whole && p.complete()) && !(taken < size && is_whitespace(input[taken])) &&
      depth(input) <= JsonPrefix::kMaxDepth)
    finding("an object for nlohmann, refused", input);
  return 0;
}
