// Text helpers the chat renderers share (chat_template.cpp, chat_llama31.cpp).
#pragma once

#include <string_view>

namespace xtile::chat_text {

// Jinja's `| trim` and Python's str.strip() as the Llama templates apply them to each message
// (the ASCII blanks; ChatML templates do not trim).
inline std::string_view trim(std::string_view s) {
  const char* ws = " \t\n\r";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace xtile::chat_text
