// multipleOf and integer bounds (server/json_fixed_point.h) against an oracle written apart: every
// value the schema admits, listed one by one (the multiples of the step within the bounds, in
// exact thousandths), and every spelling of each (a sign, the digits, a point and trailing
// zeros). The reader must take a prefix exactly when it begins some spelling, and allow the end
// exactly on a whole one; from every prefix it takes, some byte goes on or the number ends.
#include "server/json_fixed_point.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"

namespace xtile::server {
namespace {
namespace json_fixed_point_test {  // unity batches: CMakeLists.txt

using nlohmann::json;
constexpr int64_t kMilli = 1000;  // the oracle's unit: every step and bound here is in thousandths

// "-12.05" in thousandths (at most 3 fraction digits).
int64_t thousandths(const std::string& text) {
  const bool negative = text[0] == '-';
  int64_t whole = 0, frac = 0, unit = kMilli;
  bool point = false;
  for (char c : text.substr(negative ? 1 : 0)) {
    if (c == '.') {
      point = true;
    } else if (point) {
      unit /= 10;
      frac += (c - '0') * unit;
    } else {
      whole = whole * 10 + (c - '0');
    }
  }
  const int64_t v = whole * kMilli + frac;
  return negative ? -v : v;
}

// Every spelling of the value v (thousandths) up to `length` bytes: each spelling's prefixes go
// in `prefixes`, the whole spellings in `whole`.
void add_spellings(int64_t v, bool fraction, size_t length, std::set<std::string>* prefixes,
                   std::set<std::string>* whole) {
  const int64_t m = v < 0 ? -v : v;
  std::string digits = std::to_string(m / kMilli);
  std::string frac = std::to_string(kMilli + m % kMilli).substr(1);  // three digits
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  if (!frac.empty() && !fraction) return;  // not an integer
  std::vector<std::string> spellings;
  for (const std::string& sign : {std::string(), std::string("-")}) {
    if (sign == "-" && v > 0) continue;
    if (sign.empty() && v < 0) continue;
    const std::string head = sign + digits;
    if (frac.empty()) spellings.push_back(head);
    if (!fraction) continue;
    for (std::string f = frac.empty() ? "0" : frac; head.size() + 1 + f.size() <= length; f += '0')
      spellings.push_back(head + "." + f);
  }
  for (const std::string& s : spellings) {
    whole->insert(s);
    for (size_t i = 1; i <= s.size(); ++i) prefixes->insert(s.substr(0, i));
  }
}

// A random bound's spelling: magnitude below 60, up to 2 fraction digits.
std::string random_bound(std::mt19937& rng) {
  std::string text = std::to_string(rng() % 60);
  if (rng() % 2) {
    text += '.';
    text += std::to_string(rng() % 10);
    if (rng() % 2) text += std::to_string(1 + rng() % 9);
  }
  if (rng() % 3 == 0) text.insert(0, 1, '-');
  return text;
}

TEST(JsonFixedPoint, AgreesWithEveryValueListedOnEveryByte) {
  std::mt19937 rng(1207);
  const char* steps[] = {"1",   "2",    "5",     "7",   "10",  "25",   "0.5", "0.25",
                         "0.3", "0.05", "0.125", "2.5", "1.5", "0.75", "100"};
  const std::string alphabet = "-.0123456789";
  constexpr size_t kLength = 9;  // walks read at most 8 bytes; the oracle's spellings reach 9
  int grids = 0, empty_grids = 0, judged = 0, ends = 0;
  for (int set = 0; set < 160; ++set) {
    const std::string step = steps[rng() % std::size(steps)];
    const bool fraction = rng() % 3 != 0;  // "type": "number" (else integers)
    std::string lo = random_bound(rng), hi = random_bound(rng);
    if (thousandths(lo) > thousandths(hi) && rng() % 4 != 0) std::swap(lo, hi);  // mostly a range
    const bool lo_exclusive = rng() % 3 == 0, hi_exclusive = rng() % 3 == 0;
    const std::string described = "multipleOf " + step + (fraction ? " number" : " integer") +
                                  (lo_exclusive ? ", exclusiveMinimum " : ", minimum ") + lo +
                                  (hi_exclusive ? ", exclusiveMaximum " : ", maximum ") + hi;
    SCOPED_TRACE(described);
    FixedPoint grid = FixedPoint::multiples_of(json::parse(step), fraction, "#");
    grid.bound(json::parse(lo), true, lo_exclusive, "#");
    grid.bound(json::parse(hi), false, hi_exclusive, "#");
    // The oracle: every multiple of the step within the bounds (and an integer, for integers).
    const int64_t s = thousandths(step), l = thousandths(lo), h = thousandths(hi);
    std::set<std::string> prefixes, whole;
    int values = 0;
    for (int64_t v = -60 * kMilli / s * s - s; v <= 60 * kMilli; v += s) {
      if (v < l || (lo_exclusive && v == l) || v > h || (hi_exclusive && v == h)) continue;
      if (!fraction && v % kMilli != 0) continue;
      ++values;
      add_spellings(v, fraction, kLength, &prefixes, &whole);
    }
    ASSERT_EQ(grid.empty(), values == 0);
    if (values == 0) {
      ++empty_grids;
      continue;
    }
    ++grids;
    for (int walk = 0; walk < 60; ++walk) {
      FixedPointNumber reader(&grid);
      std::string prefix;
      while (prefix.size() < kLength - 1) {
        ASSERT_EQ(reader.can_end(), whole.count(prefix) == 1) << prefix;
        std::vector<char> taken;
        for (char c : alphabet) {
          FixedPointNumber next = reader;
          const bool expected = prefixes.count(prefix + c) == 1;
          ASSERT_EQ(next.step(static_cast<uint8_t>(c)), expected) << prefix + c;
          ++judged;
          if (expected) taken.push_back(c);
        }
        for (char c : {'e', 'E', '+'}) ASSERT_FALSE(FixedPointNumber(reader).step(c)) << prefix;
        if (taken.empty()) {
          ASSERT_TRUE(reader.can_end()) << "a dead end after " << prefix;
          break;
        }
        if (reader.can_end() && rng() % 4 == 0) {
          ++ends;
          break;
        }
        const char c = taken[rng() % taken.size()];
        ASSERT_TRUE(reader.step(static_cast<uint8_t>(c)));
        prefix += c;
      }
    }
  }
  std::printf("%d grids (%d empty), %d bytes judged, %d numbers ended\n", grids, empty_grids,
              judged, ends);
  EXPECT_GT(grids, 100);
  EXPECT_GT(empty_grids, 5);
  EXPECT_GT(ends, 2000);
  EXPECT_GT(judged, 100000);
}

bool takes(const FixedPoint& grid, const std::string& text) {
  FixedPointNumber reader(&grid);
  for (char c : text)
    if (!reader.step(static_cast<uint8_t>(c))) return false;
  return reader.can_end();
}

FixedPoint grid_of(const char* doc, bool fraction) {
  const json keywords = json::parse(doc);
  FixedPoint g = keywords.contains("multipleOf")
                     ? FixedPoint::multiples_of(keywords["multipleOf"], fraction, "#/multipleOf")
                     : FixedPoint{};
  for (const auto& [k, v] : keywords.items())
    if (k != "multipleOf")
      g.bound(v, k.find("inimum") != std::string::npos, k.rfind("exclusive", 0) == 0, "#/" + k);
  return g;
}

TEST(JsonFixedPoint, StepsAndBoundsAsTheDecimalsTheSchemaWrote) {
  // 0.1 is one tenth (nlohmann's shortest spelling of the double), not the double's binary value.
  const FixedPoint tenth = grid_of(R"({"multipleOf": 0.1})", true);
  EXPECT_TRUE(takes(tenth, "0.3"));
  EXPECT_TRUE(takes(tenth, "12.30000"));
  EXPECT_FALSE(takes(tenth, "0.35"));
  EXPECT_FALSE(takes(tenth, "1e1"));  // no exponent on a grid
  // Integers that are multiples of 2.5 are those of 5.
  const FixedPoint halves = grid_of(R"({"multipleOf": 2.5, "minimum": -20})", false);
  EXPECT_TRUE(takes(halves, "-20"));
  EXPECT_TRUE(takes(halves, "15"));
  EXPECT_FALSE(takes(halves, "-25"));
  EXPECT_FALSE(takes(halves, "7"));
  EXPECT_FALSE(takes(halves, "7.5"));  // an integer has no point
  // A bound between grid points rounds inward; an exclusive one on a point skips it.
  const FixedPoint cents = grid_of(R"({"multipleOf": 0.01, "exclusiveMinimum": 0,
                                       "maximum": 99.999})",
                                   true);
  EXPECT_FALSE(takes(cents, "0"));
  EXPECT_TRUE(takes(cents, "0.01"));
  EXPECT_TRUE(takes(cents, "99.99"));
  EXPECT_FALSE(takes(cents, "100"));
  EXPECT_FALSE(takes(cents, "99.991"));
  // Integer bounds without a step: int64's ends are reachable, one past them is not.
  const FixedPoint int64 = grid_of(R"({"minimum": -9223372036854775807,
                                       "maximum": 9223372036854775807})",
                                   false);
  EXPECT_TRUE(takes(int64, "9223372036854775807"));
  EXPECT_FALSE(takes(int64, "9223372036854775808"));
  EXPECT_TRUE(takes(int64, "-9223372036854775807"));
  EXPECT_FALSE(takes(int64, "92233720368547758070"));
  // One-sided: unbounded above up to int64, a large step.
  const FixedPoint big = grid_of(R"({"multipleOf": 1000000000000000000, "minimum": 1})", false);
  EXPECT_TRUE(takes(big, "9000000000000000000"));
  EXPECT_FALSE(takes(big, "10000000000000000000"));
  EXPECT_FALSE(takes(big, "0"));
  // What the grid refuses to keep, naming the keyword.
  const char* refused[][2] = {{R"({"multipleOf": 0})", "greater than 0"},
                              {R"({"multipleOf": -2})", "greater than 0"},
                              {R"({"multipleOf": "2"})", "must be a number"},
                              {R"({"multipleOf": 1e-19})", "fraction digits"},
                              {R"({"multipleOf": 1e19})", "beyond the steps"}};
  for (const auto& [doc, message] : refused) {
    try {
      grid_of(doc, true);
      ADD_FAILURE() << doc << " compiled";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("#/multipleOf"), std::string::npos) << e.what();
    }
  }
}

}  // namespace json_fixed_point_test
}  // namespace
}  // namespace xtile::server
