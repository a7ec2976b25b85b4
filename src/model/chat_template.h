// Chat prompt formats. xtile does not run Jinja: it recognises the family a GGUF's
// tokenizer.chat_template belongs to (or guesses it from the vocabulary and architecture when
// the key is absent) and renders that family's format itself. Renderings follow the official
// templates; see docs/TOKENIZER.md for the exact strings.
//
// The rendered text contains special-token texts (<|im_start|>, <|begin_of_text|>, <s>, ...):
// encode it with parse_special = true. It already starts with the BOS text where the family has
// one (ChatOptions::bos_text), so encode it with add_bos = false.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xtile {

namespace gguf {
class File;
}

enum class ChatFamily {
  kNone,    // no template: the message contents joined by blank lines
  kChatML,  // <|im_start|>role\n...<|im_end|>\n (Qwen2, Qwen2.5)
  kQwen3,   // ChatML, plus the empty think block when thinking is disabled
  kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  kLlama2,  // [INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST]
  // Llama 3.1 and 3.3 (and the 3.2 layout with a fixed date): Llama-3's turns after a system
  // turn that always opens with "Cutting Knowledge Date: December 2023\nToday Date: ...";
  // function calls as a JSON object, the whole answer (chat_llama31.h).
  kLlama31,
  // Llama 3.2: as kLlama31, but "Today Date" is the day the prompt is rendered (its template's
  // strftime_now("%d %b %Y")), in local time.
  kLlama32,
};

// How a family's models write a function call (chat_family_tool_format).
enum class ToolCallFormat {
  kNone,       // the family has no tool-call format: tools are refused
  kHermes,     // <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call> blocks (Qwen)
  kLlamaJson,  // the whole answer is {"name": ..., "parameters": {...}} (Llama 3.1-3.3)
};

// A function call an assistant turn made (OpenAI's tool_calls[].function).
struct ToolCall {
  std::string name;
  std::string arguments;  // JSON text, written into the prompt as it is
};

struct ChatMessage {
  // "system", "user", "assistant", "tool" (a function's result; the families with a tool-call
  // format only). ChatML and the Llama-3 families accept any other role as a header.
  std::string role;
  std::string content;
  // Assistant turns: the reasoning sent apart from the content (OpenAI-style clients echo
  // reasoning_content); Qwen3 writes it back as a think block for the turns after the last
  // user message, and drops it before.
  std::optional<std::string> reasoning_content = std::nullopt;
  std::vector<ToolCall> tool_calls = {};  // assistant turns
};

struct ChatOptions {
  // End with the header of the assistant's turn, so that the model writes the answer.
  bool add_generation_prompt = true;
  // Qwen3 only: false appends "<think>\n\n</think>\n\n" after the assistant header, as Qwen3's
  // template does for enable_thinking=false; true (the template's default) appends nothing.
  bool enable_thinking = true;
  // Llama-3 / Llama-2: start with the BOS text (<|begin_of_text|>, <s>), as their templates'
  // {{ bos_token }} does. ChatML families have no BOS.
  bool bos_text = true;
  // Function definitions offered to the model, each serialized as the template's `tojson` writes
  // it (server/tool_calls.h: python_json, indented as chat_family_tool_indent says). Empty: none.
  // Only the families with a tool-call format take them (chat_family_has_tools); the others fail.
  std::vector<std::string> tools = {};
  // Llama 3.1-3.3 (the templates' variables of the same names): the "Today Date" line (empty:
  // the family's, "26 Jul 2024" for kLlama31, today for kLlama32), and whether the tools go into
  // the first user message (the templates' default) rather than the system turn.
  std::string date_string = {};
  bool tools_in_user_message = true;
  // The last message is an assistant's answer begun by the caller (a "prefill",
  // transformers' continue_final_message): the prompt ends with its content as the template
  // writes it, without the end of the turn, and the model continues it. add_generation_prompt
  // is not used. Fails when the last message is not an assistant's or carries tool calls.
  bool continue_final_message = false;
};

// "none", "chatml", "qwen3", "llama3", "llama3.1", "llama3.2", "llama2".
std::string_view chat_family_name(ChatFamily family);
// The family's tool-call format: kHermes for chatml and qwen3, kLlamaJson for llama3.1 and
// llama3.2, kNone for the others.
ToolCallFormat chat_family_tool_format(ChatFamily family);
// Whether xtile renders the family's tool-call format (tools, tool_calls, role "tool").
bool chat_family_has_tools(ChatFamily family);
// The indent the family's template gives `tojson` for a tool definition: 0 (one line, Qwen's
// `tool | tojson`) or 4 (Llama 3.1's `t | tojson(indent=4)`).
int chat_family_tool_indent(ChatFamily family);
// The inverse (for a --chat-template flag); fails listing the names.
ChatFamily parse_chat_family(std::string_view name);
// The family a Jinja template text belongs to, by its markers: <|im_start|> (with <think> or
// enable_thinking: Qwen3), <|start_header_id|> (with "Cutting Knowledge Date": Llama 3.1, or
// 3.2 where the date comes from strftime_now), [INST]. kNone when none is present.
ChatFamily chat_family_from_template(std::string_view jinja);
// From tokenizer.chat_template when present (kNone if it is not recognised); otherwise from the
// vocabulary (<|im_start|> -> ChatML, or Qwen3 for qwen3/qwen3moe; <|start_header_id|> ->
// Llama-3), then the architecture (qwen2 -> ChatML, qwen3/qwen3moe -> Qwen3, llama with a
// SentencePiece vocabulary -> Llama-2), else kNone.
ChatFamily detect_chat_family(const gguf::File& file);

std::string apply_chat_template(ChatFamily family, std::span<const ChatMessage> messages,
                                const ChatOptions& options = {});
// One turn: an optional system message (empty: none) and the user's message.
std::string apply_chat_template(ChatFamily family, std::string_view system,
                                std::string_view user, const ChatOptions& options = {});

}  // namespace xtile
