// Embeddings on the real `xtile serve` binary: /v1/embeddings in OpenAI's shape (vectors of
// length 1, one per input in order, the same vector for a text alone or in a list and for its
// token ids, `dimensions` as the first values scaled to length 1 again, base64 as the floats'
// bytes), Ollama's /api/embed and /api/embeddings giving the same vectors, a long input refused
// or (Ollama's truncate) cut to the context, and errors naming the field. llama-server's
// /embedding: the same vectors in its shape, each embd_normalize, and under --pooling none a
// vector per token (scheduler_test checks them against Session's rows), which the other routes
// refuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http_client.h"
#include "server_process.h"
#include "test_util.h"
#include "vector_norm.h"

namespace xtile::test {
namespace {
namespace embeddings_http_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

std::vector<float> floats(const json& j) {
  return j.get<std::vector<float>>();
}

std::vector<uint8_t> unbase64(const std::string& s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = value(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

double length(const std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  return std::sqrt(n);
}

class EmbeddingsHttp : public StoriesSuite<EmbeddingsHttp> {
 public:
  static constexpr const char* kFlags[] = {"-np", "3", "-c", "256", "-t", "2"};

 protected:
  json embeddings(const json& body) {
    const Reply r = post(port_, "/v1/embeddings", body);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.j() : json();
  }
};

TEST_F(EmbeddingsHttp, OneVectorPerInputTheSameAloneOrInAList) {
  const json texts = {"The cat sat on the mat.", "A dog ran in the park.",
                      "The cat sat on the mat."};
  const json list = embeddings({{"input", texts}, {"model", "stories260K"}});
  ASSERT_FALSE(list.is_null());
  EXPECT_EQ(list["object"], "list");
  EXPECT_EQ(list["model"], "stories260K.gguf");
  ASSERT_EQ(list["data"].size(), 3u);
  int64_t tokens = 0;
  for (size_t i = 0; i < 3; ++i) {
    const json& d = list["data"][i];
    EXPECT_EQ(d["object"], "embedding");
    EXPECT_EQ(d["index"], i);
    const std::vector<float> v = floats(d["embedding"]);
    EXPECT_EQ(v.size(), 64u);  // stories260K's n_embd
    EXPECT_NEAR(length(v), 1.0, 1e-6);
    const json alone = embeddings({{"input", texts[i]}});
    EXPECT_EQ(alone["data"][0]["embedding"], d["embedding"]) << "input " << i;
    tokens += alone["usage"]["prompt_tokens"].get<int64_t>();
  }
  EXPECT_EQ(list["data"][0]["embedding"], list["data"][2]["embedding"]);
  EXPECT_NE(list["data"][0]["embedding"], list["data"][1]["embedding"]);
  EXPECT_EQ(list["usage"]["prompt_tokens"], tokens);
  EXPECT_EQ(list["usage"]["total_tokens"], tokens);

  // Token ids: the text's tokens as a completion's prompt reads them (BOS first).
  const Reply ids = post(port_, "/tokenize", {{"content", texts[1]}, {"add_special", true}});
  ASSERT_EQ(ids.status, 200) << ids.body;
  EXPECT_EQ(embeddings({{"input", ids.j()["tokens"]}})["data"][0]["embedding"],
            list["data"][1]["embedding"]);
  EXPECT_EQ(embeddings({{"input", json::array({ids.j()["tokens"]})}})["data"][0]["embedding"],
            list["data"][1]["embedding"]);
}

TEST_F(EmbeddingsHttp, DimensionsAndBase64) {
  const std::vector<float> full =
      floats(embeddings({{"input", "Hello there"}})["data"][0]["embedding"]);
  const std::vector<float> cut =
      floats(embeddings({{"input", "Hello there"}, {"dimensions", 16}})["data"][0]["embedding"]);
  ASSERT_EQ(cut.size(), 16u);
  const double head = length(std::vector<float>(full.begin(), full.begin() + 16));
  for (size_t i = 0; i < 16; ++i) EXPECT_NEAR(cut[i], full[i] / head, 1e-6) << i;
  EXPECT_NEAR(length(cut), 1.0, 1e-6);
  const json b64 = embeddings({{"input", "Hello there"}, {"encoding_format", "base64"}});
  const std::vector<uint8_t> bytes = unbase64(b64["data"][0]["embedding"].get<std::string>());
  ASSERT_EQ(bytes.size(), full.size() * sizeof(float));
  EXPECT_EQ(0, std::memcmp(bytes.data(), full.data(), bytes.size()));
}

TEST_F(EmbeddingsHttp, OllamasRoutesGiveTheSameVectors) {
  const json openai = embeddings({{"input", {"One fish", "Two fish"}}});
  const Reply embed =
      post(port_, "/api/embed",
           {{"model", "stories260K.gguf:latest"}, {"input", {"One fish", "Two fish"}}});
  ASSERT_EQ(embed.status, 200) << embed.body;
  ASSERT_EQ(embed.j()["embeddings"].size(), 2u);
  EXPECT_EQ(embed.j()["embeddings"][0], openai["data"][0]["embedding"]);
  EXPECT_EQ(embed.j()["embeddings"][1], openai["data"][1]["embedding"]);
  EXPECT_EQ(embed.j()["prompt_eval_count"], openai["usage"]["prompt_tokens"]);
  const Reply old =
      post(port_, "/api/embeddings", {{"model", "stories260K"}, {"prompt", "Two fish"}});
  ASSERT_EQ(old.status, 200) << old.body;
  EXPECT_EQ(old.j()["embedding"], openai["data"][1]["embedding"]);
}

TEST_F(EmbeddingsHttp, LongInputsAndErrors) {
  std::string words;
  for (int i = 0; i < 200; ++i) words += "frog pond ";
  const Reply long_openai = post(port_, "/v1/embeddings", {{"input", words}});
  EXPECT_EQ(long_openai.status, 400) << long_openai.body;
  EXPECT_EQ(long_openai.j()["error"]["code"], "context_length_exceeded");
  // Ollama cuts a long input to the context (truncate defaults to true) ...
  const Reply cut = post(port_, "/api/embed", {{"model", "stories260K"}, {"input", words}});
  ASSERT_EQ(cut.status, 200) << cut.body;
  EXPECT_EQ(cut.j()["prompt_eval_count"], 256);
  // ... which is the embedding of its first 256 tokens.
  const Reply ids = post(port_, "/tokenize", {{"content", words}, {"add_special", true}});
  json first = ids.j()["tokens"];
  first.erase(first.begin() + 256, first.end());
  EXPECT_EQ(embeddings({{"input", first}})["data"][0]["embedding"], cut.j()["embeddings"][0]);
  const Reply refused =
      post(port_, "/api/embed", {{"model", "stories260K"}, {"input", words}, {"truncate", false}});
  EXPECT_EQ(refused.status, 400) << refused.body;

  auto param_of = [&](const json& body) {
    const Reply r = post(port_, "/v1/embeddings", body);
    EXPECT_EQ(r.status, 400) << r.body;
    return r.status == 400 ? r.j()["error"]["param"] : json();
  };
  EXPECT_EQ(param_of(json::object()), "input");
  EXPECT_EQ(param_of({{"input", ""}}), "input");
  EXPECT_EQ(param_of({{"input", json::array()}}), "input");
  EXPECT_EQ(param_of({{"input", {"a", 3}}}), "input[1]");
  EXPECT_EQ(param_of({{"input", {1, 100000}}}), "input");
  EXPECT_EQ(param_of({{"input", "a"}, {"dimensions", 65}}), "dimensions");
  EXPECT_EQ(param_of({{"input", "a"}, {"encoding_format", "int8"}}), "encoding_format");
  EXPECT_EQ(post(port_, "/v1/embeddings", {{"input", "a"}, {"model", "bge-m3"}}).status, 404);
}

TEST_F(EmbeddingsHttp, LlamaServersOwnShape) {
  const json openai = embeddings({{"input", {"One fish", "Two fish"}}});
  const Reply r = post(port_, "/embedding", {{"content", {"One fish", "Two fish"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(r.j().is_array());
  ASSERT_EQ(r.j().size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r.j()[i]["index"], i);
    ASSERT_EQ(r.j()[i]["embedding"].size(), 1u);  // one pooled vector, in a list of vectors
    EXPECT_EQ(r.j()[i]["embedding"][0], openai["data"][i]["embedding"]);
  }
  // "content" on the OpenAI route is llama-server's shape too; "input" on /embedding is read.
  EXPECT_EQ(post(port_, "/embeddings", {{"content", "Two fish"}}).j(),
            post(port_, "/embedding", {{"input", "Two fish"}}).j());

  // embd_normalize: -1 the model's vector, then each norm of it.
  const Reply raw_reply =
      post(port_, "/embedding", {{"content", "Two fish"}, {"embd_normalize", -1}});
  ASSERT_EQ(raw_reply.status, 200) << raw_reply.body;
  const std::vector<float> raw = floats(raw_reply.j()[0]["embedding"][0]);
  const std::vector<float> unit = floats(openai["data"][1]["embedding"]);
  ASSERT_EQ(raw.size(), unit.size());
  EXPECT_GT(std::fabs(length(raw) - 1.0), 1e-3);  // not already of length 1
  for (size_t i = 0; i < raw.size(); ++i) EXPECT_NEAR(raw[i] / length(raw), unit[i], 1e-6) << i;
  for (int p : {0, 1, 2, 3, 9}) {
    const Reply n = post(port_, "/embedding", {{"content", "Two fish"}, {"embd_normalize", p}});
    ASSERT_EQ(n.status, 200) << n.body;
    const std::vector<float> v = floats(n.j()[0]["embedding"][0]);
    EXPECT_NEAR(p_norm(v, p), p == 0 ? 32760.0 : 1.0, p == 0 ? 1e-2 : 1e-5) << "p " << p;
    const double scale = p_norm(raw, p) / (p == 0 ? 32760.0 : 1.0);
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_NEAR(v[i] * scale, raw[i], 1e-6 * std::fabs(raw[i]) + 1e-9) << "p " << p << ", " << i;
  }

  auto param_of = [&](const json& body) {
    const Reply e = post(port_, "/embedding", body);
    EXPECT_EQ(e.status, 400) << e.body;
    return e.status == 400 ? e.j()["error"]["param"] : json();
  };
  EXPECT_EQ(param_of(json::object()), "content");
  EXPECT_EQ(param_of({{"content", "a"}, {"embd_normalize", -2}}), "embd_normalize");
  EXPECT_EQ(param_of({{"content", "a"}, {"embd_normalize", "2"}}), "embd_normalize");
  EXPECT_EQ(param_of({{"content", {"a", ""}}}), "content[1]");
}

// --pooling none: a vector per token, as the model gives it, on /embedding only.
class PerTokenEmbeddingsHttp : public StoriesSuite<PerTokenEmbeddingsHttp> {
 public:
  static constexpr const char* kFlags[] = {"-np", "2", "-c", "256", "-t", "2", "--pooling", "none"};
};

TEST_F(PerTokenEmbeddingsHttp, OneVectorPerTokenOnlyOnLlamaServersShape) {
  const std::string text = "Two fish";
  const Reply ids = post(port_, "/tokenize", {{"content", text}, {"add_special", true}});
  ASSERT_EQ(ids.status, 200) << ids.body;
  const size_t n_tokens = ids.j()["tokens"].size();
  const Reply r = post(port_, "/embedding", {{"content", text}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json rows = r.j()[0]["embedding"];
  ASSERT_EQ(rows.size(), n_tokens);
  for (const json& row : rows) EXPECT_EQ(row.size(), 64u);
  EXPECT_NE(rows[0], rows[1]);
  // The same bits alone or beside another input, and not scaled (embd_normalize is for pooled
  // vectors, as in llama-server).
  const Reply two =
      post(port_, "/embedding", {{"content", {"One fish", text}}, {"embd_normalize", 2}});
  ASSERT_EQ(two.status, 200) << two.body;
  EXPECT_EQ(two.j()[1]["embedding"], rows);
  EXPECT_GT(std::fabs(length(floats(rows[0])) - 1.0), 1e-3);

  EXPECT_EQ(request(port_, "GET", "/v1/models").j()["data"][0]["meta"]["pooling"], "none");
  const Reply openai = post(port_, "/v1/embeddings", {{"input", text}});
  EXPECT_EQ(openai.status, 400) << openai.body;
  EXPECT_NE(openai.body.find("--pooling none"), std::string::npos) << openai.body;
  EXPECT_EQ(post(port_, "/api/embed", {{"model", "stories260K"}, {"input", text}}).status, 400);
}

}  // namespace embeddings_http_test
}  // namespace
}  // namespace xtile::test
