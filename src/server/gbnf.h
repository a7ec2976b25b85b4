// A GBNF grammar (llama.cpp's grammar format, llama-server's `grammar` field) compiled for
// GbnfPrefix (gbnf_prefix.h), which keeps a reply within it code point by code point.
//
// The syntax is llama.cpp's (its grammars/README.md): rules `name ::= alternatives`, names of
// letters, digits and '-' (and '_'), `root` the start; literals "..." and classes [...] / [^...]
// with the escapes \n \r \t \\ \" \[ \] \xXX \uXXXX \UXXXXXXXX (and \- \^ \/); `.` any
// character; groups ( ... ); `|`; repetition `*` `+` `?` `{m}` `{m,}` `{m,n}` after a symbol, a
// literal or a group (counts up to kMaxRepetition); `#` comments to the end of the line. A rule
// ends at a line break unless inside parentheses or right after `|`. Token references
// (`<[id]>`, `<think>`, `!<...>`) are refused: the grammar reads text. Bounds on what a
// client's text may make the parser do: parentheses 128 deep, 8 quantifiers in a row,
// kMaxElements once written out; the compiler's passes are linear in the grammar's size.
//
// Compiled as llama.cpp's engine reads it: each rule is a list of alternatives, each a sequence
// of elements (a character class or a reference to a rule) ending in kEnd; groups and
// repetitions become rules of their own (x* is R ::= x R | empty, x{0,n} nests n optional
// copies). Refused with an Error naming the rule (and the line and column for syntax): an
// undefined rule, no `root`, left recursion (a rule that can reach itself without reading a
// character: the engine would expand it forever), a grammar that admits no complete text.
// Alternatives that can never be completed are dropped, so that every state the engine reaches
// can still end in a whole text: a sampler held to it never meets a dead end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xtile::server {

// A set of code points as sorted, disjoint, non-adjacent inclusive ranges; ASCII as a bitmap
// too (most replies' characters are ASCII, tested with one bit).
class CodePointSet {
 public:
  static constexpr uint32_t kMax = 0x10ffff;
  CodePointSet() = default;
  explicit CodePointSet(std::vector<std::pair<uint32_t, uint32_t>> ranges);  // any order
  CodePointSet complement() const;
  bool contains(uint32_t cp) const {
    if (cp < 128) return (ascii_[cp >> 6] >> (cp & 63)) & 1;
    return contains_slow(cp);
  }
  // Some code point in [lo, hi] belongs to the set.
  bool intersects(uint32_t lo, uint32_t hi) const;
  bool empty() const { return ranges_.empty(); }
  const std::vector<std::pair<uint32_t, uint32_t>>& ranges() const { return ranges_; }
  bool operator==(const CodePointSet& o) const { return ranges_ == o.ranges_; }

 private:
  bool contains_slow(uint32_t cp) const;
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
  uint64_t ascii_[2] = {0, 0};
};

class GbnfGrammar {
 public:
  static constexpr uint32_t kMaxRepetition = 2000;  // as llama.cpp's parser
  // Elements over all rules: a bound on what a hostile grammar can make the server build
  // (nested repetitions multiply).
  static constexpr size_t kMaxElements = size_t{1} << 20;

  enum class Kind : uint8_t { kEnd, kChar, kRef };
  struct Element {
    Kind kind = Kind::kEnd;
    uint32_t arg = 0;  // kChar: a class of classes(); kRef: a rule
  };

  // Parses and compiles text; throws xtile::Error naming the problem.
  explicit GbnfGrammar(std::string_view text);

  uint32_t root() const { return root_; }
  const Element& element(uint32_t pos) const { return elements_[pos]; }
  const CodePointSet& char_class(uint32_t i) const { return classes_[i]; }
  size_t class_count() const { return classes_.size(); }
  // Where each alternative of a rule begins in the elements.
  const std::vector<uint32_t>& alternatives(uint32_t rule) const { return alternatives_[rule]; }
  size_t rule_count() const { return alternatives_.size(); }
  // The fewest code points that finish the alternative from element pos on (0 at its kEnd),
  // saturated at UINT32_MAX: what a length bound beside the grammar needs to leave room for.
  uint32_t shortest_rest(uint32_t pos) const { return shortest_rest_[pos]; }
  const std::string& rule_name(uint32_t rule) const { return names_[rule]; }

 private:
  friend class GbnfCompiler;
  GbnfGrammar() = default;
  std::vector<Element> elements_;
  std::vector<CodePointSet> classes_;
  std::vector<std::vector<uint32_t>> alternatives_;
  std::vector<std::string> names_;
  std::vector<uint32_t> shortest_rest_;  // per element
  uint32_t root_ = 0;
};

}  // namespace xtile::server
