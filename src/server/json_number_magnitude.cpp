#include "server/json_number_magnitude.h"

#include <algorithm>

#include "server/memo_key.h"

namespace xtile::server {

bool NumberMagnitude::step(uint8_t c, NumberPart part) {
  const bool zero_digit = c == '0';
  switch (part) {
    case NumberPart::kMinus:
    case NumberPart::kDot:
      return true;
    case NumberPart::kZero:
    case NumberPart::kInt:
      if (!nonzero_) {  // the first digit ("0" leaves the value 0, and no digit follows it)
        nonzero_ = !zero_digit;
        lead_ = 0;
        return true;
      }
      lead_ = std::min(lead_ + 1, kCap);
      // Without an exponent the digits so far are the number's least magnitude.
      return exponent_ || lead_ <= kMaxLead;
    case NumberPart::kFrac:
      if (nonzero_) return true;  // later digits do not move the first nonzero one
      if (zero_digit) {
        zeros_ = std::min(zeros_ + 1, kCap);
      } else {
        nonzero_ = true;
        lead_ = -zeros_ - 1;
      }
      return true;
    case NumberPart::kExpMark:
      in_exponent_ = true;
      return true;  // a '-' and enough digits can always follow
    case NumberPart::kExpSign:
      exp_negative_ = c == '-';
      // After '+' the exponent is at least 0: the mantissa alone must fit.
      return exp_negative_ || !nonzero_ || lead_ <= kMaxLead;
    case NumberPart::kExp:
      exp_ = exp_ > kCap / 10 ? kCap : exp_ * 10 + (c - '0');
      // A negative exponent only lowers the value, and its next digits lower it further.
      return exp_negative_ || !nonzero_ || lead_ + exp_ <= kMaxLead;
  }
  return false;
}

// Only what decides the bytes that may follow: a zero mantissa's exponent is free, and a
// negative exponent that already brings the value below 10^308 keeps it there.
void NumberMagnitude::memo_key(std::string* key) const {
  put_key(key, exponent_);
  put_key(key, nonzero_);
  put_key(key, in_exponent_);
  put_key(key, exp_negative_);
  if (!nonzero_) {
    if (!in_exponent_) put_key(key, zeros_);
    return;
  }
  if (in_exponent_ && exp_negative_ && can_end()) return;
  put_key(key, lead_);
  put_key(key, exp_);
}

}  // namespace xtile::server
