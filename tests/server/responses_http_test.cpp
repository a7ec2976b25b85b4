// OpenAI's Responses route on the real `xtile serve` binary: /v1/responses gives the bits the
// chat route gives for the same request, whole and as named events that rebuild the same
// response; a cut answer is "incomplete"; a forced function call is the chat route's call; a
// function's output sent back reads as the chat route's tool message; errors in OpenAI's shape.
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
namespace responses_http_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

// The final response of a stream, after checking that every event's sequence number counts
// from 0 and that the text deltas of each message add up to its text.
json final_response(const std::string& body) {
  const std::vector<NamedEvent> events = named_events(body);
  EXPECT_GE(events.size(), 3u) << body;
  if (events.size() < 3) return {};
  std::vector<std::string> texts;
  for (size_t i = 0; i < events.size(); ++i) {
    const json& d = events[i].data;
    EXPECT_EQ(d["type"], events[i].name);
    EXPECT_EQ(d["sequence_number"], i);
    if (events[i].name == "response.output_item.added") texts.emplace_back();
    if (events[i].name == "response.output_text.delta" && !texts.empty())
      texts.back() += d["delta"].get<std::string>();
    if (events[i].name == "response.output_text.done" && !texts.empty()) {
      EXPECT_EQ(d["text"], texts.back());
    }
  }
  EXPECT_EQ(events.front().name, "response.created");
  return events.back().data["response"];
}

json without_ids(json items) {
  for (json& i : items) i.erase("id");
  return items;
}

TEST(ResponsesHttp, TheChatRoutesBitsWholeAndStreamed) {
  const std::string model = fixture_path("models/stories260K.gguf");
  if (model.empty()) GTEST_SKIP() << "../shared/fixtures/models/stories260K.gguf is absent";
  ServerProcess server({"-m", model, "-np", "2", "-c", "1024", "-t", "2"});
  ASSERT_TRUE(server.ok());
  const int port = server.port();
  for (const int max_tokens : {24, 400}) {  // cut, and (most likely) ended by the model
    const Reply chat =
        post(port, "/v1/chat/completions",
             {{"messages", json::array({{{"role", "system"}, {"content", "Be kind."}},
                                        {{"role", "user"}, {"content", "A frog"}}})},
              {"seed", 6},
              {"temperature", 0.9},
              {"max_tokens", max_tokens}});
    ASSERT_EQ(chat.status, 200) << chat.body;
    const json c = chat.j();
    json body = {{"model", "stories260K"}, {"instructions", "Be kind."},
                 {"input", "A frog"},      {"seed", 6},
                 {"temperature", 0.9},     {"max_output_tokens", max_tokens}};
    const Reply whole = post(port, "/v1/responses", body);
    ASSERT_EQ(whole.status, 200) << whole.body;
    const json w = whole.j();
    EXPECT_EQ(w["object"], "response");
    ASSERT_EQ(w["output"].size(), 1u) << w.dump();
    EXPECT_EQ(w["output"][0]["content"][0]["text"], c["choices"][0]["message"]["content"]);
    const bool cut = c["choices"][0]["finish_reason"] == "length";
    EXPECT_EQ(w["status"], cut ? "incomplete" : "completed");
    EXPECT_EQ(w["usage"]["output_tokens"], c["usage"]["completion_tokens"]);
    EXPECT_EQ(w["usage"]["input_tokens"], c["usage"]["prompt_tokens"]);
    EXPECT_EQ(w["instructions"], "Be kind.");
    EXPECT_EQ(w["max_output_tokens"], max_tokens);

    body["stream"] = true;
    const Reply streamed = post(port, "/v1/responses", body);
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    const json s = final_response(streamed.body);
    EXPECT_EQ(without_ids(s["output"]), without_ids(w["output"]));
    EXPECT_EQ(s["status"], w["status"]);
    EXPECT_EQ(s["usage"]["output_tokens"], w["usage"]["output_tokens"]);
  }

  // Errors: OpenAI's shape, the field named.
  const Reply stored =
      post(port, "/v1/responses", {{"input", "Hi"}, {"previous_response_id", "r"}});
  EXPECT_EQ(stored.status, 400);
  EXPECT_EQ(stored.j()["error"]["param"], "previous_response_id") << stored.body;
  const Reply other = post(port, "/v1/responses", {{"input", "Hi"}, {"model", "gpt-5"}});
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(other.j()["error"]["code"], "model_not_found") << other.body;
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// Function calling needs Qwen's template: the one-layer random qwen3, whose calls are all
// forced by the call grammar.
TEST(ResponsesHttp, ForcedFunctionCallIsTheChatRoutesCall) {
  const std::string model = slow_model();
  if (model.empty()) GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-qwen2.gguf is absent";
  ServerProcess server({"-m", model, "-np", "2", "-c", "4096", "-t", "2"});
  ASSERT_TRUE(server.ok());
  const int port = server.port();
  const json schema = city_schema();
  const json call = chat_forced_call(port, "Weather in Lima?", 8);
  ASSERT_FALSE(call.is_null());
  json body = {
      {"input", "Weather in Lima?"},
      {"tools",
       json::array({{{"type", "function"}, {"name", "get_weather"}, {"parameters", schema}}})},
      {"tool_choice", {{"type", "function"}, {"name", "get_weather"}}},
      {"parallel_tool_calls", false},
      {"reasoning", {{"effort", "none"}}},
      {"seed", 8},
      {"temperature", 0.8},
      {"max_output_tokens", 200}};
  for (const bool stream : {false, true}) {
    body["stream"] = stream;
    const Reply r = post(port, "/v1/responses", body);
    ASSERT_EQ(r.status, 200) << r.body;
    const json resp = stream ? final_response(r.body) : r.j();
    ASSERT_EQ(resp["output"].size(), 1u) << resp.dump();
    const json item = resp["output"][0];
    EXPECT_EQ(item["type"], "function_call");
    EXPECT_EQ(item["name"], "get_weather");
    EXPECT_EQ(item["arguments"], call["function"]["arguments"]);
    EXPECT_TRUE(item["call_id"].get<std::string>().starts_with("call_"));
  }

  // The call and its output sent back: the prompt is the chat route's for the same turns.
  const json items =
      json::array({{{"role", "user"}, {"content", "Weather in Lima?"}},
                   {{"type", "function_call"},
                    {"call_id", "call_1"},
                    {"name", "get_weather"},
                    {"arguments", R"({"city": "Lima"})"}},
                   {{"type", "function_call_output"}, {"call_id", "call_1"}, {"output", "18 C"}}});
  json next = body;
  next["input"] = items;
  next["tool_choice"] = "none";
  next["max_output_tokens"] = 6;
  next["stream"] = false;
  const Reply answer = post(port, "/v1/responses", next);
  ASSERT_EQ(answer.status, 200) << answer.body;
  const Reply same = post(
      port, "/v1/chat/completions",
      {{"messages",
        json::array({{{"role", "user"}, {"content", "Weather in Lima?"}},
                     {{"role", "assistant"},
                      {"content", ""},
                      {"tool_calls", json::array({{{"id", "call_1"},
                                                   {"type", "function"},
                                                   {"function",
                                                    {{"name", "get_weather"},
                                                     {"arguments", R"({"city": "Lima"})"}}}}})}},
                     {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "18 C"}}})},
       {"tools", chat_weather_tools()},
       {"tool_choice", "none"},
       {"parallel_tool_calls", false},
       {"chat_template_kwargs", {{"enable_thinking", false}}},
       {"seed", 8},
       {"temperature", 0.8},
       {"max_tokens", 6}});
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(answer.j()["usage"]["input_tokens"], same.j()["usage"]["prompt_tokens"]);
  EXPECT_EQ(answer.j()["output"][0]["content"][0]["text"],
            same.j()["choices"][0]["message"]["content"]);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

}  // namespace responses_http_test
}  // namespace
}  // namespace xtile::test
