// The grammars' range of numbers (server/json_number_magnitude.h: below 1e308 in magnitude),
// read through JsonPrefix as a sampler meets it: against std::strtod on numbers built around the
// limit (long integer parts, leading zeros, exponents of either sign with leading zeros), with
// no dead end on any prefix, and with equal memo keys meaning equal next steps.
#include "server/json_number_magnitude.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "base/error.h"
#include "json_feed.h"
#include "server/json_prefix.h"
#include "server/json_schema.h"

namespace xtile::server {
namespace {
namespace json_number_magnitude_test {  // unity batches: CMakeLists.txt

using nlohmann::json;
using test::Fed;
using test::feed_all;

std::string zeros(int n) {
  return std::string(static_cast<size_t>(n), '0');
}

// {"a":N} taken whole and complete.
bool takes(const std::string& number, const JsonSchema* schema = nullptr) {
  const std::string doc = "{\"a\":" + number + "}";
  const Fed f = feed_all(doc, schema);
  return f.taken == doc.size() && f.complete;
}

// Where the grammar stops reading {"a":N}, counted from N's first byte.
size_t taken_of(const std::string& number, const JsonSchema* schema = nullptr) {
  return feed_all("{\"a\":" + number + "}", schema).taken - 5;
}

TEST(NumberMagnitude, TakesNumbersBelow1e308AndNoOthers) {
  for (const std::string& n :
       {std::string("1e307"), std::string("-9.999e307"), std::string("9.99e+307"),
        std::string("1") + zeros(307), std::string("0e99999"), std::string("-0.0e400"),
        std::string("0.001e310"), std::string("1e-99999999999"), std::string("1e0000000307"),
        std::string("1") + zeros(400) + "e-93", std::string("0.") + zeros(500) + "1e500",
        std::string("123.456"), std::string("-0")}) {
    EXPECT_TRUE(takes(n)) << n;
  }
  for (const std::string& n :
       {std::string("1e308"), std::string("-1e+308"), std::string("12e307"),
        std::string("1") + zeros(308), std::string("0.001e311"),
        std::string("1") + zeros(400) + "e-92", std::string("8e4567"), std::string("1.8e308")}) {
    EXPECT_FALSE(takes(n)) << n;
  }
  // Refused at the byte that leaves no way below 1e308: the exponent's last digit, the '+'
  // after a mantissa already past it (only '-' may follow its 'e'), not before.
  EXPECT_EQ(taken_of("1e308"), 4u);
  EXPECT_EQ(taken_of("1" + zeros(308) + "e+1"), 310u);
  EXPECT_EQ(taken_of("1" + zeros(308) + "e1"), 310u);
  EXPECT_EQ(taken_of("1" + zeros(308) + "e-1}"), 313u);  // ends once below
  EXPECT_EQ(taken_of("1" + zeros(308) + "}"), 309u);     // may not end above
}

TEST(NumberMagnitude, AnIntegerWithoutExponentStopsAtItsThreeHundredEighthDigit) {
  const JsonSchema integer(
      json::parse(R"({"type": "object", "properties": {"a": {"type": "integer"}}})"));
  EXPECT_TRUE(takes("-9" + std::string(307, '9'), &integer));
  EXPECT_EQ(taken_of("9" + std::string(400, '9'), &integer), 308u);
}

// Bounded numbers are written without an exponent; their range stops below 1e308 too, so that
// a minimum alone leaves no number to grow past it, and a maximum above it changes nothing.
TEST(NumberMagnitude, BoundsStopBelow1e308) {
  const JsonSchema minimum(
      json::parse(R"({"type": "object", "properties": {"a": {"type": "number", "minimum": 0}}})"));
  EXPECT_TRUE(takes("1" + zeros(307) + ".5", &minimum));
  EXPECT_EQ(taken_of("1" + zeros(400), &minimum), 308u);
  const JsonSchema maximum(json::parse(
      R"({"type": "object", "properties": {"a": {"type": "number", "maximum": 1.5e308}}})"));
  EXPECT_TRUE(takes("-9" + std::string(307, '9'), &maximum));
  EXPECT_EQ(taken_of("-1" + zeros(400), &maximum), 309u);
  try {
    JsonSchema(json::parse(
        R"({"type": "object", "properties": {"a": {"type": "number", "minimum": 1.5e308}}})"));
    ADD_FAILURE() << "a minimum beyond 1e308 was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1e308"), std::string::npos) << e.what();
  }
}

// A number around the limit: an integer part of 1..330 digits or "0." and leading zeros, more
// digits, and an exponent (leading zeros, either sign) that brings the first digit near 10^307.
std::string number_near_limit(std::mt19937& rng) {
  auto digit = [&](char first) { return static_cast<char>(first + rng() % ('9' - first + 1)); };
  std::string n = rng() % 2 ? "-" : "";
  int lead = 0;
  if (rng() % 3 == 0) {
    const int z = static_cast<int>(rng() % 40);
    n += "0." + zeros(z) + digit('1');
    lead = -z - 1;
  } else {
    const int length = 1 + static_cast<int>(rng() % 330);
    n += digit('1');
    for (int i = 1; i < length; ++i) n += digit('0');
    lead = length - 1;
    if (rng() % 2) n += ".";
  }
  if (n.back() == '.' || rng() % 2)
    for (int i = static_cast<int>(rng() % 25); i >= 0; --i) n += digit('0');
  if (rng() % 5 == 0) return n;                           // no exponent
  const int target = 300 + static_cast<int>(rng() % 16);  // the first digit's final position
  const int e = target - lead;
  n += rng() % 2 ? "e" : "E";
  n += e < 0 ? "-" : rng() % 2 ? "+" : "";
  n += zeros(static_cast<int>(rng() % 3)) + std::to_string(std::abs(e));
  return n;
}

// Some byte continues each prefix of {"a":N} the grammar takes before its close.
void expect_no_dead_end(const std::string& number) {
  const std::string doc = "{\"a\":" + number + "}";
  JsonPrefix p;
  for (char c : doc) {
    bool some = false;
    for (int b = 0; b < 256 && !some; ++b) some = JsonPrefix(p).feed(static_cast<uint8_t>(b));
    ASSERT_TRUE(some) << doc;
    if (!p.feed(static_cast<uint8_t>(c)) || p.complete()) return;
  }
}

TEST(NumberMagnitude, AgreesWithStrtodAroundTheLimit) {
  std::mt19937 rng(20261206);
  int below = 0, above = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string n = number_near_limit(rng);
    errno = 0;
    const double v = std::fabs(std::strtod(n.c_str(), nullptr));
    if (v == 1e308) continue;  // a decimal a hair below 1e308 reads as 1e308's own double
    const bool fits = v < 1e308 && errno != ERANGE;
    ASSERT_EQ(takes(n), fits) << n;
    (fits ? below : above) += 1;
    if (i % 10 == 0) expect_no_dead_end(n);
  }
  EXPECT_GT(below, 800);
  EXPECT_GT(above, 800);
}

// The mask's memo (grammar_memo.h) takes equal keys for equal futures: states met inside
// numbers with the same key refuse and take the same bytes, and lead to the same keys.
TEST(NumberMagnitude, EqualMemoKeysStepAlike) {
  std::mt19937 rng(11);
  std::map<std::string, JsonPrefix> seen;
  int compared = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string doc = "{\"a\":" + number_near_limit(rng);
    JsonPrefix p;
    for (size_t k = 0; k < doc.size() && p.feed(static_cast<uint8_t>(doc[k])); ++k) {
      if (k < 5) continue;
      std::string key;
      p.memo_key(&key);
      const auto [it, inserted] = seen.emplace(key, p);
      if (inserted) continue;
      ++compared;
      for (int b = 0; b < 256; ++b) {
        JsonPrefix x = p, y = it->second;
        const bool fx = x.feed(static_cast<uint8_t>(b)), fy = y.feed(static_cast<uint8_t>(b));
        ASSERT_EQ(fx, fy) << doc.substr(0, k + 1) << " byte " << b;
        if (!fx) continue;
        std::string kx, ky;
        x.memo_key(&kx);
        y.memo_key(&ky);
        ASSERT_EQ(kx, ky) << doc.substr(0, k + 1) << " byte " << b;
      }
    }
  }
  EXPECT_GT(compared, 1000);
}

}  // namespace json_number_magnitude_test
}  // namespace
}  // namespace xtile::server
