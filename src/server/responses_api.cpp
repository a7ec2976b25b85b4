#include "server/responses_api.h"

#include <ctime>
#include <optional>

#include "server/api_error.h"
#include "server/openai_response.h"
#include "server/request_fields.h"

namespace xtile::server {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {
namespace responses_api {  // unity batches: CMakeLists.txt

// A message's content: a string, or text parts (input_text, output_text, text, refusal) joined.
std::string text_of(const ordered_json& v, const std::string& at) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) must_be(at, "a string or an array of content parts");
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string pat = at + "[" + std::to_string(i) + "]";
    if (!v[i].is_object()) must_be(pat, "an object (a content part)");
    const std::string type = string_at(v[i], "type", pat + ".type", true);
    if (type == "input_text" || type == "output_text" || type == "text") {
      text += string_at(v[i], "text", pat + ".text", true);
    } else if (type == "refusal") {
      text += string_at(v[i], "refusal", pat + ".refusal", true);
    } else {
      throw bad_request("'" + pat + "' is a part of type '" + type +
                            "': xtile serves text models, which read text parts only",
                        pat);
    }
  }
  return text;
}

// Input items as chat messages. One assistant turn arrives as several items (its reasoning,
// its message, its function calls): they are gathered into one assistant message until an
// item of another turn comes.
class Turns {
 public:
  void message(const std::string& role, std::string content) {
    if (role == "assistant") {
      if (pending_ && !(*pending_)["tool_calls"].empty()) flush();  // a new turn
      ordered_json& a = *assistant();
      a["content"] = a["content"].get<std::string>() + content;
      return;
    }
    flush();
    out_.push_back({{"role", role}, {"content", std::move(content)}});
  }
  void reasoning(std::string text) {
    if (pending_ &&
        (!(*pending_)["content"].get<std::string>().empty() || !(*pending_)["tool_calls"].empty()))
      flush();  // reasoning opens its turn
    (*assistant())["reasoning_content"] = std::move(text);
  }
  void call(ordered_json c) { (*assistant())["tool_calls"].push_back(std::move(c)); }
  void tool_output(std::string call_id, std::string output) {
    flush();
    out_.push_back(
        {{"role", "tool"}, {"tool_call_id", std::move(call_id)}, {"content", std::move(output)}});
  }
  ordered_json take() {
    flush();
    return std::move(out_);
  }

 private:
  ordered_json* assistant() {
    if (!pending_)
      pending_ = ordered_json{
          {"role", "assistant"}, {"content", ""}, {"tool_calls", ordered_json::array()}};
    return &*pending_;
  }
  void flush() {
    if (!pending_) return;
    if ((*pending_)["tool_calls"].empty()) pending_->erase("tool_calls");
    out_.push_back(std::move(*pending_));
    pending_.reset();
  }
  ordered_json out_ = ordered_json::array();
  std::optional<ordered_json> pending_;
};

void map_item(const ordered_json& item, size_t i, Turns* turns) {
  const std::string at = "input[" + std::to_string(i) + "]";
  if (!item.is_object()) must_be(at, "an object (an input item)");
  std::string type = string_at(item, "type", at + ".type", false);
  if (type.empty() && present(item, "role")) type = "message";  // an easy input message
  if (type == "message") {
    std::string role = string_at(item, "role", at + ".role", true);
    if (role == "developer") role = "system";
    if (role != "user" && role != "assistant" && role != "system")
      throw bad_request(
          "'" + at + ".role' must be user, assistant, system or developer, got '" + role + "'",
          at + ".role");
    const ordered_json* c = present(item, "content");
    if (!c) throw bad_request("'" + at + ".content' is required", at + ".content");
    turns->message(role, text_of(*c, at + ".content"));
  } else if (type == "function_call") {
    std::string arguments = "{}";
    if (const ordered_json* a = present(item, "arguments")) {
      if (!a->is_string()) must_be(at + ".arguments", "a string (the arguments' JSON text)");
      arguments = a->get<std::string>();
    }
    turns->call({{"id", string_at(item, "call_id", at + ".call_id", true)},
                 {"type", "function"},
                 {"function",
                  {{"name", string_at(item, "name", at + ".name", true)},
                   {"arguments", std::move(arguments)}}}});
  } else if (type == "function_call_output") {
    const ordered_json* o = present(item, "output");
    turns->tool_output(string_at(item, "call_id", at + ".call_id", true),
                       o ? text_of(*o, at + ".output") : std::string());
  } else if (type == "reasoning") {
    // The reasoning's text when sent (content), else its summary.
    std::string text;
    for (const char* key : {"content", "summary"}) {
      const ordered_json* parts = present(item, key);
      if (!parts || !text.empty()) continue;
      if (!parts->is_array()) must_be(at + "." + key, "an array");
      for (const ordered_json& p : *parts)
        if (p.is_object() && p.contains("text") && p["text"].is_string())
          text += p["text"].get<std::string>();
    }
    turns->reasoning(std::move(text));
  } else {
    throw bad_request("'" + at + "' is an item of type '" + type +
                          "', which xtile serve does not take (messages, function_call, "
                          "function_call_output and reasoning items)",
                      at);
  }
}

// tools: [{type: "function", name, description?, parameters?, strict?}] as the chat route's
// nested form. OpenAI's hosted tools (web search, file search, computer use, code interpreter,
// image generation, MCP, shell) run on OpenAI's side: refused.
ordered_json map_tools(const ordered_json& tools) {
  if (!tools.is_array()) must_be("tools", "an array");
  ordered_json out = ordered_json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const ordered_json& t = tools[i];
    const std::string at = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) must_be(at, "an object");
    const std::string type = string_at(t, "type", at + ".type", true);
    if (type != "function")
      throw bad_request("'" + at + "' is the hosted tool '" + type +
                            "', which runs on OpenAI's side; define it as a function",
                        at + ".type");
    ordered_json f = {{"name", string_at(t, "name", at + ".name", true)}};
    for (const char* key : {"description", "parameters", "strict"})
      if (const ordered_json* v = present(t, key)) f[key] = *v;
    out.push_back({{"type", "function"}, {"function", std::move(f)}});
  }
  return out;
}

void map_tool_choice(const ordered_json& c, ordered_json* o) {
  if (c.is_string()) {
    (*o)["tool_choice"] = c;  // auto, none, required: the parser checks
    return;
  }
  if (!c.is_object()) must_be("tool_choice", "\"auto\", \"none\", \"required\" or a function");
  const std::string type = string_at(c, "type", "tool_choice.type", true);
  if (type != "function")
    throw bad_request("'tool_choice.type' must be \"function\", got '" + type + "'",
                      "tool_choice.type");
  (*o)["tool_choice"] = {{"type", "function"},
                         {"function", {{"name", string_at(c, "name", "tool_choice.name", true)}}}};
}

// text.format: {type: text | json_object | json_schema (name, schema, strict)}.
void map_text_format(const ordered_json& text, ordered_json* o) {
  if (!text.is_object()) must_be("text", "an object");
  const ordered_json* f = present(text, "format");
  if (!f) return;
  if (!f->is_object()) must_be("text.format", "an object");
  const std::string type = string_at(*f, "type", "text.format.type", true);
  if (type == "text") return;
  if (type == "json_object") {
    (*o)["response_format"] = {{"type", "json_object"}};
  } else if (type == "json_schema") {
    ordered_json js = {{"name", string_at(*f, "name", "text.format.name", false)}};
    const ordered_json* schema = present(*f, "schema");
    if (!schema || !schema->is_object()) must_be("text.format.schema", "an object (a JSON schema)");
    js["schema"] = *schema;
    if (const ordered_json* s = present(*f, "strict")) js["strict"] = *s;
    (*o)["response_format"] = {{"type", "json_schema"}, {"json_schema", std::move(js)}};
  } else {
    throw bad_request(
        "'text.format.type' must be \"text\", \"json_object\" or \"json_schema\", got '" + type +
            "'",
        "text.format.type");
  }
}

json output_text_part(const std::string& text) {
  return {{"type", "output_text"},
          {"text", text},
          {"annotations", json::array()},
          {"logprobs", json::array()}};
}

json reasoning_item(const std::string& id, const std::string& text) {
  return {{"type", "reasoning"},
          {"id", id},
          {"summary", json::array()},
          {"content", json::array({{{"type", "reasoning_text"}, {"text", text}}})}};
}

json message_item(const std::string& id, const std::string& text, const char* status) {
  return {{"type", "message"},
          {"id", id},
          {"status", status},
          {"role", "assistant"},
          {"content", json::array({output_text_part(text)})}};
}

json function_call_item(const ToolCallOut& c, const std::string& id, const char* status,
                        const std::string& arguments) {
  return {{"type", "function_call"}, {"id", id},        {"call_id", c.id}, {"name", c.name},
          {"arguments", arguments},  {"status", status}};
}

json usage_of(const JobStats& s) {
  // reasoning_tokens: the reply's tokens are not told apart by where their text went; not
  // counted.
  return {{"input_tokens", s.prompt_tokens},
          {"input_tokens_details", {{"cached_tokens", s.cached_tokens}}},
          {"output_tokens", s.completion_tokens},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", s.prompt_tokens + s.completion_tokens}};
}

}  // namespace responses_api
}  // namespace

ResponsesRequest responses_request(const ordered_json& body) {
  using namespace responses_api;  // this file's helpers
  ResponsesRequest r;
  ordered_json& o = r.openai;
  o = ordered_json::object();
  json& echo = r.echo;
  r.model = string_at(body, "model", "model", false);
  if (!r.model.empty()) o["model"] = r.model;
  for (const char* key : {"previous_response_id", "conversation"})
    if (present(body, key))
      throw bad_request(std::string("'") + key +
                            "': xtile serve does not store responses; send the whole "
                            "conversation in 'input'",
                        key);
  if (const ordered_json* v = present(body, "background"); v && *v != false)
    throw bad_request("'background': responses run while the request waits", "background");
  if (const ordered_json* v = present(body, "stream")) {
    if (!v->is_boolean()) must_be("stream", "true or false");
    r.stream = v->get<bool>();
  }
  o["stream"] = r.stream;
  echo["max_output_tokens"] = nullptr;
  if (const ordered_json* v = present(body, "max_output_tokens")) {
    if (!v->is_number_integer() || v->get<int64_t>() < 1)
      must_be("max_output_tokens", "an integer >= 1");
    o["max_tokens"] = *v;
    echo["max_output_tokens"] = *v;
  }
  for (const char* key : {"temperature", "top_p"})
    if (const ordered_json* v = present(body, key)) {
      o[key] = *v;
      echo[key] = *v;
    }
  // The chat route's extensions a local client may send (a seed makes the answer repeatable).
  for (const char* key : {"seed", "top_k", "min_p", "repeat_penalty", "presence_penalty",
                          "frequency_penalty", "stop", "ignore_eos", "chat_template_kwargs"})
    if (const ordered_json* v = present(body, key)) o[key] = *v;
  echo["reasoning"] = {{"effort", nullptr}, {"summary", nullptr}};
  if (const ordered_json* v = present(body, "reasoning")) {
    if (!v->is_object()) must_be("reasoning", "an object");
    const std::string effort = string_at(*v, "effort", "reasoning.effort", false);
    if (!effort.empty()) {
      if (effort != "none" && effort != "minimal" && effort != "low" && effort != "medium" &&
          effort != "high" && effort != "xhigh")
        throw bad_request(
            "'reasoning.effort' must be none, minimal, low, medium or high, got '" + effort + "'",
            "reasoning.effort");
      o["chat_template_kwargs"]["enable_thinking"] = effort != "none" && effort != "minimal";
      echo["reasoning"]["effort"] = effort;
    }
  }
  echo["text"] = {{"format", {{"type", "text"}}}};
  if (const ordered_json* v = present(body, "text")) {
    map_text_format(*v, &o);
    if (const ordered_json* f = present(*v, "format")) echo["text"]["format"] = *f;
  }
  echo["tools"] = json::array();
  if (const ordered_json* v = present(body, "tools")) {
    o["tools"] = map_tools(*v);
    echo["tools"] = *v;
  }
  echo["tool_choice"] = "auto";
  if (const ordered_json* v = present(body, "tool_choice")) {
    map_tool_choice(*v, &o);
    echo["tool_choice"] = *v;
  }
  echo["parallel_tool_calls"] = true;
  if (const ordered_json* v = present(body, "parallel_tool_calls")) {
    o["parallel_tool_calls"] = *v;
    echo["parallel_tool_calls"] = *v;
  }
  echo["metadata"] = json::object();
  if (const ordered_json* v = present(body, "metadata")) echo["metadata"] = *v;

  Turns turns;
  echo["instructions"] = nullptr;
  if (const ordered_json* v = present(body, "instructions")) {
    if (!v->is_string()) must_be("instructions", "a string");
    turns.message("system", v->get<std::string>());
    echo["instructions"] = *v;
  }
  const ordered_json* input = present(body, "input");
  if (!input) throw bad_request("'input' is required", "input");
  if (input->is_string()) {
    turns.message("user", input->get<std::string>());
  } else if (input->is_array()) {
    if (input->empty()) throw bad_request("'input' must not be empty", "input");
    for (size_t i = 0; i < input->size(); ++i) map_item((*input)[i], i, &turns);
  } else {
    must_be("input", "a string or an array of items");
  }
  o["messages"] = turns.take();
  return r;
}

json response_head(const std::string& id, const std::string& model, const json& echo) {
  json h = {{"id", id},
            {"object", "response"},
            {"created_at", static_cast<int64_t>(std::time(nullptr))},
            {"model", model},
            {"status", "in_progress"},
            {"error", nullptr},
            {"incomplete_details", nullptr},
            {"output", json::array()},
            {"usage", nullptr},
            {"store", false},
            {"truncation", "disabled"},
            {"previous_response_id", nullptr}};
  for (const auto& [k, v] : echo.items()) h[k] = v;
  return h;
}

json response_output(const std::string& thinking, const std::string& text,
                     const std::vector<ToolCallOut>& calls) {
  using namespace responses_api;  // this file's helpers
  json out = json::array();
  if (!thinking.empty()) out.push_back(reasoning_item(make_id("rs_"), thinking));
  if (!text.empty() || (out.empty() && calls.empty()))
    out.push_back(message_item(make_id("msg_"), text, "completed"));
  for (const ToolCallOut& c : calls)
    out.push_back(function_call_item(c, make_id("fc_"), "completed", c.arguments));
  return out;
}

json response_object(const json& head, FinishReason reason, json output, const JobStats& s) {
  using namespace responses_api;  // this file's helpers
  json r = head;
  const bool cut = reason == FinishReason::kLength;
  r["status"] = cut ? "incomplete" : "completed";
  if (cut) {
    r["incomplete_details"] = {{"reason", "max_output_tokens"}};
    // The item being written when the limit came is incomplete too.
    if (!output.empty() && output.back()["type"] == "message")
      output.back()["status"] = "incomplete";
  }
  r["output"] = std::move(output);
  r["usage"] = usage_of(s);
  return r;
}

std::string ResponseEvents::event(const char* type, json data) {
  data["type"] = type;
  data["sequence_number"] = sequence_++;
  return std::string("event: ") + type + "\ndata: " + dump(data) + "\n\n";
}

std::string ResponseEvents::start(int64_t) {
  std::string out = event("response.created", {{"response", head_}});
  out += event("response.in_progress", {{"response", head_}});
  return out;
}

std::string ResponseEvents::open(Item item) {
  using namespace responses_api;  // this file's helpers
  if (open_ == item) return "";
  std::string out = close();
  open_ = item;
  text_.clear();
  const size_t index = output_.size();
  json added, part;
  if (item == Item::kReasoning) {
    item_id_ = make_id("rs_");
    added = reasoning_item(item_id_, "");
    added["content"] = json::array();
    part = {{"type", "reasoning_text"}, {"text", ""}};
  } else {
    item_id_ = make_id("msg_");
    added = message_item(item_id_, "", "in_progress");
    added["content"] = json::array();
    part = output_text_part("");
  }
  out += event("response.output_item.added", {{"output_index", index}, {"item", added}});
  out +=
      event("response.content_part.added",
            {{"item_id", item_id_}, {"output_index", index}, {"content_index", 0}, {"part", part}});
  return out;
}

std::string ResponseEvents::close(const char* status) {
  using namespace responses_api;  // this file's helpers
  if (open_ == Item::kNone) return "";
  const size_t index = output_.size();
  const json at = {{"item_id", item_id_}, {"output_index", index}, {"content_index", 0}};
  std::string out;
  json item;
  if (open_ == Item::kReasoning) {
    item = reasoning_item(item_id_, text_);
    json done = at;
    done["text"] = text_;
    out += event("response.reasoning_text.done", done);
    json part = at;
    part["part"] = item["content"][0];
    out += event("response.content_part.done", part);
  } else {
    item = message_item(item_id_, text_, status);
    json done = at;
    done["text"] = text_;
    done["logprobs"] = json::array();
    out += event("response.output_text.done", done);
    json part = at;
    part["part"] = item["content"][0];
    out += event("response.content_part.done", part);
  }
  out += event("response.output_item.done", {{"output_index", index}, {"item", item}});
  output_.push_back(std::move(item));
  open_ = Item::kNone;
  return out;
}

std::string ResponseEvents::push(const std::string& thinking, const std::string& text,
                                 const std::vector<ToolCallOut>& calls) {
  using namespace responses_api;  // this file's helpers
  std::string out;
  auto delta = [&](const char* type, const std::string& d) {
    text_ += d;
    json e = {{"item_id", item_id_},
              {"output_index", output_.size()},
              {"content_index", 0},
              {"delta", d}};
    if (open_ == Item::kMessage) e["logprobs"] = json::array();
    return event(type, std::move(e));
  };
  if (!thinking.empty()) {
    out += open(Item::kReasoning);
    out += delta("response.reasoning_text.delta", thinking);
  }
  if (!text.empty()) {
    out += open(Item::kMessage);
    out += delta("response.output_text.delta", text);
  }
  for (const ToolCallOut& c : calls) {
    out += close();
    const std::string id = make_id("fc_");
    const size_t index = output_.size();
    out += event("response.output_item.added",
                 {{"output_index", index}, {"item", function_call_item(c, id, "in_progress", "")}});
    out += event("response.function_call_arguments.delta",
                 {{"item_id", id}, {"output_index", index}, {"delta", c.arguments}});
    out += event(
        "response.function_call_arguments.done",
        {{"item_id", id}, {"output_index", index}, {"name", c.name}, {"arguments", c.arguments}});
    json item = function_call_item(c, id, "completed", c.arguments);
    out += event("response.output_item.done", {{"output_index", index}, {"item", item}});
    output_.push_back(std::move(item));
  }
  return out;
}

std::string ResponseEvents::finish(FinishReason reason, const JobStats& s) {
  std::string out;
  if (output_.empty() && open_ == Item::kNone) out += open(Item::kMessage);  // one empty message
  out += close(reason == FinishReason::kLength ? "incomplete" : "completed");
  const json r = response_object(head_, reason, output_, s);
  const bool cut = r["status"] == "incomplete";
  out += event(cut ? "response.incomplete" : "response.completed", {{"response", r}});
  return out;
}

std::string ResponseEvents::ping() const {
  return ": ping\n\n";
}

std::string ResponseEvents::error(int status, const std::string& message) {
  json r = head_;
  r["status"] = "failed";
  r["error"] = {{"code", status == 503 ? "server_is_overloaded" : "server_error"},
                {"message", message}};
  r["output"] = output_;
  return event("response.failed", {{"response", r}});
}

}  // namespace xtile::server
