// Function calling on its own: a tool definition serialized as Qwen's and Llama's templates'
// tojson write it, the splitters (<tool_call> blocks, Llama's whole-answer call) over whole and
// byte-by-byte text, the request's tools and tool messages, and the response's tool_calls.
#include "server/tool_calls.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "server/api_error.h"
#include "server/connection.h"
#include "server/job.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/sse.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {
namespace {
namespace tool_calls_test {  // unity batches: CMakeLists.txt

using nlohmann::json;
using nlohmann::ordered_json;

TEST(PythonJson, SeparatorsKeyOrderAndNonAscii) {
  // Expected: Python's json.dumps(x, ensure_ascii=False) of the same value, keys as sent.
  const ordered_json v = ordered_json::parse(
      R"({"type": "function", "function": {"name": "f", "description": "°C \"q\"\n",
          "parameters": {"type": "object", "required": ["a", "b"], "n": [1, -2.5, true, null],
          "e": {}, "l": []}}})");
  EXPECT_EQ(python_json(v),
            R"({"type": "function", "function": {"name": "f", "description": "°C \"q\"\n", )"
            R"("parameters": {"type": "object", "required": ["a", "b"], "n": [1, -2.5, true, )"
            R"(null], "e": {}, "l": []}}})");
}

TEST(PythonJson, IndentedAsLlamasTemplateWritesTools) {
  // Expected: Python's json.dumps(x, ensure_ascii=False, indent=4): one item per line, ","
  // without a space, empty containers on one line.
  const ordered_json v = ordered_json::parse(
      R"({"type": "function", "function": {"name": "f", "description": "°C \"q\"\n",
          "parameters": {"type": "object", "required": ["a", "b"], "n": [1, -2.5, true, null],
          "e": {}, "l": [], "o": {"x": [[]]}}}})");
  EXPECT_EQ(python_json(v, 4),
            "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"f\",\n"
            "        \"description\": \"°C \\\"q\\\"\\n\",\n        \"parameters\": {\n"
            "            \"type\": \"object\",\n            \"required\": [\n"
            "                \"a\",\n                \"b\"\n            ],\n"
            "            \"n\": [\n                1,\n                -2.5,\n"
            "                true,\n                null\n            ],\n"
            "            \"e\": {},\n            \"l\": [],\n            \"o\": {\n"
            "                \"x\": [\n                    []\n                ]\n"
            "            }\n        }\n    }\n}");
  EXPECT_EQ(python_json(ordered_json::parse("[]"), 4), "[]");
  EXPECT_EQ(python_json(ordered_json::parse("\"x\""), 4), "\"x\"");
}

// The splitter's output for `text` pushed in pieces of `step` bytes.
struct Split {
  std::string content;
  std::vector<ToolCallOut> calls;
};
Split split(const std::string& text, size_t step, ToolCallFormat format = ToolCallFormat::kHermes) {
  ToolCallSplitter s(format);
  Split out;
  for (size_t i = 0; i < text.size(); i += step)
    s.push(text.substr(i, step), &out.content, &out.calls);
  s.finish(&out.content, &out.calls);
  return out;
}

TEST(ToolCallSplitter, CallsComeOutOfTheContentAtAnyPieceSize) {
  const std::string text =
      "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\", \"unit\": \"C\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\"}\n"
      "</tool_call>\n";
  for (size_t step = 1; step <= text.size(); ++step) {
    const Split s = split(text, step);
    EXPECT_EQ(s.content, "Let me look.") << step;
    ASSERT_EQ(s.calls.size(), 2u) << step;
    EXPECT_EQ(s.calls[0].name, "get_weather");
    EXPECT_EQ(s.calls[0].arguments, R"({"city":"Paris","unit":"C"})");  // the model's key order
    EXPECT_EQ(s.calls[1].name, "now");
    EXPECT_EQ(s.calls[1].arguments, "{}");
    EXPECT_TRUE(s.calls[0].id.starts_with("call_"));
    EXPECT_NE(s.calls[0].id, s.calls[1].id);
  }
}

TEST(ToolCallSplitter, TextWithoutCallsIsUntouched) {
  for (const std::string text : {"Plain answer.\n\n", "a < b and <tool", "x <tool_cal", ""}) {
    for (size_t step = 1; step <= std::max<size_t>(1, text.size()); ++step) {
      const Split s = split(text, step);
      EXPECT_EQ(s.content, text) << step;
      EXPECT_TRUE(s.calls.empty());
    }
  }
}

TEST(ToolCallSplitter, WhatIsNotACallStaysInTheContent) {
  // Not JSON, JSON without a name, and a block the text ended inside: kept as written.
  const std::string bad = "<tool_call>\n{not json}\n</tool_call>";
  const std::string nameless = "<tool_call>{\"arguments\": {}}</tool_call>";
  const std::string open = "<tool_call>\n{\"name\": \"f\", \"argu";
  for (const std::string& text : {bad, nameless, open}) {
    for (size_t step : {1u, 3u, 1000u}) {
      const Split s = split(text, step);
      EXPECT_EQ(s.content, text) << step;
      EXPECT_TRUE(s.calls.empty());
    }
  }
  // A good call after a bad one still comes out.
  const Split s = split(bad +
                            "\n<tool_call>{\"name\": \"g\", \"arguments\": \"{\\\"x\\\": 1}\"}"
                            "</tool_call>",
                        2);
  EXPECT_EQ(s.content, bad);
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0].arguments, R"({"x": 1})");  // a string is already the arguments' text
}

TEST(ToolCallSplitter, ContentBeforeACallIsReleasedBeforeItCompletes) {
  ToolCallSplitter s;
  std::string content;
  std::vector<ToolCallOut> calls;
  s.push("Checking the weather", &content, &calls);
  EXPECT_EQ(content, "Checking the weather");
  s.push(" now.\n<tool_", &content, &calls);  // the space waits: a call may follow
  EXPECT_EQ(content, "Checking the weather now.");
  s.push("call>{\"name\": \"f\"", &content, &calls);
  EXPECT_TRUE(calls.empty());
  s.push("}</tool_call>", &content, &calls);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(s.called());
  s.finish(&content, &calls);
  EXPECT_EQ(content, "Checking the weather now.");
}

// Llama 3.1's format: the whole answer is the call.
TEST(ToolCallSplitter, LlamasAnswerIsACallWhenItIsOneCallObject) {
  const std::string call = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}";
  for (const std::string& text : {call, "\n " + call + "\n",
                                  std::string("{\"type\": \"function\", \"name\": \"get_weather\", "
                                              "\"arguments\": {\"city\": \"Paris\"}}")}) {
    for (size_t step = 1; step <= text.size(); ++step) {
      const Split s = split(text, step, ToolCallFormat::kLlamaJson);
      EXPECT_EQ(s.content, "") << text << " " << step;
      ASSERT_EQ(s.calls.size(), 1u) << text << " " << step;
      EXPECT_EQ(s.calls[0].name, "get_weather");
      EXPECT_EQ(s.calls[0].arguments, R"({"city":"Paris"})");
      EXPECT_TRUE(s.calls[0].id.starts_with("call_"));
    }
  }
  // Not a call: text, data that has a name, arguments that are not an object, two objects,
  // a call after text, an unfinished one. Each stays the content, as written.
  for (const std::string text :
       {"It is sunny.", "{\"name\": \"Bob\", \"age\": 3}", "{\"name\": \"f\", \"parameters\": 1}",
        "{\"name\": \"Bob\", \"parameters\": {}, \"age\": 3}",
        "{\"type\": \"x\", \"name\": \"f\", \"parameters\": {}}",
        "{\"name\": \"f\", \"parameters\": {}} {\"name\": \"g\", \"parameters\": {}}",
        "Calling: {\"name\": \"f\", \"parameters\": {}}", "{\"name\": \"f\", \"param", "  \n"}) {
    for (size_t step : {1u, 4u, 1000u}) {
      const Split s = split(text, step, ToolCallFormat::kLlamaJson);
      EXPECT_EQ(s.content, text) << step;
      EXPECT_TRUE(s.calls.empty()) << text;
    }
  }
}

TEST(ToolCallSplitter, LlamasTextGoesOutAsItComesAndACallIsHeldWhole) {
  ToolCallSplitter text(ToolCallFormat::kLlamaJson);
  std::string content;
  std::vector<ToolCallOut> calls;
  text.push("\n", &content, &calls);
  EXPECT_EQ(content, "");  // blanks wait: a call may follow
  text.push("Sunny", &content, &calls);
  EXPECT_EQ(content, "\nSunny");
  text.push(" {", &content, &calls);
  EXPECT_EQ(content, "\nSunny {");  // text began: what follows is text
  ToolCallSplitter call(ToolCallFormat::kLlamaJson);
  content.clear();
  call.push("{\"name\": \"f\", ", &content, &calls);
  call.push("\"parameters\": {}}", &content, &calls);
  EXPECT_EQ(content, "");
  EXPECT_TRUE(calls.empty());  // held to the answer's end
  call.finish(&content, &calls);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(call.called());
}

TEST(ParseRequest, ToolsAndToolMessages) {
  const RequestDefaults d;
  const ParsedRequest r = parse_request(ordered_json::parse(R"({
    "messages": [
      {"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": null, "reasoning_content": "Need it.",
       "tool_calls": [{"id": "c1", "type": "function",
                       "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                      {"id": "c2", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"z": 1, "a": 2}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "18 C"}],
    "tools": [{"type": "function", "function": {"name": "get_weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    "tool_choice": "auto", "parallel_tool_calls": true})"),
                                        true, d);
  ASSERT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(python_json(r.tools[0]),  // kept as sent, keys in the client's order
            R"({"type": "function", "function": {"name": "get_weather", "parameters": )"
            R"({"type": "object", "properties": {"city": {"type": "string"}}}}})");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1].content, "");
  EXPECT_EQ(r.messages[1].reasoning_content, "Need it.");
  ASSERT_EQ(r.messages[1].tool_calls.size(), 2u);
  EXPECT_EQ(r.messages[1].tool_calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(r.messages[1].tool_calls[1].arguments, R"({"z": 1, "a": 2})");
  EXPECT_EQ(r.messages[2].role, "tool");
  // tool_choice "none": the definitions are checked, not offered.
  const ParsedRequest none = parse_request(
      ordered_json::parse(R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "none",
                              "tools": [{"type": "function", "function": {"name": "f"}}]})"),
      true, d);
  EXPECT_TRUE(none.tools.empty());
}

TEST(ParseRequest, BadToolFieldsAre400NamingThem) {
  const RequestDefaults d;
  const std::pair<const char*, const char*> cases[] = {
      {R"("tools": {})", "tools"},
      {R"("tools": [5])", "tools[0]"},
      {R"("tools": [{"type": "retrieval"}])", "tools[0].type"},
      {R"("tools": [{"type": "function"}])", "tools[0].function"},
      {R"("tools": [{"type": "function", "function": {"name": ""}}])", "tools[0].function.name"},
      {R"("tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}])",
       "tools[0].function.parameters"},
      {R"("tool_choice": "required")", "tool_choice"},
      {R"("tool_choice": {"type": "function", "function": {"name": "f"}})", "tool_choice"},
      {R"("parallel_tool_calls": "yes")", "parallel_tool_calls"},
  };
  for (const auto& [extra, param] : cases) {
    const std::string body =
        std::string(R"({"messages": [{"role": "user", "content": "x"}], )") + extra + "}";
    try {
      parse_request(ordered_json::parse(body), true, d);
      ADD_FAILURE() << "accepted " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_EQ(e.param, param) << body << ": " << e.what();
    }
  }
  const std::pair<const char*, const char*> messages[] = {
      {R"({"role": "assistant", "tool_calls": 5})", "messages[0].tool_calls"},
      {R"({"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]})",
       "messages[0].tool_calls[0].function.name"},
      {R"({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]})",
       "messages[0].tool_calls[0].function.arguments"},
      {R"({"role": "assistant", "content": "", "reasoning_content": 1})",
       "messages[0].reasoning_content"},
  };
  for (const auto& [message, param] : messages) {
    const std::string body = std::string(R"({"messages": [)") + message + "]}";
    try {
      parse_request(ordered_json::parse(body), true, d);
      ADD_FAILURE() << "accepted " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.param, param) << body << ": " << e.what();
    }
  }
  // Text completions have no tools.
  EXPECT_THROW(parse_request(ordered_json::parse(R"({"prompt": "x", "tools": [{"type": "function",
                                 "function": {"name": "f"}}]})"),
                             false, d),
               ApiError);
}

TEST(ChatResponse, ToolCallsReplaceEmptyContentAndFinishTheTurn) {
  const ResponseHead head{"chatcmpl-x", 1, "m", "fp"};
  const std::vector<ToolCallOut> calls = {{"call_a", "f", R"({"x":1})"}};
  json j = chat_response(head, "", "", FinishReason::kStop, JobStats{}, nullptr, calls);
  const json& choice = j["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_TRUE(choice["message"]["content"].is_null());
  EXPECT_EQ(choice["message"]["tool_calls"], json::parse(R"([{"id": "call_a", "type": "function",
                             "function": {"name": "f", "arguments": "{\"x\":1}"}}])"));
  // Cut by max_tokens: still "length"; text beside the calls stays content.
  j = chat_response(head, "Sure.", "", FinishReason::kLength, JobStats{}, nullptr, calls);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Sure.");
  // Without calls nothing changes.
  j = chat_response(head, "", "", FinishReason::kStop, JobStats{}, nullptr);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "");
  EXPECT_FALSE(j["choices"][0]["message"].contains("tool_calls"));
  // A stream's delta numbers the calls.
  EXPECT_EQ(tool_calls_json(calls, 3)[0]["index"], 3);
}

// The stream of a finished job whose text the test wrote (no model: the scheduler's side of the
// job is driven by hand), as the data: payloads a client reads.
std::vector<std::string> stream_events(const std::vector<std::string>& pieces, FinishReason end) {
  const std::string vocab = xtile::test::fixture_path("tokenizers/vocab-qwen2.gguf");
  const gguf::File file = gguf::File::open(vocab);
  const std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(file);
  auto job = std::make_shared<Job>(std::vector<int32_t>{1}, GenerationParams{});
  for (const std::string& p : pieces) {
    std::vector<TokenOut> none;
    job->publish(p, &none);
  }
  job->finish(end, JobStats{});
  StreamSpec spec;
  spec.tool_format = ToolCallFormat::kHermes;
  spec.head = {"chatcmpl-x", 1, "m", "fp"};
  httplib::Response res;
  stream_job(res, {job}, nullptr, ClientConnection("", 0, "", 0), *tok, spec);
  std::string raw;
  httplib::DataSink sink;
  sink.write = [&](const char* d, size_t n) {
    raw.append(d, n);
    return true;
  };
  sink.done = [] {};
  EXPECT_TRUE(res.content_provider_(0, 0, sink));
  std::vector<std::string> events;
  for (size_t at = 0; (at = raw.find("data: ", at)) != std::string::npos;) {
    const size_t end_of = raw.find("\n\n", at);
    events.push_back(raw.substr(at + 6, end_of - at - 6));
    at = end_of;
  }
  return events;
}

TEST(ToolCallStream, CallsAreDeltasAndTheTurnFinishesWithToolCalls) {
  if (xtile::test::fixture_path("tokenizers/vocab-qwen2.gguf").empty())
    GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-qwen2.gguf is absent";
  const std::vector<std::string> events = stream_events(
      {"<think>\nplan\n</think>\n\nOne moment.\n<tool", "_call>\n{\"name\": \"f\", ",
       "\"arguments\": {\"a\": 1}}\n</tool_call>\n<tool_call>{\"name\": \"g\"}</tool_call>"},
      FinishReason::kStop);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string reasoning, content;
  std::vector<json> calls;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json delta = json::parse(events[i])["choices"][0]["delta"];
    reasoning += delta.value("reasoning_content", "");
    content += delta.value("content", "");
    if (delta.contains("tool_calls"))
      for (const json& c : delta["tool_calls"]) calls.push_back(c);
  }
  EXPECT_EQ(reasoning, "plan");
  EXPECT_EQ(content, "One moment.");
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0]["index"], 0);
  EXPECT_EQ(calls[0]["function"]["name"], "f");
  EXPECT_EQ(calls[0]["function"]["arguments"], R"({"a":1})");
  EXPECT_EQ(calls[1]["index"], 1);
  EXPECT_EQ(calls[1]["function"]["name"], "g");
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "tool_calls");
  // Cut by the token limit inside a call: the partial block is content, the reason "length".
  const std::vector<std::string> cut =
      stream_events({"<tool_call>\n{\"name\": \"f\""}, FinishReason::kLength);
  std::string cut_content;
  for (size_t i = 0; i + 1 < cut.size(); ++i)
    cut_content += json::parse(cut[i])["choices"][0]["delta"].value("content", "");
  EXPECT_EQ(cut_content, "<tool_call>\n{\"name\": \"f\"");
  EXPECT_EQ(json::parse(cut[cut.size() - 2])["choices"][0]["finish_reason"], "length");
}

}  // namespace tool_calls_test
}  // namespace
}  // namespace xtile::server
