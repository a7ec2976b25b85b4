// Fill-in-the-middle (/infill): the prompt's layout against the tokenizer reading the same
// layout written as text with its special tokens (in process, on the Qwen2 vocabulary with
// Qwen2.5-Coder's FIM tokens appended), cutting a long prompt to its limit (the extra context
// first, then the prefix's beginning and the suffix's end), and over HTTP: /infill answers as
// /completion does for that prompt, whole and streamed, as do /v1/completions with a suffix and
// Ollama's generate with one; a model without FIM tokens is a 501 (a suffix there, a 400).
#include "server/infill.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "http_client.h"
#include "server_process.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile::test {
namespace {
namespace infill_test {  // unity batches: CMakeLists.txt

using nlohmann::json;
using server::FimTokens;
using server::InfillText;

class InfillPrompt : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string vocab = fim_vocab();
    if (vocab.empty()) GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-qwen2.gguf is absent";
    tok_ = Tokenizer::from_gguf(gguf::File::open(vocab));
    fim_ = server::fim_tokens(*tok_);
  }
  // The layout written as text, read with its special tokens.
  std::vector<int32_t> as_text(const std::string& s) const { return tok_->encode(s, false, true); }
  std::unique_ptr<Tokenizer> tok_;
  FimTokens fim_;
};

TEST_F(InfillPrompt, FindsTheTokensAndLaysThePromptOut) {
  ASSERT_TRUE(fim_.usable());
  EXPECT_EQ(fim_.prefix, tok_->find_token("<|fim_prefix|>"));
  EXPECT_GE(fim_.file_sep, 0);
  EXPECT_GE(fim_.repo, 0);
  InfillText t;
  t.prefix = "def add(a, b):\n    ";
  t.prompt = "return";
  t.suffix = "\n\nprint(add(1, 2))\n";
  EXPECT_EQ(server::infill_prompt(*tok_, fim_, t, 4096),
            as_text("<|fim_prefix|>def add(a, b):\n    return<|fim_suffix|>\n\nprint(add(1, "
                    "2))\n<|fim_middle|>"));
  // Other files: repository-level FIM (Qwen2.5-Coder's), the edited file last.
  t.extra = {{"util.py", "def sub(a, b):\n    return a - b\n"}, {"README", "Adds."}};
  t.filename = "main.py";
  EXPECT_EQ(server::infill_prompt(*tok_, fim_, t, 4096),
            as_text("<|repo_name|>project\n<|file_sep|>util.py\ndef sub(a, b):\n    return a - "
                    "b\n<|file_sep|>README\nAdds.<|file_sep|>main.py\n<|fim_prefix|>def add(a, "
                    "b):\n    return<|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>"));
  // The user's text is text, whatever it spells.
  InfillText s;
  s.prefix = "x = '<|fim_middle|>'";
  const std::vector<int32_t> ids = server::infill_prompt(*tok_, fim_, s, 4096);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), fim_.middle), 1);
}

TEST_F(InfillPrompt, ALongPromptKeepsTheTextNearestTheCursor) {
  InfillText t;
  for (int i = 0; i < 300; ++i) t.prefix += "line " + std::to_string(i) + "\n";
  for (int i = 0; i < 300; ++i) t.suffix += "after " + std::to_string(i) + "\n";
  t.extra = {{"old.txt", std::string(2000, 'a')}, {"new.txt", "recent context"}};
  const std::vector<int32_t> pre = tok_->encode(t.prefix, false, false);
  const std::vector<int32_t> suf = tok_->encode(t.suffix, false, false);
  for (const int64_t limit : {int64_t{64}, int64_t{200}, int64_t{1000}}) {
    SCOPED_TRACE(limit);
    const std::vector<int32_t> ids = server::infill_prompt(*tok_, fim_, t, limit);
    EXPECT_LE(static_cast<int64_t>(ids.size()), limit);
    const auto p = std::find(ids.begin(), ids.end(), fim_.prefix);
    const auto s = std::find(ids.begin(), ids.end(), fim_.suffix);
    ASSERT_NE(p, ids.end());
    ASSERT_NE(s, ids.end());
    EXPECT_EQ(ids.back(), fim_.middle);
    // The prefix's end and the suffix's beginning, three quarters of the room to the prefix.
    const std::vector<int32_t> kept_pre(p + 1, s), kept_suf(s + 1, ids.end() - 1);
    ASSERT_LE(kept_pre.size(), pre.size());
    EXPECT_TRUE(std::equal(kept_pre.begin(), kept_pre.end(), pre.end() - kept_pre.size()));
    EXPECT_TRUE(std::equal(kept_suf.begin(), kept_suf.end(), suf.begin()));
    EXPECT_EQ(static_cast<int64_t>(kept_pre.size()),
              std::min<int64_t>(pre.size(), (limit - 3) * 3 / 4));
    // No room for other files: none written.
    EXPECT_EQ(p, ids.begin());
  }
  // Room for the newest chunk only.
  InfillText small;
  small.prefix = "a = 1\n";
  small.extra = t.extra;
  const std::vector<int32_t> ids = server::infill_prompt(*tok_, fim_, small, 60);
  EXPECT_EQ(ids, as_text("<|repo_name|>project\n<|file_sep|>new.txt\nrecent context<|file_sep|>"
                         "file\n<|fim_prefix|>a = 1\n<|fim_suffix|><|fim_middle|>"));
}

TEST(InfillHttp, AnswersAsCompletionDoesForTheFimPrompt) {
  const std::string model = fim_model();
  if (model.empty()) GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-qwen2.gguf is absent";
  ServerProcess server({"-m", model, "-np", "2", "-c", "1024", "-t", "2"});
  ASSERT_TRUE(server.ok());
  const int port = server.port();
  const Reply ids =
      post(port, "/tokenize",
           {{"content", "<|fim_prefix|>int main() {\n  return<|fim_suffix|>\n}\n<|fim_middle|>"},
            {"parse_special", true}});
  ASSERT_EQ(ids.status, 200) << ids.body;
  const json params = {{"seed", 4}, {"temperature", 0.7}, {"n_predict", 12}};
  json completion = params;
  completion["prompt"] = ids.j()["tokens"];
  const Reply want = post(port, "/completion", completion);
  ASSERT_EQ(want.status, 200) << want.body;
  json infill = params;
  infill["input_prefix"] = "int main() {\n  ";
  infill["prompt"] = "return";
  infill["input_suffix"] = "\n}\n";
  const Reply got = post(port, "/infill", infill);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.j()["content"], want.j()["content"]);
  EXPECT_EQ(got.j()["tokens_evaluated"], ids.j()["tokens"].size());
  infill["stream"] = true;
  const Reply streamed = post(port, "/infill", infill);
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  std::string text;
  size_t from = 0;
  while ((from = streamed.body.find("data: ", from)) != std::string::npos) {
    const size_t end = streamed.body.find("\n\n", from);
    text +=
        json::parse(streamed.body.substr(from + 6, end - from - 6))["content"].get<std::string>();
    from = end;
  }
  EXPECT_EQ(json(text), want.j()["content"]);
  // A completion's suffix (OpenAI's) and Ollama's generate with a suffix: the same prompt.
  const Reply openai = post(port, "/v1/completions",
                            {{"prompt", "int main() {\n  return"},
                             {"suffix", "\n}\n"},
                             {"seed", 4},
                             {"temperature", 0.7},
                             {"max_tokens", 12}});
  ASSERT_EQ(openai.status, 200) << openai.body;
  EXPECT_EQ(openai.j()["choices"][0]["text"], want.j()["content"]);
  EXPECT_EQ(openai.j()["usage"]["prompt_tokens"], ids.j()["tokens"].size());
  const Reply ollama = post(port, "/api/generate",
                            {{"model", "server-test-qwen3-1L-fim-q4_0"},
                             {"prompt", "int main() {\n  return"},
                             {"suffix", "\n}\n"},
                             {"options", {{"seed", 4}, {"temperature", 0.7}, {"num_predict", 12}}},
                             {"stream", false}});
  ASSERT_EQ(ollama.status, 200) << ollama.body;
  EXPECT_EQ(ollama.j()["response"], want.j()["content"]);
  const Reply show = post(port, "/api/show", {{"model", "server-test-qwen3-1L-fim-q4_0"}});
  ASSERT_EQ(show.status, 200) << show.body;
  const json caps = show.j()["capabilities"];
  EXPECT_NE(std::find(caps.begin(), caps.end(), "insert"), caps.end()) << caps.dump();
  const Reply ids_suffix = post(port, "/v1/completions", {{"prompt", {1, 2}}, {"suffix", "x"}});
  EXPECT_EQ(ids_suffix.status, 400) << ids_suffix.body;

  const Reply bad = post(port, "/infill", {{"input_extra", {{{"filename", "a"}}}}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.j()["error"]["param"], "input_extra[0].text");
  EXPECT_EQ(server.stop(), 0) << server.log();
}

TEST(InfillHttp, AModelWithoutFimTokensSaysSo) {
  const std::string model = fixture_path("models/stories260K.gguf");
  if (model.empty()) GTEST_SKIP() << "../shared/fixtures/models/stories260K.gguf is absent";
  ServerProcess server({"-m", model, "-np", "1", "-t", "2"});
  ASSERT_TRUE(server.ok());
  const Reply r = post(server.port(), "/infill", {{"input_prefix", "x"}});
  EXPECT_EQ(r.status, 501) << r.body;
  EXPECT_NE(r.body.find("fill-in-the-middle"), std::string::npos) << r.body;
  const Reply suffix = post(server.port(), "/v1/completions", {{"prompt", "a"}, {"suffix", "b"}});
  EXPECT_EQ(suffix.status, 400) << suffix.body;
  EXPECT_EQ(suffix.j()["error"]["param"], "suffix");
  EXPECT_EQ(server.stop(), 0) << server.log();
}

}  // namespace infill_test
}  // namespace
}  // namespace xtile::test
