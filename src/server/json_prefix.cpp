#include "server/json_prefix.h"

namespace xtile::server {

namespace {

bool is_whitespace(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool JsonPrefix::feed(uint8_t c) {
  JsonPrefix before = *this;
  if (step(c)) return true;
  *this = std::move(before);
  return false;
}

bool JsonPrefix::accepts(std::string_view s) const {
  JsonPrefix next = *this;
  for (char c : s)
    if (!next.step(static_cast<uint8_t>(c))) return false;
  return true;
}

bool JsonPrefix::take(std::string_view s) {
  JsonPrefix next = *this;
  for (char c : s)
    if (!next.step(static_cast<uint8_t>(c))) return false;
  *this = std::move(next);
  return true;
}

bool JsonPrefix::step(uint8_t c) {
  switch (lexeme_) {
    case Lexeme::kString:
      return string_byte(c);
    case Lexeme::kLiteral:
      if (c != static_cast<uint8_t>(*literal_)) return false;
      if (*++literal_ == '\0') {
        lexeme_ = Lexeme::kNone;
        value_done();
      }
      return true;
    case Lexeme::kNumber:
      if (number_byte(c)) return true;
      // The byte ends the number, if the number may end here, and is then read in the
      // container's context (a ',', a close or whitespace).
      if (!number_can_end()) return false;
      lexeme_ = Lexeme::kNone;
      value_done();
      return structural(c);
    case Lexeme::kNone:
      return structural(c);
  }
  return false;
}

bool JsonPrefix::structural(uint8_t c) {
  if (is_whitespace(c)) {
    if (expect_ == Expect::kDone) return false;
    bool& seen = c == '\n' ? newline_ : return_;
    if (c == '\n' || c == '\r') {
      if (seen) return false;
      seen = true;
      return true;
    }
    return ++blanks_ <= kMaxBlanks;
  }
  blanks_ = 0;
  newline_ = return_ = false;
  switch (expect_) {
    case Expect::kStart:
      return c == '{' && open('{');
    case Expect::kValue:
      return value_start(c);
    case Expect::kValueOrClose:
      if (c == ']') return close();
      return value_start(c);
    case Expect::kKeyOrClose:
      if (c == '}') return close();
      [[fallthrough]];
    case Expect::kKey:
      if (c != '"') return false;
      lexeme_ = Lexeme::kString;
      string_is_key_ = true;
      return true;
    case Expect::kColon:
      if (c != ':') return false;
      expect_ = Expect::kValue;
      return true;
    case Expect::kCommaOrClose:
      if (c == ',') {
        expect_ = stack_.back() == '{' ? Expect::kKey : Expect::kValue;
        return true;
      }
      if (c == (stack_.back() == '{' ? '}' : ']')) return close();
      return false;
    case Expect::kDone:
      return false;
  }
  return false;
}

bool JsonPrefix::open(char bracket) {
  if (static_cast<int>(stack_.size()) >= kMaxDepth) return false;
  stack_.push_back(bracket);
  expect_ = bracket == '{' ? Expect::kKeyOrClose : Expect::kValueOrClose;
  return true;
}

bool JsonPrefix::close() {
  stack_.pop_back();
  value_done();
  return true;
}

bool JsonPrefix::value_start(uint8_t c) {
  switch (c) {
    case '{':
    case '[':
      return open(static_cast<char>(c));
    case '"':
      lexeme_ = Lexeme::kString;
      string_is_key_ = false;
      return true;
    case '-':
      lexeme_ = Lexeme::kNumber;
      number_ = Number::kMinus;
      return true;
    case 't':
      literal_ = "rue";
      break;
    case 'f':
      literal_ = "alse";
      break;
    case 'n':
      literal_ = "ull";
      break;
    default:
      if (c < '0' || c > '9') return false;
      lexeme_ = Lexeme::kNumber;
      number_ = c == '0' ? Number::kZero : Number::kInt;
      return true;
  }
  lexeme_ = Lexeme::kLiteral;
  return true;
}

void JsonPrefix::value_done() {
  expect_ = stack_.empty() ? Expect::kDone : Expect::kCommaOrClose;
}

bool JsonPrefix::string_byte(uint8_t c) {
  if (utf8_left_ > 0) {
    if (c < utf8_lo_ || c > utf8_hi_) return false;
    --utf8_left_;
    utf8_lo_ = 0x80;
    utf8_hi_ = 0xbf;
    return true;
  }
  if (hex_left_ > 0) return hex_byte(c);
  switch (surrogate_) {
    case Surrogate::kNone:
      break;
    case Surrogate::kNeedBackslash:  // a high surrogate's escape needs a low one next
      if (c != '\\') return false;
      surrogate_ = Surrogate::kNeedU;
      return true;
    case Surrogate::kNeedU:
      if (c != 'u') return false;
      surrogate_ = Surrogate::kNeedLow;
      hex_left_ = 4;
      hex_value_ = 0;
      return true;
    case Surrogate::kNeedLow:
      break;  // not reached: hex_left_ > 0 until the low surrogate is read
  }
  if (escape_) {
    escape_ = false;
    if (c == 'u') {
      hex_left_ = 4;
      hex_value_ = 0;
      return true;
    }
    return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
           c == 't';
  }
  if (c == '"') {
    lexeme_ = Lexeme::kNone;
    if (string_is_key_)
      expect_ = Expect::kColon;
    else
      value_done();
    return true;
  }
  if (c == '\\') {
    escape_ = true;
    return true;
  }
  if (c < 0x20) return false;  // control characters must be escaped
  if (c < 0x80) return true;
  // A UTF-8 lead byte: the count of continuation bytes, and the first one's range where the
  // shortest form, the surrogate gap or U+10FFFF narrow it (RFC 3629's table).
  if (c >= 0xc2 && c <= 0xdf) {
    utf8_left_ = 1;
  } else if (c >= 0xe0 && c <= 0xef) {
    utf8_left_ = 2;
    if (c == 0xe0) utf8_lo_ = 0xa0;
    if (c == 0xed) utf8_hi_ = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    utf8_left_ = 3;
    if (c == 0xf0) utf8_lo_ = 0x90;
    if (c == 0xf4) utf8_hi_ = 0x8f;
  } else {
    return false;
  }
  return true;
}

// One digit of a \uXXXX escape. UTF-16 surrogates must come in pairs (a high D800-DBFF escape,
// then a low DC00-DFFF one): strict parsers (nlohmann::json, Rust's serde_json) reject a lone
// one, so it is refused at the first digit that makes it certain.
bool JsonPrefix::hex_byte(uint8_t c) {
  const int d = hex_digit(c);
  if (d < 0) return false;
  hex_value_ = static_cast<uint16_t>(hex_value_ * 16 + d);
  --hex_left_;
  const bool low_needed = surrogate_ == Surrogate::kNeedLow;
  if (hex_left_ == 3 && low_needed && hex_value_ != 0xd) return false;
  if (hex_left_ == 2) {
    const bool low_range = hex_value_ >= 0xdc && hex_value_ <= 0xdf;
    if (low_needed != low_range) return false;
  }
  if (hex_left_ == 0) {
    if (low_needed)
      surrogate_ = Surrogate::kNone;
    else if (hex_value_ >= 0xd800 && hex_value_ <= 0xdbff)
      surrogate_ = Surrogate::kNeedBackslash;
  }
  return true;
}

bool JsonPrefix::number_byte(uint8_t c) {
  const bool digit = c >= '0' && c <= '9';
  const bool exp_mark = c == 'e' || c == 'E';
  switch (number_) {
    case Number::kMinus:
      if (!digit) return false;
      number_ = c == '0' ? Number::kZero : Number::kInt;
      return true;
    case Number::kZero:  // no digit after a leading zero
    case Number::kInt:
      if (digit && number_ == Number::kInt) return true;
      if (c == '.')
        number_ = Number::kDot;
      else if (exp_mark)
        number_ = Number::kExpMark;
      else
        return false;
      return true;
    case Number::kDot:
      if (!digit) return false;
      number_ = Number::kFrac;
      return true;
    case Number::kFrac:
      if (digit) return true;
      if (!exp_mark) return false;
      number_ = Number::kExpMark;
      return true;
    case Number::kExpMark:
      if (c == '+' || c == '-')
        number_ = Number::kExpSign;
      else if (digit)
        number_ = Number::kExp;
      else
        return false;
      return true;
    case Number::kExpSign:
    case Number::kExp:
      if (!digit) return false;
      number_ = Number::kExp;
      return true;
  }
  return false;
}

bool JsonPrefix::number_can_end() const {
  return number_ == Number::kZero || number_ == Number::kInt || number_ == Number::kFrac ||
         number_ == Number::kExp;
}

}  // namespace xtile::server
