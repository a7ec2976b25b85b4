// The real `xtile serve` binary on a loopback port, driven over HTTP (cpp-httplib's client):
// every endpoint, streaming framing, the error bodies, 16 concurrent clients, the same bits
// alone and concurrently, cancellation on disconnect, the bounded queue, a full KV budget,
// API keys and the loading state. Models: stories260K (fast) and, where a generation must
// last long enough to be interrupted, a one-layer qwen3-0.6b with the real Qwen2 vocabulary
// synthesized once per build (its 151936-row output makes each token take milliseconds).
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "server/json_prefix.h"
#include "server_process.h"
#include "test_util.h"

namespace xtile::test {
namespace {
namespace server_http_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

// A streamed response, parsed as server-sent events.
struct Events {
  int status = 0;
  std::vector<json> data;  // each data: payload but [DONE]
  bool done = false;       // data: [DONE] came last
  std::string raw;
  std::string error;  // the client's error when the exchange failed
};

// Posts with stream: true. `on_event` may return false to drop the connection.
Events stream(int port, const std::string& path, json body,
              const std::function<bool(const json&)>& on_event = {}) {
  body["stream"] = true;
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(120, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  Events ev;
  std::string buf;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    ev.raw.append(data, n);
    buf.append(data, n);
    size_t cut;
    while ((cut = buf.find("\n\n")) != std::string::npos) {
      const std::string event = buf.substr(0, cut);
      buf.erase(0, cut + 2);
      if (event.rfind("data: ", 0) != 0) continue;  // ": ping"
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        ev.done = true;
        continue;
      }
      EXPECT_FALSE(ev.done) << "an event after [DONE]";
      ev.data.push_back(json::parse(payload));
      if (on_event && !on_event(ev.data.back())) return false;
    }
    return true;
  };
  auto res = cli.send(req);
  if (res)
    ev.status = res->status;
  else
    ev.error = httplib::to_string(res.error());
  return ev;
}

double metric(int port, const std::string& name) {
  const Reply r = request(port, "GET", "/metrics");
  const std::regex re("\\nxtile:" + name + " ([-0-9.e+]+)\\n");
  std::smatch m;
  if (r.status != 200 || !std::regex_search(r.body, m, re)) return -1;
  return std::stod(m[1]);
}

// Polls a metric until `ok` or 20 s.
bool wait_metric(int port, const std::string& name, const std::function<bool(double)>& ok) {
  for (int i = 0; i < 400; ++i) {
    if (ok(metric(port, name))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

json chat_body(const std::string& text, int max_tokens, uint64_t seed, double temperature) {
  return {{"messages", json::array({{{"role", "user"}, {"content", text}}})},
          {"max_tokens", max_tokens},
          {"seed", seed},
          {"temperature", temperature}};
}

std::string stories() {
  return fixture_path("models/stories260K.gguf");
}

#define REQUIRE_STORIES() \
  if (stories().empty()) GTEST_SKIP() << "../shared/fixtures/models/stories260K.gguf is absent"
#define REQUIRE_SLOW_MODEL()                                                             \
  if (slow_model().empty())                                                              \
  GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-qwen2.gguf is absent (needed to " \
                  "synthesize the test model)"

// One server for the tests that do not need their own flags.
class ServerHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (stories().empty()) return;
    server_ = new ServerProcess({"-m", stories(), "-np", "4", "-c", "2048", "-t", "2",
                                 "--max-body-size", "65536", "--alias", "stories"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_STORIES();
    ASSERT_TRUE(server_->ok());
    port_ = server_->port();
  }
  static ServerProcess* server_;
  int port_ = 0;
};
ServerProcess* ServerHttp::server_ = nullptr;

TEST_F(ServerHttp, HealthModelsPropsMetricsAndThePage) {
  Reply r = request(port_, "GET", "/health");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.j()["status"], "ok");
  EXPECT_EQ(r.j()["slots_idle"], 4);
  r = request(port_, "GET", "/v1/models");
  ASSERT_EQ(r.status, 200) << r.body;
  const json m = r.j();
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "stories");
  EXPECT_EQ(m["data"][0]["object"], "model");
  EXPECT_EQ(m["data"][0]["meta"]["n_vocab"], 512);
  EXPECT_EQ(m["data"][0]["meta"]["n_ctx_train"], 2048);
  EXPECT_EQ(m["data"][0]["meta"]["n_ctx"], 2048);  // -c 2048: one request may use it all
  EXPECT_EQ(m["models"][0]["name"], "stories:latest");  // Ollama's listing, as llama-server's
  r = request(port_, "GET", "/props");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.j()["total_slots"], 4);
  EXPECT_EQ(r.j()["kv_budget"], 2048);
  r = request(port_, "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("# TYPE xtile:tokens_predicted_total counter"), std::string::npos);
  EXPECT_EQ(metric(port_, "kv_cache_budget_positions"), 2048);
  EXPECT_EQ(metric(port_, "slots_total"), 4);
  r = request(port_, "GET", "/");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("<title>xtile chat</title>"), std::string::npos);
  // One file, nothing fetched from elsewhere.
  EXPECT_EQ(r.body.find("src=\"http"), std::string::npos);
  EXPECT_EQ(r.body.find("href=\"http"), std::string::npos);
  EXPECT_EQ(r.body.find("@import"), std::string::npos);
}

TEST_F(ServerHttp, ChatCompletion) {
  const Reply r = post(port_, "/v1/chat/completions", chat_body("Tell me a story.", 16, 1, 0.0));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.j();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["model"], "stories");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_FALSE(j["choices"][0]["message"]["content"].get<std::string>().empty());
  const std::string finish = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "length" || finish == "stop") << finish;
  const json& u = j["usage"];
  EXPECT_GT(u["prompt_tokens"].get<int>(), 5);
  EXPECT_LE(u["completion_tokens"].get<int>(), 16);
  if (finish == "length") {
    EXPECT_EQ(u["completion_tokens"], 16);
  }
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  EXPECT_TRUE(j["timings"]["predicted_per_second"].is_number());
}

TEST_F(ServerHttp, ChatStreamIsFramedAndEqualsTheNonStreamedAnswer) {
  json body = chat_body("Once upon a time", 40, 7, 0.8);
  const Reply whole = post(port_, "/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200);
  body["stream_options"] = {{"include_usage", true}};
  const Events ev = stream(port_, "/v1/chat/completions", body);
  ASSERT_EQ(ev.status, 200);
  ASSERT_TRUE(ev.done) << ev.raw;
  ASSERT_GE(ev.data.size(), 3u);
  EXPECT_EQ(ev.data[0]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (size_t i = 0; i < ev.data.size(); ++i) {
    const json& e = ev.data[i];
    EXPECT_EQ(e["id"], ev.data[0]["id"]);
    if (i + 1 < ev.data.size()) {
      EXPECT_EQ(e["object"], "chat.completion.chunk");
    }
    if (i + 2 < ev.data.size()) {
      EXPECT_TRUE(e["choices"][0]["finish_reason"].is_null());
    }
    if (!e["choices"].empty() && e["choices"][0]["delta"].contains("content"))
      text += e["choices"][0]["delta"]["content"].get<std::string>();
  }
  const json& last = ev.data[ev.data.size() - 2];
  EXPECT_EQ(last["choices"][0]["finish_reason"], whole.j()["choices"][0]["finish_reason"]);
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_TRUE(last["timings"].is_object());
  const json& usage = ev.data.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], whole.j()["usage"]["completion_tokens"]);
  EXPECT_EQ(text, whole.j()["choices"][0]["message"]["content"]);
  EXPECT_NE(ev.raw.find("data: [DONE]\n\n"), std::string::npos);
}

TEST_F(ServerHttp, CompletionsTextAndTokenIdsStreamAndLogprobs) {
  const json body = {{"prompt", "Once upon a time"},
                     {"max_tokens", 12},
                     {"temperature", 0},
                     {"logprobs", 2},
                     {"return_tokens", true}};
  const Reply r = post(port_, "/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.j();
  EXPECT_EQ(j["object"], "text_completion");
  const json& lp = j["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), j["choices"][0]["tokens"].size());
  EXPECT_EQ(lp["token_logprobs"].size(), lp["tokens"].size());
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  for (const json& x : lp["token_logprobs"]) EXPECT_LE(x.get<double>(), 0.0);
  // logprobs 0 (OpenAI's legacy count): each entry lists the sampled token alone.
  json zero = body;
  zero["logprobs"] = 0;
  const Reply z = post(port_, "/v1/completions", zero);
  ASSERT_EQ(z.status, 200) << z.body;
  const json zj = z.j();
  const json& zl = zj["choices"][0]["logprobs"];
  for (size_t i = 0; i < zl["tokens"].size(); ++i) {
    ASSERT_EQ(zl["top_logprobs"][i].size(), 1u) << z.body;
    EXPECT_EQ(zl["top_logprobs"][i].at(zl["tokens"][i].get<std::string>()),
              zl["token_logprobs"][i]);
  }
  // The same prompt as token ids (what /tokenize gives, with BOS) gives the same text.
  const Reply t =
      post(port_, "/tokenize", {{"content", "Once upon a time"}, {"add_special", true}});
  ASSERT_EQ(t.status, 200);
  const Reply r2 = post(port_, "/v1/completions",
                        {{"prompt", t.j()["tokens"]}, {"max_tokens", 12}, {"temperature", 0}});
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(r2.j()["choices"][0]["text"], j["choices"][0]["text"]);
  // Streamed: no role chunk, text chunks, then the finish chunk and [DONE].
  const Events ev = stream(port_, "/v1/completions", body);
  ASSERT_TRUE(ev.done);
  std::string text;
  for (const json& e : ev.data) text += e["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, j["choices"][0]["text"]);
  EXPECT_EQ(ev.data.back()["choices"][0]["finish_reason"], j["choices"][0]["finish_reason"]);
}

TEST_F(ServerHttp, TokenizeDetokenizeRoundTrip) {
  const std::string text = "Lily saw a big dog.";
  Reply r = post(port_, "/tokenize", {{"content", text}});
  ASSERT_EQ(r.status, 200);
  const json ids = r.j()["tokens"];
  ASSERT_GT(ids.size(), 3u);
  r = post(port_, "/detokenize", {{"tokens", ids}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.j()["content"], text);
  r = post(port_, "/tokenize", {{"content", text}, {"with_pieces", true}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.j()["tokens"][0]["id"], ids[0]);
  EXPECT_TRUE(r.j()["tokens"][0]["piece"].is_string());
  EXPECT_EQ(post(port_, "/detokenize", {{"tokens", {1, 99999}}}).status, 400);
}

void expect_error(const Reply& r, int status, const std::string& type, const std::string& what) {
  EXPECT_EQ(r.status, status) << r.body;
  json j;
  ASSERT_NO_THROW(j = r.j()) << r.body;
  ASSERT_TRUE(j["error"].is_object()) << r.body;
  EXPECT_EQ(j["error"]["type"], type) << r.body;
  EXPECT_TRUE(j["error"].contains("code")) << r.body;
  EXPECT_NE(j["error"]["message"].get<std::string>().find(what), std::string::npos) << r.body;
}

TEST_F(ServerHttp, ErrorsHaveOpenAIShapeAndLeaveTheServerWell) {
  const std::string chat = "/v1/chat/completions";
  expect_error(request(port_, "POST", chat, "{\"messages\": [", {}), 400, "invalid_request_error",
               "not valid JSON");
  expect_error(request(port_, "POST", chat, "[]", {}), 400, "invalid_request_error", "JSON object");
  expect_error(post(port_, chat, {{"messages", "hello"}}), 400, "invalid_request_error",
               "'messages' must be an array");
  expect_error(post(port_, chat,
                    {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"max_tokens", "ten"}}),
               400, "invalid_request_error", "max_tokens");
  Reply r = post(port_, chat,
                 {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"model", "gpt-4o"}});
  expect_error(r, 404, "invalid_request_error", "gpt-4o");
  EXPECT_EQ(r.j()["error"]["code"], "model_not_found");
  // The file's name works as the model's name too.
  EXPECT_EQ(post(port_, chat,
                 {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                  {"model", "stories260K.gguf"},
                  {"max_tokens", 1}})
                .status,
            200);
  // A prompt longer than a request's context (2048 here): 400 with the counts.
  std::string longtext;
  for (int i = 0; i < 1000; ++i) longtext += "the big dog ";
  r = post(port_, "/v1/completions", {{"prompt", longtext}});
  expect_error(r, 400, "invalid_request_error", "more than the context");
  EXPECT_EQ(r.j()["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(r.j()["error"]["n_ctx"], 2048);
  EXPECT_GT(r.j()["error"]["n_prompt_tokens"].get<int>(), 2048);
  // Over --max-body-size (64 KiB): 413.
  expect_error(request(port_, "POST", chat, std::string(70000, ' '), {}), 413,
               "invalid_request_error", "larger than");
  expect_error(request(port_, "GET", "/v1/nothing"), 404, "not_found_error", "/v1/nothing");
  // Routes of llama-server or OpenAI for what xtile does not do: 501 naming it.
  expect_error(post(port_, "/rerank", {{"query", "x"}, {"documents", {"y"}}}), 501,
               "not_supported_error", "rerank prompt");
  expect_error(post(port_, "/v1/completions", {{"prompt", {1, 2, 100000}}}), 400,
               "invalid_request_error", "outside the vocabulary");
  expect_error(post(port_, chat, {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"n", 5}}),
               400, "invalid_request_error", "runs 4 slots");
  expect_error(post(port_, "/completion", {{"prompt", "x"}, {"n", 2}}), 400,
               "invalid_request_error", "'n' or 'best_of' above 1");
  // Deep nesting (the parser and the destructor are not recursive).
  EXPECT_EQ(request(port_, "POST", chat, std::string(30000, '[') + std::string(30000, ']'), {})
                .status,
            400);
  EXPECT_EQ(request(port_, "POST", chat,
                    "{\"messages\":" + std::string(30000, '[') + std::string(30000, ']') + "}", {})
                .status,
            400);
  // A stop string longer than 256 bytes.
  EXPECT_EQ(post(port_, chat,
                 {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                  {"stop", std::string(300, 'a')}})
                .status,
            400);
  // Binary garbage.
  std::string junk;
  for (int i = 0; i < 1000; ++i) junk += static_cast<char>((i * 7919) & 0xff);
  EXPECT_EQ(request(port_, "POST", chat, junk, {}).status, 400);
  // A lone surrogate and raw invalid UTF-8: not JSON text.
  EXPECT_EQ(request(port_, "POST", chat,
                    "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800 x\"}]}", {})
                .status,
            400);
  EXPECT_EQ(request(port_, "POST", chat,
                    "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", {})
                .status,
            400);
  EXPECT_EQ(request(port_, "GET", "/health").status, 200);
  EXPECT_EQ(post(port_, chat, chat_body("Hello", 4, 1, 0)).status, 200);
}

// llama-server's own POST /completion: the same tokens as /v1/completions in its shape
// (content, stop, stop_type, stopping_word, counts, timings, completion_probabilities), and
// streamed as {"content", "stop": false} events, then one with "stop": true, without [DONE].
TEST_F(ServerHttp, NativeCompletionHasLlamaServersShape) {
  const json body = {{"prompt", "Once upon a time"},
                     {"n_predict", 8},
                     {"temperature", 0},
                     {"return_tokens", true}};
  const Reply oa = post(port_, "/v1/completions", body);
  ASSERT_EQ(oa.status, 200) << oa.body;
  const Reply r = post(port_, "/completion", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.j();
  EXPECT_EQ(j["content"], oa.j()["choices"][0]["text"]);
  EXPECT_EQ(j["tokens"], oa.j()["choices"][0]["tokens"]);
  EXPECT_EQ(j["stop"], true);
  EXPECT_EQ(j["stop_type"], "limit");
  EXPECT_EQ(j["tokens_predicted"], 8);
  EXPECT_EQ(j["tokens_evaluated"], oa.j()["usage"]["prompt_tokens"]);
  EXPECT_EQ(j["model"], "stories");
  EXPECT_TRUE(j["timings"]["predicted_per_second"].is_number());
  EXPECT_FALSE(j.contains("choices"));

  // A stop string: cut from the content and named.
  const std::string text = j["content"];
  const std::string word = text.substr(text.size() / 2, 3);
  json stop_body = body;
  stop_body["stop"] = {word};
  stop_body["n_probs"] = 2;
  const Reply st = post(port_, "/completion", stop_body);
  ASSERT_EQ(st.status, 200) << st.body;
  EXPECT_EQ(st.j()["stop_type"], "word");
  EXPECT_EQ(st.j()["stopping_word"], word);
  EXPECT_EQ(st.j()["content"], text.substr(0, text.find(word)));
  ASSERT_FALSE(st.j()["completion_probabilities"].empty());
  EXPECT_EQ(st.j()["completion_probabilities"][0]["top_logprobs"].size(), 2u);

  const Events ev = stream(port_, "/completion", body);
  EXPECT_FALSE(ev.done) << ev.raw;  // llama-server's route sends no [DONE]
  ASSERT_GE(ev.data.size(), 2u) << ev.raw;
  std::string streamed;
  json ids = json::array();
  for (size_t i = 0; i < ev.data.size(); ++i) {
    EXPECT_EQ(ev.data[i]["stop"], i + 1 == ev.data.size()) << ev.raw;
    streamed += ev.data[i]["content"].get<std::string>();
    for (const json& id : ev.data[i]["tokens"]) ids.push_back(id);
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(ids, j["tokens"]);
  EXPECT_EQ(ev.data.back()["stop_type"], "limit");
  EXPECT_EQ(ev.data.back()["tokens_predicted"], 8);
}

// logit_bias reaches the sampler: banning the greedy answer's first token changes that token
// (and only from there), a boost of +100 makes a token the greedy pick, a text key bans its
// tokens, and an id outside the vocabulary is a 400.
TEST_F(ServerHttp, LogitBiasBansAndBoostsTokens) {
  const auto tokens = [&](const json& bias) {
    json body = {{"prompt", "Once upon a time"},
                 {"max_tokens", 6},
                 {"temperature", 0},
                 {"return_tokens", true}};
    if (!bias.is_null()) body["logit_bias"] = bias;
    const Reply r = post(port_, "/v1/completions", body);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.j()["choices"][0]["tokens"].get<std::vector<int>>()
                           : std::vector<int>{};
  };
  const std::vector<int> plain = tokens(nullptr);
  ASSERT_EQ(plain.size(), 6u);
  const std::vector<int> banned = tokens({{std::to_string(plain[0]), -100}});
  ASSERT_EQ(banned.size(), 6u);
  EXPECT_NE(banned[0], plain[0]);
  for (int id : tokens(json::array({json::array({plain[0], false})}))) EXPECT_NE(id, plain[0]);
  EXPECT_EQ(tokens({{"5", 100}}), std::vector<int>(6, 5));
  // A text key: its tokens (as /tokenize gives them without BOS) are never picked.
  const Reply t = post(port_, "/tokenize", {{"content", " time"}, {"add_special", false}});
  ASSERT_EQ(t.status, 200) << t.body;
  const std::vector<int> text_ids = t.j()["tokens"].get<std::vector<int>>();
  for (int id : tokens({{" time", false}, {std::to_string(plain[0]), -100}}))
    for (int banned_id : text_ids) EXPECT_NE(id, banned_id);
  expect_error(post(port_, "/v1/completions", {{"prompt", "x"}, {"logit_bias", {{"600", 1}}}}), 400,
               "invalid_request_error", "outside the vocabulary (512 tokens)");
  expect_error(post(port_, "/v1/completions", {{"prompt", "x"}, {"mirostat", 3}}), 400,
               "invalid_request_error", "mirostat");
}

TEST_F(ServerHttp, CorsPreflight) {
  const Reply r = request(port_, "OPTIONS", "/v1/chat/completions", "",
                          {{"Origin", "http://example.test"},
                           {"Access-Control-Request-Method", "POST"},
                           {"Access-Control-Request-Headers", "authorization,content-type"}});
  EXPECT_EQ(r.status, 204);
  auto header = [&](const char* k) {
    auto it = r.headers.find(k);
    return it == r.headers.end() ? std::string() : it->second;
  };
  EXPECT_EQ(header("Access-Control-Allow-Origin"), "http://example.test");
  EXPECT_NE(header("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_EQ(header("Access-Control-Allow-Headers"), "authorization,content-type");
}

// Token ids and log-probabilities of a chat request, streamed or not: the bits to compare.
std::string signature(int port, const json& body, bool streamed) {
  json b = body;
  b["logprobs"] = true;
  b["top_logprobs"] = 3;
  if (!streamed) {
    const Reply r = post(port, "/v1/chat/completions", b);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    const json j = r.j();
    return j["choices"][0]["logprobs"]["content"].dump() +
           j["choices"][0]["message"]["content"].dump();
  }
  const Events ev = stream(port, "/v1/chat/completions", b);
  EXPECT_TRUE(ev.done) << ev.raw;
  json content = json::array();
  std::string text;
  for (const json& e : ev.data) {
    if (e["choices"].empty()) continue;
    const json& c = e["choices"][0];
    if (c["logprobs"].is_object())
      for (const json& t : c["logprobs"]["content"]) content.push_back(t);
    if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
  }
  return content.dump() + json(text).dump();
}

// Each body alone, then beside copies of the bodies without `field` (the constraint), all at
// once and every other one streamed: each body's tokens and logprobs are the same bits.
void expect_same_bits_beside_unconstrained(int port, const std::vector<json>& bodies,
                                           const char* field) {
  std::vector<std::string> alone;
  for (const json& b : bodies) alone.push_back(signature(port, b, false));
  const size_t n = bodies.size();
  std::vector<std::future<std::string>> together;
  for (size_t i = 0; i < 2 * n; ++i)
    together.push_back(std::async(std::launch::async, [&, i] {
      json b = bodies[i % n];
      if (i >= n) b.erase(field);
      return signature(port, b, i % 2 == 1);
    }));
  for (size_t i = 0; i < 2 * n; ++i) {
    const std::string got = together[i].get();
    if (i < n) {
      EXPECT_EQ(got, alone[i]) << i;
    }
  }
}

TEST_F(ServerHttp, EightRequestsGiveTheSameBitsAloneAndConcurrently) {
  std::vector<json> bodies;
  const char* texts[] = {"Hi",
                         "Tell me about a cat.",
                         "Once upon a time there was a frog",
                         "Why is the sky blue?",
                         "A",
                         "The dog and the ball",
                         "Sing a song",
                         "Lily went to the park with her mom and dad. They"};
  for (int i = 0; i < 8; ++i) {
    json b = chat_body(texts[i], 20 + 4 * i, 100 + i, i == 0 ? 0.0 : 0.9);
    if (i % 3 == 1) b["top_k"] = 5;
    bodies.push_back(b);
  }
  std::vector<std::string> alone;
  for (const json& b : bodies) alone.push_back(signature(port_, b, false));
  std::vector<std::future<std::string>> together;
  for (int i = 0; i < 8; ++i)
    together.push_back(std::async(std::launch::async, [&, i] {
      return signature(port_, bodies[static_cast<size_t>(i)], i % 2 == 1);
    }));
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(together[static_cast<size_t>(i)].get(), alone[static_cast<size_t>(i)]) << i;
}

// n choices (OpenAI's n): choice i is the request alone with seed + i, streamed or not; the
// usage counts the prompt once and every choice's tokens; streamed, each choice has its role
// delta, its chunks under its index and its own last chunk, and the choices after the first
// found the whole prompt but its last token in the cache (copied from the first's slot).
TEST_F(ServerHttp, ChoicesAreTheRequestAloneWithSeedsCountingUp) {
  const int n = 3;
  json body = chat_body("Once upon a time a little girl", 24, 500, 0.9);
  std::vector<std::string> alone;
  std::vector<json> alone_reply;
  for (int i = 0; i < n; ++i) {
    json b = body;
    b["seed"] = 500 + i;
    alone.push_back(signature(port_, b, false));
    alone_reply.push_back(post(port_, "/v1/chat/completions", b).j());
  }
  EXPECT_NE(alone[0], alone[1]);
  body["n"] = n;
  body["logprobs"] = true;
  body["top_logprobs"] = 3;
  const Reply whole = post(port_, "/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json reply = whole.j();
  const json& choices = reply["choices"];
  ASSERT_EQ(choices.size(), static_cast<size_t>(n)) << whole.body;
  int64_t completion = 0;
  for (int i = 0; i < n; ++i) {
    const json& c = choices[static_cast<size_t>(i)];
    EXPECT_EQ(c["index"], i);
    EXPECT_EQ(c["logprobs"]["content"].dump() + c["message"]["content"].dump(),
              alone[static_cast<size_t>(i)])
        << i;
    EXPECT_EQ(c["finish_reason"],
              alone_reply[static_cast<size_t>(i)]["choices"][0]["finish_reason"]);
    completion += alone_reply[static_cast<size_t>(i)]["usage"]["completion_tokens"].get<int64_t>();
  }
  const json& usage = reply["usage"];
  EXPECT_EQ(usage["prompt_tokens"], alone_reply[0]["usage"]["prompt_tokens"]);
  EXPECT_EQ(usage["completion_tokens"], completion);
  EXPECT_EQ(usage["total_tokens"], usage["prompt_tokens"].get<int64_t>() + completion);

  body["stream_options"] = {{"include_usage", true}};
  body["messages"][0]["content"] = "Once upon a time a little boy";  // a prompt no slot holds
  const Reply fresh = post(port_, "/v1/chat/completions", body);
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  const Events ev = stream(port_, "/v1/chat/completions", body);
  ASSERT_TRUE(ev.done) << ev.raw;
  std::vector<std::string> text(n), logprobs(n, "[]");
  std::vector<json> content(n, json::array());
  std::vector<int> roles(n), finishes(n);
  for (size_t k = 0; k + 1 < ev.data.size(); ++k) {
    const json& e = ev.data[k];
    ASSERT_EQ(e["choices"].size(), 1u) << e.dump();
    const json& c = e["choices"][0];
    const int i = c["index"];
    ASSERT_TRUE(i >= 0 && i < n) << e.dump();
    const auto u = static_cast<size_t>(i);
    if (c["delta"].contains("role")) ++roles[u];
    if (c["delta"].contains("content")) text[u] += c["delta"]["content"].get<std::string>();
    if (c["logprobs"].is_object())
      for (const json& t : c["logprobs"]["content"]) content[u].push_back(t);
    if (!c["finish_reason"].is_null()) {
      ++finishes[u];
      EXPECT_EQ(c["finish_reason"], fresh.j()["choices"][u]["finish_reason"]);
      // Choice 0 read the prompt; the others copied all of it but the last token.
      const int64_t prompt = fresh.j()["usage"]["prompt_tokens"];
      if (i > 0) {
        EXPECT_EQ(e["timings"]["cache_n"], prompt - 1) << e.dump();
      }
    }
  }
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    EXPECT_EQ(roles[i], 1) << i;
    EXPECT_EQ(finishes[i], 1) << i;
    EXPECT_EQ(json(text[i]), fresh.j()["choices"][i]["message"]["content"]) << i;
    EXPECT_EQ(content[i], fresh.j()["choices"][i]["logprobs"]["content"]) << i;
  }
  EXPECT_TRUE(ev.data.back()["choices"].empty());
  EXPECT_EQ(ev.data.back()["usage"]["completion_tokens"], fresh.j()["usage"]["completion_tokens"]);

  // Text completions too.
  const json cbody = {{"prompt", "The cat"}, {"max_tokens", 10}, {"seed", 9}, {"temperature", 1.0}};
  json c2 = cbody;
  c2["n"] = 2;
  const Reply two = post(port_, "/v1/completions", c2);
  ASSERT_EQ(two.status, 200) << two.body;
  json second = cbody;
  second["seed"] = 10;
  EXPECT_EQ(two.j()["choices"][1]["text"],
            post(port_, "/v1/completions", second).j()["choices"][0]["text"]);
  EXPECT_EQ(two.j()["choices"][1]["index"], 1);
}

// Several prompts (OpenAI's list) with n choices each: choice p * n + i is prompt p alone with
// seed + i, streamed or not; the usage counts each prompt once (a prompt given twice too).
// best_of: the candidates are the n = best_of request's choices (seeds counting up); the n
// returned are those of the highest mean log-probability per generated token, best first, and
// usage counts every candidate.
TEST_F(ServerHttp, BestOfReturnsTheMostLikelyCandidates) {
  const json base = {{"prompt", "Once upon a time a little girl"},
                     {"max_tokens", 16},
                     {"temperature", 1.2},
                     {"seed", 900}};
  json all = base;
  all["n"] = 4;
  all["logprobs"] = 0;
  const Reply candidates = post(port_, "/v1/completions", all);
  ASSERT_EQ(candidates.status, 200) << candidates.body;
  std::vector<std::pair<double, size_t>> ranked;
  int64_t completion = 0;
  for (size_t i = 0; i < 4; ++i) {
    const json lp = candidates.j()["choices"][i]["logprobs"]["token_logprobs"];
    double sum = 0;
    for (const json& x : lp) sum += x.get<double>();
    ranked.push_back({-sum / static_cast<double>(lp.size()), i});  // ascending: best first
  }
  completion = candidates.j()["usage"]["completion_tokens"].get<int64_t>();
  std::stable_sort(ranked.begin(), ranked.end());
  ASSERT_NE(ranked[0].first, ranked[1].first);
  ASSERT_NE(ranked[0].second, 0u);  // this seed's best is not the first: the order is a ranking
  json best = base;
  best["best_of"] = 4;
  best["n"] = 2;
  const Reply r = post(port_, "/v1/completions", best);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.j()["choices"].size(), 2u) << r.body;
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(r.j()["choices"][k]["index"], k);
    EXPECT_EQ(r.j()["choices"][k]["text"], candidates.j()["choices"][ranked[k].second]["text"]);
    EXPECT_TRUE(r.j()["choices"][k]["logprobs"].is_null());  // not asked for
  }
  EXPECT_EQ(r.j()["usage"]["completion_tokens"], completion);
  best["n"] = 1;
  EXPECT_EQ(post(port_, "/v1/completions", best).j()["choices"][0]["text"],
            candidates.j()["choices"][ranked[0].second]["text"]);

  auto param_of = [&](const std::string& path, const json& extra) {
    json b = base;
    b.update(extra);
    const Reply e = post(port_, path, b);
    EXPECT_EQ(e.status, 400) << e.body;
    return e.status == 400 ? e.j()["error"]["param"] : json();
  };
  EXPECT_EQ(param_of("/v1/completions", {{"best_of", 1}, {"n", 2}}), "best_of");
  EXPECT_EQ(param_of("/v1/completions", {{"best_of", 3}, {"stream", true}}), "best_of");
  EXPECT_EQ(param_of("/v1/completions", {{"best_of", 5}}), "best_of");  // 4 slots
  EXPECT_EQ(param_of("/completion", {{"best_of", 2}}), "best_of");
}

TEST_F(ServerHttp, SeveralPromptsGiveEachPromptsChoices) {
  const json prompts = {"The cat sat", json::array({1, 403, 407}), "Lily had a red ball",
                        "The cat sat"};
  const int n = 2;
  json body = {{"prompt", prompts},  {"n", n},       {"max_tokens", 12}, {"seed", 70},
               {"temperature", 0.9}, {"logprobs", 2}};
  const Reply whole = post(port_, "/v1/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json reply = whole.j();
  ASSERT_EQ(reply["choices"].size(), prompts.size() * n) << whole.body;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  for (size_t p = 0; p < prompts.size(); ++p)
    for (int i = 0; i < n; ++i) {
      json one = body;
      one.erase("n");
      one["prompt"] = prompts[p];
      one["seed"] = 70 + i;
      const Reply alone = post(port_, "/v1/completions", one);
      ASSERT_EQ(alone.status, 200) << alone.body;
      const json a = alone.j();
      const json& c = reply["choices"][p * n + static_cast<size_t>(i)];
      EXPECT_EQ(c["index"], p * n + static_cast<size_t>(i));
      EXPECT_EQ(c["text"], a["choices"][0]["text"]) << p << " " << i;
      EXPECT_EQ(c["logprobs"], a["choices"][0]["logprobs"]) << p << " " << i;
      EXPECT_EQ(c["finish_reason"], a["choices"][0]["finish_reason"]);
      if (i == 0) prompt_tokens += a["usage"]["prompt_tokens"].get<int64_t>();
      completion_tokens += a["usage"]["completion_tokens"].get<int64_t>();
    }
  EXPECT_EQ(reply["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(reply["usage"]["completion_tokens"], completion_tokens);

  body["stream_options"] = {{"include_usage", true}};
  const Events ev = stream(port_, "/v1/completions", body);
  ASSERT_TRUE(ev.done) << ev.raw;
  std::vector<std::string> text(prompts.size() * n);
  for (const json& e : ev.data)
    for (const json& c : e["choices"])
      text[c["index"].get<size_t>()] += c["text"].get<std::string>();
  for (size_t k = 0; k < text.size(); ++k)
    EXPECT_EQ(json(text[k]), reply["choices"][k]["text"]) << k;
  EXPECT_EQ(ev.data.back()["usage"]["prompt_tokens"], prompt_tokens);

  body["n"] = 1;
  body["prompt"] = json::array();
  for (int i = 0; i < 129; ++i) body["prompt"].push_back("x");
  expect_error(post(port_, "/v1/completions", body), 400, "invalid_request_error", "129 prompts");
}

// echo with logprobs, as lm-evaluation-harness's loglikelihood requests send it (token-id
// prompts in a list, max_tokens 1, logprobs 1): each choice lists its prompt's tokens, the first
// without a log-probability, then the generated one; the scores do not depend on the batch, and
// the generated token is the one the request without echo gives. Streamed, the same.
TEST_F(ServerHttp, EchoScoresThePromptTokens) {
  auto ids_of = [&](const std::string& text, bool bos) {
    const Reply r = post(port_, "/tokenize", {{"content", text}, {"add_special", bos}});
    return r.j()["tokens"];
  };
  json a = ids_of("Once upon a time there was", true);
  json b = ids_of("Lily and her mom went to the park", true);
  const json body = {{"prompt", {a, b}}, {"max_tokens", 1},  {"logprobs", 1},
                     {"echo", true},     {"temperature", 0}, {"seed", 1234}};
  const Reply batch = post(port_, "/v1/completions", body);
  ASSERT_EQ(batch.status, 200) << batch.body;
  const json choices = batch.j()["choices"];
  ASSERT_EQ(choices.size(), 2u);
  for (size_t p = 0; p < 2; ++p) {
    const json& prompt = p == 0 ? a : b;
    const json& lp = choices[p]["logprobs"];
    ASSERT_EQ(lp["token_logprobs"].size(), prompt.size() + 1) << batch.body;
    ASSERT_EQ(lp["tokens"].size(), prompt.size() + 1);
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());
    EXPECT_TRUE(lp["top_logprobs"][0].is_null());
    for (size_t k = 1; k < lp["token_logprobs"].size(); ++k) {
      EXPECT_LE(lp["token_logprobs"][k].get<double>(), 0.0);
      EXPECT_TRUE(lp["top_logprobs"][k].contains(lp["tokens"][k].get<std::string>()));
    }
    json alone = body;
    alone["prompt"] = prompt;
    const Reply one = post(port_, "/v1/completions", alone);
    ASSERT_EQ(one.status, 200) << one.body;
    EXPECT_EQ(one.j()["choices"][0]["logprobs"], lp);
    EXPECT_EQ(one.j()["choices"][0]["text"], choices[p]["text"]);
    json plain = alone;
    plain.erase("echo");
    const Reply gen = post(port_, "/v1/completions", plain);
    ASSERT_EQ(gen.status, 200) << gen.body;
    EXPECT_EQ(gen.j()["choices"][0]["logprobs"]["token_logprobs"][0], lp["token_logprobs"].back());
    const std::string text = choices[p]["text"];
    EXPECT_TRUE(text.ends_with(gen.j()["choices"][0]["text"].get<std::string>())) << text;
  }
  // A text prompt is echoed as sent; max_tokens 0 scores it and generates nothing.
  const Reply text =
      post(port_, "/v1/completions",
           {{"prompt", "Once upon a time"}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 2}});
  ASSERT_EQ(text.status, 200) << text.body;
  EXPECT_EQ(text.j()["choices"][0]["text"], "Once upon a time");
  EXPECT_EQ(text.j()["usage"]["completion_tokens"], 0);
  const json scored = text.j()["choices"][0]["logprobs"];
  json streamed_body = {
      {"prompt", "Once upon a time"}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 2}};
  const Events ev = stream(port_, "/v1/completions", streamed_body);
  ASSERT_TRUE(ev.done) << ev.raw;
  std::string streamed;
  json lps = json::array();
  for (const json& e : ev.data) {
    streamed += e["choices"][0]["text"].get<std::string>();
    if (e["choices"][0]["logprobs"].is_object())
      for (const json& l : e["choices"][0]["logprobs"]["token_logprobs"]) lps.push_back(l);
  }
  EXPECT_EQ(streamed, "Once upon a time");
  EXPECT_EQ(lps, scored["token_logprobs"]);
}

// JSON mode: the reply is the beginning of one JSON object, a whole one when it stops, and the
// same bits alone and beside other requests, streamed or not.
TEST_F(ServerHttp, JsonModeRepliesWithAnObjectAndKeepsItsBits) {
  std::vector<json> bodies;
  const char* texts[] = {"Tell me about a cat.", "A", "Once upon a time there was a frog",
                         "The dog and the ball"};
  for (int i = 0; i < 4; ++i) {
    json b = chat_body(texts[i], 60 + 20 * i, 300 + i, i == 1 ? 0.0 : 0.9);
    b["response_format"] = {{"type", "json_object"}};
    bodies.push_back(b);
  }
  for (const json& b : bodies) {
    const Reply r = post(port_, "/v1/chat/completions", b);
    ASSERT_EQ(r.status, 200) << r.body;
    const json c = r.j()["choices"][0];
    const std::string text = c["message"]["content"].get<std::string>();
    EXPECT_FALSE(c["message"].contains("reasoning_content"));
    server::JsonPrefix grammar;
    EXPECT_TRUE(grammar.take(text)) << text;
    if (c["finish_reason"] == "stop") {
      EXPECT_TRUE(grammar.complete()) << text;
      EXPECT_TRUE(json::parse(text).is_object()) << text;
    } else {
      EXPECT_EQ(c["finish_reason"], "length") << text;
      EXPECT_FALSE(grammar.complete()) << text;
    }
  }
  // A reply that may only close: the token '}' boosted, so the object ends as soon as it may.
  const Reply tk = post(port_, "/tokenize", {{"content", "{}"}, {"with_pieces", true}});
  ASSERT_EQ(tk.status, 200) << tk.body;
  int close_id = -1;
  const json pieces = tk.j()["tokens"];
  for (const json& t : pieces)
    if (t["piece"] == "}") close_id = t["id"].get<int>();
  ASSERT_GE(close_id, 0) << tk.body;
  json closing = bodies[0];
  closing["logit_bias"] = {{std::to_string(close_id), 50}};
  const Reply r = post(port_, "/v1/chat/completions", closing);
  ASSERT_EQ(r.status, 200) << r.body;
  const json c = r.j()["choices"][0];
  EXPECT_EQ(c["finish_reason"], "stop");
  const std::string text = c["message"]["content"].get<std::string>();
  EXPECT_TRUE(json::parse(text).is_object()) << text;
  std::string bare = text;
  std::erase_if(bare, [](char ch) { return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t'; });
  EXPECT_EQ(bare, "{}") << text;

  expect_same_bits_beside_unconstrained(port_, bodies, "response_format");
}

// llama-server's grammar: the reply is one of the grammar's texts when it stops (checked with
// std::regex, written beside it), on both endpoints, streamed the same, and the same bits alone
// and beside requests without a grammar.
TEST_F(ServerHttp, GrammarRepliesWithinItAndKeepsItsBits) {
  const std::string grammar =
      "root ::= (\"Lily\" | \"Tom\" | \"Sue\") \" \" (\"was\" | \"had\") \" \" word "
      "(\" \" word){0,8} \".\"\nword ::= [a-z]{1,12}\n";
  const std::regex whole("(Lily|Tom|Sue) (was|had) [a-z]{1,12}( [a-z]{1,12}){0,8}\\.");
  std::vector<json> bodies;
  for (int i = 0; i < 4; ++i) {
    json b =
        chat_body(i % 2 ? "Once upon a time" : "Tell me a story.", 80, 500 + i, i == 0 ? 0.0 : 0.9);
    b["grammar"] = grammar;
    bodies.push_back(b);
  }
  int stopped = 0;
  for (const json& b : bodies) {
    const Reply r = post(port_, "/v1/chat/completions", b);
    ASSERT_EQ(r.status, 200) << r.body;
    const json c = r.j()["choices"][0];
    const std::string text = c["message"]["content"].get<std::string>();
    if (c["finish_reason"] == "stop") {
      EXPECT_TRUE(std::regex_match(text, whole)) << text;
      ++stopped;
    } else {
      EXPECT_EQ(c["finish_reason"], "length") << text;
    }
  }
  EXPECT_GT(stopped, 0);
  json completion = {{"prompt", "Once upon a time"},
                     {"max_tokens", 80},
                     {"seed", 9},
                     {"temperature", 0.7},
                     {"grammar", grammar}};
  const Reply r = post(port_, "/v1/completions", completion);
  ASSERT_EQ(r.status, 200) << r.body;
  const json c = r.j()["choices"][0];
  if (c["finish_reason"] == "stop") {
    EXPECT_TRUE(std::regex_match(c["text"].get<std::string>(), whole)) << r.body;
  }
  const Reply bad = post(port_, "/v1/completions", {{"prompt", "x"}, {"grammar", "root ::= y"}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.j()["error"]["param"], "grammar") << bad.body;

  expect_same_bits_beside_unconstrained(port_, bodies, "grammar");
}

// llama-server's grammar_lazy: free text until the trigger word ("e", which the stories model
// writes soon), then the grammar from the word on; the reply stops where the grammar is whole.
// The same bits alone and beside other requests, streamed or not; a token trigger resolves to
// its text, and what cannot trigger is a 400.
TEST_F(ServerHttp, LazyGrammarHoldsFromTheTriggerOn) {
  const json triggers = json::array({{{"type", 1}, {"value", "e"}}});
  const std::regex lazy("[^e]*e[0-9]{1,4}\\.");
  std::vector<json> bodies;
  for (int i = 0; i < 3; ++i) {
    json b = chat_body("Tell me a story.", 60, 700 + i, i == 0 ? 0.0 : 0.9);
    b["grammar"] = "root ::= \"e\" [0-9]{1,4} \".\"\n";
    b["grammar_lazy"] = true;
    b["grammar_triggers"] = triggers;
    bodies.push_back(b);
  }
  int stopped = 0;
  for (const json& b : bodies) {
    const Reply r = post(port_, "/v1/chat/completions", b);
    ASSERT_EQ(r.status, 200) << r.body;
    const json c = r.j()["choices"][0];
    const std::string text = c["message"]["content"].get<std::string>();
    if (c["finish_reason"] == "stop") {
      EXPECT_TRUE(std::regex_match(text, lazy)) << text;
      ++stopped;
    } else {
      EXPECT_EQ(text.find('e'), std::string::npos) << text;  // never triggered within max_tokens
    }
  }
  EXPECT_GT(stopped, 0);
  expect_same_bits_beside_unconstrained(port_, bodies, "grammar");
  // A token trigger is its text as a word (whichever tokens write it): the same reply as that
  // word's. (The stories model's "e" is the token " e".)
  const Reply tok = post(port_, "/tokenize", {{"content", "e"}, {"with_pieces", true}});
  ASSERT_EQ(tok.status, 200) << tok.body;
  const json piece = tok.j()["tokens"][0];
  json by_token = bodies[1], by_word = bodies[1];
  by_token["grammar"] = by_word["grammar"] =
      "root ::= " + json(piece["piece"]).dump() + " [0-9]{1,4} \".\"\n";
  by_token["grammar_triggers"] =
      json::array({{{"type", 0}, {"token", piece["id"]}, {"value", "?"}}});
  by_word["grammar_triggers"] = json::array({{{"type", 1}, {"value", piece["piece"]}}});
  EXPECT_EQ(signature(port_, by_token, false), signature(port_, by_word, false)) << piece;
  for (const json& bad : {json::array({{{"type", 0}, {"token", 99999999}}}),
                          json::array({{{"type", 0}, {"token", 2}}}),  // </s>: no text
                          json::array({{{"type", 2}, {"value", "e+"}}})}) {
    json b = bodies[0];
    b["grammar_triggers"] = bad;
    const Reply r = post(port_, "/v1/chat/completions", b);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j()["error"]["param"], "grammar_triggers") << r.body;
  }
}

// A grammar built to pass the engine's limits (after n a's, a stack for each count of b's still
// owed: n stacks, n deep) fails its own request with an error naming the limit, and a request
// beside it gets the bits it gets alone.
TEST_F(ServerHttp, GrammarPastTheEngineLimitsFailsOnlyItsRequest) {
  const json hostile = {{"prompt", "Once upon a time"},
                        {"max_tokens", 2000},
                        {"logit_bias", json::array({json::array({"!", false})})},
                        {"grammar", "root ::= \"a\" root \"b\" | \"a\" root | \"!\""}};
  const json other = chat_body("Tell me a story.", 40, 77, 0.8);
  const std::string alone = signature(port_, other, false);
  auto bad =
      std::async(std::launch::async, [&] { return post(port_, "/v1/completions", hostile); });
  const std::string beside = signature(port_, other, true);
  const Reply r = bad.get();
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("passes the engine's limits"), std::string::npos) << r.body;
  EXPECT_EQ(beside, alone);
  EXPECT_EQ(request(port_, "GET", "/health").status, 200);
}

// json_schema: the reply is an instance of the schema. With every property required and no
// others allowed, the object can only close once both are written: the stories model, which
// knows no JSON, ends with one.
constexpr const char* kDecimalPattern = "^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$";

TEST_F(ServerHttp, JsonSchemaRepliesWithAnInstance) {
  const json schema = {
      {"type", "object"},
      {"properties",
       {{"animal", {{"enum", {"cat", "dog", "frog"}}}},
        {"happy", {{"type", "boolean"}}},
        {"age", {{"anyOf", {{{"type", "integer"}}, {{"type", "null"}}}}}},
        {"weight", {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 2.5}}},
        {"legs", {{"type", "integer"}, {"multipleOf", 2}, {"minimum", 0}, {"maximum", 8}}},
        {"price", {{"type", "number"}, {"multipleOf", 0.25}, {"minimum", -1}, {"maximum", 1}}},
        {"cost",  // Pydantic's Decimal: a number, or a string held to a pattern with a lookahead
         {{"anyOf",
           {{{"type", "number"}},
            {{"type", "string"}, {"maxLength", 8}, {"pattern", kDecimalPattern}}}}}},
        {"traits",
         {{"type", "object"},
          {"properties",
           {{"calm", {{"type", "boolean"}}},
            {"fast", {{"type", "boolean"}}},
            {"loud", {{"type", "boolean"}}}}},
          {"minProperties", 2},
          {"maxProperties", 2},
          {"additionalProperties", false}}}}},
      {"required", {"animal", "happy", "age", "weight", "legs", "price", "cost", "traits"}},
      {"additionalProperties", false}};
  for (int seed = 1; seed <= 3; ++seed) {
    json b = chat_body("Tell me about a cat.", 1600, seed, 0.8);
    b["response_format"] = {
        {"type", "json_schema"},
        {"json_schema", {{"name", "pet"}, {"strict", true}, {"schema", schema}}}};
    const Reply r = post(port_, "/v1/chat/completions", b);
    ASSERT_EQ(r.status, 200) << r.body;
    const json c = r.j()["choices"][0];
    const std::string text = c["message"]["content"].get<std::string>();
    SCOPED_TRACE(text);
    EXPECT_EQ(c["finish_reason"], "stop");
    const json v = json::parse(text);
    ASSERT_TRUE(v.is_object());
    EXPECT_EQ(v.size(), 8u);
    const std::string animal = v.at("animal").get<std::string>();
    EXPECT_TRUE(animal == "cat" || animal == "dog" || animal == "frog");
    EXPECT_TRUE(v.at("happy").is_boolean());
    EXPECT_TRUE(v.at("age").is_null() || v.at("age").is_number_integer());
    EXPECT_GT(v.at("weight").get<double>(), 0.0);
    EXPECT_LE(v.at("weight").get<double>(), 2.5);
    ASSERT_TRUE(v.at("legs").is_number_integer());
    const int64_t legs = v.at("legs").get<int64_t>();
    EXPECT_TRUE(legs >= 0 && legs <= 8 && legs % 2 == 0) << legs;
    const double price = v.at("price").get<double>();  // quarters are exact in a double
    EXPECT_TRUE(price >= -1 && price <= 1 && price * 4 == std::floor(price * 4)) << price;
    const json cost = v.at("cost");
    if (cost.is_string()) {
      EXPECT_TRUE(std::regex_search(cost.get<std::string>(), std::regex(kDecimalPattern)));
      EXPECT_LE(cost.get<std::string>().size(), 8u);
    } else {
      EXPECT_TRUE(cost.is_number()) << cost;
    }
    ASSERT_TRUE(v.at("traits").is_object());
    EXPECT_EQ(v.at("traits").size(), 2u);
  }
}

TEST_F(ServerHttp, JsonModeRefusesWhatItCannotKeep) {
  // A pattern the grammar does not enforce (lookaround but at the start), a json_schema without a
  // schema, a root
  // that is not an object, an unknown format.
  const json pattern = {{"type", "object"},
                        {"properties", {{"a", {{"type", "string"}, {"pattern", "(?=x)"}}}}}};
  const std::pair<json, std::string> cases[] = {
      {{{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", pattern}}}},
       "response_format.json_schema.schema"},
      {{{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}},
       "response_format.json_schema.schema"},
      {{{"type", "json_schema"}}, "response_format.json_schema"},
      {{{"type", "json_object"}, {"schema", {{"type", "array"}}}}, "response_format.schema"},
      {{{"type", "yaml"}}, "response_format"},
      {"json_object", "response_format"},
  };
  for (const auto& [format, param] : cases) {
    json b = chat_body("Hi", 8, 1, 0.0);
    b["response_format"] = format;
    const Reply r = post(port_, "/v1/chat/completions", b);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j()["error"]["param"], param) << r.body;
  }
  // Thinking asked for is no refusal: this template (llama2) does not think, and the reply is
  // the object alone; Qwen3's would write its think block first (think_first.h).
  json thinking = chat_body("Hi", 8, 1, 0.0);
  thinking["response_format"] = {{"type", "json_object"}};
  for (bool on : {true, false}) {
    thinking["chat_template_kwargs"] = {{"enable_thinking", on}};
    const Reply t = post(port_, "/v1/chat/completions", thinking);
    ASSERT_EQ(t.status, 200) << t.body;
    const std::string text = t.j()["choices"][0]["message"]["content"];
    const size_t first = text.find_first_not_of(" \t\r\n");  // the object's first byte
    EXPECT_TRUE(first == std::string::npos || text[first] == '{') << text;
  }
  Reply r;
  // llama-server's fields: its top-level json_schema (here on its /completion route) is kept;
  // a GBNF grammar, or json_schema beside a JSON response_format, is refused.
  const json closed = {{"type", "object"},
                       {"properties", {{"ok", {{"type", "boolean"}}}}},
                       {"required", {"ok"}},
                       {"additionalProperties", false}};
  r = post(
      port_, "/completion",
      {{"prompt", "Once upon a time"}, {"n_predict", 300}, {"seed", 2}, {"json_schema", closed}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json native = json::parse(r.j()["content"].get<std::string>());
  EXPECT_EQ(native.size(), 1u) << r.body;
  EXPECT_TRUE(native.at("ok").is_boolean()) << r.body;
  r = post(port_, "/v1/completions",
           {{"prompt", "x"}, {"grammar", "root ::= \"a\""}, {"json_schema", closed}});
  EXPECT_EQ(r.status, 400) << r.body;  // a grammar and JSON mode: one of them
  EXPECT_EQ(r.j()["error"]["param"], "grammar");
  r = post(
      port_, "/v1/completions",
      {{"prompt", "x"}, {"json_schema", closed}, {"response_format", {{"type", "json_object"}}}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.j()["error"]["param"], "json_schema");
  // Completions take JSON mode too.
  json completion = {{"prompt", "Once upon a time"},
                     {"max_tokens", 24},
                     {"seed", 5},
                     {"response_format", {{"type", "json_object"}}}};
  r = post(port_, "/v1/completions", completion);
  ASSERT_EQ(r.status, 200) << r.body;
  server::JsonPrefix grammar;
  EXPECT_TRUE(grammar.take(r.j()["choices"][0]["text"].get<std::string>())) << r.body;
}

TEST_F(ServerHttp, SixteenConcurrentClients) {
  std::vector<std::future<std::pair<int, std::string>>> clients;
  for (int i = 0; i < 16; ++i)
    clients.push_back(std::async(std::launch::async, [this, i] {
      const json body = chat_body("Story number " + std::to_string(i), 24, 500 + i, 0.7);
      if (i % 2 == 0) {
        const Reply r = post(port_, "/v1/chat/completions", body);
        return std::pair{
            r.status, r.status == 200 ? r.j()["choices"][0]["message"]["content"].get<std::string>()
                                      : "request " + std::to_string(i) + ": " + r.body};
      }
      const Events ev = stream(port_, "/v1/chat/completions", body);
      std::string text;
      for (const json& e : ev.data)
        if (!e["choices"].empty() && e["choices"][0]["delta"].contains("content"))
          text += e["choices"][0]["delta"]["content"].get<std::string>();
      if (!ev.done)
        text = "stream " + std::to_string(i) + " did not end with [DONE] (" + ev.error +
               ", status " + std::to_string(ev.status) + "): " + ev.raw;
      return std::pair{ev.done ? ev.status : 0, text};
    }));
  std::vector<std::string> texts;
  for (auto& c : clients) {
    const auto [status, text] = c.get();
    EXPECT_EQ(status, 200) << text;
    texts.push_back(text);
  }
  // Each equals the same request sent alone.
  for (int i : {0, 5, 15}) {
    const Reply r = post(port_, "/v1/chat/completions",
                         chat_body("Story number " + std::to_string(i), 24, 500 + i, 0.7));
    EXPECT_EQ(r.j()["choices"][0]["message"]["content"], texts[static_cast<size_t>(i)]) << i;
  }
  EXPECT_TRUE(wait_metric(port_, "requests_processing", [](double v) { return v == 0; }));
}

TEST_F(ServerHttp, FollowUpTurnReusesTheCachedPrefix) {
  json body = chat_body("Tell me about a red ball.", 12, 3, 0.0);
  const Reply a = post(port_, "/v1/chat/completions", body);
  ASSERT_EQ(a.status, 200);
  const std::string answer = a.j()["choices"][0]["message"]["content"];
  body["messages"].push_back({{"role", "assistant"}, {"content", answer}});
  body["messages"].push_back({{"role", "user"}, {"content", "And then?"}});
  const Reply b = post(port_, "/v1/chat/completions", body);
  ASSERT_EQ(b.status, 200);
  const int prompt1 = a.j()["usage"]["prompt_tokens"];
  const int cached = b.j()["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_GE(cached, prompt1) << b.body;
  EXPECT_EQ(b.j()["timings"]["cache_n"], cached);
}

// Servers with their own flags.

TEST(ServerHttpOwn, Qwen3TemplateHonoursEnableThinking) {
  const std::string qwen3 = fixture_path("models/micro-qwen3.gguf");
  if (qwen3.empty()) GTEST_SKIP() << "../shared/fixtures/models/micro-qwen3.gguf is absent";
  ServerProcess s({"-m", qwen3, "-np", "1"});
  ASSERT_TRUE(s.ok());
  const json messages = {{{"role", "user"}, {"content", "Hi"}}};
  Reply r = post(s.port(), "/apply-template", {{"messages", messages}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j()["prompt"], "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  r = post(s.port(), "/apply-template",
           {{"messages", messages}, {"chat_template_kwargs", {{"enable_thinking", false}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j()["prompt"],
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // The same through a completion: the closed think block is part of the prompt.
  const Reply on = post(s.port(), "/v1/chat/completions", {{"messages", messages}, {"max_tokens", 1}});
  const Reply off = post(s.port(), "/v1/chat/completions",
                         {{"messages", messages},
                          {"max_tokens", 1},
                          {"chat_template_kwargs", {{"enable_thinking", false}}}});
  ASSERT_EQ(on.status, 200);
  ASSERT_EQ(off.status, 200);
  EXPECT_GT(off.j()["usage"]["prompt_tokens"].get<int>(), on.j()["usage"]["prompt_tokens"].get<int>());
  EXPECT_EQ(s.stop(), 0) << s.log();
}

// Tools reach the prompt in the client's key order; a turn with tools answers as usual when the
// model writes no call (the random fixture model does not).
TEST(ServerHttpOwn, ToolsReachTheQwen3Prompt) {
  const std::string qwen3 = fixture_path("models/micro-qwen3.gguf");
  if (qwen3.empty()) GTEST_SKIP() << "../shared/fixtures/models/micro-qwen3.gguf is absent";
  ServerProcess s({"-m", qwen3, "-np", "1"});
  ASSERT_TRUE(s.ok());
  const std::string tools =
      R"("tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])";
  Reply r = request(
      s.port(), "POST", "/apply-template",
      R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], )" +
          tools + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string prompt = r.j()["prompt"];
  EXPECT_TRUE(prompt.starts_with("<|im_start|>system\nS\n\n# Tools\n")) << prompt;
  EXPECT_NE(prompt.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"f\", "
                        "\"parameters\": {\"type\": \"object\"}}}\n</tools>"),
            std::string::npos)
      << prompt;
  EXPECT_TRUE(prompt.ends_with("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n")) << prompt;

  const std::string turn =
      R"({"max_tokens": 4, "temperature": 0, "messages": [{"role": "user", "content": "Q"},
          {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function",
           "function": {"name": "f", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "c", "content": "42"}], )" +
      tools;
  r = request(s.port(), "POST", "/v1/chat/completions", turn + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  json choice = r.j()["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_FALSE(choice["message"].contains("tool_calls"));
  r = request(s.port(), "POST", "/v1/chat/completions", turn + R"(, "stream": true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
  EXPECT_EQ(s.stop(), 0) << s.log();
}

// tool_choice "required" and a named function: a random model (one synthesized layer on Qwen's
// vocabulary and template), which never calls by itself, answers with calls of the request's tools
// whose arguments are instances of their schemas (the call grammar, tool_call_prefix.h), in one
// reply or streamed, and the same bits alone and beside another request. What the grammar cannot
// keep is refused, naming it.
TEST(ServerHttpOwn, ForcedToolCallsAreCallsOfTheTools) {
  REQUIRE_SLOW_MODEL();
  ServerProcess s({"-m", slow_model(), "-np", "2", "-c", "4096"});
  ASSERT_TRUE(s.ok());
  // Arguments of bounded length (enums, booleans, no free strings), so each call closes.
  const json weather = {
      {"type", "object"},
      {"properties",
       {{"city", {{"enum", {"Oslo", "Paris", "Lima"}}}}, {"metric", {{"type", "boolean"}}}}},
      {"required", {"city"}},
      {"additionalProperties", false}};
  const json empty = {{"type", "object"}, {"additionalProperties", false}};
  const json tools = {
      {{"type", "function"},
       {"function", {{"name", "get_weather"}, {"parameters", weather}, {"strict", true}}}},
      {{"type", "function"}, {"function", {{"name", "ping"}, {"parameters", empty}}}}};
  const auto body = [&](uint64_t seed, const json& choice, bool parallel) {
    json b = chat_body("What is the weather in Oslo?", 300, seed, 0.8);
    b["tools"] = tools;
    b["tool_choice"] = choice;
    b["parallel_tool_calls"] = parallel;
    b["chat_template_kwargs"] = {{"enable_thinking", false}};
    return b;
  };
  const auto check_call = [&](const json& c, const std::string& only) {
    const std::string name = c["function"]["name"];
    EXPECT_EQ(c["type"], "function");
    EXPECT_TRUE(c["id"].get<std::string>().starts_with("call_"));
    const json args = json::parse(c["function"]["arguments"].get<std::string>());
    if (!only.empty()) {
      EXPECT_EQ(name, only);
    }
    if (name == "get_weather") {
      const std::string city = args.at("city");
      EXPECT_TRUE(city == "Oslo" || city == "Paris" || city == "Lima") << args;
      EXPECT_LE(args.size(), 2u) << args;
      if (args.size() == 2) {
        EXPECT_TRUE(args.at("metric").is_boolean()) << args;
      }
    } else {
      EXPECT_EQ(name, "ping");
      EXPECT_EQ(args, json::object());
    }
  };
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const Reply r = post(s.port(), "/v1/chat/completions", body(seed, "required", false));
    ASSERT_EQ(r.status, 200) << r.body;
    const json c = r.j()["choices"][0];
    SCOPED_TRACE(c.dump());
    EXPECT_EQ(c["finish_reason"], "tool_calls");
    EXPECT_TRUE(c["message"]["content"].is_null());
    ASSERT_EQ(c["message"]["tool_calls"].size(), 1u);
    check_call(c["message"]["tool_calls"][0], "");
  }
  const json ping = {{"type", "function"}, {"function", {{"name", "ping"}}}};
  const Reply pinged = post(s.port(), "/v1/chat/completions", body(2, ping, false));
  ASSERT_EQ(pinged.status, 200) << pinged.body;
  ASSERT_EQ(pinged.j()["choices"][0]["message"]["tool_calls"].size(), 1u) << pinged.body;
  check_call(pinged.j()["choices"][0]["message"]["tool_calls"][0], "ping");

  // A named function, parallel calls allowed: every call is of it.
  const json named = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  const Reply alone = post(s.port(), "/v1/chat/completions", body(7, named, true));
  ASSERT_EQ(alone.status, 200) << alone.body;
  const json message = alone.j()["choices"][0]["message"];
  ASSERT_GE(message["tool_calls"].size(), 1u) << message;
  for (const json& c : message["tool_calls"]) check_call(c, "get_weather");

  // Streamed: the calls come as tool_calls deltas, the same as the reply alone; and the same
  // request beside another one gives the same bits.
  const Events ev = stream(s.port(), "/v1/chat/completions", body(7, named, true));
  ASSERT_EQ(ev.status, 200) << ev.error;
  json streamed = json::array();
  std::string finish;
  for (const json& e : ev.data) {
    const json& ch = e["choices"];
    if (ch.empty()) continue;
    if (ch[0]["delta"].contains("tool_calls"))
      for (const json& c : ch[0]["delta"]["tool_calls"]) streamed.push_back(c["function"]);
    if (!ch[0]["finish_reason"].is_null()) finish = ch[0]["finish_reason"];
  }
  EXPECT_EQ(finish, "tool_calls");
  ASSERT_EQ(streamed.size(), message["tool_calls"].size());
  for (size_t i = 0; i < streamed.size(); ++i)
    EXPECT_EQ(streamed[i], message["tool_calls"][i]["function"]);
  Reply beside;
  std::thread other([&] {
    beside = post(s.port(), "/v1/chat/completions", chat_body("Tell me a story.", 120, 3, 0.9));
  });
  const Reply again = post(s.port(), "/v1/chat/completions", body(7, named, true));
  other.join();
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(beside.status, 200) << beside.body;
  const json again_calls = again.j()["choices"][0]["message"]["tool_calls"];
  ASSERT_EQ(again_calls.size(), message["tool_calls"].size()) << again.body;
  for (size_t i = 0; i < again_calls.size(); ++i)
    EXPECT_EQ(again_calls[i]["function"], message["tool_calls"][i]["function"]);

  // Refused: a forced call without tools, a name that is not a tool, a strict tool whose
  // schema the grammar cannot keep. A tool that is not strict is called with any object.
  const json pattern = {{"type", "object"},
                        {"properties", {{"a", {{"type", "string"}, {"pattern", "(?=x)"}}}}}};
  json no_tools = chat_body("Hi", 8, 1, 0.0);
  no_tools["tool_choice"] = "required";
  json unknown = body(1, {{"type", "function"}, {"function", {{"name", "nope"}}}}, false);
  json strict = body(1, "required", false);
  strict["tools"][0]["function"]["parameters"] = pattern;
  const std::pair<json, std::string> refused[] = {
      {no_tools, "tool_choice"},
      {unknown, "tool_choice.function.name"},
      {strict, "tools[0].function.parameters"},
  };
  for (const auto& [b, param] : refused) {
    const Reply r = post(s.port(), "/v1/chat/completions", b);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j()["error"]["param"], param) << r.body;
  }
  strict["tools"][0]["function"].erase("strict");
  const Reply loose = post(s.port(), "/v1/chat/completions", strict);
  EXPECT_EQ(loose.status, 200) << loose.body;
  EXPECT_EQ(s.stop(), 0) << s.log();
}

TEST_F(ServerHttp, ToolsNeedATemplateWithAToolFormat) {
  // stories260K's template is llama2, which has none.
  const Reply r = post(port_, "/v1/chat/completions",
                       {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                        {"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}}});
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.j()["error"]["param"], "tools");
  EXPECT_NE(r.body.find("llama2"), std::string::npos) << r.body;
}

// A second server on a taken port is refused with a clear error (httplib's default
// SO_REUSEPORT would let it bind and share the first one's connections).
TEST(ServerHttpOwn, TakenPortIsAnError) {
  REQUIRE_STORIES();
  ServerProcess first({"-m", stories(), "-np", "1"});
  ASSERT_TRUE(first.ok());
  std::string out;
  const int rc =
      run_command("timeout 60 '" + xtile_binary() + "' serve -m '" + stories() +
                      "' --host 127.0.0.1 --port " + std::to_string(first.port()) + " 2>&1",
                  &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())),
            std::string::npos)
      << out;
  EXPECT_EQ(request(first.port(), "GET", "/health").status, 200);
  EXPECT_EQ(first.stop(), 0) << first.log();
}

TEST(ServerHttpOwn, PoolingOfEncodersIsRefusedAtStart) {
  REQUIRE_STORIES();
  std::string out;
  const int rc = run_command("timeout 60 '" + xtile_binary() + "' serve -m '" + stories() +
                                 "' --host 127.0.0.1 --port 0 --pooling cls 2>&1",
                             &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("--pooling 'cls'"), std::string::npos) << out;
  EXPECT_EQ(out.find("listening"), std::string::npos) << out;
}

TEST(ServerHttpOwn, ApiKey) {
  REQUIRE_STORIES();
  ServerProcess s({"-m", stories(), "-np", "1", "--api-key", "sesame,other"});
  ASSERT_TRUE(s.ok());
  const int port = s.port();
  EXPECT_EQ(request(port, "GET", "/v1/models").status, 200);  // public
  EXPECT_EQ(request(port, "GET", "/health").status, 200);
  const json body = chat_body("Hi", 2, 1, 0);
  expect_error(post(port, "/v1/chat/completions", body), 401, "authentication_error", "API key");
  expect_error(post(port, "/v1/chat/completions", body, {{"Authorization", "Bearer nope"}}), 401,
               "authentication_error", "Invalid API Key");
  EXPECT_EQ(request(port, "GET", "/metrics").status, 401);
  EXPECT_EQ(post(port, "/v1/chat/completions", body, {{"Authorization", "Bearer sesame"}}).status,
            200);
  EXPECT_EQ(post(port, "/v1/chat/completions", body, {{"X-Api-Key", "other"}}).status, 200);
  // Anthropic's clients send x-api-key, and read Anthropic's error shape.
  const json message = {
      {"model", "stories260K"}, {"max_tokens", 2}, {"messages", body["messages"]}};
  const Reply refused = post(port, "/v1/messages", message);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.j()["type"], "error") << refused.body;
  EXPECT_EQ(refused.j()["error"]["type"], "authentication_error") << refused.body;
  EXPECT_EQ(post(port, "/v1/messages", message, {{"x-api-key", "sesame"}}).status, 200);
  EXPECT_EQ(s.stop(), 0) << s.log();
}

// A llama-server command line runs as written (-ngl, -fa on, --no-mmap, -ub caps -b, --jinja,
// --metrics, -cb, -kvu, --no-warmup, -to, --chat-template), and the server's -l applies to
// every request, under a request's own logit_bias.
TEST(ServerHttpOwn, LlamaServerFlagsAndTheServersLogitBias) {
  REQUIRE_STORIES();
  ServerProcess s({"-m",
                   stories(),
                   "-np",
                   "2",
                   "-ngl",
                   "99",
                   "-fa",
                   "on",
                   "--no-mmap",
                   "-b",
                   "512",
                   "-ub",
                   "16",
                   "-l",
                   "5+inf",
                   "--jinja",
                   "--metrics",
                   "-cb",
                   "-kvu",
                   "--no-warmup",
                   "-to",
                   "30",
                   "--chat-template",
                   "chatml",
                   "--embeddings",
                   "--pooling",
                   "mean"});
  ASSERT_TRUE(s.ok()) << s.log();
  const int port = s.port();
  const Reply props = request(port, "GET", "/props");
  ASSERT_EQ(props.status, 200);
  EXPECT_EQ(props.j()["chat_template"], "chatml");  // --chat-template over the GGUF's llama2
  EXPECT_EQ(request(port, "GET", "/v1/models").j()["data"][0]["meta"]["pooling"], "mean");
  const json body = {{"prompt", "Once upon a time"},
                     {"max_tokens", 4},
                     {"temperature", 0},
                     {"return_tokens", true}};
  Reply r = post(port, "/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j()["choices"][0]["tokens"], json({5, 5, 5, 5}));
  json banned = body;
  banned["logit_bias"] = {{"5", false}};  // a ban wins over the server's +inf
  r = post(port, "/v1/completions", banned);
  ASSERT_EQ(r.status, 200) << r.body;
  const json answer = r.j();  // iterated below: a temporary's member would not outlive the loop
  for (const json& id : answer["choices"][0]["tokens"]) EXPECT_NE(id.get<int>(), 5);
  EXPECT_EQ(s.stop(), 0) << s.log();
  EXPECT_NE(s.log().find("batch 16"), std::string::npos) << s.log();
}

TEST(ServerHttpOwn, KvBudgetFullPreemptsOneAndEveryRequestCompletesWithItsBits) {
  REQUIRE_STORIES();
  // 4 slots sharing 200 positions; each request needs about 110 alone.
  ServerProcess s({"-m", stories(), "-np", "4", "-c", "200", "-b", "32"});
  ASSERT_TRUE(s.ok());
  const int port = s.port();
  std::vector<json> bodies;
  for (int i = 0; i < 4; ++i) {
    json b = {{"prompt", "Once upon a time, in a land far away, number " + std::to_string(i)},
              {"max_tokens", 96},
              {"ignore_eos", true},
              {"seed", i},
              {"temperature", 0.9},
              {"logprobs", 1}};
    // Two in JSON mode: a preempted request's grammar state goes on where it was.
    if (i % 2 == 1) b["response_format"] = {{"type", "json_object"}};
    bodies.push_back(b);
  }
  std::vector<std::string> alone;
  for (const json& b : bodies) {
    const Reply r = post(port, "/v1/completions", b);
    ASSERT_EQ(r.status, 200) << r.body;
    alone.push_back(r.j()["choices"][0]["text"].dump() + r.j()["choices"][0]["logprobs"].dump());
  }
  std::vector<std::future<Reply>> together;
  for (const json& b : bodies)
    together.push_back(
        std::async(std::launch::async, [&, b] { return post(port, "/v1/completions", b); }));
  for (size_t i = 0; i < 4; ++i) {
    const Reply r = together[i].get();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j()["choices"][0]["text"].dump() + r.j()["choices"][0]["logprobs"].dump(), alone[i])
        << i;
    // A JSON reply ends when its object closes, perhaps before the limit.
    if (i % 2 == 0) {
      EXPECT_EQ(r.j()["usage"]["completion_tokens"], 96);
    } else {
      EXPECT_LE(r.j()["usage"]["completion_tokens"], 96);
    }
  }
  EXPECT_GT(metric(port, "preemptions_total"), 0);
  EXPECT_EQ(metric(port, "requests_failed_total"), 0);
  EXPECT_LE(metric(port, "kv_cache_used_positions"), 200);
}

TEST(ServerHttpOwn, HealthIs503WhileLoadingThen200) {
  REQUIRE_SLOW_MODEL();
  // The server listens before it loads: the first /health right after the "listening" line
  // sees the load in progress (90 MB of weights read and repacked, then the self-check).
  ServerProcess s({"-m", slow_model(), "-t", "2"}, 120, /*wait_ready=*/false);
  ASSERT_GT(s.port(), 0);
  const int port = s.port();
  expect_error(request(port, "GET", "/health"), 503, "unavailable_error", "Loading model");
  expect_error(post(port, "/v1/chat/completions", chat_body("x", 1, 1, 0)), 503,
               "unavailable_error", "Loading model");
  int status = 0;
  for (int i = 0; i < 1200 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = request(port, "GET", "/health").status;
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(s.stop(), 0) << s.log();
}

TEST(ServerHttpOwn, DisconnectCancelsStreamedAndWaitingRequests) {
  REQUIRE_SLOW_MODEL();
  ServerProcess s({"-m", slow_model(), "-np", "2", "-t", "2", "-c", "4096"});
  ASSERT_TRUE(s.ok());
  const int port = s.port();
  const json body = {{"prompt", "Hello"}, {"max_tokens", 3000}, {"ignore_eos", true}};
  // Streamed: the client drops the connection after the second chunk.
  int chunks = 0;
  stream(port, "/v1/completions", body, [&](const json&) { return ++chunks < 2; });
  EXPECT_TRUE(wait_metric(port, "requests_cancelled_total", [](double v) { return v == 1; }));
  // Not streamed: the client gives up waiting after 0.5 s.
  {
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(0, 500000);
    auto res = cli.Post("/v1/completions", body.dump(), "application/json");
    EXPECT_FALSE(res);
  }
  EXPECT_TRUE(wait_metric(port, "requests_cancelled_total", [](double v) { return v == 2; }));
  EXPECT_TRUE(wait_metric(port, "requests_processing", [](double v) { return v == 0; }));
  // Far fewer tokens than asked were generated.
  EXPECT_LT(metric(port, "tokens_predicted_total"), 2000);
  EXPECT_EQ(s.stop(), 0) << s.log();
}

// llama-server's GET /slots: each slot's state while a request runs in it (and
// ?fail_on_no_slot=1 answers 503 then), its cached tokens after.
TEST(ServerHttpOwn, SlotsShowTheRunningRequestAndTheCache) {
  REQUIRE_SLOW_MODEL();
  ServerProcess s({"-m", slow_model(), "-np", "1", "-t", "2", "-c", "4096"});
  ASSERT_TRUE(s.ok());
  const int port = s.port();
  Reply r = request(port, "GET", "/slots");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.j().size(), 1u);
  EXPECT_EQ(r.j()[0]["id"], 0);
  EXPECT_EQ(r.j()[0]["n_ctx"], 4096);
  EXPECT_EQ(r.j()[0]["is_processing"], false);
  EXPECT_EQ(request(port, "GET", "/slots?fail_on_no_slot=1").status, 200);
  const json body = {{"prompt", "Hello"}, {"max_tokens", 3000}, {"ignore_eos", true}};
  json during;
  int during_status = 0;
  int chunks = 0;
  stream(port, "/v1/completions", body, [&](const json&) {
    if (++chunks < 3) return true;
    const Reply now = request(port, "GET", "/slots");
    during = now.j();
    during_status = request(port, "GET", "/slots?fail_on_no_slot=1").status;
    return false;  // drops the connection: the request is cancelled
  });
  ASSERT_EQ(during.size(), 1u);
  EXPECT_EQ(during[0]["is_processing"], true);
  EXPECT_EQ(during[0]["n_predict"], 3000);
  EXPECT_GE(during[0]["n_decoded"].get<int>(), 2);
  EXPECT_GT(during[0]["n_prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(during_status, 503);
  EXPECT_TRUE(wait_metric(port, "requests_processing", [](double v) { return v == 0; }));
  bool idle_with_cache = false;
  for (int i = 0; i < 100 && !idle_with_cache; ++i) {
    r = request(port, "GET", "/slots");
    idle_with_cache = r.j()[0]["is_processing"] == false && r.j()[0]["n_cached"].get<int>() > 0;
    if (!idle_with_cache) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(idle_with_cache) << r.body;
  EXPECT_EQ(s.stop(), 0) << s.log();
}

TEST(ServerHttpOwn, FullQueueAnswers429WithRetryAfter) {
  REQUIRE_SLOW_MODEL();
  ServerProcess s({"-m", slow_model(), "-np", "1", "--max-queue", "1", "-t", "2"});
  ASSERT_TRUE(s.ok());
  const int port = s.port();
  const json body = {{"prompt", "Hello"}, {"max_tokens", 3000}, {"ignore_eos", true}};
  // Two long requests: one runs, one waits. Each client hangs up once the third is refused.
  std::atomic<bool> refused{false};
  auto occupant = [&] {
    stream(port, "/v1/completions", body, [&](const json&) { return !refused.load(); });
  };
  std::thread a(occupant);
  ASSERT_TRUE(wait_metric(port, "requests_processing", [](double v) { return v == 1; }));
  std::thread b(occupant);
  ASSERT_TRUE(wait_metric(port, "requests_deferred", [](double v) { return v == 1; }));
  const Reply r = post(port, "/v1/completions", body);
  refused = true;
  expect_error(r, 429, "rate_limit_error", "queue is full");
  EXPECT_TRUE(r.headers.count("Retry-After")) << r.body;
  EXPECT_GE(std::stoi(r.headers.find("Retry-After")->second), 1);
  EXPECT_EQ(metric(port, "requests_rejected_total"), 1);
  a.join();  // once a hangs up, b runs, gets a chunk, and hangs up too
  b.join();
  EXPECT_EQ(s.stop(), 0) << s.log();
}

}  // namespace server_http_test
}  // namespace
}  // namespace xtile::test
