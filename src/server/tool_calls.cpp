#include "server/tool_calls.h"

#include "server/openai_response.h"
#include "server/text_stream.h"

namespace xtile::server {

namespace {
namespace tool_calls {  // unity batches: CMakeLists.txt

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_text_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_text_space(s.back())) s.remove_suffix(1);
  return s;
}

// The call a block's body holds, or false when it is not one: a JSON object with a "name" and
// its arguments under `args_key` (absent: none), or, in Llama's format, an object of those keys
// alone (and "type": "function", as some Llama 3.x models write), so that an answer that is
// data with a "name" is not taken for a call.
bool parse_call(std::string_view body, ToolCallFormat format, ToolCallOut* out) {
  const auto j = nlohmann::ordered_json::parse(trim(body), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  const auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) return false;
  auto args = j.find("arguments");
  if (format == ToolCallFormat::kLlamaJson) {
    for (const auto& [key, value] : j.items()) {
      const bool known = key == "name" || key == "parameters" || key == "arguments" ||
                         (key == "type" && value == "function");
      if (!known) return false;
    }
    if (const auto p = j.find("parameters"); p != j.end()) args = p;
    if (args == j.end() || !args->is_object()) return false;
  }
  out->name = name->get<std::string>();
  if (args == j.end() || args->is_null()) {
    out->arguments = "{}";
  } else if (args->is_string()) {
    out->arguments = args->get<std::string>();  // already JSON text
  } else {
    out->arguments = args->dump(-1, ' ', /*ensure_ascii=*/false,
                                nlohmann::ordered_json::error_handler_t::replace);
  }
  out->id = make_id("call_");
  return true;
}

}  // namespace tool_calls
}  // namespace

namespace {
namespace tool_calls {  // unity batches: CMakeLists.txt

// Python's json.dumps(v, ensure_ascii=False, indent=indent) at nesting depth `depth`: without an
// indent ", " and ": " between items, with one each item on its own line ("," at its end) and
// an empty object or array as "{}" / "[]".
void append_python_json(const nlohmann::ordered_json& v, int indent, int depth, std::string* out) {
  const auto scalar = [](const nlohmann::ordered_json& x) {
    return x.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  };
  if (!v.is_object() && !v.is_array()) {
    *out += scalar(v);
    return;
  }
  const bool object = v.is_object();
  *out += object ? '{' : '[';
  if (v.empty()) {
    *out += object ? '}' : ']';
    return;
  }
  const auto line = [&](int d) {
    if (indent > 0) *out += '\n' + std::string(static_cast<size_t>(indent * d), ' ');
  };
  bool first = true;
  for (const auto& [key, value] : v.items()) {
    if (!first) *out += indent > 0 ? "," : ", ";
    first = false;
    line(depth + 1);
    if (object) *out += scalar(nlohmann::ordered_json(key)) + ": ";
    append_python_json(value, indent, depth + 1, out);
  }
  line(depth);
  *out += object ? '}' : ']';
}

}  // namespace tool_calls
}  // namespace

std::string python_json(const nlohmann::ordered_json& v, int indent) {
  using namespace tool_calls;  // this file's helpers
  std::string out;
  append_python_json(v, indent, 0, &out);
  return out;
}

void ToolCallSplitter::emit_text(std::string_view text, std::string* content) {
  if (after_call_) {
    while (!text.empty() && is_text_space(text.front())) text.remove_prefix(1);
    if (text.empty()) return;
    after_call_ = false;
  }
  content->append(text);
}

// Llama's call is the whole answer: an answer whose first non-blank byte is '{' is held to its
// end and read as a call; any other goes out as it comes.
void ToolCallSplitter::run_whole(bool final, std::string* content,
                                 std::vector<ToolCallOut>* calls) {
  using namespace tool_calls;  // this file's helpers
  if (!in_call_) {
    const size_t lead = pending_.find_first_not_of(" \t\n\r");
    if (lead == std::string::npos && !final) return;  // blanks so far: a call may still come
    if (lead != std::string::npos && pending_[lead] == '{' && !answer_started_) {
      in_call_ = true;
    } else {
      answer_started_ = true;
      emit_text(pending_, content);
      pending_.clear();
      return;
    }
  }
  if (!final) return;
  ToolCallOut call;
  if (parse_call(pending_, format_, &call)) {
    calls->push_back(std::move(call));
    called_ = true;
  } else {
    emit_text(pending_, content);
  }
  pending_.clear();
  in_call_ = false;
}

void ToolCallSplitter::run(bool final, std::string* content, std::vector<ToolCallOut>* calls) {
  using namespace tool_calls;  // this file's helpers
  if (format_ == ToolCallFormat::kLlamaJson) return run_whole(final, content, calls);
  for (;;) {
    if (!in_call_) {
      const size_t open = pending_.find(kOpen);
      if (open != std::string::npos) {
        std::string_view before(pending_.data(), open);
        while (!before.empty() && is_text_space(before.back())) before.remove_suffix(1);
        emit_text(before, content);
        pending_.erase(0, open + kOpen.size());
        in_call_ = true;
        continue;
      }
      if (final) {
        emit_text(pending_, content);
        pending_.clear();
        return;
      }
      // Held back: a tag's possible start, and the whitespace before it (a call may follow).
      size_t end = pending_.size() - partial_stop_suffix(pending_, {std::string(kOpen)});
      while (end > 0 && is_text_space(pending_[end - 1])) --end;
      emit_text(std::string_view(pending_.data(), end), content);
      pending_.erase(0, end);
      return;
    }
    const size_t close = pending_.find(kClose);
    if (close == std::string::npos) {
      if (!final) return;
      emit_text(std::string(kOpen) + pending_, content);  // unclosed: the text as written
      pending_.clear();
      in_call_ = false;
      return;
    }
    ToolCallOut call;
    if (parse_call(std::string_view(pending_.data(), close), format_, &call)) {
      calls->push_back(std::move(call));
      called_ = true;
      after_call_ = true;
    } else {
      emit_text(std::string(kOpen) + pending_.substr(0, close + kClose.size()), content);
    }
    pending_.erase(0, close + kClose.size());
    in_call_ = false;
  }
}

void ToolCallSplitter::push(std::string_view text, std::string* content,
                            std::vector<ToolCallOut>* calls) {
  pending_.append(text);
  run(false, content, calls);
}

void ToolCallSplitter::finish(std::string* content, std::vector<ToolCallOut>* calls) {
  run(true, content, calls);
}

nlohmann::json tool_calls_json(const std::vector<ToolCallOut>& calls, int first_index) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    nlohmann::json c = {{"id", calls[i].id},
                        {"type", "function"},
                        {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (first_index >= 0) c["index"] = first_index + static_cast<int>(i);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace xtile::server
