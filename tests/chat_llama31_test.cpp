// Llama 3.1 / 3.2 / 3.3's chat format. The expected texts are what Meta's templates (the
// tokenizer.chat_template of Llama-3.1-8B-Instruct and Llama-3.2-3B-Instruct) render for the
// same conversations through Python's jinja2 with transformers' tojson and raise_exception, run
// outside the repository.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/chat_template.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace xtile {
namespace {
namespace chat_llama31_test {  // unity batches: CMakeLists.txt

constexpr std::string_view kSystemHead =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n";
constexpr std::string_view kKnowledge =
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";

// get_weather as tojson(indent=4) writes it (server/tool_calls.h's python_json(v, 4)).
const char* const kWeather =
    "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n"
    "        \"description\": \"Current weather in a city, °C\",\n        \"parameters\": {\n"
    "            \"type\": \"object\",\n            \"properties\": {\n"
    "                \"city\": {\n                    \"type\": \"string\"\n"
    "                }\n            },\n            \"required\": [\n"
    "                \"city\"\n            ]\n        }\n    }\n}";

TEST(ChatLlama31, TheSystemTurnIsAlwaysWritten) {
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama31, "", "Hello"),
            std::string(kSystemHead) + std::string(kKnowledge) +
                "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama31, " Be brief. ", "Hello\n"),
            std::string(kSystemHead) + std::string(kKnowledge) +
                "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n");
  ChatOptions o;
  o.bos_text = false;
  EXPECT_FALSE(apply_chat_template(ChatFamily::kLlama31, "", "Hello", o).starts_with("<|begin"));
}

TEST(ChatLlama31, AnAgentsTurns) {
  ChatOptions o;
  o.tools = {kWeather};
  const std::vector<ChatMessage> msgs = {
      {"system", "You are a weather bot."},
      {"user", "Weather in Paris?"},
      {"assistant", "", std::nullopt, {{"get_weather", "{\"city\": \"Paris\"}"}}},
      {"tool", "{\"temp\": 22, \"sky\": \"clear\"}\n"},
      {"assistant", "It is 22 °C and clear."},
      {"user", "Thanks!"}};
  EXPECT_EQ(
      apply_chat_template(ChatFamily::kLlama31, msgs, o),
      std::string(kSystemHead) + "Environment: ipython\n" + std::string(kKnowledge) +
          "You are a weather bot.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
          "Given the following functions, please respond with a JSON for a function call with "
          "its proper arguments that best answers the given prompt.\n\nRespond in the format "
          "{\"name\": function name, \"parameters\": dictionary of argument name and its "
          "value}.Do not use variables.\n\n" +
          kWeather +
          "\n\nWeather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
          "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"
          "<|start_header_id|>ipython<|end_header_id|>\n\n"
          "\"{\\\"temp\\\": 22, \\\"sky\\\": \\\"clear\\\"}\\n\"<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nIt is 22 °C and clear.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nThanks!<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatLlama31, ToolsInTheSystemTurn) {
  ChatOptions o;
  o.tools = {kWeather};
  o.tools_in_user_message = false;
  EXPECT_EQ(apply_chat_template(ChatFamily::kLlama31, "", "Weather in Paris?", o),
            std::string(kSystemHead) + "Environment: ipython\n" + std::string(kKnowledge) +
                "You have access to the following functions. To call a function, please respond "
                "with JSON for a function call.Respond in the format {\"name\": function name, "
                "\"parameters\": dictionary of argument name and its value}.Do not use "
                "variables.\n\n" +
                kWeather +
                "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWeather in "
                "Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatLlama31, ResultsAreJsonStrings) {
  // Quotes, backslashes and control characters escaped; other characters (é, DEL) as they are.
  const std::vector<ChatMessage> msgs = {{"user", "Q"}, {"tool", "a\"b\\c\td\x01 é\x7f"}};
  const std::string out = apply_chat_template(ChatFamily::kLlama31, msgs);
  EXPECT_NE(out.find("<|start_header_id|>ipython<|end_header_id|>\n\n"
                     "\"a\\\"b\\\\c\\td\\u0001 é\x7f\"<|eot_id|>"),
            std::string::npos)
      << out;
}

TEST(ChatLlama31, TheTemplatesRefusals) {
  const std::vector<ChatMessage> two = {
      {"user", "Q"}, {"assistant", "", std::nullopt, {{"a", "{}"}, {"b", "{}"}}}};
  EXPECT_THROW(apply_chat_template(ChatFamily::kLlama31, two), Error);
  ChatOptions o;
  o.tools = {kWeather};
  const std::vector<ChatMessage> system_only = {{"system", "S"}};
  EXPECT_THROW(apply_chat_template(ChatFamily::kLlama31, system_only, o), Error);
  o.tools_in_user_message = false;  // the tools go into the system turn: nothing missing
  EXPECT_NO_THROW(apply_chat_template(ChatFamily::kLlama31, system_only, o));
}

TEST(ChatLlama31, Llama32WritesTodayOrTheDateGiven) {
  ChatOptions o;
  o.date_string = "01 Jan 2025";
  EXPECT_NE(apply_chat_template(ChatFamily::kLlama32, "", "Hi", o)
                .find("Cutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\n"),
            std::string::npos);
  EXPECT_NE(apply_chat_template(ChatFamily::kLlama31, "", "Hi", o).find("01 Jan 2025"),
            std::string::npos);
  const std::string today = apply_chat_template(ChatFamily::kLlama32, "", "Hi");
  const std::regex line(
      "Today Date: (\\d\\d) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
      "(\\d{4})\n\n<\\|eot_id\\|>");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(today, m, line)) << today;
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  EXPECT_EQ(std::stoi(m[3].str()), local.tm_year + 1900);  // (a run at midnight on New Year's Eve
                                                           // would see the year change)
}

TEST(ChatLlama31, ContinueFinalMessage) {
  const std::vector<ChatMessage> msgs = {{"user", "Name a colour."}, {"assistant", "The colour"}};
  ChatOptions o;
  o.continue_final_message = true;
  for (ChatFamily f : {ChatFamily::kLlama31, ChatFamily::kLlama32}) {
    const std::string head = apply_chat_template(f, std::span(msgs).first(1));
    EXPECT_EQ(apply_chat_template(f, msgs, o), head + "The colour") << chat_family_name(f);
  }
}

TEST(ChatLlama31, FamilyNamesFormatsAndDetection) {
  for (ChatFamily f : {ChatFamily::kLlama31, ChatFamily::kLlama32}) {
    EXPECT_EQ(parse_chat_family(chat_family_name(f)), f);
    EXPECT_EQ(chat_family_tool_format(f), ToolCallFormat::kLlamaJson);
    EXPECT_TRUE(chat_family_has_tools(f));
    EXPECT_EQ(chat_family_tool_indent(f), 4);
  }
  EXPECT_EQ(chat_family_tool_format(ChatFamily::kQwen3), ToolCallFormat::kHermes);
  EXPECT_EQ(chat_family_tool_indent(ChatFamily::kQwen3), 0);
  EXPECT_EQ(chat_family_tool_format(ChatFamily::kLlama3), ToolCallFormat::kNone);
  // The templates' own lines, in the order they come.
  const std::string head = "{{- bos_token }}{%- if not date_string is defined %}";
  const std::string body =
      "{%- endif %}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
      "{{- \"Cutting Knowledge Date: December 2023\\n\" }}";
  EXPECT_EQ(chat_family_from_template(head + "{%- set date_string = \"26 Jul 2024\" %}" + body),
            ChatFamily::kLlama31);
  EXPECT_EQ(chat_family_from_template(head +
                                      "{%- if strftime_now is defined %}{%- set date_string = "
                                      "strftime_now(\"%d %b %Y\") %}{%- endif %}" +
                                      body),
            ChatFamily::kLlama32);
}

// The rendered prompt of an agent's turns tokenizes with Llama-3's markers as single tokens.
TEST(ChatLlama31, RenderedPromptTokenizes) {
  XTILE_REQUIRE_FIXTURE(llama3, "tokenizers/vocab-llama3.gguf");
  gguf::File f = gguf::File::open(llama3);
  auto tok = Tokenizer::from_gguf(f);
  ChatOptions o;
  o.tools = {kWeather};
  const std::vector<ChatMessage> msgs = {
      {"user", "Weather in Paris?"},
      {"assistant", "", std::nullopt, {{"get_weather", "{\"city\": \"Paris\"}"}}},
      {"tool", "22"}};
  const std::string text = apply_chat_template(ChatFamily::kLlama31, msgs, o);
  const std::vector<int32_t> ids = tok->encode(text, false, true);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->bos()), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->find_token("<|start_header_id|>")), 5);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok->find_token("<|eot_id|>")), 4);
  EXPECT_EQ(tok->decode(ids, true), text);
}

}  // namespace chat_llama31_test
}  // namespace
}  // namespace xtile
