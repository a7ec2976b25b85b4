// A JSON Schema (response_format json_schema) compiled for JsonPrefix, which then keeps a reply
// an instance of it byte by byte. The subset is what structured-output schemas use (OpenAI's
// strict mode, Pydantic's and Zod's models): type (a name or a list), properties, required,
// additionalProperties (a boolean or a schema), minProperties / maxProperties, items, tuples
// (prefixItems, or draft 7's items array and additionalItems), minItems / maxItems, uniqueItems
// (elements of an enum or const, booleans, strings without pattern, format or maxLength, or
// integers without bounds or multipleOf), minLength /
// maxLength (in code points), minimum / maximum / exclusiveMinimum / exclusiveMaximum (on integers
// as int64s, on other numbers as decimals: json_number_bounds.h), multipleOf (json_fixed_point.h),
// enum and const (any values), $ref to "#",
// "#/$defs/..." or "#/definitions/...", anyOf (branches that begin alike, Union[Cat, Dog], are
// read side by side: json_prefix.h; a branch of bare types takes in those whose values are all
// of its types: Union[int, float]) and oneOf (branches that begin alike only where a required
// property's const or enum values tell them apart, a discriminator), an allOf of one schema
// (Pydantic's way to describe a $ref), the string formats date, time, date-time and uuid
// (json_format.h) and those kept as patterns (email, hostname, ipv4, ipv6, duration, uri,
// uri-reference), and `pattern` (json_pattern.h), maxLength beside it. Annotations (title,
// description, default, ...) are ignored. Any other keyword is refused, naming it and where it is,
// rather than dropped: a reply would look constrained by it and not be.
//
// Decisions where a grammar must pick one spelling: enum and const values are written as
// nlohmann::json writes them (compact; strings with their characters as they are), and so are
// property names; other strings and numbers are any valid spelling, except that a bounded
// number is written without an exponent.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/gbnf.h"
#include "server/json_fixed_point.h"
#include "server/json_format.h"
#include "server/json_number_bounds.h"

namespace xtile::server {

// JSON types as bits (a node's allowed types).
enum JsonType : uint8_t {
  kTypeNull = 1,
  kTypeBool = 2,
  kTypeInteger = 4,  // a number without fraction or exponent
  kTypeNumber = 8,   // any number (integers included)
  kTypeString = 16,
  kTypeArray = 32,
  kTypeObject = 64,
  kTypeAny = 127,
};

struct SchemaNode {
  uint8_t types = kTypeAny;
  // enum / const: each value's encoding, sorted; empty: no such restriction. value_class[i]:
  // which of the distinct values values[i] is (1 and 1.0 are one value), for uniqueItems; set
  // on nodes of at most 64 values.
  std::vector<std::string> values;
  std::vector<uint8_t> value_class;
  int value_classes = 0;
  // Objects: each property's name as encoded with its quotes ("\"name\""), sorted, its node, and
  // the required ones (bit i for names[i]); other names take `additional` (-1: none allowed).
  std::vector<std::string> names;
  std::vector<int> name_nodes;
  uint64_t required = 0;
  int additional = 0;
  // minProperties counts the named properties only (each is written once; an additional name
  // could repeat, which a parser reads as one property); maxProperties counts every one.
  uint32_t min_properties = 0, max_properties = UINT32_MAX;
  // Arrays: the nodes of the first elements (prefixItems, or a draft-07 items array), then the
  // node of every other element.
  std::vector<int> prefix_items;
  int items = 0;
  int item_node(uint64_t index) const {
    return index < prefix_items.size() ? prefix_items[static_cast<size_t>(index)] : items;
  }
  uint32_t min_items = 0, max_items = UINT32_MAX;    // arrays: element count
  // Arrays: uniqueItems, on elements of an enum or const node (their distinct values as bits),
  // or (unique_texts) of plain strings or integers, each element's text kept (json_prefix.h).
  bool unique_items = false;
  bool unique_texts = false;
  uint32_t min_length = 0, max_length = UINT32_MAX;  // strings: code points
  StringFormat format = StringFormat::kNone;         // strings: date, time, date-time, uuid
  std::shared_ptr<const GbnfGrammar> pattern;        // strings: `pattern` (json_pattern.h)
  // Numbers with multipleOf, and integers with bounds: the grid they keep to
  // (json_fixed_point.h), the bounds rounded inward onto it.
  std::optional<FixedPoint> grid;
  // Other bounded numbers (a node that admits more than integers, without multipleOf): the
  // bounds as decimals; any() false when none was given.
  NumberBounds number_bounds;
  std::vector<int> branches;  // anyOf / oneOf: the nodes a value may be an instance of
  bool one_of = false;        // oneOf's: where they begin alike, a discriminator tells them apart
};

class JsonSchema {
 public:
  static constexpr int kAny = 0;               // node 0: any value
  static constexpr int kMaxProperties = 64;    // per object (a 64-bit set of those seen)
  static constexpr size_t kMaxValues = 60000;  // per enum (16-bit candidate ranges)
  static constexpr size_t kMaxValueBytes = 60000;  // per enum value (a 16-bit position in it)
  static constexpr int kMaxUniqueValues = 64;      // uniqueItems: distinct element values (bits)

  // Throws xtile::Error naming the unsupported keyword and its place ("#/properties/a").
  explicit JsonSchema(const nlohmann::json& schema);

  int root() const { return root_; }
  const SchemaNode& node(int id) const { return nodes_[static_cast<size_t>(id)]; }
  // Branches of one anyOf / oneOf that a value's first byte may leave open, at most.
  static constexpr int kMaxAlike = 16;
  // The nodes a value starting with byte c may take under node id (the branches of anyOf /
  // oneOf whose values may start so, nested ones flattened, or id itself), in order, written to
  // out (room for kMaxAlike): their count, 0 when no value of node id starts so.
  int starts(int id, uint8_t c, int* out) const;

 private:
  int compile(const nlohmann::json& s, const std::string& at);
  int resolve_ref(const std::string& ref, const std::string& at);
  // uniqueItems on node id: its elements' node as one of values, with their classes.
  void check_unique_items(int id, const std::string& at);
  void drop_subsumed(std::vector<int>* branches) const;
  // Adds to (*alike)[c] the branches under id (nested ones flattened) a value may begin with c.
  void count_starts(int id, std::vector<int>* alike) const;
  bool discriminated(int a, int b) const;  // no value is an instance of both objects

  const nlohmann::json* doc_;
  std::vector<SchemaNode> nodes_;
  std::vector<std::pair<std::string, int>> refs_;           // compiled $ref targets, by pointer
  std::vector<std::pair<int, std::string>> branch_checks_;  // anyOf nodes, checked at the end
  std::vector<std::pair<int, std::string>> unique_checks_;  // uniqueItems nodes, likewise
  int root_ = 0;
};

// Whether a value starting with byte c can be of one of `types`.
bool type_starts_with(uint8_t types, uint8_t c);

}  // namespace xtile::server
