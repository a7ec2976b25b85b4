// Anthropic's routes on the real `xtile serve` binary: /v1/messages gives the bits the OpenAI
// chat route gives for the same request, whole and as named events whose blocks open and close
// in order and whose deltas add up to the whole message; stop sequences, a prefilled answer
// (the same text /v1/completions continues from the template's prompt), count_tokens against
// the usage and against the OpenAI route's template, forced tool use against the OpenAI route's
// call, a think block, and errors in Anthropic's shape.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "forced_call.h"
#include "http_client.h"
#include "named_events.h"
#include "server_process.h"
#include "test_util.h"

namespace xtile::test {
namespace {
namespace anthropic_http_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

// The message a stream describes, rebuilt as the SDKs do (content blocks from their start and
// deltas, stop reason and usage from message_delta), after checking the events' order: one
// message_start first, message_stop last, each block started, given deltas and stopped before
// the next starts, indices counting from 0.
json message_of(const std::vector<NamedEvent>& events) {
  EXPECT_GE(events.size(), 4u);
  if (events.size() < 4) return {};
  EXPECT_EQ(events.front().name, "message_start");
  EXPECT_EQ(events.back().name, "message_stop");
  json m = events.front().data["message"];
  int open = -1;
  for (size_t i = 1; i + 1 < events.size(); ++i) {
    const NamedEvent& e = events[i];
    EXPECT_EQ(e.data["type"], e.name);
    if (e.name == "content_block_start") {
      EXPECT_EQ(open, -1) << "a block started inside another";
      open = e.data["index"];
      EXPECT_EQ(open, static_cast<int>(m["content"].size()));
      m["content"].push_back(e.data["content_block"]);
    } else if (e.name == "content_block_delta") {
      EXPECT_EQ(e.data["index"], open);
      if (open < 0) continue;
      json& block = m["content"][static_cast<size_t>(open)];
      const json& d = e.data["delta"];
      if (d["type"] == "text_delta") {
        block["text"] = block["text"].get<std::string>() + d["text"].get<std::string>();
      } else if (d["type"] == "thinking_delta") {
        block["thinking"] = block["thinking"].get<std::string>() + d["thinking"].get<std::string>();
      } else {
        EXPECT_EQ(d["type"], "input_json_delta");
        block["partial"] = block.value("partial", "") + d["partial_json"].get<std::string>();
      }
    } else if (e.name == "content_block_stop") {
      EXPECT_EQ(e.data["index"], open);
      if (open >= 0) {
        json& block = m["content"][static_cast<size_t>(open)];
        if (block.contains("partial")) {
          block["input"] = json::parse(block["partial"].get<std::string>());
          block.erase("partial");
        }
      }
      open = -1;
    } else if (e.name == "message_delta") {
      EXPECT_EQ(open, -1) << "message_delta inside a block";
      m["stop_reason"] = e.data["delta"]["stop_reason"];
      m["stop_sequence"] = e.data["delta"]["stop_sequence"];
      m["usage"] = e.data["usage"];
    } else {
      EXPECT_EQ(e.name, "ping");
    }
  }
  return m;
}

json user_turn(const std::string& text) {
  return json::array({{{"role", "user"}, {"content", text}}});
}

class AnthropicHttp : public StoriesSuite<AnthropicHttp> {
 public:
  static constexpr const char* kFlags[] = {"-np", "2", "-c", "1024", "-t", "2"};

 protected:
  // The whole message and the one its stream describes.
  std::pair<json, json> both(json body) {
    body["stream"] = false;
    const Reply whole = post(port_, "/v1/messages", body);
    EXPECT_EQ(whole.status, 200) << whole.body;
    body["stream"] = true;
    const Reply streamed = post(port_, "/v1/messages", body);
    EXPECT_EQ(streamed.status, 200) << streamed.body;
    EXPECT_NE(streamed.headers.find("Content-Type")->second.find("text/event-stream"),
              std::string::npos);
    if (whole.status != 200 || streamed.status != 200) return {};
    return {whole.j(), message_of(named_events(streamed.body))};
  }
};

TEST_F(AnthropicHttp, MessagesGiveTheChatRoutesBitsWholeAndStreamed) {
  const Reply openai =
      post(port_, "/v1/chat/completions",
           {{"messages", json::array({{{"role", "system"}, {"content", "Be kind."}},
                                      {{"role", "user"}, {"content", "A frog"}}})},
            {"seed", 4},
            {"temperature", 0.9},
            {"max_tokens", 24}});
  ASSERT_EQ(openai.status, 200) << openai.body;
  const json o = openai.j()["choices"][0];
  const auto [w, s] = both({{"model", "stories260K"},
                            {"system", json::array({{{"type", "text"}, {"text", "Be kind."}}})},
                            {"messages", user_turn("A frog")},
                            {"seed", 4},
                            {"temperature", 0.9},
                            {"max_tokens", 24}});
  ASSERT_FALSE(w.is_null());
  EXPECT_EQ(w["type"], "message");
  EXPECT_EQ(w["role"], "assistant");
  EXPECT_TRUE(w["id"].get<std::string>().starts_with("msg_"));
  ASSERT_EQ(w["content"].size(), 1u) << w.dump();
  EXPECT_EQ(w["content"][0]["type"], "text");
  EXPECT_EQ(w["content"][0]["text"], o["message"]["content"]);
  EXPECT_EQ(w["stop_reason"], o["finish_reason"] == "length" ? "max_tokens" : "end_turn");
  EXPECT_EQ(w["usage"]["output_tokens"], openai.j()["usage"]["completion_tokens"]);
  EXPECT_EQ(
      w["usage"]["input_tokens"].get<int>() + w["usage"]["cache_read_input_tokens"].get<int>(),
      openai.j()["usage"]["prompt_tokens"]);
  ASSERT_FALSE(s.is_null());
  EXPECT_EQ(s["content"], w["content"]);
  EXPECT_EQ(s["stop_reason"], w["stop_reason"]);
  EXPECT_EQ(s["usage"]["output_tokens"], w["usage"]["output_tokens"]);
}

TEST_F(AnthropicHttp, StopSequenceEndsTheTextAndIsNamed) {
  const json body = {{"model", "stories260K.gguf"},
                     {"messages", user_turn("Tell me a story")},
                     {"seed", 11},
                     {"temperature", 0.8},
                     {"max_tokens", 40}};
  const Reply free = post(port_, "/v1/messages", body);
  ASSERT_EQ(free.status, 200) << free.body;
  const std::string text = free.j()["content"][0]["text"];
  // A stop string from the middle of the free text: the reply ends right before it.
  const size_t space = text.find(' ', text.size() / 2);
  ASSERT_NE(space, std::string::npos) << text;
  const std::string stop = text.substr(space, std::min<size_t>(4, text.size() - space));
  json stopped = body;
  stopped["stop_sequences"] = {stop, "never written"};
  const auto [w, s] = both(stopped);
  ASSERT_FALSE(w.is_null());
  EXPECT_EQ(w["stop_reason"], "stop_sequence");
  EXPECT_EQ(w["stop_sequence"], stop);
  EXPECT_EQ(w["content"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(s["content"], w["content"]);
  EXPECT_EQ(s["stop_sequence"], stop);
}

// An assistant turn last is the start of the answer: the reply is what /v1/completions writes
// after the template's prompt, which ends with that start.
TEST_F(AnthropicHttp, PrefilledAnswerContinues) {
  const json messages = json::array({{{"role", "user"}, {"content", "Tell me a story"}},
                                     {{"role", "assistant"}, {"content", "Once upon a"}}});
  const Reply tpl = post(port_, "/apply-template", {{"messages", messages}});
  ASSERT_EQ(tpl.status, 200) << tpl.body;
  const std::string prompt = tpl.j()["prompt"];
  EXPECT_TRUE(prompt.ends_with("Once upon a")) << prompt;
  const Reply ids = post(port_, "/tokenize",
                         {{"content", prompt}, {"add_special", false}, {"parse_special", true}});
  ASSERT_EQ(ids.status, 200) << ids.body;
  const Reply text =
      post(port_, "/v1/completions",
           {{"prompt", ids.j()["tokens"]}, {"seed", 2}, {"temperature", 0.7}, {"max_tokens", 16}});
  ASSERT_EQ(text.status, 200) << text.body;
  const auto [w, s] = both({{"model", "stories260K"},
                            {"messages", messages},
                            {"seed", 2},
                            {"temperature", 0.7},
                            {"max_tokens", 16}});
  ASSERT_FALSE(w.is_null());
  EXPECT_EQ(w["content"][0]["text"], text.j()["choices"][0]["text"]);
  EXPECT_EQ(s["content"], w["content"]);
}

TEST_F(AnthropicHttp, CountTokensIsThePromptsLength) {
  const json body = {{"model", "stories260K"},
                     {"system", "Be brief."},
                     {"messages", user_turn("How do birds fly?")},
                     {"max_tokens", 2}};
  const Reply count = post(port_, "/v1/messages/count_tokens", body);
  ASSERT_EQ(count.status, 200) << count.body;
  const Reply m = post(port_, "/v1/messages", body);
  ASSERT_EQ(m.status, 200) << m.body;
  const json u = m.j()["usage"];
  EXPECT_EQ(count.j()["input_tokens"],
            u["input_tokens"].get<int>() + u["cache_read_input_tokens"].get<int>());
}

TEST_F(AnthropicHttp, ErrorsInAnthropicsShape) {
  auto expect_error = [](const Reply& r, int status, const std::string& type,
                         const std::string& words) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["type"], "error");
    EXPECT_EQ(j["error"]["type"], type) << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(words), std::string::npos) << r.body;
  };
  const json ok = {{"model", "stories260K"}, {"messages", user_turn("Hi")}, {"max_tokens", 2}};
  json other = ok;
  other["model"] = "claude-sonnet-4-5";
  expect_error(post(port_, "/v1/messages", other), 404, "not_found_error", "stories260K.gguf");
  expect_error(request(port_, "POST", "/v1/messages", "{not json"), 400, "invalid_request_error",
               "JSON");
  json image = ok;
  image["messages"][0]["content"] = json::array({{{"type", "image"}, {"source", json::object()}}});
  expect_error(post(port_, "/v1/messages", image), 400, "invalid_request_error", "text blocks");
  json negative = ok;
  negative["temperature"] = -1;
  expect_error(post(port_, "/v1/messages", negative), 400, "invalid_request_error", "temperature");
  json tools = ok;  // stories260K's template has no tool-call format
  tools["tools"] = json::array({{{"name", "f"}, {"input_schema", {{"type", "object"}}}}});
  expect_error(post(port_, "/v1/messages", tools), 400, "invalid_request_error", "tool");
  json long_prompt = ok;
  std::string words;
  for (int i = 0; i < 600; ++i) words += "frog pond ";
  long_prompt["messages"] = user_turn(words);
  expect_error(post(port_, "/v1/messages", long_prompt), 400, "invalid_request_error", "context");
  expect_error(request(port_, "GET", "/v1/messages/batches"), 404, "not_found_error", "no route");
}

// Function calling needs Qwen's template: the one-layer random qwen3 (it never calls by itself;
// every call here is one the call grammar forced).
TEST(AnthropicHttpOwn, ForcedToolUseIsTheOpenAIRoutesCall) {
  const std::string model = slow_model();
  if (model.empty()) GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-qwen2.gguf is absent";
  ServerProcess server({"-m", model, "-np", "2", "-c", "4096", "-t", "2"});
  ASSERT_TRUE(server.ok());
  const int port = server.port();
  const json schema = city_schema();
  const json call = chat_forced_call(port, "Weather in Oslo?", 3);
  ASSERT_FALSE(call.is_null());
  const json body = {
      {"model", "server-test-qwen3-1L-q4_0"},
      {"messages", user_turn("Weather in Oslo?")},
      {"tools", json::array({{{"name", "get_weather"}, {"input_schema", schema}}})},
      {"tool_choice",
       {{"type", "tool"}, {"name", "get_weather"}, {"disable_parallel_tool_use", true}}},
      {"thinking", {{"type", "disabled"}}},
      {"seed", 3},
      {"temperature", 0.8},
      {"max_tokens", 200}};
  for (const bool stream : {false, true}) {
    json b = body;
    b["stream"] = stream;
    const Reply r = post(port, "/v1/messages", b);
    ASSERT_EQ(r.status, 200) << r.body;
    const json m = stream ? message_of(named_events(r.body)) : r.j();
    ASSERT_EQ(m["content"].size(), 1u) << m.dump();
    const json use = m["content"][0];
    EXPECT_EQ(use["type"], "tool_use");
    EXPECT_EQ(use["name"], "get_weather");
    EXPECT_TRUE(use["id"].get<std::string>().starts_with("toolu_"));
    EXPECT_EQ(use["input"], json::parse(call["function"]["arguments"].get<std::string>()));
    EXPECT_EQ(m["stop_reason"], "tool_use");
  }

  // The call and its result sent back: the prompt is the OpenAI route's for the same turns.
  json turns = user_turn("Weather in Oslo?");
  turns.push_back({{"role", "assistant"},
                   {"content", json::array({{{"type", "tool_use"},
                                             {"id", "toolu_1"},
                                             {"name", "get_weather"},
                                             {"input", {{"city", "Oslo"}}}}})}});
  turns.push_back(
      {{"role", "user"},
       {"content", json::array({{{"type", "tool_result"},
                                 {"tool_use_id", "toolu_1"},
                                 {"content", json::array({{{"type", "text"}, {"text", "-3 C"}}})}},
                                {{"type", "text"}, {"text", "Warm enough?"}}})}});
  const Reply count =
      post(port, "/v1/messages/count_tokens",
           {{"model", body["model"]}, {"messages", turns}, {"tools", body["tools"]}});
  ASSERT_EQ(count.status, 200) << count.body;
  const json openai_turns = json::array(
      {{{"role", "user"}, {"content", "Weather in Oslo?"}},
       {{"role", "assistant"},
        {"content", ""},
        {"tool_calls",
         json::array(
             {{{"id", "toolu_1"},
               {"type", "function"},
               {"function", {{"name", "get_weather"}, {"arguments", R"({"city": "Oslo"})"}}}}})}},
       {{"role", "tool"}, {"tool_call_id", "toolu_1"}, {"content", "-3 C"}},
       {{"role", "user"}, {"content", "Warm enough?"}}});
  const Reply tpl =
      post(port, "/apply-template", {{"messages", openai_turns}, {"tools", chat_weather_tools()}});
  ASSERT_EQ(tpl.status, 200) << tpl.body;
  const Reply ids = post(port, "/tokenize", {{"content", tpl.j()["prompt"]}});
  ASSERT_EQ(ids.status, 200) << ids.body;
  EXPECT_EQ(count.j()["input_tokens"], ids.j()["tokens"].size());

  // An answer begun with "<think>" continues inside the think block: a thinking block.
  json think = body;
  think.erase("tools");
  think.erase("tool_choice");
  think["max_tokens"] = 12;
  think["messages"].push_back({{"role", "assistant"}, {"content", "<think>\n"}});
  const Reply whole = post(port, "/v1/messages", think);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json w = whole.j();
  ASSERT_GE(w["content"].size(), 1u) << w.dump();
  EXPECT_EQ(w["content"][0]["type"], "thinking") << w.dump();
  think["stream"] = true;
  const Reply streamed = post(port, "/v1/messages", think);
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_EQ(message_of(named_events(streamed.body))["content"], w["content"]);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

}  // namespace anthropic_http_test
}  // namespace
}  // namespace xtile::test
