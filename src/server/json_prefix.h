// JSON mode's grammar: a byte-at-a-time recognizer of the prefixes of one JSON object (RFC 8259,
// UTF-8), used by GrammarConstraint (reply_constraint.h) to keep a reply that asked for
// response_format json_object valid token by token, and with a compiled JsonSchema (json_schema.h)
// the prefixes of an instance of it (json_schema). feed() refuses the first byte that no valid
// object could continue with, and complete() says when the object has closed.
//
// Beyond RFC 8259, two limits a sampler needs. Whitespace between tokens is at most one line
// break (a '\n', and one '\r') and kMaxBlanks spaces or tabs in a row: enough for any indented
// layout, where unlimited whitespace lets a model dawdle until max_tokens (a known failure of
// JSON modes: a reply of blank lines; llama.cpp's JSON grammar allows one newline and 20 blanks).
// And at most kMaxDepth open containers. Lone UTF-16 surrogates in \u escapes are refused, as
// strict parsers refuse them.
//
// A schema's union whose branches a value's first byte does not tell apart (anyOf [Cat, Dog],
// two objects) is read on several paths, one per branch, side by side (alternatives_ below).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/byte_grammar.h"
#include "server/gbnf_prefix.h"
#include "server/json_fixed_point.h"
#include "server/json_number_bounds.h"
#include "server/json_number_magnitude.h"
#include "server/json_schema.h"
#include "server/memo_key.h"

namespace xtile::server {

// feed(), accepts() and take() come from ByteGrammar.
class JsonPrefix : public ByteGrammar<JsonPrefix> {
 public:
  static constexpr int kMaxBlanks = 32;
  // Nesting deeper than this is refused: some parsers recurse per level (and a model that opens
  // bracket after bracket is not writing the object it was asked for).
  static constexpr int kMaxDepth = 128;

  // schema: null for any object; else kept by the caller for this object's life.
  explicit JsonPrefix(const JsonSchema* schema = nullptr);

  // The top-level object has closed: nothing more may follow. (Paths read the same bytes as
  // JSON, so those alive close it together.)
  bool complete() const { return expect_ == Expect::kDone; }
  // An end of generation is allowed only once the object closed (before, it would be cut).
  bool may_end() const { return complete(); }
  // Never free text: every byte of the reply is the object's.
  bool free_text() const { return false; }
  // The state's key for the mask's memo (grammar_memo.h): equal keys, equal futures.
  void memo_key(std::string* key) const;

 private:
  // What the next byte outside a string, number or literal may be.
  enum class Expect : uint8_t {
    kStart,         // the top-level '{' (whitespace before it)
    kValue,         // any value (after ':' or after ',' in an array)
    kValueOrClose,  // a value or ']' (after '[')
    kKeyOrClose,    // a key string or '}' (after '{')
    kKey,           // a key string (after ',' in an object)
    kColon,         // ':' after a key
    kCommaOrClose,  // ',' or the container's close after a value
    kDone,          // the top-level object closed
  };
  // A token in progress.
  // kFormat: a string with a schema's format (json_format.h); kPattern: with a pattern.
  enum class Lexeme : uint8_t { kNone, kString, kNumber, kLiteral, kValue, kFormat, kPattern };
  // Where a number is: the part just read (json_number_magnitude.h).
  using Number = NumberPart;

  // After a high surrogate's \uXXXX: the '\', the 'u' and the digits of its low surrogate.
  enum class Surrogate : uint8_t { kNone, kNeedBackslash, kNeedU, kNeedLow };

  friend class ByteGrammar<JsonPrefix>;
  bool step(uint8_t c);         // feed() without restoring the state on false: every path
  bool step_path(uint8_t c);    // this path alone (its union branches opened go to spawned_)
  bool structural(uint8_t c);   // c outside a lexeme
  bool string_byte(uint8_t c);  // c inside a string
  bool hex_byte(uint8_t c);     // a digit of a \uXXXX escape
  bool pattern_byte(uint8_t c);  // c inside a string with a pattern
  bool pattern_char(uint8_t ch);        // an escape's character ch to the pattern, with room after
  bool pattern_fits(uint8_t ch) const;  // pattern_char(ch) would hold
  // Within maxLength, a match can still be completed from engine after `read` characters.
  bool pattern_room(const GbnfPrefix& engine, uint32_t read) const;
  bool number_byte(uint8_t c);  // c inside a number (false: not part of it)
  bool value_start(uint8_t c);  // c begins a value
  bool value_start_as(uint8_t c, int node);  // c begins a value of node (schema mode)
  bool open(char bracket, int node);  // '{' or '[' (node: its schema's): false beyond kMaxDepth
  bool close();                 // the innermost container's close
  void value_done();            // a value ended: its container's next step
  // A number's byte c under the node's grid or bounds, and below 1e308.
  bool within_bounds(uint8_t c);
  bool number_can_end() const;
  // Schema mode.
  bool value_byte(uint8_t c);    // c inside an enum / const value (Lexeme::kValue)
  bool value_fresh(uint16_t i) const;  // values[i] may be written here (uniqueItems)
  bool unique_string_byte(uint8_t c);  // c inside a string element of a unique array of strings
  bool unique_digit(uint8_t c) const;  // c inside an integer element of a unique array
  bool unique_text_fresh() const;      // the element read is not one of its array's yet
  void unique_text_done();             // the element read is one of its array's now
  void value_end(uint16_t i);          // the value read is values[i]
  void key_byte(uint8_t c);      // narrows the property names a key being read may still be
  bool key_allowed() const;      // some name (unseen) or additionalProperties still fits
  bool key_done();               // the key's closing quote: its value's node
  bool more_properties() const;  // the innermost object may take another property
  // One more property in the innermost object, the named ones then `seen_after`, leaves room
  // under maxProperties for those still needed (the required ones, minProperties').
  bool property_fits(uint64_t seen_after) const;

  Expect expect_ = Expect::kStart;
  Lexeme lexeme_ = Lexeme::kNone;
  Number number_ = Number::kInt;
  bool string_is_key_ = false;
  bool escape_ = false;     // after '\' in a string
  uint8_t hex_left_ = 0;    // \uXXXX digits still to come
  uint16_t hex_value_ = 0;  // the digits read so far
  Surrogate surrogate_ = Surrogate::kNone;
  uint8_t utf8_left_ = 0;          // continuation bytes still to come
  uint8_t utf8_lo_ = 0x80;         // the next continuation byte's range (narrower after E0, ED,
  uint8_t utf8_hi_ = 0xbf;         // F0 and F4: no overlong forms, surrogates or beyond U+10FFFF)
  const char* literal_ = nullptr;  // the rest of true / false / null
  // The whitespace run outside strings so far: spaces and tabs, '\n' and '\r' seen.
  uint8_t blanks_ = 0;
  bool newline_ = false, return_ = false;
  std::string stack_;  // open containers, innermost last: '{' or '['

  // Schema mode: the node of each open container (parallel to stack_), the properties seen in
  // it (bit i: names[i]) and their count, and the node of the value being read in it; the node the
  // next value must be an instance of; and, while an enum value or a key is read, the range of
  // sorted candidates [lo, hi) that still begin with its bytes, and how many bytes matched.
  struct Frame {
    int node = 0;
    uint64_t seen = 0;
    int value = 0;
    uint32_t count = 0;  // an object's properties so far, counted only under maxProperties
    uint64_t unique = 0;  // uniqueItems: the distinct values of the elements so far (bits)
  };
  // The frames of the 8 innermost levels sit in the object itself, deeper ones in a vector: the
  // mask copies the state once per token of the vocabulary, and a vector's allocation there
  // made a schema's mask 4× slower than a plain object's.
  class Frames {
   public:
    void push_back(const Frame& f) {
      if (size_ < kNear)
        near_[size_] = f;
      else
        far_.push_back(f);
      ++size_;
    }
    void pop_back() {
      if (--size_ >= kNear) far_.pop_back();
    }
    Frame& back() { return size_ <= kNear ? near_[size_ - 1] : far_.back(); }
    const Frame& back() const { return size_ <= kNear ? near_[size_ - 1] : far_.back(); }
    void memo_key(std::string* key) const {
      put_key(key, size_);
      for (int i = 0; i < size_; ++i) {
        const Frame& f = i < kNear ? near_[i] : far_[static_cast<size_t>(i - kNear)];
        put_key(key, f.node);
        put_key(key, f.seen);
        put_key(key, f.value);
        put_key(key, f.count);
        put_key(key, f.unique);
      }
    }

   private:
    static constexpr int kNear = 8;
    Frame near_[kNear];
    std::vector<Frame> far_;
    int size_ = 0;
  };
  const JsonSchema* schema_ = nullptr;
  Frames frames_;
  int node_ = 0;
  bool integer_only_ = false;
  uint16_t cand_lo_ = 0, cand_hi_ = 0, cand_pos_ = 0;
  int value_node_ = 0;  // the enum value's node (Lexeme::kValue)
  bool unique_element_ = false;  // that value is an element of a uniqueItems array
  // A uniqueItems array of strings or integers (SchemaNode::unique_texts): the element being
  // read (a string's text between the quotes, an integer's digits), and the elements written in
  // each such array still open, by its depth, sorted. Each value has one spelling there
  // (unique_string_byte, unique_digit), so equal texts are equal values.
  bool unique_string_ = false, unique_number_ = false;
  std::string unique_text_;
  std::vector<std::pair<uint32_t, std::string>> unique_texts_;
  FormatReader format_;  // Lexeme::kFormat
  // Lexeme::kPattern: the pattern's engine, fed the string's characters as they decode.
  std::optional<GbnfPrefix> pattern_;
  // A string value's characters so far and its node's bounds (minLength, maxLength); with a
  // pattern, the characters its engine has read whole.
  uint32_t str_len_ = 0, str_min_ = 0, str_max_ = UINT32_MAX, pattern_len_ = 0;
  // A number on a grid: multipleOf, or an integer's bounds (json_fixed_point.h).
  bool on_grid_ = false;
  FixedPointNumber grid_number_;
  // A bounded number that need not be an integer (json_number_bounds.h).
  bool decimal_bounded_ = false;
  BoundedNumber decimal_;
  // Any other number: its magnitude below 1e308 (json_number_magnitude.h). Bounded ones stay
  // within bounds that are themselves below it.
  NumberMagnitude magnitude_;

  // Unions whose branches begin alike (anyOf [Cat, Dog], both objects): one path per branch,
  // read side by side. This object is the first path alive; the others are here (each without
  // alternatives of its own); paths that come to the same state are merged, so a union costs
  // copies only while its branches differ. spawned_: during a step, the paths a value's start
  // opened beside this one. Both are empty outside unions (no allocation when copied).
  std::vector<JsonPrefix> alternatives_;
  std::vector<JsonPrefix> spawned_;
};

}  // namespace xtile::server
