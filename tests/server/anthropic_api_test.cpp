// Anthropic's Messages API shapes in process: a request's mapping to the OpenAI chat request
// (system blocks, tool results before the turn's text, tool_use as tool_calls, thinking as
// reasoning_content, tools, tool_choice, thinking, output_format), its errors naming the
// Anthropic field, the whole message's blocks and stop reasons, and the stream's events (blocks
// opened and closed in order, indices counting them).
#include "server/anthropic_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "named_events.h"
#include "server/api_error.h"

namespace xtile::server {
namespace {
namespace anthropic_api_test {  // unity batches: CMakeLists.txt

using nlohmann::json;
using nlohmann::ordered_json;

// The ApiError's field (param) and status for a body.
std::pair<int, std::string> error_of(const ordered_json& body) {
  try {
    anthropic_request(body);
  } catch (const ApiError& e) {
    return {e.status, e.param};
  }
  return {0, ""};
}

TEST(AnthropicApi, MapsAConversationWithToolsToTheOpenAIRequest) {
  const ordered_json body = ordered_json::parse(R"({
    "model": "m", "max_tokens": 64, "stream": true, "temperature": 0.5, "top_k": 7,
    "stop_sequences": ["END"], "seed": 9,
    "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2; cch=a5145; end"},
               {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
      {"role": "user", "content": "Weather in Oslo?"},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Call the tool.", "signature": "abc"},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "-3 C"}]},
        {"type": "text", "text": "And tomorrow?"}]}],
    "tools": [{"name": "get_weather", "description": "A city's weather",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
    "thinking": {"type": "disabled"}
  })");
  const AnthropicRequest r = anthropic_request(body);
  EXPECT_EQ(r.model, "m");
  EXPECT_TRUE(r.stream);
  const ordered_json expected = ordered_json::parse(R"({
    "stream": true, "max_tokens": 64, "temperature": 0.5, "top_k": 7, "seed": 9, "stop": ["END"],
    "chat_template_kwargs": {"enable_thinking": false},
    "messages": [
      {"role": "system",
       "content": "x-anthropic-billing-header: cc_version=2; cch=00000; end\n\nBe brief."},
      {"role": "user", "content": "Weather in Oslo?"},
      {"role": "assistant", "content": "Let me look.", "reasoning_content": "Call the tool.",
       "tool_calls": [{"id": "toolu_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
      {"role": "tool", "tool_call_id": "toolu_1", "content": "-3 C"},
      {"role": "user", "content": "And tomorrow?"}],
    "tools": [{"type": "function", "function": {"name": "get_weather",
               "description": "A city's weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": false
  })");
  EXPECT_EQ(json(r.openai), json(expected)) << r.openai.dump(1);
}

TEST(AnthropicApi, ToolChoiceThinkingAndOutputFormat) {
  auto mapped = [](const char* extra) {
    ordered_json body = ordered_json::parse(
        R"({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}]})");
    const ordered_json fields = ordered_json::parse(extra);
    for (const auto& [k, v] : fields.items()) body[k] = v;
    return anthropic_request(body).openai;
  };
  EXPECT_EQ(mapped(R"({"tool_choice": {"type": "auto"}})")["tool_choice"], "auto");
  EXPECT_EQ(mapped(R"({"tool_choice": {"type": "any"}})")["tool_choice"], "required");
  EXPECT_EQ(mapped(R"({"tool_choice": {"type": "none"}})")["tool_choice"], "none");
  EXPECT_EQ(
      mapped(R"({"thinking": {"type": "enabled", "budget_tokens": 1024}})")["chat_template_kwargs"]
                                                                           ["enable_thinking"],
      true);
  EXPECT_FALSE(mapped("{}").contains("chat_template_kwargs"));  // the model's default
  EXPECT_FALSE(mapped("{}").contains("max_tokens"));            // the server's limit
  const ordered_json f =
      mapped(R"({"output_format": {"type": "json_schema", "schema": {"type": "object"}}})");
  EXPECT_EQ(f["response_format"]["type"], "json_schema");
  EXPECT_EQ(f["response_format"]["json_schema"]["schema"], ordered_json({{"type", "object"}}));
}

TEST(AnthropicApi, ErrorsNameTheAnthropicField) {
  const ordered_json ok = ordered_json::parse(
      R"({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]})");
  auto with = [&](const char* key, const char* value) {
    ordered_json b = ok;
    b[key] = ordered_json::parse(value);
    return error_of(b);
  };
  EXPECT_EQ(error_of(ok).first, 0);
  EXPECT_EQ(with("model", "3"), std::make_pair(400, std::string("model")));
  EXPECT_EQ(with("max_tokens", "0"), std::make_pair(400, std::string("max_tokens")));
  EXPECT_EQ(with("messages", "[]"), std::make_pair(400, std::string("messages")));
  EXPECT_EQ(with("messages", R"([{"role": "system", "content": "x"}])"),
            std::make_pair(400, std::string("messages[0].role")));
  EXPECT_EQ(with("messages", R"([{"role": "user", "content": [{"type": "image",
             "source": {"type": "base64", "media_type": "image/png", "data": ""}}]}])"),
            std::make_pair(400, std::string("messages[0].content[0]")));
  EXPECT_EQ(with("messages", R"([{"role": "user", "content": [{"type": "text", "text": "a"},
             {"type": "tool_result", "tool_use_id": "t"}]}])"),
            std::make_pair(400, std::string("messages[0].content[1]")));
  EXPECT_EQ(with("messages", R"([{"role": "assistant", "content": [{"type": "tool_result",
             "tool_use_id": "t"}]}])"),
            std::make_pair(400, std::string("messages[0].content[0]")));
  EXPECT_EQ(with("system", R"([{"type": "image"}])"),
            std::make_pair(400, std::string("system[0]")));
  EXPECT_EQ(with("tools", R"([{"type": "web_search_20250305", "name": "web_search"}])"),
            std::make_pair(400, std::string("tools[0].type")));
  EXPECT_EQ(with("tools", R"([{"name": "f"}])"),
            std::make_pair(400, std::string("tools[0].input_schema")));
  EXPECT_EQ(with("tool_choice", R"({"type": "tool"})"),
            std::make_pair(400, std::string("tool_choice.name")));
  EXPECT_EQ(with("thinking", R"({"type": "sometimes"})"),
            std::make_pair(400, std::string("thinking.type")));
  EXPECT_EQ(with("stop_sequences", R"(["a", 1])"),
            std::make_pair(400, std::string("stop_sequences")));
  // count_tokens has no max_tokens to check.
  ordered_json count = ok;
  count["max_tokens"] = "not read";
  EXPECT_NO_THROW(anthropic_request(count, /*count_only=*/true));
  EXPECT_EQ(anthropic_error(529, "busy")["error"]["type"], "api_error");
  EXPECT_EQ(anthropic_error(503, "busy")["error"]["type"], "overloaded_error");
  EXPECT_EQ(anthropic_error(401, "key")["error"]["type"], "authentication_error");
  EXPECT_EQ(anthropic_error(404, "m"), json::parse(R"({"type": "error",
            "error": {"type": "not_found_error", "message": "m"}})"));
}

TEST(AnthropicApi, MessageBlocksAndStopReasons) {
  JobStats s;
  s.prompt_tokens = 30;
  s.cached_tokens = 20;
  s.completion_tokens = 7;
  const ToolCallOut call{"call_abc", "f", R"({"x":1})"};
  const json m = anthropic_message("msg_1", "m", "hmm", "Sure.", {call}, FinishReason::kStop, s);
  EXPECT_EQ(m["content"], json::parse(R"([
      {"type": "thinking", "thinking": "hmm", "signature": ""},
      {"type": "text", "text": "Sure."},
      {"type": "tool_use", "id": "toolu_abc", "name": "f", "input": {"x": 1}}])"));
  EXPECT_EQ(m["stop_reason"], "tool_use");
  EXPECT_EQ(m["usage"], json::parse(R"({"input_tokens": 10, "cache_creation_input_tokens": 0,
                                        "cache_read_input_tokens": 20, "output_tokens": 7})"));
  // No text and no calls: one empty text block.
  EXPECT_EQ(anthropic_message("i", "m", "", "", {}, FinishReason::kStop, s)["content"],
            json::parse(R"([{"type": "text", "text": ""}])"));
  EXPECT_EQ(anthropic_message("i", "m", "", "a", {}, FinishReason::kStop, s)["stop_reason"],
            "end_turn");
  EXPECT_EQ(anthropic_message("i", "m", "", "a", {}, FinishReason::kLength, s)["stop_reason"],
            "max_tokens");
  s.stop_word = "END";
  const json stopped = anthropic_message("i", "m", "", "a", {}, FinishReason::kStop, s);
  EXPECT_EQ(stopped["stop_reason"], "stop_sequence");
  EXPECT_EQ(stopped["stop_sequence"], "END");
}

TEST(AnthropicApi, StreamEventsOpenAndCloseBlocksInOrder) {
  AnthropicEvents ev("msg_1", "m");
  std::string text = ev.start(12);
  text += ev.push("Let me", "", {});
  text += ev.push(" think.", "", {});
  text += ev.push("", "Hello", {});
  text += ev.push("", " world", {ToolCallOut{"call_1", "f", R"({"a":[1]})"}});
  JobStats s;
  s.prompt_tokens = 12;
  s.completion_tokens = 9;
  text += ev.finish(FinishReason::kStop, s);
  const auto events = named_events(text);
  std::vector<std::string> names;
  for (const auto& [name, data] : events) {
    names.push_back(name);
    EXPECT_EQ(data["type"], name);  // each event's data names it too
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "message_start", "content_block_start", "content_block_delta",
                       "content_block_delta", "content_block_stop", "content_block_start",
                       "content_block_delta", "content_block_delta", "content_block_stop",
                       "content_block_start", "content_block_delta", "content_block_stop",
                       "message_delta", "message_stop"}));
  EXPECT_EQ(events[0].data["message"]["usage"]["input_tokens"], 12);
  EXPECT_EQ(events[1].data["content_block"]["type"], "thinking");
  EXPECT_EQ(events[2].data["delta"], json::parse(R"({"type": "thinking_delta",
                                                       "thinking": "Let me"})"));
  EXPECT_EQ(events[5].data["index"], 1);
  EXPECT_EQ(events[7].data["delta"]["text"], " world");
  EXPECT_EQ(events[9].data["content_block"],
            json::parse(R"({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}})"));
  EXPECT_EQ(events[9].data["index"], 2);
  EXPECT_EQ(json::parse(events[10].data["delta"]["partial_json"].get<std::string>()),
            json::parse(R"({"a":[1]})"));
  EXPECT_EQ(events[12].data["delta"]["stop_reason"], "tool_use");
  EXPECT_EQ(events[12].data["usage"]["output_tokens"], 9);

  // Nothing written before the end: one empty text block, as the whole message has.
  AnthropicEvents empty("msg_2", "m");
  const auto none = named_events(empty.finish(FinishReason::kLength, s));
  ASSERT_EQ(none.size(), 4u);
  EXPECT_EQ(none[0].data["content_block"], json::parse(R"({"type": "text", "text": ""})"));
  EXPECT_EQ(none[2].data["delta"]["stop_reason"], "max_tokens");
  EXPECT_EQ(named_events(empty.ping())[0].name, "ping");
  EXPECT_EQ(named_events(empty.error(503, "busy"))[0].data["error"]["type"], "overloaded_error");
}

}  // namespace anthropic_api_test
}  // namespace
}  // namespace xtile::server
