// The grammar of llama-server's `grammar` field: a byte-at-a-time recognizer of the prefixes of
// a GBNF grammar's texts (gbnf.h), for GrammarConstraint (reply_constraint.h).
//
// The state is a set of stacks, as in llama.cpp's engine: each stack is the positions still to
// be matched, innermost on top, and its top is always a character class (references are
// expanded into their alternatives when they reach the top; a reference last in its
// alternative leaves no return position, so right recursion stays flat). A code point keeps the
// stacks whose top class contains it, each advanced and expanded again. An empty stack is a
// whole text. Bytes of a multi-byte character wait until it is whole; meanwhile each is
// refused unless some stack's top class holds a valid character with that beginning (no
// overlong forms, surrogates or code points past U+10FFFF).
//
// Limits that bound the state's size and each step's work (the mask copies the state once per
// token of the vocabulary, and a client's grammar must not stall the server): at most
// kMaxStacks stacks, kMaxDepth positions deep, and kMaxWork words written per character. A step
// that would pass one throws an xtile::Error rather than refusing the byte (a refusal is the
// grammar's alone, and a sampler never meets a dead end): a grammar whose start already passes
// them is the request's 400, and one that does later fails its request. The words written on
// each thread add up in gbnf_work(), which GrammarConstraint reads to bound a whole mask
// (reply_constraint.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/byte_grammar.h"
#include "server/gbnf.h"

namespace xtile::server {

// feed(), accepts() and take() come from ByteGrammar.
class GbnfPrefix : public ByteGrammar<GbnfPrefix> {
 public:
  static constexpr uint32_t kMaxStacks = 1024;
  static constexpr uint32_t kMaxDepth = 512;
  static constexpr uint32_t kMaxWork = 1 << 16;

  // grammar: kept by the caller for this state's life. Throws xtile::Error when the grammar's
  // start passes a limit (as feed() and the others do when a step would).
  explicit GbnfPrefix(const GbnfGrammar* grammar);

  // Only the empty stack is left: the text is whole and nothing may follow.
  bool complete() const { return n_stacks_ == 1 && stacks_[0] == 0 && utf8_left_ == 0; }
  // The text so far is one of the grammar's.
  bool may_end() const { return has_empty_ && utf8_left_ == 0; }
  bool free_text() const { return false; }
  // The fewest code points that make the text whole from here, a character whose first bytes
  // came counted among them (0 when it may end now; saturated at UINT32_MAX).
  uint32_t shortest_completion() const;
  const GbnfGrammar* grammar() const { return g_; }
  // The state's bytes, for the mask's memo (grammar_memo.h). Without the grammar: states of two
  // grammars may write the same bytes.
  void memo_key(std::string* key) const {
    key->append(reinterpret_cast<const char*>(stacks_.data()), stacks_.size() * sizeof(uint32_t));
    if (utf8_left_ > 0) {
      key->push_back(static_cast<char>(utf8_left_));
      key->push_back(static_cast<char>(utf8_len_));
      key->append(reinterpret_cast<const char*>(&utf8_value_), sizeof(utf8_value_));
    }
  }

 private:
  friend class ByteGrammar<GbnfPrefix>;
  bool step(uint8_t c);
  // Keeps the stacks whose top takes cp, advanced and expanded; false when none does.
  bool advance(uint32_t cp);
  // Some stack's top takes a code point in the valid range that the pending UTF-8 bytes begin.
  bool partial_viable() const;
  // The top of the stack at stacks_[pos] takes such a code point.
  bool top_takes_pending(size_t pos) const;
  // Expands the stack work_ holds (positions bottom first, its depth last) into out_.
  void expand();
  // Appends the stack held in work_ at [begin, begin + depth) to out_ unless out_ has it.
  void emit(size_t begin, uint32_t depth);
  [[noreturn]] void over_limits() const;

  // Scratch space whose capacity a copy does not take: the mask's probe is assigned the state
  // once per token and keeps its own buffers.
  struct Scratch {
    std::vector<uint32_t> v;
    Scratch() = default;
    Scratch(const Scratch&) {}
    Scratch& operator=(const Scratch&) { return *this; }
  };

  const GbnfGrammar* g_;
  // The stacks, one after another: its depth d, then its d positions, bottom first.
  std::vector<uint32_t> stacks_;
  uint32_t n_stacks_ = 0;
  bool has_empty_ = false;
  // A multi-byte character being read: its bits so far, bytes still to come, its length.
  uint32_t utf8_value_ = 0;
  uint8_t utf8_left_ = 0, utf8_len_ = 0;
  Scratch out_, work_, offsets_;
  uint32_t words_ = 0;  // words written (and stacks popped) for the character being read
};

// Words every GbnfPrefix on this thread has written so far (a work counter, not a size).
uint64_t gbnf_work();

}  // namespace xtile::server
