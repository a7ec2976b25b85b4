// llama-server's lazy grammar (`grammar_lazy` with `grammar_triggers`): the reply is free text
// until it writes one of the trigger words; from the word's first byte on it is held to the
// grammar (which therefore begins with the word: llama.cpp feeds the grammar the text from the
// trigger's start, as here). Where llama.cpp applies no mask before the trigger and fails the
// request when the grammar refuses the text a token brought with it, here the byte that would
// complete a word is taken only when the grammar takes the word: a trigger cannot begin a reply
// the grammar refuses, and the mask is exact on every token.
//
// Triggers are words (llama.cpp's type 1), and tokens (type 0) by their text; the words are
// watched byte by byte, so the first word to be completed wins (llama.cpp checks at each token's
// end, in the list's order: two words completed within one token may pick differently).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/byte_grammar.h"
#include "server/memo_key.h"

namespace xtile::server {

// The trigger words of one request.
struct GrammarTriggers {
  static constexpr size_t kMaxWords = 16;  // a byte each of matched state
  static constexpr size_t kMaxWordBytes = 255;
  std::vector<std::string> words;
};

template <class Inner>
class LazyGrammar : public ByteGrammar<LazyGrammar<Inner>> {
 public:
  // triggers: kept by the caller for this recognizer's life (at most kMaxWords words of 1 to
  // kMaxWordBytes bytes: the request's parser checks).
  LazyGrammar(Inner inner, const GrammarTriggers* triggers)
      : inner_(std::move(inner)), triggers_(triggers) {}

  bool awaiting() const { return awaiting_; }
  // Before a trigger the reply may end anywhere; after, where the grammar allows.
  bool may_end() const { return awaiting_ || inner_.may_end(); }
  bool complete() const { return !awaiting_ && inner_.complete(); }
  bool free_text() const { return awaiting_ || inner_.free_text(); }
  void memo_key(std::string* key) const {
    put_key(key, awaiting_);
    put_key(key, triggers_);
    if (awaiting_)  // the inner grammar waits at its start
      for (size_t i = 0; i < triggers_->words.size(); ++i) put_key(key, matched_[i]);
    else
      inner_.memo_key(key);
  }

 private:
  friend class ByteGrammar<LazyGrammar>;
  bool step(uint8_t c) {
    if (!awaiting_) return inner_.try_step(c);
    const std::vector<std::string>& words = triggers_->words;
    for (size_t i = 0; i < words.size(); ++i) matched_[i] = tag_advance(words[i], matched_[i], c);
    for (size_t i = 0; i < words.size(); ++i) {
      if (matched_[i] != words[i].size()) continue;
      awaiting_ = false;  // the grammar reads the word, then what follows
      for (char w : words[i])
        if (!inner_.try_step(static_cast<uint8_t>(w))) return false;
      return true;
    }
    return true;
  }

  Inner inner_;
  const GrammarTriggers* triggers_;
  bool awaiting_ = true;
  std::array<uint8_t, GrammarTriggers::kMaxWords> matched_{};  // each word's bytes matched
};

}  // namespace xtile::server
