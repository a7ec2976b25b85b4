// Bounds on a JSON number ("type": "number" with minimum, maximum, exclusiveMinimum,
// exclusiveMaximum), kept digit by digit and exactly, in decimal: a number's prefix is taken only
// while some continuation of it lands within the bounds, and the number may end only within them.
// A bound is the decimal the schema wrote (nlohmann's shortest spelling of the double it parsed:
// "maximum": 0.1 is one tenth, not the double nearest it). A bounded number is written in
// positional notation, without an exponent: every decimal within the bounds has such a spelling,
// and an exponent's digits would move the point after the digits were judged.
//
// How. The sign picks a range of magnitudes: [L, H] for a positive number, the mirror of the
// bounds for a negative one. The digits then compare with L's and H's. In the integer part the
// final length is not known yet ("15" may still become 150), so the digits so far compare with
// the bound's first digits and the count decides the rest; from the point on they align. Each
// comparison is less / equal / greater, so the state is a few bytes whatever the number's length:
// the mask copies it once per token of the vocabulary.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "server/memo_key.h"

namespace xtile::server {

// A decimal >= 0: integer digits without leading zeros ("" for a value below 1) and fraction
// digits without trailing zeros. Ordered by value.
struct Magnitude {
  std::string whole, frac;
};
int compare(const Magnitude& a, const Magnitude& b);  // <0, 0, >0
// A JSON number's exact decimal, from its spelling: its digits for integers, nlohmann's shortest
// spelling ("0.1", "1e-05", "-1.5e+300", "100.0") for doubles. Throws xtile::Error naming `at`
// past NumberBounds::kMaxDigits digits either side of the point.
Magnitude parse_decimal(const std::string& text, bool* negative, const std::string& at);

// One end of a range of magnitudes: a lower end is 0 at least, an upper one 10^308 (exclusive)
// at most, the largest any number reaches (json_number_magnitude.h).
struct MagnitudeLimit {
  Magnitude value;
  bool exclusive = false;
  // How many of value.whole's digits lead up to its last nonzero one: value is I·10^k exactly
  // (k >= 0) when I's digits are its first ones and at least this many, and it has no fraction.
  uint16_t whole_significant = 0;
};

// The magnitudes of one sign within the bounds.
struct MagnitudeRange {
  MagnitudeLimit lo, hi;
  bool empty = false;
};

// The bounds of one schema node, tightened keyword by keyword.
class NumberBounds {
 public:
  // Bounds on integers and numbers reach at most this many digits on either side of the point
  // (a double's range: 1.8e308 and 5e-324): past it the schema is refused.
  static constexpr size_t kMaxDigits = 400;

  // Adds minimum (lower, inclusive), exclusiveMinimum, maximum or exclusiveMaximum. v must be a
  // JSON number; throws xtile::Error naming `at` otherwise.
  void add(const nlohmann::json& v, bool lower, bool exclusive, const std::string& at);
  // Some keyword was added.
  bool any() const { return lo_.set || hi_.set; }
  // No number satisfies them all.
  bool empty() const { return positive_.empty && negative_.empty; }
  const MagnitudeRange& range(bool negative) const { return negative ? negative_ : positive_; }

 private:
  struct Bound {  // a signed decimal, or nothing
    bool set = false, negative = false, exclusive = false;
    Magnitude value;
  };
  void update_ranges();

  Bound lo_, hi_;
  MagnitudeRange positive_, negative_;
};

// Reads a number's bytes under bounds. Meant to run beside JSON's number grammar (JsonPrefix),
// and checks that grammar too for what it reads: -?(0|[1-9][0-9]*)(\.[0-9]+)?.
class BoundedNumber {
 public:
  BoundedNumber() = default;
  // bounds: kept by the caller for the reader's life.
  explicit BoundedNumber(const NumberBounds* bounds) : bounds_(bounds) {}

  // Takes c when some number within the bounds begins with the bytes so far and c. On false the
  // state is unchanged.
  bool step(uint8_t c);
  // The bytes so far are a whole number within the bounds.
  bool can_end() const;
  // The state's key for the mask's memo (grammar_memo.h).
  void memo_key(std::string* key) const {
    put_key(key, bounds_);
    put_key(key, negative_);
    put_key(key, phase_);
    put_key(key, whole_digits_);
    for (const Track& t : {lo_, hi_}) {
      put_key(key, t.order);
      put_key(key, t.pos);
    }
  }

 private:
  enum class Phase : uint8_t { kStart, kSign, kWhole, kZero, kPoint, kFraction };
  enum class Order : uint8_t { kLess, kEqual, kGreater };
  // How the number so far compares with one limit. Integer part: its digits with the limit's
  // first ones (the count of digits decides the rest). After the point: the aligned values so
  // far, pos of the limit's fraction digits matched.
  struct Track {
    Order order = Order::kEqual;
    uint16_t pos = 0;
  };
  // Where the numbers that may still follow lie relative to a limit: all below it, a range that
  // contains it, all above it.
  enum class Place : uint8_t { kBelow, kContains, kAbove };
  struct Relation {
    Place place;
    bool at_start;  // kContains: the limit is the smallest of them
  };

  const MagnitudeRange& range() const { return bounds_->range(negative_); }
  bool advance(uint8_t c);  // step() without the check of what follows
  bool reachable() const;   // some number within the bounds begins with the bytes so far
  bool meets(Relation lo, Relation hi) const;
  static Relation placed(Order order, bool at_start);
  // The integer part so far: the numbers that follow with `length` integer digits.
  Relation whole_relation(const MagnitudeLimit& limit, const Track& t, uint16_t length) const;
  // After the point (or a leading 0): the numbers that follow.
  static Relation fraction_relation(const MagnitudeLimit& limit, const Track& t);
  // The number so far, ended here, against a limit.
  Order value_order(const MagnitudeLimit& limit, const Track& t) const;
  void end_whole();  // the integer part is complete: align the tracks

  const NumberBounds* bounds_ = nullptr;
  bool negative_ = false;
  Phase phase_ = Phase::kStart;
  uint16_t whole_digits_ = 0;  // saturates (any count past a limit's own acts alike)
  Track lo_, hi_;
};

}  // namespace xtile::server
