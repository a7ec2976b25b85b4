// Lookaheads at a pattern's start, `^(?=A)(?!B)REST` (Pydantic's Decimal fields carry
// `^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$`): the strings REST matches whole that A matches from their
// start and B does not. json_pattern.cpp translates A, B and REST into GBNF grammars of their own;
// this writes one grammar of their combination, which JsonPrefix then keeps as any pattern's.
//
// The combination is built as an automaton: its states are the tuples of the parts' engine
// states (GbnfPrefix, by their memo keys) met from the start, its letters the intervals of code
// points that no part's character class tells apart (each stepped once, through one member);
// a positive lookahead's refusal ends the path, a negative one's refusal satisfies it for good.
// A state accepts where REST and every positive lookahead may end and no negative one may.
// States that reach no accepting state are dropped, so the grammar written from the rest (a rule
// per state, a class per transition) has no dead end, and a sampler held to it none either.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "server/gbnf.h"

namespace xtile::server {

struct Lookahead {
  const GbnfGrammar* grammar;  // the strings the lookahead's expression matches from their start
  bool negative;               // (?!...): the string must not be one of them
};

// At most this many states, and stepped letters in all (states times intervals): a bound on
// what a client's pattern makes the server build per request.
inline constexpr uint32_t kMaxLookaheadStates = 4096;
inline constexpr uint64_t kMaxLookaheadSteps = uint64_t{1} << 20;

// The GBNF text of the combination (rules s0, s1, ...; root is s0). Throws xtile::Error when
// the automaton passes its bounds or no string is left.
std::string lookahead_gbnf(const GbnfGrammar& rest, std::span<const Lookahead> lookaheads);

}  // namespace xtile::server
