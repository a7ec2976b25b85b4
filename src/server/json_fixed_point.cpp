#include "server/json_fixed_point.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "base/error.h"
#include "server/json_number_bounds.h"

namespace xtile::server {

namespace {
using i128 = __int128;
namespace json_fixed_point {  // unity batches: CMakeLists.txt

i128 pow10(int n) {
  i128 p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

bool is_digit(uint8_t c) {
  return c >= '0' && c <= '9';
}

// A bound or step keyword's exact decimal (json_number_bounds.h): finite numbers only.
Magnitude decimal_of(const nlohmann::json& v, bool* negative, const std::string& at) {
  if (!v.is_number()) fail(at, ": must be a number");
  if (v.is_number_float() && !std::isfinite(v.get<double>())) fail(at, ": must be finite");
  return parse_decimal(v.dump(), negative, at);
}

}  // namespace json_fixed_point
}  // namespace

FixedPoint FixedPoint::multiples_of(const nlohmann::json& v, bool fraction, const std::string& at) {
  using namespace json_fixed_point;  // this file's helpers
  bool negative = false;
  const Magnitude m = decimal_of(v, &negative, at);
  if (negative || (m.whole.empty() && m.frac.empty())) fail(at, ": must be greater than 0");
  if (m.frac.size() > static_cast<size_t>(kMaxScale))
    fail(at, ": ", v.dump(), " has more than ", kMaxScale,
         " fraction digits, more than xtile keeps in a step");
  std::string digits = m.whole + m.frac;
  digits.erase(0, digits.find_first_not_of('0'));
  if (digits.size() > 19 || std::stoull(digits) > kMaxStep)
    fail(at, ": ", v.dump(), " is beyond the steps xtile keeps (its digits as an integer at most ",
         "10^18)");
  FixedPoint g;
  g.scale = static_cast<uint8_t>(m.frac.size());
  g.step = std::stoull(digits);
  g.fraction = fraction;
  if (!fraction) {  // n · 10^scale a multiple of step: n a multiple of step / gcd(step, 10^scale)
    g.step /= std::gcd(g.step, static_cast<uint64_t>(pow10(g.scale)));
    g.scale = 0;
  }
  return g;
}

// The bound's value T times 10^scale is ±(D + r), D an integer and 0 <= r < 1 (r > 0: digits
// past the scale). The lowest N within a lower bound is ceil(T) (T + 1 when T is an exclusive
// integer); the highest within an upper one floor(T) (T − 1).
void FixedPoint::bound(const nlohmann::json& v, bool lower, bool exclusive, const std::string& at) {
  using namespace json_fixed_point;  // this file's helpers
  bool negative = false;
  const Magnitude m = decimal_of(v, &negative, at);
  std::string digits = m.whole + m.frac.substr(0, std::min<size_t>(m.frac.size(), scale));
  digits.append(scale - (digits.size() - m.whole.size()), '0');
  const bool inexact = m.frac.size() > scale;
  i128 d = 0;  // saturates past any N (the result is clamped)
  for (char c : digits) d = std::min(d * 10 + (c - '0'), pow10(20));
  i128 n = negative ? -d : d;
  if (inexact) {
    if (lower)
      n += negative ? 0 : 1;
    else
      n -= negative ? 1 : 0;
  } else if (exclusive) {
    n += lower ? 1 : -1;
  }
  const i128 limit = kLimit;
  n = std::clamp(n, -limit, limit);
  if (lower)
    lo = std::max<int64_t>(lo, static_cast<int64_t>(n));
  else
    hi = std::min<int64_t>(hi, static_cast<int64_t>(n));
}

bool FixedPoint::empty() const {
  using namespace json_fixed_point;  // this file's helpers
  if (lo > hi) return true;
  const i128 s = step;
  i128 q = i128{lo} / s;  // truncates toward zero: the ceiling for negative lo
  if (lo > 0 && i128{lo} % s != 0) ++q;
  return q * s > hi;
}

bool FixedPointNumber::advance(uint8_t c) {
  using namespace json_fixed_point;  // this file's helpers
  const bool digit = is_digit(c);
  const auto first_digit = [&] {
    phase_ = c == '0' ? Phase::kZero : Phase::kWhole;
    whole_ = static_cast<uint64_t>(c - '0');
  };
  switch (phase_) {
    case Phase::kStart:
      if (c == '-') {
        negative_ = true;
        phase_ = Phase::kSign;
        return true;
      }
      [[fallthrough]];
    case Phase::kSign:
      if (!digit) return false;
      first_digit();
      return true;
    case Phase::kZero:
    case Phase::kWhole:
      if (digit && phase_ == Phase::kWhole) {
        const uint64_t d = static_cast<uint64_t>(c - '0');
        whole_ = whole_ > (kWholeCap - d) / 10 ? kWholeCap : whole_ * 10 + d;
        return true;
      }
      if (c != '.' || !grid_->fraction) return false;
      phase_ = Phase::kPoint;
      return true;
    case Phase::kPoint:
    case Phase::kFraction:
      if (!digit) return false;
      phase_ = Phase::kFraction;
      if (frac_digits_ < grid_->scale) {
        frac_ = frac_ * 10 + static_cast<uint64_t>(c - '0');
        ++frac_digits_;
        return true;
      }
      return c == '0';  // past the scale: only zeros keep N on the grid
  }
  return false;
}

bool FixedPointNumber::reachable() const {
  using namespace json_fixed_point;  // this file's helpers
  // The magnitudes of this sign within the bounds.
  const i128 top = negative_ ? -i128{grid_->lo} : i128{grid_->hi};
  const i128 bottom = std::max<i128>(0, negative_ ? -i128{grid_->hi} : i128{grid_->lo});
  const i128 s = grid_->step;
  const auto holds_multiple = [&](i128 a, i128 b) {  // within [a, b] and the bounds
    const i128 x = std::max(a, bottom), y = std::min(b, top);
    return x <= y && y / s * s >= x;
  };
  const i128 p = pow10(grid_->scale);
  switch (phase_) {
    case Phase::kStart:
    case Phase::kSign:
      return holds_multiple(0, top);
    case Phase::kZero:
      return holds_multiple(0, grid_->fraction ? p - 1 : 0);
    case Phase::kWhole:
      for (i128 a = i128{whole_} * p, b = (i128{whole_} + 1) * p - 1; a <= top;
           a *= 10, b = (b + 1) * 10 - 1)
        if (holds_multiple(a, b)) return true;
      return false;
    case Phase::kPoint:
    case Phase::kFraction: {
      const i128 span = pow10(grid_->scale - frac_digits_);
      const i128 base = i128{whole_} * p + i128{frac_} * span;
      return holds_multiple(base, base + span - 1);
    }
  }
  return false;
}

bool FixedPointNumber::step(uint8_t c) {
  FixedPointNumber next = *this;
  if (!next.advance(c) || !next.reachable()) return false;
  *this = next;
  return true;
}

bool FixedPointNumber::can_end() const {
  using namespace json_fixed_point;  // this file's helpers
  if (phase_ != Phase::kZero && phase_ != Phase::kWhole && phase_ != Phase::kFraction) return false;
  const i128 magnitude =
      i128{whole_} * pow10(grid_->scale) + i128{frac_} * pow10(grid_->scale - frac_digits_);
  const i128 n = negative_ ? -magnitude : magnitude;
  return n >= grid_->lo && n <= grid_->hi && magnitude % grid_->step == 0;
}

}  // namespace xtile::server
