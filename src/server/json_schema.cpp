#include "server/json_schema.h"

#include <algorithm>
#include <bit>
#include <bitset>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "server/gbnf_prefix.h"
#include "server/json_pattern.h"

namespace xtile::server {

namespace {
using nlohmann::json;
namespace json_schema {  // unity batches: CMakeLists.txt

// Keywords that describe and constrain nothing.
bool is_annotation(const std::string& k) {
  static const char* const kNames[] = {"title",    "description", "default",  "examples",
                                       "$schema",  "$id",         "$comment", "deprecated",
                                       "readOnly", "writeOnly"};
  return std::find(std::begin(kNames), std::end(kNames), k) != std::end(kNames);
}

uint8_t type_bit(const json& name, const std::string& at) {
  if (name.is_string()) {
    const std::string n = name.get<std::string>();
    if (n == "null") return kTypeNull;
    if (n == "boolean") return kTypeBool;
    if (n == "integer") return kTypeInteger;
    if (n == "number") return kTypeNumber | kTypeInteger;
    if (n == "string") return kTypeString;
    if (n == "array") return kTypeArray;
    if (n == "object") return kTypeObject;
  }
  fail(at, ": 'type' ", name.dump(), " is not a JSON type name");
}

// The bytes a value of node `id` may start with.
std::bitset<256> first_bytes(const JsonSchema& schema, int id) {
  std::bitset<256> b;
  const SchemaNode& n = schema.node(id);
  if (!n.branches.empty()) {
    for (int br : n.branches) b |= first_bytes(schema, br);
    return b;
  }
  if (!n.values.empty()) {
    for (const std::string& v : n.values) b.set(static_cast<uint8_t>(v[0]));
    return b;
  }
  for (int c = 0; c < 256; ++c)
    b.set(static_cast<size_t>(c), type_starts_with(n.types, static_cast<uint8_t>(c)));
  return b;
}

// A count keyword's value (minItems, maxLength, ...): a non-negative integer.
uint32_t count_of(const json& v, const std::string& at) {
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() != std::floor(v.get<double>()))
    fail(at, ": must be a non-negative integer");
  return static_cast<uint32_t>(std::min(v.get<double>(), 4294967295.0));
}

}  // namespace json_schema
}  // namespace

bool type_starts_with(uint8_t types, uint8_t c) {
  switch (c) {
    case '{':
      return types & kTypeObject;
    case '[':
      return types & kTypeArray;
    case '"':
      return types & kTypeString;
    case 't':
    case 'f':
      return types & kTypeBool;
    case 'n':
      return types & kTypeNull;
    default:
      return (c == '-' || (c >= '0' && c <= '9')) && (types & (kTypeInteger | kTypeNumber));
  }
}

JsonSchema::JsonSchema(const json& schema) : doc_(&schema) {
  using namespace json_schema;  // this file's helpers
  nodes_.emplace_back();  // kAny
  if (!schema.is_object()) fail("#: the schema must be an object");
  root_ = resolve_ref("#", "#");
  doc_ = nullptr;  // only the compiled nodes are kept
  // Branches that a value's first byte does not tell apart are read side by side (json_prefix.h),
  // at most kMaxAlike per byte; oneOf's only where a discriminator keeps them apart. Checked
  // once every node is compiled: a branch may be a $ref still being compiled where it is met.
  for (const auto& [id, at] : branch_checks_) {
    if (!node(id).one_of) drop_subsumed(&nodes_[static_cast<size_t>(id)].branches);
    const std::vector<int>& branches = node(id).branches;
    std::vector<int> alike(256, 0);
    for (int b : branches) count_starts(b, &alike);
    if (*std::max_element(alike.begin(), alike.end()) > kMaxAlike)
      fail(at, ": more than ", kMaxAlike, " anyOf / oneOf branches begin alike");
    if (!node(id).one_of) continue;
    for (size_t i = 0; i < branches.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if ((first_bytes(*this, branches[i]) & first_bytes(*this, branches[j])).any() &&
            !discriminated(branches[i], branches[j]))
          fail(at, ": oneOf branches ", j, " and ", i,
               " may begin alike and no required property with const or enum values tells "
               "them apart (a discriminator); xtile keeps such oneOf branches only so (anyOf "
               "branches may overlap)");
  }
  branch_checks_.clear();
  for (const auto& [id, at] : unique_checks_) check_unique_items(id, at);
  unique_checks_.clear();
  const SchemaNode& r = node(root_);
  if (r.types != kTypeObject || !r.values.empty() || !r.branches.empty())
    fail("#: the schema's root must be {\"type\": \"object\", ...}: the reply is one JSON object");
}

namespace {
namespace json_schema {  // unity batches: CMakeLists.txt

// A schema of bare types: {"type": T} and nothing else ({} included).
bool bare(const SchemaNode& n) {
  const SchemaNode plain;
  return n.values.empty() && n.branches.empty() && n.names.empty() && n.required == 0 &&
         n.additional == plain.additional && n.min_properties == 0 &&
         n.max_properties == UINT32_MAX && n.prefix_items.empty() && n.items == plain.items &&
         n.min_items == 0 && n.max_items == UINT32_MAX && !n.unique_items && n.min_length == 0 &&
         n.max_length == UINT32_MAX && n.format == StringFormat::kNone && !n.pattern && !n.grid &&
         !n.number_bounds.any();
}

// Every value node n admits has one of the types (a number's integers are numbers too).
bool within_types(const SchemaNode& n, uint8_t types) {
  if (types & kTypeNumber) types |= kTypeInteger;
  if (!n.branches.empty()) return false;  // not looked into
  if (n.values.empty()) return (n.types & ~types) == 0;
  for (const std::string& v : n.values) {  // nlohmann's compact spelling: its first byte tells
    const uint8_t t = v[0] == '"'                                   ? kTypeString
                      : v[0] == 't' || v[0] == 'f'                  ? kTypeBool
                      : v[0] == 'n'                                 ? kTypeNull
                      : v[0] == '{'                                 ? kTypeObject
                      : v[0] == '['                                 ? kTypeArray
                      : v.find_first_of(".eE") == std::string::npos ? kTypeInteger
                                                                    : kTypeNumber;
    if (!(types & t)) return false;
  }
  return true;
}

}  // namespace json_schema
}  // namespace

// anyOf: a branch of bare types (Pydantic's Union[int, float], Union[date, str]) takes in every
// branch whose values are all of its types; those are dropped, and the union is the same set.
// Of two bare branches of the same types, the first stays.
void JsonSchema::drop_subsumed(std::vector<int>* branches) const {
  using namespace json_schema;  // this file's helpers
  std::vector<int> kept;
  const auto& b = *branches;
  for (size_t j = 0; j < b.size(); ++j) {
    bool dropped = false;
    for (size_t i = 0; i < b.size() && !dropped; ++i) {
      if (i == j || !bare(node(b[i])) || !within_types(node(b[j]), node(b[i]).types)) continue;
      const bool mutual = bare(node(b[j])) && within_types(node(b[i]), node(b[j]).types);
      dropped = !mutual || i < j;
    }
    if (!dropped) kept.push_back(b[j]);
  }
  *branches = std::move(kept);
}

int JsonSchema::starts(int id, uint8_t c, int* out) const {
  const SchemaNode& n = node(id);
  if (!n.branches.empty()) {
    int count = 0;
    for (int b : n.branches) count += starts(b, c, out + count);
    return count;
  }
  bool fits = false;
  if (!n.values.empty()) {
    for (const std::string& v : n.values) fits = fits || static_cast<uint8_t>(v[0]) == c;
  } else {
    fits = type_starts_with(n.types, c);
  }
  if (fits) *out = id;
  return fits ? 1 : 0;
}

void JsonSchema::count_starts(int id, std::vector<int>* alike) const {
  using namespace json_schema;  // this file's helpers
  const SchemaNode& n = node(id);
  if (!n.branches.empty()) {
    for (int b : n.branches) count_starts(b, alike);
    return;
  }
  const std::bitset<256> first = first_bytes(*this, id);
  for (size_t c = 0; c < 256; ++c) (*alike)[c] += first[c];
}

// A required property of both objects whose values (const or enum) have none in common: no
// value is an instance of both (Pydantic's discriminated unions: "kind": {"const": "cat"}).
bool JsonSchema::discriminated(int a, int b) const {
  const SchemaNode &x = node(a), &y = node(b);
  if (x.types != kTypeObject || y.types != kTypeObject || !x.values.empty() || !y.values.empty())
    return false;
  for (size_t i = 0; i < x.names.size(); ++i) {
    if (!(x.required >> i & 1)) continue;
    const auto at = std::lower_bound(y.names.begin(), y.names.end(), x.names[i]);
    if (at == y.names.end() || *at != x.names[i]) continue;
    const size_t j = static_cast<size_t>(at - y.names.begin());
    if (!(y.required >> j & 1)) continue;
    const std::vector<std::string>& u = node(x.name_nodes[i]).values;
    const std::vector<std::string>& v = node(y.name_nodes[j]).values;
    if (u.empty() || v.empty()) continue;
    bool common = false;  // both sorted, in the one spelling (json_schema.h)
    for (size_t p = 0, q = 0; p < u.size() && q < v.size() && !common;) {
      common = u[p] == v[q];
      if (u[p] < v[q])
        ++p;
      else
        ++q;
    }
    if (!common) return true;
  }
  return false;
}

// uniqueItems: the elements are one node's values (an enum or const; booleans and null become
// those values), at most kMaxUniqueValues distinct ones, each an element's bit in its array's
// set (json_prefix.h). Values equal as JSON (1 and 1.0) share a bit. Or plain strings (Pydantic's
// Set[str]: no pattern, format or maxLength) or integers (Set[int]: no bounds or multipleOf),
// each element's text kept: such an element can always go on to a value not yet written, so
// none is a dead end. Other numbers, strings and objects would need more: refused. Checked once
// every node is compiled: the elements' node may be a $ref compiled after the array.
void JsonSchema::check_unique_items(int id, const std::string& at) {
  using namespace json_schema;  // this file's helpers
  SchemaNode& array = nodes_[static_cast<size_t>(id)];
  if (!array.prefix_items.empty())
    fail(at, "/uniqueItems: beside prefixItems (a tuple) is not supported");
  const int items = array.items;
  SchemaNode& e = nodes_[static_cast<size_t>(items)];
  const bool plain_string = e.types == kTypeString && !e.pattern &&
                            e.format == StringFormat::kNone && e.max_length == UINT32_MAX;
  const bool plain_integer = e.types == kTypeInteger && !e.grid && !e.number_bounds.any();
  if (e.values.empty() && e.branches.empty() && (plain_string || plain_integer)) {
    array.unique_texts = true;
    return;
  }
  if (e.values.empty() && e.branches.empty() && e.types != 0 &&
      (e.types & ~(kTypeBool | kTypeNull)) == 0 && bare(e)) {
    // Booleans (and null): their values, in the spelling an enum of them has.
    SchemaNode finite = e;
    if (e.types & kTypeBool) finite.values = {"false", "true"};
    if (e.types & kTypeNull) finite.values.push_back("null");
    std::sort(finite.values.begin(), finite.values.end());
    nodes_.push_back(std::move(finite));
    nodes_[static_cast<size_t>(id)].items = static_cast<int>(nodes_.size()) - 1;
  }
  SchemaNode& elements = nodes_[static_cast<size_t>(nodes_[static_cast<size_t>(id)].items)];
  if (elements.values.empty())
    fail(at,
         "/uniqueItems: supported on arrays whose items are an enum or const, booleans (a set of "
         "known values), strings without pattern, format or maxLength, or integers without "
         "bounds or multipleOf; other elements would need more");
  std::vector<json> distinct;
  elements.value_class.clear();
  for (const std::string& v : elements.values) {
    const json parsed = json::parse(v);
    const auto same = std::find(distinct.begin(), distinct.end(), parsed);
    elements.value_class.push_back(static_cast<uint8_t>(same - distinct.begin()));
    if (same == distinct.end()) {
      if (distinct.size() == static_cast<size_t>(kMaxUniqueValues))
        fail(at, "/uniqueItems: the items have more than ", kMaxUniqueValues,
             " distinct values, more than xtile keeps apart");
      distinct.push_back(parsed);
    }
  }
  elements.value_classes = static_cast<int>(distinct.size());
  SchemaNode& a = nodes_[static_cast<size_t>(id)];
  if (a.min_items > static_cast<uint32_t>(elements.value_classes))
    fail(at, ": the bounds admit no value (minItems ", a.min_items, " beyond the ",
         elements.value_classes, " distinct values of unique items)");
}

int JsonSchema::resolve_ref(const std::string& ref, const std::string& at) {
  for (const auto& [r, id] : refs_)
    if (r == ref) return id;
  const bool local =
      ref == "#" || ref.rfind("#/$defs/", 0) == 0 || ref.rfind("#/definitions/", 0) == 0;
  if (!local)
    fail(at, ": $ref '", ref,
         "' is not supported (only \"#\", \"#/$defs/...\" and \"#/definitions/...\")");
  const json* target = nullptr;
  try {
    target = &doc_->at(json::json_pointer(ref.substr(1)));
  } catch (const json::exception&) {
    fail(at, ": $ref '", ref, "' points at nothing in the schema");
  }
  // The node is reserved before its schema is compiled, so that a recursive reference (a tree of
  // nodes) finds it.
  const int id = static_cast<int>(nodes_.size());
  nodes_.emplace_back();
  refs_.emplace_back(ref, id);
  const int compiled = compile(*target, ref);
  nodes_[static_cast<size_t>(id)] = nodes_[static_cast<size_t>(compiled)];
  // The copy is checked (and amended) at the end as the node it copies is.
  if (!node(id).branches.empty()) branch_checks_.emplace_back(id, ref);
  if (node(id).unique_items) unique_checks_.emplace_back(id, ref);
  return id;
}

int JsonSchema::compile(const json& s, const std::string& at) {
  using namespace json_schema;  // this file's helpers
  if (s.is_boolean()) {
    if (s.get<bool>()) return kAny;
    fail(at, ": the schema false admits no value");
  }
  if (!s.is_object()) fail(at, ": a schema must be an object or a boolean");
  if (const auto ref = s.find("$ref"); ref != s.end()) {
    if (!ref->is_string()) fail(at, ": $ref must be a string");
    for (const auto& [k, v] : s.items())
      if (k != "$ref" && k != "$defs" && k != "definitions" && !is_annotation(k))
        fail(at, ": '", k, "' beside $ref is not supported");
    return resolve_ref(ref->get<std::string>(), at + "/$ref");
  }
  if (const auto all = s.find("allOf"); all != s.end()) {  // {"allOf": [X], "description": ...}
    if (!all->is_array() || all->size() != 1)
      fail(at, "/allOf: only an allOf of one schema is supported");
    for (const auto& [k, v] : s.items())
      if (k != "allOf" && k != "$defs" && k != "definitions" && !is_annotation(k))
        fail(at, ": '", k, "' beside allOf is not supported");
    return compile((*all)[0], at + "/allOf/0");
  }
  SchemaNode n;
  bool object_keywords = false, numeric_bounds = false, scalar_bounds = false;
  bool pattern_given = false, format_pattern_too = false;  // `pattern`; a format kept as one
  bool hostname = false;  // RFC 1123's total of 253 characters, kept as a maxLength
  bool prefix_items = false, items_array = false;  // a tuple: prefixItems, or draft 7's items
  const json *items_rest = nullptr, *additional_rest = nullptr;  // items / additionalItems
  struct Bound {  // minimum, maximum, exclusiveMinimum, exclusiveMaximum
    const json* value;
    bool lower, exclusive;
    std::string at;
  };
  std::vector<Bound> bounds;
  const json* multiple = nullptr;  // multipleOf
  std::string multiple_at;
  for (const auto& [k, v] : s.items()) {
    const std::string here = at + "/" + k;
    if (is_annotation(k) || k == "$defs" || k == "definitions") continue;
    if (k == "type") {
      n.types = 0;
      if (v.is_array()) {
        if (v.empty()) fail(here, ": an empty list of types admits no value");
        for (const json& t : v) n.types |= type_bit(t, here);
      } else {
        n.types = type_bit(v, here);
      }
    } else if (k == "enum" || k == "const") {
      const json values = k == "const" ? json::array({v}) : v;
      if (!values.is_array() || values.empty()) fail(here, ": must be a non-empty array");
      // Objects and arrays too, in the same compact spelling (keys sorted, no blanks): no
      // complete value's spelling begins another's but a number's, so the reader ends them alike.
      for (const json& e : values) {
        n.values.push_back(e.dump());
        if (n.values.back().size() > kMaxValueBytes)
          fail(here, ": a value of more than ", kMaxValueBytes, " bytes");
      }
      if (n.values.size() > kMaxValues) fail(here, ": more than ", kMaxValues, " values");
    } else if (k == "properties") {
      if (!v.is_object()) fail(here, ": must be an object");
      if (v.size() > kMaxProperties) fail(here, ": more than ", kMaxProperties, " properties");
      object_keywords = true;
      for (const auto& [name, sub] : v.items()) {
        n.names.push_back(json(name).dump());
        n.name_nodes.push_back(compile(sub, here + "/" + name));
      }
    } else if (k == "required") {
      object_keywords = true;  // checked once properties are known
      if (!v.is_array()) fail(here, ": must be an array of names");
    } else if (k == "additionalProperties") {
      object_keywords = true;
      n.additional = v.is_boolean() && !v.get<bool>() ? -1 : compile(v, here);
    } else if (k == "items" || k == "prefixItems" || k == "additionalItems") {
      // Tuples: prefixItems then items (2020-12, Pydantic's Tuple[...]), or an items array then
      // additionalItems (draft 7, zod-to-json-schema's); `false` for the rest: no more elements.
      const bool list = k == "prefixItems" || (k == "items" && v.is_array());
      if (list) {
        if (!v.is_array()) fail(here, ": must be an array of schemas");
        if (prefix_items || items_array)
          fail(here, ": prefixItems and an items array together are not supported");
        (k == "items" ? items_array : prefix_items) = true;
        for (size_t i = 0; i < v.size(); ++i)
          n.prefix_items.push_back(compile(v[i], here + "/" + std::to_string(i)));
      } else {
        if (!v.is_object() && !v.is_boolean()) fail(here, ": must be a schema");
        (k == "items" ? items_rest : additional_rest) = &v;
      }
    } else if (k == "minProperties") {
      n.min_properties = count_of(v, here);
      object_keywords = true;
    } else if (k == "maxProperties") {
      n.max_properties = count_of(v, here);
      object_keywords = true;
    } else if (k == "uniqueItems") {
      if (!v.is_boolean()) fail(here, ": must be a boolean");
      n.unique_items = v.get<bool>();
    } else if (k == "minItems") {
      n.min_items = count_of(v, here);
    } else if (k == "maxItems") {
      n.max_items = count_of(v, here);
    } else if (k == "minLength") {
      n.min_length = count_of(v, here);
      scalar_bounds = true;
    } else if (k == "maxLength") {
      n.max_length = count_of(v, here);
      scalar_bounds = true;
    } else if (k == "format") {
      const char* as_pattern = v.is_string() ? format_pattern(v.get<std::string>()) : nullptr;
      if (as_pattern) {
        n.pattern = compile_pattern(as_pattern);
        format_pattern_too = true;
        hostname = v == "hostname";
      } else if (!v.is_string() ||
                 (n.format = string_format(v.get<std::string>())) == StringFormat::kNone) {
        fail(here, ": format ", v.dump(),
             " is not supported; xtile keeps date, time, date-time, uuid, duration, email, "
             "hostname, ipv4, ipv6, uri and uri-reference");
      }
      scalar_bounds = true;
    } else if (k == "pattern") {
      if (!v.is_string()) fail(here, ": must be a string (a regular expression)");
      pattern_given = true;
      try {
        n.pattern = compile_pattern(v.get<std::string>());
      } catch (const Error& e) {
        fail(here, ": ", e.what());
      }
      scalar_bounds = true;
    } else if (k == "minimum" || k == "exclusiveMinimum" || k == "maximum" ||
               k == "exclusiveMaximum") {
      const bool lower = k.find("inimum") != std::string::npos;
      bounds.push_back(Bound{&v, lower, k[0] == 'e', here});
      n.number_bounds.add(v, lower, k[0] == 'e', here);
      numeric_bounds = scalar_bounds = true;
    } else if (k == "multipleOf") {
      multiple = &v;
      multiple_at = here;
      scalar_bounds = true;
    } else if (k == "anyOf" || k == "oneOf") {
      if (!v.is_array() || v.empty()) fail(here, ": must be a non-empty array of schemas");
      n.one_of = k == "oneOf";
      for (size_t i = 0; i < v.size(); ++i)
        n.branches.push_back(compile(v[i], here + "/" + std::to_string(i)));
    } else {
      fail(here, ": keyword '", k,
           "' is not supported; xtile enforces type, properties, required, additionalProperties, "
           "minProperties, maxProperties, items, prefixItems, additionalItems, minItems, maxItems, "
           "uniqueItems, "
           "minLength, maxLength, multipleOf, "
           "minimum, maximum, exclusiveMinimum, exclusiveMaximum, format (date, time, "
           "date-time, uuid, duration, email, hostname, ipv4, ipv6, uri, uri-reference), "
           "pattern, enum, const, $ref, anyOf, oneOf and an allOf of one schema");
    }
  }
  // The schema for the elements past the tuple's: `items` (in 2020-12, or without a tuple);
  // after a draft-7 items array, `additionalItems`. `false`: none may follow.
  if (additional_rest && !items_array)
    fail(at, "/additionalItems: only beside an items array (draft 7's tuples) is it supported");
  if (const json* rest = items_array ? additional_rest : items_rest) {
    if (rest->is_boolean() && !rest->get<bool>())
      n.max_items = std::min<uint32_t>(n.max_items, static_cast<uint32_t>(n.prefix_items.size()));
    else
      n.items = compile(*rest, at + (rest == items_rest ? "/items" : "/additionalItems"));
  }
  // Sort the property names with their nodes, then mark the required ones.
  std::vector<size_t> order(n.names.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return n.names[a] < n.names[b]; });
  std::vector<std::string> names;
  std::vector<int> nodes;
  for (size_t i : order) {
    names.push_back(n.names[i]);
    nodes.push_back(n.name_nodes[i]);
  }
  n.names = std::move(names);
  n.name_nodes = std::move(nodes);
  if (const auto req = s.find("required"); req != s.end()) {
    for (const json& r : *req) {
      if (!r.is_string()) fail(at, "/required: names must be strings");
      const std::string enc = r.dump();
      const auto it = std::lower_bound(n.names.begin(), n.names.end(), enc);
      if (it == n.names.end() || *it != enc)
        fail(at, "/required: '", r.get<std::string>(), "' is not one of the properties");
      n.required |= uint64_t{1} << (it - n.names.begin());
    }
  }
  // minProperties counts the named properties (json_schema.h): more than the names would need
  // additional ones, whose names the grammar does not keep apart.
  if (n.min_properties > n.names.size())
    fail(at, ": minProperties ", n.min_properties, " beyond the ", n.names.size(),
         " properties named is not supported (xtile counts the named properties toward it: an "
         "additional property's name could repeat)");
  if (static_cast<uint32_t>(std::popcount(n.required)) > n.max_properties ||
      n.min_properties > n.max_properties)
    fail(at, ": the bounds admit no value (maxProperties ", n.max_properties, " below ",
         n.min_properties > n.max_properties ? "minProperties" : "the required properties", ")");
  std::sort(n.values.begin(), n.values.end());
  n.values.erase(std::unique(n.values.begin(), n.values.end()), n.values.end());
  if (!n.branches.empty() && (n.types != kTypeAny || !n.values.empty() || object_keywords))
    fail(at, ": anyOf / oneOf beside other keywords is not supported");
  if (object_keywords && !(n.types & kTypeObject))
    fail(at, ": object keywords on a schema whose type is not object");
  // multipleOf, and bounds on a node of integers only, make a grid (json_fixed_point.h); a node
  // that admits other numbers keeps bounds alone as decimals (json_number_bounds.h).
  const bool integers_only = !(n.types & kTypeNumber);
  if (multiple || (numeric_bounds && integers_only)) {
    n.grid =
        multiple ? FixedPoint::multiples_of(*multiple, !integers_only, multiple_at) : FixedPoint{};
    for (const Bound& b : bounds) n.grid->bound(*b.value, b.lower, b.exclusive, b.at);
    if (n.grid->empty())
      fail(at, ": the bounds admit no value (",
           multiple ? "no multiple of multipleOf lies within them" : "a minimum above its maximum",
           ")");
    n.number_bounds = {};
  } else if (numeric_bounds) {
    if (n.number_bounds.empty())
      fail(at,
           ": the bounds admit no value (a minimum above its maximum, or at 1e308 or beyond: "
           "the largest magnitude xtile writes)");
  } else {
    n.number_bounds = {};
  }
  if (scalar_bounds && !n.values.empty())
    fail(at,
         ": minLength, maxLength, minimum, maximum, multipleOf and format beside enum / const are "
         "not supported");
  if (n.format != StringFormat::kNone && (n.min_length > 0 || n.max_length != UINT32_MAX))
    fail(at, ": minLength / maxLength beside format are not supported (a format fixes the length)");
  if (hostname) n.max_length = std::min<uint32_t>(n.max_length, 253);
  // Beside a pattern (or a format kept as one), maxLength leaves room for the fewest characters
  // that complete a match (json_prefix.h), so no string meets a dead end. A minLength above the
  // pattern's shortest match would need the lengths its matches can take, not only the least:
  // that one is written into the pattern instead.
  if (n.pattern) {
    const uint32_t shortest = GbnfPrefix(n.pattern.get()).shortest_completion();
    if (n.max_length < shortest)
      fail(at, ": the bounds admit no value (maxLength ", n.max_length,
           " is below the pattern's shortest match, ", shortest, " characters)");
    if (n.min_length > shortest)
      fail(at, ": minLength ", n.min_length, " beside a pattern whose shortest match is ", shortest,
           " characters is not supported; write the length into the pattern "
           "(^[a-z]{3,20}$)");
  }
  if (pattern_given && (n.format != StringFormat::kNone || format_pattern_too))
    fail(at, ": pattern beside format is not supported");
  if (n.min_items > n.max_items || n.min_length > n.max_length)
    fail(at, ": the bounds admit no value (a minimum above its maximum)");
  const int id = static_cast<int>(nodes_.size());
  if (!n.branches.empty()) branch_checks_.emplace_back(id, at);
  if (n.unique_items) unique_checks_.emplace_back(id, at);
  nodes_.push_back(std::move(n));
  return id;
}

}  // namespace xtile::server
