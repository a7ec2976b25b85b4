#include "server/json_number_bounds.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace xtile::server {

namespace {
namespace json_number_bounds {  // unity batches: CMakeLists.txt

bool is_digit(uint8_t c) {
  return c >= '0' && c <= '9';
}
bool is_zero(const Magnitude& m) {
  return m.whole.empty() && m.frac.empty();
}

MagnitudeLimit limit_of(const Magnitude& value, bool exclusive) {
  MagnitudeLimit l;
  l.value = value;
  l.exclusive = exclusive;
  const size_t last = value.whole.find_last_not_of('0');
  l.whole_significant = static_cast<uint16_t>(last == std::string::npos ? 0 : last + 1);
  return l;
}

// The magnitudes every number stays below (json_number_magnitude.h): 10^308, exclusive.
MagnitudeLimit below_1e308() {
  Magnitude m;
  m.whole = "1" + std::string(308, '0');
  return limit_of(m, /*exclusive=*/true);
}

const MagnitudeLimit& capped_at_1e308() {
  static const MagnitudeLimit cap = below_1e308();
  return cap;
}

// hi, or 10^308 when that is lower.
MagnitudeLimit capped(const MagnitudeLimit& hi) {
  return compare(hi.value, capped_at_1e308().value) < 0 ? hi : capped_at_1e308();
}

}  // namespace json_number_bounds
}  // namespace

int compare(const Magnitude& a, const Magnitude& b) {
  if (a.whole.size() != b.whole.size()) return a.whole.size() < b.whole.size() ? -1 : 1;
  if (const int c = a.whole.compare(b.whole); c != 0) return c < 0 ? -1 : 1;
  // Without trailing zeros, the fractions' spelling orders as their values do.
  const int c = a.frac.compare(b.frac);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

Magnitude parse_decimal(const std::string& text, bool* negative, const std::string& at) {
  using namespace json_number_bounds;  // this file's helpers
  size_t i = 0;
  *negative = i < text.size() && text[i] == '-';
  if (*negative) ++i;
  std::string digits;
  long point = -1;  // digits before the point
  for (; i < text.size() && (is_digit(static_cast<uint8_t>(text[i])) || text[i] == '.'); ++i) {
    if (text[i] == '.')
      point = static_cast<long>(digits.size());
    else
      digits += text[i];
  }
  if (point < 0) point = static_cast<long>(digits.size());
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    const long exponent = std::stol(text.substr(i + 1));  // "+300", "-05"
    if (exponent > static_cast<long>(NumberBounds::kMaxDigits) ||
        exponent < -static_cast<long>(NumberBounds::kMaxDigits))
      fail(at, ": ", text, " is beyond the bounds xtile keeps (", NumberBounds::kMaxDigits,
           " digits either side of the point)");
    point += exponent;
  }
  Magnitude m;
  if (point <= 0) {
    m.frac = std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    m.whole = digits + std::string(static_cast<size_t>(point) - digits.size(), '0');
  } else {
    m.whole = digits.substr(0, static_cast<size_t>(point));
    m.frac = digits.substr(static_cast<size_t>(point));
  }
  m.whole.erase(0, std::min(m.whole.find_first_not_of('0'), m.whole.size()));
  m.frac.erase(std::min(m.frac.find_last_not_of('0') + 1, m.frac.size()));
  if (m.whole.size() > NumberBounds::kMaxDigits || m.frac.size() > NumberBounds::kMaxDigits)
    fail(at, ": ", text, " has more digits than xtile keeps in a bound (", NumberBounds::kMaxDigits,
         ")");
  if (is_zero(m)) *negative = false;  // -0 is 0
  return m;
}

void NumberBounds::add(const nlohmann::json& v, bool lower, bool exclusive, const std::string& at) {
  if (!v.is_number()) fail(at, ": must be a number");
  Bound b;
  b.set = true;
  b.exclusive = exclusive;
  if (v.is_number_float() && !std::isfinite(v.get<double>())) fail(at, ": must be finite");
  b.value = parse_decimal(v.dump(), &b.negative, at);
  const auto signed_order = [](const Bound& x, const Bound& y) {  // x - y's sign
    if (x.negative != y.negative) return x.negative ? -1 : 1;
    const int c = compare(x.value, y.value);
    return x.negative ? -c : c;
  };
  Bound& old = lower ? lo_ : hi_;
  const int order = old.set ? signed_order(b, old) : (lower ? 1 : -1);
  if (order == 0)
    old.exclusive = old.exclusive || exclusive;
  else if ((order > 0) == lower)  // tighter: a higher minimum, a lower maximum
    old = b;
  update_ranges();
}

// A positive number x within [lo, hi] has magnitude x; a negative one -x, so its magnitudes lie
// within [-hi, -lo]. Either range is cut at 0 (and 0 belongs to both signs: "-0" is 0).
void NumberBounds::update_ranges() {
  using namespace json_number_bounds;  // this file's helpers
  const MagnitudeLimit zero = limit_of({}, false);
  const bool lo_nonnegative = lo_.set && !lo_.negative;  // -0 is stored as 0
  const bool hi_nonpositive = hi_.set && (hi_.negative || is_zero(hi_.value));

  positive_ = {};
  positive_.lo = lo_nonnegative ? limit_of(lo_.value, lo_.exclusive) : zero;
  if (!hi_.set)
    positive_.hi = capped_at_1e308();
  else if (hi_.negative)
    positive_.empty = true;
  else
    positive_.hi = capped(limit_of(hi_.value, hi_.exclusive));

  negative_ = {};
  negative_.lo = hi_nonpositive ? limit_of(hi_.value, hi_.exclusive) : zero;
  if (!lo_.set)
    negative_.hi = capped_at_1e308();
  else if (lo_.negative || is_zero(lo_.value))
    negative_.hi = capped(limit_of(lo_.value, lo_.exclusive));
  else
    negative_.empty = true;

  for (MagnitudeRange* r : {&positive_, &negative_}) {
    if (r->empty) continue;
    const int c = compare(r->lo.value, r->hi.value);
    r->empty = c > 0 || (c == 0 && (r->lo.exclusive || r->hi.exclusive));
  }
}

bool BoundedNumber::step(uint8_t c) {
  BoundedNumber next = *this;
  if (!next.advance(c) || !next.reachable()) return false;
  *this = next;
  return true;
}

// The grammar's move on c, and the tracks' (not yet whether a number within the bounds follows).
bool BoundedNumber::advance(uint8_t c) {
  using namespace json_number_bounds;  // this file's helpers
  const auto order_of = [](uint8_t x, char y) {
    return x < static_cast<uint8_t>(y)   ? Order::kLess
           : x > static_cast<uint8_t>(y) ? Order::kGreater
                                         : Order::kEqual;
  };
  const MagnitudeLimit* limits[2] = {&range().lo, &range().hi};
  Track* tracks[2] = {&lo_, &hi_};
  switch (phase_) {
    case Phase::kStart:
      if (c == '-') {
        negative_ = true;
        phase_ = Phase::kSign;
        return true;
      }
      [[fallthrough]];
    case Phase::kSign:
      if (c == '0') {
        phase_ = Phase::kZero;
        end_whole();
        return true;
      }
      if (c < '1' || c > '9') return false;
      phase_ = Phase::kWhole;
      [[fallthrough]];
    case Phase::kWhole:
      if (c == '.') {
        end_whole();
        phase_ = Phase::kPoint;
        return true;
      }
      if (!is_digit(c)) return false;
      for (int i = 0; i < 2; ++i) {
        const std::string& whole = limits[i]->value.whole;
        if (whole_digits_ < whole.size() && tracks[i]->order == Order::kEqual)
          tracks[i]->order = order_of(c, whole[whole_digits_]);
      }
      whole_digits_ = static_cast<uint16_t>(std::min(whole_digits_ + 1, 60000));
      return true;
    case Phase::kZero:
      if (c != '.') return false;
      phase_ = Phase::kPoint;
      return true;
    case Phase::kPoint:
    case Phase::kFraction:
      if (!is_digit(c)) return false;
      phase_ = Phase::kFraction;
      for (int i = 0; i < 2; ++i) {
        if (tracks[i]->order != Order::kEqual) continue;
        const std::string& frac = limits[i]->value.frac;
        const uint16_t pos = tracks[i]->pos;
        tracks[i]->order = order_of(c, pos < frac.size() ? frac[pos] : '0');
        if (tracks[i]->order == Order::kEqual && pos < frac.size()) ++tracks[i]->pos;
      }
      return true;
  }
  return false;
}

void BoundedNumber::end_whole() {
  const MagnitudeLimit* limits[2] = {&range().lo, &range().hi};
  Track* tracks[2] = {&lo_, &hi_};
  for (int i = 0; i < 2; ++i) {
    const size_t length = limits[i]->value.whole.size();
    if (whole_digits_ != length)
      tracks[i]->order = whole_digits_ < length ? Order::kLess : Order::kGreater;
    tracks[i]->pos = 0;
  }
}

// Where the numbers that follow lie, from the order of their common digits with the limit's:
// less, all below it; greater, all above; equal, the limit lies among them.
BoundedNumber::Relation BoundedNumber::placed(Order order, bool at_start) {
  switch (order) {
    case Order::kLess:
      return {Place::kBelow, false};
    case Order::kGreater:
      return {Place::kAbove, false};
    case Order::kEqual:
      break;
  }
  return {Place::kContains, at_start};
}

// The integer part I (n digits) followed by k more digits and any fraction: the numbers in
// [I·10^k, (I+1)·10^k), with n + k = length integer digits. Against a limit B with h integer
// digits: below it when length < h (all under 10^(h-1) <= B), above it when length > h (all at
// least 10^h > B); at length h, I's order with B's first n digits decides, and when they are
// equal B lies in the range, at its start when B is I·10^k exactly.
BoundedNumber::Relation BoundedNumber::whole_relation(const MagnitudeLimit& limit, const Track& t,
                                                      uint16_t length) const {
  const size_t h = limit.value.whole.size();
  if (length != h) return {length < h ? Place::kBelow : Place::kAbove, false};
  return placed(t.order, limit.value.frac.empty() && whole_digits_ >= limit.whole_significant);
}

// The number so far is a = I.F (F's digits after the point, maybe none): what follows lies in
// [a, a + 10^-|F|). a's order with B cut to |F| fraction digits places it: less, every number
// that follows is below B; greater, above; equal, B lies in the range (at its start when B
// has no more digits).
BoundedNumber::Relation BoundedNumber::fraction_relation(const MagnitudeLimit& limit,
                                                         const Track& t) {
  return placed(t.order, t.pos >= limit.value.frac.size());
}

// Some number of the range that follows lies within [L, H]: not all below L, not all above H,
// and not only H itself when H is excluded. (When the range contains both L and H it contains
// all of [L, H], which is not empty.)
bool BoundedNumber::meets(Relation lo, Relation hi) const {
  return lo.place != Place::kBelow && hi.place != Place::kAbove &&
         !(hi.place == Place::kContains && hi.at_start && range().hi.exclusive);
}

bool BoundedNumber::reachable() const {
  if (range().empty) return false;
  switch (phase_) {
    case Phase::kStart:
    case Phase::kSign:
      return true;
    case Phase::kWhole: {
      // The integer lengths where the relations can change: the digits so far, and each limit's
      // own length and one past it.
      const MagnitudeLimit& lo = range().lo;
      const MagnitudeLimit& hi = range().hi;
      uint16_t lengths[5] = {whole_digits_, 0, 0, 0, 0};
      int count = 1;
      for (const MagnitudeLimit* l : {&lo, &hi}) {
        const auto h = static_cast<uint16_t>(l->value.whole.size());
        for (uint16_t length : {h, static_cast<uint16_t>(h + 1)})
          if (length > whole_digits_) lengths[count++] = length;
      }
      for (int i = 0; i < count; ++i)
        if (meets(whole_relation(lo, lo_, lengths[i]), whole_relation(hi, hi_, lengths[i])))
          return true;
      return false;
    }
    case Phase::kZero:
    case Phase::kPoint:
    case Phase::kFraction:
      return meets(fraction_relation(range().lo, lo_), fraction_relation(range().hi, hi_));
  }
  return false;
}

BoundedNumber::Order BoundedNumber::value_order(const MagnitudeLimit& limit, const Track& t) const {
  if (phase_ == Phase::kWhole) {
    const size_t h = limit.value.whole.size();
    if (whole_digits_ != h) return whole_digits_ < h ? Order::kLess : Order::kGreater;
    if (t.order != Order::kEqual) return t.order;
    return limit.value.frac.empty() ? Order::kEqual : Order::kLess;
  }
  // A leading 0 or a fraction: the tracks are aligned.
  if (t.order != Order::kEqual) return t.order;
  return t.pos >= limit.value.frac.size() ? Order::kEqual : Order::kLess;
}

bool BoundedNumber::can_end() const {
  if (phase_ != Phase::kWhole && phase_ != Phase::kZero && phase_ != Phase::kFraction) return false;
  const MagnitudeRange& r = range();
  if (r.empty) return false;
  const Order lo = value_order(r.lo, lo_);
  if (lo == Order::kLess || (lo == Order::kEqual && r.lo.exclusive)) return false;
  const Order hi = value_order(r.hi, hi_);
  return hi == Order::kLess || (hi == Order::kEqual && !r.hi.exclusive);
}

}  // namespace xtile::server
