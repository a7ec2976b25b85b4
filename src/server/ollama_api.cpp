#include "server/ollama_api.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "server/api_error.h"

namespace xtile::server {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {
namespace ollama_api {  // unity batches: CMakeLists.txt

const ordered_json* find(const ordered_json& o, const char* key) {
  const auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

std::string string_field(const ordered_json& body, const char* key) {
  const ordered_json* v = find(body, key);
  if (!v || v->is_null()) return "";
  if (!v->is_string()) throw bad_request(std::string("'") + key + "' must be a string", key);
  return v->get<std::string>();
}

// Ollama's options under the OpenAI request's names (the parser checks their values). Options
// about the hardware or the runtime (num_ctx, num_thread, num_gpu, use_mmap, ...) are the
// server's flags here and are ignored, as Ollama ignores what does not apply.
void map_options(const ordered_json& options, ordered_json* out) {
  if (!options.is_object()) throw bad_request("'options' must be an object", "options");
  static const std::pair<const char*, const char*> kSame[] = {
      {"temperature", "temperature"},
      {"top_k", "top_k"},
      {"top_p", "top_p"},
      {"min_p", "min_p"},
      {"seed", "seed"},
      {"stop", "stop"},
      {"repeat_penalty", "repeat_penalty"},
      {"repeat_last_n", "repeat_last_n"},
      {"presence_penalty", "presence_penalty"},
      {"frequency_penalty", "frequency_penalty"},
      {"typical_p", "typical_p"},
      {"mirostat", "mirostat"},
      {"mirostat_tau", "mirostat_tau"},
      {"mirostat_eta", "mirostat_eta"},
  };
  for (const auto& [from, to] : kSame)
    if (const ordered_json* v = find(options, from)) (*out)[to] = *v;
  if (const ordered_json* v = find(options, "num_predict")) {
    // -1: no limit, -2: until the context is full; the same here.
    if (v->is_number_integer() && v->get<int64_t>() < 0) {
      (*out)["max_tokens"] = -1;
    } else {
      (*out)["max_tokens"] = *v;
    }
  }
}

// An Ollama chat message as OpenAI's: "thinking" is reasoning_content, "tool_name" goes (the
// templates do not write it), images are refused (no vision model runs here).
ordered_json map_message(const ordered_json& m, size_t i) {
  if (!m.is_object()) return m;  // the parser names the fault
  ordered_json out = ordered_json::object();
  for (const auto& [k, v] : m.items()) {
    if (k == "images") {
      if (!v.is_null() && !(v.is_array() && v.empty()))
        throw bad_request("messages[" + std::to_string(i) +
                              "].images: xtile serves text models; images are not read",
                          "messages[" + std::to_string(i) + "].images");
    } else if (k == "thinking") {
      out["reasoning_content"] = v;
    } else if (k != "tool_name") {
      out[k] = v;
    }
  }
  return out;
}

std::string parameter_size(uint64_t n) {
  char buf[32];
  const double d = static_cast<double>(n);
  if (d >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.1fB", d / 1e9);
  } else if (d >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1fM", d / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fK", d / 1e3);
  }
  return buf;
}

// A stable name for the file (Ollama's digest is its blob's sha256; hashing gigabytes per
// request is not worth it): FNV-1a of the path, size and modification time, 64 hex digits.
std::string digest_of(const ModelInfo& m) {
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(m.path, ec);
  const std::string key = m.path + "|" + std::to_string(m.size_bytes) + "|" +
                          std::to_string(ec ? 0 : mtime.time_since_epoch().count());
  std::string hex;
  for (uint64_t seed : {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x9e3779b97f4a7c15ull,
                        0x2545f4914f6cdd1dull}) {
    uint64_t h = seed;
    for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    hex += buf;
  }
  return hex;
}

json details(const ModelInfo& m) {
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", m.arch},
          {"families", json::array({m.arch})},
          {"parameter_size", parameter_size(m.n_params)},
          {"quantization_level", m.quantization}};
}

json message_json(const std::string& thinking, const std::string& content,
                  const std::vector<ToolCallOut>& calls) {
  json msg = {{"role", "assistant"}, {"content", content}};
  if (!thinking.empty()) msg["thinking"] = thinking;
  if (!calls.empty()) {
    json list = json::array();
    for (size_t i = 0; i < calls.size(); ++i) {
      // Ollama sends the arguments as an object, not as OpenAI's JSON text.
      json args = json::parse(calls[i].arguments, nullptr, /*allow_exceptions=*/false);
      if (args.is_discarded()) args = calls[i].arguments;
      list.push_back(
          {{"function", {{"index", i}, {"name", calls[i].name}, {"arguments", std::move(args)}}}});
    }
    msg["tool_calls"] = std::move(list);
  }
  return msg;
}

}  // namespace ollama_api
}  // namespace

OllamaRequest ollama_request(const ordered_json& body, OllamaRoute route) {
  using namespace ollama_api;  // this file's helpers
  OllamaRequest r;
  ordered_json& o = r.openai;
  o = ordered_json::object();
  r.model = string_field(body, "model");
  if (r.model.empty()) throw bad_request("'model' is required", "model");
  o["model"] = r.model;
  if (const ordered_json* v = find(body, "stream"); v && !v->is_null()) {
    if (!v->is_boolean()) throw bad_request("'stream' must be true or false", "stream");
    r.stream = v->get<bool>();
  }
  o["stream"] = r.stream;
  if (const ordered_json* v = find(body, "options"); v && !v->is_null()) map_options(*v, &o);
  if (const ordered_json* v = find(body, "format"); v && !v->is_null()) {
    if (v->is_string() && v->get<std::string>() == "json") {
      o["response_format"] = {{"type", "json_object"}};
    } else if (v->is_object()) {
      o["response_format"] = {{"type", "json_schema"},
                              {"json_schema", {{"name", "format"}, {"schema", *v}}}};
    } else if (!(v->is_string() && v->get<std::string>().empty())) {
      throw bad_request("'format' must be \"json\" or a JSON schema", "format");
    }
  }
  if (const ordered_json* v = find(body, "think"); v && !v->is_null()) {
    // true / false, or gpt-oss's levels ("low", "medium", "high"): thinking on.
    if (!v->is_boolean() && !v->is_string())
      throw bad_request("'think' must be true, false or a level", "think");
    o["chat_template_kwargs"] = {{"enable_thinking", v->is_string() || v->get<bool>()}};
  }
  if (const ordered_json* v = find(body, "truncate"); v && !v->is_null()) {
    if (!v->is_boolean()) throw bad_request("'truncate' must be true or false", "truncate");
    r.truncate = v->get<bool>();
  }
  if (route == OllamaRoute::kChat) {
    const ordered_json* ms = find(body, "messages");
    ordered_json messages = ordered_json::array();
    if (ms && !ms->is_null()) {
      if (!ms->is_array()) throw bad_request("'messages' must be an array", "messages");
      for (size_t i = 0; i < ms->size(); ++i) messages.push_back(map_message((*ms)[i], i));
    }
    r.load_only = messages.empty();
    o["messages"] = std::move(messages);
    if (const ordered_json* v = find(body, "tools"); v && !v->is_null()) o["tools"] = *v;
    return r;
  }
  for (const char* absent : {"template", "context", "images"}) {
    const ordered_json* v = find(body, absent);
    if (!v || v->is_null() || (v->is_string() && v->get<std::string>().empty()) ||
        (v->is_array() && v->empty()))
      continue;
    throw bad_request(
        std::string("'") + absent + "' is not supported by xtile serve" +
            (std::string(absent) == "context" ? " (send the conversation to /api/chat instead)"
                                              : ""),
        absent);
  }
  const std::string prompt = string_field(body, "prompt");
  const std::string system = string_field(body, "system");
  bool raw = false;
  if (const ordered_json* v = find(body, "raw"); v && !v->is_null()) {
    if (!v->is_boolean()) throw bad_request("'raw' must be true or false", "raw");
    raw = v->get<bool>();
  }
  r.load_only = prompt.empty();
  const std::string suffix = string_field(body, "suffix");
  if (!suffix.empty()) {
    // Code completion: the prompt is the text before the insertion, the suffix the text after;
    // the model's FIM layout (infill.h), as /v1/completions with a suffix.
    if (!system.empty())
      throw bad_request(
          "'system' beside 'suffix': a fill-in-the-middle prompt has no system "
          "turn",
          "system");
    r.chat = false;
    o["prompt"] = prompt;
    o["suffix"] = suffix;
    r.load_only = false;
  } else if (raw) {
    r.chat = false;
    o["prompt"] = prompt;
  } else {
    ordered_json messages = ordered_json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    o["messages"] = std::move(messages);
  }
  return r;
}

std::vector<ChatMessage> ollama_truncate(
    const std::vector<ChatMessage>& messages, int64_t n_ctx,
    const std::function<int64_t(const std::vector<ChatMessage>&)>& prompt_tokens) {
  // The system messages, and the others from index `from` on.
  auto keep_from = [&](size_t from) {
    std::vector<ChatMessage> kept;
    for (size_t i = 0; i < messages.size(); ++i)
      if (messages[i].role == "system" || i >= from || i + 1 == messages.size())
        kept.push_back(messages[i]);
    return kept;
  };
  if (messages.empty() || prompt_tokens(messages) <= n_ctx) return messages;
  // The smallest `from` that fits: the longest run of recent messages (binary search: the
  // prompt only shrinks as `from` grows).
  size_t lo = 1, hi = messages.size() - 1;  // from = messages.size() - 1 keeps the last alone
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (prompt_tokens(keep_from(mid)) <= n_ctx) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return keep_from(lo);
}

bool ollama_names(const ModelInfo& m, const std::string& name) {
  if (m.matches(name) || name == ollama_name(m)) return true;
  return name.ends_with(":latest") && m.matches(name.substr(0, name.size() - 7));
}

std::string ollama_name(const ModelInfo& m) {
  return m.id.find(':') == std::string::npos ? m.id + ":latest" : m.id;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(ns % 1000000000));
  return buf;
}

std::string ollama_time_now() {
  return rfc3339(std::chrono::system_clock::now());
}

json ollama_chunk(OllamaRoute route, const std::string& model, const std::string& thinking,
                  const std::string& content, const std::vector<ToolCallOut>& calls) {
  using namespace ollama_api;  // this file's helpers
  json j = {{"model", model}, {"created_at", ollama_time_now()}};
  if (route == OllamaRoute::kChat) {
    j["message"] = message_json(thinking, content, calls);
  } else {
    j["response"] = content;
    if (!thinking.empty()) j["thinking"] = thinking;
  }
  j["done"] = false;
  return j;
}

json ollama_final(OllamaRoute route, const std::string& model, const std::string& thinking,
                  const std::string& content, const std::vector<ToolCallOut>& calls,
                  FinishReason reason, const JobStats& s) {
  json j = ollama_chunk(route, model, thinking, content, calls);
  j["done"] = true;
  j["done_reason"] = reason == FinishReason::kLength ? "length" : "stop";
  auto ns = [](double ms) { return static_cast<int64_t>(ms * 1e6); };
  j["total_duration"] = ns(s.queue_ms + s.prompt_ms + s.predicted_ms);
  j["load_duration"] = 0;  // the model stays loaded
  j["prompt_eval_count"] = s.prompt_tokens - s.cached_tokens;
  j["prompt_eval_duration"] = ns(s.prompt_ms);
  j["eval_count"] = s.completion_tokens;
  j["eval_duration"] = ns(s.predicted_ms);
  return j;
}

json ollama_model_entry(const ModelInfo& m) {
  using namespace ollama_api;  // this file's helpers
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(m.path, ec);
  const auto modified =
      ec ? std::chrono::system_clock::now() : std::chrono::file_clock::to_sys(mtime);
  return {{"name", ollama_name(m)}, {"model", ollama_name(m)}, {"modified_at", rfc3339(modified)},
          {"size", m.size_bytes},   {"digest", digest_of(m)},  {"details", details(m)}};
}

json ollama_show(const ModelInfo& m, int64_t n_ctx) {
  using namespace ollama_api;  // this file's helpers
  json caps = json::array({"completion"});
  if (chat_family_has_tools(m.chat_family)) caps.push_back("tools");
  if (m.chat_family == ChatFamily::kQwen3) caps.push_back("thinking");
  if (m.fill_in_middle) caps.push_back("insert");  // /api/generate's suffix
  const json entry = ollama_model_entry(m);
  return {{"modelfile", ""},
          {"parameters", "num_ctx " + std::to_string(n_ctx)},
          {"template", std::string(chat_family_name(m.chat_family))},
          {"details", details(m)},
          {"model_info",
           {{"general.architecture", m.arch},
            {"general.parameter_count", m.n_params},
            {m.arch + ".context_length", m.n_ctx_train},
            {m.arch + ".embedding_length", m.n_embd},
            {"tokenizer.ggml.vocab_size", m.n_vocab}}},
          {"capabilities", std::move(caps)},
          {"modified_at", entry["modified_at"]}};
}

}  // namespace xtile::server
