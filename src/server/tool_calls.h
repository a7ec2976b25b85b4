// Function calling (OpenAI's tools / tool_calls) for the templates with a tool-call format
// (chat_template.h): models that write <tool_call>{"name": ..., "arguments": {...}}</tool_call>
// blocks (Qwen2.5, Qwen3) and those whose whole answer is {"name": ..., "parameters": {...}}
// (Llama 3.1-3.3).
//
//  - python_json: a tool definition as the template's `tojson` writes it into the prompt
//    (Python's json.dumps: ", " and ": " separators, the client's key order, non-ASCII as is).
//  - ToolCallSplitter (HTTP side, after ReasoningSplitter): takes the answer's content text
//    incrementally and takes each complete <tool_call> block out of it as a call. A block whose
//    JSON is not a call ({"name": string, "arguments": ...}) stays in the content, as does an
//    unclosed one when the text ends; nothing the model wrote is lost. Whitespace next to a
//    call (the newlines the format puts around it) is dropped. In Llama's format an answer
//    that opens with '{' is held to its end and is a call when it is one object of "name" and
//    "parameters" (or "arguments"); otherwise it is the content, as written.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/chat_template.h"

namespace xtile::server {

// indent > 0: tojson(indent=N), each item on a line of its own (Llama 3.1's tool definitions).
std::string python_json(const nlohmann::ordered_json& v, int indent = 0);

struct ToolCallOut {
  std::string id;  // call_...
  std::string name;
  std::string arguments;  // JSON text (OpenAI sends arguments as a string)
};

class ToolCallSplitter {
 public:
  // The calls' format (chat_template.h): Hermes blocks anywhere in the content, or Llama's JSON
  // object as the whole answer.
  explicit ToolCallSplitter(ToolCallFormat format = ToolCallFormat::kHermes) : format_(format) {}

  // Adds content text; appends what is now final to *content and the completed calls to *calls.
  void push(std::string_view text, std::string* content, std::vector<ToolCallOut>* calls);
  // End of the text: what was held back (an unclosed block goes to the content as written).
  void finish(std::string* content, std::vector<ToolCallOut>* calls);
  // Whether any call came out.
  bool called() const { return called_; }

 private:
  void run(bool final, std::string* content, std::vector<ToolCallOut>* calls);
  void run_whole(bool final, std::string* content, std::vector<ToolCallOut>* calls);
  void emit_text(std::string_view text, std::string* content);
  ToolCallFormat format_;
  bool answer_started_ = false;  // Llama's format: text came out, so no call follows
  std::string pending_;
  bool in_call_ = false;
  bool after_call_ = false;  // whitespace that follows a call is dropped
  bool called_ = false;
};

// OpenAI's tool_calls array: [{id, type: "function", function: {name, arguments}}]; with
// `first_index` >= 0 each entry also has "index" (streamed deltas), counting from it.
nlohmann::json tool_calls_json(const std::vector<ToolCallOut>& calls, int first_index = -1);

}  // namespace xtile::server
