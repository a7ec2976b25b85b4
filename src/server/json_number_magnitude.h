// A JSON number's magnitude, kept below 1e308 while it is written. JSON's syntax has no range,
// but parsers read numbers into doubles: nlohmann::json (the server's own reading of a tool
// call's arguments), Go's encoding/json and Rust's serde_json refuse one beyond 1.8e308, and
// JavaScript and Python turn it into Infinity. So the grammars take a number only while some way
// to end it stays below 10^308 in magnitude, the largest power of ten a double holds (what lies
// between 1e308 and 1.8e308 is given up for a rule that reads digit by digit).
//
// How. A number's value, read exactly, is below 10^308 when the position of its first nonzero
// digit (10^lead <= |mantissa|: lead 2 for "123", -3 for "0.00123") plus its exponent is at
// most 307; a zero is always. The digits before an exponent may run past that position: only a
// negative exponent (which may be as long as it needs) then ends the number. Without an
// exponent ("type": "integer"), the 308th digit is the last.
#pragma once

#include <cstdint>
#include <string>

namespace xtile::server {

// Where a byte JSON's number grammar took lies: each names the part just read (the grammar's
// state, JsonPrefix's, and what NumberMagnitude is told).
enum class NumberPart : uint8_t {
  kMinus,    // the sign
  kZero,     // a leading 0 (no digit may follow it)
  kInt,      // an integer digit
  kDot,      // the point
  kFrac,     // a fraction digit
  kExpMark,  // 'e' or 'E'
  kExpSign,  // the exponent's sign
  kExp,      // an exponent digit
};

class NumberMagnitude {
 public:
  // The first nonzero digit's position may reach this, plus the exponent (10^307 <= |v| < 10^308).
  static constexpr int32_t kMaxLead = 307;

  NumberMagnitude() = default;
  // exponent: whether the grammar may write one (false: digits only).
  explicit NumberMagnitude(bool exponent) : exponent_(exponent) {}

  // c, which the number grammar took as `part`: false when no number below 10^308 in magnitude
  // begins with the bytes so far and c (the state is then unspecified: the caller restores it).
  bool step(uint8_t c, NumberPart part);
  // The bytes so far, ended here, are below 10^308 in magnitude.
  bool can_end() const { return !nonzero_ || lead_ + signed_exponent() <= kMaxLead; }
  // The state's key for the mask's memo (grammar_memo.h): equal keys, equal futures.
  void memo_key(std::string* key) const;

 private:
  // Counts saturate here: past a million digits the rule is approximate, which no reply reaches.
  static constexpr int32_t kCap = 1 << 20;

  int32_t signed_exponent() const { return exp_negative_ ? -exp_ : exp_; }

  bool exponent_ = true;
  bool nonzero_ = false;       // a nonzero digit came (else the value so far is 0)
  bool in_exponent_ = false;   // after the 'e'
  bool exp_negative_ = false;  // the exponent's '-'
  int32_t lead_ = 0;           // nonzero_: its position
  int32_t zeros_ = 0;          // !nonzero_: zeros after the point so far
  int32_t exp_ = 0;            // the exponent's digits so far, saturated at kCap
};

}  // namespace xtile::server
