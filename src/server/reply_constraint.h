// Constrained decoding: the tokens a reply may take next so that its text stays the beginning
// of what a grammar admits, and the end of the reply when the grammar says it is whole. Two
// grammars use it: JSON mode (JsonPrefix: one JSON object, of a schema's instances) and tool
// calls (ToolCallPrefix: the template's <tool_call> blocks, forced or wherever the model opens
// one). The sampler draws as usual; a drawn token the grammar refuses is replaced by a draw
// from the logits with every refused token masked out. Drawing first and masking only on a
// refusal gives the masked distribution (p(t) + (1 − S)·p(t)/S = p(t)/S over the S of the
// allowed tokens) and costs one vocabulary pass only on the steps that need it.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "server/gbnf_prefix.h"
#include "server/grammar_memo.h"

namespace xtile {
class Tokenizer;
}

namespace xtile::server {

// Each token's bytes as a reply's text takes them, built once per server (on the first
// constrained request: 151936 strings for Qwen's vocabulary). End-of-generation tokens end the
// reply where the grammar allows an end. Other control tokens, unused ones and tokens without
// bytes are allowed only in free text: they add nothing the grammar could read.
class TokenBytes {
 public:
  // kUnread: control, unused or empty tokens (only in free text); kOutside: not an id of it.
  enum class Kind : uint8_t { kText, kEnd, kUnread, kOutside };
  explicit TokenBytes(const Tokenizer& tokenizer);
  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }
  Kind kind(int32_t id) const {
    return id < 0 || id >= size() ? Kind::kOutside : kinds_[static_cast<size_t>(id)];
  }
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }

 private:
  std::vector<std::string> bytes_;
  std::vector<Kind> kinds_;
};

// What the scheduler holds per constrained request.
class ReplyConstraint {
 public:
  virtual ~ReplyConstraint() = default;
  // Token id may come next.
  virtual bool allows(int32_t id) const = 0;
  // Sets every token that may not come next to −infinity; returns how many may.
  virtual int64_t mask(std::span<float> logits) const = 0;
  // Takes token id (one allows() said yes to). False, and nothing taken, otherwise.
  virtual bool accept(int32_t id) = 0;
  // The grammar admits nothing more: the reply ends here.
  virtual bool complete() const = 0;
};

// The token a sampler picks under constraint c: its own draw when c allows it, else a draw from
// the logits with every token c refuses masked out (the masked distribution: see the top of
// this file). draw(logits) is the request's sampler. Throws when no token is left, or when a
// logit bias of +inf (which replaces the logit) forces a refused one.
template <class Draw>
int32_t draw_constrained(const ReplyConstraint& c, std::span<const float> logits, Draw draw) {
  int32_t id = draw(logits);
  if (c.allows(id)) return id;
  std::vector<float> masked(logits.begin(), logits.end());
  if (c.mask(masked) == 0)
    fail("constrained output: no token of the vocabulary continues the reply here");
  id = draw(std::span<const float>(masked));
  if (!c.allows(id))
    fail("constrained output: a logit bias forces token ", id,
         ", which the reply's grammar (JSON mode, tool calls or a grammar) refuses");
  return id;
}

// Grammar: a byte-at-a-time recognizer of prefixes with feed(uint8_t) (false: refused, state
// unchanged), accepts(string_view) (every byte would be taken), take(string_view) (all or
// nothing), complete(), may_end() (an end of generation is allowed here) and free_text() (the
// reply is unconstrained text here, which the grammar only watches: tokens it cannot read, such
// as control tokens, may come as they would without it), and memo_key() (grammar_memo.h).
template <MemoKeyed Grammar>
class GrammarConstraint final : public ReplyConstraint {
 public:
  // The most words the GBNF engine may write in one mask (gbnf_prefix.h; JSON mode's patterns
  // run it too): about a second of work. Real grammars need a few million; a grammar built to
  // stall the server fails its own request instead (an Error, the request's failure).
  static constexpr uint64_t kMaxMaskWork = uint64_t{1} << 28;
  GrammarConstraint(const TokenBytes& vocab, Grammar grammar)
      : vocab_(&vocab), state_(std::move(grammar)) {}

  bool allows(int32_t id) const override {
    switch (vocab_->kind(id)) {
      case TokenBytes::Kind::kText:
        return state_.accepts(vocab_->bytes(id));
      case TokenBytes::Kind::kEnd:
        return state_.may_end();
      case TokenBytes::Kind::kUnread:
        return state_.free_text();
      case TokenBytes::Kind::kOutside:
        break;
    }
    return false;
  }

  // Through the memo of steps (grammar_memo.h); a token the full memo cannot step is stepped
  // from a copy of the state.
  int64_t mask(std::span<float> logits) const override {
    const int32_t start = memo_.start(state_);
    std::optional<Grammar> probe;
    return mask_with(logits, [&](const std::string& bytes) {
      int32_t s = start;
      for (char c : bytes) {
        s = memo_.next(s, static_cast<uint8_t>(c));
        if (s < 0) break;
      }
      if (s != GrammarMemo<Grammar>::kFull) return s >= 0;
      probe = state_;
      return probe->take(bytes);
    });
  }

  bool accept(int32_t id) override {
    if (vocab_->kind(id) == TokenBytes::Kind::kText) return state_.take(vocab_->bytes(id));
    return allows(id);  // an end or a token without bytes: nothing to read
  }

  bool complete() const override { return state_.complete(); }
  const Grammar& grammar() const { return state_; }

 private:
  // Masks every token that text_ok (for a token's bytes) or its kind refuses.
  template <class TextOk>
  int64_t mask_with(std::span<float> logits, TextOk text_ok) const {
    const bool may_end = state_.may_end(), free_text = state_.free_text();
    const uint64_t work_start = gbnf_work();
    int64_t allowed = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      const int32_t id = static_cast<int32_t>(i);
      if (i % 1024 == 0 && gbnf_work() - work_start > kMaxMaskWork)
        fail("the reply's grammar costs too much to follow (over ", kMaxMaskWork,
             " words of its engine's work for one token's choice)");
      bool ok = false;
      switch (vocab_->kind(id)) {
        case TokenBytes::Kind::kText:
          ok = text_ok(vocab_->bytes(id));
          break;
        case TokenBytes::Kind::kEnd:
          ok = may_end;
          break;
        case TokenBytes::Kind::kUnread:
          ok = free_text;
          break;
        case TokenBytes::Kind::kOutside:
          break;
      }
      if (ok)
        ++allowed;
      else
        logits[i] = -std::numeric_limits<float>::infinity();
    }
    return allowed;
  }

  const TokenBytes* vocab_;
  Grammar state_;
  mutable GrammarMemo<Grammar> memo_;
};

}  // namespace xtile::server
