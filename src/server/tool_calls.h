// Function calling (OpenAI's tools / tool_calls) for the templates whose models write
// <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen2.5, Qwen3: chat_template.h).
//
//  - python_json: a tool definition as the template's `tojson` writes it into the prompt
//    (Python's json.dumps: ", " and ": " separators, the client's key order, non-ASCII as is).
//  - ToolCallSplitter (HTTP side, after ReasoningSplitter): takes the answer's content text
//    incrementally and takes each complete <tool_call> block out of it as a call. A block whose
//    JSON is not a call ({"name": string, "arguments": ...}) stays in the content, as does an
//    unclosed one when the text ends; nothing the model wrote is lost. Whitespace next to a
//    call (the newlines the format puts around it) is dropped.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace xtile::server {

std::string python_json(const nlohmann::ordered_json& v);

struct ToolCallOut {
  std::string id;  // call_...
  std::string name;
  std::string arguments;  // JSON text (OpenAI sends arguments as a string)
};

class ToolCallSplitter {
 public:
  // Adds content text; appends what is now final to *content and the completed calls to *calls.
  void push(std::string_view text, std::string* content, std::vector<ToolCallOut>* calls);
  // End of the text: what was held back (an unclosed block goes to the content as written).
  void finish(std::string* content, std::vector<ToolCallOut>* calls);
  // Whether any call came out.
  bool called() const { return called_; }

 private:
  void run(bool final, std::string* content, std::vector<ToolCallOut>* calls);
  void emit_text(std::string_view text, std::string* content);
  std::string pending_;
  bool in_call_ = false;
  bool after_call_ = false;  // whitespace that follows a call is dropped
  bool called_ = false;
};

// OpenAI's tool_calls array: [{id, type: "function", function: {name, arguments}}]; with
// `first_index` >= 0 each entry also has "index" (streamed deltas), counting from it.
nlohmann::json tool_calls_json(const std::vector<ToolCallOut>& calls, int first_index = -1);

}  // namespace xtile::server
