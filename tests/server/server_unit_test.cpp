// src/server's pieces on their own: stop strings and UTF-8 in the text stream, the <think>
// splitter, request parsing and its errors, slot choice, the job channel and metrics text.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "server/api_error.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/slots.h"
#include "server/text_stream.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {
namespace {
namespace server_unit_test {  // unity batches: CMakeLists.txt

using nlohmann::json;

TEST(PartialStop, LongestSuffixThatStartsAStop) {
  EXPECT_EQ(partial_stop_suffix("hello wo", {"world"}), 2u);
  EXPECT_EQ(partial_stop_suffix("hello w", {"world", "o wo"}), 3u);
  EXPECT_EQ(partial_stop_suffix("hello", {"world"}), 0u);
  EXPECT_EQ(partial_stop_suffix("abc", {}), 0u);
  // Only proper prefixes count (the caller has already looked for whole stops).
  EXPECT_EQ(partial_stop_suffix("xyz", {"xyz"}), 0u);
  EXPECT_EQ(partial_stop_suffix("xyzxy", {"xyz"}), 2u);
}

struct Split {
  std::string reasoning, content;
};

Split split(const std::vector<std::string>& pieces, bool in_reasoning = false) {
  ReasoningSplitter s(in_reasoning);
  Split out;
  for (const std::string& p : pieces) s.push(p, &out.reasoning, &out.content);
  s.finish(&out.reasoning, &out.content);
  return out;
}

TEST(ReasoningSplitter, LeadingThinkBlockBecomesReasoning) {
  const Split a = split({"<think>\nI should greet.\n</think>\n\nHello!"});
  EXPECT_EQ(a.reasoning, "I should greet.");
  EXPECT_EQ(a.content, "Hello!");
  // The same text cut anywhere gives the same result.
  const std::string text = "<think>\nI should greet.\n</think>\n\nHello!";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    const Split b = split({text.substr(0, cut), text.substr(cut)});
    EXPECT_EQ(b.reasoning, a.reasoning) << cut;
    EXPECT_EQ(b.content, a.content) << cut;
  }
  std::vector<std::string> chars;
  for (char c : text) chars.emplace_back(1, c);
  const Split c = split(chars);
  EXPECT_EQ(c.reasoning, a.reasoning);
  EXPECT_EQ(c.content, a.content);
}

TEST(ReasoningSplitter, TextWithoutThinkBlockIsContent) {
  EXPECT_EQ(split({"Hello <think> there"}).content, "Hello <think> there");
  EXPECT_EQ(split({"  <thin", "king>"}).content, "  <thinking>");
  EXPECT_EQ(split({"\n"}).content, "\n");
  EXPECT_EQ(split({"<thi"}).content, "<thi");  // the end decides: not a tag
}

TEST(ReasoningSplitter, UnclosedBlockStaysReasoningAndPromptCanOpenIt) {
  const Split a = split({"<think>still thinking when the tokens ran out "});
  EXPECT_EQ(a.reasoning, "still thinking when the tokens ran out");
  EXPECT_EQ(a.content, "");
  const Split b = split({"plan\n</think>\n\nanswer"}, /*in_reasoning=*/true);
  EXPECT_EQ(b.reasoning, "plan");
  EXPECT_EQ(b.content, "answer");
}

class TextStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = xtile::test::fixture_path("models/stories260K.gguf");
    if (path.empty()) GTEST_SKIP() << "../shared/fixtures/models/stories260K.gguf is absent";
    tok_ = Tokenizer::from_gguf(gguf::File::open(path));
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TextStreamTest, StopStringIsHeldBackThenCut) {
  const std::vector<int32_t> ids = tok_->encode("the cat sat on the mat", false, false);
  TextStream ts(*tok_, {"on the", ""}, /*at_sequence_start=*/true);
  bool stopped = false;
  for (int32_t id : ids) {
    stopped = ts.push(id);
    // Released text never contains a prefix of the stop string at its end.
    const std::string released = ts.text().substr(0, ts.released());
    EXPECT_EQ(released.find("on the"), std::string::npos);
    if (stopped) break;
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(ts.text(), "the cat sat ");
  EXPECT_EQ(ts.released(), ts.text().size());
  EXPECT_EQ(ts.stop_word(), "on the");
}

// Two stop strings complete by the same token: the one that starts first in the text ended it.
TEST_F(TextStreamTest, StopWordIsTheEarliestInTheText) {
  const std::vector<int32_t> ids = tok_->encode("the cat sat on the mat", false, false);
  TextStream ts(*tok_, {"mat", "on the mat", "zebra"}, /*at_sequence_start=*/true);
  bool stopped = false;
  for (int32_t id : ids)
    if ((stopped = ts.push(id))) break;
  EXPECT_TRUE(stopped);
  EXPECT_EQ(ts.stop_word(), "on the mat");
  EXPECT_EQ(ts.text(), "the cat sat ");
}

TEST_F(TextStreamTest, WithoutStopEverythingIsReleasedAndDecodes) {
  const std::string text = "Lily and Tom played with a big ball.";
  const std::vector<int32_t> ids = tok_->encode(text, false, false);
  TextStream ts(*tok_, {"zebra"}, true);
  for (int32_t id : ids) EXPECT_FALSE(ts.push(id));
  ts.finish();
  EXPECT_EQ(ts.text(), text);
  EXPECT_EQ(ts.released(), text.size());
}

TEST(ParseRequest, ChatFieldsAndDefaults) {
  RequestDefaults d;
  d.sampler.temperature = 0.5f;
  const json body = json::parse(R"({
    "model": "m", "messages": [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 7, "top_k": 3,
    "seed": 42, "stop": ["a", "b"], "logprobs": true, "top_logprobs": 2,
    "chat_template_kwargs": {"enable_thinking": false}, "frequency_penalty": null})");
  const ParsedRequest r = parse_request(body, true, d);
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].content, "Hi");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.gen.max_tokens, 7);
  EXPECT_EQ(r.gen.sampler.top_k, 3);
  EXPECT_EQ(r.gen.sampler.temperature, 0.5f);  // the server's default
  EXPECT_EQ(r.gen.sampler.seed, 42u);
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.gen.logprobs);
  EXPECT_EQ(r.gen.n_probs, 2);
  EXPECT_FALSE(r.enable_thinking);
}

TEST(ParseRequest, CompletionPromptForms) {
  const RequestDefaults d;
  auto prompts = [&](const char* body) {
    return parse_request(json::parse(body), false, d).prompts;
  };
  ASSERT_EQ(prompts(R"({"prompt": "x"})").size(), 1u);
  EXPECT_EQ(*prompts(R"({"prompt": "x"})")[0].text, "x");
  EXPECT_EQ(*prompts(R"({"prompt": ["y"]})")[0].text, "y");
  EXPECT_EQ(prompts(R"({"prompt": [1, 2, 3]})")[0].ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(prompts(R"({"prompt": [[4, 5]]})")[0].ids, (std::vector<int32_t>{4, 5}));
  // Several prompts, texts and token ids mixed.
  const auto several = prompts(R"({"prompt": ["a", [7, 8], "b"]})");
  ASSERT_EQ(several.size(), 3u);
  EXPECT_EQ(*several[0].text, "a");
  EXPECT_FALSE(several[1].text);
  EXPECT_EQ(several[1].ids, (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(*several[2].text, "b");
  const ParsedRequest r = parse_request(json::parse(R"({"prompt": "x", "logprobs": 3})"), false, d);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3);
}

// OpenAI's object of token ids, llama-server's array of [id or text, bias or false]; the other
// samplers of llama-server pass at their neutral values.
TEST(ParseRequest, LogitBiasForms) {
  const RequestDefaults d;
  const ParsedRequest a = parse_request(
      json::parse(R"({"prompt": "x", "logit_bias": {"15": -100, "7": 2.5, "hello": 1}})"), false,
      d);
  EXPECT_EQ(a.logit_bias_ids, (std::vector<std::pair<int64_t, float>>{{15, -100.0f}, {7, 2.5f}}));
  EXPECT_EQ(a.logit_bias_texts, (std::vector<std::pair<std::string, float>>{{"hello", 1.0f}}));
  const ParsedRequest b = parse_request(
      json::parse(R"({"prompt": "x", "logit_bias": [[3, false], ["Hi", -2], [4, 1]]})"), false, d);
  ASSERT_EQ(b.logit_bias_ids.size(), 2u);
  EXPECT_EQ(b.logit_bias_ids[0].first, 3);
  EXPECT_EQ(b.logit_bias_ids[0].second, -INFINITY);
  EXPECT_EQ(b.logit_bias_ids[1], (std::pair<int64_t, float>{4, 1.0f}));
  EXPECT_EQ(b.logit_bias_texts, (std::vector<std::pair<std::string, float>>{{"Hi", -2.0f}}));
  EXPECT_NO_THROW(parse_request(json::parse(R"({"prompt": "x", "mirostat": 0, "typical_p": 1,
      "dry_multiplier": 0, "xtc_probability": 0, "top_n_sigma": -1, "dynatemp_range": 0})"),
                                false, d));
}

// tool_choice: what the call grammar is given. auto: calls where the model opens them; required:
// any of the tools; a named function: that one; none: no tools at all. A schema without a type
// is an object's; one the grammar cannot keep is any object, unless the function is strict.
TEST(ParseRequest, ToolChoiceBuildsTheCallRules) {
  const RequestDefaults d;
  const auto parse = [&](const std::string& extra) {
    return parse_request(json::parse(R"({"messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "b", "parameters":
                    {"properties": {"q": {"type": "string"}}}}},
                  {"type": "function", "function": {"name": "a"}},
                  {"type": "function", "function": {"name": "c", "parameters":
                    {"type": "object", "properties": {"d": {"format": "iri"}}}}}])" +
                                     extra + "}"),
                         true, d);
  };
  ParsedRequest r = parse("");
  ASSERT_TRUE(r.tool_rules);
  EXPECT_FALSE(r.tool_rules->forced);
  EXPECT_EQ(r.tool_rules->keys, (std::vector<std::string>{"a\"", "b\"", "c\""}));
  EXPECT_EQ(r.tool_rules->tools[0].parameters, nullptr);  // no parameters: any object
  ASSERT_NE(r.tool_rules->tools[1].parameters, nullptr);
  EXPECT_EQ(
      r.tool_rules->tools[1].parameters->node(r.tool_rules->tools[1].parameters->root()).types,
      kTypeObject);
  EXPECT_EQ(r.tool_rules->tools[2].parameters, nullptr);  // "format": not kept, not strict
  r = parse(R"(, "tool_choice": "required", "parallel_tool_calls": false)");
  EXPECT_TRUE(r.tool_rules->forced);
  EXPECT_FALSE(r.tool_rules->parallel);
  EXPECT_EQ(r.tool_rules->keys.size(), 3u);
  r = parse(R"(, "tool_choice": {"type": "function", "function": {"name": "b"}})");
  EXPECT_TRUE(r.tool_rules->forced);
  EXPECT_TRUE(r.tool_rules->parallel);
  EXPECT_EQ(r.tool_rules->keys, (std::vector<std::string>{"b\""}));
  EXPECT_EQ(r.tools.size(), 3u);  // every tool is still in the prompt
  r = parse(R"(, "tool_choice": "none")");
  EXPECT_FALSE(r.tool_rules);
  EXPECT_TRUE(r.tools.empty());
  const std::pair<std::string, std::string> refused[] = {
      {R"(, "tool_choice": "always")", "tool_choice"},
      {R"(, "tool_choice": {"type": "function", "function": {"name": "z"}})",
       "tool_choice.function.name"},
      {R"(, "tool_choice": {"type": "custom", "function": {"name": "a"}})", "tool_choice.type"},
  };
  for (const auto& [extra, param] : refused) {
    try {
      parse(extra);
      ADD_FAILURE() << "accepted " << extra;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.param, param) << extra << ": " << e.what();
    }
  }
}

// JSON mode switches a template's thinking off unless the client asks for it; then the reply
// thinks first and its think block is split out as reasoning, as without JSON mode.
TEST(ParseRequest, JsonModeThinksOnlyWhenAsked) {
  const RequestDefaults d;
  const std::string head = R"({"messages": [{"role": "user", "content": "x"}],
                               "response_format": {"type": "json_object"})";
  ParsedRequest r = parse_request(json::parse(head + "}"), true, d);
  EXPECT_TRUE(r.gen.json_object);
  EXPECT_FALSE(r.enable_thinking);
  EXPECT_FALSE(r.reasoning);
  r = parse_request(json::parse(head + R"(, "chat_template_kwargs": {"enable_thinking": true}})"),
                    true, d);
  EXPECT_TRUE(r.enable_thinking);
  EXPECT_TRUE(r.reasoning);
}

// llama-server's grammar_lazy: word and token triggers (llama.cpp's numbers or names); what it
// cannot keep is a 400 naming grammar_triggers. Tokens are resolved against the vocabulary by
// the handler (resolve_grammar_triggers); without grammar_lazy the triggers are not read.
TEST(ParseRequest, LazyGrammarTakesWordAndTokenTriggers) {
  const RequestDefaults d;
  const std::string head = R"({"prompt": "x", "grammar": "root ::= \"<a>\" [0-9]+")";
  ParsedRequest r =
      parse_request(json::parse(head + R"(, "grammar_lazy": true, "grammar_triggers": [
          {"type": 1, "value": "<a>"}, {"type": "word", "value": "<b>"}, {"type": 0, "token": 42,
          "value": "x"}]})"),
                    false, d);
  EXPECT_EQ(r.trigger_words, (std::vector<std::string>{"<a>", "<b>"}));
  EXPECT_EQ(r.trigger_tokens, (std::vector<int64_t>{42}));
  r = parse_request(json::parse(head + R"(, "grammar_triggers": [{"type": 2, "value": "x"}]})"),
                    false, d);
  EXPECT_TRUE(r.trigger_words.empty());  // not lazy: the grammar holds from the start
  const std::string refused[] = {
      R"(, "grammar_lazy": true})",
      R"(, "grammar_lazy": true, "grammar_triggers": []})",
      R"(, "grammar_lazy": true, "grammar_triggers": [{"type": 2, "value": "<a>.*"}]})",
      R"(, "grammar_lazy": true, "grammar_triggers": [{"type": "pattern_full", "value": "a"}]})",
      R"(, "grammar_lazy": true, "grammar_triggers": [{"type": 1, "value": ""}]})",
      R"(, "grammar_lazy": true, "grammar_triggers": [{"type": 0}]})",
      R"(, "grammar_lazy": true, "grammar_triggers": [{"type": 7, "value": "a"}]})",
      R"(, "grammar_lazy": true, "grammar_triggers": ["<a>"]})",
  };
  for (const std::string& extra : refused) {
    try {
      parse_request(json::parse(head + extra), false, d);
      ADD_FAILURE() << "accepted " << extra;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.param, "grammar_triggers") << extra << ": " << e.what();
    }
  }
}

// llama-server's grammar: compiled when the request is read; an empty one is none; thinking
// only when asked, as in JSON mode.
TEST(ParseRequest, GrammarIsCompiledAndThinksOnlyWhenAsked) {
  const RequestDefaults d;
  ParsedRequest r = parse_request(
      json::parse(R"({"prompt": "x", "grammar": "root ::= [a-z]+ \"\\n\""})"), false, d);
  ASSERT_TRUE(r.gen.grammar);
  EXPECT_EQ(r.gen.grammar->rule_count(), 2u);  // root and its repetition
  r = parse_request(json::parse(R"({"prompt": "x", "grammar": ""})"), false, d);
  EXPECT_FALSE(r.gen.grammar);
  const std::string chat = R"({"messages": [{"role": "user", "content": "x"}],
                               "grammar": "root ::= \"yes\" | \"no\"")";
  r = parse_request(json::parse(chat + "}"), true, d);
  ASSERT_TRUE(r.gen.grammar);
  EXPECT_FALSE(r.enable_thinking);
  EXPECT_FALSE(r.reasoning);
  r = parse_request(json::parse(chat + R"(, "chat_template_kwargs": {"enable_thinking": true}})"),
                    true, d);
  EXPECT_TRUE(r.enable_thinking);
}

// Each bad body is a 400 naming the field.
TEST(ParseRequest, WrongFieldsAre400NamingThem) {
  const RequestDefaults d;
  const std::pair<const char*, const char*> chat_cases[] = {
      {R"({})", "messages"},
      {R"({"messages": "hi"})", "messages"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": [{"content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "robot", "content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": -1})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_p": 1.5})", "top_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": -2})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": 3})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": ["a", 1]})", "stop[]"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", "stream"},
      {R"({"messages": [{"role": "user", "content": "x"}], "seed": "s"})", "seed"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 0})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 129})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 1.5})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 2, "n_cmpl": 3})", "n_cmpl"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})",
       "tools[0].function"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})",
       "tool_choice"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
          "function": {"name": "f", "strict": true, "parameters": {"type": "object",
          "properties": {"a": {"type": "string", "pattern": "\\ba"}}}}}]})",
       "tools[0].function.parameters"},
      {R"({"messages": [{"role": "user", "content": "x"}], "repeat_penalty": 0})",
       "repeat_penalty"},
      {R"({"messages": [{"role": "user", "content": "x"}], "model": 3})", "model"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": 5})", "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": "x"}})",
       "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": true}})",
       "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": 1e40}})",
       "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"99999999999": 1}})",
       "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": [[5]]})", "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": [[-5, 1]]})",
       "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "mirostat": 3})", "mirostat"},
      {R"({"messages": [{"role": "user", "content": "x"}], "grammar": 5})", "grammar"},
      {R"({"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= x"})", "grammar"},
      {R"({"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= root \"a\""})",
       "grammar"},
      {R"({"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= \"a\"",
          "response_format": {"type": "json_object"}})",
       "grammar"},
      {R"({"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= \"a\"",
          "tools": [{"type": "function", "function": {"name": "f"}}]})",
       "grammar"},
      {R"({"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= \"a\"",
          "grammar_lazy": true})",
       "grammar_triggers"},
      {R"({"messages": [{"role": "user", "content": "x"}], "typical_p": 1.5})", "typical_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "dry_multiplier": -0.8})",
       "dry_multiplier"},
      {R"({"messages": [{"role": "user", "content": "x"}], "xtc_probability": "a"})",
       "xtc_probability"},
  };
  for (const auto& [body, param] : chat_cases) {
    try {
      parse_request(json::parse(body), true, d);
      ADD_FAILURE() << "accepted " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_EQ(e.param, param) << body << ": " << e.what();
      EXPECT_EQ(e.body()["error"]["type"], "invalid_request_error");
    }
  }
  for (const char* body :
       {R"({"prompt": 5})", R"({"prompt": [1, -1]})", R"({"prompt": ["a", 5]})",
        R"({"prompt": ["a", []]})", R"({"prompt": "x", "echo": 1})", R"({"prompt": []})"}) {
    EXPECT_THROW(parse_request(json::parse(body), false, d), ApiError) << body;
  }
}

TEST(ParseBody, MalformedJsonIs400) {
  try {
    parse_body("{\"messages\": [");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "invalid_json");
    const json b = e.body();
    EXPECT_TRUE(b["error"]["message"].is_string());
    EXPECT_EQ(b["error"]["type"], "invalid_request_error");
  }
  EXPECT_THROW(parse_body("[1, 2]"), ApiError);
  EXPECT_THROW(parse_body(""), ApiError);
}

TEST(PickSlot, LongestCommonPrefixThenLeastRecentlyUsed) {
  std::vector<Slot> slots(3);
  for (int i = 0; i < 3; ++i) slots[static_cast<size_t>(i)].id = i;
  slots[0].cache = {1, 2, 3};
  slots[0].last_used = 5;
  slots[1].cache = {1, 2, 9};
  slots[1].last_used = 1;
  slots[2].cache = {};
  slots[2].last_used = 3;
  const std::vector<int32_t> p = {1, 2, 3, 4};
  EXPECT_EQ(pick_slot(slots, p), 0);
  EXPECT_EQ(pick_slot(slots, std::vector<int32_t>{7}), 1);  // no prefix: least recently used
}

TEST_F(TextStreamTest, PickSlotSkipsBusySlots) {
  std::vector<Slot> slots(2);
  slots[0].id = 0;
  slots[0].cache = {1, 2, 3};
  slots[1].id = 1;
  auto job = std::make_shared<Job>(std::vector<int32_t>{1, 2, 3}, GenerationParams{});
  slots[0].work = std::make_unique<Work>(job, *tok_);
  EXPECT_EQ(pick_slot(slots, std::vector<int32_t>{1, 2, 3}), 1);
  slots[1].work = std::make_unique<Work>(job, *tok_);
  EXPECT_EQ(pick_slot(slots, std::vector<int32_t>{1, 2, 3}), -1);
}

TEST(JobChannel, ReaderGetsEverythingOnceAndTheEnd) {
  Job job({1}, GenerationParams{});
  Job::Cursor cursor;
  Job::Update u;
  EXPECT_FALSE(job.wait(&cursor, &u, std::chrono::milliseconds(1)));
  std::vector<TokenOut> t = {TokenOut{5, -0.5f, {}}, TokenOut{6, -1.0f, {}}};
  job.publish("ab", &t);
  EXPECT_TRUE(t.empty());
  std::vector<TokenOut> t2 = {TokenOut{7, -2.0f, {}}};
  job.publish("c", &t2);
  ASSERT_TRUE(job.wait(&cursor, &u, std::chrono::milliseconds(1)));
  EXPECT_EQ(u.text, "abc");
  EXPECT_EQ(u.tokens.size(), 3u);
  EXPECT_FALSE(u.done);
  EXPECT_FALSE(job.wait(&cursor, &u, std::chrono::milliseconds(1)));
  JobStats s;
  s.completion_tokens = 3;
  job.finish(FinishReason::kStop, s);
  Job::Update end;
  ASSERT_TRUE(job.wait(&cursor, &end, std::chrono::milliseconds(1)));
  EXPECT_TRUE(end.done);
  EXPECT_TRUE(end.text.empty());
  EXPECT_EQ(job.finish_reason(), FinishReason::kStop);
  EXPECT_EQ(job.stats().completion_tokens, 3);
}

TEST(Metrics, PrometheusTextNamesEveryFigure) {
  Metrics m;
  m.prompt_tokens_total = 12;
  m.kv_used = 30;
  m.kv_budget = 120;
  const std::string text = m.render();
  for (const char* line :
       {"# TYPE xtile:prompt_tokens_total counter\nxtile:prompt_tokens_total 12\n",
        "xtile:kv_cache_usage_ratio 0.25\n", "xtile:requests_deferred 0\n",
        "xtile:preemptions_total 0\n", "xtile:tokens_predicted_total 0\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

}  // namespace server_unit_test
}  // namespace
}  // namespace xtile::server
