#include "server/anthropic_api.h"

#include "server/api_error.h"
#include "server/request_fields.h"

namespace xtile::server {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {
namespace anthropic_api {  // unity batches: CMakeLists.txt

std::string block_type(const ordered_json& block, const std::string& at) {
  if (!block.is_object()) must_be(at, "an object (a content block)");
  return string_at(block, "type", at + ".type", true);
}

[[noreturn]] void unsupported_block(const std::string& type, const std::string& at) {
  if (type == "image" || type == "document")
    throw bad_request("'" + at + "' is a block of type '" + type +
                          "': xtile serves text models, which read text blocks only",
                      at);
  throw bad_request(
      "'" + at + "' is a block of type '" + type + "', which xtile serve does not take here", at);
}

// Claude Code opens its system prompt with "x-anthropic-billing-header: ...; cch=XXXXX;", a
// stamp that changes with every request. Left as it is, no request would share a prompt
// prefix with the one before, and every turn would recompute the whole conversation. The
// stamp means nothing to a local model: its value is written as zeros.
void blank_billing_stamp(std::string* text) {
  static constexpr std::string_view kHeader = "x-anthropic-billing-header:";
  if (!text->starts_with(kHeader)) return;
  const size_t line_end = std::min(text->find('\n'), text->size());
  const size_t at = text->find("cch=", kHeader.size());
  if (at == std::string::npos || at > line_end) return;
  for (size_t i = at + 4; i < line_end && (*text)[i] != ';'; ++i) (*text)[i] = '0';
}

// A string, or text blocks joined as paragraphs (a system prompt, a user turn, a tool's
// result). Blocks of other types are refused, naming them.
std::string text_of(const ordered_json& v, const std::string& at) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) must_be(at, "a string or an array of text blocks");
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string bat = at + "[" + std::to_string(i) + "]";
    const std::string type = block_type(v[i], bat);
    if (type != "text") unsupported_block(type, bat);
    if (!text.empty()) text += "\n\n";
    text += string_at(v[i], "text", bat + ".text", true);
  }
  return text;
}

// One Anthropic turn as OpenAI messages. A user turn's tool_result blocks become "tool"
// messages (first: they answer the assistant's calls before it) and its text a user message;
// an assistant turn's text, thinking and tool_use blocks become one assistant message with
// content, reasoning_content and tool_calls.
void map_turn(const ordered_json& m, size_t i, ordered_json* out) {
  const std::string at = "messages[" + std::to_string(i) + "]";
  if (!m.is_object()) must_be(at, "an object");
  const std::string role = string_at(m, "role", at + ".role", true);
  if (role != "user" && role != "assistant")
    throw bad_request("'" + at + ".role' must be \"user\" or \"assistant\", got '" + role +
                          "' (the system prompt is the top-level 'system')",
                      at + ".role");
  const ordered_json* content = present(m, "content");
  if (!content) throw bad_request("'" + at + ".content' is required", at + ".content");
  if (content->is_string()) {
    out->push_back({{"role", role}, {"content", *content}});
    return;
  }
  if (!content->is_array()) must_be(at + ".content", "a string or an array of content blocks");
  std::string text, thinking;
  bool has_text = false, has_thinking = false;
  ordered_json calls = ordered_json::array();
  for (size_t b = 0; b < content->size(); ++b) {
    const ordered_json& block = (*content)[b];
    const std::string bat = at + ".content[" + std::to_string(b) + "]";
    const std::string type = block_type(block, bat);
    if (type == "text") {
      if (has_text) text += "\n\n";
      text += string_at(block, "text", bat + ".text", true);
      has_text = true;
    } else if (type == "tool_result" && role == "user") {
      if (has_text)
        throw bad_request("'" + bat + "': tool_result blocks come before the turn's text", bat);
      const ordered_json* c = present(block, "content");
      out->push_back({{"role", "tool"},
                      {"tool_call_id", string_at(block, "tool_use_id", bat + ".tool_use_id", true)},
                      {"content", c ? text_of(*c, bat + ".content") : std::string()}});
    } else if (type == "thinking" && role == "assistant") {
      thinking += string_at(block, "thinking", bat + ".thinking", true);
      has_thinking = true;
    } else if (type == "redacted_thinking" && role == "assistant") {
      // Another model's encrypted reasoning: nothing a local model can read.
    } else if (type == "tool_use" && role == "assistant") {
      const std::string name = string_at(block, "name", bat + ".name", true);
      const ordered_json* input = present(block, "input");
      if (input && !input->is_object()) must_be(bat + ".input", "an object");
      calls.push_back(
          {{"id", string_at(block, "id", bat + ".id", false)},
           {"type", "function"},
           {"function", {{"name", name}, {"arguments", input ? *input : ordered_json::object()}}}});
    } else {
      unsupported_block(type, bat);
    }
  }
  if (!has_text && !has_thinking && calls.empty()) return;  // tool results only
  ordered_json msg = {{"role", role}, {"content", text}};
  if (has_thinking) msg["reasoning_content"] = thinking;
  if (!calls.empty()) msg["tool_calls"] = std::move(calls);
  out->push_back(std::move(msg));
}

// tools: [{name, description?, input_schema}] (type "custom" or none: the client's own
// functions). Anthropic's server tools (web search, code execution, bash, the text editor, ...)
// run on Anthropic's side: refused.
ordered_json map_tools(const ordered_json& tools) {
  if (!tools.is_array()) must_be("tools", "an array");
  ordered_json out = ordered_json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const ordered_json& t = tools[i];
    const std::string at = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) must_be(at, "an object");
    const std::string type = string_at(t, "type", at + ".type", false);
    if (!type.empty() && type != "custom")
      throw bad_request("'" + at + "' is Anthropic's server tool '" + type +
                            "', which runs on Anthropic's side; define it as a function "
                            "(name, description, input_schema)",
                        at + ".type");
    ordered_json f = {{"name", string_at(t, "name", at + ".name", true)}};
    if (const ordered_json* d = present(t, "description")) {
      if (!d->is_string()) must_be(at + ".description", "a string");
      f["description"] = *d;
    }
    const ordered_json* schema = present(t, "input_schema");
    if (!schema) throw bad_request("'" + at + ".input_schema' is required", at + ".input_schema");
    if (!schema->is_object()) must_be(at + ".input_schema", "an object (a JSON schema)");
    f["parameters"] = *schema;
    if (const ordered_json* s = present(t, "strict")) f["strict"] = *s;
    out.push_back({{"type", "function"}, {"function", std::move(f)}});
  }
  return out;
}

// tool_choice {type: auto | any | tool (with name) | none, disable_parallel_tool_use?}.
void map_tool_choice(const ordered_json& c, ordered_json* o) {
  if (!c.is_object()) must_be("tool_choice", "an object with a type");
  const std::string type = string_at(c, "type", "tool_choice.type", true);
  if (type == "auto") {
    (*o)["tool_choice"] = "auto";
  } else if (type == "any") {
    (*o)["tool_choice"] = "required";
  } else if (type == "none") {
    (*o)["tool_choice"] = "none";
  } else if (type == "tool") {
    (*o)["tool_choice"] = {
        {"type", "function"},
        {"function", {{"name", string_at(c, "name", "tool_choice.name", true)}}}};
  } else {
    throw bad_request(
        "'tool_choice.type' must be \"auto\", \"any\", \"tool\" or \"none\", got '" + type + "'",
        "tool_choice.type");
  }
  if (const ordered_json* p = present(c, "disable_parallel_tool_use")) {
    if (!p->is_boolean()) must_be("tool_choice.disable_parallel_tool_use", "true or false");
    (*o)["parallel_tool_calls"] = !p->get<bool>();
  }
}

// output_format (and output_config.format): {type: "json_schema", schema}: the text is an
// instance of the schema, as the OpenAI route's response_format json_schema.
void map_output_format(const ordered_json& f, const std::string& at, ordered_json* o) {
  if (!f.is_object()) must_be(at, "an object");
  const std::string type = string_at(f, "type", at + ".type", true);
  if (type != "json_schema")
    throw bad_request("'" + at + ".type' must be \"json_schema\", got '" + type + "'",
                      at + ".type");
  const ordered_json* schema = present(f, "schema");
  if (!schema || !schema->is_object()) must_be(at + ".schema", "an object (a JSON schema)");
  (*o)["response_format"] = {
      {"type", "json_schema"},
      {"json_schema", {{"name", "output"}, {"strict", true}, {"schema", *schema}}}};
}

const char* error_type(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string event(const char* name, const json& data) {
  return std::string("event: ") + name + "\ndata: " + dump(data) + "\n\n";
}

// Tool use ids as Anthropic writes them: "toolu_" and the call's own random part.
std::string tool_use_id(const ToolCallOut& c) {
  const std::string_view id = c.id;
  return "toolu_" + std::string(id.starts_with("call_") ? id.substr(5) : id);
}

json tool_use_block(const ToolCallOut& c) {
  // The arguments are the call grammar's JSON object; text that is not one (a call the model
  // wrote outside a grammar) is carried under "input" as a string rather than lost.
  json input = json::parse(c.arguments, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded()) input = c.arguments;
  return {{"type", "tool_use"}, {"id", tool_use_id(c)}, {"name", c.name}, {"input", input}};
}

json stop_reason(FinishReason reason, const JobStats& s, bool called) {
  switch (reason) {
    case FinishReason::kLength:
      return "max_tokens";
    case FinishReason::kStop:
      if (!s.stop_word.empty()) return "stop_sequence";
      return called ? "tool_use" : "end_turn";
    default:
      return nullptr;
  }
}

json stop_sequence(const JobStats& s) {
  return s.stop_word.empty() ? json() : json(s.stop_word);
}

}  // namespace anthropic_api
}  // namespace

AnthropicRequest anthropic_request(const ordered_json& body, bool count_only) {
  using namespace anthropic_api;  // this file's helpers
  AnthropicRequest r;
  ordered_json& o = r.openai;
  o = ordered_json::object();
  r.model = string_at(body, "model", "model", true);
  if (r.model.empty()) throw bad_request("'model' must not be empty", "model");
  if (const ordered_json* v = present(body, "stream")) {
    if (!v->is_boolean()) must_be("stream", "true or false");
    r.stream = v->get<bool>() && !count_only;
  }
  o["stream"] = r.stream;
  if (!count_only) {
    // Anthropic requires max_tokens; a request without one gets the server's limit.
    if (const ordered_json* v = present(body, "max_tokens")) {
      if (!v->is_number_integer() || v->get<int64_t>() < 1)
        must_be("max_tokens", "an integer >= 1");
      o["max_tokens"] = *v;
    }
  }
  // Anthropic's sampling fields, and the OpenAI route's extensions a local client may send
  // (a seed makes the answer repeatable).
  for (const char* key : {"temperature", "top_p", "top_k", "seed", "min_p", "repeat_penalty",
                          "presence_penalty", "frequency_penalty", "ignore_eos"})
    if (const ordered_json* v = present(body, key)) o[key] = *v;
  if (const ordered_json* v = present(body, "stop_sequences")) {
    if (!v->is_array()) must_be("stop_sequences", "an array of strings");
    for (const ordered_json& s : *v)
      if (!s.is_string()) must_be("stop_sequences", "an array of strings");
    o["stop"] = *v;
  }
  if (const ordered_json* v = present(body, "chat_template_kwargs")) o["chat_template_kwargs"] = *v;
  if (const ordered_json* v = present(body, "thinking")) {
    // enabled (budget_tokens is not enforced: max_tokens bounds thinking and answer together),
    // disabled; "adaptive" lets the model choose, which Qwen3 does when thinking is on.
    if (!v->is_object()) must_be("thinking", "an object with a type");
    const std::string type = string_at(*v, "type", "thinking.type", true);
    if (type != "enabled" && type != "disabled" && type != "adaptive")
      throw bad_request(
          "'thinking.type' must be \"enabled\", \"disabled\" or \"adaptive\", got '" + type + "'",
          "thinking.type");
    o["chat_template_kwargs"]["enable_thinking"] = type != "disabled";
  }
  if (const ordered_json* v = present(body, "output_format"))
    map_output_format(*v, "output_format", &o);
  if (const ordered_json* v = present(body, "output_config"); v && v->is_object())
    if (const ordered_json* f = present(*v, "format"))
      map_output_format(*f, "output_config.format", &o);
  if (const ordered_json* v = present(body, "mcp_servers"); v && !(v->is_array() && v->empty()))
    throw bad_request("'mcp_servers': xtile serve does not connect to MCP servers", "mcp_servers");

  ordered_json messages = ordered_json::array();
  if (const ordered_json* v = present(body, "system")) {
    std::string system = text_of(*v, "system");
    blank_billing_stamp(&system);
    messages.push_back({{"role", "system"}, {"content", std::move(system)}});
  }
  const ordered_json* ms = present(body, "messages");
  if (!ms) throw bad_request("'messages' is required", "messages");
  if (!ms->is_array()) must_be("messages", "an array");
  if (ms->empty()) throw bad_request("'messages' must not be empty", "messages");
  for (size_t i = 0; i < ms->size(); ++i) map_turn((*ms)[i], i, &messages);
  o["messages"] = std::move(messages);
  if (const ordered_json* v = present(body, "tools")) o["tools"] = map_tools(*v);
  if (const ordered_json* v = present(body, "tool_choice")) map_tool_choice(*v, &o);
  return r;
}

json anthropic_error(int status, const std::string& message) {
  using namespace anthropic_api;  // this file's helpers
  return {{"type", "error"}, {"error", {{"type", error_type(status)}, {"message", message}}}};
}

json anthropic_usage(const JobStats& s) {
  return {{"input_tokens", s.prompt_tokens - s.cached_tokens},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", s.cached_tokens},
          {"output_tokens", s.completion_tokens}};
}

json anthropic_message(const std::string& id, const std::string& model, const std::string& thinking,
                       const std::string& text, const std::vector<ToolCallOut>& calls,
                       FinishReason reason, const JobStats& s) {
  using namespace anthropic_api;  // this file's helpers
  json content = json::array();
  if (!thinking.empty())
    content.push_back({{"type", "thinking"}, {"thinking", thinking}, {"signature", ""}});
  if (!text.empty() || (content.empty() && calls.empty()))
    content.push_back({{"type", "text"}, {"text", text}});
  for (const ToolCallOut& c : calls) content.push_back(tool_use_block(c));
  return {{"id", id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", model},
          {"content", std::move(content)},
          {"stop_reason", stop_reason(reason, s, !calls.empty())},
          {"stop_sequence", stop_sequence(s)},
          {"usage", anthropic_usage(s)}};
}

std::string AnthropicEvents::start(int64_t prompt_tokens) {
  using namespace anthropic_api;  // this file's helpers
  // The cache's share is known once a slot takes the request: message_delta carries it.
  const json usage = {{"input_tokens", prompt_tokens},
                      {"cache_creation_input_tokens", 0},
                      {"cache_read_input_tokens", 0},
                      {"output_tokens", 0}};
  return event("message_start", {{"type", "message_start"},
                                 {"message",
                                  {{"id", id_},
                                   {"type", "message"},
                                   {"role", "assistant"},
                                   {"model", model_},
                                   {"content", json::array()},
                                   {"stop_reason", nullptr},
                                   {"stop_sequence", nullptr},
                                   {"usage", usage}}}});
}

std::string AnthropicEvents::close() {
  using namespace anthropic_api;  // this file's helpers
  if (open_ == Block::kNone) return "";
  open_ = Block::kNone;
  return event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
}

std::string AnthropicEvents::open(Block b) {
  using namespace anthropic_api;  // this file's helpers
  if (open_ == b) return "";
  std::string out = close();
  open_ = b;
  ++index_;
  const json block = b == Block::kThinking
                         ? json{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}
                         : json{{"type", "text"}, {"text", ""}};
  return out +
         event("content_block_start",
               {{"type", "content_block_start"}, {"index", index_}, {"content_block", block}});
}

std::string AnthropicEvents::push(const std::string& thinking, const std::string& text,
                                  const std::vector<ToolCallOut>& calls) {
  using namespace anthropic_api;  // this file's helpers
  std::string out;
  auto delta = [&](const json& d) {
    return event("content_block_delta",
                 {{"type", "content_block_delta"}, {"index", index_}, {"delta", d}});
  };
  if (!thinking.empty()) {
    out += open(Block::kThinking);
    out += delta({{"type", "thinking_delta"}, {"thinking", thinking}});
  }
  if (!text.empty()) {
    out += open(Block::kText);
    out += delta({{"type", "text_delta"}, {"text", text}});
  }
  for (const ToolCallOut& c : calls) {
    out += close();
    ++index_;
    json start = tool_use_block(c);
    const json input = start["input"];
    start["input"] = json::object();
    out += event("content_block_start",
                 {{"type", "content_block_start"}, {"index", index_}, {"content_block", start}});
    out += delta({{"type", "input_json_delta"},
                  {"partial_json", input.is_string() ? input.get<std::string>() : dump(input)}});
    out += event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
    called_ = true;
  }
  return out;
}

std::string AnthropicEvents::finish(FinishReason reason, const JobStats& s) {
  using namespace anthropic_api;  // this file's helpers
  std::string out;
  if (index_ < 0) out += open(Block::kText);  // nothing was written: one empty text block
  out += close();
  out += event(
      "message_delta",
      {{"type", "message_delta"},
       {"delta",
        {{"stop_reason", stop_reason(reason, s, called_)}, {"stop_sequence", stop_sequence(s)}}},
       {"usage", anthropic_usage(s)}});
  out += event("message_stop", {{"type", "message_stop"}});
  return out;
}

std::string AnthropicEvents::ping() const {
  using namespace anthropic_api;  // this file's helpers
  return event("ping", {{"type", "ping"}});
}

std::string AnthropicEvents::error(int status, const std::string& message) {
  using namespace anthropic_api;  // this file's helpers
  return event("error", anthropic_error(status, message));
}

}  // namespace xtile::server
