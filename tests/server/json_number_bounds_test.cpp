// Bounds on non-integer numbers (server/json_number_bounds.h) against an oracle written apart:
// exact arithmetic on integers scaled by 10^18. For a prefix of a number in positional notation
// the oracle lists the values that may still follow as real intervals (before the point
// [I·10^k, (I+1)·10^k) for every k, after it [I.F, I.F + 10^-|F|), negated after a '-') and
// intersects them with the bounds. The reader must take a prefix exactly when some value is
// left, and allow the end exactly when the prefix's own value is within the bounds.
#include "server/json_number_bounds.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"

namespace xtile::server {
namespace {
namespace json_number_bounds_test {  // unity batches: CMakeLists.txt

using nlohmann::json;
using Int = __int128;
constexpr int kScale = 18;

Int pow10(int e) {
  Int p = 1;
  while (e-- > 0) p *= 10;
  return p;
}

// "-12.05" times 10^18.
Int scaled(const std::string& text) {
  const bool negative = text[0] == '-';
  Int whole = 0, frac = 0;
  int frac_digits = 0;
  bool point = false;
  for (char c : text.substr(negative ? 1 : 0)) {
    if (c == '.') {
      point = true;
    } else if (point) {
      frac = frac * 10 + (c - '0');
      ++frac_digits;
    } else {
      whole = whole * 10 + (c - '0');
    }
  }
  const Int v = whole * pow10(kScale) + frac * pow10(kScale - frac_digits);
  return negative ? -v : v;
}

struct End {
  bool set = false;  // false: unbounded
  Int v = 0;
  bool closed = true;
};
struct Bounds {
  End lo, hi;
};

// Whether the interval (lo, hi) (each end open or closed, or unbounded) meets the bounds.
bool meets(End lo, End hi, const Bounds& b) {
  const auto tighter = [](End x, End y, bool lower) {
    if (!x.set) return y;
    if (!y.set) return x;
    if (x.v == y.v) return End{true, x.v, x.closed && y.closed};
    return (x.v > y.v) == lower ? x : y;
  };
  const End l = tighter(lo, b.lo, true), h = tighter(hi, b.hi, false);
  if (!l.set || !h.set) return true;
  return l.v < h.v || (l.v == h.v && l.closed && h.closed);
}

bool within(Int v, const Bounds& b) {
  return meets({true, v, true}, {true, v, true}, b);
}

// The prefix as the grammar -?(0|[1-9][0-9]*)(\.[0-9]*)? reads it, or nothing.
struct Parsed {
  bool negative = false, point = false;
  std::string whole, frac;
};
std::optional<Parsed> parse_prefix(const std::string& s) {
  Parsed p;
  size_t i = 0;
  if (i < s.size() && s[i] == '-') p.negative = true, ++i;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) p.whole += s[i];
  if (p.whole.size() > 1 && p.whole[0] == '0') return std::nullopt;
  if (i < s.size() && s[i] == '.') {
    if (p.whole.empty()) return std::nullopt;
    p.point = true;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) p.frac += s[i];
  }
  if (i != s.size()) return std::nullopt;
  return p;
}

// Some number within the bounds begins with the prefix.
bool oracle_reachable(const Parsed& p, const Bounds& b) {
  const auto magnitudes = [&](Int a, Int c) {  // [a, c) of magnitudes, with the sign
    if (!p.negative) return meets({true, a, true}, {true, c, false}, b);
    return meets({true, -c, false}, {true, -a, true}, b);
  };
  if (p.whole.empty()) {
    if (p.negative) return meets({}, {true, 0, true}, b);
    return meets({}, {}, b);  // the empty prefix: any number
  }
  if (p.point || p.whole == "0") {
    const Int a = scaled(p.whole + "." + p.frac + (p.frac.empty() ? "0" : ""));
    return magnitudes(a, a + pow10(kScale - static_cast<int>(p.frac.size())));
  }
  const Int i = scaled(p.whole);
  for (Int k = 1;; k *= 10) {
    if (magnitudes(i * k, (i + pow10(kScale)) * k)) return true;
    if (i * k > pow10(kScale + 9)) return false;  // past every finite bound of these tests
  }
}

bool oracle_can_end(const Parsed& p, const Bounds& b) {
  if (p.whole.empty() || (p.point && p.frac.empty())) return false;
  const Int v = scaled(p.whole + (p.point ? "." + p.frac : ""));
  return within(p.negative ? -v : v, b);
}

// A random bound's spelling: up to 4 integer digits (often ending in zeros) and 3 fraction ones.
std::string random_decimal(std::mt19937& rng) {
  std::string whole, frac;
  switch (rng() % 4) {
    case 0:
      break;
    case 1:
      whole = std::to_string(1 + rng() % 9) + std::string(rng() % 3, '0');
      break;
    default:
      whole = std::to_string(1 + rng() % 9999);
  }
  const size_t frac_digits = rng() % 4;
  for (size_t i = 0; i < frac_digits; ++i) frac += static_cast<char>('0' + rng() % 10);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string text = (whole.empty() ? "0" : whole) + (frac.empty() ? "" : "." + frac);
  if (text != "0" && rng() % 3 == 0) text = "-" + text;
  return text;
}

TEST(JsonNumberBounds, AgreesWithExactArithmeticOnEveryByte) {
  std::mt19937 rng(1206);
  const char* keywords[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
  const std::string alphabet = "-.0123456789";
  int sets = 0, empty_sets = 0, steps = 0, ends = 0;
  for (int set = 0; set < 300; ++set) {
    NumberBounds bounds;
    Bounds oracle;
    std::vector<std::string> texts;
    std::string described;
    const int count = 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < count; ++j) {
      const int kw = static_cast<int>(rng() % 4);
      // A second bound on a side is sometimes the first's own value (exclusive beside inclusive).
      std::string text = random_decimal(rng);
      if (!texts.empty() && rng() % 4 == 0) text = texts.back();
      texts.push_back(text);
      described += std::string(keywords[kw]) + " " + text + "; ";
      bounds.add(json::parse(text), kw < 2, kw % 2 == 1, "#");
      const End e{true, scaled(text), kw % 2 == 0};
      End& side = kw < 2 ? oracle.lo : oracle.hi;
      if (!side.set || e.v == side.v)
        side = {true, e.v, side.set ? side.closed && e.closed : e.closed};
      else if ((e.v > side.v) == (kw < 2))
        side = e;
    }
    SCOPED_TRACE(described);
    const bool any = meets({}, {}, oracle);
    ASSERT_EQ(bounds.empty(), !any);
    if (!any) {
      ++empty_sets;
      continue;
    }
    ++sets;
    for (int walk = 0; walk < 100; ++walk) {
      BoundedNumber reader(&bounds);
      std::string prefix;
      const std::string& near = texts[rng() % texts.size()];
      while (prefix.size() < 12) {
        ASSERT_EQ(reader.can_end(), oracle_can_end(*parse_prefix(prefix), oracle)) << prefix;
        std::vector<char> taken;
        for (char c : alphabet) {
          BoundedNumber next = reader;
          const auto parsed = parse_prefix(prefix + c);
          const bool expected = parsed && oracle_reachable(*parsed, oracle);
          ASSERT_EQ(next.step(static_cast<uint8_t>(c)), expected) << prefix + c;
          ++steps;
          if (expected) taken.push_back(c);
        }
        ASSERT_FALSE(reader.step('e')) << "an exponent under bounds";
        if (taken.empty()) {
          // No dead end: a prefix the reader took either continues or is a whole number.
          ASSERT_TRUE(reader.can_end()) << prefix;
          break;
        }
        if (reader.can_end() && rng() % 6 == 0) {
          ++ends;
          break;
        }
        // Half the time follow a bound's own digits, where the decisions are close.
        char c = taken[rng() % taken.size()];
        if (rng() % 2 == 0 && prefix.size() < near.size()) {
          for (char t : taken) c = t == near[prefix.size()] ? t : c;
        }
        ASSERT_TRUE(reader.step(static_cast<uint8_t>(c)));
        prefix += c;
      }
    }
  }
  std::printf("%d bound sets (%d empty), %d bytes judged, %d numbers ended\n", sets, empty_sets,
              steps, ends);
  EXPECT_GT(sets, 200);
  EXPECT_GT(empty_sets, 5);
  EXPECT_GT(ends, 1000);
  EXPECT_GT(steps, 100000);
}

// head followed by `zeros` zeros.
std::string digits(const char* head, size_t zeros) {
  return std::string(head).append(zeros, '0');
}

bool takes(const NumberBounds& bounds, const std::string& text) {
  BoundedNumber reader(&bounds);
  for (char c : text)
    if (!reader.step(static_cast<uint8_t>(c))) return false;
  return reader.can_end();
}

NumberBounds bounds_of(const char* doc) {
  NumberBounds b;
  const json keywords = json::parse(doc);
  for (const auto& [k, v] : keywords.items())
    b.add(v, k.find("inimum") != std::string::npos, k.rfind("exclusive", 0) == 0, "#/" + k);
  return b;
}

TEST(JsonNumberBounds, ReadsBoundsAsTheDecimalsTheSchemaWrote) {
  // A double's shortest spelling: 0.1 is one tenth, 1e-05 is 0.00001.
  const NumberBounds tenth = bounds_of(R"({"maximum": 0.1})");
  EXPECT_TRUE(takes(tenth, "0.1"));
  EXPECT_TRUE(takes(tenth, "0.1000"));
  EXPECT_FALSE(takes(tenth, "0.10000000000000000001"));
  EXPECT_TRUE(takes(tenth, "-5000"));
  const NumberBounds small = bounds_of(R"({"exclusiveMinimum": 0, "maximum": 1e-05})");
  EXPECT_TRUE(takes(small, "0.00001"));
  EXPECT_TRUE(takes(small, "0.000000000003"));
  EXPECT_FALSE(takes(small, "0.000011"));
  EXPECT_FALSE(takes(small, "0"));
  EXPECT_FALSE(takes(small, "0.0000"));
  EXPECT_FALSE(takes(small, "-0"));
  // Far ends: 1.5e+300 is 15 and 299 zeros; uint64's largest; -0.0 is 0.
  const NumberBounds big = bounds_of(R"({"maximum": 1.5e300})");
  EXPECT_TRUE(takes(big, digits("15", 299)));
  EXPECT_TRUE(takes(big, digits("15", 299) + ".0"));
  EXPECT_FALSE(takes(big, digits("15", 299) + ".01"));
  EXPECT_FALSE(takes(big, digits("16", 299)));
  EXPECT_TRUE(takes(big, digits("99", 298)));
  EXPECT_FALSE(takes(big, digits("1", 301)));
  const NumberBounds top = bounds_of(R"({"minimum": 18446744073709551615})");
  EXPECT_TRUE(takes(top, "18446744073709551615"));
  EXPECT_FALSE(takes(top, "18446744073709551614.9"));
  EXPECT_TRUE(takes(top, "100000000000000000000"));
  const NumberBounds nonnegative = bounds_of(R"({"minimum": -0.0})");
  EXPECT_TRUE(takes(nonnegative, "0"));
  EXPECT_TRUE(takes(nonnegative, "-0.000"));  // -0 is 0, as with integer bounds
  EXPECT_FALSE(takes(nonnegative, "-0.001"));
  // The tighter of two bounds on a side; at the same value the exclusive one.
  const NumberBounds both = bounds_of(R"({"minimum": 2, "exclusiveMinimum": 2, "maximum": 3})");
  EXPECT_FALSE(takes(both, "2"));
  EXPECT_TRUE(takes(both, "2.01"));
  const NumberBounds tighter = bounds_of(R"({"minimum": 1.5, "exclusiveMinimum": 1})");
  EXPECT_FALSE(takes(tighter, "1.25"));
  EXPECT_TRUE(takes(tighter, "1.5"));
  // Positional notation only.
  EXPECT_FALSE(takes(tenth, "1e-2"));
  EXPECT_TRUE(bounds_of(R"({"minimum": 1, "exclusiveMaximum": 1})").empty());
  EXPECT_FALSE(bounds_of(R"({"minimum": 1, "maximum": 1})").empty());
  NumberBounds b;
  try {
    b.add(json("5"), true, false, "#/properties/a/minimum");
    ADD_FAILURE() << "a string as a bound";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("#/properties/a/minimum"), std::string::npos);
  }
}

}  // namespace json_number_bounds_test
}  // namespace
}  // namespace xtile::server
