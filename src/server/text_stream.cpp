#include "server/text_stream.h"

#include <algorithm>

namespace xtile::server {

namespace {
namespace text_stream {  // unity batches: CMakeLists.txt

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

// Longest suffix of `text` that is a proper prefix of `tag`.
size_t partial_suffix(std::string_view text, std::string_view tag) {
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

}  // namespace text_stream
}  // namespace

size_t partial_stop_suffix(std::string_view text, const std::vector<std::string>& stops) {
  using namespace text_stream;  // this file's helpers
  size_t hold = 0;
  for (const std::string& s : stops) hold = std::max(hold, partial_suffix(text, s));
  return hold;
}

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stops,
                       bool at_sequence_start)
    : decoder_(tokenizer, at_sequence_start) {
  // An empty stop string would match before the first byte; it means no stop.
  for (std::string& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

bool TextStream::push(int32_t token) {
  if (stopped_) return true;
  text_ += decoder_.push(token);
  decoded_ = text_.size();
  // A stop string can only start in the held-back part: every released byte was checked not to
  // begin one.
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    const size_t at = text_.find(s, released_);
    if (at < first) {
      first = at;
      stop_word_ = s;
    }
  }
  if (first != std::string::npos) {
    text_.resize(first);
    released_ = first;
    stopped_ = true;
    return true;
  }
  released_ = text_.size() - partial_stop_suffix(std::string_view(text_).substr(released_), stops_);
  return false;
}

void TextStream::finish() {
  if (stopped_) return;
  text_ += decoder_.flush();
  decoded_ = text_.size();
  released_ = text_.size();
}

ReasoningSplitter::ReasoningSplitter(bool in_reasoning)
    : state_(in_reasoning ? State::kReasoningStart : State::kStart) {}

void ReasoningSplitter::push(std::string_view text, std::string* reasoning, std::string* content) {
  pending_ += text;
  run(false, reasoning, content);
}

void ReasoningSplitter::finish(std::string* reasoning, std::string* content) {
  run(true, reasoning, content);
}

void ReasoningSplitter::run(bool final, std::string* reasoning, std::string* content) {
  using namespace text_stream;  // this file's helpers
  for (;;) {
    switch (state_) {
      case State::kStart: {
        // Only a think block at the very start (after whitespace) is reasoning.
        size_t i = 0;
        while (i < pending_.size() && is_text_space(pending_[i])) ++i;
        const std::string_view rest = std::string_view(pending_).substr(i);
        if (rest.starts_with(kOpen)) {
          pending_.erase(0, i + kOpen.size());
          state_ = State::kReasoningStart;
          continue;
        }
        if (!final && kOpen.starts_with(rest)) return;  // all whitespace, or "<thi"
        state_ = State::kContent;
        continue;
      }
      case State::kReasoningStart:
      case State::kContentStart: {
        size_t i = 0;
        while (i < pending_.size() && is_text_space(pending_[i])) ++i;
        pending_.erase(0, i);
        if (pending_.empty()) return;
        state_ = state_ == State::kReasoningStart ? State::kReasoning : State::kContent;
        continue;
      }
      case State::kReasoning: {
        const size_t close = pending_.find(kClose);
        size_t keep;  // bytes of pending_ held back
        if (close != std::string::npos) {
          keep = pending_.size() - close;
        } else if (final) {
          keep = 0;
        } else {
          keep = partial_suffix(pending_, kClose);
        }
        // Whitespace before the closing tag is not part of the reasoning: hold it until text
        // follows it.
        size_t end = pending_.size() - keep;
        while (end > 0 && is_text_space(pending_[end - 1])) --end;
        reasoning->append(pending_, 0, end);
        if (close != std::string::npos) {
          pending_.erase(0, close + kClose.size());
          state_ = State::kContentStart;
          continue;
        }
        pending_.erase(0, final ? pending_.size() : end);
        return;
      }
      case State::kContent:
        content->append(pending_);
        pending_.clear();
        return;
    }
  }
}

}  // namespace xtile::server
