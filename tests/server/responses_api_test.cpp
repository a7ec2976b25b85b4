// OpenAI's Responses API shapes in process: input items gathered into chat messages (an
// assistant turn's reasoning, message and calls into one message; function outputs as tool
// messages), tools, tool_choice, text.format and reasoning.effort mapped, errors naming the
// Responses field, the output items of a whole reply, and the stream's events (items and parts
// opened and closed in order, sequence numbers counting, the final response's output the same
// as the whole reply's).
#include "server/responses_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "named_events.h"
#include "server/api_error.h"

namespace xtile::server {
namespace {
namespace responses_api_test {  // unity batches: CMakeLists.txt

using nlohmann::json;
using nlohmann::ordered_json;

std::pair<int, std::string> error_of(const ordered_json& body) {
  try {
    responses_request(body);
  } catch (const ApiError& e) {
    return {e.status, e.param};
  }
  return {0, ""};
}

// Output items without their random ids.
json without_ids(json items) {
  for (json& i : items) i.erase("id");
  return items;
}

TEST(ResponsesApi, GathersItemsIntoChatMessages) {
  const ordered_json body = ordered_json::parse(R"({
    "model": "m", "instructions": "Be brief.", "max_output_tokens": 50, "temperature": 0.3,
    "seed": 4, "reasoning": {"effort": "minimal"}, "parallel_tool_calls": false,
    "input": [
      {"role": "user", "content": [{"type": "input_text", "text": "Weather in "},
                                   {"type": "input_text", "text": "Oslo?"}]},
      {"type": "reasoning", "id": "rs_1", "summary": [],
       "content": [{"type": "reasoning_text", "text": "Ask the tool."}]},
      {"type": "message", "role": "assistant", "id": "msg_1",
       "content": [{"type": "output_text", "text": "Looking.", "annotations": []}]},
      {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
       "arguments": "{\"city\":\"Oslo\"}"},
      {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "get_time",
       "arguments": "{}"},
      {"type": "function_call_output", "call_id": "call_1", "output": "-3 C"},
      {"type": "function_call_output", "call_id": "call_2", "output": "noon"},
      {"role": "developer", "content": "Answer in one line."}],
    "tools": [{"type": "function", "name": "get_weather", "description": "A city's weather",
               "parameters": {"type": "object"}, "strict": false}],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"},
                        "strict": true}}
  })");
  const ResponsesRequest r = responses_request(body);
  const ordered_json expected = ordered_json::parse(R"({
    "model": "m", "stream": false, "max_tokens": 50, "temperature": 0.3, "seed": 4,
    "chat_template_kwargs": {"enable_thinking": false},
    "response_format": {"type": "json_schema",
                        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
    "tools": [{"type": "function", "function": {"name": "get_weather",
               "description": "A city's weather", "parameters": {"type": "object"},
               "strict": false}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": false,
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather in Oslo?"},
      {"role": "assistant", "content": "Looking.", "reasoning_content": "Ask the tool.",
       "tool_calls": [
         {"id": "call_1", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
         {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "-3 C"},
      {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
      {"role": "system", "content": "Answer in one line."}]
  })");
  EXPECT_EQ(json(r.openai), json(expected)) << r.openai.dump(1);
  EXPECT_EQ(r.echo["instructions"], "Be brief.");
  EXPECT_EQ(r.echo["max_output_tokens"], 50);
  EXPECT_EQ(r.echo["reasoning"]["effort"], "minimal");
  EXPECT_EQ(r.echo["tool_choice"], json::parse(R"({"type": "function", "name": "get_weather"})"));

  // A string is one user message; an assistant's text after its calls is a new turn.
  const ResponsesRequest s = responses_request(ordered_json::parse(R"({"input": "Hi"})"));
  EXPECT_EQ(json(s.openai["messages"]), json::parse(R"([{"role": "user", "content": "Hi"}])"));
  const ResponsesRequest t = responses_request(ordered_json::parse(R"({"input": [
      {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
      {"role": "assistant", "content": "Done."}]})"));
  ASSERT_EQ(t.openai["messages"].size(), 2u);
  EXPECT_EQ(t.openai["messages"][1]["content"], "Done.");
  EXPECT_FALSE(t.openai["messages"][1].contains("tool_calls"));
}

TEST(ResponsesApi, ErrorsNameTheResponsesField) {
  const ordered_json ok = ordered_json::parse(R"({"input": "Hi"})");
  auto with = [&](const char* key, const char* value) {
    ordered_json b = ok;
    b[key] = ordered_json::parse(value);
    return error_of(b);
  };
  EXPECT_EQ(error_of(ok).first, 0);
  EXPECT_EQ(error_of(ordered_json::object()), std::make_pair(400, std::string("input")));
  EXPECT_EQ(with("input", "[]"), std::make_pair(400, std::string("input")));
  EXPECT_EQ(with("input", "3"), std::make_pair(400, std::string("input")));
  EXPECT_EQ(with("previous_response_id", R"("resp_1")"),
            std::make_pair(400, std::string("previous_response_id")));
  EXPECT_EQ(with("background", "true"), std::make_pair(400, std::string("background")));
  EXPECT_EQ(with("max_output_tokens", "0"), std::make_pair(400, std::string("max_output_tokens")));
  EXPECT_EQ(with("input", R"([{"role": "user", "content": [{"type": "input_image",
                             "image_url": "data:"}]}])"),
            std::make_pair(400, std::string("input[0].content[0]")));
  EXPECT_EQ(with("input", R"([{"type": "item_reference", "id": "msg_1"}])"),
            std::make_pair(400, std::string("input[0]")));
  EXPECT_EQ(with("input", R"([{"type": "function_call_output", "output": "x"}])"),
            std::make_pair(400, std::string("input[0].call_id")));
  EXPECT_EQ(with("input", R"([{"role": "tool", "content": "x"}])"),
            std::make_pair(400, std::string("input[0].role")));
  EXPECT_EQ(with("tools", R"([{"type": "web_search"}])"),
            std::make_pair(400, std::string("tools[0].type")));
  EXPECT_EQ(with("tool_choice", R"({"type": "file_search"})"),
            std::make_pair(400, std::string("tool_choice.type")));
  EXPECT_EQ(with("text", R"({"format": {"type": "xml"}})"),
            std::make_pair(400, std::string("text.format.type")));
  EXPECT_EQ(with("reasoning", R"({"effort": "max"})"),
            std::make_pair(400, std::string("reasoning.effort")));
}

TEST(ResponsesApi, OutputItemsAndStatus) {
  JobStats s;
  s.prompt_tokens = 30;
  s.cached_tokens = 20;
  s.completion_tokens = 7;
  const ToolCallOut call{"call_a", "f", R"({"x":1})"};
  const json out = response_output("hmm", "Sure.", {call});
  EXPECT_EQ(without_ids(out), json::parse(R"([
      {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "hmm"}]},
      {"type": "message", "status": "completed", "role": "assistant",
       "content": [{"type": "output_text", "text": "Sure.", "annotations": [], "logprobs": []}]},
      {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{\"x\":1}",
       "status": "completed"}])"));
  const json head = response_head("resp_1", "m", {{"instructions", nullptr}});
  const json done = response_object(head, FinishReason::kStop, out, s);
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["incomplete_details"], nullptr);
  EXPECT_EQ(done["usage"], json::parse(R"({"input_tokens": 30,
      "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 7,
      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 37})"));
  const json cut = response_object(head, FinishReason::kLength, response_output("", "Su", {}), s);
  EXPECT_EQ(cut["status"], "incomplete");
  EXPECT_EQ(cut["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(cut["output"][0]["status"], "incomplete");
  // Nothing at all: one empty message.
  EXPECT_EQ(without_ids(response_output("", "", {}))[0]["content"][0]["text"], "");
}

TEST(ResponsesApi, StreamEventsBuildTheWholeResponse) {
  const json head = response_head("resp_1", "m", {{"instructions", nullptr}});
  ResponseEvents ev(head);
  std::string text = ev.start(10);
  text += ev.push("Let me", "", {});
  text += ev.push(" think.", "Hel", {});
  text += ev.push("", "lo", {ToolCallOut{"call_1", "f", R"({"a":[1]})"}});
  JobStats s;
  s.prompt_tokens = 10;
  s.completion_tokens = 9;
  text += ev.finish(FinishReason::kStop, s);
  const auto events = named_events(text);
  std::vector<std::string> names;
  for (size_t i = 0; i < events.size(); ++i) {
    names.push_back(events[i].name);
    EXPECT_EQ(events[i].data["type"], events[i].name);
    EXPECT_EQ(events[i].data["sequence_number"], i);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"response.created",
                                             "response.in_progress",
                                             "response.output_item.added",
                                             "response.content_part.added",
                                             "response.reasoning_text.delta",
                                             "response.reasoning_text.delta",
                                             "response.reasoning_text.done",
                                             "response.content_part.done",
                                             "response.output_item.done",
                                             "response.output_item.added",
                                             "response.content_part.added",
                                             "response.output_text.delta",
                                             "response.output_text.delta",
                                             "response.output_text.done",
                                             "response.content_part.done",
                                             "response.output_item.done",
                                             "response.output_item.added",
                                             "response.function_call_arguments.delta",
                                             "response.function_call_arguments.done",
                                             "response.output_item.done",
                                             "response.completed"}));
  EXPECT_EQ(events[0].data["response"]["status"], "in_progress");
  EXPECT_EQ(events[9].data["output_index"], 1);
  EXPECT_EQ(events[13].data["text"], "Hello");
  EXPECT_EQ(events[16].data["item"]["arguments"], "");
  EXPECT_EQ(events[17].data["delta"], R"({"a":[1]})");
  const json final = events.back().data["response"];
  EXPECT_EQ(without_ids(final["output"]),
            without_ids(response_output("Let me think.", "Hello",
                                        {ToolCallOut{"call_1", "f", R"({"a":[1]})"}})));
  EXPECT_EQ(final["status"], "completed");
  EXPECT_EQ(final["usage"]["output_tokens"], 9);
  // Each item's id is the one its events named.
  EXPECT_EQ(final["output"][1]["id"], events[11].data["item_id"]);

  ResponseEvents cut(head);
  const auto ended = named_events(cut.finish(FinishReason::kLength, s));
  EXPECT_EQ(ended.back().name, "response.incomplete");
  EXPECT_EQ(ended.back().data["response"]["output"][0]["status"], "incomplete");
  EXPECT_EQ(named_events(cut.error(503, "busy"))[0].data["response"]["status"], "failed");
}

}  // namespace responses_api_test
}  // namespace
}  // namespace xtile::server
