// response_format json_schema: the schema compiler (what it takes, what it refuses and where)
// and JsonPrefix keeping a reply an instance of a schema. The grammar is checked byte by byte on
// hand-written cases, and against an independent check written here (a validator walking the
// parsed document, with nlohmann::json parsing it): random instances of a schema are taken
// whole, and of their one-byte mutations exactly those that parse to an instance are.
#include "server/json_schema.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "json_feed.h"
#include "json_number_range.h"
#include "json_schema_oracle.h"
#include "mask_check.h"
#include "server/gbnf_prefix.h"
#include "server/json_pattern.h"
#include "server/json_prefix.h"
#include "server/reply_constraint.h"

namespace xtile::server {
namespace {
namespace json_schema_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

// A person: every supported keyword, a recursive $ref, Optional (anyOf with null) and bounds.
const json kPerson = json::parse(R"({
  "title": "Person",
  "type": "object",
  "properties": {
    "name": {"type": "string", "description": "any string"},
    "age": {"type": "integer", "minimum": -10, "maximum": 150},
    "nick": {"type": "string", "minLength": 2, "maxLength": 5},
    "code": {"allOf": [{"type": "integer", "exclusiveMinimum": 99, "exclusiveMaximum": 1000}],
             "description": "three digits"},
    "debt": {"type": ["integer", "null"], "maximum": -20},
    "pair": {"type": "array", "items": {"type": "integer", "minimum": -5, "maximum": 5.5},
             "minItems": 2, "maxItems": 2},
    "height": {"type": "number"},
    "ratio": {"type": "number", "exclusiveMinimum": -0.5, "maximum": 99.95},
    "color": {"enum": ["red", "green", "blue \"dark\""]},
    "level": {"enum": [1, 12, -3, 2.5, true, null]},
    "kind": {"const": "human"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    "spot": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}],
             "minItems": 2, "maxItems": 2, "description": "Pydantic's Tuple[float, str]"},
    "path": {"type": "array", "items": [{"type": "integer"}, {"enum": ["x", "y"]}],
             "additionalItems": {"type": "boolean"}, "description": "draft 7's tuple"},
    "born": {"type": "string", "format": "date"},
    "seen": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    "id": {"type": "string", "format": "uuid"},
    "plate": {"type": "string", "pattern": "^[A-Z]{2}-\\d{4}$"},
    "mail": {"type": ["string", "null"], "pattern": "^\\S+@\\S+\\.\\S+$", "maxLength": 40},
    "amount": {"anyOf": [{"type": "number"},
               {"type": "string", "pattern": "^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$"}],
               "description": "Pydantic's Decimal"},
    "alarm": {"type": "string", "format": "time"},
    "home": {"type": "string", "format": "uri", "minLength": 1, "maxLength": 2083},
    "scores": {"type": ["array", "null"], "items": {"type": ["integer", "boolean"]}},
    "parent": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
    "pet": {"$ref": "#/$defs/Pet"},
    "extra": {"type": "object"}
  },
  "required": ["name", "age"],
  "additionalProperties": false,
  "$defs": {
    "Pet": {
      "type": "object",
      "properties": {"species": {"enum": ["cat", "dog"]}},
      "required": ["species"],
      "additionalProperties": {"type": "number"}
    }
  }
})");

// An order: multipleOf on integers and decimals, minProperties and maxProperties, nested,
// uniqueItems (of an enum where 1 and 1.0 are one value, of booleans through a $ref, of strings,
// arrays of them each unique apart), and
// unions whose branches begin alike (a discriminated oneOf of objects, an anyOf of objects and
// strings).
const json kOrder = json::parse(R"({
  "type": "object",
  "properties": {
    "qty": {"type": "integer", "multipleOf": 6, "minimum": -40, "maximum": 100},
    "price": {"type": "number", "multipleOf": 0.01, "exclusiveMinimum": 0, "maximum": 999.99},
    "weight": {"type": "number", "multipleOf": 0.25},
    "step": {"type": ["integer", "null"], "multipleOf": 2.5},
    "tens": {"type": "number", "multipleOf": 10, "maximum": 150},
    "note": {"type": "string"},
    "address": {
      "type": "object",
      "properties": {"street": {"type": "string"}, "city": {"type": "string"},
                     "zip": {"type": "integer", "multipleOf": 1, "minimum": 0}},
      "minProperties": 2,
      "additionalProperties": false
    },
    "labels": {
      "type": "object",
      "properties": {"a": {"type": "boolean"}, "b": {"type": "boolean"}},
      "required": ["a"],
      "maxProperties": 2,
      "additionalProperties": {"type": "integer", "maximum": 1000000}
    },
    "sizes": {"type": "array", "items": {"enum": ["S", "M", "L", 1, 1.0, 2.5, [1], {"a": 1}]},
              "uniqueItems": true, "minItems": 1, "maxItems": 5},
    "flags": {"$ref": "#/$defs/Flags"},
    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true,
             "description": "Pydantic's Set[str]"},
    "groups": {"type": "array", "maxItems": 3,
               "items": {"type": "array", "items": {"type": "string", "minLength": 1},
                         "uniqueItems": true}},
    "pet": {"oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]},
    "shape": {"anyOf": [
      {"type": "object", "properties": {"r": {"type": "number"}}, "required": ["r"],
       "additionalProperties": false},
      {"type": "object", "properties": {"w": {"type": "number"}, "h": {"type": "number"}},
       "required": ["w"]},
      {"type": "string", "maxLength": 2},
      {"type": "string", "format": "date"}]}
  },
  "required": ["qty"],
  "minProperties": 2,
  "maxProperties": 4,
  "additionalProperties": false,
  "$defs": {
    "Flags": {"type": "array", "items": {"type": "boolean"}, "uniqueItems": true},
    "Cat": {"type": "object", "properties": {"kind": {"const": "cat"},
            "lives": {"type": "integer", "minimum": 1, "maximum": 9}},
            "required": ["kind"], "additionalProperties": false},
    "Dog": {"type": "object", "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}},
            "required": ["kind", "good"], "additionalProperties": false}
  }
})");

using test::Fed;
using test::instance;
using test::number_range;
using test::NumberRange;
using test::valid;
// How much of d the grammar takes with the schema.
Fed feed_all(const JsonSchema& schema, std::string_view d) {
  return test::feed_all(d, &schema);
}

TEST(JsonSchema, CompilesTheSubsetAndNamesWhatItRefuses) {
  EXPECT_NO_THROW(JsonSchema{kPerson});
  EXPECT_NO_THROW(JsonSchema(json::parse(R"({"type": "object"})")));
  const std::pair<const char*, const char*> refused[] = {
      {R"({"type": "array"})", "root"},
      {R"({"type": "object", "properties": {"a": {"type": "string", "pattern": "(a)\\1"}}})",
       "#/properties/a/pattern"},
      {R"({"type": "object", "properties": {"a": {"type": "string", "format": "iri"}}})",
       "#/properties/a/format"},
      {R"({"type": "object", "properties": {"a": {"type": "number", "minimum": 0.5,
                                                  "exclusiveMaximum": 0.5}}})",
       "admit no value"},
      {R"({"type": "object", "properties": {"a": {"minimum": "0"}}})", "#/properties/a/minimum"},
      {R"({"type": "object", "properties": {"a": {"type": "number", "multipleOf": 0}}})",
       "#/properties/a/multipleOf: must be greater than 0"},
      {R"({"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 7,
                                                  "minimum": 1, "maximum": 6}}})",
       "no multiple of multipleOf"},
      {R"({"type": "object", "properties": {"a": {"enum": [5], "multipleOf": 5}}})", "beside enum"},
      {R"({"type": "object", "properties": {"a": {}, "b": {}}, "minProperties": 3})",
       "minProperties 3 beyond the 2 properties named"},
      {R"({"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"],
           "maxProperties": 1})",
       "admit no value (maxProperties 1 below the required properties)"},
      {R"({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}},
                                                  "minProperties": 1, "maxProperties": 0}}})",
       "maxProperties 0 below minProperties"},
      {R"({"type": "object", "properties": {"a": {"enum": ["x"], "maxLength": 3}}})",
       "beside enum"},
      {R"({"type": "object", "properties": {"a": {"type": "array", "minItems": 3, "maxItems": 2}}})",
       "admit no value"},
      {R"({"type": "object", "properties": {"a": {"type": "string", "minLength": -1}}})",
       "#/properties/a/minLength"},
      {R"({"type": "object", "properties": {"a": {"allOf": [{"type": "string"}, {}]}}})",
       "allOf of one schema"},
      {R"({"type": "object", "properties": {"a": {"allOf": [{}], "type": "string"}}})",
       "beside allOf"},
      {R"({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": true}}})",
       "uniqueItems"},
      {R"({"type": "object", "properties": {"a": {"type": "string", "format": "idn-email"}}})",
       "format \"idn-email\""},
      {R"({"type": "object", "properties": {"a": {"format": "date", "maxLength": 3}}})",
       "beside format"},
      {R"({"type": "object", "properties": {"a": {"type": "strin"}}})", "#/properties/a/type"},
      {R"({"type": "object", "required": ["b"], "properties": {"a": {}}})", "'b'"},
      {R"({"type": "object", "properties": {"a": {"$ref": "#/$defs/none"}}})", "points at nothing"},
      {R"({"type": "object", "properties": {"a": {"$ref": "http://x/y"}}})", "not supported"},
      {R"({"type": "object", "properties": {"a": {"oneOf": [{"type": "string", "maxLength": 3},
                                                          {"enum": ["x"]}]}}})",
       "oneOf branches 0 and 1 may begin alike"},
      {R"({"type": "object", "properties": {"a": {"enum": []}}})", "#/properties/a/enum"},
      {R"({"type": "object", "properties": {"a": false}})", "#/properties/a"},
      {R"({"type": "object", "properties": {"a": {"prefixItems": [{}], "items": [{}]}}})",
       "prefixItems and an items array together"},
      {R"({"type": "object", "properties": {"a": {"prefixItems": [{}], "additionalItems": false}}})",
       "additionalItems"},
      {R"({"type": "object", "properties": {"a": {"prefixItems": [{}, {}], "items": false,
                                                  "minItems": 3}}})",
       "admit no value"},
  };
  for (const auto& [schema, where] : refused) {
    SCOPED_TRACE(schema);
    try {
      JsonSchema compiled{json::parse(schema)};
      ADD_FAILURE() << "compiled";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
  }
}

TEST(JsonSchemaPrefix, TakesInstancesAndRefusesAtTheFirstByteThatCannotBeOne) {
  const JsonSchema schema(kPerson);
  const char* instances[] = {
      R"({"name": "a", "age": 3})",
      R"({"age": -7, "name": "", "color": "blue \"dark\"", "level": 12, "kind": "human"})",
      R"({"name": "x", "age": 0, "level": null, "tags": [], "scores": [1, true, -2]})",
      R"({"name": "x", "age": 1, "scores": null, "height": -1.5e3, "extra": {"any": [1, {}]}})",
      R"({"name": "c", "age": 1, "parent": {"name": "p", "age": 40, "parent": null}})",
      R"({"name": "d", "age": 2, "pet": {"species": "dog", "weight": 4.5, "legs": 4}})",
      R"({"name": "e", "age": 3, "born": "2024-02-29", "seen": "2026-12-06T04:05:06.123+01:00",
          "id": "123E4567-e89b-12d3-a456-426614174000", "alarm": "23:59:59Z"})",
      R"({"name": "f", "age": 4, "seen": null, "born": "2000-02-29"})",
      R"({"name": "g", "age": 5, "ratio": 99.95})",
      R"({"name": "i", "age": 7, "ratio": 0})",
      R"({"name": "j", "age": 8, "spot": [-2.5, "east"], "path": [3, "y", false, true]})",
      R"({"name": "k", "age": 9, "path": [], "spot": [0, ""]})",
  };
  for (const char* d : instances) {
    SCOPED_TRACE(d);
    ASSERT_TRUE(valid(json::parse(d), kPerson, kPerson));
    const Fed f = feed_all(schema, d);
    EXPECT_EQ(f.taken, std::strlen(d));
    EXPECT_TRUE(f.complete);
  }
  // Bounds compare as decimals: this number is above -0.5, though the double nearest it is -0.5
  // (the validator above, comparing doubles, would call it out of bounds).
  const char* close_to_bound = R"({"name": "h", "age": 6, "ratio": -0.4999999999999999999999})";
  EXPECT_EQ(feed_all(schema, close_to_bound).taken, std::strlen(close_to_bound));
  EXPECT_TRUE(feed_all(schema, close_to_bound).complete);
  struct Case {
    const char* text;
    size_t refused_at;
  };
  const Case cases[] = {
      {R"({"nme")", 3},                // no property starts "nm"
      {R"({"x": 1})", 2},              // additionalProperties false
      {R"({"name": "a", "nam")", 16},  // a property twice ("n" may still be "nick")
      {R"({"name": "a"})", 12},        // age is required
      {R"({"age": 3.5})", 9},          // an integer
      {R"({"age": 3e2})", 9},
      {R"({"age": "3"})", 8},        // a string where an integer goes
      {R"({"color": "reed"})", 13},  // not one of the values
      {R"({"color": "re"})", 13},
      {R"({"spot": [1.5, 2])", 15},             // the second element is a string
      {R"({"spot": [1.5, "a", )", 18},          // maxItems 2
      {R"({"spot": [1.5])", 13},                // minItems 2
      {R"({"path": [1, "x", true, "y"])", 24},  // after the tuple's two, booleans
      {R"({"path": ["x"])", 10},                // an integer first
      {R"({"ratio": 99.951})", 15},             // above maximum 99.95
      {R"({"ratio": 100})", 12},                // 10 may end, 100 may not, nor grow to fit
      {R"({"ratio": -0.5})", 13},               // exclusiveMinimum -0.5
      {R"({"ratio": 1e-3})", 11},               // a bounded number is written without an exponent
      {R"({"level": 1.0})", 11},                // 1 is written as 1
      {R"({"level": 123})", 12},
      {R"({"level": -3.5})", 12},
      {R"({"level": false})", 10},
      {R"({"kind": "humans"})", 15},
      {R"({"tags": [1]})", 10},
      {R"({"scores": [1.5]})", 13},
      {R"({"scores": {}})", 11},
      {R"({"parent": 5})", 11},
      {R"({"parent": {"name": "p", "age": 1, "x")", 36},
      {R"({"pet": {"species": "cow"})", 22},
      {R"({"pet": {"weight": 1})", 20},                       // species is required
      {R"({"pet": {"species": "cat", "legs": "four"})", 35},  // other names are numbers
      {R"({"nick": "a"})", 11},                               // shorter than minLength: the close
      {R"({"nick": "abcdef")", 15},                           // longer than maxLength
      {R"({"nick": "\u00e9\ud83d\ude00abcd)", 31},            // the 6th code point (a pair is one)
      {R"({"age": 151)", 10},                // above maximum: no digit can follow 15
      {R"({"age": -11)", 10},                // below minimum
      {R"({"code": 99})", 11},               // 99 may become 990..999, but not end
      {R"({"code": 0)", 9},                  // 0 cannot grow
      {R"({"debt": 5)", 9},                  // maximum -20: no positive
      {R"({"debt": -3})", 11},               // -3 may become -30..-39, but not end
      {R"({"pair": [1])", 11},               // minItems 2
      {R"({"pair": [1, 2, )", 14},           // maxItems 2
      {R"({"pair": [6)", 10},                // maximum 5.5: 5
      {R"({"tags": ["a", "b", "c", )", 23},  // maxItems 3
      {R"({"born": "2023-02-29")", 19},      // not a leap year: no 29th of February
      {R"({"born": "2024-13")", 16},         // no 13th month
      {R"({"born": "2024-1-")", 16},
      {R"({"born": "2024-04-31")", 19},  // April has 30 days
      {R"({"born": "2024-04-3")", 19},   // a date needs its day's second digit
      {R"({"seen": "2024-04-30 )", 20},  // date-time: "T", not a space
      {R"({"seen": "2024-04-30T24)", 22},
      {R"({"seen": "2024-04-30T23:59:60)", 27},    // no leap second
      {R"({"seen": "2024-04-30T23:59:59.")", 30},  // a fraction needs a digit
      {R"({"seen": "2024-04-30T23:59:59")", 29},   // the offset
      {R"({"alarm": "07:00:00+1)", 21},
      {R"({"id": "123e4567-e89b-12d3-a456-42661417400g)", 43},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(feed_all(schema, c.text).taken, c.refused_at);
  }
  // Once every property is written and no other is allowed, a comma has nothing to precede.
  const JsonSchema closed(json::parse(R"({"type": "object", "properties": {"a": {"type": "null"}},
                                          "required": ["a"], "additionalProperties": false})"));
  EXPECT_EQ(feed_all(closed, R"({"a": null,)").taken, 10u);
  EXPECT_TRUE(feed_all(closed, R"({"a": null})").complete);
}

// Text refused at a byte: the bytes taken before it.
struct RefusedAt {
  const char* text;
  size_t taken;
};

// Each of `instances` is an instance for the validator and taken whole and complete; each case
// is refused at its byte.
void expect_taken_and_refused(const json& doc, std::initializer_list<const char*> instances,
                              std::initializer_list<RefusedAt> cases) {
  const JsonSchema schema(doc);
  for (const char* ok : instances) {
    SCOPED_TRACE(ok);
    ASSERT_TRUE(valid(json::parse(ok), doc, doc));
    const Fed f = feed_all(schema, ok);
    EXPECT_EQ(f.taken, std::strlen(ok));
    EXPECT_TRUE(f.complete);
  }
  for (const RefusedAt& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(feed_all(schema, c.text).taken, c.taken);
  }
}

// multipleOf on integers and decimals; minProperties (named properties) and maxProperties (all),
// with room kept for the required ones.
TEST(JsonSchemaPrefix, KeepsStepsAndPropertyCounts) {
  expect_taken_and_refused(
      kOrder,
      {R"({"qty": 12, "price": 0.01})", R"({"price": 999.990, "qty": 0, "step": null, "note": ""})",
       R"({"qty": 96, "step": -15, "tens": 150.0, "weight": 0})",
       R"({"qty": 6, "address": {"zip": 0, "city": "x"}})",
       R"({"qty": 6, "labels": {"a": true, "n": 5}})",
       R"({"qty": 6, "labels": {"b": false, "a": true}})"},
      {
          {R"({"qty": 10})", 9},   // 10 is no multiple of 6, and 100..109 are past the maximum
          {R"({"qty": -4)", 9},    // nor -4, and -40..-49 pass the minimum but for -40
          {R"({"qty": 6.0})", 9},  // an integer: no point
          {R"({"qty": 6, "price": 0})", 21},     // exclusiveMinimum 0
          {R"({"qty": 6, "price": 0.011)", 24},  // past the cents, only zeros
          {R"({"qty": 6, "price": 1000)", 23},   // maximum 999.99
          {R"({"qty": 6, "weight": 0.3)", 23},   // 0.25's multiples: .0, .25, .5, .75
          {R"({"qty": 6, "step": 2.5})", 20},    // an integer multiple of 2.5 is one of 5
          {R"({"qty": 6, "tens": 155})", 21},    // 15 may grow to 150, the maximum
          {R"({"qty": 6})", 9},                  // minProperties 2
          {R"({"qty": 6, "note": "", "weight": 1, "tens": 0, )", 45},  // maxProperties 4
          {R"({"note": "", "weight": 1, "tens": 0, "p)",
           38},                                         // the fourth must be the required qty
          {R"({"qty": 6, "address": {"zip": 1})", 31},  // two of the named properties
          {R"({"qty": 6, "labels": {"n": 1, "b)", 31},  // the second must be the required a
          {R"({"qty": 6, "labels": {"a": true, "n": 1, )", 39},   // maxProperties 2
          {R"({"qty": -36, "weight": 2.75, "tens": -1e0})", 39},  // no exponent on a grid
      });
  // A name that begins another: "b" may go on to the required "bc", but not end there.
  const JsonSchema prefixed(json::parse(R"({"type": "object", "properties": {"b": {}, "bc": {}},
                                            "required": ["bc"], "maxProperties": 1})"));
  EXPECT_EQ(feed_all(prefixed, R"({"b": 1})").taken, 3u);
  EXPECT_TRUE(feed_all(prefixed, R"({"bc": 1})").complete);
}

// enum and const of objects and arrays, in nlohmann's compact spelling (keys sorted, no blanks),
// as scalar values are.
TEST(JsonSchemaPrefix, EnumAndConstOfObjectsAndArrays) {
  const JsonSchema schema(json::parse(R"({"type": "object", "properties": {
      "k": {"const": {"b": [1, "x"], "a": null}},
      "p": {"enum": [[1, 2], [1, 2, 3], [], "[1]", 12]}},
      "additionalProperties": false})"));
  for (const char* ok :
       {R"({"k": {"a":null,"b":[1,"x"]}})", R"({"p": [1,2]})", R"({"p": [1,2,3]})", R"({"p": []})",
        R"({"p": "[1]"})", R"({"p": 12, "k": {"a":null,"b":[1,"x"]}})"}) {
    const Fed f = feed_all(schema, ok);
    EXPECT_TRUE(f.taken == std::strlen(ok) && f.complete) << ok;
  }
  EXPECT_EQ(feed_all(schema, R"({"k": {"b")").taken, 8u);         // keys in sorted order
  EXPECT_EQ(feed_all(schema, R"({"k": {"a": null)").taken, 11u);  // no blank inside
  EXPECT_EQ(feed_all(schema, R"({"p": [1,2,4])").taken, 11u);
  EXPECT_EQ(feed_all(schema, R"({"p": [2])").taken, 7u);
  const std::string long_value(JsonSchema::kMaxValueBytes, 'x');
  EXPECT_THROW(
      JsonSchema(json{{"type", "object"}, {"properties", {{"a", {{"const", long_value}}}}}}),
      Error);
}

// anyOf with a branch of bare types: the branches whose values are all of those types are taken
// in (Pydantic's Union[int, float] and Union[date, str]); the union is the same set of values.
// Branches that only overlap (neither bare), and oneOf (where a value of two branches is
// refused), still need different first bytes. A union reached through a $ref is the same.
TEST(JsonSchemaPrefix, AnyOfABareTypeTakesInTheBranchesItCovers) {
  const JsonSchema schema(json::parse(R"({"type": "object", "properties": {
      "n": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "number"}]},
      "d": {"anyOf": [{"type": "string", "format": "date"}, {"type": "string"}, {"type": "null"}]},
      "e": {"anyOf": [{"enum": ["a", 1, 2.5]}, {"type": ["string", "number"]}]},
      "o": {"anyOf": [{"enum": [{"a": 1}, [2]]}, {"type": "integer"}]},
      "any": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {}]},
      "ref": {"$ref": "#/$defs/Amount"},
      "p": {"anyOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
      "s": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "string", "minLength": 2}]}},
      "additionalProperties": false,
      "$defs": {"Amount": {"anyOf": [{"type": "integer"}, {"type": "number"}]}}})"));
  for (const char* ok :
       {R"({"n": 2})", R"({"n": -2.5e3})", R"({"ref": 1.5})", R"({"d": "2024-02-30x"})",
        R"({"d": null})", R"({"e": "b"})", R"({"e": 7.25})", R"({"any": ["x", {}]})",
        R"({"any": true})", R"({"o": {"a":1}})", R"({"o": [2]})", R"({"o": -3})"}) {
    const Fed f = feed_all(schema, ok);
    EXPECT_TRUE(f.taken == std::strlen(ok) && f.complete) << ok;
  }
  EXPECT_EQ(feed_all(schema, R"({"e": true})").taken, 6u);  // neither branch has booleans
  // Branches that only overlap are read side by side: an integer, or a number from 0.
  for (const char* ok : {R"({"p": -3})", R"({"p": 1.5})", R"({"s": ""})", R"({"s": "abcdef"})"}) {
    const Fed f = feed_all(schema, ok);
    EXPECT_TRUE(f.taken == std::strlen(ok) && f.complete) << ok;
  }
  EXPECT_EQ(feed_all(schema, R"({"p": -1.5})").taken, 8u);
  // oneOf's branches must not both hold a value: where they begin alike they are refused.
  const char* refused = R"({"type": "object", "properties": {"a": {"oneOf": [{"type": "integer"},
                                                                           {"type": "number"}]}}})";
  EXPECT_THROW(JsonSchema(json::parse(refused)), Error) << refused;
}

// Unions of branches that begin alike: Pydantic's Union[Cat, Dog] (anyOf of objects) and its
// discriminated unions (oneOf whose objects a required const property tells apart). Each branch
// is read on a path of its own; the value is taken while some path takes it.
TEST(JsonSchemaPrefix, UnionsOfBranchesThatBeginAlike) {
  expect_taken_and_refused(
      kOrder,
      {R"({"qty": 0, "pet": {"kind": "dog", "good": true}})",
       R"({"qty": 0, "pet": {"kind": "cat"}})", R"({"qty": 0, "pet": {"lives": 3, "kind": "cat"}})",
       R"({"qty": 0, "shape": {"r": 1}})", R"({"qty": 0, "shape": {"w": 1, "x": []}})",
       R"({"qty": 0, "shape": "ab"})", R"({"qty": 0, "shape": "2024-01-01"})",
       R"({"qty": 0, "shape": {"h": 2, "w": 1.5}})"},
      {
          {R"({"qty": 0, "pet": {"kind": "dog"})", 32},            // a dog's "good" is required
          {R"({"qty": 0, "pet": {"good": true, "kind": "c)", 42},  // "good": a dog's
          {R"({"qty": 0, "pet": {"kind": "cat", "good")", 35},     // a cat has no "good"
          {R"({"qty": 0, "shape": {"r": 1, "x": 2})", 35},         // r alone, or w with others
          {R"({"qty": 0, "shape": "abc)", 23},                     // 2 characters, or a date
          {R"({"qty": 0, "shape": "20241)", 25},
      });
  // Paths that come to the same state are merged: a list of such unions keeps one or two paths
  // (a state's memo key holds every path), not one per choice made so far.
  const JsonSchema list(json::parse(R"({"type": "object", "properties": {"l": {"type": "array",
      "items": {"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}}},
                          {"type": "object", "properties": {"a": {"type": "number"}},
                           "required": ["a"]}]}}}})"));
  JsonPrefix p(&list);
  ASSERT_TRUE(p.take(R"({"l": [)"));
  size_t key_size = 0;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(p.take(i == 0 ? R"({"a": 1})" : R"(, {"a": 1})")) << i;
    std::string key;
    p.memo_key(&key);
    if (i == 0) key_size = key.size();
    ASSERT_EQ(key.size(), key_size) << "after element " << i;
  }
  ASSERT_TRUE(p.take("]}"));
  EXPECT_TRUE(p.complete());
  // More than kMaxAlike branches beginning alike are refused.
  json many = json::array();
  for (int i = 0; i <= JsonSchema::kMaxAlike; ++i)
    many.push_back(
        {{"type", "object"}, {"properties", {{"k" + std::to_string(i), json::object()}}}});
  try {
    JsonSchema compiled(json{{"type", "object"}, {"properties", {{"u", {{"anyOf", many}}}}}});
    ADD_FAILURE() << "compiled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 16 anyOf / oneOf branches begin alike"),
              std::string::npos)
        << e.what();
  }
}

// Pydantic's Set[int], and a list of them (each inner array unique apart). Apart from kOrder:
// its random walks would write integers of hundreds of digits, which nlohmann reads as doubles.
const json kIds = json::parse(R"({"type": "object", "properties": {
    "ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": true},
    "more": {"type": "array", "maxItems": 3,
             "items": {"type": "array", "items": {"type": "integer"}, "uniqueItems": true}}},
  "additionalProperties": false})");

// uniqueItems on strings (Pydantic's Set[str]): each written one way only (characters as
// themselves, the short escapes, \u00xx in lowercase for the other controls), the closing quote
// refused where the text is an earlier element's of the same array. On integers (Set[int]): the
// byte after an earlier element's digits refused, "-0" (0) and a second 0 refused at their 0.
TEST(JsonSchemaPrefix, UniqueItemsOfStringsAndIntegers) {
  expect_taken_and_refused(
      kOrder,
      {R"({"qty": 0, "tags": ["a", "ab", "b", "", "\n", "\u001f", "é", "\"", "\\", "/"]})",
       R"({"qty": 0, "groups": [["a", "b"], ["a", "b"], []]})",  // each array apart
       R"({"qty": 0, "tags": ["a"], "groups": [["a"]]})"},
      {
          {R"({"qty": 0, "tags": ["a", "b", "a")", 32},     // "a" again
          {R"({"qty": 0, "tags": ["", "")", 25},            // "" again
          {R"({"qty": 0, "tags": ["\n", "\n")", 29},        // an escape's character again
          {R"({"qty": 0, "tags": ["\/)", 22},               // '/' is written as itself
          {R"({"qty": 0, "tags": ["\u004)", 25},            // 'A' too
          {R"({"qty": 0, "tags": ["\u000a)", 26},           // '\n' has its short escape
          {R"({"qty": 0, "tags": ["\u001F)", 26},           // lowercase digits
          {R"({"qty": 0, "groups": [["x", "y", "x")", 35},  // within one inner array
      });
  expect_taken_and_refused(kIds, {R"({"ids": [1, 12, -1, 0, 120, -12, 7], "more": [[1], [1]]})"},
                           {
                               {R"({"ids": [12, 3, 12,)", 18},  // 12 again: its comma
                               {R"({"ids": [12, 3, 12])", 18},  // or its close
                               {R"({"ids": [-0)", 10},          // -0 is 0
                               {R"({"ids": [0, 0)", 12},        // nothing follows a second 0
                               {R"({"more": [[5, 5])", 15},     // within one inner array
                           });
}

TEST(JsonSchemaPrefix, UniqueItemsOfKnownValues) {
  expect_taken_and_refused(
      kOrder,
      {R"({"qty": 0, "sizes": ["S", 1, [1], 2.5]})",
       R"({"qty": 0, "sizes": [1.0, {"a":1}, "L", "M", "S"]})",
       R"({"qty": 0, "flags": [true, false]})", R"({"qty": 0, "flags": []})"},
      {
          {R"({"qty": 0, "sizes": ["S", "S")", 27},  // "S" again
          {R"({"qty": 0, "sizes": [1, 1.0)", 24},    // 1.0 is 1: no value beginning with 1 is left
          {R"({"qty": 0, "sizes": [1.0, 1])", 26},   // nor after 1.0
          {R"({"qty": 0, "sizes": [[1], [1])", 26},  // an array value once too
          {R"({"qty": 0, "flags": [true, true)", 27},     // booleans
          {R"({"qty": 0, "flags": [false, true, )", 32},  // both written: no third element
      });
  const std::pair<const char*, const char*> refused[] = {
      {R"({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": true,
                                                  "items": {"type": "string", "maxLength": 3}}}})",
       "#/properties/a/uniqueItems: supported on arrays whose items are an enum or const"},
      {R"({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": true,
                                                  "items": {"type": "number"}}}})",
       "integers without bounds or multipleOf"},
      {R"({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": true,
                                                  "items": {"type": "integer", "minimum": 0}}}})",
       "integers without bounds or multipleOf"},
      {R"({"type": "object", "properties": {"a": {"uniqueItems": true}}})",
       "#/properties/a/uniqueItems: supported on arrays"},
      {R"({"type": "object", "properties": {"a": {"uniqueItems": true, "prefixItems": [{}]}}})",
       "beside prefixItems"},
      {R"({"type": "object", "properties": {"a": {"uniqueItems": true, "minItems": 3,
                                                  "items": {"enum": [1, 1.0, 2]}}}})",
       "minItems 3 beyond the 2 distinct values"},
      {R"({"type": "object", "properties": {"a": {"uniqueItems": 1}}})", "must be a boolean"},
  };
  for (const auto& [doc, message] : refused) {
    try {
      JsonSchema compiled{json::parse(doc)};
      ADD_FAILURE() << doc << " compiled";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  // uniqueItems false is no constraint.
  const JsonSchema any(json::parse(R"({"type": "object", "properties": {"a": {"uniqueItems": false,
                                          "items": {"type": "string"}}}})"));
  EXPECT_TRUE(feed_all(any, R"({"a": ["x", "x"]})").complete);
}

// Some byte continues every prefix the grammar took, until the object is complete: a sampler
// never meets a state where no token is allowed.
void expect_no_dead_end(const JsonSchema* schema, std::string_view d, size_t taken) {
  JsonPrefix p(schema);
  for (size_t i = 0; i <= taken; ++i) {
    if (p.complete()) return;
    bool some = false;
    for (int b = 0; b < 256 && !some; ++b) {
      JsonPrefix next = p;
      some = next.feed(static_cast<uint8_t>(b));
    }
    ASSERT_TRUE(some) << "no byte continues " << json(std::string(d.substr(0, i))).dump();
    if (i < taken) {
      ASSERT_TRUE(p.feed(static_cast<uint8_t>(d[i])));
    }
  }
}

// Random instances are taken whole; of their one-byte mutations (of the compact form, so that
// names and enum values keep the one spelling the grammar writes) exactly those that parse to
// an instance are taken whole and complete.
void expect_agreement_on_instances_and_mutations(const json& doc, uint32_t seed,
                                                 int min_valid_mutants) {
  const JsonSchema schema(doc);
  std::mt19937 rng(seed);
  const char significant[] = "{}[]:,\" 0123456789.-eEtrufalsn\\";
  int valid_mutants = 0, invalid_mutants = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string text = instance(rng, doc, doc, 3).dump();
    SCOPED_TRACE(text);
    ASSERT_TRUE(valid(json::parse(text), doc, doc));
    const Fed whole = feed_all(schema, text);
    ASSERT_EQ(whole.taken, text.size());
    ASSERT_TRUE(whole.complete);
    for (int m = 0; m < 20; ++m) {
      std::string d = text;
      d[rng() % d.size()] = rng() % 4 == 0 ? static_cast<char>(rng() % 256)
                                           : significant[rng() % (sizeof(significant) - 1)];
      const Fed f = feed_all(schema, d);
      if (m % 5 == 0) expect_no_dead_end(&schema, d, f.taken);
      const bool ours = f.taken == d.size() && f.complete;
      // An instance for the validator whose numbers lie below 1e308 (json_number_range.h);
      // nlohmann refuses one beyond a double's range (1e625) itself.
      bool instance = false, canonical = false;
      try {
        const json v = json::parse(d);
        const NumberRange range = number_range(v);
        if (range == NumberRange::kBoundary) continue;
        instance = v.is_object() && valid(v, doc, doc) && range == NumberRange::kBelow;
        canonical = v.dump() == d;
      } catch (const json::exception&) {
      }
      // An instance in another spelling (a space, a name written with an escape) may go
      // either way; everything else must agree.
      if (instance && !canonical) continue;
      ASSERT_EQ(ours, instance) << "mutant: "
                                << json(d).dump(-1, ' ', true, json::error_handler_t::replace)
                                << " taken " << f.taken;
      (ours ? valid_mutants : invalid_mutants) += 1;
    }
  }
  EXPECT_GT(valid_mutants, min_valid_mutants);
  EXPECT_GT(invalid_mutants, 4000);
}

// What the grammar writes: random walks over the bytes it allows (the significant ones weighted
// up, so that strings and numbers end) meet no dead end, and every object they complete is an
// instance for the validator. The property counts and the grids are where a walk writes what
// the instances above never try: a fifth property, a step's long tail. (The schema has no
// unbounded integer: the grammar writes those up to 308 digits, which nlohmann reads as doubles
// past 64 bits, and the validator, as the server, takes only its integers as integers.)
void expect_walks_end_in_instances(const json& doc, uint32_t seed) {
  const JsonSchema schema(doc);
  std::mt19937 rng(seed);
  const std::string significant = "{}[]:,\"-0123456789.eEtrufalsn";
  int completed = 0;
  for (int walk = 0; walk < 300; ++walk) {
    JsonPrefix p(&schema);
    std::string text;
    while (!p.complete() && text.size() < 3000) {
      std::vector<uint8_t> allowed;
      std::vector<double> weights;
      for (int b = 0; b < 256; ++b) {
        JsonPrefix next = p;
        if (!next.feed(static_cast<uint8_t>(b))) continue;
        allowed.push_back(static_cast<uint8_t>(b));
        weights.push_back(significant.find(static_cast<char>(b)) != std::string::npos ? 40 : 1);
      }
      ASSERT_FALSE(allowed.empty()) << "a dead end after " << text;
      const uint8_t c =
          allowed[std::discrete_distribution<size_t>(weights.begin(), weights.end())(rng)];
      ASSERT_TRUE(p.feed(c));
      text += static_cast<char>(c);
    }
    if (!p.complete()) continue;
    ++completed;
    const json v = json::parse(text);
    ASSERT_EQ(number_range(v), NumberRange::kBelow) << text;
    ASSERT_TRUE(valid(v, doc, doc)) << text;
  }
  EXPECT_GT(completed, 200);
}

TEST(JsonSchemaPrefix, RandomWalksEndInInstancesWithoutDeadEnds) {
  expect_walks_end_in_instances(kOrder, 1208);
}

TEST(JsonSchemaPrefix, AgreesWithTheValidatorOnInstancesAndMutations) {
  expect_agreement_on_instances_and_mutations(kPerson, 1206, 100);
}

// Set[int] against the validator: instances (unique by drawing again) and their mutations.
TEST(JsonSchemaPrefix, UniqueIntegersAgreeWithTheValidator) {
  expect_agreement_on_instances_and_mutations(kIds, 1207, 50);
}

// multipleOf and the property counts, likewise (the order's maxProperties of 4 makes most
// mutations of a name or a value's type refused ones).
TEST(JsonSchemaPrefix, AgreesWithTheValidatorOnStepsAndPropertyCounts) {
  expect_agreement_on_instances_and_mutations(kOrder, 1207, 100);
}

// The string formats against the oracle's regular expressions and std::chrono's calendar, on
// random strings of each layout (every digit random, so most dates and times are refused and
// the leap days, 23:59 and month ends are reached) and their one-byte mutations; every prefix
// the reader takes goes on or is a whole value.
TEST(JsonFormat, AgreesWithTheCalendarOnRandomValues) {
  std::mt19937 rng(1208);
  const std::pair<const char*, const char*> layouts[] = {
      {"date", "dddd-dd-dd"},
      {"time", "dd:dd:ddZ"},
      {"time", "dd:dd:dd.dd+dd:dd"},
      {"date-time", "dddd-dd-ddTdd:dd:dd-dd:dd"},
      {"date-time", "dddd-dd-ddTdd:dd:dd.dddZ"},
      {"uuid", "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh"},
  };
  const char digits_low[] = "0011223456789";  // low digits more often: more valid fields
  const char hex[] = "0123456789abcdefABCDEFg";
  int valid_seen = 0, invalid_seen = 0;
  for (const auto& [format, layout] : layouts) {
    const StringFormat f = string_format(format);
    for (int i = 0; i < 3000; ++i) {
      std::string v = layout;
      for (char& c : v) {
        if (c == 'd') c = digits_low[rng() % (sizeof(digits_low) - 1)];
        if (c == 'h') c = hex[rng() % (sizeof(hex) - 1)];
      }
      if (i % 3 == 0) v[rng() % v.size()] = "0:-T.Z+9x"[rng() % 9];
      if (std::string(format) == "date" && i % 7 == 0)
        v = (i % 2 ? "2024-02-" : "2023-02-") + v.substr(8);
      FormatReader r(f);
      size_t taken = 0;
      for (; taken < v.size(); ++taken) {
        bool some = r.complete();
        for (int b = 0; b < 256 && !some; ++b) {
          FormatReader next = r;
          some = next.step(static_cast<uint8_t>(b));
        }
        ASSERT_TRUE(some) << "dead end after " << v.substr(0, taken);
        FormatReader next = r;
        if (!next.step(static_cast<uint8_t>(v[taken]))) break;
        r = next;
      }
      const bool ours = taken == v.size() && r.complete();
      ASSERT_EQ(ours, test::format_ok(format, v)) << format << " " << v;
      (ours ? valid_seen : invalid_seen) += 1;
    }
  }
  EXPECT_GT(valid_seen, 1000);
  EXPECT_GT(invalid_seen, 6000);
}

// The formats kept as patterns (email, hostname, ipv4, ipv6, duration): valid values and
// random edits of them, the grammar against checkers written apart (inet_pton for addresses),
// and within a schema's string value.
TEST(JsonFormat, FormatsKeptAsPatternsAgreeWithCheckersWrittenApart) {
  std::mt19937 rng(1209);
  const std::pair<const char*, std::vector<std::string>> formats[] = {
      {"ipv4", {"192.168.0.1", "0.0.0.0", "255.255.255.255", "10.20.30.40"}},
      {"ipv6",
       {"::", "::1", "1::", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.128", "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5::1.2.3.4", "fe80::1:2",
        "1:2:3:4:5:6:7::", "ABCD:ef01::9"}},
      {"hostname", {"example.org", "a", "a1-b2.c3", "xn--bcher-kva.example", "localhost"}},
      {"email", {"ann@example.org", "a.b+c@x-y.io", "x!#$%&'*+/=?^_`{|}~-@h", "q@a.b.c"}},
      {"duration", {"P3Y6M4DT12H30M5S", "PT20M", "P1W", "P2D", "P1M2D", "PT1H", "PT5S", "P1Y"}},
      {"uri",
       {"https://example.org/a/b?x=1&y=%20#top", "http://[::1]:8080/", "mailto:ann@example.org",
        "urn:isbn:0451450523", "a:", "ftp://u:p@h.io:21/%7Ex", "http://[v1f.a:b]/", "x:/a//b",
        "http://[fe80::1:2]", "news:comp.lang.c++"}},
      {"uri-reference",
       {"https://example.org/a?b#c", "//cdn.example/x.js", "../up/one", "a/b:c", "?q=1", "#frag",
        "", "/abs/path", "./a:b", "x:y"}},
  };
  const std::string edits = "0123456789abfAF:.-@PTYMDWHSx+_ /?#[]%v";
  int valid_seen = 0, invalid_seen = 0;
  for (const auto& [format, examples] : formats) {
    const auto g = compile_pattern(format_pattern(format));
    for (int i = 0; i < 2000; ++i) {
      std::string v = examples[rng() % examples.size()];
      for (int e = static_cast<int>(rng() % 3); e > 0; --e) {
        const size_t at = rng() % (v.size() + 1);
        const char c = edits[rng() % edits.size()];
        switch (rng() % 3) {
          case 0:
            v.insert(v.begin() + static_cast<ptrdiff_t>(at), c);
            break;
          case 1:
            if (at < v.size()) v.erase(at, 1);
            break;
          default:
            if (at < v.size()) v[at] = c;
        }
      }
      GbnfPrefix p(g.get());
      const bool ours = p.take(v) && p.may_end();
      ASSERT_EQ(ours, test::format_ok(format, v)) << format << " '" << v << "'";
      (ours ? valid_seen : invalid_seen) += 1;
    }
  }
  EXPECT_GT(valid_seen, 3000);
  EXPECT_GT(invalid_seen, 3000);
  // In a schema, and refused beside a pattern or a length it cannot keep (an address is 7
  // characters at least: maxLength 6 admits none, and a minLength above 7 is not supported).
  const JsonSchema schema(nlohmann::json::parse(
      R"j({"type": "object", "properties": {"e": {"type": "string", "format": "email"}}})j"));
  JsonPrefix ok(&schema);
  EXPECT_TRUE(ok.take(R"j({"e": "ann@example.org"})j") && ok.complete());
  JsonPrefix bad(&schema);
  EXPECT_FALSE(bad.take(R"j({"e": "ann@@example.org"})j"));
  // A host name of 253 characters at most: 63 times "abc." then "a" (253), but not "ab".
  const JsonSchema host(nlohmann::json::parse(
      R"j({"type": "object", "properties": {"h": {"type": "string", "format": "hostname"}}})j"));
  std::string name;
  for (int i = 0; i < 63; ++i) name += "abc.";
  JsonPrefix at_limit(&host);
  EXPECT_TRUE(at_limit.take(R"({"h": ")" + name + R"(a"})") && at_limit.complete());
  JsonPrefix over(&host);
  EXPECT_FALSE(over.take(R"({"h": ")" + name + R"(ab)"));  // 254 characters
  // Pydantic's HttpUrl: a uri of 1 to 2083 characters.
  const JsonSchema url(nlohmann::json::parse(R"j({"type": "object", "properties": {"u":
      {"format": "uri", "maxLength": 2083, "minLength": 1, "type": "string"}}})j"));
  JsonPrefix link(&url);
  EXPECT_TRUE(link.take(R"j({"u": "https://example.org/a?b=1"})j") && link.complete());
  JsonPrefix no_scheme(&url);
  EXPECT_FALSE(no_scheme.take(R"j({"u": "example.org"})j"));
  for (const char* refused :
       {R"j({"type": "object", "properties": {"e": {"format": "email", "pattern": "a"}}})j",
        R"j({"type": "object", "properties": {"e": {"format": "ipv4", "maxLength": 6}}})j",
        R"j({"type": "object", "properties": {"e": {"format": "ipv4", "minLength": 8}}})j",
        R"j({"type": "object", "properties": {"e": {"format": "iri"}}})j"})
    EXPECT_THROW(JsonSchema(nlohmann::json::parse(refused)), Error) << refused;
}

// The mask goes through the memo of steps (grammar_memo.h, JsonPrefix::memo_key): at every
// token of an instance that visits each kind of state (keys, enum values, bounded integers and
// numbers, formats, two different patterns, nesting, a recursive $ref), the mask keeps exactly
// the tokens each one's own check (allows(), which steps a copy of the state) allows. One
// constraint reads the whole instance, so later masks meet the memo filled at earlier places.
class JsonSchemaQwen : public test::QwenVocab {};

TEST_F(JsonSchemaQwen, MaskThroughTheMemoKeepsExactlyWhatEachTokenAllows) {
  const JsonSchema schema(kPerson);
  static_assert(MemoKeyed<JsonPrefix>);
  GrammarConstraint<JsonPrefix> c(*bytes_, JsonPrefix(&schema));
  const std::string text =
      R"({"name": "Ann \"A\" é", "age": 42, "nick": "ab", "code": 123, "debt": -25,)"
      R"( "pair": [1, -5], "height": -1.5e3, "ratio": 12.375, "color": "green", "level": 2.5,)"
      R"( "kind": "human", "tags": ["a b", "c"], "born": "2024-02-29",)"
      R"( "seen": "2026-12-06T04:05:06.5+01:00", "id": "123e4567-e89b-12d3-a456-426614174000",)"
      R"( "plate": "AB-1234", "mail": "x@y.io", "alarm": "07:00:00Z", "scores": [1, true],)"
      R"( "home": "https://example.org/a%20b?q=1#top",)"
      R"( "parent": {"name": "Bo", "age": 70, "ratio": -0.25, "parent": null, "mail": "b@c.de"},)"
      R"( "pet": {"species": "cat", "weight": 4.5}, "extra": {"q": [1, {}]}})";
  ASSERT_TRUE(valid(json::parse(text), kPerson, kPerson));
  ASSERT_NO_FATAL_FAILURE(test::expect_mask_along(c, *tok_, text));
  EXPECT_TRUE(c.complete());
}

// The same through the order's unions (paths side by side: their keys in the memo's), steps,
// property counts and unique items.
TEST_F(JsonSchemaQwen, MaskThroughTheMemoKeepsUnionsStepsAndCounts) {
  const JsonSchema schema(kOrder);
  GrammarConstraint<JsonPrefix> c(*bytes_, JsonPrefix(&schema));
  const std::string text =
      R"({"qty": -36, "pet": {"lives": 7, "kind": "cat"}, "shape": {"w": 2.5, "h": 1, "z": [1]},)"
      R"( "sizes": ["M", 2.5, {"a":1}]})";
  ASSERT_TRUE(valid(json::parse(text), kOrder, kOrder));
  ASSERT_NO_FATAL_FAILURE(test::expect_mask_along(c, *tok_, text));
  EXPECT_TRUE(c.complete());
}

// Unique arrays of strings and integers through the memo: elements that begin earlier ones
// ("gr" of "green"), then differ. Each element's text is in the memo key (it goes into the
// array's set at its close: a key without it made the memo's step after a closing quote take a
// representative's text, which this caught), so inside such a string each byte is a new memo
// state and the mask costs a pass over the vocabulary with copies (PERF.md).
TEST_F(JsonSchemaQwen, MaskThroughTheMemoKeepsUniqueTexts) {
  const JsonSchema order(kOrder);
  GrammarConstraint<JsonPrefix> c(*bytes_, JsonPrefix(&order));
  const std::string text =
      R"({"qty": 0, "tags": ["green", "gr", "grey", ""], "groups": [["x"], ["x", "xy"]]})";
  ASSERT_TRUE(valid(json::parse(text), kOrder, kOrder));
  ASSERT_NO_FATAL_FAILURE(test::expect_mask_along(c, *tok_, text));
  EXPECT_TRUE(c.complete());
  const JsonSchema ids(kIds);
  GrammarConstraint<JsonPrefix> d(*bytes_, JsonPrefix(&ids));
  const std::string numbers = R"({"ids": [12, 1, 120, -1, 0, 7], "more": [[5, 50], [5]]})";
  ASSERT_NO_FATAL_FAILURE(test::expect_mask_along(d, *tok_, numbers));
  EXPECT_TRUE(d.complete());
}

}  // namespace json_schema_test
}  // namespace
}  // namespace xtile::server
