// llama-server's `grammar` field: the GBNF parser (what it takes, what it refuses and where) and
// GbnfPrefix keeping a reply within the grammar byte by byte. The engine is checked against two
// independent recognizers written for the tests: std::wregex on random regular grammars (each
// written both as GBNF and as an ECMAScript expression from one random tree), and an Earley
// chart parser (gbnf_oracle.h) for whether each prefix of random texts can still become one of
// the grammar's texts, on recursive grammars too. Then the token mask over Qwen's vocabulary,
// through the memo of steps, against the direct check of each token.
#include "server/gbnf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "gbnf_oracle.h"
#include "gguf/gguf.h"
#include "mask_check.h"
#include "random_regular.h"
#include "server/gbnf_prefix.h"
#include "server/reply_constraint.h"
#include "server/think_first.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {
namespace {
namespace gbnf_test {  // unity batches: CMakeLists.txt

using test::RandomRegular;
using test::utf8;

// How many bytes of text the grammar takes one by one, and whether it may end / is complete
// after all of them.
struct Fed {
  size_t taken = 0;
  bool may_end = false, complete = false;
};
Fed feed(const GbnfGrammar& g, const std::string& text) {
  GbnfPrefix p(&g);
  Fed f;
  for (; f.taken < text.size(); ++f.taken)
    if (!p.feed(static_cast<uint8_t>(text[f.taken]))) return f;
  f.may_end = p.may_end();
  f.complete = p.complete();
  return f;
}

bool whole(const char* grammar, const std::string& text) {
  const GbnfGrammar g(grammar);
  const Fed f = feed(g, text);
  return f.taken == text.size() && f.may_end;
}

std::string repeated(const std::string& s, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += s;
  return out;
}

std::string error_of(const std::string& grammar) {
  try {
    GbnfGrammar g(grammar);
    GbnfPrefix start(&g);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Gbnf, TakesTheSyntaxOfLlamaCppGrammars) {
  const char* chess = R"g(# a game in notation
root ::= (
    # the first move
    "1. " move " " move "\n"
    ([1-9] [0-9]? ". " move " " move "\n")+
)
move ::= (pawn | nonpawn | castle) [+#]?
pawn ::= [a-h] ([1-8] | "x" [a-h] [1-8]) ("=" [NBKQR])?
nonpawn ::= [NBKQR] [a-h]? [1-8]? "x"? [a-h] [1-8]
castle ::= "O-O" ("-O")?
)g";
  EXPECT_TRUE(whole(chess, "1. e4 e5\n2. Nf3 Nc6\n3. Bb5 a6\n"));
  EXPECT_TRUE(whole(chess, "1. e4 e5\n2. O-O-O Qxe5+\n"));
  EXPECT_FALSE(whole(chess, "1. e4 e5\n"));  // at least one more line
  EXPECT_FALSE(whole(chess, "1. e9 e5\n2. a3 a6\n"));

  const char* arithmetic = R"g(root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
)g";
  EXPECT_TRUE(whole(arithmetic, "(a+1)*b= 7\n"));
  EXPECT_TRUE(whole(arithmetic, "x=y\n(1)=2\n"));
  EXPECT_FALSE(whole(arithmetic, "(a+1*b= 7\n"));

  // Escapes, classes, any character, counted repetition, alternatives continued after '|'.
  EXPECT_TRUE(whole(R"g(root ::= "\x41\u00e9\U0001F600\t\"\\" [\[\]\-] .)g", "Aé😀\t\"\\-中"));
  EXPECT_TRUE(whole("root ::= [^a-z]{2,3}", "A1B"));
  EXPECT_FALSE(whole("root ::= [^a-z]{2,3}", "A1bB"));
  EXPECT_FALSE(whole("root ::= [^a-z]{2,3}", "ABCD"));
  EXPECT_TRUE(whole("root ::= \"a\"{3,}", "aaaaa"));
  EXPECT_FALSE(whole("root ::= \"a\"{3,}", "aa"));
  EXPECT_TRUE(whole("root ::= \"x\" { 2 } \"y\"{0 , 1}", "xx"));
  EXPECT_TRUE(whole("root ::= \"a\" |\n  \"b\" |\n\n  \"c\"\n", "c"));
  EXPECT_TRUE(whole("root ::= \"\" | \"a\"", ""));
  EXPECT_TRUE(whole("root ::= (\"ab\")* \"c\"?", "ababc"));
  EXPECT_TRUE(whole("root ::= a_b\na_b ::= [0-9]", "7"));
  EXPECT_TRUE(whole("root ::= [ぁ-ゟ]+", "ひらがな"));
  // Right recursion stays flat: a long list costs no stack depth.
  EXPECT_TRUE(whole("root ::= item root | item\nitem ::= [a-z]", std::string(2000, 'q')));
}

TEST(Gbnf, RefusesWhatItCannotKeepNamingWhere) {
  const std::pair<std::string, const char*> cases[] = {
      {"root ::= foo", "undefined rule 'foo' at line 1, column 10"},
      {"item ::= \"a\"", "no 'root' rule"},
      {"root ::= \"a\"\nroot ::= \"b\"", "rule 'root' is defined twice"},
      {"root ::= root \"a\" | \"b\"", "left recursion: rule 'root'"},
      {"root ::= x\nx ::= y? x \"a\" | \"b\"\ny ::= \"c\"", "left recursion: rule 'x'"},
      {"root ::= (\"a\"*)*", "left recursion: a group or repetition in rule 'root'"},
      {"root ::= \"a\" root", "root admits no complete text"},
      {"root ::= [^\\x00-\\U0010FFFF]", "root admits no complete text"},
      {"root ::= \"abc", "unterminated literal at line 1, column 14"},
      {"root ::= [abc", "unterminated character class"},
      {"root ::= \"\\q\"", "unknown escape '\\q' at line 1, column 11"},
      {"root ::= \"\\u12\"", "expected 4 hexadecimal digits"},
      {"root ::= [z-a]", "runs backwards"},
      {"root ::= \"a\"{2001}", "a repetition count over 2000"},
      {"root ::= \"a\"{3,2}", "maximum is below its minimum"},
      {"root ::= \"a\"{x}", "expected a number in the repetition count"},
      {"root ::= * \"a\"", "'*' has nothing before it to repeat"},
      {"root ::= (\"a\" | \"b\"", "expected ')'"},
      {"root := \"a\"", "expected '::=' after the rule name 'root'"},
      {"::= \"a\"", "expected a rule name at line 1, column 1"},
      {"root ::= \"a\"\n  | \"b\"", "expected a rule name at line 2, column 3"},
      {"root ::= \"a\" )", "expected the end of the line after rule 'root'"},
      {"root ::= <think> \"a\"", "token references"},
      {"root ::= !<[12]>", "token references"},
      {"root ::= \"\xff\"", "invalid UTF-8 in the grammar"},
      {"root ::= \"\xc0\xaf\"", "invalid UTF-8 in the grammar"},
      {"root ::= " + repeated("\"a\"{0,2000} ", 200), "too large"},
      {"root ::= " + std::string(200, '(') + "\"a\"" + std::string(200, ')'),
       "nested deeper than 128"},
      {"root ::= \"a\"" + std::string(100000, '?'), "more than 8 quantifiers in a row"},
  };
  for (const auto& [grammar, message] : cases) {
    const std::string e = error_of(grammar);
    EXPECT_NE(e.find(message), std::string::npos) << grammar << "\n -> " << e;
    EXPECT_EQ(e.rfind("grammar: ", 0), 0u) << e;
  }
  // A start deeper than the engine keeps: refused when the state is made (the request's 400).
  std::string deep = "root ::= r0\n";
  for (int i = 0; i < 600; ++i)
    deep.append("r")
        .append(std::to_string(i))
        .append(" ::= r")
        .append(std::to_string(i + 1))
        .append(" \"x\"\n");
  deep += "r600 ::= \"y\"\n";
  EXPECT_NE(error_of(deep).find("passes the engine's limits"), std::string::npos);
  // A grammar that passes them later (every split of the a's between the two runs is a stack of
  // its own): an Error at the step, never a refused byte (a dead end for a sampler).
  const GbnfGrammar splits("root ::= [a-z]{0,1500} [a-z]{0,1500} \"!\"");
  GbnfPrefix p(&splits);
  EXPECT_THROW(
      {
        for (int i = 0; i < 3000; ++i) ASSERT_TRUE(p.feed('a')) << i;
      },
      Error);
}

// After a think block, up to four blanks are the gap Qwen3 writes; a grammar that itself begins
// with blanks gets the ones after them (no dead end once the gap is full).
TEST(Gbnf, AGrammarThatBeginsWithABlankFollowsAThinkBlock) {
  const GbnfGrammar g("root ::= \" \" [0-9]+");
  ThinkFirst<GbnfPrefix> p(GbnfPrefix(&g), /*starts_in_think=*/false);
  EXPECT_TRUE(p.take("<think>sum</think>\n\n\n\n 42"));
  EXPECT_TRUE(p.may_end());
  ThinkFirst<GbnfPrefix> q(GbnfPrefix(&g), /*starts_in_think=*/false);
  EXPECT_TRUE(q.take(" 7"));  // no think block: the grammar's from the first byte
  EXPECT_TRUE(q.may_end());
}

// 100 000 rules in a chain, each one's completion known only once the next one's is: the
// compiler's fixpoints work through a worklist (a pass per rule would take 10^10 steps, far
// past this test's time limit), and right recursion keeps the engine's stacks flat.
TEST(Gbnf, ALongChainOfRulesCompiles) {
  constexpr int kRules = 100000;
  std::string text = "root ::= r0\n";
  for (int i = 0; i < kRules; ++i)
    text.append("r")
        .append(std::to_string(i))
        .append(" ::= \"x\" r")
        .append(std::to_string(i + 1))
        .append("\n");
  text.append("r").append(std::to_string(kRules)).append(" ::= \"y\"\n");
  const GbnfGrammar g(text);
  EXPECT_EQ(g.rule_count(), static_cast<size_t>(kRules) + 2);
  const Fed f = feed(g, std::string(3000, 'x') + "y");
  EXPECT_EQ(f.taken, 3000u);  // a "y" only after all 100 000
}

TEST(Gbnf, CompleteOnlyWhenNothingMayFollow) {
  const GbnfGrammar g("root ::= \"ab\" | \"abc\"");
  Fed f = feed(g, "ab");
  EXPECT_TRUE(f.may_end);
  EXPECT_FALSE(f.complete);
  f = feed(g, "abc");
  EXPECT_TRUE(f.may_end);
  EXPECT_TRUE(f.complete);
  f = feed(g, "a");
  EXPECT_FALSE(f.may_end);
  EXPECT_EQ(feed(g, "abd").taken, 2u);
}

TEST(Gbnf, ReadsMultiByteCharactersByteByByte) {
  // [é-ü] is U+00E9..U+00FC: "é" is C3 A9, "à" C3 A0 (below the range), "中" E4 B8 AD.
  const GbnfGrammar g("root ::= [é-ü]+");
  EXPECT_EQ(feed(g, "é").taken, 2u);
  EXPECT_EQ(feed(g, "à").taken, 1u);   // C3 could still begin é..ü; A0 cannot end one
  EXPECT_EQ(feed(g, "中").taken, 0u);  // no three-byte character is in the class
  GbnfPrefix p(&g);
  ASSERT_TRUE(p.feed(0xc3));
  EXPECT_FALSE(p.may_end());  // half a character is not a whole text
}

TEST(Gbnf, RefusesInvalidUtf8AtItsFirstByte) {
  const GbnfGrammar any("root ::= .+");
  EXPECT_EQ(feed(any, "a\xc0\xaf").taken, 1u);         // overlong '/'
  EXPECT_EQ(feed(any, "\xe0\x80\x80").taken, 1u);      // overlong, three bytes
  EXPECT_EQ(feed(any, "\xed\xa0\x80").taken, 1u);      // a surrogate
  EXPECT_EQ(feed(any, "\xf4\x90\x80\x80").taken, 1u);  // past U+10FFFF
  EXPECT_EQ(feed(any, "\xf5").taken, 0u);
  EXPECT_EQ(feed(any, "\x80").taken, 0u);  // a continuation byte first
  EXPECT_EQ(feed(any,
                 "\xc3"
                 "a")
                .taken,
            1u);
  const Fed f = feed(any, "\xf0\x9f\x98\x80\xef\xbf\xbf");
  EXPECT_EQ(f.taken, 7u);
  EXPECT_TRUE(f.may_end);
}

// Feeds text byte by byte; at each character's end checks the engine against the Earley
// recognizer (the prefix may continue; with all of it, a whole text), and after a refused byte
// that the recognizer agrees. Inside a character, an accepted byte must have some next byte
// accepted (no dead end). Returns whether the engine took all of the text as a whole text.
bool check_against_earley(const GbnfGrammar& g, const std::u32string& text) {
  const test::EarleyRecognizer earley(g);
  GbnfPrefix p(&g);
  std::u32string read;
  for (char32_t c : text) {
    const std::string bytes = utf8(std::u32string(1, c));
    read += c;
    const auto [viable, whole] = earley.check(read);
    bool took = true;
    for (size_t i = 0; i < bytes.size() && took; ++i) {
      took = p.feed(static_cast<uint8_t>(bytes[i]));
      if (took && i + 1 < bytes.size()) {
        bool some_next = false;
        for (int b = 0x80; b < 0xc0 && !some_next; ++b)
          some_next = p.accepts(std::string(1, static_cast<char>(b)));
        EXPECT_TRUE(some_next) << "a dead end inside a character";
      }
    }
    EXPECT_EQ(took, viable) << utf8(read);
    if (!took || !viable) return false;
    EXPECT_EQ(p.may_end(), whole) << utf8(read);
  }
  return p.may_end();
}

TEST(Gbnf, AgreesWithStdRegexOnRandomRegularGrammars) {
  int grammars = 0, texts = 0, in_language = 0;
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    RandomRegular r(seed);
    std::unique_ptr<GbnfGrammar> g;
    try {
      g = std::make_unique<GbnfGrammar>(r.gbnf());
    } catch (const Error& e) {
      ADD_FAILURE() << r.gbnf() << ": " << e.what();
      continue;
    }
    const std::wregex re(r.regex(), std::regex::ECMAScript);
    ++grammars;
    for (int t = 0; t < 20; ++t) {
      const std::u32string text = r.text();
      const std::wstring wtext(text.begin(), text.end());
      const bool expected = std::regex_match(wtext, re);
      const bool engine = check_against_earley(*g, text);
      ASSERT_EQ(engine, expected) << r.gbnf() << "text: " << utf8(text);
      ++texts;
      in_language += expected;
    }
  }
  EXPECT_EQ(grammars, 300);
  // The derivations keep a share of the texts in the language and the mutations take others
  // out: both sides are tested.
  EXPECT_GT(in_language, texts / 5);
  EXPECT_LT(in_language, texts * 4 / 5);
}

// A random text of a compiled grammar: a random walk over its alternatives (the shortest
// way out once the text is long), then 0-2 random edits.
class Deriver {
 public:
  Deriver(const GbnfGrammar& g, uint32_t seed) : g_(g), rng_(seed) {}

  std::u32string text() {
    std::u32string out;
    rule(g_.root(), 0, &out);
    for (int m = static_cast<int>(rng_() % 3); m > 0; --m) {
      const size_t at = out.empty() ? 0 : rng_() % out.size();
      const char32_t c = U"[]0,\"-+(xyab|é"[rng_() % 14];
      if (rng_() % 2 && !out.empty())
        out[at] = c;
      else
        out.insert(out.begin() + static_cast<ptrdiff_t>(at), c);
    }
    return out;
  }

 private:
  void rule(uint32_t r, int depth, std::u32string* out) {
    const std::vector<uint32_t>& alts = g_.alternatives(r);
    uint32_t alt = alts[rng_() % alts.size()];
    if (depth > 6 || out->size() > 24) {  // the alternative with the fewest references
      size_t fewest = SIZE_MAX;
      for (uint32_t a : alts) {
        size_t refs = 0;
        for (uint32_t p = a; g_.element(p).kind != GbnfGrammar::Kind::kEnd; ++p)
          refs += g_.element(p).kind == GbnfGrammar::Kind::kRef;
        if (refs < fewest) fewest = refs, alt = a;
      }
    }
    for (uint32_t p = alt; g_.element(p).kind != GbnfGrammar::Kind::kEnd; ++p) {
      const GbnfGrammar::Element& e = g_.element(p);
      if (e.kind == GbnfGrammar::Kind::kRef) {
        rule(e.arg, depth + 1, out);
      } else {
        const auto& ranges = g_.char_class(e.arg).ranges();
        const auto [lo, hi] = ranges[rng_() % ranges.size()];
        const uint32_t span = std::min<uint32_t>(hi - lo, 50);
        char32_t c = static_cast<char32_t>(lo + rng_() % (span + 1));
        if (c >= 0xd800 && c <= 0xdfff) c = U'x';
        *out += c;
      }
    }
  }

  const GbnfGrammar& g_;
  std::mt19937 rng_;
};

TEST(Gbnf, AgreesWithAnEarleyParserOnRecursiveGrammars) {
  const char* grammars[] = {
      // Nested lists (not regular), with empty alternatives and a nullable prefix.
      "root ::= ws list ws\nlist ::= \"[\" ws (item (\",\" ws item)*)? ws \"]\"\n"
      "item ::= list | [0-9]+ | \"\\\"\" [^\"]* \"\\\"\"\nws ::= \" \"?",
      // Arithmetic with precedence.
      "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\nterm ::= factor ((\"*\" | \"/\") "
      "factor)*\nfactor ::= \"-\"? ([0-9]+ | \"(\" expr \")\")",
      // Ambiguous: several stacks at once.
      "root ::= a | b\na ::= \"x\"* \"y\" c?\nb ::= \"x\" \"x\"* \"y\" \"y\"?\nc ::= \"y\" | "
      "\"yy\"",
      // Palindromes over a, b (center marked): a stack as deep as half the text.
      "root ::= \"a\" root \"a\" | \"b\" root \"b\" | \"|\"",
  };
  int seed = 0;
  for (const char* text_of_grammar : grammars) {
    const GbnfGrammar g(text_of_grammar);
    Deriver d(g, static_cast<uint32_t>(++seed));
    int texts = 0, whole_texts = 0;
    for (int t = 0; t < 500; ++t) {
      ++texts;
      whole_texts += check_against_earley(g, d.text());
      ASSERT_FALSE(HasFailure()) << text_of_grammar;
    }
    // Both kinds of text were tried: whole ones and ones an edit took out of the language.
    EXPECT_GT(whole_texts, texts / 5) << text_of_grammar;
    EXPECT_LT(whole_texts, texts * 4 / 5) << text_of_grammar;
  }
}

// The fewest characters that make the text whole from `from` (a state between characters), by
// breadth-first search over the engine's states, told apart by their memo keys, reading one
// character per range of each class: a shortest completion needs one character per class, and
// any member does. UINT32_MAX when none is found within `limit` characters.
uint32_t searched_shortest(const GbnfGrammar& g, const GbnfPrefix& from, uint32_t limit) {
  if (from.may_end()) return 0;
  std::vector<std::string> reps;
  for (uint32_t c = 0; c < g.class_count(); ++c)
    for (const auto& [lo, hi] : g.char_class(c).ranges()) {
      const uint32_t cp = lo >= 0xd800 && lo <= 0xdfff ? 0xe000 : lo;
      if (cp <= hi) reps.push_back(utf8(std::u32string(1, static_cast<char32_t>(cp))));
    }
  std::set<std::string> seen;
  std::vector<GbnfPrefix> frontier = {from};
  for (uint32_t depth = 1; depth <= limit && !frontier.empty(); ++depth) {
    std::vector<GbnfPrefix> next;
    for (const GbnfPrefix& s : frontier)
      for (const std::string& c : reps) {
        GbnfPrefix t = s;
        if (!t.take(c)) continue;
        if (t.may_end()) return depth;
        std::string key;
        t.memo_key(&key);
        if (seen.insert(key).second) next.push_back(std::move(t));
      }
    frontier = std::move(next);
  }
  return UINT32_MAX;
}

// shortest_completion() (the rests measured at compile time, summed over a stack) against the
// search above, at every byte of texts of random regular grammars and of the recursive ones.
// Inside a multi-byte character it is one (the character) plus the least over the characters
// the bytes so far may still become: for each range of each class, its first such code point.
TEST(Gbnf, ShortestCompletionIsTheFewestCharactersThatMakeTheTextWhole) {
  constexpr uint32_t kLimit = 10;
  int checked = 0, inside = 0, far = 0;
  auto check_text = [&](const GbnfGrammar& g, const std::u32string& text) {
    const std::string bytes = utf8(text);
    GbnfPrefix p(&g);
    for (size_t i = 0; i <= bytes.size(); ++i) {
      const bool boundary = i == bytes.size() || (static_cast<uint8_t>(bytes[i]) & 0xc0) != 0x80;
      const uint32_t got = p.shortest_completion();
      if (boundary) {
        const uint32_t want = searched_shortest(g, p, kLimit);
        if (want == UINT32_MAX) {
          ASSERT_GT(got, kLimit) << "after " << bytes.substr(0, i);
          ++far;
        } else {
          ASSERT_EQ(got, want) << "after " << bytes.substr(0, i);
        }
        ++checked;
      } else {
        // The character being read: its first byte at `start`, its length from that byte.
        size_t start = i;
        while ((static_cast<uint8_t>(bytes[start]) & 0xc0) == 0x80) --start;
        const uint8_t lead = static_cast<uint8_t>(bytes[start]);
        const size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
        uint32_t want = UINT32_MAX;
        for (uint32_t c = 0; c < g.class_count(); ++c)
          for (const auto& [lo, hi] : g.char_class(c).ranges())
            for (uint32_t cp = lo; cp <= hi && cp <= lo + 0x40000;) {
              const std::string enc = utf8(std::u32string(1, static_cast<char32_t>(cp)));
              if (enc.size() == length && enc.compare(0, i - start, bytes, start, i - start) == 0) {
                GbnfPrefix t = p;
                if (t.take(enc.substr(i - start))) {
                  const uint32_t rest = searched_shortest(g, t, kLimit);
                  if (rest != UINT32_MAX) want = std::min(want, rest + 1);
                  break;  // the first that fits: a stack whose top holds it takes any alike
                }
              }
              // The next code point that could share the bytes so far.
              cp = cp + 1 == 0xd800 ? 0xe000 : cp + 1;
              if (enc.size() > length) break;
            }
        if (want != UINT32_MAX) {
          ASSERT_EQ(got, want) << "inside a character after " << bytes.substr(0, i);
          ++inside;
        }
      }
      if (i == bytes.size() || !p.feed(static_cast<uint8_t>(bytes[i]))) break;
    }
  };
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    RandomRegular r(seed);
    const GbnfGrammar g(r.gbnf());
    for (int t = 0; t < 6; ++t) ASSERT_NO_FATAL_FAILURE(check_text(g, r.text())) << r.gbnf();
  }
  const GbnfGrammar nested(
      "root ::= ws list ws\nlist ::= \"[\" ws (item (\",\" ws item)*)? ws \"]\"\n"
      "item ::= list | [0-9]{2,5} | \"\\\"\" [^\"]* \"é\\\"\"\nws ::= \" \"?");
  Deriver d(nested, 7);
  for (int t = 0; t < 60; ++t) ASSERT_NO_FATAL_FAILURE(check_text(nested, d.text()));
  EXPECT_EQ(GbnfPrefix(&nested).shortest_completion(), 2u);  // "[]"
  const GbnfGrammar wide("root ::= [a-z]{2000} [a-z]{2000} [a-z]{1000}? \"x\"{1000}");
  EXPECT_EQ(GbnfPrefix(&wide).shortest_completion(), 5000u);
  // 2000^3 characters at least: past 2^32, where the lengths saturate.
  const GbnfGrammar huge("root ::= ((\"a\"{2000}){2000}){2000}");
  EXPECT_EQ(GbnfPrefix(&huge).shortest_completion(), UINT32_MAX);
  EXPECT_GT(checked, 2000);
  EXPECT_GT(inside, 50);
  EXPECT_GT(far, 0);
}

// Qwen's vocabulary: the mask (through the memo of steps) keeps exactly the tokens that the
// direct check allows, along a text, for a grammar with several stacks in play.
class GbnfConstraintQwen : public test::QwenVocab {};

TEST_F(GbnfConstraintQwen, MaskKeepsExactlyTheTokensThatContinueTheText) {
  const GbnfGrammar g(R"g(root ::= "Answer: " (yes | no) "\n" reason
yes ::= "yes" | "yes, " [a-z ]+
no ::= "no"
reason ::= ("- " [^\n]{1,40} "\n"){1,3}
)g");
  GrammarConstraint<GbnfPrefix> c(*bytes_, GbnfPrefix(&g));
  const std::vector<int32_t> ids =
      tok_->encode("Answer: yes, of course\n- it is 中文 😀\n- done\n", false, false);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(test::expect_mask_matches_allows(c, tok_->n_vocab(), 7)) << i;
    ASSERT_TRUE(c.allows(ids[i])) << i;
    ASSERT_TRUE(c.accept(ids[i]));
  }
  for (int32_t id : tok_->eog_ids()) EXPECT_TRUE(c.allows(id));  // a whole text: may end
  EXPECT_FALSE(c.complete());                                    // a third line may follow
}

TEST_F(GbnfConstraintQwen, ThinksFirstWhenAskedAndReadsAGrammarThatBeginsWithATag) {
  const GbnfGrammar g("root ::= \"<answer>\" [0-9]+ \"</answer>\"");
  GrammarConstraint<ThinkFirst<GbnfPrefix>> c(*bytes_,
                                              ThinkFirst<GbnfPrefix>(GbnfPrefix(&g), false));
  for (int32_t id : tok_->encode("<think>\nsum</think>\n\n<answer>42</answer>", false, false)) {
    ASSERT_NO_FATAL_FAILURE(test::expect_mask_matches_allows(c, tok_->n_vocab(), 13));
    ASSERT_TRUE(c.accept(id)) << id;
  }
  EXPECT_TRUE(c.complete());
  GrammarConstraint<ThinkFirst<GbnfPrefix>> direct(*bytes_,
                                                   ThinkFirst<GbnfPrefix>(GbnfPrefix(&g), false));
  for (int32_t id : tok_->encode("<answer>7</answer>", false, false))
    ASSERT_TRUE(direct.accept(id)) << id;
  EXPECT_TRUE(direct.complete());
}

}  // namespace gbnf_test
}  // namespace
}  // namespace xtile::server
