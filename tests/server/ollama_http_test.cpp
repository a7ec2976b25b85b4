// Ollama's routes on the real `xtile serve` binary: /api/chat and /api/generate give the bits the
// OpenAI routes give for the same request (options mapped: seed, temperature, num_predict,
// stop), streamed as NDJSON lines whose text adds up to the whole answer and whose last line has
// done: true, the reason and the counts; format "json" keeps JSON mode; the model listing,
// show, ps and version; and errors as Ollama's {"error": "..."}.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "http_client.h"
#include "server_process.h"
#include "test_util.h"

namespace xtile::test {
namespace {
namespace ollama_http_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

// The lines of an NDJSON body.
std::vector<json> lines_of(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

class OllamaHttp : public StoriesSuite<OllamaHttp> {
 public:
  static constexpr const char* kFlags[] = {"-np", "2", "-c", "1024", "-t", "2"};
};

const json kOptions = {{"seed", 21}, {"temperature", 0.9}, {"num_predict", 20}};

TEST_F(OllamaHttp, ChatGivesTheOpenAIRoutesBitsWholeAndStreamed) {
  const json messages = json::array({{{"role", "user"}, {"content", "Tell me about a frog"}}});
  const Reply openai =
      post(port_, "/v1/chat/completions",
           {{"messages", messages}, {"seed", 21}, {"temperature", 0.9}, {"max_tokens", 20}});
  ASSERT_EQ(openai.status, 200) << openai.body;
  const json o = openai.j();

  const json body = {{"model", "stories260K.gguf"},
                     {"messages", messages},
                     {"options", kOptions},
                     {"stream", false}};
  const Reply whole = post(port_, "/api/chat", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json w = whole.j();
  EXPECT_EQ(w["model"], "stories260K.gguf");
  EXPECT_EQ(w["message"]["role"], "assistant");
  EXPECT_EQ(w["message"]["content"], o["choices"][0]["message"]["content"]);
  EXPECT_EQ(w["done"], true);
  EXPECT_EQ(w["done_reason"], o["choices"][0]["finish_reason"]);
  EXPECT_EQ(w["eval_count"], o["usage"]["completion_tokens"]);
  EXPECT_GT(w["total_duration"].get<int64_t>(), 0);
  EXPECT_TRUE(std::regex_match(w["created_at"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)")));

  json streamed = body;
  streamed.erase("stream");  // Ollama streams by default
  const Reply ndjson = post(port_, "/api/chat", streamed);
  ASSERT_EQ(ndjson.status, 200) << ndjson.body;
  EXPECT_NE(ndjson.headers.find("Content-Type")->second.find("application/x-ndjson"),
            std::string::npos);
  const std::vector<json> lines = lines_of(ndjson.body);
  ASSERT_GE(lines.size(), 2u) << ndjson.body;
  std::string text;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["done"], i + 1 == lines.size()) << lines[i].dump();
    text += lines[i]["message"]["content"].get<std::string>();
  }
  EXPECT_EQ(json(text), w["message"]["content"]);
  EXPECT_EQ(lines.back()["done_reason"], w["done_reason"]);
  EXPECT_EQ(lines.back()["eval_count"], w["eval_count"]);
}

TEST_F(OllamaHttp, GenerateTemplatedAndRaw) {
  // Not raw: the prompt is a user message under the model's template, as the chat route.
  const Reply chat = post(
      port_, "/api/chat",
      {{"model", "stories260K.gguf:latest"},
       {"messages",
        {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "A cat"}}}},
       {"options", kOptions},
       {"stream", false}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  const Reply gen = post(port_, "/api/generate",
                         {{"model", "stories260K.gguf:latest"},
                          {"system", "Be brief."},
                          {"prompt", "A cat"},
                          {"options", kOptions},
                          {"stream", false}});
  ASSERT_EQ(gen.status, 200) << gen.body;
  EXPECT_EQ(gen.j()["response"], chat.j()["message"]["content"]);
  EXPECT_EQ(gen.j()["done"], true);

  // Raw: the text as it is, as /v1/completions reads a prompt; a stop string ends it.
  const Reply text = post(port_, "/v1/completions",
                          {{"prompt", "Once upon a time"},
                           {"seed", 21},
                           {"temperature", 0.9},
                           {"max_tokens", 20},
                           {"stop", {"."}}});
  ASSERT_EQ(text.status, 200) << text.body;
  json options = kOptions;
  options["stop"] = {"."};
  const Reply raw = post(port_, "/api/generate",
                         {{"model", "stories260K.gguf"},
                          {"prompt", "Once upon a time"},
                          {"raw", true},
                          {"options", options}});
  ASSERT_EQ(raw.status, 200) << raw.body;
  std::string response;
  const std::vector<json> lines = lines_of(raw.body);
  ASSERT_FALSE(lines.empty());
  for (const json& l : lines) response += l["response"].get<std::string>();
  EXPECT_EQ(json(response), text.j()["choices"][0]["text"]);
  EXPECT_EQ(lines.back()["done_reason"], text.j()["choices"][0]["finish_reason"]);

  // No prompt: Ollama's way to load the model, answered at once.
  const Reply load =
      post(port_, "/api/generate", {{"model", "stories260K.gguf"}, {"stream", false}});
  ASSERT_EQ(load.status, 200) << load.body;
  EXPECT_EQ(load.j()["done_reason"], "load");
  EXPECT_EQ(load.j()["response"], "");
}

TEST_F(OllamaHttp, FormatJsonRepliesWithAnObject) {
  const Reply r = post(port_, "/api/chat",
                       {{"model", "stories260K.gguf"},
                        {"messages", {{{"role", "user"}, {"content", "Give me a cat as JSON"}}}},
                        {"format", "json"},
                        {"options", {{"seed", 4}, {"num_predict", 60}}},
                        {"stream", false}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string content = r.j()["message"]["content"];
  const size_t start = content.find_first_not_of(" \t\n\r");  // JSON may start with spaces
  ASSERT_NE(start, std::string::npos) << content;
  EXPECT_EQ(content[start], '{') << content;
  if (r.j()["done_reason"] == "stop") {
    const json parsed = json::parse(content, nullptr, false);
    EXPECT_TRUE(parsed.is_object()) << content;
  }
}

TEST_F(OllamaHttp, ModelsShowPsVersion) {
  const Reply tags = request(port_, "GET", "/api/tags");
  ASSERT_EQ(tags.status, 200) << tags.body;
  const json models = tags.j()["models"];
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0]["name"], "stories260K.gguf:latest");
  EXPECT_EQ(models[0]["details"]["format"], "gguf");
  EXPECT_EQ(models[0]["details"]["family"], "llama");
  EXPECT_EQ(models[0]["details"]["quantization_level"], "F32");
  EXPECT_GT(models[0]["size"].get<int64_t>(), 0);
  EXPECT_EQ(models[0]["digest"].get<std::string>().size(), 64u);
  // The name the listing gives is one the generation routes take.
  const Reply chat = post(port_, "/api/chat",
                          {{"model", models[0]["name"]},
                           {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                           {"options", {{"num_predict", 2}}},
                           {"stream", false}});
  EXPECT_EQ(chat.status, 200) << chat.body;

  const Reply show = post(port_, "/api/show", {{"model", "stories260K.gguf"}});
  ASSERT_EQ(show.status, 200) << show.body;
  EXPECT_EQ(show.j()["model_info"]["general.architecture"], "llama");
  EXPECT_EQ(show.j()["capabilities"], json::array({"completion"}));
  EXPECT_EQ(show.j()["parameters"], "num_ctx 1024");

  const Reply ps = request(port_, "GET", "/api/ps");
  ASSERT_EQ(ps.status, 200) << ps.body;
  EXPECT_EQ(ps.j()["models"][0]["name"], "stories260K.gguf:latest");
  EXPECT_EQ(ps.j()["models"][0]["context_length"], 1024);

  const Reply version = request(port_, "GET", "/api/version");
  ASSERT_EQ(version.status, 200);
  EXPECT_TRUE(version.j()["version"].is_string());
}

// A chat longer than the context (-c 1024 here) loses its oldest messages, as Ollama does: the
// system message and the longest run of recent messages whose prompt fits, found here by asking
// the server for each candidate's prompt (/apply-template) and its tokens (/tokenize); the answer
// is the OpenAI route's for those messages. "truncate": false is the OpenAI route's 400.
TEST_F(OllamaHttp, LongChatLosesItsOldestMessages) {
  json messages = json::array({{{"role", "system"}, {"content", "You tell short stories."}}});
  for (int k = 0; k < 40; ++k) {
    std::string text = "Turn " + std::to_string(k) + ":";
    for (int w = 0; w < 25; ++w) text += " the little dog ran";
    messages.push_back({{"role", k % 2 ? "assistant" : "user"}, {"content", text}});
  }
  messages.push_back({{"role", "user"}, {"content", "And then?"}});
  auto tokens_of = [&](const json& ms) {
    const Reply t = post(port_, "/apply-template", {{"messages", ms}});
    const Reply ids = post(port_, "/tokenize", {{"content", t.j()["prompt"]}});
    return ids.j()["tokens"].size();
  };
  ASSERT_GT(tokens_of(messages), 1024u);
  json kept;
  for (size_t from = 1; from < messages.size(); ++from) {
    kept = json::array({messages[0]});
    for (size_t i = from; i < messages.size(); ++i) kept.push_back(messages[i]);
    if (tokens_of(kept) <= 1024) break;
  }
  ASSERT_LT(kept.size(), messages.size());
  ASSERT_GT(kept.size(), 2u);
  const Reply openai =
      post(port_, "/v1/chat/completions",
           {{"messages", kept}, {"seed", 3}, {"temperature", 0.9}, {"max_tokens", 24}});
  ASSERT_EQ(openai.status, 200) << openai.body;
  const Reply ollama = post(port_, "/api/chat",
                            {{"model", "stories260K.gguf"},
                             {"messages", messages},
                             {"options", {{"seed", 3}, {"temperature", 0.9}, {"num_predict", 24}}},
                             {"stream", false}});
  ASSERT_EQ(ollama.status, 200) << ollama.body;
  EXPECT_EQ(ollama.j()["message"]["content"], openai.j()["choices"][0]["message"]["content"]);
  EXPECT_EQ(ollama.j()["eval_count"], openai.j()["usage"]["completion_tokens"]);
  const Reply strict = post(port_, "/api/chat",
                            {{"model", "stories260K.gguf"},
                             {"messages", messages},
                             {"truncate", false},
                             {"stream", false}});
  EXPECT_EQ(strict.status, 400) << strict.body;
  EXPECT_NE(strict.j()["error"].get<std::string>().find("more than the context"), std::string::npos)
      << strict.body;
}

// A conversation with tools, an assistant's call (Ollama's object arguments), the tool's
// answer and Qwen3's thinking: /api/chat reads it as the OpenAI route reads its spelling (the
// same prompt, so the same bits), and returns the think block as message.thinking.
TEST(OllamaHttpOwn, ToolsCallsAndThinkingMeanWhatTheyMeanOnTheOpenAIRoute) {
  const std::string qwen3 = slow_model();  // a context for the tools' text; Qwen3's template
  if (qwen3.empty())
    GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-qwen2.gguf is absent (needed to "
                    "synthesize the test model)";
  ServerProcess s({"-m", qwen3, "-np", "1", "-c", "2048", "-t", "2", "--chat-template", "qwen3"});
  ASSERT_TRUE(s.ok());
  const json tools =
      json::array({{{"type", "function"},
                    {"function",
                     {{"name", "weather"},
                      {"parameters",
                       {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}}});
  const json ask = {{"role", "user"}, {"content", "Weather in Oslo?"}};
  const json result = {{"role", "tool"}, {"content", "7 C"}};
  const json openai_call = {
      {"role", "assistant"},
      {"content", ""},
      {"tool_calls",
       {{{"id", "c"},
         {"type", "function"},
         {"function", {{"name", "weather"}, {"arguments", R"({"city": "Oslo"})"}}}}}}};
  const json ollama_call = {
      {"role", "assistant"},
      {"content", ""},
      {"tool_calls", {{{"function", {{"name", "weather"}, {"arguments", {{"city", "Oslo"}}}}}}}}};
  const Reply openai = post(s.port(), "/v1/chat/completions",
                            {{"messages", {ask, openai_call, result}},
                             {"tools", tools},
                             {"seed", 5},
                             {"temperature", 0.8},
                             {"max_tokens", 24}});
  ASSERT_EQ(openai.status, 200) << openai.body;
  const Reply ollama = post(s.port(), "/api/chat",
                            {{"model", "server-test-qwen3-1L-q4_0.gguf"},
                             {"messages", {ask, ollama_call, result}},
                             {"tools", tools},
                             {"options", {{"seed", 5}, {"temperature", 0.8}, {"num_predict", 24}}},
                             {"stream", false}});
  ASSERT_EQ(ollama.status, 200) << ollama.body;
  const json o = openai.j()["choices"][0]["message"];
  const json m = ollama.j()["message"];
  EXPECT_EQ(m["content"], o["content"].is_null() ? json("") : o["content"]);
  EXPECT_EQ(m.value("thinking", std::string()), o.value("reasoning_content", std::string()));
  EXPECT_EQ(ollama.j()["eval_count"], openai.j()["usage"]["completion_tokens"]);

  // think: false is enable_thinking false.
  const Reply no_think = post(s.port(), "/api/chat",
                              {{"model", "server-test-qwen3-1L-q4_0.gguf"},
                               {"messages", {ask}},
                               {"think", false},
                               {"options", {{"seed", 5}, {"num_predict", 8}}},
                               {"stream", false}});
  const Reply no_think_openai = post(s.port(), "/v1/chat/completions",
                                     {{"messages", {ask}},
                                      {"chat_template_kwargs", {{"enable_thinking", false}}},
                                      {"seed", 5},
                                      {"max_tokens", 8}});
  ASSERT_EQ(no_think.status, 200) << no_think.body;
  ASSERT_EQ(no_think_openai.status, 200) << no_think_openai.body;
  EXPECT_EQ(no_think.j()["message"]["content"],
            no_think_openai.j()["choices"][0]["message"]["content"]);
  const Reply show = post(s.port(), "/api/show", {{"model", "server-test-qwen3-1L-q4_0"}});
  ASSERT_EQ(show.status, 200) << show.body;
  EXPECT_EQ(show.j()["capabilities"], json::array({"completion", "tools", "thinking"}));
  EXPECT_EQ(s.stop(), 0) << s.log();
}

void expect_ollama_error(const Reply& r, int status, const std::string& what) {
  EXPECT_EQ(r.status, status) << r.body;
  json j;
  ASSERT_NO_THROW(j = r.j()) << r.body;
  ASSERT_TRUE(j["error"].is_string()) << r.body;
  EXPECT_NE(j["error"].get<std::string>().find(what), std::string::npos) << r.body;
}

TEST_F(OllamaHttp, ErrorsAreOllamasShape) {
  const json hi = json::array({{{"role", "user"}, {"content", "Hi"}}});
  expect_ollama_error(post(port_, "/api/chat", {{"model", "llama3.2"}, {"messages", hi}}), 404,
                      "model 'llama3.2' not found");
  expect_ollama_error(post(port_, "/api/chat", {{"messages", hi}}), 400, "'model' is required");
  expect_ollama_error(
      post(port_, "/api/chat",
           {{"model", "stories260K.gguf"},
            {"messages", {{{"role", "user"}, {"content", "Hi"}, {"images", {"aGk="}}}}}}),
      400, "images");
  expect_ollama_error(post(port_, "/api/chat",
                           {{"model", "stories260K.gguf"}, {"messages", hi}, {"stream", "yes"}}),
                      400, "'stream'");
  expect_ollama_error(
      post(
          port_, "/api/chat",
          {{"model", "stories260K.gguf"}, {"messages", hi}, {"options", {{"temperature", "hot"}}}}),
      400, "temperature");
  expect_ollama_error(post(port_, "/api/chat",
                           {{"model", "stories260K.gguf"}, {"messages", hi}, {"format", "xml"}}),
                      400, "format");
  expect_ollama_error(post(port_, "/api/generate",
                           {{"model", "stories260K.gguf"}, {"prompt", "a"}, {"context", {1, 2}}}),
                      400, "/api/chat");
  expect_ollama_error(post(port_, "/api/generate",
                           {{"model", "stories260K.gguf"}, {"prompt", "a"}, {"suffix", "b"}}),
                      400, "suffix");
  expect_ollama_error(post(port_, "/api/show", {{"model", "other"}}), 404, "not found");
  expect_ollama_error(request(port_, "POST", "/api/chat", "{\"model\": ", {}), 400, "JSON");
  // And the server still answers.
  EXPECT_EQ(request(port_, "GET", "/api/tags").status, 200);
}

}  // namespace ollama_http_test
}  // namespace
}  // namespace xtile::test
