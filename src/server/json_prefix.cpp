#include "server/json_prefix.h"

#include <algorithm>
#include <bit>

#include "tokenizer/utf8.h"

namespace xtile::server {

namespace {
namespace json_prefix {  // unity batches: CMakeLists.txt

bool is_whitespace(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace json_prefix
}  // namespace

JsonPrefix::JsonPrefix(const JsonSchema* schema) : schema_(schema) {
  if (schema_) node_ = schema_->root();
}

// Every field a later step reads. Those that only one kind of lexeme reads, and that are set
// when it starts, go in only while it is read (so that, say, the states inside a plain string
// are the same whatever number came before it, and the paths of a union's branches merge once
// its value has ended): a number's kind and digits, a string's bounds and length, a key's or an
// enum value's candidates, a literal's rest, a format's reader; the node a value will take only
// where a value comes next.
void JsonPrefix::memo_key(std::string* key) const {
  for (auto v : {static_cast<uint8_t>(expect_), static_cast<uint8_t>(lexeme_),
                 static_cast<uint8_t>(surrogate_), static_cast<uint8_t>(string_is_key_),
                 static_cast<uint8_t>(escape_), hex_left_, utf8_left_, utf8_lo_, utf8_hi_, blanks_,
                 static_cast<uint8_t>(newline_), static_cast<uint8_t>(return_)})
    put_key(key, v);
  put_key(key, hex_value_);
  put_key(key, schema_);
  const bool value_next =
      lexeme_ == Lexeme::kNone &&
      (expect_ == Expect::kStart || expect_ == Expect::kValue || expect_ == Expect::kValueOrClose);
  if (value_next) put_key(key, node_);
  const bool in_number = lexeme_ == Lexeme::kNumber;
  if (in_number)
    for (auto v : {static_cast<uint8_t>(number_), static_cast<uint8_t>(integer_only_),
                   static_cast<uint8_t>(on_grid_), static_cast<uint8_t>(decimal_bounded_)})
      put_key(key, v);
  const bool in_key = lexeme_ == Lexeme::kString && string_is_key_;
  if (lexeme_ == Lexeme::kValue || in_key)
    for (uint16_t v : {cand_lo_, cand_hi_, cand_pos_}) put_key(key, v);
  if (lexeme_ == Lexeme::kValue) put_key(key, value_node_);
  if ((lexeme_ == Lexeme::kString && !string_is_key_) || lexeme_ == Lexeme::kPattern) {
    put_key(key, str_min_);
    put_key(key, str_max_);
    if (str_min_ != 0 || str_max_ != UINT32_MAX)
      put_key(key, lexeme_ == Lexeme::kString ? str_len_ : pattern_len_);
  }
  if (on_grid_ && in_number) grid_number_.memo_key(key);
  if (decimal_bounded_ && in_number) decimal_.memo_key(key);
  if (!on_grid_ && !decimal_bounded_ && in_number) magnitude_.memo_key(key);
  if (lexeme_ == Lexeme::kLiteral) put_key(key, literal_);
  // Unique arrays of strings and integers: their elements (what a later element is checked
  // against), and the element being read, whole: its text joins the set at its close, so two
  // texts are two states even where no byte before that tells them apart (a key that left out
  // a text no element begins made the memo's step past a closing quote take its
  // representative's text: MaskThroughTheMemoKeepsUniqueTexts). Inside such a string each byte
  // is then a new memo state; the mask runs only when a drawn token is refused.
  put_key(key, unique_string_);
  put_key(key, unique_texts_.size());
  for (const auto& [depth, text] : unique_texts_) {
    put_key(key, depth);
    put_key(key, text.size());
    key->append(text);
  }
  put_key(key, unique_number_);
  if (unique_string_ || unique_number_) {
    put_key(key, unique_text_.size());
    key->append(unique_text_);
  }
  if (lexeme_ == Lexeme::kValue) put_key(key, unique_element_);
  if (lexeme_ == Lexeme::kFormat) format_.memo_key(key);
  put_key(key, stack_.size());
  key->append(stack_);
  frames_.memo_key(key);
  // Last, as its length varies with its stacks.
  put_key(key, pattern_.has_value());
  if (pattern_) {
    put_key(key, pattern_->grammar());
    pattern_->memo_key(key);
  }
  // The other paths, each key with its length (they vary).
  put_key(key, alternatives_.size());
  for (const JsonPrefix& a : alternatives_) {
    std::string k;
    a.memo_key(&k);
    put_key(key, k.size());
    key->append(k);
  }
}

// Every path takes c or is dropped, and the paths a union's value opened join them; this
// object becomes the first alive, and a path in the same state as an earlier one is merged.
bool JsonPrefix::step(uint8_t c) {
  std::vector<JsonPrefix> others = std::move(alternatives_);
  alternatives_.clear();
  const bool ok = step_path(c);
  if (others.empty() && spawned_.empty()) return ok;  // one path: the common case
  std::vector<JsonPrefix> paths = std::move(spawned_);
  spawned_.clear();
  for (JsonPrefix& p : others) {
    const bool alive = p.step_path(c);
    std::vector<JsonPrefix> opened = std::move(p.spawned_);
    p.spawned_.clear();
    if (alive) paths.push_back(std::move(p));
    for (JsonPrefix& o : opened) paths.push_back(std::move(o));
  }
  if (!ok) {
    if (paths.empty()) return false;
    *this = std::move(paths.front());
    paths.erase(paths.begin());
  }
  // Equal memo keys, equal futures: one such path is enough.
  std::vector<std::string> keys(1);
  memo_key(&keys[0]);
  for (JsonPrefix& p : paths) {
    std::string key;
    p.memo_key(&key);
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    keys.push_back(std::move(key));
    alternatives_.push_back(std::move(p));
  }
  return true;
}

bool JsonPrefix::step_path(uint8_t c) {
  switch (lexeme_) {
    case Lexeme::kString: {
      const bool key = string_is_key_ && schema_;
      // A byte outside an escape or a UTF-8 sequence starts a character (or, '"', ends the
      // string): a value's length bounds are kept there.
      const bool starts = !string_is_key_ && utf8_left_ == 0 && hex_left_ == 0 &&
                          surrogate_ == Surrogate::kNone && !escape_;
      if (starts && (c == '"' ? str_len_ < str_min_ : str_len_ >= str_max_)) return false;
      if (unique_string_ && !unique_string_byte(c)) return false;
      if (!string_byte(c)) return false;
      if (starts && c != '"') ++str_len_;
      if (unique_string_) {
        if (lexeme_ == Lexeme::kString) {
          unique_text_.push_back(static_cast<char>(c));
        } else {  // closed: one more element of the array
          unique_text_done();
        }
      }
      if (!key) return true;
      key_byte(c);
      return lexeme_ == Lexeme::kString ? key_allowed() : key_done();
    }
    case Lexeme::kValue:
      return value_byte(c);
    case Lexeme::kFormat:
      if (c != '"') return format_.step(c);
      if (!format_.complete()) return false;
      lexeme_ = Lexeme::kNone;
      value_done();
      return true;
    case Lexeme::kPattern:
      return pattern_byte(c);
    case Lexeme::kLiteral:
      if (c != static_cast<uint8_t>(*literal_)) return false;
      if (*++literal_ == '\0') {
        lexeme_ = Lexeme::kNone;
        value_done();
      }
      return true;
    case Lexeme::kNumber:
      if (number_byte(c)) {
        if (unique_number_) {
          if (!unique_digit(c)) return false;
          unique_text_.push_back(static_cast<char>(c));
        }
        return within_bounds(c);
      }
      // The byte ends the number, if the number may end here, and is then read in the
      // container's context (a ',', a close or whitespace).
      if (!number_can_end()) return false;
      if (unique_number_) {
        if (!unique_text_fresh()) return false;
        unique_text_done();
      }
      lexeme_ = Lexeme::kNone;
      value_done();
      return structural(c);
    case Lexeme::kNone:
      return structural(c);
  }
  return false;
}

bool JsonPrefix::structural(uint8_t c) {
  using namespace json_prefix;  // this file's helpers
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
      return c == '{' && value_start(c);
    case Expect::kValue:
      return value_start(c);
    case Expect::kValueOrClose:
      if (c == ']') return close();
      if (schema_) {  // the first element
        if (schema_->node(frames_.back().node).max_items == 0) return false;
        frames_.back().seen = 1;
      }
      return value_start(c);
    case Expect::kKeyOrClose:
      if (c == '}') return close();
      [[fallthrough]];
    case Expect::kKey:
      if (c != '"') return false;
      lexeme_ = Lexeme::kString;
      string_is_key_ = true;
      if (!schema_) return true;
      cand_lo_ = 0;
      cand_hi_ = static_cast<uint16_t>(schema_->node(frames_.back().node).names.size());
      cand_pos_ = 0;
      key_byte(c);
      return key_allowed();
    case Expect::kColon:
      if (c != ':') return false;
      expect_ = Expect::kValue;
      if (schema_) node_ = frames_.back().value;
      return true;
    case Expect::kCommaOrClose:
      if (c == ',') {
        // A comma needs a property to follow: with a schema, one not yet written or any name.
        if (schema_ && stack_.back() == '{' && !more_properties()) return false;
        expect_ = stack_.back() == '{' ? Expect::kKey : Expect::kValue;
        if (schema_ && stack_.back() == '[') {  // an array's frame counts its elements in `seen`
          const SchemaNode& n = schema_->node(frames_.back().node);
          if (frames_.back().seen >= n.max_items) return false;
          if (n.unique_items && !n.unique_texts &&  // every distinct value written
              std::popcount(frames_.back().unique) >= schema_->node(n.items).value_classes)
            return false;
          node_ = n.item_node(frames_.back().seen++);
        }
        return true;
      }
      if (c == (stack_.back() == '{' ? '}' : ']')) return close();
      return false;
    case Expect::kDone:
      return false;
  }
  return false;
}

bool JsonPrefix::open(char bracket, int node) {
  if (static_cast<int>(stack_.size()) >= kMaxDepth) return false;
  stack_.push_back(bracket);
  expect_ = bracket == '{' ? Expect::kKeyOrClose : Expect::kValueOrClose;
  if (schema_) {
    frames_.push_back(Frame{node, 0, 0});
    if (bracket == '[') node_ = schema_->node(node).item_node(0);
  }
  return true;
}

bool JsonPrefix::close() {
  if (schema_) {
    const SchemaNode& n = schema_->node(frames_.back().node);
    const uint64_t seen = frames_.back().seen;
    const bool object_done = (seen & n.required) == n.required &&
                             static_cast<uint32_t>(std::popcount(seen)) >= n.min_properties;
    if (stack_.back() == '{' ? !object_done : seen < n.min_items) return false;
    frames_.pop_back();
    if (!unique_texts_.empty())  // a unique array of strings closed: its elements go
      std::erase_if(unique_texts_,
                    [&](const auto& e) { return e.first == static_cast<uint32_t>(stack_.size()); });
  }
  stack_.pop_back();
  value_done();
  return true;
}

// In schema mode a value of node_ may be one of several branches of a union: the first is
// read on this path, each other on a path of its own (a copy from here, in spawned_).
bool JsonPrefix::value_start(uint8_t c) {
  if (!schema_) return value_start_as(c, 0);
  int options[JsonSchema::kMaxAlike];
  const int count = schema_->starts(node_, c, options);
  if (count == 0) return false;
  for (int k = 1; k < count; ++k) {
    JsonPrefix other = *this;
    other.spawned_.clear();
    if (other.value_start_as(c, options[k])) spawned_.push_back(std::move(other));
  }
  if (value_start_as(c, options[0])) return true;
  if (spawned_.empty()) return false;
  // This branch refused c where another took it: that one continues here.
  std::vector<JsonPrefix> rest(std::make_move_iterator(spawned_.begin() + 1),
                               std::make_move_iterator(spawned_.end()));
  JsonPrefix first = std::move(spawned_.front());
  *this = std::move(first);
  spawned_ = std::move(rest);
  return true;
}

bool JsonPrefix::value_start_as(uint8_t c, int node) {
  str_min_ = 0;
  str_max_ = UINT32_MAX;
  on_grid_ = false;
  decimal_bounded_ = false;
  if (schema_) {
    const SchemaNode& n = schema_->node(node);
    if (!n.values.empty()) {  // enum / const: the value's bytes are one of the encodings
      lexeme_ = Lexeme::kValue;
      value_node_ = node;
      unique_element_ = !stack_.empty() && stack_.back() == '[' &&
                        schema_->node(frames_.back().node).unique_items &&
                        !schema_->node(frames_.back().node).unique_texts;
      cand_lo_ = 0;
      cand_hi_ = static_cast<uint16_t>(n.values.size());
      cand_pos_ = 0;
      return value_byte(c);
    }
    integer_only_ = !(n.types & kTypeNumber);
    str_min_ = n.min_length;
    str_max_ = n.max_length;
    on_grid_ = n.grid.has_value();
    if (on_grid_) grid_number_ = FixedPointNumber(&*n.grid);
    decimal_bounded_ = n.number_bounds.any();
    if (decimal_bounded_) decimal_ = BoundedNumber(&n.number_bounds);
  }
  magnitude_ = NumberMagnitude(/*exponent=*/!integer_only_);
  str_len_ = 0;
  pattern_len_ = 0;
  unique_number_ = schema_ && (c == '-' || (c >= '0' && c <= '9')) && !stack_.empty() &&
                   stack_.back() == '[' && schema_->node(frames_.back().node).unique_texts;
  if (unique_number_) {
    unique_text_.clear();
    if (!unique_digit(c)) return false;
    unique_text_.push_back(static_cast<char>(c));
  }
  switch (c) {
    case '{':
    case '[':
      return open(static_cast<char>(c), node);
    case '"':
      lexeme_ = Lexeme::kString;
      string_is_key_ = false;
      unique_string_ = schema_ && !stack_.empty() && stack_.back() == '[' &&
                       schema_->node(frames_.back().node).unique_texts;
      unique_text_.clear();
      if (schema_ && schema_->node(node).format != StringFormat::kNone) {
        lexeme_ = Lexeme::kFormat;
        format_ = FormatReader(schema_->node(node).format);
      } else if (schema_ && schema_->node(node).pattern) {
        lexeme_ = Lexeme::kPattern;
        pattern_.emplace(schema_->node(node).pattern.get());
      }
      return true;
    case '-':
      lexeme_ = Lexeme::kNumber;
      number_ = Number::kMinus;
      return within_bounds(c);
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
      return within_bounds(c);
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
// A string element of a unique array of strings, spelled one way only: characters as
// themselves, '"' and '\\' and the controls that have one by their short escape, the other
// controls as \u00xx in lowercase (no "\/", no \u for what has another spelling). The closing
// quote is refused where the text is an earlier element's; anywhere else a character can follow
// (no maxLength), so an element equal so far to an earlier one goes on to differ.
bool JsonPrefix::unique_string_byte(uint8_t c) {
  if (escape_) return c != '/';
  if (hex_left_ > 0) {
    const int digit = 4 - hex_left_;  // which of the four
    if (digit < 2) return c == '0';
    if (digit == 2) return c == '0' || c == '1';
    const int d = tok_internal::hex_digit_value(c);
    const int cp = hex_value_ * 16 + d;
    const bool short_escape = cp == '\b' || cp == '\t' || cp == '\n' || cp == '\f' || cp == '\r';
    return d >= 0 && !(c >= 'A' && c <= 'F') && !short_escape;
  }
  if (c != '"' || utf8_left_ > 0) return true;
  return unique_text_fresh();
}

// An integer element of a unique array of integers (no bounds: every prefix has longer
// continuations): "-0" is 0, so a 0 after '-' is refused, and a 0 first where 0 is written
// (nothing can follow it). The byte that ends the number is refused where its digits are an
// earlier element's.
bool JsonPrefix::unique_digit(uint8_t c) const {
  if (c != '0') return true;
  if (unique_text_ == "-") return false;
  if (!unique_text_.empty()) return true;
  const std::pair<uint32_t, std::string> zero(static_cast<uint32_t>(stack_.size()), "0");
  return !std::binary_search(unique_texts_.begin(), unique_texts_.end(), zero);
}

bool JsonPrefix::unique_text_fresh() const {
  const std::pair<uint32_t, std::string> e(static_cast<uint32_t>(stack_.size()), unique_text_);
  return !std::binary_search(unique_texts_.begin(), unique_texts_.end(), e);
}

void JsonPrefix::unique_text_done() {
  std::pair<uint32_t, std::string> e(static_cast<uint32_t>(stack_.size()), std::move(unique_text_));
  unique_texts_.insert(std::lower_bound(unique_texts_.begin(), unique_texts_.end(), e),
                       std::move(e));
  unique_text_.clear();
  unique_string_ = unique_number_ = false;
}

bool JsonPrefix::hex_byte(uint8_t c) {
  const int d = tok_internal::hex_digit_value(c);
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

// A string with a pattern: JSON's rules (string_byte) and the pattern's, which reads the string's
// characters. Raw bytes go to the pattern's engine as they are (it reads UTF-8 itself); a simple
// escape gives its character; a \u escape is taken only for a control character (U+0000 to
// U+001F, which JSON must escape): every other character is written as itself, so that each
// byte's fate is known when it comes (no dead end inside an escape).
bool JsonPrefix::pattern_byte(uint8_t c) {
  const bool in_utf8 = utf8_left_ > 0, in_hex = hex_left_ > 0, after_backslash = escape_;
  if (!in_utf8 && !in_hex && !after_backslash && c == '"' &&
      (!pattern_->may_end() || pattern_len_ < str_min_))
    return false;
  lexeme_ = Lexeme::kString;  // string_byte's rules, which end the string at its quote
  const bool json_ok = string_byte(c);
  if (lexeme_ == Lexeme::kString) lexeme_ = Lexeme::kPattern;
  if (!json_ok) return false;
  if (lexeme_ == Lexeme::kNone) {  // the closing quote
    pattern_.reset();
    return true;
  }
  if (in_utf8 || (!in_hex && !after_backslash && c != '\\')) {
    if (!pattern_->try_step(c)) return false;
    if (utf8_left_ == 0) ++pattern_len_;  // the character is whole
    return pattern_room(*pattern_, pattern_len_);
  }
  // A backslash only when some escape gives a character the pattern takes here (with room for
  // the rest of a match), and a \u only when some control character is one: else the escape
  // would be a dead end.
  const auto fits_control = [&] {
    for (uint8_t cp = 0; cp < 0x20; ++cp)
      if (pattern_fits(cp)) return true;
    return false;
  };
  if (!in_hex && !after_backslash)
    return fits_control() || pattern_fits('"') || pattern_fits('\\') || pattern_fits('/');
  if (after_backslash) {
    switch (c) {
      case 'u':
        return fits_control();  // the digits decide which
      case 'b':
        return pattern_char('\b');
      case 'f':
        return pattern_char('\f');
      case 'n':
        return pattern_char('\n');
      case 'r':
        return pattern_char('\r');
      case 't':
        return pattern_char('\t');
      default:  // '"', '\\', '/'
        return pattern_char(c);
    }
  }
  // A digit of \u00XX with XX below 0x20: '0', '0', '0' or '1', then any; at the third, some
  // of the sixteen characters it leaves must be the pattern's.
  switch (hex_left_) {
    case 3:
    case 2:
      return hex_value_ == 0;
    case 1: {
      if (hex_value_ > 1) return false;
      for (uint32_t cp = hex_value_ * 16u; cp < hex_value_ * 16u + 16u; ++cp)
        if (pattern_fits(static_cast<uint8_t>(cp))) return true;
      return false;
    }
    default:
      return pattern_char(static_cast<uint8_t>(hex_value_));
  }
}

// maxLength beside a pattern: `read` characters and the fewest that complete a match from
// `engine` (a character being read counted among those) fit within it.
bool JsonPrefix::pattern_room(const GbnfPrefix& engine, uint32_t read) const {
  return str_max_ == UINT32_MAX ||
         uint64_t{read} + engine.shortest_completion() <= uint64_t{str_max_};
}

// The one-byte character ch (an escape's) would be taken, with room left.
bool JsonPrefix::pattern_fits(uint8_t ch) const {
  GbnfPrefix probe = *pattern_;
  return probe.try_step(ch) && pattern_room(probe, pattern_len_ + 1);
}

bool JsonPrefix::pattern_char(uint8_t ch) {
  if (!pattern_->try_step(ch)) return false;
  ++pattern_len_;
  return pattern_room(*pattern_, pattern_len_);
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
      if (integer_only_) return false;
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
      if (digit) return true;  // (integer_only_: never here)
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

// A number's byte c, which number_byte() took, under the node's grid or its bounds as decimals
// (c goes to their reader); without either, below 1e308.
bool JsonPrefix::within_bounds(uint8_t c) {
  if (on_grid_) return grid_number_.step(c);
  if (decimal_bounded_) return decimal_.step(c);
  return magnitude_.step(c, number_);
}

bool JsonPrefix::number_can_end() const {
  if (decimal_bounded_) return decimal_.can_end();
  if (on_grid_) return grid_number_.can_end();
  return (number_ == Number::kZero || number_ == Number::kInt || number_ == Number::kFrac ||
          number_ == Number::kExp) &&
         magnitude_.can_end();
}

// Narrows [cand_lo_, cand_hi_) to the values whose next byte is c: they stay one range, as the
// candidates are sorted and share their first cand_pos_ bytes.
namespace {
namespace json_prefix {  // unity batches: CMakeLists.txt
void narrow(const std::vector<std::string>& cands, uint16_t pos, uint8_t c, uint16_t* lo,
            uint16_t* hi) {
  uint16_t l = *lo, h = *hi;
  auto fits = [&](uint16_t i) {
    const std::string& v = cands[i];
    return v.size() > pos && static_cast<uint8_t>(v[pos]) == c;
  };
  while (l < h && !fits(l)) ++l;
  uint16_t e = l;
  while (e < h && fits(e)) ++e;
  *lo = l;
  *hi = e;
}

bool self_delimiting(const std::string& value) {
  return value[0] != '-' && (value[0] < '0' || value[0] > '9');
}
}  // namespace json_prefix
}  // namespace

bool JsonPrefix::value_byte(uint8_t c) {
  using namespace json_prefix;  // this file's helpers
  const std::vector<std::string>& values = schema_->node(value_node_).values;
  uint16_t lo = cand_lo_, hi = cand_hi_;
  narrow(values, cand_pos_, c, &lo, &hi);
  if (lo == hi) {
    // A number ends at the first byte that is not its own: if one of the values was complete,
    // the value has ended and c belongs to its container.
    for (uint16_t i = cand_lo_; i < cand_hi_; ++i)
      if (values[i].size() == cand_pos_ && !self_delimiting(values[i]) && value_fresh(i)) {
        value_end(i);
        return structural(c);
      }
    return false;
  }
  bool fresh = false;  // some value the bytes may still become
  for (uint16_t i = lo; i < hi && !fresh; ++i) fresh = value_fresh(i);
  if (!fresh) return false;
  cand_lo_ = lo;
  cand_hi_ = hi;
  ++cand_pos_;
  // A string, true, false or null ends with its last byte (no such value begins another).
  if (values[lo].size() == cand_pos_ && self_delimiting(values[lo])) value_end(lo);
  return true;
}

bool JsonPrefix::value_fresh(uint16_t i) const {
  if (!unique_element_) return true;
  return !(frames_.back().unique >> schema_->node(value_node_).value_class[i] & 1);
}

void JsonPrefix::value_end(uint16_t i) {
  if (unique_element_)
    frames_.back().unique |= uint64_t{1} << schema_->node(value_node_).value_class[i];
  lexeme_ = Lexeme::kNone;
  value_done();
}

void JsonPrefix::key_byte(uint8_t c) {
  using namespace json_prefix;  // this file's helpers
  narrow(schema_->node(frames_.back().node).names, cand_pos_, c, &cand_lo_, &cand_hi_);
  ++cand_pos_;
}

bool JsonPrefix::key_allowed() const {
  const Frame& f = frames_.back();
  const SchemaNode& n = schema_->node(f.node);
  if (n.additional >= 0 && property_fits(f.seen)) return true;
  for (uint16_t i = cand_lo_; i < cand_hi_; ++i)
    if (!(f.seen >> i & 1) && property_fits(f.seen | uint64_t{1} << i)) return true;
  return false;
}

bool JsonPrefix::more_properties() const {
  const Frame& f = frames_.back();
  const SchemaNode& n = schema_->node(f.node);
  if (n.additional >= 0 && property_fits(f.seen)) return true;
  for (size_t i = 0; i < n.names.size(); ++i)
    if (!(f.seen >> i & 1) && property_fits(f.seen | uint64_t{1} << i)) return true;
  return false;
}

// The properties still needed after one more: the required ones missing and those minProperties
// lacks (any named one counts; a required one counts for both).
bool JsonPrefix::property_fits(uint64_t seen_after) const {
  const Frame& f = frames_.back();
  const SchemaNode& n = schema_->node(f.node);
  if (n.max_properties == UINT32_MAX) return true;
  const int64_t missing = std::popcount(n.required & ~seen_after);
  const int64_t lacking = int64_t{n.min_properties} - std::popcount(seen_after);
  return int64_t{f.count} + 1 + std::max(missing, lacking) <= int64_t{n.max_properties};
}

bool JsonPrefix::key_done() {
  Frame& f = frames_.back();
  const SchemaNode& n = schema_->node(f.node);
  for (uint16_t i = cand_lo_; i < cand_hi_; ++i) {
    if (n.names[i].size() != cand_pos_) continue;
    if (f.seen >> i & 1) return false;  // each property once
    if (!property_fits(f.seen | uint64_t{1} << i)) return false;
    f.seen |= uint64_t{1} << i;
    f.value = n.name_nodes[i];
    if (n.max_properties != UINT32_MAX) ++f.count;
    return true;
  }
  if (n.additional < 0 || !property_fits(f.seen)) return false;
  f.value = n.additional;
  if (n.max_properties != UINT32_MAX) ++f.count;
  return true;
}

}  // namespace xtile::server
