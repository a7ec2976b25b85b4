// /rerank on the real binary, on the one-layer qwen3 model with Qwen's vocabulary (slow_model):
// a score is P(yes) against "no" at the prompt's last position, checked against the model's own
// next-token log-probabilities of "yes" and "no" after the same prompt (echo on
// /v1/completions, through the output head's kernels); sorted, cut to top_n, Jina's / Cohere's
// and TEI's shapes, the same bits alone or in a list, errors naming the field. And a copy of the
// model with llama.cpp's reranker layout (cls.output.weight, here with its rows swapped to (no,
// yes), and the GGUF's own rerank prompt) scores 1 - P(yes).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "http_client.h"
#include "model/embedding.h"
#include "server_process.h"
#include "test_util.h"

namespace xtile::test {
namespace {
namespace rerank_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

const char* kQuery = "What is the capital of France?";
const std::vector<std::string> kDocuments = {"Paris is the capital of France.",
                                             "Bananas are yellow.", "The Eiffel Tower", "Lyon"};

// Qwen3-Reranker's prompt as its model card writes it, for one document.
std::string qwen3_rerank_prompt(const std::string& query, const std::string& document) {
  return "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
         "Query and the Instruct provided. Note that the answer can only be \"yes\" or "
         "\"no\".<|im_end|>\n<|im_start|>user\n<Instruct>: Given a web search query, retrieve "
         "relevant passages that answer the query\n<Query>: " +
         query + "\n<Document>: " + document +
         "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
}

json ids_of(int port, const std::string& text) {
  const Reply r = post(port, "/tokenize", {{"content", text}, {"parse_special", true}});
  EXPECT_EQ(r.status, 200) << r.body;
  return r.j()["tokens"];
}

// The model's log-probability of `answer` after the prompt (echo scores the prompt's tokens).
double answer_logprob(int port, const json& prompt, const json& answer) {
  json ids = prompt;
  ids.push_back(answer);
  const Reply r = post(port, "/v1/completions",
                       {{"prompt", ids}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 0}});
  EXPECT_EQ(r.status, 200) << r.body;
  return r.j()["choices"][0]["logprobs"]["token_logprobs"].back().get<double>();
}

// slow_model with llama.cpp's reranker layout: cls.output.weight holds the head's rows of "no"
// and "yes" (swapped from the converter's order, so that its score is 1 - P(yes)), and the
// GGUF carries the rerank prompt, with the instruction written in.
std::string swapped_reranker(const std::string& model, int32_t yes, int32_t no) {
  const std::string out = std::string(XTILE_BINARY_DIR) + "/server-test-qwen3-1L-rerank.gguf";
  if (std::filesystem::exists(out)) return out;
  const gguf::File in = gguf::File::open(model);
  gguf::Writer w;
  for (const auto& [key, value] : in.metadata()) w.set(key, value);
  const std::string prompt = qwen3_rerank_prompt("{query}", "{document}");
  w.set("tokenizer.chat_template.rerank", gguf::Value::string(prompt));
  for (const gguf::TensorInfo& t : in.tensors())
    w.add_tensor(t.name, t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims), t.data);
  const gguf::TensorInfo* embd = in.find_tensor("token_embd.weight");  // (tied head)
  const int64_t n_embd = static_cast<int64_t>(embd->ne[0]);
  std::vector<float> rows(static_cast<size_t>(2 * n_embd));
  dequantize_gguf_row(embd->type, embd->data, n_embd, no, rows.data());
  dequantize_gguf_row(embd->type, embd->data, n_embd, yes, rows.data() + n_embd);
  w.add_tensor("cls.output.weight", GgmlType::F32, {static_cast<uint64_t>(n_embd), 2}, rows.data());
  const std::string tmp = out + ".tmp-" + std::to_string(getpid()) + ".gguf";
  w.write(tmp);
  std::filesystem::rename(tmp, out);
  return out;
}

TEST(Rerank, ScoresAreTheModelsYesAgainstNo) {
  const std::string model = slow_model();
  if (model.empty()) GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-qwen2.gguf is absent";
  ASSERT_NE(model.find("qwen3"), std::string::npos);
  ServerProcess server({"-m", model, "-np", "3", "-c", "512", "-t", "2"});
  ASSERT_TRUE(server.ok()) << server.log();
  const int port = server.port();

  const Reply r =
      post(port, "/v1/rerank",
           {{"model", "anything-local"},
            {"query", kQuery},
            {"documents", {kDocuments[0], kDocuments[1], kDocuments[2], {{"text", kDocuments[3]}}}},
            {"return_documents", true}});
  ASSERT_EQ(r.status, 404) << r.body;  // not the model it runs
  const json body = {
      {"query", kQuery},
      {"documents", {kDocuments[0], kDocuments[1], kDocuments[2], {{"text", kDocuments[3]}}}},
      {"return_documents", true}};
  const Reply ranked = post(port, "/v1/rerank", body);
  ASSERT_EQ(ranked.status, 200) << ranked.body;
  const json results = ranked.j()["results"];
  ASSERT_EQ(results.size(), kDocuments.size());
  EXPECT_EQ(ranked.j()["object"], "list");
  EXPECT_GT(ranked.j()["usage"]["prompt_tokens"].get<int>(), 4 * 50);  // the prompts' tokens
  std::vector<double> score(kDocuments.size(), -1.0);
  for (size_t k = 0; k < results.size(); ++k) {
    const size_t i = results[k]["index"];
    ASSERT_LT(i, kDocuments.size());
    score[i] = results[k]["relevance_score"];
    EXPECT_EQ(results[k]["document"]["text"], kDocuments[i]);
    if (k > 0) {
      EXPECT_GE(results[k - 1]["relevance_score"].get<double>(), score[i]);
    }
  }

  // Each score against the model's next-token log-probabilities of "yes" and "no" after the
  // same prompt: sigmoid(lp(yes) - lp(no)). The echo's logits come through the head's int8
  // kernels (activations quantized per 32), the score from the float rows in double: close,
  // not the same bits.
  const json yes = ids_of(port, "yes")[0], no = ids_of(port, "no")[0];
  for (size_t i = 0; i < kDocuments.size(); ++i) {
    ASSERT_GE(score[i], 0.0) << "document " << i << " missing";
    const json prompt = ids_of(port, qwen3_rerank_prompt(kQuery, kDocuments[i]));
    const double lp_yes = answer_logprob(port, prompt, yes);
    const double lp_no = answer_logprob(port, prompt, no);
    EXPECT_NEAR(score[i], 1.0 / (1.0 + std::exp(lp_no - lp_yes)), 2e-3) << "document " << i;
    // The same bits alone as in the list.
    const Reply alone = post(port, "/rerank", {{"query", kQuery}, {"documents", {kDocuments[i]}}});
    ASSERT_EQ(alone.status, 200) << alone.body;
    EXPECT_EQ(alone.j()["results"][0]["relevance_score"].get<double>(), score[i]);
  }

  // top_n; TEI's shape ("texts": a bare list with "score", "text" on return_text).
  json top = body;
  top["top_n"] = 2;
  top.erase("return_documents");
  const Reply two = post(port, "/reranking", top);
  ASSERT_EQ(two.status, 200) << two.body;
  ASSERT_EQ(two.j()["results"].size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(two.j()["results"][k]["index"], results[k]["index"]);
    EXPECT_FALSE(two.j()["results"][k].contains("document"));
  }
  const Reply tei =
      post(port, "/rerank", {{"query", kQuery}, {"texts", kDocuments}, {"return_text", true}});
  ASSERT_EQ(tei.status, 200) << tei.body;
  ASSERT_TRUE(tei.j().is_array());
  ASSERT_EQ(tei.j().size(), kDocuments.size());
  for (const json& t : tei.j()) {
    const size_t i = t["index"];
    EXPECT_EQ(t["score"].get<double>(), score[i]);
    EXPECT_EQ(t["text"], kDocuments[i]);
  }
  // Another instruction is another prompt.
  const Reply instructed = post(port, "/rerank",
                                {{"query", kQuery},
                                 {"documents", {kDocuments[0]}},
                                 {"instruction", "Find passages about fruit"}});
  ASSERT_EQ(instructed.status, 200) << instructed.body;
  EXPECT_NE(instructed.j()["results"][0]["relevance_score"].get<double>(), score[0]);

  auto param_of = [&](const json& b) {
    const Reply e = post(port, "/v1/rerank", b);
    EXPECT_EQ(e.status, 400) << e.body;
    return e.status == 400 ? e.j()["error"]["param"] : json();
  };
  EXPECT_EQ(param_of({{"documents", {"a"}}}), "query");
  EXPECT_EQ(param_of({{"query", "q"}, {"documents", json::array()}}), "documents");
  EXPECT_EQ(param_of({{"query", "q"}, {"documents", {"a", 3}}}), "documents[1]");
  EXPECT_EQ(param_of({{"query", "q"}, {"documents", {"a"}}, {"top_n", 0}}), "top_n");
  EXPECT_EQ(param_of({{"query", "q"}, {"documents", {"a"}}, {"return_documents", "yes"}}),
            "return_documents");
  EXPECT_EQ(server.stop(), 0);

  // The reranker layout: cls.output.weight's rows (here no, yes) and the GGUF's prompt.
  const std::string swapped = swapped_reranker(model, yes.get<int32_t>(), no.get<int32_t>());
  ServerProcess cls({"-m", swapped, "-np", "2", "-c", "512", "-t", "2", "--reranking"});
  ASSERT_TRUE(cls.ok()) << cls.log();
  const Reply flipped = post(cls.port(), "/rerank", {{"query", kQuery}, {"documents", kDocuments}});
  ASSERT_EQ(flipped.status, 200) << flipped.body;
  const json flipped_results = flipped.j()["results"];  // (a copy: j() is a temporary)
  for (const json& f : flipped_results) {
    const size_t i = f["index"];
    EXPECT_NEAR(f["relevance_score"].get<double>(), 1.0 - score[i], 1e-12) << "document " << i;
  }
  // Its prompt has the instruction written in: none to fill.
  const Reply refused =
      post(cls.port(), "/rerank", {{"query", kQuery}, {"documents", {"a"}}, {"instruction", "x"}});
  EXPECT_EQ(refused.status, 400) << refused.body;
}

}  // namespace rerank_test
}  // namespace
}  // namespace xtile::test
