#include "server/openai_request.h"

#include <cmath>
#include <limits>
#include <memory>
#include <random>

#include "base/error.h"
#include "model/sampler.h"
#include "server/api_error.h"
#include "server/gbnf_prefix.h"
#include "server/json_fields.h"
#include "server/json_schema.h"
#include "server/sampler_fields.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

namespace {
using nlohmann::ordered_json;
namespace openai_request {  // unity batches: CMakeLists.txt

// Ordered: the keys of a tool definition stay in the client's order in the prompt.

// Limits of a request's tools, beyond any real use (OpenAI's: 128 functions, names of 64
// characters), that keep the call grammar's indices small.
constexpr size_t kMaxTools = 1024;
constexpr size_t kMaxToolName = 256;

// A request's JSON schema compiled for the grammar; what it cannot enforce is a 400 at `param`.
std::shared_ptr<const JsonSchema> compile_schema(const ordered_json& schema,
                                                 const std::string& param) {
  try {
    return std::make_shared<const JsonSchema>(nlohmann::json::parse(schema.dump()));
  } catch (const Error& e) {
    throw bad_request(param + ": " + e.what(), param);
  }
}

// A GBNF grammar compiled, and its start state made once (the limits it may pass are the
// request's 400 here, not a failure once admitted).
std::shared_ptr<const GbnfGrammar> compile_grammar(const std::string& text) {
  try {
    auto grammar = std::make_shared<const GbnfGrammar>(text);
    GbnfPrefix start(grammar.get());
    return grammar;
  } catch (const Error& e) {
    throw bad_request(e.what(), "grammar");
  }
}

// A constrained reply (JSON mode, a grammar) thinks only when the client asks for it
// (chat_template_kwargs.enable_thinking true): a template that thinks (Qwen3) then writes its
// think block first (returned as reasoning_content) and the constrained part after it.
void think_only_when_asked(const ordered_json& body, ParsedRequest* r) {
  const ordered_json* kwargs = field(body, "chat_template_kwargs");
  if (!(kwargs && kwargs->is_object() && field(*kwargs, "enable_thinking") && r->enable_thinking)) {
    r->enable_thinking = false;
    r->reasoning = false;
  }
}

std::string message_content(const ordered_json& m, size_t i) {
  const std::string name = "messages[" + std::to_string(i) + "].content";
  const ordered_json* c = field(m, "content");
  if (!c) return "";  // an assistant turn with tool calls only, or an empty one
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) wrong_type(name, "a string or an array of content parts", *c);
  std::string text;
  for (const ordered_json& part : *c) {
    if (!part.is_object()) wrong_type(name + "[]", "an object", part);
    const ordered_json* type = field(part, "type");
    if (!type || !type->is_string()) throw bad_request(name + "[].type must be a string", name);
    if (*type != "text")
      throw bad_request(
          "content parts of type '" + type->get<std::string>() + "' are not supported (text only)",
          name);
    const ordered_json* t = field(part, "text");
    if (!t || !t->is_string()) throw bad_request(name + "[].text must be a string", name);
    text += t->get<std::string>();
  }
  return text;
}

// An assistant turn's tool_calls: [{id, type: "function", function: {name, arguments}}], the
// arguments a JSON string as OpenAI sends them (written into the prompt as they are) or an
// object.
std::vector<ToolCall> parse_tool_calls(const ordered_json& v, const std::string& name) {
  if (!v.is_array()) wrong_type(name, "an array", v);
  std::vector<ToolCall> calls;
  for (size_t j = 0; j < v.size(); ++j) {
    const std::string at = name + "[" + std::to_string(j) + "]";
    if (!v[j].is_object()) wrong_type(at, "an object", v[j]);
    const ordered_json* f = field(v[j], "function");
    if (!f || !f->is_object())
      throw bad_request("'" + at + ".function' must be an object", at + ".function");
    const ordered_json* fname = field(*f, "name");
    if (!fname || !fname->is_string())
      throw bad_request("'" + at + ".function.name' must be a string", at + ".function.name");
    ToolCall call{fname->get<std::string>(), "{}"};
    if (const ordered_json* a = field(*f, "arguments")) {
      if (a->is_string()) {
        call.arguments = a->get<std::string>();
      } else if (a->is_object()) {
        call.arguments = python_json(*a);
      } else {
        wrong_type(at + ".function.arguments", "a JSON string or an object", *a);
      }
    }
    calls.push_back(std::move(call));
  }
  return calls;
}

std::vector<ChatMessage> parse_messages(const ordered_json& body) {
  const ordered_json* ms = field(body, "messages");
  if (!ms) throw bad_request("'messages' is required", "messages");
  if (!ms->is_array()) wrong_type("messages", "an array", *ms);
  if (ms->empty()) throw bad_request("'messages' must not be empty", "messages");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < ms->size(); ++i) {
    const ordered_json& m = (*ms)[i];
    const std::string name = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) wrong_type(name, "an object", m);
    const ordered_json* role = field(m, "role");
    if (!role) throw bad_request("'" + name + ".role' is required", name + ".role");
    if (!role->is_string()) wrong_type(name + ".role", "a string", *role);
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant" && r != "tool")
      throw bad_request(
          "'" + name + ".role' must be system, user, assistant or tool, got '" + r + "'",
          name + ".role");
    ChatMessage msg{r, message_content(m, i)};
    if (r == "assistant") {
      if (const ordered_json* tc = field(m, "tool_calls"))
        msg.tool_calls = parse_tool_calls(*tc, name + ".tool_calls");
      if (const ordered_json* rc = field(m, "reasoning_content")) {
        if (!rc->is_string()) wrong_type(name + ".reasoning_content", "a string", *rc);
        msg.reasoning_content = rc->get<std::string>();
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

// A tool's parameters compiled for the call grammar. A schema without a type (and no other
// way to say one) is read as an object's: the arguments are always one. One the grammar cannot
// enforce is a 400 for a strict function; otherwise its calls' arguments are any object (OpenAI
// does not promise a non-strict call matches its schema either).
std::shared_ptr<const JsonSchema> tool_parameters(const ordered_json& f, const std::string& at) {
  const ordered_json* p = field(f, "parameters");
  if (!p) return nullptr;
  ordered_json schema = *p;
  if (!schema.contains("type") && !schema.contains("$ref") && !schema.contains("anyOf") &&
      !schema.contains("oneOf"))
    schema["type"] = "object";
  const std::string param = at + ".function.parameters";
  const ordered_json* strict = field(f, "strict");
  if (strict && get_bool(*strict, at + ".function.strict")) return compile_schema(schema, param);
  try {
    return compile_schema(schema, param);
  } catch (const ApiError&) {
    return nullptr;
  }
}

// tools: [{type: "function", function: {name, description?, parameters?, strict?}}], each kept
// as the template's tojson writes it. tool_choice "none" leaves them out of the prompt (no
// calls); "auto" (the default) lets the model call, "required" makes it call one of them and a
// named function ({"type": "function", "function": {"name": ...}}) that one: the calls it
// writes are held to the tools by the call grammar (tool_call_prefix.h).
void parse_tools(const ordered_json& body, ParsedRequest* r) {
  const ordered_json* tools = field(body, "tools");
  bool none = false, forced = false;
  std::string named;  // a named function's name
  if (const ordered_json* c = field(body, "tool_choice")) {
    const ordered_json* f = c->is_object() ? field(*c, "function") : nullptr;
    const ordered_json* n = f && f->is_object() ? field(*f, "name") : nullptr;
    if (n && n->is_string()) {
      const ordered_json* type = field(*c, "type");
      if (type && *type != "function")
        throw bad_request("'tool_choice.type' must be \"function\"", "tool_choice.type");
      named = n->get<std::string>();
      forced = true;
    } else {
      const std::string choice = c->is_string() ? c->get<std::string>() : "";
      if (choice != "none" && choice != "auto" && choice != "required")
        throw bad_request(
            "'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
            "\"function\": {\"name\": ...}}",
            "tool_choice");
      none = choice == "none";
      forced = choice == "required";
    }
  }
  bool parallel = true;
  if (const ordered_json* p = field(body, "parallel_tool_calls"))
    parallel = get_bool(*p, "parallel_tool_calls");
  if (forced && (!tools || !tools->is_array() || tools->empty()))
    throw bad_request("'tool_choice' forces a call, and 'tools' defines none", "tool_choice");
  if (!tools) return;
  if (!tools->is_array()) wrong_type("tools", "an array", *tools);
  if (tools->size() > kMaxTools)
    throw bad_request("'tools' may define at most " + std::to_string(kMaxTools) + " functions",
                      "tools");
  auto rules = std::make_shared<ToolCallRules>();
  rules->forced = forced;
  rules->parallel = parallel;
  for (size_t i = 0; i < tools->size(); ++i) {
    const ordered_json& t = (*tools)[i];
    const std::string at = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) wrong_type(at, "an object", t);
    const ordered_json* type = field(t, "type");
    if (!type || *type != "function")
      throw bad_request("'" + at + ".type' must be \"function\"", at + ".type");
    const ordered_json* f = field(t, "function");
    if (!f || !f->is_object())
      throw bad_request("'" + at + ".function' must be an object", at + ".function");
    const ordered_json* name = field(*f, "name");
    if (!name || !name->is_string() || name->get<std::string>().empty() ||
        name->get<std::string>().size() > kMaxToolName)
      throw bad_request("'" + at + ".function.name' must be a string of 1 to " +
                            std::to_string(kMaxToolName) + " bytes",
                        at + ".function.name");
    if (const ordered_json* p = field(*f, "parameters"); p && !p->is_object())
      wrong_type(at + ".function.parameters", "an object (a JSON schema)", *p);
    if (none) continue;
    r->tools.push_back(t);
    const std::string n = name->get<std::string>();
    if (named.empty() || n == named) rules->add(n, tool_parameters(*f, at));
  }
  if (!named.empty() && rules->tools.empty())
    throw bad_request(
        "'tool_choice' names the function '" + named + "', which 'tools' does not define",
        "tool_choice.function.name");
  if (!none) r->tool_rules = std::move(rules);
}

std::vector<int32_t> parse_ids(const ordered_json& a, const std::string& name) {
  std::vector<int32_t> ids;
  for (const ordered_json& v : a)
    ids.push_back(static_cast<int32_t>(get_int(v, name + "[]", 0, INT32_MAX)));
  return ids;
}

ParsedRequest::Prompt parse_one_prompt(const ordered_json& p, const std::string& name) {
  ParsedRequest::Prompt out;
  if (p.is_string()) {
    out.text = p.get<std::string>();
  } else if (p.is_array()) {
    out.ids = parse_ids(p, name);
    if (out.ids.empty()) throw bad_request("'" + name + "' is empty", name);
  } else {
    wrong_type(name, "a string or an array of token ids", p);
  }
  return out;
}

// A string, token ids, or a list of several of those (OpenAI's batch of prompts).
void parse_prompt(const ordered_json& body, ParsedRequest* r) {
  constexpr size_t kMaxPrompts = 128;
  const ordered_json* p = field(body, "prompt");
  if (!p) throw bad_request("'prompt' is required", "prompt");
  if (p->is_array() && !p->empty() && !(*p)[0].is_number()) {
    if (p->size() > kMaxPrompts)
      throw bad_request("'prompt' holds " + std::to_string(p->size()) + " prompts, more than " +
                            std::to_string(kMaxPrompts),
                        "prompt");
    for (size_t i = 0; i < p->size(); ++i)
      r->prompts.push_back(parse_one_prompt((*p)[i], "prompt[" + std::to_string(i) + "]"));
    return;
  }
  r->prompts.push_back(parse_one_prompt(*p, "prompt"));
}

std::vector<std::string> parse_stop(const ordered_json& v) {
  std::vector<std::string> stops;
  if (v.is_string()) {
    stops.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 16) throw bad_request("'stop' takes at most 16 strings", "stop");
    for (const ordered_json& s : v) {
      if (!s.is_string()) wrong_type("stop[]", "a string", s);
      stops.push_back(s.get<std::string>());
    }
  } else {
    wrong_type("stop", "a string or an array of strings", v);
  }
  // Every generated token is matched against every stop string on the inference thread: a
  // bound keeps one request from slowing the others.
  for (const std::string& s : stops)
    if (s.size() > 256)
      throw bad_request("a stop string may have at most 256 bytes, got " + std::to_string(s.size()),
                        "stop");
  return stops;
}

// logit_bias: OpenAI's object {"token id": bias} or llama-server's array [[id or text, bias]];
// a key that is not a token id is text. A bias is a number, or false: never that token.
void parse_logit_bias(const ordered_json& v, ParsedRequest* r) {
  const std::string name = "logit_bias";
  const auto bias_of = [&](const ordered_json& b) {
    if (b.is_boolean() && !b.get<bool>()) return -std::numeric_limits<float>::infinity();
    if (!b.is_number())
      throw bad_request("'logit_bias' values must be numbers (or false: never the token), got " +
                            std::string(type_name(b)),
                        name);
    return static_cast<float>(get_number(b, name, -1e30, 1e30));
  };
  const auto add = [&](const ordered_json& key, const ordered_json& b) {
    const float bias = bias_of(b);
    if (key.is_string()) {
      const std::string k = key.get<std::string>();
      if (!k.empty() && k.find_first_not_of("0123456789") == std::string::npos) {
        if (k.size() > 10 || std::stoll(k) > INT32_MAX)
          throw bad_request("'logit_bias' names token " + k + ", not a token id", name);
        r->logit_bias_ids.emplace_back(std::stoll(k), bias);
      } else {
        r->logit_bias_texts.emplace_back(k, bias);
      }
    } else {
      if (!key.is_number_integer() || key.get<int64_t>() < 0 || key.get<int64_t>() > INT32_MAX)
        throw bad_request("'logit_bias' names " + key.dump() + ", not a token id or text", name);
      r->logit_bias_ids.emplace_back(key.get<int64_t>(), bias);
    }
  };
  if (v.is_object()) {
    for (const auto& [key, b] : v.items()) add(ordered_json(key), b);
  } else if (v.is_array()) {
    for (const ordered_json& e : v) {
      if (!e.is_array() || e.size() != 2)
        throw bad_request("'logit_bias' as an array holds [token, bias] pairs, got " + e.dump(),
                          name);
      add(e[0], e[1]);
    }
  } else {
    wrong_type(name, "an object of token ids and biases, or an array of [token, bias]", v);
  }
}

// llama-server's grammar_lazy: grammar_triggers, each {"type", "value"} (and "token" for a
// token), type 1 (or "word") a word, 0 (or "token") a token by id; patterns (2, 3: regular
// expressions over the text so far) are refused (lazy_grammar.h keeps words byte by byte).
// preserved_tokens, which llama-server needs for a one-token word, is not needed here.
void parse_grammar_triggers(const ordered_json& body, ParsedRequest* r) {
  const ordered_json* list = field(body, "grammar_triggers");
  if (!list || !list->is_array() || list->empty())
    throw bad_request(
        "'grammar_lazy' needs 'grammar_triggers': a list of {\"type\": \"word\", \"value\": ...}",
        "grammar_triggers");
  if (list->size() > GrammarTriggers::kMaxWords)
    throw bad_request("'grammar_triggers' has more than " +
                          std::to_string(GrammarTriggers::kMaxWords) + " triggers",
                      "grammar_triggers");
  for (const ordered_json& t : *list) {
    if (!t.is_object() || !t.contains("type"))
      throw bad_request("each of 'grammar_triggers' must be an object with a \"type\"",
                        "grammar_triggers");
    const ordered_json& type = t.at("type");
    static const char* const kTypes[] = {"token", "word", "pattern", "pattern_full"};  // 0..3
    std::string name;
    if (type.is_string()) name = type.get<std::string>();
    if (type.is_number_integer() && type.get<int64_t>() >= 0 && type.get<int64_t>() < 4)
      name = kTypes[type.get<int64_t>()];
    if (name == "word") {
      const ordered_json* value = t.contains("value") ? &t.at("value") : nullptr;
      if (!value || !value->is_string() || value->get_ref<const std::string&>().empty() ||
          value->get_ref<const std::string&>().size() > GrammarTriggers::kMaxWordBytes)
        throw bad_request("a word trigger's \"value\" must be a string of 1 to " +
                              std::to_string(GrammarTriggers::kMaxWordBytes) + " bytes",
                          "grammar_triggers");
      r->trigger_words.push_back(value->get<std::string>());
    } else if (name == "token") {
      if (!t.contains("token") || !t.at("token").is_number_integer() ||
          t.at("token").get<int64_t>() < 0)
        throw bad_request("a token trigger needs \"token\": a token id", "grammar_triggers");
      r->trigger_tokens.push_back(t.at("token").get<int64_t>());
    } else if (name == "pattern" || name == "pattern_full") {
      throw bad_request("grammar trigger type '" + name +
                            "' (a regular expression) is not supported; xtile triggers on "
                            "words and tokens",
                        "grammar_triggers");
    } else {
      throw bad_request(
          "unknown grammar trigger type " + type.dump() + " (word, token; or llama.cpp's 1, 0)",
          "grammar_triggers");
    }
  }
}

}  // namespace openai_request
}  // namespace

ordered_json parse_body(const std::string& body) {
  ordered_json j;
  try {
    j = ordered_json::parse(body);
  } catch (const ordered_json::parse_error& e) {
    throw ApiError(400, "invalid_request_error",
                   std::string("the request body is not valid JSON: ") + e.what(), "invalid_json");
  }
  if (!j.is_object()) throw bad_request("the request body must be a JSON object");
  return j;
}

ParsedRequest parse_request(const ordered_json& body, bool chat, const RequestDefaults& d) {
  using namespace openai_request;  // this file's helpers
  ParsedRequest r;
  r.chat = chat;
  r.gen.sampler = d.sampler;
  r.gen.max_tokens = d.max_tokens;
  r.reasoning = d.reasoning;
  if (const ordered_json* v = field(body, "model")) {
    if (!v->is_string()) wrong_type("model", "a string", *v);
    r.model = v->get<std::string>();
  }
  if (chat) {
    r.messages = parse_messages(body);
    parse_tools(body, &r);
  } else {
    parse_prompt(body, &r);
  }
  if (const ordered_json* v = field(body, "stream")) r.stream = get_bool(*v, "stream");
  if (const ordered_json* v = field(body, "stream_options")) {
    if (!v->is_object()) wrong_type("stream_options", "an object", *v);
    if (const ordered_json* u = field(*v, "include_usage"))
      r.include_usage = get_bool(*u, "stream_options.include_usage");
  }
  for (const char* name : {"max_tokens", "max_completion_tokens", "n_predict"})
    if (const ordered_json* v = field(body, name))
      r.gen.max_tokens = get_int(*v, name, -1, INT32_MAX);
  SamplerParams& s = r.gen.sampler;
  if (const ordered_json* v = field(body, "temperature"))
    s.temperature = static_cast<float>(get_number(*v, "temperature", 0.0, 100.0));
  if (const ordered_json* v = field(body, "top_k"))
    s.top_k = static_cast<int32_t>(get_int(*v, "top_k", -1, INT32_MAX));
  if (const ordered_json* v = field(body, "top_p"))
    s.top_p = static_cast<float>(get_number(*v, "top_p", 0.0, 1.0));
  if (const ordered_json* v = field(body, "min_p"))
    s.min_p = static_cast<float>(get_number(*v, "min_p", 0.0, 1.0));
  if (const ordered_json* v = field(body, "repeat_penalty")) {
    s.repeat_penalty = static_cast<float>(get_number(*v, "repeat_penalty", 0.0, 100.0));
    if (s.repeat_penalty <= 0.0f)
      throw bad_request("'repeat_penalty' must be > 0 (1 disables it)", "repeat_penalty");
  }
  if (const ordered_json* v = field(body, "repeat_last_n"))
    s.repeat_last_n = static_cast<int32_t>(get_int(*v, "repeat_last_n", -1, INT32_MAX));
  if (const ordered_json* v = field(body, "presence_penalty"))
    s.presence_penalty = static_cast<float>(get_number(*v, "presence_penalty", -2.0, 2.0));
  if (const ordered_json* v = field(body, "frequency_penalty"))
    s.frequency_penalty = static_cast<float>(get_number(*v, "frequency_penalty", -2.0, 2.0));
  s.seed = std::random_device{}();
  if (const ordered_json* v = field(body, "seed")) {
    const int64_t seed = get_int(*v, "seed", -1, std::numeric_limits<int64_t>::max());
    if (seed >= 0) {  // -1: random, as llama-server
      s.seed = static_cast<uint64_t>(seed);
      r.seed_given = true;
    }
  }
  if (const ordered_json* v = field(body, "stop")) r.gen.stop = parse_stop(*v);
  if (const ordered_json* v = field(body, "ignore_eos"))
    r.gen.ignore_eos = get_bool(*v, "ignore_eos");
  if (const ordered_json* v = field(body, "logit_bias")) parse_logit_bias(*v, &r);
  if (const ordered_json* v = field(body, "return_tokens"))
    r.return_tokens = get_bool(*v, "return_tokens");

  // Log-probabilities. Chat: logprobs (bool) + top_logprobs (0..20). Completions (legacy):
  // logprobs is the number of alternatives (0..20). n_probs is llama-server's spelling of both.
  if (chat) {
    if (const ordered_json* v = field(body, "logprobs")) r.logprobs = get_bool(*v, "logprobs");
    if (const ordered_json* v = field(body, "top_logprobs")) {
      r.top_logprobs = static_cast<int>(get_int(*v, "top_logprobs", 0, 20));
      if (!r.logprobs) throw bad_request("'top_logprobs' needs 'logprobs': true", "top_logprobs");
    }
  } else if (const ordered_json* v = field(body, "logprobs")) {
    if (v->is_boolean()) {
      r.logprobs = v->get<bool>();
    } else {
      r.top_logprobs = static_cast<int>(get_int(*v, "logprobs", 0, 20));
      r.logprobs = true;
    }
  }
  if (const ordered_json* v = field(body, "n_probs")) {
    const int n = static_cast<int>(get_int(*v, "n_probs", 0, 100));
    if (n > 0) {
      r.logprobs = true;
      r.top_logprobs = std::max(r.top_logprobs, n);
    }
  }
  r.gen.logprobs = r.logprobs;
  r.gen.n_probs = r.top_logprobs;

  if (chat) {
    if (const ordered_json* v = field(body, "chat_template_kwargs")) {
      if (!v->is_object()) wrong_type("chat_template_kwargs", "an object", *v);
      if (const ordered_json* t = field(*v, "enable_thinking"))
        r.enable_thinking = get_bool(*t, "chat_template_kwargs.enable_thinking");
      if (const ordered_json* t = field(*v, "date_string")) {
        if (!t->is_string()) wrong_type("chat_template_kwargs.date_string", "a string", *t);
        r.date_string = t->get<std::string>();
      }
      if (const ordered_json* t = field(*v, "tools_in_user_message"))
        r.tools_in_user_message = get_bool(*t, "chat_template_kwargs.tools_in_user_message");
    }
    if (const ordered_json* v = field(body, "reasoning_format")) {
      if (!v->is_string()) wrong_type("reasoning_format", "a string", *v);
      const std::string f = v->get<std::string>();
      if (f == "none") {
        r.reasoning = false;
      } else if (f == "deepseek" || f == "auto") {
        r.reasoning = true;
      } else {
        throw bad_request("'reasoning_format' must be none, auto or deepseek, got '" + f + "'",
                          "reasoning_format");
      }
    }
  }

  // What xtile does not do is refused, not ignored: the client would get an answer that looks
  // right and is not what it asked for.
  if (const ordered_json* v = field(body, "n")) r.n = static_cast<int>(get_int(*v, "n", 1, 128));
  if (const ordered_json* v = field(body, "n_cmpl")) {
    const int n = static_cast<int>(get_int(*v, "n_cmpl", 1, 128));
    if (field(body, "n") && n != r.n)
      throw bad_request("'n' and 'n_cmpl' (its alias) differ: " + std::to_string(r.n) + " and " +
                            std::to_string(n),
                        "n_cmpl");
    r.n = n;
  }
  if (const ordered_json* v = field(body, "tools"); !chat && v && !(v->is_array() && v->empty()))
    throw bad_request("'tools' work with /v1/chat/completions only", "tools");
  // JSON mode: the reply is one JSON object (with a schema, an instance of it), kept so token by
  // token (json_prefix.h, reply_constraint.h); a chat template's thinking block is switched off
  // unless the client asked for it (then the object follows the block: think_first.h). A
  // schema keyword outside json_schema.h's subset is refused when the schema is compiled, here.
  if (const ordered_json* v = field(body, "response_format")) {
    const ordered_json* type = v->is_object() ? field(*v, "type") : nullptr;
    if (!type || !type->is_string())
      throw bad_request("'response_format' must be an object with a string 'type'",
                        "response_format");
    const std::string t = type->get<std::string>();
    if (t == "json_object" || t == "json_schema") {
      r.gen.json_object = true;
      // OpenAI's {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}, and
      // llama-server's {"type": "json_object", "schema": ...}.
      const ordered_json* schema = field(*v, "schema");
      if (t == "json_schema") {
        const ordered_json* spec = field(*v, "json_schema");
        if (!spec || !spec->is_object())
          throw bad_request("response_format json_schema needs a 'json_schema' object",
                            "response_format.json_schema");
        schema = field(*spec, "schema");
        if (!schema)
          throw bad_request("response_format json_schema needs 'json_schema.schema'",
                            "response_format.json_schema.schema");
      }
      if (schema)
        r.gen.json_schema =
            compile_schema(*schema, t == "json_schema" ? "response_format.json_schema.schema"
                                                       : "response_format.schema");
    } else if (t != "text") {
      throw bad_request(
          "response_format '" + t + "' is not supported: text, json_object or json_schema",
          "response_format");
    }
  }
  // llama-server's own field: a schema beside the request (its /completion takes it so).
  if (const ordered_json* js = field(body, "json_schema")) {
    if (r.gen.json_object)
      throw bad_request("'json_schema' and a JSON response_format: send one of them",
                        "json_schema");
    r.gen.json_schema = compile_schema(*js, "json_schema");
    r.gen.json_object = true;
  }
  if (r.gen.json_object && chat) {
    if (!r.tools.empty())
      throw bad_request(
          "JSON mode (response_format json_object) and 'tools' cannot be combined: "
          "a tool call is not the JSON object the reply must be",
          "response_format");
    think_only_when_asked(body, &r);
  }
  // llama-server's other samplers (typical, top-n-sigma, XTC, dynatemp, mirostat, DRY).
  parse_sampler_extras(body, &r.gen.sampler, d.dry_breakers, &r.dry_breakers);
  // llama-server's GBNF grammar (gbnf.h): the reply is held to it token by token
  // (gbnf_prefix.h). An empty string is no grammar, as there. A chat template's thinking block
  // is switched off unless the client asked for it, as in JSON mode.
  if (const ordered_json* v = field(body, "grammar")) {
    if (!v->is_string()) wrong_type("grammar", "a string (GBNF)", *v);
    if (!v->get_ref<const std::string&>().empty()) {
      if (r.gen.json_object)
        throw bad_request(
            "'grammar' and JSON mode (response_format or json_schema): send one "
            "of them",
            "grammar");
      if (!r.tools.empty())
        throw bad_request(
            "'grammar' and 'tools' cannot be combined: the tool calls have their "
            "own grammar",
            "grammar");
      if (const ordered_json* lazy = field(body, "grammar_lazy");
          lazy && get_bool(*lazy, "grammar_lazy"))
        parse_grammar_triggers(body, &r);
      r.gen.grammar = compile_grammar(v->get_ref<const std::string&>());
      if (chat) think_only_when_asked(body, &r);
    }
  }
  if (!chat) {
    // echo: the reply's text starts with the prompt; with logprobs, each prompt token is
    // scored too (lm-evaluation-harness's loglikelihood requests).
    if (const ordered_json* v = field(body, "echo")) r.echo = get_bool(*v, "echo");
    r.gen.prompt_logprobs = r.echo && r.logprobs;
    // best_of: that many choices per prompt, of which the n with the highest log-probability
    // per token are returned (the others' logprobs are needed to rank them).
    if (const ordered_json* v = field(body, "best_of")) {
      r.best_of = static_cast<int>(get_int(*v, "best_of", 1, 128));
      if (r.best_of < r.n)
        throw bad_request("'best_of' (" + std::to_string(r.best_of) + ") must be at least 'n' (" +
                              std::to_string(r.n) + ")",
                          "best_of");
      if (r.best_of > r.n && r.stream)
        throw bad_request("'best_of' above 'n' cannot be streamed: the best are known at the end",
                          "best_of");
      if (r.best_of > r.n) r.gen.logprobs = true;
    }
    if (const ordered_json* v = field(body, "suffix")) {
      if (!v->is_string()) wrong_type("suffix", "a string", *v);
      if (!v->get<std::string>().empty()) r.suffix = v->get<std::string>();
    }
    if (r.suffix && r.echo)
      throw bad_request("'echo' and 'suffix' together: the prompt is not the reply's start",
                        "echo");
  }
  return r;
}

void resolve_grammar_triggers(const Tokenizer& tok, ParsedRequest* r) {
  if (r->trigger_words.empty() && r->trigger_tokens.empty()) return;
  auto triggers = std::make_shared<GrammarTriggers>();
  triggers->words = r->trigger_words;
  for (size_t i = 0; i < r->trigger_tokens.size(); ++i) {
    const int64_t id = r->trigger_tokens[i];
    const std::string at = "grammar_triggers (token " + std::to_string(id) + ")";
    if (id >= tok.n_vocab())
      throw bad_request("'grammar_triggers' names token " + std::to_string(id) +
                            ", outside the vocabulary (" + std::to_string(tok.n_vocab()) +
                            " tokens)",
                        "grammar_triggers");
    const int32_t t = static_cast<int32_t>(id);
    std::string text = tok.is_control(t) || tok.is_eog(t) ? "" : tok.decode_token(t);
    if (text.empty() || text.size() > GrammarTriggers::kMaxWordBytes)
      throw bad_request("'grammar_triggers' token " + std::to_string(id) +
                            " has no text a reply could write (a control token) or more than " +
                            std::to_string(GrammarTriggers::kMaxWordBytes) + " bytes",
                        "grammar_triggers");
    triggers->words.push_back(std::move(text));
  }
  r->gen.grammar_triggers = std::move(triggers);
}

void resolve_dry_breakers(const Tokenizer& tok, ParsedRequest* r) {
  if (r->gen.sampler.dry_multiplier > 0.0f)
    r->gen.sampler.dry_breakers = dry_breaker_tokens(tok, r->dry_breakers);
}

void resolve_logit_bias(const Tokenizer& tok, ParsedRequest* r) {
  if (r->logit_bias_ids.empty() && r->logit_bias_texts.empty()) return;
  std::vector<std::pair<int32_t, float>> all = r->gen.sampler.logit_bias;
  for (const auto& [id, bias] : r->logit_bias_ids) {
    if (id >= tok.n_vocab())
      throw bad_request("'logit_bias' names token " + std::to_string(id) +
                            ", outside the vocabulary (" + std::to_string(tok.n_vocab()) +
                            " tokens)",
                        "logit_bias");
    all.emplace_back(static_cast<int32_t>(id), bias);
  }
  for (const auto& [text, bias] : r->logit_bias_texts)
    for (int32_t id : tok.encode(text, /*add_bos=*/false, /*parse_special=*/false))
      all.emplace_back(id, bias);
  r->gen.sampler.logit_bias = sampling::merge_logit_bias(all);
}

}  // namespace xtile::server
