#include "server/json_pattern.h"

#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include "base/error.h"
#include "server/gbnf_prefix.h"
#include "server/pattern_lookahead.h"
#include "tokenizer/utf8.h"

namespace xtile::server {

namespace {
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;
namespace json_pattern {  // unity batches: CMakeLists.txt

// ECMA-262's \s: white space and line terminators.
const Ranges kSpace = {{0x09, 0x0d},     {0x20, 0x20},     {0xa0, 0xa0},     {0x1680, 0x1680},
                       {0x2000, 0x200a}, {0x2028, 0x2029}, {0x202f, 0x202f}, {0x205f, 0x205f},
                       {0x3000, 0x3000}, {0xfeff, 0xfeff}};
const Ranges kDigit = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
// What `.` leaves out without the s flag: the line terminators.
const Ranges kLineTerminators = {{0x0a, 0x0a}, {0x0d, 0x0d}, {0x2028, 0x2029}};

std::string hex8(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  return buf;
}

std::string gbnf_class(const Ranges& ranges, bool negate) {
  std::string out = negate ? "[^" : "[";
  for (auto [lo, hi] : ranges) {
    out += hex8(lo);
    if (hi != lo) out.append("-").append(hex8(hi));
  }
  return out + "]";
}

class Translator {
 public:
  explicit Translator(std::string_view pattern) : text_(pattern) { decode(pattern); }

  std::string translate() {
    std::string root = "root ::=";
    bool first = true;
    do {
      if (!first) {
        ++pos_;  // the '|'
        root += " |";
      }
      first = false;
      const bool start = peek() == '^';
      if (start) ++pos_;
      std::string body = sequence(/*top=*/true);
      const bool end = peek() == '$';
      if (end) ++pos_;
      if (!at_end() && peek() != '|') unsupported_here("an unmatched ')'");
      root += std::string(" ") + (start ? "" : ".* ") + "(" + body + " )" + (end ? "" : " .*");
    } while (!at_end() && peek() == '|');
    return root + "\n";
  }

 private:
  [[noreturn]] void unsupported_here(const std::string& what) const {
    fail("pattern ", quoted(), ": ", what, " (at character ", pos_ + 1, ") is not supported");
  }
  std::string quoted() const { return std::string("\"").append(text_).append("\""); }

  void decode(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
      const tok_internal::Utf8Char ch = tok_internal::decode_utf8_strict(s, i);
      if (ch.len == 0) fail("pattern ", quoted(), ": invalid UTF-8");
      cps_.push_back(ch.cp);
      i += ch.len;
    }
  }

  bool at_end() const { return pos_ >= cps_.size(); }
  uint32_t peek(size_t ahead = 0) const {
    return pos_ + ahead < cps_.size() ? cps_[pos_ + ahead] : 0xffffffffu;
  }

  // Items up to '|', ')', the end, or (at the top) a '$' that ends the alternative.
  std::string sequence(bool top) {
    std::string out;
    while (!at_end()) {
      const uint32_t c = peek();
      if (c == '|' || c == ')') break;
      if (c == '$') {
        if (top && (pos_ + 1 == cps_.size() || peek(1) == '|')) break;
        unsupported_here("'$' inside the pattern");
      }
      if (c == '^') unsupported_here("'^' inside the pattern");
      std::string atom_text = atom();
      out += " " + atom_text + quantifier();
    }
    return out;
  }

  std::string alternatives_in_group() {
    // The translation recurses per group, as the GBNF parser does after it (its bound).
    if (++depth_ > 128) unsupported_here("groups nested deeper than 128");
    std::string out = "(";
    bool first = true;
    do {
      if (!first) {
        ++pos_;
        out += " |";
      }
      first = false;
      out += sequence(/*top=*/false);
    } while (peek() == '|');
    if (peek() != ')') unsupported_here("a group without its ')'");
    ++pos_;
    --depth_;
    return out + " )";
  }

  std::string atom() {
    const uint32_t c = peek();
    if (c == '(') {
      ++pos_;
      if (peek() == '?') {
        if (peek(1) == ':') {
          pos_ += 2;
        } else if (peek(1) == '<' && peek(2) != '=' && peek(2) != '!') {
          pos_ += 2;  // a named group: (?<name>...)
          while (!at_end() && peek() != '>') ++pos_;
          if (at_end()) unsupported_here("a group name without its '>'");
          ++pos_;
        } else {
          unsupported_here(
              "lookaround ((?=, (?!, (?<=, (?<!) other than lookaheads right after the '^' "
              "that opens a pattern of one alternative");
        }
      }
      return alternatives_in_group();
    }
    if (c == '[') return char_class();
    if (c == '.') {
      ++pos_;
      return gbnf_class(kLineTerminators, true);
    }
    if (c == '*' || c == '+' || c == '?') unsupported_here("a quantifier with nothing to repeat");
    if (c == '\\') return escape_outside_class();
    ++pos_;
    return std::string("\"").append(hex8(c)).append("\"");
  }

  // After an atom: * + ? {n} {n,} {n,m}, and a lazy '?' (the same strings). A '{' that is not a
  // quantifier is a character (ECMA-262's Annex B), read as the next atom.
  std::string quantifier() {
    std::string q;
    const uint32_t c = peek();
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      q = std::string(1, static_cast<char>(c));
    } else if (c == '{') {
      size_t p = pos_ + 1;
      auto number = [&](std::string* digits) {
        while (p < cps_.size() && cps_[p] >= '0' && cps_[p] <= '9')
          *digits += static_cast<char>(cps_[p++]);
        return !digits->empty();
      };
      std::string lo, hi;
      bool comma = false;
      if (!number(&lo)) return "";
      if (p < cps_.size() && cps_[p] == ',') {
        comma = true;
        ++p;
        number(&hi);
      }
      if (p >= cps_.size() || cps_[p] != '}') return "";
      pos_ = p + 1;
      q = "{" + lo + (comma ? "," + hi : "") + "}";
    } else {
      return "";
    }
    if (peek() == '?') ++pos_;  // lazy: the same strings
    if (peek() == '*' || peek() == '+' || peek() == '?' ||
        (peek() == '{' && peek(1) >= '0' && peek(1) <= '9'))
      unsupported_here("a quantifier after a quantifier");
    return q;
  }

  // \d \w \s and their complements, or one character.
  std::string escape_outside_class() {
    ++pos_;  // the backslash
    const uint32_t e = peek();
    switch (e) {
      case 'd':
      case 'w':
      case 's':
      case 'D':
      case 'W':
      case 'S': {
        ++pos_;
        const Ranges& r = (e == 'd' || e == 'D') ? kDigit : (e == 'w' || e == 'W') ? kWord : kSpace;
        return gbnf_class(r, e < 'a');
      }
      default:
        return std::string("\"").append(hex8(escaped_character(/*in_class=*/false))).append("\"");
    }
  }

  // The character an escape stands for (pos_ after the backslash).
  uint32_t escaped_character(bool in_class) {
    const uint32_t e = peek();
    if (at_end()) unsupported_here("a '\\' at the end");
    ++pos_;
    switch (e) {
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'f':
        return '\f';
      case 'v':
        return '\v';
      case '0':
        if (peek() >= '0' && peek() <= '9') unsupported_here("an octal escape");
        return 0;
      case 'x':
        return hex(2);
      case 'u':
        if (peek() == '{') unsupported_here("\\u{...} (the u flag)");
        return hex(4);
      case 'b':
        if (in_class) return '\b';
        --pos_;
        unsupported_here("\\b (a word boundary)");
      case 'B':
        --pos_;
        unsupported_here("\\B (not a word boundary)");
      case 'p':
      case 'P':
        --pos_;
        unsupported_here("a Unicode property escape");
      case 'c':
        --pos_;
        unsupported_here("a control escape (\\c)");
      case 'k':
        --pos_;
        unsupported_here("a named backreference");
      default:
        break;
    }
    if (e >= '1' && e <= '9') {
      --pos_;
      unsupported_here("a backreference");
    }
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
      --pos_;
      unsupported_here("the escape '\\" + std::string(1, static_cast<char>(e)) + "'");
    }
    return e;  // an escaped punctuation character or any other: itself
  }

  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const int d = tok_internal::hex_digit_value(peek());
      if (d < 0)
        unsupported_here("an escape without its " + std::to_string(digits) + " hex digits");
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    return v;
  }

  std::string char_class() {
    ++pos_;  // '['
    const bool negate = peek() == '^';
    if (negate) ++pos_;
    Ranges ranges;
    // One member: a character, or (added to ranges) \d \w \s or their complements ([\s\S]
    // is any character).
    auto member = [&](uint32_t* cp) -> bool {
      if (peek() != '\\') {
        *cp = peek();
        ++pos_;
        return true;
      }
      ++pos_;
      const uint32_t e = peek();
      if (e == 'd' || e == 'w' || e == 's' || e == 'D' || e == 'W' || e == 'S') {
        ++pos_;
        const uint32_t lower = e | 0x20;
        const Ranges& r = lower == 'd' ? kDigit : lower == 'w' ? kWord : kSpace;
        const Ranges add = e == lower ? r : CodePointSet(r).complement().ranges();
        ranges.insert(ranges.end(), add.begin(), add.end());
        return false;
      }
      *cp = escaped_character(/*in_class=*/true);
      return true;
    };
    while (!at_end() && peek() != ']') {
      uint32_t lo = 0;
      if (!member(&lo)) continue;
      if (peek() == '-' && peek(1) != ']' && pos_ + 1 < cps_.size()) {
        ++pos_;
        uint32_t hi = 0;
        if (!member(&hi)) unsupported_here("a range to a class escape");
        if (hi < lo) unsupported_here("a range out of order");
        ranges.emplace_back(lo, hi);
      } else {
        ranges.emplace_back(lo, lo);
      }
    }
    if (at_end()) unsupported_here("a class without its ']'");
    ++pos_;
    return gbnf_class(CodePointSet(ranges).ranges(), negate);
  }

  std::string_view text_;
  std::vector<uint32_t> cps_;
  size_t pos_ = 0;
  int depth_ = 0;  // groups open
};

// Where the group opened at s[open] closes, and the '|' at its own level inside it (npos: it
// does not close). Escapes and classes are skipped; the characters that matter are ASCII, so
// UTF-8 is scanned byte by byte.
size_t group_close(std::string_view s, size_t open, std::vector<size_t>* bars) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\') {
      ++i;
    } else if (c == '[') {
      for (++i; i < s.size() && s[i] != ']'; ++i)
        if (s[i] == '\\') ++i;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth == 0) return i;
    } else if (c == '|' && depth == 1 && bars) {
      bars->push_back(i);
    }
  }
  return std::string_view::npos;
}

// `^(?=A)(?!B)REST`: the lookaheads' expressions, each made a pattern anchored at the string's
// start (every alternative of it), and `^REST`. None when the pattern does not open so.
struct LookaheadParts {
  std::vector<std::pair<std::string, bool>> lookaheads;  // pattern, negative
  std::string rest;
};
std::optional<LookaheadParts> lookahead_parts(std::string_view pattern) {
  if (!pattern.starts_with("^(?=") && !pattern.starts_with("^(?!")) return std::nullopt;
  LookaheadParts parts;
  size_t at = 1;
  while (pattern.substr(at).starts_with("(?=") || pattern.substr(at).starts_with("(?!")) {
    std::vector<size_t> bars;
    const size_t close = group_close(pattern, at, &bars);
    if (close == std::string_view::npos)
      fail("pattern \"", pattern, "\": a lookahead without its ')' is not supported");
    std::string anchored;
    size_t from = at + 3;
    bars.push_back(close);
    for (size_t bar : bars) {
      std::string_view alt = pattern.substr(from, bar - from);
      if (!anchored.empty()) anchored += '|';
      if (!alt.starts_with('^')) anchored += '^';
      anchored += alt;
      from = bar + 1;
    }
    parts.lookaheads.emplace_back(std::move(anchored), pattern[at + 2] == '!');
    at = close + 1;
  }
  parts.rest.push_back('^');
  parts.rest.append(pattern.substr(at));
  // One alternative: a '|' outside every group would begin one the lookaheads do not head.
  std::vector<size_t> bars;
  std::string whole = "(";
  whole.append(parts.rest).append(")");
  if (group_close(whole, 0, &bars) != whole.size() - 1 || !bars.empty())
    fail("pattern \"", pattern,
         "\": lookaheads at the start of a pattern of several alternatives are not supported");
  return parts;
}

// A part's grammar; errors name the pattern (and the part, when it is one).
std::shared_ptr<const GbnfGrammar> compile_text(std::string_view pattern, std::string_view part,
                                                const std::string& text) {
  std::string where = "pattern \"";  // appended: g++ 12 warns (-Wrestrict) on + chains here
  where.append(pattern).append("\"");
  if (part != pattern) where.append(", its part \"").append(part).append("\"");
  try {
    auto grammar = std::make_shared<const GbnfGrammar>(text);
    GbnfPrefix start(grammar.get());
    return grammar;
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.find("left recursion") != std::string::npos)
      fail(where,
           ": a repetition of something that can be empty, repeated without bound ((a*)*), "
           "is not supported");
    if (m.find("no complete text") != std::string::npos) fail(where, " matches no string");
    fail(where, ": ", m);
  }
}

// A part translated; the Translator's errors name the part, here the pattern too.
std::string translate_part(std::string_view pattern, std::string_view part) {
  try {
    return Translator(part).translate();
  } catch (const Error& e) {
    fail("pattern \"", pattern, "\", its part ", e.what() + std::string_view("pattern ").size());
  }
}

}  // namespace json_pattern
}  // namespace

std::string pattern_to_gbnf(std::string_view pattern) {
  using namespace json_pattern;  // this file's helpers
  const std::optional<LookaheadParts> parts = lookahead_parts(pattern);
  if (!parts) return Translator(pattern).translate();
  // Each part's grammar, then their combination (pattern_lookahead.h).
  std::vector<std::shared_ptr<const GbnfGrammar>> kept;
  std::vector<Lookahead> lookaheads;
  for (const auto& [text, negative] : parts->lookaheads) {
    kept.push_back(compile_text(pattern, text, translate_part(pattern, text)));
    lookaheads.push_back({kept.back().get(), negative});
  }
  const auto rest = compile_text(pattern, parts->rest, translate_part(pattern, parts->rest));
  try {
    return lookahead_gbnf(*rest, lookaheads);
  } catch (const Error& e) {
    fail("pattern \"", pattern, "\": ", e.what());
  }
}

std::shared_ptr<const GbnfGrammar> compile_pattern(std::string_view pattern) {
  using namespace json_pattern;  // this file's helpers
  return compile_text(pattern, pattern, pattern_to_gbnf(pattern));
}

}  // namespace xtile::server
