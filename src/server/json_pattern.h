// JSON Schema's `pattern` (an ECMA-262 regular expression, as JSON Schema specifies) compiled for
// JsonPrefix: translated into a GBNF grammar (gbnf.h) whose texts are exactly the strings the
// pattern matches somewhere (JSON Schema's patterns are not anchored: `^` and `$` anchor them),
// then kept character by character by the GBNF engine (gbnf_prefix.h), which is tested against
// independent recognizers.
//
// The subset: characters and escapes (\n \r \t \f \v \0 \xHH \uHHHH, \/ and other escaped
// punctuation), `.` (any character but a line terminator, as without the s flag), classes
// [...] / [^...] with ranges and \d \w \s \D \W \S inside, \d \D \w \W \s \S, groups
// (...), (?:...), (?<name>...), `|`, the quantifiers * + ? {n} {n,} {n,m} (and their lazy forms,
// which match the same strings), `^` at the start and `$` at the end of a top-level
// alternative, and lookaheads (?=...) (?!...) right after the '^' that opens a pattern of one
// alternative (pattern_lookahead.h: `^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$`, Pydantic's Decimal).
// Refused with an Error naming the construct: backreferences, other lookaround, \b \B,
// anchors elsewhere, Unicode property escapes, a repetition of something that can be empty
// repeated without bound ((a*)*).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "server/gbnf.h"

namespace xtile::server {

// The GBNF text (tested apart: what the translation writes).
std::string pattern_to_gbnf(std::string_view pattern);

// The compiled grammar; throws xtile::Error ("pattern ...: what is not supported").
std::shared_ptr<const GbnfGrammar> compile_pattern(std::string_view pattern);

}  // namespace xtile::server
