#include "server/gbnf.h"

#include <algorithm>
#include <limits>
#include <map>
#include <queue>

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace xtile::server {

CodePointSet::CodePointSet(std::vector<std::pair<uint32_t, uint32_t>> ranges) {
  std::sort(ranges.begin(), ranges.end());
  for (auto [lo, hi] : ranges) {
    if (lo > hi) continue;
    hi = std::min(hi, kMax);
    if (lo > kMax) continue;
    if (!ranges_.empty() && lo <= ranges_.back().second + 1)
      ranges_.back().second = std::max(ranges_.back().second, hi);
    else
      ranges_.emplace_back(lo, hi);
  }
  for (auto [lo, hi] : ranges_)
    for (uint32_t cp = lo; cp <= hi && cp < 128; ++cp) ascii_[cp >> 6] |= uint64_t{1} << (cp & 63);
}

CodePointSet CodePointSet::complement() const {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  uint32_t next = 0;  // the first code point not yet covered
  for (auto [lo, hi] : ranges_) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMax) out.emplace_back(next, kMax);
  return CodePointSet(std::move(out));
}

bool CodePointSet::contains_slow(uint32_t cp) const {
  // The first range ending at or after cp.
  auto it = std::lower_bound(
      ranges_.begin(), ranges_.end(), cp,
      [](const std::pair<uint32_t, uint32_t>& r, uint32_t c) { return r.second < c; });
  return it != ranges_.end() && it->first <= cp;
}

bool CodePointSet::intersects(uint32_t lo, uint32_t hi) const {
  if (lo > hi) return false;
  auto it = std::lower_bound(
      ranges_.begin(), ranges_.end(), lo,
      [](const std::pair<uint32_t, uint32_t>& r, uint32_t c) { return r.second < c; });
  return it != ranges_.end() && it->first <= hi;
}

namespace {
namespace gbnf {  // unity batches: CMakeLists.txt

// The grammar's text as a tree, before rules are numbered.
struct Node {
  enum class Type : uint8_t { kSequence, kAlternatives, kClass, kRef, kRepeat };
  Type type = Type::kSequence;
  std::vector<Node> children;  // sequence items, alternatives (sequences), the repeated node
  CodePointSet set;            // kClass
  std::string name;            // kRef
  size_t offset = 0;           // kRef: where in the text (for "undefined rule")
  uint32_t min = 0, max = 0;   // kRepeat; max kUnbounded: no limit
};
constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();

struct RuleText {
  std::string name;
  Node body;  // kAlternatives
  size_t offset = 0;
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  std::vector<RuleText> parse() {
    std::vector<RuleText> rules;
    skip_space(true);
    while (!at_end()) rules.push_back(rule());
    return rules;
  }

  // "line L, column C" of a byte offset, for messages.
  std::string where(size_t offset) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(col);
  }

 private:
  // Parentheses nest at most this deep: the parser recurses per level.
  static constexpr int kMaxNesting = 128;
  static constexpr int kMaxQuantifiersInARow = 8;

  [[noreturn]] void error(const std::string& what) const {
    fail("grammar: ", what, " at ", where(pos_));
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }

  // Blanks and comments; line breaks only where newline_ok (between rules, inside
  // parentheses, after '|').
  void skip_space(bool newline_ok) {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && peek() != '\n' && peek() != '\r') ++pos_;
      } else if ((c == '\n' || c == '\r') && newline_ok) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(peek())) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  RuleText rule() {
    RuleText r;
    r.offset = pos_;
    r.name = name();
    if (r.name.empty()) error("expected a rule name");
    skip_space(false);
    if (s_.substr(pos_, 3) != "::=") error("expected '::=' after the rule name '" + r.name + "'");
    pos_ += 3;
    skip_space(true);
    r.body = alternatives(false, 0);
    if (peek() == '\r') ++pos_;
    if (peek() == '\n')
      ++pos_;
    else if (!at_end())
      error("expected the end of the line after rule '" + r.name + "', found '" +
            std::string(1, peek()) + "'");
    skip_space(true);
    return r;
  }

  Node alternatives(bool nested, int depth) {
    Node alt;
    alt.type = Node::Type::kAlternatives;
    alt.children.push_back(sequence(nested, depth));
    while (peek() == '|') {
      ++pos_;
      skip_space(true);
      alt.children.push_back(sequence(nested, depth));
    }
    return alt;
  }

  Node sequence(bool nested, int depth) {
    Node seq;
    for (;;) {
      const char c = peek();
      if (at_end()) break;
      if (c == '"') {
        ++pos_;
        // One node, so that a repetition after it repeats all of it ("ab"* is ab ab ...).
        Node literal;
        while (!at_end() && peek() != '"') literal.children.push_back(single(character()));
        if (at_end()) error("unterminated literal");
        ++pos_;
        if (literal.children.size() == 1) {
          seq.children.push_back(std::move(literal.children[0]));
        } else {
          Node group;
          group.type = Node::Type::kAlternatives;
          group.children.push_back(std::move(literal));
          seq.children.push_back(std::move(group));
        }
      } else if (c == '[') {
        ++pos_;
        const bool negate = peek() == '^';
        if (negate) ++pos_;
        std::vector<std::pair<uint32_t, uint32_t>> ranges;
        while (!at_end() && peek() != ']') {
          const uint32_t lo = character();
          uint32_t hi = lo;
          if (peek() == '-' && pos_ + 1 < s_.size() && peek(1) != ']') {
            ++pos_;
            hi = character();
            if (hi < lo) error("the range in the class runs backwards");
          }
          ranges.emplace_back(lo, hi);
        }
        if (at_end()) error("unterminated character class");
        ++pos_;
        Node n;
        n.type = Node::Type::kClass;
        n.set = CodePointSet(std::move(ranges));
        if (negate) n.set = n.set.complement();
        seq.children.push_back(std::move(n));
      } else if (is_name_char(c)) {
        Node n;
        n.type = Node::Type::kRef;
        n.offset = pos_;
        n.name = name();
        seq.children.push_back(std::move(n));
      } else if (c == '(') {
        if (depth >= kMaxNesting)
          error("parentheses nested deeper than " + std::to_string(kMaxNesting));
        ++pos_;
        skip_space(true);
        seq.children.push_back(alternatives(true, depth + 1));
        if (peek() != ')') error("expected ')'");
        ++pos_;
      } else if (c == '.') {
        ++pos_;
        Node n;
        n.type = Node::Type::kClass;
        n.set = CodePointSet({{0, CodePointSet::kMax}});
        seq.children.push_back(std::move(n));
      } else if (c == '*' || c == '+' || c == '?') {
        ++pos_;
        repeat(&seq, c == '+' ? 1 : 0, c == '?' ? 1 : kUnbounded, c);
      } else if (c == '{') {
        ++pos_;
        skip_space(nested);
        const uint32_t m = count();
        uint32_t n = m;
        skip_space(nested);
        if (peek() == ',') {
          ++pos_;
          skip_space(nested);
          n = peek() >= '0' && peek() <= '9' ? count() : kUnbounded;
          skip_space(nested);
        }
        if (peek() != '}') error("expected '}' to close the repetition count");
        ++pos_;
        if (n < m) error("the repetition's maximum is below its minimum");
        repeat(&seq, m, n, '{');
      } else if (c == '<' || c == '!') {
        error(
            "token references (<[id]>, <token>, !<...>) are not supported: the grammar "
            "reads the reply's text");
      } else {
        break;
      }
      skip_space(nested);
    }
    return seq;
  }

  void repeat(Node* seq, uint32_t min, uint32_t max, char op) {
    if (seq->children.empty()) error(std::string("'") + op + "' has nothing before it to repeat");
    // Quantifiers in a row nest (x*? is (x*)?), and the compiler recurses per level: a few are
    // meaningful, thousands are an attack on the stack.
    int row = 0;
    for (const Node* n = &seq->children.back(); n->type == Node::Type::kRepeat; n = &n->children[0])
      if (++row >= kMaxQuantifiersInARow)
        error("more than " + std::to_string(kMaxQuantifiersInARow) + " quantifiers in a row");
    Node r;
    r.type = Node::Type::kRepeat;
    r.min = min;
    r.max = max;
    r.children.push_back(std::move(seq->children.back()));
    seq->children.back() = std::move(r);
  }

  uint32_t count() {
    if (!(peek() >= '0' && peek() <= '9')) error("expected a number in the repetition count");
    uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<uint64_t>(peek() - '0');
      if (v > GbnfGrammar::kMaxRepetition)
        error("a repetition count over " + std::to_string(GbnfGrammar::kMaxRepetition));
      ++pos_;
    }
    return static_cast<uint32_t>(v);
  }

  static Node single(uint32_t cp) {
    Node n;
    n.type = Node::Type::kClass;
    n.set = CodePointSet({{cp, cp}});
    return n;
  }

  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const int d = tok_internal::hex_digit_value(static_cast<uint8_t>(peek()));
      if (d < 0) error("expected " + std::to_string(digits) + " hexadecimal digits in the escape");
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > CodePointSet::kMax) error("the escape is beyond U+10FFFF");
    return v;
  }

  // One character of a literal or class: an escape or one UTF-8 encoded code point.
  uint32_t character() {
    const uint8_t c = static_cast<uint8_t>(peek());
    if (c == '\\') {
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case 'x':
          return hex(2);
        case 'u':
          return hex(4);
        case 'U':
          return hex(8);
        case 'n':
          return '\n';
        case 'r':
          return '\r';
        case 't':
          return '\t';
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
          return static_cast<uint8_t>(e);
        default:
          pos_ -= 2;  // at the backslash
          error(e == '\0' ? std::string("an escape at the end of the text")
                          : "unknown escape '\\" + std::string(1, e) + "'");
      }
    }
    if (at_end()) error("unexpected end of the text");
    const tok_internal::Utf8Char ch = tok_internal::decode_utf8_strict(s_, pos_);
    if (ch.len == 0) error("invalid UTF-8 in the grammar");
    pos_ += ch.len;
    return ch.cp;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace gbnf
}  // namespace

// Its members use this file's parser types. GCC warns about that (-Wsubobject-linkage) when
// the file is compiled as part of a unity batch (CMakeLists.txt), which it takes for a header;
// the class is defined here only, so no other file can see a different definition.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
// Numbers the rules, lowers the tree to elements and checks what the engine relies on.
class GbnfCompiler {
  // This file's helper types (a class scope cannot open their namespace).
  using Node = gbnf::Node;
  using Parser = gbnf::Parser;
  using RuleText = gbnf::RuleText;
  static constexpr uint32_t kUnbounded = gbnf::kUnbounded;

 public:
  GbnfCompiler(GbnfGrammar* g, const Parser& parser) : g_(g), parser_(parser) {}

  void compile(const std::vector<RuleText>& rules) {
    for (const RuleText& r : rules) {
      if (ids_.count(r.name))
        fail("grammar: rule '", r.name, "' is defined twice (", parser_.where(r.offset), ")");
      ids_[r.name] = new_rule(r.name);
    }
    const auto root = ids_.find("root");
    if (root == ids_.end()) fail("grammar: no 'root' rule (the reply must match root)");
    g_->root_ = root->second;
    for (const RuleText& r : rules) lower_alternatives(ids_[r.name], r.body);
    drop_unfinishable();
    check_left_recursion();
    measure_shortest();
  }

 private:
  using Element = GbnfGrammar::Element;
  using Kind = GbnfGrammar::Kind;

  uint32_t new_rule(std::string name) {
    g_->alternatives_.emplace_back();
    g_->names_.push_back(std::move(name));
    return static_cast<uint32_t>(g_->alternatives_.size() - 1);
  }
  // A group or repetition's own rule, named after the rule it is written in.
  uint32_t helper_rule(uint32_t parent) {
    return new_rule(g_->names_[parent] + "#" + std::to_string(g_->alternatives_.size()));
  }

  uint32_t intern(const CodePointSet& set) {
    const auto it = class_ids_.find(set.ranges());
    if (it != class_ids_.end()) return it->second;
    g_->classes_.push_back(set);
    const uint32_t id = static_cast<uint32_t>(g_->classes_.size() - 1);
    class_ids_.emplace(set.ranges(), id);
    return id;
  }

  void add_alternative(uint32_t rule, const std::vector<Element>& seq) {
    if (g_->elements_.size() + seq.size() + 1 > GbnfGrammar::kMaxElements)
      fail("grammar: too large once its repetitions are written out (over ",
           GbnfGrammar::kMaxElements, " elements)");
    g_->alternatives_[rule].push_back(static_cast<uint32_t>(g_->elements_.size()));
    g_->elements_.insert(g_->elements_.end(), seq.begin(), seq.end());
    g_->elements_.push_back(Element{Kind::kEnd, 0});
  }

  void lower_alternatives(uint32_t rule, const Node& alt) {
    for (const Node& seq : alt.children) add_alternative(rule, lower_sequence(rule, seq));
  }

  // One element standing for node: a class, a reference, or a helper rule's reference.
  Element unit(uint32_t rule, const Node& n) {
    if (n.type == Node::Type::kClass) return Element{Kind::kChar, intern(n.set)};
    if (n.type == Node::Type::kRef) {
      const auto it = ids_.find(n.name);
      if (it == ids_.end())
        fail("grammar: undefined rule '", n.name, "' at ", parser_.where(n.offset));
      return Element{Kind::kRef, it->second};
    }
    const uint32_t helper = helper_rule(rule);
    if (n.type == Node::Type::kAlternatives) {
      lower_alternatives(helper, n);
    } else if (n.type == Node::Type::kSequence) {
      add_alternative(helper, lower_sequence(helper, n));
    } else {  // a repetition repeated: x** or x{2}?
      Node seq;
      seq.children.push_back(n);
      add_alternative(helper, lower_sequence(helper, seq));
    }
    return Element{Kind::kRef, helper};
  }

  std::vector<Element> lower_sequence(uint32_t rule, const Node& seq) {
    std::vector<Element> out;
    auto append = [&](const Element& e) {
      if (out.size() >= GbnfGrammar::kMaxElements)
        fail("grammar: too large once its repetitions are written out (over ",
             GbnfGrammar::kMaxElements, " elements)");
      out.push_back(e);
    };
    for (const Node& item : seq.children) {
      if (item.type == Node::Type::kAlternatives && item.children.size() == 1) {
        // A group of one sequence is that sequence.
        for (const Element& e : lower_sequence(rule, item.children[0])) append(e);
        continue;
      }
      if (item.type != Node::Type::kRepeat) {
        append(unit(rule, item));
        continue;
      }
      const Element x = unit(rule, item.children[0]);
      for (uint32_t i = 0; i < item.min; ++i) append(x);
      if (item.max == kUnbounded) {
        // R ::= x R | (empty)
        const uint32_t r = helper_rule(rule);
        add_alternative(r, {x, Element{Kind::kRef, r}});
        add_alternative(r, {});
        append(Element{Kind::kRef, r});
      } else if (item.max > item.min) {
        // O1 ::= x | (empty); Ok ::= x O(k-1) | (empty): at most max - min more, nested so
        // that each state holds one choice (x? x? x? ... would hold one per copy).
        uint32_t inner = 0;
        for (uint32_t k = 1; k <= item.max - item.min; ++k) {
          const uint32_t o = helper_rule(rule);
          if (k == 1)
            add_alternative(o, {x});
          else
            add_alternative(o, {x, Element{Kind::kRef, inner}});
          add_alternative(o, {});
          inner = o;
        }
        append(Element{Kind::kRef, inner});
      }
    }
    return out;
  }

  // Productive: a rule that some finite text completes. An alternative with an unproductive
  // element can be entered but never left; dropping it leaves the same language, and every
  // state the engine then reaches can end in a whole text.
  void drop_unfinishable() {
    const size_t n = g_->alternatives_.size();
    // A class is productive unless empty; a reference when its rule is.
    const std::vector<bool> productive = rules_where_some_alternative(
        [&](const Element& e) { return !g_->classes_[e.arg].empty(); });
    auto alt_productive = [&](uint32_t start) {
      for (uint32_t p = start; g_->elements_[p].kind != Kind::kEnd; ++p) {
        const Element& e = g_->elements_[p];
        if (e.kind == Kind::kChar ? g_->classes_[e.arg].empty() : !productive[e.arg]) return false;
      }
      return true;
    };
    if (!productive[g_->root_])
      fail(
          "grammar: root admits no complete text (each of its ways recurses without end or "
          "needs an empty character class)");
    for (uint32_t r = 0; r < n; ++r) {
      auto& alts = g_->alternatives_[r];
      alts.erase(
          std::remove_if(alts.begin(), alts.end(), [&](uint32_t a) { return !alt_productive(a); }),
          alts.end());
    }
  }

  // The least set of rules with an alternative whose every element holds: a class when
  // char_holds says so, a reference when its rule is in the set. A worklist (each alternative
  // counts its elements not yet known to hold), linear in the grammar's size: a client's grammar
  // of many chained rules must not cost a pass per rule.
  template <class CharHolds>
  std::vector<bool> rules_where_some_alternative(CharHolds char_holds) const {
    const size_t n = g_->alternatives_.size();
    std::vector<bool> in(n, false);
    std::vector<uint32_t> missing;                // per alternative: elements not yet known to hold
    std::vector<uint32_t> rule_of;                // per alternative
    std::vector<std::vector<uint32_t>> users(n);  // per rule: alternatives referring to it
    std::vector<uint32_t> ready;                  // rules found in the set, not yet propagated
    for (uint32_t r = 0; r < n; ++r)
      for (uint32_t a : g_->alternatives_[r]) {
        const auto alt = static_cast<uint32_t>(missing.size());
        uint32_t count = 0;
        bool impossible = false;
        for (uint32_t p = a; g_->elements_[p].kind != Kind::kEnd; ++p) {
          const Element& e = g_->elements_[p];
          if (e.kind == Kind::kChar) {
            impossible = impossible || !char_holds(e);
          } else {
            ++count;
            users[e.arg].push_back(alt);
          }
        }
        missing.push_back(impossible ? UINT32_MAX : count);
        rule_of.push_back(r);
        if (count == 0 && !impossible && !in[r]) {
          in[r] = true;
          ready.push_back(r);
        }
      }
    while (!ready.empty()) {
      const uint32_t s = ready.back();
      ready.pop_back();
      for (uint32_t alt : users[s]) {
        if (missing[alt] == UINT32_MAX || --missing[alt] != 0) continue;
        const uint32_t r = rule_of[alt];
        if (!in[r]) {
          in[r] = true;
          ready.push_back(r);
        }
      }
    }
    return in;
  }

  // The fewest code points of each rule's texts, then of each alternative's rest from every
  // element: Knuth's generalization of Dijkstra's algorithm (a rule's length is final when it
  // is the least of those pending; an alternative's, once all its references are final), in
  // O(size · log rules). Every rule left is productive, so every length is finite; nested
  // repetitions can pass 2^32, where the lengths saturate.
  void measure_shortest() {
    const size_t n = g_->alternatives_.size();
    const auto add = [](uint64_t a, uint64_t b) { return std::min<uint64_t>(a + b, UINT32_MAX); };
    std::vector<uint64_t> sum;                      // per alternative: its classes and final refs
    std::vector<uint32_t> missing, rule_of;         // per alternative
    std::vector<std::vector<uint32_t>> users(n);    // per rule: alternatives referring to it
    using Pending = std::pair<uint64_t, uint32_t>;  // (length, rule)
    std::priority_queue<Pending, std::vector<Pending>, std::greater<>> queue;
    for (uint32_t r = 0; r < n; ++r)
      for (uint32_t a : g_->alternatives_[r]) {
        const auto alt = static_cast<uint32_t>(sum.size());
        uint64_t chars = 0;
        uint32_t refs = 0;
        for (uint32_t p = a; g_->elements_[p].kind != Kind::kEnd; ++p) {
          if (g_->elements_[p].kind == Kind::kChar) {
            chars = add(chars, 1);
          } else {
            ++refs;
            users[g_->elements_[p].arg].push_back(alt);
          }
        }
        sum.push_back(chars);
        missing.push_back(refs);
        rule_of.push_back(r);
        if (refs == 0) queue.emplace(chars, r);
      }
    std::vector<uint64_t> shortest(n, UINT32_MAX);
    std::vector<bool> done(n, false);
    while (!queue.empty()) {
      const auto [length, r] = queue.top();
      queue.pop();
      if (done[r]) continue;
      done[r] = true;
      shortest[r] = length;
      for (uint32_t alt : users[r]) {
        sum[alt] = add(sum[alt], length);
        if (--missing[alt] == 0) queue.emplace(sum[alt], rule_of[alt]);
      }
    }
    std::vector<uint32_t>& rest = g_->shortest_rest_;
    rest.assign(g_->elements_.size(), 0);
    for (size_t p = g_->elements_.size(); p-- > 0;) {
      const Element& e = g_->elements_[p];
      if (e.kind == Kind::kEnd) continue;  // 0: the alternative is done
      const uint64_t own = e.kind == Kind::kChar ? 1 : shortest[e.arg];
      rest[p] = static_cast<uint32_t>(add(own, rest[p + 1]));
    }
  }

  // The engine expands the references at a stack's top until a character class is there; a
  // rule that reaches itself without reading a character would expand forever.
  void check_left_recursion() {
    const size_t n = g_->alternatives_.size();
    // Nullable: a rule with an alternative of nullable references only (a class reads one).
    const std::vector<bool> nullable =
        rules_where_some_alternative([](const Element&) { return false; });
    // Rules reached before a character: each alternative's leading references, up to and
    // including the first that cannot be empty.
    std::vector<std::vector<uint32_t>> left(n);
    for (uint32_t r = 0; r < n; ++r)
      for (uint32_t a : g_->alternatives_[r])
        for (uint32_t p = a; g_->elements_[p].kind == Kind::kRef; ++p) {
          left[r].push_back(g_->elements_[p].arg);
          if (!nullable[g_->elements_[p].arg]) break;
        }
    // Depth-first without recursion (a chain of rules may be long): 0 unseen, 1 on the path,
    // 2 done.
    std::vector<uint8_t> mark(n, 0);
    std::vector<std::pair<uint32_t, size_t>> path;
    for (uint32_t start = 0; start < n; ++start) {
      if (mark[start]) continue;
      path.emplace_back(start, 0);
      mark[start] = 1;
      while (!path.empty()) {
        auto& [r, next] = path.back();
        if (next == left[r].size()) {
          mark[r] = 2;
          path.pop_back();
          continue;
        }
        const uint32_t s = left[r][next++];
        if (mark[s] == 1) {
          const std::string& name = g_->names_[s];
          const size_t hash = name.find('#');
          const std::string what = hash == std::string::npos ? "rule '" + name + "'"
                                                             : "a group or repetition in rule '" +
                                                                   name.substr(0, hash) + "'";
          fail("grammar: left recursion: ", what,
               " can reach itself before reading a character (so can a repetition of something "
               "that can be empty); write the recursion on the right");
        }
        if (mark[s] == 0) {
          mark[s] = 1;
          path.emplace_back(s, 0);
        }
      }
    }
  }

  GbnfGrammar* g_;
  const Parser& parser_;
  std::map<std::string, uint32_t> ids_;
  std::map<std::vector<std::pair<uint32_t, uint32_t>>, uint32_t> class_ids_;
};
#pragma GCC diagnostic pop

GbnfGrammar::GbnfGrammar(std::string_view text) {
  using namespace gbnf;  // this file's helpers
  Parser parser(text);
  const std::vector<RuleText> rules = parser.parse();
  GbnfCompiler(this, parser).compile(rules);
}

}  // namespace xtile::server
