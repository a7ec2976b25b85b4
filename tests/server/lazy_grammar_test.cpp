// llama-server's lazy grammar (server/lazy_grammar.h): free text until a trigger word, the
// grammar from the word's first byte on. Checked against a reference written apart (find the
// first word completed, then run the grammar on the text from its start) on random texts with
// words planted, and the mask through the memo on Qwen's vocabulary.
#include "server/lazy_grammar.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "mask_check.h"
#include "server/gbnf.h"
#include "server/gbnf_prefix.h"

namespace xtile::server {
namespace {
namespace lazy_grammar_test {  // unity batches: CMakeLists.txt

using Lazy = LazyGrammar<GbnfPrefix>;

// How many bytes of text the lazy grammar takes (feeding byte by byte until a refusal).
size_t taken(const GbnfGrammar& g, const GrammarTriggers& t, const std::string& text,
             bool* awaiting = nullptr) {
  Lazy p(GbnfPrefix(&g), &t);
  size_t n = 0;
  while (n < text.size() && p.feed(static_cast<uint8_t>(text[n]))) ++n;
  if (awaiting) *awaiting = p.awaiting();
  return n;
}

// The reference: the first position where a word ends (earlier words in the list first at the
// same position); before it everything is taken; the byte that completes the word only if the
// grammar takes the whole word; then the grammar's own bytes.
size_t reference_taken(const GbnfGrammar& g, const GrammarTriggers& t, const std::string& text) {
  for (size_t end = 1; end <= text.size(); ++end) {
    for (const std::string& w : t.words) {
      if (end < w.size() || text.compare(end - w.size(), w.size(), w) != 0) continue;
      GbnfPrefix engine(&g);
      if (!engine.take(w)) return end - 1;
      size_t n = end;
      while (n < text.size() && engine.feed(static_cast<uint8_t>(text[n]))) ++n;
      return n;
    }
  }
  return text.size();
}

TEST(LazyGrammar, FreeTextUntilATriggerWordThenTheGrammar) {
  const GbnfGrammar g("root ::= \"<tc>\" [a-c]+ \"</tc>\" | \"xy\" [0-9]{1,3}\n");
  const GrammarTriggers t{{"<tc>", "xy", "zz"}};
  bool awaiting = false;
  EXPECT_EQ(taken(g, t, "hello <t world", &awaiting), 14u);
  EXPECT_TRUE(awaiting);
  EXPECT_EQ(taken(g, t, "so: <tc>abca</tc>", &awaiting), 17u);
  EXPECT_FALSE(awaiting);
  EXPECT_EQ(taken(g, t, "so: <tc>abd"), 10u);  // d is not the grammar's
  EXPECT_EQ(taken(g, t, "<<tc>a"), 6u);        // the word after a false start
  EXPECT_EQ(taken(g, t, "axy12345"), 6u);      // xy: at most 3 digits
  EXPECT_EQ(taken(g, t, "a zz b"), 3u);        // the grammar refuses "zz": its last z is refused
  EXPECT_EQ(taken(g, t, "<tc>ab</tc> more"), 11u);  // the grammar is whole: nothing follows
  Lazy p(GbnfPrefix(&g), &t);
  EXPECT_TRUE(p.may_end());  // before a trigger the reply may end anywhere
  EXPECT_TRUE(p.free_text());
  ASSERT_TRUE(p.take("text <tc>a"));
  EXPECT_FALSE(p.may_end());
  EXPECT_FALSE(p.free_text());
  ASSERT_TRUE(p.take("</tc>"));
  EXPECT_TRUE(p.complete());
}

TEST(LazyGrammar, AgreesWithTheReferenceOnRandomTexts) {
  const GbnfGrammar g(
      "root ::= (\"<tc>\" | \"<t\" \"c\"? \"c>\") [a-c ]* \"!\" | \"ab\" \"a\"* \"b\"\n");
  const GrammarTriggers t{{"<tc>", "ab", "<tcc>"}};
  std::mt19937 rng(1209);
  const std::string alphabet = "<>tcab! x";
  int triggered = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const size_t n = rng() % 16;
    for (size_t k = 0; k < n; ++k) {
      if (rng() % 6 == 0)
        text += t.words[rng() % t.words.size()];
      else
        text += alphabet[rng() % alphabet.size()];
    }
    bool awaiting = true;
    const size_t ours = taken(g, t, text, &awaiting);
    ASSERT_EQ(ours, reference_taken(g, t, text)) << text;
    triggered += !awaiting;
  }
  EXPECT_GT(triggered, 5000);
}

class LazyGrammarQwen : public test::QwenVocab {};

// The mask through the memo keeps exactly what each token allows, before the trigger (where a
// token that completes a word must bring text the grammar takes) and after.
TEST_F(LazyGrammarQwen, MaskKeepsExactlyWhatEachTokenAllows) {
  const GbnfGrammar g("root ::= \"<tool_call>\" \"\\n\" \"{\" [a-z\": ]* \"}\"\n");
  const GrammarTriggers t{{"<tool_call>"}};
  GrammarConstraint<Lazy> c(*bytes_, Lazy(GbnfPrefix(&g), &t));
  const std::string text = "Let me call it.\n<tool_call>\n{\"name\": \"x\"}";
  ASSERT_NO_FATAL_FAILURE(test::expect_mask_along(c, *tok_, text));
  EXPECT_TRUE(c.complete());
}

}  // namespace lazy_grammar_test
}  // namespace
}  // namespace xtile::server
