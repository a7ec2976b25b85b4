// A reply that may think before what a grammar admits: Qwen3's template lets the model write a
// <think> block first, and a constrained reply (JSON mode, a GBNF grammar) should keep that ability
// when the client asks for it (chat_template_kwargs.enable_thinking). ThinkFirst<Grammar> admits an
// optional "<think>...</think>" at the reply's start (or the rest of one when the prompt opened
// it), then up to kMaxGap blanks, then what the grammar admits. Inside the think block the
// model writes what it likes; an end of generation there is refused (the reply owes the
// grammar's part).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "server/byte_grammar.h"
#include "server/grammar_memo.h"

namespace xtile::server {

// feed(), accepts() and take() come from ByteGrammar.
template <class Grammar>
class ThinkFirst : public ByteGrammar<ThinkFirst<Grammar>> {
 public:
  static constexpr int kMaxGap = 4;  // "\n\n" after </think>, as Qwen3 writes it

  ThinkFirst(Grammar inner, bool starts_in_think)
      : inner_(std::move(inner)), phase_(starts_in_think ? Phase::kThink : Phase::kLead) {}

  bool complete() const { return phase_ == Phase::kInner && inner_.complete(); }
  bool may_end() const { return phase_ == Phase::kInner && inner_.may_end(); }
  // For the mask's memo (grammar_memo.h), where the inner grammar has one.
  void memo_key(std::string* key) const requires MemoKeyed<Grammar> {
    key->push_back(static_cast<char>(phase_));
    key->push_back(static_cast<char>(matched_));
    inner_.memo_key(key);
  }
  bool free_text() const {
    return phase_ == Phase::kThink || (phase_ == Phase::kInner && inner_.free_text());
  }

 private:
  friend class ByteGrammar<ThinkFirst>;
  enum class Phase : uint8_t { kLead, kThink, kGap, kInner };
  static constexpr std::string_view kOpen = "<think>";
  static constexpr std::string_view kClose = "</think>";

  bool step(uint8_t c) {
    switch (phase_) {
      case Phase::kLead:  // "<think>", or the grammar's part
        if (static_cast<uint8_t>(kOpen[matched_]) == c) {
          if (++matched_ == kOpen.size()) {
            phase_ = Phase::kThink;
            matched_ = 0;
          }
          return true;
        }
        // Not the tag: the bytes read as its start were the grammar's (a GBNF grammar may
        // begin with '<'). A reply that starts with all of "<think>" is the think block.
        phase_ = Phase::kInner;
        for (uint8_t i = 0; i < matched_; ++i)
          if (!inner_.try_step(static_cast<uint8_t>(kOpen[i]))) return false;
        return inner_.try_step(c);
      case Phase::kThink:
        matched_ = tag_advance(kClose, matched_, c);
        if (matched_ == kClose.size()) {
          phase_ = Phase::kGap;
          matched_ = 0;
        }
        return true;
      case Phase::kGap:  // up to kMaxGap blanks; any more are the grammar's (one may begin so)
        if ((c == ' ' || c == '\n' || c == '\r' || c == '\t') && matched_ < kMaxGap) {
          ++matched_;
          return true;
        }
        phase_ = Phase::kInner;
        return inner_.try_step(c);
      case Phase::kInner:
        return inner_.try_step(c);
    }
    return false;
  }

  Grammar inner_;
  Phase phase_;
  uint8_t matched_ = 0;  // kLead, kThink: bytes of the tag; kGap: blanks
};

}  // namespace xtile::server
