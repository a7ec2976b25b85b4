// multipleOf, and bounds on integers: a JSON number kept on a grid of decimal steps, digit by
// digit and exactly. A number that must be a multiple of 0.25 (or of 5, or lie in [1, 100] as an
// integer) is read as the integer N = value · 10^scale (scale: the step's fraction digits, 2
// for 0.25), which must be a multiple of the step so scaled (25) and lie within the bounds so
// scaled, rounded inward. N is an int64: such numbers stay within ±9.2e18 / 10^scale, far beyond
// what a schema with a step or integer bounds asks for. They are written without an exponent,
// and fraction digits past the scale are zeros ("1.250" is 125 hundredths; "1.251" is refused at
// its 1).
//
// How. The digits so far leave a set of N still reachable: after the integer digits M (M > 0),
// more digits and a fraction give every N in [M·10^(j+s), (M+1)·10^(j+s) − 1] for each j >= 0
// (s the scale); after the point and t fraction digits F, the N in
// [M·10^s + F·10^(s−t), M·10^s + (F+1)·10^(s−t) − 1]. A byte is taken when one of those
// intervals holds a multiple of the step within the bounds (one division each).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "server/memo_key.h"

namespace xtile::server {

// A node's grid: N = value · 10^scale is an integer, a multiple of step, within [lo, hi].
struct FixedPoint {
  static constexpr int64_t kLimit = INT64_MAX;  // |N| at most
  static constexpr int kMaxScale = 18;          // step's fraction digits at most (10^18 < 2^63)
  static constexpr uint64_t kMaxStep = 1000000000000000000u;  // 10^18

  uint8_t scale = 0;
  uint64_t step = 1;
  int64_t lo = -kLimit, hi = kLimit;
  bool fraction = false;  // a point and fraction digits may be written (a number, not an integer)

  // A grid of multiples of multipleOf's value v (a JSON number > 0); for integers (fraction
  // false) reduced to scale 0: the integers that are multiples of v. Throws xtile::Error naming
  // `at` when v is not a positive number or has more digits than the grid keeps.
  static FixedPoint multiples_of(const nlohmann::json& v, bool fraction, const std::string& at);
  // Tightens lo (lower) or hi by a bound keyword's value v (minimum: lower, exclusiveMaximum:
  // exclusive), scaled and rounded inward, clamped to ±kLimit. Throws naming `at` when v is not
  // a finite number.
  void bound(const nlohmann::json& v, bool lower, bool exclusive, const std::string& at);
  // No multiple of step lies within [lo, hi].
  bool empty() const;
};

// Reads a number's bytes on a grid. Meant to run beside JSON's number grammar (JsonPrefix), and
// checks that grammar too for what it reads: -?(0|[1-9][0-9]*)(\.[0-9]+)?, the fraction only
// where the grid has one.
class FixedPointNumber {
 public:
  FixedPointNumber() = default;
  // grid: kept by the caller for the reader's life.
  explicit FixedPointNumber(const FixedPoint* grid) : grid_(grid) {}

  // Takes c when some number on the grid begins with the bytes so far and c. On false the state
  // is unchanged.
  bool step(uint8_t c);
  // The bytes so far are a whole number on the grid.
  bool can_end() const;
  // The state's key for the mask's memo (grammar_memo.h): equal keys, equal futures.
  void memo_key(std::string* key) const {
    put_key(key, grid_);
    put_key(key, phase_);
    put_key(key, negative_);
    put_key(key, whole_);
    put_key(key, frac_);
    put_key(key, frac_digits_);
  }

 private:
  enum class Phase : uint8_t { kStart, kSign, kZero, kWhole, kPoint, kFraction };
  // The integer part saturates here, past any N's (N <= kLimit < 10^19).
  static constexpr uint64_t kWholeCap = 10000000000000000000u;  // 10^19

  bool advance(uint8_t c);  // step() without the check of what follows
  bool reachable() const;   // some N on the grid begins with the bytes so far

  const FixedPoint* grid_ = nullptr;
  Phase phase_ = Phase::kStart;
  bool negative_ = false;
  uint64_t whole_ = 0;       // the integer part's value
  uint64_t frac_ = 0;        // the value of the fraction's first frac_digits_ digits
  uint8_t frac_digits_ = 0;  // fraction digits that count, at most the scale
};

}  // namespace xtile::server
