// Chat templates: rendered strings per family, detection from the real vocabulary GGUFs and
// from synthetic ones, and the rendered prompt's special tokens surviving tokenization.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/chat_template.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile {
namespace {
namespace chat_template_test {  // unity batches: CMakeLists.txt

TEST(ChatTemplate, ChatML) {
  EXPECT_EQ(apply_chat_template(ChatFamily::kChatML, "You are terse.", "Hi!"),
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatFamily::kChatML, "", "Hi!"),
            "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3Thinking) {
  EXPECT_EQ(apply_chat_template(ChatFamily::kQwen3, "", "2+2?"),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  ChatOptions o;
  o.enable_thinking = false;
  EXPECT_EQ(apply_chat_template(ChatFamily::kQwen3, "", "2+2?", o),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // Plain ChatML ignores the thinking switch.
  EXPECT_EQ(apply_chat_template(ChatFamily::kChatML, "", "2+2?", o),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama3, "", "Hello"),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  ChatOptions o;
  o.bos_text = false;
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama3, " Be brief. ", "Hello\n", o),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama2, "", "Hello"), "<s>[INST] Hello [/INST]");
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama2, "Be brief.", "Hello"),
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST]");
  const std::vector<ChatMessage> turns = {
      {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama2, turns),
            "<s>[INST] Hi [/INST] Hello! </s><s>[INST] Bye [/INST]");
  EXPECT_THROW(apply_chat_template(ChatFamily::kLlama2,
                                   std::vector<ChatMessage>{{"tool", "x"}}),
               Error);
}

TEST(ChatTemplate, MultiTurnChatMLAndNone) {
  const std::vector<ChatMessage> turns = {
      {"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
  ChatOptions o;
  o.add_generation_prompt = false;
  EXPECT_EQ(apply_chat_template(ChatFamily::kChatML, turns, o),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
            "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n");
  EXPECT_EQ(apply_chat_template(ChatFamily::kNone, turns), "S\n\nU1\n\nA1\n\nU2");
  EXPECT_EQ(apply_chat_template(ChatFamily::kNone, "", "just text"), "just text");
}

// Tool calling. The expected texts are what Qwen3's official chat template renders for the same
// conversations (Python's jinja2 with transformers' tojson, run outside the repository).
const char* const kToolsIntro =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n";
const char* const kToolsOutro =
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";
const char* const kWeatherTool =
    "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": "
    "{\"type\": \"object\"}}}";

TEST(ChatTemplate, ToolsOpenTheSystemTurn) {
  ChatOptions o;
  o.tools = {
      "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
      "\"Current weather in a city, °C\", \"parameters\": {\"type\": \"object\", \"properties\": "
      "{\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}"};
  const std::string expected = std::string("<|im_start|>system\nYou are a weather bot.\n\n") +
                               kToolsIntro + o.tools[0] + kToolsOutro +
                               "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
                               "<|im_start|>assistant\n";
  EXPECT_EQ(
      apply_chat_template(ChatFamily::kQwen3, "You are a weather bot.", "Weather in Paris?", o),
      expected);
  // Qwen2.5's template writes the same block after a system message.
  EXPECT_EQ(
      apply_chat_template(ChatFamily::kChatML, "You are a weather bot.", "Weather in Paris?", o),
      expected);
}

TEST(ChatTemplate, Qwen3AgentTurnsDropOldReasoning) {
  ChatOptions o;
  o.tools = {kWeatherTool};
  const std::vector<ChatMessage> turns = {
      {"user", "Weather in Paris?"},
      {"assistant",
       "<think>\nNeed the tool.\n</think>\n\n",
       std::nullopt,
       {{"get_weather", "{\"city\": \"Paris\"}"}}},
      {"tool", "18 C, sunny"},
      {"tool", "(second result)"},
      {"assistant", "<think>\nGot it.\n</think>\n\nIt is 18 C and sunny."},
      {"user", "Thanks!"}};
  EXPECT_EQ(apply_chat_template(ChatFamily::kQwen3, turns, o),
            std::string("<|im_start|>system\n") + kToolsIntro + kWeatherTool + kToolsOutro +
                "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
                "<|im_start|>assistant\n<tool_call>\n"
                "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                "</tool_call><|im_end|>\n"
                "<|im_start|>user\n<tool_response>\n18 C, sunny\n</tool_response>\n"
                "<tool_response>\n(second result)\n</tool_response><|im_end|>\n"
                "<|im_start|>assistant\nIt is 18 C and sunny.<|im_end|>\n"
                "<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3AgentStepKeepsItsReasoning) {
  ChatOptions o;
  o.tools = {kWeatherTool};
  const std::vector<ChatMessage> turns = {
      {"user", "Weather in Paris?"},
      {"assistant",
       "<think>\nNeed the tool.\n</think>\n\nLet me look.",
       std::nullopt,
       {{"get_weather", "{\"city\": \"Paris\"}"}, {"get_weather", "{\"city\": \"Lyon\"}"}}},
      {"tool", "18 C"}};
  EXPECT_EQ(apply_chat_template(ChatFamily::kQwen3, turns, o),
            std::string("<|im_start|>system\n") + kToolsIntro + kWeatherTool + kToolsOutro +
                "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
                "<|im_start|>assistant\n<think>\nNeed the tool.\n</think>\n\nLet me look.\n"
                "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                "</tool_call>\n"
                "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lyon\"}}\n"
                "</tool_call><|im_end|>\n"
                "<|im_start|>user\n<tool_response>\n18 C\n</tool_response><|im_end|>\n"
                "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3ReasoningContentAndTheLastTurn) {
  ChatOptions o;
  o.add_generation_prompt = false;
  const std::vector<ChatMessage> turns = {{"system", "S"},
                                          {"user", "Q"},
                                          {"assistant", "", "\nPlan.\n", {{"f", "{}"}}},
                                          {"tool", "<r>"},
                                          {"assistant", "Done."}};
  EXPECT_EQ(apply_chat_template(ChatFamily::kQwen3, turns, o),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nPlan.\n</think>\n\n"
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n<r>\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nDone.<|im_end|>\n");
}

TEST(ChatTemplate, FamiliesWithoutAToolFormatRefuseTools) {
  ChatOptions tools;
  tools.tools = {kWeatherTool};
  const std::vector<ChatMessage> result = {{"user", "Q"}, {"tool", "R"}};
  const std::vector<ChatMessage> call = {{"user", "Q"},
                                         {"assistant", "", std::nullopt, {{"f", "{}"}}}};
  for (ChatFamily f : {ChatFamily::kLlama3, ChatFamily::kLlama2, ChatFamily::kNone}) {
    EXPECT_FALSE(chat_family_has_tools(f));
    EXPECT_THROW(apply_chat_template(f, "", "Q", tools), Error) << chat_family_name(f);
    EXPECT_THROW(apply_chat_template(f, result), Error) << chat_family_name(f);
    EXPECT_THROW(apply_chat_template(f, call), Error) << chat_family_name(f);
  }
  try {
    apply_chat_template(ChatFamily::kLlama3, "", "Q", tools);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("llama3"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(chat_family_has_tools(ChatFamily::kChatML));
  EXPECT_TRUE(chat_family_has_tools(ChatFamily::kQwen3));
}

// A prefill: the prompt ends with the assistant's begun answer, right where the model's own
// text would follow the header (the generation prompt's text for that family).
TEST(ChatTemplate, ContinueFinalMessage) {
  const std::vector<ChatMessage> msgs = {{"user", "Name a colour."}, {"assistant", "The colour"}};
  ChatOptions o;
  o.continue_final_message = true;
  EXPECT_EQ(apply_chat_template(ChatFamily::kChatML, msgs, o),
            "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nThe colour");
  // Qwen3's template writes an empty think block before the last assistant turn's answer.
  EXPECT_EQ(apply_chat_template(ChatFamily::kQwen3, msgs, o),
            "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"
            "<think>\n\n</think>\n\nThe colour");
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama3, msgs, o),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nThe colour");
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama2, msgs, o),
            "<s>[INST] Name a colour. [/INST] The colour");
  EXPECT_EQ(apply_chat_template(ChatFamily::kNone, msgs, o), "Name a colour.\n\nThe colour");
  // Every family: the prompt without the prefill plus the begun answer is the turn's start.
  for (ChatFamily f : {ChatFamily::kChatML, ChatFamily::kQwen3, ChatFamily::kLlama3}) {
    ChatOptions plain;
    plain.enable_thinking = false;  // Qwen3's header for an answer without thinking
    const std::string head = apply_chat_template(f, std::span(msgs).first(1), plain);
    EXPECT_EQ(apply_chat_template(f, msgs, o), head + "The colour") << chat_family_name(f);
  }
  // Only an assistant's answer without calls can be continued.
  EXPECT_THROW(apply_chat_template(ChatFamily::kChatML, std::span(msgs).first(1), o), Error);
  std::vector<ChatMessage> called = msgs;
  called.back().tool_calls.push_back({"f", "{}"});
  EXPECT_THROW(apply_chat_template(ChatFamily::kChatML, called, o), Error);
}

TEST(ChatTemplate, Names) {
  for (ChatFamily f : {ChatFamily::kNone, ChatFamily::kChatML, ChatFamily::kQwen3,
                       ChatFamily::kLlama3, ChatFamily::kLlama2}) {
    EXPECT_EQ(parse_chat_family(chat_family_name(f)), f);
  }
  try {
    parse_chat_family("vicuna");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'vicuna'"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, FromTemplateText) {
  EXPECT_EQ(chat_family_from_template("{{'<|im_start|>' + message['role']}}"), ChatFamily::kChatML);
  EXPECT_EQ(chat_family_from_template(
                "{%- if enable_thinking is defined and enable_thinking is false %}"
                "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}<|im_start|>"),
            ChatFamily::kQwen3);
  EXPECT_EQ(chat_family_from_template("<|start_header_id|>{{ m['role'] }}<|end_header_id|>"),
            ChatFamily::kLlama3);
  EXPECT_EQ(chat_family_from_template("{{ bos_token + '[INST] ' + content + ' [/INST]' }}"),
            ChatFamily::kLlama2);
  EXPECT_EQ(chat_family_from_template("<start_of_turn>user"), ChatFamily::kNone);
}

ChatFamily detect_file(const std::string& path) {
  gguf::File f = gguf::File::open(path);
  return detect_chat_family(f);
}

TEST(ChatTemplate, DetectFromRealVocabularies) {
  XTILE_REQUIRE_FIXTURE(qwen, "tokenizers/vocab-qwen2.gguf");
  XTILE_REQUIRE_FIXTURE(llama3, "tokenizers/vocab-llama3.gguf");
  XTILE_REQUIRE_FIXTURE(spm, "tokenizers/vocab-llama-spm.gguf");
  EXPECT_EQ(detect_file(qwen), ChatFamily::kChatML);    // its tokenizer.chat_template
  EXPECT_EQ(detect_file(llama3), ChatFamily::kLlama3);  // its tokenizer.chat_template
  EXPECT_EQ(detect_file(spm), ChatFamily::kLlama2);     // no template: llama + SentencePiece
}

TEST(ChatTemplate, DetectFromFixtureModels) {
  XTILE_REQUIRE_FIXTURE(stories, "models/stories260K.gguf");
  XTILE_REQUIRE_FIXTURE(qwen3, "models/micro-qwen3.gguf");
  XTILE_REQUIRE_FIXTURE(qwen2, "models/micro-qwen2.gguf");
  EXPECT_EQ(detect_file(stories), ChatFamily::kLlama2);
  EXPECT_EQ(detect_file(qwen3), ChatFamily::kQwen3);  // no template, arch qwen3
  EXPECT_EQ(detect_file(qwen2), ChatFamily::kChatML);
}

ChatFamily detect_bytes(const gguf::Writer& w) {
  const std::vector<uint8_t> bytes = w.to_bytes();
  gguf::File f = gguf::File::parse(bytes.data(), bytes.size(), "chat.gguf");
  return detect_chat_family(f);
}

TEST(ChatTemplate, DetectFromVocabularyWhenNoTemplate) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::string("mystery"));
  w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "<|im_start|>", "<|im_end|>"}));
  EXPECT_EQ(detect_bytes(w), ChatFamily::kChatML);
  w.set("general.architecture", gguf::Value::string("qwen3moe"));
  EXPECT_EQ(detect_bytes(w), ChatFamily::kQwen3);
  w.set("general.architecture", gguf::Value::string("mystery"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "<|start_header_id|>"}));
  EXPECT_EQ(detect_bytes(w), ChatFamily::kLlama3);
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b"}));
  EXPECT_EQ(detect_bytes(w), ChatFamily::kNone);
  // A template that is present but unknown wins over the guesses: none.
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "<|im_start|>"}));
  w.set("tokenizer.chat_template", gguf::Value::string("<start_of_turn>{{ content }}"));
  EXPECT_EQ(detect_bytes(w), ChatFamily::kNone);
}

// The rendered prompt tokenizes with its markers as single special tokens and no extra BOS.
TEST(ChatTemplate, RenderedPromptTokenizes) {
  XTILE_REQUIRE_FIXTURE(qwen, "tokenizers/vocab-qwen2.gguf");
  XTILE_REQUIRE_FIXTURE(llama3, "tokenizers/vocab-llama3.gguf");
  {
    gguf::File f = gguf::File::open(qwen);
    auto tok = Tokenizer::from_gguf(f);
    const std::string text = apply_chat_template(detect_chat_family(f), "S", "Hello");
    const std::vector<int32_t> ids = tok->encode(text, false, true);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->find_token("<|im_start|>")), 3);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->find_token("<|im_end|>")), 2);
    EXPECT_EQ(tok->decode(ids, true), text);
  }
  {
    gguf::File f = gguf::File::open(llama3);
    auto tok = Tokenizer::from_gguf(f);
    const std::string text = apply_chat_template(detect_chat_family(f), "", "Hello");
    const std::vector<int32_t> ids = tok->encode(text, false, true);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], tok->bos());
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->bos()), 1);
    // ... <|end_header_id|> then the "\n\n" of the assistant header.
    ASSERT_GE(ids.size(), 2u);
    EXPECT_EQ(ids[ids.size() - 2], tok->find_token("<|end_header_id|>"));
    EXPECT_EQ(tok->decode_token(ids.back()), "\n\n");
    EXPECT_EQ(tok->decode(ids, true), text);
  }
}

}  // namespace chat_template_test
}  // namespace
}  // namespace xtile
