// JSON Schema's `pattern`: the translation of an ECMA-262 expression into a GBNF grammar
// (json_pattern.h) checked against std::wregex's own search on random expressions and texts,
// the patterns Pydantic models carry, the refusals, and JsonPrefix keeping a string value within
// its pattern byte by byte (escapes included).
#include "server/json_pattern.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>

#include "base/error.h"
#include "random_regular.h"
#include "server/gbnf_prefix.h"
#include "server/json_prefix.h"
#include "server/json_schema.h"

namespace xtile::server {
namespace {
namespace json_pattern_test {  // unity batches: CMakeLists.txt

using test::RandomRegular;
using test::utf8;

// Whether the string (UTF-8) is one of the pattern's, by the GBNF engine.
bool engine_matches(const GbnfGrammar& g, const std::string& s) {
  GbnfPrefix p(&g);
  return p.take(s) && p.may_end();
}

std::wstring wide(const std::u32string& s) {
  return std::wstring(s.begin(), s.end());
}

TEST(JsonPattern, MatchesAsStdRegexSearchesOnRandomExpressions) {
  int searched = 0, found = 0;
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    RandomRegular r(seed);
    std::mt19937 rng(seed);
    const bool start = rng() % 2, end = rng() % 2;
    const std::wstring regex = std::wstring(start ? L"^" : L"") + L"(?:" + r.regex() + L")" +
                               std::wstring(end ? L"$" : L"");
    const std::string pattern = utf8(std::u32string(regex.begin(), regex.end()));
    std::shared_ptr<const GbnfGrammar> g;
    try {
      g = compile_pattern(pattern);
    } catch (const Error& e) {
      ADD_FAILURE() << pattern << ": " << e.what();
      continue;
    }
    const std::wregex re(regex, std::regex::ECMAScript);
    for (int t = 0; t < 20; ++t) {
      std::u32string text = r.text();
      if (rng() % 2) text = U"x" + text;  // text around a match: found by a search only
      if (rng() % 2) text += U"é";
      const bool expected = std::regex_search(wide(text), re);
      ASSERT_EQ(engine_matches(*g, utf8(text)), expected)
          << "pattern " << pattern << "\ngbnf " << pattern_to_gbnf(pattern) << "text "
          << utf8(text);
      ++searched;
      found += expected;
    }
  }
  EXPECT_GT(found, searched / 5);
  EXPECT_LT(found, searched * 4 / 5);
}

// Lookaheads at the start: `^(?=A)(?!B)C` with A, B and C random expressions (each of them a
// quarter of the time ending in '$'), against std::wregex's search, on texts written from each
// part's language and mutated; every prefix of a text the engine takes goes on or may end.
TEST(JsonPattern, LookaheadsAtTheStartMatchAsStdRegexSearches) {
  int searched = 0, found = 0, built = 0;
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    RandomRegular a(seed * 3), b(seed * 3 + 1), c(seed * 3 + 2);
    std::mt19937 rng(seed);
    // A negative lookahead without '$' refuses every string that begins with one of its
    // matches: it ends with '$' more often, so that fewer combinations admit nothing.
    const auto part = [&](RandomRegular& r, uint32_t one_in) {
      return L"(?:" + r.regex() + L")" + std::wstring(rng() % one_in == 0 ? L"$" : L"");
    };
    std::wstring regex = L"^";
    const int positive = static_cast<int>(rng() % 2), negative = static_cast<int>(rng() % 2) + 1;
    if (positive) regex += L"(?=" + part(a, 4) + L")";
    for (int n = 0; n < negative; ++n) regex += L"(?!" + part(b, 2) + L")";
    regex += part(c, 4);
    const std::wregex re(regex, std::regex::ECMAScript);
    RandomRegular* writers[] = {&a, &b, &c, &c};
    const std::string pattern = utf8(std::u32string(regex.begin(), regex.end()));
    std::shared_ptr<const GbnfGrammar> g;
    try {
      g = compile_pattern(pattern);
    } catch (const Error& e) {
      // A combination that admits nothing (std::wregex finds none of the texts either), or one
      // past the automaton's bounds, is refused saying so; nothing else may be.
      const std::string m = e.what();
      if (m.find("no string matches") != std::string::npos) {
        for (int t = 0; t < 24; ++t)
          ASSERT_FALSE(std::regex_search(wide(writers[t % 4]->text()), re)) << pattern;
      } else {
        EXPECT_NE(m.find("automaton of more than"), std::string::npos) << pattern << ": " << m;
      }
      continue;
    }
    ++built;
    for (int t = 0; t < 24; ++t) {
      std::u32string text = writers[rng() % 4]->text();
      if (rng() % 3 == 0 && !text.empty()) text[rng() % text.size()] = U"ab-.0é\n"[rng() % 7];
      if (rng() % 4 == 0) text += c.text();
      const bool expected = std::regex_search(wide(text), re);
      const std::string bytes = utf8(text);
      ASSERT_EQ(engine_matches(*g, bytes), expected)
          << "pattern " << pattern << "\ngbnf " << pattern_to_gbnf(pattern) << "text " << bytes;
      GbnfPrefix p(g.get());
      for (char ch : bytes) {
        if (!p.feed(static_cast<uint8_t>(ch))) break;
        ASSERT_TRUE(p.may_end() || p.shortest_completion() < UINT32_MAX) << pattern;
      }
      ++searched;
      found += expected;
    }
  }
  EXPECT_GT(built, 100);  // 115 of the 200 with these seeds
  EXPECT_GT(found, searched / 10);
  EXPECT_LT(found, searched * 9 / 10);
}

// Pydantic's Decimal: a string of digits with an optional sign and point, not signs and points
// alone (its negative lookahead).
TEST(JsonPattern, PydanticsDecimal) {
  const char* decimal = "^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$";
  const auto g = compile_pattern(decimal);
  const std::regex re(decimal, std::regex::ECMAScript);
  for (const char* yes : {"1", "-1.5", "+.5", "007", "1.", "-0.25", ".5"}) {
    EXPECT_TRUE(std::regex_search(yes, re)) << yes;
    EXPECT_TRUE(engine_matches(*g, yes)) << yes;
  }
  for (const char* no : {"", "+", "-", ".", "+.", "-.", "1a", "1.2.3", "+-1", " 1"}) {
    EXPECT_FALSE(std::regex_search(no, re)) << no;
    EXPECT_FALSE(engine_matches(*g, no)) << no;
  }
  // "+." may not end, but goes on: a digit makes it one.
  GbnfPrefix p(g.get());
  ASSERT_TRUE(p.take("+."));
  EXPECT_FALSE(p.may_end());
  EXPECT_EQ(p.shortest_completion(), 1u);
  // In Pydantic's schema of a Decimal field: a number or such a string.
  nlohmann::json doc = nlohmann::json::parse(R"j({"type": "object",
      "properties": {"price": {"anyOf": [{"type": "number"}, {"type": "string"}]}},
      "required": ["price"]})j");
  doc["properties"]["price"]["anyOf"][1]["pattern"] = decimal;
  const JsonSchema schema(doc);
  for (const char* value : {R"({"price": "12.50"})", R"({"price": 12.5})"}) {
    JsonPrefix v(&schema);
    EXPECT_TRUE(v.take(value) && v.complete()) << value;
  }
  JsonPrefix sign(&schema);
  ASSERT_TRUE(sign.take(R"({"price": "-.)"));
  EXPECT_FALSE(sign.accepts("\""));  // signs and a point alone are not a Decimal
  EXPECT_TRUE(sign.accepts("5\"}"));
}

TEST(JsonPattern, ThePatternsOfSchemasInUse) {
  struct Case {
    const char* pattern;
    const char* yes;
    const char* no;
  };
  const Case cases[] = {
      {"^[A-Z]{2}-\\d{4}$", "AB-1234", "AB-12345"},
      {"^\\S+@\\S+\\.\\S+$", "ann@example.org", "ann@example"},
      {"^(\\+\\d{1,3}[- ]?)?\\d{10}$", "+44 2071234567", "+44 207123456"},
      {"^[a-z0-9]+(?:-[a-z0-9]+)*$", "my-slug-2", "my--slug"},
      {"^#?([a-fA-F0-9]{6}|[a-fA-F0-9]{3})$", "#a1B2c3", "#abcd"},
      {"^(?<major>0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)$", "1.20.3", "01.2.3"},
      {"abc", "xxabcxx", "xxabxcx"},  // not anchored: anywhere
      {"^ab|cd$", "abzz", "zzcdz"},   // each alternative its own anchor
      {"^[^\\n]*$", "one line", "two\nlines"},
      {"^a.c$", "a中c", "a\nc"},  // '.' is not a line terminator
      {"^[\\s\\S]{2}$", "\n\t", "abc"},
      {"^\\u00e9\\x41\\/\\.$", "éA/.", "éA/x"},
      {"^[\\w-]+$", "snake_case-1", "spaced out"},
      {"^x{2,}?y$", "xxxy", "xy"},
      {"", "anything", nullptr},
      {"^$", "", "x"},
      // Lookaheads at the start: a password rule, a word that is not a reserved one.
      {"^(?=.*\\d)(?=.*[a-z])(?=.*[A-Z]).{8,}$", "Passw0rdX", "password1"},
      {"^(?=.*\\d)(?=.*[a-z])(?=.*[A-Z]).{8,}$", "aB3aaaaa", "aB3aaaa"},
      {"^(?!(?:null|none)$)[a-z]+$", "nullable", "none"},
  };
  for (const Case& c : cases) {
    const auto g = compile_pattern(c.pattern);
    EXPECT_TRUE(engine_matches(*g, c.yes)) << c.pattern << " " << c.yes;
    if (c.no) {
      EXPECT_FALSE(engine_matches(*g, c.no)) << c.pattern << " " << c.no;
    }
  }
}

TEST(JsonPattern, RefusesWhatItCannotKeepNamingIt) {
  const std::pair<const char*, const char*> cases[] = {
      {"(?=a)b", "lookaround"},
      {"^a(?=b)", "lookaround ((?=, (?!, (?<=, (?<!) other than lookaheads right after the '^'"},
      {"^(?=a)b|c", "lookaheads at the start of a pattern of several alternatives"},
      {"^(?=a(?!b))a", "its part \"^a(?!b)\": lookaround"},
      {"^(?!a)a", "no string matches it and its lookaheads"},
      {"^(?=[ab]*$)(?![ab]*$)", "no string matches it and its lookaheads"},
      {"^(?=a", "a lookahead without its ')'"},
      {"(?<!a)b", "lookaround"},
      {"(a)\\1", "a backreference"},
      {"\\bword", "\\b (a word boundary)"},
      {"a^b", "'^' inside the pattern"},
      {"(a$)b", "'$' inside the pattern"},
      {"(a*)*", "a repetition of something that can be empty"},
      {"\\p{L}+", "a Unicode property escape"},
      {"a**", "a quantifier after a quantifier"},
      {"*a", "a quantifier with nothing to repeat"},
      {"(ab", "a group without its ')'"},
      {"ab)", "an unmatched ')'"},
      {"[ab", "a class without its ']'"},
      {"[z-a]", "a range out of order"},
      {"\\q", "the escape '\\q'"},
      {"a{3000}", "a repetition count over 2000"},
      {"[^\\s\\S]", "matches no string"},
      {"((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
       "(((((((((((((((((((((((((((((((((((((((((((a",
       "groups nested deeper than 128"},
  };
  for (const auto& [pattern, message] : cases) {
    try {
      compile_pattern(pattern);
      ADD_FAILURE() << "accepted " << pattern;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos)
          << pattern << " -> " << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string("pattern \"") + pattern + "\""),
                std::string::npos)
          << e.what();
    }
  }
  // In a schema: the keyword's place, and what may not stand beside it.
  const std::pair<const char*, const char*> schemas[] = {
      {R"j({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)"}}})j",
       "#/properties/a/pattern: pattern \"(?=x)\": lookaround"},
      {R"j({"type": "object", "properties": {"a": {"type": "string", "pattern": 5}}})j",
       "#/properties/a/pattern: must be a string"},
      {R"j({"type": "object", "properties": {"a": {"pattern": "^x+$", "minLength": 3}}})j",
       "minLength 3 beside a pattern whose shortest match is 1 characters"},
      {R"j({"type": "object", "properties": {"a": {"pattern": "^x{4}$", "maxLength": 3}}})j",
       "admit no value (maxLength 3 is below the pattern's shortest match, 4 characters)"},
      {R"j({"type": "object", "properties": {"a": {"pattern": "^x+$", "format": "date"}}})j",
       "pattern beside format"},
  };
  for (const auto& [schema, message] : schemas) {
    try {
      JsonSchema s(nlohmann::json::parse(schema));
      ADD_FAILURE() << "accepted " << schema;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

// A string value with a pattern, byte by byte: the characters as they are or by a simple
// escape; \u only for control characters (JSON must escape those), so no escape leads to a dead
// end; the closing quote only where the pattern may end.
TEST(JsonPattern, AStringValueIsHeldToItsPattern) {
  const JsonSchema schema(nlohmann::json::parse(R"j({"type": "object", "properties": {
      "plate": {"type": "string", "pattern": "^[A-Z]{2}-\\d{4}$"},
      "text": {"type": "string", "pattern": "^a[\\n\\t\\\\\"/\u0001]b$"},
      "any": {"type": "string", "pattern": "é"}},
      "additionalProperties": false})j"));
  auto taken = [&](const std::string& s) {
    JsonPrefix p(&schema);
    size_t n = 0;
    while (n < s.size() && p.feed(static_cast<uint8_t>(s[n]))) ++n;
    return n == s.size() && p.complete() ? std::string::npos : n;
  };
  EXPECT_EQ(taken(R"j({"plate": "AB-1234"})j"), std::string::npos);
  EXPECT_EQ(taken(R"j({"plate": "AB-12345"})j"), 18u);  // a fifth digit
  EXPECT_EQ(taken(R"j({"plate": "AB-123"})j"), 17u);    // the quote before the fourth
  EXPECT_EQ(taken(R"j({"plate": "ab-1234"})j"), 11u);
  // A backslash: no escape gives a character the pattern takes there ([A-Z]).
  EXPECT_EQ(taken(R"j({"plate": "\u0041B-1234"})j"), 11u);
  for (const char* ok : {R"j({"text": "a\nb"})j", R"j({"text": "a\tb"})j", R"j({"text": "a\\b"})j",
                         R"j({"text": "a\"b"})j", R"j({"text": "a\/b"})j", R"j({"text": "a/b"})j",
                         R"j({"text": "a\u0001b"})j"})
    EXPECT_EQ(taken(ok), std::string::npos) << ok;
  EXPECT_EQ(taken(R"j({"text": "a\rb"})j"), 12u);
  EXPECT_EQ(taken(R"j({"text": "a\u0002b"})j"), 16u);  // the last digit picks a character
  EXPECT_EQ(taken(R"j({"text": "a\u0020b"})j"), 15u);  // not a control character
  EXPECT_EQ(taken(R"j({"any": "caf\u00e9"})j"), 16u);
  EXPECT_EQ(taken(R"j({"any": "café au lait"})j"), std::string::npos);
  EXPECT_EQ(taken(R"j({"any": "cafe"})j"), 13u);  // the quote: no é yet
}

// No byte sequence the grammar takes inside a string with a pattern leaves it with no byte to
// go on (an escape begun where no escaped character fits was one): breadth-first over bytes
// that build escapes, from the string's opening quote, every state taken has some byte after it.
TEST(JsonPattern, NoEscapeOrCharacterLeadsToADeadEnd) {
  const char* patterns[] = {"^[a-z]+$", "^[A-Z]{2}-\\d{4}$",    "^a[\\n\\t]b$",
                            "^\\\\x$",  "^[\\u0001-\\u0003]x$", "^/?\"$",
                            "é",        "^[^a]{0,2}$"};
  const std::string alphabet = "\\u01fatnbx/\"A9-";
  for (const char* pattern : patterns) {
    SCOPED_TRACE(pattern);
    const nlohmann::json doc = {
        {"type", "object"}, {"properties", {{"a", {{"type", "string"}, {"pattern", pattern}}}}}};
    const JsonSchema schema(doc);
    JsonPrefix start(&schema);
    ASSERT_TRUE(start.take(R"({"a": ")"));
    std::vector<std::pair<JsonPrefix, std::string>> level = {{start, ""}};
    size_t visited = 0;
    for (int depth = 0; depth < 7 && !level.empty() && visited < 3000; ++depth) {
      std::vector<std::pair<JsonPrefix, std::string>> next_level;
      for (const auto& [state, text] : level) {
        ++visited;
        bool some = false;
        for (int b = 0; b < 256 && !some; ++b) {
          JsonPrefix next = state;
          some = next.feed(static_cast<uint8_t>(b));
        }
        ASSERT_TRUE(some) << "no byte continues " << nlohmann::json(text).dump();
        for (char c : alphabet) {
          JsonPrefix next = state;
          if (next.feed(static_cast<uint8_t>(c)) && !next.complete())
            next_level.emplace_back(std::move(next), text + c);
        }
      }
      level = std::move(next_level);
    }
    EXPECT_GE(visited, 4u);
  }
}

// maxLength beside a pattern: random walks over every byte the grammar takes, from a string's
// opening quote, never meet a dead end and end in a string that the pattern matches (std::wregex)
// within the bounds; strings of the pattern within them, JSON-escaped, are taken whole.
TEST(JsonPattern, MaxLengthBesideAPatternLeavesRoomForAMatch) {
  int walks = 0, texts_taken = 0, at_max = 0;
  for (uint32_t seed = 1; seed <= 120; ++seed) {
    RandomRegular r(seed);
    std::mt19937 rng(seed);
    const std::wstring regex = L"^(?:" + r.regex() + L")$";
    const std::string pattern = utf8(std::u32string(regex.begin(), regex.end()));
    const uint32_t shortest = GbnfPrefix(compile_pattern(pattern).get()).shortest_completion();
    if (shortest > 30) continue;
    const uint32_t max_length = shortest + static_cast<uint32_t>(rng() % 5);
    const uint32_t min_length = static_cast<uint32_t>(rng() % (shortest + 1));
    const nlohmann::json doc = {{"type", "object"},
                                {"properties",
                                 {{"a",
                                   {{"type", "string"},
                                    {"pattern", pattern},
                                    {"minLength", min_length},
                                    {"maxLength", max_length}}}}}};
    const JsonSchema schema(doc);
    const std::wregex re(regex, std::regex::ECMAScript);
    SCOPED_TRACE(pattern + " maxLength " + std::to_string(max_length));
    const auto in_bounds = [&](const std::string& value) {
      size_t n = 0;
      for (unsigned char c : value) n += (c & 0xc0) != 0x80;
      if (n < min_length || n > max_length) return false;
      std::u32string wide_text;
      for (size_t i = 0; i < value.size();) {  // decode (the walk's bytes are valid UTF-8)
        const unsigned char c = static_cast<unsigned char>(value[i]);
        const int len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (int k = 1; k < len; ++k)
          cp = cp << 6 | (static_cast<unsigned char>(value[i + k]) & 0x3f);
        wide_text += static_cast<char32_t>(cp);
        i += static_cast<size_t>(len);
      }
      return std::regex_search(wide(wide_text), re);
    };
    for (int w = 0; w < 15; ++w) {
      JsonPrefix p(&schema);
      std::string text = R"({"a": ")";
      ASSERT_TRUE(p.take(text));
      bool closed = false;
      while (!closed) {
        ASSERT_LT(text.size(), 400u) << text;
        std::vector<uint8_t> taken;
        for (int b = 0; b < 256; ++b) {
          JsonPrefix next = p;
          if (next.feed(static_cast<uint8_t>(b))) taken.push_back(static_cast<uint8_t>(b));
        }
        ASSERT_FALSE(taken.empty()) << "no byte continues " << text;
        const uint8_t b = taken[rng() % taken.size()];
        ASSERT_TRUE(p.feed(b));
        text += static_cast<char>(b);
        JsonPrefix end = p;
        closed = end.take("}") && end.complete();
      }
      const std::string value = nlohmann::json::parse(text + "}")["a"].get<std::string>();
      ASSERT_TRUE(in_bounds(value)) << text;
      size_t n = 0;
      for (unsigned char c : value) n += (c & 0xc0) != 0x80;
      at_max += n == max_length;
      ++walks;
    }
    for (int t = 0; t < 20; ++t) {
      const std::string value = utf8(r.text());
      if (!in_bounds(value)) continue;
      const std::string text = nlohmann::json{{"a", value}}.dump();
      JsonPrefix p(&schema);
      ASSERT_TRUE(p.take(text) && p.complete()) << text;
      ++texts_taken;
    }
  }
  EXPECT_GT(walks, 1000);
  EXPECT_GT(texts_taken, 200);
  EXPECT_GT(at_max, 50);
}

}  // namespace json_pattern_test
}  // namespace
}  // namespace xtile::server
