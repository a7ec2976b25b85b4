// JSON mode's grammar (JsonPrefix) and its token filter (GrammarConstraint<JsonPrefix>). The
// grammar is checked byte by byte on hand-written cases (where the first refused byte must be) and
// against an independent parser, nlohmann::json, on random objects and on random one-byte mutations
// of them: a document the grammar takes whole and calls complete must be one nlohmann accepts as an
// object, and every object nlohmann accepts must be taken whole and complete.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gguf/gguf.h"
#include "json_feed.h"
#include "json_number_range.h"
#include "mask_check.h"
#include "server/json_prefix.h"
#include "server/reply_constraint.h"
#include "server/think_first.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace xtile::server {
namespace {
namespace json_mode_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

using test::Fed;
using test::number_range;
using test::NumberRange;
using JsonConstraint = GrammarConstraint<JsonPrefix>;
using test::feed_all;

TEST(JsonPrefix, TakesWholeObjectsAndCallsOnlyTheWholeComplete) {
  const char* docs[] = {
      "{}",
      " \n\t{ }",
      R"({"a":1})",
      R"({"a": -0.5e+10, "b": [true, false, null, 0, 12, 3.25E-2, -7], "c": {"d": []}})",
      R"({"s": "esc \" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00", "k": ""})",
      "{\"utf8\": \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\x9f\xbf \xf4\x8f\xbf\xbf\"}",
      R"({"nested": [[[{"x": [1, [2, [3]]]}]]]})",
  };
  for (const char* d : docs) {
    const std::string s(d);
    SCOPED_TRACE(s);
    EXPECT_TRUE(json::accept(s)) << "the case itself is not JSON";
    JsonPrefix p;
    for (size_t i = 0; i < s.size(); ++i) {
      ASSERT_FALSE(p.complete()) << "complete before byte " << i;
      ASSERT_TRUE(p.feed(static_cast<uint8_t>(s[i]))) << "refused byte " << i;
    }
    EXPECT_TRUE(p.complete());
    // Nothing may follow the object, not even whitespace: the reply ends there.
    EXPECT_FALSE(p.feed(' '));
    EXPECT_FALSE(p.feed('{'));
    EXPECT_TRUE(p.complete());
  }
}

TEST(JsonPrefix, RefusesTheFirstByteNoObjectCouldContinueWith) {
  struct Case {
    std::string text;
    size_t refused_at;
  };
  const Case cases[] = {
      {"[1]", 0},  // the reply is an object
      {"\"a\"", 0},
      {"x", 0},
      {"{,", 1},
      {R"({"a" 1})", 5},   // no colon
      {R"({"a":})", 5},    // no value
      {R"({"a":1,})", 7},  // trailing comma
      {R"({"a":[1,]})", 8},
      {R"({"a":01})", 6},  // leading zero
      {R"({"a":-})", 6},
      {R"({"a":1.})", 7},
      {R"({"a":1e})", 7},
      {R"({"a":.5})", 5},
      {R"({"a":+1})", 5},
      {R"({"a":tru})", 8},
      {R"({"a":nul1})", 8},
      {R"({"a":1]})", 6},  // the wrong close
      {R"({"a":[1}})", 7},
      {R"({1:2})", 1},           // keys are strings
      {"{\"a\":\"x\x01\"}", 7},  // a raw control character
      {R"({"a":"\q"})", 7},      // an unknown escape
      {R"({"a":"\u12G4"})", 10},
      {R"({"a":"\ud800"})", 12},            // a lone high surrogate: its string cannot end
      {R"({"a":"\ud800\u0041"})", 14},      // a high surrogate, then no low one
      {R"({"a":"\udc00"})", 9},             // a lone low surrogate
      {"{\"a\":\"\xc0\xaf\"}", 6},          // an overlong lead byte
      {"{\"a\":\"\xe0\x80\x80\"}", 7},      // overlong three-byte form
      {"{\"a\":\"\xed\xa0\x80\"}", 7},      // an encoded surrogate
      {"{\"a\":\"\xf4\x90\x80\x80\"}", 7},  // beyond U+10FFFF
      {"{\"a\":\"\xc3(\"}", 7},             // a missing continuation byte
      {"{\"a\":\"\xff\"}", 6},
      {"{}}", 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(feed_all(c.text).taken, c.refused_at);
    EXPECT_FALSE(json::accept(c.text) && json::parse(c.text).is_object() &&
                 c.refused_at < c.text.size())
        << "the case is a valid object";
  }
}

TEST(JsonPrefix, LimitsWhitespaceRunsAndDepth) {
  // A run: one line break and up to kMaxBlanks spaces or tabs, in any order.
  const std::string run = "\r\n" + std::string(JsonPrefix::kMaxBlanks - 1, ' ') + "\t";
  const std::string s = "{\"a\":" + run;
  EXPECT_EQ(feed_all(s).taken, s.size());
  EXPECT_EQ(feed_all(s + " ").taken, s.size());
  EXPECT_EQ(feed_all(s + "\n").taken, s.size());
  EXPECT_EQ(feed_all(s + "1" + run + "}").taken, s.size() + run.size() + 2);
  EXPECT_EQ(feed_all("{\n \n}").taken, 3u);  // a blank line
  EXPECT_EQ(feed_all(" \n\n{}").taken, 2u);
  // Whitespace inside strings is text, not limited.
  const std::string in_string = "{\"a\":\"" + std::string(200, ' ') + "\"}";
  EXPECT_TRUE(feed_all(in_string).complete);

  std::string deep = "{\"a\":";
  for (int i = 1; i < JsonPrefix::kMaxDepth; ++i) deep += "[";
  EXPECT_EQ(feed_all(deep).taken, deep.size());
  EXPECT_EQ(feed_all(deep + "[").taken, deep.size());
}

TEST(JsonPrefix, RefusedByteLeavesTheStateAsItWas) {
  JsonPrefix p;
  ASSERT_TRUE(p.take(R"({"n": 12)"));
  EXPECT_FALSE(p.feed('x'));
  EXPECT_FALSE(p.take("3x"));  // all or nothing: the 3 is not taken either
  EXPECT_TRUE(p.accepts("3}"));
  EXPECT_FALSE(p.complete());  // accepts() changes nothing
  EXPECT_TRUE(p.take("}"));
  EXPECT_TRUE(p.complete());
}

// A random JSON value of depth at most `depth`: every kind of value, strings with escapes,
// control characters and characters of 1-4 UTF-8 bytes, numbers of every form.
json random_value(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 0 ? 7 : 5);
  switch (kind(rng)) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<int64_t>(rng()) - static_cast<int64_t>(rng());
    case 3: {
      const double v = std::ldexp(static_cast<double>(rng()) - 2147483648.0,
                                  static_cast<int>(rng() % 200) - 100);
      return std::isfinite(v) ? json(v) : json(0.5);
    }
    case 4:
    case 5: {
      const char32_t pool[] = {U'a',      U'Z',      U' ',      U'"',          U'\\',
                               U'/',      U'\n',     U'\t',     U'\x01',       U'\x1f',
                               U'\u00e9', U'\u20ac', U'\uffff', U'\U0001F600', U'\U0010FFFF'};
      std::string s;
      const int n = static_cast<int>(rng() % 8);
      for (int i = 0; i < n; ++i) {
        tok_internal::append_utf8(s, static_cast<uint32_t>(pool[rng() % std::size(pool)]));
      }
      return s;
    }
    case 6: {
      json a = json::array();
      for (int i = static_cast<int>(rng() % 4); i > 0; --i)
        a.push_back(random_value(rng, depth - 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int i = static_cast<int>(rng() % 4); i > 0; --i)
        o[std::to_string(rng() % 100)] = random_value(rng, depth - 1);
      return o;
    }
  }
}

std::vector<std::string> random_documents(int n) {
  std::mt19937 rng(20261206);
  std::vector<std::string> docs;
  for (int i = 0; i < n; ++i) {
    json o = json::object();
    for (int k = static_cast<int>(rng() % 5); k > 0; --k) {
      char key[16];  // (a std::string concatenation here trips GCC 12's false -Wrestrict)
      std::snprintf(key, sizeof key, "k%d", k);
      o[key] = random_value(rng, 4);
    }
    // Compact, indented, and with every non-ASCII character as \u escapes (surrogate pairs
    // beyond the BMP).
    const int style = i % 3;
    docs.push_back(style == 0 ? o.dump() : style == 1 ? o.dump(2) : o.dump(-1, ' ', true));
  }
  return docs;
}

TEST(JsonPrefix, AgreesWithNlohmannOnRandomObjects) {
  for (const std::string& d : random_documents(600)) {
    SCOPED_TRACE(d);
    const Fed f = feed_all(d);
    ASSERT_EQ(f.taken, d.size());
    ASSERT_TRUE(f.complete);
  }
}

// One byte of a valid object replaced by a random one (half of the time a JSON-significant
// byte): complete and whole for the grammar exactly when nlohmann accepts an object.
TEST(JsonPrefix, AgreesWithNlohmannOnMutatedObjects) {
  std::mt19937 rng(7);
  const char significant[] = "{}[]:,\"\\ 0123456789.eE+-tfnu\x01\x7f\x80\xc3\xed\xf4\xff";
  int valid = 0, invalid = 0, whitespace_limited = 0;
  for (const std::string& original : random_documents(400)) {
    for (int m = 0; m < 20; ++m) {
      std::string d = original;
      const size_t at = rng() % d.size();
      d[at] = rng() % 2 == 0 ? significant[rng() % (sizeof(significant) - 1)]
                             : static_cast<char>(rng() % 256);
      const Fed f = feed_all(d);
      if (!f.complete) {  // some byte continues what was taken (no dead end for a sampler)
        JsonPrefix p;
        ASSERT_TRUE(p.take(d.substr(0, f.taken)));
        bool some = false;
        for (int b = 0; b < 256 && !some; ++b) some = JsonPrefix(p).feed(static_cast<uint8_t>(b));
        ASSERT_TRUE(some)
            << json(d.substr(0, f.taken)).dump(-1, ' ', true, json::error_handler_t::replace);
      }
      const bool ours = f.taken == d.size() && f.complete;
      // An object for nlohmann whose numbers lie below 1e308 (json_number_range.h); one beyond
      // a double's range (1e400) nlohmann refuses itself.
      bool theirs = false;
      try {
        const json v = json::parse(d);
        const NumberRange range = number_range(v);
        if (range == NumberRange::kBoundary) continue;
        theirs = v.is_object() && range == NumberRange::kBelow;
      } catch (const json::out_of_range&) {
      } catch (const json::parse_error&) {
      }
      // Whitespace the grammar limits on purpose (a second line break in a run, more blanks,
      // anything after the close), where nlohmann takes any.
      if (theirs && !ours && f.taken < d.size() && std::strchr(" \t\r\n", d[f.taken])) {
        ++whitespace_limited;
        continue;
      }
      ASSERT_EQ(ours, theirs) << "document: " << json(d).dump(-1, ' ', true) << " taken "
                              << f.taken;
      (ours ? valid : invalid) += 1;
    }
  }
  // The mutations reach both sides of the boundary.
  EXPECT_GT(valid, 300);
  EXPECT_GT(invalid, 3000);
  EXPECT_LT(whitespace_limited, 100);
}

// JSON mode after a think block (Qwen3 with enable_thinking): "<think>...</think>", up to
// kMaxGap blanks, then the object; or the object at once; or, when the prompt opened the
// block, its rest first.
TEST(ThinkFirstJson, TakesAThinkBlockThenTheObject) {
  using Think = ThinkFirst<JsonPrefix>;
  const auto fed = [](std::string_view s, bool starts_in_think = false) {
    Think p(JsonPrefix(), starts_in_think);
    size_t n = 0;
    while (n < s.size() && p.feed(static_cast<uint8_t>(s[n]))) ++n;
    return std::make_tuple(n, p.complete(), p.may_end(), p.free_text());
  };
  const std::string block = "<think>\nThe user wants {\"a\": 1} </thin> <</think>";
  for (const std::string& s :
       {block + "\n\n{\"a\": 1}", std::string("{}"), std::string(" {}"), block + "{}"}) {
    const auto [n, complete, may_end, free] = fed(s);
    EXPECT_EQ(n, s.size()) << s;
    EXPECT_TRUE(complete) << s;
    EXPECT_TRUE(may_end) << s;
    EXPECT_FALSE(free) << s;
  }
  // Inside the block: free text, no end; after it, the object's grammar.
  const auto [n, complete, may_end, free] = fed("<think>\nhm");
  EXPECT_EQ(n, 10u);
  EXPECT_FALSE(complete);
  EXPECT_FALSE(may_end);
  EXPECT_TRUE(free);
  EXPECT_FALSE(std::get<3>(fed(block)));
  // kMaxGap blanks, then the object's own whitespace (one line break before its brace).
  EXPECT_EQ(std::get<0>(fed(block + "\n\n\n\n\n\n{}")), block.size() + 5);
  EXPECT_EQ(std::get<0>(fed(block + "\nOK")), block.size() + 1);
  EXPECT_EQ(std::get<0>(fed("<thx")), 3u);
  EXPECT_EQ(std::get<0>(fed("x")), 0u);
  const std::string inside = "so: an object.</think>\n\n{\"b\": [true]}";
  EXPECT_TRUE(std::get<1>(fed(inside, /*starts_in_think=*/true)));
  EXPECT_EQ(std::get<0>(fed(inside)), 0u);  // without the opened block, "s" starts no object
}

class JsonConstraintQwen : public test::QwenVocab {};

TEST_F(JsonConstraintQwen, EndOfGenerationAndControlTokensAreNeverAllowed) {
  ASSERT_EQ(bytes_->size(), tok_->n_vocab());
  JsonConstraint c(*bytes_, JsonPrefix());
  for (int32_t id : tok_->eog_ids()) EXPECT_FALSE(c.allows(id)) << id;
  ASSERT_TRUE(c.accept(tok_->encode("{\"a\": 1", false, false)[0]));
  for (int32_t id = 0; id < tok_->n_vocab(); ++id) {
    if (tok_->is_control(id)) {
      ASSERT_FALSE(c.allows(id)) << id;
    }
  }
  EXPECT_FALSE(c.allows(-1));
  EXPECT_FALSE(c.allows(tok_->n_vocab()));
}

TEST_F(JsonConstraintQwen, MaskKeepsExactlyTheTokensThatContinueTheObject) {
  JsonConstraint c(*bytes_, JsonPrefix());
  const std::vector<int32_t> ids =
      tok_->encode("{\"name\": \"Lily\", \"age\": 3, \"pets\": [\"cat\", null]}", false, false);
  std::vector<float> logits(static_cast<size_t>(tok_->n_vocab()));
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(test::expect_mask_matches_allows(c, tok_->n_vocab(), 97));
    ASSERT_FALSE(c.complete());
    ASSERT_TRUE(c.allows(ids[i])) << "token " << i << " " << tok_->decode_token(ids[i]);
    ASSERT_TRUE(c.accept(ids[i]));
  }
  EXPECT_TRUE(c.complete());
  std::fill(logits.begin(), logits.end(), 1.0f);
  // After the close only an end of generation (the scheduler ends the reply there anyway).
  EXPECT_EQ(c.mask(logits), static_cast<int64_t>(tok_->eog_ids().size()));
}

}  // namespace json_mode_test
}  // namespace
}  // namespace xtile::server
