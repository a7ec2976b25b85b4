// Generated tokens -> the text a client may be sent. Two stages, both incremental:
//
//  - TextStream (scheduler side): decodes tokens (whole UTF-8 characters, via StreamDecoder)
//    and looks for the request's stop strings. Text that could still turn out to be the start
//    of a stop string is held back; a completed stop string ends the generation and is cut
//    from the text, with everything after it. released() bytes of text() are final.
//  - ReasoningSplitter (HTTP side): splits final text into reasoning and content: a leading
//    <think>...</think> block (Qwen3, DeepSeek-R1 style) becomes reasoning_content, the rest
//    content. Partial tags and the whitespace around the block are held back until decided.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace xtile::server {

class TextStream {
 public:
  // `at_sequence_start`: the first token starts the text (SPM's dummy-prefix space is removed);
  // false when the text continues a prompt.
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stops, bool at_sequence_start);

  // Appends the token's text. Returns true when a stop string is now complete: text() is then
  // cut where it starts and everything is released.
  bool push(int32_t token);
  // End of generation without a stop string: releases what was held back.
  void finish();

  const std::string& text() const { return text_; }
  size_t released() const { return released_; }
  bool stopped() const { return stopped_; }
  // The stop string that ended the text (the earliest in it; "" while none has).
  const std::string& stop_word() const { return stop_word_; }
  // Bytes of text() that came from tokens pushed so far (before any cut).
  size_t decoded_bytes() const { return decoded_; }

 private:
  StreamDecoder decoder_;
  std::vector<std::string> stops_;
  std::string text_;
  size_t released_ = 0;
  size_t decoded_ = 0;
  bool stopped_ = false;
  std::string stop_word_;
};

// The whitespace the splitters hold back and drop around tags: space, tab, CR, LF.
inline bool is_text_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// The length of the longest suffix of `text` that is a proper prefix of one of `stops` (the
// bytes that must wait for the next token).
size_t partial_stop_suffix(std::string_view text, const std::vector<std::string>& stops);

class ReasoningSplitter {
 public:
  // `in_reasoning`: the prompt already opened a think block (the output starts inside it).
  explicit ReasoningSplitter(bool in_reasoning = false);
  // Adds final text; appends what can be sent now to *reasoning and *content.
  void push(std::string_view text, std::string* reasoning, std::string* content);
  // End of the text: whatever was held back (an unclosed think block stays reasoning).
  void finish(std::string* reasoning, std::string* content);

 private:
  enum class State { kStart, kReasoningStart, kReasoning, kContentStart, kContent };
  void run(bool final, std::string* reasoning, std::string* content);
  State state_;
  std::string pending_;
};

}  // namespace xtile::server
