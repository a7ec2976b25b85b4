// Tokenizers against llama.cpp's reference cases (../shared/fixtures/tokenizers), round trips,
// special tokens, streaming decode, malformed vocabularies and load/encode speed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "test_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace xtile {
namespace {
namespace tokenizer_test {  // unity batches: CMakeLists.txt

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot read " << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Printable rendering of a test string: control and non-ASCII bytes as \xNN.
std::string escaped(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7F && c != '"' && c != '\\') {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", b);
      out += buf;
    }
  }
  return out + "\"";
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// llama.cpp's test-tokenizer-0 format: the .inp holds strings each followed by
// "\n__ggml_vocab_test__\n" (so a string may be empty or consist of newlines), the .out one line
// of space-separated ids per string.
std::vector<Case> load_cases(const std::string& inp_path, const std::string& out_path) {
  const std::string inp = read_all(inp_path);
  const std::string out = read_all(out_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) break;
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int32_t>> lists;
  for (size_t pos = 0; pos < out.size();) {
    size_t next = out.find('\n', pos);
    if (next == std::string::npos) next = out.size();
    std::istringstream line(out.substr(pos, next - pos));
    std::vector<int32_t> ids;
    for (int32_t id; line >> id;) ids.push_back(id);
    lists.push_back(std::move(ids));
    pos = next + 1;
  }
  EXPECT_EQ(texts.size(), lists.size()) << inp_path << " and " << out_path << " disagree";
  std::vector<Case> cases;
  for (size_t i = 0; i < std::min(texts.size(), lists.size()); ++i) {
    cases.push_back({texts[i], lists[i]});
  }
  return cases;
}

// Vocabularies are loaded once per test binary: the large ones take a few hundred ms each, and
// a Tokenizer is immutable, so the tests can share it.
const Tokenizer* load(const std::string& path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::unique_ptr<Tokenizer>& t = cache[path];
  if (!t) {
    gguf::File f = gguf::File::open(path);
    t = Tokenizer::from_gguf(f);
  }
  return t.get();
}

// Encodes every case without BOS and without special parsing, reports each mismatch with the
// string and both id lists, and prints the pass rate.
void check_reference(const std::string& name, const std::string& vocab_path,
                     const std::string& inp, const std::string& out) {
  auto tok = load(vocab_path);
  const std::vector<Case> cases = load_cases(inp, out);
  ASSERT_EQ(cases.size(), 46u) << "unexpected number of cases in " << inp;
  size_t pass = 0;
  for (const Case& c : cases) {
    const std::vector<int32_t> got = tok->encode(c.text, false, false);
    if (got == c.ids) {
      ++pass;
    } else {
      ADD_FAILURE() << name << ": " << escaped(c.text) << "\n  expected " << ids_str(c.ids)
                    << "\n  got      " << ids_str(got);
    }
  }
  std::printf("[ reference ] %s: %zu/%zu cases pass\n", name.c_str(), pass, cases.size());
  EXPECT_EQ(pass, cases.size());
}

TEST(TokenizerReference, LlamaSpm) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-llama-spm.gguf");
  check_reference("llama-spm", vocab, xtile::test::fixture_path("tokenizers/llama-spm.inp"),
                  xtile::test::fixture_path("tokenizers/llama-spm.out"));
}

TEST(TokenizerReference, Qwen2) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-qwen2.gguf");
  check_reference("qwen2", vocab, xtile::test::fixture_path("tokenizers/qwen2.inp"),
                  xtile::test::fixture_path("tokenizers/qwen2.out"));
}

TEST(TokenizerReference, Llama3) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-llama3.gguf");
  check_reference("llama-bpe", vocab, xtile::test::fixture_path("tokenizers/llama-bpe.inp"),
                  xtile::test::fixture_path("tokenizers/llama-bpe.out"));
}

// decode(encode(s)) == s for every reference string, with and without BOS, and the streaming
// decoder gives the same bytes, never splitting a UTF-8 character between two writes.
void check_round_trips(const std::string& vocab_path, const std::string& inp,
                       const std::string& out) {
  auto tok = load(vocab_path);
  for (const Case& c : load_cases(inp, out)) {
    for (bool bos : {false, true}) {
      const std::vector<int32_t> ids = tok->encode(c.text, bos, false);
      EXPECT_EQ(tok->decode(ids), c.text) << escaped(c.text) << " bos=" << bos << " ids "
                                          << ids_str(ids);
      StreamDecoder stream(*tok);
      std::string streamed;
      for (int32_t id : ids) {
        const std::string chunk = stream.push(id);
        EXPECT_EQ(tok_internal::utf8_incomplete_tail(chunk), 0u) << escaped(c.text);
        streamed += chunk;
      }
      EXPECT_EQ(stream.flush(), "") << escaped(c.text);
      EXPECT_EQ(streamed, c.text) << escaped(c.text);
    }
  }
}

TEST(TokenizerRoundTrip, LlamaSpm) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-llama-spm.gguf");
  check_round_trips(vocab, xtile::test::fixture_path("tokenizers/llama-spm.inp"),
                    xtile::test::fixture_path("tokenizers/llama-spm.out"));
}

TEST(TokenizerRoundTrip, Qwen2) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-qwen2.gguf");
  check_round_trips(vocab, xtile::test::fixture_path("tokenizers/qwen2.inp"),
                    xtile::test::fixture_path("tokenizers/qwen2.out"));
}

TEST(TokenizerRoundTrip, Llama3) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-llama3.gguf");
  check_round_trips(vocab, xtile::test::fixture_path("tokenizers/llama-bpe.inp"),
                    xtile::test::fixture_path("tokenizers/llama-bpe.out"));
}

// Invalid UTF-8 is encoded losslessly: SPM through byte tokens, BPE through byte-level tokens.
TEST(TokenizerRoundTrip, InvalidUtf8) {
  XTILE_REQUIRE_FIXTURE(spm, "tokenizers/vocab-llama-spm.gguf");
  XTILE_REQUIRE_FIXTURE(qwen, "tokenizers/vocab-qwen2.gguf");
  XTILE_REQUIRE_FIXTURE(llama3, "tokenizers/vocab-llama3.gguf");
  const std::string texts[] = {std::string("\xff\xfe" "abc\xc3", 6), "a\x80 b\xe2\x82",
                               std::string("x\0y", 3), "\xf0\x9f\xa6 lone lead"};
  for (const std::string& path : {spm, qwen, llama3}) {
    auto tok = load(path);
    for (const std::string& s : texts) {
      const std::vector<int32_t> ids = tok->encode(s, false, false);
      EXPECT_EQ(tok->decode(ids), s) << path << " " << escaped(s) << " " << ids_str(ids);
    }
  }
}

TEST(TokenizerSpm, Stories260KOnceUponATime) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  auto tok = load(model);
  EXPECT_EQ(tok->kind(), VocabKind::kSpm);
  EXPECT_EQ(tok->n_vocab(), 512);
  EXPECT_EQ(tok->bos(), 1);
  EXPECT_EQ(tok->eos(), 2);
  EXPECT_TRUE(tok->add_bos());
  const std::vector<int32_t> ids = tok->encode("Once upon a time", true, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 403, 407, 261, 378})) << ids_str(ids);
  EXPECT_EQ(tok->decode(ids), "Once upon a time");
  EXPECT_EQ(tok->token_text(403), "\xe2\x96\x81Once");
  EXPECT_EQ(tok->decode_token(403), " Once");
  EXPECT_EQ(tok->decode_token(1), "");
  EXPECT_EQ(tok->decode_token(1, /*render_special=*/true), "<s>");
  EXPECT_EQ(tok->decode_token(13), "\n");  // <0x0A>
  EXPECT_TRUE(tok->is_eog(2));
  EXPECT_FALSE(tok->is_eog(1));
}

// The greedy reference lists 257 ids and the text llama2.c prints for them: decode must
// reproduce it byte for byte (BOS, dummy-prefix space removed, <0x0A> newlines).
TEST(TokenizerSpm, Stories260KGreedyText) {
  XTILE_REQUIRE_FIXTURE(model, "models/stories260K.gguf");
  XTILE_REQUIRE_FIXTURE(ref, "models/stories260K.greedy-reference.txt");
  auto tok = load(model);
  const std::string all = read_all(ref);
  const size_t ids_at = all.find("[token_ids]");
  ASSERT_NE(ids_at, std::string::npos);
  const size_t line = all.find('\n', ids_at) + 1;
  std::string list = all.substr(line, all.find('\n', line) - line);
  for (char& c : list) c = c == ',' ? ' ' : c;
  std::istringstream is(list);
  std::vector<int32_t> ids;
  for (int32_t id; is >> id;) ids.push_back(id);
  ASSERT_EQ(ids.size(), 257u);
  const size_t text_at = all.find("[text]\n");
  ASSERT_NE(text_at, std::string::npos);
  std::string text = all.substr(text_at + 7);
  if (!text.empty() && text.back() == '\n') text.pop_back();  // the file's own final newline
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(TokenizerSpm, SpecialTokensAndPrefix) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-llama-spm.gguf");
  auto tok = load(vocab);
  const std::vector<int32_t> hello = tok->encode("Hello", false, false);
  ASSERT_FALSE(hello.empty());
  // With parse_special, "<s>" is BOS and the text after it gets the dummy prefix again.
  std::vector<int32_t> expected = {1};
  expected.insert(expected.end(), hello.begin(), hello.end());
  EXPECT_EQ(tok->encode("<s>Hello", false, true), expected);
  // Without it, "<s>" is plain text: no id 1 anywhere.
  const std::vector<int32_t> plain = tok->encode("<s>Hello", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0) << ids_str(plain);
  EXPECT_EQ(tok->decode(plain), "<s>Hello");
  // BOS is added once, EOS never (add_eos_token false).
  const std::vector<int32_t> with_bos = tok->encode("Hello", true, false);
  EXPECT_EQ(with_bos.front(), 1);
  EXPECT_EQ(with_bos.size(), hello.size() + 1);
  EXPECT_TRUE(tok->encode("", false, false).empty());
  EXPECT_EQ(tok->encode("", true, false), std::vector<int32_t>{1});
}

TEST(TokenizerBpe, Qwen2SpecialTokens) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-qwen2.gguf");
  auto tok = load(vocab);
  EXPECT_EQ(tok->kind(), VocabKind::kBpe);
  EXPECT_EQ(tok->pre(), "qwen2");
  EXPECT_EQ(tok->n_vocab(), 151936);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_EQ(tok->find_token("<|im_start|>"), 151644);
  const std::string text = "<|im_start|>user\nHi<|im_end|>\n";
  const std::vector<int32_t> ids = tok->encode(text, true, true);  // no BOS for Qwen
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 151645), 1);
  EXPECT_EQ(tok->decode(ids, /*render_special=*/true), text);
  EXPECT_EQ(tok->decode(ids), "user\nHi\n");
  const std::vector<int32_t> plain = tok->encode(text, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 151644), 0) << ids_str(plain);
  EXPECT_EQ(tok->decode(plain), text);
  EXPECT_TRUE(tok->is_eog(151643));  // <|endoftext|> (EOS)
  EXPECT_TRUE(tok->is_eog(151645));  // <|im_end|>
  EXPECT_FALSE(tok->is_eog(151644));
  EXPECT_EQ(tok->decode_token(151700), "");  // [PAD...] entries are UNUSED
}

TEST(TokenizerBpe, Llama3SpecialTokensAndBos) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-llama3.gguf");
  auto tok = load(vocab);
  EXPECT_EQ(tok->pre(), "llama-bpe");
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->bos(), 128000);
  const std::vector<int32_t> hello = tok->encode("Hello", false, false);
  std::vector<int32_t> expected = {128000};
  expected.insert(expected.end(), hello.begin(), hello.end());
  EXPECT_EQ(tok->encode("Hello", true, false), expected);
  EXPECT_EQ(tok->encode("<|begin_of_text|>Hello", false, true), expected);
  const std::vector<int32_t> ids =
      tok->encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", false, true);
  EXPECT_EQ(ids.front(), 128006);
  EXPECT_EQ(ids.back(), 128009);
  for (int32_t id : {128009, 128001, 128008}) EXPECT_TRUE(tok->is_eog(id)) << id;
  EXPECT_FALSE(tok->is_eog(128000));
  EXPECT_EQ(tok->eot(), 128009);
  // Every byte has its byte-level token, so no input can fall back to <unk>.
  for (int b = 0; b < 256; ++b) {
    EXPECT_GE(tok->find_token(tok_internal::byte_to_unicode_utf8(static_cast<uint8_t>(b))), 0)
        << b;
  }
}

// A UTF-8 character split across tokens is held back until complete.
TEST(TokenizerStream, HoldsPartialCharacters) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-llama-spm.gguf");
  auto tok = load(vocab);
  // U+1F999 (llama emoji) is not in the SPM vocabulary: four byte tokens.
  const std::vector<int32_t> ids = tok->encode("\xf0\x9f\xa6\x99", false, false);
  ASSERT_GE(ids.size(), 4u) << ids_str(ids);
  StreamDecoder stream(*tok);
  std::vector<std::string> chunks;
  for (int32_t id : ids) chunks.push_back(stream.push(id));
  for (size_t i = 0; i + 1 < chunks.size(); ++i) EXPECT_EQ(chunks[i], "") << i;
  EXPECT_EQ(chunks.back(), "\xf0\x9f\xa6\x99");
  // An unfinished character at the end comes out of flush().
  StreamDecoder cut(*tok);
  std::string got;
  for (size_t i = 0; i + 1 < ids.size(); ++i) got += cut.push(ids[i]);
  EXPECT_EQ(got, "");
  EXPECT_EQ(cut.flush(), "\xf0\x9f\xa6");
  // Continuing after a prompt keeps the space of the first token.
  StreamDecoder cont(*tok, /*at_sequence_start=*/false);
  EXPECT_EQ(cont.push(tok->find_token("\xe2\x96\x81Hello")), " Hello");
}

TEST(TokenizerBpe, OutOfRangeIdIsAnError) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-qwen2.gguf");
  auto tok = load(vocab);
  EXPECT_THROW(tok->decode_token(-1), Error);
  EXPECT_THROW(tok->decode_token(151936), Error);
  EXPECT_THROW(tok->token_text(1 << 30), Error);
}

// ---- pre-tokenizers -------------------------------------------------------------------------

std::vector<std::string> split(const std::string& pre, std::string_view text) {
  bool ignore_merges = false, add_bos = false;
  auto p = tok_internal::Pretokenizer::create(pre, "test", &ignore_merges, &add_bos);
  std::vector<std::string_view> words;
  p->split(text, &words);
  return std::vector<std::string>(words.begin(), words.end());
}

using Words = std::vector<std::string>;

TEST(TokenizerPretokenizer, SplitsLikeTheRegexes) {
  EXPECT_EQ(split("llama-bpe", "Hello world"), (Words{"Hello", " world"}));
  EXPECT_EQ(split("llama-bpe", "123456"), (Words{"123", "456"}));
  EXPECT_EQ(split("qwen2", "1234"), (Words{"1", "2", "3", "4"}));
  // Case-insensitive contractions, whitespace before a word keeps one space for the word,
  // newline runs are their own pre-token.
  EXPECT_EQ(split("llama-bpe", "I'VE  done\n\n x"),
            (Words{"I", "'VE", " ", " done", "\n\n", " x"}));
  // GPT-2's contractions are lower-case only.
  EXPECT_EQ(split("gpt-2", "I'VE it's"), (Words{"I", "'", "VE", " it", "'s"}));
  EXPECT_EQ(split("default", "a  b   "), (Words{"a", " ", " b", "   "}));
  // U+180E is not White_Space (llama.cpp's table), so it groups with the space before it as
  // punctuation would; PCRE2's own \s would have made it whitespace.
  EXPECT_EQ(split("gpt-2", "a \xE1\xA0\x8E" "b"), (Words{"a", " \xE1\xA0\x8E", "b"}));
  // U+3000 (ideographic space) is whitespace: \s+(?!\S) leaves the last one of the run, which
  // (not being an ASCII space) cannot prefix the word and stands alone.
  EXPECT_EQ(split("gpt-2", "a\xE3\x80\x80\xE3\x80\x80" "b"),
            (Words{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));
  // Invalid UTF-8 never matches: it is a pre-token of its own, and nothing is lost.
  EXPECT_EQ(split("qwen2", "ab\xFF\xFE" "cd"), (Words{"ab", "\xFF\xFE", "cd"}));
  EXPECT_EQ(split("qwen2", ""), Words{});
}

TEST(TokenizerPretokenizer, UnknownNameIsAnError) {
  try {
    split("tekken", "x");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported pre-tokenizer 'tekken'"), std::string::npos)
        << e.what();
  }
}

// ---- malformed vocabularies (built in memory) -----------------------------------------------

std::string error_of(const gguf::Writer& w) {
  const std::vector<uint8_t> bytes = w.to_bytes();
  try {
    gguf::File f = gguf::File::parse(bytes.data(), bytes.size(), "test.gguf");
    Tokenizer::from_gguf(f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

gguf::Writer tiny_bpe() {
  gguf::Writer w;
  w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::Value::string("qwen2"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b", "ab"}));
  w.set("tokenizer.ggml.merges", gguf::Value::string_array({"a b"}));
  return w;
}

TEST(TokenizerErrors, MalformedVocabularies) {
  {
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::string("llama"));
    EXPECT_NE(error_of(w).find("tokenizer.ggml.model"), std::string::npos) << error_of(w);
  }
  {
    gguf::Writer w = tiny_bpe();
    w.set("tokenizer.ggml.model", gguf::Value::string("bert"));
    EXPECT_NE(error_of(w).find("unsupported tokenizer model 'bert'"), std::string::npos)
        << error_of(w);
  }
  {
    gguf::Writer w = tiny_bpe();
    w.set("tokenizer.ggml.pre", gguf::Value::string("mystery-pre"));
    EXPECT_NE(error_of(w).find("unsupported pre-tokenizer 'mystery-pre'"), std::string::npos)
        << error_of(w);
  }
  {
    gguf::Writer w = tiny_bpe();
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b", "a"}));
    EXPECT_NE(error_of(w).find("duplicate token"), std::string::npos) << error_of(w);
  }
  {
    gguf::Writer w = tiny_bpe();
    w.set("tokenizer.ggml.scores", gguf::Value::f32_array({0.0f}));
    EXPECT_NE(error_of(w).find("tokenizer.ggml.scores has 1 entries for 3 tokens"),
              std::string::npos)
        << error_of(w);
  }
  {
    gguf::Writer w;
    w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b"}));
    EXPECT_NE(error_of(w).find("tokenizer.ggml.merges"), std::string::npos) << error_of(w);
  }
  {
    gguf::Writer w = tiny_bpe();
    w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
    EXPECT_NE(error_of(w).find("bos_token_id is not set"), std::string::npos) << error_of(w);
  }
  {
    gguf::Writer w = tiny_bpe();
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array({}));
    EXPECT_NE(error_of(w).find("empty"), std::string::npos) << error_of(w);
  }
  EXPECT_EQ(error_of(tiny_bpe()), "");
}

// Merges apply by rank, not by position: with "b c" ranked before "a b", "abc" -> a + bc.
TEST(TokenizerBpe, MergeRankOrder) {
  auto build = [](std::vector<std::string> merges) {
    gguf::Writer w;
    w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
    w.set("tokenizer.ggml.pre", gguf::Value::string("gpt-2"));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b", "c", "ab", "bc"}));
    w.set("tokenizer.ggml.merges", gguf::Value::string_array(merges));
    const std::vector<uint8_t> bytes = w.to_bytes();
    gguf::File f = gguf::File::parse(bytes.data(), bytes.size(), "merges.gguf");
    return Tokenizer::from_gguf(f);
  };
  EXPECT_EQ(build({"b c", "a b"})->encode("abc", false, false), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(build({"a b", "b c"})->encode("abc", false, false), (std::vector<int32_t>{3, 2}));
}

// SPM merges by score: the higher-scoring pair wins wherever it is.
TEST(TokenizerSpm, MergeScoreOrder) {
  auto build = [](float ab, float bc) {
    gguf::Writer w;
    w.set("tokenizer.ggml.model", gguf::Value::string("llama"));
    w.set("tokenizer.ggml.tokens",
          gguf::Value::string_array({"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "c",
                                     "\xe2\x96\x81" "a", "ab", "bc"}));
    w.set("tokenizer.ggml.scores",
          gguf::Value::f32_array({0, 0, 0, -1, -2, -2, -2, -100, ab, bc}));
    w.set("tokenizer.ggml.token_type",
          gguf::Value::i32_array({2, 3, 3, 1, 1, 1, 1, 1, 1, 1}));
    const std::vector<uint8_t> bytes = w.to_bytes();
    gguf::File f = gguf::File::parse(bytes.data(), bytes.size(), "spm.gguf");
    return Tokenizer::from_gguf(f);
  };
  // "▁abc": ▁a (-100) loses to both; then ab vs bc by score.
  EXPECT_EQ(build(-5, -10)->encode("abc", false, false), (std::vector<int32_t>{3, 8, 6}));
  EXPECT_EQ(build(-10, -5)->encode("abc", false, false), (std::vector<int32_t>{7, 9}));
  // No byte tokens and a character outside the vocabulary: <unk>.
  EXPECT_EQ(build(-5, -10)->encode("z", false, false), (std::vector<int32_t>{3, 0}));
}

// ---- speed -----------------------------------------------------------------------------------

#if !defined(__SANITIZE_ADDRESS__)
TEST(TokenizerSpeed, LoadsLargeVocabularyQuickly) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-qwen2.gguf");
  gguf::File f = gguf::File::open(vocab);
  const auto t0 = std::chrono::steady_clock::now();
  auto tok = Tokenizer::from_gguf(f);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ timing    ] qwen2 vocabulary (151936 tokens, %zu merges) built in %.1f ms\n",
              tok->n_merges(), ms);
  EXPECT_LT(ms, 1000.0);
}
#endif

// Long inputs that would be quadratic in a naive merge loop: one 200k-letter word (a single
// pre-token), 200k spaces, 200k characters of SPM text.
TEST(TokenizerSpeed, LongInputsAreNotQuadratic) {
  XTILE_REQUIRE_FIXTURE(qwen, "tokenizers/vocab-qwen2.gguf");
  XTILE_REQUIRE_FIXTURE(spm, "tokenizers/vocab-llama-spm.gguf");
  auto q = load(qwen);
  auto s = load(spm);
  const std::string word(200000, 'a');
  const std::string spaces(200000, ' ');
  std::string prose;
  while (prose.size() < 200000) prose += "The quick brown fox jumps over the lazy dog. ";
  const auto t0 = std::chrono::steady_clock::now();
  for (const std::string& text : {word, spaces, prose}) {
    EXPECT_EQ(q->decode(q->encode(text, false, false)), text);
    EXPECT_EQ(s->decode(s->encode(text, false, false)), text);
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ timing    ] 6 encodes+decodes of 200 kB each: %.1f ms\n", ms);
  EXPECT_LT(ms, 20000.0);
}

}  // namespace tokenizer_test
}  // namespace
}  // namespace xtile
