// Function calling's grammar: a byte-at-a-time recognizer of the replies whose tool calls are
// written in the template's format (chat_template.h: ToolCallFormat):
//
//   Hermes (Qwen):  <tool_call>\n{"name": "NAME", "arguments": ARGUMENTS}\n</tool_call>
//   Llama 3.1-3.3:  {"name": "NAME", "parameters": ARGUMENTS}   (the whole answer)
//
// with NAME one of the request's tools and ARGUMENTS a JSON object, an instance of that tool's
// `parameters` schema where json_schema.h can compile it (JsonPrefix). The frame is written in
// the one spelling the models were trained on (and the template renders past calls in); the
// arguments in any valid one.
//
// Two ways to use it (ToolCallRules::forced):
//  - forced (tool_choice "required" or a named function): the reply is calls and nothing else,
//    one, or with parallel calls one or more separated by '\n' (Hermes); before the first, a
//    template that thinks may write its <think> block (then up to kMaxGap blanks). Llama's
//    answer is one call (its template renders one per turn).
//  - lazy (tool_choice "auto"): the reply is free text; where the model opens a block
//    (writes "<tool_call>" outside a think block at the reply's start) the block is held to the
//    grammar until it closes, and free text follows. In Llama's format the answer is a call
//    when, after blanks, it spells {"name": " (held to the tools from there on, then the end);
//    an answer that began otherwise is text to its end. The grammar never makes the model call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/chat_template.h"
#include "server/byte_grammar.h"
#include "server/json_prefix.h"
#include "server/json_schema.h"
#include "server/memo_key.h"

namespace xtile::server {

struct ToolCallRules {
  struct Tool {
    std::string name;
    std::shared_ptr<const JsonSchema> parameters;  // null: any object
  };
  // Adds a tool the reply may call (a name already added is ignored: the first one counts).
  void add(std::string name, std::shared_ptr<const JsonSchema> parameters);

  std::vector<Tool> tools;  // sorted by key
  // Each tool's name as the frame spells it: JSON string content and the closing quote.
  std::vector<std::string> keys;
  bool forced = false;   // required / named: the reply is calls
  bool parallel = true;  // forced: more than one call may be made (Hermes)
  ToolCallFormat format = ToolCallFormat::kHermes;  // the template's (chat_family_tool_format)
};

// feed(), accepts() and take() come from ByteGrammar.
class ToolCallPrefix : public ByteGrammar<ToolCallPrefix> {
 public:
  // Blanks allowed between a forced reply's think block and its first call ("\n\n").
  static constexpr int kMaxGap = 4;

  // rules: kept by the caller for this recognizer's life. may_think: a forced reply may write
  // a think block first (the template thinks); starts_in_think: the prompt opened one, and the
  // reply starts inside it.
  explicit ToolCallPrefix(const ToolCallRules& rules, bool may_think = false,
                          bool starts_in_think = false);

  // A forced reply's last call closed (one call, or the model ended after a call), or Llama's
  // one call closed.
  bool complete() const { return phase_ == Phase::kDone; }
  // End of generation allowed: outside a call, and in forced mode only after one.
  bool may_end() const;
  // Outside the frame and its think block's gap: the model writes what it likes (the grammar
  // watches for the tags).
  bool free_text() const;
  // Calls closed so far.
  int calls() const { return calls_; }
  // The state's key for the mask's memo (grammar_memo.h): every field a later step reads (the
  // count of calls is read by no step; the arguments' recognizer only while it is in use).
  void memo_key(std::string* key) const {
    put_key(key, rules_);
    put_key(key, phase_);
    put_key(key, next_);
    put_key(key, literal_.data());  // a piece of one of the frame's constants
    put_key(key, literal_.size());
    put_key(key, matched_);
    put_key(key, gap_);
    for (uint16_t v : {cand_lo_, cand_hi_, cand_pos_}) put_key(key, v);
    if (phase_ == Phase::kArgs || (phase_ == Phase::kLiteral && next_ == Phase::kArgs))
      args_.memo_key(key);  // last: its length varies
  }

 private:
  enum class Phase : uint8_t {
    kLead,     // the reply's start: "<think>" may open (lazy: after blanks); Llama: the call's
               // opening, matched_ bytes of it so far
    kThink,    // inside the think block, until "</think>"
    kGap,      // forced: blanks after the think block, then "<tool_call>"
    kFree,     // lazy: free text, watching for "<tool_call>" (Llama: not watching)
    kLiteral,  // the rest of a fixed piece of the frame, then next_
    kName,     // a tool's name (narrowing the sorted keys)
    kArgs,     // the arguments object
    kAfter,    // forced, parallel: '\n' and the next call, or the end
    kDone,     // forced, or Llama's call closed: nothing more
  };
  friend class ByteGrammar<ToolCallPrefix>;
  bool step(uint8_t c);
  void free_byte(uint8_t c);  // lazy, free text: the trigger's match
  bool llama_lead(uint8_t c);  // lazy, Llama's format: the answer's first bytes
  void begin_name();           // the frame's opening is written: the name comes
  void literal(std::string_view rest, Phase next);
  bool name_byte(uint8_t c);

  const ToolCallRules* rules_;
  Phase phase_;
  Phase next_ = Phase::kDone;
  std::string_view literal_;  // kLiteral: what is still to come
  // kLead: bytes of "<think>" (Llama: of the call's opening); kThink, kFree: of the tag watched.
  uint8_t matched_ = 0;
  uint8_t gap_ = 0;           // kGap: blanks so far
  uint16_t cand_lo_ = 0, cand_hi_ = 0, cand_pos_ = 0;  // kName: keys still possible
  int calls_ = 0;
  JsonPrefix args_;
};

}  // namespace xtile::server
