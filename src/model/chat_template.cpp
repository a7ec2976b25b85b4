#include "model/chat_template.h"

#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/chat_llama31.h"
#include "model/chat_text.h"

namespace xtile {
namespace {

using chat_text::trim;

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

// Whether tokenizer.ggml.tokens holds `text` (scanned in place: no copy of the vocabulary).
bool vocab_has(const gguf::File& f, std::string_view text) {
  const gguf::Value* v = f.find("tokenizer.ggml.tokens");
  if (!v || v->type != gguf::ValueType::ARRAY) return false;
  for (const gguf::Value& item : std::get<gguf::Array>(v->data).items) {
    const auto* s = std::get_if<std::string>(&item.data);
    if (s && *s == text) return true;
  }
  return false;
}

// Python's str.strip/lstrip/rstrip('\n'), as the Qwen3 template calls them.
std::string_view lstrip_newlines(std::string_view s) {
  const size_t b = s.find_first_not_of('\n');
  return b == std::string_view::npos ? std::string_view() : s.substr(b);
}
std::string_view rstrip_newlines(std::string_view s) {
  const size_t e = s.find_last_not_of('\n');
  return e == std::string_view::npos ? std::string_view() : s.substr(0, e + 1);
}

// The tool block Qwen2.5's and Qwen3's templates open the system turn with (their text,
// byte for byte; each definition on its own line as `tojson` wrote it).
std::string tools_system_turn(const ChatMessage* system, std::span<const std::string> tools) {
  std::string out = "<|im_start|>system\n";
  if (system) out += system->content + "\n\n";
  out +=
      "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
  for (const std::string& t : tools) out += "\n" + t;
  out +=
      "\n</tools>\n\nFor each function call, return a json object with function name and "
      "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
      "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";
  return out;
}

// An assistant turn's calls after its content: each in a <tool_call> block, a newline between
// the content and the first and between blocks.
void append_tool_calls(const ChatMessage& m, std::string_view content, std::string* out) {
  for (size_t j = 0; j < m.tool_calls.size(); ++j) {
    if (j > 0 || !content.empty()) *out += "\n";
    *out += "<tool_call>\n{\"name\": \"" + m.tool_calls[j].name +
            "\", \"arguments\": " + m.tool_calls[j].arguments + "}\n</tool_call>";
  }
}

// Qwen3: turns after the last real user message (the agent's steps since: tool results and
// tool calls) keep their reasoning as a think block; earlier turns lose theirs.
size_t last_query_index(std::span<const ChatMessage> msgs) {
  for (size_t i = msgs.size(); i-- > 0;) {
    const std::string& c = msgs[i].content;
    const bool tool_result = c.starts_with("<tool_response>") && c.ends_with("</tool_response>");
    if (msgs[i].role == "user" && !tool_result) return i;
  }
  return msgs.empty() ? 0 : msgs.size() - 1;
}

// Qwen3's assistant turn: reasoning_content when sent apart, else split off the content at
// </think>; re-rendered as a think block only after the last query (and always for the last
// message, which the model continues).
void append_qwen3_assistant(std::span<const ChatMessage> msgs, size_t i, size_t last_query,
                            std::string* out) {
  const ChatMessage& m = msgs[i];
  std::string_view content = m.content;
  std::string_view reasoning;
  if (m.reasoning_content) {
    reasoning = *m.reasoning_content;
  } else if (const size_t close = content.find("</think>"); close != std::string_view::npos) {
    std::string_view before = rstrip_newlines(content.substr(0, close));
    if (const size_t open = before.rfind("<think>"); open != std::string_view::npos)
      before = before.substr(open + 7);
    reasoning = lstrip_newlines(before);
    content = lstrip_newlines(content.substr(content.rfind("</think>") + 8));
  }
  *out += "<|im_start|>assistant\n";
  if (i > last_query && (i + 1 == msgs.size() || !reasoning.empty())) {
    *out += "<think>\n";
    *out += rstrip_newlines(lstrip_newlines(reasoning));
    *out += "\n</think>\n\n";
    content = lstrip_newlines(content);
  }
  *out += content;
  append_tool_calls(m, content, out);
  *out += "<|im_end|>\n";
}

// ChatML (Qwen2, Qwen2.5) and Qwen3's template. With tools: the tool block opens the system
// turn (after the system message, if any); tool results ("tool" turns) go back as a user turn
// of <tool_response> blocks, consecutive results in one turn.
std::string render_chatml(std::span<const ChatMessage> msgs, const ChatOptions& o, bool qwen3) {
  std::string out;
  size_t first = 0;
  if (!o.tools.empty()) {
    const bool system = !msgs.empty() && msgs[0].role == "system";
    out += tools_system_turn(system ? &msgs[0] : nullptr, o.tools);
    first = system ? 1 : 0;
  }
  const size_t last_query = last_query_index(msgs);
  for (size_t i = first; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    if (m.role == "tool") {
      if (i == 0 || msgs[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i + 1 == msgs.size() || msgs[i + 1].role != "tool") out += "<|im_end|>\n";
    } else if (m.role == "assistant" && qwen3) {
      append_qwen3_assistant(msgs, i, last_query, &out);
    } else {
      out += "<|im_start|>" + m.role + "\n" + m.content;
      append_tool_calls(m, m.content, &out);
      out += "<|im_end|>\n";
    }
  }
  if (o.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (qwen3 && !o.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

// The families without a tool-call format refuse tools rather than drop them.
void refuse_tools(ChatFamily family, std::span<const ChatMessage> msgs, const ChatOptions& o) {
  bool tools = !o.tools.empty();
  for (const ChatMessage& m : msgs) tools = tools || m.role == "tool" || !m.tool_calls.empty();
  if (tools)
    fail("chat template ", chat_family_name(family),
         ": xtile has no tool-call format for it (tools, tool_calls and \"tool\" messages work "
         "with the chatml, qwen3, llama3.1 and llama3.2 templates)");
}

std::string render_llama3(std::span<const ChatMessage> msgs, const ChatOptions& o) {
  std::string out = o.bos_text ? "<|begin_of_text|>" : "";
  for (const ChatMessage& m : msgs) {
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n";
    out += trim(m.content);
    out += "<|eot_id|>";
  }
  if (o.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Meta's Llama-2-chat format: the system prompt goes inside the first [INST] block; each
// finished assistant answer closes with </s> and the next user turn opens a new <s>[INST].
std::string render_llama2(std::span<const ChatMessage> msgs, const ChatOptions& o) {
  const std::string bos = o.bos_text ? "<s>" : "";
  std::string out = bos + "[INST] ";
  bool inside_turn = true;
  for (const ChatMessage& m : msgs) {
    const std::string_view content = trim(m.content);
    if (!inside_turn) {
      out += bos + "[INST] ";
      inside_turn = true;
    }
    if (m.role == "system") {
      out += "<<SYS>>\n";
      out += content;
      out += "\n<</SYS>>\n\n";
    } else if (m.role == "user") {
      out += content;
      out += " [/INST]";
    } else if (m.role == "assistant") {
      out += " ";
      out += content;
      out += " </s>";
      inside_turn = false;
    } else {
      fail("chat template llama2: unsupported role '", m.role,
           "' (expected system, user or assistant)");
    }
  }
  return out;
}

std::string render_none(std::span<const ChatMessage> msgs) {
  std::string out;
  for (const ChatMessage& m : msgs) {
    if (m.content.empty()) continue;
    if (!out.empty()) out += "\n\n";
    out += m.content;
  }
  return out;
}

}  // namespace

std::string_view chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::kNone: return "none";
    case ChatFamily::kChatML: return "chatml";
    case ChatFamily::kQwen3: return "qwen3";
    case ChatFamily::kLlama3: return "llama3";
    case ChatFamily::kLlama31:
      return "llama3.1";
    case ChatFamily::kLlama32:
      return "llama3.2";
    case ChatFamily::kLlama2: return "llama2";
  }
  return "none";
}

ChatFamily parse_chat_family(std::string_view name) {
  for (ChatFamily f :
       {ChatFamily::kNone, ChatFamily::kChatML, ChatFamily::kQwen3, ChatFamily::kLlama3,
        ChatFamily::kLlama31, ChatFamily::kLlama32, ChatFamily::kLlama2}) {
    if (name == chat_family_name(f)) return f;
  }
  fail("unknown chat template '", name,
       "' (expected none, chatml, qwen3, llama3, llama3.1, llama3.2 or llama2)");
}

ChatFamily chat_family_from_template(std::string_view jinja) {
  if (contains(jinja, "<|im_start|>")) {
    return contains(jinja, "<think>") || contains(jinja, "enable_thinking") ? ChatFamily::kQwen3
                                                                             : ChatFamily::kChatML;
  }
  if (contains(jinja, "<|start_header_id|>")) {
    // Llama 3.1 / 3.3 write a fixed date, 3.2 today's (strftime_now); Llama 3 neither.
    if (!contains(jinja, "Cutting Knowledge Date")) return ChatFamily::kLlama3;
    return contains(jinja, "strftime_now") ? ChatFamily::kLlama32 : ChatFamily::kLlama31;
  }
  if (contains(jinja, "[INST]")) return ChatFamily::kLlama2;
  return ChatFamily::kNone;
}

ChatFamily detect_chat_family(const gguf::File& f) {
  if (f.has("tokenizer.chat_template")) {
    return chat_family_from_template(f.get_string("tokenizer.chat_template"));
  }
  const std::string arch = f.get_string_or("general.architecture", "");
  const bool qwen3 = arch == "qwen3" || arch == "qwen3moe";
  if (vocab_has(f, "<|im_start|>")) return qwen3 ? ChatFamily::kQwen3 : ChatFamily::kChatML;
  if (vocab_has(f, "<|start_header_id|>")) return ChatFamily::kLlama3;
  if (qwen3) return ChatFamily::kQwen3;
  if (arch == "qwen2") return ChatFamily::kChatML;
  if (arch == "llama" && f.get_string_or("tokenizer.ggml.model", "") == "llama") {
    return ChatFamily::kLlama2;
  }
  return ChatFamily::kNone;
}

ToolCallFormat chat_family_tool_format(ChatFamily family) {
  switch (family) {
    case ChatFamily::kChatML:
    case ChatFamily::kQwen3:
      return ToolCallFormat::kHermes;
    case ChatFamily::kLlama31:
    case ChatFamily::kLlama32:
      return ToolCallFormat::kLlamaJson;
    default:
      return ToolCallFormat::kNone;
  }
}

bool chat_family_has_tools(ChatFamily family) {
  return chat_family_tool_format(family) != ToolCallFormat::kNone;
}

int chat_family_tool_indent(ChatFamily family) {
  return chat_family_tool_format(family) == ToolCallFormat::kLlamaJson ? 4 : 0;
}

namespace {

// A prefill: the messages rendered as a finished conversation with a marker after the last
// content, cut at the marker. Every family writes a message's content as it is (or trimmed at
// its start), so what precedes the marker is the turn's header and the content, whatever the
// family writes around them.
std::string render_continued(ChatFamily family, std::span<const ChatMessage> messages,
                             const ChatOptions& options) {
  if (messages.empty() || messages.back().role != "assistant")
    fail("continuing the last message needs an assistant message last");
  if (!messages.back().tool_calls.empty())
    fail("the last assistant message has tool calls: it is finished and cannot be continued");
  static constexpr std::string_view kMarker = "\x01\x02xtile-continue\x02\x01";
  std::vector<ChatMessage> msgs(messages.begin(), messages.end());
  msgs.back().content += kMarker;
  ChatOptions o = options;
  o.continue_final_message = false;
  o.add_generation_prompt = false;
  std::string out = apply_chat_template(family, msgs, o);
  const size_t at = out.rfind(kMarker);
  if (at == std::string::npos)
    fail("chat template ", chat_family_name(family), " dropped the last message");
  out.resize(at);
  return out;
}

}  // namespace

std::string apply_chat_template(ChatFamily family, std::span<const ChatMessage> messages,
                                const ChatOptions& options) {
  if (options.continue_final_message) return render_continued(family, messages, options);
  if (!chat_family_has_tools(family)) refuse_tools(family, messages, options);
  switch (family) {
    case ChatFamily::kChatML: return render_chatml(messages, options, false);
    case ChatFamily::kQwen3: return render_chatml(messages, options, true);
    case ChatFamily::kLlama3: return render_llama3(messages, options);
    case ChatFamily::kLlama31:
      return render_llama31(messages, options,
                            options.date_string.empty() ? "26 Jul 2024" : options.date_string);
    case ChatFamily::kLlama32:
      return render_llama31(messages, options,
                            options.date_string.empty() ? llama32_today() : options.date_string);
    case ChatFamily::kLlama2: return render_llama2(messages, options);
    case ChatFamily::kNone: return render_none(messages);
  }
  return render_none(messages);
}

std::string apply_chat_template(ChatFamily family, std::string_view system,
                                std::string_view user, const ChatOptions& options) {
  std::vector<ChatMessage> msgs;
  if (!system.empty()) msgs.push_back({"system", std::string(system)});
  msgs.push_back({"user", std::string(user)});
  return apply_chat_template(family, msgs, options);
}

}  // namespace xtile
