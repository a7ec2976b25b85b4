#include "model/chat_template.h"

#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"

namespace xtile {
namespace {

// Llama-2 and Llama-3 templates strip each message (`| trim`, `.strip()`); ChatML ones do not.
std::string_view trim(std::string_view s) {
  const char* ws = " \t\n\r";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

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

std::string render_chatml(std::span<const ChatMessage> msgs, const ChatOptions& o, bool qwen3) {
  std::string out;
  for (const ChatMessage& m : msgs) {
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  if (o.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (qwen3 && !o.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
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
    case ChatFamily::kLlama2: return "llama2";
  }
  return "none";
}

ChatFamily parse_chat_family(std::string_view name) {
  for (ChatFamily f : {ChatFamily::kNone, ChatFamily::kChatML, ChatFamily::kQwen3,
                       ChatFamily::kLlama3, ChatFamily::kLlama2}) {
    if (name == chat_family_name(f)) return f;
  }
  fail("unknown chat template '", name, "' (expected none, chatml, qwen3, llama3 or llama2)");
}

ChatFamily chat_family_from_template(std::string_view jinja) {
  if (contains(jinja, "<|im_start|>")) {
    return contains(jinja, "<think>") || contains(jinja, "enable_thinking") ? ChatFamily::kQwen3
                                                                             : ChatFamily::kChatML;
  }
  if (contains(jinja, "<|start_header_id|>")) return ChatFamily::kLlama3;
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

std::string apply_chat_template(ChatFamily family, std::span<const ChatMessage> messages,
                                const ChatOptions& options) {
  switch (family) {
    case ChatFamily::kChatML: return render_chatml(messages, options, false);
    case ChatFamily::kQwen3: return render_chatml(messages, options, true);
    case ChatFamily::kLlama3: return render_llama3(messages, options);
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
