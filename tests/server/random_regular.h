// The GBNF and pattern tests' random regular expressions: one random tree written both as GBNF
// and as an ECMAScript expression for std::wregex (whose wchar_t is a whole code point here),
// which also writes random texts of its language and mutations of them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace xtile::server::test {

inline std::string utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) {
    const auto cp = static_cast<uint32_t>(c);
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | cp >> 6);
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | cp >> 18);
      out += static_cast<char>(0x80 | (cp >> 12 & 0x3f));
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  return out;
}

// A random regular expression, written both as GBNF and as ECMAScript for std::wregex (whose
// wchar_t is a whole code point here), and able to write random texts of its own language.
class RandomRegular {
 public:
  explicit RandomRegular(uint32_t seed) : rng_(seed) {
    root_ = node(3);
    gbnf_ = "root ::= " + root_.gbnf + "\n";
  }
  const std::string& gbnf() const { return gbnf_; }
  const std::wstring& regex() const { return root_.regex; }

  // A text of the language, or a mutation of one (inserted, deleted or replaced characters).
  std::u32string text() {
    std::u32string t;
    derive(root_, &t);
    const int mutations = static_cast<int>(rng_() % 3);
    for (int m = 0; m < mutations; ++m) {
      const size_t at = t.empty() ? 0 : rng_() % (t.size() + 1);
      switch (rng_() % 3) {
        case 0:
          t.insert(t.begin() + static_cast<ptrdiff_t>(at), pick());
          break;
        case 1:
          if (at < t.size()) t.erase(at, 1);
          break;
        default:
          if (at < t.size()) t[at] = pick();
          break;
      }
    }
    return t;
  }

 private:
  // Letters, multi-byte ones, and characters special to one syntax or the other.
  static constexpr char32_t kAlphabet[] = {U'a',  U'b', U'c', U'é', U'中', U'😀', U'"',
                                           U'\\', U'.', U'*', U'-', U']',  U'\n'};
  struct Node {
    enum class Type { kChars, kClass, kAny, kSeq, kAlt, kRep } type = Type::kChars;
    std::u32string chars;       // kChars: the literal; kClass: the members
    bool negate = false;        // kClass
    std::vector<Node> kids;     // kSeq, kAlt, kRep (one)
    uint32_t min = 0, max = 0;  // kRep; max kMany: unbounded
    bool nullable = false;
    std::string gbnf;
    std::wstring regex;
  };
  static constexpr uint32_t kMany = 1000;

  char32_t pick() { return kAlphabet[rng_() % std::size(kAlphabet)]; }

  static std::string gbnf_char(char32_t c) {
    char buf[16];
    snprintf(buf, sizeof buf, "\\U%08X", static_cast<unsigned>(c));
    return buf;
  }
  static std::wstring regex_char(char32_t c) {
    const std::wstring special = L"\\^$.|?*+()[]{}-/";
    std::wstring out;
    if (special.find(static_cast<wchar_t>(c)) != std::wstring::npos) out += L'\\';
    if (c == U'\n') return L"\\n";
    out += static_cast<wchar_t>(c);
    return out;
  }

  Node node(int depth) {
    Node n;
    const uint32_t kind = depth <= 0 ? rng_() % 3 : rng_() % 6;
    switch (kind) {
      case 0: {
        n.type = Node::Type::kChars;
        const size_t len = 1 + rng_() % 3;
        for (size_t i = 0; i < len; ++i) n.chars += pick();
        n.gbnf = "\"";
        for (char32_t c : n.chars) {
          n.gbnf += gbnf_char(c);
          n.regex += regex_char(c);
        }
        n.gbnf += "\"";
        n.regex = L"(?:" + n.regex + L")";
        break;
      }
      case 1: {
        n.type = Node::Type::kClass;
        n.negate = rng_() % 3 == 0;
        const size_t len = 1 + rng_() % 4;
        for (size_t i = 0; i < len; ++i) n.chars += pick();
        n.gbnf = n.negate ? "[^" : "[";
        n.regex = n.negate ? L"[^" : L"[";
        for (char32_t c : n.chars) {
          n.gbnf += gbnf_char(c);
          n.regex += regex_char(c);
        }
        n.gbnf += "]";
        n.regex += L"]";
        break;
      }
      case 2:
        n.type = Node::Type::kAny;
        n.gbnf = ".";
        n.regex = L"[\\s\\S]";
        break;
      case 3:
      case 4: {
        n.type = kind == 3 ? Node::Type::kSeq : Node::Type::kAlt;
        const size_t len = 2 + rng_() % 2;
        n.nullable = n.type == Node::Type::kSeq;
        for (size_t i = 0; i < len; ++i) {
          n.kids.push_back(node(depth - 1));
          const bool kid_nullable = n.kids.back().nullable;
          n.nullable =
              n.type == Node::Type::kSeq ? n.nullable && kid_nullable : n.nullable || kid_nullable;
        }
        n.gbnf = "(";
        n.regex = L"(?:";
        for (size_t i = 0; i < n.kids.size(); ++i) {
          if (i > 0 && n.type == Node::Type::kAlt) {
            n.gbnf += " |";
            n.regex += L"|";
          }
          n.gbnf += " " + n.kids[i].gbnf;
          n.regex += n.kids[i].regex;
        }
        n.gbnf += " )";
        n.regex += L")";
        break;
      }
      default: {
        n.type = Node::Type::kRep;
        n.kids.push_back(node(depth - 1));
        const Node& kid = n.kids[0];
        // An unbounded repetition of what can be empty is left recursion (refused): bound it.
        const uint32_t op = static_cast<uint32_t>(rng_() % 6);
        static const uint32_t kMin[] = {0, 1, 0, 2, 1, 2}, kMax[] = {kMany, kMany, 1, 2, 3, kMany};
        n.min = kMin[op];
        n.max = kid.nullable && kMax[op] == kMany ? n.min + 2 : kMax[op];
        std::string count =
            "{" + std::to_string(n.min) + "," + (n.max == kMany ? "" : std::to_string(n.max)) + "}";
        std::wstring wcount(count.begin(), count.end());
        if (op == 0 && n.max == kMany) count = "*", wcount = L"*";
        if (op == 1 && n.max == kMany) count = "+", wcount = L"+";
        if (op == 2) count = "?", wcount = L"?";
        n.gbnf = kid.gbnf + count;
        n.regex = L"(?:" + kid.regex + L")" + wcount;
        n.nullable = n.min == 0 || kid.nullable;
        break;
      }
    }
    if (n.type == Node::Type::kChars || n.type == Node::Type::kClass || n.type == Node::Type::kAny)
      n.nullable = false;
    return n;
  }

  void derive(const Node& n, std::u32string* out) {
    switch (n.type) {
      case Node::Type::kChars:
        *out += n.chars;
        break;
      case Node::Type::kClass:
        if (!n.negate) {
          *out += n.chars[rng_() % n.chars.size()];
        } else {
          for (;;) {  // the alphabet, or a character outside it
            const char32_t c = rng_() % 4 == 0 ? U'Ω' : pick();
            if (n.chars.find(c) == std::u32string::npos) {
              *out += c;
              break;
            }
          }
        }
        break;
      case Node::Type::kAny:
        *out += rng_() % 2 ? pick() : U'\u2028';
        break;
      case Node::Type::kSeq:
        for (const Node& k : n.kids) derive(k, out);
        break;
      case Node::Type::kAlt:
        derive(n.kids[rng_() % n.kids.size()], out);
        break;
      case Node::Type::kRep: {
        const uint32_t hi = n.max == kMany ? n.min + 3 : n.max;
        const uint32_t times = n.min + static_cast<uint32_t>(rng_() % (hi - n.min + 1));
        for (uint32_t i = 0; i < times; ++i) derive(n.kids[0], out);
        break;
      }
    }
  }

  std::mt19937 rng_;
  Node root_;
  std::string gbnf_;
};

}  // namespace xtile::server::test
